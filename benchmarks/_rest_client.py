"""The client side of ``bench_rest.py``: the stock ``mlflow`` client against one server.

    <mlflow-python> benchmarks/_rest_client.py log_batch --sizes full --repeats 3 \
        --system labtrack --db DB --output out.json
    <mlflow-python> benchmarks/_rest_client.py search --sizes full --system mlflow --db DB \
        --output out.json
    <mlflow-python> benchmarks/_rest_client.py populate --sizes full --system mlflow --db DB \
        --output out.json

Run with the interpreter of MLflow's own venv. The server is whatever ``MLFLOW_TRACKING_URI``
names (with ``MLFLOW_TRACKING_TOKEN`` when it needs one), exactly as users point the client at
a server; ``bench_rest.py`` runs this script once per workload and server, with the same
arguments but ``--system`` (which only says how a fresh ``sqlite3`` reader counts the points in
``--db``, the server's database file). Importing MLflow and building the metric objects happen
before any clock starts.

``populate`` talks to no server: before ``mlflow server`` starts, it writes the runs that
``search`` searches into ``--db`` by direct SQL (MLflow creates the database and the
experiment, ``_mlflow_workloads.insert_runs`` the rows), as ``bench_tracking.py`` does.

The client is not modified, but ``requests.Session.send`` — through which every request of
the client goes — is timed: its time is sending the request, the server's work and receiving
the response; the rest of a workload's time is the client's own (building protobufs, JSON,
checks), the same whichever server answers.
"""

from __future__ import annotations

import argparse
import json
import platform
import sqlite3
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from _mlflow_workloads import insert_runs
from _workloads import (
    COUNT_RUNS_SQL,
    COUNT_SERIES_SQL,
    REST_SEARCH_EXPERIMENT,
    REST_SIZES,
    REST_WORKLOADS,
    RestSizes,
    count_rows,
    history_points,
    is_postgres,
    loss_at,
    make_runs,
    progress,
    time_log_batches,
    time_search,
)

BATCH_KEY = "loss"


class TransportTimer:
    """Seconds spent in ``requests.Session.send``, one sample per request."""

    def __init__(self) -> None:
        self.samples: list[float] = []

    def install(self) -> None:
        import requests

        original = requests.Session.send
        samples = self.samples

        def send(session, request, **kwargs):
            start = time.perf_counter()
            try:
                return original(session, request, **kwargs)
            finally:
                samples.append(time.perf_counter() - start)

        requests.Session.send = send

    def mark(self) -> int:
        return len(self.samples)

    def since(self, mark: int) -> list[float]:
        return self.samples[mark:]


TRANSPORT = TransportTimer()


def log_batch(mlflow: Any, args: argparse.Namespace, sizes: RestSizes) -> dict:
    """``sizes.batches`` × ``log_batch`` of ``sizes.batch_size`` points of one series, in one
    run, ``args.repeats`` times (a new run each time); then every point read back."""
    from mlflow.entities import Metric

    client = mlflow.MlflowClient()
    points = sizes.batch_points
    start_ms = int(time.time() * 1000)
    metrics = [Metric(BATCH_KEY, value, timestamp, step)
               for step, timestamp, value in history_points(points, start_ms)]
    batches = [metrics[i:i + sizes.batch_size] for i in range(0, points, sizes.batch_size)]

    def count_visible(run_id: str) -> int:
        return count_rows(args.db, COUNT_SERIES_SQL[args.system], (run_id, BATCH_KEY))

    experiment_id = client.create_experiment("rest-log-batch")
    # Every request type the timed loop makes, once, in a run of its own.
    warm_up = client.create_run(experiment_id).info.run_id
    client.log_batch(warm_up, metrics=[Metric("warm-up", 0.0, start_ms, 0)])
    run_ids = [client.create_run(experiment_id).info.run_id for _ in range(args.repeats)]
    progress(f"client:   {args.system}: {sizes.batches} x log_batch of {sizes.batch_size:,} "
             f"metrics, {args.repeats} repetition(s)...")
    seconds, visible, transport = [], [], []
    for run_id in run_ids:
        mark = TRANSPORT.mark()
        trial_seconds, trial_visible = time_log_batches(client, run_id, batches, count_visible)
        seconds.append(trial_seconds)
        visible.append(trial_visible)
        transport.append(sum(TRANSPORT.since(mark)))
    progress(f"client:   {args.system}: reading the {points:,} points back (not timed)...")
    history = client.get_metric_history(run_ids[-1], BATCH_KEY)
    logged = [(step, loss_at(step)) for step in range(points)]
    return {
        "seconds": seconds,
        "transport_seconds": transport,
        "points": points,
        "visible": visible,
        "read": len(history),
        "read_identical": sorted((m.step, m.value) for m in history) == logged,
    }


def search(mlflow: Any, args: argparse.Namespace, sizes: RestSizes) -> dict:
    """``time_search`` over the runs written before the server started."""
    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name(REST_SEARCH_EXPERIMENT)
    if experiment is None:
        raise SystemExit(f"The server has no experiment {REST_SEARCH_EXPERIMENT!r}: the runs "
                         "to search are written before it starts (see bench_rest.py).")
    experiment_id = experiment.experiment_id
    created = count_rows(args.db, COUNT_RUNS_SQL, (experiment_id,))
    progress(f"client:   {args.system}: search over {created:,} runs, "
             f"{sizes.search_repeats} timed queries...")
    mark = TRANSPORT.mark()
    outcome = time_search(client, experiment_id, sizes.search_repeats)
    # One request per search: the untimed one for every match, then the timed ones.
    requests = TRANSPORT.since(mark)
    transport = (statistics.median(requests[1:])
                 if len(requests) == 1 + sizes.search_repeats else None)
    return {**asdict(outcome), "runs": sizes.search_runs, "created": created,
            "transport_seconds": transport}


def populate(mlflow: Any, args: argparse.Namespace, sizes: RestSizes) -> dict:
    """The runs to search, in ``--db`` before ``mlflow server`` opens it: the database, its
    schema and the experiment made by MLflow's own store, opened as ``mlflow server
    --artifacts-destination …`` opens it (artifacts proxied under ``mlflow-artifacts:/``),
    then every run bulk-inserted by ``insert_runs``, the direct SQL of ``bench_tracking.py``'s
    search workload."""
    from mlflow.store.tracking import DEFAULT_ARTIFACTS_URI
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    if args.system != "mlflow":
        raise SystemExit("populate writes MLflow's schema: --system mlflow only")
    store = SqlAlchemyStore(mlflow_store_uri(args.db), DEFAULT_ARTIFACTS_URI)
    experiment_id = store.create_experiment(REST_SEARCH_EXPERIMENT)
    specs = make_runs(sizes.search_runs)
    progress(f"client:   mlflow: populating {len(specs):,} runs by direct SQL...")
    start = time.perf_counter()
    insert_runs(args.db if is_postgres(args.db) else Path(args.db),
                store.get_experiment(experiment_id), specs)
    seconds = time.perf_counter() - start
    store.engine.dispose()
    return {"experiment_id": experiment_id, "runs": len(specs), "populate_seconds": seconds,
            "created": count_rows(args.db, COUNT_RUNS_SQL, (experiment_id,))}


def mlflow_store_uri(db: str) -> str:
    """The SQLAlchemy URI of ``db`` as ``mlflow server --backend-store-uri`` takes it: psycopg
    3's driver for PostgreSQL (the one labtrack uses), ``sqlite:///`` for a file."""
    if is_postgres(db):
        return "postgresql+psycopg://" + db.split("://", 1)[1]
    return f"sqlite:///{Path(db).resolve()}"


# -- entry point -----------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", choices=(*REST_WORKLOADS, "populate"))
    parser.add_argument("--sizes", choices=sorted(REST_SIZES), default="full")
    parser.add_argument("--repeats", type=int, default=1,
                        help="log_batch: how many runs to time, each with every batch")
    parser.add_argument("--system", choices=sorted(COUNT_SERIES_SQL), required=True,
                        help="the server's schema, for the fresh reader of --db")
    parser.add_argument("--db", required=True,
                        help="the server's database file, or its PostgreSQL URL")
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()

    progress("client:   importing mlflow (not timed)...")
    import mlflow

    if args.workload != "populate":
        TRANSPORT.install()

    results: dict[str, Any] = {
        "mlflow_version": mlflow.__version__,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
    }
    workloads = {"log_batch": log_batch, "search": search, "populate": populate}
    results[args.workload] = workloads[args.workload](mlflow, args, REST_SIZES[args.sizes])
    args.output.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    sys.exit(main())
