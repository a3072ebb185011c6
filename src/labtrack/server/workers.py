"""Several processes serving one listening socket: ``labtrack server --workers N``.

The parent binds the socket, forks ``N`` workers and supervises them: a worker that dies is
replaced, and SIGTERM or SIGINT to the parent stops every worker (each finishes gracefully)
before the parent exits. Everything that holds threads or connections — the store, the thread
pools, the webhook dispatcher — must be created in the worker, after the fork, never in the
parent. tornado's ``fork_processes`` does the forking part but keeps the children's process
ids to itself, so it cannot pass a stop signal on; this supervisor can.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import time
from collections.abc import Callable

log = logging.getLogger("labtrack.server")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# A worker that keeps dying (the store unreachable, …) is not restarted forever.
MAX_RESTARTS = 100
# Restarting a worker that died this soon after it started waits this long first.
QUICK_DEATH_SECONDS = 1.0
_PR_SET_PDEATHSIG = 1


def configure_logging(label: str | None) -> None:
    """Log lines on stderr, each naming the process (``label``) when there are several."""
    where = f" [{label}]" if label else ""
    logging.basicConfig(level=logging.INFO, force=True,
                        format=f"%(asctime)s{where} %(name)s %(message)s")


def _die_with_parent() -> None:
    """Linux: a worker gets SIGTERM when the supervisor dies, even by SIGKILL, so no
    orphaned worker keeps serving."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def supervise(count: int, run_worker: Callable[[int], None]) -> int:
    """Fork ``count`` processes running ``run_worker(index)`` (index 1…count; it returns when
    the worker was asked to stop) and keep them running until SIGTERM/SIGINT. Returns the exit
    code for the parent: 0 when every worker stopped cleanly."""
    supervisor_pid = os.getpid()
    children: dict[int, tuple[int, float]] = {}  # pid → (index, start time)
    stopping = False
    failed = False
    restarts = 0

    def stop(signum, frame) -> None:
        nonlocal stopping
        if not stopping:
            log.info("%s: stopping %d worker(s)", signal.Signals(signum).name, len(children))
        stopping = True
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def spawn(index: int) -> None:
        # Stop signals wait until the new pid is recorded, so none misses the worker.
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            pid = os.fork()
            if pid == 0:
                _run_child(index, count, supervisor_pid, run_worker)
            children[pid] = (index, time.monotonic())
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)

    previous = {signum: signal.signal(signum, stop) for signum in STOP_SIGNALS}
    try:
        for index in range(1, count + 1):
            spawn(index)
        log.info("supervising %d workers", count)
        while children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            if pid not in children:
                continue
            index, started = children.pop(pid)
            code = os.waitstatus_to_exitcode(status)
            if stopping:
                if code != 0:
                    failed = True
                    log.warning("worker %d (pid %d) stopped with exit code %d", index, pid, code)
                continue
            log.warning("worker %d (pid %d) died (exit code %d)%s", index, pid, code,
                        "" if restarts < MAX_RESTARTS else "; too many restarts, stopping")
            if restarts >= MAX_RESTARTS:
                failed = True
                stop(signal.SIGTERM, None)
                continue
            restarts += 1
            if time.monotonic() - started < QUICK_DEATH_SECONDS:
                time.sleep(QUICK_DEATH_SECONDS)
            if not stopping:
                spawn(index)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    log.info("all workers stopped")
    return 1 if failed else 0


def _run_child(index: int, count: int, supervisor_pid: int,
               run_worker: Callable[[int], None]) -> None:
    """The worker's whole life; never returns into the supervisor's code."""
    code = 1
    try:
        # The supervisor's handlers are not the worker's: SIGTERM ends it until the worker
        # installs its own graceful stop; SIGINT (a terminal's Ctrl-C reaches every process
        # of the group) is left to the supervisor, which passes a SIGTERM on.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        _die_with_parent()
        if os.getppid() != supervisor_pid:  # the supervisor died before prctl took effect
            os._exit(1)
        configure_logging(f"worker {index}/{count} pid {os.getpid()}")
        run_worker(index)
        code = 0
    except BaseException:
        log.exception("worker %d failed", index)
    finally:
        logging.shutdown()
        os._exit(code)
