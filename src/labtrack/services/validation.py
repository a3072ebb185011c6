"""MLflow's validation rules and limits, with labtrack's one deliberate difference:
over-long values are rejected, never truncated.

Every error is an ``InvalidParameterValue`` whose message names the key and the limit.
"""

from __future__ import annotations

import posixpath
import re
from numbers import Number

from labtrack.errors import InvalidParameterValue

MAX_ENTITY_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
MAX_EXPERIMENT_NAME_LENGTH = 500
MAX_EXPERIMENT_TAG_KEY_LENGTH = 250
MAX_EXPERIMENT_TAG_VALUE_LENGTH = 20000
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000
MAX_RESULTS_SEARCH_RUNS = 50000
MAX_RESULTS_SEARCH_EXPERIMENTS = 50000
MAX_DOWNSAMPLED_POINTS = 100_000
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

_KEY_PATTERN = re.compile(r"^[/\w.\- :]*$")
_RUN_ID_PATTERN = re.compile(r"^[a-zA-Z0-9][\w\-]{0,255}$")

# Keys that already passed validation: a training loop logs the same few keys millions of
# times, and re-checking them is the most expensive part of logging a point.
checked_keys: set[str] = set()
_VALID_KEYS_CAP = 100_000


def validate_key(kind: str, key: object) -> str:
    """Check a metric/param/tag key (``kind`` is e.g. "Metric" or "Param") and return it."""
    if key in checked_keys:
        return key  # type: ignore[return-value]
    if key is None or key == "":
        raise InvalidParameterValue(f"Missing value for required parameter 'key' ({kind} key).")
    if not isinstance(key, str):
        raise InvalidParameterValue(
            f"Invalid {kind.lower()} key {key!r}: expected a string, got {type(key).__name__}."
        )
    if len(key) > MAX_ENTITY_KEY_LENGTH:
        raise InvalidParameterValue(
            f"{kind} key '{key[:40]}…' exceeds the maximum length of {MAX_ENTITY_KEY_LENGTH} "
            f"characters (it has {len(key)})."
        )
    if not _KEY_PATTERN.match(key):
        raise InvalidParameterValue(
            f"Invalid value '{key}' for parameter 'key' supplied: {kind} keys may only contain "
            "alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colon(:) and "
            "slashes (/)."
        )
    normalized = posixpath.normpath(key)
    if normalized != key or normalized == "." or normalized.startswith(("..", "/")):
        raise InvalidParameterValue(
            f"Invalid value '{key}' for parameter 'key' supplied: {kind} keys may be treated as "
            "files in certain cases, and must not resolve to other names when treated as such. "
            f"This name would resolve to '{normalized}'."
        )
    if len(checked_keys) >= _VALID_KEYS_CAP:
        checked_keys.clear()
    checked_keys.add(key)
    return key


def _check_length(what: str, key: str, value: str, limit: int) -> str:
    if len(value) > limit:
        raise InvalidParameterValue(
            f"{what} '{key}' exceeds the maximum length of {limit} characters (it has "
            f"{len(value)}). labtrack does not truncate values; store long text as an artifact."
        )
    return value


def validate_string_value(what: str, key: str, value: object) -> str:
    if value is None:
        raise InvalidParameterValue(f"Missing value for required parameter 'value' of '{key}'.")
    if not isinstance(value, str):
        raise InvalidParameterValue(
            f"Invalid {what.lower()} of '{key}': expected a string, got {type(value).__name__}."
        )
    return value


def validate_param(key: object, value: object) -> tuple[str, str]:
    key = validate_key("Param", key)
    value = validate_string_value("Value", key, value)
    return key, _check_length("Value of param", key, value, MAX_PARAM_VALUE_LENGTH)


def validate_tag(key: object, value: object) -> tuple[str, str]:
    key = validate_key("Tag", key)
    value = validate_string_value("Value", key, value)
    return key, _check_length("Value of tag", key, value, MAX_TAG_VALUE_LENGTH)


def validate_experiment_tag(key: object, value: object) -> tuple[str, str]:
    key = validate_key("Experiment tag", key)
    value = validate_string_value("Value", key, value)
    return key, _check_length(
        "Value of experiment tag", key, value, MAX_EXPERIMENT_TAG_VALUE_LENGTH
    )


def metric_value(key: str, value: object, timestamp: object = None) -> float:
    """A metric value as a float. Numbers and number-like scalars (NumPy scalars, 0-d arrays
    and tensors) are accepted; bools, strings and None are refused as MLflow refuses them."""
    if type(value) is float:
        return value
    if value is None:
        raise InvalidParameterValue(f"Missing value for required parameter 'value' of '{key}'.")
    if isinstance(value, bool | str | bytes) or not (
        isinstance(value, Number) or hasattr(value, "__float__")
    ):
        raise InvalidParameterValue(
            f"Got invalid value {value!r} for metric '{key}' (timestamp={timestamp}). Please "
            "specify value as a valid double (64-bit floating point)."
        )
    try:
        return float(value)  # type: ignore[arg-type]
    except (OverflowError, TypeError, ValueError):
        raise InvalidParameterValue(
            f"Got invalid value {value!r} for metric '{key}': it is not a single number that "
            "fits a 64-bit float."
        ) from None


def int64(name: str, value: object, owner: str, minimum: int = INT64_MIN) -> int:
    """An integer field (``timestamp``, ``step``, ``start_time`` …) of ``owner`` (how the
    message names what the field belongs to, e.g. "metric 'loss'")."""
    if type(value) is int and minimum <= value <= INT64_MAX:
        return value
    if isinstance(value, bool) or not isinstance(value, Number):
        raise InvalidParameterValue(
            f"Invalid {name} {value!r} for {owner}: {name} must be a 64-bit integer."
        )
    as_int = int(value)  # type: ignore[call-overload]
    if as_int != value:
        raise InvalidParameterValue(
            f"Invalid {name} {value!r} for {owner}: {name} must be a whole number."
        )
    if not minimum <= as_int <= INT64_MAX:
        raise InvalidParameterValue(
            f"Invalid {name} {value!r} for {owner}: {name} must lie in "
            f"[{minimum}, {INT64_MAX}]."
        )
    return as_int


def validate_experiment_id(experiment_id: object) -> str:
    """Experiment ids are integers (as MLflow's SQL store numbers them), written as text."""
    text = str(experiment_id) if isinstance(experiment_id, int) and not isinstance(
        experiment_id, bool) else experiment_id
    if not isinstance(text, str) or not text.isdigit() or int(text) > INT64_MAX:
        raise InvalidParameterValue(
            f"Invalid experiment ID '{experiment_id}'. Experiment ID must be a valid integer."
        )
    return str(int(text))


def validate_metric(key: object, value: object, timestamp: object, step: object):
    """Returns the checked ``(key, value, timestamp, step)``."""
    key = validate_key("Metric", key)
    return (
        key,
        metric_value(key, value, timestamp),
        int64("timestamp", timestamp, f"metric '{key}'", minimum=0),
        int64("step", step, f"metric '{key}'"),
    )


def validate_batch_limits(n_metrics: int, n_params: int, n_tags: int) -> None:
    for what, count, limit in (
        ("metrics", n_metrics, MAX_METRICS_PER_BATCH),
        ("params", n_params, MAX_PARAMS_TAGS_PER_BATCH),
        ("tags", n_tags, MAX_PARAMS_TAGS_PER_BATCH),
        ("metrics, params, and tags", n_metrics + n_params + n_tags, MAX_ENTITIES_PER_BATCH),
    ):
        if count > limit:
            raise InvalidParameterValue(
                f"A batch logging request can contain at most {limit} {what}. Got {count} "
                f"{what}. Please split up {what} across multiple requests and try again."
            )


def validate_experiment_name(name: object) -> str:
    if name is None or name == "":
        raise InvalidParameterValue("Invalid experiment name: ''. An experiment name is required.")
    if not isinstance(name, str):
        raise InvalidParameterValue(
            f"Invalid experiment name: {name!r}. Expected a string, got {type(name).__name__}."
        )
    if len(name) > MAX_EXPERIMENT_NAME_LENGTH:
        raise InvalidParameterValue(
            f"Experiment name '{name[:40]}…' exceeds the maximum length of "
            f"{MAX_EXPERIMENT_NAME_LENGTH} characters (it has {len(name)})."
        )
    return name


def validate_run_id(run_id: object) -> str:
    if not isinstance(run_id, str) or not _RUN_ID_PATTERN.match(run_id):
        raise InvalidParameterValue(f"Invalid value {run_id!r} for parameter 'run_id' supplied.")
    return run_id


def validate_max_results(value: object, limit: int, what: str = "max_results") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidParameterValue(
            f"Invalid value {value!r} for parameter '{what}' supplied. It must be a positive "
            "integer."
        )
    if value > limit:
        raise InvalidParameterValue(
            f"Invalid value {value} for parameter '{what}' supplied. It must be at most {limit}."
        )
    return value
