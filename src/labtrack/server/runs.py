"""Run endpoints: lifecycle, logging, search, inputs and outputs (MLflow REST API 2.0)."""

from __future__ import annotations

import json
from functools import partial
from operator import itemgetter, methodcaller

from labtrack.entities import Dataset, DatasetInput, Metric, ModelOutput, Param, RunTag
from labtrack.errors import InvalidParameterValue
from labtrack.server.request import ApiRequest
from labtrack.server.router import Router
from labtrack.services.validation import MAX_RESULTS_SEARCH_RUNS, validate_max_results

router = Router()
PREFIX = "/api/2.0/mlflow/runs"


def _run_id(request) -> str:
    # run_uuid is MLflow's legacy name; either may be sent.
    run_id = request.string("run_id") or request.string("run_uuid")
    if not run_id:
        raise InvalidParameterValue("Missing value for required parameter 'run_id'.")
    return run_id


@router.post(f"{PREFIX}/create")
def create_run(request, context):
    """Create a run (RUNNING) in an experiment."""
    tags = request.key_values("tags")
    run = context.tracking.create_run(
        request.string("experiment_id"),
        user_id=request.string("user_id") or tags.get("mlflow.user") or request.user,
        start_time=request.integer("start_time"),
        tags=tags,
        run_name=request.string("run_name"),
    )
    return {"run": context.wire.run(run)}


@router.post(f"{PREFIX}/update")
def update_run(request, context):
    """Update a run's status, end time or name."""
    info = context.tracking.update_run(
        _run_id(request),
        status=request.string("status"),
        end_time=request.integer("end_time"),
        run_name=request.string("run_name"),
    )
    return {"run_info": context.wire.run_info(info)}


@router.post(f"{PREFIX}/delete")
def delete_run(request, context):
    """Delete a run (restorable)."""
    context.tracking.delete_run(_run_id(request))
    return {}


@router.post(f"{PREFIX}/restore")
def restore_run(request, context):
    """Restore a deleted run."""
    context.tracking.restore_run(_run_id(request))
    return {}


@router.get(f"{PREFIX}/get")
def get_run(request, context):
    """Get a run with its latest metrics, params, tags, inputs and outputs."""
    return {"run": context.wire.run(context.tracking.get_run(_run_id(request)))}


def _metric(request: ApiRequest, item: dict, path: str) -> Metric:
    for required in ("key", "value", "timestamp"):
        if item.get(required) in (None, ""):
            raise InvalidParameterValue(
                f"Missing value for required parameter '{path}{required}'."
            )
    sub = ApiRequest(item, request.user)
    return Metric(
        sub.string("key"),
        ApiRequest.as_number(f"{path}value", item["value"]),
        sub.integer("timestamp"),
        sub.integer("step", default=0),
    )


_keys, _values, _timestamps = itemgetter("key"), itemgetter("value"), itemgetter("timestamp")
_step_or_zero = methodcaller("get", "step", 0)
_new_metric = partial(tuple.__new__, Metric)  # Metric(*row) without the per-call overhead


def _metrics(request: ApiRequest) -> list[Metric]:
    """A batch's metrics, as ``_metric`` reads each of them.

    What clients send — string keys, float values, integer timestamps and steps — is read
    column by column at C speed; a batch with anything else (a missing field, a number
    written as text, a wrong type) is read item by item by ``_metric``, whose message names
    the first offending field exactly as before.
    """
    items = request.objects("metrics")
    try:
        keys = list(map(_keys, items))
        values = list(map(_values, items))
        timestamps = list(map(_timestamps, items))
    except KeyError:
        keys = None
    if keys is not None:
        steps = list(map(_step_or_zero, items))
        if (set(map(type, keys)) <= _STR and all(keys) and set(map(type, values)) <= _FLOAT
                and set(map(type, timestamps)) <= _INT and set(map(type, steps)) <= _INT):
            return list(map(_new_metric, zip(keys, values, timestamps, steps)))
    return [_metric(request, item, f"metrics[{i}].") for i, item in enumerate(items)]


# Exact types: bool is an int subclass but neither a timestamp nor a step.
_STR, _FLOAT, _INT = {str}, {float}, {int}


@router.post(f"{PREFIX}/log-metric")
def log_metric(request, context):
    """Log one metric point."""
    point = _metric(request, request.args, "")
    context.tracking.log_batch(_run_id(request), metrics=[point])
    return {}


@router.post(f"{PREFIX}/log-parameter")
def log_parameter(request, context):
    """Log a param (write-once)."""
    context.tracking.log_param(
        _run_id(request), request.string("key", required=True), request.string("value", default="")
    )
    return {}


@router.post(f"{PREFIX}/set-tag")
def set_tag(request, context):
    """Set a run tag."""
    context.tracking.set_tag(
        _run_id(request), request.string("key", required=True), request.string("value", default="")
    )
    return {}


@router.post(f"{PREFIX}/delete-tag")
def delete_tag(request, context):
    """Delete a run tag."""
    context.tracking.delete_tag(_run_id(request), request.string("key", required=True))
    return {}


@router.post(f"{PREFIX}/log-batch")
def log_batch(request, context):
    """Log up to 1000 metrics, 100 params and 100 tags atomically."""
    metrics = _metrics(request)
    params = []
    for i, item in enumerate(request.objects("params")):
        if not item.get("key"):
            raise InvalidParameterValue(f"Missing value for required parameter 'params[{i}].key'.")
        fields = ApiRequest(item, request.user)
        params.append(Param(fields.string("key"), fields.string("value", default="")))
    tags = [RunTag(k, v) for k, v in request.key_values("tags").items()]
    context.tracking.log_batch(_run_id(request), metrics=metrics, params=params, tags=tags)
    return {}


@router.post(f"{PREFIX}/search")
def search_runs(request, context):
    """Search runs with MLflow's filter grammar, ordering and paging."""
    max_results = validate_max_results(
        request.integer("max_results", default=1000), MAX_RESULTS_SEARCH_RUNS
    )
    page = context.tracking.search_runs(
        request.strings("experiment_ids"),
        request.string("filter"),
        request.string("run_view_type") or "ACTIVE_ONLY",
        max_results,
        request.strings("order_by"),
        request.string("page_token"),
    )
    out = {"runs": [context.wire.run(run) for run in page]}
    if page.token:
        out["next_page_token"] = page.token
    return out


@router.post(f"{PREFIX}/log-inputs")
def log_inputs(request, context):
    """Record the datasets and logged models a run used."""
    datasets = []
    for i, item in enumerate(request.objects("datasets")):
        dataset = item.get("dataset")
        if not isinstance(dataset, dict):
            raise InvalidParameterValue(f"Missing value for required parameter "
                                        f"'datasets[{i}].dataset'.")
        fields = ApiRequest(dataset, request.user)
        datasets.append(DatasetInput(
            Dataset(
                name=fields.string("name", required=True),
                digest=fields.string("digest", required=True),
                source_type=fields.string("source_type", default=""),
                source=fields.string("source", default=""),
                schema=fields.string("schema"),
                profile=fields.string("profile"),
            ),
            ApiRequest(item, request.user).key_values("tags"),
        ))
    model_ids = [ApiRequest(m, request.user).string("model_id", required=True)
                 for m in request.objects("models")]
    context.tracking.log_inputs(_run_id(request), datasets, model_ids)
    return {}


@router.post(f"{PREFIX}/outputs")
def log_outputs(request, context):
    """Record the logged models a run produced."""
    outputs = []
    for item in request.objects("models"):
        fields = ApiRequest(item, request.user)
        outputs.append(ModelOutput(fields.string("model_id", required=True),
                                   fields.integer("step", default=0)))
    context.tracking.log_outputs(_run_id(request), outputs)
    return {}


@router.post(f"{PREFIX}/log-model")
def log_model(request, context):
    """Legacy (MLflow 2) model logging: kept as the mlflow.log-model.history run tag."""
    model_json = request.string("model_json", required=True)
    try:
        model = json.loads(model_json)
    except ValueError:
        model = None
    if not isinstance(model, dict):  # "NaN" or "1" parse, but are not a model
        raise InvalidParameterValue("Malformed value for parameter 'model_json'.")
    missing = [k for k in ("artifact_path", "flavors", "utc_time_created", "run_id")
               if k not in model]
    if missing:
        raise InvalidParameterValue(f"Model json is missing mandatory fields: {missing}")
    # What MLflow keeps (Model.get_tags_dict): signatures and example metadata would soon
    # pass the tag's 8000-character limit.
    entry = {k: model[k] for k in ("run_id", "utc_time_created", "artifact_path", "model_uuid")
             if k in model}
    flavors = model["flavors"]
    entry["flavors"] = {
        name: {k: v for k, v in conf.items() if k != "config"} if isinstance(conf, dict) else conf
        for name, conf in flavors.items()
    } if isinstance(flavors, dict) else flavors
    run_id = _run_id(request)
    history = json.loads(context.tracking.get_run(run_id).data.tags.get(
        "mlflow.log-model.history", "[]"))
    history.append(entry)
    context.tracking.set_tag(run_id, "mlflow.log-model.history", json.dumps(history))
    return {}

