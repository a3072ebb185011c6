"""What every backend gives the launcher, and what the launcher gives a backend.

The launcher (``ProjectLauncher``) owns what is the same wherever a project runs: the
parameters and their checks, the run with its provenance tags and parameters, the saved
output, the exit code tag and the end of the run. A backend owns where and how the command
runs: it prepares the environment, turns the parameters into a command (``plan``), runs it
(``execute``) and says how it ended (``Outcome``).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from labtrack.entities import RunStatus
from labtrack.projects.process import OutputSinks

if TYPE_CHECKING:
    from labtrack.projects.runner import ProjectLauncher, TrackingHandoff


class Stoppable(Protocol):
    """Something running for a run that ``stop_all`` / ``kill_all`` can stop from any thread."""

    def terminate(self) -> None: ...

    def kill(self) -> None: ...


@dataclass(frozen=True)
class Plan:
    """One launch, before its run exists: the command, the parameters the run records (as
    the command gets them) and the tags the backend adds to the run."""

    command: str
    parameters: Mapping[str, str]
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Launch:
    """One launch, once its run exists: what ``execute`` needs."""

    launcher: ProjectLauncher
    plan: Plan
    environment: Any            # what the backend's ``prepare_environment`` returned
    run_id: str
    experiment_id: str
    run_name: str
    handoff: TrackingHandoff
    sinks: OutputSinks
    announce: Callable[[str], None]
    folder: Path                # a private temporary folder, removed after the launch

    @property
    def command(self) -> str:
        return self.plan.command


@dataclass(frozen=True)
class Outcome:
    """How a launch ended. ``logs`` are files of ``Launch.folder`` saved under ``logs/``;
    ``detached`` means the command goes on after the launch returned (the run is not ended
    here: the command ends it)."""

    status: RunStatus
    exit_code: int | None = None
    error: str | None = None
    logs: tuple[Path, ...] = ()
    detail: str | None = None     # how it ended, for the closing message
    detached: bool = False
    job_id: str | None = None     # the backend's id of what ran (a Ray job's submission id)


class Backend(abc.ABC):
    """Where a project's command runs (``local``, ``ray``)."""

    name: str

    def check(self, launcher: ProjectLauncher) -> None:
        """Before any run exists: refuse what cannot work (raise ``ProjectError``)."""

    @abc.abstractmethod
    def prepare_environment(self, launcher: ProjectLauncher) -> Any:
        """The environment every launch of this project runs in (built once)."""

    @abc.abstractmethod
    def plan(self, launcher: ProjectLauncher, declared: Mapping[str, str],
             extra: Mapping[str, str], environment: Any) -> Plan:
        """The command for these (checked) parameter values."""

    @abc.abstractmethod
    def execute(self, launch: Launch) -> Outcome:
        """Run the command for the run ``launch.run_id`` and return how it ended. Ctrl-C (in
        the main thread) stops it and returns a KILLED outcome; ``launch.launcher.track``
        makes it stoppable by ``stop_all``."""
