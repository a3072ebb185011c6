"""matplotlib stand-ins for the comparison charts (line charts, parallel coordinates,
scatter), drawn from the widget's own state so a saved notebook shows what the live widget
showed: same runs, colours, smoothing, scales and zoom.

Every function returns a base64 PNG, or None when matplotlib is missing or there is nothing to
draw. ``html_figure`` wraps one in HTML: nbconvert and GitHub render ``text/html`` before
``image/png``, so the picture has to be inside the HTML to be seen there."""

from __future__ import annotations

import base64
import datetime
import functools
import html
import io
import logging
import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from labtrack.widgets._runs import Column

log = logging.getLogger("labtrack.widgets")

MAX_LEGEND = 12  # beyond this many runs a legend hides the chart; the HTML table names them

Line = tuple[str, str, Sequence[float], Sequence[float]]  # (label, colour, xs, ys)


def _figure(width: float, height: float):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return None
    return Figure(figsize=(width, height), dpi=80)


def _png(figure) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "tight layout not applied" must not stop a picture
        figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode()


def never_raises(draw: Callable[..., str | None]) -> Callable[..., str | None]:
    """A fallback picture that cannot be drawn is left out (and logged); it must never keep
    the live widget from being displayed."""

    @functools.wraps(draw)
    def guarded(*args, **kwargs):
        try:
            return draw(*args, **kwargs)
        except Exception:
            log.warning("labtrack: could not draw the static fallback %s", draw.__name__,
                        exc_info=True)
            return None

    return guarded


def ema(values: Sequence[float], weight: float) -> list[float]:
    """TensorBoard's debiased exponential moving average, as the browser computes it
    (``smooth`` in labextension/widgets/lib/series.ts): points that are not finite stay as
    they are and do not enter the average."""
    if weight <= 0:
        return list(values)
    out, last, count = [], 0.0, 0
    for value in values:
        if not math.isfinite(value):
            out.append(value)
            continue
        last = last * weight + (1 - weight) * value
        count += 1
        out.append(last / (1 - weight ** count))
    return out


@never_raises
def line_charts_png(panels: Sequence[tuple[str, Sequence[Line]]], x_label: str,
                    log_y: bool = False, x_range: Sequence[float] = (),
                    time_axis: bool = False) -> str | None:
    """Small multiples, one panel per ``(title, lines)``."""
    if not panels:
        return None
    columns = min(3, len(panels))
    rows = (len(panels) + columns - 1) // columns
    figure = _figure(4.4 * columns, 2.9 * rows)
    if figure is None:
        return None
    def place(x: float) -> Any:  # epoch milliseconds become dates on a time axis
        return datetime.datetime.fromtimestamp(x / 1000, datetime.UTC) if time_axis else x

    for number, (title, lines) in enumerate(panels):
        axes = figure.add_subplot(rows, columns, number + 1)
        for label, color, xs, ys in lines:
            if len(x_range) == 2:  # y is scaled to what is in view, as in the browser
                xs, ys = _clip(xs, ys, x_range[0], x_range[1])
            axes.plot([place(x) for x in xs], ys, label=label, color=color, linewidth=1.1,
                      marker="o" if len(xs) < 60 else None, markersize=2.5)
        if log_y:
            axes.set_yscale("log", nonpositive="mask")
        if len(x_range) == 2:
            axes.set_xlim(place(x_range[0]), place(x_range[1]))
        axes.set_title(title, fontsize=10)
        axes.set_xlabel(x_label, fontsize=8)
        axes.tick_params(labelsize=7)
        if not lines:
            axes.text(0.5, 0.5, "no data", ha="center", va="center", transform=axes.transAxes)
        elif 1 < len(lines) <= MAX_LEGEND:
            axes.legend(fontsize=7)
        if time_axis:
            figure.autofmt_xdate()
    return _png(figure)


def _clip(xs: Sequence[float], ys: Sequence[float], low: float, high: float
          ) -> tuple[Sequence[float], Sequence[float]]:
    """The points with x in [low, high], and one more on each side so lines reach the edges."""
    inside = [i for i, x in enumerate(xs) if low <= x <= high]
    if not inside:
        return [], []
    first, last = max(inside[0] - 1, 0), min(inside[-1] + 2, len(xs))
    return xs[first:last], ys[first:last]


def _unit(column: Column) -> list[float]:
    """Each value's height on its axis, from 0 (bottom) to 1 (top)."""
    if column.kind == "categorical":
        top = max(len(column.categories) - 1, 1)
        return [v / top if len(column.categories) > 1 else 0.5 for v in column.values]
    present = column.finite()
    if not present:
        return [math.nan] * len(column.values)
    place = math.log10 if column.log else float
    low, high = place(min(present)), place(max(present))
    return [math.nan if math.isnan(v) else 0.5 if high == low else (place(v) - low) / (high - low)
            for v in column.values]


def _tick(value: float) -> str:
    return f"{value:.4g}"


@never_raises
def parallel_png(columns: Sequence[Column], colors: Sequence[str],
                 selected: Sequence[bool]) -> str | None:
    """One polyline per run across the columns; runs outside the selection in grey."""
    if not columns or not colors:
        return None
    figure = _figure(max(5.0, 1.6 * len(columns)), 3.6)
    if figure is None:
        return None
    axes = figure.add_subplot(1, 1, 1)
    heights = [_unit(c) for c in columns]
    xs = list(range(len(columns)))
    order = sorted(range(len(colors)), key=lambda row: selected[row])  # selected on top
    for row in order:
        ys = [h[row] for h in heights]
        if selected[row]:
            axes.plot(xs, ys, color=colors[row], linewidth=1.2, alpha=0.9)
        else:
            axes.plot(xs, ys, color="#bbbbbb", linewidth=0.8, alpha=0.6)
    for x, column in zip(xs, columns):
        axes.axvline(x, color="#444444", linewidth=0.8)
        if column.kind == "categorical":
            top = max(len(column.categories) - 1, 1)
            for i, category in enumerate(column.categories):
                y = i / top if len(column.categories) > 1 else 0.5
                axes.text(x + 0.03, y, category, fontsize=7, va="center")
        else:
            present = column.finite()
            if present:
                axes.text(x + 0.03, 1.0, _tick(max(present)), fontsize=7, va="bottom")
                axes.text(x + 0.03, 0.0, _tick(min(present)), fontsize=7, va="top")
    axes.set_xticks(xs, [c.name for c in columns], fontsize=8)
    axes.set_yticks([])
    axes.set_ylim(-0.08, 1.08)
    axes.set_xlim(-0.2, len(columns) - 0.6 if len(columns) > 1 else 0.8)
    for side in ("left", "right", "top", "bottom"):
        axes.spines[side].set_visible(False)
    return _png(figure)


@never_raises
def scatter_png(x: Column, y: Column, labels: Sequence[str], colors: Sequence[str],
                log_x: bool = False, log_y: bool = False) -> str | None:
    points = [(a, b, label, color) for a, b, label, color in zip(x.values, y.values, labels,
                                                                   colors)
              if not (math.isnan(a) or math.isnan(b))]
    if not points:
        return None
    figure = _figure(5.0, 3.8)
    if figure is None:
        return None
    axes = figure.add_subplot(1, 1, 1)
    axes.scatter([p[0] for p in points], [p[1] for p in points], c=[p[3] for p in points], s=22)
    if len(points) <= 30:
        for a, b, label, _ in points:
            axes.annotate(label, (a, b), fontsize=7, xytext=(4, 3), textcoords="offset points")
    for column, log, set_scale, set_ticks in ((x, log_x, axes.set_xscale, axes.set_xticks),
                                              (y, log_y, axes.set_yscale, axes.set_yticks)):
        if column.kind == "categorical":
            set_ticks(range(len(column.categories)), column.categories)
        elif log and column.finite() and min(column.finite()) > 0:  # as the browser does
            set_scale("log")
    axes.set_xlabel(x.name, fontsize=9)
    axes.set_ylabel(y.name, fontsize=9)
    axes.tick_params(labelsize=7)
    axes.grid(alpha=0.3)
    return _png(figure)


def html_figure(caption: str, png: str | None, table: str = "", note: str = "") -> str:
    """The widget's HTML stand-in: a caption, the chart as an inline image, then a table."""
    parts = [f"<div class='labtrack-static'><p><strong>{html.escape(caption)}</strong></p>"]
    if png:
        parts.append(f"<img alt='{html.escape(caption)}' src='data:image/png;base64,{png}'/>")
    if note:
        parts.append(f"<p>{html.escape(note)}</p>")
    parts.append(table)
    parts.append("</div>")
    return "".join(parts)


def number_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        return f"{value:.6g}"
    return str(value)
