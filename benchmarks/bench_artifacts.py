"""Benchmark a large artifact through the proxied artifact API into S3: ``labtrack server`` vs
``mlflow server``, both with ``--artifacts-destination s3://…``.

    .venv/bin/python benchmarks/bench_artifacts.py                  # 1 GB (1024 MiB)
    .venv/bin/python benchmarks/bench_artifacts.py --size-mb 200    # a quicker run
    .venv/bin/python benchmarks/bench_artifacts.py --mlflow-python PATH

Starts moto's S3-compatible server on a loopback port (``moto[server]``, in labtrack's
``test`` extra) with one bucket, then each server in turn on its own prefix of that bucket
(labtrack first, then MLflow, one at a time so they never compete). The same client — plain
HTTP from this interpreter, streamed in 1 MiB chunks both ways, never holding the file —
uploads the file with ``PUT /api/2.0/mlflow-artifacts/artifacts/<path>`` and downloads it with
``GET``, checking its SHA-256, after an untimed warm-up round trip of 40 MiB (the first use
of an S3 client loads its modules and fills its pools). While each transfer runs, the
resident memory of the server's whole process group (MLflow's uvicorn workers included) is
sampled from ``/proc`` every 20 ms. Reports throughput and the peak memory over the idle
server's. Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import requests
from _workloads import progress
from bench_rest import Server, free_port
from bench_tracking import (
    HERE,
    WORK,
    labtrack_commit,
    machine_line,
    mlflow_env,
    mlflow_python,
    write_atomically,
)

import labtrack

RESULTS = HERE / "results" / "artifacts-latest.md"
BUCKET = "labtrack-bench"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
               "AWS_DEFAULT_REGION": "us-east-1"}
BLOCK = 1024 * 1024
SAMPLE_SECONDS = 0.02
WARM_UP = 40 * 1024 * 1024  # more than two multipart parts
PROXY = "/api/2.0/mlflow-artifacts/artifacts"


# -- memory ----------------------------------------------------------------------------------


def group_rss(group: int) -> int:
    """Resident bytes of every process in the process group ``group``."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
            if int(fields[2]) != group:
                continue
            for line in (stat.parent / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            continue  # the process ended meanwhile
    return total


class PeakMemory:
    """Samples ``group_rss`` in a thread while the ``with`` block runs; ``peak`` after it."""

    def __init__(self, group: int):
        self.group = group
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, group_rss(self.group))
            self._stop.wait(SAMPLE_SECONDS)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, group_rss(self.group))


# -- S3 --------------------------------------------------------------------------------------


class Moto:
    """moto's S3 server in its own process group, with ``BUCKET``."""

    def __init__(self, work: Path):
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log = work / "moto.log"
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(self.url, timeout=2)
                break
            except requests.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto did not start:\n{self.log.read_text()}") from None
                time.sleep(0.1)
        import s3fs

        self.fs = s3fs.S3FileSystem(key=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                                    secret=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                                    client_kwargs={"endpoint_url": self.url},
                                    skip_instance_cache=True)
        self.fs.mkdir(BUCKET)

    def size(self, key: str) -> int:
        return self.fs.info(f"{BUCKET}/{key}")["size"]

    def remove(self, prefix: str) -> None:
        """Free moto's memory between the two systems."""
        self.fs.rm(f"{BUCKET}/{prefix}", recursive=True)

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=20)


def ensure_boto3(python: Path, requested: bool) -> None:
    """``mlflow server`` writes to S3 with boto3, which ``pip install mlflow`` leaves out."""
    probe = subprocess.run([str(python), "-c", "import boto3"], capture_output=True)
    if probe.returncode == 0:
        return
    if requested:
        raise SystemExit(f"{python} has no boto3, which mlflow server needs for s3:// "
                         f"artifacts: {python} -m pip install boto3")
    progress("Installing boto3 into MLflow's benchmark venv (one time)...")
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "boto3"], check=True)


# -- the two servers -------------------------------------------------------------------------


def labtrack_server(work: Path, moto: Moto) -> Server:
    store = work / "labtrack"
    store.mkdir(parents=True, exist_ok=True)
    port = free_port()
    token = secrets.token_urlsafe(24)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("LABTRACK_")},
           **CREDENTIALS}
    command = [str(Path(sys.executable).with_name("labtrack")), "server", "--host", "127.0.0.1",
               "--port", str(port), "--backend-store-uri", str(store),
               "--artifacts-destination", f"s3://{BUCKET}/labtrack",
               "--s3-endpoint-url", moto.url, "--token", token]
    return Server("labtrack server", command, env, store, work / "labtrack-server.log", port,
                  token)


def mlflow_server(python: Path, work: Path, moto: Moto) -> Server:
    home = work / "mlflow"
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {**mlflow_env(), **CREDENTIALS, "MLFLOW_S3_ENDPOINT_URL": moto.url}
    command = [str(python), "-m", "mlflow", "server",
               "--backend-store-uri", f"sqlite:///{(home / 'mlflow.db').resolve()}",
               "--artifacts-destination", f"s3://{BUCKET}/mlflow",
               "--host", "127.0.0.1", "--port", str(port)]
    return Server("mlflow server", command, env, home, work / "mlflow-server.log", port)


# -- the transfer ----------------------------------------------------------------------------


def content(size: int, digest):
    seed = os.urandom(BLOCK)
    for index in range((size + BLOCK - 1) // BLOCK):
        chunk = (index.to_bytes(8, "big") + seed[8:])[: min(BLOCK, size - index * BLOCK)]
        digest.update(chunk)
        yield chunk


def round_trip(session: requests.Session, url: str, size: int) -> None:
    """Untimed: upload and download ``size`` bytes."""
    session.put(url, data=content(size, hashlib.sha256()), timeout=600).raise_for_status()
    with session.get(url, stream=True, timeout=600) as reply:
        reply.raise_for_status()
        for _ in reply.iter_content(BLOCK):
            pass


def measure(server: Server, size: int) -> dict:
    """Upload then download ``size`` bytes through ``server``'s proxy, after an untimed
    round trip of ``WARM_UP`` bytes (the S3 client's first use loads its modules)."""
    session = requests.Session()
    if server.token:
        session.headers["Authorization"] = f"Bearer {server.token}"
    round_trip(session, f"{server.url}{PROXY}/0/bench/warm-up.bin", WARM_UP)
    url = f"{server.url}{PROXY}/0/bench/weights.bin"
    group = server.process.pid
    idle = group_rss(group)
    sent = hashlib.sha256()
    with PeakMemory(group) as upload_memory:
        started = time.perf_counter()
        reply = session.put(url, data=content(size, sent), timeout=3600)
        upload_seconds = time.perf_counter() - started
    reply.raise_for_status()
    received, length = hashlib.sha256(), 0
    with PeakMemory(group) as download_memory:
        started = time.perf_counter()
        with session.get(url, stream=True, timeout=3600) as reply:
            reply.raise_for_status()
            for chunk in reply.iter_content(BLOCK):
                received.update(chunk)
                length += len(chunk)
        download_seconds = time.perf_counter() - started
    session.close()
    if (length, received.hexdigest()) != (size, sent.hexdigest()):
        raise RuntimeError(f"{server.name}: the download differs from the upload")
    return {"idle": idle, "upload_seconds": upload_seconds, "upload_peak": upload_memory.peak,
            "download_seconds": download_seconds, "download_peak": download_memory.peak}


# -- report ----------------------------------------------------------------------------------


def mib(count: float) -> str:
    return f"{count / 2**20:,.0f} MiB"


def render(size: int, results: dict[str, dict], load: float | None, elapsed: float,
           mlflow_version: str) -> str:
    rows = []
    for name, r in results.items():
        rows.append(
            f"| {name} | {size / 2**20 / r['upload_seconds']:,.0f} MiB/s | "
            f"{size / 2**20 / r['download_seconds']:,.0f} MiB/s | {mib(r['idle'])} | "
            f"{mib(r['upload_peak'])} (+{mib(r['upload_peak'] - r['idle'])}) | "
            f"{mib(r['download_peak'])} (+{mib(r['download_peak'] - r['idle'])}) |")
    lt, ml = results.get("labtrack server"), results.get("mlflow server")
    ratios = []
    if lt and ml:
        ratios = [
            "",
            f"Upload: labtrack {ml['upload_seconds'] / lt['upload_seconds']:.2f}× MLflow's "
            f"throughput; download: {ml['download_seconds'] / lt['download_seconds']:.2f}×.",
        ]
    return "\n".join([
        "# labtrack vs MLflow: a large artifact through the proxy into S3",
        "",
        f"Written by `benchmarks/bench_artifacts.py --size-mb {size // 2**20}` in "
        f"{elapsed:.0f} s. One file of {mib(size)}, uploaded then downloaded through each "
        "server's `mlflow-artifacts` proxy, streamed in 1 MiB chunks by the same client, "
        "into moto's S3-compatible server on loopback, after an untimed round trip of "
        f"{mib(WARM_UP)}. Memory: resident set of the server's whole process group, sampled "
        "every 20 ms; \"+\" is the growth over the server idle after the warm-up.",
        "",
        "| server | upload | download | idle memory | peak during upload | "
        "peak during download |",
        "|---|---|---|---|---|---|",
        *rows,
        *ratios,
        "",
        "## Machine",
        "",
        machine_line(load),
        f"- labtrack {labtrack.__version__} (commit {labtrack_commit()}): `labtrack server "
        "--artifacts-destination s3://… --s3-endpoint-url …`, Python "
        f"{platform.python_version()}",
        f"- MLflow {mlflow_version} (own venv, with boto3): `mlflow server "
        "--artifacts-destination s3://…` with `MLFLOW_S3_ENDPOINT_URL`, its defaults "
        "otherwise (uvicorn workers)",
        "- S3: moto's standalone server (`python -m moto.server`), which keeps objects in its "
        "own memory, not counted above",
        "",
    ])


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024,
                        help="size of the artifact in MiB (default: 1024)")
    parser.add_argument("--mlflow-python", metavar="PATH",
                        help="python of an existing venv with MLflow 3.17.x and boto3 "
                             "(default: benchmarks/.work/mlflow-venv, created when missing)")
    parser.add_argument("--only", choices=["labtrack", "mlflow"],
                        help="measure one server only")
    parser.add_argument("--output", type=Path, metavar="PATH",
                        help="where to write the Markdown table (default: "
                             "benchmarks/results/artifacts-latest.md)")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    size = args.size_mb * 2**20
    load = os.getloadavg()[0]
    started = time.perf_counter()
    work = WORK / "artifacts"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    python = None
    if args.only != "labtrack":
        python = mlflow_python(args.mlflow_python)
        ensure_boto3(python, bool(args.mlflow_python))
    results: dict[str, dict] = {}
    mlflow_version = "?"
    with ExitStack() as stack:
        moto = Moto(work)
        stack.callback(moto.stop)
        servers = []
        if args.only != "mlflow":
            servers.append((labtrack_server(work, moto), "labtrack"))
        if python is not None:
            servers.append((mlflow_server(python, work, moto), "mlflow"))
            mlflow_version = subprocess.run(
                [str(python), "-c", "import mlflow; print(mlflow.__version__)"],
                capture_output=True, text=True, env=mlflow_env()).stdout.strip() or "?"
        for server, prefix in servers:
            with ExitStack() as running:
                running.callback(server.stop)
                server.start()
                server.wait_ready()
                server.wait_idle()
                progress(f"{server.name}: {mib(size)} up and down...")
                results[server.name] = measure(server, size)
                if moto.size(f"{prefix}/0/bench/weights.bin") != size:
                    raise RuntimeError(f"{server.name} stored a file of the wrong size")
            moto.remove(prefix)
    text = render(size, results, load, time.perf_counter() - started, mlflow_version)
    print("\n" + text)
    output = args.output or RESULTS
    write_atomically(output, text)
    progress(f"Written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
