"""``labtrack run/sweep --backend ray`` end to end: a real local Ray head node (started once
for the session), real Ray jobs, ``labtrack`` as a real subprocess, a real store or a real
``labtrack server``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import types

import pytest

import labtrack
from tests.projects.conftest import (
    TIMEOUT_S,
    LineReader,
    artifact_text,
    only_run,
    runs_of,
    wait_until_gone,
)


@pytest.fixture(scope="module")
def labtrack_server(tmp_path_factory):
    """A real ``labtrack server`` on loopback, for runs that must outlive ``labtrack run``."""
    import secrets
    import signal
    import socket

    import requests

    base = tmp_path_factory.mktemp("labtrack-server")
    token = secrets.token_hex(8)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABTRACK_", "MLFLOW_"))}
    env.update(LABTRACK_HOME=str(base / "home"))
    log = open(base / "server.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "labtrack.cli", "server", "--host", "127.0.0.1", "--port",
         str(port), "--backend-store-uri", str(base / "store"), "--artifacts-destination",
         str(base / "store" / "artifacts"), "--token", token],
        env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"

    def healthy():
        assert process.poll() is None, (base / "server.log").read_text()
        try:
            return requests.get(f"{url}/health", timeout=5,
                                headers={"Authorization": f"Bearer {token}"}).ok
        except requests.ConnectionError:
            return False

    try:
        wait_for(healthy, interval=0.1)
        yield types.SimpleNamespace(url=url, token=token)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture(scope="module")
def ray_head():
    """A real local Ray head node (127.0.0.1, free ports, its own temp folder), started once
    for these tests and stopped after them, so it does not idle through the rest of the
    suite."""
    from tests.ray_head import start_ray_head  # Ray comes with the test extra

    head = start_ray_head()
    try:
        yield head
    finally:
        head.stop()


@pytest.fixture
def ray_config(ray_head, tmp_path):
    path = tmp_path / "ray.json"
    path.write_text(json.dumps({"address": ray_head.address, "num_cpus": 0.5}))
    return path


def job_client(ray_head):
    from ray.job_submission import JobSubmissionClient

    return JobSubmissionClient(ray_head.address)


def wait_for(condition, timeout=TIMEOUT_S, interval=0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(interval)


def test_a_project_on_ray_logs_into_its_run_and_ends_finished(
        cli, demo, tracking, tmp_path, ray_head, ray_config):
    result = cli("run", str(demo), "-P", "alpha=0.2", "-P", "label=two words",
                 "--backend", "ray", "--backend-config", str(ray_config))
    assert result.returncode == 0, result.stderr
    run = only_run(tracking)
    assert run.info.status == "FINISHED"
    run_id = run.info.run_id
    # The parameters as the job got them: a path inside the project, relative to it.
    assert run.data.params == {"alpha": "0.2", "epochs": "3", "label": "two words",
                               "data": "data/train.csv", "target": "file:///tmp/target"}
    tags = run.data.tags
    job_id = tags["labtrack.ray.jobId"]
    assert tags["mlflow.project.backend"] == "ray"
    assert tags["labtrack.ray.address"] == ray_head.address
    assert tags["mlflow.source.type"] == "PROJECT"
    assert tags["mlflow.source.name"] == str(demo.resolve())
    assert tags["mlflow.project.entryPoint"] == "main"
    assert tags["labtrack.project.name"] == "demo"
    assert tags["labtrack.project.exitCode"] == "0"
    assert tags["label_seen"] == "two words"  # logged by the job, into this run
    losses = [m.value for m in tracking.get_metric_history(run_id, "loss")]
    assert len(losses) == 3 and losses[0] == 70.0
    # The job's driver log was followed on the terminal and saved with the run, and the
    # job saved the command's own output.
    assert f"trained in run {run_id}" in result.stdout
    assert f"Ray job {job_id} on {ray_head.address}" in result.stderr
    assert f"run {run_id} FINISHED (Ray job {job_id} SUCCEEDED, exit code 0)" in result.stderr
    driver = artifact_text(tracking, run_id, "logs/ray-driver.txt", tmp_path)
    assert f"trained in run {run_id}" in driver and "to stderr" in driver
    output = artifact_text(tracking, run_id, "logs/output.txt", tmp_path)
    assert f"trained in run {run_id}" in output
    # It was a real Ray job: the project and labtrack uploaded, the run in its variables.
    info = job_client(ray_head).get_job_info(job_id)
    assert str(info.status.value) == "SUCCEEDED"
    assert info.metadata["labtrack_run_id"] == run_id
    assert info.runtime_env["working_dir"].startswith("gcs://")
    assert len(info.runtime_env["py_modules"]) == 1  # labtrack itself
    assert info.runtime_env["env_vars"]["LABTRACK_RUN_ID"] == run_id
    assert info.runtime_env["env_vars"]["MLFLOW_TRACKING_URI"].startswith("http://127.0.0.1:")
    assert "labtrack.projects.backends.ray_job" in info.entrypoint


def test_a_failing_entry_point_ends_failed_with_the_driver_log(
        cli, demo, tracking, tmp_path, ray_head, ray_config):
    result = cli("run", str(demo), "-e", "exit", "-P", "code=3", "--backend", "ray",
                 "-c", str(ray_config))
    assert result.returncode == 3, result.stderr
    run = only_run(tracking)
    assert run.info.status == "FAILED"
    assert run.data.tags["labtrack.project.exitCode"] == "3"
    assert "exiting with 3" in result.stdout
    driver = artifact_text(tracking, run.info.run_id, "logs/ray-driver.txt", tmp_path)
    assert "exiting with 3" in driver
    info = job_client(ray_head).get_job_info(run.data.tags["labtrack.ray.jobId"])
    assert (str(info.status.value), info.driver_exit_code) == ("FAILED", 3)


def test_a_job_that_fails_before_labtrack_starts_in_it_ends_its_run_failed(
        cli, demo, tracking, tmp_path, ray_head):
    # The job's Python does not exist: the entrypoint never runs, so nothing in the job ends
    # the run; labtrack, following the job, does.
    config = tmp_path / "ray.json"
    config.write_text(json.dumps({"address": ray_head.address, "python": "no-such-python"}))
    result = cli("run", str(demo), "-e", "exit", "-P", "code=0", "-b", "ray", "-c", str(config))
    assert result.returncode == 127, result.stderr
    run = only_run(tracking)
    assert run.info.status == "FAILED"
    assert run.data.tags["labtrack.project.exitCode"] == "127"
    driver = artifact_text(tracking, run.info.run_id, "logs/ray-driver.txt", tmp_path)
    assert "no-such-python" in driver and "not found" in driver


def test_a_stopped_job_ends_killed(child_env, demo, tracking, tmp_path, ray_head, ray_config):
    state = tmp_path / "state"
    state.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "labtrack.cli", "run", str(demo), "-e", "sleep",
         "-P", f"state_dir={state}", "--backend", "ray", "--backend-config", str(ray_config)],
        cwd=tmp_path, env=child_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        out = LineReader(process.stdout)
        out.wait_for(lambda line: line.strip() == "ready")  # the command runs in the job
        run = only_run(tracking)
        assert run.info.status == "RUNNING"
        assert run.data.metrics == {"started": 1.0}
        assert job_client(ray_head).stop_job(run.data.tags["labtrack.ray.jobId"])
        assert process.wait(TIMEOUT_S) == 130
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    with process.stderr:
        stderr = process.stderr.read()
    run = only_run(tracking)
    assert run.info.status == "KILLED", stderr
    assert "Ray job" in stderr and "STOPPED" in stderr
    driver = artifact_text(tracking, run.info.run_id, "logs/ray-driver.txt", tmp_path)
    assert "ready" in driver
    for pid_file in state.glob("pid-*"):  # Ray stopped the command itself too
        wait_until_gone(int(pid_file.read_text()))


def test_ctrl_c_stops_the_job_and_ends_the_run_killed(
        child_env, demo, tracking, tmp_path, ray_head, ray_config):
    import signal

    state = tmp_path / "state"
    state.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "labtrack.cli", "run", str(demo), "-e", "sleep",
         "-P", f"state_dir={state}", "-b", "ray", "-c", str(ray_config)],
        cwd=tmp_path, env=child_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        LineReader(process.stdout).wait_for(lambda line: line.strip() == "ready")
        process.send_signal(signal.SIGINT)
        assert process.wait(TIMEOUT_S) == 130
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    with process.stderr:
        stderr = process.stderr.read()
    assert "stopping Ray job" in stderr
    run = only_run(tracking)
    assert run.info.status == "KILLED", stderr
    info = job_client(ray_head).get_job_info(run.data.tags["labtrack.ray.jobId"])
    assert str(info.status.value) == "STOPPED"
    for pid_file in state.glob("pid-*"):
        wait_until_gone(int(pid_file.read_text()))


def test_a_sweep_on_ray_runs_two_at_a_time_and_records_the_best(
        cli, demo, tracking, tmp_path, ray_head, ray_config):
    barrier = tmp_path / "barrier"
    result = cli("sweep", str(demo), "-e", "sweep", "-P", "x=0.1,0.3", "-P", "y=1:2",
                 "-P", f"barrier={barrier}", "--max-parallel", "2", "--metric", "score",
                 "--goal", "min", "--experiment-name", "ray-sweep",
                 "--backend", "ray", "--backend-config", str(ray_config))
    assert result.returncode == 0, result.stderr
    experiment = tracking.get_experiment_by_name("ray-sweep").experiment_id
    runs = runs_of(tracking, experiment)
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == 4 and len(runs) == 5
    assert all(c.info.status == "FINISHED" for c in children)
    assert all(c.data.tags["mlflow.project.backend"] == "ray" for c in children)
    assert len({c.data.tags["labtrack.ray.jobId"] for c in children}) == 4
    # Two jobs ran at once (each child waits for a second one to have started) and never
    # more than two.
    assert {c.data.metrics["concurrent"] for c in children} <= {1.0, 2.0}
    assert max(c.data.metrics["concurrent"] for c in children) == 2.0
    best = min(children, key=lambda c: c.data.metrics["score"])
    assert (best.data.params["x"], best.data.params["y"]) == ("0.3", "1")
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["labtrack.sweep.bestRunId"] == best.info.run_id
    assert parent.data.tags["mlflow.project.backend"] == "ray"
    assert parent.data.metrics["score"] == best.data.metrics["score"]


def test_async_returns_at_once_and_the_job_ends_its_run(
        demo, tmp_path, ray_head, ray_config, labtrack_server):
    env = {**os.environ, "LABTRACK_TRACKING_URI": labtrack_server.url,
           "LABTRACK_TRACKING_TOKEN": labtrack_server.token}
    result = subprocess.run(
        [sys.executable, "-m", "labtrack.cli", "run", str(demo), "-P", "alpha=0.2",
         "--backend", "ray", "--backend-config", str(ray_config), "--async"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert result.returncode == 0, result.stderr
    server = labtrack.TrackingClient(labtrack_server.url, token=labtrack_server.token)
    (run,) = server.search_runs(["0"], filter_string="tags.`mlflow.project.backend` = 'ray'",
                                max_results=1000)
    run_id, job_id = run.info.run_id, run.data.tags["labtrack.ray.jobId"]
    assert f"ray job logs --address {ray_head.address} --follow {job_id}" in result.stderr
    assert "trained in run" not in result.stdout  # not followed

    def recorded():  # the exit code is the last thing the job's entrypoint records
        current = server.get_run(run_id)
        return current if "labtrack.project.exitCode" in current.data.tags else None

    run = wait_for(recorded)  # the job ends its run itself, on the server
    assert run.info.status == "FINISHED"
    assert run.data.params["alpha"] == "0.2" and run.data.params["data"] == "data/train.csv"
    assert run.data.tags["labtrack.project.exitCode"] == "0"
    losses = [m.value for m in server.get_metric_history(run_id, "loss")]
    assert len(losses) == 3 and losses[0] == 70.0
    output = artifact_text(server, run_id, "logs/output.txt", tmp_path)
    assert f"trained in run {run_id}" in output  # saved by the job itself


def test_async_with_a_local_store_is_refused_before_any_run(
        cli, demo, tracking, ray_config):
    result = cli("run", str(demo), "--backend", "ray", "-c", str(ray_config), "--async")
    assert result.returncode == 2
    assert "--async needs a tracking server the job can reach" in result.stderr
    assert "LABTRACK_TRACKING_URI=http" in result.stderr
    assert runs_of(tracking) == []


def test_backend_configuration_mistakes_create_no_run(cli, demo, tracking, tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        nobody = sock.getsockname()[1]  # nothing listens there once the socket is closed
    cases = [
        ('{"address": "http://127.0.0.1:1", "gpus": 1}', "unknown key 'gpus'"),
        ('{"address": "http://127.0.0.1:1", "num_gpus": "one"}', "'num_gpus' must be"),
        ('{"address": ', "is not valid JSON"),
        ('{"address": "x", "runtime_env": {"working_dir": "."}}', "working_dir"),
        (str(tmp_path / "missing.json"), "does not exist"),
        (json.dumps({"address": f"http://127.0.0.1:{nobody}"}), "Cannot reach the Ray"),
        ('{"address": "http://10.11.12.13:8265"}', "cannot reach a local store"),
    ]
    for config, message in cases:
        result = cli("run", str(demo), "--backend", "ray", "--backend-config", config)
        assert result.returncode == 2, (config, result.stderr)
        assert message in result.stderr, (config, result.stderr)
    result = cli("run", str(demo), "--backend-config", '{"address": "x"}')
    assert result.returncode == 2 and "--backend-config is for --backend ray" in result.stderr
    result = cli("run", str(demo), "--async")
    assert result.returncode == 2 and "--async needs a backend" in result.stderr
    assert runs_of(tracking) == []


# Imports of `ray` fail in the labtrack process, as they would where Ray is not installed.
_WITHOUT_RAY = """
import sys
class NoRay:
    def find_spec(self, name, path=None, target=None):
        if name == "ray" or name.startswith("ray."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, NoRay())
from labtrack.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_without_ray_the_backend_says_how_to_install_it(child_env, demo, tracking, tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", _WITHOUT_RAY, "run", str(demo), "--backend", "ray",
         "--backend-config", '{"address": "http://127.0.0.1:8265"}'],
        cwd=tmp_path, env=child_env, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert result.returncode == 2, result.stderr
    assert 'pip install "labtrack[ray]"' in result.stderr
    assert runs_of(tracking) == []


def test_the_configuration_is_checked_and_turned_into_job_arguments():
    from labtrack.projects.backends.ray import RayConfig, _is_loopback
    from labtrack.projects.spec import ProjectError

    config = RayConfig.parse({"address": "http://head:8265", "num_cpus": 2, "num_gpus": 1,
                              "memory": 8_000_000_000, "resources": {"A100": 1},
                              "runtime_env": {"pip": ["torch"], "env_vars": {"A": "1"}}})
    assert config.entrypoint_resources() == {
        "entrypoint_num_cpus": 2, "entrypoint_num_gpus": 1, "entrypoint_memory": 8_000_000_000,
        "entrypoint_resources": {"A100": 1}}
    assert RayConfig.parse({}).entrypoint_resources() == {}  # Ray's defaults
    for bad, message in [({"memory": 1.5}, "'memory' must be a whole number"),
                         ({"num_cpus": -1}, "'num_cpus' must be a number"),
                         ({"num_gpus": True}, "'num_gpus' must be a number"),
                         ({"resources": {"A100": "one"}}, "'resources' must be an object"),
                         ({"runtime_env": {"env_vars": {"A": 1}}}, "'env_vars' must be"),
                         ({"runtime_env": []}, "'runtime_env' must be an object"),
                         ({"tracking_uri": "/tmp/store"}, "must be an http(s)://"),
                         ({"ship_labtrack": "yes"}, "must be true or false"),
                         ({"adress": "x"}, "unknown key 'adress'")]:
        with pytest.raises(ProjectError, match=re.escape(message)):
            RayConfig.parse(bad)
    assert _is_loopback("http://127.0.0.1:8265") and _is_loopback("http://localhost:8265")
    assert _is_loopback("127.0.0.2:8265") and _is_loopback("http://[::1]:8265")
    assert not _is_loopback("http://ray-head.example.com:8265")
    assert not _is_loopback("http://192.0.2.10:8265")


def test_python_env_requirements_become_the_jobs_pip_and_wheels(tmp_path):
    from labtrack.projects.backends.ray import _add_pip, ray_requirements
    from labtrack.projects.environment import PythonEnv
    from labtrack.projects.spec import ProjectError
    from tests.projects.conftest import build_wheel

    wheel = build_wheel(tmp_path / "wheels")
    (tmp_path / "requirements.txt").write_text("# pinned\nnumpy==2.0  # math\n-r more.txt\n")
    (tmp_path / "more.txt").write_text("pandas>=2\n")
    (tmp_path / "python_env.yaml").write_text(
        "python: \"3.11\"\nbuild_dependencies: [pip]\n"
        f"dependencies: [\"-r requirements.txt\", scikit-learn, wheels/{wheel.name}]\n")
    requirements, wheels = ray_requirements(PythonEnv.load(tmp_path / "python_env.yaml"))
    assert requirements == ["pip", "numpy==2.0", "pandas>=2", "scikit-learn"]
    assert wheels == [wheel.resolve()]

    runtime_env = {"pip": {"packages": ["torch"], "pip_check": False}}
    _add_pip(runtime_env, ["torch", "numpy"])
    assert runtime_env["pip"] == {"packages": ["torch", "numpy"], "pip_check": False}
    with pytest.raises(ProjectError, match="Ray takes one of them"):
        _add_pip({"conda": {"dependencies": ["numpy"]}}, ["numpy"])
    (tmp_path / "python_env.yaml").write_text("dependencies: [\"./src/mypackage\"]\n")
    with pytest.raises(ProjectError, match="build a wheel"):
        ray_requirements(PythonEnv.load(tmp_path / "python_env.yaml"))


def test_a_git_version_is_shipped_as_that_commit(cli, tracking, tmp_path, ray_config):
    from tests.projects.conftest import commit_all, git, init_repo

    repo = tmp_path / "repo"
    init_repo(repo)
    (repo / "MLproject").write_text(
        "name: listing\nentry_points:\n  main:\n    command: \"ls -A\"\n")
    (repo / "committed.txt").write_text("in the commit\n")
    first = commit_all(repo, "first")
    (repo / "later.txt").write_text("a later commit\n")
    commit_all(repo, "second")
    (repo / "uncommitted.txt").write_text("only in the working tree\n")
    result = cli("run", str(repo), "-v", first, "--backend", "ray", "-c", str(ray_config))
    assert result.returncode == 0, result.stderr
    run = only_run(tracking)
    assert run.info.status == "FINISHED"
    assert run.data.tags["mlflow.source.git.commit"] == first
    listing = artifact_text(tracking, run.info.run_id, "logs/output.txt", tmp_path).split()
    # The job's folder is that commit's checkout: not the working tree, no history.
    assert "committed.txt" in listing and "MLproject" in listing
    assert "later.txt" not in listing and "uncommitted.txt" not in listing
    assert ".git" not in listing
    assert git(repo, "status", "--porcelain") == "?? uncommitted.txt"


def test_notebook_project_on_ray_follows_the_job_with_the_live_widget(
        fluent_uri, tmp_path, capfd, ray_head):
    from IPython.testing import globalipapp

    from labtrack.entities import RunStatus
    from labtrack.widgets import LiveRun

    globalipapp.start_ipython()  # the first call starts the global shell (later: None)
    ip = globalipapp.get_ipython()
    ip.run_line_magic("load_ext", "labtrack")
    project = tmp_path / "tiny"
    project.mkdir()
    (project / "MLproject").write_text(
        "name: tiny\nentry_points:\n  main:\n    parameters:\n"
        "      alpha: {type: float, default: 0.1}\n    command: python train.py {alpha}\n")
    (project / "train.py").write_text(
        "import sys\nimport labtrack\nalpha = float(sys.argv[1])\n"
        "for step in range(5):\n    labtrack.log_metric('loss', alpha / (step + 1), step=step)\n"
        "print('trained with', alpha)\n")
    config = tmp_path / "ray.json"
    config.write_text(json.dumps({"address": ray_head.address}))
    labtrack.set_experiment("ray-from-notebook")
    magics = ip.magics_manager.registry["MlrunMagics"]
    try:
        result = ip.run_line_magic(
            "mlrun", f"project {project} -P alpha=0.5 --backend ray --backend-config {config}")
        assert (result.status, result.backend) == (RunStatus.FINISHED, "ray")
        tracking = labtrack.TrackingClient(fluent_uri)
        run = tracking.get_run(result.run_id)
        assert run.info.status == RunStatus.FINISHED
        assert labtrack.get_experiment(run.info.experiment_id).name == "ray-from-notebook"
        assert run.data.tags["mlflow.project.backend"] == "ray"
        assert run.data.tags["labtrack.ray.jobId"] == result.job_id
        assert run.data.metrics == {"loss": 0.1}  # logged by the Ray job, into this run
        captured = capfd.readouterr()
        assert "trained with 0.5" in captured.out, captured.err  # the driver log, streamed
        widget = magics.widgets[-1]
        assert isinstance(widget, LiveRun) and widget.run_id == result.run_id
    finally:
        for widget in magics.widgets:
            widget.close()
