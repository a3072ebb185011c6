"""Runs through the stock mlflow client: lifecycle, params, metrics, tags and batches."""

from __future__ import annotations

import math

import mlflow
import pytest
from mlflow.entities import Metric, Param, RunTag, ViewType
from mlflow.exceptions import MlflowException


def _run(mlflow_client, run_id):
    return mlflow_client.get_run(run_id)


# -- lifecycle ---------------------------------------------------------------------------------


def test_start_and_end_run(mlflow_client, experiment_id):
    with mlflow.start_run(run_name="first-run") as run:
        running = _run(mlflow_client, run.info.run_id)
        assert running.info.status == "RUNNING"
        assert running.info.end_time is None
        assert running.info.lifecycle_stage == "active"
    finished = _run(mlflow_client, run.info.run_id)
    assert finished.info.experiment_id == experiment_id
    assert finished.info.status == "FINISHED"
    assert finished.info.run_name == "first-run"
    assert finished.data.tags["mlflow.runName"] == "first-run"
    assert finished.info.start_time <= finished.info.end_time
    assert finished.info.artifact_uri == (
        f"mlflow-artifacts:/{experiment_id}/{run.info.run_id}/artifacts")
    assert finished.info.user_id  # the client's mlflow.user tag / the server's identity


def test_generated_run_name(mlflow_client, experiment_id):
    with mlflow.start_run() as run:
        pass
    info = _run(mlflow_client, run.info.run_id)
    assert info.info.run_name
    assert info.data.tags["mlflow.runName"] == info.info.run_name


def test_failed_and_killed_runs(mlflow_client, experiment_id):
    with pytest.raises(RuntimeError, match="boom"), mlflow.start_run() as failing:
        raise RuntimeError("boom")
    assert _run(mlflow_client, failing.info.run_id).info.status == "FAILED"

    killed = mlflow.start_run()
    mlflow.end_run(status="KILLED")
    assert _run(mlflow_client, killed.info.run_id).info.status == "KILLED"


def test_nested_runs_carry_the_parent_tag(mlflow_client, experiment_id):
    with mlflow.start_run(run_name="parent") as parent:
        with mlflow.start_run(run_name="child-1", nested=True) as child_1:
            assert mlflow.active_run().info.run_id == child_1.info.run_id
        with mlflow.start_run(run_name="child-2", nested=True) as child_2:
            pass
        assert mlflow.active_run().info.run_id == parent.info.run_id
    parent_id = parent.info.run_id
    for child in (child_1, child_2):
        fetched = _run(mlflow_client, child.info.run_id)
        assert fetched.data.tags["mlflow.parentRunId"] == parent_id
        assert fetched.info.status == "FINISHED"
    assert "mlflow.parentRunId" not in _run(mlflow_client, parent_id).data.tags
    children = mlflow_client.search_runs(
        [experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'",
        order_by=["attributes.run_name ASC"])
    assert [r.info.run_name for r in children] == ["child-1", "child-2"]


def test_create_run_and_set_terminated(mlflow_client, experiment_id):
    run = mlflow_client.create_run(experiment_id, start_time=1_700_000_000_000,
                                   tags={"origin": "client"}, run_name="manual")
    assert run.info.status == "RUNNING"
    assert run.info.start_time == 1_700_000_000_000
    assert run.data.tags["origin"] == "client"
    run_id = run.info.run_id

    mlflow_client.set_terminated(run_id, "FAILED", end_time=1_700_000_005_000)
    info = _run(mlflow_client, run_id).info
    assert info.status == "FAILED"
    assert info.end_time == 1_700_000_005_000

    mlflow_client.set_terminated(run_id)
    assert _run(mlflow_client, run_id).info.status == "FINISHED"

    mlflow_client.update_run(run_id, name="renamed")
    renamed = _run(mlflow_client, run_id)
    assert renamed.info.run_name == "renamed"
    assert renamed.data.tags["mlflow.runName"] == "renamed"


def test_delete_and_restore_run(mlflow_client, experiment_id):
    run_id = mlflow_client.create_run(experiment_id).info.run_id
    mlflow_client.delete_run(run_id)
    assert _run(mlflow_client, run_id).info.lifecycle_stage == "deleted"
    assert mlflow_client.search_runs([experiment_id]) == []
    deleted = mlflow_client.search_runs([experiment_id], run_view_type=ViewType.DELETED_ONLY)
    assert [r.info.run_id for r in deleted] == [run_id]
    # A deleted run takes no more data.
    with pytest.raises(MlflowException) as error:
        mlflow_client.log_param(run_id, "late", "1")
    assert error.value.error_code == "INVALID_PARAMETER_VALUE"

    mlflow_client.restore_run(run_id)
    assert _run(mlflow_client, run_id).info.lifecycle_stage == "active"
    assert [r.info.run_id for r in mlflow_client.search_runs([experiment_id])] == [run_id]


def test_missing_run(mlflow_client):
    with pytest.raises(MlflowException) as error:
        mlflow_client.get_run("0" * 32)
    assert error.value.error_code == "RESOURCE_DOES_NOT_EXIST"


# -- params ------------------------------------------------------------------------------------


def test_params_are_write_once(mlflow_client, experiment_id):
    with mlflow.start_run() as run:
        mlflow.log_param("lr", 0.01)
        mlflow.log_params({"layers": 3, "optimizer": "adam", "note": ""})
        mlflow.log_param("lr", 0.01)  # the same value again is fine
        with pytest.raises(MlflowException) as error:
            mlflow.log_param("lr", 0.02)
    assert error.value.error_code == "INVALID_PARAMETER_VALUE"
    message = error.value.message
    assert "Changing param values is not allowed" in message
    assert "key='lr'" in message
    assert "value='0.01'" in message
    assert run.info.run_id in message
    assert "'0.02'" in message
    params = _run(mlflow_client, run.info.run_id).data.params
    assert params == {"lr": "0.01", "layers": "3", "optimizer": "adam", "note": ""}


# -- metrics -----------------------------------------------------------------------------------


def test_nan_and_infinities_round_trip(mlflow_client, experiment_id):
    with mlflow.start_run() as run:
        mlflow.log_metric("nan", float("nan"))
        mlflow.log_metric("pos_inf", float("inf"))
        mlflow.log_metric("neg_inf", float("-inf"))
        for step, value in enumerate([1.5, float("nan"), float("inf"), float("-inf"), -2.0]):
            mlflow.log_metric("mixed", value, step=step)
    run_id = run.info.run_id
    metrics = _run(mlflow_client, run_id).data.metrics
    assert math.isnan(metrics["nan"])
    assert metrics["pos_inf"] == math.inf
    assert metrics["neg_inf"] == -math.inf
    assert metrics["mixed"] == -2.0

    history = mlflow_client.get_metric_history(run_id, "mixed")
    assert [m.step for m in history] == [0, 1, 2, 3, 4]
    values = [m.value for m in history]
    assert values[0] == 1.5
    assert math.isnan(values[1])
    assert values[2:] == [math.inf, -math.inf, -2.0]
    assert math.isnan(mlflow_client.get_metric_history(run_id, "nan")[0].value)

    # The DataFrame form reads them back too.
    frame = mlflow.search_runs([experiment_id], filter_string=f"attributes.run_id = '{run_id}'")
    assert math.isnan(frame["metrics.nan"][0])
    assert frame["metrics.pos_inf"][0] == math.inf
    assert frame["metrics.neg_inf"][0] == -math.inf


def test_steps_and_timestamps(mlflow_client, experiment_id):
    run_id = mlflow_client.create_run(experiment_id).info.run_id
    points = [(0.9, 1_700_000_000_000, 0), (0.7, 1_700_000_001_000, 1),
              (0.5, 1_700_000_002_500, 2), (0.55, 1_700_000_002_600, 2)]
    for value, timestamp, step in points:
        mlflow_client.log_metric(run_id, "loss", value, timestamp=timestamp, step=step)
    history = mlflow_client.get_metric_history(run_id, "loss")
    assert [(m.key, m.value, m.timestamp, m.step) for m in history] == [
        ("loss", v, t, s) for v, t, s in points]

    # The latest value is the one at the highest step, whatever the logging order.
    mlflow_client.log_metric(run_id, "acc", 0.8, timestamp=1_000, step=5)
    mlflow_client.log_metric(run_id, "acc", 0.3, timestamp=2_000, step=3)
    assert _run(mlflow_client, run_id).data.metrics["acc"] == 0.8

    with mlflow.start_run(run_id=run_id):
        mlflow.log_metrics({"a": 1.0, "b": 2.0}, step=7)
    history_a = mlflow_client.get_metric_history(run_id, "a")
    assert [(m.value, m.step) for m in history_a] == [(1.0, 7)]
    assert history_a[0].timestamp > 0
    assert mlflow_client.get_metric_history(run_id, "never-logged") == []


def test_long_metric_history(mlflow_client, experiment_id):
    run_id = mlflow_client.create_run(experiment_id).info.run_id
    metrics = [Metric("series", step * 0.5, 1_700_000_000_000 + step, step)
               for step in range(2500)]
    mlflow_client.log_batch(run_id, metrics=metrics)  # the client sends 3 batches
    history = mlflow_client.get_metric_history(run_id, "series")
    assert [(m.step, m.value) for m in history] == [(s, s * 0.5) for s in range(2500)]


# -- tags --------------------------------------------------------------------------------------


def test_tags_set_overwrite_and_delete(mlflow_client, experiment_id):
    with mlflow.start_run() as run:
        mlflow.set_tag("team", "vision")
        mlflow.set_tags({"stage": "draft", "owner": "ada"})
        mlflow.set_tag("stage", "final")
    run_id = run.info.run_id
    tags = _run(mlflow_client, run_id).data.tags
    assert tags["team"] == "vision" and tags["stage"] == "final" and tags["owner"] == "ada"

    mlflow_client.delete_tag(run_id, "owner")
    assert "owner" not in _run(mlflow_client, run_id).data.tags
    with pytest.raises(MlflowException) as error:
        mlflow_client.delete_tag(run_id, "owner")
    assert error.value.error_code == "RESOURCE_DOES_NOT_EXIST"


# -- batches -----------------------------------------------------------------------------------


def test_log_batch(mlflow_client, experiment_id):
    run_id = mlflow_client.create_run(experiment_id).info.run_id
    mlflow_client.log_batch(
        run_id,
        metrics=[Metric("m", 1.0, 1_000, 0), Metric("m", 2.0, 2_000, 1),
                 Metric("other", float("nan"), 3_000, 0)],
        params=[Param("p", "v"), Param("q", "w")],
        tags=[RunTag("t", "first"), RunTag("t", "last")],  # the last duplicate wins
    )
    run = _run(mlflow_client, run_id)
    assert run.data.metrics["m"] == 2.0
    assert math.isnan(run.data.metrics["other"])
    assert run.data.params == {"p": "v", "q": "w"}
    assert run.data.tags["t"] == "last"
    assert [m.value for m in mlflow_client.get_metric_history(run_id, "m")] == [1.0, 2.0]

    # More than one request's worth: MlflowClient splits it into legal batches.
    mlflow_client.log_batch(
        run_id,
        params=[Param(f"param_{i}", str(i)) for i in range(250)],
        tags=[RunTag(f"tag_{i}", str(i)) for i in range(150)],
        metrics=[Metric(f"metric_{i}", i, 1_000, 0) for i in range(1200)],
    )
    run = _run(mlflow_client, run_id)
    assert len([k for k in run.data.params if k.startswith("param_")]) == 250
    assert len([k for k in run.data.tags if k.startswith("tag_")]) == 150
    assert len([k for k in run.data.metrics if k.startswith("metric_")]) == 1200


@pytest.mark.parametrize(
    ("n_metrics", "n_params", "n_tags", "words"),
    [
        (0, 101, 0, ["100", "params"]),
        (0, 0, 101, ["100", "tags"]),
        (1001, 0, 0, ["1000", "metrics"]),
        (900, 100, 100, ["1000"]),
    ],
    ids=["params", "tags", "metrics", "total"],
)
def test_log_batch_limits(mlflow_client, experiment_id, n_metrics, n_params, n_tags, words):
    run_id = mlflow_client.create_run(experiment_id).info.run_id
    # The client's RestStore sends exactly one request (MlflowClient would split it).
    store = mlflow_client._tracking_client.store
    with pytest.raises(MlflowException) as error:
        store.log_batch(
            run_id,
            metrics=[Metric(f"m{i}", 1.0, 1_000, 0) for i in range(n_metrics)],
            params=[Param(f"p{i}", "v") for i in range(n_params)],
            tags=[RunTag(f"t{i}", "v") for i in range(n_tags)],
        )
    assert error.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "A batch logging request can contain at most" in error.value.message
    for word in words:
        assert word in error.value.message
    data = _run(mlflow_client, run_id).data
    assert data.metrics == {} and data.params == {}
    assert not [k for k in data.tags if not k.startswith("mlflow.")]


def test_log_batch_is_atomic(mlflow_client, experiment_id):
    run_id = mlflow_client.create_run(experiment_id).info.run_id
    mlflow_client.log_param(run_id, "fixed", "1")
    with pytest.raises(MlflowException) as error:
        mlflow_client.log_batch(run_id, metrics=[Metric("lost", 1.0, 1_000, 0)],
                                params=[Param("fixed", "2")], tags=[RunTag("lost", "x")])
    assert error.value.error_code == "INVALID_PARAMETER_VALUE"
    data = _run(mlflow_client, run_id).data
    assert "lost" not in data.metrics
    assert "lost" not in data.tags
    assert data.params == {"fixed": "1"}


# -- value limits and edge values ------------------------------------------------------------


def test_value_limits_reach_the_client_as_errors(mlflow_client, experiment_id):
    """labtrack refuses over-long values instead of truncating them (a documented
    difference from MLflow); the stock client must get a clear INVALID_PARAMETER_VALUE."""
    run_id = mlflow_client.create_run(experiment_id).info.run_id
    mlflow_client.log_param(run_id, "at_limit", "x" * 6000)
    mlflow_client.set_tag(run_id, "at_limit", "y" * 8000)
    mlflow_client.log_param(run_id, "k" * 250, "longest key")
    refused = [
        lambda: mlflow_client.log_param(run_id, "too_long", "x" * 6001),
        lambda: mlflow_client.set_tag(run_id, "too_long", "y" * 8001),
        lambda: mlflow_client.log_param(run_id, "k" * 251, "v"),
        lambda: mlflow_client.log_metric(run_id, "bad?key", 1.0),
        lambda: mlflow_client.log_param(run_id, "../escape", "v"),
        lambda: mlflow_client.set_tag(run_id, "/absolute", "v"),
    ]
    for call in refused:
        with pytest.raises(MlflowException) as error:
            call()
        assert error.value.error_code == "INVALID_PARAMETER_VALUE", error.value.message
    assert "6000" in _message(mlflow_client.log_param, run_id, "too_long", "x" * 6001)
    data = _run(mlflow_client, run_id).data
    assert len(data.params["at_limit"]) == 6000
    assert len(data.tags["at_limit"]) == 8000
    assert data.params["k" * 250] == "longest key"
    assert "too_long" not in data.params and "too_long" not in data.tags
    assert "bad?key" not in data.metrics


def _message(call, *args) -> str:
    with pytest.raises(MlflowException) as error:
        call(*args)
    return error.value.message


def test_extreme_metric_values_steps_and_timestamps(mlflow_client, experiment_id):
    run_id = mlflow_client.create_run(experiment_id).info.run_id
    points = [(1e-300, 2**41, -5), (1.7976931348623157e308, 2**41 + 1, 2**62),
              (-1.7976931348623157e308, 2**41 + 2, 0), (5e-324, 0, 1)]
    for value, timestamp, step in points:
        mlflow_client.log_metric(run_id, "edge", value, timestamp=timestamp, step=step)
    history = mlflow_client.get_metric_history(run_id, "edge")
    assert sorted((m.value, m.timestamp, m.step) for m in history) == sorted(points)
    assert _run(mlflow_client, run_id).data.metrics["edge"] == 1.7976931348623157e308
