"""Benchmark labtrack's scoring server against ``mlflow models serve``: the same small
scikit-learn model, on loopback, on one machine, in one run.

    .venv/bin/python benchmarks/bench_serving.py            # full run, about two minutes
    .venv/bin/python benchmarks/bench_serving.py --quick    # smoke test
    .venv/bin/python benchmarks/bench_serving.py --mlflow-python PATH

One model folder is saved once (``labtrack.sklearn.save_model``: MLflow's sklearn format,
cloudpickle) and served by both: ``labtrack models serve -m <folder>`` and ``mlflow models
serve -m <folder> --env-manager local`` (MLflow 3.17 from its own virtual environment,
``benchmarks/.work/mlflow-venv``, created on first use as for ``bench_tracking.py``, or
``--mlflow-python``). Both run one server process with their default settings. An asyncio load
generator in this process sends the identical HTTP/1.1 request (``dataframe_split``, one row of
four features) over keep-alive connections: a warm-up, then N requests at concurrency 16
(throughput and latency under load) and at concurrency 1 (latency of a lone caller). Each phase
is split into rounds in which the two servers take turns, so both meet the same machine.
Before timing, both must return identical predictions for the same 50 rows. See README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from _workloads import progress
from bench_tracking import (
    MLFLOW_SERIES,
    Report,
    Row,
    Timing,
    check,
    cpu_model,
    format_count,
    format_ratio,
    mlflow_python,
    write_atomically,
)

import labtrack

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work"
RESULTS = HERE / "results" / "serving-latest.md"
FEATURES = 4
START_TIMEOUT_S = 180


@dataclass(frozen=True)
class ServingSizes:
    requests: int  # timed requests at concurrency ``concurrency``, over all rounds
    lone_requests: int  # timed requests at concurrency 1, over all rounds
    warmup: int
    rounds: int  # the servers take turns this many times per phase
    concurrency: int = 16


SIZES = {"full": ServingSizes(20_000, 3_000, 1_000, 4),
         "quick": ServingSizes(2_000, 300, 200, 2)}


# -- the model -------------------------------------------------------------------------------


def save_model(folder: Path) -> list[list[float]]:
    """A logistic regression on four features, saved in MLflow's sklearn format; returns 50
    rows for the correctness check."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    import labtrack.sklearn

    rng = np.random.default_rng(20251127)
    features = rng.random((500, FEATURES))
    labels = (features @ np.array([1.0, -0.5, 0.25, 0.0]) > 0.4).astype(int)
    estimator = LogisticRegression().fit(features, labels)
    shutil.rmtree(folder, ignore_errors=True)
    labtrack.sklearn.save_model(estimator, folder, input_example=features[:2])
    return features[:50].round(6).tolist()


# -- servers ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A scoring server subprocess in its own process group (stopped with its children)."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], port: int,
                 log: Path):
        self.name = name
        self.port = port
        self.log = log
        with open(log, "wb") as out:
            self.process = subprocess.Popen(command, env=env, stdout=out,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start:\n{self.log.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                    sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    if sock.recv(64).startswith(b"HTTP/1.1 200"):
                        return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer /ping:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def start_labtrack(model: Path, work: Path) -> Server:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABTRACK_")}
    env["LABTRACK_HOME"] = str(work / "labtrack-home")
    command = [sys.executable, "-m", "labtrack.cli", "models", "serve", "-m", str(model),
               "--host", "127.0.0.1", "--port", str(port)]
    return Server("labtrack", command, env, port, work / "labtrack-serve.log")


def start_mlflow(python: Path, model: Path, work: Path) -> Server:
    port = free_port()
    env = mlflow_env()
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"  # uvicorn
    command = [str(python.parent / "mlflow"), "models", "serve", "-m", str(model),
               "-h", "127.0.0.1", "-p", str(port), "--env-manager", "local"]
    return Server("MLflow", command, env, port, work / "mlflow-serve.log")


# -- load generator --------------------------------------------------------------------------


def request_bytes(port: int, rows: list[list[float]]) -> bytes:
    body = json.dumps({"dataframe_split": {"columns": [f"f{i}" for i in range(FEATURES)],
                                           "data": rows}}).encode()
    head = (f"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def _connection(port: int, request: bytes, count: int, latencies: list[float],
                      failures: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for _ in range(count):
            start = time.perf_counter()
            writer.write(request)
            status, _ = await _read_response(reader)
            latencies.append(time.perf_counter() - start)
            if status != 200:
                failures.append(status)
    finally:
        writer.close()
        await writer.wait_closed()


@dataclass
class LoadResult:
    requests: int
    seconds: float
    failures: int
    latencies: list[float]

    def add(self, other: LoadResult) -> LoadResult:
        return LoadResult(self.requests + other.requests, self.seconds + other.seconds,
                          self.failures + other.failures, self.latencies + other.latencies)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def load(port: int, total: int, concurrency: int, warmup: int) -> LoadResult:
    """``total`` requests over ``concurrency`` keep-alive connections, after a warm-up."""
    request = request_bytes(port, [[0.1, 0.2, 0.3, 0.4]])

    async def run() -> LoadResult:
        if warmup:
            await asyncio.gather(*[_connection(port, request, max(1, warmup // concurrency),
                                               [], []) for _ in range(concurrency)])
        latencies: list[float] = []
        failures: list[int] = []
        per_connection = total // concurrency
        start = time.perf_counter()
        await asyncio.gather(*[_connection(port, request, per_connection, latencies, failures)
                               for _ in range(concurrency)])
        seconds = time.perf_counter() - start
        return LoadResult(per_connection * concurrency, seconds, len(failures), latencies)

    return asyncio.run(run())


def predictions(port: int, rows: list[list[float]]) -> list:
    async def run() -> list:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request_bytes(port, rows))
        status, body = await _read_response(reader)
        writer.close()
        await writer.wait_closed()
        if status != 200:
            raise RuntimeError(f"HTTP {status}: {body[:300]!r}")
        return json.loads(body)["predictions"]

    return asyncio.run(run())


# -- the comparison --------------------------------------------------------------------------


def per_request(result: LoadResult) -> Timing:
    return Timing(1 / result.rate, f"{format_count(result.rate)} req/s")


def latency(result: LoadResult, fraction: float, label: str) -> Timing:
    return Timing(result.percentile(fraction), label)


def compare(lt: dict[str, LoadResult], ml: dict[str, LoadResult], sizes: ServingSizes,
            rows_agree: bool, rows: int) -> Report:
    report = Report()
    c = sizes.concurrency
    loaded_lt, loaded_ml = lt["concurrent"], ml["concurrent"]
    report.rows.append(Row(
        "throughput", f"1. Throughput: {loaded_lt.requests:,} requests, {c} keep-alive "
        "connections", per_request(loaded_lt), per_request(loaded_ml), 2))
    report.rows.append(Row(
        "p99 under load", f"2. p99 latency at concurrency {c}",
        latency(loaded_lt, 0.99, f"p50 {loaded_lt.percentile(0.5) * 1e3:.2f} ms"),
        latency(loaded_ml, 0.99, f"p50 {loaded_ml.percentile(0.5) * 1e3:.2f} ms"),
        1, "equal or better"))
    lone_lt, lone_ml = lt["lone"], ml["lone"]
    report.rows.append(Row(
        "lone p50", f"3. p50 latency of a lone caller ({lone_lt.requests:,} sequential "
        "requests)", latency(lone_lt, 0.5, f"{format_count(lone_lt.rate)} req/s"),
        latency(lone_ml, 0.5, f"{format_count(lone_ml.rate)} req/s"), 1, "equal or better"))
    report.rows.append(Row(
        "lone p99", "4. p99 latency of a lone caller", latency(lone_lt, 0.99, ""),
        latency(lone_ml, 0.99, ""), 1, "equal or better"))
    check(report, rows_agree, f"both servers returned identical predictions for the same "
          f"{rows} rows")
    failures = {name: r.failures for name, r in
                [("labtrack " + k, v) for k, v in lt.items()] +
                [("MLflow " + k, v) for k, v in ml.items()]}
    counts = ", ".join(f"{name}: {failed} failed" for name, failed in failures.items())
    check(report, not any(failures.values()), f"every timed request answered 200 ({counts})")
    report.lines.append(
        f"labtrack served {format_ratio(loaded_lt.rate / loaded_ml.rate)} MLflow's requests/s "
        f"at concurrency {c} (target ≥ 2×), with a p99 of "
        f"{loaded_lt.percentile(0.99) * 1e3:.2f} ms against "
        f"{loaded_ml.percentile(0.99) * 1e3:.2f} ms (target: equal or better).")
    report.missed = [f"{row.name} ({format_ratio(row.ratio)}, target {row.target_text})"
                     for row in report.rows if not row.met] + report.missed
    return report


NOTES = """\
Ratio = MLflow time / labtrack time for the same work: for throughput, labtrack's requests/s
over MLflow's; for latencies, MLflow's percentile over labtrack's (above 1× means labtrack
answered faster). Both servers loaded the same model folder (saved once by
`labtrack.sklearn.save_model`, MLflow's sklearn format) and ran as one process with their
default settings — labtrack: tornado, predictions on a 4-thread pool; MLflow: `mlflow models
serve --env-manager local`, FastAPI on uvicorn with one worker. The load generator (asyncio,
raw HTTP/1.1 keep-alive, in the benchmark's own process) sent the identical request body
`{"dataframe_split": {"columns": […4], "data": [[…4 floats]]}}` to both; latencies are
measured from writing a request to reading its whole response. Both servers share the machine
with the load generator."""


def mlflow_env() -> dict[str, str]:
    """This environment without settings that would change what MLflow does, telemetry off."""
    env = dict(os.environ)
    env.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_TOKEN", "MLFLOW_MODELS_WORKERS",
                 "MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT"):
        env.pop(name, None)
    return env


def machine(ml_version: str, python: Path, load: float | None) -> list[str]:
    import platform

    import sklearn

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE,
                            capture_output=True, text=True, check=False).stdout.strip()
    loaded = "unknown" if load is None else f"{load:.2f}"
    return [
        f"- CPU: {cpu_model()}, {os.cpu_count()} logical cores; {platform.platform()}; "
        f"load average (1 min) at the start: {loaded}",
        f"- labtrack {labtrack.__version__} (commit {commit or 'unknown'}): Python "
        f"{platform.python_version()}, scikit-learn {sklearn.__version__}",
        f"- MLflow {ml_version} (`{python}`): `mlflow models serve --env-manager local`",
    ]


def render(report: Report, version: str, mode: str, elapsed: float,
           machine_lines: list[str]) -> str:
    """The results page: machine, table, summary, notes, checks."""
    import datetime

    when = f"{datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}"
    lines = [
        "# labtrack vs MLflow: scoring server benchmark", "",
        f"{when}, {mode} run ({elapsed / 60:.1f} min), `benchmarks/bench_serving.py`.", "",
        *machine_lines, "",
        f"| Workload | labtrack | MLflow {version} | ratio | target | met? |",
        "|---|---|---|---|---|---|",
    ]
    for row in report.rows:
        cells = [row.workload, row.labtrack.cell(), row.mlflow.cell(),
                 f"**{format_ratio(row.ratio)}**", row.target_text,
                 "yes" if row.met else "**NO**"]
        lines.append(f"| {' | '.join(cells)} |")
    lines += ["", *report.lines, ""]
    if mode != "full":
        lines += ["**Quick run:** fewer requests than the targets are meant for; it only "
                  "shows that the harness works.", ""]
    missed = ", ".join(report.missed) if report.missed else "none"
    lines += [NOTES, "", "Checks:", *[f"- {text}" for text in report.checks], "",
              f"Targets missed: {missed}.", ""]
    return "\n".join(lines)


def mlflow_version(python: Path) -> str:
    result = subprocess.run([str(python), "-c", "import mlflow; print(mlflow.__version__)"],
                            capture_output=True, text=True, env=mlflow_env(), check=True)
    return result.stdout.strip()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests: a smoke test")
    parser.add_argument("--mlflow-python", metavar="PATH",
                        help="python of an existing venv with MLflow 3.17.x (default: "
                             "benchmarks/.work/mlflow-venv, created when missing)")
    parser.add_argument("--output", type=Path, metavar="PATH",
                        help="where to write the Markdown table (default: "
                             "benchmarks/results/serving-latest.md for a full run, "
                             "benchmarks/.work/serving-partial.md for --quick)")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    mode = "quick" if args.quick else "full"
    sizes = SIZES[mode]
    output = args.output or (RESULTS if mode == "full" else WORK / "serving-partial.md")
    python = mlflow_python(args.mlflow_python)
    version = mlflow_version(python)
    load_average = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    started = time.perf_counter()
    work = WORK / "serving"
    work.mkdir(parents=True, exist_ok=True)
    model = work / "model"
    rows = save_model(model)

    servers = [start_labtrack(model, work), start_mlflow(python, model, work)]
    try:
        for server in servers:
            progress(f"{server.name}: starting (port {server.port})...")
            server.wait_ready()
        answers = [predictions(server.port, rows) for server in servers]
        results: dict[str, dict[str, LoadResult]] = {s.name: {} for s in servers}
        for phase, total, concurrency in (("concurrent", sizes.requests, sizes.concurrency),
                                          ("lone", sizes.lone_requests, 1)):
            share = total // sizes.rounds
            for round_number in range(sizes.rounds):
                for server in servers:  # taking turns: both meet the same machine
                    progress(f"{server.name}: round {round_number + 1}/{sizes.rounds}, "
                             f"{share:,} requests at concurrency {concurrency}...")
                    result = load(server.port, share, concurrency,
                                  sizes.warmup if round_number == 0 else 0)
                    previous = results[server.name].get(phase)
                    results[server.name][phase] = previous.add(result) if previous else result
    finally:
        for server in servers:
            server.stop()

    report = compare(results["labtrack"], results["MLflow"], sizes,
                     answers[0] == answers[1], len(rows))
    text = render(report, version, mode, time.perf_counter() - started,
                  machine(version, python, load_average))
    if not version.startswith(MLFLOW_SERIES):
        progress(f"warning: MLflow {version} is not {MLFLOW_SERIES}x")
    print("\n" + text)
    write_atomically(output, text)
    progress(f"Written to {output}")
    return 1 if any(line.startswith("check failed") for line in report.missed) else 0


if __name__ == "__main__":
    sys.exit(main())
