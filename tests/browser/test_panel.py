"""The JupyterLab side panel in a real JupyterLab (served under a non-root base_url) and a
real Chromium: runs with the active notebook's first, run details, comparison charts, the
registry's models table and model page, approving a request, and readable errors.

The store is seeded through labtrack's Python API. Registry governance needs two people: ann
creates the models and asks for the transitions; the Jupyter server's user (the registry
admin of a single-user Jupyter) approves them in the panel. Screenshots of every view go to
test-output/screenshots/panel_*.png.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest

import labtrack
from labtrack.client.run_context import current_user
from labtrack.entities import Metric, Param
from labtrack.services.permissions import RegistrySettings
from labtrack.services.registry import RegistryService
from tests.browser.conftest import (
    TOKEN,
    Lab,
    launch_lab,
    screenshot,
    write_notebook,
)

BASE_URL = "/jl/"
NOTEBOOK = "analysis.ipynb"
PANEL_TAB = ".jp-SideBar .lm-TabBar-tab[data-id='labtrack-panel']"
PANEL = "#labtrack-panel"
REQUESTER = "ann"
# Two lines drawn in one chart take the first two colours of the shared palette
# (widgets/lib/colors.ts).
FIRST_COLORS = [(0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E)]


def seed(lab: Lab) -> dict[str, str]:
    """Two experiments; in "forecasting" two runs of the notebook and a newer script run;
    the registry's "demand-forecast" (v1 Production, v2 Staging, v3 None, alias champion on
    v1, ann asks for v3 in Production) and "churn" (v1, ann asks for Staging)."""
    client = labtrack.TrackingClient(str(lab.store))
    notebook_file = str(lab.root / NOTEBOOK)
    forecasting = client.create_experiment("forecasting")
    other = client.create_experiment("other-team")
    ids = {}
    start = 1_700_000_000_000
    for i, (name, lr) in enumerate([("nb-run-1", "0.1"), ("nb-run-2", "0.01")]):
        run = client.create_run(forecasting, start_time=start + i * 60_000, run_name=name, tags={
            "labtrack.notebook.path": notebook_file, "mlflow.source.name": notebook_file,
            "mlflow.source.type": "NOTEBOOK", "team": "forecasting"})
        run_id = run.info.run_id
        decay = 20 if i == 0 else 60
        client.log_batch(run_id, params=[Param("lr", lr), Param("depth", str(4 + 2 * i))],
                         metrics=[Metric("loss", 2 * math.exp(-step / decay) + 0.05 * i,
                                         start + i * 60_000 + step * 1000, step)
                                  for step in range(200)]
                         + [Metric("rmse", 1.5 - 0.3 * i, start + i * 60_000, 199)])
        client.set_terminated(run_id, end_time=start + i * 60_000 + 200_000)
        ids[name] = run_id
    snapshot = lab.root / ".snapshot.ipynb"
    write_notebook(snapshot, ["import labtrack", "labtrack.log_metric('loss', 0.1)"])
    client.log_artifact(ids["nb-run-2"], snapshot, "notebook")
    client.log_text(ids["nb-run-2"], "# In[1]:\nimport labtrack\n", "notebook/executed_cells.py")
    client.log_text(ids["nb-run-2"], "labtrack.log_metric('loss', 0.1)\n", "notebook/cell.py")
    client.log_dict(ids["nb-run-2"], {"python": "3.11", "packages": {"numpy": "2.4"}},
                    "notebook/environment.json")
    client.log_dict(ids["nb-run-2"], {"features": ["temp", "load"]}, "config.json")
    snapshot.unlink()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure = plt.figure(figsize=(3, 2))
    figure.gca().plot([0, 1, 2], [2, 1, 0.5])
    client.log_figure(ids["nb-run-2"], figure, "plots/residuals.png")
    plt.close(figure)

    script = client.create_run(forecasting, start_time=start + 10 * 60_000, run_name="script-run",
                               tags={"mlflow.source.name": "/srv/train.py"})
    client.log_batch(script.info.run_id, params=[Param("lr", "0.5")],
                     metrics=[Metric("loss", 0.7, start + 10 * 60_000, 0)])
    client.set_terminated(script.info.run_id, end_time=start + 11 * 60_000)
    ids["script-run"] = script.info.run_id
    elsewhere = client.create_run(other, start_time=start, run_name="other-team-run")
    client.set_terminated(elsewhere.info.run_id, end_time=start + 5_000)

    ann = RegistryService(client.service, RegistrySettings())
    for name, runs in [("demand-forecast", ["nb-run-1", "nb-run-1", "nb-run-2"]),
                       ("churn", ["script-run"])]:
        ann.create_registered_model(name, description=f"{name} model", user=REQUESTER)
        for run_name in runs:
            info = client.get_run(ids[run_name]).info
            ann.create_model_version(name, f"{info.artifact_uri}/model", info.run_id,
                                     user=REQUESTER)
    ann.transition_stage("demand-forecast", "1", "Production", user=REQUESTER)
    ann.transition_stage("demand-forecast", "2", "Staging", user=REQUESTER)
    ann.set_alias("demand-forecast", "champion", "1", user=REQUESTER)
    ann.create_transition_request("demand-forecast", "3", "Production", "beats v1 by 4%",
                                  user=REQUESTER)
    ann.create_transition_request("churn", "1", "Staging", user=REQUESTER)
    client.flush()
    return ids


def quiet_lab_config(base: Path) -> None:
    """No "get Jupyter news?" toast over the screenshots."""
    labconfig = base / "config" / "labconfig"
    labconfig.mkdir(parents=True)
    (labconfig / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))


@pytest.fixture(scope="module")
def panel_lab(tmp_path_factory) -> Iterator[tuple[Lab, dict[str, str]]]:
    base = tmp_path_factory.mktemp("panel")
    quiet_lab_config(base)
    # window.jupyterapp lets a test run a notebook's cells with JupyterLab's own command.
    with launch_lab(base, base_url=BASE_URL,
                    extra_args=["--LabApp.expose_app_in_browser=True"]) as lab:
        write_notebook(lab.root / NOTEBOOK, ["print('analysis')"])
        yield lab, seed(lab)


def open_lab(page, lab: Lab, path: str = "") -> None:
    """JupyterLab with a fresh layout (a notebook open when ``path`` is given)."""
    tree = f"/tree/{path}" if path else ""
    page.goto(f"{lab.url}/lab{tree}?reset&token={TOKEN}")
    page.wait_for_selector(PANEL_TAB, timeout=120_000)


def run_all_cells(page) -> None:
    """Run the current notebook's cells with JupyterLab's command, once its kernel is ready
    (earlier, Lab asks which kernel to start), and wait until every cell ran."""
    page.wait_for_function(
        "() => window.jupyterapp?.shell.currentWidget?.sessionContext !== undefined",
        timeout=120_000)
    page.evaluate("""async () => {
        const app = window.jupyterapp;
        await app.shell.currentWidget.sessionContext.ready;
        void app.commands.execute('notebook:run-all-cells');
    }""")
    page.wait_for_function(
        """() => {
            const prompts = Array.from(document.querySelectorAll(
                '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputArea-prompt'));
            return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
        }""",
        timeout=240_000,
    )


def open_panel(page, tab: str = "runs"):
    """Show the side panel's ``tab`` (runs, models, requests); returns that tab's view."""
    if not page.is_visible(f"{PANEL} .jp-Labtrack-tabs"):
        page.click(PANEL_TAB)
    page.click(f"{PANEL} .jp-Labtrack-tab[data-tab='{tab}']")
    page.wait_for_selector(f"{PANEL} .jp-Labtrack-server:has-text('{current_user()}')")
    return page.locator(f"{PANEL} .jp-Labtrack-{tab}")


def cell_texts(row) -> list[str]:
    return [text.strip() for text in row.locator("td").all_inner_texts()]


def color_pixels(page, selector: str, colors) -> list[int]:
    """For each colour, how many pixels of the canvas under ``selector`` are close to it."""
    return page.evaluate(
        """([selector, colors]) => {
            const canvas = document.querySelector(selector + ' canvas');
            const data = canvas.getContext('2d').getImageData(
                0, 0, canvas.width, canvas.height).data;
            return colors.map(([r, g, b]) => {
                let n = 0;
                for (let i = 0; i < data.length; i += 4) {
                    if (data[i + 3] > 200 && Math.abs(data[i] - r) < 40 &&
                        Math.abs(data[i + 1] - g) < 40 && Math.abs(data[i + 2] - b) < 40) n++;
                }
                return n;
            });
        }""",
        [selector, colors],
    )


# -- runs --------------------------------------------------------------------------------------


def test_the_active_notebooks_runs_are_listed_first(panel_lab, page):
    lab, ids = panel_lab
    open_lab(page, lab, NOTEBOOK)
    page.wait_for_selector(".jp-Notebook")
    panel = open_panel(page, "runs")
    section = panel.locator(".jp-Labtrack-section").first
    section.wait_for()
    assert section.inner_text().startswith(f"This notebook · {NOTEBOOK}")
    rows = panel.locator("tr.jp-Labtrack-run")
    page.wait_for_function(
        f"() => document.querySelectorAll('{PANEL} tr.jp-Labtrack-run').length === 4")
    names = [row.locator(".jp-Labtrack-name a").inner_text() for row in rows.all()]
    # The notebook's runs (newest first) before the newer script run and the other team's.
    assert names == ["nb-run-2", "nb-run-1", "script-run", "other-team-run"]
    assert rows.nth(0).get_attribute("class").split() == ["jp-Labtrack-run", "jp-mod-notebook"]
    assert panel.locator(".jp-Labtrack-section").nth(1).inner_text().startswith("Other runs")
    # Status, start and duration with the name; then the chosen metric and param columns.
    headers = panel.locator(".jp-Labtrack-runs-table thead th").all_inner_texts()
    assert headers == ["", "Run", "loss", "rmse", "depth"]
    first = rows.nth(0)
    assert first.locator(".jp-Labtrack-status").get_attribute("title") == "FINISHED"
    assert first.locator(".jp-Labtrack-duration").inner_text() == "3m 20s"
    assert "2023" in first.locator(".jp-Labtrack-start").inner_text()  # long ago: the date
    assert cell_texts(first)[2:] == ["0.12255", "1.2", "6"]
    screenshot(page, "panel_runs_notebook_first")


def test_a_run_of_the_notebook_itself_joins_its_list(panel_lab, page):
    lab, _ = panel_lab
    write_notebook(lab.root / "train.ipynb", [
        "%load_ext labtrack",
        "%%mlrun -e forecasting -n from-the-notebook --no-widget\n"
        "import labtrack\n"
        "labtrack.log_metric('loss', 0.25)",
    ])
    open_lab(page, lab, "train.ipynb")
    run_all_cells(page)
    panel = open_panel(page, "runs")
    page.wait_for_function(
        f"""() => {{
            const rows = document.querySelectorAll('{PANEL} tr.jp-Labtrack-run.jp-mod-notebook');
            return rows.length === 1 && rows[0].innerText.includes('from-the-notebook');
        }}""", timeout=60_000)
    assert panel.locator(".jp-Labtrack-section").first.inner_text().startswith(
        "This notebook · train.ipynb")
    screenshot(page, "panel_runs_live_notebook")


def test_the_filter_uses_the_search_grammar_and_shows_errors_in_place(panel_lab, page):
    lab, _ = panel_lab
    open_lab(page, lab)
    panel = open_panel(page, "runs")
    page.wait_for_selector(f"{PANEL} tr.jp-Labtrack-run")
    panel.locator(".jp-Labtrack-filter").fill("params.lr = '0.5'")
    panel.locator(".jp-Labtrack-filter").press("Enter")
    page.wait_for_function(
        f"() => document.querySelectorAll('{PANEL} tr.jp-Labtrack-run').length === 1")
    assert panel.locator("tr.jp-Labtrack-run .jp-Labtrack-name a").inner_text() == "script-run"

    panel.locator(".jp-Labtrack-filter").fill("metrics.loss <")
    panel.locator(".jp-Labtrack-filter").press("Enter")
    error = panel.locator(".jp-Labtrack-error-slot .jp-mod-error")
    error.wait_for()
    assert error.inner_text() == "Invalid filter string 'metrics.loss <': it ends too early."
    screenshot(page, "panel_runs_filter_error")


def test_comparing_two_runs_draws_both_lines(panel_lab, page):
    lab, ids = panel_lab
    open_lab(page, lab)
    panel = open_panel(page, "runs")
    for name in ("nb-run-1", "nb-run-2"):
        panel.locator(f"tr[data-run-id='{ids[name]}'] input[type=checkbox]").check()
    compare = panel.locator(".jp-Labtrack-compare")
    assert compare.inner_text() == "Compare (2)"
    compare.click()
    view = page.locator(".jp-Labtrack-compare-view")
    chart = ".jp-Labtrack-compare-view .jp-Labtrack-chart-box[data-key='loss']"
    page.wait_for_selector(f"{chart} canvas", timeout=30_000)
    page.wait_for_function(
        "(chart) => document.querySelectorAll(chart + ' .u-legend .u-series').length === 3",
        arg=chart)
    legend = page.locator(f"{chart} .u-legend .u-series .u-label").all_inner_texts()
    assert legend[1:] == ["nb-run-2", "nb-run-1"]  # as the panel lists them
    first, second = color_pixels(page, chart, FIRST_COLORS)
    assert first > 100 and second > 100, (first, second)
    # Parallel coordinates: one line per run; the diff table marks the params that differ.
    assert view.locator(".jp-Labtrack-parallel-line").count() == 2
    assert "jp-mod-differs" in view.locator("tr[data-key='params.lr']").get_attribute("class")
    assert view.locator("tr[data-key='params.lr'] td").all_inner_texts() == ["0.01", "0.1"]
    screenshot(page, "panel_compare")

    # EMA smoothing and log scale redraw from the same data.
    view.locator(".labtrack-control:has-text('log scale') input").check()
    view.locator(".labtrack-control:has-text('x axis') select").select_option("relative_time")
    page.wait_for_function(
        "(chart) => document.querySelector(chart).innerText.includes('seconds since run start')",
        arg=chart)
    screenshot(page, "panel_compare_log_relative_time")


def test_run_details_show_params_metrics_artifacts_and_the_notebook(panel_lab, page):
    lab, ids = panel_lab
    open_lab(page, lab)
    panel = open_panel(page, "runs")
    panel.locator(f"tr[data-run-id='{ids['nb-run-2']}'] .jp-Labtrack-name a").click()
    details = page.locator(".jp-Labtrack-run-details")
    details.locator(".jp-Labtrack-params").wait_for()
    assert details.locator(".jp-Labtrack-params td").all_inner_texts() == ["6", "0.01"]
    details.locator(".jp-Labtrack-chart-box[data-key='loss'] canvas").wait_for()
    link = details.locator(".jp-Labtrack-notebook-link")
    assert link.inner_text() == f"Open {NOTEBOOK}"
    # The captured notebook is previewed first, cells drawn readably.
    preview = details.locator(".jp-Labtrack-preview-body[data-kind='notebook']")
    preview.wait_for(timeout=30_000)
    assert preview.locator(".jp-Labtrack-nb-code").count() == 2
    assert "labtrack.log_metric('loss', 0.1)" in preview.inner_text()
    screenshot(page, "panel_run_details")

    details.locator(".jp-Labtrack-tree a:has-text('environment.json')").click()
    json_preview = details.locator(".jp-Labtrack-preview-body[data-kind='json'] pre")
    json_preview.wait_for()
    assert json.loads(json_preview.inner_text())["packages"] == {"numpy": "2.4"}

    details.locator(".jp-Labtrack-tree a:has-text('plots')").click()
    details.locator(".jp-Labtrack-tree a:has-text('residuals.png')").click()
    image = details.locator(".jp-Labtrack-preview-body[data-kind='image'] img")
    image.wait_for()
    page.wait_for_function(
        "(img) => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    screenshot(page, "panel_run_details_image")

    link.click()
    page.wait_for_selector(f".lm-DockPanel-tabBar .lm-TabBar-tab:has-text('{NOTEBOOK}')")
    page.wait_for_selector(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")


# -- registry ------------------------------------------------------------------------------


def test_the_models_table_shows_versions_per_stage(panel_lab, page):
    lab, _ = panel_lab
    open_lab(page, lab)
    panel = open_panel(page, "models")
    page.wait_for_selector(f"{PANEL} tr.jp-Labtrack-model")
    headers = panel.locator(".jp-Labtrack-models-table thead th").all_inner_texts()
    assert [h.replace("\n", " ") for h in headers] == [
        "Name", "Latest Version", "Staging", "Production"]
    rows = {row.get_attribute("data-model"): cell_texts(row)
            for row in panel.locator("tr.jp-Labtrack-model").all()}
    assert rows == {
        "churn": ["churn", "v1", "—", "—"],
        "demand-forecast": ["demand-forecast\n@champion→v1", "v3", "v2", "v1"],
    }
    screenshot(page, "panel_models")


def test_a_model_page_lists_its_versions_and_history(panel_lab, page):
    lab, ids = panel_lab
    open_lab(page, lab)
    panel = open_panel(page, "models")
    panel.locator("tr[data-model='demand-forecast'] a").click()
    model_page = page.locator(".jp-Labtrack-model-page")
    model_page.locator(".jp-Labtrack-versions").wait_for()
    headers = model_page.locator(".jp-Labtrack-versions thead th").all_inner_texts()
    assert headers[:5] == ["Version", "Registered at", "Created by", "Stage", "Source run"]
    versions = [cell_texts(row) for row in model_page.locator("tr.jp-Labtrack-version").all()]
    assert [v[0] for v in versions] == ["v3", "v2", "v1"]
    assert [v[2] for v in versions] == [REQUESTER] * 3
    assert [v[3] for v in versions] == ["None", "Staging", "Production"]
    assert all(v[1] for v in versions)  # a registration time
    assert versions[0][4] == ids["nb-run-2"][-8:]
    assert model_page.locator(".jp-Labtrack-description p").inner_text() == (
        "demand-forecast model")
    assert model_page.locator(".jp-Labtrack-alias").all_inner_texts() == ["@champion → v1"]
    history = model_page.locator(".jp-Labtrack-event .jp-Labtrack-event-text").all_inner_texts()
    assert history[0] == "ann requested moving version 3 from None to Production"
    assert "ann registered version 1" in history
    screenshot(page, "panel_model_page")

    # The admin edits the description in place.
    model_page.locator("button:has-text('Edit description')").click()
    model_page.locator(".jp-Labtrack-description-input").fill("Hourly demand per plant.")
    model_page.locator(".jp-Labtrack-description button:has-text('Save')").click()
    model_page.locator(".jp-Labtrack-description p:has-text('Hourly demand per plant.')").wait_for()


def test_approving_a_request_moves_the_stage_and_records_it(panel_lab, page):
    lab, _ = panel_lab
    open_lab(page, lab)
    tab = page.locator(PANEL_TAB)
    page.wait_for_function(
        f"() => document.querySelector(\"{PANEL_TAB}\").dataset.labtrackPending === '2'")
    panel = open_panel(page, "requests")
    card = panel.locator(".jp-Labtrack-request[data-model='demand-forecast']")
    card.wait_for()
    assert "beats v1 by 4%" in card.inner_text()
    assert "requested by ann" in card.inner_text()
    # Only the actions the server lists for this user: the admin approves or rejects
    # (cancelling is the requester's).
    assert card.locator("button.jp-Labtrack-action").all_inner_texts() == ["Approve", "Reject"]
    screenshot(page, "panel_requests")

    card.locator(".jp-Labtrack-comment").fill("ship it")
    card.locator("button[data-action='APPROVE_TRANSITION_REQUEST']").click()
    notice = panel.locator(".jp-mod-ok")
    notice.wait_for()
    assert notice.inner_text() == "Approved: demand-forecast version 3 → Production"
    page.wait_for_function(
        f"() => document.querySelector(\"{PANEL_TAB}\").dataset.labtrackPending === '1'")
    assert tab.get_attribute("data-labtrack-pending") == "1"
    assert panel.locator(".jp-Labtrack-request").count() == 1
    screenshot(page, "panel_requests_after_approval")

    # The registry moved: v3 in Production (v1 archived), and the history says who did it.
    client = labtrack.TrackingClient(str(lab.store))
    assert client.get_model_version("demand-forecast", "3").current_stage == "Production"
    assert client.get_model_version("demand-forecast", "1").current_stage == "Archived"
    panel = open_panel(page, "models")
    page.wait_for_function(
        f"""() => Array.from(document.querySelectorAll(
            "{PANEL} tr[data-model='demand-forecast'] td")).map(td => td.innerText)[3] === 'v3'""")
    panel.locator("tr[data-model='demand-forecast'] a").click()
    model_page = page.locator(".jp-Labtrack-model-page")
    model_page.locator(".jp-Labtrack-event").first.wait_for()
    newest = model_page.locator(".jp-Labtrack-event").all()[:2]
    assert {event.get_attribute("data-type") for event in newest} == {
        "APPROVED_REQUEST", "SYSTEM_TRANSITION"}
    approved = model_page.locator(".jp-Labtrack-event[data-type='APPROVED_REQUEST']")
    assert approved.locator(".jp-Labtrack-event-text").inner_text() == (
        f"{current_user()} approved moving version 3 from None to Production")
    assert approved.locator(".jp-Labtrack-quote").inner_text() == "ship it"
    archived = model_page.locator(".jp-Labtrack-event[data-type='SYSTEM_TRANSITION']")
    assert archived.locator(".jp-Labtrack-event-text").inner_text().startswith(
        "version 1 was moved from Production to Archived")
    stages = {row.get_attribute("data-version"): cell_texts(row)[3]
              for row in model_page.locator("tr.jp-Labtrack-version").all()}
    assert stages == {"3": "Production", "2": "Staging", "1": "Archived"}
    screenshot(page, "panel_model_page_after_approval")


def test_a_model_page_comments_and_moves_a_version(panel_lab, page):
    lab, _ = panel_lab
    open_lab(page, lab)
    panel = open_panel(page, "models")
    panel.locator("tr[data-model='churn'] a").click()
    model_page = page.locator(".jp-Labtrack-model-page")
    row = model_page.locator("tr.jp-Labtrack-version[data-version='1']")
    row.wait_for()
    # The registry admin may ask for a move, make one, and comment.
    assert row.locator("button").all_inner_texts() == ["Request…", "Move…", "Comment…"]

    row.locator("button:has-text('Comment…')").click()
    form = model_page.locator(".jp-Labtrack-form[data-form='comment']")
    form.locator("textarea").fill("validated on March data")
    form.locator("button:has-text('Comment')").click()
    model_page.locator(".jp-mod-ok:has-text('Commented on version 1.')").wait_for()
    comment = model_page.locator(".jp-Labtrack-event[data-type='NEW_COMMENT']")
    assert comment.locator(".jp-Labtrack-event-text").inner_text() == (
        f"{current_user()} commented on version 1")
    assert comment.locator(".jp-Labtrack-quote").inner_text() == "validated on March data"

    model_page.locator("tr.jp-Labtrack-version[data-version='1'] button:has-text('Move…')").click()
    form = model_page.locator(".jp-Labtrack-form[data-form='move']")
    assert form.locator("option").all_inner_texts() == ["Staging", "Production", "Archived"]
    form.locator("select").select_option("Production")
    form.locator("textarea").fill("hotfix")
    form.locator("button:has-text('Move')").click()
    model_page.locator(".jp-mod-ok:has-text('Moved version 1 to Production')").wait_for()
    assert cell_texts(model_page.locator("tr.jp-Labtrack-version[data-version='1']"))[3] == (
        "Production")
    moved = model_page.locator(".jp-Labtrack-event[data-type='APPLIED_TRANSITION']").first
    assert moved.locator(".jp-Labtrack-event-text").inner_text() == (
        f"{current_user()} moved version 1 from None to Production")
    client = labtrack.TrackingClient(str(lab.store))
    assert client.get_model_version("churn", "1").current_stage == "Production"
    screenshot(page, "panel_model_page_actions")


# -- the server side missing ---------------------------------------------------------------


def test_a_missing_server_extension_is_explained_in_the_panel(tmp_path: Path, page):
    with launch_lab(tmp_path, extra_args=["--ServerApp.jpserver_extensions=labtrack=False"]) as lab:
        open_lab(page, lab)
        page.click(PANEL_TAB)
        banner = page.locator(f"{PANEL} .jp-Labtrack-banner[data-state='missing']")
        banner.wait_for(timeout=60_000)
        assert "labtrack's server extension is not running on this Jupyter server" in (
            banner.inner_text())
        assert "jupyter server extension list" in banner.inner_text()
        # Never a blank panel: each tab says it is waiting for the server.
        assert page.locator(f"{PANEL} .jp-Labtrack-runs .jp-Labtrack-empty").inner_text() == (
            "Waiting for the server…")
        screenshot(page, "panel_server_extension_missing")
