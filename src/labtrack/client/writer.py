"""``MetricWriter``: buffered metric logging that never stalls a training loop.

``add()`` appends a point to a queue and returns; a daemon thread writes everything queued
every ``interval`` seconds (sooner when a lot is waiting), one transaction per run.
``flush()`` is a barrier: when it returns, every point added before the call is stored. An
error while storing is kept and raised by the next ``add()``/``flush()``, never swallowed. At
interpreter exit and at the end of a forked child everything buffered is written.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing.util
import os
import threading
import weakref
from collections import deque
from collections.abc import Callable, Mapping, Sequence

from labtrack.errors import LabtrackError

Columns = Mapping[str, tuple[Sequence[float], Sequence[int], Sequence[int]]]
Sink = Callable[[str, Columns], None]
Point = tuple[str, str, float, int, int]  # run_id, key, value, timestamp, step

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
        # Held while points leave the queue until they are stored: writes happen one at a
        # time, in the order the points were added.
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        # The hot path is one deque.append, atomic under the GIL, so add() takes no lock.
        # Only the holder of _flush_lock removes points, from the left.
        self._queue: deque[Point] = deque()
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
        queue = self._queue
        queue.append((run_id, key, value, timestamp, step))
        if self._thread is None:
            self._start()
        if len(queue) >= WAKE_AT_POINTS:
            if len(queue) >= BACKPRESSURE_AT_POINTS:
                self.flush()
            else:
                self._wake.set()

    @property
    def pending_points(self) -> int:
        return len(self._queue)

    def flush(self) -> None:
        """Store everything added so far; raise if any point could not be stored."""
        self._write_pending()
        self.raise_errors()

    def raise_errors(self) -> None:
        """Raise what earlier background writes could not store, if anything."""
        if self._errors:
            self._raise_errors()

    def take(self, run_id: str) -> dict[str, tuple[Sequence, Sequence, Sequence]]:
        """Remove and return the run's buffered points, ``{key: (values, timestamps,
        steps)}``, once any write in progress has finished — so the caller can store them
        together with the run's end in one transaction."""
        with self._flush_lock:
            points = self._drain()
            if not points:
                return {}
            mine = [point for point in points if point[0] == run_id]
            if len(mine) < len(points):
                # Other runs' points go back in front of any added meanwhile, in their order.
                self._queue.extendleft(reversed(
                    [point for point in points if point[0] != run_id]))
        return _series_columns(mine).get(run_id, {})

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

    def _drain(self) -> list[Point]:
        """Everything queued so far, oldest first (the caller holds ``_flush_lock``)."""
        popleft = self._queue.popleft
        return [popleft() for _ in range(len(self._queue))]

    def _write_pending(self) -> None:
        with self._flush_lock:
            points = self._drain()
            if not points:
                return
            stored: set[str] = set()
            for run_id, columns in _series_columns(points).items():
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


def _series_columns(
    points: list[Point],
) -> dict[str, dict[str, tuple[Sequence, Sequence, Sequence]]]:
    """Queued points → ``{run_id: {key: (values, timestamps, steps)}}``, each series in the
    order its points were added."""
    if not points:
        return {}
    run_ids, keys, values, timestamps, steps = zip(*points)
    n = len(points)
    if run_ids.count(run_ids[0]) == n and keys.count(keys[0]) == n:
        # One series, as in a training loop: its columns come out of zip at C speed.
        return {run_ids[0]: {keys[0]: (values, timestamps, steps)}}
    by_run: dict[str, dict[str, tuple[list, list, list]]] = {}
    for run_id, key, value, timestamp, step in points:
        series = by_run.get(run_id)
        if series is None:
            series = by_run[run_id] = {}
        columns = series.get(key)
        if columns is None:
            columns = series[key] = ([], [], [])
        columns[0].append(value)
        columns[1].append(timestamp)
        columns[2].append(step)
    return by_run


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
