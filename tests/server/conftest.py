"""Fixtures for the REST server tests: a real jupyter_server with the extension enabled, and
the standalone ``labtrack server`` application (one user, or ann, bob and olivia for the
registry's multi-user rules), each over its own store: a SQLite file in tmp_path, and again
on PostgreSQL for the standalone server (the backend a central server runs on).

pytest-jupyter's fixtures (``jp_fetch``, ``jp_serverapp``, the event loop, the runner for
``async def`` tests) are imported here rather than loaded as a plugin: pytest accepts
``pytest_plugins`` only in the root conftest, where the plugin's autouse fixtures (a ServerApp
cleanup, a fresh event loop) would run around every test of the repository. Imported into
this conftest, they and the async runner apply to this folder only.
"""

from __future__ import annotations

import base64
import json
import urllib.parse
from dataclasses import dataclass
from typing import Any

import pytest
import tornado.httpserver
import tornado.testing
from jupyter_server.utils import url_path_join
from pytest_jupyter.jupyter_server import *  # noqa: F403 - fixtures and async test runner
from tornado.escape import url_escape
from tornado.simple_httpclient import SimpleAsyncHTTPClient

from labtrack import config
from labtrack.server.context import ServerContext
from labtrack.server.standalone import make_app
from labtrack.services.permissions import RegistrySettings
from labtrack.store import SqliteStore
from labtrack.store.postgres import PostgresStore

MLFLOW = "/api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
LABTRACK = "/api/2.0/labtrack"
PERMISSIONS = "/api/2.0/permissions/registered-models"
STANDALONE_TOKEN = "tok"
STANDALONE_USER = "alice"
# The multi-user registry server: token -> user; olivia is the registry admin.
REGISTRY_TOKENS = {"tok-a": "ann", "tok-b": "bob", "tok-o": "olivia"}
REGISTRY_ADMIN = "olivia"
# A version source inside the artifact store (it need not exist to be registered).
MODEL_SOURCE = "mlflow-artifacts:/0/models/m-1/artifacts"


@dataclass
class Reply:
    """One HTTP answer: status, headers and body, JSON decoded on demand."""

    status: int
    headers: Any
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")


def _query(params) -> str:
    """``{"a": "1"}`` or ``[("run_ids", "x"), ("run_ids", "y")]`` as a query string."""
    if not params:
        return ""
    items = params.items() if isinstance(params, dict) else params
    return urllib.parse.urlencode(list(items), doseq=True)


class Api:
    """Calls the REST API mounted at some URL prefix; never raises on 4xx/5xx.

    ``path`` is relative to the mount point, as in ``openapi.yaml``
    (``/api/2.0/mlflow/runs/create``).
    """

    def __init__(self, send):
        self._send = send  # async (method, path, query, headers, body) -> HTTPResponse

    async def request(self, method: str, path: str, json_body: Any = None, *,
                      params=None, headers: dict[str, str] | None = None,
                      body: bytes | str | None = None) -> Reply:
        headers = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body)
            headers.setdefault("Content-Type", "application/json")
        if body is None and method in ("POST", "PUT", "PATCH"):
            body = b""
        response = await self._send(method, path, _query(params), headers, body)
        return Reply(response.code, response.headers, response.body or b"")

    async def call(self, method: str, path: str, json_body: Any = None, **kwargs):
        """(status, body) of one call: the decoded JSON, or the text of other bodies."""
        reply = await self.request(method, path, json_body, **kwargs)
        if reply.content_type.startswith("application/json"):
            return reply.status, reply.json
        return reply.status, reply.body.decode("utf-8", "replace")

    # MLflow's endpoints, path relative to /api/2.0/mlflow
    async def get(self, endpoint: str, params=None, **kwargs):
        return await self.call("GET", f"{MLFLOW}/{endpoint}", params=params, **kwargs)

    async def post(self, endpoint: str, json_body: Any = None, **kwargs):
        return await self.call("POST", f"{MLFLOW}/{endpoint}",
                               {} if json_body is None else json_body, **kwargs)

    # Shortcuts that set up test data (and insist on success)
    async def ok(self, method: str, path: str, json_body: Any = None, **kwargs) -> Any:
        status, data = await self.call(method, path, json_body, **kwargs)
        assert status == 200, (method, path, status, data)
        return data

    async def create_experiment(self, name: str = "exp", **fields) -> str:
        data = await self.ok("POST", f"{MLFLOW}/experiments/create", {"name": name, **fields})
        return data["experiment_id"]

    async def create_run(self, experiment_id: str = "0", **fields) -> dict:
        data = await self.ok("POST", f"{MLFLOW}/runs/create",
                             {"experiment_id": experiment_id, **fields})
        return data["run"]

    async def log_metric(self, run_id: str, key: str, value, timestamp: int = 1000,
                         step: int = 0) -> None:
        await self.ok("POST", f"{MLFLOW}/runs/log-metric",
                      {"run_id": run_id, "key": key, "value": value,
                       "timestamp": timestamp, "step": step})

    async def create_logged_model(self, experiment_id: str = "0", **fields) -> dict:
        data = await self.ok("POST", f"{MLFLOW}/logged-models",
                             {"experiment_id": experiment_id, **fields})
        return data["model"]

    async def create_registered_model(self, name: str = "model", **fields) -> dict:
        data = await self.ok("POST", f"{MLFLOW}/registered-models/create",
                             {"name": name, **fields})
        return data["registered_model"]

    async def create_model_version(self, name: str = "model", source: str = MODEL_SOURCE,
                                   **fields) -> dict:
        data = await self.ok("POST", f"{MLFLOW}/model-versions/create",
                             {"name": name, "source": source, **fields})
        return data["model_version"]

    async def transition(self, name: str, version: str, stage: str, **fields) -> dict:
        data = await self.ok("POST", f"{MLFLOW}/model-versions/transition-stage",
                             {"name": name, "version": version, "stage": stage,
                              "archive_existing_versions": False, **fields})
        return data["model_version"]

    async def grant(self, name: str, user: str, level: str) -> None:
        """PATCH the model's access list (the caller must manage the model)."""
        model = (await self.ok("GET", f"{MLFLOW}/databricks/registered-models/get",
                               params={"name": name}))["registered_model_databricks"]
        await self.ok("PATCH", f"{PERMISSIONS}/{model['id']}", {
            "access_control_list": [{"user_name": user, "permission_level": level}]})


def _fetch_kwargs(method: str, headers: dict, body) -> dict:
    return {
        "method": method,
        "headers": headers,
        "body": body,
        "raise_error": False,
        # GET/DELETE with a body, PATCH without one: the tests decide what is sent.
        "allow_nonstandard_methods": True,
        "request_timeout": 60,
    }


# -- jupyter_server ------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _restore_tracking_uri_env(monkeypatch):
    """The extension exports LABTRACK_TRACKING_URI (and MLFLOW_S3_ENDPOINT_URL, or a central
    server's LABTRACK_TRACKING_TOKEN) into os.environ; undo it after each test."""
    for name in (config.TRACKING_URI_ENV, "MLFLOW_S3_ENDPOINT_URL", "LABTRACK_TRACKING_TOKEN"):
        monkeypatch.setenv(name, "unset-by-the-test-fixture")
        monkeypatch.delenv(name)


@pytest.fixture
def labtrack_config() -> dict:
    """Extra LabTrack traits for one test (override in a test module or parametrize)."""
    return {}


@pytest.fixture
def tracking_dir(tmp_path):
    return tmp_path / "labtrack-store"


@pytest.fixture
def allow_unauthenticated_access() -> bool:
    """jupyter_server's own gate (its default is True); parametrize to change it."""
    return False


@pytest.fixture
def jp_server_config(tracking_dir, labtrack_config, allow_unauthenticated_access):
    return {
        "ServerApp": {
            "jpserver_extensions": {"labtrack": True, "jupyter_server_terminals": False},
            "allow_unauthenticated_access": allow_unauthenticated_access,
        },
        "LabTrack": {"tracking_uri": str(tracking_dir), **labtrack_config},
    }


@pytest.fixture
def api(jp_fetch) -> Api:
    """The extension's API at ``{base_url}labtrack/``, with the server's token."""

    async def send(method, path, query, headers, body):
        parts = ["labtrack", *[p for p in path.split("/") if p]]
        return await jp_fetch(*parts, params=urllib.parse.parse_qsl(query),
                              **_fetch_kwargs(method, headers, body))

    return Api(send)


@pytest.fixture
def anonymous_api(jp_serverapp, http_server_client, jp_base_url) -> Api:
    """The extension's API without any credentials (no Authorization header, no cookie)."""

    async def send(method, path, query, headers, body):
        url = url_path_join(jp_base_url, "labtrack", url_escape(path.lstrip("/"), plus=False))
        if query:
            url += "?" + query
        return await http_server_client.fetch(url, **_fetch_kwargs(method, headers, body))

    return Api(send)


# -- standalone server ---------------------------------------------------------------------


@dataclass
class Standalone:
    url: str
    client: SimpleAsyncHTTPClient
    context: ServerContext
    tokens: dict[str, str]  # user -> token

    def api(self, headers: dict[str, str] | None = None) -> Api:
        """The API with these default headers (no credentials unless given)."""
        defaults = dict(headers or {})

        async def send(method, path, query, extra_headers, body):
            url = self.url + url_escape(path, plus=False) + (f"?{query}" if query else "")
            merged = {**defaults, **extra_headers}
            return await self.client.fetch(url, **_fetch_kwargs(method, merged, body))

        return Api(send)

    def as_user(self, user: str) -> Api:
        """The API with ``user``'s token."""
        return self.api({"Authorization": f"Bearer {self.tokens[user]}"})


def _serve(loop, context: ServerContext, tokens: dict[str, str], accounts=None):
    """Serve ``make_app(context, tokens, accounts)`` on a free loopback port in the test's
    event loop until the generator is closed."""
    app = make_app(context, tokens, accounts)
    sock, port = tornado.testing.bind_unused_port()

    async def start():
        server = tornado.httpserver.HTTPServer(app, max_body_size=context.max_upload_bytes)
        server.add_sockets([sock])
        return server, SimpleAsyncHTTPClient(force_instance=True)

    server, client = loop.run_until_complete(start())
    yield Standalone(f"http://127.0.0.1:{port}", client, context,
                     {user: token for token, user in tokens.items()})
    client.close()
    server.stop()
    loop.run_until_complete(server.close_all_connections())
    context.close()


def _server_store(request, backend: str, folder):
    if backend == "sqlite":
        return SqliteStore(folder / "labtrack.db")
    return PostgresStore(request.getfixturevalue("postgres_database"), folder / "artifacts")


@pytest.fixture
def standalone(tmp_path, jp_asyncio_loop, store_backend, request):
    """``labtrack server``'s application on a free loopback port, in the test's event loop,
    accepting the token "tok" for the user "alice"."""
    store = _server_store(request, store_backend, tmp_path / "standalone")
    context = ServerContext(store, str(tmp_path / "standalone"))
    yield from _serve(jp_asyncio_loop, context, {STANDALONE_TOKEN: STANDALONE_USER})


@pytest.fixture
def registry_server(tmp_path, jp_asyncio_loop, store_backend, request):
    """``labtrack server`` for a team: ann, bob and olivia (the registry admin) each with a
    token; webhooks may call 127.0.0.1 (and no other internal address)."""
    store = _server_store(request, store_backend, tmp_path / "registry")
    settings = RegistrySettings(admins=frozenset({REGISTRY_ADMIN}),
                                webhook_allowed_hosts=("127.0.0.1",))
    context = ServerContext(store, str(tmp_path / "registry"), registry_settings=settings)
    yield from _serve(jp_asyncio_loop, context, REGISTRY_TOKENS)


@pytest.fixture
def standalone_api(standalone) -> Api:
    return standalone.api({"Authorization": f"Bearer {STANDALONE_TOKEN}"})


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
