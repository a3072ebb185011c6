"""A real ``labtrack server`` subprocess on a free loopback port, for tests that need one."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import requests

START_TIMEOUT_S = 60
LABTRACK = str(Path(sys.executable).parent / "labtrack")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_environment(base: Path) -> dict[str, str]:
    """This environment without labtrack's and mlflow's variables, with a home in ``base``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABTRACK_", "MLFLOW_"))}
    env.update(LABTRACK_HOME=str(base / "home"), PYTHONUNBUFFERED="1")
    return env


@contextlib.contextmanager
def labtrack_server(base: Path, arguments: Sequence[str], token: str,
                    timeout_s: float = START_TIMEOUT_S) -> Iterator[str]:
    """``labtrack server --host 127.0.0.1 --port <free> *arguments``, logging to
    ``base/server-<attempt>.log``; yields its URL once ``/health`` answers ``token``, and stops
    it (SIGTERM, then kill) afterwards. Another free port is tried when the first is taken."""
    env = clean_environment(base)
    for attempt in range(5):
        port = free_port()
        log = base / f"server-{attempt}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [LABTRACK, "server", "--host", "127.0.0.1", "--port", str(port), *arguments],
                env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout_s
        while process.poll() is None and time.monotonic() < deadline:
            try:
                if requests.get(f"{url}/health", timeout=5, headers={
                        "Authorization": f"Bearer {token}"}).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        if process.poll() is None and time.monotonic() < deadline:
            try:
                yield url
            finally:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            return
        if process.poll() is None:
            process.kill()
            process.wait()
        if "in use" not in log.read_text(errors="replace").lower():
            raise RuntimeError(f"labtrack server did not start:\n{log.read_text()}")
    raise RuntimeError("labtrack server: no free port")
