"""Translation of parsed search comparisons into SQLite conditions, shared by the tracking
and registry halves of ``SqliteStore``."""

from __future__ import annotations

import json

from labtrack.entities import LifecycleStage, ViewType
from labtrack.store.query import Comparison, Entity


def like_to_glob(pattern: str) -> str:
    """MLflow's LIKE is case-sensitive; SQLite's is not, but GLOB is."""
    out = []
    for ch in pattern:
        if ch == "%":
            out.append("*")
        elif ch == "_":
            out.append("?")
        elif ch in "*?[":
            out.append(f"[{ch}]")
        else:
            out.append(ch)
    return "".join(out)


def json_list(values) -> str:
    return json.dumps([str(v) if isinstance(v, LifecycleStage | ViewType) else v for v in values])


def value_condition(column: str, comparison: Comparison) -> tuple[str, list]:
    op, value = comparison.operator, comparison.value
    if op == "LIKE":
        return f"{column} GLOB ?", [like_to_glob(str(value))]
    if op == "ILIKE":
        # SQLite's LIKE ignores case (for ASCII), which is exactly ILIKE.
        return f"{column} LIKE ?", [value]
    if op in ("IN", "NOT IN"):
        return f"{column} {op} (SELECT value FROM json_each(?))", [json_list(value)]
    return f"{column} {op} ?", [value]


def keyed_condition(table: str, owner_column: str, owner: str, comparison: Comparison):
    """A condition on a metric/param/tag row of the run (or experiment) ``owner``."""
    exists = f"SELECT 1 FROM {table} x WHERE x.{owner_column} = {owner} AND x.key = ?"
    if comparison.operator == "IS NULL":
        return f"NOT EXISTS ({exists})", [comparison.key]
    if comparison.operator == "IS NOT NULL":
        return f"EXISTS ({exists})", [comparison.key]
    if comparison.entity == Entity.METRIC and comparison.operator == "!=":
        # NaN (NULL here) differs from every number.
        return f"EXISTS ({exists} AND (x.value IS NULL OR x.value != ?))", [
            comparison.key, comparison.value]
    sql, values = value_condition("x.value", comparison)
    return f"EXISTS ({exists} AND {sql})", [comparison.key, *values]
