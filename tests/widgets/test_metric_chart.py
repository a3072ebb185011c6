"""MetricChart without a kernel: trait state after each action, binary buffers, re-reads,
pairing with a metric as x, live updates and fallbacks."""

from __future__ import annotations

import base64
import math
import time

import pytest
import traitlets

from labtrack.entities import MetricSeries
from labtrack.widgets import MetricChart
from labtrack.widgets.metric_chart import EXACT_PAIRING_POINTS, pair_by_step

START = 1_700_000_000_000


@pytest.fixture
def runs(client):
    """Three finished runs: ``loss`` and ``acc`` at steps 0–99 every 10 ms, ``epoch`` every
    10 steps; the first two share a name."""
    experiment_id = client.create_experiment("charts")
    run_ids = []
    for number, name in enumerate(["base", "base", "wide"]):
        run_id = client.create_run(experiment_id, start_time=START + number,
                                   run_name=name).info.run_id
        for step in range(100):
            timestamp = START + number + step * 10
            client.log_metric(run_id, "loss", (number + 1) / (step + 1), timestamp, step,
                              synchronous=False)
            client.log_metric(run_id, "acc", step / 100, timestamp, step, synchronous=False)
            if step % 10 == 0:
                client.log_metric(run_id, "epoch", step // 10, timestamp, step,
                                  synchronous=False)
        client.flush()
        client.set_terminated(run_id)
        run_ids.append(run_id)
    return run_ids


@pytest.fixture
def chart_of(client):
    made = []

    def make(*args, **kwargs):
        kwargs.setdefault("client", client)
        chart = MetricChart(*args, **kwargs)
        made.append(chart)
        return chart

    yield make
    for chart in made:
        if chart.comm is not None:
            chart.close()


def spy_reads(chart, monkeypatch) -> list:
    """Count the chart's series reads (the store stays real)."""
    calls = []
    service = chart._client.service
    read = service.get_metric_history_downsampled

    def counting(*args, **kwargs):
        calls.append(args)
        return read(*args, **kwargs)

    monkeypatch.setattr(service, "get_metric_history_downsampled", counting)
    return calls


def test_state_after_creation(runs, chart_of):
    chart = chart_of(runs)
    assert chart.run_ids == runs
    assert [r["run_id"] for r in chart.runs] == runs  # colour order
    labels = [r["label"] for r in chart.runs]
    assert labels == [f"base ({runs[0][-8:]})", f"base ({runs[1][-8:]})", "wide"]
    assert chart.available_keys == ["acc", "epoch", "loss"]
    assert chart.metric_keys == ["acc", "epoch", "loss"]  # keys=None: every key
    assert (chart.x_axis, chart.smoothing, chart.log_y, chart.max_points) == ("step", 0, False,
                                                                               1000)
    assert (chart.hidden_runs, chart.x_range, chart.error) == ([], [], "")
    # One series per (key, run), keys in order, runs in colour order within a key.
    assert [(e["key"], e["run_id"]) for e in chart.series_index] == [
        (key, run_id) for key in ["acc", "epoch", "loss"] for run_id in runs]
    assert [e["label"] for e in chart.series_index[:3]] == labels
    assert chart.total_points == 3 * (100 + 10 + 100)


def test_series_travel_as_one_float64_buffer(runs, chart_of):
    chart = chart_of(runs, keys=["loss"])
    assert isinstance(chart.series_data, bytes)
    assert len(chart.series_data) == 8 * 2 * sum(e["length"] for e in chart.series_index)
    offsets = [e["offset"] for e in chart.series_index]
    assert offsets == [0, 200, 400]  # x then y of each series, back to back
    xs, ys = chart.series()[(runs[2], "loss")]
    assert xs == [float(step) for step in range(100)]
    assert ys == [3 / (step + 1) for step in range(100)]


def test_nan_points_are_carried_as_nan(client, chart_of):
    run_id = client.create_run(client.create_experiment("nan")).info.run_id
    for step, value in enumerate([1.0, float("nan"), 3.0, float("inf")]):
        client.log_metric(run_id, "loss", value, step=step)
    [(xs, ys)] = chart_of([run_id]).series().values()
    assert xs == [0, 1, 2, 3] and ys[0] == 1 and math.isnan(ys[1]) and ys[3] == math.inf


def test_long_series_arrive_downsampled(client, chart_of):
    run_id = client.create_run(client.create_experiment("long")).info.run_id
    for step in range(30_000):
        client.log_metric(run_id, "loss", math.sin(step / 300), step=step, synchronous=False)
    chart = chart_of([run_id], max_points=200)
    [entry] = chart.series_index
    assert entry["total_points"] == 30_000 and 3 <= entry["length"] <= 200
    [(xs, ys)] = chart.series().values()
    assert xs[0] == 0 and xs[-1] == 29_999 and min(ys) == pytest.approx(-1, abs=1e-4)
    chart.max_points = 50  # a new budget is a new read
    assert chart.series_index[0]["length"] <= 50


def test_wall_and_relative_time_axes(runs, chart_of):
    chart = chart_of(runs, keys=["loss"])
    chart.x_axis = "time"
    xs, _ = chart.series()[(runs[1], "loss")]
    assert xs[:2] == [START + 1, START + 11]
    chart.x_axis = "relative_time"  # seconds since each run's own start
    xs, _ = chart.series()[(runs[1], "loss")]
    assert xs[:3] == [0.0, 0.01, 0.02]
    assert chart.series_index[0]["key"] == "loss" and chart.error == ""


def test_the_ui_changing_x_axis_or_keys_reads_again(runs, chart_of, monkeypatch):
    chart = chart_of(runs, keys=["loss"])
    reads = spy_reads(chart, monkeypatch)
    chart.set_state({"x_range": [10.0, 20.0]})  # zoomed in the browser
    chart.set_state({"x_axis": "time"})  # what the widget's x-axis menu sends
    assert len(reads) == 1 and reads[0][3] == "time"
    assert chart.x_range == []  # a zoom window means nothing on another axis
    assert chart.series_index[0]["total_points"] == 100
    chart.set_state({"metric_keys": ["acc", "loss"]})
    assert len(reads) == 2 and reads[1][1] == ["acc", "loss"]
    assert [e["key"] for e in chart.series_index] == ["acc"] * 3 + ["loss"] * 3
    chart.set_state({"metric_keys": []})
    assert chart.series_index == [] and chart.series_data == b""
    # Both in one message: each is applied, whichever observer runs first.
    chart.set_state({"x_axis": "metric:epoch", "metric_keys": ["acc"]})
    assert chart.metric_keys == ["acc"] and chart.x_axis == "metric:epoch"
    assert [e["key"] for e in chart.series_index] == ["acc"] * 3


def test_display_settings_change_no_data(runs, chart_of, monkeypatch):
    chart = chart_of(runs, keys=["loss"])
    reads = spy_reads(chart, monkeypatch)
    data = chart.series_data
    chart.set_state({"smoothing": 0.6})
    chart.set_state({"log_y": True})
    chart.set_state({"hidden_runs": [runs[0]]})  # a legend click in the browser
    chart.set_state({"x_range": [10.0, 50.0]})  # a drag zoom
    assert (chart.smoothing, chart.log_y, chart.hidden_runs, chart.x_range) == (
        0.6, True, [runs[0]], [10.0, 50.0])
    assert reads == [] and chart.series_data is data


def test_explicit_keys_stay_chosen_on_refresh(runs, client, chart_of):
    chart = chart_of(runs, keys=["loss"])
    client.log_metric(runs[0], "new_metric", 1.0)
    chart.refresh()
    assert chart.metric_keys == ["loss"] and "new_metric" in chart.available_keys
    every = chart_of(runs)  # keys=None follows new keys
    client.log_metric(runs[0], "newer_metric", 1.0)
    every.refresh()
    assert "newer_metric" in every.metric_keys


def test_invalid_settings_are_refused(runs, chart_of):
    chart = chart_of(runs, keys=["loss"])
    for name, value in [("x_axis", "epochs"), ("x_axis", "metric:"), ("smoothing", 1.0),
                        ("smoothing", -0.1), ("max_points", 2), ("x_range", [5.0, 1.0]),
                        ("x_range", [1.0])]:
        with pytest.raises(traitlets.TraitError):
            setattr(chart, name, value)
    with pytest.raises(traitlets.TraitError):
        MetricChart(runs, x_axis="wall", client=chart._client)
    assert chart.x_axis == "step" and chart.smoothing == 0


def test_another_metric_as_x_pairs_points_by_step(runs, chart_of):
    chart = chart_of(runs, x_axis="metric:epoch")
    assert chart.metric_keys == ["acc", "loss"]  # the x metric is not charted against itself
    xs, ys = chart.series()[(runs[0], "loss")]
    # epoch is logged at steps 0, 10, …, 90: steps in between are interpolated, steps
    # after 90 have nothing to pair with.
    assert len(xs) == 91
    assert xs[:3] == [0.0, 0.1, 0.2] and xs[10] == 1.0 and xs[-1] == 9.0
    assert ys[:2] == [1.0, 0.5]
    assert chart.series_index[0]["total_points"] == 100


def test_a_run_without_the_x_metric_is_named(client, runs, chart_of):
    other = client.create_run(client.create_experiment("other"), run_name="no-epoch")
    client.log_metric(other.info.run_id, "loss", 1.0)
    chart = chart_of([*runs, other.info.run_id], keys=["loss"], x_axis="metric:epoch")
    assert "no-epoch has no metric 'epoch'" in chart.error
    assert len(chart.series_index) == 3


def test_pairing_rules():
    def series(key, points):
        return MetricSeries("r", key, "step", [p[0] for p in points], [p[0] for p in points],
                            [0] * len(points), [p[1] for p in points], len(points), 1)

    x = series("x", [(0, 0.0), (4, 8.0), (4, 4.0), (6, float("nan")), (8, 2.0)])
    y = series("y", [(0, 1.0), (2, 2.0), (4, 3.0), (6, 4.0), (8, 5.0), (9, 6.0)])
    paired = pair_by_step(y, x)
    # Step 4 takes the last x logged there; 2 is interpolated; 6 is interpolated across the
    # NaN; 9 is past the x metric's last step. Points are sorted by x.
    assert list(zip(paired.x, paired.steps, paired.values)) == [
        (0.0, 0, 1.0), (2.0, 2, 2.0), (2.0, 8, 5.0), (3.0, 6, 4.0), (4.0, 4, 3.0)]
    assert paired.x_axis == "metric:x"


def test_a_long_x_metric_is_read_in_full_when_short_enough(client, chart_of):
    run_id = client.create_run(client.create_experiment("pairs")).info.run_id
    for step in range(3_000):
        client.log_metric(run_id, "tokens", step * 7.0, step=step, synchronous=False)
        client.log_metric(run_id, "loss", 1 / (step + 1), step=step, synchronous=False)
    assert 3_000 <= EXACT_PAIRING_POINTS
    chart = chart_of([run_id], keys=["loss"], x_axis="metric:tokens", max_points=100)
    [(xs, _)], [entry] = chart.series().values(), chart.series_index
    assert entry["length"] <= 100
    assert all(x % 7 == 0 for x in xs)  # exact values, not interpolated ones


def test_unknown_runs_are_reported_and_the_others_drawn(runs, chart_of):
    chart = chart_of([runs[0], "0123456789abcdef0123456789abcdef"], keys=["loss"])
    assert "not found" in chart.error
    assert [r["run_id"] for r in chart.runs] == [runs[0]]
    assert len(chart.series_index) == 1


def test_refresh_and_the_refresh_message(runs, client, chart_of):
    chart = chart_of(runs[:1], keys=["loss"])
    client.log_metric(runs[0], "loss", 0.001, step=100, synchronous=False)
    chart.refresh()  # stores what this kernel buffered, then reads
    assert chart.total_points == 101
    client.log_metric(runs[0], "loss", 0.001, step=101)
    chart._handle_custom_msg({"type": "refresh"}, [])  # the widget's ↻ button
    assert chart.total_points == 102


def test_new_points_from_this_kernel_are_pushed(runs, client, chart_of):
    chart = chart_of(runs, keys=["loss"])
    chart.min_interval = 0.05
    for step in range(100, 150):
        client.log_metric(runs[2], "loss", 0.01, step=step, synchronous=False)
    client.flush()  # the writer stores them and tells the chart
    deadline = time.monotonic() + 30
    while chart.series_index[2]["total_points"] != 150:
        assert time.monotonic() < deadline, "the chart never heard of the new points"
        time.sleep(0.05)


def test_static_fallbacks_are_in_the_mime_bundle(runs, chart_of):
    chart = chart_of(runs, keys=["loss", "acc"], smoothing=0.5, log_y=True)
    chart.hidden_runs = [runs[0]]
    chart.x_range = [10.0, 60.0]
    data, _ = chart._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data
    page = data["text/html"]
    # nbconvert and GitHub render text/html first: the chart has to be inside it.
    assert "<img" in page and f"base64,{data['image/png']}" in page
    assert "3 run(s) × 2 key(s)" in page and "smoothing 0.5" in page and "log y" in page
    assert "1 run(s) hidden" in page and "wide" in page
    assert base64.b64decode(data["image/png"])[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_x_axis_has_a_fallback(runs, chart_of):
    chart = chart_of(runs, keys=["loss"])
    for x_axis in ("time", "relative_time", "metric:epoch"):
        chart.x_axis = x_axis
        data, _ = chart._repr_mimebundle_()
        assert base64.b64decode(data["image/png"])[:4] == b"\x89PNG"


def test_empty_selection(client, chart_of):
    chart = chart_of([])
    assert (chart.runs, chart.series_index, chart.error) == ([], [], "")
    data, _ = chart._repr_mimebundle_()
    assert "0 run(s)" in data["text/html"]


def test_over_http(tmp_path, monkeypatch):
    """With a client of a labtrack server, every read goes through the REST API (runs,
    downsampled history), and pushes follow this kernel's writes over HTTP too."""
    from labtrack import TrackingClient
    from tests.widgets.http_server import TOKEN, labtrack_server

    monkeypatch.setenv("LABTRACK_TRACKING_TOKEN", TOKEN)
    with labtrack_server(tmp_path / "server") as url:
        client = TrackingClient(url)
        run_ids = []
        for name in ("near", "far"):
            run = client.create_run(client.create_experiment(name), run_name=name)
            for step in range(200):
                client.log_metric(run.info.run_id, "loss", 1 / (step + 1), step=step,
                                  synchronous=False)
                client.log_metric(run.info.run_id, "epoch", step // 20, step=step,
                                  synchronous=False)
            run_ids.append(run.info.run_id)
        chart = MetricChart(run_ids, keys=["loss"], client=client, max_points=50,
                            x_axis="metric:epoch")
        try:
            assert chart.error == "" and [r["label"] for r in chart.runs] == ["near", "far"]
            assert [e["total_points"] for e in chart.series_index] == [200, 200]
            assert all(e["length"] <= 50 for e in chart.series_index)
            xs, _ = chart.series()[(run_ids[0], "loss")]
            assert xs[0] == 0 and xs[-1] == 9  # epochs, exact: the x metric is short
            data, _ = chart._repr_mimebundle_()
            assert "image/png" in data
        finally:
            chart.close()
