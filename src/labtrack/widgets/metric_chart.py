"""``MetricChart``: the metric series of many runs side by side, one chart per metric key and
one line per run.

The kernel reads every series downsampled (at most ``max_points`` per run and key, keeping
each x-range's minimum and maximum, from the store's summary buckets for long series) and
sends them as one float64 buffer; smoothing, log scale, zoom, pan and hiding runs happen in
the browser without another read. Changing the x axis, the keys or ``max_points`` (from
Python or from the widget's controls) reads the series again.

x axes: ``step``, ``time`` (wall clock), ``relative_time`` (seconds since the run started),
or ``metric:<key>`` — another metric as x. For the last one each point of a charted series
is placed at the x metric's value *at the same step*, run by run:

* where the x metric was logged at that step, that value (the last one logged at the step);
* between two steps where it was logged, the value interpolated linearly by step (an
  ``epoch`` logged once per epoch still places every batch-level point);
* before its first or after its last logged step, the point is left out (nothing to pair
  it with), and so are steps where the x metric is NaN.

The x metric is read in full when it has at most ``EXACT_PAIRING_POINTS`` points (so pairing
is exact); a longer one is read downsampled like the charted series and interpolated between
the points kept. The charted series are read downsampled by step, then paired, then sorted
by x: the line joins points in x order.
"""

from __future__ import annotations

import bisect
import math
import threading
import time

import anywidget
import traitlets

from labtrack.client import TrackingClient
from labtrack.entities import MetricSeries
from labtrack.services.downsampling import X_AXES
from labtrack.widgets._encoding import decode_series, encode_series
from labtrack.widgets._fallback import html_table
from labtrack.widgets._plots import ema, html_figure, line_charts_png, number_text
from labtrack.widgets._refresh import CoalescedRefresh
from labtrack.widgets._runs import color_for, load_runs, run_entries
from labtrack.widgets.live_run import STATIC

METRIC_AXIS = "metric:"
#: An x metric with at most this many points is read in full, so pairing by step is exact.
EXACT_PAIRING_POINTS = 10_000

X_LABELS = {"step": "step", "time": "wall time", "relative_time": "seconds since run start"}


def x_label(x_axis: str) -> str:
    return X_LABELS.get(x_axis) or x_axis[len(METRIC_AXIS):]


def pair_by_step(series: MetricSeries, x_series: MetricSeries) -> MetricSeries:
    """``series`` with each point's x replaced by ``x_series``'s value at the same step (see
    the module docstring for the rules)."""
    known: dict[int, float] = {}
    for step, value in zip(x_series.steps, x_series.values):
        if not math.isnan(value):
            known[step] = value  # in logging order within a step: the last one wins
    steps = sorted(known)
    rows = []
    for step, timestamp, value in zip(series.steps, series.timestamps, series.values):
        x = known.get(step)
        if x is None:
            i = bisect.bisect_left(steps, step)
            if i == 0 or i == len(steps):
                continue
            before, after = steps[i - 1], steps[i]
            x = known[before] + (known[after] - known[before]) * (step - before) / (
                after - before)
        rows.append((x, step, timestamp, value))
    rows.sort(key=lambda row: (row[0], row[1]))
    return MetricSeries(
        run_id=series.run_id, key=series.key, x_axis=METRIC_AXIS + x_series.key,
        x=[r[0] for r in rows], steps=[r[1] for r in rows], timestamps=[r[2] for r in rows],
        values=[r[3] for r in rows], total_points=series.total_points,
        resolution=series.resolution,
    )


class MetricChart(anywidget.AnyWidget):
    """One chart per metric key, one line per run (legend: the run's name).

    :param run_ids: the runs to compare; their order gives each run its colour.
    :param keys: metric keys to chart; None charts every key the runs have (and keeps doing
        so on ``refresh()`` until keys are chosen).
    :param x_axis: ``step``, ``time``, ``relative_time`` or ``metric:<key>``.
    :param client: a ``TrackingClient``; default: the current tracking URI.
    :param max_points: at most this many points per run and key are sent to the browser.
    :param smoothing: TensorBoard's debiased EMA weight, in [0, 1); 0 is off.
    :param log_y: logarithmic y axes (points ≤ 0 are not drawn).

    Synced state (two-way: the widget's controls write it, Python may set it):
    ``x_axis``, ``metric_keys`` (the ``keys`` argument: ipywidgets reserves the name
    ``keys``), ``smoothing``, ``log_y``, ``max_points``, ``hidden_runs`` (runs
    switched off in the legend), ``x_range`` (``[low, high]`` while zoomed, else ``[]``).
    Kernel to browser: ``runs`` (``{run_id, name, label, status}`` in colour order),
    ``available_keys``, ``series_index`` + ``series_data`` (see ``_encoding``), ``error``.
    """

    _esm = STATIC / "metric_chart.js"
    _css = STATIC / "widgets.css"

    run_ids = traitlets.List(traitlets.Unicode()).tag(sync=True)
    runs = traitlets.List().tag(sync=True)
    metric_keys = traitlets.List(traitlets.Unicode()).tag(sync=True)
    available_keys = traitlets.List().tag(sync=True)
    x_axis = traitlets.Unicode("step").tag(sync=True)
    smoothing = traitlets.Float(0.0).tag(sync=True)
    log_y = traitlets.Bool(False).tag(sync=True)
    max_points = traitlets.Int(1000).tag(sync=True)
    hidden_runs = traitlets.List(traitlets.Unicode()).tag(sync=True)
    x_range = traitlets.List(traitlets.Float()).tag(sync=True)
    series_index = traitlets.List().tag(sync=True)
    series_data = traitlets.Bytes(b"").tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)

    #: Shortest time between two refreshes triggered by this kernel's writes (seconds).
    min_interval = 1.0

    def __init__(self, run_ids: list[str], keys: list[str] | None = None,
                 x_axis: str = "step", client: TrackingClient | None = None,
                 max_points: int = 1000, smoothing: float = 0.0, log_y: bool = False,
                 **kwargs):
        import labtrack

        if isinstance(run_ids, str):
            run_ids = [run_ids]
        self._client = client or TrackingClient(labtrack.get_tracking_uri())
        self._lock = threading.RLock()
        self._quiet = True  # set while the kernel itself updates query traits
        # The keys the user chose (None: every key), apart from the trait, which a read
        # rewrites: the widget may change the keys and the x axis in one message.
        self._chosen_keys = None if keys is None else list(keys)
        self._refreshes = CoalescedRefresh(self._read)
        self._closed = self._refreshes.closed
        super().__init__(run_ids=list(run_ids), metric_keys=list(keys or []), x_axis=x_axis,
                         max_points=max_points, smoothing=smoothing, log_y=log_y, **kwargs)
        self._quiet = False
        self.refresh()
        self._client._writer.add_listener(self._on_write)
        self.on_msg(self._on_message)

    # -- validation --------------------------------------------------------------------------

    @traitlets.validate("x_axis")
    def _check_x_axis(self, proposal):
        value = proposal["value"]
        if value in X_AXES or (value.startswith(METRIC_AXIS) and len(value) > len(METRIC_AXIS)):
            return value
        raise traitlets.TraitError(
            f"Invalid x_axis '{value}'. Use one of: {', '.join(X_AXES)}, or 'metric:<key>'.")

    @traitlets.validate("smoothing")
    def _check_smoothing(self, proposal):
        value = proposal["value"]
        if not 0 <= value < 1:
            raise traitlets.TraitError(f"smoothing must be in [0, 1), not {value}.")
        return value

    @traitlets.validate("max_points")
    def _check_max_points(self, proposal):
        if proposal["value"] < 3:
            raise traitlets.TraitError("max_points must be at least 3.")
        return proposal["value"]

    @traitlets.validate("x_range")
    def _check_x_range(self, proposal):
        value = proposal["value"]
        if value and (len(value) != 2 or not value[0] < value[1]):
            raise traitlets.TraitError("x_range is [] or [low, high] with low < high.")
        return value

    # -- reading -----------------------------------------------------------------------------

    @traitlets.observe("run_ids", "metric_keys", "x_axis", "max_points")
    def _query_changed(self, change) -> None:
        # Under the lock: a read on the writer's thread sets these traits quietly meanwhile.
        with self._lock:
            if self._quiet:
                return
            if change["name"] == "metric_keys":
                self._chosen_keys = list(change["new"])
            if change["name"] in ("x_axis", "run_ids"):
                self.x_range = []  # a zoom window means nothing on another axis
            self._read()

    def refresh(self) -> None:
        """Store what this kernel has buffered, read the runs and their series again and
        push them to the browser."""
        started = time.monotonic()
        try:
            self._client.flush()
        except Exception as error:  # shown in the widget rather than raised in a cell
            self._read([str(error)])
            return
        if self._refreshes.last < started:  # else the flush's own announcement just read
            self._read()

    def _read(self, problems: list[str] | None = None) -> None:
        """Read the store (never flushing the writer: this runs on the writer's thread when
        it announces new points) and replace the data traits in one message."""
        with self._lock:
            self._refreshes.last = time.monotonic()
            try:
                runs, unreadable = load_runs(self._client.service, self.run_ids)
                problems = [*(problems or []), *unreadable]
                available = sorted({m.key for run in runs for m in run.data.metric_objects})
                x_key = (self.x_axis[len(METRIC_AXIS):]
                         if self.x_axis.startswith(METRIC_AXIS) else None)
                keys = ([k for k in available if k != x_key] if self._chosen_keys is None
                        else list(self._chosen_keys))
                series = self._series([r.info.run_id for r in runs], keys, x_key)
            except Exception as error:
                self.error = str(error)
                return
            entries = run_entries(runs)
            labels = {e["run_id"]: e["label"] for e in entries}
            key_order = {k: i for i, k in enumerate(keys)}
            run_order = {e["run_id"]: i for i, e in enumerate(entries)}
            series.sort(key=lambda s: (key_order.get(s.key, len(keys)), run_order[s.run_id]))
            index, data = encode_series(series, label=lambda s: labels[s.run_id])
            if x_key is not None:
                problems += [f"Run {labels[run.info.run_id]} has no metric '{x_key}' to use "
                             "as x." for run in runs if x_key not in run.data.metrics]
            self._quiet = True
            try:
                with self.hold_sync():
                    self.runs = entries
                    self.available_keys = available
                    self.metric_keys = keys
                    self.series_index = index
                    self.series_data = data
                    self.error = "\n".join(problems)
            finally:
                self._quiet = False

    def _series(self, run_ids: list[str], keys: list[str], x_key: str | None
                ) -> list[MetricSeries]:
        if not run_ids or not keys:
            return []
        read = self._client.service.get_metric_history_downsampled
        if x_key is None:
            return read(run_ids, keys, self.max_points, self.x_axis)
        xs = {s.run_id: s for s in read(run_ids, [x_key], self.max_points, "step")}
        if not xs:
            return []
        for run_id, s in list(xs.items()):
            if s.sampled and s.total_points <= EXACT_PAIRING_POINTS:
                [xs[run_id]] = read([run_id], [x_key], max(s.total_points, 3), "step")
        return [pair_by_step(s, xs[s.run_id])
                for s in read(list(xs), keys, self.max_points, "step")]

    @property
    def total_points(self) -> int:
        """Points stored in the charted series (not all of them are sent)."""
        return sum(entry["total_points"] for entry in self.series_index)

    def series(self) -> dict[tuple[str, str], tuple[list[float], list[float]]]:
        """What the browser was sent, decoded: ``{(run_id, key): (xs, ys)}``."""
        return {(e["run_id"], e["key"]): xy for e, xy in
                zip(self.series_index, decode_series(self.series_index, self.series_data))}

    # -- live updates and messages -----------------------------------------------------------

    def _on_write(self, run_ids: set[str]) -> None:
        if run_ids.intersection(self.run_ids):
            self._refreshes.request(self.min_interval)

    def _on_message(self, _widget, content, _buffers) -> None:
        if isinstance(content, dict) and content.get("type") == "refresh":
            self.refresh()

    def close(self) -> None:
        self._refreshes.close()
        self._client._writer.remove_listener(self._on_write)
        super().close()

    # -- static fallback ---------------------------------------------------------------------

    def _panels(self) -> list[tuple[str, list]]:
        colors = {e["run_id"]: color_for(i) for i, e in enumerate(self.runs)}
        hidden = set(self.hidden_runs)
        lines: dict[str, list] = {key: [] for key in self.metric_keys}
        for entry, (xs, ys) in zip(self.series_index,
                                   decode_series(self.series_index, self.series_data)):
            if entry["run_id"] in hidden:
                continue
            lines.setdefault(entry["key"], []).append(
                (entry["label"], colors.get(entry["run_id"], "#444444"), xs,
                 ema(ys, self.smoothing)))
        return list(lines.items())

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return None
        data, metadata = bundle
        png = line_charts_png(self._panels(), x_label(self.x_axis), self.log_y, self.x_range,
                              time_axis=self.x_axis == "time")
        rows = []
        for entry, (_xs, ys) in zip(self.series_index,
                                    decode_series(self.series_index, self.series_data)):
            finite = [y for y in ys if math.isfinite(y)]
            rows.append((entry["label"], entry["key"], entry["total_points"],
                         number_text(ys[-1] if ys else None),
                         number_text(min(finite) if finite else None),
                         number_text(max(finite) if finite else None)))
        settings = [f"x: {x_label(self.x_axis)}"]
        if self.smoothing:
            settings.append(f"smoothing {self.smoothing:g}")
        if self.log_y:
            settings.append("log y")
        if self.hidden_runs:
            settings.append(f"{len(self.hidden_runs)} run(s) hidden")
        caption = (f"labtrack metrics: {len(self.runs)} run(s) × {len(self.metric_keys)} key(s) "
                   f"({', '.join(settings)})")
        table = html_table(["run", "key", "points", "last", "min", "max"], rows)
        data["text/html"] = html_figure(caption, png, table, self.error)
        if png:
            data["image/png"] = png
        return data, metadata
