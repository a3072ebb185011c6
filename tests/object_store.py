"""An S3-compatible endpoint for the tests: moto's standalone server in a subprocess on a free
loopback port, with one bucket. Tests read what landed in it through s3fs, independently of
labtrack's repository."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import requests

from tests.standalone_server import free_port

BUCKET = "labtrack-tests"
# moto accepts any credentials; clients need some, from the usual environment variables.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
START_TIMEOUT_S = 60



class S3Endpoint:
    """A running moto server (``url``) holding ``BUCKET``."""

    def __init__(self, log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self._wait_until_ready()
        self.fs = self._filesystem()
        self.fs.mkdir(BUCKET)

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto server exited; log:\n{self.log.read_text()}")
            try:
                requests.get(self.url, timeout=2)
                return
            except requests.ConnectionError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto server did not answer in time; log:\n{self.log.read_text()}")

    def _filesystem(self):
        import s3fs

        return s3fs.S3FileSystem(key=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                                 secret=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                                 client_kwargs={"endpoint_url": self.url},
                                 use_listings_cache=False, skip_instance_cache=True)

    def fresh_root(self) -> str:
        """An unused ``s3://`` prefix: each test (or server) gets its own."""
        return f"s3://{BUCKET}/{uuid.uuid4().hex[:12]}"

    def tree(self, uri: str) -> dict[str, bytes]:
        """Every object under the ``s3://`` folder ``uri``, by path relative to it."""
        prefix = uri.removeprefix("s3://").rstrip("/")
        return {name[len(prefix) + 1:]: self.fs.cat_file(name)
                for name in sorted(self.fs.find(prefix))}

    def put(self, uri: str, data: bytes) -> None:
        """Write an object directly, bypassing labtrack (as another tool would)."""
        self.fs.pipe_file(uri.removeprefix("s3://"), data)

    def unfinished_uploads(self, uri: str) -> list[str]:
        """Keys of multipart uploads under ``uri`` begun and neither completed nor aborted."""
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        answer = self.fs.call_s3("list_multipart_uploads", Bucket=bucket, Prefix=prefix)
        return [upload["Key"] for upload in answer.get("Uploads", [])]

    def environment(self) -> dict[str, str]:
        """What a labtrack process needs to use this endpoint."""
        return {**CREDENTIALS, "MLFLOW_S3_ENDPOINT_URL": self.url}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def set_credentials() -> dict[str, str | None]:
    """Put the test credentials into this process's environment; returns what to restore."""
    saved = {name: os.environ.get(name) for name in CREDENTIALS}
    os.environ.update(CREDENTIALS)
    return saved


def restore(saved: dict[str, str | None]) -> None:
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
