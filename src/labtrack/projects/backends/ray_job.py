"""The entrypoint of a Ray job that runs a project's command for a labtrack run.

    python -m labtrack.projects.backends.ray_job 'python train.py --alpha 0.5'

The job's ``env_vars`` say which run (``LABTRACK_RUN_ID``) and where it is tracked
(``LABTRACK_TRACKING_URI`` / ``LABTRACK_TRACKING_TOKEN``, and the ``MLFLOW_*`` equivalents
the command's mlflow client reads). This sets the run RUNNING, runs the command in the job's
working folder (the project) with its output shown — it becomes the job's driver log — and
saved, then saves the output as ``logs/output.txt``, records the exit code and ends the run:
FINISHED on exit code 0, FAILED otherwise, KILLED when Ray stops the job (SIGTERM, or
SIGINT with ``RAY_JOB_STOP_SIGNAL=SIGINT``). So a run whose job was submitted with
``--async`` ends by itself, and one that labtrack follows ends the same way either side.

Ray sends the stop signal to this process and to the command (every descendant) at once and
kills them all a few seconds later (``RAY_JOB_STOP_WAIT_TIME_S``, default 3), so the command
stays in this process group, and the run is recorded as KILLED within ``STOP_GRACE_S``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from labtrack import config
from labtrack.client.tracking import TrackingClient
from labtrack.entities import RunStatus
from labtrack.errors import LabtrackError
from labtrack.projects.process import ChildProcess, OutputSinks, say
from labtrack.projects.runner import EXIT_CODE_TAG, OUTPUT_ARTIFACT_DIR, OUTPUT_ARTIFACT_NAME
from labtrack.projects.spec import shell_program

STOP_GRACE_S = 1.5  # after the stop signal: for the command to exit before the run is ended


def _record(client: TrackingClient, run_id: str, log_path: Path, status: RunStatus,
            exit_code: int | None) -> None:
    try:
        client.log_artifact(run_id, log_path, OUTPUT_ARTIFACT_DIR)
    except (LabtrackError, OSError) as error:
        say(f"run {run_id}: could not save the output: {error}")
    try:
        if client.get_run(run_id).info.status != status:
            client.set_terminated(run_id, status)
        if exit_code is not None:  # last: once it is there, the run's end is recorded
            client.set_tag(run_id, EXIT_CODE_TAG, str(exit_code))
        client.flush()
    except LabtrackError as error:
        say(f"run {run_id}: could not record its end ({status}): {error}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        say("usage: python -m labtrack.projects.backends.ray_job COMMAND")
        return 2
    command = argv[0]
    run_id = os.environ.get(config.RUN_ID_ENV)
    if not run_id:
        say(f"{config.RUN_ID_ENV} is not set: this runs inside a job labtrack submitted.")
        return 2
    client = TrackingClient()
    try:
        client.update_run(run_id, RunStatus.RUNNING)
    except LabtrackError as error:
        say(f"run {run_id}: cannot reach the tracking server at "
            f"{client.tracking_uri}: {error}")
    stop_requested = threading.Event()

    def stop(signum, frame) -> None:
        stop_requested.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    folder = Path(tempfile.mkdtemp(prefix="labtrack-job-"))
    log_path = folder / OUTPUT_ARTIFACT_NAME
    log_path.touch()
    environ = {**os.environ, "PYTHONUNBUFFERED": "1"}
    child = ChildProcess([*shell_program(), command], Path.cwd(), environ, log_path,
                         OutputSinks(), new_session=False)
    exit_code = None
    try:
        try:
            child.start()
        except OSError as failure:
            message = f"Cannot start the command: {failure}"
            say(message)
            with open(log_path, "ab") as log:
                log.write(f"{message}\n".encode())
            _record(client, run_id, log_path, RunStatus.FAILED, None)
            return 127
        while exit_code is None:
            try:
                exit_code = child.wait(0.2 if not stop_requested.is_set() else STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                if stop_requested.is_set():
                    break  # Ray kills what is left; the run is recorded now
        if stop_requested.is_set():
            status = RunStatus.KILLED
        else:
            status = RunStatus.FINISHED if exit_code == 0 else RunStatus.FAILED
        _record(client, run_id, log_path, status, exit_code)
    finally:
        child.close()
        shutil.rmtree(folder, ignore_errors=True)
    if exit_code is None:
        child.kill()
        return 128 + signal.SIGTERM
    return exit_code if exit_code >= 0 else 128 - exit_code


if __name__ == "__main__":
    sys.exit(main())
