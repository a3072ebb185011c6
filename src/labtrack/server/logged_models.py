"""MLflow 3 logged-model endpoints, which ``mlflow.<flavor>.log_model`` and autologging use."""

from __future__ import annotations

from labtrack.entities import LoggedModelStatus
from labtrack.errors import InvalidParameterValue
from labtrack.server.request import ApiRequest
from labtrack.server.router import Router

router = Router()
PREFIX = "/api/2.0/mlflow/logged-models"
# Proto enum numbers, for clients that send the number instead of the name.
_STATUS_NUMBERS = {1: LoggedModelStatus.PENDING, 2: LoggedModelStatus.READY,
                   3: LoggedModelStatus.UPLOAD_FAILED}


@router.post(PREFIX)
def create_logged_model(request, context):
    """Create a logged model (PENDING) whose artifacts the client then uploads."""
    model = context.logged_models.create(
        request.string("experiment_id", required=True),
        name=request.string("name"),
        model_type=request.string("model_type"),
        source_run_id=request.string("source_run_id"),
        params=request.key_values("params"),
        tags=request.key_values("tags"),
    )
    return {"model": context.wire.logged_model(model)}


@router.get(PREFIX + "/{model_id}")
def get_logged_model(request, context):
    """Get a logged model."""
    return {"model": context.wire.logged_model(
        context.logged_models.get(request.string("model_id", required=True)))}


@router.patch(PREFIX + "/{model_id}")
def finalize_logged_model(request, context):
    """Finalize a logged model: LOGGED_MODEL_READY or LOGGED_MODEL_UPLOAD_FAILED."""
    status = request.args.get("status")
    if isinstance(status, int) and not isinstance(status, bool):
        if status not in _STATUS_NUMBERS:
            raise InvalidParameterValue(f"Invalid logged model status {status}.")
        status = _STATUS_NUMBERS[status]
    elif status is None:
        raise InvalidParameterValue("Missing value for required parameter 'status'.")
    model = context.logged_models.finalize(request.string("model_id", required=True), status)
    return {"model": context.wire.logged_model(model)}


@router.delete(PREFIX + "/{model_id}")
def delete_logged_model(request, context):
    """Delete a logged model."""
    context.logged_models.delete(request.string("model_id", required=True))
    return {}


@router.post(PREFIX + "/search")
def search_logged_models(request, context):
    """Search logged models of some experiments (attributes, params., tags.)."""
    order_by = []
    for item in request.objects("order_by"):
        fields = ApiRequest(item, request.user)
        direction = "ASC" if fields.boolean("ascending", default=True) else "DESC"
        order_by.append(f"{fields.string('field_name', required=True)} {direction}")
    if request.objects("datasets"):
        raise InvalidParameterValue("Filtering logged models by datasets is not supported.")
    page = context.logged_models.search(
        request.strings("experiment_ids", required=True),
        request.string("filter"),
        request.integer("max_results"),
        order_by,
        request.string("page_token"),
    )
    out = {"models": [context.wire.logged_model(m) for m in page]}
    if page.token:
        out["next_page_token"] = page.token
    return out


@router.patch(PREFIX + "/{model_id}/tags")
def set_logged_model_tags(request, context):
    """Set tags on a logged model."""
    context.logged_models.set_tags(request.string("model_id", required=True),
                                   request.key_values("tags"))
    return {}


@router.delete(PREFIX + "/{model_id}/tags/{tag_key}")
def delete_logged_model_tag(request, context):
    """Delete a tag of a logged model."""
    context.logged_models.delete_tag(request.string("model_id", required=True),
                                     request.string("tag_key", required=True))
    return {}


@router.post(PREFIX + "/{model_id}/params")
def log_logged_model_params(request, context):
    """Log params of a logged model (write-once)."""
    context.logged_models.log_params(request.string("model_id", required=True),
                                     request.key_values("params"))
    return {}


@router.get(PREFIX + "/{model_id}/artifacts/directories")
def list_logged_model_artifacts(request, context):
    """List the files of a logged model's artifact folder."""
    files = context.logged_models.list_artifacts(
        request.string("model_id", required=True), request.string("artifact_directory_path"))
    return {"files": [f.to_dict() for f in files]}
