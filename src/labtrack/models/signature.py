"""Model signatures in MLflow's format: what a model takes, returns and accepts as params.

A signature has up to three schemas, each stored in the ``MLmodel`` file as a JSON string:

* column-based inputs/outputs — ``[{"type": "double", "name": "x", "required": true}]`` — for
  DataFrames, dicts and lists of records; types ``boolean integer long float double string
  binary datetime`` plus ``array``/``object``/``map``/``any`` for nested values;
* tensor-based ones — ``[{"type": "tensor", "tensor-spec": {"dtype": "float64",
  "shape": [-1, 3]}}]`` — for numpy arrays (``-1`` is a variable dimension);
* params — ``[{"name": "k", "default": 5, "shape": null, "type": "long"}]`` — the inference
  parameters ``predict(..., params=)`` accepts, with their defaults.

``infer_signature`` derives one from example data; ``enforce_schema`` and ``enforce_params``
check (and safely convert) what a model is given at predict time, raising ``SchemaError`` with
a message that says what was expected and what came.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

try:
    import numpy as np
    import pandas as pd
except ImportError as _error:  # pragma: no cover - the test environment has both
    raise ImportError(
        "labtrack's model packaging needs numpy and pandas: pip install pandas"
    ) from _error

from labtrack.errors import InvalidParameterValue

log = logging.getLogger("labtrack.models")

COMPLEX_TYPES = ("array", "object", "map", "any", "sparkml_vector")


class SchemaError(InvalidParameterValue):
    """Model input or params that do not match the model's signature."""


class DataType(Enum):
    """MLflow's column types, with the numpy dtype each maps to."""

    boolean = "boolean"
    integer = "integer"
    long = "long"
    float = "float"
    double = "double"
    string = "string"
    binary = "binary"
    datetime = "datetime"

    def to_numpy(self) -> np.dtype:
        """The numpy dtype of a column of this type."""
        return _NUMPY_TYPES[self]

    def to_python(self) -> type:
        """The Python type of one value of this type."""
        return _PYTHON_TYPES[self]

    def __repr__(self) -> str:
        return self.name


_NUMPY_TYPES = {
    DataType.boolean: np.dtype("bool"),
    DataType.integer: np.dtype("int32"),
    DataType.long: np.dtype("int64"),
    DataType.float: np.dtype("float32"),
    DataType.double: np.dtype("float64"),
    DataType.string: np.dtype("object"),
    DataType.binary: np.dtype("object"),
    DataType.datetime: np.dtype("datetime64[ns]"),
}
_PYTHON_TYPES = {
    DataType.boolean: bool,
    DataType.integer: int,
    DataType.long: int,
    DataType.float: float,
    DataType.double: float,
    DataType.string: str,
    DataType.binary: bytes,
    DataType.datetime: dt.datetime,
}


def _data_type(name: Any) -> DataType:
    if isinstance(name, DataType):
        return name
    try:
        return DataType[name]
    except KeyError:
        raise InvalidParameterValue(
            f"Unsupported type '{name}': expected one of {[t.name for t in DataType]} or "
            f"{list(COMPLEX_TYPES)}."
        ) from None


# -- specs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ColSpec:
    """One column: a ``DataType`` or a nested type (kept as its JSON dict, e.g.
    ``{"type": "array", "items": {"type": "string"}}``), an optional name, requiredness."""

    type: DataType | dict
    name: str | None = None
    required: bool = True

    def to_dict(self) -> dict[str, Any]:
        """MLflow's JSON form of the column."""
        out = {"type": self.type.name} if isinstance(self.type, DataType) else dict(self.type)
        if self.name is not None:
            out["name"] = self.name
        out["required"] = self.required
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColSpec:
        """A column from MLflow's JSON form."""
        data = dict(data)
        name = data.pop("name", None)
        required = data.pop("required", True)
        kind = data.get("type")
        if kind in COMPLEX_TYPES:
            return cls(data, name, True if required is None else bool(required))
        return cls(_data_type(kind), name, True if required is None else bool(required))

    def type_name(self) -> str:
        """The type's name (``double``, ``array``, …)."""
        return self.type.name if isinstance(self.type, DataType) else str(self.type["type"])


@dataclass(frozen=True)
class TensorSpec:
    """One tensor: numpy dtype, shape (``-1`` for a variable dimension), optional name."""

    dtype: np.dtype
    shape: tuple[int, ...]
    name: str | None = None

    required = True

    def to_dict(self) -> dict[str, Any]:
        """MLflow's JSON form of the tensor."""
        out: dict[str, Any] = {"name": self.name} if self.name is not None else {}
        out["type"] = "tensor"
        out["tensor-spec"] = {"dtype": self.dtype.name, "shape": list(self.shape)}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TensorSpec:
        """A tensor from MLflow's JSON form."""
        spec = data.get("tensor-spec")
        if not isinstance(spec, Mapping) or "dtype" not in spec or "shape" not in spec:
            raise InvalidParameterValue(
                "Invalid tensor spec: expected 'tensor-spec' with 'dtype' and 'shape'.")
        return cls(np.dtype(spec["dtype"]), tuple(int(d) for d in spec["shape"]),
                   data.get("name"))


class Schema:
    """An ordered list of ``ColSpec`` or of ``TensorSpec`` (never both)."""

    def __init__(self, inputs: list[ColSpec | TensorSpec]):
        inputs = list(inputs)
        if not inputs:
            raise InvalidParameterValue("A schema needs at least one column or tensor.")
        kinds = {isinstance(spec, TensorSpec) for spec in inputs}
        if len(kinds) > 1:
            raise InvalidParameterValue("A schema cannot mix columns and tensors.")
        names = [spec.name for spec in inputs]
        if any(n is None for n in names) and any(n is not None for n in names):
            raise InvalidParameterValue(
                "Either every column or tensor of a schema has a name, or none has.")
        if len(set(names)) != len(names) and names[0] is not None:
            raise InvalidParameterValue(f"Duplicate names in schema: {names}.")
        self.inputs = inputs

    def __iter__(self):
        return iter(self.inputs)

    def __len__(self) -> int:
        return len(self.inputs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Schema) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"Schema({self.to_dict()!r})"

    def is_tensor_spec(self) -> bool:
        """True for a schema of tensors (numpy input)."""
        return isinstance(self.inputs[0], TensorSpec)

    def has_input_names(self) -> bool:
        """True when the columns or tensors are named."""
        return self.inputs[0].name is not None

    def input_names(self) -> list[str]:
        """The names, in order."""
        return [spec.name for spec in self.inputs]

    def required_input_names(self) -> list[str]:
        """The names of the required inputs."""
        return [spec.name for spec in self.inputs if spec.required]

    def to_dict(self) -> list[dict[str, Any]]:
        """MLflow's JSON form (a list of specs)."""
        return [spec.to_dict() for spec in self.inputs]

    def to_json(self) -> str:
        """The JSON string stored in the MLmodel file."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str | list) -> Schema:
        """A schema from its JSON string (or parsed list)."""
        items = json.loads(text) if isinstance(text, str) else text
        if not isinstance(items, list):
            raise InvalidParameterValue("A schema is a JSON list of column or tensor specs.")
        return cls([TensorSpec.from_dict(item) if item.get("type") == "tensor"
                    else ColSpec.from_dict(item) for item in items])


@dataclass(frozen=True)
class ParamSpec:
    """One inference parameter: name, type, default, and shape ``None`` (a scalar) or
    ``(-1,)`` (a list)."""

    name: str
    type: DataType | dict
    default: Any
    shape: tuple[int, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        """MLflow's JSON form of the param."""
        default = self.default
        if self.type == DataType.datetime and default is not None:
            default = ([v.isoformat() for v in default] if self.shape
                       else default.isoformat())
        out = {"name": self.name, "default": default,
               "shape": list(self.shape) if self.shape else None}
        out.update({"type": self.type.name} if isinstance(self.type, DataType)
                   else dict(self.type))
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ParamSpec:
        """A param from MLflow's JSON form (its default checked against its type)."""
        if "name" not in data or "default" not in data or not (
                "type" in data or "dtype" in data):
            raise InvalidParameterValue(
                f"Invalid param spec {dict(data)}: expected 'name', 'type' and 'default'.")
        kind = data.get("type") or data.get("dtype")
        shape = tuple(data["shape"]) if data.get("shape") else None
        if kind == "object":
            return cls(str(data["name"]), {k: v for k, v in data.items()
                                           if k in ("type", "properties")},
                       data["default"], shape)
        spec = cls(str(data["name"]), _data_type(kind), data["default"], shape)
        return cls(spec.name, spec.type, _param_value(spec, spec.default), shape)


class ParamSchema:
    """The params a model accepts at inference time."""

    def __init__(self, params: list[ParamSpec]):
        names = [p.name for p in params]
        if len(set(names)) != len(names):
            raise InvalidParameterValue(f"Duplicate params in schema: {names}.")
        self.params = list(params)

    def __iter__(self):
        return iter(self.params)

    def __len__(self) -> int:
        return len(self.params)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ParamSchema) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"ParamSchema({self.to_dict()!r})"

    def to_dict(self) -> list[dict[str, Any]]:
        """MLflow's JSON form (a list of params)."""
        return [p.to_dict() for p in self.params]

    def to_json(self) -> str:
        """The JSON string stored in the MLmodel file."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str | list) -> ParamSchema:
        """A params schema from its JSON string (or parsed list)."""
        items = json.loads(text) if isinstance(text, str) else text
        return cls([ParamSpec.from_dict(item) for item in items])


class ModelSignature:
    """Inputs, outputs and params of a model; ``to_dict`` is the MLmodel ``signature`` key."""

    def __init__(self, inputs: Schema | None = None, outputs: Schema | None = None,
                 params: ParamSchema | None = None):
        self.inputs = inputs
        self.outputs = outputs
        self.params = params

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ModelSignature) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return (f"ModelSignature(inputs={self.inputs!r}, outputs={self.outputs!r}, "
                f"params={self.params!r})")

    def to_dict(self) -> dict[str, str | None]:
        """The MLmodel ``signature`` mapping: each part a JSON string or None."""
        return {
            "inputs": self.inputs.to_json() if self.inputs else None,
            "outputs": self.outputs.to_json() if self.outputs else None,
            "params": self.params.to_json() if self.params else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSignature:
        """A signature from the MLmodel ``signature`` mapping."""
        def read(key, kind):
            value = data.get(key)
            return kind.from_json(value) if value else None

        return cls(read("inputs", Schema), read("outputs", Schema), read("params", ParamSchema))


# -- inference -------------------------------------------------------------------------------


def infer_signature(model_input: Any = None, model_output: Any = None,
                    params: Mapping[str, Any] | None = None) -> ModelSignature:
    """The signature of a model that takes ``model_input``, returns ``model_output`` and
    accepts ``params`` (their values become the defaults); each part is optional."""
    return ModelSignature(
        infer_schema(model_input) if model_input is not None else None,
        infer_schema(model_output) if model_output is not None else None,
        infer_param_schema(params) if params else None,
    )


def clean_tensor_type(dtype: np.dtype) -> np.dtype:
    """numpy dtype without the length of fixed-size strings (``<U5`` → ``str``)."""
    if dtype.char == "U":
        return np.dtype("str")
    if dtype.char == "S":
        return np.dtype("bytes")
    return dtype


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and value != value


def _value_type(value: Any) -> DataType | dict:
    """The MLflow type of one Python value."""
    if isinstance(value, (bool, np.bool_)):
        return DataType.boolean
    if isinstance(value, (int, np.integer)):
        return DataType.long
    if isinstance(value, (float, np.floating)):
        return DataType.double
    if isinstance(value, str):
        return DataType.string
    if isinstance(value, (bytes, bytearray)):
        return DataType.binary
    if isinstance(value, (dt.date, np.datetime64, pd.Timestamp)):
        return DataType.datetime
    if isinstance(value, (list, tuple, np.ndarray)):
        items = [v for v in value if not _is_missing(v)]
        if not items:
            return {"type": "array", "items": {"type": "string"}}
        return {"type": "array", "items": _type_dict(_common_type(items))}
    if isinstance(value, Mapping):
        return {"type": "object", "properties": {
            str(k): {**_type_dict(_value_type(v)), "required": not _is_missing(v)}
            for k, v in value.items()}}
    raise InvalidParameterValue(
        f"Cannot infer a signature type for a value of type {type(value).__name__}.")


def _type_dict(kind: DataType | dict) -> dict:
    return {"type": kind.name} if isinstance(kind, DataType) else dict(kind)


def _common_type(values: list) -> DataType | dict:
    kinds = [_value_type(v) for v in values if not _is_missing(v)]
    if not kinds:
        return DataType.string
    first = kinds[0]
    if all(k == first for k in kinds):
        return first
    if {DataType.long, DataType.double} >= {k for k in kinds if isinstance(k, DataType)} and all(
            isinstance(k, DataType) for k in kinds):
        return DataType.double
    return {"type": "any"}


def _column_type(series: pd.Series) -> DataType | dict:
    dtype = series.dtype
    if isinstance(dtype, pd.StringDtype):
        return DataType.string
    if dtype.kind == "O":
        return _common_type(series.tolist())
    return _numpy_type(dtype)


def _numpy_type(dtype: Any) -> DataType:
    kind = getattr(dtype, "kind", None)
    if kind == "b":
        return DataType.boolean
    if kind in ("i", "u"):
        return DataType.integer if dtype.itemsize < 4 or (
            kind == "i" and dtype.itemsize == 4) else DataType.long
    if kind == "f":
        return DataType.float if dtype.itemsize <= 4 else DataType.double
    if kind == "U":
        return DataType.string
    if kind == "S":
        return DataType.binary
    if kind == "M":
        return DataType.datetime
    raise InvalidParameterValue(f"Cannot infer a signature type for dtype '{dtype}'.")


def infer_schema(data: Any) -> Schema:
    """The schema of example data: a DataFrame, Series, numpy array, dict of arrays, dict of
    values (one record), list of records, list of values or a single value."""
    if isinstance(data, pd.DataFrame):
        return Schema([ColSpec(_column_type(data[c]), str(c),
                               not any(_is_missing(v) for v in data[c].tolist()))
                       for c in data.columns])
    if isinstance(data, pd.Series):
        return Schema([ColSpec(_column_type(data),
                               None if data.name is None else str(data.name),
                               not data.isna().any())])
    if isinstance(data, np.ndarray):
        return Schema([TensorSpec(clean_tensor_type(data.dtype), (-1, *data.shape[1:]))])
    if isinstance(data, Mapping):
        if data and all(isinstance(v, np.ndarray) for v in data.values()):
            return Schema([TensorSpec(clean_tensor_type(v.dtype), (-1, *v.shape[1:]), str(k))
                           for k, v in data.items()])
        return Schema([ColSpec(_value_type(v), str(k), not _is_missing(v))
                       for k, v in data.items()])
    if isinstance(data, (list, tuple)):
        if data and all(isinstance(item, Mapping) for item in data):
            columns: dict[str, list] = {}
            for item in data:
                for key, value in item.items():
                    columns.setdefault(str(key), []).append(value)
            return Schema([
                ColSpec(_common_type(values), key,
                        all(key in item and not _is_missing(item[key]) for item in data))
                for key, values in columns.items()])
        return Schema([ColSpec(_common_type(list(data)))])
    return Schema([ColSpec(_value_type(data))])


def infer_param_schema(params: Mapping[str, Any]) -> ParamSchema:
    """A params schema whose defaults are the given values."""
    specs = []
    for name, value in params.items():
        if isinstance(value, (list, tuple, np.ndarray)):
            kind = _common_type(list(value))
            if not isinstance(kind, DataType):
                raise InvalidParameterValue(
                    f"Param '{name}': lists of {kind} are not supported as params.")
            specs.append(ParamSpec(str(name), kind, list(value), (-1,)))
        elif isinstance(value, Mapping):
            specs.append(ParamSpec(str(name), _value_type(value), dict(value)))
        else:
            kind = _value_type(value)
            if kind == DataType.binary:
                raise InvalidParameterValue(f"Param '{name}': binary params are not supported.")
            specs.append(ParamSpec(str(name), kind, value))
    return ParamSchema(specs)


# -- enforcement -----------------------------------------------------------------------------


def _to_frame(data: Any) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pd.Series):
        return data.to_frame()
    if isinstance(data, Mapping):
        values = list(data.values())
        if all(np.isscalar(v) or v is None for v in values):
            return pd.DataFrame([dict(data)])
        try:
            return pd.DataFrame({k: (v.tolist() if isinstance(v, np.ndarray) and v.ndim > 1
                                     else v) for k, v in data.items()})
        except ValueError as error:
            raise SchemaError(
                f"The model has a column-based signature; the input dict could not be made a "
                f"DataFrame: {error}") from None
    if isinstance(data, (list, tuple, np.ndarray)):
        return pd.DataFrame(list(data) if isinstance(data, tuple) else data)
    if np.isscalar(data) or data is None:
        return pd.DataFrame([data])
    raise SchemaError(
        f"The model has a column-based signature and expects a DataFrame (or a dict, list or "
        f"array convertible to one); got {type(data).__name__}.")


def _cast_column(name: Any, values: pd.Series, kind: DataType) -> pd.Series:
    """Safe conversions only: int → long/double, float → double, object → string,
    any datetime precision → datetime; 0/1 integers → float."""
    dtype = values.dtype
    if kind in (DataType.string, DataType.binary):
        if isinstance(dtype, pd.StringDtype) or dtype.kind in ("O", "U", "S"):
            return values
    elif dtype.kind == "O" and not isinstance(dtype, pd.StringDtype):
        values = values.infer_objects()
        dtype = values.dtype
    target = kind.to_numpy()
    if dtype == target:
        return values
    if kind == DataType.datetime:
        if dtype.kind == "M" or dtype.kind == "O":
            try:
                return values.astype("datetime64[ns]")
            except (TypeError, ValueError) as error:
                raise SchemaError(f"Column '{name}' cannot be read as datetime: {error}") from None
    elif kind == DataType.boolean:
        if dtype.kind == "O":
            return values
    elif not isinstance(dtype, pd.StringDtype) and dtype.kind in ("b", "i", "u", "f"):
        if dtype.kind == target.kind:
            upcast = dtype.itemsize <= target.itemsize
        elif dtype.kind == "u" and target.kind == "i":
            upcast = dtype.itemsize < target.itemsize
        elif dtype.kind in ("i", "u") and target == np.float64:
            upcast = dtype.itemsize <= 6 or values.abs().max() <= 2 ** 53
        elif dtype.kind in ("i", "u") and target == np.float32:
            upcast = bool(values.isin([0, 1]).all())
        else:
            upcast = False
        if upcast:
            return values.astype(target)
    raise SchemaError(
        f"Incompatible input types for column '{name}': the signature says {kind.name}, the "
        f"input has {dtype}; this would not be a safe conversion.")


def _check_nested(name: Any, values: pd.Series, kind: dict, required: bool) -> pd.Series:
    if required and values.map(_is_missing).any():
        raise SchemaError(f"Column '{name}' is required but has missing values.")
    expected = kind.get("type")
    for value in values:
        if _is_missing(value) or expected == "any":
            continue
        if expected == "array" and not isinstance(value, (list, tuple, np.ndarray)):
            raise SchemaError(f"Column '{name}' expects arrays, got {type(value).__name__}.")
        if expected in ("object", "map") and not isinstance(value, Mapping):
            raise SchemaError(f"Column '{name}' expects objects, got {type(value).__name__}.")
    return values


def _enforce_columns(data: Any, schema: Schema) -> pd.DataFrame:
    frame = _to_frame(data)
    if schema.has_input_names():
        present = {str(c) for c in frame.columns}
        if len(schema) == 1 and list(frame.columns) == [0]:
            frame = frame.set_axis([schema.inputs[0].name], axis=1)  # a list or 1-d array
            present = {schema.inputs[0].name}
        missing = [n for n in schema.required_input_names() if n not in present]
        if missing:
            raise SchemaError(
                f"Model is missing inputs {missing}. The signature expects columns "
                f"{schema.input_names()}; the input has {[str(c) for c in frame.columns]}.")
        columns = {}
        lookup = {str(c): c for c in frame.columns}
        unchanged = True
        for spec in schema.inputs:
            if spec.name not in present:
                continue
            values = frame[lookup[spec.name]]
            if isinstance(spec.type, DataType):
                if spec.required and values.isna().any() and spec.type != DataType.string:
                    raise SchemaError(
                        f"Column '{spec.name}' is required by the signature but has missing "
                        "values.")
                checked = _cast_column(spec.name, values, spec.type)
            else:
                checked = _check_nested(spec.name, values, spec.type, spec.required)
            unchanged = unchanged and checked is values
            columns[spec.name] = checked
        if unchanged and list(frame.columns) == list(columns):
            return frame  # already the signature's columns, in order, of the right types
        return pd.DataFrame(columns, index=frame.index)
    if len(frame.columns) < len(schema):
        raise SchemaError(
            f"Model inference is missing inputs: the signature declares {len(schema)} unnamed "
            f"input(s), the input has {len(frame.columns)} column(s).")
    columns = {}
    for position, spec in enumerate(schema.inputs):
        column = frame.columns[position]
        columns[column] = (_cast_column(column, frame[column], spec.type)
                           if isinstance(spec.type, DataType)
                           else _check_nested(column, frame[column], spec.type, spec.required))
    return pd.DataFrame(columns, index=frame.index)


def _enforce_tensor(values: Any, spec: TensorSpec, label: str) -> np.ndarray:
    array = values if isinstance(values, np.ndarray) else np.asarray(values)
    expected = spec.shape
    if array.dtype != spec.dtype and not (spec.dtype == np.dtype("O")):
        if array.dtype.kind in "biuf" and spec.dtype.kind in "biuf" and np.can_cast(
                array.dtype, spec.dtype, "same_kind" if array.dtype.kind == spec.dtype.kind
                else "safe"):
            array = array.astype(spec.dtype)
        elif array.dtype.kind in "US" and spec.dtype.kind in "US":
            pass
        elif array.dtype.kind == "O" and spec.dtype.kind in "biufUS":
            try:
                array = array.astype(spec.dtype)
            except (TypeError, ValueError):
                raise SchemaError(
                    f"{label}: dtype of input {array.dtype} does not match the expected dtype "
                    f"{spec.dtype}.") from None
        else:
            raise SchemaError(
                f"{label}: dtype of input {array.dtype} does not match the expected dtype "
                f"{spec.dtype}.")
    if len(expected) == 1 and expected[0] == -1 and spec.dtype == np.dtype("O"):
        return array
    if len(expected) == 2 and expected[1] == 1 and array.ndim == 1:
        array = array.reshape(-1, 1)
    elif len(expected) == 1 and array.ndim == 2 and array.shape[1] == 1:
        array = array.reshape(-1)  # one column of a frame for a 1-d tensor
    if len(expected) != array.ndim or any(e not in (-1, a) for e, a in zip(expected,
                                                                          array.shape)):
        raise SchemaError(
            f"{label}: shape of input {array.shape} does not match the expected shape "
            f"{tuple(expected)} (-1 is any size).")
    return array


def _enforce_tensors(data: Any, schema: Schema) -> Any:
    if schema.has_input_names():
        if isinstance(data, pd.DataFrame):
            data = {c: np.asarray(data[c].tolist()) for c in data.columns}
        if not isinstance(data, Mapping):
            raise SchemaError(
                "The model has named tensor inputs and expects a dict of name → array (or a "
                f"DataFrame with those columns); got {type(data).__name__}.")
        missing = [n for n in schema.input_names() if n not in data]
        if missing:
            raise SchemaError(f"Model is missing inputs {missing}; the input has "
                              f"{list(data)}.")
        return {spec.name: _enforce_tensor(data[spec.name], spec, f"Input '{spec.name}'")
                for spec in schema.inputs}
    spec = schema.inputs[0]
    if isinstance(data, pd.DataFrame):
        if data.empty:
            raise SchemaError("The input DataFrame is empty.")
        if len(data.columns) == 1 and len(spec.shape) <= 2:
            column = data[data.columns[0]]
            if column.dtype.kind == "O" and isinstance(column.iloc[0], (list, np.ndarray)):
                data = np.asarray(column.tolist())
            else:
                data = column.to_numpy()
        else:
            data = data.to_numpy()
    elif isinstance(data, pd.Series):
        data = data.to_numpy()
    elif isinstance(data, (list, tuple)):
        data = np.asarray(data)
    if not isinstance(data, np.ndarray):
        raise SchemaError(
            "The model has a tensor-based signature and expects a numpy array (or a DataFrame "
            f"of its values); got {type(data).__name__}.")
    return _enforce_tensor(data, spec, "Input")


def enforce_schema(data: Any, schema: Schema) -> Any:
    """``data`` checked against ``schema`` and converted the safe ways: a DataFrame with the
    signature's columns in order (column-based) or numpy array(s) (tensor-based). Raises
    ``SchemaError`` saying what was expected."""
    if schema.is_tensor_spec():
        return _enforce_tensors(data, schema)
    return _enforce_columns(data, schema)


def _param_value(spec: ParamSpec, value: Any) -> Any:
    if value is None:
        return None
    if spec.shape:
        if not isinstance(value, (list, tuple, np.ndarray)):
            raise SchemaError(f"Param '{spec.name}' must be a list, got {value!r}.")
        return [_scalar_param(spec, v) for v in value]
    if isinstance(spec.type, dict):
        if not isinstance(value, Mapping):
            raise SchemaError(f"Param '{spec.name}' must be an object, got {value!r}.")
        return value
    return _scalar_param(spec, value)


def _scalar_param(spec: ParamSpec, value: Any) -> Any:
    kind = spec.type
    if kind == DataType.datetime:
        try:
            converted = np.datetime64(value).item()
        except ValueError:
            converted = None
        if not isinstance(converted, (dt.date, dt.datetime)):
            raise SchemaError(f"Param '{spec.name}' must be a date or datetime, got {value!r}.")
        return converted
    if isinstance(value, (list, tuple, Mapping, np.ndarray)):
        raise SchemaError(f"Param '{spec.name}' must be a single {kind.name}, got {value!r}.")
    is_bool = isinstance(value, (bool, np.bool_))
    if kind == DataType.boolean:
        if is_bool:
            return bool(value)
    elif kind in (DataType.integer, DataType.long):
        if isinstance(value, (int, np.integer)) and not is_bool:
            return int(value)
    elif kind in (DataType.float, DataType.double):
        if isinstance(value, (int, float, np.integer, np.floating)) and not is_bool:
            return float(value)
    elif kind == DataType.string:
        if isinstance(value, str):
            return value
    raise SchemaError(
        f"Param '{spec.name}' must be {kind.name}; cannot safely convert "
        f"{type(value).__name__} value {value!r}.")


def enforce_params(params: Mapping[str, Any] | None,
                   schema: ParamSchema | None) -> dict[str, Any] | None:
    """Params checked against the params schema, with defaults for the missing ones. Without
    a schema params are not passed on (as in MLflow); unknown params are dropped with a log
    message."""
    if schema is None:
        if params:
            log.warning("Ignoring params %s: the model signature declares no params.",
                        sorted(params))
        return None if params is None else {}
    if params is not None and not isinstance(params, Mapping):
        raise SchemaError(f"Params must be a JSON object (dict), got {type(params).__name__}.")
    params = dict(params or {})
    known = {spec.name for spec in schema}
    unknown = sorted(set(params) - known)
    if unknown:
        log.warning("Ignoring params %s: the signature declares %s.", unknown, sorted(known))
    checked = {}
    errors = []
    for spec in schema:
        if spec.name in params:
            try:
                checked[spec.name] = _param_value(spec, params[spec.name])
            except SchemaError as error:
                errors.append(error.message)
        else:
            checked[spec.name] = spec.default
    if errors:
        raise SchemaError("Invalid params: " + " ".join(errors))
    return checked
