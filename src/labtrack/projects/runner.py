"""Launching a project run: the run and its provenance, the child process, its status.

``run_project`` is what ``labtrack run`` does: resolve the project (folder or git), check the
parameters against the entry point, prepare the environment, create the run with its
provenance tags and parameters, run the command where the backend runs it (``local``: a
child process here; ``ray``: a Ray job) so that it logs into that run, save its output
under ``logs/``, and end the run with the status the command's end says.
``ProjectLauncher`` is the reusable part: a sweep resolves the project once and launches it
per child. What differs between backends lives in ``labtrack.projects.backends``.

The child logs into the run through environment variables: ``LABTRACK_RUN_ID`` /
``LABTRACK_TRACKING_URI`` / ``LABTRACK_EXPERIMENT_ID`` for labtrack, and ``MLFLOW_RUN_ID`` /
``MLFLOW_TRACKING_URI`` / ``MLFLOW_TRACKING_TOKEN`` / ``MLFLOW_EXPERIMENT_ID`` for the mlflow
client. mlflow only speaks REST, so for a local store an ``EmbeddedServer`` on a loopback port
serves that store for as long as the child runs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from labtrack import config
from labtrack.client.rest import TOKEN_ENV as LABTRACK_TOKEN_ENV
from labtrack.client.run_context import (
    GIT_COMMIT_TAG,
    PARENT_RUN_ID_TAG,
    SOURCE_NAME_TAG,
    SOURCE_TYPE_TAG,
    USER_TAG,
    current_user,
)
from labtrack.client.tracking import TrackingClient
from labtrack.entities import LifecycleStage, Param, RunStatus
from labtrack.errors import LabtrackError, ResourceAlreadyExists
from labtrack.projects import environment as environments
from labtrack.projects import source as sources
from labtrack.projects.backends import Backend, Launch, Outcome, Stoppable, make_backend
from labtrack.projects.process import (  # noqa: F401 - the runner's public names, as before
    ChildProcess,
    OutputSinks,
    Sink,
    _terminal,
    deferred_interrupts,
    say,
)
from labtrack.projects.spec import ProjectError, load_project
from labtrack.services import validation
from labtrack.store.uris import is_postgres_uri

# Tags: MLflow's names where MLflow has one (mlflow/utils/mlflow_tags.py), labtrack.* else.
SOURCE_TYPE_PROJECT = "PROJECT"
ENTRY_POINT_TAG = "mlflow.project.entryPoint"
PROJECT_ENV_TAG = "mlflow.project.env"
PROJECT_BACKEND_TAG = "mlflow.project.backend"
GIT_BRANCH_TAG = "mlflow.source.git.branch"
GIT_REPO_URL_TAG = "mlflow.source.git.repoURL"
LEGACY_GIT_REPO_URL_TAG = "mlflow.gitRepoURL"
GIT_DIRTY_TAG = "labtrack.source.git.dirty"
PROJECT_NAME_TAG = "labtrack.project.name"
PROJECT_VERSION_TAG = "labtrack.project.version"
EXIT_CODE_TAG = "labtrack.project.exitCode"

OUTPUT_ARTIFACT_DIR = "logs"
OUTPUT_ARTIFACT_NAME = "output.txt"
GIT_DIFF_ARTIFACT = "code/uncommitted.diff"
DEFAULT_ENTRY_POINT = "main"
DEFAULT_STOP_TIMEOUT_S = 10.0


class LaunchCancelled(LabtrackError):
    """``launch`` was called after ``stop_all``."""


@dataclass(frozen=True)
class ProjectRun:
    """The outcome of one launch."""

    run_id: str
    experiment_id: str
    run_name: str
    status: RunStatus
    exit_code: int | None
    parameters: Mapping[str, str]
    error: str | None = None
    backend: str = "local"
    job_id: str | None = None   # the backend's id of the command (a Ray job's submission id)
    detached: bool = False      # submitted and left running (``--async``): not ended yet

    @property
    def succeeded(self) -> bool:
        return self.status == RunStatus.FINISHED

    def shell_exit_code(self) -> int:
        """What ``labtrack run`` exits with: 0, the child's code, 128+N after signal N,
        130 when stopped by Ctrl-C; 0 once a detached run is submitted."""
        if self.status == RunStatus.FINISHED or (self.detached and self.error is None):
            return 0
        if self.status == RunStatus.KILLED:
            return 128 + signal.SIGINT
        if self.exit_code is None:
            return 1
        return self.exit_code if self.exit_code > 0 else 128 - self.exit_code


# -- handing the run to the child -------------------------------------------------------------


class TrackingHandoff:
    """The tracking settings a child gets: the store for labtrack, a URL and token for mlflow
    (an embedded loopback server when the store is local, for as long as the handoff is
    open)."""

    def __init__(self, tracking_uri: str):
        self.tracking_uri = tracking_uri
        self._server = None
        remote = tracking_uri.startswith(("http://", "https://"))
        if remote:
            self.labtrack_uri = tracking_uri
            self.mlflow_uri = tracking_uri.rstrip("/")
            self.token = os.environ.get(LABTRACK_TOKEN_ENV)
        else:
            # Absolute: the child runs in the project folder. A database URI is one already.
            self.labtrack_uri = tracking_uri if is_postgres_uri(tracking_uri) else str(
                config.sqlite_database_path(tracking_uri))
            self.mlflow_uri = None
            self.token = None

    def __enter__(self) -> TrackingHandoff:
        if self.mlflow_uri is None:
            from labtrack.server.embedded import EmbeddedServer

            self._server = EmbeddedServer(self.labtrack_uri).start()
            self.mlflow_uri = self._server.url
            self.token = self._server.token
        return self

    def __exit__(self, *exc) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
            self.mlflow_uri = None

    def environ(self, run_id: str, experiment_id: str,
                over_http: bool = False) -> dict[str, str]:
        """The variables that make a command log into ``run_id``. ``over_http``: labtrack
        too talks to the server (URL and token) rather than to the store's file — for a
        command on another machine."""
        variables = {
            config.TRACKING_URI_ENV: self.mlflow_uri if over_http else self.labtrack_uri,
            config.RUN_ID_ENV: run_id,
            config.EXPERIMENT_ID_ENV: experiment_id,
            "MLFLOW_TRACKING_URI": self.mlflow_uri or "",
            "MLFLOW_RUN_ID": run_id,
            "MLFLOW_EXPERIMENT_ID": experiment_id,
        }
        if self.token:
            variables["MLFLOW_TRACKING_TOKEN"] = self.token
            if over_http:
                variables[LABTRACK_TOKEN_ENV] = self.token
        if self._server is not None:
            # mlflow prints a "View run at <url>" link; this server's URL dies with the run.
            variables["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
        return variables


# -- the launcher -----------------------------------------------------------------------------


def _project_tags(src: sources.ProjectSource, project_name: str, entry_point: str,
                  env_manager: str, backend: str = "local") -> dict[str, str]:
    tags = {
        USER_TAG: current_user(),
        SOURCE_TYPE_TAG: SOURCE_TYPE_PROJECT,
        # A temporary clone disappears: name the project by its URI then.
        SOURCE_NAME_TAG: src.uri if src._temporary is not None else str(src.directory),
        ENTRY_POINT_TAG: entry_point,
        PROJECT_ENV_TAG: env_manager,
        PROJECT_BACKEND_TAG: backend,
        PROJECT_NAME_TAG: project_name,
    }
    if src.version:
        tags[PROJECT_VERSION_TAG] = src.version
    if src.git is not None:
        tags[GIT_COMMIT_TAG] = src.git.commit
        tags[GIT_REPO_URL_TAG] = src.git.repo_url
        tags[LEGACY_GIT_REPO_URL_TAG] = src.git.repo_url
        tags[GIT_DIRTY_TAG] = "true" if src.git.dirty else "false"
        if src.git.branch:
            tags[GIT_BRANCH_TAG] = src.git.branch
    return tags


def resolve_experiment(client: TrackingClient, name: str | None = None,
                       experiment_id: str | None = None) -> str:
    """``--experiment-name`` (created when missing) or ``--experiment-id``, else
    ``LABTRACK_EXPERIMENT_NAME`` / ``LABTRACK_EXPERIMENT_ID``, else the default experiment."""
    if name and experiment_id:
        raise ProjectError("Give --experiment-name or --experiment-id, not both.")
    if not name and not experiment_id:
        name = os.environ.get(config.EXPERIMENT_NAME_ENV) or None
        experiment_id = None if name else os.environ.get(config.EXPERIMENT_ID_ENV) or "0"
    if experiment_id is not None:
        experiment = client.get_experiment(str(experiment_id))
    else:
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            try:
                return client.create_experiment(name)
            except ResourceAlreadyExists:  # another launch created it just now
                experiment = client.get_experiment_by_name(name)
    if experiment.lifecycle_stage != LifecycleStage.ACTIVE:
        raise ProjectError(
            f"Experiment '{experiment.name}' is deleted; restore it or choose another."
        )
    return experiment.experiment_id


def parse_parameters(pairs: list[str] | None) -> dict[str, str]:
    """``["lr=0.1", "name=a b"]`` → ``{"lr": "0.1", "name": "a b"}``."""
    values: dict[str, str] = {}
    for pair in pairs or []:
        key, separator, value = pair.partition("=")
        key = key.strip()
        if not separator or not key:
            raise ProjectError(f"-P expects key=value, got {pair!r}.")
        if key in values:
            raise ProjectError(f"Parameter '{key}' is given twice.")
        values[key] = value
    return values


class ProjectLauncher:
    """A project resolved once (source, MLproject, entry point, environment, store client),
    launched any number of times on one backend (default: ``local``)."""

    def __init__(self, uri: str, entry_point: str = DEFAULT_ENTRY_POINT,
                 version: str | None = None, env_manager: str | None = None,
                 tracking_uri: str | None = None, cwd: str | os.PathLike | None = None,
                 stop_timeout: float = DEFAULT_STOP_TIMEOUT_S, backend: Backend | None = None):
        if env_manager is not None and env_manager not in environments.ENV_MANAGERS:
            raise ProjectError(
                f"Unknown environment manager '{env_manager}': use "
                f"{' or '.join(environments.ENV_MANAGERS)}."
            )
        self.cwd = Path(cwd or os.getcwd())
        self.backend = backend or make_backend("local")
        self.source = sources.resolve(uri, version, self.cwd)
        try:
            self.project = load_project(self.source.directory)
            self.entry_point = self.project.entry_point(entry_point)
        except BaseException:
            self.source.close()
            raise
        self.env_manager = env_manager or (
            environments.VIRTUALENV if self.project.env_file else environments.LOCAL)
        self.client = TrackingClient(tracking_uri)
        self.stop_timeout = stop_timeout
        self._environment = None
        self._children: set[Stoppable] = set()
        self._children_lock = threading.Lock()
        self._stopping = False

    def close(self) -> None:
        self.source.close()

    def __enter__(self) -> ProjectLauncher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def directory(self) -> Path:
        """The project folder (what the command runs in, or what is shipped to run it)."""
        return self.source.directory

    # -- preparation -----------------------------------------------------------------------

    def resolve_parameters(self, values: Mapping[str, str]) -> tuple[dict[str, str],
                                                                     dict[str, str]]:
        """``(declared, extra)`` values, typed and checked, or a ``ProjectError``."""
        declared, extra = self.entry_point.resolve_parameters(
            values, self.source.directory, self.cwd)
        for key, value in {**declared, **extra}.items():
            validation.validate_param(key, value)
        return declared, extra

    def environment(self):
        """The environment the backend prepared (built on first use)."""
        if self._environment is None:
            self._environment = self.backend.prepare_environment(self)
        return self._environment

    def prepare(self) -> None:
        """Everything that can fail before a run exists: the environment, and the backend's
        own checks (a cluster that cannot be reached, a store it cannot reach)."""
        self.environment()
        self.backend.check(self)

    def tags(self) -> dict[str, str]:
        return _project_tags(self.source, self.project.name, self.entry_point.name,
                             self.env_manager, self.backend.name)

    # -- launching -------------------------------------------------------------------------

    def create_run(self, experiment_id: str, params: Mapping[str, str],
                   run_name: str | None = None, parent_run_id: str | None = None,
                   tags: Mapping[str, str] | None = None):
        run_tags = self.tags()
        if parent_run_id:
            run_tags[PARENT_RUN_ID_TAG] = parent_run_id
        run_tags.update(tags or {})
        run = self.client.create_run(experiment_id, tags=run_tags, run_name=run_name)
        run_id = run.info.run_id
        try:
            items = [Param(k, v) for k, v in params.items()]
            for start in range(0, len(items), validation.MAX_PARAMS_TAGS_PER_BATCH):
                self.client.log_batch(
                    run_id, params=items[start:start + validation.MAX_PARAMS_TAGS_PER_BATCH])
            git = self.source.git
            if git is not None and git.diff:
                self.client.log_text(run_id, git.diff, GIT_DIFF_ARTIFACT)
        except BaseException as error:
            with deferred_interrupts():
                self.client.set_terminated(run_id, RunStatus.KILLED if isinstance(
                    error, KeyboardInterrupt) else RunStatus.FAILED)
            raise
        return run

    @contextlib.contextmanager
    def track(self, running: Stoppable) -> Iterator[Stoppable]:
        """Make ``running`` stoppable by ``stop_all`` while the block runs;
        ``KeyboardInterrupt`` if the launcher is stopping already."""
        with self._children_lock:
            if self._stopping:
                raise KeyboardInterrupt
            self._children.add(running)
        try:
            yield running
        finally:
            with self._children_lock:
                self._children.discard(running)

    def launch(self, values: Mapping[str, str], experiment_id: str,
               handoff: TrackingHandoff, run_name: str | None = None,
               parent_run_id: str | None = None, tags: Mapping[str, str] | None = None,
               sinks: OutputSinks | None = None, announce: Callable[[str], None] = say,
               on_run: Callable[[str], None] | None = None) -> ProjectRun:
        """Create a run for ``values``, run the command on the backend, end the run; returns
        once the command has ended (or, detached, once it is submitted). ``on_run`` gets the
        run id as soon as the run exists (a notebook shows it live while the command logs).
        Ctrl-C (in the main thread) or ``stop_all`` stops the command and ends the run
        KILLED."""
        declared, extra = self.resolve_parameters(values)
        environment = self.environment()
        if self._stopping:
            raise LaunchCancelled("The launcher is stopping; no run was created.")
        plan = self.backend.plan(self, declared, extra, environment)
        folder = Path(tempfile.mkdtemp(prefix="labtrack-run-"))
        try:
            run = self.create_run(experiment_id, plan.parameters, run_name, parent_run_id,
                                  {**plan.tags, **(tags or {})})
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        run_id, name = run.info.run_id, run.info.run_name
        outcome = Outcome(RunStatus.FAILED)
        try:
            if on_run is not None:
                on_run(run_id)
            outcome = self.backend.execute(Launch(
                self, plan, environment, run_id, experiment_id, name, handoff,
                sinks or OutputSinks(), announce, folder))
        except KeyboardInterrupt:
            outcome = Outcome(RunStatus.KILLED)
        finally:
            with deferred_interrupts():
                if not outcome.detached:
                    self._finish(run_id, outcome)
                shutil.rmtree(folder, ignore_errors=True)
        result = ProjectRun(run_id, experiment_id, name, outcome.status, outcome.exit_code,
                            plan.parameters, outcome.error, self.backend.name, outcome.job_id,
                            outcome.detached)
        announce(f"run {run_id} {outcome.status} ({_ending(outcome)})")
        return result

    def _finish(self, run_id: str, outcome: Outcome) -> None:
        problems = []
        for log in outcome.logs:
            try:
                self.client.log_artifact(run_id, log, OUTPUT_ARTIFACT_DIR)
            except (LabtrackError, OSError) as error:
                problems.append(f"could not save {log.name}: {error}")
        try:
            if outcome.exit_code is not None:
                self.client.set_tag(run_id, EXIT_CODE_TAG, str(outcome.exit_code))
            if self.client.get_run(run_id).info.status != outcome.status:
                self.client.set_terminated(run_id, outcome.status)
        except LabtrackError as error:
            problems.append(f"could not record its end ({outcome.status}): {error}")
        for problem in problems:
            say(f"run {run_id}: {problem}")

    def stop_all(self) -> threading.Timer:
        """Stop every running command (from any thread) and launch no more: SIGTERM to all
        at once now (a Ray job is asked to stop), SIGKILL to whoever is left after the grace
        period (cancel the returned timer once they are all gone)."""
        with self._children_lock:
            self._stopping = True
            children = list(self._children)
        for child in children:
            child.terminate()
        timer = threading.Timer(self.stop_timeout, self.kill_all)
        timer.daemon = True
        timer.start()
        return timer

    def kill_all(self) -> None:
        """SIGKILL to every running child (stop waiting for Ray jobs)."""
        with self._children_lock:
            self._stopping = True
            children = list(self._children)
        for child in children:
            child.kill()


def _ending(outcome: Outcome) -> str:
    if outcome.detached:
        return ", ".join(p for p in (outcome.detail, outcome.error) if p) or "detached"
    exit_code = outcome.exit_code
    if exit_code is not None:
        ending = f"exit code {exit_code}" if exit_code >= 0 else f"signal {-exit_code}"
    else:
        ending = outcome.error or "not started"
    return f"{outcome.detail}, {ending}" if outcome.detail else ending


def run_project(
    uri: str,
    entry_point: str = DEFAULT_ENTRY_POINT,
    version: str | None = None,
    parameters: Mapping[str, str] | None = None,
    experiment_name: str | None = None,
    experiment_id: str | None = None,
    run_name: str | None = None,
    env_manager: str | None = None,
    tracking_uri: str | None = None,
    stop_timeout: float = DEFAULT_STOP_TIMEOUT_S,
    sinks: OutputSinks | None = None,
    on_run: Callable[[str], None] | None = None,
    backend: str = "local",
    backend_config: str | Mapping | None = None,
    asynchronous: bool = False,
) -> ProjectRun:
    """Run a project once (what ``labtrack run`` does) and return how it ended.

    ``backend`` is ``local`` (a child process here) or ``ray`` (a Ray job; ``backend_config``
    is its JSON file, JSON text or a mapping, see ``labtrack.projects.backends.ray``).
    ``asynchronous`` returns once the job is submitted (the job ends its run itself).

    Problems found before the run exists (unknown entry point, missing or ill-typed
    parameters, no such version, an environment that cannot be built, a backend that is
    not installed or cannot be reached) raise ``ProjectError`` and create no run.
    """
    chosen = make_backend(backend, backend_config, asynchronous=asynchronous)
    with ProjectLauncher(uri, entry_point, version, env_manager, tracking_uri,
                         stop_timeout=stop_timeout, backend=chosen) as launcher:
        launcher.resolve_parameters(parameters or {})  # fail before building anything
        launcher.prepare()
        experiment = resolve_experiment(launcher.client, experiment_name, experiment_id)
        with TrackingHandoff(launcher.client.tracking_uri) as handoff:
            return launcher.launch(parameters or {}, experiment, handoff, run_name=run_name,
                                   sinks=sinks, on_run=on_run)
