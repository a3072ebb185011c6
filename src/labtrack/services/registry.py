"""``RegistryService``: the model registry and its governance.

Registered models and versions with MLflow's rules (stages, aliases, tags, search), plus what
open-source MLflow lacks: transition requests that someone else approves, comments, an
immutable audit trail, per-model permissions and webhooks. Every method takes the calling
``user``; every write is checked against that user's permission on the model
(``labtrack.services.permissions``) and recorded as an activity in the same transaction as the
change itself. Webhook events are queued after the change is committed.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from urllib.parse import urlparse

from labtrack.entities import (
    Activity,
    ActivityAction,
    ActivityType,
    Comment,
    ModelPermission,
    ModelStage,
    ModelVersion,
    PagedList,
    PermissionLevel,
    RegisteredModel,
    RequestStatus,
    TransitionRequest,
    Webhook,
    WebhookDelivery,
    WebhookEvent,
    WebhookStatus,
)
from labtrack.errors import (
    InvalidParameterValue,
    LabtrackError,
    ResourceDoesNotExist,
)
from labtrack.services import validation
from labtrack.services.permissions import (
    EDIT,
    MANAGE,
    MANAGE_STAGING,
    READ,
    PermissionDenied,
    RegistrySettings,
    require,
    transition_level,
)
from labtrack.services.search import (
    MODEL_VERSION_ATTRIBUTES,
    REGISTERED_MODEL_ATTRIBUTES,
    make_page_token,
    parse_filter,
    parse_order_by,
    parse_page_token,
)
from labtrack.services.tracking import TrackingService, now_ms
from labtrack.services.webhook_delivery import WebhookDispatcher
from labtrack.store.artifacts import (
    artifact_root_uri,
    is_object_store_uri,
    safe_relative_path,
    uri_inside,
    uri_to_local_path,
)
from labtrack.store.registry import ActivityRecord, RequestNotOpen

MAX_DESCRIPTION_LENGTH = 65535
MAX_REGISTRY_TAG_VALUE_LENGTH = 100_000
MAX_COMMENT_LENGTH = 65535
MAX_ALIAS_LENGTH = 255
_ALIAS_PATTERN = re.compile(r"^[\w\-]*$")
_RESERVED_ALIAS = re.compile(r"^(latest|v\d+)$", re.IGNORECASE)
MAX_RESULTS_REGISTERED_MODELS = 1000
MAX_RESULTS_MODEL_VERSIONS = 200_000
MAX_RESULTS_ACTIVITIES = 1000


class RequestConflict(LabtrackError):
    """The request was approved, rejected or cancelled by someone else first."""

    error_code = "RESOURCE_CONFLICT"


def _quoted(text: str) -> str:
    """A string for a single-quoted filter literal."""
    return text.replace("'", "''")


def _validate_model_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidParameterValue("Missing value for required parameter 'name'.")
    if "/" in name or ":" in name:
        raise InvalidParameterValue(
            f"Invalid model name '{name}': names may not contain '/' or ':'."
        )
    if len(name) > 256:
        raise InvalidParameterValue(
            f"Model name '{name[:40]}…' exceeds the maximum length of 256 characters."
        )
    return name


def _check_text(what: str, text: str | None, limit: int) -> str:
    text = text or ""
    if not isinstance(text, str):
        raise InvalidParameterValue(f"Invalid {what}: expected a string.")
    if len(text) > limit:
        raise InvalidParameterValue(
            f"{what.capitalize()} exceeds the maximum length of {limit} characters (it has "
            f"{len(text)})."
        )
    return text


def _registry_tag(key: object, value: object) -> tuple[str, str]:
    key = validation.validate_key("Tag", key)
    value = validation.validate_string_value("Value", key, value)
    return key, _check_text(f"value of tag '{key}'", value, MAX_REGISTRY_TAG_VALUE_LENGTH)


# The stage-specific events that accompany the generic ones (there are none for "None").
_TRANSITIONED_TO = {
    ModelStage.STAGING: WebhookEvent.MODEL_VERSION_TRANSITIONED_TO_STAGING,
    ModelStage.PRODUCTION: WebhookEvent.MODEL_VERSION_TRANSITIONED_TO_PRODUCTION,
    ModelStage.ARCHIVED: WebhookEvent.MODEL_VERSION_TRANSITIONED_TO_ARCHIVED,
}
_REQUESTED_TO = {
    ModelStage.STAGING: WebhookEvent.TRANSITION_REQUEST_TO_STAGING_CREATED,
    ModelStage.PRODUCTION: WebhookEvent.TRANSITION_REQUEST_TO_PRODUCTION_CREATED,
    ModelStage.ARCHIVED: WebhookEvent.TRANSITION_REQUEST_TO_ARCHIVED_CREATED,
}


class RegistryService:
    def __init__(self, tracking: TrackingService, settings: RegistrySettings | None = None,
                 dispatcher: WebhookDispatcher | None = None,
                 present_uri: Callable[[str], str] | None = None):
        """``present_uri`` turns a stored location into what callers see (the REST server
        shows ``mlflow-artifacts:/…`` instead of its own file paths); webhook payloads use
        it too."""
        self.tracking = tracking
        self.store = tracking.store
        self.settings = settings or RegistrySettings()
        self.dispatcher = dispatcher
        self.present_uri = present_uri or (lambda uri: uri)

    # -- permissions -------------------------------------------------------------------------

    def permission_level(self, name: str, user: str) -> PermissionLevel | None:
        """The user's effective level on a model (admins and creators manage)."""
        if user in self.settings.admins:
            return MANAGE
        model = self.store.get_registered_model(name)
        if model is not None and model.user_id == user:
            return MANAGE
        for entry in self.store.get_permissions(name):
            if entry.user_name == user:
                return entry.permission_level
        return self.settings.default_permission

    def _model(self, name: str, user: str, needed: PermissionLevel = READ,
               action: str = "reading it") -> RegisteredModel:
        model = self.store.get_registered_model(_validate_model_name(name))
        if model is None:
            raise ResourceDoesNotExist(f"Registered Model with name={name} not found")
        require(self.permission_level(name, user), needed, user, action, name)
        return model

    def _version(self, name: str, version: object, user: str, needed: PermissionLevel = READ,
                 action: str = "reading it") -> ModelVersion:
        self._model(name, user, needed, action)
        found = self.store.get_model_version(name, str(version))
        if found is None:
            raise ResourceDoesNotExist(
                f"Model Version (name={name}, version={version}) not found")
        return found

    def _emit(self, event: WebhookEvent | None, model_name: str, **payload) -> None:
        if event is not None and self.dispatcher is not None:
            self.dispatcher.emit(event, model_name, payload)

    # -- registered models -------------------------------------------------------------------

    def create_registered_model(self, name: str, tags: Mapping[str, str] | None = None,
                                description: str | None = None, *, user: str) -> RegisteredModel:
        name = _validate_model_name(name)
        checked_tags = dict(_registry_tag(k, v) for k, v in (tags or {}).items())
        description = _check_text("description", description, MAX_DESCRIPTION_LENGTH)
        model = self.store.create_registered_model(
            name, user, description, checked_tags, now_ms(),
            ActivityRecord(ActivityType.REGISTERED_MODEL_CREATED, user))
        self._emit(WebhookEvent.REGISTERED_MODEL_CREATED, name, user_id=user)
        return model

    def get_registered_model(self, name: str, *, user: str) -> RegisteredModel:
        return self._model(name, user)

    def rename_registered_model(self, name: str, new_name: str, *,
                                user: str) -> RegisteredModel:
        self._model(name, user, MANAGE, "renaming it")
        new_name = _validate_model_name(new_name)
        self.store.rename_registered_model(name, new_name, now_ms(), ActivityRecord(
            ActivityType.MODEL_RENAMED, user, system_comment=f"Renamed from '{name}'."))
        return self._model(new_name, user)

    def update_registered_model(self, name: str, description: str | None, *,
                                user: str) -> RegisteredModel:
        self._model(name, user, EDIT, "editing its description")
        description = _check_text("description", description, MAX_DESCRIPTION_LENGTH)
        self.store.update_registered_model(name, description, now_ms(), ActivityRecord(
            ActivityType.DESCRIPTION_UPDATED, user, comment=description))
        return self._model(name, user)

    def delete_registered_model(self, name: str, *, user: str) -> None:
        self._model(name, user, MANAGE, "deleting it")
        self.store.delete_registered_model(name)

    def search_registered_models(self, filter_string: str | None = None,
                                 max_results: int = 100, order_by: Sequence[str] | None = None,
                                 page_token: str | None = None, *, user: str) -> PagedList:
        limit = validation.validate_max_results(max_results, MAX_RESULTS_REGISTERED_MODELS)
        comparisons = parse_filter(filter_string, REGISTERED_MODEL_ATTRIBUTES)
        terms = parse_order_by(order_by, REGISTERED_MODEL_ATTRIBUTES)
        offset = parse_page_token(page_token)
        found = self.store.search_registered_models(comparisons, terms, limit + 1, offset)
        token = make_page_token(offset + limit) if len(found) > limit else None
        visible = [m for m in found[:limit] if self.permission_level(m.name, user) is not None]
        return PagedList(visible, token)

    def set_registered_model_tag(self, name: str, key: str, value: str, *, user: str) -> None:
        self._model(name, user, EDIT, "setting a tag")
        key, value = _registry_tag(key, value)
        self.store.set_registered_model_tag(name, key, value, now_ms())

    def delete_registered_model_tag(self, name: str, key: str, *, user: str) -> None:
        # Deleting an absent tag is a no-op, as in MLflow.
        self._model(name, user, EDIT, "deleting a tag")
        self.store.delete_registered_model_tag(name, validation.validate_key("Tag", key))

    # -- versions ----------------------------------------------------------------------------

    def _check_source(self, source: object) -> str:
        if not isinstance(source, str) or not source:
            raise InvalidParameterValue("Missing value for required parameter 'source'.")
        if not self.settings.confine_sources:
            return source
        parsed = urlparse(source)
        if parsed.scheme in ("runs", "models", "mlflow-artifacts"):
            if "?" in source or "#" in source:
                raise InvalidParameterValue(
                    f"Invalid model version source '{source}': '?' and '#' are not allowed.")
            safe_relative_path(parsed.path.lstrip("/"))
            return source
        if not is_object_store_uri(source):
            uri_to_local_path(source)  # refuses schemes no repository can open
        if not uri_inside(source, artifact_root_uri(self.store.artifact_root)):
            raise InvalidParameterValue(
                f"Invalid model version source '{source}': it must lie inside the server's "
                "artifact store (runs:/, models:/ or mlflow-artifacts:/ URIs)."
            )
        return source

    def create_model_version(self, name: str, source: str, run_id: str | None = None,
                             tags: Mapping[str, str] | None = None,
                             run_link: str | None = None, description: str | None = None,
                             model_id: str | None = None, *, user: str) -> ModelVersion:
        self._model(name, user, EDIT, "creating a version")
        source = self._check_source(source)
        if model_id:
            logged = self.tracking.get_logged_model(model_id)
            run_id = run_id or logged.source_run_id  # MLflow fills it from the model
        if run_id:
            self.tracking.get_run_info(run_id)
        checked_tags = dict(_registry_tag(k, v) for k, v in (tags or {}).items())
        description = _check_text("description", description, MAX_DESCRIPTION_LENGTH)
        version = self.store.create_model_version(
            name, source, run_id or None, run_link or None, description, user, checked_tags,
            model_id or None, now_ms())
        self._emit(WebhookEvent.MODEL_VERSION_CREATED, name, version=version.version,
                   user_id=user, source=self.present_uri(source), run_id=run_id)
        return version

    def get_model_version(self, name: str, version: str, *, user: str) -> ModelVersion:
        return self._version(name, version, user)

    def update_model_version(self, name: str, version: str, description: str | None, *,
                             user: str) -> ModelVersion:
        self._version(name, version, user, EDIT, "editing a version's description")
        description = _check_text("description", description, MAX_DESCRIPTION_LENGTH)
        self.store.update_model_version(name, str(version), description, now_ms(),
                                        ActivityRecord(ActivityType.DESCRIPTION_UPDATED, user,
                                                       str(version), comment=description))
        return self._version(name, version, user)

    def delete_model_version(self, name: str, version: str, *, user: str) -> None:
        found = self._version(name, version, user, MANAGE, "deleting a version")
        self.store.delete_model_version(name, found.version, now_ms(), ActivityRecord(
            ActivityType.MODEL_VERSION_DELETED, user, found.version,
            from_stage=found.current_stage))

    def search_model_versions(self, filter_string: str | None = None,
                              max_results: int = 10000, order_by: Sequence[str] | None = None,
                              page_token: str | None = None, *, user: str) -> PagedList:
        limit = validation.validate_max_results(max_results, MAX_RESULTS_MODEL_VERSIONS)
        comparisons = parse_filter(filter_string, MODEL_VERSION_ATTRIBUTES)
        terms = parse_order_by(order_by, MODEL_VERSION_ATTRIBUTES)
        offset = parse_page_token(page_token)
        found = self.store.search_model_versions(comparisons, terms, limit + 1, offset)
        token = make_page_token(offset + limit) if len(found) > limit else None
        visible = [v for v in found[:limit] if self.permission_level(v.name, user) is not None]
        return PagedList(visible, token)

    def set_model_version_tag(self, name: str, version: str, key: str, value: str, *,
                              user: str) -> None:
        found = self._version(name, version, user, EDIT, "setting a version tag")
        key, value = _registry_tag(key, value)
        self.store.set_model_version_tag(name, found.version, key, value, now_ms())
        self._emit(WebhookEvent.MODEL_VERSION_TAG_SET, name, version=found.version, key=key,
                   value=value, user_id=user)

    def delete_model_version_tag(self, name: str, version: str, key: str, *,
                                 user: str) -> None:
        # Deleting an absent tag is a no-op, as in MLflow.
        found = self._version(name, version, user, EDIT, "deleting a version tag")
        self.store.delete_model_version_tag(name, found.version,
                                            validation.validate_key("Tag", key))

    def get_latest_versions(self, name: str, stages: Sequence[str] | None = None, *,
                            user: str) -> list[ModelVersion]:
        self._model(name, user)
        return self.store.latest_versions(name, [ModelStage.parse(s) for s in stages or ()])

    def get_model_version_download_uri(self, name: str, version: str, *, user: str,
                                       _depth: int = 0) -> str:
        """Where the version's files are: its source, resolved when the source is itself a
        model URI — a logged model (``models:/m-…``) or another registered version
        (``models:/name/3``, ``models:/name@alias``, ``models:/name/Production``)."""
        found = self._version(name, version, user)
        source = found.source
        if not source.startswith("models:/"):
            return source
        if found.model_id:
            return self.tracking.get_logged_model(found.model_id).artifact_location
        target = source[len("models:/"):].strip("/")
        if target.startswith("m-"):
            return self.tracking.get_logged_model(target).artifact_location
        if _depth >= 5:
            raise InvalidParameterValue(f"Model version source '{source}' refers in a loop.")
        other_name, other_version = self._resolve_model_reference(target, user)
        return self.get_model_version_download_uri(other_name, other_version, user=user,
                                                   _depth=_depth + 1)

    def _resolve_model_reference(self, target: str, user: str) -> tuple[str, str]:
        """``name/3``, ``name@alias``, ``name/Stage`` or ``name/latest`` → (name, version)."""
        if "@" in target:
            name, alias = target.rsplit("@", 1)
            return name, self.get_model_version_by_alias(name, alias, user=user).version
        name, _, selector = target.rpartition("/")
        if not name:
            raise InvalidParameterValue(f"Invalid model URI 'models:/{target}'.")
        if selector.isdigit():
            return name, selector
        if selector.lower() == "latest":
            return name, self.get_model_version_by_alias(name, "latest", user=user).version
        latest = self.get_latest_versions(name, [selector], user=user)
        if not latest:
            raise ResourceDoesNotExist(f"No version of '{name}' is in stage {selector}.")
        return name, latest[0].version

    # -- aliases -----------------------------------------------------------------------------

    @staticmethod
    def _check_alias(alias: object) -> str:
        if not isinstance(alias, str) or not alias:
            raise InvalidParameterValue("Missing value for required parameter 'alias'.")
        if len(alias) > MAX_ALIAS_LENGTH or not _ALIAS_PATTERN.match(alias):
            raise InvalidParameterValue(
                f"Invalid alias '{alias}': use at most {MAX_ALIAS_LENGTH} letters, digits, "
                "'_' and '-'.")
        if _RESERVED_ALIAS.match(alias):
            raise InvalidParameterValue(
                f"Invalid alias '{alias}': 'latest' and 'v<number>' are reserved.")
        return alias

    def set_alias(self, name: str, alias: str, version: str, *, user: str) -> None:
        alias = self._check_alias(alias)
        found = self._version(name, version, user, MANAGE_STAGING, "moving an alias")
        previous = self.store.version_for_alias(name, alias)
        self.store.set_alias(name, alias, found.version, now_ms(), ActivityRecord(
            ActivityType.ALIAS_SET, user, found.version,
            system_comment=f"Alias '{alias}' now points to version {found.version}"
            + (f" (was version {previous})." if previous else ".")))

    def delete_alias(self, name: str, alias: str, *, user: str) -> None:
        self._model(name, user, MANAGE_STAGING, "deleting an alias")
        previous = self.store.version_for_alias(name, alias)
        if previous is None:
            return  # nothing to delete: a no-op, as in MLflow
        self.store.delete_alias(name, alias, now_ms(), ActivityRecord(
            ActivityType.ALIAS_DELETED, user, previous,
            system_comment=f"Alias '{alias}' removed from version {previous}."))

    def get_model_version_by_alias(self, name: str, alias: str, *, user: str) -> ModelVersion:
        """The version an alias points to; ``latest`` is the newest version, as in MLflow."""
        self._model(name, user)
        if alias.lower() == "latest":
            newest = self.search_model_versions(f"name = '{_quoted(name)}'", 1,
                                                ["version_number DESC"], user=user)
            if not newest:
                raise InvalidParameterValue(f"Registered model {name} has no versions.")
            return newest[0]
        version = self.store.version_for_alias(name, alias)
        if version is None:
            # MLflow answers INVALID_PARAMETER_VALUE here, not RESOURCE_DOES_NOT_EXIST.
            raise InvalidParameterValue(f"Registered model alias {alias} not found.")
        return self._version(name, version, user)

    # -- stages ------------------------------------------------------------------------------

    def transition_stage(self, name: str, version: str, stage: str,
                         archive_existing_versions: bool = False, comment: str | None = None,
                         *, user: str) -> ModelVersion:
        """Apply a transition directly (needs the stage's manage level)."""
        to_stage = ModelStage.parse(stage)
        found = self._version(name, version, user)
        require(self.permission_level(name, user), transition_level(found.current_stage,
                                                                    to_stage),
                user, f"moving a version from {found.current_stage} to {to_stage}", name)
        outcome = self.store.transition_stage(
            name, found.version, to_stage, archive_existing_versions, now_ms(),
            [ActivityRecord(ActivityType.APPLIED_TRANSITION, user, found.version,
                            found.current_stage, to_stage, comment)])
        self._emit_transitions(name, outcome, user)
        return outcome.version

    def _emit_transitions(self, name, outcome, user) -> None:
        moves = [(outcome.version, outcome.from_stage)]
        moves += [(archived, outcome.version.current_stage) for archived in outcome.archived]
        for moved, from_stage in moves:
            payload = dict(version=moved.version, from_stage=str(from_stage),
                           to_stage=str(moved.current_stage), user_id=user)
            self._emit(WebhookEvent.MODEL_VERSION_TRANSITIONED_STAGE, name, **payload)
            self._emit(_TRANSITIONED_TO.get(moved.current_stage), name, **payload)

    # -- transition requests -----------------------------------------------------------------

    def _request_actions(self, request: TransitionRequest,
                         user: str) -> tuple[ActivityAction, ...]:
        if request.status != RequestStatus.OPEN:
            return ()
        actions = []
        version = self.store.get_model_version(request.model_name, request.version)
        level = self.permission_level(request.model_name, user)
        if version is not None and level is not None and level >= transition_level(
                version.current_stage, request.to_stage):
            if not (request.user_id == user
                    and request.to_stage in self.settings.require_distinct_approver):
                actions.append(ActivityAction.APPROVE_TRANSITION_REQUEST)
            actions.append(ActivityAction.REJECT_TRANSITION_REQUEST)
        if request.user_id == user:
            actions.append(ActivityAction.CANCEL_TRANSITION_REQUEST)
        return tuple(actions)

    def _with_actions(self, request: TransitionRequest, user: str) -> TransitionRequest:
        return replace(request, available_actions=self._request_actions(request, user))

    def create_transition_request(self, name: str, version: str, stage: str,
                                  comment: str | None = None, *,
                                  user: str) -> TransitionRequest:
        to_stage = ModelStage.parse(stage)
        found = self._version(name, version, user, EDIT, "requesting a transition")
        if found.current_stage == to_stage:
            raise InvalidParameterValue(
                f"Version {found.version} of '{name}' is already in {to_stage}.")
        comment = _check_text("comment", comment, MAX_COMMENT_LENGTH) or None
        for open_request in self.store.list_transition_requests(name, found.version):
            if open_request.to_stage == to_stage and open_request.user_id == user:
                raise InvalidParameterValue(
                    f"User '{user}' already has an open request to move version "
                    f"{found.version} of '{name}' to {to_stage} (request {open_request.id}).")
        request = self.store.create_transition_request(name, found.version, to_stage, user,
                                                       comment, now_ms())
        payload = dict(version=found.version, from_stage=str(found.current_stage),
                       to_stage=str(to_stage), user_id=user, request_id=request.id,
                       text=comment or "")
        self._emit(WebhookEvent.TRANSITION_REQUEST_CREATED, name, **payload)
        self._emit(_REQUESTED_TO.get(to_stage), name, **payload)
        return self._with_actions(request, user)

    def _open_request(self, name: str, version: str, to_stage: ModelStage,
                      request_id: str | None, creator: str | None = None) -> TransitionRequest:
        if request_id is not None:
            request = self.store.get_transition_request(request_id)
            if request is None or request.model_name != name or request.version != version:
                raise ResourceDoesNotExist(f"Transition request {request_id} not found.")
            if request.status != RequestStatus.OPEN:
                raise self._conflict(request)
            return request
        candidates = [r for r in self.store.list_transition_requests(name, version)
                      if r.to_stage == to_stage and (creator is None or r.user_id == creator)]
        if candidates:
            return candidates[0]
        closed = [r for r in self.store.list_transition_requests(name, version, status=None)
                  if r.to_stage == to_stage and (creator is None or r.user_id == creator)]
        if closed:
            raise self._conflict(closed[-1])
        raise ResourceDoesNotExist(
            f"No open request to move version {version} of '{name}' to {to_stage}.")

    @staticmethod
    def _conflict(request: TransitionRequest) -> RequestConflict:
        return RequestConflict(
            f"Transition request {request.id} (version {request.version} of "
            f"'{request.model_name}' to {request.to_stage}) is no longer open: it was "
            f"{str(request.status).lower()} by '{request.resolved_by}'.")

    def approve_transition_request(self, name: str, version: str, stage: str,
                                   archive_existing_versions: bool = False,
                                   comment: str | None = None, request_id: str | None = None,
                                   *, user: str) -> Activity:
        to_stage = ModelStage.parse(stage)
        found = self._version(name, version, user)
        request = self._open_request(name, found.version, to_stage, request_id)
        require(self.permission_level(name, user), transition_level(found.current_stage,
                                                                    to_stage),
                user, f"approving a move from {found.current_stage} to {to_stage}", name)
        if request.user_id == user and to_stage in self.settings.require_distinct_approver:
            raise PermissionDenied(
                f"User '{user}' requested this transition to {to_stage} and cannot approve it: "
                f"{to_stage} requests need another approver.")
        comment = _check_text("comment", comment, MAX_COMMENT_LENGTH) or None
        try:
            outcome = self.store.transition_stage(
                name, found.version, to_stage, archive_existing_versions, now_ms(),
                [ActivityRecord(ActivityType.APPROVED_REQUEST, user, found.version,
                                found.current_stage, to_stage, comment,
                                system_comment=f"Approved request {request.id} by "
                                f"'{request.user_id}'.")],
                resolve_request=(request.id, RequestStatus.APPROVED, user))
        except RequestNotOpen as closed:
            raise self._conflict(closed.request) from None
        self._emit_transitions(name, outcome, user)
        return self._latest_activity(name, found.version, ActivityType.APPROVED_REQUEST)

    def reject_transition_request(self, name: str, version: str, stage: str,
                                  comment: str | None = None, request_id: str | None = None,
                                  *, user: str) -> Activity:
        to_stage = ModelStage.parse(stage)
        found = self._version(name, version, user)
        request = self._open_request(name, found.version, to_stage, request_id)
        require(self.permission_level(name, user), transition_level(found.current_stage,
                                                                    to_stage),
                user, f"rejecting a move from {found.current_stage} to {to_stage}", name)
        return self._close(request, RequestStatus.REJECTED, ActivityType.REJECTED_REQUEST,
                           found, comment, user)

    def cancel_transition_request(self, name: str, version: str, stage: str,
                                  creator: str | None = None, comment: str | None = None,
                                  request_id: str | None = None, *, user: str) -> Activity:
        to_stage = ModelStage.parse(stage)
        found = self._version(name, version, user)
        request = self._open_request(name, found.version, to_stage, request_id,
                                     creator or user)
        if request.user_id != user and self.permission_level(name, user) != MANAGE:
            raise PermissionDenied(
                f"Only '{request.user_id}' (who made it) or a manager of '{name}' can cancel "
                f"request {request.id}.")
        return self._close(request, RequestStatus.CANCELLED, ActivityType.CANCELLED_REQUEST,
                           found, comment, user)

    def _close(self, request, status, activity_type, found, comment, user) -> Activity:
        comment = _check_text("comment", comment, MAX_COMMENT_LENGTH) or None
        try:
            self.store.resolve_transition_request(
                request.id, status, user, now_ms(),
                ActivityRecord(activity_type, user, found.version, found.current_stage,
                               request.to_stage, comment,
                               system_comment=f"Request {request.id} by '{request.user_id}'."))
        except RequestNotOpen as closed:
            raise self._conflict(closed.request) from None
        return self._latest_activity(request.model_name, found.version, activity_type)

    def _latest_activity(self, name: str, version: str, activity_type: ActivityType):
        for activity in self.store.list_activities(name, version, 20, 0):
            if activity.activity_type == activity_type:
                return activity
        raise ResourceDoesNotExist(f"No {activity_type} activity recorded.")  # pragma: no cover

    def list_transition_requests(self, name: str | None = None, version: str | None = None,
                                 *, user: str) -> list[TransitionRequest]:
        """Open requests (of one version, one model, or every model the user can read)."""
        if name is not None:
            self._model(name, user)
        requests = self.store.list_transition_requests(name, None if version is None
                                                       else str(version))
        return [self._with_actions(r, user) for r in requests
                if self.permission_level(r.model_name, user) is not None]

    # -- audit trail and comments ------------------------------------------------------------

    def list_activities(self, name: str, version: str | None = None, max_results: int = 100,
                        page_token: str | None = None, *, user: str) -> PagedList:
        if version is not None:
            self._version(name, version, user)
        else:
            self._model(name, user)
        limit = validation.validate_max_results(max_results, MAX_RESULTS_ACTIVITIES)
        offset = parse_page_token(page_token)
        found = self.store.list_activities(name, None if version is None else str(version),
                                           limit + 1, offset)
        token = make_page_token(offset + limit) if len(found) > limit else None
        return PagedList(found[:limit], token)

    def _comment_actions(self, comment: Comment, user: str) -> tuple[ActivityAction, ...]:
        actions = []
        if comment.user_id == user:
            actions.append(ActivityAction.EDIT_COMMENT)
        if comment.user_id == user or self.permission_level(comment.model_name, user) == MANAGE:
            actions.append(ActivityAction.DELETE_COMMENT)
        return tuple(actions)

    def _comment_view(self, comment: Comment, user: str) -> Comment:
        return replace(comment, available_actions=self._comment_actions(comment, user))

    def create_comment(self, name: str, version: str, comment: str, *, user: str) -> Comment:
        found = self._version(name, version, user, READ, "commenting")
        text = _check_text("comment", comment, MAX_COMMENT_LENGTH)
        if not text.strip():
            raise InvalidParameterValue("Missing value for required parameter 'comment'.")
        created = self.store.create_comment(name, found.version, user, text, now_ms())
        self._emit(WebhookEvent.COMMENT_CREATED, name, version=found.version, comment=text,
                   user_id=user, comment_id=created.id)
        return self._comment_view(created, user)

    def _existing_comment(self, comment_id: str) -> Comment:
        comment = self.store.get_comment(comment_id)
        if comment is None:
            raise ResourceDoesNotExist(f"Comment {comment_id} not found.")
        return comment

    def update_comment(self, comment_id: str, comment: str, *, user: str) -> Comment:
        existing = self._existing_comment(comment_id)
        self._model(existing.model_name, user)
        if existing.user_id != user:
            raise PermissionDenied(f"Only '{existing.user_id}' can edit comment {comment_id}.")
        text = _check_text("comment", comment, MAX_COMMENT_LENGTH)
        if not text.strip():
            raise InvalidParameterValue("Missing value for required parameter 'comment'.")
        updated = self.store.update_comment(comment_id, text, now_ms(), ActivityRecord(
            ActivityType.COMMENT_EDITED, user, existing.version, comment=text))
        return self._comment_view(updated, user)

    def delete_comment(self, comment_id: str, *, user: str) -> None:
        existing = self._existing_comment(comment_id)
        self._model(existing.model_name, user)
        if ActivityAction.DELETE_COMMENT not in self._comment_actions(existing, user):
            raise PermissionDenied(
                f"Only '{existing.user_id}' or a manager of '{existing.model_name}' can delete "
                f"comment {comment_id}.")
        self.store.delete_comment(comment_id, now_ms(), ActivityRecord(
            ActivityType.COMMENT_DELETED, user, existing.version,
            system_comment=f"Deleted comment {comment_id} by '{existing.user_id}'."))

    def list_comments(self, name: str, version: str, *, user: str) -> list[Comment]:
        found = self._version(name, version, user)
        return [self._comment_view(c, user) for c in self.store.list_comments(name,
                                                                              found.version)]

    # -- permissions -------------------------------------------------------------------------

    def model_name_for_id(self, model_id: str) -> str:
        name = self.store.get_model_name(model_id)
        if name is None:
            raise ResourceDoesNotExist(f"Registered model with id {model_id} not found.")
        return name

    def get_permissions(self, name: str, *, user: str) -> list[ModelPermission]:
        """The access list; the creator is listed as CAN_MANAGE."""
        model = self._model(name, user)
        entries = {e.user_name: e for e in self.store.get_permissions(name)}
        entries.setdefault(model.user_id, ModelPermission(model.user_id, MANAGE))
        return sorted(entries.values(), key=lambda e: e.user_name)

    def set_permissions(self, name: str, entries: Sequence[tuple[str, str]],
                        replace_all: bool = False, *, user: str) -> list[ModelPermission]:
        self._model(name, user, MANAGE, "granting permissions")
        parsed = []
        for user_name, level in entries:
            if not isinstance(user_name, str) or not user_name:
                raise InvalidParameterValue("Missing value for required parameter 'user_name'.")
            parsed.append(ModelPermission(user_name, PermissionLevel.parse(level)))
        summary = ", ".join(f"{e.user_name}={e.permission_level}" for e in parsed) or "(none)"
        self.store.set_permissions(name, parsed, replace_all, now_ms(), ActivityRecord(
            ActivityType.PERMISSIONS_CHANGED, user,
            system_comment=("Access list replaced: " if replace_all else "Access granted: ")
            + summary))
        return self.get_permissions(name, user=user)

    # -- webhooks ----------------------------------------------------------------------------

    def _check_webhook_access(self, model_name: str | None, user: str, action: str) -> None:
        if model_name is None:
            if user not in self.settings.admins:
                raise PermissionDenied(
                    f"User '{user}' cannot {action} registry-wide webhooks: registry admins "
                    "only.")
        else:
            self._model(model_name, user, MANAGE, f"{action} its webhooks")

    @staticmethod
    def _events(events: Sequence[str]) -> tuple[WebhookEvent, ...]:
        if not events:
            raise InvalidParameterValue("Missing value for required parameter 'events'.")
        parsed = []
        for event in events:
            try:
                parsed.append(WebhookEvent(event))
            except ValueError:
                raise InvalidParameterValue(
                    f"Invalid webhook event '{event}'. Use one of: "
                    f"{', '.join(e.value for e in WebhookEvent)}.") from None
        return tuple(dict.fromkeys(parsed))

    def create_webhook(self, events: Sequence[str], url: str, model_name: str | None = None,
                       secret: str | None = None, status: str = "ACTIVE",
                       description: str | None = None, enable_ssl_verification: bool = True,
                       *, user: str) -> Webhook:
        self._check_webhook_access(model_name, user, "create")
        parsed_events = self._events(events)
        WebhookDispatcher.check_url(url)
        try:
            webhook_status = WebhookStatus(status)
        except ValueError:
            raise InvalidParameterValue(f"Invalid webhook status '{status}'.") from None
        return self.store.create_webhook(
            uuid.uuid4().hex, model_name, parsed_events, url, secret or None, webhook_status,
            _check_text("description", description, MAX_DESCRIPTION_LENGTH),
            enable_ssl_verification, now_ms())

    def _webhook(self, webhook_id: str, user: str, action: str) -> Webhook:
        webhook = self.store.get_webhook(webhook_id)
        if webhook is None:
            raise ResourceDoesNotExist(f"Webhook {webhook_id} not found.")
        self._check_webhook_access(webhook.model_name, user, action)
        return webhook

    def list_webhooks(self, model_name: str | None = None, *, user: str) -> list[Webhook]:
        self._check_webhook_access(model_name, user, "list")
        return self.store.list_webhooks(model_name, registry_wide=model_name is None)

    def update_webhook(self, webhook_id: str, *, user: str, events: Sequence[str] | None = None,
                       url: str | None = None, secret: str | None = None,
                       status: str | None = None, description: str | None = None,
                       enable_ssl_verification: bool | None = None) -> Webhook:
        self._webhook(webhook_id, user, "update")
        changes: dict = {}
        if events is not None:
            changes["events"] = self._events(events)
        if url is not None:
            changes["url"] = WebhookDispatcher.check_url(url)
        if secret is not None:
            changes["secret"] = secret or None
        if status is not None:
            try:
                changes["status"] = WebhookStatus(status)
            except ValueError:
                raise InvalidParameterValue(f"Invalid webhook status '{status}'.") from None
        if description is not None:
            changes["description"] = _check_text("description", description,
                                                 MAX_DESCRIPTION_LENGTH)
        if enable_ssl_verification is not None:
            changes["enable_ssl_verification"] = bool(enable_ssl_verification)
        return self.store.update_webhook(webhook_id, now_ms(), **changes)

    def delete_webhook(self, webhook_id: str, *, user: str) -> None:
        self._webhook(webhook_id, user, "delete")
        self.store.delete_webhook(webhook_id)

    def test_webhook(self, webhook_id: str, event: str | None = None, *,
                     user: str) -> tuple[int | None, str]:
        webhook = self._webhook(webhook_id, user, "test")
        if self.dispatcher is None:
            raise InvalidParameterValue("Webhook delivery is not configured on this service.")
        chosen = self._events([event])[0] if event else webhook.events[0]
        return self.dispatcher.send_test(webhook, chosen)

    def list_deliveries(self, webhook_id: str, max_results: int = 50, *,
                        user: str) -> list[WebhookDelivery]:
        self._webhook(webhook_id, user, "inspect")
        limit = validation.validate_max_results(max_results, 1000)
        return self.store.list_deliveries(webhook_id, limit)
