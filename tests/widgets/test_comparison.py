"""ParallelCoordinates and Scatter without a kernel: axes, binary values, brushing and
selection, choices made in the widget, fallbacks."""

from __future__ import annotations

import base64
import math
from array import array

import pytest
import traitlets

from labtrack.widgets import ParallelCoordinates, Scatter
from labtrack.widgets._runs import column, run_labels


@pytest.fixture
def runs(client):
    """Four runs: numeric ``lr``, categorical ``optimizer``, a ``seed`` every run shares,
    ``depth`` missing in one run, and ``loss``/``acc`` metrics (``acc`` missing in one)."""
    experiment_id = client.create_experiment("compare")
    rows = [
        ("a", {"lr": "0.1", "optimizer": "adam", "seed": "1", "depth": "2"}, 0.5, 0.7),
        ("b", {"lr": "0.01", "optimizer": "sgd", "seed": "1", "depth": "4"}, 0.3, 0.8),
        ("c", {"lr": "0.001", "optimizer": "adam", "seed": "1"}, 0.2, None),
        ("d", {"lr": "0.01", "optimizer": "adamw", "seed": "1", "depth": "8"}, 0.4, 0.9),
    ]
    run_ids = []
    for name, params, loss, acc in rows:
        run_id = client.create_run(experiment_id, run_name=name).info.run_id
        for key, value in params.items():
            client.log_param(run_id, key, value)
        client.log_metric(run_id, "loss", loss)
        if acc is not None:
            client.log_metric(run_id, "acc", acc)
        run_ids.append(run_id)
    return run_ids


@pytest.fixture
def made():
    widgets = []
    yield widgets
    for widget in widgets:
        if widget.comm is not None:
            widget.close()


@pytest.fixture
def parallel(client, made):
    def make(*args, **kwargs):
        widget = ParallelCoordinates(*args, client=client, **kwargs)
        made.append(widget)
        return widget

    return make


@pytest.fixture
def scatter(client, made):
    def make(*args, **kwargs):
        widget = Scatter(*args, client=client, **kwargs)
        made.append(widget)
        return widget

    return make


def matrix(widget) -> list[list[float]]:
    values = array("d")
    values.frombytes(widget.values)
    width = len(widget.axes)
    return [list(values[row * width:(row + 1) * width]) for row in range(len(widget.runs))]


def same(a: list[float], b: list[float]) -> bool:
    return all((math.isnan(x) and math.isnan(y)) or x == y for x, y in zip(a, b, strict=True))


# -- ParallelCoordinates ---------------------------------------------------------------------


def test_parallel_state_after_creation(runs, parallel):
    widget = parallel(runs)
    assert [r["label"] for r in widget.runs] == ["a", "b", "c", "d"]
    assert widget.available_params == ["depth", "lr", "optimizer", "seed"]
    assert widget.available_metrics == ["acc", "loss"]
    assert widget.params == ["depth", "lr", "optimizer"]  # seed is the same everywhere
    assert widget.metrics == ["acc", "loss"]
    axes = {a["name"]: a for a in widget.axes}
    assert list(axes) == ["params.depth", "params.lr", "params.optimizer", "metrics.acc",
                          "metrics.loss"]
    assert axes["params.lr"]["kind"] == "numeric"
    assert (axes["params.lr"]["min"], axes["params.lr"]["max"]) == (0.001, 0.1)
    assert axes["params.optimizer"]["kind"] == "categorical"
    assert axes["params.optimizer"]["categories"] == ["adam", "adamw", "sgd"]
    assert axes["params.depth"]["missing"] == 1 and axes["metrics.acc"]["missing"] == 1
    assert widget.color_by == "metrics.loss"  # the last metric
    assert widget.brushes == {} and widget.selected_run_ids == runs and widget.error == ""


def test_parallel_values_travel_as_a_float64_matrix(runs, parallel):
    widget = parallel(runs, params=["lr", "optimizer"], metrics=["acc"])
    assert len(widget.values) == 8 * 4 * 3
    rows = matrix(widget)
    assert same(rows[0], [0.1, 0.0, 0.7])  # optimizer adam = category 0
    assert same(rows[2], [0.001, 0.0, math.nan])  # no acc: NaN
    assert same(rows[3], [0.01, 1.0, 0.9])  # adamw = category 1


def test_brushing_selects_runs(runs, parallel):
    widget = parallel(runs, params=["lr", "optimizer"], metrics=["acc", "loss"])
    widget.set_state({"brushes": {"metrics.loss": [0.25, 0.45]}})  # a brush drawn in the widget
    assert widget.selected_run_ids == [runs[1], runs[3]]
    widget.set_state({"brushes": {"metrics.loss": [0.25, 0.45],
                                  "params.optimizer": [1.5, 2.4]}})  # sgd only
    assert widget.selected_run_ids == [runs[1]]
    widget.brushes = {"metrics.acc": [0.9, 0.0]}  # ends in any order; no acc: outside
    assert widget.brushes == {"metrics.acc": [0.0, 0.9]}
    assert widget.selected_run_ids == [runs[0], runs[1], runs[3]]
    widget.set_state({"brushes": {}})
    assert widget.selected_run_ids == runs
    with pytest.raises(traitlets.TraitError):
        widget.brushes = {"metrics.acc": "high"}


def test_choosing_axes_in_the_widget(runs, parallel):
    widget = parallel(runs)
    widget.brushes = {"params.lr": [0.005, 0.2], "metrics.acc": [0.0, 1.0]}
    widget.set_state({"metrics": ["acc"]})  # chips in the widget; loss removed
    assert [a["name"] for a in widget.axes][-1] == "metrics.acc"
    assert widget.color_by == "metrics.acc"  # the colour axis went away
    widget.set_state({"params": ["seed"], "color_by": "params.seed"})
    assert [a["name"] for a in widget.axes] == ["params.seed", "metrics.acc"]
    assert widget.color_by == "params.seed"
    assert widget.brushes == {"metrics.acc": [0.0, 1.0]}  # the lr brush went with its axis
    assert widget.selected_run_ids == [runs[0], runs[1], runs[3]]
    widget.set_state({"color_by": ""})
    assert widget.color_by == ""
    widget.set_state({"params": ["lr"], "metrics": ["loss"]})  # one message, two choices
    assert (widget.params, widget.metrics) == (["lr"], ["loss"])
    assert [a["name"] for a in widget.axes] == ["params.lr", "metrics.loss"]


def test_parallel_refresh_reads_new_values(runs, client, parallel):
    widget = parallel(runs, params=["lr"], metrics=["loss"])
    client.log_metric(runs[0], "loss", 0.05)
    widget._handle_custom_msg({"type": "refresh"}, [])  # the widget's ↻ button
    assert matrix(widget)[0][1] == 0.05
    widget.run_ids = runs[:2]
    assert [r["run_id"] for r in widget.runs] == runs[:2] and len(matrix(widget)) == 2


def test_parallel_reports_unknown_runs_and_empty_axes(runs, parallel):
    widget = parallel([runs[0], "0123456789abcdef0123456789abcdef"], params=["nope"])
    assert "not found" in widget.error and "No run has a value for params.nope" in widget.error
    assert len(widget.runs) == 1


def test_parallel_fallbacks(runs, parallel):
    widget = parallel(runs)
    widget.brushes = {"metrics.loss": [0.0, 0.35]}
    data, _ = widget._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data
    page = data["text/html"]
    assert f"base64,{data['image/png']}" in page
    assert "4 run(s), 2 selected by metrics.loss in [0, 0.35]" in page
    assert "<td>adamw</td>" in page and "<th>params.optimizer</th>" in page
    assert base64.b64decode(data["image/png"])[:8] == b"\x89PNG\r\n\x1a\n"


# -- Scatter ---------------------------------------------------------------------------------


def points(widget) -> list[tuple[float, float]]:
    values = array("d")
    values.frombytes(widget.points)
    return list(zip(values[0::2], values[1::2]))


def test_scatter_state_and_points(runs, scatter):
    widget = scatter(runs, "params.lr", "metrics.loss")
    assert (widget.x, widget.y, widget.log_x, widget.log_y) == ("params.lr", "metrics.loss",
                                                                False, False)
    assert widget.available == ["params.depth", "params.lr", "params.optimizer", "params.seed",
                                "metrics.acc", "metrics.loss"]
    assert widget.x_info["kind"] == "numeric" and widget.y_info["name"] == "metrics.loss"
    assert points(widget) == [(0.1, 0.5), (0.01, 0.3), (0.001, 0.2), (0.01, 0.4)]
    assert [r["label"] for r in widget.runs] == ["a", "b", "c", "d"] and widget.error == ""


def test_scatter_axes_chosen_in_the_widget(runs, scatter):
    widget = scatter(runs, "params.lr", "metrics.loss")
    widget.set_state({"x": "params.optimizer", "log_y": True})
    assert widget.x_info["categories"] == ["adam", "adamw", "sgd"]
    assert [p[0] for p in points(widget)] == [0.0, 2.0, 0.0, 1.0]
    widget.set_state({"y": "metrics.acc"})
    assert math.isnan(points(widget)[2][1])
    assert "1 run(s) lack params.optimizer or metrics.acc" in widget.error
    with pytest.raises(traitlets.TraitError):
        widget.x = "lr"


def test_scatter_refuses_columns_that_are_not_params_or_metrics(runs, client):
    for x in ("lr", "tags.x", "params.", ""):
        with pytest.raises(ValueError, match="params.<key>"):
            Scatter(runs, x, "metrics.loss", client=client)


def test_scatter_unknown_column(runs, scatter):
    widget = scatter(runs, "params.lr", "metrics.nope")
    assert "No run has a value for metrics.nope" in widget.error


def test_scatter_fallbacks(runs, scatter):
    widget = scatter(runs, "params.lr", "metrics.loss", log_x=True)
    data, _ = widget._repr_mimebundle_()
    page = data["text/html"]
    assert "metrics.loss against params.lr, 4 run(s)" in page
    assert f"base64,{data['image/png']}" in page and "<td>0.001</td>" in page
    assert base64.b64decode(data["image/png"])[:8] == b"\x89PNG\r\n\x1a\n"


# -- shared helpers --------------------------------------------------------------------------


def test_columns_and_labels(runs, client):
    loaded = [client.get_run(r) for r in runs]
    assert column(loaded, "params.depth").kind == "numeric"
    mixed = column(loaded, "params.optimizer")
    assert mixed.kind == "categorical" and mixed.values == (0.0, 2.0, 0.0, 1.0)
    assert run_labels(loaded) == {r: name for r, name in zip(runs, "abcd")}
    # Axes spanning three decades or more are drawn in log scale; lr spans two here.
    assert not column(loaded, "params.lr").log and not mixed.log
    client.log_param(runs[0], "decay", "0.1")
    client.log_param(runs[1], "decay", "0.0001")
    assert column([client.get_run(r) for r in runs], "params.decay").index()["log"] is True


def test_over_http(tmp_path, monkeypatch):
    """With a client of a labtrack server, both widgets read the runs through the REST API."""
    from labtrack import TrackingClient
    from tests.widgets.http_server import TOKEN, labtrack_server

    monkeypatch.setenv("LABTRACK_TRACKING_TOKEN", TOKEN)
    with labtrack_server(tmp_path / "server") as url:
        client = TrackingClient(url)
        experiment_id = client.create_experiment("remote")
        run_ids = []
        for lr, loss in ((0.1, 0.5), (0.01, 0.2)):
            run_id = client.create_run(experiment_id).info.run_id
            client.log_param(run_id, "lr", lr)
            client.log_metric(run_id, "loss", loss)
            run_ids.append(run_id)
        widgets = [ParallelCoordinates(run_ids, client=client),
                   Scatter(run_ids, "params.lr", "metrics.loss", client=client)]
        try:
            parallel, points_of = widgets
            assert [a["name"] for a in parallel.axes] == ["params.lr", "metrics.loss"]
            parallel.brushes = {"metrics.loss": [0.0, 0.3]}
            assert parallel.selected_run_ids == [run_ids[1]]
            assert points(points_of) == [(0.1, 0.5), (0.01, 0.2)]
        finally:
            for widget in widgets:
                widget.close()
