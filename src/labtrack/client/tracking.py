"""``TrackingClient``: the Python API over a tracking store, with MLflow's method names.

A client for a local URI talks to the store in-process (the SQLite file the Jupyter server also
reads); all clients of one URI in a process share the store connections and one background
metric writer.
"""

from __future__ import annotations

import io
import json
import os
import posixpath
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labtrack import config
from labtrack.client.logged_models import LoggedModelsClientMixin
from labtrack.client.registry import RegistryClientMixin
from labtrack.client.rest import TOKEN_ENV, RestTrackingService
from labtrack.client.rest_registry import RestRegistryService
from labtrack.client.run_context import USER_TAG, current_user
from labtrack.client.writer import MetricWriter, MetricWriterError
from labtrack.entities import (
    Experiment,
    FileInfo,
    Metric,
    MetricSeries,
    PagedList,
    Param,
    Run,
    RunInfo,
    RunStatus,
    RunTag,
    ViewType,
)
from labtrack.errors import InvalidParameterValue, LabtrackError
from labtrack.services import TrackingService, validation
from labtrack.services.permissions import RegistrySettings
from labtrack.services.registry import RegistryService
from labtrack.services.tracking import now_ms
from labtrack.services.webhook_delivery import WebhookDispatcher
from labtrack.store import open_store
from labtrack.store.uris import is_postgres_uri


@dataclass
class _Backend:
    service: TrackingService | RestTrackingService
    registry: RegistryService | RestRegistryService
    writer: MetricWriter


_backends: dict[tuple[str, str], _Backend] = {}
_backends_lock = threading.Lock()


def _is_remote(tracking_uri: str) -> bool:
    return tracking_uri.startswith(("http://", "https://"))


def _backend(tracking_uri: str, token: str | None = None) -> _Backend:
    """One service and one writer per store (and, for a server, per token: each token is
    another user) per process, whichever client asks."""
    remote = _is_remote(tracking_uri)
    if remote:
        token = token or os.environ.get(TOKEN_ENV)
        key = (tracking_uri.rstrip("/"), token or "")
    elif is_postgres_uri(tracking_uri):
        key = (tracking_uri, "")
    else:
        key = (str(config.sqlite_database_path(tracking_uri)), "")
    with _backends_lock:
        backend = _backends.get(key)
        if backend is None:
            if remote:
                service = RestTrackingService(key[0], token=token)
                registry = RestRegistryService(service)
            else:
                service = TrackingService(open_store(key[0]))
                registry = _local_registry(service)
            writer = MetricWriter(service.log_metric_columns, interval=config.flush_interval())
            backend = _backends[key] = _Backend(service, registry, writer)
        return backend


def _local_registry(service: TrackingService) -> RegistryService:
    """In-process registry of a local store: its one user administers it (as in single-user
    Jupyter) and may approve their own requests — the distinct-approver rule needs a second
    person, which only a shared server has. Events still reach the store's webhooks."""
    allowed = config.webhook_allowed_hosts()
    settings = RegistrySettings(admins=frozenset({current_user()}),
                                require_distinct_approver=frozenset(),
                                webhook_allowed_hosts=allowed)
    return RegistryService(service, settings, WebhookDispatcher(service.store, allowed))


class TrackingClient(RegistryClientMixin, LoggedModelsClientMixin):
    """Experiments, runs, metrics, params, tags and artifacts of one tracking URI, its
    model registry (see ``RegistryClientMixin``) and its logged models (see
    ``LoggedModelsClientMixin``).

    :param tracking_uri: a folder or ``.db`` path or ``sqlite:///…`` URI for a local store,
        ``postgresql://…`` for a labtrack server's database (needs ``labtrack[postgres]``), or
        ``http(s)://…`` for a labtrack server;
    :param token: the server token (default ``LABTRACK_TRACKING_TOKEN``); clients with
        different tokens act as different users;
        default ``LABTRACK_TRACKING_URI`` or the embedded store in the user's data directory.
    """

    def __init__(self, tracking_uri: str | os.PathLike | None = None,
                 token: str | None = None):
        self.tracking_uri = str(tracking_uri) if tracking_uri else config.default_tracking_uri()
        backend = _backend(self.tracking_uri, token)
        self._service = backend.service
        self._registry = backend.registry
        self._writer = backend.writer
        self._user = current_user()

    def __repr__(self) -> str:
        return f"TrackingClient({self.tracking_uri!r})"

    @property
    def service(self) -> TrackingService:
        return self._service

    def flush(self) -> None:
        """Store every buffered metric point; raises if some could not be stored."""
        self._writer.flush()

    # -- experiments -------------------------------------------------------------------------

    def create_experiment(
        self, name: str, artifact_location: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> str:
        return self._service.create_experiment(
            name, artifact_location, {k: str(v) for k, v in (tags or {}).items()}
        )

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self._service.get_experiment(experiment_id)

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        return self._service.get_experiment_by_name(name)

    def search_experiments(
        self,
        view_type: ViewType | str = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList:
        return self._service.search_experiments(
            view_type, max_results, filter_string, order_by, page_token
        )

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        self._service.rename_experiment(experiment_id, new_name)

    def delete_experiment(self, experiment_id: str) -> None:
        self._service.delete_experiment(experiment_id)

    def restore_experiment(self, experiment_id: str) -> None:
        self._service.restore_experiment(experiment_id)

    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        self._service.set_experiment_tag(experiment_id, key, str(value))

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        self._service.delete_experiment_tag(experiment_id, key)

    # -- runs --------------------------------------------------------------------------------

    def create_run(
        self,
        experiment_id: str | None = None,
        start_time: int | None = None,
        tags: Mapping[str, Any] | None = None,
        run_name: str | None = None,
        user_id: str | None = None,
    ) -> Run:
        tags = {k: str(v) for k, v in (tags or {}).items()}
        user = user_id or tags.get(USER_TAG) or current_user()
        return self._service.create_run(experiment_id, user, start_time, tags, run_name)

    def get_run(self, run_id: str) -> Run:
        self._writer.flush()
        return self._service.get_run(run_id)

    def update_run(
        self, run_id: str, status: RunStatus | str | None = None, name: str | None = None
    ) -> RunInfo:
        return self._service.update_run(run_id, status=status, run_name=name)

    def set_terminated(
        self, run_id: str, status: RunStatus | str = RunStatus.FINISHED,
        end_time: int | None = None,
    ) -> RunInfo:
        """End a run: its buffered points are stored and its status set in one step."""
        columns = self._writer.take(run_id)
        try:
            info = self._service.end_run(run_id, status, end_time, columns)
            self._writer.announce({run_id})
            return info
        except LabtrackError as error:
            lost = sum(len(c[0]) for c in columns.values())
            if not lost:
                raise
            raise MetricWriterError(
                f"{lost} buffered metric point(s) could not be stored, and run {run_id} could "
                f"not be ended: {error}", [error]) from error

    def delete_run(self, run_id: str) -> None:
        self._writer.flush()
        self._service.delete_run(run_id)

    def restore_run(self, run_id: str) -> None:
        self._service.restore_run(run_id)

    def search_runs(
        self,
        experiment_ids: str | Sequence[str],
        filter_string: str = "",
        run_view_type: ViewType | str = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList:
        self._writer.flush()
        return self._service.search_runs(
            experiment_ids, filter_string, run_view_type, max_results, order_by, page_token
        )

    # -- logging -----------------------------------------------------------------------------

    def log_metric(
        self,
        run_id: str,
        key: str,
        value: float,
        timestamp: int | None = None,
        step: int | None = None,
        synchronous: bool = True,
    ) -> None:
        """Log one point. With ``synchronous=False`` it is buffered and written in the
        background (see ``flush``)."""
        if synchronous:
            self._service.log_metric(run_id, key, value, timestamp, step or 0)
            return
        key, value, timestamp, step = validation.validate_metric(
            key, value, now_ms() if timestamp is None else timestamp, step or 0
        )
        self._writer.add(validation.validate_run_id(run_id), key, value, timestamp, step)

    def log_param(self, run_id: str, key: str, value: Any) -> Any:
        self._service.log_param(run_id, key, str(value))
        return value

    def set_tag(self, run_id: str, key: str, value: Any) -> None:
        self._service.set_tag(run_id, key, str(value))

    def delete_tag(self, run_id: str, key: str) -> None:
        self._service.delete_tag(run_id, key)

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        self._service.log_batch(run_id, metrics, params, tags)

    # -- metric history ----------------------------------------------------------------------

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every point of the series, ordered by (timestamp, step, value)."""
        self._writer.flush()
        return list(self._service.get_metric_history(run_id, key))

    def get_metric_history_downsampled(
        self,
        run_ids: str | Sequence[str],
        keys: str | Sequence[str] | None = None,
        max_points: int = 1000,
        x_axis: str = "step",
    ) -> list[MetricSeries]:
        """Chart-ready series: at most ``max_points`` per (run, key), keeping the first and
        last points and the minimum and maximum of every x-range. ``x_axis`` is ``step``,
        ``time`` (ms since the epoch) or ``relative_time`` (seconds since the run started)."""
        self._writer.flush()
        if isinstance(keys, str):
            keys = [keys]
        return self._service.get_metric_history_downsampled(run_ids, keys, max_points, x_axis)

    # -- artifacts ---------------------------------------------------------------------------

    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike, artifact_path: str | None = None
    ) -> None:
        self._service.log_artifact(run_id, local_path, artifact_path)

    def log_artifacts(
        self, run_id: str, local_dir: str | os.PathLike, artifact_path: str | None = None
    ) -> None:
        self._service.log_artifacts(run_id, local_dir, artifact_path)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self._service.write_artifact(run_id, artifact_file, text.encode("utf-8"))

    def log_dict(self, run_id: str, dictionary: Any, artifact_file: str) -> None:
        """JSON, or YAML when ``artifact_file`` ends in .yaml/.yml (needs PyYAML)."""
        if artifact_file.lower().endswith((".yaml", ".yml")):
            try:
                import yaml
            except ImportError:
                raise InvalidParameterValue(
                    "Saving a dict as YAML needs PyYAML: pip install pyyaml (or use .json)."
                ) from None
            text = yaml.safe_dump(dictionary, sort_keys=False, allow_unicode=True)
        else:
            text = json.dumps(dictionary, indent=2, ensure_ascii=False)
        self.log_text(run_id, text, artifact_file)

    def log_figure(
        self, run_id: str, figure: Any, artifact_file: str,
        save_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        """A matplotlib figure (any format it can save, by file extension) or a plotly
        figure (``.html``, or an image format when kaleido is installed)."""
        extension = posixpath.splitext(artifact_file)[1].lstrip(".").lower()
        if not extension:
            raise InvalidParameterValue(
                f"Artifact file '{artifact_file}' needs an extension (.png, .svg, .pdf, .html…)."
            )
        if hasattr(figure, "savefig"):
            buffer = io.BytesIO()
            figure.savefig(buffer, format=extension, **(save_kwargs or {}))
            data = buffer.getvalue()
        elif hasattr(figure, "write_html"):
            if extension == "html":
                data = figure.to_html(**(save_kwargs or {})).encode("utf-8")
            else:
                data = figure.to_image(format=extension, **(save_kwargs or {}))
        else:
            raise InvalidParameterValue(
                f"Unsupported figure type {type(figure).__name__}: pass a matplotlib or plotly "
                "figure."
            )
        self._service.write_artifact(run_id, artifact_file, data)

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]:
        return self._service.list_artifacts(run_id, path)

    def download_artifacts(
        self, run_id: str, path: str = "", dst_path: str | os.PathLike | None = None
    ) -> str:
        """Copy an artifact file or folder to ``dst_path`` (a new temporary folder by
        default) and return the local path."""
        destination = Path(dst_path) if dst_path else Path(tempfile.mkdtemp(prefix="labtrack-"))
        return self._service.download_artifacts(run_id, path, destination)


def iter_runs(
    client: TrackingClient, experiment_ids: Iterable[str], **search: Any
) -> Iterable[Run]:
    """Every run a search matches, following page tokens."""
    experiment_ids = list(experiment_ids)
    token = None
    while True:
        page = client.search_runs(experiment_ids, page_token=token, **search)
        yield from page
        token = page.token
        if not token:
            return
