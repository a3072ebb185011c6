"""The ``ray`` backend: the command runs as a Ray job (Ray Jobs API) on a Ray cluster.

labtrack does not schedule anything itself: it submits to a Ray cluster a team already runs
(KubeRay on Kubernetes, cloud VMs, or ``ray start --head`` on a workstation). For each run:

- the run is created first (the same provenance tags and parameters as a local run, plus
  ``mlflow.project.backend=ray``, ``labtrack.ray.jobId`` and ``labtrack.ray.address``) and
  set SCHEDULED;
- the project folder (for a git URI or ``-v``: the clean checkout of that commit) is the
  job's ``runtime_env.working_dir``; labtrack's own package goes along in ``py_modules`` so
  the job logs with the launching version; a ``python_env.yaml``'s requirements become the
  job's ``runtime_env.pip``; the tracking URI, token and run id are ``env_vars``;
- the job's entrypoint is ``python -m labtrack.projects.backends.ray_job COMMAND``: it sets
  the run RUNNING, runs the command, saves its output as ``logs/output.txt`` and ends the
  run (FINISHED, FAILED, or KILLED when the job is stopped) — so a run submitted with
  ``--async`` still ends by itself;
- without ``--async``, labtrack follows the job: its driver log streams to the terminal and
  is saved as ``logs/ray-driver.txt``, and the run ends with the job's status (PENDING →
  SCHEDULED, RUNNING → RUNNING, SUCCEEDED → FINISHED, FAILED → FAILED, STOPPED → KILLED).
  Ctrl-C stops the job.

The configuration (``--backend-config ray.json``) is described by ``RayConfig``.
"""

from __future__ import annotations

import asyncio
import copy
import importlib.metadata
import ipaddress
import logging
import os
import re
import shlex
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

import labtrack
from labtrack.entities import RunStatus
from labtrack.projects import environment as environments
from labtrack.projects.backends.base import Backend, Launch, Outcome, Plan
from labtrack.projects.environment import PythonEnv
from labtrack.projects.process import say
from labtrack.projects.spec import ProjectError

INSTALL_HINT = 'pip install "labtrack[ray]"'
JOB_ID_TAG = "labtrack.ray.jobId"
ADDRESS_TAG = "labtrack.ray.address"
DRIVER_LOG_FILE = "ray-driver.txt"
ENTRYPOINT_MODULE = "labtrack.projects.backends.ray_job"

# A Ray job's status → the run's status.
RUN_STATUS = {
    "PENDING": RunStatus.SCHEDULED,
    "RUNNING": RunStatus.RUNNING,
    "SUCCEEDED": RunStatus.FINISHED,
    "FAILED": RunStatus.FAILED,
    "STOPPED": RunStatus.KILLED,
}
POLL_INTERVAL_S = 0.5
LOST_CONTACT_S = 120.0      # the cluster unreachable this long while following: give up
STOP_GRACE_S = 30.0         # after stop_job: Ray's own SIGTERM → SIGKILL wait, and slack
TAIL_JOIN_TIMEOUT_S = 10.0  # after the job ended, for the last of the streamed log
_RESERVED_RUNTIME_ENV = ("working_dir",)
_EXCLUDED_FROM_UPLOAD = (".git",)  # the run records the commit; the job needs no history


def _require_ray():
    try:
        from ray.job_submission import JobSubmissionClient
    except ImportError as error:
        raise ProjectError(
            f"--backend ray needs Ray's job client, which is not installed ({error}): "
            f"{INSTALL_HINT}"
        ) from None
    return JobSubmissionClient


# -- configuration ----------------------------------------------------------------------------


def _number(config: Mapping, key: str, integer: bool = False) -> float | int | None:
    value = config.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or (
            integer and not isinstance(value, int)):
        kind = "a whole number of bytes" if integer else "a number"
        raise ProjectError(f"Ray backend config: '{key}' must be {kind} ≥ 0, not {value!r}.")
    return value


def _string_map(config: Mapping, key: str, values: type | tuple = str) -> dict:
    value = config.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, values) and not isinstance(v, bool)
            for k, v in value.items()):
        raise ProjectError(f"Ray backend config: '{key}' must be an object of "
                           f"{'strings' if values is str else 'numbers'}.")
    return dict(value)


@dataclass(frozen=True)
class RayConfig:
    """``ray.json``, e.g.::

        {"address": "http://127.0.0.1:8265", "num_cpus": 2, "num_gpus": 1,
         "memory": 8000000000, "runtime_env": {"pip": ["torch==2.3.1"],
         "env_vars": {"OMP_NUM_THREADS": "4"}}}

    - ``address``: the cluster's dashboard / job server (``http://head:8265``); default
      ``RAY_API_SERVER_ADDRESS`` or ``RAY_ADDRESS``.
    - ``num_cpus``, ``num_gpus``, ``memory`` (bytes), ``resources`` (custom resources):
      what the job's entrypoint reserves (``entrypoint_num_cpus`` …).
    - ``runtime_env``: merged into the job's runtime environment (``pip``, ``env_vars``,
      ``py_modules``, ``excludes``, ``conda``, ``container`` …); ``working_dir`` is the
      project and cannot be set.
    - ``tracking_uri``: where the job reaches the tracking server when that differs from
      this machine's ``LABTRACK_TRACKING_URI`` (a Kubernetes service name, say).
    - ``python``: the job's Python command (default ``python``).
    - ``ship_labtrack`` (default true): send this labtrack package with the job
      (``py_modules``); false when the cluster's image has labtrack installed.
    - ``labtrack_dependencies`` (default false): add labtrack's requirements to the job's
      ``pip`` (for a cluster image without them).
    - ``headers``: HTTP headers for the job server (e.g. an ``Authorization`` a proxy in
      front of the dashboard needs); ``verify``: TLS verification (false, or a CA bundle).
    - ``metadata``: labels stored with each job.
    """

    address: str | None = None
    num_cpus: float | None = None
    num_gpus: float | None = None
    memory: int | None = None
    resources: dict = field(default_factory=dict)
    runtime_env: dict = field(default_factory=dict)
    tracking_uri: str | None = None
    python: str = "python"
    ship_labtrack: bool = True
    labtrack_dependencies: bool = False
    headers: dict = field(default_factory=dict)
    verify: bool | str = True
    metadata: dict = field(default_factory=dict)

    KEYS = ("address", "num_cpus", "num_gpus", "memory", "resources", "runtime_env",
            "tracking_uri", "python", "ship_labtrack", "labtrack_dependencies", "headers",
            "verify", "metadata")

    @classmethod
    def parse(cls, config: Mapping[str, Any]) -> RayConfig:
        unknown = sorted(set(config) - set(cls.KEYS))
        if unknown:
            raise ProjectError(
                f"Ray backend config: unknown key{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(map(repr, unknown))}; the keys are {', '.join(cls.KEYS)}."
            )
        for key in ("address", "tracking_uri", "python"):
            if config.get(key) is not None and (
                    not isinstance(config[key], str) or not config[key].strip()):
                raise ProjectError(f"Ray backend config: '{key}' must be a non-empty string.")
        for key in ("ship_labtrack", "labtrack_dependencies"):
            if key in config and not isinstance(config[key], bool):
                raise ProjectError(f"Ray backend config: '{key}' must be true or false.")
        verify = config.get("verify", True)
        if not isinstance(verify, bool | str):
            raise ProjectError("Ray backend config: 'verify' must be true, false or the path "
                               "of a CA bundle.")
        tracking_uri = config.get("tracking_uri")
        if tracking_uri is not None and not tracking_uri.startswith(("http://", "https://")):
            raise ProjectError("Ray backend config: 'tracking_uri' must be an http(s):// URL "
                               "of a labtrack server the job can reach.")
        runtime_env = config.get("runtime_env")
        runtime_env = {} if runtime_env is None else runtime_env
        if not isinstance(runtime_env, dict):
            raise ProjectError("Ray backend config: 'runtime_env' must be an object.")
        reserved = [k for k in _RESERVED_RUNTIME_ENV if k in runtime_env]
        if reserved:
            raise ProjectError(
                "Ray backend config: runtime_env.working_dir is the project folder labtrack "
                "ships; leave it out (use runtime_env.excludes to leave files behind)."
            )
        _string_map(runtime_env, "env_vars")
        return cls(
            address=config.get("address"),
            num_cpus=_number(config, "num_cpus"),
            num_gpus=_number(config, "num_gpus"),
            memory=_number(config, "memory", integer=True),
            resources=_string_map(config, "resources", (int, float)),
            runtime_env=copy.deepcopy(runtime_env),
            tracking_uri=tracking_uri,
            python=config.get("python") or "python",
            ship_labtrack=config.get("ship_labtrack", True),
            labtrack_dependencies=config.get("labtrack_dependencies", False),
            headers=_string_map(config, "headers"),
            verify=verify,
            metadata=_string_map(config, "metadata"),
        )

    def entrypoint_resources(self) -> dict[str, Any]:
        """The ``submit_job`` arguments for what the entrypoint reserves (only those set)."""
        chosen = {"entrypoint_num_cpus": self.num_cpus, "entrypoint_num_gpus": self.num_gpus,
                  "entrypoint_memory": self.memory,
                  "entrypoint_resources": self.resources or None}
        return {k: v for k, v in chosen.items() if v is not None}


def _is_loopback(address: str | None) -> bool:
    """Whether the job server is on this machine (so a job reaches a loopback server)."""
    if not address or address in ("auto", "local"):
        return True
    host = urlparse(address if "://" in address else f"http://{address}").hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# -- the environment ----------------------------------------------------------------------


@dataclass(frozen=True)
class RayRuntime:
    """The job's runtime environment, as far as it is the same for every launch (the
    working folder and the run's variables are added per launch)."""

    runtime_env: dict
    requirements: tuple[str, ...] = ()


_REQUIREMENT_FILE = re.compile(r"^(?:-r|--requirement)[\s=]*(\S+)$")
_CONSTRAINT_FILE = re.compile(r"^(?:-c|--constraint)[\s=]*(\S+)$")


def _requirements_file(path: Path, seen: set[Path]) -> list[str]:
    """The lines of a requirements file, ``-r`` files inlined (their paths are local)."""
    path = path.resolve()
    if path in seen:
        return []
    seen.add(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise ProjectError(f"Cannot read the requirements file {path}: {error.strerror}") \
            from None
    lines = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        lines.extend(_requirement(line, path.parent, seen))
    return lines


def _requirement(line: str, base_dir: Path, seen: set[Path]) -> list[str]:
    included = _REQUIREMENT_FILE.match(line)
    if included:
        return _requirements_file(base_dir / included.group(1), seen)
    if _CONSTRAINT_FILE.match(line):
        raise ProjectError(
            f"'{line}': a constraints file is not sent to the Ray cluster; pin the versions in "
            "the requirements instead."
        )
    if line.startswith((".", "/", "~")) or line.endswith((".whl", ".tar.gz", ".zip")):
        local = (base_dir / line).expanduser()
        if local.suffix == ".whl" and local.is_file():
            return [f"wheel:{local.resolve()}"]
        raise ProjectError(
            f"'{line}' is a local path, which the Ray cluster cannot install from: build a "
            "wheel of it (a local .whl is sent with the job) or publish it to an index."
        )
    return [line]


def ray_requirements(python_env: PythonEnv) -> tuple[list[str], list[Path]]:
    """A ``python_env.yaml`` as the job's pip requirements and the local wheels to send
    (``py_modules``): ``-r`` files are read here and inlined."""
    requirements: list[str] = []
    wheels: list[Path] = []
    seen: set[Path] = set()
    for line in (*python_env.build_dependencies, *python_env.dependencies):
        for item in _requirement(line, python_env.base_dir, seen):
            if item.startswith("wheel:"):
                wheels.append(Path(item.removeprefix("wheel:")))
            else:
                requirements.append(item)
    return list(dict.fromkeys(requirements)), wheels


def labtrack_requirements() -> list[str]:
    """labtrack's own requirements (no extras), for a cluster image without them."""
    try:
        declared = importlib.metadata.requires("labtrack") or []
    except importlib.metadata.PackageNotFoundError:
        return []
    return [r.split(";", 1)[0].strip() for r in declared if "extra ==" not in r]


def _add_pip(runtime_env: dict, requirements: list[str]) -> None:
    if not requirements:
        return
    for other in ("conda", "uv"):
        if other in runtime_env:
            raise ProjectError(
                f"The job's runtime_env has '{other}', and the project's python_env.yaml (or "
                "labtrack_dependencies) asks for pip packages; Ray takes one of them. Use "
                "--env-manager local to let the runtime_env decide."
            )
    pip = runtime_env.get("pip")
    if pip is None:
        runtime_env["pip"] = list(requirements)
    elif isinstance(pip, list):
        runtime_env["pip"] = [*pip, *(r for r in requirements if r not in pip)]
    elif isinstance(pip, dict):
        packages = list(pip.get("packages") or [])
        pip["packages"] = [*packages, *(r for r in requirements if r not in packages)]
    elif isinstance(pip, str):  # a requirements file on this machine
        lines = _requirements_file(Path(pip).expanduser(), set())
        runtime_env["pip"] = [*lines, *(r for r in requirements if r not in lines)]
    else:
        raise ProjectError("runtime_env.pip must be a list, an object or a file path.")


# -- the job ------------------------------------------------------------------------------


class RayJob:
    """One submitted job, stoppable from any thread (``stop_all``)."""

    def __init__(self, client, submission_id: str):
        self.client = client
        self.submission_id = submission_id
        self.submitted = False
        self.stopped = False
        self.abandoned = False  # stop waiting for it (a second Ctrl-C, ``kill_all``)
        self._lock = threading.Lock()
        self._wake = threading.Event()

    def submit(self, **arguments) -> None:
        with self._lock:
            if self.stopped:
                raise KeyboardInterrupt
        self.client.submit_job(submission_id=self.submission_id, **arguments)
        with self._lock:
            self.submitted = True
            stop_now = self.stopped
        if stop_now:  # stopped while it was being submitted
            self._stop()

    def terminate(self) -> None:
        with self._lock:
            self.stopped = True
            submitted = self.submitted
        if submitted:
            self._stop()

    def kill(self) -> None:
        self.terminate()
        self.abandoned = True
        self._wake.set()

    def _stop(self) -> None:
        try:
            self.client.stop_job(self.submission_id)
        except Exception as error:  # the job may have ended, or the cluster be unreachable
            say(f"could not stop Ray job {self.submission_id}: {error}")

    def status(self) -> str:
        status = self.client.get_job_status(self.submission_id)
        return str(getattr(status, "value", status))

    def sleep(self, seconds: float) -> None:
        """Wait (interruptible by Ctrl-C and by ``kill``)."""
        self._wake.wait(seconds)


class _LostContact(Exception):
    pass


class _LogTail(threading.Thread):
    """Streams the job's driver log (``tail_job_logs``) to a sink as it comes."""

    def __init__(self, client, submission_id: str, sink):
        super().__init__(daemon=True, name=f"labtrack-ray-log-{submission_id}")
        self.client, self.submission_id, self.sink = client, submission_id, sink

    def run(self) -> None:
        async def follow() -> None:
            async for chunk in self.client.tail_job_logs(self.submission_id):
                try:
                    self.sink(chunk.encode())
                except (OSError, ValueError):  # the terminal went away
                    pass

        try:
            asyncio.run(follow())
        except Exception as error:  # the saved driver log is fetched whole at the end
            say(f"stopped following the log of Ray job {self.submission_id}: {error}")


# -- the backend ----------------------------------------------------------------------------


class RayBackend(Backend):
    """Projects as Ray jobs. Needs ``ray[default]`` (``pip install "labtrack[ray]"``)."""

    name = "ray"

    def __init__(self, config: RayConfig, asynchronous: bool = False):
        self._client_class = _require_ray()
        # Ray's job client announces each closed log stream at INFO; labtrack says how the
        # job ended itself.
        logging.getLogger("ray.dashboard.modules.job.sdk").setLevel(logging.WARNING)
        self.config = config
        self.asynchronous = asynchronous
        self._client = None
        self._client_lock = threading.Lock()

    @property
    def address(self) -> str:
        address = (self.config.address or os.environ.get("RAY_API_SERVER_ADDRESS")
                   or os.environ.get("RAY_ADDRESS"))
        if not address:
            raise ProjectError(
                "The Ray backend needs the cluster's address: \"address\": "
                "\"http://HEAD:8265\" in --backend-config (or RAY_API_SERVER_ADDRESS)."
            )
        return address

    def client(self):
        """The job client (connected once; it checks the cluster's Ray version)."""
        with self._client_lock:
            if self._client is None:
                address = self.address
                try:
                    self._client = self._client_class(
                        address, headers=self.config.headers or None,
                        verify=self.config.verify)
                except Exception as error:
                    raise ProjectError(
                        f"Cannot reach the Ray cluster's job server at {address}: {error}"
                    ) from None
            return self._client

    def check(self, launcher) -> None:
        remote = launcher.client.tracking_uri.startswith(("http://", "https://"))
        if not remote and self.config.tracking_uri:
            raise ProjectError(
                "tracking_uri in the Ray backend config names the server the job reports "
                "to; this machine must log to that same server: set LABTRACK_TRACKING_URI "
                "(and LABTRACK_TRACKING_TOKEN) to it."
            )
        if not remote and self.asynchronous:
            raise ProjectError(
                "--async needs a tracking server the job can reach after labtrack returns, "
                "but the store is local (served to the job only while labtrack runs): start "
                "`labtrack server` and set LABTRACK_TRACKING_URI=http://… (and "
                "LABTRACK_TRACKING_TOKEN), or leave out --async to follow the job."
            )
        if not remote and not _is_loopback(self.address):
            raise ProjectError(
                f"The Ray cluster at {self.address} cannot reach a local store (labtrack "
                "serves it on 127.0.0.1 only): start `labtrack server` where the cluster "
                "can reach it and set LABTRACK_TRACKING_URI=http://… (and "
                "LABTRACK_TRACKING_TOKEN)."
            )
        self.client()

    def prepare_environment(self, launcher) -> RayRuntime:
        runtime_env = copy.deepcopy(self.config.runtime_env)
        runtime_env.pop("env_vars", None)  # added per launch, with the run's
        requirements: list[str] = []
        wheels: list[Path] = []
        if launcher.env_manager == environments.VIRTUALENV and launcher.project.env_file:
            requirements, wheels = ray_requirements(PythonEnv.load(launcher.project.env_file))
        if self.config.labtrack_dependencies:
            requirements += [r for r in labtrack_requirements() if r not in requirements]
        _add_pip(runtime_env, requirements)
        modules = list(runtime_env.get("py_modules") or [])
        modules += [str(w) for w in wheels]
        if self.config.ship_labtrack:
            modules.append(str(Path(labtrack.__file__).parent))
        if modules:
            runtime_env["py_modules"] = modules
        excludes = list(runtime_env.get("excludes") or [])
        runtime_env["excludes"] = [*excludes, *(e for e in _EXCLUDED_FROM_UPLOAD
                                                if e not in excludes)]
        return RayRuntime(runtime_env, tuple(requirements))

    def plan(self, launcher, declared, extra, environment: RayRuntime) -> Plan:
        declared = dict(declared)
        project = launcher.directory.resolve()
        for name, parameter in launcher.entry_point.parameters.items():
            if parameter.type != "path" or name not in declared:
                continue
            path = Path(declared[name])
            try:
                # The job runs in its copy of the project folder: a path inside it is
                # passed relative to it.
                declared[name] = PurePosixPath(path.resolve().relative_to(project)).as_posix()
            except ValueError:
                say(f"parameter '{name}' is {path}, outside the project folder: the Ray job "
                    "finds it only if the cluster shares this file system.")
        command = launcher.entry_point.command_line(declared, extra,
                                                    python=self.config.python, shell="bash")
        submission_id = f"labtrack-{uuid.uuid4().hex[:20]}"
        return Plan(command, {**declared, **extra},
                    {JOB_ID_TAG: submission_id, ADDRESS_TAG: self.address})

    # -- running -------------------------------------------------------------------------

    def _submission(self, launch: Launch) -> dict[str, Any]:
        runtime_env = copy.deepcopy(launch.environment.runtime_env)
        runtime_env["working_dir"] = str(launch.launcher.directory)
        env_vars = dict(self.config.runtime_env.get("env_vars") or {})
        env_vars.update(launch.handoff.environ(launch.run_id, launch.experiment_id,
                                               over_http=True))
        if self.config.tracking_uri:
            env_vars["LABTRACK_TRACKING_URI"] = self.config.tracking_uri
            env_vars["MLFLOW_TRACKING_URI"] = self.config.tracking_uri.rstrip("/")
        env_vars.setdefault("PYTHONUNBUFFERED", "1")
        runtime_env["env_vars"] = env_vars
        entrypoint = (f"{self.config.python} -m {ENTRYPOINT_MODULE} "
                      f"{shlex.quote(launch.command)}")
        metadata = {**self.config.metadata, "labtrack_run_id": launch.run_id,
                    "labtrack_experiment_id": launch.experiment_id}
        return {"entrypoint": entrypoint, "runtime_env": runtime_env, "metadata": metadata,
                **self.config.entrypoint_resources()}

    def execute(self, launch: Launch) -> Outcome:
        submission_id = launch.plan.tags[JOB_ID_TAG]
        client = self.client()
        job = RayJob(client, submission_id)
        driver_log = launch.folder / DRIVER_LOG_FILE
        launch.launcher.client.update_run(launch.run_id, RunStatus.SCHEDULED)
        status = None
        try:
            with launch.launcher.track(job):
                launch.announce(
                    f"run {launch.run_id} ('{launch.run_name}', experiment "
                    f"{launch.experiment_id}): Ray job {submission_id} on {self.address}: "
                    f"{launch.command}")
                try:
                    job.submit(**self._submission(launch))
                except (KeyboardInterrupt, ProjectError):
                    raise
                except Exception as error:
                    message = f"Cannot submit the Ray job: {error}"
                    driver_log.write_text(f"{message}\n")
                    return Outcome(RunStatus.FAILED, None, message, (driver_log,),
                                   job_id=submission_id)
                if self.asynchronous:
                    launch.announce(
                        f"run {launch.run_id} is Ray job {submission_id}; it ends the run "
                        f"itself. Follow it with: ray job logs --address {self.address} "
                        f"--follow {submission_id}")
                    return Outcome(RunStatus.SCHEDULED, detail=f"Ray job {submission_id} "
                                   "submitted", detached=True, job_id=submission_id)
                status = self._follow(job, launch.sinks.stdout)
        except KeyboardInterrupt:
            if job.submitted:
                launch.announce(f"stopping Ray job {submission_id} (Ctrl-C again to stop "
                                "waiting for it)")
                status = self._stop_and_wait(job)
            run_status = RunStatus.KILLED
        except _LostContact as error:
            message = (f"lost contact with the Ray cluster ({error}); Ray job {submission_id} "
                       "goes on and ends its run itself")
            return Outcome(RunStatus.RUNNING, None, message, detached=True,
                           job_id=submission_id)
        else:
            run_status = RUN_STATUS.get(status, RunStatus.FAILED)
        if not job.submitted:
            return Outcome(RunStatus.KILLED, job_id=submission_id)
        return self._ended(job, status, run_status, driver_log)

    def _follow(self, job: RayJob, sink) -> str | None:
        """Stream the driver log until the job ends; its final status."""
        tail = _LogTail(job.client, job.submission_id, sink)
        tail.start()
        failing_since = None
        while not job.abandoned:
            try:
                status = job.status()
                failing_since = None
            except Exception as error:
                now = time.monotonic()
                failing_since = failing_since or now
                if now - failing_since > LOST_CONTACT_S:
                    raise _LostContact(str(error)) from None
                job.sleep(POLL_INTERVAL_S * 4)
                continue
            if status in ("SUCCEEDED", "FAILED", "STOPPED"):
                tail.join(TAIL_JOIN_TIMEOUT_S)
                return status
            job.sleep(POLL_INTERVAL_S)
        return None

    def _stop_and_wait(self, job: RayJob) -> str | None:
        job.terminate()
        deadline = time.monotonic() + STOP_GRACE_S
        try:
            while time.monotonic() < deadline and not job.abandoned:
                try:
                    status = job.status()
                except Exception:
                    status = None
                if status in ("SUCCEEDED", "FAILED", "STOPPED"):
                    return status
                job.sleep(POLL_INTERVAL_S)
        except KeyboardInterrupt:
            job.abandoned = True
        return None

    def _ended(self, job: RayJob, status: str | None, run_status: RunStatus,
               driver_log: Path) -> Outcome:
        exit_code = error = None
        try:
            info = job.client.get_job_info(job.submission_id)
            exit_code = info.driver_exit_code
            error_type = str(getattr(info, "error_type", "") or "")
            if status == "FAILED" and info.message and "ENTRYPOINT_COMMAND" not in error_type:
                # Failed before the command ran (runtime env setup, …): Ray says why.
                error = info.message.strip()
                error = error if len(error) <= 2000 else error[:2000] + "… (see the driver log)"
        except Exception as problem:
            say(f"could not read Ray job {job.submission_id}'s details: {problem}")
        try:
            driver_log.write_text(job.client.get_job_logs(job.submission_id))
        except Exception as problem:
            driver_log.write_text(f"(could not fetch the driver log: {problem})\n")
        detail = f"Ray job {job.submission_id} {status or 'still stopping'}"
        return Outcome(run_status, exit_code, error, (driver_log,), detail,
                       job_id=job.submission_id)
