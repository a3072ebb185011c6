"""Wire compatibility with the stock ``mlflow`` client, against real labtrack servers.

Both hosts run as subprocesses on free loopback ports — the Jupyter server extension (mounted
at ``/labtrack``, the Jupyter token as bearer token) and ``labtrack server``, on SQLite and
again on PostgreSQL (``standalone-postgres``) — because the
mlflow client is synchronous: an in-process server on the test's event loop would deadlock.
Each server is started once per session and shared; tests isolate themselves with
uuid-suffixed experiment names.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import requests

from tests.compat.helpers import RawApi, TrackingServer, unique
from tests.postgres_cluster import postgres_schema_url
from tests.standalone_server import free_port

# mlflow decides about its telemetry client when imported, so these must be in the environment
# during the import below; afterwards the environment is restored (other test folders start
# kernels and subprocesses that must not inherit them). The servers get them explicitly and
# the ``mlflow_client`` fixture sets them per test through monkeypatch.
CLIENT_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",  # a failing call fails at once
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "120",
}
_saved_environ = dict(os.environ)
os.environ.update(CLIENT_ENV)

# Importing mlflow, its flavors and scikit-learn is slow and warns (pydantic type hints,
# deprecations); do it once, here, outside pytest's "warnings are errors" filter.
try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import matplotlib

        matplotlib.use("Agg")  # this process only: figures are drawn off-screen
        import matplotlib.pyplot  # noqa: F401
        import mlflow
        import mlflow.artifacts
        import mlflow.data
        import mlflow.data.pandas_dataset
        import mlflow.entities
        import mlflow.exceptions
        import mlflow.pyfunc
        import mlflow.sklearn
        import mlflow.tracking._tracking_service.utils
        import mlflow.tracking.fluent
        import mlflow.utils.request_utils
        import numpy  # noqa: F401
        import pandas  # noqa: F401
        import sklearn.linear_model  # noqa: F401
finally:
    os.environ.clear()
    os.environ.update(_saved_environ)

# Warnings raised inside third-party code while a test drives it (mlflow's autologging,
# scikit-learn's metric renames, matplotlib) are not labtrack's; labtrack itself runs in the
# server subprocesses, whose warnings never reach this interpreter.
THIRD_PARTY_WARNINGS = [
    "ignore:::mlflow",
    "ignore:::sklearn",
    "ignore:::matplotlib",
    "ignore:::pandas",
    "ignore:::numpy",
    "ignore:::pydantic",
    "ignore:::cloudpickle",
    "ignore:::google.protobuf",
    "ignore:::importlib",
]

START_TIMEOUT_S = 120
STOP_TIMEOUT_S = 20


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            for spec in THIRD_PARTY_WARNINGS:
                item.add_marker(pytest.mark.filterwarnings(spec))



def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _wait_until_ready(process: subprocess.Popen, url: str, headers: dict, log: Path) -> bool:
    """True once ``url`` answers 200; False if the process died (e.g. the port was taken)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            if requests.get(url, headers=headers, timeout=5).status_code == 200:
                return True
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    _stop(process)
    raise RuntimeError(f"Server did not answer {url} in time; log:\n{log.read_text()}")


def _environment(base: Path) -> dict[str, str]:
    env = {**os.environ, **CLIENT_ENV}
    for name in ("LABTRACK_TRACKING_URI", "LABTRACK_TRACKING_TOKEN", "LABTRACK_RUN_ID",
                 "LABTRACK_EXPERIMENT_NAME", "LABTRACK_EXPERIMENT_ID", "MLFLOW_TRACKING_URI",
                 "MLFLOW_TRACKING_TOKEN", "LABTRACK_SERVER_TOKEN"):
        env.pop(name, None)
    env.update(
        LABTRACK_HOME=str(base / "home"),
        JUPYTER_CONFIG_DIR=str(base / "jupyter-config"),
        JUPYTER_DATA_DIR=str(base / "jupyter-data"),
        JUPYTER_RUNTIME_DIR=str(base / "jupyter-runtime"),
        PYTHONUNBUFFERED="1",
    )
    return env


def _command(kind: str, port: int, token: str, base: Path, store: Path,
             s3_root: str | None, s3_endpoint_url: str | None, backend_uri: str) -> list[str]:
    bin_dir = Path(sys.executable).parent
    if kind == "jupyter":
        return [
            str(bin_dir / "jupyter"), "server", "--no-browser", "--allow-root",
            "--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={base / 'root'}",
            f"--LabTrack.tracking_uri={store}",
            f"--LabTrack.artifacts_destination={store / 'artifacts'}",
        ]
    artifacts = ["--artifacts-destination", s3_root, "--s3-endpoint-url", s3_endpoint_url] \
        if s3_root else ["--artifacts-destination", str(store / "artifacts")]
    return [
        str(bin_dir / "labtrack"), "server", "--host", "127.0.0.1", "--port", str(port),
        "--backend-store-uri", backend_uri, *artifacts, "--token", token,
    ]


def _start(kind: str, base: Path, s3=None, backend_uri: str | None = None):
    """Start one server (``s3``: the S3 endpoint of a server keeping artifacts in S3;
    ``backend_uri``: its database, default SQLite in ``base/store``); returns
    (process, TrackingServer). Retries if the port was taken."""
    store = base / "store"
    store.mkdir(parents=True, exist_ok=True)
    (base / "root").mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(16)
    s3_root = s3.fresh_root() if s3 is not None else None
    environment = _environment(base)
    if s3 is not None:
        # Credentials as a deployment passes them; the endpoint comes from the flag.
        environment.update({k: v for k, v in s3.environment().items()
                            if k != "MLFLOW_S3_ENDPOINT_URL"})
    for attempt in range(5):
        port = free_port()
        log = base / f"{kind}-{attempt}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                _command(kind, port, token, base, store, s3_root, s3 and s3.url,
                         backend_uri or str(store)),
                env=environment, cwd=base,
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        base_url = f"http://127.0.0.1:{port}"
        if kind == "jupyter":
            ready_url, uri = f"{base_url}/api/status", f"{base_url}/labtrack"
        else:
            ready_url, uri = f"{base_url}/health", base_url
        try:
            ready = _wait_until_ready(process, ready_url, {"Authorization": f"token {token}"},
                                      log)
        except BaseException:
            _stop(process)
            raise
        if ready:
            backend = "postgresql" if backend_uri else "sqlite"
            return process, TrackingServer(uri, token, store, backend, s3, s3_root)
        _stop(process)
        if "in use" not in log.read_text(errors="replace").lower():
            raise RuntimeError(f"{kind} server exited at start; log:\n{log.read_text()}")
    raise RuntimeError(f"Could not start the {kind} server on a free port.")


class ServerPool:
    """Servers started on first use, one per kind, stopped at the end of the session."""

    def __init__(self, request, tmp_path_factory):
        self.request = request
        self.tmp_path_factory = tmp_path_factory
        self.running: dict[str, tuple[subprocess.Popen, TrackingServer]] = {}

    def get(self, kind: str) -> TrackingServer:
        if kind not in self.running:
            s3 = self.request.getfixturevalue("s3_endpoint") if kind.endswith("-s3") else None
            backend_uri = None
            if "-postgres" in kind:
                # A schema per server: the store contract tests empty their tables between
                # tests, and each server records its own artifact root.
                backend_uri = postgres_schema_url(
                    self.request.getfixturevalue("postgres_url"),
                    "compat" if s3 is None else "compat_s3")
            base = self.tmp_path_factory.mktemp(f"server-{kind}")
            self.running[kind] = _start(kind, base, s3, backend_uri)
        return self.running[kind][1]

    def stop(self) -> None:
        for process, _ in self.running.values():
            _stop(process)


@pytest.fixture(scope="session")
def server_pool(request, tmp_path_factory):
    pool = ServerPool(request, tmp_path_factory)
    try:
        yield pool
    finally:
        pool.stop()


# The hosts every compatibility test runs against; the artifact, model and registry tests
# add the team setup: a standalone server on PostgreSQL keeping its artifacts in S3.
SERVER_KINDS = ["jupyter", "standalone", "standalone-postgres"]
ARTIFACT_SERVER_KINDS = [*SERVER_KINDS, "standalone-postgres-s3"]


@pytest.fixture(scope="session", params=SERVER_KINDS)
def tracking_server(request, server_pool):
    """A real server in a subprocess, shared by the session: (uri, token, store_dir)."""
    return server_pool.get(request.param)


def tracking_server_of(kinds: list[str]):
    """A ``tracking_server`` fixture over other kinds of server, for a test module to
    define as its own: ``tracking_server = tracking_server_of(ARTIFACT_SERVER_KINDS)``."""

    @pytest.fixture(scope="session", params=kinds, name="tracking_server")
    def fixture(request, server_pool):
        return server_pool.get(request.param)

    return fixture


@pytest.fixture
def mlflow_client(tracking_server, monkeypatch):
    """The stock ``MlflowClient`` and the fluent API pointed at ``tracking_server``."""
    for name, value in CLIENT_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_server.uri)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", tracking_server.token)
    for name in ("MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID", "MLFLOW_RUN_ID",
                 "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    # Restored afterwards, so no test inherits another's URI or active experiment.
    monkeypatch.setattr(mlflow.tracking._tracking_service.utils, "_tracking_uri", None)
    monkeypatch.setattr(mlflow.tracking.fluent, "_active_experiment_id", None)
    mlflow.set_tracking_uri(tracking_server.uri)
    try:
        yield mlflow.MlflowClient(tracking_server.uri)
    finally:
        while mlflow.active_run() is not None:
            mlflow.end_run()


@pytest.fixture
def fresh_client_session(monkeypatch):
    """The mlflow client as a brand-new process would be: its own HTTP sessions, closed at
    the end of the test.

    The client pools one ``requests`` session per process, and under Jupyter that session
    holds the login cookie jupyter_server sets after the first token-authenticated call, so
    a wrong token alone would no longer be refused.
    """
    sessions = []
    cached = mlflow.utils.request_utils._cached_get_request_session

    def new_session(*args, **kwargs):
        session = cached.__wrapped__(*args, **kwargs)
        sessions.append(session)
        return session

    monkeypatch.setattr(mlflow.utils.request_utils, "_cached_get_request_session", new_session)
    yield
    for session in sessions:
        session.close()


@pytest.fixture
def experiment_id(mlflow_client):
    """A fresh experiment, made the fluent API's active one."""
    experiment = mlflow.set_experiment(unique("compat"))
    return experiment.experiment_id


@pytest.fixture
def api(tracking_server):
    return RawApi(tracking_server)
