"""Fixtures for the project tests: real example projects copied to tmp_path, real git
repositories made here, ``labtrack`` run as a real subprocess on a real SQLite store."""

from __future__ import annotations

import base64
import hashlib
import os
import queue
import shutil
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

import labtrack

FIXTURES = Path(__file__).parent / "fixtures"
EXAMPLES = Path(__file__).parents[2] / "examples"
TIMEOUT_S = 300  # bounds every subprocess; never reached when things work

# What every child process the tests start gets: no telemetry, no retries that hide errors.
QUIET_MLFLOW = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
}


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                            timeout=TIMEOUT_S)
    assert result.returncode == 0, f"git {args}: {result.stderr}"
    return result.stdout.strip()


def init_repo(repo: Path) -> None:
    repo.mkdir(parents=True, exist_ok=True)
    git(repo, "init", "--quiet", "--initial-branch=main")
    git(repo, "config", "user.name", "Test User")
    git(repo, "config", "user.email", "test@example.com")
    git(repo, "config", "commit.gpgsign", "false")


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def demo(tmp_path) -> Path:
    """The demo project, as a plain folder (not in any git repository)."""
    target = tmp_path / "demo"
    shutil.copytree(FIXTURES / "demo", target)
    return target


class Repo:
    """A git repository holding the demo project in ``demo/``: commit ``first`` (tag v1),
    branch ``feature`` with a FEATURE file, and ``main`` one commit further."""

    def __init__(self, root: Path):
        self.root = root
        init_repo(root)
        shutil.copytree(FIXTURES / "demo", root / "demo")
        (root / "README.txt").write_text("a repository with a project inside\n")
        (root / ".gitignore").write_text("__pycache__/\n")
        self.first = commit_all(root, "first")
        git(root, "tag", "v1")
        git(root, "checkout", "--quiet", "-b", "feature")
        (root / "demo" / "FEATURE").write_text("on the feature branch\n")
        self.feature = commit_all(root, "feature")
        git(root, "checkout", "--quiet", "main")
        (root / "README.txt").write_text("a repository with a project inside, updated\n")
        self.main = commit_all(root, "second")


@pytest.fixture
def repo(tmp_path) -> Repo:
    return Repo(tmp_path / "repo")


@pytest.fixture
def store_uri(tmp_path) -> str:
    return str(tmp_path / "store")


@pytest.fixture
def child_env(store_uri) -> dict[str, str]:
    """The environment of a ``labtrack`` subprocess: this test's data directory and store."""
    return {**os.environ, **QUIET_MLFLOW, "LABTRACK_TRACKING_URI": store_uri}


@pytest.fixture
def cli(child_env, tmp_path):
    """Run ``labtrack ARGS…`` to completion; returns the CompletedProcess (text)."""

    def run(*args: str, env: dict | None = None, cwd: Path | None = None):
        return subprocess.run(
            [sys.executable, "-m", "labtrack.cli", *args], cwd=cwd or tmp_path,
            env=env or child_env, capture_output=True, text=True, timeout=TIMEOUT_S,
        )

    return run


@pytest.fixture
def tracking(store_uri) -> labtrack.TrackingClient:
    return labtrack.TrackingClient(store_uri)


def runs_of(client: labtrack.TrackingClient, experiment_id: str = "0") -> list:
    return list(client.search_runs([experiment_id], max_results=1000))


def only_run(client: labtrack.TrackingClient, experiment_id: str = "0"):
    runs = runs_of(client, experiment_id)
    assert len(runs) == 1, [r.info.run_id for r in runs]
    return runs[0]


def artifact_text(client: labtrack.TrackingClient, run_id: str, path: str, tmp: Path) -> str:
    local = client.download_artifacts(run_id, path, tmp / f"download-{run_id}")
    return Path(local).read_text()


class LineReader:
    """Reads a process's text stream in a thread so a test can wait for a line (bounded)."""

    def __init__(self, stream):
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        try:
            for line in stream:
                self.lines.put(line)
        finally:
            stream.close()
            self.lines.put(None)

    def wait_for(self, predicate, count: int = 1, timeout: float = TIMEOUT_S) -> list[str]:
        matched = [line for line in self.seen if predicate(line)]
        while len(matched) < count:
            line = self.lines.get(timeout=timeout)
            if line is None:
                raise AssertionError(f"stream ended; seen: {''.join(self.seen)}")
            self.seen.append(line)
            if predicate(line):
                matched.append(line)
        return matched

    def rest(self) -> str:
        self._thread.join(TIMEOUT_S)
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.seen.append(line)
        return "".join(self.seen)


def build_wheel(folder: Path, name: str = "tinydep", version: str = "1.0") -> Path:
    """A minimal pure-Python wheel, made by hand: pip installs it without any index."""
    folder.mkdir(parents=True, exist_ok=True)
    info = f"{name}-{version}.dist-info"
    files = {
        f"{name}.py": b"VALUE = 42\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        .encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: labtrack-tests\n"
        b"Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return wheel


def wait_until_gone(pid: int, timeout: float = TIMEOUT_S) -> None:
    """Bounded polling until no process has ``pid`` (or it is a zombie of someone else)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().split(") ", 1)[1].startswith("Z"):
                    return  # dead, waiting to be reaped by its (new) parent
        except (FileNotFoundError, IndexError):
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} is still alive")
