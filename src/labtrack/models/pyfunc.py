"""The ``python_function`` flavor: any Python model behind one ``predict`` (``labtrack.pyfunc``).

Write a ``PythonModel`` — ``load_context(context)`` once at load time (``context.artifacts``
maps each artifact name to its local path), ``predict(context, model_input, params=None)``
(``context`` may be left out) — and ``save_model``/``log_model`` package it as an MLflow model
folder: ``python_model.pkl`` (cloudpickle), ``artifacts/``, ``code/`` (the ``code_paths``
modules), the environment files and ``MLmodel`` with ``loader_module: mlflow.pyfunc.model``.
That is MLflow's own layout, so ``mlflow.pyfunc.load_model`` loads it (labtrack must be
importable there, as the model's ``requirements.txt`` says), and ``load_model`` here loads
MLflow's pyfunc and scikit-learn models, or any model whose loader module can be imported.

``PyFuncModel.predict`` enforces the signature: inputs are checked and converted the safe ways
(``SchemaError`` otherwise) and params get their defaults.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import importlib
import inspect
import logging
import lzma
import os
import pickle
import platform
import shutil
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import cloudpickle

from labtrack.errors import InvalidParameterValue, LabtrackError
from labtrack.models import requirements as reqs
from labtrack.models.mlmodel import (
    MLMODEL_FILE_NAME,
    Model,
    ModelInfo,
    folder_size,
    log_model_folder,
    prepare_folder,
    save_input_example,
    split_example,
)
from labtrack.models.signature import (
    ModelSignature,
    SchemaError,
    enforce_params,
    enforce_schema,
    infer_schema,
    infer_signature,
)
from labtrack.models.uri import download_model

log = logging.getLogger("labtrack.models")

FLAVOR_NAME = "python_function"
MAIN = "loader_module"
CODE = "code"
DATA = "data"
ENV = "env"
PY_VERSION = "python_version"
MODEL_CONFIG = "model_config"
PYTHON_MODEL_FILE_NAME = "python_model.pkl"
# The loader of PythonModel folders, under MLflow's name so that mlflow loads them too.
PYTHON_MODEL_LOADER = "mlflow.pyfunc.model"
_COMPRESSION = {"lzma": lzma.open, "bzip2": bz2.open, "gzip": gzip.open}
# Loader modules labtrack implements itself (MLflow's names and its own).
_LOADERS = {
    "mlflow.pyfunc.model": "labtrack.models.pyfunc",
    "labtrack.models.pyfunc": "labtrack.models.pyfunc",
    "labtrack.pyfunc": "labtrack.models.pyfunc",
    "mlflow.sklearn": "labtrack.models.sklearn",
    "labtrack.models.sklearn": "labtrack.models.sklearn",
    "labtrack.sklearn": "labtrack.models.sklearn",
}
_load_lock = threading.RLock()


class ModelLoadError(LabtrackError):
    """A model folder that cannot be loaded (missing flavor, loader or files)."""

    error_code = "INVALID_PARAMETER_VALUE"


class _TypeHints(NamedTuple):
    input: Any = None
    output: Any = None


class PythonModel:
    """Base class of custom models. Override ``predict`` (and ``load_context`` if the model
    reads artifacts or sets itself up at load time)."""

    def load_context(self, context: PythonModelContext) -> None:
        """Called once when the model is loaded, with its artifacts' local paths."""

    def predict(self, context: PythonModelContext, model_input: Any,
                params: dict[str, Any] | None = None) -> Any:
        """Return predictions for ``model_input`` (``context`` may be left out of the
        signature: ``predict(self, model_input, params=None)``)."""
        raise NotImplementedError("A PythonModel must implement predict().")

    @property
    def predict_type_hints(self) -> _TypeHints:
        """What ``mlflow.pyfunc`` asks of a PythonModel it loads; labtrack infers signatures
        from examples, not type hints."""
        return _TypeHints()


class PythonModelContext:
    """What ``load_context`` and ``predict`` receive: ``artifacts`` (name → local path) and
    ``model_config``."""

    def __init__(self, artifacts: Mapping[str, str] | None = None,
                 model_config: Mapping[str, Any] | None = None):
        self._artifacts = dict(artifacts or {})
        self._model_config = dict(model_config or {})

    @property
    def artifacts(self) -> dict[str, str]:
        """Artifact name → local path of the copy inside the model folder."""
        return self._artifacts

    @property
    def model_config(self) -> dict[str, Any]:
        """The model's configuration (saved with it, or given to load_model)."""
        return self._model_config

    def __repr__(self) -> str:
        return f"PythonModelContext(artifacts={self._artifacts!r})"


def _takes_context(parameters: Mapping[str, inspect.Parameter]) -> bool:
    """MLflow's rule: ``predict(self, context, model_input, …)`` — a ``context`` parameter, or
    two parameters besides ``self`` and ``params``."""
    return "context" in parameters or len(
        [p for p in parameters if p not in ("self", "params")]) == 2


class _PythonModelWrapper:
    """A loaded ``PythonModel`` with pyfunc's ``predict(data, params=None)``."""

    def __init__(self, python_model: Any, context: PythonModelContext):
        self.python_model = python_model
        self.context = context
        parameters = inspect.signature(python_model.predict).parameters
        self._with_context = _takes_context(parameters)
        self._with_params = "params" in parameters

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        kwargs = {"params": params} if self._with_params else {}
        if self._with_context:
            return self.python_model.predict(self.context, model_input, **kwargs)
        return self.python_model.predict(model_input, **kwargs)

    def get_raw_model(self) -> Any:
        return self.python_model


class PyFuncModel:
    """A loaded model: ``predict(data, params=None)`` whatever its flavor."""

    def __init__(self, model_meta: Model, model_impl: Any, model_path: str | None = None):
        self._meta = model_meta
        self._impl = model_impl
        self.model_path = model_path
        predict = getattr(model_impl, "predict", None)
        if predict is None:
            raise ModelLoadError("The model's loader returned an object without predict().")
        try:
            self._impl_takes_params = "params" in inspect.signature(predict).parameters
        except (TypeError, ValueError):
            self._impl_takes_params = False

    @property
    def metadata(self) -> Model:
        """The model's ``MLmodel`` (flavors, signature, run id, …)."""
        return self._meta

    @property
    def loader_module(self) -> str:
        """The module that loaded the model (``mlflow.pyfunc.model``, ``mlflow.sklearn``…)."""
        return self._meta.flavors[FLAVOR_NAME][MAIN]

    @property
    def model_config(self) -> dict[str, Any]:
        """The configuration a PythonModel was loaded with ({} otherwise)."""
        context = getattr(self._impl, "context", None)
        return context.model_config if context is not None else {}

    def __repr__(self) -> str:
        meta = self._meta
        return (f"PyFuncModel(loader_module={self.loader_module!r}, run_id={meta.run_id!r}, "
                f"model_id={meta.model_id!r})")

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """Predictions for ``data`` (a DataFrame, numpy array, dict, list…). Raises
        ``SchemaError`` when ``data`` or ``params`` do not match the signature."""
        schema = self._meta.get_input_schema()
        if schema is not None:
            data = enforce_schema(data, schema)
        params = enforce_params(params, self._meta.get_params_schema())
        if self._impl_takes_params:
            return self._impl.predict(data, params=params)
        if params:
            log.warning("Ignoring params %s: this model's predict takes none.", sorted(params))
        return self._impl.predict(data)

    def unwrap_python_model(self) -> Any:
        """The ``PythonModel`` instance inside (only for PythonModel-based models)."""
        if not isinstance(self._impl, _PythonModelWrapper):
            raise InvalidParameterValue(
                f"This model's loader is {self.loader_module}; only PythonModel-based models "
                "can be unwrapped. Use get_raw_model().")
        return self._impl.python_model

    def get_raw_model(self) -> Any:
        """The underlying model object (the estimator, the PythonModel, …)."""
        raw = getattr(self._impl, "get_raw_model", None)
        return raw() if callable(raw) else self._impl


# -- saving ----------------------------------------------------------------------------------


def add_to_model(model: Model, loader_module: str, data: str | None = None,
                 code: str | None = None, env: Mapping[str, str] | None = None,
                 model_config: Mapping[str, Any] | None = None, **kwargs: Any) -> Model:
    """Add the ``python_function`` flavor to ``model`` (MLflow's ``add_to_model``)."""
    params = dict(kwargs)
    params[MAIN] = loader_module
    params[PY_VERSION] = platform.python_version()
    if code:
        params[CODE] = code
    if data:
        params[DATA] = data
    if env:
        params[ENV] = dict(env)
    if model_config:
        params[MODEL_CONFIG] = dict(model_config)
    return model.add_flavor(FLAVOR_NAME, **params)


def copy_code_paths(code_paths: Sequence[str | os.PathLike] | None,
                    folder: Path) -> str | None:
    """Copy each code path (file or folder) into ``folder/code``; returns ``"code"`` or
    None."""
    if not code_paths:
        return None
    if isinstance(code_paths, (str, os.PathLike)):
        raise InvalidParameterValue("code_paths must be a list of file or folder paths.")
    target = folder / CODE
    target.mkdir()
    for path in code_paths:
        source = Path(path)
        if source.is_file():
            shutil.copy2(source, target / source.name)
        elif source.is_dir():
            shutil.copytree(source, target / source.name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            raise InvalidParameterValue(f"Code path '{path}' does not exist.")
    return CODE


def _copy_artifacts(artifacts: Mapping[str, Any], folder: Path) -> dict[str, dict[str, str]]:
    config = {}
    target_root = folder / "artifacts"
    for name, uri in artifacts.items():
        if not isinstance(name, str) or not name:
            raise InvalidParameterValue("Artifact names must be non-empty strings.")
        text = os.fspath(uri)
        local = Path(text).expanduser()
        if not local.exists():
            local = Path(download_model(text))
        destination = target_root / local.name
        if destination.exists():
            destination = target_root / f"{name}-{local.name}"
        target_root.mkdir(exist_ok=True)
        if local.is_dir():
            shutil.copytree(local, destination)
        else:
            shutil.copy2(local, destination)
        config[name] = {"path": destination.relative_to(folder).as_posix(), "uri": text}
    return config


def save_model(
    path: str | os.PathLike,
    python_model: Any = None,
    artifacts: Mapping[str, Any] | None = None,
    code_paths: Sequence[str | os.PathLike] | None = None,
    signature: ModelSignature | bool | None = None,
    input_example: Any = None,
    pip_requirements: str | os.PathLike | Sequence[str] | None = None,
    extra_pip_requirements: str | os.PathLike | Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    model_config: Mapping[str, Any] | None = None,
    loader_module: str | None = None,
    data_path: str | os.PathLike | None = None,
    mlflow_model: Model | None = None,
) -> None:
    """Save a python_function model into the empty (or new) folder ``path``.

    Either ``python_model`` (a ``PythonModel``) with ``artifacts`` (name → local path or model
    URI, copied into the model and given to ``load_context``), or ``loader_module`` (a module
    with ``_load_pyfunc(data_path)``) with ``data_path``. ``code_paths`` are files or folders
    of your own modules, shipped with the model and importable when it loads. Without a
    ``signature``, one is inferred from ``input_example`` (and the model's prediction on it);
    ``signature=False`` saves none. Requirements are inferred from what the model imports
    unless ``pip_requirements`` replaces them; ``extra_pip_requirements`` adds some.
    """
    if (python_model is None) == (loader_module is None):
        raise InvalidParameterValue("Pass either python_model or loader_module (one of them).")
    if python_model is not None and not callable(getattr(python_model, "predict", None)):
        raise InvalidParameterValue(
            f"python_model must be a PythonModel (with predict); got "
            f"{type(python_model).__name__}.")
    if isinstance(python_model, (str, os.PathLike)):
        raise InvalidParameterValue(
            "Models from code (python_model as a file path) are not supported by labtrack; "
            "pass a PythonModel instance.")
    folder = prepare_folder(path)
    try:
        _save(folder, python_model, artifacts, code_paths, signature, input_example,
              pip_requirements, extra_pip_requirements, metadata, model_config, loader_module,
              data_path, mlflow_model)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _save(folder, python_model, artifacts, code_paths, signature, input_example,
          pip_requirements, extra_pip_requirements, metadata, model_config, loader_module,
          data_path, mlflow_model) -> None:
    model = mlflow_model or Model()
    code = copy_code_paths(code_paths, folder)
    env = {"conda": reqs.CONDA_ENV_FILE_NAME, "virtualenv": reqs.PYTHON_ENV_FILE_NAME}
    if python_model is not None:
        artifact_config = _copy_artifacts(artifacts or {}, folder)
        with open(folder / PYTHON_MODEL_FILE_NAME, "wb") as out:
            cloudpickle.dump(python_model, out)
        extra = {"cloudpickle_version": cloudpickle.__version__,
                 "python_model": PYTHON_MODEL_FILE_NAME, "streamable": False}
        if artifact_config:
            extra["artifacts"] = artifact_config
        add_to_model(model, PYTHON_MODEL_LOADER, code=code, env=env,
                     model_config=model_config, **extra)
        objects = [python_model]
    else:
        if artifacts:
            raise InvalidParameterValue("artifacts need a python_model.")
        data = None
        if data_path is not None:
            source = Path(data_path)
            if not source.exists():
                raise InvalidParameterValue(f"data_path '{data_path}' does not exist.")
            data = source.name
            (shutil.copytree if source.is_dir() else shutil.copy2)(source, folder / data)
        add_to_model(model, loader_module, data=data, code=code, env=env,
                     model_config=model_config)
        objects = []
    if metadata is not None:
        model.metadata = dict(metadata)
    example = None
    if input_example is not None:
        example = split_example(input_example)
        save_input_example(model, input_example, folder)
    if signature is False:
        model.signature = None
    elif signature is not None:
        model.signature = signature
    model.save(folder / MLMODEL_FILE_NAME)
    if signature is None and example is not None:
        model.signature = _signature_from_example(folder, example)
    inferred: list[str] = []
    if pip_requirements is None:
        inferred = reqs.infer_requirements(objects, code_paths or (),
                                           base=("cloudpickle", "pandas"))
        # Models packaged as artifacts (an sklearn model the PythonModel loads) bring theirs.
        for nested in sorted((folder / "artifacts").glob(f"*/{reqs.REQUIREMENTS_FILE_NAME}")):
            inferred += reqs.read_requirements(nested)
    requirements = reqs.resolve_requirements(inferred, pip_requirements,
                                             extra_pip_requirements)
    reqs.write_environment(folder, requirements)
    model.model_size_bytes = folder_size(folder)
    model.save(folder / MLMODEL_FILE_NAME)


def _signature_from_example(folder: Path, example: tuple[Any, dict | None]) -> ModelSignature:
    """Inputs from the example; outputs from what the saved model predicts for it (left out,
    with a log message, when that prediction fails)."""
    data, params = example
    signature = infer_signature(data, params=params)
    try:
        with _imports_restored(reqs.local_modules_of([folder / CODE])):
            loaded = load_model(folder)
            output = loaded._impl.predict(data, params=params) if loaded._impl_takes_params \
                else loaded._impl.predict(data)
        signature.outputs = infer_schema(output) if output is not None else None
    except Exception as error:  # the model's own code: report and keep the input schema
        log.warning("The output schema was not inferred: predicting the input example "
                    "failed: %s", error)
    return signature


@contextlib.contextmanager
def _imports_restored(names: set[str]):
    """Leave ``sys.path`` and the modules ``names`` as they were: loading a model being saved
    must not replace the caller's own modules (which ``importlib.reload`` would then refuse)."""
    path = list(sys.path)

    def owned(module: str) -> bool:
        return module.split(".", 1)[0] in names

    modules = {name: module for name, module in sys.modules.items() if owned(name)}
    try:
        yield
    finally:
        sys.path[:] = path
        for name in [name for name in sys.modules if owned(name)]:
            del sys.modules[name]
        sys.modules.update(modules)


def log_model(
    name: str | None = None,
    python_model: Any = None,
    artifacts: Mapping[str, Any] | None = None,
    code_paths: Sequence[str | os.PathLike] | None = None,
    signature: ModelSignature | bool | None = None,
    input_example: Any = None,
    registered_model_name: str | None = None,
    pip_requirements: str | os.PathLike | Sequence[str] | None = None,
    extra_pip_requirements: str | os.PathLike | Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    model_config: Mapping[str, Any] | None = None,
    loader_module: str | None = None,
    data_path: str | os.PathLike | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    model_type: str | None = None,
    step: int = 0,
    artifact_path: str | None = None,
    run_id: str | None = None,
) -> ModelInfo:
    """Log a python_function model to the active run (a run is started if none is), as
    MLflow 3 does: a logged model ``m-…`` named ``name`` (default ``"model"``) that
    ``runs:/<run_id>/<name>`` and ``models:/<model_id>`` load; ``registered_model_name``
    registers it as a new version. Other arguments as in ``save_model``."""

    def save(path: str, model: Model) -> None:
        save_model(path, python_model=python_model, artifacts=artifacts,
                   code_paths=code_paths, signature=signature, input_example=input_example,
                   pip_requirements=pip_requirements,
                   extra_pip_requirements=extra_pip_requirements, metadata=metadata,
                   model_config=model_config, loader_module=loader_module,
                   data_path=data_path, mlflow_model=model)

    return log_model_folder(save, name or artifact_path, registered_model_name, params, tags,
                            model_type, step, run_id)


# -- loading ---------------------------------------------------------------------------------


def _use_code(folder: str, conf: Mapping[str, Any]) -> None:
    """Make the model's ``code/`` modules importable — freshly: modules of the same name
    another model shipped are evicted from ``sys.modules`` first, so two versions of a
    module serve side by side (each model keeps the version it loaded)."""
    code = conf.get(CODE)
    if not code:
        return
    code_dir = os.path.abspath(os.path.join(folder, code))
    for name in reqs.local_modules_of([code_dir]) - set(sys.stdlib_module_names):
        for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[loaded]
    if code_dir in sys.path:
        sys.path.remove(code_dir)
    sys.path.insert(0, code_dir)
    importlib.invalidate_caches()


def _loader(name: str) -> Any:
    module_name = _LOADERS.get(name, name)
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ModelLoadError(
            f"This model is loaded by '{name}', which cannot be imported here ({error}). "
            "Install the package that provides it (see the model's requirements.txt).") from None
    loader = getattr(module, "_load_pyfunc", None)
    if loader is None:
        raise ModelLoadError(f"Loader module '{name}' has no _load_pyfunc function.")
    return loader


def load_model(model_uri: str | os.PathLike, dst_path: str | os.PathLike | None = None,
               model_config: Mapping[str, Any] | None = None,
               client: Any = None) -> PyFuncModel:
    """Load a model as a ``PyFuncModel``: ``runs:/<run_id>/<name>``,
    ``models:/<name>/<version|stage|latest>``, ``models:/<name>@<alias>``,
    ``models:/<model_id>``, or a local folder. Remote files go to ``dst_path`` (default: a
    temporary folder). ``model_config`` overrides the saved one."""
    folder = download_model(model_uri, dst_path, client)
    model = Model.load(folder)
    conf = model.flavors.get(FLAVOR_NAME)
    if not conf:
        raise ModelLoadError(
            f"Model '{model_uri}' has no python_function flavor (its flavors: "
            f"{sorted(model.flavors)}); load it with its own flavor's load_model.")
    if MAIN not in conf:
        raise ModelLoadError(f"Model '{model_uri}': the python_function flavor names no "
                             "loader_module.")
    config = {**(conf.get(MODEL_CONFIG) or {}), **(model_config or {})}
    data_path = os.path.join(folder, conf[DATA]) if conf.get(DATA) else folder
    with _load_lock:
        _use_code(folder, conf)
        loader = _loader(conf[MAIN])
        try:
            accepts_config = len(inspect.signature(loader).parameters) >= 2
        except (TypeError, ValueError):
            accepts_config = False
        impl = loader(data_path, config) if accepts_config and config else loader(data_path)
    return PyFuncModel(model, impl, folder)


# cloudpickle rebuilds a class pickled by value through one of these, with a "tracker id" as
# the argument at this position: another class of the same tracker id already loaded in the
# process is then reused — and its methods overwritten. Two versions of a model defined in one
# notebook share that id, so loading both would give both the last one's code.
_TRACKED_RECONSTRUCTORS = {"_make_skeleton_class": 4, "_make_skeleton_enum": 5}


class _FreshClassUnpickler(pickle.Unpickler):
    """cloudpickle's unpickling, except that every class pickled by value is rebuilt as a new
    class: each loaded model keeps its own code, whatever else the process has loaded."""

    def find_class(self, module: str, name: str) -> Any:
        found = super().find_class(module, name)
        position = _TRACKED_RECONSTRUCTORS.get(name)
        if position is None or not module.startswith("cloudpickle"):
            return found

        def untracked(*args: Any) -> Any:
            args = list(args)
            if len(args) > position:
                args[position] = None
            return found(*args)

        return untracked


def load_pickle(stream: Any) -> Any:
    """Unpickle a cloudpickle (or pickle) stream, each by-value class as a new class."""
    return _FreshClassUnpickler(stream).load()


def _load_pyfunc(path: str, model_config: Mapping[str, Any] | None = None
                 ) -> _PythonModelWrapper:
    """Loader of PythonModel folders (``loader_module: mlflow.pyfunc.model``)."""
    folder = path if os.path.isdir(path) else os.path.dirname(path)
    conf = Model.load(folder).flavors[FLAVOR_NAME]
    if "model_code_path" in conf:
        raise ModelLoadError(
            "This model was saved from code (MLflow 'models from code'); labtrack loads "
            "pickled PythonModels only. Load it with mlflow.pyfunc.load_model.")
    pickled = conf.get("python_model")
    if not pickled:
        raise ModelLoadError("The python_function flavor names no python_model file.")
    compression = conf.get("python_model_compression")
    opener = _COMPRESSION.get(compression, open)
    saved_version = conf.get("cloudpickle_version")
    if saved_version and saved_version != cloudpickle.__version__:
        log.warning("The model was saved with cloudpickle %s; this is cloudpickle %s.",
                    saved_version, cloudpickle.__version__)
    try:
        with opener(os.path.join(folder, pickled), "rb") as stream:
            python_model = load_pickle(stream)
    except (ImportError, AttributeError) as error:
        raise ModelLoadError(
            f"The pickled model needs code that cannot be imported here: {error}. Install the "
            "model's requirements (requirements.txt) or ship the module with code_paths."
        ) from None
    artifacts = {name: os.path.join(folder, info["path"])
                 for name, info in (conf.get("artifacts") or {}).items()}
    context = PythonModelContext(artifacts, model_config or conf.get(MODEL_CONFIG))
    python_model.load_context(context)
    return _PythonModelWrapper(python_model, context)


def get_model_dependencies(model_uri: str | os.PathLike) -> str:
    """The local path of the model's ``requirements.txt``."""
    folder = download_model(model_uri)
    path = Path(folder) / reqs.REQUIREMENTS_FILE_NAME
    if not path.is_file():
        raise ModelLoadError(f"Model '{model_uri}' has no {reqs.REQUIREMENTS_FILE_NAME}.")
    return str(path)


__all__ = [
    "FLAVOR_NAME",
    "ModelLoadError",
    "PyFuncModel",
    "PythonModel",
    "PythonModelContext",
    "SchemaError",
    "add_to_model",
    "get_model_dependencies",
    "load_model",
    "log_model",
    "save_model",
]
