"""``MetricWriter`` on its own: what reaches the sink, in which order, and when."""

from __future__ import annotations

import threading

import pytest

from labtrack.client.writer import MetricWriter, MetricWriterError


class RecordingSink:
    """Keeps every write as ``(run_id, {key: [(value, timestamp, step), …]})``."""

    def __init__(self):
        self.writes: list[tuple[str, dict[str, list[tuple]]]] = []
        self.fail_for: set[str] = set()

    def __call__(self, run_id, columns):
        if run_id in self.fail_for:
            raise RuntimeError(f"store refused {run_id}")
        self.writes.append((run_id, {key: list(zip(*cols)) for key, cols in columns.items()}))

    def points(self, run_id: str, key: str) -> list[tuple]:
        return [p for owner, series in self.writes if owner == run_id
                for p in series.get(key, [])]


@pytest.fixture
def sink():
    return RecordingSink()


@pytest.fixture
def writer(sink):
    # An interval long enough that only flush(), take() and the size threshold write.
    writer = MetricWriter(sink, interval=3600)
    yield writer
    writer.close()


def test_interleaved_runs_and_keys_keep_their_order_and_are_written_per_run(writer, sink):
    for step in range(5):
        writer.add("a", "loss", step * 1.0, 100 + step, step)
        writer.add("b", "loss", -step * 1.0, 200 + step, step)
        writer.add("a", "acc", step / 10, 300 + step, step)
    assert writer.pending_points == 15
    writer.flush()
    assert writer.pending_points == 0
    assert sorted(run_id for run_id, _ in sink.writes) == ["a", "b"]  # one write per run
    assert sink.points("a", "loss") == [(s * 1.0, 100 + s, s) for s in range(5)]
    assert sink.points("a", "acc") == [(s / 10, 300 + s, s) for s in range(5)]
    assert sink.points("b", "loss") == [(-s * 1.0, 200 + s, s) for s in range(5)]


def test_take_returns_one_runs_points_and_leaves_the_others_in_order(writer, sink):
    for step in range(3):
        writer.add("a", "m", float(step), step, step)
        writer.add("b", "m", float(step), step, step)
    taken = writer.take("a")
    assert {key: list(zip(*cols)) for key, cols in taken.items()} == {
        "m": [(0.0, 0, 0), (1.0, 1, 1), (2.0, 2, 2)]}
    writer.add("b", "m", 3.0, 3, 3)  # added after the take: stays behind b's earlier points
    assert writer.take("nobody") == {}
    writer.flush()
    assert sink.writes == [("b", {"m": [(float(s), s, s) for s in range(4)]})]


def test_points_added_from_many_threads_are_all_written_once(writer, sink):
    threads, per_thread = 4, 20_000

    def produce(index: int) -> None:
        for step in range(per_thread):
            writer.add(f"run{index}", "m", float(step), step, step)
            if step % 5_000 == 0:
                writer.flush()  # writes race with the other producers' adds

    workers = [threading.Thread(target=produce, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    writer.flush()
    for index in range(threads):
        assert [p[2] for p in sink.points(f"run{index}", "m")] == list(range(per_thread))


def test_a_failed_write_is_reported_once_with_the_points_it_lost(writer, sink):
    sink.fail_for.add("bad")
    writer.add("bad", "m", 1.0, 1, 0)
    writer.add("bad", "m", 2.0, 2, 1)
    writer.add("good", "m", 3.0, 3, 0)
    with pytest.raises(MetricWriterError, match="2 buffered metric point") as caught:
        writer.flush()
    assert "store refused bad" in str(caught.value)
    assert sink.points("good", "m") == [(3.0, 3, 0)]
    writer.flush()  # reported once, not again
