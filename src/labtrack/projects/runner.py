"""Launching a project run: the run and its provenance, the child process, its status.

``run_project`` is what ``labtrack run`` does: resolve the project (folder or git), check the
parameters against the entry point, prepare the environment, create the run with its
provenance tags and parameters, run the command in a child process that logs into that run,
stream and save its output (``logs/output.txt``), and end the run with the status the exit
code says. ``ProjectLauncher`` is the reusable part: a sweep resolves the project once and
launches it per child.

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
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
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
from labtrack.projects.environment import PreparedEnvironment
from labtrack.projects.spec import ProjectError, load_project, shell_program
from labtrack.services import validation

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
READER_JOIN_TIMEOUT_S = 5.0  # after the child exits, for output a grandchild keeps open

# Settings of the launching process that must not reach the child: they would point it at
# another experiment, run or server.
_CLEARED_VARIABLES = (
    config.EXPERIMENT_NAME_ENV, "MLFLOW_EXPERIMENT_NAME", "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_AUTH", "MLFLOW_PARENT_RUN_ID",
)

Sink = Callable[[bytes], None]


def _terminal(stream_name: str) -> Sink:
    def write(data: bytes) -> None:
        stream = getattr(sys, stream_name)
        raw = getattr(stream, "buffer", None)
        if raw is not None:
            raw.write(data)
            raw.flush()
        else:
            stream.write(data.decode("utf-8", "replace"))
            stream.flush()
    return write


class LaunchCancelled(LabtrackError):
    """``launch`` was called after ``stop_all``."""


def say(message: str) -> None:
    """labtrack's own messages go to stderr, apart from the child's output."""
    _terminal("stderr")(f"labtrack: {message}\n".encode())


@dataclass(frozen=True)
class OutputSinks:
    """Where a child's stdout and stderr are shown, as they come."""

    stdout: Sink = field(default_factory=lambda: _terminal("stdout"))
    stderr: Sink = field(default_factory=lambda: _terminal("stderr"))


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

    @property
    def succeeded(self) -> bool:
        return self.status == RunStatus.FINISHED

    def shell_exit_code(self) -> int:
        """What ``labtrack run`` exits with: 0, the child's code, 128+N after signal N,
        130 when stopped by Ctrl-C."""
        if self.status == RunStatus.FINISHED:
            return 0
        if self.status == RunStatus.KILLED:
            return 128 + signal.SIGINT
        if self.exit_code is None:
            return 1
        return self.exit_code if self.exit_code > 0 else 128 - self.exit_code


# -- handing the run to the child -------------------------------------------------------------


class TrackingHandoff:
    """The tracking settings a child gets: the store for labtrack, a URL and token for mlflow
    (an embedded loopback server when the store is local)."""

    def __init__(self, tracking_uri: str):
        self.tracking_uri = tracking_uri
        self._server = None
        remote = tracking_uri.startswith(("http://", "https://"))
        if remote:
            self.labtrack_uri = tracking_uri
            self.mlflow_uri = tracking_uri.rstrip("/")
            self.token = os.environ.get(LABTRACK_TOKEN_ENV)
        else:
            # Absolute: the child runs in the project folder.
            self.labtrack_uri = str(config.sqlite_database_path(tracking_uri))
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

    def environ(self, run_id: str, experiment_id: str) -> dict[str, str]:
        variables = {
            config.TRACKING_URI_ENV: self.labtrack_uri,
            config.RUN_ID_ENV: run_id,
            config.EXPERIMENT_ID_ENV: experiment_id,
            "MLFLOW_TRACKING_URI": self.mlflow_uri or "",
            "MLFLOW_RUN_ID": run_id,
            "MLFLOW_EXPERIMENT_ID": experiment_id,
        }
        if self.token:
            variables["MLFLOW_TRACKING_TOKEN"] = self.token
        if self._server is not None:
            # mlflow prints a "View run at <url>" link; this server's URL dies with the run.
            variables["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
        return variables


def child_environ(base: Mapping[str, str], env: PreparedEnvironment, handoff: TrackingHandoff,
                  run_id: str, experiment_id: str) -> dict[str, str]:
    environ = env.apply(dict(base))
    for name in _CLEARED_VARIABLES:
        environ.pop(name, None)
    if "MLFLOW_TRACKING_TOKEN" in environ and handoff.token is None:
        environ.pop("MLFLOW_TRACKING_TOKEN")
    environ.update(handoff.environ(run_id, experiment_id))
    environ.setdefault("PYTHONUNBUFFERED", "1")  # output shows up as it is printed
    return environ


# -- the child process ------------------------------------------------------------------------


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Hold Ctrl-C (and SIGTERM) while a run is being recorded as ended (main thread only): an
    interrupt there would leave the run RUNNING. The run ends anyway, so they are dropped."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    try:
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, lambda *_: None)
    except ValueError:  # not the main interpreter
        pass
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class ChildProcess:
    """A command in its own process group (session), its output copied to sinks and a file.

    ``stop`` may be called from any thread: SIGTERM to the whole group, SIGKILL after the
    grace period (at once on a second call or a second Ctrl-C).
    """

    def __init__(self, argv: list[str], cwd: Path, environ: Mapping[str, str],
                 log_path: Path, sinks: OutputSinks):
        self.argv = argv
        self.cwd = cwd
        self.environ = dict(environ)
        self.log_path = log_path
        self.sinks = sinks
        self.stopped = False
        self._process: subprocess.Popen | None = None
        self._readers: list[threading.Thread] = []
        self._log = None
        self._log_lock = threading.Lock()
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the command; a child stopped before it started never starts
        (``KeyboardInterrupt``)."""
        posix = os.name == "posix"
        with self._lock:  # terminate() from another thread sees no process or the process
            if self.stopped:
                raise KeyboardInterrupt
            self._log = open(self.log_path, "ab")
            try:
                self._process = subprocess.Popen(
                    self.argv, cwd=self.cwd, env=self.environ,
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    # Its own session: Ctrl-C in the terminal reaches labtrack only, which
                    # then stops the child's whole process group.
                    start_new_session=posix,
                    creationflags=0 if posix else subprocess.CREATE_NEW_PROCESS_GROUP,
                )
            except BaseException:
                self._log.close()
                raise
        for pipe, sink in ((self._process.stdout, self.sinks.stdout),
                           (self._process.stderr, self.sinks.stderr)):
            reader = threading.Thread(target=self._copy, args=(pipe, sink), daemon=True,
                                      name=f"labtrack-output-{self._process.pid}")
            reader.start()
            self._readers.append(reader)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def _copy(self, pipe, sink: Sink) -> None:
        fd = pipe.fileno()
        try:
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    return
                with self._log_lock:
                    if not self._log.closed:  # closed: a grandchild outlived the run
                        self._log.write(chunk)
                try:
                    sink(chunk)
                except (OSError, ValueError):  # the terminal went away; keep the log going
                    pass
        finally:
            pipe.close()

    def wait(self) -> int:
        """The exit code (negative: killed by that signal), once the output is copied."""
        code = self._process.wait()
        for reader in self._readers:
            reader.join(READER_JOIN_TIMEOUT_S)
        with self._log_lock:
            self._log.flush()
        return code

    def close(self) -> None:
        with self._log_lock:
            if self._log is not None and not self._log.closed:
                self._log.close()

    def _signal_group(self, signum: int) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        try:
            if os.name == "posix":
                os.killpg(process.pid, signum)
            elif signum == signal.SIGTERM:
                process.terminate()
            else:
                process.kill()
        except (ProcessLookupError, PermissionError):
            pass

    def terminate(self) -> None:
        """SIGTERM to the process group (a second call: SIGKILL)."""
        with self._lock:
            again = self.stopped
            self.stopped = True
        self._signal_group(signal.SIGKILL if again else signal.SIGTERM)

    def kill(self) -> None:
        with self._lock:
            self.stopped = True
        self._signal_group(getattr(signal, "SIGKILL", signal.SIGTERM))

    def stop(self, timeout: float) -> None:
        """SIGTERM, then SIGKILL if the child is still there after ``timeout`` seconds."""
        self.terminate()
        process = self._process
        if process is None:
            return
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        except KeyboardInterrupt:  # Ctrl-C again: no more grace
            self.kill()
        process.wait()


# -- the launcher -----------------------------------------------------------------------------


def _project_tags(src: sources.ProjectSource, project_name: str, entry_point: str,
                  env_manager: str) -> dict[str, str]:
    tags = {
        USER_TAG: current_user(),
        SOURCE_TYPE_TAG: SOURCE_TYPE_PROJECT,
        # A temporary clone disappears: name the project by its URI then.
        SOURCE_NAME_TAG: src.uri if src._temporary is not None else str(src.directory),
        ENTRY_POINT_TAG: entry_point,
        PROJECT_ENV_TAG: env_manager,
        PROJECT_BACKEND_TAG: "local",
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
    launched any number of times."""

    def __init__(self, uri: str, entry_point: str = DEFAULT_ENTRY_POINT,
                 version: str | None = None, env_manager: str | None = None,
                 tracking_uri: str | None = None, cwd: str | os.PathLike | None = None,
                 stop_timeout: float = DEFAULT_STOP_TIMEOUT_S):
        if env_manager is not None and env_manager not in environments.ENV_MANAGERS:
            raise ProjectError(
                f"Unknown environment manager '{env_manager}': use "
                f"{' or '.join(environments.ENV_MANAGERS)}."
            )
        self.cwd = Path(cwd or os.getcwd())
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
        self._environment: PreparedEnvironment | None = None
        self._children: set[ChildProcess] = set()
        self._children_lock = threading.Lock()
        self._stopping = False

    def close(self) -> None:
        self.source.close()

    def __enter__(self) -> ProjectLauncher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- preparation -----------------------------------------------------------------------

    def resolve_parameters(self, values: Mapping[str, str]) -> tuple[dict[str, str],
                                                                     dict[str, str]]:
        """``(declared, extra)`` values, typed and checked, or a ``ProjectError``."""
        declared, extra = self.entry_point.resolve_parameters(
            values, self.source.directory, self.cwd)
        for key, value in {**declared, **extra}.items():
            validation.validate_param(key, value)
        return declared, extra

    def environment(self) -> PreparedEnvironment:
        """The prepared environment (built on first use)."""
        if self._environment is None:
            self._environment = environments.prepare_environment(
                self.env_manager, self.project.env_file)
        return self._environment

    def tags(self) -> dict[str, str]:
        return _project_tags(self.source, self.project.name, self.entry_point.name,
                             self.env_manager)

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

    def launch(self, values: Mapping[str, str], experiment_id: str,
               handoff: TrackingHandoff, run_name: str | None = None,
               parent_run_id: str | None = None, tags: Mapping[str, str] | None = None,
               sinks: OutputSinks | None = None, announce: Callable[[str], None] = say,
               on_run: Callable[[str], None] | None = None) -> ProjectRun:
        """Create a run for ``values``, run the command, end the run; returns once the
        child has exited. ``on_run`` gets the run id as soon as the run exists (a notebook
        shows it live while the child logs). Ctrl-C (in the main thread) or ``stop_all``
        stops the child and ends the run KILLED."""
        declared, extra = self.resolve_parameters(values)
        env = self.environment()
        if self._stopping:
            raise LaunchCancelled("The launcher is stopping; no run was created.")
        params = {**declared, **extra}
        command = self.entry_point.command_line(declared, extra, python=env.python,
                                                shell=shell_program()[0])
        folder = Path(tempfile.mkdtemp(prefix="labtrack-run-"))
        log_path = folder / OUTPUT_ARTIFACT_NAME
        log_path.touch()
        try:
            run = self.create_run(experiment_id, params, run_name, parent_run_id, tags)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        run_id, name = run.info.run_id, run.info.run_name
        child = None
        status, exit_code, error = RunStatus.FAILED, None, None
        try:
            if on_run is not None:
                on_run(run_id)
            environ = child_environ(os.environ, env, handoff, run_id, experiment_id)
            child = ChildProcess([*shell_program(), command], self.source.directory, environ,
                                 log_path, sinks or OutputSinks())
            with self._children_lock:
                if self._stopping:
                    raise KeyboardInterrupt
                self._children.add(child)
            announce(f"run {run_id} ('{name}', experiment {experiment_id}): {command}")
            child.start()
            exit_code = child.wait()
            if child.stopped:
                status = RunStatus.KILLED
            else:
                status = RunStatus.FINISHED if exit_code == 0 else RunStatus.FAILED
        except KeyboardInterrupt:
            if child is not None and child.pid is not None:
                child.stop(self.stop_timeout)
                exit_code = child.wait()  # reaped already; this collects the last output
            status = RunStatus.KILLED
        except OSError as failure:  # the shell could not be started
            error = f"Cannot start the command: {failure}"
            with open(log_path, "ab") as log:
                log.write(f"{error}\n".encode())
        finally:
            with deferred_interrupts():
                if child is not None:
                    child.close()
                    with self._children_lock:
                        self._children.discard(child)
                self._finish(run_id, status, exit_code, log_path)
                shutil.rmtree(folder, ignore_errors=True)
        result = ProjectRun(run_id, experiment_id, name, status, exit_code, params, error)
        ending = f"exit code {exit_code}" if exit_code is not None and exit_code >= 0 else (
            f"signal {-exit_code}" if exit_code is not None else error or "not started")
        announce(f"run {run_id} {status} ({ending})")
        return result

    def _finish(self, run_id: str, status: RunStatus, exit_code: int | None,
                log_path: Path) -> None:
        problems = []
        try:
            self.client.log_artifact(run_id, log_path, OUTPUT_ARTIFACT_DIR)
        except (LabtrackError, OSError) as error:
            problems.append(f"could not save its output: {error}")
        try:
            if exit_code is not None:
                self.client.set_tag(run_id, EXIT_CODE_TAG, str(exit_code))
            self.client.set_terminated(run_id, status)
        except LabtrackError as error:
            problems.append(f"could not record its end ({status}): {error}")
        for problem in problems:
            say(f"run {run_id}: {problem}")

    def stop_all(self) -> threading.Timer:
        """Stop every running child (from any thread) and launch no more: SIGTERM to all at
        once now, SIGKILL to whoever is left after the grace period (cancel the returned
        timer once they are all gone)."""
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
        """SIGKILL to every running child."""
        with self._children_lock:
            self._stopping = True
            children = list(self._children)
        for child in children:
            child.kill()


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
) -> ProjectRun:
    """Run a project once (what ``labtrack run`` does) and return how it ended.

    Problems found before the run exists (unknown entry point, missing or ill-typed
    parameters, no such version, an environment that cannot be built) raise
    ``ProjectError`` and create no run.
    """
    with ProjectLauncher(uri, entry_point, version, env_manager, tracking_uri,
                         stop_timeout=stop_timeout) as launcher:
        launcher.resolve_parameters(parameters or {})  # fail before building anything
        launcher.environment()
        experiment = resolve_experiment(launcher.client, experiment_name, experiment_id)
        with TrackingHandoff(launcher.client.tracking_uri) as handoff:
            return launcher.launch(parameters or {}, experiment, handoff, run_name=run_name,
                                   sinks=sinks, on_run=on_run)


