"""Shared fixtures: every test gets its own SQLite file and artifact folder.

Tests of the store contract (the ``store`` and ``service`` fixtures) run twice: on SQLite and
on PostgreSQL. PostgreSQL is ``LABTRACK_TEST_POSTGRES_URL`` when set (a database the tests may
wipe), else a private cluster started for the session (see ``postgres_cluster``).
"""

from __future__ import annotations

import os

import psycopg
import pytest

import labtrack
from labtrack.client import fluent
from labtrack.client import tracking as client_module
from labtrack.services import TrackingService
from labtrack.store import SqliteStore
from labtrack.store.postgres import PostgresStore
from tests.postgres_cluster import URL_ENV, PostgresCluster, find_bindir


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """No test may touch the user's real data directory or inherit run/experiment settings."""
    monkeypatch.setenv("LABTRACK_HOME", str(tmp_path / "home"))
    for name in ("LABTRACK_TRACKING_URI", "LABTRACK_RUN_ID", "LABTRACK_EXPERIMENT_NAME",
                 "LABTRACK_EXPERIMENT_ID", "LABTRACK_FLUSH_INTERVAL"):
        monkeypatch.delenv(name, raising=False)
    yield


@pytest.fixture(scope="session")
def postgres_url():
    """A PostgreSQL database for the session's tests, emptied by ``postgres_database``."""
    configured = os.environ.get(URL_ENV)
    if configured:
        yield configured
        return
    bindir = find_bindir()
    if bindir is None:
        # Failing, not skipping: a suite that passes without PostgreSQL would say nothing
        # about half the stores it claims to test (.ci/run installs the package).
        pytest.fail(f"no PostgreSQL: install Debian's postgresql package or set {URL_ENV}")
    cluster = PostgresCluster(bindir)
    try:
        admin_url = cluster.start()
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE labtrack_test")
        yield cluster.url("labtrack_test")
    finally:
        cluster.stop()


@pytest.fixture
def postgres_database(postgres_url):
    """``postgres_url`` with every labtrack table emptied (identities restarted): a fresh
    store for the test, without paying for a new database and schema each time."""
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        # A connection a previous test leaked must not make this wait forever.
        conn.execute("SET lock_timeout = '20s'")
        tables = [row[0] for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
            "AND tablename <> 'labtrack_migrations'")]
        if tables:
            conn.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables)
                         + " RESTART IDENTITY CASCADE")
    return postgres_url


@pytest.fixture(params=["sqlite", "postgres"])
def store_backend(request) -> str:
    """Which database the ``store`` (and the servers built on it) uses."""
    return request.param


@pytest.fixture
def store(store_backend, request, tmp_path):
    """The store under contract: a new SQLite file, or an emptied PostgreSQL database with
    its artifacts in the same place the SQLite store would keep them."""
    if store_backend == "sqlite":
        store = SqliteStore(tmp_path / "store" / "labtrack.db")
    else:
        url = request.getfixturevalue("postgres_database")
        store = PostgresStore(url, tmp_path / "store" / "artifacts")
    yield store
    store.close()


@pytest.fixture
def sqlite_store(tmp_path):
    store = SqliteStore(tmp_path / "store" / "labtrack.db")
    yield store
    store.close()


@pytest.fixture
def service(store):
    return TrackingService(store)


@pytest.fixture
def tracking_uri(tmp_path):
    return str(tmp_path / "tracking")


@pytest.fixture
def client(tracking_uri):
    client = labtrack.TrackingClient(tracking_uri)
    yield client
    client.flush()


@pytest.fixture
def fluent_uri(tracking_uri):
    """The fluent API pointed at a fresh store, with no run or experiment left over."""
    labtrack.set_tracking_uri(tracking_uri)
    fluent._experiment_id = None
    yield tracking_uri
    while labtrack.active_run() is not None:
        labtrack.end_run()
    labtrack.set_tracking_uri(None)
    fluent._experiment_id = None


@pytest.fixture(autouse=True)
def _close_backends():
    yield
    with client_module._backends_lock:
        backends = list(client_module._backends.values())
        client_module._backends.clear()
    for backend in backends:
        backend.writer.close()
        dispatcher = getattr(backend.registry, "dispatcher", None)
        if dispatcher is not None:
            dispatcher.wait_idle()
            dispatcher.close()
        store = getattr(backend.service, "store", None)
        if store is not None:
            store.close()


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory):
    """moto's S3 server on loopback, shared by the session, with the test credentials in this
    process's environment while it runs."""
    from tests.object_store import S3Endpoint, restore, set_credentials

    saved = set_credentials()
    endpoint = S3Endpoint(tmp_path_factory.mktemp("moto") / "moto.log")
    try:
        yield endpoint
    finally:
        endpoint.stop()
        restore(saved)
