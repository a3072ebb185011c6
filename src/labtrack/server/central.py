"""The Jupyter extension's central-server mode: ``{base_url}labtrack/`` forwards to a team's
``labtrack server``.

When ``c.LabTrack.tracking_uri`` is ``http(s)://…`` the extension opens no store. Each request
under its prefix, once Jupyter's own auth let it in, goes to the central server with the
user's token (``c.LabTrack.tracking_token``); status, MLflow error bodies and the headers that
describe the body come back unchanged. Bodies stream both ways (artifact uploads and downloads
never sit whole in the Jupyter server's memory). The token lives only in the Jupyter server and
the kernels it starts: the browser talks to Jupyter with Jupyter's credentials, which are never
forwarded.

What only Jupyter knows is answered here: the folder it serves (the panel's ``server-root``),
and the absolute path of "this notebook" that the panel's run search names relative to it —
kernels tag runs with absolute paths, and the central server has no root folder to join.
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Protocol

import tornado.httputil
import tornado.web
from jupyter_server.utils import url_path_join
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.iostream import StreamClosedError
from tornado.simple_httpclient import SimpleAsyncHTTPClient

from labtrack.errors import LabtrackError
from labtrack.server.handlers import ErrorShapeMixin
from labtrack.server.panel import PANEL, notebook_file
from labtrack.server.request import PayloadTooLarge, parse_json_body

PANEL_SERVER_ROOT = f"{PANEL}/server-root"
PANEL_RUNS_SEARCH = f"{PANEL}/runs/search"
# Request headers that describe the body or what the caller accepts. Never Cookie or
# Authorization: those are the browser's credentials for Jupyter, not for the central server.
_REQUEST_HEADERS = ("Content-Type", "Content-Length", "Content-Encoding", "Accept",
                    "Accept-Encoding", "Range", "If-None-Match", "If-Modified-Since",
                    "X-Request-Key")
# Response headers that describe the body. Hop-by-hop headers (Connection, Transfer-Encoding)
# belong to each connection; WWW-Authenticate challenges for the token, which the browser
# does not hold.
_RESPONSE_HEADERS = ("Content-Type", "Content-Length", "Content-Encoding",
                     "Content-Disposition", "Content-Range", "Accept-Ranges", "ETag",
                     "Last-Modified", "Cache-Control", "Allow", "X-Content-Type-Options",
                     "Retry-After")
CONNECT_TIMEOUT_S = 20
# Artifact files of several GB pass through one request.
REQUEST_TIMEOUT_S = 24 * 3600
# Bodies are streamed, so the client's in-memory limit is no limit on what passes through.
_UNLIMITED_BODY = 1 << 62
# Request-body chunks waiting for the central server (tornado reads up to 64 KiB at a time).
_QUEUED_CHUNKS = 16
_END = None
_ABORT = object()  # the browser went away mid-body


class CentralServerUnreachable(LabtrackError):
    """The central server did not answer (refused, reset, timed out, name unknown)."""

    error_code = "TEMPORARILY_UNAVAILABLE"
    http_status = 502


class TokenRefused(LabtrackError):
    """The central server refused the configured token (its 401)."""

    error_code = "UNAUTHENTICATED"
    http_status = 401


class ResponseSink(Protocol):
    """Where the central server's answer goes: the Jupyter handler, as three calls."""

    def relay_start(self, status: int, reason: str, headers: dict[str, str]) -> None: ...
    def relay_chunk(self, chunk: bytes) -> Awaitable[None]: ...
    async def relay_end(self) -> None: ...


class CentralServer:
    """The team's ``labtrack server`` at ``url``, called with ``token``.

    :param root_dir: the folder Jupyter serves, to make the panel's notebook paths absolute.
    """

    def __init__(self, url: str, token: str | None, root_dir: str | None):
        self.url = url.rstrip("/")
        self.token = token or None
        self.root_dir = root_dir
        self.client = SimpleAsyncHTTPClient(force_instance=True,
                                            max_body_size=_UNLIMITED_BODY)

    def close(self) -> None:
        self.client.close()

    def server_root(self) -> dict:
        """The panel's ``server-root``: Jupyter's folder, not the central server's (none)."""
        return {"root_dir": self.root_dir}

    def panel_search_body(self, body: bytes) -> bytes:
        """The panel's run search with "this notebook" named as kernels tag it: absolute."""
        args = parse_json_body(body)
        path = args.get("notebook_path")
        if isinstance(path, str) and path:
            args["notebook_path"] = notebook_file(path, self.root_dir)
        return json.dumps(args).encode()

    def open(self, method: str, path: str, query: str, headers: tornado.httputil.HTTPHeaders,
             sink: ResponseSink, body: bytes | None = None,
             streamed_body: bool = False) -> Forwarding:
        """Start forwarding one request. ``path`` is relative to the API's mount point
        (``/api/2.0/mlflow/runs/search``), percent-encoded as the browser sent it (quoting
        leaves it as it is: an encoded ``/`` in an artifact name stays encoded); with
        ``streamed_body`` the body follows through ``Forwarding.send``, else ``body`` is the
        whole body (or None)."""
        outgoing = {name: headers[name] for name in _REQUEST_HEADERS if name in headers}
        if self.token:
            outgoing["Authorization"] = f"Bearer {self.token}"
        if body is not None:
            outgoing["Content-Length"] = str(len(body))
        url = self.url + urllib.parse.quote(path, safe="/:@!$&'()*+,;=-._~%")
        if query:
            url += "?" + query
        return Forwarding(self, method, url, outgoing, sink, body, streamed_body)


class Forwarding:
    """One request on its way to the central server and its answer on the way back."""

    def __init__(self, central: CentralServer, method: str, url: str,
                 headers: dict[str, str], sink: ResponseSink, body: bytes | None,
                 streamed_body: bool):
        self.central = central
        self.sink = sink
        self._queue: asyncio.Queue[bytes | object | None] = asyncio.Queue(_QUEUED_CHUNKS)
        self._status: int | None = None
        self._reason = ""
        self._headers = tornado.httputil.HTTPHeaders()
        self._refusal: list[bytes] | None = None  # the body of a 401, reworded at the end
        self._started = False
        request = HTTPRequest(
            url, method=method, headers=headers, body=body,
            body_producer=self._produce_body if streamed_body else None,
            header_callback=self._header_line, streaming_callback=self._body_chunk,
            connect_timeout=CONNECT_TIMEOUT_S, request_timeout=REQUEST_TIMEOUT_S,
            follow_redirects=False, decompress_response=False,
            allow_nonstandard_methods=True)
        self._response = asyncio.ensure_future(
            central.client.fetch(request, raise_error=False))
        # If the central server fails before reading the body, unblock a waiting send().
        self._response.add_done_callback(lambda _: self._drain())

    async def send(self, chunk: bytes) -> None:
        """Pass on one chunk of the request body (waits while the central server is slow)."""
        if not self._response.done():
            await self._queue.put(chunk)

    async def finish(self) -> None:
        """End the request body, then relay the answer; raises ``CentralServerUnreachable``
        or ``TokenRefused`` when nothing of the answer has been sent yet."""
        if not self._response.done():
            await self._queue.put(_END)
        try:
            response = await self._response
        except (TimeoutError, OSError, HTTPClientError, StreamClosedError) as error:
            self._unreachable(error)
        if response.code == 599:  # tornado's code for "no HTTP answer"
            self._unreachable(response.error)
        if self._refusal is not None:
            raise TokenRefused(self._refusal_message(b"".join(self._refusal)))
        if not self._started:  # an answer without body (or headers we never saw)
            self._start()
        await self.sink.relay_end()

    def cancel(self) -> None:
        """The browser went away: break off the request to the central server, so a
        half-sent upload is dropped there rather than stored cut short."""
        if not self._response.done():
            self._drain()
            self._queue.put_nowait(_ABORT)
        # Its outcome no longer has a reader.
        self._response.add_done_callback(lambda future: future.exception())

    # -- request body ------------------------------------------------------------------------

    async def _produce_body(self, write: Callable[[bytes], Awaitable[None]]) -> None:
        while (chunk := await self._queue.get()) is not _END:
            if chunk is _ABORT:
                raise StreamClosedError()  # closes the connection mid-body
            await write(chunk)

    def _drain(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()

    # -- response ----------------------------------------------------------------------------

    def _header_line(self, line: str) -> None:
        if line.startswith("HTTP/"):
            start = tornado.httputil.parse_response_start_line(line.strip())
            self._status, self._reason = start.code, start.reason
            self._headers = tornado.httputil.HTTPHeaders()
        elif line.strip():
            self._headers.parse_line(line)
        elif self._status is not None and self._status >= 200:  # end of the headers
            if self._status == 401:
                self._refusal = []
            else:
                self._start()

    def _start(self) -> None:
        if self._started:
            return
        self._started = True
        kept = {name: self._headers[name] for name in _RESPONSE_HEADERS
                if name in self._headers}
        self.sink.relay_start(self._status or 502, self._reason, kept)

    def _body_chunk(self, chunk: bytes) -> Awaitable[None] | None:
        """tornado waits for what this returns before it reads on: the central server's
        answer flows no faster than the browser takes it, never piling up in memory."""
        if self._refusal is not None:
            self._refusal.append(chunk[:4096])
            return None
        self._start()
        return self.sink.relay_chunk(chunk)

    def _unreachable(self, error: BaseException | None) -> None:
        if self._started:
            # Part of the answer is already on its way: the browser sees a cut response.
            raise StreamClosedError(real_error=error) from error
        raise CentralServerUnreachable(
            f"The central labtrack server {self.central.url} did not answer: {error}. Check "
            "that it runs and that c.LabTrack.tracking_uri names it.") from None

    def _refusal_message(self, body: bytes) -> str:
        try:
            said = json.loads(body).get("message", "")
        except (ValueError, AttributeError):
            said = body.decode("utf-8", "replace")[:200]
        given = "the configured token" if self.central.token else "no token"
        return (f"The central labtrack server {self.central.url} refused {given} "
                f"({said or 'no reason given'}). Set c.LabTrack.tracking_token (or "
                "LABTRACK_TRACKING_TOKEN) in the Jupyter server's configuration to your "
                "token for that server (labtrack tokens create).")


# -- tornado handlers: parse, hand to the CentralServer, relay ---------------------------------


class CentralHandlerMixin(ErrorShapeMixin):
    """Shared by the central-mode handlers: the ``CentralServer`` and the relay of its
    answer (``ResponseSink``)."""

    def initialize(self, central: CentralServer, prefix: str, max_upload_bytes: int, **kwargs):
        self.central = central
        self.prefix = prefix  # "/labtrack": what the routes are mounted under
        self.max_upload_bytes = max_upload_bytes
        self.forwarding: Forwarding | None = None

    def api_path(self) -> str:
        """The request's path below the mount point, still percent-encoded as sent."""
        mount = url_path_join(self.base_url, self.prefix)
        return self.request.path[len(mount):] or "/"

    def relay_start(self, status: int, reason: str, headers: dict[str, str]) -> None:
        self.set_status(status, reason or None)
        for name, value in headers.items():
            self.set_header(name, value)

    def relay_chunk(self, chunk: bytes) -> Awaitable[None]:
        self.write(chunk)
        return self.flush()

    async def relay_end(self) -> None:
        await self.finish()

    def on_connection_close(self) -> None:
        if self.forwarding is not None:
            self.forwarding.cancel()
        super().on_connection_close()


class ForwardMixin(CentralHandlerMixin):
    """Any request under the prefix, body streamed to the central server as it arrives."""

    async def prepare(self):
        await super().prepare()  # Jupyter's auth first: nobody reaches the central server
        headers = self.request.headers
        has_body = headers.get("Content-Length", "0") != "0" or "Transfer-Encoding" in headers
        length = headers.get("Content-Length", "")
        if length.isdigit() and int(length) > self.max_upload_bytes:
            # A JSON 413 now; past this point tornado would drop the connection with a 400.
            raise PayloadTooLarge(
                f"Request body is larger than the limit of {self.max_upload_bytes} bytes "
                "(LabTrack max_upload_bytes).")
        # Artifact uploads pass through: Jupyter's own body limit is for its JSON APIs.
        self.request.connection.set_max_body_size(self.max_upload_bytes)
        self.forwarding = self.central.open(
            self.request.method, self.api_path(), self.request.query, headers, self,
            streamed_body=has_body)

    async def data_received(self, chunk: bytes) -> None:
        await self.forwarding.send(chunk)

    # @authenticated: see handlers.EndpointMixin (jupyter_server's check of extension handlers).
    @tornado.web.authenticated
    async def _forward(self, *args, **kwargs) -> None:
        await self.forwarding.finish()

    get = post = put = patch = delete = head = _forward


class PanelServerRootMixin(CentralHandlerMixin):
    """The folder this Jupyter server serves."""

    @tornado.web.authenticated
    async def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        await self.finish(json.dumps(self.central.server_root()))


class PanelRunsSearchMixin(CentralHandlerMixin):
    """The panel's run search, its notebook path made absolute here."""

    @tornado.web.authenticated
    async def post(self) -> None:
        body = self.central.panel_search_body(self.request.body)
        self.forwarding = self.central.open("POST", PANEL_RUNS_SEARCH, self.request.query,
                                            self.request.headers, self, body=body)
        await self.forwarding.finish()


def central_route_table(prefix: str, central: CentralServer, base: type,
                        max_upload_bytes: int) -> list[tuple]:
    """Tornado routes under ``prefix`` for a host base class (Jupyter's ``APIHandler``)."""
    def handler(mixin: type, name: str) -> type:
        return type(f"{name}{base.__name__}", (mixin, base), {})

    kwargs = {"central": central, "prefix": prefix, "max_upload_bytes": max_upload_bytes}
    return [
        (prefix + PANEL_SERVER_ROOT, handler(PanelServerRootMixin, "CentralServerRoot"),
         kwargs),
        (prefix + PANEL_RUNS_SEARCH, handler(PanelRunsSearchMixin, "CentralPanelSearch"),
         kwargs),
        (prefix + "/.*", tornado.web.stream_request_body(handler(ForwardMixin, "Forward")),
         kwargs),
    ]
