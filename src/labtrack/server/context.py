"""``ServerContext``: what every handler needs, built once per server."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from labtrack.server.wire import Wire
from labtrack.services import TrackingService
from labtrack.services.logged_models import LoggedModelService
from labtrack.services.permissions import RegistrySettings
from labtrack.services.registry import RegistryService
from labtrack.services.webhook_delivery import WebhookDispatcher
from labtrack.store import ArtifactRepository, Store
from labtrack.store.artifacts import artifact_root_uri
from labtrack.store.object_store import ObjectStoreSettings

T = TypeVar("T")


@dataclass
class ServerContext:
    """Services, the artifact proxy's repository and the thread pool for store calls.

    Store calls block (SQLite, files, object-store requests), so handlers run them in
    ``executor`` and the IOLoop never waits on disk or network.
    """

    store: Store
    tracking_uri: str
    max_request_bytes: int = 32 * 1024 * 1024
    max_upload_bytes: int = 16 * 1024**3
    threads: int = 8
    registry_settings: RegistrySettings = field(default_factory=RegistrySettings)
    # The folder a Jupyter server serves (None for the standalone server): JupyterLab names
    # notebooks relative to it, kernels record them absolute.
    root_dir: str | None = None
    # How artifacts in s3:// gs:// abfss:// wasbs:// are reached (default: the environment).
    object_stores: ObjectStoreSettings | None = None
    tracking: TrackingService = field(init=False)
    logged_models: LoggedModelService = field(init=False)
    registry: RegistryService = field(init=False)
    webhooks: WebhookDispatcher = field(init=False)
    wire: Wire = field(init=False)
    proxy: ArtifactRepository = field(init=False)
    executor: ThreadPoolExecutor = field(init=False)

    def __post_init__(self) -> None:
        self.tracking = TrackingService(self.store, confine_artifacts=True,
                                        object_stores=self.object_stores)
        self.logged_models = LoggedModelService(self.tracking)
        self.wire = Wire(self.store.artifact_root)
        # A REST caller's version sources must stay inside the artifact store.
        settings = replace(self.registry_settings, confine_sources=True)
        self.webhooks = WebhookDispatcher(self.store, settings.webhook_allowed_hosts)
        self.registry = RegistryService(self.tracking, settings, self.webhooks,
                                        present_uri=self.wire.public_uri)
        # Left-over deliveries now, and those of a process that died (several server
        # processes may share the store) every minute.
        self.webhooks.start_resuming()
        self.proxy = self.tracking.repository(artifact_root_uri(self.store.artifact_root))
        self.executor = ThreadPoolExecutor(self.threads, thread_name_prefix="labtrack-store")

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(function, *args))

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        self.webhooks.close()
        self.store.close()
