"""Coarse min/max summaries of metric series, kept up to date as points are written.

Every point of a series has a sequence number (its position in logging order). Level ``L``
groups ``LEVEL_SIZES[L]`` consecutive sequence numbers into one bucket and records the
bucket's first, last, minimum and maximum points. A chart of a million-point series then reads
about a thousand bucket rows instead of a million points, and spikes survive because every
bucket keeps its extremes.

This module is pure Python so every store implementation can share it: the writer computes
the partial buckets of a batch here, and the store merges them into its table with an upsert.
"""

from __future__ import annotations

from collections.abc import Sequence

# Level index -> log2(points per bucket): 64, 1 024, 16 384 and 262 144 points.
LEVEL_SHIFTS = (6, 10, 14, 18)
LEVEL_SIZES = tuple(1 << s for s in LEVEL_SHIFTS)

# A partial bucket: [bucket, count,
#                    first_step, first_ts, first_value, last_step, last_ts, last_value,
#                    min_step, min_ts, min_value, max_step, max_ts, max_value]
# Values are floats; NaN is stored as None. min/max fields are None when all points are NaN.
Aggregate = list


def _nan_to_none(value: float) -> float | None:
    return None if value != value else value


def _summarize_slice(bucket: int, steps, timestamps, values, lo: int, hi: int) -> Aggregate:
    chunk = values[lo:hi]
    first_v = chunk[0]
    last_v = chunk[-1]
    total = sum(chunk)
    if total == total:
        # No NaN in the chunk: builtins find the extremes at C speed.
        low = min(chunk)
        i_low = lo + chunk.index(low)
        high = max(chunk)
        i_high = lo + chunk.index(high)
        mins = (steps[i_low], timestamps[i_low], low)
        maxs = (steps[i_high], timestamps[i_high], high)
    else:
        # NaN (or inf - inf) somewhere: compare only real numbers.
        finite = [(v, lo + k) for k, v in enumerate(chunk) if v == v]
        if finite:
            low, i_low = min(finite, key=lambda p: p[0])
            high, i_high = max(finite, key=lambda p: p[0])
            mins = (steps[i_low], timestamps[i_low], low)
            maxs = (steps[i_high], timestamps[i_high], high)
        else:
            mins = maxs = (None, None, None)
    return [
        bucket,
        hi - lo,
        steps[lo], timestamps[lo], _nan_to_none(first_v),
        steps[hi - 1], timestamps[hi - 1], _nan_to_none(last_v),
        *mins,
        *maxs,
    ]


def _merge(bucket: int, parts: Sequence[Aggregate]) -> Aggregate:
    first, last = parts[0], parts[-1]
    low = None
    high = None
    for p in parts:
        if p[10] is not None and (low is None or p[10] < low[10]):
            low = p
        if p[13] is not None and (high is None or p[13] > high[13]):
            high = p
    return [
        bucket,
        sum(p[1] for p in parts),
        first[2], first[3], first[4],
        last[5], last[6], last[7],
        *(low[8:11] if low is not None else (None, None, None)),
        *(high[11:14] if high is not None else (None, None, None)),
    ]


def summarize(
    first_seq: int, steps: Sequence[int], timestamps: Sequence[int], values: Sequence[float]
) -> list[list[Aggregate]]:
    """Partial buckets of every level for points ``first_seq, first_seq + 1, …``.

    Returns one list per level. A batch may start or end inside a bucket, so each aggregate is
    partial and must be merged with what the store holds (first from the stored row, last from
    this one, extremes compared).
    """
    n = len(values)
    if n == 0:
        return [[] for _ in LEVEL_SHIFTS]
    levels: list[list[Aggregate]] = []
    shift = LEVEL_SHIFTS[0]
    base: list[Aggregate] = []
    lo = 0
    while lo < n:
        bucket = (first_seq + lo) >> shift
        hi = min(n, ((bucket + 1) << shift) - first_seq)
        base.append(_summarize_slice(bucket, steps, timestamps, values, lo, hi))
        lo = hi
    levels.append(base)
    for level in range(1, len(LEVEL_SHIFTS)):
        levels.append(coarsen(levels[-1], LEVEL_SHIFTS[level] - LEVEL_SHIFTS[level - 1]))
    return levels


def coarsen(aggregates: Sequence[Aggregate], ratio: int) -> list[Aggregate]:
    """Merge consecutive buckets into buckets ``2 ** ratio`` times larger."""
    merged: list[Aggregate] = []
    start = 0
    while start < len(aggregates):
        bucket = aggregates[start][0] >> ratio
        end = start + 1
        while end < len(aggregates) and aggregates[end][0] >> ratio == bucket:
            end += 1
        merged.append(_merge(bucket, aggregates[start:end]))
        start = end
    return merged
