"""Static stand-ins for widgets: what a saved notebook shows where no kernel runs (GitHub,
nbconvert, a closed notebook). Every widget adds one to its MIME bundle."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from typing import Any


def html_table(columns: Sequence[str], rows: Sequence[Sequence[Any]],
               caption: str | None = None, limit: int = 200) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape('' if v is None else str(v))}</td>" for v in row)
        + "</tr>"
        for row in rows[:limit]
    )
    more = (f"<tr><td colspan='{len(columns)}'>… {len(rows) - limit} more</td></tr>"
            if len(rows) > limit else "")
    title = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return (f"<table class='labtrack-static'>{title}<thead><tr>{head}</tr></thead>"
            f"<tbody>{body}{more}</tbody></table>")


def png_charts(panels: Sequence[tuple[str, Sequence[tuple[str, Sequence[float],
                                                                Sequence[float]]]]],
               x_label: str = "step") -> str | None:
    """Small multiples as a base64 PNG: ``panels`` is ``[(title, [(label, xs, ys), …]), …]``.
    None when matplotlib is not installed or there is nothing to draw."""
    if not panels:
        return None
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return None
    columns = min(3, len(panels))
    rows = (len(panels) + columns - 1) // columns
    figure = Figure(figsize=(4 * columns, 2.6 * rows), dpi=80)
    for index, (title, lines) in enumerate(panels):
        axes = figure.add_subplot(rows, columns, index + 1)
        for label, xs, ys in lines:
            axes.plot(xs, ys, label=label, linewidth=1.2)
        axes.set_title(title, fontsize=10)
        axes.set_xlabel(x_label, fontsize=8)
        axes.tick_params(labelsize=7)
        if len(lines) > 1:
            axes.legend(fontsize=7)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode()
