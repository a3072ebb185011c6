"""Property test: however points are split into batches, the stored summaries equal the
summaries computed from the raw series."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labtrack.entities import RunStatus
from labtrack.store import SqliteStore
from labtrack.store.metric_summary import LEVEL_SIZES

values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from([0.0, 1.0, -1.0, float("nan")]),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    points=st.lists(values, min_size=1, max_size=3000),
    cuts=st.lists(st.integers(min_value=1, max_value=3000), max_size=6),
)
def test_summaries_equal_a_recomputation_from_raw_points(points, cuts):
    with tempfile.TemporaryDirectory() as folder:
        store = SqliteStore(Path(folder) / "s.db")
        store.create_run("r", "0", "u", "r", 0, RunStatus.RUNNING, {})
        boundaries = sorted({0, len(points), *(c for c in cuts if c < len(points))})
        for start, end in zip(boundaries, boundaries[1:]):
            chunk = points[start:end]
            store.append_metric_columns("r", {"m": (chunk, list(range(start, end)),
                                                    list(range(start, end)))})
        (series,) = store.get_metric_series(["r"], ["m"])
        assert series.point_count == len(points)
        for level, size in enumerate(LEVEL_SIZES):
            stored = {b.bucket: b for b in store.read_metric_buckets(series.series_id, level)}
            if len(points) <= size:  # levels are kept once a series outgrows one bucket
                assert stored == {}
                continue
            assert sorted(stored) == list(range(math.ceil(len(points) / size)))
            for bucket, summary in stored.items():
                members = points[bucket * size:(bucket + 1) * size]
                real = [v for v in members if not math.isnan(v)]
                assert summary.count == len(members)
                assert summary.first[1] == bucket * size
                assert summary.last[1] == bucket * size + len(members) - 1
                if real:
                    assert summary.min[2] == min(real) and summary.max[2] == max(real)
                    assert points[summary.min[1]] == min(real)  # a real point, not a copy
                else:
                    assert summary.min is None and summary.max is None
        store.close()
