"""Run ids: UUIDs of version 7 (RFC 9562), written as 32 hex digits like MLflow's.

MLflow names runs with random (version 4) UUIDs. A version 7 UUID starts with the creation
time in milliseconds, so runs created one after another get ids in increasing order: every
table keyed by run id (runs, params, tags, latest metrics) then grows at its right edge
instead of splitting pages all over its B-tree, and creating runs stays as fast in a store of
100,000 runs as in a new one. The remaining 74 bits are random, so ids stay unguessable and
unique across processes and machines.
"""

from __future__ import annotations

import os
import time

_VERSION = 7 << 76
_VARIANT = 0b10 << 62
_RANDOM_HIGH = ((1 << 12) - 1) << 64  # 12 random bits after the version
_RANDOM_LOW = (1 << 62) - 1  # 62 random bits after the variant


def new_run_id() -> str:
    """A fresh, time-ordered run id: ``uuid.UUID(new_run_id()).version == 7``."""
    random_bits = int.from_bytes(os.urandom(10), "big")
    value = ((time.time_ns() // 1_000_000) << 80 | _VERSION | _VARIANT
             | random_bits & _RANDOM_HIGH | random_bits & _RANDOM_LOW)
    return f"{value:032x}"

