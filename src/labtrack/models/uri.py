"""Model URIs, resolved through the tracking and registry client (a local store or a server).

==================================  ==========================================================
``runs:/<run_id>/<name>``           the run's logged model called ``name`` (MLflow 3), else the
                                    run's artifacts at that path (MLflow 2 layout)
``models:/<name>/<version>``        a registered version
``models:/<name>/<stage>``          the newest version in a stage (``Production``, …)
``models:/<name>/latest``           the newest version
``models:/<name>@<alias>``          the version an alias points to (``@champion``)
``models:/<model_id>``              a logged model (``m-…``)
``mlflow-artifacts:/…``, ``file:``  an artifact location
a local path                        a model folder on disk
==================================  ==========================================================

Aliases, stages and ``latest`` *move*; ``resolve_version`` says where one points now (the A/B
router polls it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from labtrack.entities import ModelStage, ModelVersion
from labtrack.errors import InvalidParameterValue, ResourceDoesNotExist

_STAGES = {s.value.lower(): s.value for s in ModelStage}


@dataclass(frozen=True)
class ModelUri:
    """A parsed model URI; ``kind`` is ``runs``, ``registered``, ``logged``, ``artifact`` or
    ``path``."""

    uri: str
    kind: str
    run_id: str | None = None
    path: str = ""
    name: str | None = None
    version: str | None = None
    stage: str | None = None
    alias: str | None = None
    latest: bool = False
    model_id: str | None = None

    @property
    def moves(self) -> bool:
        """True for registry references whose target can change (alias, stage, latest)."""
        return self.kind == "registered" and self.version is None


def parse_model_uri(uri: str | os.PathLike) -> ModelUri:
    """Parse a model URI (see the module docstring); raises ``InvalidParameterValue`` with
    the accepted forms when it is none of them."""
    text = os.fspath(uri)
    if not isinstance(text, str) or not text.strip():
        raise InvalidParameterValue("A model URI is required (runs:/…, models:/… or a path).")
    if text.startswith("runs:"):
        rest = text[len("runs:"):].lstrip("/")
        run_id, _, path = rest.partition("/")
        if not run_id or not path.strip("/"):
            raise InvalidParameterValue(
                f"Invalid model URI '{text}': expected runs:/<run_id>/<path>.")
        return ModelUri(text, "runs", run_id=run_id, path=path.strip("/"))
    if text.startswith("models:"):
        return _parse_models(text)
    if text.startswith("mlflow-artifacts:"):
        return ModelUri(text, "artifact")
    parsed = urlparse(text)
    if parsed.scheme == "file":
        return ModelUri(text, "path", path=text)
    if parsed.scheme and len(parsed.scheme) > 1:
        raise InvalidParameterValue(
            f"Unsupported model URI '{text}': use runs:/<run_id>/<path>, "
            "models:/<name>/<version|stage|latest>, models:/<name>@<alias>, "
            "models:/<model_id>, mlflow-artifacts:/… or a local path.")
    return ModelUri(text, "path", path=text)


def _parse_models(text: str) -> ModelUri:
    rest = text[len("models:"):]
    if not rest.startswith("/") or rest.startswith("//"):
        raise InvalidParameterValue(
            f"Invalid model URI '{text}': expected models:/<name>/<version>, "
            "models:/<name>@<alias> or models:/<model_id> (one slash after 'models:').")
    rest = rest[1:].rstrip("/")
    if "@" in rest and "/" not in rest.split("@", 1)[0]:
        name, _, alias = rest.partition("@")
        if not name or not alias or "/" in alias:
            raise InvalidParameterValue(
                f"Invalid model URI '{text}': expected models:/<name>@<alias>.")
        return ModelUri(text, "registered", name=name, alias=alias)
    if "/" not in rest:
        if rest.startswith("m-"):
            return ModelUri(text, "logged", model_id=rest)
        raise InvalidParameterValue(
            f"Invalid model URI '{text}': name a version, stage, 'latest' or alias "
            f"(models:/{rest}/1, models:/{rest}/Production, models:/{rest}@champion).")
    name, _, target = rest.rpartition("/")
    if not name:
        raise InvalidParameterValue(f"Invalid model URI '{text}': the model name is empty.")
    if target.isdigit():
        return ModelUri(text, "registered", name=name, version=str(int(target)))
    if target.lower() == "latest":
        return ModelUri(text, "registered", name=name, latest=True)
    if target.lower() in _STAGES:
        return ModelUri(text, "registered", name=name, stage=_STAGES[target.lower()])
    raise InvalidParameterValue(
        f"Invalid model URI '{text}': '{target}' is not a version number, a stage "
        f"({', '.join(_STAGES.values())}) or 'latest'.")


def default_client() -> Any:
    """The client of the fluent API's tracking URI (``labtrack.set_tracking_uri`` or
    ``LABTRACK_TRACKING_URI``)."""
    from labtrack.client import fluent

    return fluent._get_client()


def resolve_version(reference: ModelUri | str, client: Any = None) -> ModelVersion:
    """The registered version a ``models:/<name>/…`` or ``models:/<name>@…`` URI points to
    now."""
    ref = parse_model_uri(reference) if isinstance(reference, str) else reference
    if ref.kind != "registered":
        raise InvalidParameterValue(f"'{ref.uri}' is not a registered model URI.")
    client = client or default_client()
    if ref.alias:
        return client.get_model_version_by_alias(ref.name, ref.alias)
    if ref.version:
        return client.get_model_version(ref.name, ref.version)
    if ref.stage:
        found = client.get_latest_versions(ref.name, [ref.stage])
        if not found:
            raise ResourceDoesNotExist(
                f"No version of registered model '{ref.name}' is in stage '{ref.stage}'.")
        return max(found, key=lambda v: int(v.version))
    versions = list(client.search_model_versions(f"name = '{_quote(ref.name)}'"))
    if not versions:
        raise ResourceDoesNotExist(f"Registered model '{ref.name}' has no versions.")
    return max(versions, key=lambda v: int(v.version))


def _quote(name: str) -> str:
    return name.replace("\\", "\\\\").replace("'", "\\'")


@dataclass(frozen=True)
class ModelLocation:
    """Where a model's files are (an artifact location), and what pointed there."""

    location: str
    version: ModelVersion | None = None
    run_id: str | None = None
    model_id: str | None = None


def _join(base: str, path: str) -> str:
    return f"{base.rstrip('/')}/{path.strip('/')}" if path.strip("/") else base


def _run_location(client: Any, run_id: str, path: str) -> ModelLocation:
    run = client.get_run(run_id)
    head, _, tail = path.partition("/")
    for output in run.outputs.model_outputs:
        try:
            logged = client.get_logged_model(output.model_id)
        except ResourceDoesNotExist:
            continue
        if logged.name == path or (tail and logged.name == head):
            location = logged.artifact_location if logged.name == path else _join(
                logged.artifact_location, tail)
            return ModelLocation(location, None, run_id, logged.model_id)
    return ModelLocation(_join(run.info.artifact_uri, path), None, run_id, None)


def _version_location(client: Any, version: ModelVersion) -> ModelLocation:
    if version.model_id:
        try:
            logged = client.get_logged_model(version.model_id)
            return ModelLocation(logged.artifact_location, version, version.run_id,
                                 logged.model_id)
        except ResourceDoesNotExist:
            pass  # fall back to the recorded source
    source = version.source
    if source.startswith(("runs:", "models:")):
        inner = parse_model_uri(source)
        if inner.kind == "registered":
            raise InvalidParameterValue(
                f"Version {version.version} of '{version.name}' has the source '{source}', "
                "another registry reference; it cannot be loaded.")
        found = model_location(inner, client)
        return ModelLocation(found.location, version, found.run_id or version.run_id,
                             found.model_id)
    return ModelLocation(source, version, version.run_id, version.model_id)


def model_location(reference: ModelUri | str, client: Any = None) -> ModelLocation:
    """Resolve a model URI to the artifact location of its files."""
    ref = parse_model_uri(reference) if isinstance(reference, str) else reference
    if ref.kind == "path":
        return ModelLocation(ref.path)
    if ref.kind == "artifact":
        return ModelLocation(ref.uri)
    client = client or default_client()
    if ref.kind == "runs":
        return _run_location(client, ref.run_id, ref.path)
    if ref.kind == "logged":
        logged = client.get_logged_model(ref.model_id)
        return ModelLocation(logged.artifact_location, None, logged.source_run_id,
                             logged.model_id)
    return _version_location(client, resolve_version(ref, client))


def download_model(reference: ModelUri | str | os.PathLike, dst_path: str | os.PathLike | None
                   = None, client: Any = None) -> str:
    """A local folder with the model's files: local models are used in place (or copied to
    ``dst_path``), remote ones downloaded (to ``dst_path`` or a temporary folder)."""
    ref = parse_model_uri(reference) if not isinstance(reference, ModelUri) else reference
    if ref.kind == "path":
        from labtrack.store.artifacts import uri_to_local_path

        local = Path(uri_to_local_path(ref.path)) if ref.path.startswith("file:") else Path(
            ref.path).expanduser()
        if not local.exists():
            raise ResourceDoesNotExist(f"No model at '{ref.uri}': the path does not exist.")
        if dst_path is None:
            return str(local.resolve())
        return _copy(local, Path(dst_path))
    client = client or default_client()
    found = model_location(ref, client)
    return client.download_artifact_location(found.location, dst_path)


def _copy(source: Path, target: Path) -> str:
    import shutil

    if source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True)
        return str(target)
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target / source.name)
    return str(target / source.name)
