"""Fixtures for model packaging and serving: a fresh store for the fluent API, training data,
scoring servers on 127.0.0.1, and a real ``labtrack server`` for the REST round trips.

``mlflow`` (the real package, for the round trips) is imported once, here, with its telemetry
off and outside pytest's warnings-are-errors filter, as the compat tests do.
"""

from __future__ import annotations

import os
import secrets
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests import standalone_server

MLFLOW_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
              "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "120"}
_saved = dict(os.environ)
os.environ.update(MLFLOW_ENV)
try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import mlflow  # noqa: F401
        import mlflow.models  # noqa: F401
        import mlflow.pyfunc  # noqa: F401
        import mlflow.sklearn  # noqa: F401
        import sklearn.ensemble  # noqa: F401
        import sklearn.linear_model  # noqa: F401
        import sklearn.metrics  # noqa: F401
finally:
    os.environ.clear()
    os.environ.update(_saved)

# Warnings raised inside third-party code a test drives (mlflow loading a model, scikit-learn
# fitting) are not labtrack's.
THIRD_PARTY_WARNINGS = ["ignore:::mlflow", "ignore:::sklearn", "ignore:::pydantic",
                        "ignore:::cloudpickle", "ignore:::google.protobuf"]
START_TIMEOUT_S = 120


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            for spec in THIRD_PARTY_WARNINGS:
                item.add_marker(pytest.mark.filterwarnings(spec))


@pytest.fixture
def mlflow_env(monkeypatch):
    """The stock mlflow client's settings for one test (telemetry off, no retries)."""
    for key, value in MLFLOW_ENV.items():
        monkeypatch.setenv(key, value)
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture
def frame():
    return pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [10.0, 20.0, 30.0]})


@pytest.fixture
def classification():
    rng = np.random.default_rng(7)
    features = rng.random((60, 3))
    labels = (features[:, 0] + 0.5 * features[:, 1] > 0.75).astype(int)
    return features, labels


@pytest.fixture
def serve():
    """``serve(models=…, variants=…, **options)``: a scoring server on 127.0.0.1 on a free
    port, in a background thread; stopped at the end of the test."""
    from labtrack.models.scoring import build_server

    servers = []

    def start(**options):
        options.setdefault("port", 0)
        server = build_server(**options).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def wait_for(condition, timeout=60.0, interval=0.05):
    """Poll ``condition()`` until it is truthy (bounded); returns its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


@dataclass
class LabtrackServer:
    url: str
    token: str
    store: Path


@pytest.fixture(scope="module")
def labtrack_server(tmp_path_factory):
    """A real ``labtrack server`` subprocess on loopback (module-scoped)."""
    base = tmp_path_factory.mktemp("labtrack-server")
    store = base / "store"
    token = secrets.token_hex(8)
    with standalone_server.labtrack_server(
            base, ["--backend-store-uri", str(store), "--artifacts-destination",
                   str(store / "artifacts"), "--token", token], token,
            START_TIMEOUT_S) as url:
        yield LabtrackServer(url, token, store)
