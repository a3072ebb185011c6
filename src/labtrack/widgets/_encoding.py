"""How widgets ship data to the browser: metric series as one binary buffer of float64s plus
a small JSON index, and run/registry entities as JSON-safe dictionaries (no NaN, which JSON
cannot carry)."""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Sequence
from typing import Any

from labtrack.entities import MetricSeries


def encode_series(
    series: Sequence[MetricSeries], label: Callable[[MetricSeries], str] | None = None
) -> tuple[list[dict[str, Any]], bytes]:
    """``(index, buffer)``: for each series its x values then its y values, back to back;
    the index gives each series' offset and length in float64 elements."""
    buffer = array("d")
    index = []
    for s in series:
        offset = len(buffer)
        buffer.extend(map(float, s.x))
        buffer.extend(s.values)
        index.append({
            "run_id": s.run_id,
            "key": s.key,
            "label": label(s) if label else s.key,
            "offset": offset,
            "length": len(s.values),
            "total_points": s.total_points,
            "resolution": s.resolution,
        })
    return index, buffer.tobytes()


def decode_series(index: Sequence[dict[str, Any]], data: bytes) -> list[tuple[list, list]]:
    """The inverse of ``encode_series`` (for tests and fallbacks)."""
    values = array("d")
    values.frombytes(data)
    return [(list(values[e["offset"]:e["offset"] + e["length"]]),
             list(values[e["offset"] + e["length"]:e["offset"] + 2 * e["length"]]))
            for e in index]


def json_number(value: float) -> float | None:
    """A float JSON can carry: NaN and infinities become None."""
    return value if value is not None and math.isfinite(value) else None
