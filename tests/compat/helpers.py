"""Helpers of the compatibility tests (the fixtures live in ``conftest.py``)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import NamedTuple

import requests


class TrackingServer(NamedTuple):
    """A running server: the mlflow tracking URI, its token, the store folder (the SQLite
    database and the artifacts) and the database the store is in."""

    uri: str
    token: str
    store_dir: Path
    backend: str = "sqlite"

    @property
    def artifact_root(self) -> Path:
        """Where the server keeps artifacts (both hosts are started with this folder)."""
        return self.store_dir / "artifacts"

    @property
    def kind(self) -> str:
        return "jupyter" if self.uri.endswith("/labtrack") else "standalone"

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
