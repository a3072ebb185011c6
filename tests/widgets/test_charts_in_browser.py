"""The chart widgets' front ends in a real Chromium (no Jupyter): they draw the kernel's
state, and each user action writes the model the kernel reads. Skipped without a browser."""

from __future__ import annotations

import pytest

from labtrack.widgets import MetricChart, ParallelCoordinates, Scatter
from tests.widgets.browser import browser_page, errors, mount, saved

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def page():
    with browser_page() as page:
        yield page


@pytest.fixture
def fresh(page):
    page.reload()
    yield page
    assert errors(page) == []


@pytest.fixture
def runs(client):
    experiment_id = client.create_experiment("browser")
    run_ids = []
    for number, (lr, optimizer) in enumerate([(0.1, "adam"), (0.01, "sgd"), (0.001, "adam")]):
        run_id = client.create_run(experiment_id, run_name=f"run-{number}").info.run_id
        client.log_param(run_id, "lr", lr)
        client.log_param(run_id, "optimizer", optimizer)
        for step in range(500):
            client.log_metric(run_id, "loss", (number + 1) / (step + 1), step=step,
                              synchronous=False)
            client.log_metric(run_id, "acc", 1 - 1 / (step + 2 + number), step=step,
                              synchronous=False)
        run_ids.append(run_id)
    client.flush()
    return run_ids


def center(page, selector: str, index: int = 0) -> tuple[float, float, dict]:
    box = page.locator(selector).nth(index).bounding_box()
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, box


def test_metric_chart_draws_and_writes_back_each_action(fresh, runs, client):
    page = fresh
    chart = MetricChart(runs, keys=["loss", "acc"], client=client)
    try:
        mount(page, chart, "metric_chart")
    finally:
        chart.close()
    assert page.locator(".labtrack-chart").count() == 2
    assert page.locator(".labtrack-chart canvas").count() == 2
    assert page.locator(".labtrack-chart").nth(0).get_attribute("data-points") == "1500"
    # Legend: the x value, then one row per run, labelled with the run's name.
    legend = page.locator(".labtrack-chart").nth(0).locator(".u-legend .u-series")
    assert legend.count() == 4 and "run-1" in legend.nth(2).inner_text()
    assert "3 runs" in page.locator(".labtrack-meta").inner_text()

    # Hover: values in the legend.
    x, y, box = center(page, ".u-over")
    page.mouse.move(x, y)
    assert legend.nth(1).locator(".u-value").inner_text() not in ("", "—", "--")

    # Drag to zoom: the window reaches the model (and the kernel) once it settles.
    page.mouse.move(box["x"] + 50, y)
    page.mouse.down()
    page.mouse.move(box["x"] + 200, y, steps=5)
    page.mouse.up()
    page.wait_for_timeout(400)
    low, high = saved(page)["x_range"]
    assert 0 < low < high < 499
    # Shift-drag pans: same width, further right.
    page.keyboard.down("Shift")
    page.mouse.move(box["x"] + 300, y)
    page.mouse.down()
    page.mouse.move(box["x"] + 200, y, steps=5)
    page.mouse.up()
    page.keyboard.up("Shift")
    page.wait_for_timeout(400)
    moved = saved(page)["x_range"]
    assert moved[0] > low and moved[1] - moved[0] == pytest.approx(high - low)
    # Double-click: everything again.
    page.mouse.dblclick(x, y)
    page.wait_for_timeout(400)
    assert saved(page)["x_range"] == []

    # A legend click hides the run in every chart.
    legend.nth(2).locator(".u-label").click()
    assert saved(page)["hidden_runs"] == [runs[1]]
    other = page.locator(".labtrack-chart").nth(1).locator(".u-legend .u-series").nth(2)
    assert "u-off" in other.get_attribute("class")

    # Smoothing, log scale, x axis and keys.
    page.locator("input[type=range]").evaluate(
        "input => { input.value = '0.8'; input.dispatchEvent(new Event('input'));"
        " input.dispatchEvent(new Event('change')); }")
    assert saved(page)["smoothing"] == 0.8
    page.get_by_label("log y").check()
    assert saved(page)["log_y"] is True
    page.locator("select").select_option("relative_time")
    assert saved(page)["x_axis"] == "relative_time" and saved(page)["x_range"] == []
    page.locator(".labtrack-chip", has_text="loss").click()
    assert saved(page)["metric_keys"] == ["acc"]
    page.locator(".labtrack-button", has_text="↻").click()
    assert page.evaluate("window.model.sent") == [{"type": "refresh"}]


def test_metric_chart_takes_new_data_from_the_kernel(fresh, runs, client):
    page = fresh
    chart = MetricChart(runs, keys=["loss"], client=client)
    try:
        mount(page, chart, "metric_chart")
        chart.x_axis = "metric:acc"  # the kernel reads again and pushes new series
        from ipywidgets.widgets.widget import _remove_buffers

        state, _paths, buffers = _remove_buffers(chart.get_state(["series_index",
                                                                  "series_data", "x_axis"]))
    finally:
        chart.close()
    page.evaluate(
        """([index, axis, data]) => {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            window.model.set("x_axis", axis);
            window.model.set("series_index", index);
            window.model.set("series_data", new DataView(bytes.buffer));
        }""",
        [state["series_index"], state["x_axis"],
         __import__("base64").b64encode(bytes(buffers[0])).decode()])
    assert page.locator(".labtrack-chart .u-label").first.inner_text() == "acc"  # x label


def test_parallel_coordinates_brush_colour_and_hover(fresh, runs, client):
    page = fresh
    widget = ParallelCoordinates(runs, metrics=["loss"], client=client)
    try:
        mount(page, widget, "parallel_coordinates")
    finally:
        widget.close()
    assert page.locator("path.labtrack-line").count() == 3
    titles = page.locator(".labtrack-axis-title").evaluate_all(
        "texts => texts.map((t) => t.firstChild.textContent)")
    assert titles == ["lr", "optimizer", "loss"]
    # Brush the loss axis from its top down past its middle: run-0's line (lowest loss) is
    # dimmed. (Last losses: run-0 0.002, run-1 0.004, run-2 0.006.)
    _x, _y, box = center(page, ".labtrack-brush-area", 2)
    page.mouse.move(box["x"] + 12, box["y"] + 1)
    page.mouse.down()
    page.mouse.move(box["x"] + 12, box["y"] + box["height"] * 0.65, steps=5)
    page.mouse.up()
    low, high = saved(page)["brushes"]["metrics.loss"]
    assert 0.002 < low < 0.004 and high == 0.006  # dragged to the top: the axis' own end
    assert page.locator("path.labtrack-dimmed").count() == 1
    assert "2 of 3 runs selected" in page.locator(".labtrack-meta").inner_text()
    # A click on the axis clears its brush.
    page.mouse.click(box["x"] + 12, box["y"] + box["height"] - 4)
    assert saved(page)["brushes"] == {}
    page.locator(".labtrack-axis-title", has_text="lr").click()
    assert saved(page)["color_by"] == "params.lr"
    # Hover a line between two axes (over an axis, the brush area takes the pointer).
    x, y = page.locator("path.labtrack-line").first.evaluate(
        """path => {
            const point = path.getPointAtLength(path.getTotalLength() / 4);
            const matrix = path.getScreenCTM();
            return [point.x * matrix.a + matrix.e, point.y * matrix.d + matrix.f];
        }""")
    page.mouse.move(x, y)
    assert "run-" in page.locator(".labtrack-tooltip").inner_text()


def test_scatter_draws_points_named_on_hover(fresh, runs, client):
    page = fresh
    widget = Scatter(runs, "params.lr", "metrics.loss", client=client)
    try:
        mount(page, widget, "scatter")
    finally:
        widget.close()
    assert page.locator("circle.labtrack-point").count() == 3
    page.locator("circle.labtrack-point").nth(2).hover()
    tooltip = page.locator(".labtrack-tooltip").inner_text()
    assert "run-2" in tooltip and "params.lr: 0.001" in tooltip
    page.get_by_label("log x").check()
    assert saved(page)["log_x"] is True
    page.locator("select").nth(1).select_option("metrics.acc")
    assert saved(page)["y"] == "metrics.acc"
