"""``RestTrackingService``: the tracking service of a remote labtrack server, over its REST API.

It has the methods of ``TrackingService``, so ``TrackingClient`` and the fluent API work the
same against ``http(s)://`` URIs. Requests are retried with backoff on 429 and 5xx answers;
the token comes from ``LABTRACK_TRACKING_TOKEN`` (sent as a bearer token). Artifacts travel
through the server's ``mlflow-artifacts`` proxy.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from labtrack.entities import (
    DatasetInput,
    Experiment,
    FileInfo,
    LoggedModel,
    Metric,
    MetricSeries,
    ModelOutput,
    PagedList,
    Param,
    Run,
    RunInfo,
    RunTag,
)
from labtrack.errors import (
    InvalidParameterValue,
    LabtrackError,
    ResourceAlreadyExists,
    ResourceDoesNotExist,
)
from labtrack.services import validation
from labtrack.services.tracking import now_ms
from labtrack.store.artifacts import safe_relative_path

TOKEN_ENV = "LABTRACK_TRACKING_TOKEN"
PROXY_SCHEME = "mlflow-artifacts:"
_ERRORS = {
    "INVALID_PARAMETER_VALUE": InvalidParameterValue,
    "RESOURCE_DOES_NOT_EXIST": ResourceDoesNotExist,
    "RESOURCE_ALREADY_EXISTS": ResourceAlreadyExists,
}
_STATUS_CODES = {400: "BAD_REQUEST", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                 404: "ENDPOINT_NOT_FOUND", 413: "REQUEST_LIMIT_EXCEEDED"}
_CHUNK_BYTES = 1024 * 1024


def _wire(value: float) -> float | str:
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _key_values(mapping: Mapping[str, str] | None) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in (mapping or {}).items()]


class RestTrackingService:
    """Tracking over HTTP; ``base_url`` is the server root (``…/labtrack`` under Jupyter)."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 120.0,
                 retries: int = 5):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        retry = Retry(
            total=retries, backoff_factor=0.5, status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=None, respect_retry_after_header=True, raise_on_status=False,
        )
        adapter = HTTPAdapter(max_retries=retry, pool_maxsize=16)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        token = token or os.environ.get(TOKEN_ENV)
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def __repr__(self) -> str:
        return f"RestTrackingService({self.base_url!r})"

    # -- transport ---------------------------------------------------------------------------

    def _call(self, method: str, route: str, body: dict | None = None,
              params: dict | None = None) -> dict[str, Any]:
        response = self.session.request(
            method, f"{self.base_url}{route}", json=body, params=params, timeout=self.timeout
        )
        self._raise_for_error(response)
        return response.json() if response.content else {}

    @staticmethod
    def _raise_for_error(response: requests.Response) -> None:
        if response.ok:
            return
        try:
            payload = response.json()
            code, message = payload["error_code"], payload["message"]
        except (ValueError, KeyError, TypeError):
            code = _STATUS_CODES.get(response.status_code, "INTERNAL_ERROR")
            message = f"HTTP {response.status_code} from {response.url}: {response.text[:300]}"
        raise _ERRORS.get(code, LabtrackError)(message, code)

    def _get(self, route: str, /, **params: Any) -> dict[str, Any]:
        return self._call("GET", route,
                          params={k: v for k, v in params.items() if v is not None})

    def _post(self, route: str, /, **body: Any) -> dict[str, Any]:
        return self._call("POST", route, body={k: v for k, v in body.items() if v is not None})

    # -- experiments -------------------------------------------------------------------------

    def create_experiment(self, name, artifact_location=None, tags=None) -> str:
        return self._post("/api/2.0/mlflow/experiments/create", name=name,
                          artifact_location=artifact_location,
                          tags=_key_values(tags))["experiment_id"]

    def get_experiment(self, experiment_id) -> Experiment:
        data = self._get("/api/2.0/mlflow/experiments/get", experiment_id=str(experiment_id))
        return Experiment.from_dict(data["experiment"])

    def get_experiment_by_name(self, name) -> Experiment | None:
        try:
            data = self._get("/api/2.0/mlflow/experiments/get-by-name", experiment_name=name)
        except ResourceDoesNotExist:
            return None
        return Experiment.from_dict(data["experiment"])

    def search_experiments(self, view_type="ACTIVE_ONLY", max_results=1000, filter_string=None,
                           order_by=None, page_token=None) -> PagedList:
        data = self._post("/api/2.0/mlflow/experiments/search", view_type=str(view_type),
                          max_results=max_results, filter=filter_string,
                          order_by=list(order_by or []), page_token=page_token)
        return PagedList([Experiment.from_dict(e) for e in data.get("experiments", [])],
                         data.get("next_page_token"))

    def rename_experiment(self, experiment_id, new_name) -> None:
        self._post("/api/2.0/mlflow/experiments/update", experiment_id=str(experiment_id),
                   new_name=new_name)

    def delete_experiment(self, experiment_id) -> None:
        self._post("/api/2.0/mlflow/experiments/delete", experiment_id=str(experiment_id))

    def restore_experiment(self, experiment_id) -> None:
        self._post("/api/2.0/mlflow/experiments/restore", experiment_id=str(experiment_id))

    def set_experiment_tag(self, experiment_id, key, value) -> None:
        self._post("/api/2.0/mlflow/experiments/set-experiment-tag",
                   experiment_id=str(experiment_id), key=key, value=value)

    def delete_experiment_tag(self, experiment_id, key) -> None:
        self._post("/api/2.0/mlflow/experiments/delete-experiment-tag",
                   experiment_id=str(experiment_id), key=key)

    # -- runs --------------------------------------------------------------------------------

    def create_run(self, experiment_id=None, user_id="", start_time=None, tags=None,
                   run_name=None) -> Run:
        data = self._post("/api/2.0/mlflow/runs/create",
                          experiment_id=None if experiment_id is None else str(experiment_id),
                          user_id=user_id or None, start_time=start_time,
                          tags=_key_values(tags), run_name=run_name)
        return Run.from_dict(data["run"])

    def get_run(self, run_id) -> Run:
        return Run.from_dict(self._get("/api/2.0/mlflow/runs/get", run_id=run_id)["run"])

    def get_run_info(self, run_id) -> RunInfo:
        return self.get_run(run_id).info

    def update_run(self, run_id, status=None, end_time=None, run_name=None) -> RunInfo:
        data = self._post("/api/2.0/mlflow/runs/update", run_id=run_id,
                          status=None if status is None else str(status), end_time=end_time,
                          run_name=run_name)
        return RunInfo.from_dict(data["run_info"])

    def delete_run(self, run_id) -> None:
        self._post("/api/2.0/mlflow/runs/delete", run_id=run_id)

    def restore_run(self, run_id) -> None:
        self._post("/api/2.0/mlflow/runs/restore", run_id=run_id)

    def log_metric(self, run_id, key, value, timestamp=None, step=0) -> None:
        self.log_batch(run_id, metrics=[Metric(key, value, now_ms() if timestamp is None
                                               else timestamp, step or 0)])

    def log_param(self, run_id, key, value) -> None:
        self._post("/api/2.0/mlflow/runs/log-parameter", run_id=run_id, key=key, value=value)

    def set_tag(self, run_id, key, value) -> None:
        self._post("/api/2.0/mlflow/runs/set-tag", run_id=run_id, key=key, value=value)

    def delete_tag(self, run_id, key) -> None:
        self._post("/api/2.0/mlflow/runs/delete-tag", run_id=run_id, key=key)

    def log_batch(self, run_id, metrics: Sequence[Metric] = (), params: Sequence[Param] = (),
                  tags: Sequence[RunTag] = ()) -> None:
        self._post(
            "/api/2.0/mlflow/runs/log-batch",
            run_id=run_id,
            metrics=[{"key": m.key, "value": _wire(m.value), "timestamp": m.timestamp,
                      "step": m.step} for m in metrics],
            params=[{"key": p.key, "value": p.value} for p in params],
            tags=[{"key": t.key, "value": t.value} for t in tags],
        )

    def log_metric_columns(self, run_id, columns) -> None:
        """Buffered points as log-batch requests of at most 1000 metrics each."""
        batch: list[dict[str, Any]] = []
        for key, (values, timestamps, steps) in columns.items():
            for value, timestamp, step in zip(values, timestamps, steps):
                batch.append({"key": key, "value": _wire(value), "timestamp": timestamp,
                              "step": step})
                if len(batch) == validation.MAX_METRICS_PER_BATCH:
                    self._post("/api/2.0/mlflow/runs/log-batch", run_id=run_id, metrics=batch)
                    batch = []
        if batch:
            self._post("/api/2.0/mlflow/runs/log-batch", run_id=run_id, metrics=batch)

    def end_run(self, run_id, status="FINISHED", end_time=None, metric_columns=None) -> RunInfo:
        """The run's last buffered points, then its final status (two calls over HTTP)."""
        if metric_columns:
            self.log_metric_columns(run_id, metric_columns)
        return self.update_run(run_id, status=status,
                               end_time=now_ms() if end_time is None else end_time)

    def log_inputs(self, run_id, datasets: Sequence[DatasetInput] = (),
                   model_ids: Sequence[str] = ()) -> None:
        self._post("/api/2.0/mlflow/runs/log-inputs", run_id=run_id,
                   datasets=[d.to_dict() for d in datasets],
                   models=[{"model_id": m} for m in model_ids])

    def get_logged_model(self, model_id) -> LoggedModel:
        data = self._get(f"/api/2.0/mlflow/logged-models/{quote(str(model_id), safe='')}")
        return LoggedModel.from_dict(data["model"])

    def log_outputs(self, run_id, outputs: Sequence[ModelOutput]) -> None:
        self._post("/api/2.0/mlflow/runs/outputs", run_id=run_id,
                   models=[o.to_dict() for o in outputs])

    def get_metric_history(self, run_id, key, max_results=None, page_token=None) -> PagedList:
        if max_results is not None or page_token:
            data = self._get("/api/2.0/mlflow/metrics/get-history", run_id=run_id,
                             metric_key=key, max_results=max_results, page_token=page_token)
            return PagedList([Metric.from_dict(m) for m in data.get("metrics", [])],
                             data.get("next_page_token"))
        points: list[Metric] = []
        token = None
        while True:  # the whole history, page by page
            data = self._get("/api/2.0/mlflow/metrics/get-history", run_id=run_id,
                             metric_key=key, max_results=25000, page_token=token)
            points.extend(Metric.from_dict(m) for m in data.get("metrics", []))
            token = data.get("next_page_token")
            if not token:
                return PagedList(points)

    def get_metric_history_downsampled(self, run_ids, keys=None, max_points=1000,
                                       x_axis="step") -> list[MetricSeries]:
        if isinstance(run_ids, str):
            run_ids = [run_ids]
        data = self._post("/api/2.0/labtrack/metrics/get-history-downsampled",
                          run_ids=list(run_ids), metric_keys=list(keys) if keys else None,
                          max_points=max_points, x_axis=x_axis)
        return [MetricSeries.from_dict(s) for s in data.get("series", [])]

    def search_runs(self, experiment_ids, filter_string=None, run_view_type="ACTIVE_ONLY",
                    max_results=1000, order_by=None, page_token=None) -> PagedList:
        if isinstance(experiment_ids, str):
            experiment_ids = [experiment_ids]
        data = self._post("/api/2.0/mlflow/runs/search",
                          experiment_ids=[str(e) for e in experiment_ids],
                          filter=filter_string or None, run_view_type=str(run_view_type),
                          max_results=max_results, order_by=list(order_by or []),
                          page_token=page_token)
        return PagedList([Run.from_dict(r) for r in data.get("runs", [])],
                         data.get("next_page_token"))

    # -- artifacts (through the server's mlflow-artifacts proxy) -----------------------------

    def _artifact_url(self, run_id: str, path: str = "") -> str:
        uri = self.get_run_info(run_id).artifact_uri
        if not uri.startswith(PROXY_SCHEME):
            raise InvalidParameterValue(
                f"The artifacts of run {run_id} are at '{uri}', which the server does not "
                "proxy; they cannot be reached over HTTP."
            )
        root = uri[len(PROXY_SCHEME):].strip("/")
        relative = safe_relative_path(path)
        full = f"{root}/{relative}" if relative else root
        return f"{self.base_url}/api/2.0/mlflow-artifacts/artifacts/{quote(full)}"

    def _upload(self, url: str, source: Path) -> None:
        with open(source, "rb") as stream:
            response = self.session.put(url, data=stream, timeout=self.timeout)
        self._raise_for_error(response)

    def write_artifact(self, run_id, artifact_file, data: bytes) -> None:
        if not safe_relative_path(artifact_file):
            raise InvalidParameterValue("An artifact file needs a name.")
        response = self.session.put(self._artifact_url(run_id, artifact_file), data=data,
                                    timeout=self.timeout)
        self._raise_for_error(response)

    def log_artifact(self, run_id, local_path, artifact_path=None) -> None:
        source = Path(local_path)
        if not source.is_file():
            raise InvalidParameterValue(f"'{local_path}' is not a file.")
        target = posixpath.join(safe_relative_path(artifact_path), source.name)
        self._upload(self._artifact_url(run_id, target), source)

    def log_artifacts(self, run_id, local_dir, artifact_path=None) -> None:
        source = Path(local_dir)
        if not source.is_dir():
            raise InvalidParameterValue(f"'{local_dir}' is not a directory.")
        base = safe_relative_path(artifact_path)
        for file in sorted(p for p in source.rglob("*") if p.is_file()):
            target = posixpath.join(base, file.relative_to(source).as_posix())
            self._upload(self._artifact_url(run_id, target), file)

    def list_artifacts(self, run_id, path=None) -> list[FileInfo]:
        data = self._get("/api/2.0/mlflow/artifacts/list", run_id=run_id, path=path)
        return [FileInfo.from_dict(f) for f in data.get("files", [])]

    def download_artifacts(self, run_id, path, dst_path) -> str:
        relative = safe_relative_path(path)
        destination = Path(dst_path)
        parent = posixpath.dirname(relative)
        if relative and any(f.path == relative and not f.is_dir
                            for f in self.list_artifacts(run_id, parent or None)):
            target = destination / posixpath.basename(relative)
            self._download(self._artifact_url(run_id, relative), target)
            return str(target)
        files = self.list_artifacts(run_id, relative or None)
        if relative and not files:
            raise ResourceDoesNotExist(f"No artifact at '{relative}' in run {run_id}.")
        top = destination / (posixpath.basename(relative) if relative else "artifacts")
        self._download_folder(run_id, files, top)
        return str(top)

    def _download_folder(self, run_id, files, target: Path) -> None:
        target.mkdir(parents=True, exist_ok=True)
        for info in files:
            name = posixpath.basename(info.path)
            if info.is_dir:
                self._download_folder(run_id, self.list_artifacts(run_id, info.path),
                                      target / name)
            else:
                self._download(self._artifact_url(run_id, info.path), target / name)

    def _download(self, url: str, target: Path) -> None:
        with self.session.get(url, stream=True, timeout=self.timeout) as response:
            self._raise_for_error(response)
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as out:
                for chunk in response.iter_content(_CHUNK_BYTES):
                    out.write(chunk)

    # -- logged models and artifacts addressed by URI (``labtrack.pyfunc.log_model``) --------

    def create_logged_model(self, experiment_id, name=None, model_type=None,
                            source_run_id=None, params=None, tags=None) -> LoggedModel:
        """A new logged model (PENDING) whose files are then uploaded to its location."""
        data = self._post("/api/2.0/mlflow/logged-models", experiment_id=str(experiment_id),
                          name=name, model_type=model_type, source_run_id=source_run_id,
                          params=_key_values(params), tags=_key_values(tags))
        return LoggedModel.from_dict(data["model"])

    def finalize_logged_model(self, model_id, status) -> LoggedModel:
        """Mark a logged model LOGGED_MODEL_READY or LOGGED_MODEL_UPLOAD_FAILED."""
        data = self._call("PATCH",
                          f"/api/2.0/mlflow/logged-models/{quote(str(model_id), safe='')}",
                          body={"model_id": str(model_id), "status": str(status)})
        return LoggedModel.from_dict(data["model"])

    def _proxied_root(self, artifact_uri: str) -> str:
        if not artifact_uri.startswith(PROXY_SCHEME):
            raise InvalidParameterValue(
                f"'{artifact_uri}' is not an artifact location of this server "
                f"({PROXY_SCHEME}/…); it cannot be reached over HTTP.")
        return safe_relative_path(artifact_uri[len(PROXY_SCHEME):].strip("/"))

    def _proxied_url(self, root: str, path: str = "") -> str:
        relative = safe_relative_path(path)
        full = f"{root}/{relative}" if relative else root
        return f"{self.base_url}/api/2.0/mlflow-artifacts/artifacts/{quote(full)}"

    def upload_artifacts_to(self, artifact_uri: str, local_dir) -> None:
        """Upload every file under ``local_dir`` to the ``mlflow-artifacts:`` location
        ``artifact_uri``, keeping relative paths."""
        root = self._proxied_root(artifact_uri)
        source = Path(local_dir)
        if not source.is_dir():
            raise InvalidParameterValue(f"'{local_dir}' is not a directory.")
        for file in sorted(p for p in source.rglob("*") if p.is_file()):
            self._upload(self._proxied_url(root, file.relative_to(source).as_posix()), file)

    def list_artifacts_at(self, artifact_uri: str, path: str | None = None) -> list[FileInfo]:
        """The files directly under ``path`` of an ``mlflow-artifacts:`` location (paths
        relative to the location)."""
        root = self._proxied_root(artifact_uri)
        relative = safe_relative_path(path)
        folder = f"{root}/{relative}" if relative else root
        data = self._get("/api/2.0/mlflow-artifacts/artifacts", path=folder)
        return [FileInfo(posixpath.join(relative, f["path"]) if relative else f["path"],
                         bool(f.get("is_dir")), f.get("file_size"))
                for f in data.get("files", [])]

    def download_artifacts_from(self, artifact_uri: str, dst_path) -> str:
        """Copy the folder at an ``mlflow-artifacts:`` location into ``dst_path``; returns
        ``dst_path``."""
        root = self._proxied_root(artifact_uri)
        destination = Path(dst_path)
        destination.mkdir(parents=True, exist_ok=True)
        pending = [""]
        found = False
        while pending:
            folder = pending.pop()
            for info in self.list_artifacts_at(artifact_uri, folder or None):
                found = True
                if info.is_dir:
                    pending.append(info.path)
                else:
                    self._download(self._proxied_url(root, info.path), destination / info.path)
        if not found:
            raise ResourceDoesNotExist(f"No artifacts at '{artifact_uri}'.")
        return str(destination)
