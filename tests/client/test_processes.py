"""Several processes, forks and interpreter exit: no point is lost, no lock error surfaces."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import textwrap

import labtrack
from labtrack.entities import RunStatus


def run_python(code: str, tracking_uri: str, **env: str) -> subprocess.Popen:
    environment = {**os.environ, "LABTRACK_TRACKING_URI": tracking_uri, **env}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


WRITER = """
    import sys
    import labtrack

    points = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    with labtrack.start_run(run_name="worker") as run:
        for step in range(20_000):
            labtrack.log_metric("loss", 1.0 / (step + 1), step=step)
            if step % 1000 == 0:
                labtrack.log_metric("lr", 0.1, step=step)
        labtrack.set_tag("worker", "done")
    print(run.run_id)
"""


def test_eight_processes_log_at_once_without_losing_points(tracking_uri):
    # Create the store first so the workers race on logging, not on the schema; a short
    # flush interval multiplies the write transactions competing for the lock.
    labtrack.TrackingClient(tracking_uri)
    workers = [run_python(WRITER, tracking_uri, LABTRACK_FLUSH_INTERVAL="0.01")
               for _ in range(8)]
    outputs = [worker.communicate(timeout=300) for worker in workers]
    for worker, (_stdout, stderr) in zip(workers, outputs):
        assert worker.returncode == 0, stderr
        assert "locked" not in stderr
    client = labtrack.TrackingClient(tracking_uri)
    run_ids = [stdout.strip() for stdout, _ in outputs]
    assert len(set(run_ids)) == 8
    for run_id in run_ids:
        run = client.get_run(run_id)
        assert run.info.status == RunStatus.FINISHED
        assert run.data.tags["worker"] == "done"
        history = client.get_metric_history(run_id, "loss")
        assert [m.step for m in history] == list(range(20_000))
        assert len(client.get_metric_history(run_id, "lr")) == 20


def test_plain_exit_stores_buffered_points_and_finishes_the_run(tracking_uri):
    script = """
        import labtrack
        run = labtrack.start_run()
        for step in range(5000):
            labtrack.log_metric("m", float(step), step=step)
        print(run.run_id)
        # no flush, no end_run: the interpreter exit must take care of both
    """
    process = run_python(script, tracking_uri, LABTRACK_FLUSH_INTERVAL="60")
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    client = labtrack.TrackingClient(tracking_uri)
    run = client.get_run(stdout.strip())
    assert run.info.status == RunStatus.FINISHED
    assert len(client.get_metric_history(run.info.run_id, "m")) == 5000


def test_a_script_dying_of_an_exception_leaves_its_run_failed(tracking_uri):
    script = """
        import labtrack
        run = labtrack.start_run()
        print(run.run_id, flush=True)
        labtrack.log_metric("m", 1.0)
        raise RuntimeError("boom")
    """
    process = run_python(script, tracking_uri, LABTRACK_FLUSH_INTERVAL="60")
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 1 and "boom" in stderr
    client = labtrack.TrackingClient(tracking_uri)
    run = client.get_run(stdout.strip())
    assert run.info.status == RunStatus.FAILED
    assert run.data.metrics == {"m": 1.0}


def _log_from_forked_child(run_id: str, tracking_uri: str) -> None:
    labtrack.set_tracking_uri(tracking_uri)
    for step in range(3000):
        labtrack.log_metric("child", float(step), step=step, run_id=run_id)
    # Returning normally: multiprocessing exits with os._exit, skipping atexit.


def test_forked_children_store_their_points_and_do_not_duplicate_the_parents(fluent_uri):
    context = multiprocessing.get_context("fork")
    with labtrack.start_run() as run:
        for step in range(100):
            labtrack.log_metric("parent", float(step), step=step)
        # 100 points are still buffered in the parent when it forks.
        children = [context.Process(target=_log_from_forked_child,
                                    args=(run.run_id, fluent_uri)) for _ in range(3)]
        for child in children:
            child.start()
        for child in children:
            child.join(120)
            assert child.exitcode == 0
    client = labtrack.TrackingClient(fluent_uri)
    assert len(client.get_metric_history(run.run_id, "parent")) == 100
    assert len(client.get_metric_history(run.run_id, "child")) == 3 * 3000
    assert client.get_run(run.run_id).info.status == RunStatus.FINISHED


def test_a_forked_child_exiting_does_not_end_the_parents_run(tracking_uri):
    script = """
        import os, sys
        import labtrack

        run = labtrack.start_run()
        print(run.run_id, flush=True)
        pid = os.fork()
        if pid == 0:
            # The child inherits the active run and the atexit handlers; a normal exit must
            # store its point but leave the parent's run alone.
            labtrack.log_metric("from_child", 1.0)
            sys.exit(0)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status), flush=True)
        print(labtrack.TrackingClient().get_run(run.run_id).info.status, flush=True)
        labtrack.end_run()
    """
    process = run_python(script, tracking_uri)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    run_id, child_exit, status_after_child = stdout.split()
    assert child_exit == "0"
    assert status_after_child == "RUNNING"
    client = labtrack.TrackingClient(tracking_uri)
    assert client.get_run(run_id).data.metrics == {"from_child": 1.0}
    assert client.get_run(run_id).info.status == RunStatus.FINISHED
