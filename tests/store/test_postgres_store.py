"""What only the PostgreSQL store does: migrations shared by concurrent server processes, the
artifact root recorded in the database, URLs without their password in logs. (The contract
itself runs on PostgreSQL through the ``store`` fixture of ``test_store_contract.py``.)"""

from __future__ import annotations

import subprocess
import sys
import uuid

import psycopg
import pytest

from labtrack.entities import ViewType
from labtrack.store import SqliteStore, open_store
from labtrack.store.postgres import PostgresStore
from labtrack.store.postgres_migrations import MIGRATIONS
from tests.postgres_cluster import postgres_schema_url


@pytest.fixture
def fresh_url(postgres_url):
    """A schema nothing was ever created in."""
    schema = f"fresh_{uuid.uuid4().hex[:12]}"
    url = postgres_schema_url(postgres_url, schema)
    yield url
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _applied(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [row[0] for row in conn.execute("SELECT name FROM labtrack_migrations")]


def test_reopening_applies_migrations_once(fresh_url, tmp_path):
    PostgresStore(fresh_url, tmp_path).close()
    store = PostgresStore(fresh_url)
    assert _applied(fresh_url) == [name for name, _ in MIGRATIONS]
    found = store.search_experiments(ViewType.ALL, [], [], 10, 0)
    assert [experiment.name for experiment in found] == ["Default"]
    store.close()


def test_searches_on_a_metric_value_have_an_index(fresh_url, tmp_path):
    PostgresStore(fresh_url, tmp_path).close()
    with psycopg.connect(fresh_url) as conn:
        definition = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'latest_metrics_key_value' "
            "AND schemaname = current_schema()").fetchone()
    assert definition is not None and "(key, value)" in definition[0]


def test_server_processes_starting_at_once_migrate_once(fresh_url, tmp_path):
    """Four processes open a new database at the same moment (as four server workers do):
    none fails, the schema is built once, there is one Default experiment."""
    script = (
        "import sys\n"
        "from labtrack.store.postgres import PostgresStore\n"
        "sys.stdin.read()\n"  # all four wait here, then start together
        "store = PostgresStore(sys.argv[1], sys.argv[2])\n"
        "store.create_experiment('from-' + sys.argv[3], None, {}, 1)\n"
        "store.close()\n"
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", script, fresh_url, str(tmp_path), str(i)],
                         stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(4)
    ]
    for process in processes:
        process.stdin.close()
    for process in processes:
        assert process.wait(timeout=120) == 0, process.stderr.read()
        process.stderr.close()
    assert _applied(fresh_url) == [name for name, _ in MIGRATIONS]
    with psycopg.connect(fresh_url) as conn:
        names = sorted(row[0] for row in conn.execute("SELECT name FROM experiments"))
    assert names == ["Default", "from-0", "from-1", "from-2", "from-3"]


def test_the_artifact_root_is_recorded_for_later_openers(fresh_url, tmp_path):
    PostgresStore(fresh_url, tmp_path / "elsewhere").close()
    reopened = PostgresStore(fresh_url)
    assert reopened.artifact_root == str(tmp_path / "elsewhere")
    experiment_id = reopened.create_experiment("e", None, {}, 1)
    assert reopened.get_experiment(experiment_id).artifact_location == (
        (tmp_path / "elsewhere" / experiment_id).as_uri())
    reopened.close()


def test_the_password_stays_out_of_logs(postgres_database, tmp_path):
    url = postgres_database.replace("://labtrack@", "://labtrack:s3cret@")
    store = PostgresStore(url, tmp_path)  # trust authentication ignores the password
    assert "s3cret" not in store.location and "s3cret" not in repr(store)
    assert "127.0.0.1" in store.location
    store.close()


def test_open_store_picks_the_store_a_uri_names(postgres_database, tmp_path):
    for url in (postgres_database, postgres_database.replace("postgresql://", "postgres://")):
        store = open_store(url, tmp_path)
        assert isinstance(store, PostgresStore)
        store.close()
    store = open_store(f"sqlite:///{tmp_path}/x.db")
    assert isinstance(store, SqliteStore) and store.path == tmp_path / "x.db"
    store.close()


def test_a_store_survives_a_fork(postgres_database, tmp_path):
    """A forked child (multiprocessing's default on Linux) opens its own connections and
    leaves the parent's alone."""
    import multiprocessing

    store = PostgresStore(postgres_database, tmp_path)
    store.create_experiment("parent", None, {}, 1)
    context = multiprocessing.get_context("fork")
    child = context.Process(target=_log_from_child, args=(store,))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    assert store.get_experiment_by_name("child") is not None
    assert store.get_experiment_by_name("parent") is not None
    store.close()


def _log_from_child(store):
    store.create_experiment("child", None, {}, 2)
    store.close()


def test_a_client_logs_to_the_database_directly(postgres_database, tmp_path, monkeypatch):
    import labtrack
    from labtrack.client import fluent

    PostgresStore(postgres_database, tmp_path / "shared-artifacts").close()
    monkeypatch.setenv("LABTRACK_TRACKING_URI", postgres_database)
    monkeypatch.setattr(fluent, "_experiment_id", None)
    labtrack.set_experiment("direct")
    with labtrack.start_run() as run:
        labtrack.log_param("alpha", 0.5)
        for step in range(3):
            labtrack.log_metric("loss", 1.0 / (step + 1), step=step)
    store = PostgresStore(postgres_database)
    stored = store.get_run(run.info.run_id)
    assert stored.data.params == {"alpha": "0.5"}
    assert [m.step for m in store.get_metric_history(run.info.run_id, "loss")] == [0, 1, 2]
    assert stored.info.artifact_uri.startswith((tmp_path / "shared-artifacts").as_uri())
    store.close()


def test_an_unreachable_database_is_reported_at_once(postgres_url):
    from labtrack.errors import InvalidParameterValue

    wrong = postgres_url.rsplit("/", 1)[0] + "/no_such_database"
    with pytest.raises(InvalidParameterValue, match="no_such_database"):
        PostgresStore(wrong)


def test_the_pool_size_comes_from_the_environment(monkeypatch):
    from labtrack.errors import InvalidParameterValue
    from labtrack.store.postgres import DEFAULT_POOL_SIZE, POOL_SIZE_ENV, pool_size_from_env

    monkeypatch.delenv(POOL_SIZE_ENV, raising=False)
    assert pool_size_from_env() == DEFAULT_POOL_SIZE
    monkeypatch.setenv(POOL_SIZE_ENV, "3")
    assert pool_size_from_env() == 3
    for wrong in ("0", "-2", "many"):
        monkeypatch.setenv(POOL_SIZE_ENV, wrong)
        with pytest.raises(InvalidParameterValue, match=POOL_SIZE_ENV):
            pool_size_from_env()
