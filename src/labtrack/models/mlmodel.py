"""The ``MLmodel`` file — MLflow's model description — and logging a model to a run.

A model is a folder with an ``MLmodel`` YAML file at its root::

    artifact_path: file:///…/models/m-…/artifacts     # where it was logged (if logged)
    flavors:
      python_function: {loader_module: mlflow.pyfunc.model, python_model: python_model.pkl,
                        env: {conda: conda.yaml, virtualenv: python_env.yaml}, …}
      sklearn: {pickled_model: model.pkl, serialization_format: cloudpickle, …}
    model_id: m-…                  # the MLflow 3 logged model
    model_uuid: m-…
    run_id: 4f1c…
    signature: {inputs: '[…]', outputs: '[…]', params: null}
    saved_input_example_info: {artifact_path: input_example.json, …}
    utc_time_created: '2026-11-27 09:51:32.022169'

``Model`` reads and writes it exactly as MLflow 3.17 does, so folders move between labtrack
and ``mlflow`` both ways. ``log_model_folder`` is MLflow 3's ``log_model`` sequence on any
labtrack store: create a logged model for the run, save the flavor into a temporary folder,
upload it to the logged model's location, finalize it READY, record it as a run output, and
register it when asked.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from labtrack.errors import InvalidParameterValue, LabtrackError, ResourceDoesNotExist

log = logging.getLogger("labtrack.models")

MLMODEL_FILE_NAME = "MLmodel"
INPUT_EXAMPLE_FILE_NAME = "input_example.json"
SERVING_INPUT_FILE_NAME = "serving_input_example.json"
# Keys Model keeps as attributes; anything else in an MLmodel file is kept as it is.
_KNOWN_KEYS = ("artifact_path", "run_id", "utc_time_created", "flavors", "signature",
               "saved_input_example_info", "model_uuid", "metadata", "model_size_bytes",
               "model_id")


class Model:
    """An ``MLmodel`` file: flavors, signature, input example and where the model was logged.

    Unknown keys (``mlflow_version``, ``prompts``, ``resources``, …) are kept and written back.
    """

    def __init__(
        self,
        artifact_path: str | None = None,
        run_id: str | None = None,
        utc_time_created: str | None = None,
        flavors: dict[str, dict[str, Any]] | None = None,
        signature: Any = None,
        saved_input_example_info: dict[str, Any] | None = None,
        model_uuid: str | None = None,
        metadata: dict[str, Any] | None = None,
        model_size_bytes: int | None = None,
        model_id: str | None = None,
        **extra: Any,
    ):
        self.artifact_path = artifact_path
        self.run_id = run_id
        self.utc_time_created = str(
            utc_time_created or dt.datetime.now(dt.UTC).replace(tzinfo=None))
        self.flavors = flavors if flavors is not None else {}
        self.signature = signature
        self.saved_input_example_info = saved_input_example_info
        self.model_uuid = model_uuid or uuid.uuid4().hex
        self.metadata = metadata
        self.model_size_bytes = model_size_bytes
        self.model_id = model_id
        self.extra = dict(extra)

    def __repr__(self) -> str:
        return f"Model(flavors={sorted(self.flavors)}, run_id={self.run_id!r}, " \
               f"model_id={self.model_id!r})"

    def add_flavor(self, name: str, **params: Any) -> Model:
        """Record a flavor and its configuration; returns ``self``."""
        self.flavors[name] = params
        return self

    def get_input_schema(self):
        """The signature's input schema, or None."""
        return self.signature.inputs if self.signature is not None else None

    def get_output_schema(self):
        """The signature's output schema, or None."""
        return self.signature.outputs if self.signature is not None else None

    def get_params_schema(self):
        """The signature's params schema, or None."""
        return self.signature.params if self.signature is not None else None

    def to_dict(self) -> dict[str, Any]:
        """The YAML content, with MLflow's keys (``None`` run id and path left out)."""
        out: dict[str, Any] = dict(self.extra)
        out.update({
            "flavors": self.flavors,
            "model_uuid": self.model_uuid,
            "utc_time_created": self.utc_time_created,
            "model_id": self.model_id,
        })
        if self.artifact_path is not None:
            out["artifact_path"] = self.artifact_path
        if self.run_id is not None:
            out["run_id"] = self.run_id
        if self.signature is not None:
            out["signature"] = self.signature.to_dict()
            out.setdefault("is_signature_from_type_hint", False)
            out.setdefault("type_hint_from_example", False)
        if self.saved_input_example_info is not None:
            out["saved_input_example_info"] = self.saved_input_example_info
        if self.metadata is not None:
            out["metadata"] = self.metadata
        if self.model_size_bytes is not None:
            out["model_size_bytes"] = self.model_size_bytes
        return out

    def to_yaml(self) -> str:
        """The MLmodel file's text."""
        return yaml.safe_dump(self.to_dict(), default_flow_style=False)

    def save(self, path: str | os.PathLike) -> None:
        """Write the YAML to ``path`` (the ``MLmodel`` file itself)."""
        Path(path).write_text(self.to_yaml(), encoding="utf-8")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Model:
        """A model from the parsed YAML."""
        from labtrack.models.signature import ModelSignature

        data = dict(data)
        signature = data.pop("signature", None)
        if isinstance(signature, Mapping):
            signature = ModelSignature.from_dict(signature)
        known = {k: data.pop(k) for k in _KNOWN_KEYS if k in data}
        return cls(signature=signature, **known, **data)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Model:
        """Read a model folder's ``MLmodel`` (``path`` is the folder or the file)."""
        path = Path(path)
        file = path / MLMODEL_FILE_NAME if path.is_dir() else path
        if not file.is_file():
            raise ResourceDoesNotExist(
                f"No {MLMODEL_FILE_NAME} file at '{path}': is it a model folder?")
        try:
            data = yaml.safe_load(file.read_text(encoding="utf-8"))
        except yaml.YAMLError as error:
            raise InvalidParameterValue(f"'{file}' is not valid YAML: {error}") from None
        if not isinstance(data, Mapping) or not isinstance(data.get("flavors", {}), Mapping):
            raise InvalidParameterValue(f"'{file}' is not an MLmodel file (no 'flavors').")
        return cls.from_dict(data)

    def load_input_example(self, path: str | os.PathLike) -> Any:
        """The input example saved next to the MLmodel file (a DataFrame, array or JSON
        value), or None."""
        info = self.saved_input_example_info
        if not info:
            return None
        with open(Path(path) / info["artifact_path"], encoding="utf-8") as stream:
            data = json.load(stream)
        if isinstance(data, Mapping) and "inputs" in data and "params" in data and \
                info.get("example_params"):
            data = data["inputs"]
        kind = info.get("type")
        if kind == "dataframe":
            import pandas as pd

            if info.get("pandas_orient", "split") == "split":
                return pd.DataFrame(data=data["data"], columns=data.get("columns"),
                                    index=data.get("index"))
            return pd.DataFrame(data)
        if kind == "ndarray":
            import numpy as np

            if isinstance(data, Mapping):
                return {k: np.asarray(v) for k, v in data.items()}
            return np.asarray(data)
        return data

    def get_model_info(self) -> ModelInfo:
        """What ``log_model`` returns: where the model is and how to load it."""
        return ModelInfo(
            artifact_path=self.artifact_path,
            flavors=self.flavors,
            model_uri=f"models:/{self.model_id}" if self.model_id else (
                self.artifact_path or ""),
            model_uuid=self.model_uuid,
            run_id=self.run_id,
            model_id=self.model_id,
            saved_input_example_info=self.saved_input_example_info,
            signature=self.signature,
            utc_time_created=self.utc_time_created,
            metadata=self.metadata,
        )


@dataclass
class ModelInfo:
    """A logged model: ``model_uri`` (``models:/<model_id>``) loads it; ``name`` is what
    ``runs:/<run_id>/<name>`` finds; ``registered_model_version`` is set when it was
    registered."""

    artifact_path: str | None
    flavors: dict[str, Any]
    model_uri: str
    model_uuid: str
    run_id: str | None
    model_id: str | None
    saved_input_example_info: dict[str, Any] | None
    signature: Any
    utc_time_created: str
    metadata: dict[str, Any] | None = None
    name: str | None = None
    registered_model_version: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# -- input examples --------------------------------------------------------------------------


class _JsonEncoder(json.JSONEncoder):
    """numpy, pandas, bytes and dates as JSON (what MLflow's ``NumpyEncoder`` does)."""

    def default(self, o: Any) -> Any:
        import base64

        import numpy as np
        import pandas as pd

        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, (bytes, bytearray)):
            return base64.encodebytes(o).decode("ascii")
        if isinstance(o, (pd.Timestamp, dt.date, dt.datetime, dt.time)):
            return o.isoformat()
        if isinstance(o, np.datetime64):
            return np.datetime_as_string(o)
        return super().default(o)


def to_json(value: Any, **kwargs: Any) -> str:
    """JSON text of predictions or examples holding numpy/pandas values."""
    return json.dumps(value, cls=_JsonEncoder, **kwargs)


def split_example(input_example: Any) -> tuple[Any, dict | None]:
    """An input example may be ``(data, params)``, as in MLflow."""
    if isinstance(input_example, tuple) and len(input_example) == 2 and isinstance(
            input_example[1], Mapping):
        return input_example[0], dict(input_example[1])
    return input_example, None


def save_input_example(model: Model, input_example: Any, path: str | os.PathLike) -> Any:
    """Write ``input_example.json`` and ``serving_input_example.json`` (MLflow's files and
    ``saved_input_example_info``); returns the example data."""
    import numpy as np
    import pandas as pd

    data, params = split_example(input_example)
    info: dict[str, Any] = {"artifact_path": INPUT_EXAMPLE_FILE_NAME}
    if isinstance(data, pd.DataFrame):
        stored: Any = {"columns": [str(c) for c in data.columns], "data": data.to_numpy()}
        if not isinstance(data.index, pd.RangeIndex) or data.index.start != 0:
            stored["index"] = data.index.tolist()
        serving: Any = {"dataframe_split": stored}
        info.update(type="dataframe", pandas_orient="split")
    elif isinstance(data, np.ndarray) or (isinstance(data, Mapping) and data and all(
            isinstance(v, np.ndarray) for v in data.values())):
        stored = data
        serving = {"inputs": data}
        info["type"] = "ndarray"
    elif isinstance(data, (Mapping, list, str, int, float, bool)):
        stored = data
        serving = {"inputs": data}
        info["type"] = "json_object"
    else:
        raise InvalidParameterValue(
            "An input example must be a pandas DataFrame, a numpy array, a dict of arrays, a "
            f"dict, a list or a scalar; got {type(data).__name__}.")
    if params:
        stored = {"inputs": stored, "params": params}
        serving = {**serving, "params": params}
        info["example_params"] = "true"
    folder = Path(path)
    (folder / INPUT_EXAMPLE_FILE_NAME).write_text(to_json(stored), encoding="utf-8")
    (folder / SERVING_INPUT_FILE_NAME).write_text(to_json(serving, indent=2), encoding="utf-8")
    info["serving_input_path"] = SERVING_INPUT_FILE_NAME
    model.saved_input_example_info = info
    return data


def folder_size(path: str | os.PathLike) -> int:
    """Total size in bytes of the files under ``path``."""
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def prepare_folder(path: str | os.PathLike) -> Path:
    """The folder a model is saved into: created, and refused when it holds anything."""
    folder = Path(path)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise InvalidParameterValue(f"Path '{folder}' already exists and is not empty.")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# -- logging a model to a run ----------------------------------------------------------------


def log_model_folder(
    save: Callable[[str, Model], None],
    name: str | None,
    registered_model_name: str | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    model_type: str | None = None,
    step: int = 0,
    run_id: str | None = None,
    client: Any = None,
) -> ModelInfo:
    """Log a model the way MLflow 3's ``log_model`` does.

    ``save(path, model)`` writes the flavor into an empty folder, filling ``model`` (whose
    ``run_id``, ``artifact_path`` and ``model_id`` are already set). The model is logged to
    ``run_id``, else the active run, else a new run of the current experiment (which is then
    active, as in MLflow).
    """
    from labtrack.client import fluent

    name = name or "model"
    if run_id is None:
        active = fluent.active_run()
        run_id = active.info.run_id if active is not None else fluent.start_run().info.run_id
    client = client or fluent._get_client()
    run = client.get_run(run_id)
    model_params = {**run.data.params, **{k: str(v) for k, v in (params or {}).items()}}
    model_tags = {"mlflow.user": run.data.tags.get("mlflow.user", ""),
                  **{k: str(v) for k, v in (tags or {}).items()}}
    model_tags = {k: v for k, v in model_tags.items() if v}
    logged = client.create_logged_model(run.info.experiment_id, name, run_id, model_params,
                                        model_tags, model_type)
    try:
        with tempfile.TemporaryDirectory(prefix="labtrack-log-model-") as temporary:
            folder = os.path.join(temporary, "model")
            model = Model(artifact_path=logged.artifact_location, run_id=run_id,
                          model_uuid=logged.model_id, model_id=logged.model_id)
            save(folder, model)
            for cache in Path(folder).rglob("__pycache__"):
                shutil.rmtree(cache, ignore_errors=True)
            client.log_model_artifacts(logged.model_id, folder)
        client.finalize_logged_model(logged.model_id, "READY")
    except BaseException:
        try:
            client.finalize_logged_model(logged.model_id, "UPLOAD_FAILED")
        except LabtrackError as error:
            log.warning("Could not mark logged model %s as failed: %s", logged.model_id,
                        error)
        raise
    client.log_outputs(run_id, logged.model_id, step)
    info = model.get_model_info()
    info.name = name
    if registered_model_name is not None:
        version = client.register_model(f"models:/{logged.model_id}", registered_model_name)
        info.registered_model_version = version.version
    return info
