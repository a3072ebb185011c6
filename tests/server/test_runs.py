"""Run endpoints under jupyter_server: /api/2.0/mlflow/runs/*."""

from __future__ import annotations

import json
import re

import pytest

from labtrack.client.run_context import current_user

MISSING_RUN_ID = "Missing value for required parameter 'run_id'."
UNKNOWN_RUN = "0123456789abcdef0123456789abcdef"


async def run_id_of(api, experiment_id: str = "0", **fields) -> str:
    return (await api.create_run(experiment_id, **fields))["info"]["run_id"]


async def get_run(api, run_id: str) -> dict:
    status, data = await api.get("runs/get", {"run_id": run_id})
    assert status == 200, data
    return data["run"]


async def search_all(api, page_size: int, **body) -> list[list[str]]:
    """Walk runs/search page by page; the run ids of each page."""
    pages, token = [], None
    while True:
        request = {"max_results": page_size, **body}
        if token:
            request["page_token"] = token
        status, data = await api.post("runs/search", request)
        assert status == 200, data
        pages.append([r["info"]["run_id"] for r in data.get("runs", [])])
        token = data.get("next_page_token")
        if not token:
            return pages


# -- create ----------------------------------------------------------------------------------


async def test_create_returns_mlflows_run_shape(api):
    experiment_id = await api.create_experiment("shape")
    status, data = await api.post("runs/create", {
        "experiment_id": experiment_id, "run_name": "first", "start_time": 1700000000000,
        "user_id": "bob", "tags": [{"key": "team", "value": "vision"}]})
    assert status == 200
    info = data["run"]["info"]
    run_id = info["run_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", run_id)
    assert info == {
        "run_id": run_id,
        "run_uuid": run_id,
        "run_name": "first",
        "experiment_id": experiment_id,
        "user_id": "bob",
        "status": "RUNNING",
        "start_time": 1700000000000,
        "artifact_uri": f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts",
        "lifecycle_stage": "active",
    }
    assert data["run"]["data"]["metrics"] == []
    assert data["run"]["data"]["params"] == []
    tags = {t["key"]: t["value"] for t in data["run"]["data"]["tags"]}
    assert tags == {"team": "vision", "mlflow.runName": "first"}


async def test_create_without_experiment_id_uses_the_default_experiment(api):
    run = await api.create_run(experiment_id="")
    assert run["info"]["experiment_id"] == "0"


async def test_create_without_run_name_generates_one(api):
    run = await api.create_run()
    name = run["info"]["run_name"]
    assert re.fullmatch(r"[a-z]+-[a-z]+-\d{1,3}", name)
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert tags["mlflow.runName"] == name


async def test_create_with_a_run_name_tag_names_the_run(api):
    run = await api.create_run(tags=[{"key": "mlflow.runName", "value": "from-tag"}])
    assert run["info"]["run_name"] == "from-tag"


async def test_create_with_disagreeing_run_name_and_tag_is_400(api):
    status, data = await api.post("runs/create", {
        "experiment_id": "0", "run_name": "a",
        "tags": [{"key": "mlflow.runName", "value": "b"}]})
    assert status == 400
    assert data["error_code"] == "INVALID_PARAMETER_VALUE"


async def test_create_without_user_id_records_the_jupyter_user(api):
    run = await api.create_run()
    assert run["info"]["user_id"] == current_user()


async def test_create_takes_the_user_from_the_mlflow_user_tag(api):
    run = await api.create_run(tags=[{"key": "mlflow.user", "value": "carol"}])
    assert run["info"]["user_id"] == "carol"


async def test_create_in_an_unknown_experiment_is_404(api):
    status, data = await api.post("runs/create", {"experiment_id": "999"})
    assert status == 404
    assert data["error_code"] == "RESOURCE_DOES_NOT_EXIST"


async def test_create_with_a_string_start_time_reads_it_as_int64(api):
    run = await api.create_run(start_time="1700000000000")
    assert run["info"]["start_time"] == 1700000000000


async def test_create_with_a_non_numeric_start_time_is_a_wrong_type(api):
    status, data = await api.post("runs/create", {"experiment_id": "0", "start_time": "soon"})
    assert status == 400
    assert data["message"].startswith("Invalid value \"soon\" for parameter 'start_time'")


async def test_create_with_tags_that_are_not_a_list_is_a_wrong_type(api):
    status, data = await api.post("runs/create", {"experiment_id": "0", "tags": {"k": "v"}})
    assert status == 400
    assert data["message"].startswith("Invalid value {\"k\": \"v\"} for parameter 'tags'")


# -- get -------------------------------------------------------------------------------------


async def test_get_returns_the_run(api):
    run_id = await run_id_of(api, run_name="fetched")
    run = await get_run(api, run_id)
    assert run["info"]["run_id"] == run_id
    assert run["info"]["run_name"] == "fetched"


async def test_get_accepts_the_legacy_run_uuid(api):
    run_id = await run_id_of(api)
    status, data = await api.get("runs/get", {"run_uuid": run_id})
    assert status == 200
    assert data["run"]["info"]["run_uuid"] == run_id


async def test_get_unknown_run_is_404(api):
    status, data = await api.get("runs/get", {"run_id": UNKNOWN_RUN})
    assert status == 404
    assert data == {"error_code": "RESOURCE_DOES_NOT_EXIST",
                    "message": f"Run with id={UNKNOWN_RUN} not found"}


async def test_get_without_run_id_is_a_missing_parameter(api):
    status, data = await api.get("runs/get")
    assert status == 400
    assert data == {"error_code": "INVALID_PARAMETER_VALUE", "message": MISSING_RUN_ID}


async def test_get_with_a_malformed_run_id_is_400(api):
    status, data = await api.get("runs/get", {"run_id": "../etc"})
    assert status == 400
    assert data["error_code"] == "INVALID_PARAMETER_VALUE"


# -- update, delete, restore -----------------------------------------------------------------


async def test_update_finishes_the_run(api):
    run_id = await run_id_of(api)
    status, data = await api.post("runs/update", {
        "run_id": run_id, "status": "FINISHED", "end_time": 1700000001000})
    assert status == 200
    assert data["run_info"]["status"] == "FINISHED"
    assert data["run_info"]["end_time"] == 1700000001000
    assert data["run_info"]["artifact_uri"].startswith("mlflow-artifacts:/0/")


async def test_update_renames_the_run_and_its_tag(api):
    run_id = await run_id_of(api, run_name="old")
    await api.post("runs/update", {"run_id": run_id, "run_name": "new"})
    run = await get_run(api, run_id)
    assert run["info"]["run_name"] == "new"
    assert {t["key"]: t["value"] for t in run["data"]["tags"]}["mlflow.runName"] == "new"


async def test_update_accepts_the_legacy_run_uuid(api):
    run_id = await run_id_of(api)
    status, data = await api.post("runs/update", {"run_uuid": run_id, "status": "KILLED"})
    assert status == 200
    assert data["run_info"]["status"] == "KILLED"


async def test_update_with_an_unknown_status_is_400(api):
    run_id = await run_id_of(api)
    status, data = await api.post("runs/update", {"run_id": run_id, "status": "DONE"})
    assert status == 400
    assert data["error_code"] == "INVALID_PARAMETER_VALUE"


async def test_update_without_run_id_is_a_missing_parameter(api):
    status, data = await api.post("runs/update", {"status": "FINISHED"})
    assert (status, data["message"]) == (400, MISSING_RUN_ID)


async def test_update_of_an_unknown_run_is_404(api):
    status, data = await api.post("runs/update", {"run_id": UNKNOWN_RUN, "status": "FINISHED"})
    assert status == 404
    assert data["error_code"] == "RESOURCE_DOES_NOT_EXIST"


async def test_delete_marks_the_run_deleted(api):
    run_id = await run_id_of(api)
    status, data = await api.post("runs/delete", {"run_id": run_id})
    assert (status, data) == (200, {})
    assert (await get_run(api, run_id))["info"]["lifecycle_stage"] == "deleted"


async def test_restore_brings_the_run_back(api):
    run_id = await run_id_of(api)
    await api.post("runs/delete", {"run_id": run_id})
    status, data = await api.post("runs/restore", {"run_id": run_id})
    assert (status, data) == (200, {})
    assert (await get_run(api, run_id))["info"]["lifecycle_stage"] == "active"


async def test_delete_of_an_unknown_run_is_404(api):
    status, data = await api.post("runs/delete", {"run_id": UNKNOWN_RUN})
    assert status == 404
    assert data["error_code"] == "RESOURCE_DOES_NOT_EXIST"


async def test_restore_without_run_id_is_a_missing_parameter(api):
    status, data = await api.post("runs/restore", {})
    assert (status, data["message"]) == (400, MISSING_RUN_ID)


async def test_logging_to_a_deleted_run_is_refused(api):
    run_id = await run_id_of(api)
    await api.post("runs/delete", {"run_id": run_id})
    status, data = await api.post("runs/set-tag", {"run_id": run_id, "key": "k", "value": "v"})
    assert status == 400
    assert data["error_code"] == "INVALID_PARAMETER_VALUE"


# -- log-metric ------------------------------------------------------------------------------


async def test_log_metric_shows_the_latest_value_in_the_run(api):
    run_id = await run_id_of(api)
    await api.log_metric(run_id, "loss", 0.5, timestamp=1000, step=1)
    await api.log_metric(run_id, "loss", 0.25, timestamp=2000, step=2)
    run = await get_run(api, run_id)
    assert run["data"]["metrics"] == [
        {"key": "loss", "value": 0.25, "timestamp": 2000, "step": 2}]


async def test_log_metric_answers_an_empty_object(api):
    run_id = await run_id_of(api)
    status, data = await api.post("runs/log-metric", {
        "run_id": run_id, "key": "acc", "value": 1, "timestamp": 5})
    assert (status, data) == (200, {})


async def test_log_metric_accepts_bare_nan_and_writes_it_as_the_string_nan(api):
    # Python's json (MLflow's client) writes NaN as a bare token; the answer uses proto3
    # JSON's "NaN", since bare NaN is not JSON.
    run_id = await run_id_of(api)
    reply = await api.request("POST", "/api/2.0/mlflow/runs/log-metric",
                              body=json.dumps({"run_id": run_id, "key": "loss",
                                               "value": float("nan"), "timestamp": 1}),
                              headers={"Content-Type": "application/json"})
    assert reply.status == 200
    raw = (await api.request("GET", "/api/2.0/mlflow/runs/get", params={"run_id": run_id})).body
    assert b"NaN" in raw
    assert json.loads(raw, parse_constant=lambda c: f"bare {c}")["run"]["data"]["metrics"][0][
        "value"] == "NaN"


async def test_log_metric_accepts_proto3_json_infinity(api):
    run_id = await run_id_of(api)
    await api.log_metric(run_id, "grad", "-Infinity")
    run = await get_run(api, run_id)
    assert run["data"]["metrics"][0]["value"] == "-Infinity"


async def test_log_metric_without_timestamp_is_a_missing_parameter(api):
    run_id = await run_id_of(api)
    status, data = await api.post("runs/log-metric", {"run_id": run_id, "key": "k", "value": 1})
    assert status == 400
    assert data["message"] == "Missing value for required parameter 'timestamp'."


async def test_log_metric_without_key_is_a_missing_parameter(api):
    run_id = await run_id_of(api)
    status, data = await api.post("runs/log-metric",
                                  {"run_id": run_id, "value": 1, "timestamp": 1})
    assert (status, data["message"]) == (400, "Missing value for required parameter 'key'.")


async def test_log_metric_with_a_text_value_is_a_wrong_type(api):
    run_id = await run_id_of(api)
    status, data = await api.post("runs/log-metric", {
        "run_id": run_id, "key": "k", "value": "high", "timestamp": 1})
    assert status == 400
    assert data["message"].startswith("Invalid value \"high\" for parameter 'value'")


async def test_log_metric_with_a_boolean_value_is_a_wrong_type(api):
    run_id = await run_id_of(api)
    status, data = await api.post("runs/log-metric", {
        "run_id": run_id, "key": "k", "value": True, "timestamp": 1})
    assert status == 400
    assert data["error_code"] == "INVALID_PARAMETER_VALUE"


async def test_log_metric_with_a_fractional_step_is_400(api):
    run_id = await run_id_of(api)
    status, data = await api.post("runs/log-metric", {
        "run_id": run_id, "key": "k", "value": 1, "timestamp": 1, "step": 1.5})
    assert status == 400
    assert data["error_code"] == "INVALID_PARAMETER_VALUE"


async def test_log_metric_with_an_invalid_key_is_400(api):
    run_id = await run_id_of(api)
    status, data = await api.post("runs/log-metric", {
        "run_id": run_id, "key": "../loss", "value": 1, "timestamp": 1})
    assert status == 400
    assert data["error_code"] == "INVALID_PARAMETER_VALUE"


async def test_log_metric_to_an_unknown_run_is_404(api):
    status, data = await api.post("runs/log-metric", {
        "run_id": UNKNOWN_RUN, "key": "k", "value": 1, "timestamp": 1})
    assert status == 404
    assert data["error_code"] == "RESOURCE_DOES_NOT_EXIST"


# -- params and tags -------------------------------------------------------------------------


async def test_log_parameter_shows_in_the_run(api):
    run_id = await run_id_of(api)
    status, data = await api.post("runs/log-parameter",
                                  {"run_id": run_id, "key": "lr", "value": "0.01"})
    assert (status, data) == (200, {})
    assert (await get_run(api, run_id))["data"]["params"] == [{"key": "lr", "value": "0.01"}]


async def test_log_parameter_again_with_the_same_value_is_accepted(api):
    run_id = await run_id_of(api)
    for _ in range(2):
        status, _data = await api.post("runs/log-parameter",
                                       {"run_id": run_id, "key": "lr", "value": "0.01"})
        assert status == 200


async def test_changing_a_param_is_400_naming_both_values(api):
    run_id = await run_id_of(api)
    await api.post("runs/log-parameter", {"run_id": run_id, "key": "lr", "value": "0.01"})
    status, data = await api.post("runs/log-parameter",
                                  {"run_id": run_id, "key": "lr", "value": "0.02"})
    assert status == 400
    assert data == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": "Changing param values is not allowed. Param with key='lr' was already "
                   f"logged with value='0.01' for run ID='{run_id}'. Attempted logging new "
                   "value '0.02'.",
    }


async def test_log_parameter_with_a_numeric_value_is_a_wrong_type(api):
    run_id = await run_id_of(api)
    status, data = await api.post("runs/log-parameter",
                                  {"run_id": run_id, "key": "lr", "value": 0.01})
    assert status == 400
    assert data["message"].startswith("Invalid value 0.01 for parameter 'value'")


async def test_log_parameter_over_6000_characters_is_refused(api):
    run_id = await run_id_of(api)
    status, data = await api.post("runs/log-parameter",
                                  {"run_id": run_id, "key": "long", "value": "x" * 6001})
    assert status == 400
    assert "6000" in data["message"]


async def test_set_tag_overwrites_the_value(api):
    run_id = await run_id_of(api)
    for value in ("1", "2"):
        status, _data = await api.post("runs/set-tag",
                                       {"run_id": run_id, "key": "k", "value": value})
        assert status == 200
    tags = {t["key"]: t["value"] for t in (await get_run(api, run_id))["data"]["tags"]}
    assert tags["k"] == "2"


async def test_set_tag_without_key_is_a_missing_parameter(api):
    run_id = await run_id_of(api)
    status, data = await api.post("runs/set-tag", {"run_id": run_id, "value": "v"})
    assert (status, data["message"]) == (400, "Missing value for required parameter 'key'.")


async def test_delete_tag_removes_it(api):
    run_id = await run_id_of(api, tags=[{"key": "k", "value": "v"}])
    status, data = await api.post("runs/delete-tag", {"run_id": run_id, "key": "k"})
    assert (status, data) == (200, {})
    tags = {t["key"] for t in (await get_run(api, run_id))["data"]["tags"]}
    assert "k" not in tags


async def test_delete_of_an_unknown_tag_is_404(api):
    run_id = await run_id_of(api)
    status, data = await api.post("runs/delete-tag", {"run_id": run_id, "key": "nope"})
    assert status == 404
    assert data["error_code"] == "RESOURCE_DOES_NOT_EXIST"


# -- log-batch -------------------------------------------------------------------------------


async def test_log_batch_records_metrics_params_and_tags(api):
    run_id = await run_id_of(api)
    status, data = await api.post("runs/log-batch", {
        "run_id": run_id,
        "metrics": [{"key": "acc", "value": 0.9, "timestamp": 10, "step": 3}],
        "params": [{"key": "depth", "value": "6"}],
        "tags": [{"key": "stage", "value": "dev"}],
    })
    assert (status, data) == (200, {})
    run = await get_run(api, run_id)
    assert run["data"]["metrics"] == [{"key": "acc", "value": 0.9, "timestamp": 10, "step": 3}]
    assert run["data"]["params"] == [{"key": "depth", "value": "6"}]
    assert {"key": "stage", "value": "dev"} in run["data"]["tags"]


async def test_log_batch_with_101_params_is_refused(api):
    run_id = await run_id_of(api)
    params = [{"key": f"p{i}", "value": "v"} for i in range(101)]
    status, data = await api.post("runs/log-batch", {"run_id": run_id, "params": params})
    assert status == 400
    assert data["error_code"] == "INVALID_PARAMETER_VALUE"
    assert data["message"].startswith(
        "A batch logging request can contain at most 100 params. Got 101 params.")


async def test_log_batch_with_101_tags_is_refused(api):
    run_id = await run_id_of(api)
    tags = [{"key": f"t{i}", "value": "v"} for i in range(101)]
    status, data = await api.post("runs/log-batch", {"run_id": run_id, "tags": tags})
    assert status == 400
    assert "at most 100 tags" in data["message"]


async def test_log_batch_with_1001_metrics_is_refused(api):
    run_id = await run_id_of(api)
    metrics = [{"key": "m", "value": i, "timestamp": i} for i in range(1001)]
    status, data = await api.post("runs/log-batch", {"run_id": run_id, "metrics": metrics})
    assert status == 400
    assert "at most 1000 metrics" in data["message"]


async def test_log_batch_with_over_1000_entities_in_total_is_refused(api):
    run_id = await run_id_of(api)
    metrics = [{"key": "m", "value": i, "timestamp": i} for i in range(1000)]
    status, data = await api.post("runs/log-batch", {
        "run_id": run_id, "metrics": metrics, "params": [{"key": "p", "value": "v"}]})
    assert status == 400
    assert "at most 1000 metrics, params, and tags" in data["message"]


async def test_log_batch_is_atomic(api):
    run_id = await run_id_of(api)
    await api.post("runs/log-parameter", {"run_id": run_id, "key": "lr", "value": "0.01"})
    status, _data = await api.post("runs/log-batch", {
        "run_id": run_id,
        "metrics": [{"key": "acc", "value": 1, "timestamp": 1}],
        "params": [{"key": "lr", "value": "0.02"}],
    })
    assert status == 400
    assert (await get_run(api, run_id))["data"]["metrics"] == []


async def test_log_batch_with_a_metric_missing_its_timestamp_names_it(api):
    run_id = await run_id_of(api)
    status, data = await api.post("runs/log-batch", {
        "run_id": run_id, "metrics": [{"key": "acc", "value": 1}]})
    assert status == 400
    assert data["message"] == "Missing value for required parameter 'metrics[0].timestamp'."


async def test_log_batch_reads_every_form_of_a_metric_in_one_batch(api):
    # Plain JSON numbers, proto3 JSON strings, integral floats and a missing step, mixed.
    run_id = await run_id_of(api)
    metrics = [
        {"key": "m", "value": 0.5, "timestamp": 1, "step": 0},
        {"key": "m", "value": 2, "timestamp": 2, "step": 1},
        {"key": "m", "value": "NaN", "timestamp": 3, "step": 2},
        {"key": "m", "value": "-Infinity", "timestamp": "4", "step": "3"},
        {"key": "m", "value": 0.25, "timestamp": 5.0, "step": 4.0},
        {"key": "m", "value": 0.125, "timestamp": 6},
        {"key": "other", "value": 1.5, "timestamp": 7, "step": 9},
    ]
    status, data = await api.post("runs/log-batch", {"run_id": run_id, "metrics": metrics})
    assert (status, data) == (200, {})
    _, history = await api.get("metrics/get-history", {"run_id": run_id, "metric_key": "m"})
    assert [(p["value"], p["timestamp"], p["step"]) for p in history["metrics"]] == [
        (0.5, 1, 0), (2.0, 2, 1), ("NaN", 3, 2), ("-Infinity", 4, 3), (0.25, 5, 4),
        (0.125, 6, 0)]
    latest = {m["key"]: m for m in (await get_run(api, run_id))["data"]["metrics"]}
    assert latest["other"] == {"key": "other", "value": 1.5, "timestamp": 7, "step": 9}


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"value": "high"}, "Invalid value \"high\" for parameter 'metrics[700].value' "
                            "supplied: expected a number."),
        ({"value": True}, "Invalid value true for parameter 'metrics[700].value' supplied: "
                          "expected a number."),
        ({"timestamp": None}, "Missing value for required parameter 'metrics[700].timestamp'."),
        ({"key": ""}, "Missing value for required parameter 'metrics[700].key'."),
        ({"key": 7}, "Invalid value 7 for parameter 'key' supplied: expected a string."),
        ({"step": 1.5}, "Invalid value 1.5 for parameter 'step' supplied: expected an "
                        "integer."),
        ({"step": False}, "Invalid value false for parameter 'step' supplied: expected an "
                          "integer."),
        ({"timestamp": -1}, "Invalid timestamp -1 for metric 'm': timestamp must lie in "
                            "[0, 9223372036854775807]."),
        ({"step": 2**63}, "Invalid step 9223372036854775808 for metric 'm': step must lie in "
                          "[-9223372036854775808, 9223372036854775807]."),
        ({"key": "bad!"}, "Invalid value 'bad!' for parameter 'key' supplied: Metric keys may "
                          "only contain alphanumerics, underscores (_), dashes (-), periods (.), "
                          "spaces ( ), colon(:) and slashes (/)."),
    ],
)
async def test_one_bad_metric_in_a_full_batch_is_reported_as_if_alone(api, bad, message):
    run_id = await run_id_of(api)
    metrics = [{"key": "m", "value": i / 10, "timestamp": 1000 + i, "step": i}
               for i in range(1000)]
    metrics[700] = {**metrics[700], **bad}
    status, data = await api.post("runs/log-batch", {"run_id": run_id, "metrics": metrics})
    assert (status, data["error_code"], data["message"]) == (
        400, "INVALID_PARAMETER_VALUE", message)
    assert (await get_run(api, run_id))["data"]["metrics"] == []  # nothing of it stored


async def test_log_batch_with_metrics_that_are_not_a_list_is_a_wrong_type(api):
    run_id = await run_id_of(api)
    status, data = await api.post("runs/log-batch", {"run_id": run_id, "metrics": "acc=1"})
    assert status == 400
    assert "for parameter 'metrics' supplied: expected a list of objects" in data["message"]


async def test_log_batch_with_duplicate_param_keys_is_refused(api):
    run_id = await run_id_of(api)
    status, data = await api.post("runs/log-batch", {
        "run_id": run_id, "params": [{"key": "p", "value": "1"}, {"key": "p", "value": "2"}]})
    assert status == 400
    assert "Duplicate parameter keys" in data["message"]


async def test_log_batch_without_run_id_is_a_missing_parameter(api):
    status, data = await api.post("runs/log-batch", {"params": [{"key": "p", "value": "v"}]})
    assert (status, data["message"]) == (400, MISSING_RUN_ID)


# -- search ----------------------------------------------------------------------------------


async def test_search_filters_on_metrics(api):
    good, bad = await run_id_of(api), await run_id_of(api)
    await api.log_metric(good, "acc", 0.9)
    await api.log_metric(bad, "acc", 0.1)
    status, data = await api.post("runs/search", {
        "experiment_ids": ["0"], "filter": "metrics.acc > 0.5"})
    assert status == 200
    assert [r["info"]["run_id"] for r in data["runs"]] == [good]


async def test_search_filters_on_params_and_attributes(api):
    wanted = await run_id_of(api, run_name="wanted")
    await run_id_of(api, run_name="other")
    await api.post("runs/log-parameter", {"run_id": wanted, "key": "model", "value": "resnet"})
    _, data = await api.post("runs/search", {
        "experiment_ids": ["0"],
        "filter": "params.model = 'resnet' AND attributes.run_name LIKE 'want%'"})
    assert [r["info"]["run_id"] for r in data["runs"]] == [wanted]


async def test_search_returns_full_runs(api):
    run_id = await run_id_of(api)
    await api.log_metric(run_id, "acc", float("nan"))
    _, data = await api.post("runs/search", {"experiment_ids": ["0"]})
    run = data["runs"][0]
    assert run["info"]["artifact_uri"] == f"mlflow-artifacts:/0/{run_id}/artifacts"
    assert run["data"]["metrics"][0]["value"] == "NaN"


async def test_search_orders_by_metric(api):
    ids = []
    for value in (0.2, 0.9, 0.5):
        ids.append(await run_id_of(api))
        await api.log_metric(ids[-1], "acc", value)
    _, data = await api.post("runs/search", {
        "experiment_ids": ["0"], "order_by": ["metrics.acc DESC"]})
    assert [r["info"]["run_id"] for r in data["runs"]] == [ids[1], ids[2], ids[0]]


async def test_search_with_or_in_the_filter_is_refused(api):
    status, data = await api.post("runs/search", {
        "experiment_ids": ["0"], "filter": "metrics.acc > 0.5 OR params.x = 'y'"})
    assert status == 400
    assert data["error_code"] == "INVALID_PARAMETER_VALUE"
    assert data["message"].startswith("Invalid clause(s) in filter string: 'OR'")


async def test_search_with_an_unparsable_filter_is_400(api):
    status, data = await api.post("runs/search", {
        "experiment_ids": ["0"], "filter": "metrics.acc >>> 1"})
    assert status == 400
    assert data["error_code"] == "INVALID_PARAMETER_VALUE"


async def test_search_pages_walk_every_run_once(api):
    created = [await run_id_of(api) for _ in range(7)]
    pages = await search_all(api, page_size=3, experiment_ids=["0"])
    assert [len(page) for page in pages] == [3, 3, 1]
    assert sorted(sum(pages, [])) == sorted(created)


async def test_search_with_a_bad_page_token_is_400(api):
    status, data = await api.post("runs/search", {
        "experiment_ids": ["0"], "page_token": "%%%"})
    assert status == 400
    assert data["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "page token" in data["message"]


async def test_search_above_50000_results_is_refused(api):
    status, data = await api.post("runs/search", {"experiment_ids": ["0"], "max_results": 50001})
    assert status == 400
    assert "must be at most 50000" in data["message"]


async def test_search_with_zero_max_results_is_refused(api):
    status, data = await api.post("runs/search", {"experiment_ids": ["0"], "max_results": 0})
    assert status == 400
    assert "must be a positive integer" in data["message"]


async def test_search_hides_deleted_runs_unless_asked(api):
    run_id = await run_id_of(api)
    await api.post("runs/delete", {"run_id": run_id})
    _, active = await api.post("runs/search", {"experiment_ids": ["0"]})
    _, deleted = await api.post("runs/search", {"experiment_ids": ["0"],
                                                "run_view_type": "DELETED_ONLY"})
    assert active.get("runs", []) == []
    assert [r["info"]["run_id"] for r in deleted["runs"]] == [run_id]


async def test_search_with_order_by_not_a_list_of_strings_is_a_wrong_type(api):
    status, data = await api.post("runs/search", {"experiment_ids": ["0"], "order_by": [1]})
    assert status == 400
    assert "for parameter 'order_by' supplied: expected a list of strings" in data["message"]


# -- inputs, outputs, legacy model logging ---------------------------------------------------


async def test_log_inputs_records_datasets(api):
    run_id = await run_id_of(api)
    dataset = {"name": "iris", "digest": "abc123", "source_type": "local",
               "source": "{\"uri\": \"/data\"}"}
    status, data = await api.post("runs/log-inputs", {
        "run_id": run_id,
        "datasets": [{"dataset": dataset, "tags": [{"key": "mlflow.data.context",
                                                    "value": "train"}]}]})
    assert (status, data) == (200, {})
    inputs = (await get_run(api, run_id))["inputs"]
    assert inputs["dataset_inputs"] == [{
        "tags": [{"key": "mlflow.data.context", "value": "train"}], "dataset": dataset}]


async def test_log_inputs_with_a_dataset_without_digest_is_a_missing_parameter(api):
    run_id = await run_id_of(api)
    status, data = await api.post("runs/log-inputs", {
        "run_id": run_id, "datasets": [{"dataset": {"name": "iris"}}]})
    assert status == 400
    assert data["message"] == "Missing value for required parameter 'digest'."


async def test_log_inputs_records_logged_models(api):
    run_id = await run_id_of(api)
    model = await api.create_logged_model()
    model_id = model["info"]["model_id"]
    await api.post("runs/log-inputs", {"run_id": run_id, "models": [{"model_id": model_id}]})
    inputs = (await get_run(api, run_id))["inputs"]
    assert inputs["model_inputs"] == [{"model_id": model_id}]


async def test_outputs_records_the_models_a_run_produced(api):
    run_id = await run_id_of(api)
    model_id = (await api.create_logged_model(source_run_id=run_id))["info"]["model_id"]
    status, data = await api.post("runs/outputs", {
        "run_id": run_id, "models": [{"model_id": model_id, "step": 7}]})
    assert (status, data) == (200, {})
    outputs = (await get_run(api, run_id))["outputs"]
    assert outputs == {"model_outputs": [{"model_id": model_id, "step": 7}]}


async def test_outputs_with_an_unknown_model_is_404(api):
    run_id = await run_id_of(api)
    status, data = await api.post("runs/outputs", {
        "run_id": run_id, "models": [{"model_id": "m-0123"}]})
    assert status == 404
    assert data["error_code"] == "RESOURCE_DOES_NOT_EXIST"


async def test_log_model_keeps_the_model_in_the_history_tag(api):
    run_id = await run_id_of(api)
    model = {"artifact_path": "model", "flavors": {"python_function": {}},
             "utc_time_created": "2024-01-01 00:00:00.000000", "run_id": run_id}
    status, data = await api.post("runs/log-model",
                                  {"run_id": run_id, "model_json": json.dumps(model)})
    assert (status, data) == (200, {})
    tags = {t["key"]: t["value"] for t in (await get_run(api, run_id))["data"]["tags"]}
    assert json.loads(tags["mlflow.log-model.history"]) == [model]


async def test_log_model_keeps_only_what_mlflow_keeps_in_the_history(api):
    run_id = await run_id_of(api)
    model = {"artifact_path": "model", "run_id": run_id, "model_uuid": "abc",
             "utc_time_created": "2024-01-01 00:00:00.000000",
             "flavors": {"sklearn": {"pickled_model": "model.pkl", "config": {"x": 1}}},
             "signature": {"inputs": "[" + "{\"type\": \"double\"}, " * 1000 + "]"},
             "saved_input_example_info": {"artifact_path": "input_example.json"}}
    status, _data = await api.post("runs/log-model",
                                   {"run_id": run_id, "model_json": json.dumps(model)})
    assert status == 200
    tags = {t["key"]: t["value"] for t in (await get_run(api, run_id))["data"]["tags"]}
    assert json.loads(tags["mlflow.log-model.history"]) == [{
        "run_id": run_id, "utc_time_created": "2024-01-01 00:00:00.000000",
        "artifact_path": "model", "model_uuid": "abc",
        "flavors": {"sklearn": {"pickled_model": "model.pkl"}}}]


async def test_log_model_without_mandatory_fields_is_400(api):
    run_id = await run_id_of(api)
    status, data = await api.post("runs/log-model", {
        "run_id": run_id, "model_json": json.dumps({"artifact_path": "model"})})
    assert status == 400
    assert data["message"].startswith("Model json is missing mandatory fields")


async def test_log_model_with_malformed_model_json_is_400(api):
    run_id = await run_id_of(api)
    status, data = await api.post("runs/log-model", {"run_id": run_id, "model_json": "{"})
    assert status == 400
    assert data["message"] == "Malformed value for parameter 'model_json'."
