"""Artifact endpoints: MLflow's run listing and its proxied artifact service.

Files under the server's artifact root are addressed by their path relative to it
(``<experiment>/<run>/artifacts/<file>``), which is what ``mlflow-artifacts:/`` URIs carry.
The upload, download and delete of single files stream through ``ArtifactFileMixin``; the
listings are ordinary JSON endpoints.
"""

from __future__ import annotations

import mimetypes
import os
import posixpath
import uuid

import tornado.web

from labtrack.errors import InvalidParameterValue, ResourceDoesNotExist
from labtrack.server.request import PayloadTooLarge
from labtrack.server.router import Router

router = Router()
PROXY_PATH = "/api/2.0/mlflow-artifacts/artifacts"
CHUNK_BYTES = 1024 * 1024


@router.get("/api/2.0/mlflow/artifacts/list")
def list_run_artifacts(request, context):
    """List a run's artifacts under path (paths relative to the run's artifact root)."""
    run_id = request.string("run_id") or request.string("run_uuid")
    if not run_id:
        request.string("run_id", required=True)
    info = context.tracking.get_run_info(run_id)
    files = context.tracking.list_artifacts(run_id, request.string("path"))
    return {
        "root_uri": context.wire.public_uri(info.artifact_uri),
        "files": [f.to_dict() for f in files],
    }


@router.get(PROXY_PATH)
def list_proxied_artifacts(request, context):
    """List a folder of the artifact store (names relative to that folder)."""
    files = context.proxy.list_artifacts(request.string("path"))
    return {"files": [{**f.to_dict(), "path": posixpath.basename(f.path)} for f in files]}


class ArtifactFileMixin:
    """GET (stream a file out), PUT (stream a file in) and DELETE of one artifact file.

    Mixed into a tornado handler decorated with ``stream_request_body``; the host class
    provides authentication and ``write_error``.
    """

    context = None  # set by initialize()

    def initialize(self, context, **kwargs):
        self.context = context
        self._upload = None
        self._temporary = None

    async def prepare(self):
        await super().prepare()  # authentication
        if self.request.method == "PUT":
            # Refuse a declared oversize body with a JSON 413 here; past this point tornado
            # would drop the connection with a bare 400.
            length = self.request.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > self.context.max_upload_bytes:
                raise PayloadTooLarge(
                    f"Artifact file is larger than the limit of {self.context.max_upload_bytes} "
                    "bytes (LabTrack max_upload_bytes).")
            self.request.connection.set_max_body_size(self.context.max_upload_bytes)
            target = self.context.proxy.resolve(self.path_kwargs["path"])
            self._temporary = target.with_name(f".{target.name}.upload-{uuid.uuid4().hex}")
            await self.context.run(self._open_upload, target)

    def _open_upload(self, target) -> None:
        if target.is_dir():
            raise InvalidParameterValue(f"'{self.path_kwargs['path']}' is a directory.")
        target.parent.mkdir(parents=True, exist_ok=True)
        self.context.proxy.resolve(self.path_kwargs["path"])  # again, after mkdir
        self._upload = open(self._temporary, "wb")  # noqa: SIM115 - closed in put()

    async def data_received(self, chunk: bytes) -> None:
        if self._upload is not None:
            await self.context.run(self._upload.write, chunk)

    def _discard_upload(self) -> None:
        if self._upload is not None:
            self._upload.close()
            self._upload = None
        if self._temporary is not None and self._temporary.exists():
            self._temporary.unlink()

    def on_connection_close(self) -> None:
        self._discard_upload()
        super().on_connection_close()

    def on_finish(self) -> None:
        self._discard_upload()

    # @authenticated: see EndpointMixin (jupyter_server's check of extension handlers).
    @tornado.web.authenticated
    async def put(self, path: str) -> None:
        upload, self._upload = self._upload, None
        await self.context.run(upload.close)
        target = self.context.proxy.resolve(path)
        await self.context.run(os.replace, self._temporary, target)
        self._temporary = None
        self.set_header("Content-Type", "application/json")
        self.finish("{}")

    @tornado.web.authenticated
    async def get(self, path: str) -> None:
        source = self.context.proxy.resolve(path)
        if not await self.context.run(source.is_file):
            raise ResourceDoesNotExist(f"No artifact file at '{path}'.")
        mime, _ = mimetypes.guess_type(source.name)
        self.set_header("Content-Type", mime or "application/octet-stream")
        self.set_header("Content-Disposition", f'attachment; filename="{source.name}"')
        self.set_header("X-Content-Type-Options", "nosniff")
        with open(source, "rb") as stream:
            while chunk := await self.context.run(stream.read, CHUNK_BYTES):
                self.write(chunk)
                await self.flush()
        self.finish()

    @tornado.web.authenticated
    async def delete(self, path: str) -> None:
        await self.context.run(self.context.proxy.delete, path)
        self.set_header("Content-Type", "application/json")
        self.finish("{}")
