"""Helpers of the compatibility tests (the fixtures live in ``conftest.py``)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, NamedTuple

import requests


class TrackingServer(NamedTuple):
    """A running server: the mlflow tracking URI, its token, the store folder (the SQLite
    database and the artifacts), the database the store is in ("sqlite" or "postgresql") and,
    for a server keeping artifacts in S3, the endpoint and the ``s3://`` artifact root."""

    uri: str
    token: str
    store_dir: Path
    backend: str = "sqlite"
    s3: Any = None  # tests.object_store.S3Endpoint
    s3_root: str | None = None

    @property
    def artifact_root(self) -> Path:
        """Where a server with local artifacts keeps them (both hosts are started with this
        folder)."""
        assert self.s3 is None, "this server keeps its artifacts in S3"
        return self.store_dir / "artifacts"

    @property
    def kind(self) -> str:
        if self.uri.endswith("/labtrack"):
            return "jupyter"
        return "-".join(["standalone"] + (["postgres"] if self.backend == "postgresql" else [])
                        + (["s3"] if self.s3 is not None else []))

    def stored_location(self, artifact_uri: str) -> str:
        """Where the artifacts behind an ``mlflow-artifacts:/…`` URI are kept: a folder or
        an ``s3://`` URI."""
        relative = artifact_uri.removeprefix("mlflow-artifacts:/").lstrip("/")
        assert relative != artifact_uri, artifact_uri
        if self.s3 is not None:
            return f"{self.s3_root}/{relative}"
        return str(self.artifact_root / relative)

    def stored_files(self, artifact_uri: str) -> dict[str, bytes]:
        """Every file kept under an ``mlflow-artifacts:/…`` folder, read from the disk or the
        bucket directly, by path relative to that folder."""
        location = self.stored_location(artifact_uri)
        if self.s3 is not None:
            return self.s3.tree(location)
        folder = Path(location)
        return {p.relative_to(folder).as_posix(): p.read_bytes()
                for p in sorted(folder.rglob("*")) if p.is_file()}

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def local_path(self, artifact_uri: str) -> Path:
        """The folder on the server's disk behind an ``mlflow-artifacts:/…`` URI."""
        prefix = "mlflow-artifacts:/"
        assert artifact_uri.startswith(prefix), artifact_uri
        return self.artifact_root / artifact_uri[len(prefix):].lstrip("/")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class RawApi:
    """Raw HTTP with the token, one connection per request (nothing is normalised away).

    ``requests`` would resolve ``../`` and decode ``%2e`` before sending; here the target is
    put on the wire exactly as given.
    """

    def __init__(self, server: TrackingServer):
        self.server = server

    def request(self, method: str, path: str, *, data: bytes | None = None,
                json: dict | None = None, params: dict | None = None,
                headers: dict | None = None) -> requests.Response:
        prepared = requests.Request(
            method, self.server.uri + "/", data=data, json=json, params=params,
            headers={**self.server.headers, "Connection": "close", **(headers or {})},
        ).prepare()
        query = prepared.url.partition("?")[2]
        prepared.url = self.server.uri + path + (("&" if "?" in path else "?") + query
                                                  if query else "")
        with requests.Session() as session:
            return session.send(prepared, timeout=60)

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, **kwargs):
        return self.request("POST", path, **kwargs)

    def put(self, path, **kwargs):
        return self.request("PUT", path, **kwargs)

    def delete(self, path, **kwargs):
        return self.request("DELETE", path, **kwargs)
