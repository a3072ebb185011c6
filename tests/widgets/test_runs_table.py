"""RunsTable without a kernel: the state after each thing the browser does (messages fed to
the widget as the comm delivers them), the compact row payload, selection for the next cell,
errors shown rather than raised, and the static fallback."""

from __future__ import annotations

import json
import math
import sqlite3
import time
import uuid

import pytest
import traitlets

import labtrack
from labtrack import config
from labtrack.widgets import RunsTable
from labtrack.widgets.runs_table import ATTRIBUTE_COLUMNS, FALLBACK_ROWS, ROW_PREFIX


class Browser:
    """The front end's side of one widget's comm: what it sends, and what it was sent."""

    def __init__(self, widget: RunsTable):
        self.widget = widget
        self.received: list[dict] = []
        widget.comm.send = lambda data=None, buffers=None, **_: self.received.append(data)

    def update(self, **state) -> None:
        """``model.set(…); model.save_changes()``: an update message with the changed traits."""
        self.widget._handle_msg({"content": {"data": {"method": "update", "state": state}},
                                 "buffers": []})

    def invoke(self, name: str, msg: dict | None = None) -> dict:
        """``experimental.invoke(name, msg)``: an anywidget command and its response."""
        self.received.clear()
        self.widget._handle_custom_msg(
            {"kind": "anywidget-command", "name": name, "id": "42", "msg": msg or {}}, [])
        [response] = [m["content"] for m in self.received if m.get("method") == "custom"]
        assert response["id"] == "42" and response["kind"] == "anywidget-command-response"
        return response["response"]

    def updates(self) -> list[dict]:
        return [m["state"] for m in self.received if m.get("method") == "update"]


def names(widget: RunsTable) -> list[str]:
    return [row[1] for row in widget.rows]


def column(widget: RunsTable, key: str) -> list:
    index = widget.row_columns.index(key)
    return [row[index] for row in widget.rows]


@pytest.fixture
def runs(fluent_uri):
    """Five runs of the current experiment, r0 oldest: r2's 'val loss' is NaN, r3 FAILED."""
    ids = {}
    for i in range(5):
        run = labtrack.start_run(run_name=f"r{i}")
        labtrack.log_params({"lr": i / 10, "model": "cnn" if i % 2 else "mlp"})
        labtrack.log_metric("acc", i / 5)
        labtrack.log_metric("val loss", math.nan if i == 2 else 1 - i / 5)
        labtrack.set_tag("team", "vision")
        labtrack.end_run("FAILED" if i == 3 else "FINISHED")
        ids[f"r{i}"] = run.run_id
        time.sleep(0.002)  # distinct start times: the default order is newest first
    return ids


@pytest.fixture
def table(runs):
    widget = RunsTable()
    yield widget
    widget.close()


def test_state_after_creation(runs, table):
    assert table.experiment_ids == ["0"] and table.experiment_names == {"0": "Default"}
    assert (table.error, table.loading, table.truncated, table.sort_keys) == ("", False, False, [])
    assert names(table) == ["r4", "r3", "r2", "r1", "r0"]  # newest first, as in MLflow
    # Before the user chooses: the metrics, then the params.
    assert table.columns == ["metrics.acc", "metrics.val loss", "params.lr", "params.model"]
    assert table.row_columns == [*ROW_PREFIX, *table.columns]
    r3 = table.rows[1]
    assert r3[:3] == [runs["r3"], "r3", "FAILED"]
    assert isinstance(r3[3], int) and r3[4] >= r3[3]
    assert r3[5:] == [0.6, pytest.approx(0.4), "0.3", "cnn"]
    assert column(table, "metrics.val loss")[2] is None  # NaN is not JSON
    # Then every column the runs have: user tags before system tags, no duplicate run name.
    available = table.available_columns
    assert available[:10] == [*ATTRIBUTE_COLUMNS, "metrics.acc", "metrics.val loss",
                              "params.lr", "params.model", "tags.team"]
    assert "tags.mlflow.user" in available and "tags.mlflow.runName" not in available
    assert all(c.startswith("tags.mlflow.") for c in available[10:])
    json.dumps(table.get_state(), allow_nan=False)  # every synced trait is strict JSON


def test_rows_are_compact_arrays(table):
    assert all(isinstance(row, list) and len(row) == len(table.row_columns)
               for row in table.rows)
    assert not any(isinstance(value, dict) for row in table.rows for value in row)


def test_infinities_are_null(fluent_uri):
    with labtrack.start_run(run_name="wild"):
        labtrack.log_metrics({"up": math.inf, "down": -math.inf, "fine": 1.5})
    widget = RunsTable()
    assert widget.rows[0][len(ROW_PREFIX):] == [None, 1.5, None]  # down, fine, up
    json.dumps(widget.rows, allow_nan=False)


def test_the_default_experiment_is_the_current_one(runs):
    experiment = labtrack.set_experiment("elsewhere")
    with labtrack.start_run(run_name="other"):
        labtrack.log_metric("rmse", 3.0)
    assert names(RunsTable()) == ["other"]
    both = RunsTable(experiment_ids=["0", experiment.experiment_id])
    assert len(both.rows) == 6
    assert both.experiment_names == {"0": "Default", experiment.experiment_id: "elsewhere"}
    assert names(RunsTable(experiment_ids="0")) == ["r4", "r3", "r2", "r1", "r0"]


def test_sorting_from_the_header(runs, table):
    browser = Browser(table)
    browser.update(order_by=["metrics.acc ASC"])
    assert names(table) == ["r0", "r1", "r2", "r3", "r4"]
    assert table.sort_keys == [["metrics.acc", True]]
    # Shift-click adds a key; a key with a space arrives quoted; NaN sorts after numbers.
    browser.update(order_by=["params.model DESC", "metrics.`val loss` DESC"])
    assert names(table) == ["r0", "r4", "r2", "r1", "r3"]
    assert table.sort_keys == [["params.model", False], ["metrics.val loss", False]]
    browser.update(order_by=["created ASC"])  # aliases come back under their column's name
    assert table.sort_keys == [["attributes.start_time", True]]
    assert names(table)[0] == "r0"
    assert any("rows" in state for state in browser.updates())
    browser.update(order_by=[])
    assert names(table) == ["r4", "r3", "r2", "r1", "r0"] and table.sort_keys == []


def test_filtering_and_errors_shown_in_the_widget(runs, table):
    browser = Browser(table)
    browser.update(filter_string="params.model = 'cnn' AND metrics.acc > 0.1")
    assert names(table) == ["r3", "r1"] and table.error == ""
    for bad in ("metrics.acc >", "metrics.acc > 1 OR params.lr = '0'", "bogus.x = 1"):
        browser.update(filter_string=bad)  # no exception reaches the comm
        assert table.filter_string == bad
        assert "filter" in table.error.lower() and names(table) == ["r3", "r1"]
        assert not table.loading
    browser.update(filter_string="attributes.status = 'FAILED'")
    assert names(table) == ["r3"] and table.error == ""
    browser.update(order_by=["metrics.nope SIDEWAYS"])
    assert "order_by" in table.error and table.sort_keys == []
    browser.update(order_by=["metrics.acc DESC"])
    assert table.error == "" and table.sort_keys == [["metrics.acc", False]]


def test_a_bad_filter_at_creation_is_shown_not_raised(runs):
    widget = RunsTable(filter_string="metrics.acc >>> 1", order_by=["metrics.acc DESC"])
    assert "Invalid filter" in widget.error and widget.rows == []
    Browser(widget).update(filter_string="metrics.acc >= 0.8")
    assert names(widget) == ["r4"] and widget.error == ""
    assert widget.sort_keys == [["metrics.acc", False]]


def test_choosing_columns_rebuilds_rows_without_searching_again(runs, table, monkeypatch):
    searches = []
    search_runs = table._client.search_runs
    monkeypatch.setattr(table._client, "search_runs",
                        lambda *a, **k: searches.append(a) or search_runs(*a, **k))
    browser = Browser(table)
    browser.update(columns=["tags.team", "attributes.user_id", "metrics.acc"])
    assert searches == []
    assert table.row_columns == [*ROW_PREFIX, "tags.team", "attributes.user_id", "metrics.acc"]
    assert column(table, "tags.team") == ["vision"] * 5
    assert column(table, "metrics.acc") == [0.8, 0.6, 0.4, 0.2, 0.0]
    assert [state for state in browser.updates() if "rows" in state]

    with labtrack.start_run(run_name="r5"):
        labtrack.log_metric("f1", 0.5)
    table.refresh()
    assert searches and names(table)[0] == "r5"
    assert table.columns == ["tags.team", "attributes.user_id", "metrics.acc"]  # kept
    assert "metrics.f1" in table.available_columns


def test_columns_set_in_python_are_checked(table):
    table.columns = ["metric.acc", "metrics.acc", "params.lr", "tag.team"]
    assert table.columns == ["metrics.acc", "params.lr", "tags.team"]
    assert table.row_columns[len(ROW_PREFIX):] == table.columns
    for bad in (["acc"], ["weights.w"], ["attributes.color"], ["metrics."], [3]):
        with pytest.raises(traitlets.TraitError):
            table.columns = bad
    widget = RunsTable(columns=["params.model"])
    assert widget.row_columns == [*ROW_PREFIX, "params.model"]


def test_selection_comes_back_to_python(runs, table):
    browser = Browser(table)
    browser.update(selected_run_ids=[runs["r3"], runs["r1"], runs["r3"]])  # shift-click
    assert table.selected_run_ids == [runs["r3"], runs["r1"]]
    selected = table.runs
    assert [run.info.run_name for run in selected] == ["r3", "r1"]
    assert selected[0].data.params == {"lr": "0.3", "model": "cnn"}
    # The selection outlives a filter that hides some of it.
    browser.update(filter_string="attributes.run_name = 'r3'")
    assert table.selected_run_ids == [runs["r3"], runs["r1"]]
    assert [run.info.run_name for run in table.runs] == ["r3", "r1"]
    # Python can select too, and the browser hears of it.
    browser.received.clear()
    table.selected_run_ids = [runs["r0"]]
    assert browser.updates() == [{"selected_run_ids": [runs["r0"]]}]
    browser.update(selected_run_ids=[])
    assert table.runs == []


def test_selected_runs_are_read_again(runs, table, fluent_uri):
    labtrack.set_experiment("elsewhere")
    with labtrack.start_run(run_name="far") as far:
        pass
    table.selected_run_ids = [far.run_id, "0" * 32, runs["r2"]]
    labtrack.TrackingClient(fluent_uri).set_tag(runs["r2"], "reviewed", "yes")
    got = table.runs
    assert [run.info.run_name for run in got] == ["far", "r2"]  # the unknown id is skipped
    assert got[1].data.tags["reviewed"] == "yes"


def test_refresh_command_searches_again(runs, table):
    browser = Browser(table)
    with labtrack.start_run(run_name="new"):
        labtrack.log_metric("acc", 0.99)
    assert browser.invoke("_refresh") == {"error": "", "count": 6}
    assert names(table)[0] == "new"
    states = browser.updates()
    assert states[0] == {"loading": True}
    [payload] = [s for s in states if "rows" in s]  # rows travel in one message
    assert payload["loading"] is False and len(payload["rows"]) == 6


def test_max_runs_and_truncation(runs):
    widget = RunsTable(max_runs=3)
    assert names(widget) == ["r4", "r3", "r2"] and widget.truncated
    Browser(widget).update(max_runs=5)
    assert len(widget.rows) == 5 and not widget.truncated
    with pytest.raises(traitlets.TraitError):
        widget.max_runs = 0


def test_an_empty_or_unknown_experiment(fluent_uri):
    empty = labtrack.create_experiment("empty")
    widget = RunsTable(experiment_ids=[empty])
    assert (widget.rows, widget.columns, widget.error) == ([], [], "")
    assert widget.available_columns == list(ATTRIBUTE_COLUMNS)
    unknown = RunsTable(experiment_ids=["424242"])
    assert "424242" in unknown.error and unknown.rows == []


def test_static_fallback_is_in_the_mime_bundle(runs, table):
    with labtrack.start_run(run_name="<b>bold</b>"):
        pass
    table.refresh()
    table.selected_run_ids = [runs["r1"]]
    data, _ = table._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data
    page = data["text/html"]
    assert page.startswith("<table class='labtrack-static'>")
    assert "labtrack runs of Default: 6, 1 selected" in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page and "<b>bold" not in page
    assert f"r1 ({runs['r1'][-8:]})" in page and "<td>✓</td>" in page
    assert "<th>metrics.acc</th>" in page and "<td>FAILED</td>" in page

    Browser(table).update(filter_string="metrics.acc >")
    data, _ = table._repr_mimebundle_()
    assert "labtrack-error" in data["text/html"] and "Invalid filter" in data["text/html"]


def _bulk_runs(tracking_uri: str, experiment_id: str, count: int) -> None:
    """``count`` finished runs with 2 params, 3 metrics and a tag each, written in one
    transaction into the store's tables (the public API commits once per run: ~10 s here)."""
    labtrack.TrackingClient(tracking_uri)  # the store exists, with its schema
    now = int(time.time() * 1000) - count * 1000
    ids = [uuid.uuid4().hex for _ in range(count)]
    with sqlite3.connect(config.sqlite_database_path(tracking_uri)) as conn:
        conn.executemany(
            "INSERT INTO runs (run_uuid, experiment_id, name, user_id, status, start_time, "
            "end_time, lifecycle_stage, artifact_uri) VALUES (?, ?, ?, 'bulk', 'FINISHED', ?, "
            "?, 'active', ?)",
            [(run_id, int(experiment_id), f"plant-{i:05d}", now + i * 1000, now + i * 1000 + 500,
              f"/tmp/{run_id}") for i, run_id in enumerate(ids)])
        conn.executemany(
            "INSERT INTO params (run_uuid, key, value) VALUES (?, ?, ?)",
            [(run_id, key, str(i % mod)) for i, run_id in enumerate(ids)
             for key, mod in (("depth", 7), ("window", 24))])
        conn.executemany(
            "INSERT INTO tags (run_uuid, key, value) VALUES (?, ?, ?)",
            [(run_id, key, value) for i, run_id in enumerate(ids)
             for key, value in (("mlflow.runName", f"plant-{i:05d}"), ("site", f"s{i % 40}"))])
        conn.executemany(
            "INSERT INTO latest_metrics (run_uuid, key, value, timestamp, step, point_count, "
            "last_timestamp, last_step) VALUES (?, ?, ?, 0, 0, 1, 0, 0)",
            [(run_id, key, value) for i, run_id in enumerate(ids)
             for key, value in (("mae", i / count), ("rmse", 1 + i / count),
                                ("mape", None if i % 10 == 0 else 0.1))])


def test_ten_thousand_runs_make_a_compact_payload(fluent_uri):
    _bulk_runs(fluent_uri, "0", 10_000)
    widget = RunsTable()
    browser = Browser(widget)
    assert len(widget.rows) == 10_000 and not widget.truncated and widget.error == ""
    assert widget.columns == ["metrics.mae", "metrics.mape", "metrics.rmse", "params.depth",
                              "params.window"]
    assert names(widget)[:2] == ["plant-09999", "plant-09998"]
    # One JSON list of arrays: about 130 bytes a run with 5 columns (dicts would be ~400).
    size = len(json.dumps(widget.rows, allow_nan=False, separators=(",", ":")))
    assert size < 10_000 * 150
    # Sorting all of them again is one search and one message carrying the rows.
    browser.update(order_by=["metrics.mae ASC"])
    assert names(widget)[:2] == ["plant-00000", "plant-00001"]
    assert sum("rows" in state for state in browser.updates()) == 1
    # A saved notebook shows the first rows, not ten thousand.
    data, _ = widget._repr_mimebundle_()
    assert data["text/html"].count("<tr>") == FALLBACK_ROWS + 2  # + header, + "… more"
    assert f"… {10_000 - FALLBACK_ROWS} more" in data["text/html"]


# -- the front end in a real Chromium (no Jupyter; see tests/widgets/browser.py) ------------

#: What the table's front end writes back.
WRITTEN = ("filter_string", "order_by", "columns", "selected_run_ids")


@pytest.fixture(scope="module")
def page():
    from tests.widgets.browser import browser_page

    with browser_page() as page:
        yield page


@pytest.fixture
def fresh(page):
    from tests.widgets.browser import errors

    page.reload()
    yield page
    assert errors(page) == []


def frames(page) -> None:
    page.evaluate("() => new Promise((r) => requestAnimationFrame(() => "
                  "requestAnimationFrame(r)))")


def show(page, widget: RunsTable) -> Browser:
    from tests.widgets.browser import mount

    browser = Browser(widget)
    mount(page, widget, "runs_table")
    page.evaluate("() => { window.handled = 0; }")
    return browser


def round_trip(page, browser: Browser) -> None:
    """Deliver what the page wrote (traits, commands) to the kernel as the comm would, then
    what the kernel sent since the last trip (updates, answers) back to the page."""
    from tests.widgets.browser import saved

    written = saved(page)
    changed = {name: written[name] for name in WRITTEN
               if name in written and written[name] != getattr(browser.widget, name)}
    if changed:
        browser.update(**changed)
    commands = page.evaluate("() => window.model.sent.slice(window.handled)")
    page.evaluate("() => { window.handled = window.model.sent.length; }")
    for command in commands:
        browser.widget._handle_custom_msg(command, [])
    for message in browser.received:
        if message.get("method") == "update":
            state = json.loads(json.dumps(message["state"]))
            page.evaluate("(state) => { for (const [k, v] of Object.entries(state)) "
                          "window.model.set(k, v); }", state)
        elif message.get("method") == "custom":
            page.evaluate("(content) => { for (const h of window.model.handlers.get("
                          "'msg:custom') ?? []) h(content, []); }", message["content"])
    browser.received.clear()
    frames(page)


ROWS = ".labtrack-rt-row:not([hidden])"


def shown_names(page) -> list[str]:
    return page.evaluate(f"""() => Array.from(document.querySelectorAll('{ROWS}'))
        .sort((a, b) => a.dataset.index - b.dataset.index)
        .map((row) => row.querySelector('.labtrack-rt-run-name').textContent)""")


@pytest.mark.slow
def test_the_browser_keeps_only_visible_rows_of_ten_thousand(fresh, fluent_uri):
    page = fresh
    _bulk_runs(fluent_uri, "0", 10_000)
    widget = RunsTable()
    browser = show(page, widget)
    assert page.inner_text(".labtrack-rt-count") == "10,000 runs"
    assert 10 < page.locator(ROWS).count() < 60  # a window of rows, not ten thousand
    assert shown_names(page)[0] == "plant-09999"
    head_top = page.locator(".labtrack-rt-head").bounding_box()["y"]
    page.eval_on_selector(".labtrack-rt-viewport", "(v) => { v.scrollTop = v.scrollHeight; }")
    page.wait_for_selector(f"{ROWS}[data-index='9999']")
    frames(page)
    assert shown_names(page)[-1] == "plant-00000"
    assert page.locator(ROWS).count() < 60
    assert page.locator(".labtrack-rt-head").bounding_box()["y"] == head_top  # sticky
    page.eval_on_selector(".labtrack-rt-viewport", "(v) => { v.scrollTop = 28 * 5000; }")
    page.wait_for_selector(f"{ROWS}[data-index='5000']")
    assert "plant-04999" in shown_names(page)
    # A new sort starts at the top of its rows.
    page.click(".labtrack-rt-th[data-column='metrics.mae']")
    round_trip(page, browser)
    assert page.eval_on_selector(".labtrack-rt-viewport", "(v) => v.scrollTop") == 0
    assert shown_names(page)[0] == "plant-09999"  # the highest mae
    assert widget.sort_keys == [["metrics.mae", False]]


@pytest.mark.slow
def test_each_browser_action_reaches_the_kernel(fresh, runs):
    page = fresh
    widget = RunsTable()
    browser = show(page, widget)
    assert shown_names(page) == ["r4", "r3", "r2", "r1", "r0"]
    assert page.get_attribute(f"{ROWS}[data-index='1'] .labtrack-status",
                              "data-status") == "FAILED"
    assert page.locator(".labtrack-rt-th[data-column='metrics.acc']").inner_text() \
        .split() == ["METRIC", "acc"]
    # Keys pressed in the table are not JupyterLab's notebook shortcuts.
    assert page.get_attribute(".labtrack-rt-viewport", "data-lm-suppress-shortcuts") == "true"

    # Sort: a header click, again to flip, shift-click to add a second key.
    page.click(".labtrack-rt-th[data-column='metrics.acc']")
    round_trip(page, browser)
    assert widget.order_by == ["metrics.acc DESC"]
    page.click(".labtrack-rt-th[data-column='metrics.acc']")
    round_trip(page, browser)
    assert widget.sort_keys == [["metrics.acc", True]]
    assert shown_names(page) == ["r0", "r1", "r2", "r3", "r4"]
    assert page.get_attribute(".labtrack-rt-th[data-column='metrics.acc']",
                              "aria-sort") == "ascending"
    page.click(".labtrack-rt-th[data-column='metrics.val loss']", modifiers=["Shift"])
    round_trip(page, browser)
    assert widget.order_by == ["metrics.acc ASC", "metrics.`val loss` DESC"]
    assert widget.sort_keys == [["metrics.acc", True], ["metrics.val loss", False]]
    page.click(".labtrack-rt-th[data-column='metrics.acc']")  # a plain click: one key again
    round_trip(page, browser)
    assert widget.sort_keys == [["metrics.acc", False]]

    # Filter: Enter applies; a bad filter is shown, and the box says which input is wrong.
    page.fill(".labtrack-rt-filter-input", "params.model = 'cnn'")
    page.press(".labtrack-rt-filter-input", "Enter")
    round_trip(page, browser)
    assert widget.filter_string == "params.model = 'cnn'"
    assert shown_names(page) == ["r3", "r1"]
    assert page.inner_text(".labtrack-rt-count") == "2 runs"
    page.fill(".labtrack-rt-filter-input", "params.model = ")
    page.press(".labtrack-rt-filter-input", "Enter")
    round_trip(page, browser)
    assert "Invalid filter" in page.inner_text(".labtrack-runs .labtrack-error")
    assert page.locator(".labtrack-rt-filter.labtrack-rt-invalid").count() == 1
    page.click(".labtrack-rt-filter .labtrack-rt-icon")  # clear the filter
    round_trip(page, browser)
    assert widget.filter_string == "" and widget.error == ""
    assert not page.locator(".labtrack-runs .labtrack-error").is_visible()
    assert len(shown_names(page)) == 5

    # Completion of column keys while typing, quoted when the key needs it.
    page.fill(".labtrack-rt-filter-input", "")
    page.type(".labtrack-rt-filter-input", "val")
    assert page.locator(".labtrack-rt-suggest:visible li").all_inner_texts() == [
        "metrics.val loss"]
    page.press(".labtrack-rt-filter-input", "Tab")
    assert page.input_value(".labtrack-rt-filter-input") == "metrics.`val loss` "
    page.type(".labtrack-rt-filter-input", "< 0.5")
    page.press(".labtrack-rt-filter-input", "Enter")
    round_trip(page, browser)
    assert sorted(shown_names(page)) == ["r3", "r4"]
    page.click(".labtrack-rt-filter .labtrack-rt-icon")
    round_trip(page, browser)

    # Select: click, shift-click a range, ctrl-click to toggle, a checkbox adds one.
    page.click(f"{ROWS}[data-index='0'] .labtrack-rt-run-name")
    page.click(f"{ROWS}[data-index='2'] .labtrack-rt-run-name", modifiers=["Shift"])
    round_trip(page, browser)
    order = shown_names(page)
    assert [run.info.run_name for run in widget.runs] == order[:3]
    page.click(f"{ROWS}[data-index='1'] .labtrack-rt-run-name", modifiers=["Control"])
    page.click(f"{ROWS}[data-index='4'] input[type=checkbox]")
    round_trip(page, browser)
    assert [run.info.run_name for run in widget.runs] == [order[0], order[2], order[4]]
    assert page.inner_text(".labtrack-rt-selection").startswith("3 selected")
    assert page.locator(".labtrack-rt-row.labtrack-rt-selected").count() == 3
    page.click(".labtrack-rt-head input[type=checkbox]")  # select all
    round_trip(page, browser)
    assert len(widget.selected_run_ids) == 5
    page.focus(".labtrack-rt-viewport")
    page.keyboard.press("Escape")  # none
    page.keyboard.press("End")
    page.keyboard.press("Home")
    page.keyboard.press("Shift+ArrowDown")
    round_trip(page, browser)
    assert [run.info.run_name for run in widget.runs] == order[:2]
    # The kernel selecting reaches the page too.
    widget.selected_run_ids = [runs["r2"]]
    round_trip(page, browser)
    assert page.inner_text(".labtrack-rt-selection").startswith("1 selected")

    # Columns: the chooser adds and removes; a header's × hides its column.
    page.click("text=Columns")
    page.click(".labtrack-rt-option:has-text('team') input")
    page.click(".labtrack-rt-option[title='params.lr'] input")
    round_trip(page, browser)
    assert widget.columns == ["metrics.acc", "metrics.val loss", "params.model", "tags.team"]
    assert page.locator(".labtrack-rt-th[data-column='tags.team']").count() == 1
    assert page.locator(".labtrack-rt-th[data-column='params.lr']").count() == 0
    page.keyboard.press("Escape")
    page.hover(".labtrack-rt-th[data-column='metrics.val loss']")
    page.click(".labtrack-rt-th[data-column='metrics.val loss'] .labtrack-rt-hide")
    round_trip(page, browser)
    assert widget.columns == ["metrics.acc", "params.model", "tags.team"]
    assert page.eval_on_selector(
        f"{ROWS}[data-index='0']", "(row) => row.children.length") == 5 + 3

    # Refresh: a command to the kernel, which searches again.
    with labtrack.start_run(run_name="late"):
        pass
    page.click(".labtrack-rt-button[title='Search again']")
    round_trip(page, browser)
    assert "late" in shown_names(page)
    assert page.inner_text(".labtrack-rt-count") == "6 runs"
