"""``LabTrack``: the Jupyter server extension hosting the tracking backend.

Its REST API (MLflow's wire protocol plus labtrack's additions) is mounted at
``{base_url}labtrack/``, so ``MLFLOW_TRACKING_URI=http://host:8888/labtrack`` with the Jupyter
token as ``MLFLOW_TRACKING_TOKEN`` works for the stock ``mlflow`` client. Kernels this server
starts inherit ``LABTRACK_TRACKING_URI``, so ``labtrack.log_metric`` in a notebook lands in
the store the server (and the side panel) reads.

With an ``http(s)://`` ``tracking_uri`` the extension hosts no store: it forwards its API to
that central ``labtrack server`` with ``tracking_token`` (see ``labtrack.server.central``), and
kernels get the same URI and token.
"""

from __future__ import annotations

import os

from jupyter_server.auth import IdentityProvider, PasswordIdentityProvider
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Int, List, Unicode, default

from labtrack import config
from labtrack.client.run_context import current_user
from labtrack.entities import ModelStage, PermissionLevel
from labtrack.server.central import CentralServer, central_route_table
from labtrack.server.context import ServerContext
from labtrack.server.handlers import handler_classes
from labtrack.server.routes import route_table
from labtrack.services.permissions import RegistrySettings
from labtrack.store import SqliteStore
from labtrack.store.object_store import S3_ENDPOINT_URL_ENV, ObjectStoreSettings

URL_PREFIX = "/labtrack"
# The token of a central server, as labtrack's client and the mlflow client read it.
TRACKING_TOKEN_ENVS = ("LABTRACK_TRACKING_TOKEN", "MLFLOW_TRACKING_TOKEN")


def is_central_server(tracking_uri: str) -> bool:
    return tracking_uri.lower().startswith(("http://", "https://"))


class JupyterApiHandler(APIHandler):
    """Base of the extension's handlers: jupyter_server's auth, plus a readable identity."""

    def identity_name(self) -> str:
        # A single-user server with token auth knows its user only as a random "anonymous"
        # id; the person is the account running the server. Real identity providers
        # (JupyterHub and others) name the user. PasswordIdentityProvider is jupyter_server's
        # default, and gives token users a random id too.
        if type(self.identity_provider) in (IdentityProvider, PasswordIdentityProvider):
            return current_user()
        user = self.current_user
        return getattr(user, "username", None) or getattr(user, "name", None) or str(user)

    def finish(self, *args, **kwargs):
        # APIHandler.finish() labels every answer application/json; keep the type the handler
        # chose (text/plain for /health, the file's type for artifact downloads).
        chosen = self._headers.get("Content-Type", "application/json")
        kwargs.setdefault("set_content_type", chosen)
        return super().finish(*args, **kwargs)


class LabTrack(ExtensionApp):
    name = "labtrack"
    description = "Experiment tracking and a model registry inside Jupyter."

    tracking_uri = Unicode(
        config=True,
        help="The store the server hosts: a folder or .db path or sqlite:/// URI; or the "
        "http(s):// URL of a central labtrack server, to which the extension then forwards "
        "its API (with tracking_token) instead of hosting a store. Default: "
        "$LABTRACK_TRACKING_URI, else labtrack.db in the labtrack data directory.",
    )
    tracking_token = Unicode(
        config=True,
        help="The user's API token for the central server named by an http(s):// "
        "tracking_uri (labtrack tokens create). It stays in the Jupyter server and the "
        "kernels it starts; the browser never sees it. Default: $LABTRACK_TRACKING_TOKEN, "
        "else $MLFLOW_TRACKING_TOKEN.",
    )
    artifacts_destination = Unicode(
        "",
        config=True,
        help="Folder or object-store URI (s3://bucket/prefix, gs://…, abfss://…, wasbs://…) "
        "for artifacts of new experiments (served through the mlflow-artifacts proxy). "
        "Default: the store's recorded artifact root, else 'artifacts' next to the database "
        "file.",
    )
    s3_endpoint_url = Unicode(
        "",
        config=True,
        help="An S3-compatible endpoint (MinIO, Ceph, …) for s3:// artifacts. Default: "
        "$MLFLOW_S3_ENDPOINT_URL, else AWS.",
    )
    export_tracking_uri = Bool(
        True,
        config=True,
        help="Set LABTRACK_TRACKING_URI (and MLFLOW_S3_ENDPOINT_URL from s3_endpoint_url; "
        "with a central server, LABTRACK_TRACKING_TOKEN) in the environment of the kernels "
        "this server starts, so notebooks log into this server's store without "
        "configuration.",
    )
    max_request_bytes = Int(
        32 * 1024 * 1024,
        config=True,
        help="Largest JSON request body accepted; larger ones get 413.",
    )
    max_upload_bytes = Int(
        16 * 1024**3,
        config=True,
        help="Largest artifact file accepted through the artifact proxy.",
    )
    store_threads = Int(
        8, config=True, help="Threads that run store calls off the Jupyter event loop."
    )
    registry_default_permission = Unicode(
        "CAN_READ",
        allow_none=True,
        config=True,
        help="Registry permission of users a model's access list does not name: CAN_READ, "
        "CAN_EDIT, …, or None for no access.",
    )
    registry_admins = List(
        Unicode(),
        config=True,
        help="Users who manage every registered model and the registry-wide webhooks. "
        "Default: the account running the server (the one user of a single-user Jupyter).",
    )
    require_distinct_approver = List(
        Unicode(),
        default_value=["Production"],
        config=True,
        help="Stages whose transition requests the requester may not approve.",
    )
    webhook_allowed_hosts = List(
        Unicode(),
        config=True,
        help="Hosts, IPs or CIDR ranges registry webhooks may call although they are "
        "loopback, private or link-local addresses (default: $LABTRACK_WEBHOOK_ALLOWED_HOSTS).",
    )

    @default("tracking_uri")
    def _default_tracking_uri(self) -> str:
        return config.default_tracking_uri()

    @default("tracking_token")
    def _default_tracking_token(self) -> str:
        return next((os.environ[name] for name in TRACKING_TOKEN_ENVS if os.environ.get(name)),
                    "")

    @default("registry_admins")
    def _default_registry_admins(self) -> list[str]:
        return [current_user()]

    @default("webhook_allowed_hosts")
    def _default_webhook_allowed_hosts(self) -> list[str]:
        return list(config.webhook_allowed_hosts())

    def registry_settings(self) -> RegistrySettings:
        default = self.registry_default_permission
        return RegistrySettings(
            default_permission=None if default in (None, "", "None") else
            PermissionLevel.parse(default),
            require_distinct_approver=frozenset(ModelStage.parse(s)
                                                for s in self.require_distinct_approver),
            admins=frozenset(self.registry_admins),
            webhook_allowed_hosts=tuple(self.webhook_allowed_hosts),
        )

    def initialize_settings(self) -> None:
        self.central: CentralServer | None = None
        if is_central_server(self.tracking_uri):
            self._initialize_central_server()
            return
        database = config.sqlite_database_path(self.tracking_uri)
        store = SqliteStore(database, self.artifacts_destination or None)
        self.context = ServerContext(
            store,
            self.tracking_uri,
            max_request_bytes=self.max_request_bytes,
            max_upload_bytes=self.max_upload_bytes,
            threads=self.store_threads,
            registry_settings=self.registry_settings(),
            root_dir=self.serverapp.root_dir,
            object_stores=ObjectStoreSettings.from_environment(self.s3_endpoint_url or None),
        )
        if self.export_tracking_uri:
            os.environ[config.TRACKING_URI_ENV] = f"sqlite:///{database}"
            if self.s3_endpoint_url:
                # Kernels open the same store, so they write its s3:// artifacts themselves.
                os.environ[S3_ENDPOINT_URL_ENV] = self.s3_endpoint_url
        self.log.info("labtrack: tracking store %s, artifacts in %s", database,
                      store.artifact_root)

    def _initialize_central_server(self) -> None:
        self.central = CentralServer(self.tracking_uri, self.tracking_token,
                                     self.serverapp.root_dir)
        if self.export_tracking_uri:
            os.environ[config.TRACKING_URI_ENV] = self.tracking_uri
            if self.tracking_token:
                os.environ[TRACKING_TOKEN_ENVS[0]] = self.tracking_token
        self.log.info("labtrack: forwarding %s/ to the central server %s (%s)", URL_PREFIX,
                      self.tracking_uri,
                      "with a token" if self.tracking_token else "without a token")

    def initialize_handlers(self) -> None:
        if self.central is not None:
            self.handlers.extend(central_route_table(URL_PREFIX, self.central,
                                                     JupyterApiHandler, self.max_upload_bytes))
            return
        self.handlers.extend(
            route_table(URL_PREFIX, self.context, handler_classes(JupyterApiHandler))
        )

    async def stop_extension(self) -> None:
        if getattr(self, "central", None) is not None:
            self.central.close()
        context = getattr(self, "context", None)
        if context is not None:
            context.close()
