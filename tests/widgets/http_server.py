"""``labtrack server``'s application on a loopback port, served from a thread, so widgets
can be tested with a ``TrackingClient`` over HTTP (the REST client, not the local store)."""

from __future__ import annotations

import asyncio
import threading
from contextlib import contextmanager
from pathlib import Path

import tornado.httpserver
import tornado.testing

from labtrack.server.context import ServerContext
from labtrack.server.standalone import make_app
from labtrack.services.permissions import RegistrySettings
from labtrack.store import SqliteStore

TOKEN = "widget-token"


@contextmanager
def labtrack_server(folder: Path, tokens: dict[str, str] | None = None,
                    registry_settings: RegistrySettings | None = None):
    """Yields the server's URL. It accepts ``tokens`` (token → user; by default ``TOKEN``
    for "widget-user": set LABTRACK_TRACKING_TOKEN)."""
    store = SqliteStore(folder / "labtrack.db")
    context = ServerContext(store, str(folder), registry_settings=registry_settings
                            or RegistrySettings())
    app = make_app(context, tokens or {TOKEN: "widget-user"})
    sock, port = tornado.testing.bind_unused_port()
    loop = asyncio.new_event_loop()
    started = threading.Event()

    def serve():
        asyncio.set_event_loop(loop)

        async def start():
            server = tornado.httpserver.HTTPServer(app)
            server.add_sockets([sock])
            return server

        server = loop.run_until_complete(start())
        started.set()
        loop.run_forever()
        server.stop()
        loop.run_until_complete(server.close_all_connections())
        loop.close()

    thread = threading.Thread(target=serve, name="labtrack-widget-server", daemon=True)
    thread.start()
    assert started.wait(60), "the server never started"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(60)
        context.close()
