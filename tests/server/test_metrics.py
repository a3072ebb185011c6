"""Metric history endpoints under jupyter_server: MLflow's get-history and labtrack's
downsampled series."""

from __future__ import annotations

HISTORY = "metrics/get-history"
DOWNSAMPLED = "/api/2.0/labtrack/metrics/get-history-downsampled"
UNKNOWN_RUN = "0123456789abcdef0123456789abcdef"


async def run_with_history(api, points: int, key: str = "loss") -> str:
    """A run whose metric ``key`` has ``points`` points: value i/10 at step i, time 1000+i."""
    run_id = (await api.create_run())["info"]["run_id"]
    metrics = [{"key": key, "value": i / 10, "timestamp": 1000 + i, "step": i}
               for i in range(points)]
    await api.ok("POST", "/api/2.0/mlflow/runs/log-batch", {"run_id": run_id, "metrics": metrics})
    return run_id


async def test_history_returns_every_point_in_order(api):
    run_id = await run_with_history(api, 3)
    status, data = await api.get(HISTORY, {"run_id": run_id, "metric_key": "loss"})
    assert status == 200
    assert data == {"metrics": [
        {"key": "loss", "value": 0.0, "timestamp": 1000, "step": 0},
        {"key": "loss", "value": 0.1, "timestamp": 1001, "step": 1},
        {"key": "loss", "value": 0.2, "timestamp": 1002, "step": 2},
    ]}


async def test_history_without_max_results_is_not_paged(api):
    run_id = await run_with_history(api, 30)
    _, data = await api.get(HISTORY, {"run_id": run_id, "metric_key": "loss"})
    assert len(data["metrics"]) == 30
    assert "next_page_token" not in data


async def test_history_writes_nan_as_the_string_nan(api):
    run_id = (await api.create_run())["info"]["run_id"]
    await api.log_metric(run_id, "loss", "NaN")
    _, data = await api.get(HISTORY, {"run_id": run_id, "metric_key": "loss"})
    assert data["metrics"][0]["value"] == "NaN"


async def test_history_pages_walk_every_point_once(api):
    run_id = await run_with_history(api, 7)
    steps, sizes, token = [], [], None
    while True:
        params = {"run_id": run_id, "metric_key": "loss", "max_results": "3"}
        if token:
            params["page_token"] = token
        status, data = await api.get(HISTORY, params)
        assert status == 200, data
        sizes.append(len(data["metrics"]))
        steps += [m["step"] for m in data["metrics"]]
        token = data.get("next_page_token")
        if not token:
            break
    assert sizes == [3, 3, 1]
    assert steps == list(range(7))


async def test_history_with_zero_max_results_is_refused(api):
    run_id = await run_with_history(api, 2)
    status, data = await api.get(HISTORY, {"run_id": run_id, "metric_key": "loss",
                                           "max_results": "0"})
    assert status == 400
    assert "must be a positive integer" in data["message"]


async def test_history_with_a_non_numeric_max_results_is_a_wrong_type(api):
    run_id = await run_with_history(api, 2)
    status, data = await api.get(HISTORY, {"run_id": run_id, "metric_key": "loss",
                                           "max_results": "ten"})
    assert status == 400
    assert data["message"].startswith("Invalid value \"ten\" for parameter 'max_results'")


async def test_history_with_a_bad_page_token_is_400(api):
    run_id = await run_with_history(api, 2)
    status, data = await api.get(HISTORY, {"run_id": run_id, "metric_key": "loss",
                                           "page_token": "bm90IGpzb24="})
    assert status == 400
    assert data["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "page token" in data["message"]


async def test_history_without_metric_key_is_a_missing_parameter(api):
    run_id = await run_with_history(api, 1)
    status, data = await api.get(HISTORY, {"run_id": run_id})
    assert status == 400
    assert data == {"error_code": "INVALID_PARAMETER_VALUE",
                    "message": "Missing value for required parameter 'metric_key'."}


async def test_history_without_run_id_is_a_missing_parameter(api):
    status, data = await api.get(HISTORY, {"metric_key": "loss"})
    assert status == 400
    assert data["message"] == "Missing value for required parameter 'run_id'."


async def test_history_accepts_the_legacy_run_uuid(api):
    run_id = await run_with_history(api, 2)
    status, data = await api.get(HISTORY, {"run_uuid": run_id, "metric_key": "loss"})
    assert status == 200
    assert len(data["metrics"]) == 2


async def test_history_of_an_unknown_run_is_404(api):
    status, data = await api.get(HISTORY, {"run_id": UNKNOWN_RUN, "metric_key": "loss"})
    assert status == 404
    assert data["error_code"] == "RESOURCE_DOES_NOT_EXIST"


async def test_history_of_a_metric_never_logged_is_empty(api):
    run_id = await run_with_history(api, 2)
    status, data = await api.get(HISTORY, {"run_id": run_id, "metric_key": "acc"})
    assert status == 200
    assert data.get("metrics", []) == []


# -- downsampled series ----------------------------------------------------------------------


async def test_downsampled_series_of_a_short_history_is_complete(api):
    run_id = await run_with_history(api, 5)
    status, data = await api.call("GET", DOWNSAMPLED, params={"run_ids": run_id})
    assert status == 200
    assert data == {"series": [{
        "run_id": run_id, "key": "loss", "x_axis": "step",
        "x": [0, 1, 2, 3, 4], "steps": [0, 1, 2, 3, 4],
        "timestamps": [1000, 1001, 1002, 1003, 1004],
        "values": [0.0, 0.1, 0.2, 0.3, 0.4],
        "total_points": 5, "resolution": 1,
    }]}


async def test_downsampled_series_keeps_at_most_max_points_with_both_ends(api):
    run_id = await run_with_history(api, 500)
    _, data = await api.call("GET", DOWNSAMPLED,
                             params={"run_ids": run_id, "max_points": "50"})
    series = data["series"][0]
    assert len(series["values"]) <= 50
    assert series["total_points"] == 500
    assert series["steps"][0] == 0
    assert series["steps"][-1] == 499


async def test_downsampled_series_reads_repeated_run_ids_from_the_query(api):
    first, second = await run_with_history(api, 2), await run_with_history(api, 2)
    _, data = await api.call("GET", DOWNSAMPLED,
                             params=[("run_ids", first), ("run_ids", second)])
    assert sorted(s["run_id"] for s in data["series"]) == sorted([first, second])


async def test_downsampled_series_by_post_body(api):
    run_id = await run_with_history(api, 3, key="acc")
    await api.log_metric(run_id, "loss", 1.0)
    status, data = await api.call("POST", DOWNSAMPLED, {
        "run_ids": [run_id], "metric_keys": ["acc"], "x_axis": "time", "max_points": 10})
    assert status == 200
    assert [s["key"] for s in data["series"]] == ["acc"]
    assert data["series"][0]["x"] == [1000, 1001, 1002]


async def test_downsampled_series_writes_nan_as_the_string_nan(api):
    run_id = (await api.create_run())["info"]["run_id"]
    await api.log_metric(run_id, "loss", "NaN")
    _, data = await api.call("GET", DOWNSAMPLED, params={"run_ids": run_id})
    assert data["series"][0]["values"] == ["NaN"]


async def test_downsampled_series_without_run_ids_is_a_missing_parameter(api):
    status, data = await api.call("GET", DOWNSAMPLED)
    assert status == 400
    assert data["message"] == "Missing value for required parameter 'run_ids'."


async def test_downsampled_series_with_fewer_than_3_points_is_refused(api):
    run_id = await run_with_history(api, 2)
    status, data = await api.call("GET", DOWNSAMPLED,
                                  params={"run_ids": run_id, "max_points": "2"})
    assert status == 400
    assert "at least 3" in data["message"]


async def test_downsampled_series_with_an_unknown_x_axis_is_refused(api):
    run_id = await run_with_history(api, 2)
    status, data = await api.call("GET", DOWNSAMPLED,
                                  params={"run_ids": run_id, "x_axis": "epoch"})
    assert status == 400
    assert data["error_code"] == "INVALID_PARAMETER_VALUE"


async def test_downsampled_series_with_run_ids_not_a_list_is_a_wrong_type(api):
    status, data = await api.call("POST", DOWNSAMPLED, {"run_ids": 5})
    assert status == 400
    assert "for parameter 'run_ids' supplied: expected a list of strings" in data["message"]
