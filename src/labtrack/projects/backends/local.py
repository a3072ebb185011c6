"""The ``local`` backend: the command runs here, in a child process of labtrack."""

from __future__ import annotations

import os
from collections.abc import Mapping

from labtrack import config
from labtrack.entities import RunStatus
from labtrack.projects import environment as environments
from labtrack.projects.backends.base import Backend, Launch, Outcome, Plan
from labtrack.projects.environment import PreparedEnvironment
from labtrack.projects.process import ChildProcess
from labtrack.projects.runner import OUTPUT_ARTIFACT_NAME
from labtrack.projects.spec import shell_program

# Settings of the launching process that must not reach the child: they would point it at
# another experiment, run or server.
_CLEARED_VARIABLES = (
    config.EXPERIMENT_NAME_ENV, "MLFLOW_EXPERIMENT_NAME", "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_AUTH", "MLFLOW_PARENT_RUN_ID",
)


def child_environ(base: Mapping[str, str], env: PreparedEnvironment, handoff,
                  run_id: str, experiment_id: str) -> dict[str, str]:
    environ = env.apply(dict(base))
    for name in _CLEARED_VARIABLES:
        environ.pop(name, None)
    if "MLFLOW_TRACKING_TOKEN" in environ and handoff.token is None:
        environ.pop("MLFLOW_TRACKING_TOKEN")
    environ.update(handoff.environ(run_id, experiment_id))
    environ.setdefault("PYTHONUNBUFFERED", "1")  # output shows up as it is printed
    return environ


class LocalBackend(Backend):
    """A child process in its own session; the prepared environment is this Python or a
    cached virtualenv."""

    name = "local"

    def prepare_environment(self, launcher) -> PreparedEnvironment:
        return environments.prepare_environment(launcher.env_manager,
                                                launcher.project.env_file)

    def plan(self, launcher, declared, extra, environment: PreparedEnvironment) -> Plan:
        command = launcher.entry_point.command_line(declared, extra, python=environment.python,
                                                    shell=shell_program()[0])
        return Plan(command, {**declared, **extra})

    def execute(self, launch: Launch) -> Outcome:
        log_path = launch.folder / OUTPUT_ARTIFACT_NAME
        log_path.touch()
        environ = child_environ(os.environ, launch.environment, launch.handoff, launch.run_id,
                                launch.experiment_id)
        child = ChildProcess([*shell_program(), launch.command], launch.launcher.directory,
                             environ, log_path, launch.sinks)
        exit_code = None
        try:
            with launch.launcher.track(child):
                launch.announce(f"run {launch.run_id} ('{launch.run_name}', experiment "
                                f"{launch.experiment_id}): {launch.command}")
                child.start()
                exit_code = child.wait()
            if child.stopped:
                status = RunStatus.KILLED
            else:
                status = RunStatus.FINISHED if exit_code == 0 else RunStatus.FAILED
        except KeyboardInterrupt:
            if child.pid is not None:
                child.stop(launch.launcher.stop_timeout)
                exit_code = child.wait()  # reaped already; this collects the last output
            status = RunStatus.KILLED
        except OSError as failure:  # the shell could not be started
            error = f"Cannot start the command: {failure}"
            with open(log_path, "ab") as log:
                log.write(f"{error}\n".encode())
            return Outcome(RunStatus.FAILED, None, error, (log_path,))
        finally:
            child.close()
        return Outcome(status, exit_code, None, (log_path,))
