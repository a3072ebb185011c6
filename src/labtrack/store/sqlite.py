"""``SqliteStore``: the embedded store, one SQLite file.

Concurrency model: one SQLite connection per thread (and per process: a forked child opens its
own), WAL journal so readers never block the writer, a busy timeout so writers queue instead of
failing, and every write in a short ``BEGIN IMMEDIATE`` transaction. Taking the write lock up
front means a transaction never has to upgrade a read lock, which is where "database is locked"
errors come from under WAL. The queries themselves are shared with PostgreSQL
(``labtrack.store.sql``); this module holds what only SQLite does.
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from itertools import chain, count, islice, repeat
from pathlib import Path

from sqlite_utils import Database

from labtrack.store.artifacts import normalize_artifact_root
from labtrack.store.migrations import migrations
from labtrack.store.sql import SqlStore
from labtrack.store.sql_accounts import SqlAccountsMixin
from labtrack.store.sql_query import Dialect


def like_to_glob(pattern: str) -> str:
    """MLflow's LIKE is case-sensitive; SQLite's is not, but GLOB is."""
    out = []
    for ch in pattern:
        if ch == "%":
            out.append("*")
        elif ch == "_":
            out.append("?")
        elif ch in "*?[":
            out.append(f"[{ch}]")
        else:
            out.append(ch)
    return "".join(out)


# Metric points go in as multi-row INSERTs of these sizes (largest first), the rest row by row.
# One statement inserts thousands of rows in a single step, which costs about half of what
# executemany's per-row steps do and, as the step runs without the GIL, lets a background
# writer insert while the training loop keeps running. Fixed sizes keep the number of distinct
# (cached, prepared) statements small; 5 parameters × 4,096 rows stay under SQLite's default
# limit of 32,766 parameters per statement.
_POINT_CHUNK_SIZES = (4096, 1024, 256, 64)


@functools.cache
def _insert_points_sql(rows: int) -> str:
    return ("INSERT INTO metrics (series_id, seq, step, timestamp, value) VALUES "
            + ",".join(["(?,?,?,?,?)"] * rows))


class SqliteDialect(Dialect):
    """Lists travel as one JSON parameter, unpacked by ``json_each``."""

    def in_list(self, column: str, negate: bool = False) -> str:
        return f"{column} {'NOT IN' if negate else 'IN'} (SELECT value FROM json_each(?))"

    def list_param(self, values: Iterable) -> str:
        return json.dumps(list(values))

    def like(self, column: str, pattern: str) -> tuple[str, list]:
        return f"{column} GLOB ?", [like_to_glob(pattern)]

    def ilike(self, column: str, pattern: str) -> tuple[str, list]:
        # SQLite's LIKE ignores case (for ASCII), which is exactly ILIKE.
        return f"{column} LIKE ?", [pattern]


class _Connection(sqlite3.Connection):
    """A connection that can be weakly referenced, so the store can close the connections of
    live threads without keeping those of finished threads alive."""


class SqliteStore(SqlAccountsMixin, SqlStore):
    """Tracking and registry store in one SQLite file.

    :param path: the database file; created with its schema when missing.
    :param artifact_root: folder, or object-store URI (``s3://bucket/prefix``, ``gs://…``,
        ``abfss://…``, ``wasbs://…``), for the artifacts of experiments created without an
        explicit location. It is recorded in the database, so later openers that pass none use the
        same folder; the first default is ``artifacts`` next to the database file.
    :param busy_timeout: seconds a writer waits for another writer before giving up.
    """

    dialect = SqliteDialect()
    integrity_errors = (sqlite3.IntegrityError,)

    def __init__(
        self, path: str | os.PathLike, artifact_root: str | os.PathLike | None = None,
        busy_timeout: float = 60.0,
    ):
        self.path = Path(path).expanduser().resolve()
        self._requested_artifact_root = normalize_artifact_root(artifact_root)
        self._artifact_root = ""
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        self._connections: weakref.WeakSet = weakref.WeakSet()
        # Connections inherited through fork() must never be used or closed by the child.
        self._inherited: list[sqlite3.Connection] = []
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._initialize()

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"

    @property
    def location(self) -> str:
        """Where the data lives (for logs)."""
        return str(self.path)

    # -- connections and transactions --------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            str(self.path), timeout=self.busy_timeout, check_same_thread=False,
            factory=_Connection,
        )
        conn.execute("PRAGMA foreign_keys = ON")
        # WAL with synchronous=NORMAL survives application crashes; only an OS crash or power
        # loss can drop the last transactions. That is the usual trade for tracking data.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA cache_size = -32000")
        # A checkpoint copies the WAL into the database and, with synchronous=NORMAL, is the
        # one step that fsyncs. SQLite's default (every 1,000 pages, ~4 MB) checkpoints every
        # few hundred runs created; every 8,192 pages (32 MiB) copies each hot page (the runs
        # table's last page, its indexes) once per many more commits. The WAL file is cut back
        # to 64 MiB after a checkpoint so it never stays large.
        conn.execute("PRAGMA wal_autocheckpoint = 8192")
        conn.execute("PRAGMA journal_size_limit = 67108864")
        self._connections.add(conn)
        return conn

    def _conn(self) -> sqlite3.Connection:
        local = self._local
        conn = getattr(local, "conn", None)
        if conn is not None and local.pid == os.getpid():
            return conn
        if conn is not None:
            self._inherited.append(conn)
        conn = self._connect()
        local.conn = conn
        local.pid = os.getpid()
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:
                conn.rollback()
            raise
        conn.commit()

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        if conn.in_transaction:  # nested inside a write: already consistent
            yield conn
            return
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            if conn.in_transaction:
                conn.rollback()

    @contextmanager
    def _query(self) -> Iterator[sqlite3.Connection]:
        yield self._conn()

    def _initialize(self) -> None:
        conn = self._conn()
        self._enable_wal(conn)
        db = Database(conn)
        # Several processes may open a new store at once: the immediate transaction makes
        # them apply the migrations one after the other, each seeing what the previous did.
        with self._write():
            migrations.apply(db)
            self._bootstrap(conn, self._requested_artifact_root,
                            str(self.path.parent / "artifacts"))

    def _insert_points(self, conn, series_id, first_seq, steps, timestamps, values) -> None:
        rows = zip(repeat(series_id), count(first_seq), steps, timestamps, values)
        left = len(values)
        for size in _POINT_CHUNK_SIZES:
            if left < size:
                continue
            sql = _insert_points_sql(size)
            for _ in range(left // size):
                conn.execute(sql, list(chain.from_iterable(islice(rows, size))))
            left %= size
        if left:
            conn.executemany(_insert_points_sql(1), rows)

    def _enable_wal(self, conn: sqlite3.Connection) -> None:
        # Switching a new database to WAL takes an exclusive lock, and SQLite answers
        # SQLITE_BUSY at once, without the busy handler, when another process is doing the
        # same: retry within the busy timeout rather than fail an opener that raced another.
        deadline = time.monotonic() + self.busy_timeout
        pause = 0.005
        while True:
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) and "busy" not in str(error):
                    raise
                if time.monotonic() >= deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 0.2)

    def close(self) -> None:
        for conn in list(self._connections):
            if conn not in self._inherited:
                conn.close()
        self._local = threading.local()
