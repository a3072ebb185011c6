"""``SqlStore``: the tracking half of the SQL stores, shared by SQLite and PostgreSQL.

The SQL here is the subset both databases speak, with ``?`` placeholders; what differs (lists
as parameters, LIKE, row locks) comes from the store's ``Dialect``, and connections,
transactions and migrations from the concrete store (``SqliteStore``, ``PostgresStore``).

NaN: SQLite cannot store it (it becomes NULL), and PostgreSQL orders it above every number.
So everything searched or compared (latest values, summary extremes) keeps NaN as NULL in
both; only the raw history may hold real NaN values, and reads turn NULL back into NaN.
"""

from __future__ import annotations

import gc
import json
import math
import operator
import time
import uuid
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import partial
from itertools import count, islice, repeat
from operator import itemgetter

from labtrack.entities import (
    Dataset,
    DatasetInput,
    Experiment,
    LifecycleStage,
    LoggedModel,
    LoggedModelStatus,
    Metric,
    ModelOutput,
    Param,
    Run,
    RunData,
    RunInfo,
    RunInputs,
    RunOutputs,
    RunStatus,
)
from labtrack.errors import ParamValueConflict, ResourceAlreadyExists
from labtrack.store.artifacts import artifact_root_uri, join_artifact_uri
from labtrack.store.base import LifecycleGuard, MetricBucket, MetricSeriesInfo, Store
from labtrack.store.metric_summary import LEVEL_SHIFTS, LEVEL_SIZES, coarsen, summarize
from labtrack.store.query import Comparison, Entity
from labtrack.store.sql_query import Dialect, keyed_condition, plain_values, value_condition
from labtrack.store.sql_registry import SqlRegistryMixin

_NAN = float("nan")
_NO_SAVEPOINT = nullcontext()
# "No limit" as a LIMIT both databases accept (SQLite's -1 is an error in PostgreSQL).
_NO_LIMIT = 2**62
RUN_NAME_TAG = "mlflow.runName"

_RUN_COLUMNS = {
    "run_id": "r.run_uuid",
    "run_name": "r.name",
    "user_id": "r.user_id",
    "status": "r.status",
    "start_time": "r.start_time",
    "end_time": "r.end_time",
    "artifact_uri": "r.artifact_uri",
}
_EXPERIMENT_COLUMNS = {
    "name": "e.name",
    "experiment_id": "e.experiment_id",
    "creation_time": "e.creation_time",
    "last_update_time": "e.last_update_time",
}
_LOGGED_MODEL_COLUMNS = {
    "model_id": "lm.model_id",
    "name": "lm.name",
    "model_type": "lm.model_type",
    "status": "lm.status",
    "source_run_id": "lm.source_run_id",
    "creation_timestamp": "lm.creation_timestamp_ms",
    "last_updated_timestamp": "lm.last_updated_timestamp_ms",
}
_RUN_INFO_SELECT = (
    "SELECT r.run_uuid, r.experiment_id, r.name, r.user_id, r.status, r.start_time, "
    "r.end_time, r.artifact_uri, r.lifecycle_stage FROM runs r"
)
# The existing row's columns are qualified (b.): PostgreSQL finds bare names ambiguous here.
_BUCKET_UPSERT = """
INSERT INTO metric_buckets AS b (series_id, level, bucket, count,
    first_step, first_timestamp, first_value, last_step, last_timestamp, last_value,
    min_step, min_timestamp, min_value, max_step, max_timestamp, max_value)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (series_id, level, bucket) DO UPDATE SET
    count = b.count + excluded.count,
    last_step = excluded.last_step,
    last_timestamp = excluded.last_timestamp,
    last_value = excluded.last_value,
    min_step = CASE WHEN b.min_value IS NULL OR excluded.min_value < b.min_value
                    THEN excluded.min_step ELSE b.min_step END,
    min_timestamp = CASE WHEN b.min_value IS NULL OR excluded.min_value < b.min_value
                         THEN excluded.min_timestamp ELSE b.min_timestamp END,
    min_value = CASE WHEN b.min_value IS NULL OR excluded.min_value < b.min_value
                     THEN excluded.min_value ELSE b.min_value END,
    max_step = CASE WHEN b.max_value IS NULL OR excluded.max_value > b.max_value
                    THEN excluded.max_step ELSE b.max_step END,
    max_timestamp = CASE WHEN b.max_value IS NULL OR excluded.max_value > b.max_value
                         THEN excluded.max_timestamp ELSE b.max_timestamp END,
    max_value = CASE WHEN b.max_value IS NULL OR excluded.max_value > b.max_value
                     THEN excluded.max_value ELSE b.max_value END
"""


def _value_or_nan(value: float | None) -> float:
    return _NAN if value is None else value


def _latest_order_key(step: int, timestamp: int, value: float | None) -> tuple:
    # MLflow keeps the point with the greatest (step, timestamp, value); NaN ranks lowest.
    return (step, timestamp, -math.inf if value is None or value != value else value)


def _nan_to_null(value: float) -> float | None:
    return None if value != value else value


class SqlStore(SqlRegistryMixin, Store):
    """Tracking and registry persistence in SQL; subclasses provide the database.

    A subclass sets ``dialect`` and ``integrity_errors`` and implements the connection
    hooks below. Every connection it hands out has ``execute(sql, params)`` and
    ``executemany(sql, rows)`` taking ``?`` placeholders and returning a DB-API cursor.
    """

    dialect: Dialect
    #: What the driver raises when a UNIQUE constraint is violated.
    integrity_errors: tuple[type[Exception], ...]
    _artifact_root: str

    @property
    def artifact_root(self) -> str:
        return self._artifact_root

    # -- connections and transactions (provided by the database's store) ---------------------

    @abstractmethod
    def _write(self) -> AbstractContextManager:
        """A connection in a write transaction, committed when the block ends."""

    @abstractmethod
    def _read(self) -> AbstractContextManager:
        """A connection in a snapshot for reads that take several statements (the current
        transaction's when nested inside ``_write``)."""

    @abstractmethod
    def _query(self) -> AbstractContextManager:
        """A connection for one statement, outside any explicit transaction."""

    def _savepoint(self, conn) -> AbstractContextManager:
        """Around a statement that may fail while its transaction goes on (PostgreSQL aborts
        the whole transaction on an error unless a savepoint limits it)."""
        return _NO_SAVEPOINT

    def _lock_run(self, conn, run_id: str, guard: LifecycleGuard | None) -> None:
        """Make writes to one run's data wait for each other (metric sequence numbers and
        write-once params are read, then written; SQLite writers are serialized already),
        then show the run to ``guard``."""
        if guard is not None:
            row = conn.execute("SELECT lifecycle_stage FROM runs WHERE run_uuid = ?",
                               (run_id,)).fetchone()
            guard(run_id, row and row[0])

    def _insert_points(self, conn, series_id: int, first_seq: int, steps, timestamps,
                       values) -> None:
        conn.executemany(
            "INSERT INTO metrics (series_id, seq, step, timestamp, value) VALUES (?, ?, ?, ?, ?)",
            zip(repeat(series_id), count(first_seq), steps, timestamps, values),
        )

    def _fetchone(self, sql: str, params: Sequence = ()):
        with self._query() as conn:
            return conn.execute(sql, params).fetchone()

    def _fetchall(self, sql: str, params: Sequence = ()) -> list:
        with self._query() as conn:
            return conn.execute(sql, params).fetchall()

    def _in(self, column: str) -> str:
        return self.dialect.in_list(column)

    def _list(self, values) -> object:
        return self.dialect.list_param(plain_values(values))

    def _bootstrap(self, conn, requested_artifact_root: str | None, default_root: str) -> None:
        """Settle the artifact root (recorded in the database, so later openers that name
        none use the same folder) and create the Default experiment, once."""
        recorded = conn.execute(
            "SELECT value FROM store_settings WHERE key = 'artifact_root'"
        ).fetchone()
        self._artifact_root = (
            requested_artifact_root or (recorded[0] if recorded else None) or default_root
        )
        if recorded is None or recorded[0] != self._artifact_root:
            conn.execute(
                "INSERT INTO store_settings (key, value) VALUES ('artifact_root', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (self._artifact_root,),
            )
        now = int(time.time() * 1000)
        conn.execute(
            "INSERT INTO experiments (experiment_id, name, artifact_location, "
            "lifecycle_stage, creation_time, last_update_time) "
            "VALUES (0, 'Default', ?, 'active', ?, ?) ON CONFLICT DO NOTHING",
            (join_artifact_uri(artifact_root_uri(self._artifact_root), "0"), now, now),
        )

    # -- experiments -------------------------------------------------------------------------

    def create_experiment(self, name, artifact_location, tags, time_ms):
        with self._write() as conn:
            try:
                with self._savepoint(conn):
                    experiment_id = str(conn.execute(
                        "INSERT INTO experiments (name, artifact_location, lifecycle_stage, "
                        "creation_time, last_update_time) VALUES (?, '', 'active', ?, ?) "
                        "RETURNING experiment_id",
                        (name, time_ms, time_ms),
                    ).fetchone()[0])
            except self.integrity_errors:
                raise self._name_taken(conn, name) from None
            location = artifact_location or join_artifact_uri(
                artifact_root_uri(self._artifact_root), experiment_id)
            conn.execute(
                "UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?",
                (location, experiment_id),
            )
            conn.executemany(
                "INSERT INTO experiment_tags (experiment_id, key, value) VALUES (?, ?, ?)",
                [(experiment_id, k, v) for k, v in tags.items()],
            )
        return experiment_id

    @staticmethod
    def _name_taken(conn, name: str) -> ResourceAlreadyExists:
        row = conn.execute(
            "SELECT lifecycle_stage FROM experiments WHERE name = ?", (name,)
        ).fetchone()
        if row and row[0] == LifecycleStage.DELETED:
            return ResourceAlreadyExists(
                f"Experiment '{name}' already exists in deleted state. You can restore the "
                "experiment, or rename it before creating a new one with this name."
            )
        return ResourceAlreadyExists(f"Experiment '{name}' already exists.")

    def _experiments(self, conn, where: str, params: Sequence) -> list[Experiment]:
        rows = conn.execute(
            "SELECT experiment_id, name, artifact_location, lifecycle_stage, creation_time, "
            f"last_update_time FROM experiments e WHERE {where}",
            params,
        ).fetchall()
        if not rows:
            return []
        tags: dict[int, dict[str, str]] = {row[0]: {} for row in rows}
        for experiment_id, key, value in conn.execute(
            "SELECT experiment_id, key, value FROM experiment_tags WHERE "
            f"{self._in('experiment_id')} ORDER BY key",
            (self._list(tags),),
        ):
            tags[experiment_id][key] = value
        return [
            Experiment(
                experiment_id=str(row[0]),
                name=row[1],
                artifact_location=row[2],
                lifecycle_stage=LifecycleStage(row[3]),
                creation_time=row[4],
                last_update_time=row[5],
                tags=tags[row[0]],
            )
            for row in rows
        ]

    def get_experiment(self, experiment_id):
        key = _as_int(experiment_id)
        if key is None:
            return None
        with self._read() as conn:
            found = self._experiments(conn, "experiment_id = ?", (key,))
        return found[0] if found else None

    def get_experiment_by_name(self, name):
        with self._read() as conn:
            found = self._experiments(conn, "name = ?", (name,))
        return found[0] if found else None

    def search_experiments(self, view_type, comparisons, order_by, max_results, offset):
        where = [self._in("e.lifecycle_stage")]
        params: list = [self._list(view_type.stages)]
        for comparison in comparisons:
            sql, values = _experiment_condition(self.dialect, comparison)
            where.append(sql)
            params.extend(values)
        order_sql = []
        for term in order_by:
            column = _EXPERIMENT_COLUMNS[term.key]
            order_sql.append(f"{column} IS NULL, {column} {'ASC' if term.ascending else 'DESC'}")
        order_sql.append("e.creation_time DESC, e.experiment_id DESC")
        query = (
            " AND ".join(where) + " ORDER BY " + ", ".join(order_sql) + " LIMIT ? OFFSET ?"
        )
        params.extend([max_results, offset])
        with self._read() as conn:
            return self._experiments(conn, query, params)

    def rename_experiment(self, experiment_id, new_name, time_ms):
        with self._write() as conn:
            try:
                with self._savepoint(conn):
                    conn.execute(
                        "UPDATE experiments SET name = ?, last_update_time = ? "
                        "WHERE experiment_id = ?",
                        (new_name, time_ms, _as_int(experiment_id)),
                    )
            except self.integrity_errors:
                raise self._name_taken(conn, new_name) from None

    def set_experiment_lifecycle(self, experiment_id, stage, time_ms):
        key = _as_int(experiment_id)
        with self._write() as conn:
            if stage == LifecycleStage.DELETED:
                conn.execute(
                    "UPDATE runs SET lifecycle_stage = 'deleted', deleted_time = ? "
                    "WHERE experiment_id = ? AND lifecycle_stage = 'active'",
                    (time_ms, key),
                )
            else:
                # Bring back the runs deleted together with the experiment, not the ones the
                # user had deleted before.
                conn.execute(
                    "UPDATE runs SET lifecycle_stage = 'active', deleted_time = NULL "
                    "WHERE experiment_id = ? AND lifecycle_stage = 'deleted' AND deleted_time = "
                    "(SELECT last_update_time FROM experiments WHERE experiment_id = ?)",
                    (key, key),
                )
            conn.execute(
                "UPDATE experiments SET lifecycle_stage = ?, last_update_time = ? "
                "WHERE experiment_id = ?",
                (str(stage), time_ms, key),
            )

    def set_experiment_tag(self, experiment_id, key, value):
        with self._write() as conn:
            conn.execute(
                "INSERT INTO experiment_tags (experiment_id, key, value) VALUES (?, ?, ?) "
                "ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value",
                (_as_int(experiment_id), key, value),
            )

    def delete_experiment_tag(self, experiment_id, key):
        with self._write() as conn:
            cursor = conn.execute(
                "DELETE FROM experiment_tags WHERE experiment_id = ? AND key = ?",
                (_as_int(experiment_id), key),
            )
        return cursor.rowcount > 0

    # -- runs --------------------------------------------------------------------------------

    def create_run(self, run_id, experiment_id, user_id, run_name, start_time, status, tags,
                   guard=None):
        with self._write() as conn:
            found = conn.execute(
                "SELECT artifact_location, lifecycle_stage FROM experiments "
                "WHERE experiment_id = ?",
                (_as_int(experiment_id),),
            ).fetchone()
            if guard is not None:
                guard(experiment_id, found and found[1])
            location = found[0]
            artifact_uri = f"{location.rstrip('/')}/{run_id}/artifacts"
            conn.execute(
                "INSERT INTO runs (run_uuid, experiment_id, name, user_id, status, start_time, "
                "lifecycle_stage, artifact_uri) VALUES (?, ?, ?, ?, ?, ?, 'active', ?)",
                (run_id, _as_int(experiment_id), run_name, user_id, str(status), start_time,
                 artifact_uri),
            )
            all_tags = dict(tags)
            all_tags[RUN_NAME_TAG] = run_name
            conn.executemany(
                "INSERT INTO tags (run_uuid, key, value) VALUES (?, ?, ?)",
                [(run_id, k, v) for k, v in all_tags.items()],
            )
        # A new run holds exactly what was just written: no need to read it back.
        info = RunInfo(run_id, str(_as_int(experiment_id)), run_name, user_id,
                       RunStatus(status), start_time, None, artifact_uri, LifecycleStage.ACTIVE)
        return Run(info, RunData(params={}, tags=dict(sorted(all_tags.items()))))

    def _run_infos(self, conn, where: str, params: Sequence) -> list[RunInfo]:
        return [_run_info(row) for row in conn.execute(f"{_RUN_INFO_SELECT} WHERE {where}", params)]

    def _runs(self, conn, run_ids: Sequence[str], infos: Sequence[RunInfo] | None = None):
        """Full runs, in the order of ``run_ids``."""
        if not run_ids:
            return []
        ids_json = self._list(run_ids)
        in_runs = self._in("run_uuid")
        if infos is None:
            infos = self._run_infos(conn, self._in("r.run_uuid"), (ids_json,))
        params: dict[str, dict[str, str]] = {run_id: {} for run_id in run_ids}
        tags: dict[str, dict[str, str]] = {run_id: {} for run_id in run_ids}
        metrics: dict[str, list[Metric]] = {run_id: [] for run_id in run_ids}
        for run_id, key, value in conn.execute(
            f"SELECT run_uuid, key, value FROM params WHERE {in_runs} ORDER BY key",
            (ids_json,),
        ):
            params[run_id][key] = value
        for run_id, key, value in conn.execute(
            f"SELECT run_uuid, key, value FROM tags WHERE {in_runs} ORDER BY key",
            (ids_json,),
        ):
            tags[run_id][key] = value
        for run_id, key, value, timestamp, step in conn.execute(
            "SELECT run_uuid, key, value, timestamp, step FROM latest_metrics WHERE "
            f"{in_runs} ORDER BY key",
            (ids_json,),
        ):
            metrics[run_id].append(Metric(key, _NAN if value is None else value, timestamp, step))
        # Most runs have no inputs or outputs: those share one empty (immutable) entity.
        datasets: dict[str, list[DatasetInput]] = {}
        for run_id, input_tags, *dataset in conn.execute(
            "SELECT i.run_uuid, i.tags, d.name, d.digest, d.source_type, d.source, d.schema, "
            "d.profile FROM run_dataset_inputs i JOIN datasets d USING (dataset_uuid) "
            f"WHERE {self._in('i.run_uuid')} ORDER BY d.name, d.digest",
            (ids_json,),
        ):
            datasets.setdefault(run_id, []).append(
                DatasetInput(Dataset(*dataset), json.loads(input_tags)))
        model_inputs: dict[str, list[str]] = {}
        for run_id, model_id in conn.execute(
            f"SELECT run_uuid, model_id FROM run_model_inputs WHERE {in_runs} ORDER BY model_id",
            (ids_json,),
        ):
            model_inputs.setdefault(run_id, []).append(model_id)
        outputs: dict[str, list[ModelOutput]] = {}
        for run_id, model_id, step in conn.execute(
            f"SELECT run_uuid, model_id, step FROM run_model_outputs WHERE {in_runs} "
            "ORDER BY step, model_id",
            (ids_json,),
        ):
            outputs.setdefault(run_id, []).append(ModelOutput(model_id, step))
        by_id = {info.run_id: info for info in infos}
        runs = []
        for run_id in run_ids:
            info = by_id.get(run_id)
            if info is None:
                continue
            if run_id in datasets or run_id in model_inputs:
                inputs = RunInputs(tuple(datasets.get(run_id, ())),
                                   tuple(model_inputs.get(run_id, ())))
            else:
                inputs = _NO_INPUTS
            run_outputs = RunOutputs(tuple(outputs[run_id])) if run_id in outputs else (
                _NO_OUTPUTS)
            runs.append(Run(info, RunData(tuple(metrics[run_id]), params[run_id], tags[run_id]),
                            inputs, run_outputs))
        return runs

    def get_run(self, run_id):
        with self._read() as conn:
            found = self._runs(conn, [run_id])
        return found[0] if found else None

    def get_run_info(self, run_id):
        with self._query() as conn:
            found = self._run_infos(conn, "r.run_uuid = ?", (run_id,))
        return found[0] if found else None

    def update_run_info(self, run_id, status=None, end_time=None, run_name=None):
        assignments, params = [], []
        if status is not None:
            assignments.append("status = ?")
            params.append(str(status))
        if end_time is not None:
            assignments.append("end_time = ?")
            params.append(end_time)
        if run_name is not None:
            assignments.append("name = ?")
            params.append(run_name)
        with self._write() as conn:
            if assignments:
                conn.execute(
                    f"UPDATE runs SET {', '.join(assignments)} WHERE run_uuid = ?",
                    (*params, run_id),
                )
            if run_name is not None:
                conn.execute(
                    "INSERT INTO tags (run_uuid, key, value) VALUES (?, ?, ?) "
                    "ON CONFLICT (run_uuid, key) DO UPDATE SET value = excluded.value",
                    (run_id, RUN_NAME_TAG, run_name),
                )
            return self._run_infos(conn, "r.run_uuid = ?", (run_id,))[0]

    def set_run_lifecycle(self, run_id, stage, time_ms):
        deleted_time = time_ms if stage == LifecycleStage.DELETED else None
        with self._write() as conn:
            conn.execute(
                "UPDATE runs SET lifecycle_stage = ?, deleted_time = ? WHERE run_uuid = ?",
                (str(stage), deleted_time, run_id),
            )

    def log_batch(self, run_id, metrics, params, tags, guard=None):
        with self._write() as conn:
            self._lock_run(conn, run_id, guard)
            if params:
                self._insert_params(conn, run_id, params)
            if tags:
                conn.executemany(
                    "INSERT INTO tags (run_uuid, key, value) VALUES (?, ?, ?) "
                    "ON CONFLICT (run_uuid, key) DO UPDATE SET value = excluded.value",
                    [(run_id, t.key, t.value) for t in tags],
                )
                names = [t.value for t in tags if t.key == RUN_NAME_TAG]
                if names:
                    conn.execute(
                        "UPDATE runs SET name = ? WHERE run_uuid = ?", (names[-1], run_id)
                    )
            if metrics:
                self._append_metrics(conn, run_id, metrics)

    def _insert_params(self, conn, run_id: str, params: Sequence[Param]) -> None:
        # Params are usually new: insert first and look at the stored values only when some
        # key was there already (logging the same value again is allowed, another is not).
        inserted = conn.executemany(
            "INSERT INTO params (run_uuid, key, value) VALUES (?, ?, ?) "
            "ON CONFLICT (run_uuid, key) DO NOTHING",
            [(run_id, p.key, p.value) for p in params],
        ).rowcount
        if inserted == len(params):
            return
        stored = dict(
            conn.execute(
                f"SELECT key, value FROM params WHERE run_uuid = ? AND {self._in('key')}",
                (run_id, self._list([p.key for p in params])),
            ).fetchall()
        )
        for param in params:
            if stored[param.key] != param.value:
                raise ParamValueConflict(run_id, param.key, stored[param.key], param.value)

    def append_metric_columns(self, run_id, columns, guard=None):
        with self._write() as conn:
            self._lock_run(conn, run_id, guard)
            self._append_columns(conn, run_id, columns)

    def _append_columns(self, conn, run_id, columns) -> None:
        for key, (values, timestamps, steps) in columns.items():
            if values:
                self._append_series(conn, run_id, key, values, timestamps, steps)

    def finish_run(self, run_id, columns, status, end_time, guard=None):
        with self._write() as conn:
            self._lock_run(conn, run_id, guard)
            self._append_columns(conn, run_id, columns)
            conn.execute("UPDATE runs SET status = ?, end_time = ? WHERE run_uuid = ?",
                         (str(status), end_time, run_id))
            return self._run_infos(conn, "r.run_uuid = ?", (run_id,))[0]

    def _append_metrics(self, conn, run_id: str, metrics: Sequence[Metric]) -> None:
        keys, values, timestamps, steps = zip(*metrics)
        if keys.count(keys[0]) == len(keys):  # one series, as most batches are
            self._append_series(conn, run_id, keys[0], values, timestamps, steps)
            return
        by_key: dict[str, list[Metric]] = {}
        for metric in metrics:
            points = by_key.get(metric.key)
            if points is None:
                by_key[metric.key] = [metric]
            else:
                points.append(metric)
        for key, points in by_key.items():
            _, values, timestamps, steps = zip(*points)
            self._append_series(conn, run_id, key, values, timestamps, steps)

    def _append_series(self, conn, run_id, key, values, timestamps, steps) -> None:
        row = conn.execute(
            "SELECT series_id, point_count, step, timestamp, value, in_order, last_timestamp, "
            "last_step FROM latest_metrics WHERE run_uuid = ? AND key = ?",
            (run_id, key),
        ).fetchone()
        n = len(values)
        total = sum(values)
        nans = 0 if total == total else sum(1 for v in values if v != v)
        # The newest point by (step, timestamp, value); a NaN value ranks below any number.
        if not nans:
            best = max(zip(steps, timestamps, values, range(n)))[3]
        else:
            best = max(range(n), key=lambda i: _latest_order_key(steps[i], timestamps[i],
                                                                values[i]))
        candidate = (steps[best], timestamps[best], values[best])
        ordered = _in_time_order(timestamps, steps)
        if row is None:
            series_id = conn.execute(
                "INSERT INTO latest_metrics (run_uuid, key, value, timestamp, step, "
                "point_count, nan_count, in_order, last_timestamp, last_step) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING series_id",
                (run_id, key, _nan_to_null(candidate[2]), candidate[1], candidate[0], n, nans,
                 ordered, timestamps[-1], steps[-1]),
            ).fetchone()[0]
            first_seq = 0
        else:
            series_id, first_seq = row[0], row[1]
            ordered = bool(ordered and row[5] and (row[6], row[7]) <= (timestamps[0], steps[0]))
            if _latest_order_key(*candidate) > _latest_order_key(row[2], row[3], row[4]):
                latest = candidate
            else:
                latest = (row[2], row[3], row[4])
            conn.execute(
                "UPDATE latest_metrics SET step = ?, timestamp = ?, value = ?, "
                "point_count = point_count + ?, nan_count = nan_count + ?, in_order = ?, "
                "last_timestamp = ?, last_step = ? WHERE series_id = ?",
                (latest[0], latest[1], _nan_to_null(latest[2]), n, nans, ordered,
                 timestamps[-1], steps[-1], series_id),
            )
        self._insert_points(conn, series_id, first_seq, steps, timestamps, values)
        _update_summaries(conn, series_id, first_seq, steps, timestamps, values)

    def delete_tag(self, run_id, key):
        with self._write() as conn:
            cursor = conn.execute("DELETE FROM tags WHERE run_uuid = ? AND key = ?", (run_id, key))
        return cursor.rowcount > 0

    def log_inputs(self, run_id, datasets, model_ids):
        with self._write() as conn:
            experiment_id = conn.execute(
                "SELECT experiment_id FROM runs WHERE run_uuid = ?", (run_id,)
            ).fetchone()[0]
            for dataset_input in datasets:
                dataset = dataset_input.dataset
                conn.execute(
                    "INSERT INTO datasets (dataset_uuid, experiment_id, name, digest, "
                    "source_type, source, schema, profile) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (experiment_id, name, digest) DO NOTHING",
                    (uuid.uuid4().hex, experiment_id, dataset.name, dataset.digest,
                     dataset.source_type, dataset.source, dataset.schema, dataset.profile),
                )
                dataset_uuid = conn.execute(
                    "SELECT dataset_uuid FROM datasets WHERE experiment_id = ? AND name = ? "
                    "AND digest = ?",
                    (experiment_id, dataset.name, dataset.digest),
                ).fetchone()[0]
                conn.execute(
                    "INSERT INTO run_dataset_inputs (run_uuid, dataset_uuid, tags) "
                    "VALUES (?, ?, ?) ON CONFLICT (run_uuid, dataset_uuid) "
                    "DO UPDATE SET tags = excluded.tags",
                    (run_id, dataset_uuid, json.dumps(dataset_input.tags)),
                )
            conn.executemany(
                "INSERT INTO run_model_inputs (run_uuid, model_id) VALUES (?, ?) "
                "ON CONFLICT DO NOTHING",
                [(run_id, model_id) for model_id in model_ids],
            )

    def log_outputs(self, run_id, outputs):
        with self._write() as conn:
            conn.executemany(
                "INSERT INTO run_model_outputs (run_uuid, model_id, step) VALUES (?, ?, ?) "
                "ON CONFLICT (run_uuid, model_id) DO UPDATE SET step = excluded.step",
                [(run_id, output.model_id, output.step) for output in outputs],
            )

    # -- logged models -----------------------------------------------------------------------

    def create_logged_model(self, model_id, experiment_id, name, time_ms, model_type,
                            source_run_id, params, tags):
        with self._write() as conn:
            location = conn.execute(
                "SELECT artifact_location FROM experiments WHERE experiment_id = ?",
                (_as_int(experiment_id),),
            ).fetchone()[0]
            conn.execute(
                "INSERT INTO logged_models (model_id, experiment_id, name, artifact_location, "
                "creation_timestamp_ms, last_updated_timestamp_ms, status, model_type, "
                "source_run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (model_id, _as_int(experiment_id), name,
                 f"{location.rstrip('/')}/models/{model_id}/artifacts", time_ms, time_ms,
                 str(LoggedModelStatus.PENDING), model_type, source_run_id),
            )
            conn.executemany(
                "INSERT INTO logged_model_params (model_id, key, value) VALUES (?, ?, ?)",
                [(model_id, k, v) for k, v in params.items()],
            )
            conn.executemany(
                "INSERT INTO logged_model_tags (model_id, key, value) VALUES (?, ?, ?)",
                [(model_id, k, v) for k, v in tags.items()],
            )
            return self._logged_models(conn, "lm.model_id = ?", (model_id,))[0]

    def _logged_models(self, conn, where: str, params: Sequence) -> list[LoggedModel]:
        rows = conn.execute(
            "SELECT lm.model_id, lm.experiment_id, lm.name, lm.artifact_location, "
            "lm.creation_timestamp_ms, lm.last_updated_timestamp_ms, lm.status, "
            "lm.lifecycle_stage, lm.model_type, lm.source_run_id, lm.status_message "
            f"FROM logged_models lm WHERE {where}",
            params,
        ).fetchall()
        if not rows:
            return []
        ids_json = self._list([row[0] for row in rows])
        tags: dict[str, dict[str, str]] = {row[0]: {} for row in rows}
        model_params: dict[str, dict[str, str]] = {row[0]: {} for row in rows}
        for table, target in (("logged_model_tags", tags), ("logged_model_params", model_params)):
            for model_id, key, value in conn.execute(
                f"SELECT model_id, key, value FROM {table} WHERE {self._in('model_id')} "
                "ORDER BY key",
                (ids_json,),
            ):
                target[model_id][key] = value
        return [
            LoggedModel(
                model_id=row[0],
                experiment_id=str(row[1]),
                name=row[2],
                artifact_location=row[3],
                creation_timestamp=row[4],
                last_updated_timestamp=row[5],
                status=LoggedModelStatus(row[6]),
                lifecycle_stage=LifecycleStage(row[7]),
                model_type=row[8],
                source_run_id=row[9],
                status_message=row[10],
                tags=tags[row[0]],
                params=model_params[row[0]],
            )
            for row in rows
        ]

    def get_logged_model(self, model_id):
        with self._read() as conn:
            found = self._logged_models(conn, "lm.model_id = ?", (model_id,))
        return found[0] if found else None

    def update_logged_model(self, model_id, time_ms, status=None, lifecycle_stage=None):
        assignments, params = ["last_updated_timestamp_ms = ?"], [time_ms]
        if status is not None:
            assignments.append("status = ?")
            params.append(str(status))
        if lifecycle_stage is not None:
            assignments.append("lifecycle_stage = ?")
            params.append(str(lifecycle_stage))
        with self._write() as conn:
            conn.execute(
                f"UPDATE logged_models SET {', '.join(assignments)} WHERE model_id = ?",
                (*params, model_id),
            )

    def set_logged_model_tags(self, model_id, tags, time_ms):
        with self._write() as conn:
            conn.executemany(
                "INSERT INTO logged_model_tags (model_id, key, value) VALUES (?, ?, ?) "
                "ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value",
                [(model_id, k, v) for k, v in tags.items()],
            )
            conn.execute(
                "UPDATE logged_models SET last_updated_timestamp_ms = ? WHERE model_id = ?",
                (time_ms, model_id),
            )

    def delete_logged_model_tag(self, model_id, key):
        with self._write() as conn:
            cursor = conn.execute(
                "DELETE FROM logged_model_tags WHERE model_id = ? AND key = ?", (model_id, key)
            )
        return cursor.rowcount > 0

    def log_logged_model_params(self, model_id, params):
        with self._write() as conn:
            existing = dict(conn.execute(
                "SELECT key, value FROM logged_model_params WHERE model_id = ?", (model_id,)
            ).fetchall())
            for key, value in params.items():
                if key in existing and existing[key] != value:
                    raise ParamValueConflict(model_id, key, existing[key], value)
            conn.executemany(
                "INSERT INTO logged_model_params (model_id, key, value) "
                "VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                [(model_id, k, v) for k, v in params.items()],
            )

    def search_logged_models(self, experiment_ids, comparisons, order_by, max_results, offset):
        where = [
            self._in("lm.experiment_id"),
            "lm.lifecycle_stage = 'active'",
        ]
        params: list = [self._list([_as_int(e) for e in experiment_ids])]
        for comparison in comparisons:
            if comparison.entity == Entity.ATTRIBUTE:
                sql, values = value_condition(
                    self.dialect, _LOGGED_MODEL_COLUMNS[comparison.key], comparison)
            else:
                table = ("logged_model_params" if comparison.entity == Entity.PARAM
                         else "logged_model_tags")
                sql, values = keyed_condition(
                    self.dialect, table, "model_id", "lm.model_id", comparison)
            where.append(sql)
            params.extend(values)
        order_sql = []
        for term in order_by:
            column = _LOGGED_MODEL_COLUMNS[term.key]
            order_sql.append(f"{column} IS NULL, {column} {'ASC' if term.ascending else 'DESC'}")
        order_sql.append("lm.creation_timestamp_ms DESC, lm.model_id")
        query = f"{' AND '.join(where)} ORDER BY {', '.join(order_sql)} LIMIT ? OFFSET ?"
        with self._read() as conn:
            return self._logged_models(conn, query, (*params, max_results, offset))

    def search_runs(self, experiment_ids, comparisons, order_by, view_type, max_results, offset):
        joins: list[str] = []
        join_params: list = []
        where = [
            self._in("r.experiment_id"),
            self._in("r.lifecycle_stage"),
        ]
        where_params: list = [
            self._list([_as_int(e) for e in experiment_ids]),
            self._list(view_type.stages),
        ]
        for comparison in comparisons:
            sql, values = _run_condition(self.dialect, comparison)
            where.append(sql)
            where_params.extend(values)
        order_sql: list[str] = []
        for i, term in enumerate(order_by):
            direction = "ASC" if term.ascending else "DESC"
            if term.entity == Entity.ATTRIBUTE:
                column = _RUN_COLUMNS[term.key]
                order_sql.append(f"{column} IS NULL, {column} {direction}")
                continue
            alias = f"o{i}"
            table = {Entity.METRIC: "latest_metrics", Entity.PARAM: "params",
                     Entity.TAG: "tags"}[term.entity]
            joins.append(
                f"LEFT JOIN {table} {alias} ON {alias}.run_uuid = r.run_uuid AND {alias}.key = ?"
            )
            join_params.append(term.key)
            if term.entity == Entity.METRIC:
                # Real values first, then NaN (stored as NULL), then runs without the metric.
                order_sql.append(
                    f"CASE WHEN {alias}.series_id IS NULL THEN 2 "
                    f"WHEN {alias}.value IS NULL THEN 1 ELSE 0 END, {alias}.value {direction}"
                )
            else:
                order_sql.append(f"{alias}.value IS NULL, {alias}.value {direction}")
        order_sql.append("r.start_time DESC, r.run_uuid")
        query = (
            f"{_RUN_INFO_SELECT} {' '.join(joins)} WHERE {' AND '.join(where)} "
            f"ORDER BY {', '.join(order_sql)} LIMIT ? OFFSET ?"
        )
        with self._read() as conn:
            infos = [
                _run_info(row)
                for row in conn.execute(
                    query, (*join_params, *where_params, max_results, offset)
                )
            ]
            return self._runs(conn, [info.run_id for info in infos], infos)

    # -- metric history ----------------------------------------------------------------------

    def _series_id(self, conn, run_id: str, key: str) -> int | None:
        row = conn.execute(
            "SELECT series_id FROM latest_metrics WHERE run_uuid = ? AND key = ?", (run_id, key)
        ).fetchone()
        return row[0] if row else None

    def get_metric_history(self, run_id, key, max_results=None, offset=0):
        with self._read() as conn:
            row = conn.execute(
                "SELECT series_id, nan_count, in_order FROM latest_metrics "
                "WHERE run_uuid = ? AND key = ?", (run_id, key)).fetchone()
            if row is None:
                return []
            series_id, nans, in_order = row
            if max_results is not None or offset:
                rows = conn.execute(
                    "SELECT timestamp, step, value FROM metrics WHERE series_id = ? "
                    "ORDER BY timestamp, step, seq LIMIT ? OFFSET ?",
                    (series_id, _NO_LIMIT if max_results is None else max_results, offset),
                ).fetchall()
                return [Metric(key, _NAN if v is None else v, t, s) for t, s, v in rows]
            with _gc_paused():
                if in_order and not nans:
                    # The common case, at C speed: rows come out as Metric tuples already.
                    return list(map(_metric_from_row, conn.execute(
                        "SELECT ?, value, timestamp, step FROM metrics WHERE series_id = ? "
                        "ORDER BY seq", (key, series_id))))
                rows = conn.execute(
                    "SELECT timestamp, step, value FROM metrics WHERE series_id = ? "
                    "ORDER BY seq", (series_id,)).fetchall()
                if not in_order:
                    rows.sort(key=_time_order_key)  # stable: ties keep logging order
                return [Metric(key, _NAN if v is None else v, t, s) for t, s, v in rows]

    def get_metric_series(self, run_ids, keys):
        query = (
            "SELECT m.series_id, m.run_uuid, m.key, m.point_count, r.start_time "
            "FROM latest_metrics m JOIN runs r ON r.run_uuid = m.run_uuid "
            f"WHERE {self._in('m.run_uuid')}"
        )
        params: list = [self._list(run_ids)]
        if keys is not None:
            query += f" AND {self._in('m.key')}"
            params.append(self._list(keys))
        rows = self._fetchall(query + " ORDER BY m.run_uuid, m.key", params)
        return [MetricSeriesInfo(*row) for row in rows]

    def read_metric_points(self, series_id):
        rows = self._fetchall(
            "SELECT step, timestamp, value FROM metrics WHERE series_id = ? ORDER BY seq",
            (series_id,),
        )
        return [(s, t, _NAN if v is None else v) for s, t, v in rows]

    def read_metric_summary_points(self, series_id, level):
        # One scan of the level's rows, turned into points by column (tuple concatenation
        # and zip run at C speed): no per-bucket objects in Python. A point that is both a
        # bucket's first and its minimum, say, comes back twice; reductions do not mind.
        with _gc_paused():
            rows = self._fetchall(_SUMMARY_POINTS_SQL, (series_id, level))
            if not rows:
                return []
            c = [tuple(map(itemgetter(k), rows)) for k in range(12)]
            steps = c[0] + c[1] + c[2] + c[3]
            timestamps = c[4] + c[5] + c[6] + c[7]
            values = c[8] + c[9] + c[10] + c[11]
            points = list(zip(steps, timestamps, values, strict=True))
        if None in steps or None in values:
            # NULL step: an all-NaN bucket has no extremes. NULL value: NaN.
            return [(s, t, _NAN if v is None else v) for s, t, v in points if s is not None]
        return points

    def read_metric_buckets(self, series_id, level):
        rows = self._fetchall(
            "SELECT bucket, count, first_step, first_timestamp, first_value, last_step, "
            "last_timestamp, last_value, min_step, min_timestamp, min_value, max_step, "
            "max_timestamp, max_value FROM metric_buckets WHERE series_id = ? AND level = ? "
            "ORDER BY bucket",
            (series_id, level),
        )
        return [
            MetricBucket(
                bucket=row[0],
                count=row[1],
                first=(row[2], row[3], _value_or_nan(row[4])),
                last=(row[5], row[6], _value_or_nan(row[7])),
                min=None if row[10] is None else (row[8], row[9], row[10]),
                max=None if row[13] is None else (row[11], row[12], row[13]),
            )
            for row in rows
        ]


_SUMMARY_POINTS_SQL = (
    "SELECT first_step, last_step, min_step, max_step, "
    "first_timestamp, last_timestamp, min_timestamp, max_timestamp, "
    "first_value, last_value, min_value, max_value "
    "FROM metric_buckets WHERE series_id = ? AND level = ?"
)


# -- SQL building helpers ---------------------------------------------------------------------


def _as_int(experiment_id) -> int | None:
    """An experiment id as stored, or None when it cannot be one (not a number, or beyond
    int64, which PostgreSQL would reject rather than not find)."""
    try:
        number = int(experiment_id)
    except (TypeError, ValueError):
        return None
    return number if -2**63 <= number < 2**63 else None


def _run_info(row) -> RunInfo:
    # The CHECK constraints keep status and stage to the enums' values.
    return RunInfo(row[0], str(row[1]), row[2], row[3], _RUN_STATUSES[row[4]], row[5], row[6],
                   row[7], _LIFECYCLE_STAGES[row[8]])


_RUN_STATUSES = {status.value: status for status in RunStatus}
_LIFECYCLE_STAGES = {stage.value: stage for stage in LifecycleStage}
_NO_INPUTS = RunInputs()
_NO_OUTPUTS = RunOutputs()


def _run_condition(dialect: Dialect, comparison: Comparison) -> tuple[str, list]:
    if comparison.entity == Entity.ATTRIBUTE:
        return value_condition(dialect, _RUN_COLUMNS[comparison.key], comparison)
    table = {Entity.METRIC: "latest_metrics", Entity.PARAM: "params", Entity.TAG: "tags"}[
        comparison.entity
    ]
    return keyed_condition(dialect, table, "run_uuid", "r.run_uuid", comparison)


def _experiment_condition(dialect: Dialect, comparison: Comparison) -> tuple[str, list]:
    if comparison.entity == Entity.ATTRIBUTE:
        column = _EXPERIMENT_COLUMNS[comparison.key]
        if comparison.key == "experiment_id":
            column = "CAST(e.experiment_id AS TEXT)"
        return value_condition(dialect, column, comparison)
    return keyed_condition(dialect, "experiment_tags", "experiment_id", "e.experiment_id",
                           comparison)


_metric_from_row = partial(tuple.__new__, Metric)
_time_order_key = itemgetter(0, 1)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Building a million small tuples triggers the cyclic garbage collector over and over
    (it would double a long read's time); none of them can form a cycle."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _in_time_order(timestamps: Sequence[int], steps: Sequence[int]) -> bool:
    """Whether points are in (timestamp, step) order, checked at C speed in the usual case
    (both columns non-decreasing)."""
    if all(map(operator.le, timestamps, islice(timestamps, 1, None))):
        if all(map(operator.le, steps, islice(steps, 1, None))):
            return True
        pairs = list(zip(timestamps, steps))
        return all(map(operator.le, pairs, islice(pairs, 1, None)))
    return False


def _update_summaries(conn, series_id: int, first_seq: int, steps, timestamps, values) -> None:
    """Bring the summary levels up to date with a batch appended at ``first_seq``.

    A level is kept only once the series is longer than one of its buckets (before that no
    chart reads it), so short series write no summaries at all; a level that starts being
    kept is built from the level below it (or, for the first, from the raw points).
    """
    old_n = first_seq
    new_n = old_n + len(values)
    if new_n <= LEVEL_SIZES[0]:
        return
    if old_n <= LEVEL_SIZES[0]:
        # The first level starts now: summarize the few points already stored and the batch.
        earlier = conn.execute(
            "SELECT step, timestamp, value FROM metrics WHERE series_id = ? AND seq < ? "
            "ORDER BY seq", (series_id, old_n)).fetchall()
        steps = [r[0] for r in earlier] + list(steps)
        timestamps = [r[1] for r in earlier] + list(timestamps)
        values = [_NAN if r[2] is None else r[2] for r in earlier] + list(values)
        first_seq = old_n = 0
    levels = summarize(first_seq, steps, timestamps, values)
    for level, size in enumerate(LEVEL_SIZES):
        if new_n <= size:
            break
        if old_n > size or old_n == 0:
            aggregates = levels[level]
        else:
            # This level starts now: build it from the level below, already up to date.
            below = [list(r) for r in conn.execute(
                "SELECT bucket, count, first_step, first_timestamp, first_value, last_step, "
                "last_timestamp, last_value, min_step, min_timestamp, min_value, max_step, "
                "max_timestamp, max_value FROM metric_buckets WHERE series_id = ? AND "
                "level = ? ORDER BY bucket", (series_id, level - 1))]
            aggregates = coarsen(below, LEVEL_SHIFTS[level] - LEVEL_SHIFTS[level - 1])
        conn.executemany(
            _BUCKET_UPSERT, [(series_id, level, *aggregate) for aggregate in aggregates])
