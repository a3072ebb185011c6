"""Bounded metric series for charts: at most N points, each x-range's extremes kept.

The x range of a series is cut into equal-width groups; each group contributes its lowest and
highest point, and the series' first and last points (by x) are always kept. A single-step
spike is the maximum of its group, so it survives any reduction. Input points are either the
raw series or, for long series, the first/last/min/max points of stored summary buckets, so a
million-point series is reduced from about a thousand rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

from labtrack.errors import InvalidParameterValue
from labtrack.store.metric_summary import LEVEL_SIZES

X_AXES = ("step", "time", "relative_time")

Point = tuple[int, int, float]  # (step, timestamp, value)


def x_function(x_axis: str, run_start_time: int | None) -> Callable[[int, int], float]:
    """x of a point: its step, its wall time (ms since the epoch), or seconds since the run
    started."""
    if x_axis == "step":
        return lambda step, timestamp: step
    if x_axis == "time":
        return lambda step, timestamp: timestamp
    if x_axis == "relative_time":
        start = run_start_time or 0
        return lambda step, timestamp: (timestamp - start) / 1000.0
    raise InvalidParameterValue(
        f"Invalid x_axis '{x_axis}'. Use one of: {', '.join(X_AXES)}."
    )


def group_count(max_points: int) -> int:
    """Groups of a reduction to ``max_points``: two extremes each, plus first and last."""
    return max(1, (max_points - 2) // 2)


def summary_level(point_count: int, max_points: int) -> int | None:
    """The coarsest summary level that still gives every group at least one bucket, or
    ``None`` when raw points must be read (short series). The store keeps a level only once a
    series is longer than one of its buckets."""
    groups = group_count(max_points)
    chosen = None
    for level, size in enumerate(LEVEL_SIZES):
        if point_count > size and math.ceil(point_count / size) >= groups:
            chosen = level
    return chosen


def reduce_points(
    points: Iterable[Point], max_points: int, x_of: Callable[[int, int], float]
) -> list[tuple[float, int, int, float]]:
    """At most ``max_points`` of ``points`` as ``(x, step, timestamp, value)`` sorted by x."""
    rows = [(x_of(step, timestamp), step, timestamp, value) for step, timestamp, value in points]
    order = sorted(range(len(rows)), key=lambda i: rows[i][0])
    if len(rows) <= max_points:
        return [rows[i] for i in order]
    groups = group_count(max_points)
    low_x = rows[order[0]][0]
    high_x = rows[order[-1]][0]
    width = (high_x - low_x) / groups
    lowest: dict[int, int] = {}
    highest: dict[int, int] = {}
    nan_only: dict[int, int] = {}
    for i, (x, _step, _timestamp, value) in enumerate(rows):
        group = min(groups - 1, int((x - low_x) / width)) if width > 0 else 0
        if value != value:
            nan_only.setdefault(group, i)
            continue
        if group not in lowest or value < rows[lowest[group]][3]:
            lowest[group] = i
        if group not in highest or value > rows[highest[group]][3]:
            highest[group] = i
    keep = {order[0], order[-1], *lowest.values(), *highest.values()}
    # A group with only NaN points keeps one of them, so the chart shows the gap.
    keep.update(i for group, i in nan_only.items() if group not in lowest)
    return sorted((rows[i] for i in keep), key=lambda row: row[0])


def bucket_points(buckets: Sequence) -> list[Point]:
    """The real points a level's buckets preserve: first, last, min and max of each."""
    points: list[Point] = []
    for bucket in buckets:
        seen: list[Point] = []
        for candidate in (bucket.first, bucket.min, bucket.max, bucket.last):
            # The same point is often first and min, say; identity is the whole point.
            if candidate is not None and not any(candidate == p for p in seen):
                seen.append(candidate)
        points.extend(seen)
    return points
