"""``LoggedModelService``: MLflow 3's logged models — the models a run logs, each with its own
id (``m-<hex>``), artifact folder, params and tags, created PENDING and finalized READY (or
UPLOAD_FAILED) once the client has uploaded the files."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

from labtrack.entities import FileInfo, LifecycleStage, LoggedModel, LoggedModelStatus, PagedList
from labtrack.errors import InvalidParameterValue, ResourceDoesNotExist
from labtrack.services import validation
from labtrack.services.run_names import random_run_name
from labtrack.services.search import (
    LOGGED_MODEL_ATTRIBUTES,
    make_page_token,
    parse_filter,
    parse_order_by,
    parse_page_token,
)
from labtrack.services.tracking import TrackingService, now_ms

MAX_RESULTS_SEARCH_LOGGED_MODELS = 1000
MAX_LOGGED_MODEL_NAME_LENGTH = 500


def _status(value: LoggedModelStatus | str) -> LoggedModelStatus:
    try:
        return LoggedModelStatus(value)
    except ValueError:
        raise InvalidParameterValue(
            f"Invalid logged model status '{value}'. Use one of: "
            f"{', '.join(s.value for s in LoggedModelStatus)}."
        ) from None


class LoggedModelService:
    def __init__(self, tracking: TrackingService):
        self.tracking = tracking
        self.store = tracking.store

    def create(
        self,
        experiment_id: str,
        name: str | None = None,
        model_type: str | None = None,
        source_run_id: str | None = None,
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> LoggedModel:
        experiment = self.tracking._active_experiment(experiment_id)
        name = name or random_run_name()
        if len(name) > MAX_LOGGED_MODEL_NAME_LENGTH:
            raise InvalidParameterValue(
                f"Logged model name '{name[:40]}…' exceeds the maximum length of "
                f"{MAX_LOGGED_MODEL_NAME_LENGTH} characters."
            )
        if source_run_id:
            self.tracking.get_run_info(source_run_id)
        checked_params = dict(validation.validate_param(k, v) for k, v in (params or {}).items())
        checked_tags = dict(validation.validate_tag(k, v) for k, v in (tags or {}).items())
        return self.store.create_logged_model(
            f"m-{uuid.uuid4().hex}", experiment.experiment_id, name, now_ms(), model_type,
            source_run_id or None, checked_params, checked_tags,
        )

    def get(self, model_id: str) -> LoggedModel:
        return self.tracking.get_logged_model(model_id)

    def finalize(self, model_id: str, status: LoggedModelStatus | str) -> LoggedModel:
        self.get(model_id)
        self.store.update_logged_model(model_id, now_ms(), status=_status(status))
        return self.get(model_id)

    def delete(self, model_id: str) -> None:
        self.get(model_id)
        self.store.update_logged_model(model_id, now_ms(), lifecycle_stage=LifecycleStage.DELETED)

    def set_tags(self, model_id: str, tags: Mapping[str, str]) -> None:
        self.get(model_id)
        checked = dict(validation.validate_tag(k, v) for k, v in tags.items())
        self.store.set_logged_model_tags(model_id, checked, now_ms())

    def delete_tag(self, model_id: str, key: str) -> None:
        self.get(model_id)
        if not self.store.delete_logged_model_tag(model_id, validation.validate_key("Tag", key)):
            raise ResourceDoesNotExist(f"No tag with key '{key}' on logged model '{model_id}'.")

    def log_params(self, model_id: str, params: Mapping[str, str]) -> None:
        self.get(model_id)
        checked = dict(validation.validate_param(k, v) for k, v in params.items())
        self.store.log_logged_model_params(model_id, checked)

    def list_artifacts(self, model_id: str, path: str | None = None) -> list[FileInfo]:
        return self.tracking.repository(self.get(model_id).artifact_location).list_artifacts(path)

    def search(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        max_results: int | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList:
        if not experiment_ids:
            raise InvalidParameterValue("Missing value for required parameter 'experiment_ids'.")
        limit = validation.validate_max_results(
            max_results or 100, MAX_RESULTS_SEARCH_LOGGED_MODELS
        )
        comparisons = parse_filter(filter_string, LOGGED_MODEL_ATTRIBUTES)
        terms = parse_order_by(order_by, LOGGED_MODEL_ATTRIBUTES)
        offset = parse_page_token(page_token)
        found = self.store.search_logged_models(
            [str(e) for e in experiment_ids], comparisons, terms, limit + 1, offset
        )
        token = make_page_token(offset + limit) if len(found) > limit else None
        return PagedList(found[:limit], token)
