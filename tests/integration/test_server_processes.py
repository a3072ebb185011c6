"""A central server for a team, three ways: four ``labtrack server`` processes on one
PostgreSQL database, started at the same moment (so they also race to build the schema), and
one ``labtrack server --workers 4`` on PostgreSQL and on SQLite. Sixteen client processes log
runs and register versions of one shared model through them at once.

Nothing may fail or go missing, and the shared model's version numbers must be unique and
contiguous although four processes hand them out. With ``--workers``, the responses come from
several workers; SIGTERM to the parent stops them all; and each webhook event — also those
left pending in the store before the workers started — is delivered exactly once.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

from labtrack import webhooks
from labtrack.entities import DeliveryStatus, ViewType, WebhookEvent, WebhookStatus
from labtrack.store import open_store
from tests.postgres_cluster import postgres_schema_url
from tests.services.test_webhooks import Receiver
from tests.standalone_server import free_port

pytestmark = pytest.mark.slow

SERVERS = 4
WORKERS = 4
CLIENTS = 16
STEPS = 100  # points per metric and client, flushed in two batches
VERSIONS_PER_CLIENT = 5
START_TIMEOUT_S = 120
WORKER_LINE = re.compile(r"\[worker (\d+)/\d+ pid (\d+)\] labtrack\.server labtrack \S+ serving")

CLIENT_SCRIPT = """
import json, sys
import labtrack

url, token, experiment_id = sys.argv[1], sys.argv[2], sys.argv[3]
index, steps, versions = (int(a) for a in sys.argv[4:7])
client = labtrack.TrackingClient(url, token=token)
workers = set()  # the server processes that answered (X-Labtrack-Worker)
client._service.session.hooks["response"].append(
    lambda response, *args, **kwargs: workers.add(response.headers.get("X-Labtrack-Worker")))
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
print(json.dumps({"run_id": run_id, "versions": numbers, "workers": sorted(workers)}))
"""


def _environment(tmp_path: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("LABTRACK_", "MLFLOW_"))}
    env["LABTRACK_HOME"] = str(tmp_path / "home")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _store_url(kind: str, request, tmp_path: Path) -> str:
    if kind == "postgres":
        return postgres_schema_url(request.getfixturevalue("postgres_url"), "team")
    return str(tmp_path / "store")


def _start_server(tmp_path: Path, name: str, store_url: str, token: str, port: int,
                  *options: str) -> tuple[subprocess.Popen, Path]:
    log_path = tmp_path / f"{name}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", "import sys; from labtrack.cli import main; "
             "sys.exit(main(sys.argv[1:]))", "server", "--host", "127.0.0.1",
             "--port", str(port), "--backend-store-uri", store_url,
             "--artifacts-destination", str(tmp_path / "artifacts"), "--token", token,
             *options],
            env=_environment(tmp_path), stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
    return process, log_path


def _stop(process: subprocess.Popen) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def _wait_until_healthy(process: subprocess.Popen, base: str, token: str,
                        logs: list[Path]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert process.poll() is None, "a server exited at start:\n" + "\n".join(
            p.read_text(errors="replace") for p in logs)
        try:
            answer = requests.get(f"{base}/health", timeout=5,
                                  headers={"Authorization": f"Bearer {token}"})
            if answer.status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{base} never became healthy")


def _worker_pids(log_path: Path, expected: int) -> dict[int, int]:
    """pid → worker index of the workers that said they serve, once ``expected`` did."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        found = {int(pid): int(index)
                 for index, pid in WORKER_LINE.findall(log_path.read_text(errors="replace"))}
        if len(found) >= expected:
            return found
        time.sleep(0.1)
    raise AssertionError(f"fewer than {expected} workers started:\n{log_path.read_text()}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(params=["postgres-4-servers", "postgres-workers", "sqlite-workers"])
def servers(request, tmp_path):
    """Four server processes, started together on one new store: separate servers, or the
    workers of one ``labtrack server --workers 4``. Yields the store URL, the token, the
    URLs clients use, and the worker pids (``None`` for separate servers)."""
    kind, _, shape = request.param.partition("-")
    url = _store_url(kind, request, tmp_path)
    token = secrets.token_hex(16)
    started = []
    if shape == "workers":
        port = free_port()
        started.append(_start_server(tmp_path, "server", url, token, port,
                                     "--workers", str(WORKERS)))
        urls = [f"http://127.0.0.1:{port}"]
    else:
        ports = [free_port() for _ in range(SERVERS)]
        started = [_start_server(tmp_path, f"server-{i}", url, token, port)
                   for i, port in enumerate(ports)]
        urls = [f"http://127.0.0.1:{port}" for port in ports]
    logs = [log for _, log in started]
    try:
        for (process, _), base in zip(started, urls):
            _wait_until_healthy(process, base, token, logs)
        pids = _worker_pids(logs[0], WORKERS) if shape == "workers" else None
        yield url, token, urls, pids
    finally:
        codes = [_stop(process) for process, _ in started]
    for log in logs:
        text = log.read_text(errors="replace")
        assert "Traceback" not in text, text
    assert codes == [0] * len(started), "\n".join(log.read_text() for log in logs)


def test_sixteen_clients_through_four_server_processes(servers, tmp_path):
    import labtrack

    store_url, token, urls, worker_pids = servers
    setup = labtrack.TrackingClient(urls[0], token=token)
    experiment_id = setup.create_experiment("team")
    setup.create_registered_model("shared")

    clients = [
        subprocess.Popen([sys.executable, "-c", CLIENT_SCRIPT, urls[i % len(urls)], token,
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
    if worker_pids is not None:
        answered = {int(pid) for result in results for pid in result["workers"]}
        assert answered <= set(worker_pids), (answered, worker_pids)
        assert len(answered) > 1, answered

    # Read back from the database itself: every run, param, point and version is there.
    store = open_store(store_url)
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


def test_sigterm_to_the_parent_stops_every_worker_and_a_dead_worker_is_replaced(tmp_path):
    token = secrets.token_hex(16)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process, log = _start_server(tmp_path, "server", str(tmp_path / "store"), token, port,
                                 "--workers", str(WORKERS))
    try:
        _wait_until_healthy(process, base, token, [log])
        pids = _worker_pids(log, WORKERS)
        assert len(pids) == WORKERS and all(_alive(pid) for pid in pids)

        # A worker that dies is replaced by a new process with the same index.
        victim = next(pid for pid, index in pids.items() if index == 2)
        os.kill(victim, signal.SIGKILL)
        replacement = next(pid for pid, index in _worker_pids(log, WORKERS + 1).items()
                           if index == 2 and pid != victim)
        assert _alive(replacement) and not _alive(victim)
        _wait_until_healthy(process, base, token, [log])
    finally:
        code = _stop(process)
    assert code == 0, log.read_text()
    assert not any(_alive(pid) for pid in (*pids, replacement))
    text = log.read_text()
    assert "all workers stopped" in text
    assert f"worker 2 (pid {victim}) died" in text


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_each_webhook_event_is_delivered_once_by_four_workers(kind, request, tmp_path):
    store_url = _store_url(kind, request, tmp_path)
    secret = "hook-secret"
    left_over = [f"left-over-{i}" for i in range(12)]
    created = [f"model-{i}" for i in range(24)]
    receiver = Receiver()
    # A registry-wide webhook, and deliveries a previous server left pending.
    store = open_store(store_url, tmp_path / "artifacts")
    try:
        hook = store.create_webhook(
            "hook", None, [WebhookEvent.REGISTERED_MODEL_CREATED], receiver.url, secret,
            WebhookStatus.ACTIVE, "", False, int(time.time() * 1000))
        for delivery_id in left_over:
            store.create_delivery(delivery_id, hook.id, WebhookEvent.REGISTERED_MODEL_CREATED,
                                  json.dumps({"event": "REGISTERED_MODEL_CREATED",
                                              "model_name": delivery_id}), 1)
    finally:
        store.close()

    token = secrets.token_hex(16)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process, log = _start_server(tmp_path, "server", store_url, token, port,
                                 "--workers", str(WORKERS),
                                 "--webhook-allowed-host", "127.0.0.1")
    try:
        _wait_until_healthy(process, base, token, [log])
        for name in created:  # a new connection each: the requests spread over the workers
            answer = requests.post(f"{base}/api/2.0/mlflow/registered-models/create",
                                   json={"name": name}, timeout=30,
                                   headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 200, answer.text
        store = open_store(store_url)
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while True:
                deliveries = store.list_deliveries(hook.id, 1000)
                if all(d.status == DeliveryStatus.DELIVERED for d in deliveries):
                    break
                assert time.monotonic() < deadline, deliveries
                time.sleep(0.1)
        finally:
            store.close()
    finally:
        code = _stop(process)
        receiver.close()
    assert code == 0, log.read_text()
    assert "Traceback" not in log.read_text()

    assert len(deliveries) == len(left_over) + len(created)
    received = Counter(headers[webhooks.DELIVERY_ID_HEADER] for headers, _ in receiver.received)
    assert received == Counter(d.id for d in deliveries)  # every delivery, each once
    assert set(left_over) <= set(received)
    names = sorted(json.loads(body)["model_name"] for _, body in receiver.received)
    assert names == sorted(left_over + created)
    for headers, body in receiver.received:
        assert webhooks.verify_signature(secret, headers, body)
