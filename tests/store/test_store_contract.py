"""The Store contract, on a real SQLite file and on a real PostgreSQL database (the `store`
fixture runs each test on both); tests that open a `SqliteStore` themselves are about SQLite."""

from __future__ import annotations

import math
import sqlite3

import pytest
from sqlite_utils import Database

from labtrack.entities import LifecycleStage, Metric, Param, RunStatus, RunTag, ViewType
from labtrack.errors import ParamValueConflict, ResourceAlreadyExists
from labtrack.store import SqliteStore
from labtrack.store.metric_summary import LEVEL_SIZES
from labtrack.store.migrations import migrations
from labtrack.store.query import Comparison, Entity, OrderTerm


def make_run(store, run_id="r1", experiment_id="0", start_time=1000, name="run", tags=None):
    return store.create_run(run_id, experiment_id, "alice", name, start_time, RunStatus.RUNNING,
                            tags or {})


def test_fresh_store_has_default_experiment_and_schema(sqlite_store):
    store = sqlite_store
    experiment = store.get_experiment("0")
    assert experiment.name == "Default"
    assert experiment.lifecycle_stage == LifecycleStage.ACTIVE
    assert experiment.artifact_location.startswith("file://")
    assert experiment.artifact_location.endswith("/artifacts/0")
    db = Database(sqlite3.connect(store.path))
    assert {"experiments", "experiment_tags", "runs", "params", "tags", "latest_metrics",
            "metrics", "metric_buckets"} <= set(db.table_names())
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_reopening_applies_migrations_once(tmp_path):
    path = tmp_path / "x.db"
    SqliteStore(path).close()
    store = SqliteStore(path)
    rows = store._conn().execute("SELECT name FROM _sqlite_migrations").fetchall()
    assert rows == [(m.name,) for m in migrations._migrations]
    assert len(rows) >= 4
    assert store._conn().execute("SELECT count(*) FROM experiments").fetchone()[0] == 1
    store.close()


def test_the_artifact_root_is_recorded_for_later_openers(tmp_path):
    path = tmp_path / "db" / "x.db"
    SqliteStore(path, tmp_path / "elsewhere").close()
    reopened = SqliteStore(path)
    assert reopened.artifact_root == str(tmp_path / "elsewhere")
    experiment_id = reopened.create_experiment("e", None, {}, 1)
    assert reopened.get_experiment(experiment_id).artifact_location == (
        (tmp_path / "elsewhere" / experiment_id).as_uri())
    reopened.close()
    assert SqliteStore(tmp_path / "fresh.db").artifact_root == str(tmp_path / "artifacts")


def test_experiment_crud(store):
    experiment_id = store.create_experiment("exp", None, {"team": "ml"}, 5)
    experiment = store.get_experiment(experiment_id)
    assert (experiment.name, experiment.tags, experiment.creation_time) == ("exp", {"team": "ml"},
                                                                            5)
    assert experiment.artifact_location.endswith(f"/artifacts/{experiment_id}")
    assert store.get_experiment_by_name("exp") == experiment
    assert store.get_experiment("999") is None
    assert store.get_experiment("not-a-number") is None
    store.rename_experiment(experiment_id, "renamed", 6)
    assert store.get_experiment(experiment_id).name == "renamed"
    assert store.get_experiment(experiment_id).last_update_time == 6
    store.set_experiment_tag(experiment_id, "team", "data")
    assert store.get_experiment(experiment_id).tags == {"team": "data"}
    assert store.delete_experiment_tag(experiment_id, "team")
    assert not store.delete_experiment_tag(experiment_id, "team")


def test_experiment_names_are_unique_even_when_deleted(store):
    experiment_id = store.create_experiment("exp", None, {}, 1)
    with pytest.raises(ResourceAlreadyExists, match="Experiment 'exp' already exists"):
        store.create_experiment("exp", None, {}, 2)
    store.set_experiment_lifecycle(experiment_id, LifecycleStage.DELETED, 3)
    with pytest.raises(ResourceAlreadyExists, match="deleted state"):
        store.create_experiment("exp", None, {}, 4)
    other = store.create_experiment("other", None, {}, 5)
    with pytest.raises(ResourceAlreadyExists):
        store.rename_experiment(other, "exp", 6)


def test_deleting_an_experiment_deletes_its_runs_and_restore_brings_back_only_those(store):
    experiment_id = store.create_experiment("exp", None, {}, 1)
    make_run(store, "kept", experiment_id)
    make_run(store, "deleted-before", experiment_id)
    store.set_run_lifecycle("deleted-before", LifecycleStage.DELETED, 10)
    store.set_experiment_lifecycle(experiment_id, LifecycleStage.DELETED, 20)
    assert store.get_run_info("kept").lifecycle_stage == LifecycleStage.DELETED
    store.set_experiment_lifecycle(experiment_id, LifecycleStage.ACTIVE, 30)
    assert store.get_run_info("kept").lifecycle_stage == LifecycleStage.ACTIVE
    assert store.get_run_info("deleted-before").lifecycle_stage == LifecycleStage.DELETED


def test_create_and_get_run(store):
    experiment_id = store.create_experiment("exp", "file:///tmp/somewhere", {}, 1)
    run = make_run(store, "abc", experiment_id, tags={"t": "v"})
    assert run.info.run_id == "abc" == run.info.run_uuid
    assert run.info.artifact_uri == "file:///tmp/somewhere/abc/artifacts"
    assert run.info.status == RunStatus.RUNNING
    assert run.data.tags == {"t": "v", "mlflow.runName": "run"}
    assert store.get_run("abc") == run
    assert store.get_run("missing") is None


def test_update_run_keeps_name_and_tag_in_step(store):
    make_run(store)
    info = store.update_run_info("r1", status=RunStatus.FINISHED, end_time=99, run_name="new")
    assert (info.status, info.end_time, info.run_name) == (RunStatus.FINISHED, 99, "new")
    assert store.get_run("r1").data.tags["mlflow.runName"] == "new"
    store.log_batch("r1", [], [], [RunTag("mlflow.runName", "via-tag")])
    assert store.get_run_info("r1").run_name == "via-tag"


def test_params_are_write_once_and_atomic(store):
    make_run(store)
    store.log_batch("r1", [], [Param("lr", "0.1")], [])
    store.log_batch("r1", [], [Param("lr", "0.1")], [])  # same value again is fine
    with pytest.raises(ParamValueConflict) as caught:
        store.log_batch("r1", [Metric("m", 1.0, 1, 0)], [Param("new", "x"), Param("lr", "0.2")],
                        [])
    assert "'0.1'" in caught.value.message and "'0.2'" in caught.value.message
    run = store.get_run("r1")
    assert run.data.params == {"lr": "0.1"}  # nothing of the failed batch was written
    assert run.data.metrics == {}


def test_tags_overwrite_and_delete(store):
    make_run(store)
    store.log_batch("r1", [], [], [RunTag("a", "1")])
    store.log_batch("r1", [], [], [RunTag("a", "2")])
    assert store.get_run("r1").data.tags["a"] == "2"
    assert store.delete_tag("r1", "a")
    assert not store.delete_tag("r1", "a")


def test_latest_metric_is_highest_step_then_timestamp_then_value(store):
    make_run(store)
    store.log_batch("r1", [Metric("m", 5.0, 100, 3), Metric("m", 1.0, 50, 7)], [], [])
    assert store.get_run("r1").data.metric_objects == (Metric("m", 1.0, 50, 7),)
    store.log_batch("r1", [Metric("m", 9.0, 10, 2)], [], [])  # lower step: not latest
    assert store.get_run("r1").data.metrics == {"m": 1.0}
    store.log_batch("r1", [Metric("m", 0.5, 60, 7)], [], [])  # same step, newer timestamp
    assert store.get_run("r1").data.metrics == {"m": 0.5}
    store.log_batch("r1", [Metric("m", 0.7, 60, 7)], [], [])  # same step and time, larger
    assert store.get_run("r1").data.metrics == {"m": 0.7}
    store.log_batch("r1", [Metric("m", float("nan"), 60, 7)], [], [])  # NaN ranks lowest
    assert store.get_run("r1").data.metrics == {"m": 0.7}


def test_nan_and_infinities_round_trip(store):
    make_run(store)
    values = [float("nan"), float("inf"), float("-inf"), 1e308, 5e-324, -1.5]
    store.log_batch("r1", [Metric("m", v, i, i) for i, v in enumerate(values)], [], [])
    history = store.get_metric_history("r1", "m")
    assert math.isnan(history[0].value)
    assert [m.value for m in history[1:]] == values[1:]
    store.log_batch("r1", [Metric("only_nan", float("nan"), 1, 0)], [], [])
    assert math.isnan(store.get_run("r1").data.metrics["only_nan"])


def test_history_is_ordered_by_timestamp_then_step_then_logging_order(store):
    make_run(store)
    points = [Metric("m", 3.0, 20, 1), Metric("m", 2.0, 10, 5), Metric("m", 1.0, 10, 5),
              Metric("m", 0.0, 10, 2)]
    store.log_batch("r1", points, [], [])
    expected = sorted(points, key=lambda m: (m.timestamp, m.step))  # stable
    assert store.get_metric_history("r1", "m") == expected
    assert store.get_metric_history("r1", "m", max_results=2) == expected[:2]
    assert store.get_metric_history("r1", "m", max_results=2, offset=2) == expected[2:]
    assert store.get_metric_history("r1", "other") == []
    # Appending in order after an out-of-order batch keeps the series marked unsorted.
    store.log_batch("r1", [Metric("m", 9.0, 30, 0)], [], [])
    assert store.get_metric_history("r1", "m")[-1] == Metric("m", 9.0, 30, 0)
    assert store.get_metric_history("r1", "m")[:4] == expected


def test_summaries_appear_once_a_series_outgrows_a_bucket(store):
    make_run(store)
    store.append_metric_columns("r1", {"m": ([1.0] * 64, list(range(64)), list(range(64)))})
    (series,) = store.get_metric_series(["r1"], ["m"])
    assert store.read_metric_buckets(series.series_id, 0) == []  # 64 points: one bucket
    store.append_metric_columns("r1", {"m": ([5.0], [64], [64])})
    [first, second] = store.read_metric_buckets(series.series_id, 0)
    assert (first.count, first.max[2], second.count, second.max[2]) == (64, 1.0, 1, 5.0)
    store.append_metric_columns("r1", {"m": ([0.0] * 2000, list(range(65, 2065)),
                                             list(range(65, 2065)))})
    level1 = store.read_metric_buckets(series.series_id, 1)
    assert [b.count for b in level1] == [1024, 1024, 17]
    assert level1[0].max[2] == 5.0


def test_summary_points_are_each_buckets_first_last_and_extremes_once(store):
    make_run(store)
    values = [float(i % 50) for i in range(3000)]
    values[100:300] = [math.nan] * 200  # bucket 2 (128..191) is NaN only: no extremes
    steps = list(range(3000))
    store.append_metric_columns("r1", {"m": (values, [1000 + s for s in steps], steps)})
    (series,) = store.get_metric_series(["r1"], ["m"])
    buckets = store.read_metric_buckets(series.series_id, 0)
    expected = set()
    for bucket in buckets:
        expected.update(p for p in (bucket.first, bucket.last, bucket.min, bucket.max)
                        if p is not None)
    points = store.read_metric_summary_points(series.series_id, 0)

    def comparable(point):  # NaN != NaN: compare NaN values as None
        return point[0], point[1], None if math.isnan(point[2]) else point[2]

    assert len(points) <= 4 * len(buckets)
    assert {comparable(p) for p in points} == {comparable(p) for p in expected}
    assert any(math.isnan(p[2]) for p in points)  # first/last of the NaN bucket
    assert store.read_metric_summary_points(series.series_id, 3) == []


def test_history_keeps_duplicates_and_appends_across_batches(store):
    make_run(store)
    store.log_batch("r1", [Metric("m", 1.0, 1, 0)] * 3, [], [])
    store.append_metric_columns("r1", {"m": ([2.0, 3.0], [2, 3], [1, 2])})
    assert [m.value for m in store.get_metric_history("r1", "m")] == [1.0, 1.0, 1.0, 2.0, 3.0]
    (series,) = store.get_metric_series(["r1"], ["m"])
    assert series.point_count == 5 and series.run_start_time == 1000


def test_long_batches_are_stored_point_for_point_in_order(store):
    # Sizes that cross every way a store may cut a long batch into statements.
    make_run(store)
    written = []
    for size in (5_461, 1, 4_096, 63):
        start = len(written)
        values = [math.nan if (start + i) % 997 == 0 else (start + i) * 0.5 - 7.25
                  for i in range(size)]
        steps = [(start + i) // 3 for i in range(size)]
        timestamps = [10**12 + start + i for i in range(size)]
        store.append_metric_columns("r1", {"m": (values, timestamps, steps)})
        written += zip(values, timestamps, steps)
    history = store.get_metric_history("r1", "m")

    def comparable(value):
        return None if math.isnan(value) else value

    assert [(comparable(m.value), m.timestamp, m.step) for m in history] == [
        (comparable(v), t, s) for v, t, s in written]
    (series,) = store.get_metric_series(["r1"], ["m"])
    assert series.point_count == len(written) == 9_621


def _brute_force_buckets(points, size):
    buckets = {}
    for seq, (step, timestamp, value) in enumerate(points):
        buckets.setdefault(seq // size, []).append((step, timestamp, value))
    out = {}
    for bucket, members in buckets.items():
        real = [p for p in members if not math.isnan(p[2])]
        out[bucket] = (
            len(members),
            min(real, key=lambda p: p[2])[2] if real else None,
            max(real, key=lambda p: p[2])[2] if real else None,
            members[0][:2],
            members[-1][:2],
        )
    return out


def test_summaries_match_the_raw_points_across_uneven_batches(store):
    make_run(store)
    import random

    rng = random.Random(7)
    points = []
    seq = 0
    for batch_size in [1, 63, 64, 65, 1000, 3000, 17, 20000]:
        batch = []
        for _ in range(batch_size):
            value = rng.gauss(0, 1)
            if rng.random() < 0.01:
                value = float("nan")
            batch.append((seq, seq * 10, value))
            seq += 1
        points.extend(batch)
        store.append_metric_columns(
            "r1", {"m": ([p[2] for p in batch], [p[1] for p in batch], [p[0] for p in batch])}
        )
    (series,) = store.get_metric_series(["r1"], ["m"])
    assert store.read_metric_points(series.series_id)[:3] == [p for p in points[:3]]
    for level, size in enumerate(LEVEL_SIZES):
        expected = _brute_force_buckets(points, size) if len(points) > size else {}
        stored = store.read_metric_buckets(series.series_id, level)
        assert [b.bucket for b in stored] == sorted(expected)
        for bucket in stored:
            count, low, high, first, last = expected[bucket.bucket]
            assert bucket.count == count
            assert (bucket.min[2] if bucket.min else None) == low
            assert (bucket.max[2] if bucket.max else None) == high
            assert bucket.first[:2] == first and bucket.last[:2] == last


def _seed_search(store):
    experiment_id = store.create_experiment("search", None, {}, 1)
    rows = [
        ("a", 100, {"acc": 0.9, "loss": 0.1}, {"model": "cnn"}, {"team": "x"}),
        ("b", 200, {"acc": 0.5}, {"model": "rnn"}, {}),
        ("c", 300, {"acc": float("nan")}, {"model": "cnn"}, {"team": "y"}),
        ("d", 300, {}, {}, {}),
    ]
    for run_id, start, metrics, params, tags in rows:
        make_run(store, run_id, experiment_id, start_time=start)
        store.log_batch(
            run_id,
            [Metric(k, v, 1, 0) for k, v in metrics.items()],
            [Param(k, v) for k, v in params.items()],
            [RunTag(k, v) for k, v in tags.items()],
        )
    return experiment_id


def _ids(runs):
    return [r.info.run_id for r in runs]


def test_search_runs_orders_missing_and_nan_last_with_start_time_tie_break(store):
    experiment_id = _seed_search(store)
    search = lambda order, **kw: _ids(store.search_runs(  # noqa: E731
        [experiment_id], kw.get("where", []), order, ViewType.ACTIVE_ONLY, 10, 0))
    assert search([]) == ["c", "d", "b", "a"]  # newest first, then run id
    assert search([OrderTerm(Entity.METRIC, "acc", False)]) == ["a", "b", "c", "d"]
    assert search([OrderTerm(Entity.METRIC, "acc", True)]) == ["b", "a", "c", "d"]
    assert search([OrderTerm(Entity.PARAM, "model", True)]) == ["c", "a", "b", "d"]
    assert search([OrderTerm(Entity.ATTRIBUTE, "start_time", True)]) == ["a", "b", "c", "d"]
    nan_differs = [Comparison(Entity.METRIC, "acc", "!=", 0.5)]
    assert search([], where=nan_differs) == ["c", "a"]


def test_search_runs_pages_with_offset(store):
    experiment_id = _seed_search(store)
    first = store.search_runs([experiment_id], [], [], ViewType.ACTIVE_ONLY, 2, 0)
    second = store.search_runs([experiment_id], [], [], ViewType.ACTIVE_ONLY, 2, 2)
    assert _ids(first) + _ids(second) == ["c", "d", "b", "a"]


def test_concurrent_openers_of_a_new_store_do_not_collide(tmp_path):
    import concurrent.futures

    path = tmp_path / "new.db"
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        stores = list(pool.map(lambda _: SqliteStore(path), range(8)))
    applied = stores[0]._conn().execute("SELECT count(*) FROM _sqlite_migrations").fetchone()
    assert applied == (len(migrations._migrations),)
    for opened in stores:
        opened.close()


def test_timestamps_and_steps_are_int64(store):
    make_run(store, start_time=2**62)
    big, small = 2**63 - 1, -(2**63)
    store.log_batch("r1", [Metric("m", 1.0, big, small), Metric("m", 2.0, small, big)], [], [])
    history = store.get_metric_history("r1", "m")
    assert [(m.timestamp, m.step) for m in history] == [(small, big), (big, small)]
    assert store.get_run("r1").data.metrics["m"] == 2.0  # the greatest step wins
    assert store.get_run_info("r1").start_time == 2**62


def test_comparisons_never_match_nan(store):
    experiment_id = _seed_search(store)
    for operator in (">", ">=", "<", "<=", "="):
        where = [Comparison(Entity.METRIC, "acc", operator, 0.5)]
        found = _ids(store.search_runs([experiment_id], where, [], ViewType.ACTIVE_ONLY, 10, 0))
        assert "c" not in found, operator
    where = [Comparison(Entity.METRIC, "acc", ">", 0.0)]
    assert _ids(store.search_runs([experiment_id], where, [], ViewType.ACTIVE_ONLY, 10, 0)) == [
        "b", "a"]


def test_like_is_case_sensitive_and_ilike_is_not(store):
    experiment_id = _seed_search(store)
    search = lambda op, pattern: _ids(store.search_runs(  # noqa: E731
        [experiment_id], [Comparison(Entity.PARAM, "model", op, pattern)], [],
        ViewType.ACTIVE_ONLY, 10, 0))
    assert search("LIKE", "c%") == ["c", "a"]
    assert search("LIKE", "C%") == []
    assert search("ILIKE", "C_N") == ["c", "a"]
    assert search("LIKE", "_n%") == ["c", "b", "a"]


def test_version_numbers_are_unique_and_contiguous_under_concurrent_writers(store):
    import concurrent.futures

    from labtrack.entities import ActivityType
    from labtrack.store.registry import ActivityRecord

    store.create_registered_model("m", "alice", "", {}, 1,
                                  ActivityRecord(ActivityType.REGISTERED_MODEL_CREATED, "alice"))

    def register(i):
        return [store.create_model_version("m", f"s3://b/{i}/{j}", None, None, "", "alice",
                                           {}, None, 2).version for j in range(5)]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        numbers = [int(n) for batch in pool.map(register, range(8)) for n in batch]
    assert sorted(numbers) == list(range(1, 41))


def test_concurrent_writers_to_one_run_lose_nothing(store):
    """Several threads (on PostgreSQL: several connections) append to the same series and
    log the same param at once: every point lands once, in a gap-free sequence, and the
    param keeps one value while every other writer is told of the conflict."""
    import concurrent.futures

    make_run(store)

    def write(worker):
        points = range(worker * 1000, worker * 1000 + 100)
        store.append_metric_columns(
            "r1", {"m": ([float(p) for p in points], list(points), list(points))})
        try:
            store.log_batch("r1", [], [Param("owner", str(worker))], [])
            return True
        except ParamValueConflict:
            return False

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        won = list(pool.map(write, range(8)))
    assert won.count(True) == 1
    history = store.get_metric_history("r1", "m")
    assert sorted(m.step for m in history) == sorted(
        w * 1000 + i for w in range(8) for i in range(100))
    (series,) = store.get_metric_series(["r1"], ["m"])
    assert series.point_count == 800
    assert store.get_run("r1").data.params == {"owner": str(won.index(True))}


def test_a_pending_delivery_is_claimed_by_one_sender_until_its_claim_goes_stale(store):
    from labtrack.entities import DeliveryStatus, WebhookEvent, WebhookStatus

    event = WebhookEvent.REGISTERED_MODEL_CREATED
    store.create_webhook("hook", None, [event], "http://example.com/hook", None,
                         WebhookStatus.ACTIVE, "", True, 1)
    store.create_delivery("left-over", "hook", event, "{}", 10)  # unclaimed (a stopped server)
    store.create_delivery("fresh", "hook", event, "{}", 10, claimed_by="a")
    # Unclaimed ones and claims older than the stale mark are up for grabs, not fresh claims.
    assert [d.id for d, _ in store.pending_deliveries(stale_before_ms=5)] == ["left-over"]
    assert store.claim_delivery("left-over", "b", 20, stale_before_ms=5)
    assert not store.claim_delivery("left-over", "c", 21, stale_before_ms=5)
    assert not store.claim_delivery("fresh", "b", 20, stale_before_ms=5)
    assert store.claim_delivery("fresh", "a", 30, stale_before_ms=5)  # its sender renews it
    assert store.pending_deliveries(stale_before_ms=15) == []
    # A claim last renewed before the stale mark: its sender is presumed dead.
    assert [d.id for d, _ in store.pending_deliveries(stale_before_ms=31)] == [
        "left-over", "fresh"]
    assert store.claim_delivery("fresh", "c", 40, stale_before_ms=31)
    assert not store.claim_delivery("fresh", "a", 41, stale_before_ms=31)
    # A finished delivery is nobody's to send again.
    store.update_delivery("left-over", DeliveryStatus.DELIVERED, 1, 50, 200, None)
    assert not store.claim_delivery("left-over", "c", 60, stale_before_ms=10**6)
    assert [d.id for d, _ in store.pending_deliveries(stale_before_ms=10**6)] == ["fresh"]
