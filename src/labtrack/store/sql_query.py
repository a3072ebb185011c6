"""Translation of parsed search comparisons into SQL conditions, shared by both SQL stores.

What differs between SQLite and PostgreSQL in these conditions (lists as parameters, a
case-sensitive LIKE) is behind ``Dialect``; each store module provides its own.
"""

from __future__ import annotations

from collections.abc import Iterable

from labtrack.entities import LifecycleStage, ViewType
from labtrack.store.query import Comparison, Entity


class Dialect:
    """The few pieces of SQL the shared store code cannot write the same way for every
    database. Placeholders are ``?`` everywhere; a store's connection adapts them."""

    #: Appended to a SELECT whose rows the transaction is about to change, where other
    #: transactions could change them in between (SQLite writers never run concurrently).
    lock_rows = ""

    def in_list(self, column: str, negate: bool = False) -> str:
        """``column IN`` a list given as one parameter (see ``list_param``)."""
        raise NotImplementedError

    def list_param(self, values: Iterable) -> object:
        raise NotImplementedError

    def like(self, column: str, pattern: str) -> tuple[str, list]:
        """MLflow's LIKE: case-sensitive, ``%`` and ``_`` wildcards, no escape character."""
        raise NotImplementedError

    def ilike(self, column: str, pattern: str) -> tuple[str, list]:
        raise NotImplementedError


def plain_values(values: Iterable) -> list:
    """Enum members as their values, so every driver sends the same text."""
    return [str(v) if isinstance(v, LifecycleStage | ViewType) else v for v in values]


def value_condition(dialect: Dialect, column: str, comparison: Comparison) -> tuple[str, list]:
    op, value = comparison.operator, comparison.value
    if op == "LIKE":
        return dialect.like(column, str(value))
    if op == "ILIKE":
        return dialect.ilike(column, str(value))
    if op in ("IN", "NOT IN"):
        return dialect.in_list(column, negate=op == "NOT IN"), [dialect.list_param(value)]
    return f"{column} {op} ?", [value]


def keyed_condition(dialect: Dialect, table: str, owner_column: str, owner: str,
                    comparison: Comparison) -> tuple[str, list]:
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
    sql, values = value_condition(dialect, "x.value", comparison)
    return f"EXISTS ({exists} AND {sql})", [comparison.key, *values]
