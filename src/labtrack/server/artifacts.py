"""Artifact endpoints: MLflow's run listing and its proxied artifact service.

Files under the server's artifact root are addressed by their path relative to it
(``<experiment>/<run>/artifacts/<file>``), which is what ``mlflow-artifacts:/`` URIs carry.
The upload, download and delete of single files stream through ``ArtifactFileMixin``; the
listings are ordinary JSON endpoints.
"""

from __future__ import annotations

import mimetypes
import posixpath

import tornado.web

from labtrack.server.request import PayloadTooLarge
from labtrack.server.router import Router
from labtrack.store.artifacts import safe_relative_path

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
    provides authentication and ``write_error``. The body goes to the artifact repository
    chunk by chunk as tornado reads it (a local temporary file, or an object store's
    multipart upload), and a download is read and sent in ``CHUNK_BYTES`` pieces, each
    flushed before the next is read: a file never sits whole in the server's memory.
    """

    context = None  # set by initialize()

    def initialize(self, context, **kwargs):
        self.context = context
        self._upload = None

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
            self._upload = await self.context.run(self.context.proxy.open_write,
                                                  self.path_kwargs["path"])

    async def data_received(self, chunk: bytes) -> None:
        if self._upload is not None:
            await self.context.run(self._upload.write, chunk)

    def _discard_upload(self) -> None:
        upload, self._upload = self._upload, None
        if upload is not None:
            # In the pool, as every repository call: discarding may be a request to the store.
            self.context.executor.submit(upload.discard)

    def on_connection_close(self) -> None:
        self._discard_upload()
        super().on_connection_close()

    def on_finish(self) -> None:
        self._discard_upload()

    # @authenticated: see EndpointMixin (jupyter_server's check of extension handlers).
    @tornado.web.authenticated
    async def put(self, path: str) -> None:
        upload, self._upload = self._upload, None
        try:
            await self.context.run(upload.commit)
        finally:
            await self.context.run(upload.discard)  # a no-op once committed
        self.set_header("Content-Type", "application/json")
        self.finish("{}")

    @tornado.web.authenticated
    async def get(self, path: str) -> None:
        stream = await self.context.run(self.context.proxy.open_read, path)
        try:
            name = posixpath.basename(safe_relative_path(path))
            mime, _ = mimetypes.guess_type(name)
            self.set_header("Content-Type", mime or "application/octet-stream")
            self.set_header("Content-Disposition", f'attachment; filename="{name}"')
            self.set_header("X-Content-Type-Options", "nosniff")
            while chunk := await self.context.run(stream.read, CHUNK_BYTES):
                self.write(chunk)
                await self.flush()
        finally:
            await self.context.run(stream.close)
        self.finish()

    @tornado.web.authenticated
    async def delete(self, path: str) -> None:
        await self.context.run(self.context.proxy.delete, path)
        self.set_header("Content-Type", "application/json")
        self.finish("{}")
