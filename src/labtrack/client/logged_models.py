"""The logged-model methods of ``TrackingClient`` (MLflow 3's ``MlflowClient`` names).

A logged model (``m-<hex>``) is what ``labtrack.pyfunc.log_model`` creates for a run: its own
artifact folder (``<experiment artifact root>/models/<model_id>/artifacts``), params and tags,
created PENDING, filled with the model's files and finalized READY. The same calls work on a
local store (in-process) and on a labtrack server (over its REST API and artifact proxy).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from labtrack.client.rest import PROXY_SCHEME, RestTrackingService
from labtrack.entities import LoggedModel, LoggedModelStatus, ModelOutput
from labtrack.errors import InvalidParameterValue, ResourceDoesNotExist
from labtrack.services.logged_models import LoggedModelService
from labtrack.store import artifact_repository
from labtrack.store.artifacts import is_object_store_uri, uri_to_local_path

# Folders that downloads made on their own. A model loaded from one keeps reading it (its
# artifacts, its code on sys.path), so it lives as long as the process and goes at exit.
_download_folders: list[str] = []


def download_folder() -> Path:
    """A new temporary folder for a download, removed when the interpreter exits."""
    folder = tempfile.mkdtemp(prefix="labtrack-model-")
    _download_folders.append(folder)
    return Path(folder)


@atexit.register
def _remove_download_folders() -> None:
    while _download_folders:
        shutil.rmtree(_download_folders.pop(), ignore_errors=True)


def _strings(mapping: Mapping[str, Any] | None) -> dict[str, str]:
    return {str(k): str(v) for k, v in (mapping or {}).items()}


class LoggedModelsClientMixin:
    """Needs ``self._service`` (a ``TrackingService`` or ``RestTrackingService``)."""

    _service: Any

    @property
    def _remote(self) -> bool:
        return isinstance(self._service, RestTrackingService)

    def _logged_model_service(self) -> LoggedModelService:
        service = self.__dict__.get("_logged_models_service")
        if service is None:
            service = self.__dict__["_logged_models_service"] = LoggedModelService(self._service)
        return service

    def create_logged_model(
        self,
        experiment_id: str,
        name: str | None = None,
        source_run_id: str | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        model_type: str | None = None,
    ) -> LoggedModel:
        """Create a logged model in the PENDING state (upload its files with
        ``log_model_artifacts``, then ``finalize_logged_model``)."""
        if self._remote:
            return self._service.create_logged_model(
                experiment_id, name, model_type, source_run_id, _strings(params),
                _strings(tags))
        return self._logged_model_service().create(
            str(experiment_id), name, model_type, source_run_id, _strings(params),
            _strings(tags))

    def get_logged_model(self, model_id: str) -> LoggedModel:
        """A logged model by id (``m-…``)."""
        return self._service.get_logged_model(model_id)

    def finalize_logged_model(self, model_id: str,
                              status: LoggedModelStatus | str) -> LoggedModel:
        """Set the final status: ``READY`` (or ``LOGGED_MODEL_READY``) or ``UPLOAD_FAILED``."""
        status = _status(status)
        if self._remote:
            return self._service.finalize_logged_model(model_id, status)
        return self._logged_model_service().finalize(model_id, status)

    def log_model_artifacts(self, model_id: str, local_dir: str | os.PathLike) -> None:
        """Copy (upload) every file under ``local_dir`` into the logged model's folder."""
        location = self.get_logged_model(model_id).artifact_location
        self.upload_to_artifact_location(location, local_dir)

    def log_outputs(self, run_id: str, model_ids: Sequence[str] | str, step: int = 0) -> None:
        """Record logged models as outputs of a run (what ``runs:/<run>/<name>`` finds)."""
        if isinstance(model_ids, str):
            model_ids = [model_ids]
        self._service.log_outputs(run_id, [ModelOutput(m, step) for m in model_ids])

    # -- artifact locations ------------------------------------------------------------------

    def upload_to_artifact_location(self, location: str, local_dir: str | os.PathLike) -> None:
        """Copy a local folder to an artifact location of this store (a local folder or
        ``file:`` URI, or ``mlflow-artifacts:/…`` through a server's proxy)."""
        if not Path(local_dir).is_dir():
            raise InvalidParameterValue(f"'{local_dir}' is not a directory.")
        if location.startswith(PROXY_SCHEME):
            if not self._remote:
                raise InvalidParameterValue(
                    f"'{location}' is on a labtrack server; use a client of that server.")
            self._service.upload_artifacts_to(location, local_dir)
            return
        artifact_repository(location).log_artifacts(local_dir)

    def download_artifact_location(self, location: str,
                                   dst_path: str | os.PathLike | None = None) -> str:
        """A local folder with the files of an artifact location. A local location is
        returned as it is unless ``dst_path`` asks for a copy; a server location is
        downloaded (into a new temporary folder without ``dst_path``)."""
        if location.startswith(PROXY_SCHEME):
            if not self._remote:
                raise InvalidParameterValue(
                    f"'{location}' is on a labtrack server; use a client of that server "
                    "(LABTRACK_TRACKING_URI=http://…).")
            target = Path(dst_path) if dst_path else download_folder()
            return self._service.download_artifacts_from(location, target)
        if is_object_store_uri(location):
            # A store whose artifact root is a bucket, opened directly (with credentials).
            target = Path(dst_path) if dst_path else download_folder()
            return artifact_repository(location).download_artifacts(None, target)
        source = Path(uri_to_local_path(location))
        if not source.exists():
            raise ResourceDoesNotExist(f"No files at '{location}'.")
        if dst_path is None:
            return str(source)
        target = Path(dst_path)
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / source.name)
            return str(target / source.name)
        return str(target)


def _status(status: LoggedModelStatus | str) -> LoggedModelStatus:
    if isinstance(status, LoggedModelStatus):
        return status
    text = str(status).upper()
    for member in LoggedModelStatus:
        if text in (member.value, member.value.removeprefix("LOGGED_MODEL_"), member.name):
            return member
    raise InvalidParameterValue(
        f"Invalid logged model status '{status}'. Use READY or UPLOAD_FAILED.")
