"""``labtrack sweep``: the value grammar, grid and random spaces, and real sweeps of child runs
under one parent — with a child failing on purpose, in parallel, and stopped by Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from labtrack.projects.spec import ProjectError
from labtrack.projects.sweep import SweepSpace, parse_values
from tests.projects.conftest import (
    TIMEOUT_S,
    LineReader,
    artifact_text,
    runs_of,
    wait_until_gone,
)


def test_the_value_grammar():
    assert parse_values("lr", "0.001,0.01,0.1") == ["0.001", "0.01", "0.1"]
    assert parse_values("depth", "3:8") == ["3", "4", "5", "6", "7", "8"]
    assert parse_values("n", "0:100:25") == ["0", "25", "50", "75", "100"]
    assert parse_values("n", "5:1") == ["5", "4", "3", "2", "1"]
    assert parse_values("n", "-2:2:2") == ["-2", "0", "2"]
    assert parse_values("name", "a\\,b,c") == ["a,b", "c"]
    assert parse_values("uri", "s3://bucket/data") == ["s3://bucket/data"]  # not a range
    assert parse_values("time", "12:30:00.5") == ["12:30:00.5"]
    assert parse_values("x", "7") == ["7"]
    assert parse_values("x", "a,b,a") == ["a", "b"]
    with pytest.raises(ProjectError, match="step must be non-zero"):
        parse_values("n", "1:5:0")
    with pytest.raises(ProjectError, match="step must be non-zero"):
        parse_values("n", "1:5:-1")
    with pytest.raises(ProjectError, match="an empty value"):
        parse_values("x", "a,,b")


def test_grid_and_random_spaces():
    space = SweepSpace.parse({"lr": "0.1,0.2", "depth": "1:3"})
    assert space.size == 6
    assert space.grid() == [
        {"lr": "0.1", "depth": "1"}, {"lr": "0.1", "depth": "2"}, {"lr": "0.1", "depth": "3"},
        {"lr": "0.2", "depth": "1"}, {"lr": "0.2", "depth": "2"}, {"lr": "0.2", "depth": "3"},
    ]
    sample = space.sample(4, seed=3)
    assert len(sample) == 4 and all(c in space.grid() for c in sample)
    assert len({json.dumps(c, sort_keys=True) for c in sample}) == 4  # no repeats
    assert space.sample(4, seed=3) == sample  # the seed makes it reproducible
    assert len(space.sample(50, seed=1)) == 6  # never more than the grid
    huge = SweepSpace.parse({"a": "1:1000", "b": "1:1000"})
    with pytest.raises(ProjectError, match="sample some with --random"):
        huge.grid()
    assert len(huge.sample(5, seed=0)) == 5  # sampled without building the grid
    with pytest.raises(ProjectError, match="at least one -P"):
        SweepSpace.parse({})


def test_a_parallel_sweep_survives_a_failing_child_and_records_the_best(
        cli, demo, tracking, tmp_path):
    barrier = tmp_path / "barrier"
    result = cli("sweep", str(demo), "-e", "sweep", "-P", "x=0.1,0.3,0.5", "-P", "y=1:2",
                 "-P", "fail_on=0.3-1", "-P", f"barrier={barrier}", "--max-parallel", "2",
                 "--metric", "score", "--goal", "min", "--run-name", "grid",
                 "--experiment-name", "sweeps")
    assert result.returncode == 0, result.stderr
    experiment = tracking.get_experiment_by_name("sweeps").experiment_id
    runs = runs_of(tracking, experiment)
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 6 and len(runs) == 7

    by_values = {(c.data.params["x"], c.data.params["y"]): c for c in children}
    assert set(by_values) == {(x, y) for x in ("0.1", "0.3", "0.5") for y in ("1", "2")}
    statuses = {k: c.info.status for k, c in by_values.items()}
    assert statuses.pop(("0.3", "1")) == "FAILED"  # the one failing on purpose …
    assert set(statuses.values()) == {"FINISHED"}  # … and the others went on
    failed = by_values[("0.3", "1")]
    assert failed.data.tags["labtrack.project.exitCode"] == "7"
    assert "failing on purpose" in artifact_text(tracking, failed.info.run_id,
                                                 "logs/output.txt", tmp_path)
    assert sorted(c.info.run_name for c in children) == [f"grid-{i}" for i in range(1, 7)]

    # Two at a time: the first two waited for each other, and never more than two ran.
    concurrency = [c.data.metrics["concurrent"] for c in children]
    assert max(concurrency) == 2 and min(concurrency) >= 1

    # The best child: lowest score among the children that succeeded ((0.3, 1) failed).
    best = by_values[("0.1", "1")]
    assert best.data.metrics["score"] == pytest.approx(1.04)
    assert parent.info.status == "FINISHED" and parent.info.run_name == "grid"
    tags = parent.data.tags
    assert tags["labtrack.sweep.bestRunId"] == best.info.run_id
    assert float(tags["labtrack.sweep.bestValue"]) == pytest.approx(1.04)
    assert json.loads(tags["labtrack.sweep.bestParams"])["x"] == "0.1"
    assert tags["labtrack.sweep.succeeded"] == "5" and tags["labtrack.sweep.failed"] == "1"
    assert tags["labtrack.sweep.failedRunIds"] == failed.info.run_id
    assert tags["labtrack.sweep.mode"] == "grid" and tags["labtrack.sweep.maxParallel"] == "2"
    assert tags["mlflow.source.type"] == "PROJECT"
    assert parent.data.metrics == {"score": pytest.approx(1.04)}
    assert parent.data.params["x"] == "0.1,0.3,0.5" and parent.data.params["y"] == "1:2"
    summary = json.loads(artifact_text(tracking, parent.info.run_id, "sweep/summary.json",
                                       tmp_path))
    assert summary["best_run_id"] == best.info.run_id
    assert [c["status"] for c in summary["children"]].count("FAILED") == 1
    assert f"best: run {best.info.run_id} with score=1.04" in result.stderr
    assert "[3/6] failing on purpose for 0.3-1" in result.stderr  # prefixed, on stderr


def test_random_sampling_is_seeded_and_recorded(cli, demo, tracking):
    result = cli("sweep", str(demo), "-e", "sweep", "-P", "x=0.1,0.2,0.3,0.4", "-P", "y=0:9",
                 "--random", "3", "--seed", "11", "--metric", "score", "--goal", "max")
    assert result.returncode == 0, result.stderr
    runs = runs_of(tracking)
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r is not parent]
    assert len(children) == 3
    assert parent.data.tags["labtrack.sweep.mode"] == "random"
    assert parent.data.tags["labtrack.sweep.seed"] == "11"
    expected = SweepSpace.parse({"x": "0.1,0.2,0.3,0.4", "y": "0:9"}).sample(3, 11)
    assert sorted((c.data.params["x"], c.data.params["y"]) for c in children) == \
        sorted((c["x"], c["y"]) for c in expected)
    best = max(children, key=lambda c: c.data.metrics["score"])
    assert parent.data.tags["labtrack.sweep.bestRunId"] == best.info.run_id


def test_a_sweep_where_every_child_fails_ends_failed(cli, demo, tracking):
    result = cli("sweep", str(demo), "-e", "exit", "-P", "code=1:2", "--max-parallel", "2")
    assert result.returncode == 1
    runs = runs_of(tracking)
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert parent.info.status == "FAILED"
    assert sorted(r.info.status for r in runs if r is not parent) == ["FAILED", "FAILED"]
    assert parent.data.tags["labtrack.sweep.failed"] == "2"


def test_every_combination_is_checked_before_anything_runs(cli, demo, tracking):
    result = cli("sweep", str(demo), "-e", "sweep", "-P", "x=0.1,fast", "-P", "y=1")
    assert result.returncode == 2
    assert "Invalid value 'fast' for parameter 'x' (float)" in result.stderr
    assert runs_of(tracking) == []


def test_ctrl_c_stops_every_child_and_ends_the_sweep_killed(child_env, demo, tracking,
                                                            tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "labtrack.cli", "sweep", str(demo), "-e", "sleep",
         "-P", f"state_dir={state}", "-P", "ignore_term=0:1", "--max-parallel", "2",
         "--stop-timeout", "0.5"],
        cwd=tmp_path, env=child_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )
    stdout, stderr = LineReader(process.stdout), LineReader(process.stderr)
    stdout.wait_for(lambda line: line.rstrip().endswith("] ready"), count=2)
    pids = [int(p.read_text()) for p in state.glob("pid-*")]
    assert len(pids) == 2
    process.send_signal(signal.SIGINT)
    assert process.wait(TIMEOUT_S) == 130
    for pid in pids:  # one ignored SIGTERM: it got SIGKILL after the grace period
        wait_until_gone(pid)
    runs = runs_of(tracking)
    assert sorted(r.info.status for r in runs) == ["KILLED"] * 3
    codes = sorted(r.data.tags.get("labtrack.project.exitCode", "") for r in runs)
    assert set(codes) == {"", str(-signal.SIGKILL), str(-signal.SIGTERM)}
    assert "stopping the sweep" in stderr.rest()
    stdout.rest()


def test_help_explains_the_value_grammar(cli):
    result = cli("sweep", "--help")
    assert result.returncode == 0
    for text in ("0.001,0.01,0.1", "3:8", "both included", "--random N", "--max-parallel K",
                 "--metric KEY", "--goal {min,max}", "mlflow.parentRunId",
                 "labtrack.sweep.bestRunId"):
        assert text in result.stdout, text
