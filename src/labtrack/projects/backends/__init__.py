"""Where a project's command runs: ``local`` (a child process here) or ``ray`` (a Ray job).

``make_backend("ray", "ray.json")`` gives the backend ``ProjectLauncher`` runs on; the
launcher keeps what every backend shares (the run, its tags and parameters, its end) and the
backend does the rest (see ``base``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from labtrack.projects.backends.base import Backend, Launch, Outcome, Plan, Stoppable
from labtrack.projects.spec import ProjectError

BACKENDS = ("local", "ray")

__all__ = ["BACKENDS", "Backend", "Launch", "Outcome", "Plan", "Stoppable", "load_config",
           "make_backend"]


def load_config(source: str | os.PathLike | Mapping | None) -> dict:
    """A backend configuration: a JSON file's path, JSON text (``{…}``) or a mapping."""
    if source is None:
        return {}
    if isinstance(source, Mapping):
        return dict(source)
    text = str(source)
    if text.lstrip().startswith("{"):
        where = "--backend-config"
    else:
        path = Path(text).expanduser()
        where = str(path)
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise ProjectError(
                f"The backend configuration {path} does not exist (give a JSON file or "
                "JSON text)."
            ) from None
        except OSError as error:
            raise ProjectError(f"Cannot read {path}: {error.strerror}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ProjectError(f"{where} is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise ProjectError(f"{where} must be a JSON object, e.g. {{\"address\": \"…\"}}.")
    return document


def make_backend(name: str, config: str | os.PathLike | Mapping | None = None,
                 asynchronous: bool = False) -> Backend:
    """The backend ``name`` with its configuration; ``ProjectError`` for an unknown name, a
    bad configuration, or a backend whose packages are not installed."""
    if name == "local":
        if config:
            raise ProjectError("--backend-config is for --backend ray; the local backend "
                               "takes no configuration.")
        if asynchronous:
            raise ProjectError("--async needs a backend that runs elsewhere (--backend ray); "
                               "a local run is followed until it ends.")
        from labtrack.projects.backends.local import LocalBackend

        return LocalBackend()
    if name == "ray":
        from labtrack.projects.backends.ray import RayBackend, RayConfig

        return RayBackend(RayConfig.parse(load_config(config)), asynchronous=asynchronous)
    raise ProjectError(f"Unknown backend '{name}': use {' or '.join(BACKENDS)}.")
