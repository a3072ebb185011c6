"""``EmbeddedServer``: the standalone REST server on a loopback port, inside this process.

For code that must hand a local store to a REST-only client for a while — ``labtrack run``
gives the ``mlflow`` client of a project a URL and a token this way. The server runs in a
background thread on its own event loop, so the calling thread (and synchronous clients in
it) never block it; it listens on ``127.0.0.1`` on a free port and accepts one random token::

    with EmbeddedServer("path/to/store") as server:
        requests.get(f"{server.url}/api/2.0/mlflow/experiments/search",
                     headers={"Authorization": f"Bearer {server.token}"})
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading

import tornado.httpserver
import tornado.netutil

from labtrack import config
from labtrack.client.run_context import current_user
from labtrack.server.context import ServerContext
from labtrack.server.standalone import make_app
from labtrack.services.permissions import RegistrySettings
from labtrack.store import open_store

START_TIMEOUT_S = 60
log = logging.getLogger("labtrack.server.embedded")


def _log_request(handler) -> None:
    log.debug("%d %s %.2fms", handler.get_status(), handler._request_summary(),
              1000.0 * handler.request.request_time())


class EmbeddedServer:
    """The REST API of the local store ``tracking_uri``, served from a background thread.

    :param tracking_uri: a folder or ``.db`` path or ``sqlite:///`` URI (not ``http``).
    :param token: the token to accept (default: a random one, see ``token``).
    :param user: who requests act as (default: the current user, who administers the registry,
        as with the in-process client of a local store).
    """

    def __init__(self, tracking_uri: str, host: str = "127.0.0.1", port: int = 0,
                 token: str | None = None, user: str | None = None, threads: int = 4):
        self.tracking_uri = str(tracking_uri)
        self.host = host
        self.token = token or secrets.token_urlsafe(32)
        self.user = user or current_user()
        self._requested_port = port
        self._threads = threads
        self.port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._context: ServerContext | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("The embedded server is not started.")
        return f"http://{self.host}:{self.port}"

    def start(self) -> EmbeddedServer:
        """Listen and serve; returns once requests are accepted."""
        if self._thread is not None:
            raise RuntimeError("The embedded server is already started.")
        sockets = tornado.netutil.bind_sockets(self._requested_port, self.host)
        self.port = sockets[0].getsockname()[1]
        store = open_store(self.tracking_uri)
        settings = RegistrySettings(admins=frozenset({self.user}),
                                    webhook_allowed_hosts=config.webhook_allowed_hosts())
        try:
            self._context = ServerContext(store, self.tracking_uri, threads=self._threads,
                                          registry_settings=settings)
            app = make_app(self._context, {self.token: self.user})
            # Requests are the private business of the client it serves: tornado's access log
            # (4xx as warnings) would otherwise print on the terminal of whoever embeds it.
            app.settings["log_function"] = _log_request
        except BaseException:
            store.close()
            for sock in sockets:
                sock.close()
            raise
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                server = tornado.httpserver.HTTPServer(
                    app, max_body_size=self._context.max_upload_bytes)

                async def listen() -> None:
                    server.add_sockets(sockets)

                loop.run_until_complete(listen())
            except BaseException as error:  # reported to start() below
                failure.append(error)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                server.stop()
                loop.run_until_complete(server.close_all_connections())
                loop.close()

        self._thread = threading.Thread(target=serve, name=f"labtrack-embedded-{self.port}",
                                        daemon=True)
        self._thread.start()
        if not ready.wait(START_TIMEOUT_S) or failure:
            self._thread.join(START_TIMEOUT_S)
            self._context.close()
            raise RuntimeError(f"The embedded server did not start: {failure or 'timeout'}")
        return self

    def stop(self) -> None:
        """Stop listening, close connections and the store; idempotent."""
        thread, loop = self._thread, self._loop
        if thread is None:
            return
        self._thread = None
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(loop.stop)
            except RuntimeError:  # closed meanwhile
                pass
        thread.join()
        if self._context is not None:
            self._context.close()
            self._context = None

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
