"""The registry methods of ``TrackingClient`` (MLflow's ``MlflowClient`` names, plus the
governance that only labtrack and Databricks have)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from labtrack.entities import (
    Activity,
    Comment,
    ModelPermission,
    ModelStage,
    ModelVersion,
    PagedList,
    PermissionLevel,
    RegisteredModel,
    TransitionRequest,
    Webhook,
    WebhookDelivery,
)
from labtrack.errors import InvalidParameterValue, ResourceAlreadyExists


class RegistryClientMixin:
    """Needs ``self._registry`` (a registry service), ``self._service`` and ``self._user``."""

    _registry: Any
    _service: Any
    _user: str

    # -- registered models -------------------------------------------------------------------

    def create_registered_model(self, name: str, tags: Mapping[str, Any] | None = None,
                                description: str | None = None) -> RegisteredModel:
        return self._registry.create_registered_model(
            name, {k: str(v) for k, v in (tags or {}).items()}, description, user=self._user)

    def get_registered_model(self, name: str) -> RegisteredModel:
        return self._registry.get_registered_model(name, user=self._user)

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        return self._registry.rename_registered_model(name, new_name, user=self._user)

    def update_registered_model(self, name: str, description: str) -> RegisteredModel:
        return self._registry.update_registered_model(name, description, user=self._user)

    def delete_registered_model(self, name: str) -> None:
        self._registry.delete_registered_model(name, user=self._user)

    def search_registered_models(self, filter_string: str | None = None,
                                 max_results: int = 100, order_by: Sequence[str] | None = None,
                                 page_token: str | None = None) -> PagedList:
        return self._registry.search_registered_models(filter_string, max_results, order_by,
                                                       page_token, user=self._user)

    def set_registered_model_tag(self, name: str, key: str, value: Any) -> None:
        self._registry.set_registered_model_tag(name, key, str(value), user=self._user)

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        self._registry.delete_registered_model_tag(name, key, user=self._user)

    # -- versions ----------------------------------------------------------------------------

    def create_model_version(self, name: str, source: str, run_id: str | None = None,
                             tags: Mapping[str, Any] | None = None, run_link: str | None = None,
                             description: str | None = None,
                             model_id: str | None = None) -> ModelVersion:
        return self._registry.create_model_version(
            name, source, run_id, {k: str(v) for k, v in (tags or {}).items()}, run_link,
            description, model_id, user=self._user)

    def register_model(self, model_uri: str, name: str,
                       tags: Mapping[str, Any] | None = None,
                       description: str | None = None) -> ModelVersion:
        """Register ``model_uri`` as a new version of ``name`` (created when missing).

        ``runs:/<run_id>/<path>`` registers the run's logged model of that name when there is
        one (MLflow 3 ``log_model``), else the run's artifacts at ``path``;
        ``models:/<model_id>`` a logged model; anything else is taken as a path or URI.
        """
        source, run_id, model_id = self._resolve_model_uri(model_uri)
        try:
            self.create_registered_model(name)
        except ResourceAlreadyExists:
            pass
        return self.create_model_version(name, source, run_id, tags, None, description,
                                         model_id)

    def _resolve_model_uri(self, model_uri: str) -> tuple[str, str | None, str | None]:
        parsed = urlparse(model_uri)
        if parsed.scheme == "runs":
            run_id, _, path = f"{parsed.netloc}{parsed.path}".lstrip("/").partition("/")
            if not run_id:
                raise InvalidParameterValue(
                    f"Invalid model URI '{model_uri}': expected runs:/<run_id>/<path>.")
            run = self._service.get_run(run_id)
            for output in run.outputs.model_outputs:
                logged = self._service.get_logged_model(output.model_id)
                if logged.name == path.strip("/"):
                    return logged.artifact_location, run_id, logged.model_id
            base = run.info.artifact_uri.rstrip("/")
            return (f"{base}/{path.strip('/')}" if path.strip("/") else base), run_id, None
        if parsed.scheme == "models" and f"{parsed.netloc}{parsed.path}".strip("/").startswith(
                "m-"):
            logged = self._service.get_logged_model(
                f"{parsed.netloc}{parsed.path}".strip("/"))
            return logged.artifact_location, logged.source_run_id, logged.model_id
        if parsed.scheme in ("", "file") and not model_uri.startswith("file:"):
            return Path(model_uri).expanduser().resolve().as_uri(), None, None
        return model_uri, None, None

    def get_model_version(self, name: str, version: str | int) -> ModelVersion:
        return self._registry.get_model_version(name, str(version), user=self._user)

    def update_model_version(self, name: str, version: str | int,
                             description: str) -> ModelVersion:
        return self._registry.update_model_version(name, str(version), description,
                                                   user=self._user)

    def delete_model_version(self, name: str, version: str | int) -> None:
        self._registry.delete_model_version(name, str(version), user=self._user)

    def search_model_versions(self, filter_string: str | None = None,
                              max_results: int = 10000, order_by: Sequence[str] | None = None,
                              page_token: str | None = None) -> PagedList:
        return self._registry.search_model_versions(filter_string, max_results, order_by,
                                                    page_token, user=self._user)

    def get_latest_versions(self, name: str,
                            stages: Sequence[str] | None = None) -> list[ModelVersion]:
        return self._registry.get_latest_versions(name, stages, user=self._user)

    def get_model_version_download_uri(self, name: str, version: str | int) -> str:
        return self._registry.get_model_version_download_uri(name, str(version),
                                                             user=self._user)

    def set_model_version_tag(self, name: str, version: str | int, key: str,
                              value: Any) -> None:
        self._registry.set_model_version_tag(name, str(version), key, str(value),
                                             user=self._user)

    def delete_model_version_tag(self, name: str, version: str | int, key: str) -> None:
        self._registry.delete_model_version_tag(name, str(version), key, user=self._user)

    def transition_model_version_stage(self, name: str, version: str | int, stage: str,
                                       archive_existing_versions: bool = False,
                                       comment: str | None = None) -> ModelVersion:
        """Apply a transition directly (needs the stage's manage permission)."""
        return self._registry.transition_stage(name, str(version), stage,
                                               archive_existing_versions, comment,
                                               user=self._user)

    def set_registered_model_alias(self, name: str, alias: str, version: str | int) -> None:
        self._registry.set_alias(name, alias, str(version), user=self._user)

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        self._registry.delete_alias(name, alias, user=self._user)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        return self._registry.get_model_version_by_alias(name, alias, user=self._user)

    # -- governance --------------------------------------------------------------------------

    def request_transition(self, name: str, version: str | int, stage: str | ModelStage,
                           comment: str | None = None) -> TransitionRequest:
        """Ask for a version to be moved to a stage; someone permitted approves it."""
        return self._registry.create_transition_request(name, str(version), str(stage),
                                                        comment, user=self._user)

    def approve_transition_request(self, name: str, version: str | int, stage: str,
                                   archive_existing_versions: bool = False,
                                   comment: str | None = None,
                                   request_id: str | None = None) -> Activity:
        return self._registry.approve_transition_request(
            name, str(version), str(stage), archive_existing_versions, comment, request_id,
            user=self._user)

    def reject_transition_request(self, name: str, version: str | int, stage: str,
                                  comment: str | None = None,
                                  request_id: str | None = None) -> Activity:
        return self._registry.reject_transition_request(
            name, str(version), str(stage), comment, request_id, user=self._user)

    def cancel_transition_request(self, name: str, version: str | int, stage: str,
                                  comment: str | None = None,
                                  request_id: str | None = None) -> Activity:
        return self._registry.cancel_transition_request(
            name, str(version), str(stage), None, comment, request_id, user=self._user)

    def list_transition_requests(self, name: str | None = None,
                                 version: str | int | None = None) -> list[TransitionRequest]:
        """Open requests, with the actions this user may take on each."""
        return self._registry.list_transition_requests(
            name, None if version is None else str(version), user=self._user)

    def create_comment(self, name: str, version: str | int, comment: str) -> Comment:
        return self._registry.create_comment(name, str(version), comment, user=self._user)

    def update_comment(self, comment_id: str, comment: str) -> Comment:
        return self._registry.update_comment(str(comment_id), comment, user=self._user)

    def delete_comment(self, comment_id: str) -> None:
        self._registry.delete_comment(str(comment_id), user=self._user)

    def list_comments(self, name: str, version: str | int) -> list[Comment]:
        return self._registry.list_comments(name, str(version), user=self._user)

    def get_activities(self, name: str, version: str | int | None = None,
                       max_results: int = 100, page_token: str | None = None) -> PagedList:
        """The audit trail of a model (or one version), newest first."""
        return self._registry.list_activities(
            name, None if version is None else str(version), max_results, page_token,
            user=self._user)

    def get_permissions(self, name: str) -> list[ModelPermission]:
        return self._registry.get_permissions(name, user=self._user)

    def set_permissions(self, name: str, levels: Mapping[str, str | PermissionLevel],
                        replace: bool = False) -> list[ModelPermission]:
        """Grant ``{user: level}`` (``replace=True``: the list becomes exactly that)."""
        return self._registry.set_permissions(
            name, [(user, str(level)) for user, level in levels.items()], replace_all=replace,
            user=self._user)

    def create_webhook(self, events: Sequence[str], url: str, model_name: str | None = None,
                       secret: str | None = None, status: str = "ACTIVE",
                       description: str | None = None,
                       enable_ssl_verification: bool = True) -> Webhook:
        return self._registry.create_webhook(events, url, model_name, secret, status,
                                             description, enable_ssl_verification,
                                             user=self._user)

    def list_webhooks(self, model_name: str | None = None) -> list[Webhook]:
        return self._registry.list_webhooks(model_name, user=self._user)

    def update_webhook(self, webhook_id: str, **changes: Any) -> Webhook:
        """``changes``: events, url, secret, status, description, enable_ssl_verification."""
        return self._registry.update_webhook(webhook_id, user=self._user, **changes)

    def delete_webhook(self, webhook_id: str) -> None:
        self._registry.delete_webhook(webhook_id, user=self._user)

    def test_webhook(self, webhook_id: str, event: str | None = None) -> tuple[int | None, str]:
        return self._registry.test_webhook(webhook_id, event, user=self._user)

    def list_webhook_deliveries(self, webhook_id: str,
                                max_results: int = 50) -> list[WebhookDelivery]:
        return self._registry.list_deliveries(webhook_id, max_results, user=self._user)
