"""``PostgresStore``: the store of a central server, on PostgreSQL (psycopg 3).

The queries are the ones ``SqliteStore`` runs (``labtrack.store.sql``); this module holds what
only PostgreSQL does: a connection pool shared by the server's threads, transactions that run
concurrently (so rows that are read and then changed are locked: a run's row while its metrics
and params are written, a registered model's row while it gets a version), savepoints around
statements allowed to fail, COPY for long metric batches, and the migrations.

Reads that take several statements run in a REPEATABLE READ snapshot, as SQLite's do; writes
run in READ COMMITTED and lock what they read-then-write.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from itertools import count, repeat

import psycopg
from psycopg_pool import ConnectionPool

from labtrack.errors import InvalidParameterValue
from labtrack.store import postgres_migrations
from labtrack.store.artifacts import normalize_artifact_root
from labtrack.store.base import LifecycleGuard
from labtrack.store.sql import SqlStore
from labtrack.store.sql_accounts import SqlAccountsMixin
from labtrack.store.sql_query import Dialect

POOL_SIZE_ENV = "LABTRACK_POSTGRES_POOL_SIZE"
DEFAULT_POOL_SIZE = 10
# Below this many points an INSERT batch is as quick as COPY and needs no COPY round trips.
_COPY_THRESHOLD = 64


class PostgresDialect(Dialect):
    """Lists travel as one array parameter."""

    lock_rows = " FOR NO KEY UPDATE"

    def in_list(self, column: str, negate: bool = False) -> str:
        return f"{column} <> ALL(?)" if negate else f"{column} = ANY(?)"

    def list_param(self, values: Iterable) -> list:
        # NULL never matches IN, and an array of only NULLs has no type PostgreSQL can infer.
        return [value for value in values if value is not None]

    def like(self, column: str, pattern: str) -> tuple[str, list]:
        # LIKE is case-sensitive here; ESCAPE '' makes a backslash an ordinary character,
        # as it is in SQLite's GLOB.
        return f"{column} LIKE ? ESCAPE ''", [pattern]

    def ilike(self, column: str, pattern: str) -> tuple[str, list]:
        return f"{column} ILIKE ? ESCAPE ''", [pattern]


@lru_cache(maxsize=1024)
def _placeholders(sql: str) -> str:
    """The shared SQL's ``?`` placeholders in psycopg's ``%s`` style (the shared SQL has no
    other ``?`` and no ``%``; a literal ``%`` would be escaped here)."""
    return sql.replace("%", "%%").replace("?", "%s")


class _Connection:
    """A pooled psycopg connection with the interface the shared store code uses."""

    __slots__ = ("raw",)

    def __init__(self, raw: psycopg.Connection):
        self.raw = raw

    def execute(self, sql: str, params=()) -> psycopg.Cursor:
        return self.raw.execute(_placeholders(sql), params)

    def executemany(self, sql: str, rows) -> psycopg.Cursor:
        cursor = self.raw.cursor()
        cursor.executemany(_placeholders(sql), rows)
        return cursor


def pool_size_from_env() -> int:
    raw = os.environ.get(POOL_SIZE_ENV)
    if not raw:
        return DEFAULT_POOL_SIZE
    try:
        size = int(raw)
    except ValueError:
        size = 0
    if size < 1:
        raise InvalidParameterValue(
            f"{POOL_SIZE_ENV}={raw!r}: give a positive number of connections.")
    return size


class PostgresStore(SqlAccountsMixin, SqlStore):
    """Tracking and registry store in a PostgreSQL database.

    :param url: a libpq connection URI, ``postgresql://user:password@host:port/database``
        (query parameters such as ``sslmode`` or ``options=-csearch_path%3Dschema`` pass
        through to libpq). The schema is created or migrated on first use.
    :param artifact_root: folder, or object-store URI (``s3://bucket/prefix``, ``gs://…``,
        ``abfss://…``, ``wasbs://…``), for the artifacts of experiments created without an explicit
        location, recorded in the database for later openers; the first default is
        ``artifacts`` in labtrack's data directory.
    :param pool_size: most connections this store holds open (default
        ``LABTRACK_POSTGRES_POOL_SIZE`` or 10); a thread waits when all are busy.
    """

    dialect = PostgresDialect()
    integrity_errors = (psycopg.errors.UniqueViolation,)

    def __init__(self, url: str, artifact_root: str | os.PathLike | None = None,
                 pool_size: int | None = None):
        from labtrack import config  # the data directory, for the default artifact root

        self.url = url
        self._requested_artifact_root = normalize_artifact_root(artifact_root)
        self._artifact_root = ""
        self._default_artifact_root = str((config.data_dir() / "artifacts").resolve())
        self._pool_size = pool_size or pool_size_from_env()
        self._local = threading.local()
        self._pool: ConnectionPool | None = None
        self._pool_pid = 0
        self._pool_lock = threading.Lock()
        self._initialize()

    def __repr__(self) -> str:
        return f"PostgresStore({_redacted(self.url)!r})"

    @property
    def location(self) -> str:
        """Where the data lives, without the password (for logs)."""
        return _redacted(self.url)

    # -- connections and transactions --------------------------------------------------------

    def _connections(self) -> ConnectionPool:
        pool = self._pool
        if pool is not None and self._pool_pid == os.getpid():
            return pool
        with self._pool_lock:
            if self._pool is None or self._pool_pid != os.getpid():
                # A forked child never uses its parent's sockets: it opens its own pool.
                # (Dropping the inherited one is safe: psycopg ends a session only from the
                # process that opened it.)
                self._pool = ConnectionPool(
                    self.url, min_size=1, max_size=self._pool_size,
                    kwargs={"autocommit": True}, name="labtrack", open=True,
                )
                self._pool_pid = os.getpid()
            return self._pool

    @contextmanager
    def _transaction(self, begin: str | None) -> Iterator[_Connection]:
        held = getattr(self._local, "conn", None)
        if held is not None:
            yield held
            return
        with self._connections().connection() as raw:
            conn = _Connection(raw)
            self._local.conn = conn
            try:
                if begin is None:
                    with raw.transaction():
                        yield conn
                else:
                    raw.execute(begin)
                    try:
                        yield conn
                    finally:
                        raw.execute("ROLLBACK")
            finally:
                self._local.conn = None

    def _write(self):
        return self._transaction(None)

    def _read(self):
        return self._transaction("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")

    @contextmanager
    def _query(self) -> Iterator[_Connection]:
        held = getattr(self._local, "conn", None)
        if held is not None:
            yield held
            return
        with self._connections().connection() as raw:
            yield _Connection(raw)

    def _savepoint(self, conn: _Connection):
        return conn.raw.transaction()

    def _lock_run(self, conn, run_id: str, guard: LifecycleGuard | None) -> None:
        row = conn.execute("SELECT lifecycle_stage FROM runs WHERE run_uuid = ? "
                           "FOR NO KEY UPDATE", (run_id,)).fetchone()
        if guard is not None:
            guard(run_id, row and row[0])

    def _insert_points(self, conn, series_id, first_seq, steps, timestamps, values) -> None:
        if len(values) < _COPY_THRESHOLD:
            super()._insert_points(conn, series_id, first_seq, steps, timestamps, values)
            return
        cursor = conn.raw.cursor()
        with cursor.copy(
            "COPY metrics (series_id, seq, step, timestamp, value) FROM STDIN"
        ) as copy:
            for row in zip(repeat(series_id), count(first_seq), steps, timestamps, values):
                copy.write_row(row)

    def _initialize(self) -> None:
        # A connection of its own rather than the pool's: a wrong host or password is
        # reported at once instead of after the pool's timeout.
        try:
            raw = psycopg.connect(self.url, autocommit=True)
        except psycopg.Error as error:
            raise InvalidParameterValue(
                f"Cannot open the PostgreSQL store {self.location}: {error}".strip()) from None
        with raw:
            postgres_migrations.apply(raw)
        with self._write() as conn:
            self._bootstrap(conn, self._requested_artifact_root, self._default_artifact_root)

    def close(self) -> None:
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None and self._pool_pid == os.getpid():
            pool.close()


def _redacted(url: str) -> str:
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "<invalid PostgreSQL URL>"
    info.pop("password", None)
    return psycopg.conninfo.make_conninfo(**info)
