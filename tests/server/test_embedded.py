"""``EmbeddedServer``: the REST API of a local store on a loopback port, in a background thread
of this process — synchronous clients in the calling thread work against it."""

from __future__ import annotations

import pytest
import requests

import labtrack
from labtrack.server.embedded import EmbeddedServer

MLFLOW = "/api/2.0/mlflow"


def test_it_serves_the_store_with_its_token_and_stops(tmp_path, monkeypatch):
    store = str(tmp_path / "store")
    local = labtrack.TrackingClient(store)
    experiment = local.create_experiment("embedded")
    with EmbeddedServer(store) as server:
        assert server.url.startswith("http://127.0.0.1:") and server.port > 0
        auth = {"Authorization": f"Bearer {server.token}"}
        reply = requests.get(f"{server.url}{MLFLOW}/experiments/get-by-name",
                             params={"experiment_name": "embedded"}, headers=auth, timeout=30)
        assert reply.status_code == 200
        assert reply.json()["experiment"]["experiment_id"] == experiment
        assert requests.get(f"{server.url}{MLFLOW}/experiments/get", timeout=30,
                            params={"experiment_id": experiment}).status_code == 401
        wrong = {"Authorization": "Bearer not-the-token"}
        assert requests.get(f"{server.url}{MLFLOW}/experiments/get", headers=wrong,
                            params={"experiment_id": experiment}, timeout=30).status_code == 401

        # labtrack's own HTTP client, synchronous, in this thread: writes land in the store.
        monkeypatch.setenv("LABTRACK_TRACKING_TOKEN", server.token)
        remote = labtrack.TrackingClient(server.url)
        run = remote.create_run(experiment, run_name="over http")
        remote.log_metric(run.info.run_id, "m", 0.5)
        remote.log_text(run.info.run_id, "through the proxy", "notes/a.txt")
        url = server.url
    stored = local.get_run(run.info.run_id)
    assert stored.data.metrics == {"m": 0.5} and stored.info.run_name == "over http"
    assert local.download_artifacts(run.info.run_id, "notes/a.txt", tmp_path / "d")
    assert (tmp_path / "d" / "a.txt").read_text() == "through the proxy"
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/health", timeout=5)


def test_each_server_gets_its_own_port_and_random_token(tmp_path):
    store = str(tmp_path / "store")
    labtrack.TrackingClient(store).get_experiment("0")
    with EmbeddedServer(store) as first, EmbeddedServer(store) as second:
        assert first.port != second.port and first.token != second.token
        assert len(first.token) >= 32
        reply = requests.get(f"{second.url}{MLFLOW}/experiments/get", timeout=30,
                             params={"experiment_id": "0"},
                             headers={"Authorization": f"Bearer {first.token}"})
        assert reply.status_code == 401


def test_stop_is_idempotent_and_a_server_starts_once(tmp_path):
    server = EmbeddedServer(str(tmp_path / "store"), token="chosen").start()
    try:
        assert server.token == "chosen"
        with pytest.raises(RuntimeError, match="already started"):
            server.start()
    finally:
        server.stop()
    server.stop()
    with pytest.raises(RuntimeError, match="not started"):
        _ = EmbeddedServer(str(tmp_path / "store")).url
