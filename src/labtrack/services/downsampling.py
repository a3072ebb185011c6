"""Bounded metric series for charts: at most N points, each x-range's extremes kept.

The x range of a series is cut into equal-width groups; each group contributes its lowest and
highest point, and the series' first and last points (by x) are always kept. A single-step
spike is the maximum of its group, so it survives any reduction. Input points are either the
raw series or, for long series, the first/last/min/max points of stored summary buckets, so a
million-point series is reduced from about a thousand rows.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from operator import itemgetter

from labtrack.errors import InvalidParameterValue
from labtrack.store.metric_summary import LEVEL_SIZES

X_AXES = ("step", "time", "relative_time")

Point = tuple[int, int, float]  # (step, timestamp, value)


def check_x_axis(x_axis: str) -> None:
    if x_axis not in X_AXES:
        raise InvalidParameterValue(
            f"Invalid x_axis '{x_axis}'. Use one of: {', '.join(X_AXES)}."
        )


def x_values(x_axis: str, steps: Sequence[int], timestamps: Sequence[int],
             run_start_time: int | None) -> list[float]:
    """x of each point: its step, its wall time (ms since the epoch), or seconds since the
    run started."""
    check_x_axis(x_axis)
    if x_axis == "step":
        return list(steps)
    if x_axis == "time":
        return list(timestamps)
    start = run_start_time or 0
    return [(timestamp - start) / 1000.0 for timestamp in timestamps]


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
    points: Sequence[Point], max_points: int, x_axis: str = "step",
    run_start_time: int | None = None,
) -> list[tuple[float, int, int, float]]:
    """At most ``max_points`` of ``points`` as ``(x, step, timestamp, value)`` sorted by x
    (points at one x stay in the order given)."""
    # Column-wise with builtins (sort, bisect, min, max, index run at C speed): a chart of
    # a hundred million-point series reduces thousands of points per series.
    ordered = sorted(points, key=itemgetter(0 if x_axis == "step" else 1))
    if not ordered:
        return []
    # Columns by itemgetter, not zip(*ordered): that makes one iterator per point, and the
    # allocations set off the cyclic garbage collector over everything the caller holds.
    steps, timestamps, values = (list(map(itemgetter(k), ordered)) for k in range(3))
    xs = x_values(x_axis, steps, timestamps, run_start_time)
    n = len(xs)
    if n <= max_points:
        return list(zip(xs, steps, timestamps, values, strict=True))
    keep = _extremes_by_group(xs, values, group_count(max_points))
    # Summary points repeat (a bucket's first point is often its minimum): keep one of each.
    return list(dict.fromkeys((xs[i], steps[i], timestamps[i], values[i]) for i in keep))


def _extremes_by_group(xs: list[float], values: list[float], groups: int) -> list[int]:
    """Indices to keep of points sorted by x: the first, the last, and the lowest and highest
    value of each of ``groups`` equal-width x ranges (a NaN-only range keeps one NaN, so the
    chart shows the gap)."""
    n = len(xs)
    low_x, high_x = xs[0], xs[-1]
    width = (high_x - low_x) / groups
    keep = {0, n - 1}
    start = 0
    for group in range(groups):
        end = n if group == groups - 1 else bisect_left(xs, low_x + (group + 1) * width, start)
        if end <= start:
            continue
        chunk = values[start:end]
        total = sum(chunk)
        if total == total:  # no NaN (nor inf - inf): the builtins' comparisons are exact
            keep.add(start + chunk.index(min(chunk)))
            keep.add(start + chunk.index(max(chunk)))
        else:
            real = [k for k, value in enumerate(chunk) if value == value]
            if real:
                keep.add(start + min(real, key=chunk.__getitem__))
                keep.add(start + max(real, key=chunk.__getitem__))
            else:
                keep.add(start)
        start = end
    return sorted(keep)
