"""The MLflow side of ``bench_tracking.py``; run with the interpreter of MLflow's own venv.

    <mlflow-python> benchmarks/_mlflow_workloads.py --work DIR --sizes full --output out.json \
        [--only NAME ...]

``bench_tracking.py`` starts this script and reads the JSON it writes. Importing MLflow takes
seconds, so it happens before any clock starts. Each workload gets its own ``sqlite:///``
database in DIR, created by MLflow (so its migrations run). Data that would take MLflow
minutes to create through its API (the 10,000 runs searched, the long metric history) is then
written with ``sqlite3`` straight into MLflow's own tables, following
``mlflow/store/tracking/dbmodels/models.py``: ``runs``, ``params``, ``tags``, ``metrics`` and
``latest_metrics``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sqlite3
import sys
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

from _workloads import (
    COUNT_SERIES_SQL,
    HISTORY_KEY,
    SIZES,
    TRAIN_KEY,
    WORKLOADS,
    RunSpec,
    Sizes,
    count_rows,
    history_points,
    is_postgres,
    make_runs,
    progress,
    time_history_read,
    time_run_creation,
    time_search,
    time_training_loop,
)

# Tags MLflow's fluent API puts on every run, so direct-SQL runs carry as many tags as real ones.
SYSTEM_TAGS = {
    "mlflow.user": "bench",
    "mlflow.source.type": "LOCAL",
    "mlflow.source.name": "bench_tracking.py",
    "mlflow.source.git.commit": "0" * 40,
}


def tracking_uri(db: Path) -> str:
    return f"sqlite:///{db.resolve()}"


def now_ms() -> int:
    return int(time.time() * 1000)


# -- workloads -------------------------------------------------------------------------------


def train(mlflow: Any, work: Path, sizes: Sizes) -> dict:
    db = work / "train.db"
    mlflow.set_tracking_uri(tracking_uri(db))
    mlflow.set_experiment("train")
    points = sizes.train_points_mlflow
    progress(f"MLflow:   training loop, {points:,} x log_metric (synchronous)...")

    def count_visible(run_id: str) -> int:
        return count_rows(str(db), COUNT_SERIES_SQL["mlflow"], (run_id, TRAIN_KEY))

    # flush_async_logging has nothing to do with synchronous logging; it is called so both
    # systems run the same "log, flush, read back" sequence.
    seconds, visible = time_training_loop(mlflow, points, mlflow.flush_async_logging,
                                          count_visible)
    return {"seconds": seconds, "points": points, "visible": visible}


def runs(mlflow: Any, work: Path, sizes: Sizes) -> dict:
    db = work / "runs.db"
    mlflow.set_tracking_uri(tracking_uri(db))
    mlflow.set_experiment("runs")
    specs = make_runs(sizes.runs_mlflow)
    progress(f"MLflow:   creating {len(specs):,} runs through the fluent API...")
    seconds = time_run_creation(mlflow, specs)
    created = count_rows(str(db), "SELECT count(*) FROM runs")
    return {"seconds": seconds, "runs": len(specs), "created": created}


def search(mlflow: Any, work: Path, sizes: Sizes) -> dict:
    db = work / "search.db"
    client = mlflow.MlflowClient(tracking_uri(db))
    experiment_id = client.create_experiment("search", artifact_location=str(work / "artifacts"))
    specs = make_runs(sizes.runs)
    progress(f"MLflow:   search, populating {len(specs):,} runs by direct SQL...")
    insert_runs(db, client.get_experiment(experiment_id), specs)
    progress(f"MLflow:   search, {sizes.search_repeats} timed queries...")
    outcome = time_search(client, experiment_id, sizes.search_repeats)
    return {**asdict(outcome), "runs": len(specs)}


def history(mlflow: Any, work: Path, sizes: Sizes) -> dict:
    db = work / "history.db"
    client = mlflow.MlflowClient(tracking_uri(db))
    experiment_id = client.create_experiment("history",
                                             artifact_location=str(work / "artifacts"))
    run_id = client.create_run(experiment_id).info.run_id
    points = sizes.history_points_mlflow
    progress(f"MLflow:   metric history, populating {points:,} points by direct SQL...")
    insert_history(db, run_id, HISTORY_KEY, history_points(points, now_ms()))
    progress(f"MLflow:   metric history, {sizes.history_repeats_mlflow} full read(s)...")
    seconds, count = time_history_read(client, run_id, sizes.history_repeats_mlflow)
    return {"seconds": seconds, "points": points, "read": count}


# -- direct SQL into MLflow's schema ---------------------------------------------------------


def insert_runs(db: Path | str, experiment: Any, specs: list[RunSpec]) -> None:
    """Finished runs as MLflow's SqlAlchemyStore writes them (see ``create_run``,
    ``log_batch`` and ``_update_latest_metrics_if_necessary``)."""
    start = now_ms() - 1000 * len(specs)
    runs, params, tags, metrics = [], [], [], []
    for index, spec in enumerate(specs):
        run_id = uuid.uuid4().hex
        name = f"run-{index}"
        started = start + 1000 * index
        runs.append((
            run_id, name, "UNKNOWN", "", "", SYSTEM_TAGS["mlflow.user"], "FINISHED", started,
            started + 500, "", "active", f"{experiment.artifact_location}/{run_id}/artifacts",
            int(experiment.experiment_id),
        ))
        params.extend((key, value, run_id) for key, value in spec.params.items())
        run_tags = {**SYSTEM_TAGS, "mlflow.runName": name, **spec.tags}
        tags.extend((key, value, run_id) for key, value in run_tags.items())
        metrics.extend((key, value, started + 100, 0, False, run_id)
                       for key, value in spec.metrics.items())
    with _connect(db) as conn:
        conn.executemany(
            "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, "
            "user_id, status, start_time, end_time, source_version, lifecycle_stage, "
            "artifact_uri, experiment_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            runs,
        )
        conn.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)", params)
        conn.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?)", tags)
        for table in ("metrics", "latest_metrics"):
            conn.executemany(
                f"INSERT INTO {table} (key, value, timestamp, step, is_nan, run_uuid) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                metrics,
            )


def insert_history(db: Path, run_id: str, key: str, points: list[tuple[int, int, float]]):
    """A metric series of ``(step, timestamp, value)`` points and its latest value."""
    rows = [(key, value, timestamp, step, False, run_id) for step, timestamp, value in points]
    with _connect(db) as conn:
        for table, table_rows in (("metrics", rows), ("latest_metrics", rows[-1:])):
            conn.executemany(
                f"INSERT INTO {table} (key, value, timestamp, step, is_nan, run_uuid) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                table_rows,
            )


class _connect:
    """A connection to MLflow's database (a SQLite file, or a PostgreSQL URL for
    ``bench_rest.py --backend postgresql``) that commits and closes on leaving the block."""

    def __init__(self, db: Path | str):
        if is_postgres(db):
            import psycopg

            self.conn = _QmarkConnection(psycopg.connect(str(db)))
        else:
            self.conn = sqlite3.connect(db)

    def __enter__(self):
        return self.conn

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self.conn.commit()
        self.conn.close()


class _QmarkConnection:
    """psycopg with sqlite3's ``?`` placeholders, so both databases get the same SQL."""

    def __init__(self, conn):
        self.raw = conn

    def executemany(self, sql: str, rows) -> None:
        with self.raw.cursor() as cursor:
            cursor.executemany(sql.replace("?", "%s"), rows)

    def commit(self) -> None:
        self.raw.commit()

    def close(self) -> None:
        self.raw.close()


# -- entry point -----------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--sizes", choices=sorted(SIZES), default="full")
    parser.add_argument("--only", action="append", choices=WORKLOADS)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)

    progress("MLflow:   importing mlflow (not timed)...")
    start = time.perf_counter()
    import mlflow

    results: dict[str, Any] = {
        "mlflow_version": mlflow.__version__,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "import_seconds": time.perf_counter() - start,
    }
    workloads = {"train": train, "runs": runs, "search": search, "history": history}
    for name in args.only or WORKLOADS:
        results[name] = workloads[name](mlflow, args.work, SIZES[args.sizes])
    args.output.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    sys.exit(main())
