"""The comparison charts in a real JupyterLab, in Chromium: drawn from the kernel's binary
buffers over the widget channel, and a change made in the widget read again by the kernel."""

from __future__ import annotations

from tests.browser.conftest import canvas_ink, open_and_run_all, screenshot, write_notebook

SETUP = """\
import math
import labtrack
from labtrack.widgets import MetricChart, ParallelCoordinates, Scatter

ids = []
for number, (lr, optimizer) in enumerate([(0.1, "adam"), (0.01, "sgd"), (0.001, "adam")]):
    with labtrack.start_run(run_name=f"lr-{lr}") as run:
        labtrack.log_params({"lr": lr, "optimizer": optimizer})
        for step in range(300):
            labtrack.log_metric("loss", (number + 1) * math.exp(-step / 80), step=step)
            labtrack.log_metric("acc", 1 - math.exp(-step / (60 + 20 * number)), step=step)
    ids.append(run.info.run_id)"""


def test_comparison_charts_draw_and_answer_the_widget(lab, page):
    write_notebook(lab.root / "charts.ipynb", [
        SETUP,
        "MetricChart(ids)",
        "ParallelCoordinates(ids)",
        'Scatter(ids, "params.lr", "metrics.loss")',
    ])
    open_and_run_all(page, lab, "charts.ipynb")
    chart = page.wait_for_selector(".labtrack-metric-chart", timeout=60_000)
    page.wait_for_function(
        "() => document.querySelectorAll('.labtrack-metric-chart .labtrack-chart').length === 2"
        " && Array.from(document.querySelectorAll('.labtrack-metric-chart .labtrack-chart'))"
        ".every(c => Number(c.dataset.points) === 900)", timeout=60_000)
    assert canvas_ink(page, ".labtrack-metric-chart .labtrack-chart") > 500
    assert "lr-0.01" in chart.inner_text()  # legend: run names

    # A new x axis chosen in the widget is read by the kernel and drawn.
    page.select_option(".labtrack-metric-chart select", "relative_time")
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('.labtrack-metric-chart .u-label'))"
        ".some(l => l.textContent === 'seconds since run start')", timeout=60_000)
    screenshot(chart, "metric_chart")

    parallel = page.wait_for_selector(".labtrack-parallel", timeout=60_000)
    page.wait_for_function(
        "() => document.querySelectorAll('.labtrack-parallel path.labtrack-line').length === 3",
        timeout=60_000)
    screenshot(parallel, "parallel_coordinates")
    scatter = page.wait_for_selector(".labtrack-scatter", timeout=60_000)
    page.wait_for_function(
        "() => document.querySelectorAll('.labtrack-scatter circle.labtrack-point').length === 3",
        timeout=60_000)
    screenshot(scatter, "scatter")
