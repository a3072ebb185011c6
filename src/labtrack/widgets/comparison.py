"""Params against metrics across a selection of runs: ``ParallelCoordinates`` and
``Scatter``.

Both read each run once (params and latest metrics) and send the browser a small JSON index
of their axes plus one float64 buffer of values (NaN where a run has no value). A param is a
numeric axis when every run's value reads as a finite number, else a categorical one (its
distinct values, sorted, evenly spaced; a run's value is the category's index). A metric is
always numeric: its latest value, NaN and infinities counting as missing.
"""

from __future__ import annotations

import math
import threading
from array import array

import anywidget
import traitlets

from labtrack.client import TrackingClient
from labtrack.widgets._fallback import html_table
from labtrack.widgets._plots import html_figure, number_text, parallel_png, scatter_png
from labtrack.widgets._runs import (
    Column,
    available_columns,
    check_column,
    color_for,
    column,
    load_runs,
    run_entries,
)
from labtrack.widgets.live_run import STATIC


def _default_client(client: TrackingClient | None) -> TrackingClient:
    import labtrack

    return client or TrackingClient(labtrack.get_tracking_uri())


def _buffer(columns: list[Column], rows: int) -> bytes:
    """Row-major float64 matrix: run ``r``'s value on axis ``a`` at ``r * len(columns) + a``."""
    out = array("d")
    for row in range(rows):
        out.extend(c.values[row] for c in columns)
    return out.tobytes()


class _RunsWidget(anywidget.AnyWidget):
    """Reads the runs once per ``refresh()``; subclasses rebuild their axes from them."""

    run_ids = traitlets.List(traitlets.Unicode()).tag(sync=True)
    runs = traitlets.List().tag(sync=True)  # [{run_id, name, label, status}]: the rows, in order
    error = traitlets.Unicode("").tag(sync=True)

    def __init__(self, run_ids: list[str], client: TrackingClient | None, **kwargs):
        if isinstance(run_ids, str):
            run_ids = [run_ids]
        self._client = _default_client(client)
        self._lock = threading.RLock()
        self._quiet = True  # set while the kernel itself updates traits it also observes
        self._loaded: list = []
        self._problems: list[str] = []
        super().__init__(run_ids=list(run_ids), **kwargs)
        self._quiet = False
        self.refresh()
        self.on_msg(self._on_message)

    def refresh(self) -> None:
        """Read the runs again (params and latest metrics) and redraw."""
        with self._lock:
            # Problems are shown in the widget rather than raised in a cell.
            flushed = []
            try:
                self._client.flush()  # points this kernel buffered count as latest values
            except Exception as error:
                flushed = [str(error)]
            try:
                self._loaded, unreadable = load_runs(self._client.service, self.run_ids)
            except Exception as error:
                self._loaded, unreadable = [], [str(error)]
            self._problems = flushed + unreadable
            self._rebuild()

    @traitlets.observe("run_ids")
    def _run_ids_changed(self, _change) -> None:
        if not self._quiet:
            self.refresh()

    def _rebuild(self) -> None:
        raise NotImplementedError

    def _set(self, **values) -> None:
        """Set traits in one message without the observers taking it for a user's change."""
        self._quiet = True
        try:
            with self.hold_sync():
                for name, value in values.items():
                    setattr(self, name, value)
        finally:
            self._quiet = False

    def _on_message(self, _widget, content, _buffers) -> None:
        if isinstance(content, dict) and content.get("type") == "refresh":
            self.refresh()

    @property
    def _labels(self) -> list[str]:
        return [entry["label"] for entry in self.runs]


class ParallelCoordinates(_RunsWidget):
    """One polyline per run across an axis per param and per metric; brushing on axes
    selects runs.

    :param run_ids: the runs; their order gives each run its colour.
    :param params: param keys to show as axes; None: the params whose value differs between
        the runs (every param when none differs).
    :param metrics: metric keys to show as axes (latest values); None: every metric.

    Synced state: ``params``, ``metrics`` and ``color_by`` (an axis name; ``""`` colours
    each run as in ``MetricChart``) are two-way; ``brushes`` (``{axis name: [low, high]}``,
    in the axis' units — category indexes on a categorical axis) is written by brushing in
    the widget or from Python; ``selected_run_ids`` is the runs inside every brush (every
    run when nothing is brushed; a run with no value on a brushed axis is outside). Kernel
    to browser: ``runs``, ``available_params``, ``available_metrics``, ``axes`` (one entry
    per axis: ``name``, ``label``, ``kind``, ``categories``, ``min``, ``max``, ``missing``,
    ``log``) and ``values`` (float64, row-major, runs × axes), ``error``.
    """

    _esm = STATIC / "parallel_coordinates.js"
    _css = STATIC / "widgets.css"

    params = traitlets.List(traitlets.Unicode()).tag(sync=True)
    metrics = traitlets.List(traitlets.Unicode()).tag(sync=True)
    available_params = traitlets.List().tag(sync=True)
    available_metrics = traitlets.List().tag(sync=True)
    axes = traitlets.List().tag(sync=True)
    values = traitlets.Bytes(b"").tag(sync=True)
    color_by = traitlets.Unicode("").tag(sync=True)
    brushes = traitlets.Dict().tag(sync=True)
    selected_run_ids = traitlets.List(traitlets.Unicode()).tag(sync=True)

    def __init__(self, run_ids: list[str], params: list[str] | None = None,
                 metrics: list[str] | None = None, client: TrackingClient | None = None,
                 **kwargs):
        # What the user chose (None: the default), kept apart from the traits, which a
        # rebuild rewrites: the widget may change several of them in one message.
        self._chosen: dict[str, list[str] | str | None] = {
            "params": params, "metrics": metrics, "color_by": kwargs.get("color_by")}
        self._columns: list[Column] = []
        super().__init__(run_ids, client, params=list(params or []),
                         metrics=list(metrics or []), **kwargs)

    @traitlets.validate("brushes")
    def _check_brushes(self, proposal):
        brushes = {}
        for name, bounds in proposal["value"].items():
            try:
                low, high = (float(b) for b in bounds)
            except (TypeError, ValueError):
                raise traitlets.TraitError(
                    f"The brush on '{name}' must be [low, high], not {bounds!r}.") from None
            brushes[name] = [min(low, high), max(low, high)]
        return brushes

    @traitlets.observe("params", "metrics", "color_by")
    def _axes_chosen(self, change) -> None:
        if self._quiet:
            return
        self._chosen[change["name"]] = change["new"]
        with self._lock:
            self._rebuild()

    @traitlets.observe("brushes")
    def _brushed(self, _change) -> None:
        if not self._quiet:
            with self._lock:
                self._set(selected_run_ids=self._selection(self.brushes))

    def _rebuild(self) -> None:
        runs = self._loaded
        available_params, available_metrics = available_columns(runs)
        params = self._chosen["params"]
        if params is None:
            varying = [k for k in available_params
                       if len({run.data.params.get(k) for run in runs}) > 1]
            params = varying or available_params
        metrics = self._chosen["metrics"]
        if metrics is None:
            metrics = available_metrics
        names = [f"params.{k}" for k in params] + [f"metrics.{k}" for k in metrics]
        self._columns = [column(runs, name) for name in names]
        color_by = self._chosen["color_by"]
        if color_by is None or (color_by and color_by not in names):
            metric_axes = [n for n in names if n.startswith("metrics.")]
            color_by = (metric_axes or names or [""])[-1]
        brushes = {k: v for k, v in self.brushes.items() if k in names}
        problems = list(self._problems)
        for c in self._columns:
            if len(c.finite()) == 0 and runs:
                problems.append(f"No run has a value for {c.name}.")
        self._set(
            runs=run_entries(runs), available_params=available_params,
            available_metrics=available_metrics, params=list(params), metrics=list(metrics),
            axes=[c.index() for c in self._columns], values=_buffer(self._columns, len(runs)),
            color_by=color_by, brushes=brushes,
            selected_run_ids=self._selection(brushes), error="\n".join(problems),
        )

    def _inside(self, row: int, brushes: dict) -> bool:
        for c in self._columns:
            bounds = brushes.get(c.name)
            if bounds is not None:
                value = c.values[row]
                if math.isnan(value) or not bounds[0] <= value <= bounds[1]:
                    return False
        return True

    def _selection(self, brushes: dict) -> list[str]:
        return [run.info.run_id for row, run in enumerate(self._loaded)
                if self._inside(row, brushes)]

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return None
        data, metadata = bundle
        selected = set(self.selected_run_ids)
        rows = [run.info.run_id in selected for run in self._loaded]
        by = next((c for c in self._columns if c.name == self.color_by), None)
        png = parallel_png(self._columns, self._colors(by), rows)
        table = html_table(
            ["run", *(c.name for c in self._columns)],
            [(label, *(c.display(row) for c in self._columns))
             for row, label in enumerate(self._labels)])
        brushed = ", ".join(f"{name} in [{number_text(low)}, {number_text(high)}]"
                            for name, (low, high) in self.brushes.items())
        caption = (f"labtrack parallel coordinates: {len(self._loaded)} run(s)"
                   + (f", {len(selected)} selected by {brushed}" if brushed else ""))
        data["text/html"] = html_figure(caption, png, table, self.error)
        if png:
            data["image/png"] = png
        return data, metadata

    def _colors(self, by: Column | None) -> list[str]:
        """Each run's line colour: by the ``color_by`` axis (viridis, as in the browser), or
        the run's own colour when there is none."""
        if by is None:
            return [color_for(i) for i in range(len(self._loaded))]
        try:
            from matplotlib import colormaps
        except ImportError:
            return [color_for(i) for i in range(len(self._loaded))]
        if by.kind == "categorical" and len(by.categories) <= 10:
            return [color_for(int(v)) if not math.isnan(v) else "#999999" for v in by.values]
        place = math.log10 if by.log else float
        present = [place(v) for v in by.finite()]
        low, high = (min(present), max(present)) if present else (0.0, 1.0)
        colormap = colormaps["viridis"]

        def hex_color(value: float) -> str:
            if math.isnan(value):
                return "#999999"
            unit = 0.5 if high == low else (place(value) - low) / (high - low)
            r, g, b, _ = colormap(unit)
            return f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"

        return [hex_color(v) for v in by.values]


class Scatter(_RunsWidget):
    """One point per run: ``x`` against ``y``, each ``params.<key>`` or ``metrics.<key>``
    (latest value); hovering a point names its run.

    Synced state: ``x``, ``y``, ``log_x``, ``log_y`` are two-way (changing x or y in the
    widget re-reads nothing: every run's params and metrics are already in the kernel).
    Kernel to browser: ``runs``, ``available`` (every column the runs have), ``x_info`` and
    ``y_info`` (``name``, ``label``, ``kind``, ``categories``, ``min``, ``max``,
    ``missing``, ``log``), ``points`` (float64 pairs ``x, y`` per run, NaN where missing),
    ``error``.
    ``log_x``/``log_y`` take effect on a numeric axis whose values are all > 0.
    """

    _esm = STATIC / "scatter.js"
    _css = STATIC / "widgets.css"

    x = traitlets.Unicode().tag(sync=True)
    y = traitlets.Unicode().tag(sync=True)
    log_x = traitlets.Bool(False).tag(sync=True)
    log_y = traitlets.Bool(False).tag(sync=True)
    available = traitlets.List().tag(sync=True)
    x_info = traitlets.Dict().tag(sync=True)
    y_info = traitlets.Dict().tag(sync=True)
    points = traitlets.Bytes(b"").tag(sync=True)

    def __init__(self, run_ids: list[str], x: str, y: str,
                 client: TrackingClient | None = None, **kwargs):
        self._columns: tuple[Column, Column] | None = None
        super().__init__(run_ids, client, x=check_column(x), y=check_column(y), **kwargs)

    @traitlets.validate("x", "y")
    def _check_axis(self, proposal):
        try:
            return check_column(proposal["value"])
        except ValueError as error:
            raise traitlets.TraitError(str(error)) from None

    @traitlets.observe("x", "y")
    def _axis_chosen(self, _change) -> None:
        if not self._quiet:
            with self._lock:
                self._rebuild()

    def _rebuild(self) -> None:
        runs = self._loaded
        params, metrics = available_columns(runs)
        x, y = column(runs, self.x), column(runs, self.y)
        self._columns = (x, y)
        pairs = array("d")
        for a, b in zip(x.values, y.values):
            pairs.extend((a, b))
        problems = list(self._problems)
        for c in (x, y):
            if runs and not c.finite():
                problems.append(f"No run has a value for {c.name}.")
        missing = sum(1 for a, b in zip(x.values, y.values) if math.isnan(a) or math.isnan(b))
        if missing and len(problems) == len(self._problems):
            problems.append(f"{missing} run(s) lack {self.x} or {self.y} and are not drawn.")
        self._set(runs=run_entries(runs),
                  available=[f"params.{k}" for k in params] + [f"metrics.{k}" for k in metrics],
                  x_info=x.index(), y_info=y.index(), points=pairs.tobytes(),
                  error="\n".join(problems))

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return None
        data, metadata = bundle
        x, y = self._columns
        labels = self._labels
        png = scatter_png(x, y, labels, [color_for(i) for i in range(len(labels))],
                          self.log_x, self.log_y)
        table = html_table(["run", x.name, y.name],
                           [(label, x.display(row), y.display(row))
                            for row, label in enumerate(labels)])
        caption = f"labtrack scatter: {y.name} against {x.name}, {len(labels)} run(s)"
        data["text/html"] = html_figure(caption, png, table, self.error)
        if png:
            data["image/png"] = png
        return data, metadata
