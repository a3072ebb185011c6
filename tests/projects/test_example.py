"""The example project and the README's two commands for it keep working."""

from __future__ import annotations

import json

import pytest

from tests.projects.conftest import EXAMPLES, artifact_text, runs_of


def test_the_readme_commands_run_the_example_project(cli, tracking, tmp_path):
    project = str(EXAMPLES / "project")
    single = cli("run", project, "-P", "learning_rate=0.05")
    assert single.returncode == 0, single.stderr
    (run,) = runs_of(tracking)
    assert run.info.status == "FINISHED"
    assert run.data.params["learning_rate"] == "0.05"
    assert run.data.tags["mlflow.project.env"] == "virtualenv"
    assert run.data.tags["labtrack.project.name"] == "demand-forecast"
    assert len(tracking.get_metric_history(run.info.run_id, "train_rmse")) == 50
    coefficients = json.loads(artifact_text(tracking, run.info.run_id,
                                            "model/coefficients.json", tmp_path))
    assert set(coefficients) == {"temperature", "hour", "intercept"}

    sweep = cli("sweep", project, "-P", "learning_rate=0.01,0.05,0.2", "-P",
                "epochs=10:50:20", "--metric", "rmse", "--max-parallel", "3")
    assert sweep.returncode == 0, sweep.stderr
    assert "reusing virtualenv" in sweep.stderr
    runs = runs_of(tracking)
    (parent,) = [r for r in runs if r.data.tags.get("labtrack.sweep.mode") == "grid"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 9 and all(c.info.status == "FINISHED" for c in children)
    best = min(children, key=lambda c: c.data.metrics["rmse"])
    assert parent.data.tags["labtrack.sweep.bestRunId"] == best.info.run_id
    assert parent.data.metrics["rmse"] == pytest.approx(best.data.metrics["rmse"])
