"""The notebooks a newcomer opens first, run in a real JupyterLab in Chromium: the widgets
draw, and the registry's Approve button takes a version to Production."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat

from labtrack import TrackingClient
from tests.browser.conftest import canvas_ink, open_and_run_all, screenshot

NOTEBOOKS = Path(__file__).parents[2] / "notebooks"


def test_quickstart_shows_live_charts_a_runs_table_and_a_comparison(lab, page):
    shutil.copy(NOTEBOOKS / "quickstart.ipynb", lab.root / "quickstart.ipynb")
    open_and_run_all(page, lab, "quickstart.ipynb", timeout_s=300)

    page.wait_for_function(
        "() => document.querySelectorAll('.labtrack-liverun').length === 3 && Array.from("
        "document.querySelectorAll('.labtrack-liverun .labtrack-status')).every("
        "s => s.dataset.status === 'FINISHED')", timeout=60_000)
    assert canvas_ink(page, ".labtrack-liverun .labtrack-chart") > 500

    table = page.wait_for_selector(".labtrack-runs", timeout=60_000)
    page.wait_for_function(
        "() => document.querySelectorAll('.labtrack-runs .labtrack-rt-row').length === 5",
        timeout=60_000)
    names = table.inner_text()
    # The filter keeps the runs with an alpha: the baseline and the sweep's children.
    assert all(f"alpha={alpha}" in names for alpha in ("1e-05", "0.0001", "0.001", "0.01"))
    assert "sgd-baseline" in names and "alpha-sweep" not in names

    chart = page.wait_for_selector(".labtrack-metric-chart", timeout=60_000)
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('.labtrack-metric-chart .labtrack-chart'))"
        ".some(c => c.querySelector('canvas'))", timeout=60_000)
    assert canvas_ink(page, ".labtrack-metric-chart .labtrack-chart") > 500
    assert "val_accuracy" in chart.inner_text()
    screenshot(table, "quickstart_runs_table")
    screenshot(chart, "quickstart_compare")


def test_registry_notebook_approves_with_the_button(lab, page):
    notebook = nbformat.read(NOTEBOOKS / "registry.ipynb", as_version=4)
    # Leave the approval to the button: drop the cell that approves from code.
    notebook.cells = [cell for cell in notebook.cells
                      if "requests.approve(" not in cell.source
                      and "approves from code" not in cell.source]
    nbformat.write(notebook, lab.root / "registry.ipynb")
    open_and_run_all(page, lab, "registry.ipynb")

    browser = page.wait_for_selector(".labtrack-registry-browser", timeout=60_000)
    page.wait_for_selector(".labtrack-registry-browser :text('churn-classifier')",
                           timeout=60_000)
    screenshot(browser, "registry_browser")

    requests = page.wait_for_selector(".labtrack-transition-requests", timeout=60_000)
    approve = requests.wait_for_selector("button:has-text('Approve')", timeout=60_000)
    requests.query_selector("input[aria-label^='Comment on request']").fill(
        "checked the validation report")
    requests.query_selector("label:has-text('Archive current Production versions') input"
                            ).check()
    screenshot(requests, "transition_requests")
    approve.click()
    page.wait_for_function(
        "() => !document.querySelector('.labtrack-transition-requests button') || "
        "!Array.from(document.querySelectorAll('.labtrack-transition-requests button'))"
        ".some(b => b.textContent === 'Approve')", timeout=60_000)

    client = TrackingClient(str(lab.store))
    stages = {v.version: str(v.current_stage)
              for v in client.search_model_versions("name = 'churn-classifier'")}
    assert stages == {"1": "Archived", "2": "Production"}
    approved = [a for a in client.get_activities("churn-classifier")
                if str(a.activity_type) == "APPROVED_REQUEST"]
    assert [a.comment for a in approved] == ["checked the validation report"]
    assert "Approved" in requests.inner_text()
