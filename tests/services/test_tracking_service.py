"""Experiment and run lifecycle rules of the tracking service."""

from __future__ import annotations

from pathlib import Path

import pytest

from labtrack.entities import LifecycleStage, Metric, RunStatus, ViewType
from labtrack.errors import (
    InvalidParameterValue,
    ResourceAlreadyExists,
    ResourceDoesNotExist,
)


def test_experiment_lifecycle(service):
    experiment_id = service.create_experiment("exp", tags={"owner": "ann"})
    assert service.get_experiment(experiment_id).tags == {"owner": "ann"}
    service.rename_experiment(experiment_id, "exp2")
    assert service.get_experiment_by_name("exp2").experiment_id == experiment_id
    assert service.get_experiment_by_name("exp") is None
    run = service.create_run(experiment_id)
    service.delete_experiment(experiment_id)
    assert service.get_experiment(experiment_id).lifecycle_stage == LifecycleStage.DELETED
    assert service.get_run(run.info.run_id).info.lifecycle_stage == LifecycleStage.DELETED
    assert [e.name for e in service.search_experiments()] == ["Default"]
    assert [e.name for e in service.search_experiments(ViewType.DELETED_ONLY)] == ["exp2"]
    with pytest.raises(InvalidParameterValue, match="must be in the 'active' state"):
        service.create_run(experiment_id)
    with pytest.raises(InvalidParameterValue, match="restore it first"):
        service.rename_experiment(experiment_id, "x")
    service.restore_experiment(experiment_id)
    assert service.get_run(run.info.run_id).info.lifecycle_stage == LifecycleStage.ACTIVE
    with pytest.raises(InvalidParameterValue, match="it is not deleted"):
        service.restore_experiment(experiment_id)


def test_experiment_ids_must_be_int64_numbers(service):
    for bad in ("abc", "-1", str(2**70), "1.5"):
        with pytest.raises(InvalidParameterValue, match="Experiment ID must be a valid integer"):
            service.get_experiment(bad)
        with pytest.raises(InvalidParameterValue, match="Experiment ID must be a valid integer"):
            service.search_runs([bad])
    run = service.create_run("0", start_time=5)
    with pytest.raises(InvalidParameterValue, match="Invalid start_time -1 for the run"):
        service.create_run("0", start_time=-1)
    assert run.info.start_time == 5


def test_experiment_errors(service):
    with pytest.raises(ResourceDoesNotExist, match="No Experiment with id=42 exists") as caught:
        service.get_experiment("42")
    assert caught.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    service.create_experiment("dup")
    with pytest.raises(ResourceAlreadyExists) as caught:
        service.create_experiment("dup")
    assert caught.value.error_code == "RESOURCE_ALREADY_EXISTS"
    with pytest.raises(InvalidParameterValue, match="Cannot delete the default experiment"):
        service.delete_experiment("0")
    with pytest.raises(InvalidParameterValue, match="unsupported scheme 'ftp'"):
        service.create_experiment("remote", artifact_location="ftp://host/x")
    with pytest.raises(InvalidParameterValue, match="query or fragment"):
        service.create_experiment("tricky", artifact_location="file:///tmp/x#../../etc")
    with pytest.raises(ResourceDoesNotExist, match="No tag with name: nope"):
        service.delete_experiment_tag("0", "nope")


def test_experiment_tags(service):
    experiment_id = service.create_experiment("tagged")
    service.set_experiment_tag(experiment_id, "k", "v")
    service.delete_experiment_tag(experiment_id, "k")
    assert service.get_experiment(experiment_id).tags == {}


def test_run_lifecycle(service):
    run = service.create_run("0", user_id="ann", tags={"t": "1"})
    info = run.info
    assert info.status == RunStatus.RUNNING and info.user_id == "ann"
    assert info.run_name and run.data.tags["mlflow.runName"] == info.run_name
    ended = service.update_run(info.run_id, status="FINISHED")
    assert ended.status == RunStatus.FINISHED and ended.end_time >= info.start_time
    renamed = service.update_run(info.run_id, run_name="better")
    assert renamed.run_name == "better" and renamed.status == RunStatus.FINISHED
    # Logging to a finished run is allowed (as in MLflow); to a deleted one it is not.
    service.log_metric(info.run_id, "late", 1.0)
    service.delete_run(info.run_id)
    assert service.get_run(info.run_id).info.lifecycle_stage == LifecycleStage.DELETED
    service.restore_run(info.run_id)
    assert service.get_run(info.run_id).info.lifecycle_stage == LifecycleStage.ACTIVE
    with pytest.raises(InvalidParameterValue, match="Invalid run status 'DONE'"):
        service.update_run(info.run_id, status="DONE")


def test_run_name_and_tag_must_agree(service):
    run = service.create_run("0", tags={"mlflow.runName": "from-tag"})
    assert run.info.run_name == "from-tag"
    with pytest.raises(InvalidParameterValue, match="but with different values"):
        service.create_run("0", run_name="a", tags={"mlflow.runName": "b"})


def test_missing_runs(service):
    with pytest.raises(ResourceDoesNotExist, match="Run with id=abc not found"):
        service.get_run("abc")
    with pytest.raises(ResourceDoesNotExist):
        service.log_metric("abc", "m", 1.0)
    with pytest.raises(ResourceDoesNotExist):
        service.delete_run("abc")
    run = service.create_run("0")
    with pytest.raises(ResourceDoesNotExist, match="No tag with name: nope"):
        service.delete_tag(run.info.run_id, "nope")


def test_metric_history_paging(service):
    run_id = service.create_run("0").info.run_id
    service.log_batch(run_id, metrics=[Metric("m", float(i), 100 + i, i) for i in range(25)])
    assert len(service.get_metric_history(run_id, "m")) == 25
    assert service.get_metric_history(run_id, "m").token is None
    pages, token = [], None
    while True:
        page = service.get_metric_history(run_id, "m", max_results=10, page_token=token)
        pages.append([m.step for m in page])
        token = page.token
        if token is None:
            break
    assert pages == [list(range(10)), list(range(10, 20)), list(range(20, 25))]
    with pytest.raises(InvalidParameterValue, match="at most 25000"):
        service.get_metric_history(run_id, "m", max_results=25001)


def test_artifacts_through_the_service(service, tmp_path):
    run_id = service.create_run("0").info.run_id
    local = tmp_path / "model.txt"
    local.write_text("weights")
    service.log_artifact(run_id, local, "model")
    service.write_artifact(run_id, "notes.md", b"# notes")
    assert [(f.path, f.file_size) for f in service.list_artifacts(run_id)] == [
        ("model", None), ("notes.md", 7)]
    copied = service.download_artifacts(run_id, "model/model.txt", tmp_path / "dl")
    assert Path(copied).read_text() == "weights"
    with pytest.raises(InvalidParameterValue, match="Invalid artifact path"):
        service.log_artifact(run_id, local, "../../escape")
    service.delete_run(run_id)
    with pytest.raises(InvalidParameterValue, match="'active' state"):
        service.write_artifact(run_id, "more.txt", b"x")
    # Reading a deleted run's artifacts still works.
    assert len(service.list_artifacts(run_id)) == 2
