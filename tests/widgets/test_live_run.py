"""LiveRun without a kernel: trait state, binary buffers, pushes on write, fallbacks."""

from __future__ import annotations

import base64
import math
import time

import pytest

import labtrack
from labtrack.widgets import LiveRun
from labtrack.widgets._encoding import decode_series


@pytest.fixture
def widget_run(fluent_uri):
    run = labtrack.start_run(run_name="live")
    labtrack.log_params({"lr": 0.01, "depth": 4})
    for step in range(300):
        labtrack.log_metric("loss", 1 / (step + 1), step=step)
        labtrack.log_metric("acc", step / 300, step=step)
    labtrack.log_metric("weird", float("nan"))
    yield run
    if labtrack.active_run() is not None:
        labtrack.end_run()


def test_state_after_creation(widget_run):
    widget = LiveRun(widget_run.run_id)
    try:
        assert (widget.run_name, widget.status) == ("live", "RUNNING")
        assert widget.params == {"depth": "4", "lr": "0.01"}
        latest = {m["key"]: m["value"] for m in widget.latest}
        assert latest["loss"] == 1 / 300 and latest["weird"] is None  # NaN is not JSON
        keys = [entry["key"] for entry in widget.series_index]
        assert keys == ["acc", "loss", "weird"]
        series = dict(zip(keys, decode_series(widget.series_index, widget.series_data)))
        xs, ys = series["loss"]
        assert xs[0] == 0 and xs[-1] == 299 and ys[0] == 1.0
        assert math.isnan(series["weird"][1][0])  # binary buffers carry NaN as is
        assert widget.total_points == 601
    finally:
        widget.close()


def test_new_points_are_pushed_when_the_writer_stores_them(widget_run):
    widget = LiveRun(widget_run.run_id, keys=["loss"], poll=False)
    try:
        for step in range(300, 400):
            labtrack.log_metric("loss", 0.001, step=step)
        labtrack.flush()  # the writer stores them and tells the widget
        deadline = time.monotonic() + 30
        while widget.total_points != 400:
            assert time.monotonic() < deadline, "the widget never heard of the new points"
            time.sleep(0.05)
        labtrack.end_run()
        deadline = time.monotonic() + 30
        while widget.status != "FINISHED":
            assert time.monotonic() < deadline, "the widget never saw the run end"
            time.sleep(0.05)
        assert widget.end_time >= widget.start_time > 0
    finally:
        widget.close()


def test_long_series_arrive_downsampled(fluent_uri):
    with labtrack.start_run() as run:
        for step in range(50_000):
            labtrack.log_metric("loss", math.sin(step / 500), step=step)
    widget = LiveRun(run.run_id, max_points=200, poll=False)
    try:
        [entry] = widget.series_index
        assert entry["total_points"] == 50_000 and entry["length"] <= 200
        assert len(widget.series_data) == 2 * entry["length"] * 8
    finally:
        widget.close()


def test_static_fallbacks_are_in_the_mime_bundle(widget_run):
    widget = LiveRun(widget_run.run_id, poll=False)
    try:
        data, _ = widget._repr_mimebundle_()
        assert "application/vnd.jupyter.widget-view+json" in data
        assert "params.lr" in data["text/html"] and "labtrack run live" in data["text/html"]
        assert base64.b64decode(data["image/png"])[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        widget.close()


def test_an_unknown_run_shows_an_error(fluent_uri):
    widget = LiveRun("0123456789abcdef0123456789abcdef", poll=False)
    try:
        assert "not found" in widget.error
    finally:
        widget.close()
