"""``ApiRequest``: the arguments of one REST call, read the way MLflow's server reads them.

GET arguments come from the query string (a repeated key is a list); other methods send a JSON
object. Typed getters reject missing or ill-typed fields with MLflow's messages
("Missing value for required parameter 'name'.").
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from labtrack.errors import InvalidParameterValue, LabtrackError

_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")
_DICT = {dict}  # what JSON objects parse to: checked at C speed, before isinstance


class PayloadTooLarge(LabtrackError):
    error_code = "REQUEST_LIMIT_EXCEEDED"
    http_status = 413


def _invalid(name: str, value: Any, expected: str) -> InvalidParameterValue:
    return InvalidParameterValue(
        f"Invalid value {json.dumps(value)[:200]} for parameter '{name}' supplied: expected "
        f"{expected}."
    )


def _missing(name: str) -> InvalidParameterValue:
    return InvalidParameterValue(f"Missing value for required parameter '{name}'.")


def parse_json_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        text = body.decode("utf-8-sig")  # RFC 8259: JSON between systems is UTF-8
        data = json.loads(text)
        if isinstance(data, str):  # legacy clients double-encode the body
            data = json.loads(data)
        if _ESCAPED_SURROGATE.search(text):
            # "\ud800" parses, but a lone surrogate is not text and would fail in the store.
            json.dumps(data, ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError) as error:  # RecursionError: nesting too deep
        raise InvalidParameterValue(f"Malformed JSON in request body: {error}.") from None
    if not isinstance(data, dict):
        raise InvalidParameterValue(
            "Malformed request body: expected a JSON object, got "
            f"{type(data).__name__}."
        )
    return data


class ApiRequest:
    """Arguments of one call plus who made it."""

    def __init__(self, args: Mapping[str, Any], user: str, from_query: bool = False):
        self.args = dict(args)
        self.user = user
        self.from_query = from_query

    def _value(self, name: str, required: bool) -> Any:
        value = self.args.get(name)
        if self.from_query and isinstance(value, list):
            value = value[-1] if value else None
        if value is None or (required and value == ""):
            if required:
                raise _missing(name)
            return None
        return value

    def string(self, name: str, required: bool = False, default: str | None = None):
        value = self._value(name, required)
        if value is None:
            return default
        if not isinstance(value, str):
            raise _invalid(name, value, "a string")
        return value

    def integer(self, name: str, required: bool = False, default: int | None = None):
        """int64 fields arrive as JSON numbers or, in proto3 JSON, as decimal strings."""
        value = self._value(name, required)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            raise _invalid(name, value, "an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise _invalid(name, value, "an integer")

    def number(self, name: str, required: bool = False):
        """A double: a JSON number, or "NaN" / "Infinity" / "-Infinity" as proto3 JSON
        writes them."""
        value = self._value(name, required)
        if value is None:
            return None
        return self.as_number(name, value)

    @staticmethod
    def as_number(name: str, value: Any) -> float:
        if isinstance(value, bool):
            raise _invalid(name, value, "a number")
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            if value in _NON_FINITE:
                return _NON_FINITE[value]
            try:
                return float(value)
            except ValueError:
                pass
        raise _invalid(name, value, "a number")

    def boolean(self, name: str, default: bool = False) -> bool:
        value = self._value(name, False)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise InvalidParameterValue(
            f"Invalid boolean value: {value}, must be 'true' or 'false'."
        )

    def strings(self, name: str, required: bool = False) -> list[str]:
        value = self.args.get(name)
        if value is None or value == []:
            if required:
                raise _missing(name)
            return []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _invalid(name, value, "a list of strings")
        return value

    def objects(self, name: str) -> list[dict[str, Any]]:
        value = self.args.get(name)
        if value is None:
            return []
        if not isinstance(value, list) or not (
            set(map(type, value)) <= _DICT or all(isinstance(v, dict) for v in value)
        ):
            raise _invalid(name, value, "a list of objects")
        return value

    def key_values(self, name: str) -> dict[str, str]:
        """``[{"key": k, "value": v}, …]`` (the last of duplicate keys wins)."""
        out: dict[str, str] = {}
        for index, item in enumerate(self.objects(name)):
            key, value = item.get("key"), item.get("value")
            if not isinstance(key, str) or not key:
                raise _missing(f"{name}[{index}].key")
            if value is None:
                value = ""  # proto3: an absent string is the empty string
            if not isinstance(value, str):
                raise _invalid(f"{name}[{index}].value", value, "a string")
            out[key] = value
        return out
