"""The fluent API against a real store file."""

from __future__ import annotations

import json
import math
import sqlite3
import time
from pathlib import Path

import pytest

import labtrack
from labtrack import config
from labtrack.entities import RunStatus
from labtrack.errors import InvalidParameterValue


def db_path(uri):
    return config.sqlite_database_path(uri)


def count_points(uri, run_id, key):
    """What a fresh reader (another connection) sees."""
    with sqlite3.connect(db_path(uri)) as conn:
        row = conn.execute(
            "SELECT point_count FROM latest_metrics WHERE run_uuid = ? AND key = ?",
            (run_id, key)).fetchone()
        raw = conn.execute(
            "SELECT count(*) FROM metrics JOIN latest_metrics USING (series_id) "
            "WHERE run_uuid = ? AND key = ?", (run_id, key)).fetchone()[0]
    conn.close()
    assert (row[0] if row else 0) == raw
    return raw


def test_run_context_manager_finishes(fluent_uri):
    with labtrack.start_run(run_name="first") as run:
        labtrack.log_param("lr", 0.01)
        labtrack.log_params({"depth": 6, "model": "gbm"})
        labtrack.log_metric("loss", 0.5, step=1)
        labtrack.log_metrics({"acc": 0.9, "f1": 0.8}, step=1)
        labtrack.set_tag("team", "forecast")
        labtrack.set_tags({"site": "plant-7"})
        assert labtrack.active_run().run_id == run.run_id
    assert labtrack.active_run() is None
    finished = labtrack.get_run(run.run_id)
    assert finished.info.status == RunStatus.FINISHED
    assert finished.info.run_name == "first"
    assert finished.data.params == {"depth": "6", "lr": "0.01", "model": "gbm"}
    assert finished.data.metrics == {"acc": 0.9, "f1": 0.8, "loss": 0.5}
    assert finished.data.tags["team"] == "forecast"
    assert finished.data.tags["mlflow.user"]
    assert finished.data.tags["mlflow.source.type"] == "LOCAL"
    assert labtrack.last_active_run().info.run_id == run.run_id


def test_exception_ends_the_run_failed_and_propagates(fluent_uri):
    with pytest.raises(ZeroDivisionError):
        with labtrack.start_run() as run:
            labtrack.log_metric("x", 1.0)
            raise ZeroDivisionError("training diverged")
    assert labtrack.get_run(run.run_id).info.status == RunStatus.FAILED
    assert labtrack.get_run(run.run_id).data.metrics == {"x": 1.0}
    assert labtrack.active_run() is None


def test_keyboard_interrupt_ends_the_run_killed(fluent_uri):
    with pytest.raises(KeyboardInterrupt):
        with labtrack.start_run() as run:
            raise KeyboardInterrupt
    assert labtrack.get_run(run.run_id).info.status == RunStatus.KILLED


def test_nested_runs(fluent_uri):
    labtrack.set_experiment("nesting")
    with labtrack.start_run() as parent:
        with pytest.raises(InvalidParameterValue, match="is already active"):
            labtrack.start_run()
        with labtrack.start_run(nested=True) as child:
            assert labtrack.active_run().run_id == child.run_id
            labtrack.log_metric("inner", 1.0)
        assert labtrack.active_run().run_id == parent.run_id
    child_run = labtrack.get_run(child.run_id)
    assert child_run.data.tags["mlflow.parentRunId"] == parent.run_id
    assert child_run.info.experiment_id == parent.info.experiment_id
    assert "inner" not in labtrack.get_run(parent.run_id).data.metrics


def test_resume_by_run_id_and_by_environment(fluent_uri, monkeypatch):
    with labtrack.start_run() as run:
        labtrack.log_metric("m", 1.0, step=0)
    with labtrack.start_run(run_id=run.run_id):
        assert labtrack.get_run(run.run_id).info.status == RunStatus.RUNNING
        labtrack.log_metric("m", 2.0, step=1)
    monkeypatch.setenv("LABTRACK_RUN_ID", run.run_id)
    with labtrack.start_run() as resumed:
        assert resumed.run_id == run.run_id
        labtrack.log_metric("m", 3.0, step=2)
    history = labtrack.TrackingClient(fluent_uri).get_metric_history(run.run_id, "m")
    assert [m.value for m in history] == [1.0, 2.0, 3.0]
    assert labtrack.get_run(run.run_id).info.status == RunStatus.FINISHED


def test_resuming_a_deleted_run_is_refused(fluent_uri):
    with labtrack.start_run() as run:
        pass
    labtrack.TrackingClient(fluent_uri).delete_run(run.run_id)
    with pytest.raises(InvalidParameterValue, match="deleted state"):
        labtrack.start_run(run_id=run.run_id)


def test_logging_without_a_run_starts_one(fluent_uri):
    labtrack.log_metric("auto", 1.0)
    run = labtrack.active_run()
    assert run is not None
    labtrack.end_run()
    assert labtrack.get_run(run.run_id).data.metrics == {"auto": 1.0}
    assert labtrack.get_run(run.run_id).info.status == RunStatus.FINISHED


def test_flush_is_a_barrier_for_a_fresh_reader(fluent_uri):
    with labtrack.start_run() as run:
        for i in range(20_000):
            labtrack.log_metric("loss", 1 / (i + 1), step=i)
        labtrack.flush()
        assert count_points(fluent_uri, run.run_id, "loss") == 20_000


def test_background_writer_stores_points_without_a_flush(fluent_uri):
    with labtrack.start_run() as run:
        labtrack.log_metric("loss", 1.0)
        # Liveness, not timing: the writer must get there on its own (it wakes every 0.5 s).
        deadline = time.monotonic() + 30
        while count_points(fluent_uri, run.run_id, "loss") == 0:
            assert time.monotonic() < deadline, "buffered point never written"
            time.sleep(0.05)


def test_nan_and_inf_round_trip_through_the_fluent_api(fluent_uri):
    with labtrack.start_run() as run:
        for step, value in enumerate([float("nan"), float("inf"), float("-inf"), 2.0]):
            labtrack.log_metric("m", value, step=step)
    values = [m.value for m in labtrack.TrackingClient(fluent_uri).get_metric_history(
        run.run_id, "m")]
    assert math.isnan(values[0]) and values[1:] == [float("inf"), float("-inf"), 2.0]


def test_invalid_points_fail_at_the_call(fluent_uri):
    with labtrack.start_run():
        with pytest.raises(InvalidParameterValue, match="may only contain"):
            labtrack.log_metric("bad!", 1.0)
        with pytest.raises(InvalidParameterValue, match="Got invalid value 'x'"):
            labtrack.log_metric("m", "x")
        with pytest.raises(InvalidParameterValue, match="step must be a whole number"):
            labtrack.log_metric("m", 1.0, step=0.5)
        with pytest.raises(InvalidParameterValue, match="Changing param values"):
            labtrack.log_param("p", 1)
            labtrack.log_param("p", 2)


def test_store_errors_surface_on_the_next_call_and_at_end_run(fluent_uri):
    client = labtrack.TrackingClient(fluent_uri)
    run = labtrack.start_run()
    labtrack.log_metric("m", 1.0)
    client.service.store.set_run_lifecycle(run.run_id, "deleted", 1)  # behind the API's back
    with pytest.raises(labtrack.MetricWriterError, match="1 buffered metric point"):
        labtrack.flush()
    labtrack.log_metric("m", 2.0)
    with pytest.raises(labtrack.MetricWriterError, match="'active' state"):
        labtrack.end_run()
    assert labtrack.active_run() is None  # the run stack is never left dangling


def test_artifacts(fluent_uri, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    local = tmp_path / "data.csv"
    local.write_text("a,b\n1,2\n")
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "x.txt").write_text("x")
    figure, axes = plt.subplots()
    axes.plot([1, 2, 3])
    with labtrack.start_run() as run:
        labtrack.log_artifact(local)
        labtrack.log_artifacts(folder, "bundle")
        labtrack.log_text("hello", "notes/hello.txt")
        labtrack.log_dict({"a": [1, 2]}, "config.json")
        labtrack.log_dict({"a": [1, 2]}, "config.yaml")
        labtrack.log_figure(figure, "plots/curve.png")
        labtrack.log_figure(figure, "plots/curve.svg")
        uri = labtrack.get_artifact_uri("plots/curve.png")
    plt.close(figure)
    client = labtrack.TrackingClient(fluent_uri)
    assert [f.path for f in client.list_artifacts(run.run_id)] == [
        "bundle", "config.json", "config.yaml", "data.csv", "notes", "plots"]
    out = Path(client.download_artifacts(run.run_id, "", tmp_path / "out"))
    assert json.loads((out / "config.json").read_text()) == {"a": [1, 2]}
    assert (out / "config.yaml").read_text() == "a:\n- 1\n- 2\n"
    assert (out / "plots" / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in (out / "plots" / "curve.svg").read_bytes()[:500]
    assert (out / "bundle" / "sub" / "x.txt").read_text() == "x"
    assert uri.endswith(f"/{run.run_id}/artifacts/plots/curve.png")
    with pytest.raises(InvalidParameterValue, match="needs an extension"):
        client.log_figure(run.run_id, figure, "noext")


def test_search_runs_as_dataframe_and_list(fluent_uri):
    labtrack.set_experiment("search")
    for i, model in enumerate(["a", "b", "a"]):
        with labtrack.start_run(run_name=f"r{i}"):
            labtrack.log_param("model", model)
            labtrack.log_metric("acc", i / 10)
    frame = labtrack.search_runs(filter_string="params.model = 'a'", order_by=["metrics.acc"])
    assert list(frame.columns[:6]) == ["run_id", "experiment_id", "status", "artifact_uri",
                                       "start_time", "end_time"]
    assert list(frame["metrics.acc"]) == [0.0, 0.2]
    assert set(frame["params.model"]) == {"a"}
    assert str(frame["start_time"].dtype).startswith("datetime64")
    runs = labtrack.search_runs(output_format="list", max_results=2)
    assert len(runs) == 2 and all(isinstance(r, labtrack.Run) for r in runs)
    empty = labtrack.search_runs(filter_string="params.model = 'zzz'")
    assert len(empty) == 0 and "run_id" in empty.columns
    everywhere = labtrack.search_runs(search_all_experiments=True, output_format="list")
    assert len(everywhere) == 3
    by_name = labtrack.search_runs(experiment_names=["search"], output_format="list")
    assert len(by_name) == 3


def test_experiments(fluent_uri, monkeypatch):
    experiment = labtrack.set_experiment("created-on-demand")
    assert labtrack.get_experiment_by_name("created-on-demand") == experiment
    with labtrack.start_run() as run:
        pass
    assert run.info.experiment_id == experiment.experiment_id
    labtrack.delete_experiment(experiment.experiment_id)
    with pytest.raises(InvalidParameterValue, match="Cannot set a deleted experiment"):
        labtrack.set_experiment("created-on-demand")
    with pytest.raises(InvalidParameterValue, match="exactly one"):
        labtrack.set_experiment()
    labtrack.client.fluent._experiment_id = None
    monkeypatch.setenv("LABTRACK_EXPERIMENT_NAME", "from-env")
    with labtrack.start_run() as run:
        pass
    assert labtrack.get_experiment(run.info.experiment_id).name == "from-env"
    names = [e.name for e in labtrack.search_experiments(order_by=["name"])]
    assert names == ["Default", "from-env"]


def test_tracking_uri_forms(tmp_path, monkeypatch):
    assert config.sqlite_database_path(str(tmp_path / "dir")) == tmp_path / "dir" / "labtrack.db"
    assert config.sqlite_database_path(str(tmp_path / "x.db")) == tmp_path / "x.db"
    assert config.sqlite_database_path(f"sqlite:///{tmp_path}/y.db") == tmp_path / "y.db"
    monkeypatch.chdir(tmp_path)
    assert config.sqlite_database_path("sqlite:///rel.db") == tmp_path / "rel.db"
    assert config.sqlite_database_path(tmp_path.as_uri()) == tmp_path / "labtrack.db"
    with pytest.raises(InvalidParameterValue, match="Unsupported tracking URI"):
        config.sqlite_database_path("postgresql://db/x")
    with pytest.raises(InvalidParameterValue, match="in-memory"):
        config.sqlite_database_path("sqlite://")
    monkeypatch.setenv("LABTRACK_HOME", str(tmp_path / "home"))
    assert labtrack.get_tracking_uri() == f"sqlite:///{tmp_path / 'home' / 'labtrack.db'}"
    monkeypatch.setenv("LABTRACK_TRACKING_URI", str(tmp_path / "elsewhere"))
    assert labtrack.get_tracking_uri() == str(tmp_path / "elsewhere")
    monkeypatch.setenv("LABTRACK_FLUSH_INTERVAL", "soon")
    with pytest.raises(InvalidParameterValue, match="not a number of seconds"):
        config.flush_interval()


def test_default_store_lives_in_the_data_directory(tmp_path):
    labtrack.set_tracking_uri(None)
    try:
        with labtrack.start_run() as run:
            labtrack.log_metric("m", 1.0)
    finally:
        labtrack.set_tracking_uri(None)
    assert (tmp_path / "home" / "labtrack.db").exists()
    artifacts = (tmp_path / "home" / "artifacts" / "0").as_uri()
    assert run.info.artifact_uri == f"{artifacts}/{run.run_id}/artifacts"


def test_client_synchronous_and_buffered_logging(client):
    run_id = client.create_run("0").info.run_id
    client.log_metric(run_id, "sync", 1.0)
    client.log_metric(run_id, "async", 2.0, synchronous=False)
    assert client.get_run(run_id).data.metrics == {"async": 2.0, "sync": 1.0}
    client.set_terminated(run_id)
    assert client.get_run(run_id).info.status == RunStatus.FINISHED
    assert client.log_param(run_id, "p", 3) == 3
