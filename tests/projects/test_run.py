"""``labtrack run`` end to end: a real subprocess, a real store, real child processes."""

from __future__ import annotations

import signal
import subprocess
import sys

import labtrack
from labtrack.server.embedded import EmbeddedServer
from tests.projects.conftest import (
    TIMEOUT_S,
    LineReader,
    artifact_text,
    commit_all,
    only_run,
    runs_of,
    wait_until_gone,
)


def test_a_run_gets_params_provenance_output_and_metrics(cli, demo, tracking, tmp_path):
    result = cli("run", str(demo), "-P", "alpha=0.2", "-P", "label=two words",
                 "-P", "extra=it's; odd", "--run-name", "first try")
    assert result.returncode == 0, result.stderr
    run = only_run(tracking)
    assert run.info.status == "FINISHED" and run.info.run_name == "first try"
    assert run.data.params == {
        "alpha": "0.2", "epochs": "3", "label": "two words",
        "data": str((demo / "data" / "train.csv").resolve()), "target": "file:///tmp/target",
        "extra": "it's; odd",
    }
    tags = run.data.tags
    assert tags["mlflow.source.type"] == "PROJECT"
    assert tags["mlflow.source.name"] == str(demo.resolve())
    assert tags["mlflow.project.entryPoint"] == "main"
    assert tags["mlflow.project.env"] == "local"
    assert tags["labtrack.project.name"] == "demo"
    assert tags["labtrack.project.exitCode"] == "0"
    assert "mlflow.source.git.commit" not in tags  # not a git repository
    assert tags["label_seen"] == "two words"  # the script saw the value, spaces included
    losses = [m.value for m in tracking.get_metric_history(run.info.run_id, "loss")]
    assert len(losses) == 3 and losses[0] == 70.0  # mean of 5², 8², 11² at w = b = 0
    # The output was streamed to the terminal (stdout to stdout, stderr to stderr) …
    assert f"trained in run {run.info.run_id}" in result.stdout
    assert "extra=['--extra', \"it's; odd\"]" in result.stdout
    assert "to stderr" in result.stderr and "to stderr" not in result.stdout
    assert f"run {run.info.run_id} FINISHED (exit code 0)" in result.stderr
    # … and saved with the run.
    output = artifact_text(tracking, run.info.run_id, "logs/output.txt", tmp_path)
    assert f"trained in run {run.info.run_id}" in output and "to stderr" in output


def test_exit_codes_set_the_status(cli, demo, tracking):
    assert cli("run", str(demo), "-e", "exit", "-P", "code=0").returncode == 0
    failed = cli("run", str(demo), "-e", "exit", "-P", "code=3")
    assert failed.returncode == 3
    assert "exiting with 3" in failed.stdout
    runs = {r.data.params["code"]: r for r in runs_of(tracking)}
    assert runs["0"].info.status == "FINISHED"
    assert runs["3"].info.status == "FAILED"
    assert runs["3"].data.tags["labtrack.project.exitCode"] == "3"
    assert "FAILED (exit code 3)" in failed.stderr


def test_bad_parameters_are_refused_before_any_run_exists(cli, demo, tracking):
    result = cli("run", str(demo), "-P", "alpha=fast")
    assert result.returncode == 2
    assert "Invalid value 'fast' for parameter 'alpha' (float)" in result.stderr
    result = cli("run", str(demo), "-e", "echo")
    assert result.returncode == 2 and "needs a value for parameter 'text'" in result.stderr
    result = cli("run", str(demo), "-e", "nope")
    assert result.returncode == 2 and "no entry point 'nope'" in result.stderr
    result = cli("run", str(demo), "-P", "novalue")
    assert result.returncode == 2 and "-P expects key=value" in result.stderr
    assert runs_of(tracking) == []


def test_git_provenance_in_place_at_a_version_and_dirty(cli, repo, tracking, tmp_path):
    assert cli("run", str(repo.root / "demo"), "-e", "exit", "-P", "code=0").returncode == 0
    assert cli("run", f"{repo.root}#demo", "-v", "feature", "-e", "exit",
               "-P", "code=1").returncode == 1
    (repo.root / "demo" / "exit_with.py").write_text(
        "import sys\nprint('changed')\nsys.exit(int(sys.argv[1]))\n")
    assert cli("run", str(repo.root / "demo"), "-e", "exit", "-P", "code=2").returncode == 2
    runs = {r.data.params["code"]: r for r in runs_of(tracking)}

    clean = runs["0"].data.tags
    assert clean["mlflow.source.git.commit"] == repo.main
    assert clean["mlflow.source.git.branch"] == "main"
    assert clean["mlflow.source.git.repoURL"] == str(repo.root.resolve())
    assert clean["labtrack.source.git.dirty"] == "false"

    versioned = runs["1"].data.tags
    assert versioned["mlflow.source.git.commit"] == repo.feature
    assert versioned["mlflow.source.git.branch"] == "feature"
    assert versioned["labtrack.project.version"] == "feature"
    assert versioned["mlflow.source.name"] == f"{repo.root}#demo"
    assert runs["1"].info.status == "FAILED"

    dirty = runs["2"]
    assert dirty.data.tags["labtrack.source.git.dirty"] == "true"
    assert dirty.data.tags["mlflow.source.git.commit"] == repo.main
    diff = artifact_text(tracking, dirty.info.run_id, "code/uncommitted.diff", tmp_path)
    assert "+print('changed')" in diff
    assert "changed" in artifact_text(tracking, dirty.info.run_id, "logs/output.txt", tmp_path)

    commit = commit_all(repo.root, "commit the change")
    assert cli("run", str(repo.root / "demo"), "-e", "exit", "-P", "code=4").returncode == 4
    latest = {r.data.params["code"]: r for r in runs_of(tracking)}["4"].data.tags
    assert latest["mlflow.source.git.commit"] == commit
    assert latest["labtrack.source.git.dirty"] == "false"


def test_labtrack_and_mlflow_in_the_child_both_log_into_the_launched_run(cli, demo, tracking,
                                                                         tmp_path):
    result = cli("run", str(demo), "-e", "both_clients", "--experiment-name", "clients")
    assert result.returncode == 0, result.stderr
    experiment = tracking.get_experiment_by_name("clients")
    run = only_run(tracking, experiment.experiment_id)
    run_id = run.info.run_id
    assert f"labtrack run {run_id}" in result.stdout
    assert f"mlflow run {run_id}" in result.stdout
    assert "View run" not in result.stdout  # the loopback server's URL is not shown
    assert run.info.status == "FINISHED"
    assert run.data.params == {"from_labtrack": "yes", "from_mlflow": "yes"}
    assert run.data.metrics == {"labtrack_metric": 1.5, "mlflow_metric": 2.5}
    assert run.data.tags["mlflow_tag"] == "set"
    assert run.data.tags["mlflow.source.type"] == "PROJECT"  # mlflow did not overwrite it
    assert artifact_text(tracking, run_id, "mlflow/note.txt", tmp_path) == "written by mlflow"


def test_a_remote_tracking_uri_and_its_token_are_handed_to_the_child(
        cli, demo, child_env, tmp_path):
    store = str(tmp_path / "remote-store")
    labtrack.TrackingClient(store).get_experiment("0")  # create the store
    with EmbeddedServer(store) as server:
        env = {**child_env, "LABTRACK_TRACKING_URI": server.url,
               "LABTRACK_TRACKING_TOKEN": server.token}
        result = cli("run", str(demo), "-e", "both_clients", env=env)
        assert result.returncode == 0, result.stderr
    run = only_run(labtrack.TrackingClient(store))
    assert run.data.params == {"from_labtrack": "yes", "from_mlflow": "yes"}
    assert run.data.metrics == {"labtrack_metric": 1.5, "mlflow_metric": 2.5}
    assert run.info.status == "FINISHED"
    output = artifact_text(labtrack.TrackingClient(store), run.info.run_id, "logs/output.txt",
                           tmp_path)
    assert f"mlflow run {run.info.run_id}" in output


def test_scripts_run_as_entry_points(cli, demo, tracking, tmp_path):
    result = cli("run", str(demo), "-e", "hello.py", "-P", "who=the tests")
    assert result.returncode == 0, result.stderr
    assert "hello from a script --who the tests" in result.stdout
    result = cli("run", str(demo), "-e", "hello.sh", "-P", "n=1")
    assert result.returncode == 0, result.stderr
    assert "hello from sh --n 1" in result.stdout
    entry_points = sorted(r.data.tags["mlflow.project.entryPoint"] for r in runs_of(tracking))
    assert entry_points == ["hello.py", "hello.sh"]


def _start_sleeper(child_env, demo, tmp_path, ignore_term: str, *extra: str):
    state = tmp_path / "state"
    state.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "labtrack.cli", "run", str(demo), "-e", "sleep",
         "-P", f"state_dir={state}", "-P", f"ignore_term={ignore_term}", *extra],
        cwd=tmp_path, env=child_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )
    stdout, stderr = LineReader(process.stdout), LineReader(process.stderr)
    # "ready" arrives while the child still runs: its output is streamed, not collected.
    stdout.wait_for(lambda line: line.strip() == "ready")
    (pid_file,) = state.glob("pid-*")
    return process, int(pid_file.read_text()), stdout, stderr


def test_ctrl_c_stops_the_child_and_ends_the_run_killed(child_env, demo, tracking, tmp_path):
    process, child_pid, stdout, stderr = _start_sleeper(child_env, demo, tmp_path, "0")
    process.send_signal(signal.SIGINT)
    assert process.wait(TIMEOUT_S) == 130
    wait_until_gone(child_pid)
    run = only_run(tracking)
    assert run.info.status == "KILLED"
    assert run.data.metrics == {"started": 1.0}  # what the child logged before is kept
    assert run.data.tags["labtrack.project.exitCode"] == str(-signal.SIGTERM)
    assert "ready" in artifact_text(tracking, run.info.run_id, "logs/output.txt", tmp_path)
    assert f"run {run.info.run_id} KILLED" in stderr.rest()
    stdout.rest()


def test_a_child_ignoring_sigterm_is_killed_after_the_grace_period(child_env, demo, tracking,
                                                                   tmp_path):
    process, child_pid, stdout, stderr = _start_sleeper(
        child_env, demo, tmp_path, "1", "--stop-timeout", "0.5")
    process.send_signal(signal.SIGINT)
    assert process.wait(TIMEOUT_S) == 130
    wait_until_gone(child_pid)
    run = only_run(tracking)
    assert run.info.status == "KILLED"
    assert run.data.tags["labtrack.project.exitCode"] == str(-signal.SIGKILL)
    stdout.rest(), stderr.rest()


def test_sigterm_to_labtrack_run_also_ends_the_run_killed(child_env, demo, tracking, tmp_path):
    process, child_pid, stdout, stderr = _start_sleeper(child_env, demo, tmp_path, "0")
    process.send_signal(signal.SIGTERM)
    assert process.wait(TIMEOUT_S) == 130
    wait_until_gone(child_pid)
    assert only_run(tracking).info.status == "KILLED"
    stdout.rest(), stderr.rest()


def test_help_explains_the_command(cli):
    result = cli("run", "--help")
    assert result.returncode == 0
    for text in ("-P KEY=VALUE", "--env-manager {local,virtualenv}", "--experiment-name",
                 "-v VERSION", "#subdir", "logs/output.txt", "MLFLOW_RUN_ID", "KILLED"):
        assert text in result.stdout, text
