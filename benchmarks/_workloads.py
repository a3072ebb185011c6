"""What both sides of the benchmark share: sizes, the seeded data set and the timed workloads.

This module is imported by ``bench_tracking.py`` and ``bench_rest.py`` (labtrack's
interpreter) and by ``_mlflow_workloads.py`` and ``_rest_client.py`` (MLflow's interpreter,
where labtrack is not installed), so it uses the standard library only.

labtrack's fluent API and client mirror MLflow's, so the timed workloads below take the
tracking module (``labtrack`` or ``mlflow``) or a client object as an argument: the very same
loop runs against both systems. Only what cannot be shared (how each store is read back or
populated by SQL) lives in the per-system code.
"""

from __future__ import annotations

import random
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SEED = 20251127
WORKLOADS = ("train", "runs", "search", "history")

SEARCH_FILTER = "metrics.acc > 0.5 and params.model = 'a'"
SEARCH_ORDER_BY = ["metrics.acc DESC"]
SEARCH_MAX_RESULTS = 100
# Large enough to return every match in one page, for the (untimed) cross-check.
SEARCH_ALL_RESULTS = 50_000

TRAIN_KEY = "loss"
HISTORY_KEY = "loss"

# The points of one series as a fresh reader counts them, in each system's own schema (labtrack
# keys points by series; MLflow's ``metrics`` rows carry the run and key); parameters: run id,
# key. And the runs of one experiment, the same in both schemas.
COUNT_SERIES_SQL = {
    "labtrack": "SELECT count(*) FROM metrics WHERE series_id = (SELECT series_id FROM "
                "latest_metrics WHERE run_uuid = ? AND key = ?)",
    "mlflow": "SELECT count(*) FROM metrics WHERE run_uuid = ? AND key = ?",
}
COUNT_RUNS_SQL = "SELECT count(*) FROM runs WHERE experiment_id = ?"


@dataclass(frozen=True)
class Sizes:
    """How much work each workload does. ``*_mlflow`` sizes are what MLflow is measured on
    when it is too slow for the full size; its time is then scaled linearly."""

    train_points: int
    train_points_mlflow: int
    train_repeats: int
    runs: int
    runs_mlflow: int
    search_repeats: int
    history_points: int
    history_points_mlflow: int
    history_repeats: int
    history_repeats_mlflow: int
    downsampled_points: int
    downsampled_repeats: int


FULL = Sizes(
    train_points=100_000,
    train_points_mlflow=1_000,
    train_repeats=5,
    runs=10_000,
    runs_mlflow=300,
    search_repeats=7,
    history_points=1_000_000,
    history_points_mlflow=100_000,
    history_repeats=5,
    history_repeats_mlflow=3,
    downsampled_points=1_000,
    downsampled_repeats=20,
)

QUICK = Sizes(
    train_points=20_000,
    train_points_mlflow=100,
    train_repeats=3,
    runs=1_000,
    runs_mlflow=30,
    search_repeats=3,
    history_points=100_000,
    history_points_mlflow=10_000,
    history_repeats=2,
    history_repeats_mlflow=1,
    downsampled_points=1_000,
    downsampled_repeats=5,
)

SIZES = {"full": FULL, "quick": QUICK}


# -- the REST benchmark (bench_rest.py) ------------------------------------------------------

REST_WORKLOADS = ("log_batch", "search")
# The experiment holding the runs searched, written before the servers start.
REST_SEARCH_EXPERIMENT = "rest-search"


@dataclass(frozen=True)
class RestSizes:
    """How much work the REST workloads do; the same for both servers, except how many times
    the batches are repeated (``batch_repeats*``, each repetition in a new run). The search
    runs over as many runs as ``bench_tracking.py``'s search workload."""

    batches: int
    batch_size: int
    batch_repeats: int
    batch_repeats_mlflow: int
    search_runs: int
    search_repeats: int

    @property
    def batch_points(self) -> int:
        return self.batches * self.batch_size


REST_FULL = RestSizes(
    batches=100,
    batch_size=1_000,
    batch_repeats=3,
    batch_repeats_mlflow=3,
    search_runs=FULL.runs,
    search_repeats=15,
)

REST_QUICK = RestSizes(
    batches=10,
    batch_size=1_000,
    batch_repeats=2,
    batch_repeats_mlflow=1,
    search_runs=QUICK.runs,
    search_repeats=3,
)

REST_SIZES = {"full": REST_FULL, "quick": REST_QUICK}


# -- the data set ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSpec:
    """One run of the search data set: 5 params, 3 metrics and 2 tags."""

    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]


def make_runs(count: int, seed: int = SEED) -> list[RunSpec]:
    """``count`` runs drawn from a fixed seed, so both systems hold identical data.

    Only ``Random.random()`` is used: its sequence is stable across Python versions.
    """
    rng = random.Random(seed)
    runs = []
    for index in range(count):
        runs.append(
            RunSpec(
                params={
                    "model": "a" if rng.random() < 0.5 else "b",
                    "lr": f"{10 ** (-4 + 3 * rng.random()):.6f}",
                    "depth": str(2 + int(rng.random() * 10)),
                    "optimizer": ("adam", "sgd", "rmsprop")[int(rng.random() * 3)],
                    "seed": str(index),
                },
                metrics={
                    "acc": rng.random(),
                    "loss": 3 * rng.random(),
                    "f1": rng.random(),
                },
                tags={
                    "team": ("vision", "nlp", "tabular")[int(rng.random() * 3)],
                    "stage": "dev" if rng.random() < 0.8 else "prod",
                },
            )
        )
    return runs


def expected_search(runs: Sequence[RunSpec]) -> list[float]:
    """The ``acc`` of every run ``SEARCH_FILTER`` matches, in ``SEARCH_ORDER_BY`` order."""
    return sorted(
        (r.metrics["acc"] for r in runs if r.metrics["acc"] > 0.5 and r.params["model"] == "a"),
        reverse=True,
    )


def loss_at(step: int) -> float:
    """A decaying, slightly wiggly training loss."""
    return 2.0 / (1 + 0.01 * step) + 0.01 * ((step * 7919) % 13) / 13


# -- timing helpers --------------------------------------------------------------------------


def median_seconds(function: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median wall time of ``repeats`` calls, and what the last call returned."""
    times = []
    result = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def is_postgres(db: str | Path) -> bool:
    """Whether ``db`` is a PostgreSQL URL rather than a SQLite file (bench_rest.py
    --backend postgresql)."""
    return str(db).startswith(("postgresql://", "postgres://"))


def count_rows(db_path: str, sql: str, parameters: Sequence[Any] = ()) -> int:
    """Run a ``count(*)`` on a brand-new connection: what any other process would see."""
    if is_postgres(db_path):
        import psycopg  # only needed, and installed, for the PostgreSQL runs

        with psycopg.connect(str(db_path)) as conn:
            return conn.execute(sql.replace("?", "%s"), parameters).fetchone()[0]
    conn = sqlite3.connect(f"{Path(db_path).resolve().as_uri()}?mode=ro", uri=True)
    try:
        return conn.execute(sql, parameters).fetchone()[0]
    finally:
        conn.close()


def progress(message: str) -> None:
    print(message, flush=True, file=sys.stderr)


# -- the workloads (same code for both systems) ----------------------------------------------


def time_training_loop(
    api: Any, points: int, flush: Callable[[], None], count_visible: Callable[[str], int]
) -> tuple[float, int]:
    """``api.log_metric`` ``points`` times in one run, until a fresh reader sees them all.

    Returns the seconds and how many points the fresh reader counted. Starting and ending the
    run are not timed.
    """
    with api.start_run() as run:
        run_id = run.info.run_id
        start = time.perf_counter()
        for step in range(points):
            api.log_metric(TRAIN_KEY, loss_at(step), step=step)
        flush()
        visible = count_visible(run_id)
        seconds = time.perf_counter() - start
    return seconds, visible


def time_log_batches(
    client: Any, run_id: str, batches: Sequence[Sequence[Any]],
    count_visible: Callable[[str], int] | None,
) -> tuple[float, int | None]:
    """``client.log_batch(run_id, metrics=batch)`` for every batch (metric objects built
    beforehand), until ``count_visible`` — a fresh reader — counts them all.

    Returns the seconds and the count (None without a reader).
    """
    start = time.perf_counter()
    for batch in batches:
        client.log_batch(run_id, metrics=batch)
    visible = count_visible(run_id) if count_visible else None
    return time.perf_counter() - start, visible


def time_run_creation(api: Any, runs: Sequence[RunSpec]) -> float:
    """One ``start_run`` block per run logging its params, metrics and tags."""
    start = time.perf_counter()
    for spec in runs:
        with api.start_run():
            api.log_params(spec.params)
            api.log_metrics(spec.metrics)
            api.set_tags(spec.tags)
    return time.perf_counter() - start


@dataclass
class SearchOutcome:
    seconds: float  # median of the timed searches
    repeats: int
    matches: int  # runs matching the filter (untimed search for every match)
    top: list[float]  # acc of the returned page, in order


def time_search(client: Any, experiment_id: str, repeats: int) -> SearchOutcome:
    """``client.search_runs`` with the benchmark's filter and order; the first call (all
    matches, for the cross-check) doubles as a warm-up and is not timed."""

    def search(max_results: int):
        return client.search_runs(
            [experiment_id], filter_string=SEARCH_FILTER, order_by=SEARCH_ORDER_BY,
            max_results=max_results,
        )

    matches = len(search(SEARCH_ALL_RESULTS))
    seconds, page = median_seconds(lambda: search(SEARCH_MAX_RESULTS), repeats)
    return SearchOutcome(seconds, repeats, matches, [run.data.metrics["acc"] for run in page])


def time_history_read(client: Any, run_id: str, repeats: int) -> tuple[float, int]:
    """Median seconds of ``client.get_metric_history`` and the number of points returned."""
    seconds, history = median_seconds(
        lambda: client.get_metric_history(run_id, HISTORY_KEY), repeats
    )
    return seconds, len(history)


def history_points(count: int, start_ms: int) -> list[tuple[int, int, float]]:
    """``(step, timestamp, value)`` of a long series, one point per millisecond."""
    return [(step, start_ms + step, loss_at(step)) for step in range(count)]
