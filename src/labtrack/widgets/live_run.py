"""``LiveRun``: one run's status, duration, params, latest metrics and a chart per metric,
updated while the run logs.

In the kernel that logs the run, new points are pushed to the widget each time the background
writer stores them (no polling). For a run logged elsewhere the widget polls the store, with
backoff, while the run is RUNNING.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import anywidget
import traitlets

from labtrack.client import TrackingClient
from labtrack.entities import RunStatus
from labtrack.widgets._encoding import decode_series, encode_series, json_number
from labtrack.widgets._fallback import html_table, png_charts
from labtrack.widgets._refresh import CoalescedRefresh

STATIC = Path(__file__).parent / "static"


class LiveRun(anywidget.AnyWidget):
    _esm = STATIC / "live_run.js"
    _css = STATIC / "widgets.css"

    run_id = traitlets.Unicode().tag(sync=True)
    run_name = traitlets.Unicode().tag(sync=True)
    status = traitlets.Unicode().tag(sync=True)
    start_time = traitlets.Int(0).tag(sync=True)
    end_time = traitlets.Int(0).tag(sync=True)
    params = traitlets.Dict().tag(sync=True)
    latest = traitlets.List().tag(sync=True)  # [{key, value (None for NaN/inf), step}]
    series_index = traitlets.List().tag(sync=True)
    series_data = traitlets.Bytes(b"").tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)

    #: Shortest time between two refreshes triggered by writes (seconds).
    min_interval = 0.3

    def __init__(self, run_id: str, client: TrackingClient | None = None,
                 keys: list[str] | None = None, max_points: int = 400, poll: bool = True,
                 **kwargs):
        import labtrack

        self._client = client or TrackingClient(labtrack.get_tracking_uri())
        self._keys = list(keys) if keys else None
        self._max_points = max_points
        self._lock = threading.Lock()
        self._refreshes = CoalescedRefresh(self.refresh)
        self._closed = self._refreshes.closed
        super().__init__(run_id=run_id, **kwargs)
        self._client.flush()  # points logged before the widget existed
        self.refresh()
        self._client._writer.add_listener(self._on_write)
        self._poller: threading.Thread | None = None
        if poll and self.status == RunStatus.RUNNING:
            self._poller = threading.Thread(target=self._poll, name="labtrack-liverun",
                                            daemon=True)
            self._poller.start()

    def refresh(self) -> None:
        """Read the run and its downsampled series again and push them to the browser.

        Reads the store directly (never flushes the writer): it runs on the writer's thread
        when the writer announces new points."""
        with self._lock:
            self._refreshes.last = time.monotonic()
            try:
                run = self._client.service.get_run(self.run_id)
                series = self._client.service.get_metric_history_downsampled(
                    [self.run_id], self._keys, self._max_points)
            except Exception as error:  # shown in the widget rather than lost in a thread
                self.error = str(error)
                return
            index, data = encode_series(series)
            with self.hold_sync():
                self.run_name = run.info.run_name
                self.status = str(run.info.status)
                self.start_time = run.info.start_time or 0
                self.end_time = run.info.end_time or 0
                self.params = dict(run.data.params)
                self.latest = [{"key": m.key, "value": json_number(m.value), "step": m.step}
                               for m in run.data.metric_objects]
                self.series_index = index
                self.series_data = data
                self.error = ""

    @property
    def total_points(self) -> int:
        return sum(entry["total_points"] for entry in self.series_index)

    def _on_write(self, run_ids: set[str]) -> None:
        if self.run_id in run_ids:
            self._refreshes.request(self.min_interval)

    def _poll(self) -> None:
        delay, seen = 1.0, self.total_points
        while not self._closed.wait(delay):
            self.refresh()
            if self.status != RunStatus.RUNNING:
                return
            changed = self.total_points != seen
            seen = self.total_points
            delay = 1.0 if changed else min(delay * 1.5, 15.0)

    def close(self) -> None:
        self._refreshes.close()
        self._client._writer.remove_listener(self._on_write)
        super().close()

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return None
        data, metadata = bundle
        rows = [("status", self.status), ("run", f"{self.run_name} ({self.run_id})")]
        rows += [(f"params.{k}", v) for k, v in self.params.items()]
        rows += [(f"metrics.{m['key']}", m["value"]) for m in self.latest]
        data["text/html"] = html_table(["", ""], rows, caption=f"labtrack run {self.run_name}")
        panels = [(entry["key"], [(entry["key"], xs, ys)])
                  for entry, (xs, ys) in zip(self.series_index,
                                             decode_series(self.series_index,
                                                           self.series_data))]
        png = png_charts(panels)
        if png:
            data["image/png"] = png
        return data, metadata
