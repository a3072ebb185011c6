"""Model registry endpoints: MLflow's registry API, the Databricks registry's governance
endpoints (transition requests, comments, permissions, webhooks) under the same prefix, and
labtrack's additions (activities, comment and delivery listings)."""

from __future__ import annotations

import json

from labtrack.errors import InvalidParameterValue
from labtrack.server.request import ApiRequest
from labtrack.server.router import Router
from labtrack.services.validation import INT64_MAX, INT64_MIN

router = Router()
MLFLOW = "/api/2.0/mlflow"
LABTRACK = "/api/2.0/labtrack"
PERMISSIONS = "/api/2.0/permissions/registered-models"


def _paged(key: str, items: list, token: str | None) -> dict:
    out: dict = {key: items}
    if token:
        out["next_page_token"] = token
    return out


def _name(request) -> str:
    return request.string("name", required=True)


def _version(request, required: bool = True) -> str | None:
    """A version number, as MLflow reads it (a JSON number or a decimal string)."""
    value = request.args.get("version")
    if isinstance(value, list):
        value = value[-1] if value else None
    if value in (None, ""):
        if not required:
            return None
        raise InvalidParameterValue("Missing value for required parameter 'version'.")
    try:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValueError
        number = int(value)
    except ValueError:
        raise InvalidParameterValue(
            f"Parameter 'version' must be an integer, got '{value}'.") from None
    if not INT64_MIN <= number <= INT64_MAX:
        raise InvalidParameterValue(
            f"Parameter 'version' must be a 64-bit integer, got '{value}'.")
    return str(number)


# -- registered models ---------------------------------------------------------------------


@router.post(f"{MLFLOW}/registered-models/create")
def create_registered_model(request, context):
    """Create a registered model (the caller becomes its manager)."""
    model = context.registry.create_registered_model(
        _name(request), request.key_values("tags"), request.string("description"),
        user=request.user)
    return {"registered_model": context.wire.registered_model(model)}


@router.get(f"{MLFLOW}/registered-models/get")
def get_registered_model(request, context):
    """Get a registered model with its latest version per stage."""
    model = context.registry.get_registered_model(_name(request), user=request.user)
    return {"registered_model": context.wire.registered_model(model)}


@router.post(f"{MLFLOW}/registered-models/rename")
def rename_registered_model(request, context):
    """Rename a registered model."""
    model = context.registry.rename_registered_model(
        _name(request), request.string("new_name", required=True), user=request.user)
    return {"registered_model": context.wire.registered_model(model)}


@router.patch(f"{MLFLOW}/registered-models/update")
def update_registered_model(request, context):
    """Update a registered model's description."""
    model = context.registry.update_registered_model(
        _name(request), request.string("description", default=""), user=request.user)
    return {"registered_model": context.wire.registered_model(model)}


@router.delete(f"{MLFLOW}/registered-models/delete")
def delete_registered_model(request, context):
    """Delete a registered model with its versions (its audit trail stays)."""
    context.registry.delete_registered_model(_name(request), user=request.user)
    return {}


@router.get(f"{MLFLOW}/registered-models/search")
def search_registered_models(request, context):
    """Search registered models (name, tags; order by name or timestamps)."""
    page = context.registry.search_registered_models(
        request.string("filter"), request.integer("max_results", default=100),
        request.strings("order_by"), request.string("page_token"), user=request.user)
    return _paged("registered_models", [context.wire.registered_model(m) for m in page],
                  page.token)


def _latest_versions(request, context):
    versions = context.registry.get_latest_versions(
        _name(request), request.strings("stages"), user=request.user)
    return {"model_versions": [context.wire.model_version(v) for v in versions]}


@router.get(f"{MLFLOW}/registered-models/get-latest-versions")
def get_latest_versions_get(request, context):
    """The newest version in each stage (query-string form)."""
    return _latest_versions(request, context)


@router.post(f"{MLFLOW}/registered-models/get-latest-versions")
def get_latest_versions(request, context):
    """The newest version in each stage."""
    return _latest_versions(request, context)


@router.post(f"{MLFLOW}/registered-models/set-tag")
def set_registered_model_tag(request, context):
    """Set a tag on a registered model."""
    context.registry.set_registered_model_tag(
        _name(request), request.string("key", required=True),
        request.string("value", default=""), user=request.user)
    return {}


@router.delete(f"{MLFLOW}/registered-models/delete-tag")
def delete_registered_model_tag(request, context):
    """Delete a tag of a registered model."""
    context.registry.delete_registered_model_tag(
        _name(request), request.string("key", required=True), user=request.user)
    return {}


@router.post(f"{MLFLOW}/registered-models/alias")
def set_alias(request, context):
    """Point an alias (e.g. champion) at a version."""
    context.registry.set_alias(_name(request), request.string("alias", required=True),
                               _version(request), user=request.user)
    return {}


@router.delete(f"{MLFLOW}/registered-models/alias")
def delete_alias(request, context):
    """Remove an alias."""
    context.registry.delete_alias(_name(request), request.string("alias", required=True),
                                  user=request.user)
    return {}


@router.get(f"{MLFLOW}/registered-models/alias")
def get_model_version_by_alias(request, context):
    """The version an alias points at."""
    version = context.registry.get_model_version_by_alias(
        _name(request), request.string("alias", required=True), user=request.user)
    return {"model_version": context.wire.model_version(version)}


@router.get(f"{MLFLOW}/databricks/registered-models/get")
def get_registered_model_with_permission(request, context):
    """A registered model with its id and the caller's permission level."""
    name = _name(request)
    model = context.registry.get_registered_model(name, user=request.user)
    level = context.registry.permission_level(name, request.user)
    return {"registered_model_databricks": {
        **context.wire.registered_model(model),
        "permission_level": None if level is None else str(level)}}


# -- model versions ------------------------------------------------------------------------


@router.post(f"{MLFLOW}/model-versions/create")
def create_model_version(request, context):
    """Register a new version of a model from a run's artifacts or another source."""
    version = context.registry.create_model_version(
        _name(request), context.wire.stored_source(request.string("source", required=True)),
        run_id=request.string("run_id"), tags=request.key_values("tags"),
        run_link=request.string("run_link"), description=request.string("description"),
        model_id=request.string("model_id"), user=request.user)
    return {"model_version": context.wire.model_version(version)}


@router.get(f"{MLFLOW}/model-versions/get")
def get_model_version(request, context):
    """Get a model version."""
    version = context.registry.get_model_version(_name(request), _version(request),
                                                 user=request.user)
    return {"model_version": context.wire.model_version(version)}


@router.patch(f"{MLFLOW}/model-versions/update")
def update_model_version(request, context):
    """Update a version's description."""
    version = context.registry.update_model_version(
        _name(request), _version(request), request.string("description", default=""),
        user=request.user)
    return {"model_version": context.wire.model_version(version)}


@router.delete(f"{MLFLOW}/model-versions/delete")
def delete_model_version(request, context):
    """Delete a model version (its number is never reused)."""
    context.registry.delete_model_version(_name(request), _version(request), user=request.user)
    return {}


@router.get(f"{MLFLOW}/model-versions/search")
def search_model_versions(request, context):
    """Search model versions (name, run_id, source_path, version_number, tags)."""
    page = context.registry.search_model_versions(
        context.wire.stored_version_filter(request.string("filter")),
        request.integer("max_results", default=10000),
        request.strings("order_by"), request.string("page_token"), user=request.user)
    return _paged("model_versions", [context.wire.model_version(v) for v in page], page.token)


@router.post(f"{MLFLOW}/model-versions/transition-stage")
def transition_model_version_stage(request, context):
    """Move a version to a stage directly (needs the stage's manage permission)."""
    version = context.registry.transition_stage(
        _name(request), _version(request), request.string("stage", required=True),
        request.boolean("archive_existing_versions"), user=request.user)
    return {"model_version": context.wire.model_version(version)}


@router.post(f"{MLFLOW}/databricks/model-versions/transition-stage")
def transition_model_version_stage_with_comment(request, context):
    """Move a version to a stage directly, with a comment for the audit trail."""
    version = context.registry.transition_stage(
        _name(request), _version(request), request.string("stage", required=True),
        request.boolean("archive_existing_versions"), request.string("comment"),
        user=request.user)
    return {"model_version_databricks": context.wire.model_version(version)}


@router.get(f"{MLFLOW}/model-versions/get-download-uri")
def get_model_version_download_uri(request, context):
    """Where a version's files are."""
    source = context.registry.get_model_version_download_uri(
        _name(request), _version(request), user=request.user)
    return {"artifact_uri": context.wire.public_uri(source)}


@router.post(f"{MLFLOW}/model-versions/set-tag")
def set_model_version_tag(request, context):
    """Set a tag on a model version."""
    context.registry.set_model_version_tag(
        _name(request), _version(request), request.string("key", required=True),
        request.string("value", default=""), user=request.user)
    return {}


@router.delete(f"{MLFLOW}/model-versions/delete-tag")
def delete_model_version_tag(request, context):
    """Delete a tag of a model version."""
    context.registry.delete_model_version_tag(
        _name(request), _version(request), request.string("key", required=True),
        user=request.user)
    return {}


# -- transition requests -------------------------------------------------------------------


@router.post(f"{MLFLOW}/transition-requests/create")
def create_transition_request(request, context):
    """Ask for a version to be moved to a stage; someone with the permission approves."""
    created = context.registry.create_transition_request(
        _name(request), _version(request), request.string("stage", required=True),
        request.string("comment"), user=request.user)
    return {"request": created.to_dict()}


@router.post(f"{MLFLOW}/transition-requests/approve")
def approve_transition_request(request, context):
    """Approve an open request: the transition happens in the same step."""
    activity = context.registry.approve_transition_request(
        _name(request), _version(request), request.string("stage", required=True),
        request.boolean("archive_existing_versions"), request.string("comment"),
        request.string("request_id"), user=request.user)
    return {"activity": activity.to_dict()}


@router.post(f"{MLFLOW}/transition-requests/reject")
def reject_transition_request(request, context):
    """Reject an open request."""
    activity = context.registry.reject_transition_request(
        _name(request), _version(request), request.string("stage", required=True),
        request.string("comment"), request.string("request_id"), user=request.user)
    return {"activity": activity.to_dict()}


@router.delete(f"{MLFLOW}/transition-requests/delete")
def cancel_transition_request(request, context):
    """Cancel an open request (its creator, or a manager of the model)."""
    activity = context.registry.cancel_transition_request(
        _name(request), _version(request), request.string("stage", required=True),
        request.string("creator"), request.string("comment"), request.string("request_id"),
        user=request.user)
    return {"activity": activity.to_dict()}


@router.get(f"{MLFLOW}/transition-requests/list")
def list_transition_requests(request, context):
    """Open requests of a version, of a model, or (without a name) of every model."""
    requests = context.registry.list_transition_requests(
        request.string("name"), _version(request, required=False), user=request.user)
    return {"requests": [r.to_dict() for r in requests]}


# -- comments and the audit trail ----------------------------------------------------------


@router.post(f"{MLFLOW}/comments/create")
def create_comment(request, context):
    """Comment on a model version."""
    comment = context.registry.create_comment(
        _name(request), _version(request), request.string("comment", required=True),
        user=request.user)
    return {"comment": comment.to_dict()}


@router.patch(f"{MLFLOW}/comments/update")
def update_comment(request, context):
    """Edit one's own comment."""
    comment = context.registry.update_comment(
        request.string("id", required=True), request.string("comment", required=True),
        user=request.user)
    return {"comment": comment.to_dict()}


@router.delete(f"{MLFLOW}/comments/delete")
def delete_comment(request, context):
    """Delete a comment (its author, or a manager of the model)."""
    context.registry.delete_comment(request.string("id", required=True), user=request.user)
    return {}


@router.get(f"{LABTRACK}/comments/list")
def list_comments(request, context):
    """The comments of a model version, oldest first."""
    comments = context.registry.list_comments(_name(request), _version(request),
                                              user=request.user)
    return {"comments": [c.to_dict() for c in comments]}


@router.get(f"{LABTRACK}/activities/list")
def list_activities(request, context):
    """The audit trail of a model or one of its versions, newest first, paged."""
    page = context.registry.list_activities(
        _name(request), _version(request, required=False),
        request.integer("max_results", default=100),
        request.string("page_token"), user=request.user)
    return _paged("activities", [a.to_dict() for a in page], page.token)


# -- permissions ---------------------------------------------------------------------------


def _access_control_list(request) -> list[tuple[str, str]]:
    entries = []
    for item in request.objects("access_control_list"):
        fields = ApiRequest(item, request.user)
        entries.append((fields.string("user_name", required=True),
                        fields.string("permission_level", required=True)))
    return entries


def _permissions_response(context, model_id: str, name: str, user: str) -> dict:
    return {
        "object_id": f"/registered-models/{model_id}",
        "object_type": "registered-model",
        "access_control_list": [p.to_dict() for p in context.registry.get_permissions(
            name, user=user)],
    }


@router.get(PERMISSIONS + "/{registered_model_id}")
def get_permissions(request, context):
    """The access list of a registered model (by id)."""
    model_id = request.string("registered_model_id", required=True)
    name = context.registry.model_name_for_id(model_id)
    return _permissions_response(context, model_id, name, request.user)


@router.route("PUT", PERMISSIONS + "/{registered_model_id}")
def set_permissions(request, context):
    """Replace the access list of a registered model."""
    model_id = request.string("registered_model_id", required=True)
    name = context.registry.model_name_for_id(model_id)
    context.registry.set_permissions(name, _access_control_list(request), replace_all=True,
                                     user=request.user)
    return _permissions_response(context, model_id, name, request.user)


@router.patch(PERMISSIONS + "/{registered_model_id}")
def update_permissions(request, context):
    """Grant or change permissions on a registered model."""
    model_id = request.string("registered_model_id", required=True)
    name = context.registry.model_name_for_id(model_id)
    context.registry.set_permissions(name, _access_control_list(request), user=request.user)
    return _permissions_response(context, model_id, name, request.user)


@router.get(PERMISSIONS + "/{registered_model_id}/permissionLevels")
def get_permission_levels(request, context):
    """The permission levels and what they allow."""
    context.registry.model_name_for_id(request.string("registered_model_id", required=True))
    return {"permission_levels": [
        {"permission_level": "CAN_READ", "description": "Read the model and comment."},
        {"permission_level": "CAN_EDIT",
         "description": "Edit descriptions and tags, create versions, request transitions."},
        {"permission_level": "CAN_MANAGE_STAGING_VERSIONS",
         "description": "Also move versions to and from Staging and approve such requests."},
        {"permission_level": "CAN_MANAGE_PRODUCTION_VERSIONS",
         "description": "Also move versions to and from Production and approve such "
                        "requests."},
        {"permission_level": "CAN_MANAGE",
         "description": "Also rename and delete, grant permissions, manage webhooks."},
    ]}


# -- webhooks ------------------------------------------------------------------------------


def _url_spec(request, required: bool) -> ApiRequest:
    """The ``http_url_spec`` object's fields (empty when optional and absent)."""
    value = request.args.get("http_url_spec")
    if value is None and required:
        raise InvalidParameterValue("Missing value for required parameter 'http_url_spec'.")
    if value is not None and not isinstance(value, dict):
        raise InvalidParameterValue(
            f"Invalid value {json.dumps(value)[:200]} for parameter 'http_url_spec' supplied: "
            "expected an object.")
    return ApiRequest(value or {}, request.user)


@router.post(f"{MLFLOW}/registry-webhooks/create")
def create_webhook(request, context):
    """Create a webhook for a model (or, for admins, the whole registry)."""
    spec = _url_spec(request, required=True)
    webhook = context.registry.create_webhook(
        request.strings("events", required=True), spec.string("url", required=True),
        model_name=request.string("model_name"), secret=spec.string("secret"),
        status=request.string("status") or "ACTIVE",
        description=request.string("description"),
        enable_ssl_verification=spec.boolean("enable_ssl_verification", default=True),
        user=request.user)
    return {"webhook": webhook.to_dict()}


@router.get(f"{MLFLOW}/registry-webhooks/list")
def list_webhooks(request, context):
    """Webhooks of a model (or the registry-wide ones without model_name)."""
    webhooks = context.registry.list_webhooks(request.string("model_name"), user=request.user)
    events = set(request.strings("events"))
    return {"webhooks": [w.to_dict() for w in webhooks
                         if not events or events & {str(e) for e in w.events}]}


@router.patch(f"{MLFLOW}/registry-webhooks/update")
def update_webhook(request, context):
    """Change a webhook's events, URL, secret, status or description."""
    spec = _url_spec(request, required=False)
    webhook = context.registry.update_webhook(
        request.string("id", required=True), user=request.user,
        events=request.strings("events") or None, url=spec.string("url"),
        secret=spec.string("secret"), status=request.string("status"),
        description=request.string("description"),
        enable_ssl_verification=(spec.boolean("enable_ssl_verification")
                                 if "enable_ssl_verification" in spec.args else None))
    return {"webhook": webhook.to_dict()}


@router.delete(f"{MLFLOW}/registry-webhooks/delete")
def delete_webhook(request, context):
    """Delete a webhook."""
    context.registry.delete_webhook(request.string("id", required=True), user=request.user)
    return {}


@router.post(f"{MLFLOW}/registry-webhooks/test")
def test_webhook(request, context):
    """Send a test delivery now and report the receiver's answer."""
    status, body = context.registry.test_webhook(
        request.string("id", required=True), request.string("event"), user=request.user)
    return {"webhook": {"status_code": status, "body": body}}


@router.get(f"{LABTRACK}/registry-webhooks/deliveries")
def list_deliveries(request, context):
    """Recent deliveries of a webhook with their status, attempts and last error."""
    deliveries = context.registry.list_deliveries(
        request.string("id", required=True), request.integer("max_results", default=50),
        user=request.user)
    return {"deliveries": [d.to_dict() for d in deliveries]}
