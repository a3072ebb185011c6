"""The scikit-learn flavor (``labtrack.sklearn``): save, log and load estimators in MLflow's
``sklearn`` format, and ``autolog()``.

A saved estimator folder has ``model.pkl`` (cloudpickle by default, or pickle), the ``sklearn``
flavor (``pickled_model``, ``serialization_format``, ``sklearn_version``) and a
``python_function`` flavor with ``loader_module: mlflow.sklearn`` — MLflow's layout, so
``mlflow.sklearn.load_model`` and ``mlflow.pyfunc.load_model`` read it, and labtrack reads the
folders MLflow writes (``skops`` ones too when the ``skops`` package is installed).

``autolog()`` logs, on every ``fit`` of a scikit-learn estimator, what MLflow's sklearn
autologging logs: the estimator's params (``get_params(deep=True)``), training metrics
(``training_score`` and, for classifiers, ``training_accuracy_score``,
``training_precision_score``, ``training_recall_score``, ``training_f1_score``,
``training_log_loss``, ``training_roc_auc``; for regressors ``training_mean_squared_error``,
``training_root_mean_squared_error``, ``training_mean_absolute_error``, ``training_r2_score``),
the tags ``estimator_name`` and ``estimator_class``, the training data as a run input, and the
fitted model as the run's logged model ``model``. A run is started for the fit when none is
active (and ended after it).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import pickle
import shutil
import threading
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cloudpickle

from labtrack.errors import InvalidParameterValue
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
from labtrack.models.pyfunc import (
    FLAVOR_NAME as PYFUNC_FLAVOR,
)
from labtrack.models.pyfunc import (
    ModelLoadError,
    add_to_model,
    copy_code_paths,
    load_pickle,
)
from labtrack.models.signature import ModelSignature, infer_schema, infer_signature
from labtrack.models.uri import download_model

log = logging.getLogger("labtrack.models")

FLAVOR_NAME = "sklearn"
SERIALIZATION_FORMAT_PICKLE = "pickle"
SERIALIZATION_FORMAT_CLOUDPICKLE = "cloudpickle"
SERIALIZATION_FORMAT_SKOPS = "skops"
SUPPORTED_SERIALIZATION_FORMATS = (SERIALIZATION_FORMAT_PICKLE, SERIALIZATION_FORMAT_CLOUDPICKLE,
                                   SERIALIZATION_FORMAT_SKOPS)
_PICKLE_FILE = "model.pkl"
_SKOPS_FILE = "model.skops"
_SKLEARN_LOADER = "mlflow.sklearn"


def _sklearn_version() -> str:
    import sklearn

    return sklearn.__version__


def _dump(sk_model: Any, path: Path, serialization_format: str) -> None:
    if serialization_format == SERIALIZATION_FORMAT_SKOPS:
        try:
            import skops.io
        except ImportError:
            raise InvalidParameterValue(
                "serialization_format='skops' needs the skops package: pip install skops"
            ) from None
        skops.io.dump(sk_model, path)
        return
    library = cloudpickle if serialization_format == SERIALIZATION_FORMAT_CLOUDPICKLE else pickle
    with open(path, "wb") as out:
        library.dump(sk_model, out, protocol=pickle.DEFAULT_PROTOCOL)


def _load(path: str, serialization_format: str, trusted: Sequence[str] | None = None) -> Any:
    if serialization_format not in SUPPORTED_SERIALIZATION_FORMATS:
        raise ModelLoadError(
            f"Unknown serialization format '{serialization_format}': expected one of "
            f"{list(SUPPORTED_SERIALIZATION_FORMATS)}.")
    if serialization_format == SERIALIZATION_FORMAT_SKOPS:
        try:
            import skops.io
        except ImportError:
            raise ModelLoadError(
                "This model was saved in the skops format; loading it needs the skops "
                "package: pip install skops") from None
        return skops.io.load(path, trusted=trusted)
    with open(path, "rb") as stream:
        return load_pickle(stream)  # pickle and cloudpickle files alike


def save_model(
    sk_model: Any,
    path: str | os.PathLike,
    serialization_format: str = SERIALIZATION_FORMAT_CLOUDPICKLE,
    signature: ModelSignature | bool | None = None,
    input_example: Any = None,
    code_paths: Sequence[str | os.PathLike] | None = None,
    pip_requirements: str | os.PathLike | Sequence[str] | None = None,
    extra_pip_requirements: str | os.PathLike | Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    pyfunc_predict_fn: str = "predict",
    mlflow_model: Model | None = None,
) -> None:
    """Save a fitted estimator into the empty (or new) folder ``path``.

    Without ``signature`` one is inferred from ``input_example`` and the estimator's
    prediction on it. ``pyfunc_predict_fn`` is the method pyfunc's ``predict`` calls
    (``predict``, ``predict_proba``, …).
    """
    if serialization_format not in SUPPORTED_SERIALIZATION_FORMATS:
        raise InvalidParameterValue(
            f"Unknown serialization format '{serialization_format}': use one of "
            f"{list(SUPPORTED_SERIALIZATION_FORMATS)}.")
    folder = prepare_folder(path)
    try:
        _save(sk_model, folder, serialization_format, signature, input_example, code_paths,
              pip_requirements, extra_pip_requirements, metadata, pyfunc_predict_fn,
              mlflow_model)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _save(sk_model, folder, serialization_format, signature, input_example, code_paths,
          pip_requirements, extra_pip_requirements, metadata, pyfunc_predict_fn,
          mlflow_model) -> None:
    model = mlflow_model or Model()
    code = copy_code_paths(code_paths, folder)
    if input_example is not None:
        example, params = split_example(input_example)
        save_input_example(model, input_example, folder)
        if signature is None:
            signature = _infer_signature(sk_model, example, pyfunc_predict_fn, params)
    if signature is not False and signature is not None:
        model.signature = signature
    if metadata is not None:
        model.metadata = dict(metadata)
    file_name = _SKOPS_FILE if serialization_format == SERIALIZATION_FORMAT_SKOPS else _PICKLE_FILE
    _dump(sk_model, folder / file_name, serialization_format)
    env = {"conda": reqs.CONDA_ENV_FILE_NAME, "virtualenv": reqs.PYTHON_ENV_FILE_NAME}
    if hasattr(sk_model, pyfunc_predict_fn):
        add_to_model(model, _SKLEARN_LOADER, code=code, env=env, model_path=file_name,
                     predict_fn=pyfunc_predict_fn)
    else:
        log.warning("The model has no %s(); it is saved without the python_function flavor.",
                    pyfunc_predict_fn)
    model.add_flavor(FLAVOR_NAME, pickled_model=file_name, sklearn_version=_sklearn_version(),
                     serialization_format=serialization_format, code=code,
                     skops_trusted_types=None)
    base = ["scikit-learn"]
    if serialization_format == SERIALIZATION_FORMAT_CLOUDPICKLE:
        base.append("cloudpickle")
    elif serialization_format == SERIALIZATION_FORMAT_SKOPS:
        base.append("skops")
    requirements = reqs.resolve_requirements(
        reqs.infer_requirements([sk_model], code_paths or (), base=base)
        if pip_requirements is None else (), pip_requirements, extra_pip_requirements)
    reqs.write_environment(folder, requirements)
    model.model_size_bytes = folder_size(folder)
    model.save(folder / MLMODEL_FILE_NAME)


def _infer_signature(sk_model: Any, example: Any, predict_fn: str,
                     params: dict | None) -> ModelSignature | None:
    signature = infer_signature(example, params=params)
    predict = getattr(sk_model, predict_fn, None)
    if predict is not None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                signature.outputs = infer_schema(predict(example))
        except Exception as error:  # the estimator's own failure: keep the input schema
            log.warning("The output schema was not inferred: %s(input_example) failed: %s",
                        predict_fn, error)
    return signature


def log_model(
    sk_model: Any,
    name: str | None = None,
    serialization_format: str = SERIALIZATION_FORMAT_CLOUDPICKLE,
    registered_model_name: str | None = None,
    signature: ModelSignature | bool | None = None,
    input_example: Any = None,
    code_paths: Sequence[str | os.PathLike] | None = None,
    pip_requirements: str | os.PathLike | Sequence[str] | None = None,
    extra_pip_requirements: str | os.PathLike | Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    pyfunc_predict_fn: str = "predict",
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    model_type: str | None = None,
    step: int = 0,
    artifact_path: str | None = None,
    run_id: str | None = None,
) -> ModelInfo:
    """Log a fitted estimator to the active run as the logged model ``name`` (default
    ``"model"``), as MLflow 3 does; ``registered_model_name`` registers a new version."""

    def save(path: str, model: Model) -> None:
        save_model(sk_model, path, serialization_format, signature, input_example, code_paths,
                   pip_requirements, extra_pip_requirements, metadata, pyfunc_predict_fn,
                   mlflow_model=model)

    return log_model_folder(save, name or artifact_path, registered_model_name, params, tags,
                            model_type, step, run_id)


def load_model(model_uri: str | os.PathLike, dst_path: str | os.PathLike | None = None,
               client: Any = None) -> Any:
    """The fitted estimator of a model saved with the sklearn flavor (by labtrack or
    MLflow): ``runs:/…``, ``models:/…`` or a local folder."""
    folder = download_model(model_uri, dst_path, client)
    model = Model.load(folder)
    conf = model.flavors.get(FLAVOR_NAME)
    if conf is None:
        raise ModelLoadError(
            f"Model '{model_uri}' has no sklearn flavor (its flavors: {sorted(model.flavors)}).")
    return _load(os.path.join(folder, conf["pickled_model"]),
                 conf.get("serialization_format", SERIALIZATION_FORMAT_PICKLE),
                 conf.get("skops_trusted_types"))


class _SklearnModelWrapper:
    """pyfunc's view of an estimator: ``predict`` calls the configured method."""

    def __init__(self, sklearn_model: Any, predict_fn: str = "predict"):
        self.sklearn_model = sklearn_model
        self._predict = getattr(sklearn_model, predict_fn, None)
        if self._predict is None:
            raise ModelLoadError(f"The estimator has no {predict_fn}() method.")

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        return self._predict(data)

    def get_raw_model(self) -> Any:
        return self.sklearn_model


def _load_pyfunc(path: str) -> _SklearnModelWrapper:
    """Loader of sklearn folders for pyfunc (``loader_module: mlflow.sklearn``)."""
    folder = path if os.path.isdir(path) else os.path.dirname(path)
    model = Model.load(folder)
    conf = model.flavors.get(FLAVOR_NAME, {})
    pyfunc_conf = model.flavors.get(PYFUNC_FLAVOR, {})
    file = path if os.path.isfile(path) else os.path.join(
        folder, pyfunc_conf.get("model_path") or conf.get("pickled_model") or _PICKLE_FILE)
    estimator = _load(file, conf.get("serialization_format", SERIALIZATION_FORMAT_PICKLE),
                      conf.get("skops_trusted_types"))
    return _SklearnModelWrapper(estimator, pyfunc_conf.get("predict_fn") or "predict")


# -- autologging -----------------------------------------------------------------------------


class _Autolog:
    """Autologging settings and the patched ``fit`` methods (restored by ``disable=True``)."""

    def __init__(self):
        self.enabled = False
        self.settings: dict[str, Any] = {}
        self.patched: list[tuple[type, str, Any]] = []
        self.state = threading.local()
        self.lock = threading.Lock()


_AUTOLOG = _Autolog()


def autolog(
    log_input_examples: bool = False,
    log_model_signatures: bool = True,
    log_models: bool = True,
    log_datasets: bool = True,
    disable: bool = False,
    silent: bool = False,
    registered_model_name: str | None = None,
    extra_tags: Mapping[str, Any] | None = None,
    serialization_format: str = SERIALIZATION_FORMAT_CLOUDPICKLE,
) -> None:
    """Log params, training metrics, tags, the training data and the model on every ``fit``
    of a scikit-learn estimator (see the module docstring). ``disable=True`` turns it off.
    Logging problems never fail the fit: they are reported through the ``labtrack.models``
    logger (``silent=True`` quiets them)."""
    with _AUTOLOG.lock:
        if disable:
            for owner, attribute, original in _AUTOLOG.patched:
                setattr(owner, attribute, original)
            _AUTOLOG.patched.clear()
            _AUTOLOG.enabled = False
            return
        _AUTOLOG.settings = {
            "log_input_examples": log_input_examples,
            "log_model_signatures": log_model_signatures, "log_models": log_models,
            "log_datasets": log_datasets, "silent": silent,
            "registered_model_name": registered_model_name,
            "extra_tags": {k: str(v) for k, v in (extra_tags or {}).items()},
            "serialization_format": serialization_format,
        }
        _AUTOLOG.enabled = True
        if _AUTOLOG.patched:
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from sklearn.utils import all_estimators

            estimators = all_estimators()
        for _, estimator in estimators:
            original = estimator.__dict__.get("fit")
            if original is None or getattr(original, "__labtrack_autolog__", False):
                continue
            patched = _patched_fit(original)
            estimator.fit = patched
            _AUTOLOG.patched.append((estimator, "fit", original))


def _patched_fit(original: Any) -> Any:
    @functools.wraps(original)
    def fit(self, *args, **kwargs):
        state = _AUTOLOG.state
        if not _AUTOLOG.enabled or getattr(state, "depth", 0):
            return original(self, *args, **kwargs)
        state.depth = 1
        try:
            return _autologged_fit(original, self, args, kwargs)
        finally:
            state.depth = 0

    fit.__labtrack_autolog__ = True
    return fit


def _autologged_fit(original: Any, estimator: Any, args: tuple, kwargs: dict) -> Any:
    from labtrack.client import fluent

    started = fluent.active_run() is None
    run = fluent.start_run() if started else fluent.active_run()
    try:
        result = original(estimator, *args, **kwargs)
    except BaseException:
        if started:
            fluent.end_run("FAILED")
        raise
    try:
        _log_fit(estimator, run.info.run_id, args, kwargs)
    except Exception as error:  # logging must never fail the user's fit
        if not _AUTOLOG.settings.get("silent"):
            log.warning("labtrack autologging could not log the fit of %s: %s",
                        type(estimator).__name__, error)
    finally:
        if started:
            fluent.end_run()
    return result


def _fit_data(estimator: Any, args: tuple, kwargs: dict) -> tuple[Any, Any, Any]:
    import inspect

    try:
        bound = inspect.signature(type(estimator).fit).bind(estimator, *args, **kwargs)
        arguments = dict(bound.arguments)
    except TypeError:
        arguments = {}
    names = list(arguments)
    x = arguments.get("X", arguments.get(names[1]) if len(names) > 1 else None)
    y = arguments.get("y", arguments.get("Y"))
    fit_params = arguments.get("fit_params") or arguments.get("kwargs") or {}
    weight = arguments.get("sample_weight", fit_params.get("sample_weight")
                           if isinstance(fit_params, Mapping) else None)
    return x, y, weight


def _param_value(value: Any) -> str:
    from labtrack.services.validation import MAX_PARAM_VALUE_LENGTH

    text = str(value)
    return text if len(text) <= MAX_PARAM_VALUE_LENGTH else text[:MAX_PARAM_VALUE_LENGTH]


def _training_metrics(estimator: Any, x: Any, y: Any, weight: Any) -> dict[str, float]:
    from sklearn import metrics
    from sklearn.base import is_classifier, is_regressor

    found: dict[str, float] = {}

    def add(name, compute):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                value = compute()
            found[f"training_{name}"] = float(value)
        except Exception as error:  # a metric that does not apply to this estimator/data
            log.debug("training_%s not computed: %s", name, error)

    if y is None:
        return found
    if is_classifier(estimator):
        predicted = estimator.predict(x)
        add("precision_score", lambda: metrics.precision_score(
            y, predicted, average="weighted", sample_weight=weight))
        add("recall_score", lambda: metrics.recall_score(
            y, predicted, average="weighted", sample_weight=weight))
        add("f1_score", lambda: metrics.f1_score(
            y, predicted, average="weighted", sample_weight=weight))
        add("accuracy_score", lambda: metrics.accuracy_score(y, predicted,
                                                             sample_weight=weight))
        if hasattr(estimator, "predict_proba"):
            def probabilities():
                return estimator.predict_proba(x)

            add("log_loss", lambda: metrics.log_loss(y, probabilities(), sample_weight=weight,
                                                     labels=estimator.classes_))
            add("roc_auc", lambda: _roc_auc(metrics, estimator, y, probabilities(), weight))
    elif is_regressor(estimator):
        predicted = estimator.predict(x)
        add("mean_squared_error", lambda: metrics.mean_squared_error(
            y, predicted, sample_weight=weight))
        add("root_mean_squared_error", lambda: metrics.mean_squared_error(
            y, predicted, sample_weight=weight) ** 0.5)
        add("mean_absolute_error", lambda: metrics.mean_absolute_error(
            y, predicted, sample_weight=weight))
        add("r2_score", lambda: metrics.r2_score(y, predicted, sample_weight=weight))
    if hasattr(estimator, "score"):
        add("score", lambda: estimator.score(x, y, sample_weight=weight)
            if weight is not None else estimator.score(x, y))
    return found


def _roc_auc(metrics: Any, estimator: Any, y: Any, probabilities: Any, weight: Any) -> float:
    if len(estimator.classes_) == 2:
        return metrics.roc_auc_score(y, probabilities[:, 1], sample_weight=weight)
    return metrics.roc_auc_score(y, probabilities, multi_class="ovr", average="weighted",
                                 sample_weight=weight, labels=estimator.classes_)


def _dataset_input(x: Any, y: Any) -> Any:
    import numpy as np
    import pandas as pd

    from labtrack.entities import Dataset, DatasetInput

    features = x if isinstance(x, pd.DataFrame) else pd.DataFrame(np.asarray(x))
    digest = hashlib.sha256(pd.util.hash_pandas_object(features, index=False).values.tobytes())
    if y is not None:
        digest.update(np.asarray(y).tobytes())
    schema = {"mlflow_colspec": infer_schema(features).to_dict()}
    profile = {"num_rows": len(features), "num_elements": int(features.size)}
    dataset = Dataset(name="dataset", digest=digest.hexdigest()[:8], source_type="code",
                      source=json.dumps({"tags": {"mlflow.source.type": "LOCAL"}}),
                      schema=json.dumps(schema), profile=json.dumps(profile))
    return DatasetInput(dataset, {"mlflow.data.context": "train"})


def _log_fit(estimator: Any, run_id: str, args: tuple, kwargs: dict) -> None:
    from labtrack.client import fluent
    from labtrack.entities import Metric, Param, RunTag
    from labtrack.services.tracking import now_ms

    settings = _AUTOLOG.settings
    client = fluent._get_client()
    x, y, weight = _fit_data(estimator, args, kwargs)
    existing = client.get_run(run_id).data.params
    params = [Param(str(k), _param_value(v))
              for k, v in estimator.get_params(deep=True).items() if str(k) not in existing]
    for start in range(0, len(params), 100):
        client.log_batch(run_id, params=params[start:start + 100])
    timestamp = now_ms()
    metrics = [Metric(k, v, timestamp, 0)
               for k, v in _training_metrics(estimator, x, y, weight).items()]
    cls = type(estimator)
    tags = [RunTag("estimator_name", cls.__name__),
            RunTag("estimator_class", f"{cls.__module__}.{cls.__name__}")]
    tags += [RunTag(k, v) for k, v in settings["extra_tags"].items()]
    client.log_batch(run_id, metrics=metrics, tags=tags)
    if settings["log_datasets"] and x is not None:
        try:
            client.service.log_inputs(run_id, [_dataset_input(x, y)])
        except (ValueError, TypeError) as error:
            log.debug("The training data was not logged as a dataset: %s", error)
    if settings["log_models"]:
        example = _head(x) if x is not None else None
        signature: Any = False
        if settings["log_model_signatures"] and example is not None:
            signature = _infer_signature(estimator, example, "predict", None) or False
        log_model(estimator, "model", settings["serialization_format"],
                  settings["registered_model_name"], signature,
                  example if settings["log_input_examples"] else None, run_id=run_id)


def _head(x: Any, rows: int = 5) -> Any:
    import numpy as np
    import pandas as pd

    if isinstance(x, (pd.DataFrame, pd.Series)):
        return x.iloc[:rows]
    if isinstance(x, np.ndarray):
        return x[:rows]
    try:
        return np.asarray(x)[:rows]
    except (TypeError, ValueError):
        return None


__all__ = [
    "FLAVOR_NAME",
    "SERIALIZATION_FORMAT_CLOUDPICKLE",
    "SERIALIZATION_FORMAT_PICKLE",
    "SERIALIZATION_FORMAT_SKOPS",
    "autolog",
    "load_model",
    "log_model",
    "save_model",
]
