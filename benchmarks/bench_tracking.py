"""Benchmark labtrack against MLflow on the same workloads, in one run, on one machine.

    .venv/bin/python benchmarks/bench_tracking.py            # full run, a few minutes
    .venv/bin/python benchmarks/bench_tracking.py --quick    # smoke test, under 2 minutes
    .venv/bin/python benchmarks/bench_tracking.py --only search --mlflow-python PATH

labtrack runs in this process. MLflow runs in its own virtual environment
(``benchmarks/.work/mlflow-venv``, created on first use, or ``--mlflow-python``), in a
subprocess executing ``_mlflow_workloads.py``, which reports its timings as JSON; one
subprocess per workload, right after labtrack's half of it. Imports are never timed. Where
MLflow is too slow for the full size it is measured on fewer items and its time scaled
linearly; where populating MLflow through its API would take many minutes, its tables are
filled by direct SQL. Both are labelled in the output. See README.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from _workloads import (
    COUNT_RUNS_SQL,
    COUNT_SERIES_SQL,
    HISTORY_KEY,
    SEARCH_FILTER,
    SEARCH_MAX_RESULTS,
    SEARCH_ORDER_BY,
    SIZES,
    TRAIN_KEY,
    WORKLOADS,
    Sizes,
    count_rows,
    expected_search,
    history_points,
    loss_at,
    make_runs,
    median_seconds,
    progress,
    time_history_read,
    time_run_creation,
    time_search,
    time_training_loop,
)

import labtrack
from labtrack import TrackingClient

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work"
RESULTS = HERE / "results" / "latest.md"
MLFLOW_REQUIREMENT = "mlflow==3.17.2"
MLFLOW_SERIES = "3.17."


# -- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    """Seconds some work took, with what the reader needs to judge them (a rate, a
    scaling, how the data got there)."""

    seconds: float
    detail: str = ""

    def cell(self) -> str:
        return f"{format_seconds(self.seconds)} ({self.detail})" if self.detail else (
            format_seconds(self.seconds))


def throughput(seconds: float, items: int, unit: str, measured_items: int | None = None,
               note: str = "") -> Timing:
    """Time for ``items`` ``unit``; when ``measured_items`` is smaller, ``seconds`` is what
    those took and the time is scaled linearly to ``items``."""
    measured_items = measured_items or items
    scaled = seconds * items / measured_items
    parts = [f"{format_count(items / scaled)} {unit}/s"]
    if measured_items != items:
        parts.append(f"scaled from {measured_items:,}")
    if note:
        parts.append(note)
    return Timing(scaled, "; ".join(parts))


@dataclass(frozen=True)
class Row:
    """One line of the table: labtrack against MLflow, and the speed-up asked for."""

    name: str  # short, for the list of missed targets
    workload: str
    labtrack: Timing
    mlflow: Timing
    target: float  # minimum MLflow seconds / labtrack seconds
    target_note: str = ""

    @property
    def target_text(self) -> str:
        text = f"≥ {self.target:g}×"
        return f"{text} ({self.target_note})" if self.target_note else text

    @property
    def ratio(self) -> float:
        return self.mlflow.seconds / self.labtrack.seconds

    @property
    def met(self) -> bool:
        return self.ratio >= self.target


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # reference line, informational lines
    checks: list[str] = field(default_factory=list)  # what was verified
    missed: list[str] = field(default_factory=list)


def format_seconds(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:,.2f} s"


def format_ratio(ratio: float) -> str:
    return f"{ratio:,.0f}×" if ratio >= 100 else f"{ratio:.1f}×"


def format_count(value: float) -> str:
    for limit, suffix in ((1e6, "M"), (1e3, "k")):
        if value >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.3g}"


# -- labtrack side ---------------------------------------------------------------------------


class LabtrackWorkloads:
    """labtrack's half of every workload, each in its own database under ``work``."""

    def __init__(self, work: Path, sizes: Sizes):
        self.work = work
        self.sizes = sizes
        self.runs_store: tuple[Path, str] | None = None  # (db, experiment_id) of workload 2

    def _use(self, name: str) -> Path:
        db = self.work / f"{name}.db"
        labtrack.set_tracking_uri(str(db))
        labtrack.set_experiment(name)
        return db

    def train(self) -> dict:
        db = self._use("train")
        points = self.sizes.train_points

        def count_visible(run_id: str) -> int:
            return count_rows(str(db), COUNT_SERIES_SQL["labtrack"], (run_id, TRAIN_KEY))

        progress(f"labtrack: training loop, {points:,} x log_metric, and the physical "
                 f"reference (sqlite3 executemany), {self.sizes.train_repeats} repetitions "
                 "each...")
        # One labtrack trial, then one reference trial, repetition after repetition: the CPU
        # time a slice gets on a shared machine drifts, and the fraction must compare like
        # with like.
        reference = SqliteReference(self.work / "reference.db")
        trials, references = [], []
        for _ in range(self.sizes.train_repeats):
            trials.append(time_training_loop(labtrack, points, labtrack.flush, count_visible))
            references.append(reference.time_insert(points))
        reference.close()
        return {
            "seconds": statistics.median(t[0] for t in trials),
            "points": points,
            "visible": min(t[1] for t in trials),
            "reference_seconds": statistics.median(t[0] for t in references),
            "reference_visible": min(t[1] for t in references),
        }

    def runs(self) -> dict:
        db = self._use("runs")
        specs = make_runs(self.sizes.runs)
        progress(f"labtrack: creating {len(specs):,} runs through the fluent API...")
        seconds = time_run_creation(labtrack, specs)
        self.runs_store = (db, labtrack.get_experiment_by_name("runs").experiment_id)
        created = count_rows(str(db), COUNT_RUNS_SQL, (self.runs_store[1],))
        return {"seconds": seconds, "runs": len(specs), "created": created}

    def search(self) -> dict:
        if self.runs_store is None:  # --only search: create the runs (the timing is unused)
            progress("labtrack: search needs the runs of workload 2 (not timed):")
            self.runs()
        db, experiment_id = self.runs_store
        progress(f"labtrack: search, {self.sizes.search_repeats} timed queries...")
        outcome = time_search(TrackingClient(str(db)), experiment_id, self.sizes.search_repeats)
        return {**asdict(outcome), "runs": self.sizes.runs}

    def history(self) -> dict:
        client = TrackingClient(str(self.work / "history.db"))
        experiment_id = client.create_experiment("history")
        run_id = client.create_run(experiment_id).info.run_id
        points = history_points(self.sizes.history_points, int(time.time() * 1000))
        progress(f"labtrack: metric history, logging {len(points):,} points...")
        start = time.perf_counter()
        for step, timestamp, value in points:
            client.log_metric(run_id, HISTORY_KEY, value, timestamp=timestamp, step=step,
                              synchronous=False)
        client.flush()
        write_seconds = time.perf_counter() - start
        progress(f"labtrack: metric history, {self.sizes.history_repeats} full reads...")
        seconds, read = time_history_read(client, run_id, self.sizes.history_repeats)
        progress(f"labtrack: metric history, {self.sizes.downsampled_repeats} downsampled "
                 "reads...")
        downsampled_seconds, series = median_seconds(
            lambda: client.get_metric_history_downsampled(
                run_id, HISTORY_KEY, max_points=self.sizes.downsampled_points),
            self.sizes.downsampled_repeats,
        )
        return {
            "seconds": seconds,
            "points": len(points),
            "read": read,
            "write_seconds": write_seconds,
            "downsampled_seconds": downsampled_seconds,
            "downsampled_returned": len(series[0].values),
            "downsampled_total": series[0].total_points,
        }


class SqliteReference:
    """The physical floor of workload 1: plain ``executemany`` of the same points into a
    table laid out like labtrack's ``metrics`` (same key, same pragmas), committed, then
    counted by a fresh reader. Each insert appends a new series, as a new run would."""

    def __init__(self, db: Path):
        self.db = db
        self.conn = sqlite3.connect(db, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self.conn.execute("PRAGMA cache_size = -32000")
        self.conn.execute(
            "CREATE TABLE metrics (series_id INTEGER NOT NULL, seq INTEGER NOT NULL, "
            "step INTEGER NOT NULL, timestamp INTEGER NOT NULL, value REAL, "
            "PRIMARY KEY (series_id, seq)) WITHOUT ROWID"
        )
        self.series_id = 0

    def time_insert(self, points: int) -> tuple[float, int]:
        """Seconds to insert, commit and count ``points`` rows, and the count."""
        self.series_id += 1
        timestamp = int(time.time() * 1000)
        rows = [(self.series_id, step, step, timestamp, loss_at(step))
                for step in range(points)]
        start = time.perf_counter()
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.executemany(
            "INSERT INTO metrics (series_id, seq, step, timestamp, value) VALUES (?, ?, ?, ?, ?)",
            rows,
        )
        self.conn.execute("COMMIT")
        visible = count_rows(str(self.db), "SELECT count(*) FROM metrics WHERE series_id = ?",
                             (self.series_id,))
        return time.perf_counter() - start, visible

    def close(self) -> None:
        self.conn.close()


# -- MLflow side -----------------------------------------------------------------------------


def mlflow_python(requested: str | None) -> Path:
    """The interpreter of MLflow's venv, creating ``.work/mlflow-venv`` when needed."""
    if requested:
        return Path(requested)
    venv = WORK / "mlflow-venv"
    python = venv / "bin" / "python"
    marker = venv / ".benchmark-installed"
    if not marker.exists():
        progress(f"Creating {venv} with {MLFLOW_REQUIREMENT} (one time, a few minutes)...")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", MLFLOW_REQUIREMENT],
                       check=True)
        marker.write_text(MLFLOW_REQUIREMENT + "\n")
    return python


def mlflow_env() -> dict[str, str]:
    """This environment without settings that would change what MLflow does, telemetry off."""
    env = dict(os.environ)
    env.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
    for name in ("MLFLOW_ENABLE_ASYNC_LOGGING", "MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_TOKEN",
                 "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID", "MLFLOW_RUN_ID"):
        env.pop(name, None)
    return env


def run_mlflow(python: Path, work: Path, sizes_name: str, selected: list[str]) -> dict:
    """Run the MLflow workloads in MLflow's interpreter; its results as a dict."""
    output = work / "results.json"
    env = mlflow_env()
    command = [str(python), str(HERE / "_mlflow_workloads.py"), "--work", str(work),
               "--sizes", sizes_name, "--output", str(output)]
    for name in selected:
        command += ["--only", name]
    # cwd: MLflow puts the artifacts of fluent-API experiments in ./mlruns.
    subprocess.run(command, env=env, cwd=work, check=True)
    return json.loads(output.read_text())


# -- putting the two together ----------------------------------------------------------------


def compare(selected: list[str], lt: dict, ml: dict, sizes: Sizes) -> Report:
    report = Report()
    builders: dict[str, Callable[[Report, dict, dict, Sizes], None]] = {
        "train": compare_train, "runs": compare_runs, "search": compare_search,
        "history": compare_history,
    }
    for name in selected:
        builders[name](report, lt[name], ml[name], sizes)
    list_missed_targets(report)
    return report


def list_missed_targets(report: Report) -> None:
    """Put the rows that missed their target before the failed checks in ``report.missed``."""
    report.missed = [
        f"{row.name} ({format_ratio(row.ratio)}, target {row.target_text})"
        for row in report.rows if not row.met
    ] + report.missed


def check(report: Report, ok: bool, text: str) -> None:
    report.checks.append(f"{'OK' if ok else 'FAILED'}: {text}")
    if not ok:
        report.missed.append(f"check failed: {text}")


def compare_train(report: Report, lt: dict, ml: dict, sizes: Sizes) -> None:
    points = lt["points"]
    report.rows.append(Row(
        "training loop",
        f"1. Training loop: {points:,} × `log_metric` in one run, until a fresh reader sees "
        "them",
        throughput(lt["seconds"], points, "points", note=f"median of {sizes.train_repeats}"),
        throughput(ml["seconds"], points, "points", ml["points"]),
        500,
    ))
    fraction = lt["reference_seconds"] / lt["seconds"]
    met = fraction >= 1 / 3
    reference = throughput(lt["reference_seconds"], points, "points")
    report.lines.append(
        f"**Physical reference** (plain `sqlite3` `executemany` of the same {points:,} points "
        "into a table keyed like labtrack's `metrics` — WITHOUT ROWID, PRIMARY KEY "
        "(series_id, seq) — WAL, synchronous=NORMAL, committed, counted by a fresh reader; "
        f"median of {sizes.train_repeats}): {reference.cell()}. labtrack reaches "
        f"**{fraction:.2f}** of it; target ≥ 1/3: **{'met' if met else 'MISSED'}**."
    )
    if not met:
        report.missed.append("training loop vs physical reference (≥ 1/3)")
    check(report, lt["visible"] == points and lt["reference_visible"] == points,
          f"a fresh sqlite3 connection counted all {points:,} labtrack points "
          "(and reference points) in every repetition")
    check(report, ml["visible"] == ml["points"],
          f"a fresh sqlite3 connection counted all {ml['points']:,} MLflow points")


def compare_runs(report: Report, lt: dict, ml: dict, sizes: Sizes) -> None:
    runs = lt["runs"]
    report.rows.append(Row(
        "run creation",
        f"2. Run creation: {runs:,} runs × (5 params, 3 metrics, 2 tags), fluent API",
        throughput(lt["seconds"], runs, "runs"),
        throughput(ml["seconds"], runs, "runs", ml["runs"]),
        50,
    ))
    check(report, lt["created"] == lt["runs"] and ml["created"] == ml["runs"],
          f"both stores hold the runs created (labtrack {lt['created']:,}, "
          f"MLflow {ml['created']:,})")


def compare_search(report: Report, lt: dict, ml: dict, sizes: Sizes) -> None:
    report.rows.append(Row(
        "search",
        f"3. `search_runs` over {lt['runs']:,} runs: `{SEARCH_FILTER}` by "
        f"`{', '.join(SEARCH_ORDER_BY)}`, top {SEARCH_MAX_RESULTS}",
        Timing(lt["seconds"], f"median of {lt['repeats']}"),
        Timing(ml["seconds"], f"median of {ml['repeats']}; runs populated by direct SQL"),
        50,
    ))
    expected = expected_search(make_runs(lt["runs"]))
    check(report, lt["runs"] == ml["runs"] and lt["matches"] == ml["matches"] == len(expected),
          f"both systems match the same {len(expected):,} of {lt['runs']:,} runs "
          f"(labtrack {lt['matches']:,}, MLflow {ml['matches']:,})")
    check(report, lt["top"] == ml["top"] == expected[:SEARCH_MAX_RESULTS],
          f"both return the identical top-{SEARCH_MAX_RESULTS} page (same acc values, same "
          "order)")


def compare_history(report: Report, lt: dict, ml: dict, sizes: Sizes) -> None:
    points = lt["points"]
    mlflow_full = throughput(ml["seconds"], points, "points", ml["points"],
                             "populated by direct SQL")
    report.rows.append(Row(
        "full history read",
        f"4a. `get_metric_history`, full read of {points:,} points",
        throughput(lt["seconds"], points, "points", note=f"median of {sizes.history_repeats}"),
        mlflow_full,
        20,
    ))
    report.rows.append(Row(
        "downsampled read",
        f"4b. labtrack `get_metric_history_downsampled` to {sizes.downsampled_points:,} points "
        "vs MLflow's full read",
        Timing(lt["downsampled_seconds"], f"median of {sizes.downsampled_repeats}; "
               f"{lt['downsampled_returned']:,} points returned"),
        mlflow_full,
        500, "< 1/500 of MLflow's time",
    ))
    report.lines.append(
        f"labtrack wrote the {points:,}-point history through its real write path "
        f"(`TrackingClient.log_metric(..., synchronous=False)` + `flush()`) in "
        f"{format_seconds(lt['write_seconds'])} "
        f"({format_count(points / lt['write_seconds'])} points/s); not a target."
    )
    check(report, lt["read"] == points and ml["read"] == ml["points"],
          f"full reads returned every point (labtrack {lt['read']:,}, MLflow {ml['read']:,})")
    check(report, lt["downsampled_total"] == points
          and lt["downsampled_returned"] <= sizes.downsampled_points,
          f"the downsampled read covers all {points:,} points in "
          f"{lt['downsampled_returned']:,} ≤ {sizes.downsampled_points:,}")


# -- output ----------------------------------------------------------------------------------


NOTES = """\
Ratio = MLflow time / labtrack time for the same work. Times are wall-clock; imports are not
timed. "scaled from N": MLflow was timed on N items and its time scaled linearly (its per-item
cost does not fall with size, so this does not flatter labtrack). "populated by direct SQL":
MLflow created the database (and its schema) and the rows were bulk-inserted into its own
tables with sqlite3, because creating them through its API takes many minutes; only the read
is timed."""


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def labtrack_commit() -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True,
        check=False,
    ).stdout.strip() or "unknown"


def machine_line(load: float | None) -> str:
    """CPU, cores, platform and load: the first line of every machine description."""
    loaded = "unknown" if load is None else f"{load:.2f}"
    return (f"- CPU: {cpu_model()}, {os.cpu_count()} logical cores; {platform.platform()}; "
            f"load average (1 min) at the start: {loaded}")


def machine(ml: dict, load: float | None) -> list[str]:
    labtrack_side = (f"labtrack {labtrack.__version__} (commit {labtrack_commit()}): "
                     f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}")
    mlflow_side = (f"MLflow {ml.get('mlflow_version', '?')} (own venv): "
                   f"Python {ml.get('python', '?')}, SQLite {ml.get('sqlite', '?')}, "
                   "synchronous logging, `sqlite:///` tracking URIs")
    return [machine_line(load), f"- {labtrack_side}", f"- {mlflow_side}"]


def render(title: str, script: str, report: Report, version: str, mode: str, elapsed: float,
           machine_lines: list[str], notes: str) -> str:
    """A results page: title, machine, table, informational lines, notes and checks."""
    when = f"{datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}"
    lines = [
        f"# {title}",
        "",
        f"{when}, {mode} run ({elapsed / 60:.1f} min), `{script}`.",
        "",
        *machine_lines,
        "",
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
        lines += [(f"**{mode.capitalize()} run:** smaller sizes than the targets are meant "
                   "for; its ratios only show that the harness works."), ""]
    if not version.startswith(MLFLOW_SERIES):
        lines += [(f"**Warning:** MLflow {version} is not {MLFLOW_SERIES}x, which the targets "
                   "refer to."), ""]
    missed = ", ".join(report.missed) if report.missed else "none"
    lines += [
        notes,
        "",
        "Checks:",
        *[f"- {text}" for text in report.checks],
        "",
        f"Targets missed: {missed}.",
        "",
    ]
    return "\n".join(lines)


def markdown(report: Report, ml: dict, mode: str, elapsed: float, load: float | None) -> str:
    """The whole result: machine, table, reference line, notes and checks."""
    return render("labtrack vs MLflow: tracking benchmark", "benchmarks/bench_tracking.py",
                  report, ml.get("mlflow_version", "?"), mode, elapsed, machine(ml, load), NOTES)


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(text)
    temporary.replace(path)


# -- entry point -----------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="smaller sizes: a smoke test that takes under two minutes")
    parser.add_argument("--only", action="append", choices=WORKLOADS, metavar="NAME",
                        help=f"run only this workload (repeatable): {', '.join(WORKLOADS)}")
    parser.add_argument("--mlflow-python", metavar="PATH",
                        help="python of an existing venv with MLflow 3.17.x (default: "
                             "benchmarks/.work/mlflow-venv, created when missing)")
    parser.add_argument("--output", type=Path, metavar="PATH",
                        help="where to write the Markdown table (default: "
                             "benchmarks/results/latest.md for a full run of every workload, "
                             "benchmarks/.work/latest-partial.md otherwise)")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    mode = "quick" if args.quick else "full"
    sizes = SIZES[mode]
    selected = [name for name in WORKLOADS if not args.only or name in args.only]
    complete = mode == "full" and len(selected) == len(WORKLOADS)
    output = args.output or (RESULTS if complete else WORK / "latest-partial.md")
    # Settings that would change what labtrack does (resume a run, flush less often).
    for name in list(os.environ):
        if name.startswith("LABTRACK_"):
            del os.environ[name]

    python = mlflow_python(args.mlflow_python)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    started = time.perf_counter()
    data = WORK / "data"
    shutil.rmtree(data, ignore_errors=True)
    (data / "labtrack").mkdir(parents=True)
    (data / "mlflow").mkdir(parents=True)

    # Workload by workload, labtrack then MLflow, so that both meet the same machine: other
    # work on it slows whichever system runs meanwhile.
    side = LabtrackWorkloads(data / "labtrack", sizes)
    lt: dict[str, dict] = {}
    ml: dict = {}
    for name in selected:
        lt[name] = getattr(side, name)()
        ml.update(run_mlflow(python, data / "mlflow", mode, [name]))

    report = compare(selected, lt, ml, sizes)
    text = markdown(report, ml, mode, time.perf_counter() - started, load)
    print("\n" + text)
    write_atomically(output, text)
    progress(f"Written to {output}")
    return 1 if any(line.startswith("check failed") for line in report.missed) else 0


if __name__ == "__main__":
    sys.exit(main())
