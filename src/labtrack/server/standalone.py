"""``labtrack server``: the same REST API without JupyterLab, for teams and non-Python clients.

Every request needs a token — ``Authorization: Bearer <token>`` (what the ``mlflow`` client
sends from ``MLFLOW_TRACKING_TOKEN``), ``Authorization: token <token>``, or HTTP Basic with the
token as password. Tokens come from the command line (``--token`` / ``--token-file``) or from
the store's accounts (``labtrack users`` / ``labtrack tokens``); the token's user is who the
request acts as.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ctypes
import hmac
import logging
import os
import secrets
import signal
from dataclasses import replace

import tornado.httpserver
import tornado.netutil
import tornado.web

import labtrack
from labtrack import config
from labtrack.client.run_context import current_user
from labtrack.errors import InvalidParameterValue
from labtrack.server.context import ServerContext
from labtrack.server.handlers import handler_classes
from labtrack.server.routes import route_table
from labtrack.server.workers import configure_logging, supervise
from labtrack.services.accounts import AccountService
from labtrack.services.permissions import RegistrySettings
from labtrack.store import open_store
from labtrack.store.object_store import ObjectStoreSettings

TOKEN_ENV = "LABTRACK_SERVER_TOKEN"
WORKERS_ENV = "LABTRACK_SERVER_WORKERS"
WORKER_HEADER = "X-Labtrack-Worker"
log = logging.getLogger("labtrack.server")


class TokenAuthenticatedHandler(tornado.web.RequestHandler):
    """Base of the standalone server's handlers: the user is whoever owns the token."""

    unauthenticated_status = 401
    authentication_challenge = 'Bearer realm="labtrack"'

    def get_current_user(self) -> str | None:
        """The user of a token given on the command line (store tokens: see prepare)."""
        presented = self._presented_token()
        if not presented:
            return None
        for token, user in self.settings["labtrack_tokens"].items():
            if hmac.compare_digest(presented.encode(), token.encode()):
                return user
        return None

    async def prepare(self):
        accounts = self.settings.get("labtrack_accounts")
        if self.current_user is None and accounts is not None:
            presented = self._presented_token()
            if presented:
                # A store lookup: in the store's threads, never on the event loop.
                context = self.settings["labtrack_context"]
                self.current_user = await context.run(accounts.authenticate, presented)
        result = super().prepare()
        if result is not None:
            await result

    def identity_name(self) -> str:
        return str(self.current_user)

    def _presented_token(self) -> str | None:
        scheme, _, value = self.request.headers.get("Authorization", "").partition(" ")
        scheme = scheme.lower()
        if scheme in ("bearer", "token"):
            return value.strip()
        if scheme == "basic":
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return None
            return decoded.partition(":")[2]
        return None

    def set_default_headers(self) -> None:
        self.set_header("X-Content-Type-Options", "nosniff")
        # Which server process answered (``labtrack server --workers``): for logs and load
        # checks; a process id tells a client nothing it could use.
        self.set_header(WORKER_HEADER, str(os.getpid()))


def make_app(context: ServerContext, tokens: dict[str, str],
             accounts: AccountService | None = None) -> tornado.web.Application:
    """The tornado application; ``tokens`` maps each token accepted besides those of
    ``accounts`` (the store's users) to its user name."""
    if not tokens and accounts is None:
        raise ValueError("The standalone server needs at least one token.")
    return tornado.web.Application(
        route_table("", context, handler_classes(TokenAuthenticatedHandler)),
        labtrack_tokens=tokens,
        labtrack_accounts=accounts,
        labtrack_context=context,
    )


def read_token_file(path: str) -> dict[str, str]:
    """``<user>:<token>`` per line (blank lines and ``#`` comments ignored) → token → user."""
    tokens: dict[str, str] = {}
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            user, separator, token = line.partition(":")
            if not separator or not user.strip() or not token.strip():
                raise InvalidParameterValue(
                    f"{path}, line {number}: expected '<user>:<token>'.")
            if token.strip() in tokens:
                raise InvalidParameterValue(f"{path}, line {number}: a token is listed twice.")
            tokens[token.strip()] = user.strip()
    if not tokens:
        raise InvalidParameterValue(f"{path} lists no tokens.")
    return tokens


# glibc's mallopt parameter, and the size from which every allocation gets its own mapping.
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_BYTES = 1024 * 1024


def return_large_buffers_to_the_system() -> None:
    """Keep memory flat while large artifacts stream through the server.

    A streamed file passes through buffers of up to one multipart part (16 MiB). glibc maps
    big allocations and unmaps them when freed, but after each such free it raises that
    threshold (up to 32 MiB), so later buffers come from per-thread heaps that keep their
    peak size: the server's memory would grow with every store thread that moved a file. A
    fixed threshold keeps every buffer from 1 MiB up in its own mapping, returned on free.
    Nothing to do outside glibc.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is not None:
        mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)


def serve(
    host: str = "127.0.0.1",
    port: int = 5000,
    backend_store_uri: str | None = None,
    artifacts_destination: str | None = None,
    token: str | None = None,
    user: str | None = None,
    threads: int = 8,
    token_file: str | None = None,
    registry: RegistrySettings | None = None,
    s3_endpoint_url: str | None = None,
    workers: int = 1,
) -> int:
    """Run the server until SIGINT/SIGTERM; returns the exit code (0: stopped cleanly).

    The store's users with their tokens (``labtrack users`` / ``labtrack tokens``), plus one
    user with ``token`` (default: ``LABTRACK_SERVER_TOKEN``; a generated token when neither
    is given and the store has no tokens), or several with ``token_file``; ``registry`` sets
    the registry policy (admins default to the single command-line user); ``s3_endpoint_url``
    an S3-compatible endpoint for ``s3://`` artifacts (default: ``MLFLOW_S3_ENDPOINT_URL``).

    ``workers`` > 1 serves from that many processes sharing the listening socket, the store
    and the artifact store (see ``labtrack.server.workers``): this process applies the
    store's migrations and binds the socket, then forks the workers, each of which opens its
    own store, thread pools and webhook dispatcher.
    """
    if workers < 1:
        raise InvalidParameterValue(f"--workers must be at least 1, not {workers}.")
    configure_logging("supervisor" if workers > 1 else None)
    return_large_buffers_to_the_system()
    uri = backend_store_uri or config.default_tracking_uri()
    # Opening the store applies its migrations: once, here, before any worker exists.
    store = open_store(uri, artifacts_destination)
    try:
        store_tokens = bool(AccountService(store).list_tokens())
    except BaseException:
        store.close()
        raise
    generated = False
    tokens: dict[str, str] = {}
    if token_file:
        tokens = read_token_file(token_file)
    else:
        token = token or os.environ.get(TOKEN_ENV)
        if token or not store_tokens:
            generated = not token
            token = token or secrets.token_urlsafe(32)
            tokens = {token: user or current_user()}
    settings = registry or RegistrySettings()
    if not settings.admins and tokens and not token_file:
        settings = replace(settings, admins=frozenset(tokens.values()))
    object_stores = ObjectStoreSettings.from_environment(s3_endpoint_url)
    if generated:
        log.info("token (set %s to choose one): %s", TOKEN_ENV, token)

    def run(store, sockets=None) -> None:
        accounts = AccountService(store)
        context = ServerContext(store, uri, threads=threads, registry_settings=settings,
                                object_stores=object_stores)
        try:
            asyncio.run(_serve_until_stopped(make_app(context, tokens, accounts), context,
                                             accounts, host, port, sockets))
        finally:
            context.close()

    if workers == 1:
        run(store)
        return 0
    store.close()
    sockets = tornado.netutil.bind_sockets(port, host)
    log.info("labtrack %s: %d workers on http://%s:%d", labtrack.__version__, workers, host,
             port)

    def worker(index: int) -> None:
        run(open_store(uri, artifacts_destination), sockets)

    try:
        return supervise(workers, worker)
    finally:
        for sock in sockets:
            sock.close()


async def _serve_until_stopped(app: tornado.web.Application, context: ServerContext,
                               accounts: AccountService, host: str, port: int,
                               sockets: list | None) -> None:
    """Serve on ``sockets`` (bound by a supervisor) or on a new socket at host:port."""
    server = tornado.httpserver.HTTPServer(
        app, max_body_size=context.max_upload_bytes, xheaders=True
    )
    if sockets is None:
        server.listen(port, host)
    else:
        server.add_sockets(sockets)
    url = f"http://{host}:{port}"
    store = context.store
    log.info("labtrack %s serving %s", labtrack.__version__, url)
    log.info("store %s, artifacts in %s", store.location, store.artifact_root)
    log.info("users with API tokens in the store: %d (labtrack users / labtrack tokens)",
             len({t.user_name for t in accounts.list_tokens()}))
    log.info("clients: MLFLOW_TRACKING_URI=%s MLFLOW_TRACKING_TOKEN=<token> "
             "(or LABTRACK_TRACKING_URI / LABTRACK_TRACKING_TOKEN)", url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    server.stop()
    await server.close_all_connections()
