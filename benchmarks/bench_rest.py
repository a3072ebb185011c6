"""Benchmark labtrack's REST server against ``mlflow server``, driven by the same stock client.

    .venv/bin/python benchmarks/bench_rest.py            # full run, 3-6 minutes
    .venv/bin/python benchmarks/bench_rest.py --quick    # smoke test, 2-4 minutes
    .venv/bin/python benchmarks/bench_rest.py --only search --mlflow-python PATH
    .venv/bin/python benchmarks/bench_rest.py --backend postgresql   # both on PostgreSQL

For each workload, starts ``labtrack server`` (this venv) and ``mlflow server`` with a
``sqlite:///`` store (MLflow's own venv, ``benchmarks/.work/mlflow-venv`` or
``--mlflow-python``) on fresh stores and free loopback ports, then runs the same client
workload — ``_rest_client.py``, the stock ``mlflow`` client in MLflow's interpreter — against
each server in turn: labtrack, then MLflow. Both servers are stopped after the workload,
whatever happens. Nothing is scaled. The ``log_batch`` points go through the client and the
servers' REST APIs. The runs searched are written before the servers start, since creating
10,000 runs through MLflow's REST API takes about half an hour: labtrack's through its own
Python API (``TrackingClient`` on the store), MLflow's by direct SQL into its own tables, as
``bench_tracking.py``'s search workload does (``_mlflow_workloads.insert_runs``).

With ``--backend postgresql`` both servers keep their stores in PostgreSQL instead: one
database each, created fresh for every workload in the same PostgreSQL server
(``--postgres-url``, or a private cluster started for the run as the tests start theirs).
See README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import ExitStack
from pathlib import Path

from _mlflow_workloads import SYSTEM_TAGS
from _rest_client import mlflow_store_uri
from _workloads import (
    REST_SEARCH_EXPERIMENT,
    REST_SIZES,
    REST_WORKLOADS,
    SEARCH_FILTER,
    SEARCH_MAX_RESULTS,
    SEARCH_ORDER_BY,
    RestSizes,
    RunSpec,
    expected_search,
    make_runs,
    progress,
)
from bench_tracking import (
    HERE,
    WORK,
    Report,
    Row,
    Timing,
    check,
    format_count,
    format_ratio,
    format_seconds,
    labtrack_commit,
    list_missed_targets,
    machine_line,
    mlflow_env,
    mlflow_python,
    render,
    throughput,
    write_atomically,
)

import labtrack
from labtrack import TrackingClient
from labtrack.config import sqlite_database_path
from labtrack.entities import Metric, Param

RESULTS = HERE / "results" / "rest-latest.md"
POSTGRES_RESULTS = HERE / "results" / "rest-postgres-latest.md"
CLIENT = HERE / "_rest_client.py"
TARGET = 10  # minimum MLflow seconds / labtrack seconds, both workloads
STARTUP_TIMEOUT = 120.0  # seconds; MLflow's server answers /health after 10-45 s
STOP_TIMEOUT = 15.0
# What the report calls the database the fresh reader opens; "PostgreSQL" with --backend
# postgresql (set in main).
DATABASE = {"reader": "a fresh sqlite3 connection", "tool": "sqlite3", "version": ""}
IDLE_CPU = 0.05  # CPU seconds per second under which a started server counts as settled


# -- servers ---------------------------------------------------------------------------------


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """A server subprocess in a process group of its own (MLflow's spawns workers), its output
    in ``log``; ready when ``GET /health`` answers 200."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], cwd: Path,
                 log: Path, port: int, token: str | None = None):
        self.name = name
        self.command = command
        self.env = env
        self.cwd = cwd
        self.log = log
        self.port = port
        self.token = token
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen | None = None
        self.startup_seconds = 0.0
        self.settle_seconds = 0.0
        self._started = 0.0

    def start(self) -> None:
        progress(f"Starting {self.name} on {self.url} (output in {self.log})...")
        self.cwd.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as output:
            self._started = time.perf_counter()
            self.process = subprocess.Popen(
                self.command, env=self.env, cwd=self.cwd, stdout=output,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT) -> None:
        request = urllib.request.Request(self.url + "/health")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        deadline = self._started + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with status {self.process.returncode} "
                                   f"before answering /health:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(request, timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{self.name} did not answer /health within {timeout:.0f} s:"
                                   f"\n{self.log_tail()}")
            time.sleep(0.25)
        self.startup_seconds = time.perf_counter() - self._started
        progress(f"{self.name} is up after {self.startup_seconds:.1f} s.")

    def wait_idle(self, timeout: float = STARTUP_TIMEOUT) -> None:
        """Until the server's processes together use less than ``IDLE_CPU`` of a core over a
        second: MLflow's answers /health while its job runner still starts worker processes,
        which would compete with the first workload for the CPU. Linux only (reads /proc)."""
        if not Path("/proc/self/stat").exists():
            return
        start = time.perf_counter()
        before = self._cpu_seconds()
        while time.perf_counter() - start < timeout:
            time.sleep(1.0)
            after = self._cpu_seconds()
            if after - before < IDLE_CPU:
                break
            before = after
        else:
            progress(f"{self.name} still busy after {timeout:.0f} s; going on.")
        self.settle_seconds = time.perf_counter() - start
        progress(f"{self.name} is idle after {self.settle_seconds:.0f} more s "
                 f"({after - before:.3f} CPU s in the last second).")

    def _cpu_seconds(self) -> float:
        """User + system CPU time of every process in the server's group."""
        ticks = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                # Fields after the parenthesised command: state ppid pgrp ... utime stime.
                fields = stat.read_text().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[2]) == self.process.pid:
                ticks += int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no output)"

    def stop(self) -> None:
        """SIGTERM to the server's process group, SIGKILL to what is left after a grace
        period. Only ever this server's own group."""
        if self.process is None:
            return
        group = self.process.pid
        self._signal(group, signal.SIGTERM)
        deadline = time.perf_counter() + STOP_TIMEOUT
        while self._signal(group, 0):  # the leader (reaped by poll) or its workers remain
            self.process.poll()
            if time.perf_counter() > deadline:
                progress(f"{self.name} did not stop within {STOP_TIMEOUT:.0f} s; killing it.")
                self._signal(group, signal.SIGKILL)
                break
            time.sleep(0.2)
        self.process.wait()
        self.process = None

    @staticmethod
    def _signal(group: int, signum: int) -> bool:
        """Send ``signum`` to the group; False when no process of it is left."""
        try:
            os.killpg(group, signum)
        except ProcessLookupError:
            return False
        except PermissionError:  # only a stranger could hold the id now: leave it alone
            return False
        return True


def labtrack_server(data: Path, token: str, database: str | None = None
                    ) -> tuple[Server, Path | str]:
    """``labtrack server`` on the folder store ``data/labtrack`` (created when missing), or on
    the PostgreSQL ``database`` with its artifacts there; and the store's database."""
    store = data / "labtrack"
    store.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = dict(os.environ)  # LABTRACK_* settings were removed in main()
    command = [str(Path(sys.executable).with_name("labtrack")), "server", "--host", "127.0.0.1",
               "--port", str(port), "--backend-store-uri", database or str(store),
               "--token", token]
    if database:
        command += ["--artifacts-destination", str((store / "artifacts").resolve())]
    server = Server("labtrack server", command, env, store, data / "labtrack-server.log", port,
                    token)
    return server, database or sqlite_database_path(str(store))


def mlflow_server(python: Path, data: Path, database: str | None = None
                  ) -> tuple[Server, Path | str]:
    """``mlflow server`` on the ``sqlite:///`` store ``data/mlflow/mlflow.db`` (created when
    missing), or on the PostgreSQL ``database`` (through psycopg 3, the driver labtrack
    uses), as its documentation starts it."""
    home = data / "mlflow"
    home.mkdir(parents=True, exist_ok=True)
    db = database or home / "mlflow.db"
    port = free_port()
    command = [str(python), "-m", "mlflow", "server",
               "--backend-store-uri", mlflow_store_uri(str(db)),
               "--artifacts-destination", str((home / "artifacts").resolve()),
               "--host", "127.0.0.1", "--port", str(port)]
    server = Server("mlflow server", command, mlflow_env(), home, data / "mlflow-server.log",
                    port)
    return server, db


# -- the client ------------------------------------------------------------------------------


def run_client(python: Path, workload: str, server: Server | None, system: str, db: Path,
               sizes_name: str, data: Path, repeats: int = 1) -> dict:
    """``_rest_client.py`` in MLflow's interpreter against ``server`` (None: ``populate``,
    which needs none); its results."""
    output = data / f"client-{workload}-{system}.json"
    env = mlflow_env()
    if server is not None:
        env.update(MLFLOW_TRACKING_URI=server.url,
                   MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT="true")
        if server.token:
            env["MLFLOW_TRACKING_TOKEN"] = server.token
    # Loopback traffic must not go through a proxy configured for the outside world.
    no_proxy = ",".join(filter(None, [env.get("NO_PROXY"), "127.0.0.1", "localhost"]))
    env["NO_PROXY"] = env["no_proxy"] = no_proxy
    command = [str(python), str(CLIENT), workload, "--sizes", sizes_name,
               "--repeats", str(repeats), "--system", system, "--db", str(db),
               "--output", str(output)]
    subprocess.run(command, env=env, cwd=data, check=True)
    return json.loads(output.read_text())


# -- the runs searched, before the servers start ---------------------------------------------


def populate_labtrack(db: Path | str, specs: list[RunSpec]) -> dict:
    """The runs to search, through labtrack's own API on the store: per run, ``create_run``
    (named, with the run's 2 tags and the 4 source tags MLflow's direct-SQL runs carry),
    ``log_batch`` of its 5 params and 3 metrics, ``set_terminated`` — the calls the REST
    client would make, in-process."""
    client = TrackingClient(str(db))
    experiment_id = client.create_experiment(REST_SEARCH_EXPERIMENT)
    progress(f"labtrack: populating {len(specs):,} runs through TrackingClient...")
    start = time.perf_counter()
    for index, spec in enumerate(specs):
        run_id = client.create_run(experiment_id, run_name=f"run-{index}",
                                   tags={**SYSTEM_TAGS, **spec.tags}).info.run_id
        timestamp = int(time.time() * 1000)
        client.log_batch(
            run_id,
            metrics=[Metric(key, value, timestamp, 0) for key, value in spec.metrics.items()],
            params=[Param(key, value) for key, value in spec.params.items()],
        )
        client.set_terminated(run_id)
    client.flush()
    seconds = time.perf_counter() - start
    client.service.store.close()  # the server opens its own connections
    return {"experiment_id": experiment_id, "runs": len(specs), "populate_seconds": seconds}


def populate_search(python: Path, data: Path, sizes: RestSizes, sizes_name: str,
                    databases: tuple[str, str] | None) -> dict:
    """Both stores of the search workload, with the same runs; how long each took."""
    if databases:
        lt_db, ml_db = databases
        data.mkdir(parents=True)
    else:
        lt_db = sqlite_database_path(str(data / "labtrack"))
        lt_db.parent.mkdir(parents=True)
        ml_db = data / "mlflow" / "mlflow.db"
        ml_db.parent.mkdir(parents=True)
    labtrack_side = populate_labtrack(lt_db, make_runs(sizes.search_runs))
    mlflow_side = run_client(python, "populate", None, "mlflow", ml_db, sizes_name,
                             data)["populate"]
    return {"labtrack": labtrack_side, "mlflow": mlflow_side}


# -- putting the two together ----------------------------------------------------------------


def client_share(report: Report, what: str, lt_total: float, lt_transport: float | None,
                 ml_total: float, ml_transport: float | None, per: str, count: int) -> None:
    """The line splitting both columns into the client's own time and the time in HTTP."""
    if lt_transport is None or ml_transport is None:
        report.lines.append(f"{what}: the time in HTTP could not be told apart (retries?).")
        return
    own = lt_total - lt_transport

    def split(total: float, transport: float) -> str:
        each = f" ({format_seconds(transport / count)} per {per})" if count > 1 else ""
        return (f"{format_seconds(transport)} in HTTP{each} + "
                f"{format_seconds(total - transport)} in the client")

    report.lines.append(
        f"**{what}, where the time goes** (time inside `requests.Session.send` — sending the "
        "request, the server's work, reading the response — against the rest, the stock "
        f"client's own work): labtrack {split(lt_total, lt_transport)}; MLflow "
        f"{split(ml_total, ml_transport)}. In HTTP alone, labtrack's server is "
        f"{format_ratio(ml_transport / lt_transport)} faster. The client's own time is in both "
        "columns: a server answering in no time at all would be "
        f"{format_ratio(ml_total / own)} faster than MLflow's here."
    )


def compare_log_batch(report: Report, lt: dict, ml: dict, sizes: RestSizes) -> None:
    points = lt["points"]

    def timing(result: dict) -> Timing:
        times = result["seconds"]
        note = f"median of {len(times)}" if len(times) > 1 else ""
        return throughput(statistics.median(times), points, "points", note=note)

    labtrack_time, mlflow_time = timing(lt), timing(ml)
    report.rows.append(Row(
        "log_batch",
        f"1. `log_batch` of {sizes.batch_size:,} metrics × {sizes.batches} in one run, until a "
        f"fresh reader sees all {points:,} points",
        labtrack_time, mlflow_time, TARGET,
    ))
    client_share(report, "`log_batch`", labtrack_time.seconds,
                 statistics.median(lt["transport_seconds"]), mlflow_time.seconds,
                 statistics.median(ml["transport_seconds"]),
                 f"{sizes.batch_size:,}-metric batch", sizes.batches)
    for name, result in (("labtrack", lt), ("MLflow", ml)):
        check(report, all(visible == points for visible in result["visible"]),
              f"{DATABASE['reader']} counted all {points:,} {name} points in every "
              f"repetition ({', '.join(f'{v:,}' for v in result['visible'])})")
    check(report, lt["read"] == ml["read"] == points and lt["read_identical"]
          and ml["read_identical"],
          f"`get_metric_history` through the client returned the {points:,} points logged, "
          f"same steps and values, from both servers (labtrack {lt['read']:,}, "
          f"MLflow {ml['read']:,})")


def compare_search(report: Report, lt: dict, ml: dict, sizes: RestSizes,
                   populated: dict) -> None:
    runs = lt["runs"]
    report.rows.append(Row(
        "search",
        f"2. `search_runs` over {runs:,} runs: `{SEARCH_FILTER}` by "
        f"`{', '.join(SEARCH_ORDER_BY)}`, top {SEARCH_MAX_RESULTS}",
        Timing(lt["seconds"], f"median of {lt['repeats']}"),
        Timing(ml["seconds"], f"median of {ml['repeats']}; runs populated by direct SQL"),
        TARGET,
    ))
    client_share(report, "`search_runs`", lt["seconds"], lt["transport_seconds"],
                 ml["seconds"], ml["transport_seconds"], "search", 1)

    def took(side: dict) -> str:
        seconds = side["populate_seconds"]
        return f"{format_seconds(seconds)} ({format_count(side['runs'] / seconds)} runs/s)"

    report.lines.append(
        f"**The {runs:,} runs searched** (each finished, with 5 params, 3 metrics and 7 tags: "
        "its name, its 2 tags and the 4 source tags MLflow's fluent API sets) were written "
        "before either server started; not timed, not a target. labtrack's through its own API "
        "on the store (`TrackingClient`: `create_run`, `log_batch`, `set_terminated` per run) "
        f"in {took(populated['labtrack'])}. MLflow's were **populated by direct SQL**, as for "
        "`bench_tracking.py`'s search: MLflow's `SqlAlchemyStore` created the database, its "
        "schema and the experiment (opened as `mlflow server` opens it), then "
        "`_mlflow_workloads.insert_runs` bulk-inserted the runs into its `runs`, `params`, "
        f"`tags`, `metrics` and `latest_metrics` tables with {DATABASE['tool']}, in "
        f"{took(populated['mlflow'])}, because creating them through its REST API (3 requests "
        "per run) would take many minutes."
    )
    expected = expected_search(make_runs(runs))
    check(report, lt["created"] == ml["created"] == runs == ml["runs"],
          f"both servers' stores hold the {runs:,} runs written (labtrack "
          f"{lt['created']:,}, MLflow {ml['created']:,})")
    check(report, lt["matches"] == ml["matches"] == len(expected),
          f"both servers match the same {len(expected):,} of {runs:,} runs "
          f"(labtrack {lt['matches']:,}, MLflow {ml['matches']:,})")
    check(report, lt["top"] == ml["top"] == expected[:SEARCH_MAX_RESULTS],
          f"both return the identical top-{SEARCH_MAX_RESULTS} page (same acc values, same "
          "order)")


# -- output ----------------------------------------------------------------------------------


NOTES = """\
Ratio = MLflow's server time / labtrack's server time for the same client work. For each
workload both servers are started on fresh stores and run on this machine at the same time,
as subprocesses on loopback ports; the client is the same stock `mlflow` client in the same
interpreter for both, one process per workload and server, so its own time (building
requests, JSON, checks) is in both columns — see where the time goes. Times are wall-clock;
imports, server start-up, the warm-up requests (creating the experiment and runs, one small
`log_batch`, the untimed search for every match) and the writing of the runs searched are not
timed. Each server runs as shipped: `mlflow server` with its defaults (4 uvicorn workers) on a
`sqlite:///` store, `labtrack server` with its defaults (8 store threads) on a folder."""

POSTGRES_NOTES = NOTES.replace(
    "on a\n`sqlite:///` store, `labtrack server` with its defaults (8 store threads) on a folder.",
    "and\n`labtrack server` with its defaults (8 store threads, a pool of 10 connections), each "
    "on a\ndatabase of its own in the same PostgreSQL server (`postgresql+psycopg://` for "
    "MLflow's\nSQLAlchemy: psycopg 3, the driver labtrack uses).")
assert POSTGRES_NOTES != NOTES


def machine(ml: dict, load: float | None, mlflow_servers: dict[str, Server]) -> list[str]:
    version = ml.get("mlflow_version", "?")
    came_up = "".join(
        f"; for {name}, answered /health {server.startup_seconds:.0f} s after start, idle "
        f"{server.settle_seconds:.0f} s later" for name, server in mlflow_servers.items())
    return [
        machine_line(load),
        f"- labtrack {labtrack.__version__} (commit {labtrack_commit()}): `labtrack server`, "
        f"Python {platform.python_version()}, "
        + (f"{DATABASE['version']}" if DATABASE["version"] else
           f"SQLite {sqlite3.sqlite_version}"),
        f"- MLflow {version} (own venv): `mlflow server --backend-store-uri "
        + ("postgresql+psycopg://…" if DATABASE["version"] else "sqlite:///…")
        + f" --artifacts-destination …`, Python {ml.get('python', '?')}, "
        + (f"the same {DATABASE['version']}" if DATABASE["version"] else
           f"SQLite {ml.get('sqlite', '?')}") + came_up,
        f"- Client: stock `MlflowClient` of MLflow {version} (its venv), HTTP on loopback; "
        "labtrack's token in `MLFLOW_TRACKING_TOKEN`",
    ]


# -- entry point -----------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="smaller sizes: a smoke test of 2-4 minutes")
    parser.add_argument("--only", action="append", choices=REST_WORKLOADS, metavar="NAME",
                        help=f"run only this workload (repeatable): {', '.join(REST_WORKLOADS)}")
    parser.add_argument("--mlflow-python", metavar="PATH",
                        help="python of an existing venv with MLflow 3.17.x, `mlflow server` "
                             "included (default: benchmarks/.work/mlflow-venv, created when "
                             "missing)")
    parser.add_argument("--output", type=Path, metavar="PATH",
                        help="where to write the Markdown table (default: "
                             "benchmarks/results/rest-latest.md for a full run of every "
                             "workload, benchmarks/.work/rest-latest-partial.md otherwise; "
                             "rest-postgres-* with --backend postgresql)")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite",
                        help="where both servers keep their stores (default: sqlite files)")
    parser.add_argument("--postgres-url", metavar="URL",
                        help="with --backend postgresql: a PostgreSQL server on which the "
                             "benchmark may create and drop databases named bench_* (default: "
                             "a private cluster started for the run from Debian's postgresql "
                             "package)")
    return parser.parse_args()


# -- PostgreSQL ------------------------------------------------------------------------------


def check_driver(python: Path) -> None:
    """MLflow's server reaches PostgreSQL through SQLAlchemy, which needs a driver in its venv."""
    found = subprocess.run([str(python), "-c", "import psycopg"], capture_output=True)
    if found.returncode:
        raise SystemExit(f"{python} has no psycopg for `mlflow server` on PostgreSQL: "
                         f"{python} -m pip install 'psycopg[binary]'")


def postgres_server(url: str | None, stack: ExitStack) -> str:
    """The URL of a database on the PostgreSQL server to use: ``url``, or the ``postgres``
    database of a private cluster (the tests' own, ``tests/postgres_cluster.py``) stopped when
    ``stack`` closes."""
    import psycopg

    if not url:
        sys.path.insert(0, str(HERE.parent))  # the repository, for tests.postgres_cluster
        from tests.postgres_cluster import PostgresCluster, find_bindir

        bindir = find_bindir()
        if bindir is None:
            raise SystemExit("No PostgreSQL: install Debian's postgresql package or give "
                             "--postgres-url.")
        cluster = PostgresCluster(bindir)
        stack.callback(cluster.stop)
        progress(f"Starting a private PostgreSQL cluster in {cluster.folder}...")
        url = cluster.start()
    with psycopg.connect(url) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
    DATABASE.update(reader="a fresh PostgreSQL connection", tool="psycopg",
                    version=f"PostgreSQL {version.split()[0]}")
    return url


def fresh_databases(admin_url: str, workload: str) -> tuple[str, str]:
    """Empty databases for labtrack and MLflow for one workload; their URLs."""
    import psycopg

    urls = []
    parts = urllib.parse.urlsplit(admin_url)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for system in ("labtrack", "mlflow"):
            name = f"bench_{system}_{workload}"
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
            urls.append(urllib.parse.urlunsplit(parts._replace(path=f"/{name}")))
    return urls[0], urls[1]


def stop_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)  # so that the servers are stopped on the way out


def main() -> int:
    args = parse_args()
    mode = "quick" if args.quick else "full"
    sizes = REST_SIZES[mode]
    selected = [name for name in REST_WORKLOADS if not args.only or name in args.only]
    complete = mode == "full" and len(selected) == len(REST_WORKLOADS)
    postgres = args.backend == "postgresql"
    if postgres:
        output = args.output or (POSTGRES_RESULTS if complete
                                 else WORK / "rest-postgres-latest-partial.md")
    else:
        output = args.output or (RESULTS if complete else WORK / "rest-latest-partial.md")
    # Settings that would change what labtrack's server does.
    for name in list(os.environ):
        if name.startswith("LABTRACK_"):
            del os.environ[name]
    signal.signal(signal.SIGTERM, stop_on_sigterm)

    python = mlflow_python(args.mlflow_python)
    if postgres:
        check_driver(python)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    started = time.perf_counter()
    data = WORK / "rest"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)

    lt: dict[str, dict] = {}
    ml: dict = {}
    populated: dict = {}
    mlflow_servers: dict[str, Server] = {}
    # Workload by workload, each with a fresh pair of servers; labtrack then MLflow, so that
    # both meet the same machine.
    with ExitStack() as cluster:
        admin_url = postgres_server(args.postgres_url, cluster) if postgres else None
        for name in selected:
            work = data / name
            databases = fresh_databases(admin_url, name) if postgres else None
            if name == "search":
                populated = populate_search(python, work, sizes, mode, databases)
            with ExitStack() as stack:
                lt_server, lt_db = labtrack_server(work, secrets.token_urlsafe(24),
                                                   databases and databases[0])
                ml_server, ml_db = mlflow_server(python, work, databases and databases[1])
                mlflow_servers[name] = ml_server
                servers = (lt_server, ml_server)
                for server in servers:
                    stack.callback(server.stop)
                    server.start()
                for server in servers:
                    server.wait_ready()
                for server in servers:
                    server.wait_idle()
                batches = name == "log_batch"
                lt[name] = run_client(python, name, lt_server, "labtrack", lt_db, mode, work,
                                      sizes.batch_repeats if batches else 1)[name]
                ml.update(run_client(python, name, ml_server, "mlflow", ml_db, mode, work,
                                     sizes.batch_repeats_mlflow if batches else 1))

    report = Report()
    if "log_batch" in selected:
        compare_log_batch(report, lt["log_batch"], ml["log_batch"], sizes)
    if "search" in selected:
        compare_search(report, lt["search"], ml["search"], sizes, populated)
    list_missed_targets(report)
    title = "labtrack vs MLflow: REST server benchmark" + (" on PostgreSQL" if postgres else "")
    text = render(title, "benchmarks/bench_rest.py" + (" --backend postgresql" if postgres
                                                       else ""),
                  report, ml.get("mlflow_version", "?"), mode, time.perf_counter() - started,
                  machine(ml, load, mlflow_servers), POSTGRES_NOTES if postgres else NOTES)
    print("\n" + text)
    write_atomically(output, text)
    progress(f"Written to {output}")
    return 1 if any(line.startswith("check failed") for line in report.missed) else 0


if __name__ == "__main__":
    sys.exit(main())
