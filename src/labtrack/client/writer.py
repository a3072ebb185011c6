"""``MetricWriter``: buffered metric logging that never stalls a training loop.

``add()`` appends a point to per-series column lists and returns; a daemon thread writes
everything buffered every ``interval`` seconds (sooner when a lot is waiting), one
transaction per run. ``flush()`` is a barrier: when it returns, every point added before the
call is stored. An error while storing is kept and raised by the next ``add()``/``flush()``,
never swallowed. At interpreter exit and at the end of a forked child everything buffered is
written.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing.util
import os
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence

from labtrack.errors import LabtrackError

Columns = Mapping[str, tuple[Sequence[float], Sequence[int], Sequence[int]]]
Sink = Callable[[str, Columns], None]

# A writer wakes before its interval when this many points wait, and add() blocks on a flush
# when the store cannot keep up and ten times as many are waiting.
WAKE_AT_POINTS = 50_000
BACKPRESSURE_AT_POINTS = 500_000

_writers: weakref.WeakSet[MetricWriter] = weakref.WeakSet()
log = logging.getLogger("labtrack.writer")


class MetricWriterError(LabtrackError):
    """Points could not be stored; ``causes`` holds the store errors."""

    def __init__(self, message: str, causes: list[BaseException]):
        super().__init__(message, getattr(causes[0], "error_code", "INTERNAL_ERROR"))
        self.causes = causes


class MetricWriter:
    def __init__(self, sink: Sink, interval: float = 0.5, name: str = "labtrack-writer"):
        self._sink = sink
        self.interval = interval
        self._name = name
        self._init_state()
        _writers.add(self)

    def _init_state(self) -> None:
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        # {(run_id, key): [(value, timestamp, step), …]}
        self._pending: dict[tuple[str, str], list[tuple[float, int, int]]] = {}
        self._count = 0
        self._errors: list[BaseException] = []
        self._lost = 0
        self._thread: threading.Thread | None = None
        self._stopped = False
        # Called with the ids of the runs whose points were just stored (live widgets).
        self._listeners: list[Callable[[set[str]], None]] = []

    # -- producer side -----------------------------------------------------------------------

    def add(self, run_id: str, key: str, value: float, timestamp: int, step: int) -> None:
        """Buffer one point (already validated by the caller)."""
        if self._errors:
            self._raise_errors()
        with self._lock:
            points = self._pending.get((run_id, key))
            if points is None:
                points = self._pending[(run_id, key)] = []
            points.append((value, timestamp, step))
            self._count += 1
            waiting = self._count
        if self._thread is None:
            self._start()
        if waiting >= WAKE_AT_POINTS:
            if waiting >= BACKPRESSURE_AT_POINTS:
                self.flush()
            else:
                self._wake.set()

    @property
    def pending_points(self) -> int:
        return self._count

    def flush(self) -> None:
        """Store everything added so far; raise if any point could not be stored."""
        self._write_pending()
        self.raise_errors()

    def raise_errors(self) -> None:
        """Raise what earlier background writes could not store, if anything."""
        if self._errors:
            self._raise_errors()

    def take(self, run_id: str) -> dict[str, tuple[tuple, tuple, tuple]]:
        """Remove and return the run's buffered points, ``{key: (values, timestamps,
        steps)}``, once any write in progress has finished — so the caller can store them
        together with the run's end in one transaction."""
        with self._flush_lock, self._lock:
            taken = {key: self._pending.pop((owner, key))
                     for owner, key in list(self._pending) if owner == run_id}
            self._count -= sum(len(points) for points in taken.values())
        return {key: _columns(points) for key, points in taken.items()}

    def _raise_errors(self) -> None:
        with self._lock:
            errors, self._errors = self._errors, []
            lost, self._lost = self._lost, 0
        if errors:
            raise MetricWriterError(
                f"{lost} buffered metric point(s) could not be stored: {errors[0]}", errors
            ) from errors[0]

    # -- writer side -------------------------------------------------------------------------

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None or self._stopped:
                return
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stopped:
            self._wake.wait(self.interval)
            self._wake.clear()
            self._write_pending()

    def _write_pending(self) -> None:
        with self._flush_lock:
            with self._lock:
                if not self._pending:
                    return
                pending, self._pending = self._pending, {}
                self._count = 0
            by_run: dict[str, dict[str, tuple[tuple, tuple, tuple]]] = {}
            for (run_id, key), points in pending.items():
                by_run.setdefault(run_id, {})[key] = _columns(points)
            stored: set[str] = set()
            for run_id, columns in by_run.items():
                try:
                    self._sink(run_id, columns)
                    stored.add(run_id)
                except Exception as error:  # kept and raised to the caller, see _raise_errors
                    with self._lock:
                        self._errors.append(error)
                        self._lost += sum(len(c[0]) for c in columns.values())
        if stored:
            self._notify(stored)

    def add_listener(self, callback: Callable[[set[str]], None]) -> None:
        """Call ``callback(run_ids)`` after each write (from the writing thread)."""
        self._listeners.append(callback)

    def remove_listener(self, callback: Callable[[set[str]], None]) -> None:
        if callback in self._listeners:
            self._listeners.remove(callback)

    def announce(self, run_ids: set[str]) -> None:
        """Tell listeners these runs changed outside the buffer (e.g. a run just ended)."""
        self._notify(run_ids)

    def _notify(self, run_ids: set[str]) -> None:
        for callback in list(self._listeners):
            try:
                callback(run_ids)
            except Exception:  # a broken display must not stop logging
                log.exception("labtrack: a metric listener failed")

    def close(self) -> None:
        """Write what is buffered and stop the thread (a later ``add`` restarts nothing)."""
        self._write_pending()
        self._stopped = True
        self._wake.set()

    def _after_fork_in_child(self) -> None:
        # Points buffered before the fork belong to the parent, which still writes them.
        self._init_state()


def _columns(points: list[tuple[float, int, int]]) -> tuple[tuple, tuple, tuple]:
    """``[(value, timestamp, step), …]`` → ``(values, timestamps, steps)``, at C speed."""
    values, timestamps, steps = zip(*points)
    return values, timestamps, steps


def flush_all() -> None:
    """Write every writer's buffered points (errors are kept for the next call)."""
    for writer in list(_writers):
        writer._write_pending()


def _after_fork_in_child() -> None:
    for writer in list(_writers):
        writer._after_fork_in_child()


class _ExitFlushHook:
    """multiprocessing children leave through ``os._exit``, skipping atexit, and clear the
    finalizers they inherited when they start. Its after-fork hooks run after that clearing
    (for fork, spawn and forkserver children alike): register the exit flush there."""

    def __call__(self, _self: object) -> None:
        multiprocessing.util.Finalize(None, flush_all, exitpriority=100)


_exit_flush_hook = _ExitFlushHook()
multiprocessing.util.register_after_fork(_exit_flush_hook, _exit_flush_hook)
atexit.register(flush_all)
os.register_at_fork(after_in_child=_after_fork_in_child)
