"""Rate-limited refreshes for widgets that follow the store as a run logs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class CoalescedRefresh:
    """Calls ``refresh`` at most once every ``min_interval`` seconds: a request inside the
    interval schedules one call at its end, so a burst of writes costs one read."""

    def __init__(self, refresh: Callable[[], None]):
        self._refresh = refresh
        self.last = 0.0  # monotonic time of the last refresh, set by whoever refreshed
        self._deferred: threading.Timer | None = None
        self.closed = threading.Event()

    def request(self, min_interval: float) -> None:
        if self.closed.is_set():
            return
        wait = min_interval - (time.monotonic() - self.last)
        if wait <= 0:
            self._refresh()
        elif self._deferred is None or not self._deferred.is_alive():
            self._deferred = threading.Timer(wait, self._deferred_refresh)
            self._deferred.daemon = True
            self._deferred.start()

    def _deferred_refresh(self) -> None:
        if not self.closed.is_set():
            self._refresh()

    def close(self) -> None:
        self.closed.set()
        if self._deferred is not None:
            self._deferred.cancel()
