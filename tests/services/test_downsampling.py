"""Downsampled metric history: bounded, spikes kept, read from summaries for long series."""

from __future__ import annotations

import math
import random

import pytest

from labtrack.errors import InvalidParameterValue
from labtrack.services import downsampling


def log_series(service, run_id, key, values, steps=None, timestamps=None):
    steps = list(range(len(values))) if steps is None else steps
    timestamps = [1_000_000 + 10 * i for i in range(len(values))] if timestamps is None else (
        timestamps)
    chunk = 50_000
    for start in range(0, len(values), chunk):
        service.log_metric_columns(run_id, {key: (
            [float(v) for v in values[start:start + chunk]],
            timestamps[start:start + chunk],
            steps[start:start + chunk],
        )})


@pytest.fixture
def run(service):
    return service.create_run("0", start_time=1_000_000)


def test_short_series_come_back_whole(service, run):
    log_series(service, run.info.run_id, "loss", [3.0, 2.0, 1.0])
    (series,) = service.get_metric_history_downsampled([run.info.run_id], ["loss"])
    assert (series.values, series.steps, series.x) == ([3.0, 2.0, 1.0], [0, 1, 2], [0, 1, 2])
    assert series.total_points == 3 and series.resolution == 1 and not series.sampled


@pytest.mark.parametrize("length", [5_000, 300_000])
def test_a_single_step_spike_survives(service, run, length):
    rng = random.Random(1)
    values = [rng.uniform(0.4, 0.6) for _ in range(length)]
    spike_at = length * 2 // 3 + 7
    values[spike_at] = 50.0
    values[spike_at + 1000 if spike_at + 1000 < length else spike_at - 1000] = -50.0
    log_series(service, run.info.run_id, "loss", values)
    (series,) = service.get_metric_history_downsampled(run.info.run_id, ["loss"], max_points=100)
    assert len(series.values) <= 100
    assert 50.0 in series.values and -50.0 in series.values
    assert series.steps[series.values.index(50.0)] == spike_at
    assert series.x[0] == 0 and series.x[-1] == length - 1  # first and last kept
    assert series.x == sorted(series.x)
    # Reduced from stored summaries: the rows read are a small fraction of the raw points,
    # and at most 16 x the number of groups (the next coarser level had too few buckets).
    groups = downsampling.group_count(100)
    rows_read = math.ceil(length / series.resolution)
    assert series.resolution >= 64
    assert groups <= rows_read <= 16 * groups + 16


def test_many_runs_and_keys_in_one_call(service, run):
    other = service.create_run("0", start_time=1_000_000)
    for run_id in (run.info.run_id, other.info.run_id):
        log_series(service, run_id, "loss", [1.0 / (i + 1) for i in range(2000)])
        log_series(service, run_id, "acc", [i / 2000 for i in range(2000)])
    series = service.get_metric_history_downsampled(
        [run.info.run_id, other.info.run_id], None, max_points=50)
    assert {(s.run_id, s.key) for s in series} == {
        (r, k) for r in (run.info.run_id, other.info.run_id) for k in ("loss", "acc")}
    assert all(len(s.values) <= 50 and s.total_points == 2000 for s in series)
    only = service.get_metric_history_downsampled([run.info.run_id], ["acc"], max_points=50)
    assert [(s.run_id, s.key) for s in only] == [(run.info.run_id, "acc")]


def test_x_axes(service, run):
    timestamps = [1_000_000 + 500 * i for i in range(10)]
    log_series(service, run.info.run_id, "m", list(range(10)), steps=[i * 2 for i in range(10)],
               timestamps=timestamps)
    by_step, = service.get_metric_history_downsampled([run.info.run_id], ["m"], x_axis="step")
    by_time, = service.get_metric_history_downsampled([run.info.run_id], ["m"], x_axis="time")
    relative, = service.get_metric_history_downsampled([run.info.run_id], ["m"],
                                                       x_axis="relative_time")
    assert by_step.x == [i * 2 for i in range(10)]
    assert by_time.x == timestamps
    assert relative.x == [0.5 * i for i in range(10)]
    with pytest.raises(InvalidParameterValue, match="Invalid x_axis 'epoch'"):
        service.get_metric_history_downsampled([run.info.run_id], ["m"], x_axis="epoch")


def test_reduction_over_wall_time_keeps_extremes_when_logging_rate_varies(service, run):
    # A burst of fast points, then slow ones: equal-width groups are in time, not in count.
    timestamps = [1_000_000 + i for i in range(5000)] + [1_010_000 + 1000 * i for i in range(50)]
    values = [0.0] * 5050
    values[2500] = 9.0
    values[5030] = -9.0
    log_series(service, run.info.run_id, "m", values, timestamps=timestamps)
    series, = service.get_metric_history_downsampled([run.info.run_id], ["m"], max_points=40,
                                                     x_axis="time")
    assert 9.0 in series.values and -9.0 in series.values and len(series.values) <= 40


def test_nan_points_are_kept_as_gaps_not_extremes(service, run):
    values = [1.0] * 10_000
    for i in range(4000, 6000):
        values[i] = float("nan")
    values[100] = 7.0
    log_series(service, run.info.run_id, "m", values)
    series, = service.get_metric_history_downsampled([run.info.run_id], ["m"], max_points=20)
    finite = [v for v in series.values if not math.isnan(v)]
    assert max(finite) == 7.0
    assert any(math.isnan(v) for v in series.values)


def test_argument_errors(service, run):
    with pytest.raises(InvalidParameterValue, match="max_points"):
        service.get_metric_history_downsampled([run.info.run_id], max_points=0)
    with pytest.raises(InvalidParameterValue, match="at least 3"):
        service.get_metric_history_downsampled([run.info.run_id], max_points=2)
    with pytest.raises(InvalidParameterValue, match="run_ids"):
        service.get_metric_history_downsampled([])
    assert service.get_metric_history_downsampled([run.info.run_id], ["nothing"]) == []


def test_summary_level_choice():
    assert downsampling.summary_level(1000, 1000) is None
    assert downsampling.summary_level(64 * 499, 1000) == 0
    assert downsampling.summary_level(1_000_000, 1000) == 1
    assert downsampling.summary_level(100_000_000, 1000) == 2
    assert downsampling.summary_level(1_000_000_000, 1000) == 3


def test_reduce_points_bounds_and_order():
    rng = random.Random(3)
    points = [(i, i, rng.random()) for i in range(10_000)]
    rows = downsampling.reduce_points(points, 101, "step")
    assert len(rows) <= 101
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)
    assert max(r[3] for r in rows) == max(p[2] for p in points)
    assert min(r[3] for r in rows) == min(p[2] for p in points)
    same_x = downsampling.reduce_points([(0, i, float(i % 7)) for i in range(500)], 10, "step")
    assert {r[3] for r in same_x} >= {0.0, 6.0} and len(same_x) <= 10


def test_reduce_points_matches_a_brute_force_reduction():
    """Against the definition, on awkward data: NaN runs, infinities, repeated x, unsorted
    input. Every group's extremes are kept, nothing else but the ends."""
    rng = random.Random(11)
    for trial in range(200):
        n = rng.randrange(1, 3000)
        max_points = rng.randrange(3, 200)
        steps = [rng.randrange(0, n // 3 + 1) for _ in range(n)]
        values = [rng.choice([float("nan"), float("inf"), float("-inf")])
                  if rng.random() < 0.05 else rng.gauss(0, 1) for _ in range(n)]
        if trial % 7 == 0:  # a long NaN stretch: whole groups without a real value
            start = rng.randrange(n)
            end = min(n, start + rng.randrange(1, n // 2 + 2))
            values[start:end] = [float("nan")] * (end - start)
        points = [(s, 1000 + i, v) for i, (s, v) in enumerate(zip(steps, values, strict=True))]
        rows = downsampling.reduce_points(points, max_points, "step")
        assert len(rows) <= max_points
        assert [r[0] for r in rows] == sorted(r[0] for r in rows)
        if n <= max_points:
            assert len(rows) == n
            continue
        groups = downsampling.group_count(max_points)
        low, high = min(steps), max(steps)
        width = (high - low) / groups
        kept = {(r[1], r[2]) for r in rows}
        for group in range(groups):
            inside = [p for p in points if (group == groups - 1 and low + group * width <= p[0])
                      or low + group * width <= p[0] < low + (group + 1) * width]
            real = [p[2] for p in inside if not math.isnan(p[2])]
            if real:
                values_kept = {p[2] for p in inside if (p[0], p[1]) in kept}
                assert min(real) in values_kept and max(real) in values_kept
            elif inside:
                assert any((p[0], p[1]) in kept for p in inside)
