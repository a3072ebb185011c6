"""The live run widget in a real JupyterLab, in Chromium."""

from __future__ import annotations

from tests.browser.conftest import canvas_ink, open_and_run_all, screenshot, write_notebook


def test_a_mlrun_cell_draws_its_live_chart(lab, page):
    write_notebook(lab.root / "live.ipynb", [
        "%load_ext labtrack",
        "%%mlrun -n browser-check\n"
        "import labtrack, math\n"
        "for step in range(500):\n"
        "    labtrack.log_metric('loss', math.exp(-step / 100), step=step)\n"
        "    labtrack.log_metric('accuracy', 1 - math.exp(-step / 80), step=step)",
    ])
    open_and_run_all(page, lab, "live.ipynb")
    widget = page.wait_for_selector(".labtrack-liverun", timeout=60_000)
    page.wait_for_selector(".labtrack-status[data-status='FINISHED']", timeout=60_000)
    page.wait_for_function(
        "() => document.querySelectorAll('.labtrack-liverun .labtrack-chart').length === 2"
        " && Array.from(document.querySelectorAll('.labtrack-liverun .labtrack-chart'))"
        ".every(c => Number(c.dataset.points) > 0)", timeout=60_000)
    assert widget.inner_text().count("browser-check") == 1
    assert canvas_ink(page, ".labtrack-liverun .labtrack-chart") > 500
    screenshot(widget, "live_run")
