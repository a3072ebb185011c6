"""Signatures and the MLmodel file: inference, MLflow's JSON format, enforcement and errors."""

from __future__ import annotations

import datetime as dt

import mlflow.models
import numpy as np
import pandas as pd
import pytest

from labtrack.errors import InvalidParameterValue, ResourceDoesNotExist
from labtrack.models import Model, ModelSignature, infer_signature
from labtrack.models.signature import (
    ColSpec,
    DataType,
    ParamSchema,
    Schema,
    SchemaError,
    TensorSpec,
    enforce_params,
    enforce_schema,
    infer_schema,
)


def test_dataframe_columns_are_inferred_with_mlflow_types():
    frame = pd.DataFrame({
        "f64": [1.5, 2.5], "f32": np.array([1, 2], dtype="float32"), "i64": [1, 2],
        "i32": np.array([1, 2], dtype="int32"), "flag": [True, False], "name": ["a", "b"],
        "when": pd.to_datetime(["2024-01-01", "2024-01-02"]), "tags": [["x"], ["y", "z"]],
        "maybe": [1.0, None],
    })
    schema = infer_schema(frame)
    assert schema.to_dict() == [
        {"type": "double", "name": "f64", "required": True},
        {"type": "float", "name": "f32", "required": True},
        {"type": "long", "name": "i64", "required": True},
        {"type": "integer", "name": "i32", "required": True},
        {"type": "boolean", "name": "flag", "required": True},
        {"type": "string", "name": "name", "required": True},
        {"type": "datetime", "name": "when", "required": True},
        {"type": "array", "items": {"type": "string"}, "name": "tags", "required": True},
        {"type": "double", "name": "maybe", "required": False},
    ]


def test_arrays_become_tensor_specs_with_a_variable_first_dimension():
    assert infer_schema(np.zeros((4, 3))).to_dict() == [
        {"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 3]}}]
    named = infer_schema({"a": np.zeros(2, dtype="int32"), "b": np.array(["x", "yy"])})
    assert named.to_dict() == [
        {"name": "a", "type": "tensor", "tensor-spec": {"dtype": "int32", "shape": [-1]}},
        {"name": "b", "type": "tensor", "tensor-spec": {"dtype": "str", "shape": [-1]}}]


def test_records_lists_and_scalars():
    records = infer_schema([{"q": "shoes", "k": 3}, {"q": "hats"}])
    assert records.to_dict() == [{"type": "string", "name": "q", "required": True},
                                 {"type": "long", "name": "k", "required": False}]
    assert infer_schema(["a", "b"]).to_dict() == [{"type": "string", "required": True}]
    assert infer_schema(3.5).to_dict() == [{"type": "double", "required": True}]


def test_signature_json_is_mlflows(frame):
    signature = infer_signature(frame, frame["x"] * 2,
                                params={"k": 5, "mode": "fast", "weights": [0.5, 0.25],
                                        "since": dt.datetime(2024, 1, 2, 3, 4)})
    stored = signature.to_dict()
    parsed = mlflow.models.ModelSignature.from_dict(stored)
    assert parsed.to_dict() == stored
    assert ModelSignature.from_dict(stored) == signature
    assert [p.name for p in parsed.params] == ["k", "mode", "weights", "since"]
    mlflows = mlflow.models.infer_signature(frame, frame["x"] * 2,
                                            params={"k": 5, "mode": "fast"})
    ours = infer_signature(frame, frame["x"] * 2, params={"k": 5, "mode": "fast"})
    assert ours.to_dict() == mlflows.to_dict()


def test_mlflow_tensor_signature_reads_back():
    mlflows = mlflow.models.infer_signature(np.zeros((2, 4)), np.array([1, 0]))
    ours = ModelSignature.from_dict(mlflows.to_dict())
    assert ours.to_dict() == mlflows.to_dict()
    assert ours.inputs.is_tensor_spec()


def test_enforce_columns_reorders_drops_extras_and_upcasts():
    schema = Schema([ColSpec(DataType.double, "a"), ColSpec(DataType.long, "b"),
                     ColSpec(DataType.string, "c", required=False)])
    given = pd.DataFrame({"extra": [0, 0], "b": np.array([1, 2], dtype="int32"),
                          "a": [1, 2]})
    out = enforce_schema(given, schema)
    assert list(out.columns) == ["a", "b"]
    assert out["a"].dtype == np.float64 and out["b"].dtype == np.int64
    assert enforce_schema({"a": 1.0, "b": 2}, schema).to_dict("records") == [{"a": 1.0,
                                                                               "b": 2}]


def test_enforce_columns_names_what_is_wrong():
    schema = Schema([ColSpec(DataType.double, "a"), ColSpec(DataType.long, "b")])
    with pytest.raises(SchemaError, match=r"Model is missing inputs \['b'\].*columns "
                                          r"\['a', 'b'\].*the input has \['a'\]"):
        enforce_schema(pd.DataFrame({"a": [1.0]}), schema)
    with pytest.raises(SchemaError, match="column 'b': the signature says long, the input "
                                          "has float64"):
        enforce_schema(pd.DataFrame({"a": [1.0], "b": [1.5]}), schema)
    with pytest.raises(SchemaError, match="column 'a'.*double.*str"):
        enforce_schema(pd.DataFrame({"a": ["x"], "b": [1]}), schema)
    with pytest.raises(SchemaError, match="'a' is required .* missing values"):
        enforce_schema(pd.DataFrame({"a": [None, 1.0], "b": [1, 2]}), schema)


def test_enforce_tensors_checks_shape_and_dtype():
    schema = Schema([TensorSpec(np.dtype("float64"), (-1, 3))])
    assert enforce_schema(np.ones((2, 3), dtype="int64"), schema).dtype == np.float64
    assert enforce_schema(pd.DataFrame(np.ones((2, 3))), schema).shape == (2, 3)
    with pytest.raises(SchemaError, match=r"shape of input \(2, 4\) does not match the "
                                          r"expected shape \(-1, 3\)"):
        enforce_schema(np.ones((2, 4)), schema)
    with pytest.raises(SchemaError, match="dtype of input <U1 does not match"):
        enforce_schema(np.array([["a", "b", "c"]]), schema)
    flat = Schema([TensorSpec(np.dtype("float64"), (-1,))])
    assert enforce_schema(np.ones((3, 1)), flat).shape == (3,)
    assert enforce_schema(pd.DataFrame({"v": [1.0, 2.0]}), flat).shape == (2,)
    named = Schema([TensorSpec(np.dtype("int64"), (-1,), "ids")])
    with pytest.raises(SchemaError, match=r"missing inputs \['ids'\]"):
        enforce_schema({"other": np.array([1])}, named)


def test_params_get_defaults_are_checked_and_unknown_ones_dropped():
    schema = ParamSchema.from_json(infer_signature(
        params={"k": 5, "temperature": 0.5, "mode": "fast", "ids": [1, 2]}).params.to_json())
    assert enforce_params(None, schema) == {"k": 5, "temperature": 0.5, "mode": "fast",
                                            "ids": [1, 2]}
    assert enforce_params({"k": 7, "temperature": 1, "other": 1}, schema)["temperature"] == 1.0
    with pytest.raises(SchemaError, match="Param 'k' must be long; cannot safely convert "
                                          "float value 1.5"):
        enforce_params({"k": 1.5}, schema)
    with pytest.raises(SchemaError, match="Param 'ids' must be a list"):
        enforce_params({"ids": 3}, schema)
    assert enforce_params({"k": 1}, None) == {}


def test_mlmodel_round_trip_keeps_unknown_keys(tmp_path, frame):
    model = Model(run_id="abc", artifact_path="runs:/abc/model", model_id="m-1",
                  signature=infer_signature(frame), mlflow_version="3.17.2",
                  prompts=None)
    model.add_flavor("python_function", loader_module="mlflow.pyfunc.model")
    model.save(tmp_path / "MLmodel")
    loaded = Model.load(tmp_path)
    assert loaded.to_dict() == model.to_dict()
    assert loaded.extra["mlflow_version"] == "3.17.2" and loaded.extra["prompts"] is None
    stock = mlflow.models.Model.load(str(tmp_path / "MLmodel"))
    assert stock.run_id == "abc" and stock.model_id == "m-1"
    assert stock.utc_time_created == model.utc_time_created
    assert stock.signature.to_dict() == model.signature.to_dict()


def test_mlmodel_errors(tmp_path):
    with pytest.raises(ResourceDoesNotExist, match="No MLmodel file"):
        Model.load(tmp_path)
    (tmp_path / "MLmodel").write_text("just text")
    with pytest.raises(InvalidParameterValue, match="not an MLmodel file"):
        Model.load(tmp_path)
