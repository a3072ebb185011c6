"""The fluent API: ``labtrack.start_run()``, ``labtrack.log_metric()`` and friends.

There is a current tracking URI, a current experiment and, per thread, a stack of active runs
(as in MLflow). ``log_metric`` buffers the point and returns at once; the background writer
stores it within about a second, ``flush()``/``end_run()`` store everything, and so does a
normal interpreter exit.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from labtrack import config
from labtrack.client.run_context import NOTE_TAG, PARENT_RUN_ID_TAG, default_run_tags
from labtrack.client.tracking import TrackingClient, iter_runs
from labtrack.client.writer import MetricWriterError
from labtrack.entities import (
    Experiment,
    LifecycleStage,
    Param,
    Run,
    RunData,
    RunInfo,
    RunStatus,
    RunTag,
    ViewType,
)
from labtrack.errors import InvalidParameterValue, LabtrackError, ResourceAlreadyExists
from labtrack.services import validation

_tracking_uri: str | None = None
_client: TrackingClient | None = None
_experiment_id: str | None = None
_last_active_run_id: str | None = None
_thread_state = threading.local()
_checked_keys = validation.checked_keys
_state_lock = threading.Lock()


class ActiveRun:
    """The run ``start_run`` returned; as a context manager it ends the run on exit —
    FINISHED, or FAILED on an exception (KILLED on Ctrl-C)."""

    def __init__(self, run: Run, client: TrackingClient):
        self._run = run
        self._client = client
        self._pid = os.getpid()
        self.run_id = run.info.run_id  # a plain attribute: log_metric reads it every call

    def __repr__(self) -> str:
        return f"<ActiveRun {self.info.run_name!r} run_id={self.run_id}>"

    @property
    def info(self) -> RunInfo:
        """The run's info as it was when the run became active."""
        return self._run.info

    @property
    def data(self) -> RunData:
        """What the run has recorded so far (buffered points included)."""
        return self._client.get_run(self.run_id).data

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            status = RunStatus.FINISHED
        elif issubclass(exc_type, KeyboardInterrupt):
            status = RunStatus.KILLED
        else:
            status = RunStatus.FAILED
        try:
            _end(self, status)
        except LabtrackError as error:
            if exc is None:
                raise
            # Do not hide the exception that ended the run; carry the storage error along.
            exc.add_note(f"labtrack: while ending run {self.run_id}: {error}")


def _stack() -> list[ActiveRun]:
    stack = getattr(_thread_state, "runs", None)
    if stack is None:
        stack = _thread_state.runs = []
    return stack


# -- tracking URI and experiment -------------------------------------------------------------


def set_tracking_uri(uri: str | os.PathLike | None) -> None:
    """Log to ``uri`` (a folder or ``.db`` path or ``sqlite:///…``); ``None`` restores the
    default (``LABTRACK_TRACKING_URI`` or the embedded store)."""
    global _tracking_uri, _client
    with _state_lock:
        if _client is not None:
            _client.flush()
        _tracking_uri = None if uri is None else str(uri)
        _client = None


def get_tracking_uri() -> str:
    return _tracking_uri or config.default_tracking_uri()


def _get_client() -> TrackingClient:
    global _client
    client = _client
    if client is None:
        with _state_lock:
            if _client is None:
                _client = TrackingClient(get_tracking_uri())
            client = _client
    return client


def set_experiment(
    experiment_name: str | None = None, experiment_id: str | None = None
) -> Experiment:
    """Make an experiment current for new runs; by name it is created when missing."""
    global _experiment_id
    if (experiment_name is None) == (experiment_id is None):
        raise InvalidParameterValue("Pass exactly one of experiment_name or experiment_id.")
    client = _get_client()
    if experiment_id is not None:
        experiment = client.get_experiment(str(experiment_id))
    else:
        experiment = _get_or_create_experiment(client, experiment_name)
    if experiment.lifecycle_stage != LifecycleStage.ACTIVE:
        raise InvalidParameterValue(
            f"Cannot set a deleted experiment '{experiment.name}' as the active experiment. "
            "Restore it first (TrackingClient.restore_experiment)."
        )
    _experiment_id = experiment.experiment_id
    return experiment


def _get_or_create_experiment(client: TrackingClient, name: str) -> Experiment:
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            return client.get_experiment(client.create_experiment(name))
        except ResourceAlreadyExists:  # another process created it just now
            experiment = client.get_experiment_by_name(name)
    return experiment


def _current_experiment_id(client: TrackingClient) -> str:
    if _experiment_id is not None:
        return _experiment_id
    name = os.environ.get(config.EXPERIMENT_NAME_ENV)
    if name:
        return _get_or_create_experiment(client, name).experiment_id
    return os.environ.get(config.EXPERIMENT_ID_ENV) or "0"


# -- runs ------------------------------------------------------------------------------------


def start_run(
    run_id: str | None = None,
    experiment_id: str | None = None,
    run_name: str | None = None,
    nested: bool = False,
    tags: Mapping[str, Any] | None = None,
    description: str | None = None,
    parent_run_id: str | None = None,
) -> ActiveRun:
    """Start a new run, or resume ``run_id``, and make it the active run.

    Use it as a context manager (``with labtrack.start_run():``) so the run always ends.
    ``nested=True`` starts a child of the active run. Without arguments and with
    ``LABTRACK_RUN_ID`` set, that run is resumed (how ``labtrack run`` hands a run to a
    project).
    """
    global _last_active_run_id
    client = _get_client()
    stack = _stack()
    if stack and not nested:
        raise InvalidParameterValue(
            f"Run with UUID {stack[-1].run_id} is already active. To start a new run, first "
            "end the current run with labtrack.end_run(). To start a nested run, call "
            "start_run with nested=True."
        )
    if run_id is None and not stack:
        run_id = os.environ.get(config.RUN_ID_ENV) or None
    if run_id is not None:
        if any(active.run_id == run_id for active in stack):
            raise InvalidParameterValue(f"Run {run_id} is already active.")
        info = client.service.get_run_info(run_id)
        if info.lifecycle_stage != LifecycleStage.ACTIVE:
            raise InvalidParameterValue(
                f"Cannot start run with ID {run_id} because it is in the deleted state."
            )
        if experiment_id is not None and str(experiment_id) != info.experiment_id:
            raise InvalidParameterValue(
                f"Run {run_id} belongs to experiment {info.experiment_id}, not {experiment_id}."
            )
        client.update_run(run_id, RunStatus.RUNNING, name=run_name)
        for key, value in (tags or {}).items():
            client.set_tag(run_id, key, value)
        run = client.get_run(run_id)
    else:
        parent = parent_run_id or (stack[-1].run_id if nested and stack else None)
        run_tags = default_run_tags()
        run_tags.update({k: str(v) for k, v in (tags or {}).items()})
        if parent:
            run_tags[PARENT_RUN_ID_TAG] = parent
        if description:
            run_tags[NOTE_TAG] = description
        if experiment_id is None:
            experiment_id = (
                client.service.get_run_info(parent).experiment_id
                if parent else _current_experiment_id(client)
            )
        run = client.create_run(str(experiment_id), tags=run_tags, run_name=run_name)
    active = ActiveRun(run, client)
    stack.append(active)
    _last_active_run_id = active.run_id
    return active


def active_run() -> ActiveRun | None:
    """The innermost active run of this thread."""
    stack = _stack()
    return stack[-1] if stack else None


def last_active_run() -> Run | None:
    """The active run, or the most recently ended one."""
    if _last_active_run_id is None:
        return None
    return _get_client().get_run(_last_active_run_id)


def end_run(status: RunStatus | str = RunStatus.FINISHED) -> None:
    """End the innermost active run (buffered points are stored first)."""
    stack = _stack()
    if stack:
        _end(stack[-1], status)


def _end(active: ActiveRun, status: RunStatus | str) -> None:
    """Store the run's buffered points and set its final status (one transaction on a local
    store); the run leaves the stack even when that fails, and every failure is reported,
    including points that earlier background writes could not store."""
    errors: list[LabtrackError] = []
    try:
        active._client.set_terminated(active.run_id, status)
    except LabtrackError as error:
        errors.append(error)
    finally:
        stack = _stack()
        if active in stack:
            stack.remove(active)
    try:
        active._client._writer.raise_errors()
    except MetricWriterError as error:
        errors.append(error)
    if errors:
        for other in errors[1:]:
            errors[0].add_note(f"Also: {other}")
        raise errors[0]


def _active_run_id() -> str:
    stack = getattr(_thread_state, "runs", None)
    if stack:
        return stack[-1].run_id
    return start_run().run_id


# -- logging ---------------------------------------------------------------------------------


def log_metric(
    key: str, value: float, step: int | None = None, timestamp: int | None = None,
    run_id: str | None = None,
) -> None:
    """Buffer one point of metric ``key`` and return immediately. Starts a run if none is
    active. NaN and ±inf are stored exactly."""
    # The hot path of a training loop: every step below is the cheap case of a check.
    if run_id is None:
        stack = getattr(_thread_state, "runs", None)
        run_id = stack[-1].run_id if stack else _active_run_id()
    client = _client or _get_client()
    if key not in _checked_keys:
        validation.validate_key("Metric", key)
    if type(value) is not float:
        value = validation.metric_value(key, value, timestamp)
    if timestamp is None:
        timestamp = int(time.time() * 1000)
    elif type(timestamp) is not int or timestamp < 0:
        timestamp = validation.int64("timestamp", timestamp, f"metric '{key}'", minimum=0)
    if step is None:
        step = 0
    elif type(step) is not int:
        step = validation.int64("step", step, f"metric '{key}'")
    client._writer.add(run_id, key, value, timestamp, step)


def log_metrics(
    metrics: Mapping[str, float], step: int | None = None, timestamp: int | None = None,
    run_id: str | None = None,
) -> None:
    """Buffer several metrics logged at the same step and time."""
    if timestamp is None:
        timestamp = int(time.time() * 1000)
    for key, value in metrics.items():
        log_metric(key, value, step, timestamp, run_id)


def log_param(key: str, value: Any) -> Any:
    """Record a param (write-once: the same value again is fine, another one is an error)."""
    _get_client().log_param(_active_run_id(), key, value)
    return value


def log_params(params: Mapping[str, Any]) -> None:
    run_id = _active_run_id()
    items = [Param(str(k), str(v)) for k, v in params.items()]
    for start in range(0, len(items), validation.MAX_PARAMS_TAGS_PER_BATCH):
        _get_client().log_batch(
            run_id, params=items[start:start + validation.MAX_PARAMS_TAGS_PER_BATCH]
        )


def set_tag(key: str, value: Any) -> None:
    _get_client().set_tag(_active_run_id(), key, value)


def set_tags(tags: Mapping[str, Any]) -> None:
    run_id = _active_run_id()
    items = [RunTag(str(k), str(v)) for k, v in tags.items()]
    for start in range(0, len(items), validation.MAX_PARAMS_TAGS_PER_BATCH):
        _get_client().log_batch(
            run_id, tags=items[start:start + validation.MAX_PARAMS_TAGS_PER_BATCH]
        )


def delete_tag(key: str) -> None:
    _get_client().delete_tag(_active_run_id(), key)


def log_artifact(local_path: str | os.PathLike, artifact_path: str | None = None) -> None:
    _get_client().log_artifact(_active_run_id(), local_path, artifact_path)


def log_artifacts(local_dir: str | os.PathLike, artifact_path: str | None = None) -> None:
    _get_client().log_artifacts(_active_run_id(), local_dir, artifact_path)


def log_text(text: str, artifact_file: str) -> None:
    _get_client().log_text(_active_run_id(), text, artifact_file)


def log_dict(dictionary: Any, artifact_file: str) -> None:
    _get_client().log_dict(_active_run_id(), dictionary, artifact_file)


def log_figure(figure: Any, artifact_file: str, save_kwargs: Mapping | None = None) -> None:
    _get_client().log_figure(_active_run_id(), figure, artifact_file, save_kwargs)


def get_artifact_uri(artifact_path: str | None = None) -> str:
    """The URI of the active run's artifacts, or of one artifact path inside them."""
    run_id = _active_run_id()
    base = _get_client().service.get_run_info(run_id).artifact_uri
    return base if not artifact_path else f"{base.rstrip('/')}/{artifact_path.lstrip('/')}"


def register_model(model_uri: str, name: str, tags: Mapping[str, Any] | None = None,
                   description: str | None = None):
    """Register ``model_uri`` (``runs:/<run_id>/<path>``, ``models:/<model_id>`` or a path)
    as a new version of registered model ``name``, creating the model when missing."""
    return _get_client().register_model(model_uri, name, tags, description)


def flush() -> None:
    """Store every buffered metric point now."""
    _get_client().flush()


# -- reading ---------------------------------------------------------------------------------


def get_run(run_id: str) -> Run:
    return _get_client().get_run(run_id)


def get_experiment(experiment_id: str) -> Experiment:
    return _get_client().get_experiment(experiment_id)


def get_experiment_by_name(name: str) -> Experiment | None:
    return _get_client().get_experiment_by_name(name)


def create_experiment(
    name: str, artifact_location: str | None = None, tags: Mapping[str, Any] | None = None
) -> str:
    return _get_client().create_experiment(name, artifact_location, tags)


def delete_experiment(experiment_id: str) -> None:
    _get_client().delete_experiment(experiment_id)


def search_experiments(
    view_type: ViewType | str = ViewType.ACTIVE_ONLY,
    max_results: int | None = None,
    filter_string: str | None = None,
    order_by: Sequence[str] | None = None,
) -> list[Experiment]:
    """All matching experiments (every page, or the first ``max_results``)."""
    client = _get_client()
    found: list[Experiment] = []
    token = None
    while max_results is None or len(found) < max_results:
        page_size = validation.MAX_RESULTS_SEARCH_EXPERIMENTS if max_results is None else min(
            max_results - len(found), validation.MAX_RESULTS_SEARCH_EXPERIMENTS)
        page = client.search_experiments(view_type, page_size, filter_string, order_by, token)
        found.extend(page)
        token = page.token
        if not token:
            break
    return found


def search_runs(
    experiment_ids: Sequence[str] | None = None,
    filter_string: str = "",
    run_view_type: ViewType | str = ViewType.ACTIVE_ONLY,
    max_results: int = 100_000,
    order_by: Sequence[str] | None = None,
    output_format: str | None = None,
    search_all_experiments: bool = False,
    experiment_names: Sequence[str] | None = None,
):
    """Runs matching ``filter_string`` (MLflow's grammar), as a pandas DataFrame when pandas
    is installed (``output_format="pandas"``), else as a list of ``Run``
    (``output_format="list"``). Searches the current experiment unless told otherwise."""
    client = _get_client()
    if output_format is None:
        output_format = "pandas" if _pandas() is not None else "list"
    if output_format not in ("pandas", "list"):
        raise InvalidParameterValue(
            f"Unsupported output_format '{output_format}': use 'pandas' or 'list'."
        )
    if experiment_names:
        ids = []
        for name in experiment_names:
            experiment = client.get_experiment_by_name(name)
            if experiment is not None:
                ids.append(experiment.experiment_id)
        experiment_ids = ids
    elif search_all_experiments:
        experiment_ids = [e.experiment_id for e in search_experiments(run_view_type)]
    elif experiment_ids is None:
        experiment_ids = [_current_experiment_id(client)]
    elif isinstance(experiment_ids, str):
        experiment_ids = [experiment_ids]
    runs: list[Run] = []
    if experiment_ids:
        for run in iter_runs(
            client, experiment_ids, filter_string=filter_string, run_view_type=run_view_type,
            max_results=min(max_results, validation.MAX_RESULTS_SEARCH_RUNS), order_by=order_by,
        ):
            runs.append(run)
            if len(runs) >= max_results:
                break
    if output_format == "list":
        return runs
    return runs_to_dataframe(runs)


def _pandas():
    try:
        import pandas
    except ImportError:
        return None
    return pandas


def runs_to_dataframe(runs: Sequence[Run]):
    """MLflow's layout: run_id, experiment_id, status, artifact_uri, start_time, end_time,
    then ``metrics.*``, ``params.*`` and ``tags.*`` columns."""
    pandas = _pandas()
    if pandas is None:
        raise InvalidParameterValue("output_format='pandas' needs pandas: pip install pandas.")
    rows = []
    for run in runs:
        info = run.info
        row: dict[str, Any] = {
            "run_id": info.run_id,
            "experiment_id": info.experiment_id,
            "status": str(info.status),
            "artifact_uri": info.artifact_uri,
            "start_time": info.start_time,
            "end_time": info.end_time,
        }
        row.update({f"metrics.{k}": v for k, v in run.data.metrics.items()})
        row.update({f"params.{k}": v for k, v in run.data.params.items()})
        row.update({f"tags.{k}": v for k, v in run.data.tags.items()})
        rows.append(row)
    base = ["run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time"]
    frame = pandas.DataFrame(rows, columns=None if rows else base)
    for column in ("start_time", "end_time"):
        frame[column] = pandas.to_datetime(frame[column], unit="ms", utc=True)
    extra = sorted(
        (c for c in frame.columns if c not in base),
        key=lambda c: (("metrics.", "params.", "tags.").index(c.split(".", 1)[0] + "."), c),
    )
    return frame[base + extra]


# -- process exit ----------------------------------------------------------------------------


def _end_runs_at_exit() -> None:
    """End the runs this process left active: FAILED when an uncaught exception is ending a
    script, FINISHED otherwise (as MLflow does). Runs inherited through fork() are left to
    the process that started them."""
    died_of_exception = hasattr(sys, "last_value") and "IPython" not in sys.modules
    status = RunStatus.FAILED if died_of_exception else RunStatus.FINISHED
    for active in reversed(list(_stack())):
        if active._pid != os.getpid():
            continue
        try:
            _end(active, status)
        except Exception as error:  # the interpreter is exiting: report, do not raise
            print(f"labtrack: could not end run {active.run_id}: {error}", file=sys.stderr)


atexit.register(_end_runs_at_exit)
