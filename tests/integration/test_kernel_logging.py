"""End to end: a kernel started by Jupyter logs into the store the server extension hosts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import requests
from jupyter_client import BlockingKernelClient

from tests.standalone_server import free_port

TOKEN = "kernel-test-token"



@pytest.fixture
def jupyter_server(tmp_path):
    port = free_port()
    runtime = tmp_path / "runtime"
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(runtime), "LABTRACK_HOME": str(tmp_path)}
    env.pop("LABTRACK_TRACKING_URI", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root",
         f"--port={port}", f"--IdentityProvider.token={TOKEN}",
         f"--ServerApp.root_dir={tmp_path}", f"--LabTrack.tracking_uri={tmp_path / 'store'}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    url = f"http://127.0.0.1:{port}"
    session = requests.Session()
    session.headers["Authorization"] = f"token {TOKEN}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if session.get(f"{url}/api/status", timeout=5).ok:
                break
        except requests.ConnectionError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            errors = process.communicate()[1]
            pytest.fail(f"jupyter server did not start: {errors}")
        time.sleep(0.2)
    yield url, session, runtime, tmp_path / "store"
    session.close()
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    process.stderr.close()


def run_in_kernel(client: BlockingKernelClient, code: str) -> str:
    output: list[str] = []

    def collect(message):
        if message["msg_type"] == "stream":
            output.append(message["content"]["text"])
        elif message["msg_type"] == "error":
            output.append("\n".join(message["content"]["traceback"]))

    reply = client.execute_interactive(code, timeout=120, output_hook=collect)
    assert reply["content"]["status"] == "ok", "".join(output)
    return "".join(output)


def test_a_kernel_started_by_jupyter_logs_where_the_server_reads(jupyter_server):
    url, session, runtime, store = jupyter_server
    kernel = session.post(f"{url}/api/kernels", json={"name": "python3"}, timeout=60).json()
    client = BlockingKernelClient(connection_file=str(runtime / f"kernel-{kernel['id']}.json"))
    client.load_connection_file()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=120)
        printed = run_in_kernel(client, (
            "import labtrack\n"
            "print(labtrack.get_tracking_uri())\n"
            "labtrack.set_experiment('from-a-notebook')\n"
            "with labtrack.start_run(run_name='in-kernel'):\n"
            "    for step in range(100):\n"
            "        labtrack.log_metric('acc', step / 100, step=step)\n"
        ))
    finally:
        client.stop_channels()
        session.delete(f"{url}/api/kernels/{kernel['id']}", timeout=30)
    assert printed.strip() == f"sqlite:///{store / 'labtrack.db'}"
    api = f"{url}/labtrack/api/2.0/mlflow"
    experiment = session.get(f"{api}/experiments/get-by-name",
                             params={"experiment_name": "from-a-notebook"}).json()["experiment"]
    runs = session.post(f"{api}/runs/search", json={
        "experiment_ids": [experiment["experiment_id"]]}).json()["runs"]
    assert [r["info"]["run_name"] for r in runs] == ["in-kernel"]
    assert runs[0]["info"]["status"] == "FINISHED"
    assert runs[0]["data"]["metrics"] == [
        {"key": "acc", "value": 0.99, "timestamp": runs[0]["data"]["metrics"][0]["timestamp"],
         "step": 99}]
    history = session.get(f"{api}/metrics/get-history", params={
        "run_id": runs[0]["info"]["run_id"], "metric_key": "acc"}).json()["metrics"]
    assert [m["step"] for m in history] == list(range(100))
    assert json.loads(json.dumps(history))  # plain JSON, no NaN tokens
