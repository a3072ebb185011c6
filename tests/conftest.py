"""Shared fixtures: every test gets its own SQLite file and artifact folder."""

from __future__ import annotations

import pytest

import labtrack
from labtrack.client import fluent
from labtrack.client import tracking as client_module
from labtrack.services import TrackingService
from labtrack.store import SqliteStore


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """No test may touch the user's real data directory or inherit run/experiment settings."""
    monkeypatch.setenv("LABTRACK_HOME", str(tmp_path / "home"))
    for name in ("LABTRACK_TRACKING_URI", "LABTRACK_RUN_ID", "LABTRACK_EXPERIMENT_NAME",
                 "LABTRACK_EXPERIMENT_ID", "LABTRACK_FLUSH_INTERVAL"):
        monkeypatch.delenv(name, raising=False)
    yield


@pytest.fixture
def store(tmp_path):
    store = SqliteStore(tmp_path / "store" / "labtrack.db")
    yield store
    store.close()


@pytest.fixture
def service(store):
    return TrackingService(store)


@pytest.fixture
def tracking_uri(tmp_path):
    return str(tmp_path / "tracking")


@pytest.fixture
def client(tracking_uri):
    client = labtrack.TrackingClient(tracking_uri)
    yield client
    client.flush()


@pytest.fixture
def fluent_uri(tracking_uri):
    """The fluent API pointed at a fresh store, with no run or experiment left over."""
    labtrack.set_tracking_uri(tracking_uri)
    fluent._experiment_id = None
    yield tracking_uri
    while labtrack.active_run() is not None:
        labtrack.end_run()
    labtrack.set_tracking_uri(None)
    fluent._experiment_id = None


@pytest.fixture(autouse=True)
def _close_backends():
    yield
    with client_module._backends_lock:
        backends = list(client_module._backends.values())
        client_module._backends.clear()
    for backend in backends:
        backend.writer.close()
        dispatcher = getattr(backend.registry, "dispatcher", None)
        if dispatcher is not None:
            dispatcher.wait_idle()
            dispatcher.close()
        store = getattr(backend.service, "store", None)
        if store is not None:
            store.close()
