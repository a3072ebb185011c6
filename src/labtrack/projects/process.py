"""Processes a project run starts, and where their output goes.

``ChildProcess`` runs a command with its output copied, as it comes, to sinks (the terminal, a
notebook cell, a sweep's line prefixer) and to a log file. ``say`` is how labtrack speaks,
on stderr, apart from the command's output.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

READER_JOIN_TIMEOUT_S = 5.0  # after the child exits, for output a grandchild keeps open

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


def say(message: str) -> None:
    """labtrack's own messages go to stderr, apart from the child's output."""
    _terminal("stderr")(f"labtrack: {message}\n".encode())


@dataclass(frozen=True)
class OutputSinks:
    """Where a child's stdout and stderr are shown, as they come."""

    stdout: Sink = field(default_factory=lambda: _terminal("stdout"))
    stderr: Sink = field(default_factory=lambda: _terminal("stderr"))


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
    grace period (at once on a second call or a second Ctrl-C). With ``new_session=False``
    the command stays in the caller's process group and only the command itself is signalled:
    for a caller that is stopped together with its group (a Ray job's entrypoint).
    """

    def __init__(self, argv: list[str], cwd: Path, environ: Mapping[str, str],
                 log_path: Path, sinks: OutputSinks, new_session: bool = True):
        self.argv = argv
        self.new_session = new_session
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
        new_session = self.new_session
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
                    start_new_session=posix and new_session,
                    creationflags=0 if posix or not new_session
                    else subprocess.CREATE_NEW_PROCESS_GROUP,
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

    def wait(self, timeout: float | None = None) -> int:
        """The exit code (negative: killed by that signal), once the output is copied;
        ``subprocess.TimeoutExpired`` if the command is still running after ``timeout``."""
        code = self._process.wait(timeout)
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
            if os.name == "posix" and self.new_session:
                os.killpg(process.pid, signum)
            elif os.name == "posix":
                os.kill(process.pid, signum)
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
