"""The parsed form of a search, as the store contract takes it.

Services parse MLflow's filter and order-by grammar into these values (and own every rule
about which comparisons are allowed); a store only translates them into its query language.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Entity(StrEnum):
    METRIC = "metric"
    PARAM = "param"
    TAG = "tag"
    ATTRIBUTE = "attribute"


# Comparison operators a parsed filter may carry.
NUMERIC_OPERATORS = frozenset({"=", "!=", "<", "<=", ">", ">="})
STRING_OPERATORS = frozenset({"=", "!=", "LIKE", "ILIKE"})
LIST_OPERATORS = frozenset({"IN", "NOT IN"})
NULL_OPERATORS = frozenset({"IS NULL", "IS NOT NULL"})


@dataclass(frozen=True, slots=True)
class Comparison:
    """``<entity>.<key> <operator> <value>``.

    ``value`` is a float for metrics and numeric attributes, a string for LIKE/=/!= on strings,
    a tuple of strings for IN / NOT IN and None for IS [NOT] NULL. Attribute keys are canonical
    (``run_id``, ``run_name``, ``user_id``, ``status``, ``start_time``, ``end_time``,
    ``artifact_uri`` for runs; ``name``, ``experiment_id``, ``creation_time``,
    ``last_update_time`` for experiments).
    """

    entity: Entity
    key: str
    operator: str
    value: float | int | str | tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class OrderTerm:
    entity: Entity
    key: str
    ascending: bool = True
