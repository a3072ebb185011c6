"""Tornado handlers shared by the Jupyter server extension and the standalone server.

The behaviour lives in mixins; ``handler_classes(base)`` combines them with the host's base
class — jupyter_server's ``APIHandler`` (its token/identity auth, XSRF rules) or the standalone
server's token-checking ``RequestHandler``.
"""

from __future__ import annotations

import json
import traceback
from typing import Any

import tornado.web

from labtrack.errors import LabtrackError
from labtrack.server.artifacts import ArtifactFileMixin
from labtrack.server.meta import PlainText
from labtrack.server.request import ApiRequest, PayloadTooLarge, parse_json_body
from labtrack.server.router import Endpoint

# MLflow's ERROR_CODE_TO_HTTP_STATUS (mlflow/exceptions.py): note "already exists" is 400.
HTTP_STATUS = {
    "INVALID_PARAMETER_VALUE": 400,
    "BAD_REQUEST": 400,
    "RESOURCE_ALREADY_EXISTS": 400,
    "CUSTOMER_UNAUTHORIZED": 401,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "RESOURCE_DOES_NOT_EXIST": 404,
    "NOT_FOUND": 404,
    "ENDPOINT_NOT_FOUND": 404,
    "ABORTED": 409,
    "RESOURCE_CONFLICT": 409,
    "ALREADY_EXISTS": 409,
    "REQUEST_LIMIT_EXCEEDED": 429,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "INTERNAL_ERROR": 500,
    "INVALID_STATE": 500,
    "DATA_LOSS": 500,
    "NOT_IMPLEMENTED": 501,
    "TEMPORARILY_UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}
# HTTP errors raised by tornado or the host (auth, 405, 413) in MLflow's error shape.
_HTTP_ERROR_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "ENDPOINT_NOT_FOUND",
    405: "BAD_REQUEST",
    413: "REQUEST_LIMIT_EXCEEDED",
}
_JSON_CONTENT_TYPE_ERROR = "Bad Request. Content-Type must be one of ['application/json']."


class ErrorShapeMixin:
    """Every error leaves as ``{"error_code", "message"}`` with MLflow's status code, and
    every request must be authenticated (``current_user`` set by the host)."""

    async def prepare(self):
        result = super().prepare()
        if result is not None:
            await result
        if not self.current_user:
            # 401 where the host asks for credentials (standalone), 403 under Jupyter.
            status = getattr(self, "unauthenticated_status", 403)
            raise tornado.web.HTTPError(status, "Authentication required.")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(error, LabtrackError):
            status_code = getattr(error, "http_status", HTTP_STATUS.get(error.error_code, 500))
            body = error.to_dict()
        elif isinstance(error, tornado.web.HTTPError):
            body = {
                "error_code": _HTTP_ERROR_CODES.get(status_code, "INTERNAL_ERROR"),
                "message": error.log_message or error.reason or self._reason,
            }
        else:
            if error is not None:
                self.log_exception(*kwargs["exc_info"])
            body = {"error_code": "INTERNAL_ERROR",
                    "message": "Internal server error; see the server log."}
        self.set_status(status_code)
        self.set_header("Content-Type", "application/json")
        challenge = getattr(self, "authentication_challenge", None)
        if status_code == 401 and challenge:
            self.set_header("WWW-Authenticate", challenge)  # required on a 401
        allowed = getattr(self, "endpoints", None)
        if status_code == 405 and allowed:
            self.set_header("Allow", ", ".join(sorted(allowed)))  # required on a 405
        body_future = getattr(self.request, "_body_future", None)  # set for streamed bodies
        if body_future is not None and not body_future.done():
            # Refused before the body was read (auth, size, path): tornado closes the
            # connection after this answer, so say so, or keep-alive clients reuse a dead one.
            self.set_header("Connection", "close")
        self.finish(json.dumps(body))

    def log_exception(self, typ, value, tb) -> None:
        if isinstance(value, LabtrackError | tornado.web.HTTPError):
            return  # expected: the client gets a clear 4xx
        message = "".join(traceback.format_exception(typ, value, tb))
        logger = getattr(self, "log", None)
        if logger is not None:
            logger.error("labtrack: unexpected error\n%s", message)
        else:
            super().log_exception(typ, value, tb)

    @property
    def user_name(self) -> str:
        """Who is calling, as recorded in ``user_id``, "Created by" and approvals."""
        return self.identity_name()


class EndpointMixin(ErrorShapeMixin):
    """Serves the JSON endpoints sharing one path (one per HTTP method)."""

    def initialize(self, context, endpoints: dict[str, Endpoint], **kwargs):
        self.context = context
        self.endpoints = endpoints
        self._chunks: list[bytes] = []
        self._size = 0

    async def prepare(self):
        await super().prepare()
        length = self.request.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > self.context.max_request_bytes:
            raise PayloadTooLarge(self._too_large())
        self.request.connection.set_max_body_size(self.context.max_request_bytes + 1)

    def _too_large(self) -> str:
        return (f"Request body is larger than the limit of {self.context.max_request_bytes} "
                "bytes (ServerApp/LabTrack max_request_bytes).")

    def data_received(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size > self.context.max_request_bytes:
            raise PayloadTooLarge(self._too_large())
        self._chunks.append(chunk)

    def _request(self, method: str, path_kwargs: dict[str, str]) -> ApiRequest:
        if method == "GET" or (method == "DELETE" and not self._size):
            args: dict[str, Any] = {
                name: [v.decode("utf-8", "replace") for v in values]
                for name, values in self.request.query_arguments.items()
            }
            args.update(path_kwargs)
            return ApiRequest(args, self.user_name, from_query=True)
        content_type = self.request.headers.get("Content-Type", "")
        if self._size and not content_type.split(";")[0].strip().lower() == "application/json":
            raise LabtrackError(_JSON_CONTENT_TYPE_ERROR, "INVALID_PARAMETER_VALUE")
        args = parse_json_body(b"".join(self._chunks))
        args.update(path_kwargs)
        return ApiRequest(args, self.user_name)

    async def _serve(self, method: str, path_kwargs: dict[str, str]) -> None:
        endpoint = self.endpoints.get(method)
        if endpoint is None:
            raise tornado.web.HTTPError(405, f"{method} is not allowed on this path.")
        request = self._request(method, path_kwargs)
        result = await self.context.run(endpoint.action, request, self.context)
        if isinstance(result, PlainText):
            self.set_header("Content-Type", "text/plain; charset=utf-8")
            self.finish(str(result))
        else:
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps(result))

    # @authenticated marks each method as protected for jupyter_server, which otherwise warns
    # (an error under -W error) when ServerApp.allow_unauthenticated_access is False;
    # prepare() has already refused anonymous callers.
    @tornado.web.authenticated
    async def get(self, **path_kwargs):
        await self._serve("GET", path_kwargs)

    @tornado.web.authenticated
    async def post(self, **path_kwargs):
        await self._serve("POST", path_kwargs)

    @tornado.web.authenticated
    async def patch(self, **path_kwargs):
        await self._serve("PATCH", path_kwargs)

    @tornado.web.authenticated
    async def delete(self, **path_kwargs):
        await self._serve("DELETE", path_kwargs)

    @tornado.web.authenticated
    async def put(self, **path_kwargs):
        await self._serve("PUT", path_kwargs)


class ArtifactFileErrorMixin(ArtifactFileMixin, ErrorShapeMixin):
    pass


class NotFoundMixin(ErrorShapeMixin):
    """Unknown paths under the API prefix: a JSON 404 (after authentication).

    Streamed and refused in prepare(), so a request body is never read: otherwise tornado
    would buffer up to the server's body limit (16 GiB standalone) before anyone is asked.
    """

    def initialize(self, **kwargs):
        pass

    async def prepare(self):
        await super().prepare()  # authentication first: 401/403 before 404
        self._not_found()

    def data_received(self, chunk: bytes) -> None:
        pass  # never reached: prepare() always refuses

    @tornado.web.authenticated
    def _not_found(self, *args, **kwargs):
        raise LabtrackError(f"No endpoint {self.request.method} {self.request.path}.",
                            "ENDPOINT_NOT_FOUND")

    get = post = put = patch = delete = _not_found


def handler_classes(base: type) -> dict[str, type]:
    """The concrete handler classes for a host base class."""
    return {
        "endpoint": tornado.web.stream_request_body(
            type(f"Endpoint{base.__name__}", (EndpointMixin, base), {})),
        "artifact_file": tornado.web.stream_request_body(
            type(f"ArtifactFile{base.__name__}", (ArtifactFileErrorMixin, base), {})),
        "not_found": tornado.web.stream_request_body(
            type(f"NotFound{base.__name__}", (NotFoundMixin, base), {})),
    }
