"""A central server for a team: four ``labtrack server`` processes on one PostgreSQL database,
started at the same moment (so they also race to build the schema), and sixteen client
processes logging runs and registering versions of one shared model through them at once.

Nothing may fail or go missing, and the shared model's version numbers must be unique and
contiguous although four processes hand them out.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from labtrack.entities import ViewType
from labtrack.store.postgres import PostgresStore
from tests.postgres_cluster import postgres_schema_url

pytestmark = pytest.mark.slow

SERVERS = 4
CLIENTS = 16
STEPS = 100  # points per metric and client, flushed in two batches
VERSIONS_PER_CLIENT = 5
START_TIMEOUT_S = 120

CLIENT_SCRIPT = """
import json, sys
import labtrack

url, token, experiment_id = sys.argv[1], sys.argv[2], sys.argv[3]
index, steps, versions = (int(a) for a in sys.argv[4:7])
client = labtrack.TrackingClient(url, token=token)
run_id = client.create_run(experiment_id, tags={"client": str(index)}).info.run_id
for k in range(5):
    client.log_param(run_id, f"p{k}", f"{index}-{k}")
for step in range(steps):
    client.log_metric(run_id, "loss", 1.0 / (step + 1) + index, step=step)
    client.log_metric(run_id, "acc", step / steps, step=step)
    if step % 50 == 49:
        client.flush()
client.set_terminated(run_id)
numbers = [client.create_model_version("shared", f"runs:/{run_id}/model", run_id).version
           for _ in range(versions)]
print(json.dumps({"run_id": run_id, "versions": numbers}))
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _environment(tmp_path: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("LABTRACK_", "MLFLOW_"))}
    env["LABTRACK_HOME"] = str(tmp_path / "home")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def servers(postgres_url, tmp_path):
    """Four server processes on one new schema, all started before any is waited for."""
    url = postgres_schema_url(postgres_url, "team")
    token = secrets.token_hex(16)
    processes, urls = [], []
    for index in range(SERVERS):
        port = _free_port()
        log = open(tmp_path / f"server-{index}.log", "wb")  # noqa: SIM115 - closed below
        processes.append((subprocess.Popen(
            [sys.executable, "-c", "import sys; from labtrack.cli import main; "
             "sys.exit(main(sys.argv[1:]))", "server", "--host", "127.0.0.1",
             "--port", str(port), "--backend-store-uri", url,
             "--artifacts-destination", str(tmp_path / "artifacts"), "--token", token],
            env=_environment(tmp_path), stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL), log))
        urls.append(f"http://127.0.0.1:{port}")
    try:
        for (process, _), base in zip(processes, urls):
            _wait_until_healthy(process, base, token, tmp_path)
        yield url, token, urls
    finally:
        for process, log in processes:
            _stop(process)
            log.close()
    for index in range(SERVERS):
        text = (tmp_path / f"server-{index}.log").read_text(errors="replace")
        assert "Traceback" not in text, text


def _wait_until_healthy(process: subprocess.Popen, base: str, token: str,
                        tmp_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert process.poll() is None, "a server exited at start:\n" + "\n".join(
            p.read_text(errors="replace") for p in tmp_path.glob("server-*.log"))
        try:
            answer = requests.get(f"{base}/health", timeout=5,
                                  headers={"Authorization": f"Bearer {token}"})
            if answer.status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{base} never became healthy")


def test_sixteen_clients_through_four_server_processes(servers, tmp_path):
    import labtrack

    store_url, token, urls = servers
    setup = labtrack.TrackingClient(urls[0], token=token)
    experiment_id = setup.create_experiment("team")
    setup.create_registered_model("shared")

    clients = [
        subprocess.Popen([sys.executable, "-c", CLIENT_SCRIPT, urls[i % SERVERS], token,
                          experiment_id, str(i), str(STEPS), str(VERSIONS_PER_CLIENT)],
                         env=_environment(tmp_path), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for i in range(CLIENTS)
    ]
    results = []
    for client in clients:
        out, err = client.communicate(timeout=600)
        assert client.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))

    handed_out = [int(v) for result in results for v in result["versions"]]
    assert sorted(handed_out) == list(range(1, CLIENTS * VERSIONS_PER_CLIENT + 1))

    # Read back from the database itself: every run, param, point and version is there.
    store = PostgresStore(store_url)
    try:
        runs = store.search_runs([experiment_id], [], [], ViewType.ALL, 100, 0)
        assert sorted(r.info.run_id for r in runs) == sorted(r["run_id"] for r in results)
        for run in runs:
            index = run.data.tags["client"]
            assert run.info.status == "FINISHED"
            assert run.data.params == {f"p{k}": f"{index}-{k}" for k in range(5)}
            for key in ("loss", "acc"):
                history = store.get_metric_history(run.info.run_id, key)
                assert [m.step for m in history] == list(range(STEPS))
            assert run.data.metrics["acc"] == (STEPS - 1) / STEPS
        model = store.get_registered_model("shared")
        assert model is not None
        versions = store.search_model_versions([], [], 1000, 0)
        assert sorted(int(v.version) for v in versions if v.name == "shared") == sorted(
            handed_out)
        by_run = {}
        for version in versions:
            by_run.setdefault(version.run_id, []).append(version.version)
        assert {run_id: sorted(numbers, key=int) for run_id, numbers in by_run.items()} == {
            r["run_id"]: sorted(r["versions"], key=int) for r in results}
    finally:
        store.close()
