"""A real JupyterLab and a real Chromium (Debian's, driven by Playwright).

Playwright's own browser download is impossible here, so it drives the system Chromium
(`apt-get install chromium`, which .ci/run does). Screenshots land in test-output/screenshots.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import requests

from tests.standalone_server import free_port

SCREENSHOTS = Path(__file__).parents[2] / "test-output" / "screenshots"
TOKEN = "browser-test-token"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]



def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("Chromium is needed for the browser tests: apt-get install chromium "
                    "(.ci/run installs it).")
    return path


class Lab:
    def __init__(self, url: str, root: Path, store: Path):
        self.url = url
        self.root = root
        self.store = store

    def notebook_url(self, name: str) -> str:
        # ?reset: a fresh workspace, so tabs an earlier test opened are not restored (Run
        # All Cells would otherwise go to whichever notebook Lab focuses).
        return f"{self.url}/lab/tree/{name}?reset&token={TOKEN}"


@contextlib.contextmanager
def launch_lab(base: Path, base_url: str = "/", extra_args: Sequence[str] = ()) -> Iterator[Lab]:
    """A JupyterLab subprocess serving ``base/notebooks`` under ``base_url``, with labtrack's
    store in ``base/store``; its log goes to ``base/lab.log`` (quoted when it fails to start)."""
    root, store, log_path = base / "notebooks", base / "store", base / "lab.log"
    root.mkdir()
    port = free_port()
    # No "get notified about Jupyter news?" toast over the widgets in screenshots.
    settings = base / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    env = {**os.environ, "LABTRACK_HOME": str(base / "home"),
           "JUPYTER_CONFIG_DIR": str(base / "config"), "JUPYTER_RUNTIME_DIR": str(base / "rt"),
           "JUPYTERLAB_SETTINGS_DIR": str(base / "settings")}
    env.pop("LABTRACK_TRACKING_URI", None)
    log = open(log_path, "w")  # noqa: SIM115 - closed after the server stops
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--port={port}",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={TOKEN}",
         f"--ServerApp.base_url={base_url}",
         f"--ServerApp.root_dir={root}", f"--LabTrack.tracking_uri={store}",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         *extra_args],
        env=env, stdout=subprocess.DEVNULL, stderr=log, text=True,
    )
    url = f"http://127.0.0.1:{port}{base_url.rstrip('/')}"
    deadline = time.monotonic() + 180
    try:
        while True:
            try:
                if requests.get(f"{url}/api/status", params={"token": TOKEN}, timeout=5).ok:
                    break
            except requests.ConnectionError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                process.wait()
                pytest.fail(f"JupyterLab did not start: {log_path.read_text()[-3000:]}")
            time.sleep(0.3)
        yield Lab(url, root, store)
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Iterator[Lab]:
    with launch_lab(tmp_path_factory.mktemp("lab")) as started:
        yield started


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path(),
                                              args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    opened = context.new_page()
    yield opened
    context.close()


def write_notebook(path: Path, cells: list[str]) -> None:
    path.write_text(json.dumps({
        "cells": [{"cell_type": "code", "metadata": {}, "source": source, "outputs": [],
                   "execution_count": None} for source in cells],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                    "language": "python"}},
        "nbformat": 4, "nbformat_minor": 5,
    }))


def dismiss_dialog(page) -> None:
    """Close a modal dialog Lab raised on its own (a kernel that restarted under a loaded
    machine says so in one), after saving what it said: a dialog over the menu bar would
    otherwise only show up as a click that timed out."""
    dialog = page.locator(".jp-Dialog")
    if dialog.count() == 0:
        return
    text = dialog.first.inner_text()
    print(f"JupyterLab raised a dialog: {text!r}")
    screenshot(page, "unexpected_dialog")
    buttons = dialog.first.locator(".jp-Dialog-footer button")
    if buttons.count():
        buttons.last.click()
    else:
        page.keyboard.press("Escape")
    dialog.first.wait_for(state="detached", timeout=10_000)


def run_all_cells(page) -> None:
    """Run > Run All Cells from the menu bar. Right after a notebook loads, Lab sometimes
    drops the first key or click (focus moves as the kernel connects), so the menu is used
    again until a cell's prompt shows it is queued or ran."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for _attempt in range(10):
        dismiss_dialog(page)
        try:
            page.click(".lm-MenuBar-item:has-text('Run')", timeout=10_000)
            page.click(".lm-Menu-item:has-text('Run All Cells')", timeout=3_000)
            page.wait_for_function(
                """() => Array.from(document.querySelectorAll(
                    '.jp-CodeCell .jp-InputArea-prompt')).some(
                    p => /\\[(\\*|\\d+)\\]/.test(p.textContent))""", timeout=5_000)
            return
        except PlaywrightTimeout:
            dismiss_dialog(page)
            page.keyboard.press("Escape")
    pytest.fail("JupyterLab never started running the notebook's cells")


def wait_for_kernel(page, lab: Lab, name: str, timeout_s: float = 120) -> None:
    """Wait until the notebook's kernel runs on the server and the page is connected to it.

    The execution indicator reads "idle" before Lab has even created the session; Run All
    pressed then asks "Select Kernel", and a kernel attached that way never shows widgets
    (ipywidgets#3970). So the server must list the session and the status bar must say Idle.
    """
    deadline = time.monotonic() + timeout_s
    while not any(session["path"] == name and session.get("kernel")
                  for session in requests.get(f"{lab.url}/api/sessions",
                                              params={"token": TOKEN}, timeout=10).json()):
        if time.monotonic() > deadline:
            pytest.fail(f"JupyterLab started no kernel for {name}")
        time.sleep(0.2)
    page.wait_for_function(
        """() => Array.from(document.querySelectorAll('.jp-StatusBar-TextItem')).some(
            item => /\\(ipykernel\\) \\| Idle$/.test(item.textContent.trim()))""",
        timeout=timeout_s * 1000)


def open_and_run_all(page, lab: Lab, name: str, timeout_s: float = 240) -> None:
    """Open a notebook, wait for its kernel, run every cell and wait until all ran."""
    page.goto(lab.notebook_url(name))
    page.wait_for_selector(".jp-Notebook", timeout=120_000)
    wait_for_kernel(page, lab, name)
    run_all_cells(page)
    page.wait_for_function(
        """() => {
            const prompts = Array.from(document.querySelectorAll(
                '.jp-CodeCell .jp-InputArea-prompt'));
            return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
        }""",
        timeout=timeout_s * 1000,
    )


def screenshot(target, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    target.screenshot(path=str(path))
    return path


def canvas_ink(page, selector: str) -> int:
    """How many non-transparent pixels the first canvas under ``selector`` holds."""
    return page.evaluate(
        """(selector) => {
            const canvas = document.querySelector(selector + ' canvas');
            if (!canvas) return 0;
            const data = canvas.getContext('2d').getImageData(0, 0, canvas.width,
                                                              canvas.height).data;
            let inked = 0;
            for (let i = 3; i < data.length; i += 4) if (data[i] > 0) inked++;
            return inked;
        }""",
        selector,
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed browser test leaves a screenshot of where the page stood, named after it."""
    report = yield
    page = item.funcargs.get("page") if hasattr(item, "funcargs") else None
    if report.failed and call.when == "call" and page is not None:
        with contextlib.suppress(Exception):
            screenshot(page, f"failed-{item.name}")
    return report
