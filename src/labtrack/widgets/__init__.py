"""Notebook widgets (anywidget): live runs, run tables, metric charts, the registry.

Each widget talks to the kernel over the widget channel (no second port, no iframe) and has
a static fallback in its MIME bundle, so a saved notebook still shows it without a kernel.
"""

from labtrack.widgets.comparison import ParallelCoordinates, Scatter
from labtrack.widgets.live_run import LiveRun
from labtrack.widgets.metric_chart import MetricChart
from labtrack.widgets.registry import RegistryBrowser, TransitionRequests
from labtrack.widgets.runs_table import RunsTable

__all__ = [
    "LiveRun",
    "MetricChart",
    "ParallelCoordinates",
    "RegistryBrowser",
    "RunsTable",
    "Scatter",
    "TransitionRequests",
]
