"""``TrackingService``: the rules of experiment tracking over any ``Store``.

Everything a caller (the Python client, the REST handlers) may do goes through here: inputs
are validated against MLflow's rules and limits, missing resources become clear
``RESOURCE_DOES_NOT_EXIST`` errors, writes to deleted runs are refused, and search strings are
parsed into the store's query form.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from labtrack.entities import (
    DatasetInput,
    Experiment,
    FileInfo,
    LifecycleStage,
    LoggedModel,
    Metric,
    MetricSeries,
    ModelOutput,
    PagedList,
    Param,
    Run,
    RunInfo,
    RunStatus,
    RunTag,
    ViewType,
)
from labtrack.errors import InvalidParameterValue, ResourceDoesNotExist
from labtrack.services import downsampling, validation
from labtrack.services.run_ids import new_run_id
from labtrack.services.run_names import random_run_name
from labtrack.services.search import (
    EXPERIMENT_ATTRIBUTES,
    RUN_ATTRIBUTES,
    make_page_token,
    parse_filter,
    parse_order_by,
    parse_page_token,
)
from labtrack.store import ArtifactRepository, Store, artifact_repository
from labtrack.store.artifacts import (
    artifact_root_uri,
    is_object_store_uri,
    safe_relative_path,
    uri_inside,
    uri_to_local_path,
)
from labtrack.store.object_store import ObjectLocation, ObjectStoreSettings

DEFAULT_EXPERIMENT_ID = "0"
RUN_NAME_TAG = "mlflow.runName"
MAX_RESULTS_METRIC_HISTORY_PAGE = 25000


def now_ms() -> int:
    return int(time.time() * 1000)


_DATASET_LIMITS = {
    "name": 500, "digest": 36, "source_type": 36, "source": 65535, "schema": 1048575,
    "profile": 16777215,
}


def _validate_dataset_input(dataset_input: DatasetInput) -> None:
    dataset = dataset_input.dataset
    for field_name, limit in _DATASET_LIMITS.items():
        value = getattr(dataset, field_name)
        if field_name in ("name", "digest") and not value:
            raise InvalidParameterValue(
                f"Missing value for required parameter 'dataset.{field_name}'."
            )
        if value is not None and len(value) > limit:
            raise InvalidParameterValue(
                f"Dataset {field_name} of '{dataset.name[:40]}' exceeds the maximum length of "
                f"{limit} characters (it has {len(value)})."
            )
    for key, value in dataset_input.tags.items():
        if not key or len(key) > 255:
            raise InvalidParameterValue(
                f"Input tag key '{key[:40]}' must have 1 to 255 characters."
            )
        if len(value) > 500:
            raise InvalidParameterValue(
                f"Value of input tag '{key}' exceeds the maximum length of 500 characters."
            )


def _check_columns(columns) -> None:
    """Validate ``{key: (values, timestamps, steps)}`` at C speed when all is well."""
    for key, (values, timestamps, steps) in columns.items():
        validation.validate_key("Metric", key)
        if not (len(values) == len(timestamps) == len(steps)):
            raise InvalidParameterValue(f"Columns of metric '{key}' differ in length.")
        if not values:
            continue
        if not all(map(_is_float, values)):
            for v in values:
                validation.metric_value(key, v)
        if not (set(map(type, timestamps)) <= _INT and min(timestamps) >= 0
                and max(timestamps) <= validation.INT64_MAX):
            for t in timestamps:
                validation.int64("timestamp", t, f"metric '{key}'", minimum=0)
        if not (set(map(type, steps)) <= _INT and min(steps) >= validation.INT64_MIN
                and max(steps) <= validation.INT64_MAX):
            for s in steps:
                validation.int64("step", s, f"metric '{key}'")


def _require_active_experiment(experiment_id: str, lifecycle_stage: str | None) -> None:
    if lifecycle_stage is None:
        raise ResourceDoesNotExist(f"No Experiment with id={experiment_id} exists")
    if lifecycle_stage != LifecycleStage.ACTIVE:
        raise InvalidParameterValue(
            f"The experiment {experiment_id} must be in the 'active' state. Current state "
            f"is {lifecycle_stage}."
        )


def _require_active_run(run_id: str, lifecycle_stage: str | None) -> None:
    if lifecycle_stage is None:
        raise ResourceDoesNotExist(f"Run with id={run_id} not found")
    if lifecycle_stage != LifecycleStage.ACTIVE:
        raise InvalidParameterValue(
            f"The run {run_id} must be in the 'active' state. Current state is "
            f"{lifecycle_stage}."
        )


_is_float = float.__instancecheck__
_INT = {int}  # exactly int: bool is an int subclass but not a timestamp or a step
_FLOAT = {float}
_STR = {str}


def _checked_metrics(metrics: Sequence[Metric]) -> list[Metric]:
    """``validate_metric`` of every point, in order, so the first invalid one is reported.

    A batch of ``Metric`` tuples whose fields already have their final types (what the REST
    handler and the client build) is checked column by column at C speed and kept as it is:
    for such points ``validate_metric`` returns exactly the same values.
    """
    if metrics and set(map(type, metrics)) == {Metric}:
        keys, values, timestamps, steps = zip(*metrics)
        if (set(map(type, keys)) <= _STR and set(map(type, values)) <= _FLOAT
                and set(map(type, timestamps)) <= _INT and set(map(type, steps)) <= _INT
                and min(timestamps) >= 0 and max(timestamps) <= validation.INT64_MAX
                and min(steps) >= validation.INT64_MIN and max(steps) <= validation.INT64_MAX
                and _valid_keys("Metric", set(keys))):
            return list(metrics)
    return [Metric(*validation.validate_metric(m.key, m.value, m.timestamp, m.step))
            for m in metrics]


def _valid_keys(kind: str, keys: set[str]) -> bool:
    """Whether every key passes ``validate_key`` (without raising)."""
    try:
        for key in keys - validation.checked_keys:
            validation.validate_key(kind, key)
    except InvalidParameterValue:
        return False
    return True


def _view_type(value: ViewType | str | None) -> ViewType:
    if value is None:
        return ViewType.ACTIVE_ONLY
    try:
        return ViewType(value)
    except ValueError:
        raise InvalidParameterValue(
            f"Invalid view type '{value}'. Use one of: {', '.join(v.value for v in ViewType)}."
        ) from None


def _status(value: RunStatus | str) -> RunStatus:
    try:
        return RunStatus(value)
    except ValueError:
        raise InvalidParameterValue(
            f"Invalid run status '{value}'. Use one of: "
            f"{', '.join(s.value for s in RunStatus)}."
        ) from None


class TrackingService:
    """Tracking rules over ``store``; methods mirror MLflow's tracking API.

    :param confine_artifacts: refuse experiment artifact locations outside the store's
        artifact root. The REST server turns this on: a remote caller must not point an
        experiment at an arbitrary server folder and then list or download from it.
    :param object_stores: how artifact repositories reach object stores (default: from the
        environment, e.g. ``MLFLOW_S3_ENDPOINT_URL``).
    """

    def __init__(self, store: Store, confine_artifacts: bool = False,
                 object_stores: ObjectStoreSettings | None = None):
        self.store = store
        self.confine_artifacts = confine_artifacts
        self.object_stores = object_stores or ObjectStoreSettings.from_environment()

    # -- experiments -------------------------------------------------------------------------

    def create_experiment(
        self, name: str, artifact_location: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str:
        name = validation.validate_experiment_name(name)
        checked_tags = dict(validation.validate_experiment_tag(k, v)
                            for k, v in (tags or {}).items())
        if artifact_location:
            # Local folders (plain paths or file: URIs) and object-store URIs; refuse anything
            # else rather than storing a location no repository can open.
            if is_object_store_uri(artifact_location):
                ObjectLocation.parse(artifact_location)
            else:
                uri_to_local_path(artifact_location)
            if self.confine_artifacts and not uri_inside(
                    artifact_location, artifact_root_uri(self.store.artifact_root)):
                raise InvalidParameterValue(
                    f"Invalid artifact location '{artifact_location}': it must lie inside the "
                    "server's artifact root (use an mlflow-artifacts:/ URI or leave it empty)."
                )
        return self.store.create_experiment(name, artifact_location or None, checked_tags,
                                            now_ms())

    def get_experiment(self, experiment_id: str) -> Experiment:
        experiment = self.store.get_experiment(validation.validate_experiment_id(experiment_id))
        if experiment is None:
            raise ResourceDoesNotExist(f"No Experiment with id={experiment_id} exists")
        return experiment

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        return self.store.get_experiment_by_name(validation.validate_experiment_name(name))

    def search_experiments(
        self,
        view_type: ViewType | str | None = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList:
        max_results = validation.validate_max_results(
            max_results, validation.MAX_RESULTS_SEARCH_EXPERIMENTS
        )
        comparisons = parse_filter(filter_string, EXPERIMENT_ATTRIBUTES)
        terms = parse_order_by(order_by, EXPERIMENT_ATTRIBUTES)
        offset = parse_page_token(page_token)
        found = self.store.search_experiments(
            _view_type(view_type), comparisons, terms, max_results + 1, offset
        )
        token = make_page_token(offset + max_results) if len(found) > max_results else None
        return PagedList(found[:max_results], token)

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        new_name = validation.validate_experiment_name(new_name)
        experiment = self.get_experiment(experiment_id)
        if experiment.lifecycle_stage != LifecycleStage.ACTIVE:
            raise InvalidParameterValue(
                f"Cannot rename a non-active experiment {experiment_id}: restore it first."
            )
        self.store.rename_experiment(experiment.experiment_id, new_name, now_ms())

    def delete_experiment(self, experiment_id: str) -> None:
        experiment = self.get_experiment(experiment_id)
        if experiment.experiment_id == DEFAULT_EXPERIMENT_ID:
            raise InvalidParameterValue(
                "Cannot delete the default experiment '0'. This is an internally reserved "
                "experiment."
            )
        self.store.set_experiment_lifecycle(
            experiment.experiment_id, LifecycleStage.DELETED, now_ms()
        )

    def restore_experiment(self, experiment_id: str) -> None:
        experiment = self.get_experiment(experiment_id)
        if experiment.lifecycle_stage != LifecycleStage.DELETED:
            raise InvalidParameterValue(
                f"Cannot restore an active experiment {experiment_id}: it is not deleted."
            )
        self.store.set_experiment_lifecycle(
            experiment.experiment_id, LifecycleStage.ACTIVE, now_ms()
        )

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        key, value = validation.validate_experiment_tag(key, value)
        experiment = self._active_experiment(experiment_id)
        self.store.set_experiment_tag(experiment.experiment_id, key, value)

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        key = validation.validate_key("Experiment tag", key)
        experiment = self._active_experiment(experiment_id)
        if not self.store.delete_experiment_tag(experiment.experiment_id, key):
            raise ResourceDoesNotExist(
                f"No tag with name: {key} in experiment with id {experiment_id}"
            )

    def _active_experiment(self, experiment_id: str) -> Experiment:
        experiment = self.get_experiment(experiment_id)
        _require_active_experiment(experiment_id, experiment.lifecycle_stage)
        return experiment

    # -- runs --------------------------------------------------------------------------------

    def create_run(
        self,
        experiment_id: str | None = None,
        user_id: str = "",
        start_time: int | None = None,
        tags: Mapping[str, str] | None = None,
        run_name: str | None = None,
    ) -> Run:
        experiment_id = validation.validate_experiment_id(
            DEFAULT_EXPERIMENT_ID if experiment_id in (None, "") else str(experiment_id))
        checked_tags = dict(validation.validate_tag(k, v) for k, v in (tags or {}).items())
        tag_name = checked_tags.get(RUN_NAME_TAG)
        if run_name and tag_name and run_name != tag_name:
            raise InvalidParameterValue(
                f"Both 'run_name' argument and '{RUN_NAME_TAG}' tag are specified, but with "
                f"different values (run_name='{run_name}', {RUN_NAME_TAG}='{tag_name}')."
            )
        name = run_name or tag_name or random_run_name()
        validation.validate_tag(RUN_NAME_TAG, name)
        start = now_ms() if start_time is None else validation.int64(
            "start_time", start_time, "the run", minimum=0)
        return self.store.create_run(
            run_id=new_run_id(),
            experiment_id=experiment_id,
            user_id=user_id or "",
            run_name=name,
            start_time=start,
            status=RunStatus.RUNNING,
            tags=checked_tags,
            guard=_require_active_experiment,
        )

    def get_run(self, run_id: str) -> Run:
        run = self.store.get_run(validation.validate_run_id(run_id))
        if run is None:
            raise ResourceDoesNotExist(f"Run with id={run_id} not found")
        return run

    def get_run_info(self, run_id: str) -> RunInfo:
        info = self.store.get_run_info(validation.validate_run_id(run_id))
        if info is None:
            raise ResourceDoesNotExist(f"Run with id={run_id} not found")
        return info

    def _active_run(self, run_id: str) -> RunInfo:
        info = self.get_run_info(run_id)
        _require_active_run(run_id, info.lifecycle_stage)
        return info

    def update_run(
        self,
        run_id: str,
        status: RunStatus | str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo:
        self._active_run(run_id)
        checked_status = None if status is None else _status(status)
        if end_time is not None:
            end_time = validation.int64("end_time", end_time, f"run {run_id}", minimum=0)
        elif checked_status is not None and checked_status.is_terminated:
            end_time = now_ms()
        if run_name is not None:
            validation.validate_tag(RUN_NAME_TAG, run_name)
        return self.store.update_run_info(run_id, checked_status, end_time, run_name or None)

    def delete_run(self, run_id: str) -> None:
        self.get_run_info(run_id)
        self.store.set_run_lifecycle(run_id, LifecycleStage.DELETED, now_ms())

    def restore_run(self, run_id: str) -> None:
        self.get_run_info(run_id)
        self.store.set_run_lifecycle(run_id, LifecycleStage.ACTIVE, now_ms())

    # -- logging -----------------------------------------------------------------------------

    def log_metric(
        self, run_id: str, key: str, value: float, timestamp: int | None = None,
        step: int | None = 0,
    ) -> None:
        self.log_batch(run_id, metrics=[Metric(key, value, now_ms() if timestamp is None
                                               else timestamp, step or 0)])

    def log_param(self, run_id: str, key: str, value: str) -> None:
        self.log_batch(run_id, params=[Param(key, value)])

    def set_tag(self, run_id: str, key: str, value: str) -> None:
        self.log_batch(run_id, tags=[RunTag(key, value)])

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        """One request's worth of data, within MLflow's batch limits, written atomically."""
        validation.validate_batch_limits(len(metrics), len(params), len(tags))
        checked_metrics = _checked_metrics(metrics)
        checked_params = [Param(*validation.validate_param(p.key, p.value)) for p in params]
        keys = [p.key for p in checked_params]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise InvalidParameterValue(
                f"Duplicate parameter keys have been submitted: {duplicates}. Please ensure "
                "the request contains only one param value per param key."
            )
        checked_tags = [RunTag(*validation.validate_tag(t.key, t.value)) for t in tags]
        self.store.log_batch(validation.validate_run_id(run_id), checked_metrics,
                             checked_params, checked_tags, guard=_require_active_run)

    def log_metric_columns(
        self,
        run_id: str,
        columns: Mapping[str, tuple[Sequence[float], Sequence[int], Sequence[int]]],
    ) -> None:
        """Append buffered points, ``{key: (values, timestamps, steps)}``, in one transaction.

        This is the path of the background writer: no per-request batch limit (it is not a
        request), but every key and value is still checked.
        """
        _check_columns(columns)
        self.store.append_metric_columns(validation.validate_run_id(run_id), columns,
                                         guard=_require_active_run)

    def end_run(
        self,
        run_id: str,
        status: RunStatus | str = RunStatus.FINISHED,
        end_time: int | None = None,
        metric_columns: Mapping[str, tuple[Sequence[float], Sequence[int], Sequence[int]]]
        | None = None,
    ) -> RunInfo:
        """Store a run's last buffered points and end it, atomically."""
        checked_status = _status(status)
        end = now_ms() if end_time is None else validation.int64(
            "end_time", end_time, f"run {run_id}", minimum=0)
        _check_columns(metric_columns or {})
        return self.store.finish_run(validation.validate_run_id(run_id), metric_columns or {},
                                     checked_status, end, guard=_require_active_run)

    def log_inputs(
        self, run_id: str, datasets: Sequence[DatasetInput] = (),
        model_ids: Sequence[str] = (),
    ) -> None:
        """Record the datasets (and logged models) a run used."""
        for dataset_input in datasets:
            _validate_dataset_input(dataset_input)
        for model_id in model_ids:
            if self.store.get_logged_model(model_id) is None:
                raise ResourceDoesNotExist(f"Logged model with ID '{model_id}' not found.")
        self._active_run(run_id)
        self.store.log_inputs(run_id, datasets, model_ids)

    def get_logged_model(self, model_id: str) -> LoggedModel:
        model = self.store.get_logged_model(model_id) if isinstance(model_id, str) else None
        if model is None or model.lifecycle_stage != LifecycleStage.ACTIVE:
            raise ResourceDoesNotExist(f"Logged model with ID '{model_id}' not found.")
        return model

    def log_outputs(self, run_id: str, outputs: Sequence[ModelOutput]) -> None:
        """Record the logged models a run produced."""
        for output in outputs:
            if self.store.get_logged_model(output.model_id) is None:
                raise ResourceDoesNotExist(f"Logged model with ID '{output.model_id}' not found.")
            validation.int64("step", output.step, f"model output '{output.model_id}'")
        self._active_run(run_id)
        self.store.log_outputs(run_id, outputs)

    def delete_tag(self, run_id: str, key: str) -> None:
        key = validation.validate_key("Tag", key)
        self._active_run(run_id)
        if not self.store.delete_tag(run_id, key):
            raise ResourceDoesNotExist(f"No tag with name: {key} in run with id {run_id}")

    # -- reading -----------------------------------------------------------------------------

    def get_metric_history(
        self, run_id: str, key: str, max_results: int | None = None,
        page_token: str | None = None,
    ) -> PagedList:
        """The whole history without ``max_results`` (MLflow's behaviour), else one page."""
        key = validation.validate_key("Metric", key)
        self.get_run_info(run_id)
        if max_results is None and not page_token:
            return PagedList(self.store.get_metric_history(run_id, key))
        limit = validation.validate_max_results(
            MAX_RESULTS_METRIC_HISTORY_PAGE if max_results is None else max_results,
            MAX_RESULTS_METRIC_HISTORY_PAGE,
        )
        offset = parse_page_token(page_token)
        points = self.store.get_metric_history(run_id, key, limit + 1, offset)
        token = make_page_token(offset + limit) if len(points) > limit else None
        return PagedList(points[:limit], token)

    def get_metric_history_downsampled(
        self,
        run_ids: Sequence[str],
        keys: Sequence[str] | None = None,
        max_points: int = 1000,
        x_axis: str = "step",
    ) -> list[MetricSeries]:
        """For every (run, key) that has points: at most ``max_points`` of them, keeping the
        first and last points and each x-range's minimum and maximum."""
        if isinstance(run_ids, str):
            run_ids = [run_ids]
        if not run_ids:
            raise InvalidParameterValue("Missing value for required parameter 'run_ids'.")
        for run_id in run_ids:
            validation.validate_run_id(run_id)
        if keys is not None:
            keys = [validation.validate_key("Metric", k) for k in keys]
        max_points = validation.validate_max_results(
            max_points, validation.MAX_DOWNSAMPLED_POINTS, "max_points"
        )
        if max_points < 3:
            raise InvalidParameterValue("Invalid value for 'max_points': it must be at least 3.")
        downsampling.check_x_axis(x_axis)
        series = []
        for info in self.store.get_metric_series(list(run_ids), keys):
            level = downsampling.summary_level(info.point_count, max_points)
            if level is None:
                points = self.store.read_metric_points(info.series_id)
                resolution = 1
            else:
                points = self.store.read_metric_summary_points(info.series_id, level)
                resolution = downsampling.LEVEL_SIZES[level]
            rows = downsampling.reduce_points(points, max_points, x_axis, info.run_start_time)
            series.append(
                MetricSeries(
                    run_id=info.run_id,
                    key=info.key,
                    x_axis=x_axis,
                    x=[r[0] for r in rows],
                    steps=[r[1] for r in rows],
                    timestamps=[r[2] for r in rows],
                    values=[r[3] for r in rows],
                    total_points=info.point_count,
                    resolution=resolution,
                )
            )
        return series

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        run_view_type: ViewType | str | None = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList:
        if isinstance(experiment_ids, str):
            experiment_ids = [experiment_ids]
        max_results = validation.validate_max_results(
            max_results, validation.MAX_RESULTS_SEARCH_RUNS
        )
        comparisons = parse_filter(filter_string, RUN_ATTRIBUTES)
        terms = parse_order_by(order_by, RUN_ATTRIBUTES)
        offset = parse_page_token(page_token)
        runs = self.store.search_runs(
            [validation.validate_experiment_id(e) for e in experiment_ids], comparisons, terms,
            _view_type(run_view_type), max_results + 1, offset,
        )
        token = make_page_token(offset + max_results) if len(runs) > max_results else None
        return PagedList(runs[:max_results], token)

    # -- artifacts ---------------------------------------------------------------------------

    def artifact_repository(self, run_id: str) -> ArtifactRepository:
        return self.repository(self.get_run_info(run_id).artifact_uri)

    def repository(self, uri: str) -> ArtifactRepository:
        """The artifact repository at ``uri`` (a run's, a logged model's, the store's root)."""
        return artifact_repository(uri, self.object_stores)

    def log_artifact(self, run_id: str, local_path: str | os.PathLike,
                     artifact_path: str | None = None) -> None:
        self._active_run(run_id)
        self.artifact_repository(run_id).log_artifact(local_path, safe_relative_path(
            artifact_path))

    def log_artifacts(self, run_id: str, local_dir: str | os.PathLike,
                      artifact_path: str | None = None) -> None:
        self._active_run(run_id)
        self.artifact_repository(run_id).log_artifacts(local_dir, safe_relative_path(
            artifact_path))

    def write_artifact(self, run_id: str, artifact_file: str, data: bytes) -> None:
        self._active_run(run_id)
        self.artifact_repository(run_id).write_bytes(artifact_file, data)

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]:
        return self.artifact_repository(run_id).list_artifacts(path)

    def download_artifacts(self, run_id: str, path: str | None,
                           dst_path: str | os.PathLike) -> str:
        Path(dst_path).mkdir(parents=True, exist_ok=True)
        return self.artifact_repository(run_id).download_artifacts(path, dst_path)
