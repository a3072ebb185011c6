"""MLflow's search grammar: filter strings, ``order_by`` clauses and page tokens.

Filters are conjunctions of comparisons::

    metrics.acc > 0.9 AND params.model = 'resnet' AND tags.`mlflow.source.type` != 'NOTEBOOK'
    attributes.status IN ('FINISHED', 'FAILED')  -- IN only on run_id, as in MLflow
    params.optimizer LIKE 'ad%' AND tags.team IS NOT NULL

Keys with spaces or dots can be written in backticks or double quotes. ``OR`` and parentheses
are not part of the grammar (as in MLflow), and the error says so.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass

from labtrack.errors import InvalidParameterValue
from labtrack.services.validation import INT64_MAX, INT64_MIN
from labtrack.store.query import (
    NULL_OPERATORS,
    NUMERIC_OPERATORS,
    Comparison,
    Entity,
    OrderTerm,
)

_ENTITY_PREFIXES = {
    "metric": Entity.METRIC,
    "metrics": Entity.METRIC,
    "param": Entity.PARAM,
    "params": Entity.PARAM,
    "parameter": Entity.PARAM,
    "parameters": Entity.PARAM,
    "tag": Entity.TAG,
    "tags": Entity.TAG,
    "attribute": Entity.ATTRIBUTE,
    "attributes": Entity.ATTRIBUTE,
    "attr": Entity.ATTRIBUTE,
    "run": Entity.ATTRIBUTE,
}


@dataclass(frozen=True)
class AttributeRules:
    """Which attributes a kind of entity has, and what may be done with them."""

    numeric: frozenset[str]
    strings: frozenset[str]
    listable: frozenset[str]  # string attributes that accept IN / NOT IN
    aliases: dict[str, str]
    keyed: frozenset[Entity]  # which of metrics/params/tags the searched objects have

    def canonical(self, key: str) -> str | None:
        key = self.aliases.get(key, key)
        return key if key in self.numeric or key in self.strings else None

    @property
    def names(self) -> str:
        return ", ".join(sorted(self.numeric | self.strings))


RUN_ATTRIBUTES = AttributeRules(
    numeric=frozenset({"start_time", "end_time"}),
    strings=frozenset({"run_id", "run_name", "user_id", "status", "artifact_uri"}),
    listable=frozenset({"run_id"}),
    aliases={"created": "start_time", "Created": "start_time", "run name": "run_name",
             "Run name": "run_name", "Run Name": "run_name", "run_uuid": "run_id"},
    keyed=frozenset({Entity.METRIC, Entity.PARAM, Entity.TAG}),
)
EXPERIMENT_ATTRIBUTES = AttributeRules(
    numeric=frozenset({"creation_time", "last_update_time"}),
    strings=frozenset({"name", "experiment_id"}),
    listable=frozenset({"experiment_id"}),
    aliases={},
    keyed=frozenset({Entity.TAG}),
)
REGISTERED_MODEL_ATTRIBUTES = AttributeRules(
    numeric=frozenset({"creation_timestamp", "last_updated_timestamp"}),
    strings=frozenset({"name"}),
    listable=frozenset({"name"}),
    aliases={"timestamp": "last_updated_timestamp"},
    keyed=frozenset({Entity.TAG}),
)
MODEL_VERSION_ATTRIBUTES = AttributeRules(
    numeric=frozenset({"version_number", "creation_timestamp", "last_updated_timestamp"}),
    strings=frozenset({"name", "run_id", "source_path", "current_stage", "user_id"}),
    listable=frozenset({"name", "run_id"}),
    aliases={"timestamp": "last_updated_timestamp", "version": "version_number",
             "source": "source_path"},
    keyed=frozenset({Entity.TAG}),
)
LOGGED_MODEL_ATTRIBUTES = AttributeRules(
    numeric=frozenset({"creation_timestamp", "last_updated_timestamp"}),
    strings=frozenset({"model_id", "name", "model_type", "status", "source_run_id"}),
    listable=frozenset({"model_id", "name", "source_run_id"}),
    aliases={"creation_time": "creation_timestamp", "last_update_time": "last_updated_timestamp",
             "creation_timestamp_ms": "creation_timestamp",
             "last_updated_timestamp_ms": "last_updated_timestamp"},
    keyed=frozenset({Entity.PARAM, Entity.TAG}),
)

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^']|'')*'|"(?:[^"]|"")*")
  | (?P<backtick>`[^`]*`)
  | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w.]))
  | (?P<op><=|>=|!=|<>|==|=|<|>)
  | (?P<punct>[(),])
  | (?P<word>[A-Za-z_][\w.\-/:]*)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    position: int


def _tokenize(text: str) -> list[_Token]:
    tokens = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise InvalidParameterValue(
                f"Invalid filter string '{text}': unexpected character {text[position]!r} at "
                f"position {position}."
            )
        kind = match.lastgroup
        if kind != "ws":
            tokens.append(_Token(kind, match.group(), position))
        position = match.end()
    return tokens


def _unquote(token: _Token) -> str:
    quote = token.text[0]
    body = token.text[1:-1]
    return body.replace(quote * 2, quote) if quote in "'\"" else body


class _Parser:
    def __init__(self, text: str, rules: AttributeRules):
        self.text = text
        self.rules = rules
        self.tokens = _tokenize(text)
        self.index = 0

    def error(self, detail: str) -> InvalidParameterValue:
        return InvalidParameterValue(f"Invalid filter string '{self.text}': {detail}")

    def peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            raise self.error("it ends too early.")
        self.index += 1
        return token

    def keyword(self, *words: str) -> bool:
        token = self.peek()
        if token is not None and token.kind == "word" and token.text.upper() in words:
            self.index += 1
            return True
        return False

    def parse(self) -> list[Comparison]:
        comparisons = [self.comparison()]
        while self.peek() is not None:
            token = self.peek()
            if token.kind == "word" and token.text.upper() == "OR":
                raise InvalidParameterValue(
                    f"Invalid clause(s) in filter string: 'OR'. Filters are conjunctions: "
                    f"combine comparisons with AND (in '{self.text}')."
                )
            if not self.keyword("AND"):
                raise self.error(f"expected AND before '{token.text}'.")
            comparisons.append(self.comparison())
        return comparisons

    def identifier(self) -> tuple[Entity, str]:
        token = self.take()
        if token.kind == "punct" and token.text == "(":
            raise self.error("parentheses are not supported; write comparisons joined by AND.")
        if token.kind == "backtick" or (token.kind == "string" and token.text[0] == '"'):
            return self.entity_key(Entity.ATTRIBUTE, _unquote(token), token)
        if token.kind != "word":
            raise self.error(f"expected an identifier such as metrics.acc, got '{token.text}'.")
        prefix, dot, rest = token.text.partition(".")
        if not dot:
            return self.entity_key(Entity.ATTRIBUTE, token.text, token)
        entity = _ENTITY_PREFIXES.get(prefix)
        if entity is None:
            if prefix in ("dataset", "datasets"):
                raise self.error("filtering by datasets is not supported yet.")
            raise self.error(
                f"invalid entity type '{prefix}'. Use metrics., params., tags. or attributes."
            )
        if rest == "":
            quoted = self.take()
            if quoted.kind not in ("backtick", "string"):
                raise self.error(f"expected a key after '{token.text}'.")
            return self.entity_key(entity, _unquote(quoted), token)
        return self.entity_key(entity, rest, token)

    def entity_key(self, entity: Entity, key: str, token: _Token) -> tuple[Entity, str]:
        if entity == Entity.ATTRIBUTE:
            canonical = self.rules.canonical(key)
            if canonical is None:
                raise self.error(
                    f"invalid attribute key '{key}'. Valid keys are: {self.rules.names}."
                )
            return entity, canonical
        if entity not in self.rules.keyed:
            searchable = ", ".join(["attributes", *sorted(f"{e}s" for e in self.rules.keyed)])
            raise self.error(f"'{token.text}': only {searchable} can be searched here.")
        if not key:
            raise self.error(f"missing key after '{token.text}'.")
        return entity, key

    def operator(self) -> str:
        token = self.take()
        if token.kind == "op":
            return {"==": "=", "<>": "!="}.get(token.text, token.text)
        if token.kind == "word":
            word = token.text.upper()
            if word in ("LIKE", "ILIKE", "IN"):
                return word
            if word == "NOT":
                if self.keyword("IN"):
                    return "NOT IN"
                raise self.error("expected IN after NOT.")
            if word == "IS":
                if self.keyword("NULL"):
                    return "IS NULL"
                if self.keyword("NOT") and self.keyword("NULL"):
                    return "IS NOT NULL"
                raise self.error("expected NULL or NOT NULL after IS.")
        raise self.error(f"expected a comparison operator, got '{token.text}'.")

    def comparison(self) -> Comparison:
        entity, key = self.identifier()
        operator = self.operator()
        allowed = self.allowed_operators(entity, key)
        if operator not in allowed:
            raise self.error(
                f"invalid comparator '{operator}' for {entity} '{key}'; use one of "
                f"{', '.join(sorted(allowed))}."
            )
        if operator in NULL_OPERATORS:
            return Comparison(entity, key, operator, None)
        if operator in ("IN", "NOT IN"):
            return Comparison(entity, key, operator, self.string_list(entity, key))
        token = self.take()
        if entity == Entity.METRIC or (
            entity == Entity.ATTRIBUTE and key in self.rules.numeric
        ):
            if token.kind != "number":
                raise self.error(
                    f"expected a number for {entity} '{key}', got {token.text}."
                )
            number = float(token.text)
            if entity == Entity.ATTRIBUTE:
                if not number.is_integer() or not INT64_MIN <= number <= INT64_MAX:
                    raise self.error(
                        f"{key} is compared with a 64-bit integer; got {token.text}.")
                return Comparison(entity, key, operator, int(number))
            return Comparison(entity, key, operator, number)
        if token.kind != "string":
            raise self.error(
                f"expected a quoted string value for {entity} '{key}' (e.g. 'my-value'), got "
                f"{token.text}."
            )
        return Comparison(entity, key, operator, _unquote(token))

    def allowed_operators(self, entity: Entity, key: str) -> frozenset[str]:
        if entity == Entity.METRIC:
            return NUMERIC_OPERATORS
        if entity in (Entity.PARAM, Entity.TAG):
            return frozenset({"=", "!=", "LIKE", "ILIKE"}) | NULL_OPERATORS
        if key in self.rules.numeric:
            return NUMERIC_OPERATORS
        base = frozenset({"=", "!=", "LIKE", "ILIKE"})
        return base | {"IN", "NOT IN"} if key in self.rules.listable else base

    def string_list(self, entity: Entity, key: str) -> tuple[str, ...]:
        if self.take().text != "(":
            raise self.error(f"expected a parenthesised list of strings after IN for '{key}'.")
        values = []
        while True:
            token = self.take()
            if token.kind != "string":
                raise self.error(f"expected a quoted string in the list for '{key}'.")
            values.append(_unquote(token))
            separator = self.take()
            if separator.text == ")":
                return tuple(values)
            if separator.text != ",":
                raise self.error(f"expected ',' or ')' in the list for '{key}'.")


def parse_filter(text: str | None, rules: AttributeRules = RUN_ATTRIBUTES) -> list[Comparison]:
    """Parse a filter string; an empty or missing filter matches everything."""
    if text is None or not text.strip():
        return []
    if not isinstance(text, str):
        raise InvalidParameterValue(f"Invalid filter {text!r}: expected a string.")
    return _Parser(text, rules).parse()


def parse_order_by(
    clauses: list[str] | tuple[str, ...] | None, rules: AttributeRules = RUN_ATTRIBUTES
) -> list[OrderTerm]:
    """Parse ``["metrics.acc DESC", "start_time"]``; duplicates are an error."""
    terms: list[OrderTerm] = []
    seen: set[tuple[Entity, str]] = set()
    for clause in clauses or ():
        if not isinstance(clause, str) or not clause.strip():
            raise InvalidParameterValue(f"Invalid order_by clause {clause!r}.")
        parser = _Parser(clause, rules)
        parser.error = lambda detail, c=clause: InvalidParameterValue(  # type: ignore[method-assign]
            f"Invalid order_by clause '{c}': {detail}"
        )
        entity, key = parser.identifier()
        ascending = True
        if parser.keyword("DESC"):
            ascending = False
        else:
            parser.keyword("ASC")
        if parser.peek() is not None:
            raise parser.error(
                f"unexpected '{parser.peek().text}'; expected '<identifier> [ASC|DESC]'."
            )
        if (entity, key) in seen:
            raise InvalidParameterValue(f"`order_by` contains duplicate fields: '{clause}'.")
        seen.add((entity, key))
        terms.append(OrderTerm(entity, key, ascending))
    return terms


def make_page_token(offset: int) -> str:
    return base64.b64encode(json.dumps({"offset": offset}).encode()).decode()


def parse_page_token(token: str | None) -> int:
    """The offset a page token stands for (0 without a token)."""
    if not token:
        return 0
    try:
        payload = json.loads(base64.b64decode(token, validate=True))
        offset = payload["offset"]
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError):
        raise InvalidParameterValue(
            f"Invalid page token '{token}': it could not be decoded; pass back the "
            "next_page_token of a previous response unchanged."
        ) from None
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= INT64_MAX:
        raise InvalidParameterValue(f"Invalid page token '{token}': bad offset {offset!r}.")
    return offset
