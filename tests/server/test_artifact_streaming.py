"""A large artifact streams through ``labtrack server``'s proxy in both directions without the
server ever holding it: its peak resident memory grows by far less than the file's size, with
the artifacts in a local folder and in S3 (a multipart upload to moto's server).

The server runs as a subprocess so that its memory is its own; the size here is modest (see
``benchmarks/bench_artifacts.py`` for 1 GB and the comparison with ``mlflow server``).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.standalone_server import free_port

SIZE = 200 * 1024 * 1024
BLOCK = 1024 * 1024
# Peak memory may grow by a few buffers (one S3 part, one read block, tornado's chunks and
# the allocator's slack), never by a sizeable share of the file.
ALLOWED_GROWTH = SIZE // 8
START_TIMEOUT_S = 60

pytestmark = pytest.mark.slow



def peak_rss(pid: int) -> int:
    """The process's peak resident set size (VmHWM) in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for process {pid}")


def content(size: int, digest):
    """``size`` bytes of varied data in 1 MiB chunks, fed to ``digest`` as they are made."""
    seed = os.urandom(BLOCK)
    for index in range((size + BLOCK - 1) // BLOCK):
        chunk = (index.to_bytes(8, "big") + seed[8:])[: min(BLOCK, size - index * BLOCK)]
        digest.update(chunk)
        yield chunk


class Server:
    """``labtrack server`` in a subprocess; ``leftovers()`` lists what unfinished uploads
    left in its store (temporary files, or S3 multipart uploads in progress)."""

    def __init__(self, tmp_path: Path, destination: str, env: dict[str, str], leftovers):
        self.leftovers = leftovers
        self.token = secrets.token_hex(8)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / "server.log"
        command = [str(Path(sys.executable).with_name("labtrack")), "server", "--host",
                   "127.0.0.1", "--port", str(self.port), "--backend-store-uri",
                   str(tmp_path / "store"), "--artifacts-destination", destination,
                   "--token", self.token]
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                command, env={**os.environ, "LABTRACK_HOME": str(tmp_path / "home"), **env},
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {self.token}"
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert self.process.poll() is None, self.log.read_text()
            try:
                if self.session.get(f"{self.url}/health", timeout=5).ok:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.1)

    def round_trip(self, path: str, size: int) -> None:
        """Upload ``size`` bytes (chunked, never whole in this process either), download
        them, and check they came back unchanged."""
        sent = hashlib.sha256()
        url = f"{self.url}/api/2.0/mlflow-artifacts/artifacts/{path}"
        reply = self.session.put(url, data=content(size, sent), timeout=600)
        assert reply.status_code == 200, reply.text
        received, length = hashlib.sha256(), 0
        with self.session.get(url, stream=True, timeout=600) as reply:
            assert reply.status_code == 200, reply.text
            for chunk in reply.iter_content(BLOCK):
                received.update(chunk)
                length += len(chunk)
        assert (length, received.hexdigest()) == (size, sent.hexdigest())

    def stop(self) -> None:
        self.session.close()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(params=["local", "s3"])
def server(request, tmp_path):
    if request.param == "local":
        destination, env = tmp_path / "artifacts", {}

        def leftovers():
            return [p.name for p in destination.rglob("*") if p.is_file()]

    else:
        endpoint = request.getfixturevalue("s3_endpoint")
        destination, env = endpoint.fresh_root(), endpoint.environment()

        def leftovers():
            return endpoint.unfinished_uploads(destination)

    server = Server(tmp_path, str(destination), env, leftovers)
    yield server
    server.stop()


def test_a_large_artifact_streams_through_the_proxy_in_flat_memory(server):
    # Warm up: the first transfer loads the object-store client and fills the pools.
    server.round_trip("0/warm-up/small.bin", 24 * 1024 * 1024)
    before = peak_rss(server.process.pid)
    server.round_trip("0/large/weights.bin", SIZE)
    growth = peak_rss(server.process.pid) - before
    assert growth < ALLOWED_GROWTH, (
        f"the server's peak memory grew by {growth / 2**20:.0f} MiB moving a "
        f"{SIZE / 2**20:.0f} MiB file")


def test_an_upload_cut_off_midway_leaves_nothing_behind(server):
    """The client disconnects after 20 of 40 MiB (past the first S3 part): no file appears,
    and the multipart upload is aborted rather than left to accumulate."""
    path = "0/cut/weights.bin"
    with socket.create_connection(("127.0.0.1", server.port)) as connection:
        connection.sendall(
            f"PUT /api/2.0/mlflow-artifacts/artifacts/{path} HTTP/1.1\r\n"
            f"Host: 127.0.0.1\r\nAuthorization: Bearer {server.token}\r\n"
            f"Content-Length: {40 * BLOCK}\r\n\r\n".encode())
        for chunk in content(20 * BLOCK, hashlib.sha256()):
            connection.sendall(chunk)
    url = f"{server.url}/api/2.0/mlflow-artifacts/artifacts"
    deadline = time.monotonic() + 30
    while True:
        listing = server.session.get(url, params={"path": "0/cut"}, timeout=30).json()
        leftovers = server.leftovers()
        if not listing.get("files") and not leftovers:
            break
        assert time.monotonic() < deadline, (listing, leftovers)
        time.sleep(0.2)
    assert server.session.get(f"{url}/{path}", timeout=30).status_code == 404
