"""Render a widget's built ES module in a real (headless) Chromium, without Jupyter.

The page gets the widget's state exactly as ipywidgets would send it (binary traits split
out as buffers, the rest JSON) and a small stand-in for anywidget's model (``get``, ``set``,
``on``/``off``, ``save_changes``, ``send``) that records what the widget writes back. The
module and stylesheet are served from ``src/labtrack/widgets/static`` under a fake origin.

Needs Playwright (Python) and a Chromium: ``LABTRACK_CHROMIUM`` or ``/usr/bin/chromium``, or
Playwright's own browser.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parents[2] / "src" / "labtrack" / "widgets" / "static"
ORIGIN = "http://labtrack.test"

PAGE = """<!doctype html><html><head><meta charset="utf-8">
<link rel="stylesheet" href="/static/widgets.css"></head>
<body style="width: 1000px"><div id="host"></div>
<script>
class Model {
  constructor(state) {
    this.state = state; this.handlers = new Map(); this.saved = []; this.sent = [];
  }
  get(name) { return this.state[name]; }
  set(name, value) {
    this.state[name] = value;
    for (const handler of this.handlers.get("change:" + name) ?? []) handler();
  }
  on(event, handler) {
    if (!this.handlers.has(event)) this.handlers.set(event, []);
    this.handlers.get(event).push(handler);
  }
  off(event, handler) {
    const list = this.handlers.get(event) ?? [];
    if (list.includes(handler)) list.splice(list.indexOf(handler), 1);
  }
  save_changes() { this.saved.push(JSON.parse(JSON.stringify(this.state, (k, v) =>
    v instanceof DataView ? undefined : v))); }
  send(message) { this.sent.push(message); }
}
window.Model = Model;
window.errors = [];
window.addEventListener("error", (e) => window.errors.push(String(e.message)));
</script></body></html>"""

# Builds the model from the kernel's state and buffers, renders, waits for a frame.
MOUNT = """async ([module, state, paths, buffers]) => {
  const bytes = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  paths.forEach((path, i) => {
    let target = state;
    for (const part of path.slice(0, -1)) target = target[part];
    const data = bytes(buffers[i]);
    target[path[path.length - 1]] = new DataView(data.buffer, data.byteOffset, data.byteLength);
  });
  const { default: widget } = await import(module);
  const start = performance.now();
  window.model = new Model(state);
  window.cleanup = widget.render({ model: window.model, el: document.getElementById("host") });
  const rendered = performance.now();
  await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
  return { render: rendered - start, frame: performance.now() - start };
}"""


def chromium_path() -> str | None:
    for candidate in (os.environ.get("LABTRACK_CHROMIUM"), shutil.which("chromium"),
                      shutil.which("chromium-browser"), shutil.which("google-chrome")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


@contextmanager
def browser_page():
    """A page on the fake origin; the test fails, as the JupyterLab browser tests do, when
    Chromium cannot be started (.ci/run installs Debian's chromium)."""
    from playwright import sync_api

    with sync_api.sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=chromium_path(),
                                                 args=["--no-sandbox"])
        except Exception as error:  # no Chromium on this machine
            pytest.fail(f"no Chromium to render widgets in (apt-get install chromium): "
                        f"{error}")
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})

            def serve(route):
                path = route.request.url[len(ORIGIN):].split("?")[0]
                if path.startswith("/static/") and (STATIC / path[8:]).is_file():
                    kind = "text/css" if path.endswith(".css") else "text/javascript"
                    route.fulfill(body=(STATIC / path[8:]).read_bytes(), content_type=kind)
                else:
                    route.fulfill(body=PAGE, content_type="text/html")

            page.route(f"{ORIGIN}/**", serve)
            page.goto(f"{ORIGIN}/")
            yield page
        finally:
            browser.close()


def mount(page, widget, module: str) -> dict:
    """Render ``widget`` with ``static/<module>.js``; returns render and first-frame times
    (ms)."""
    from ipywidgets.widgets.widget import _remove_buffers

    state, paths, buffers = _remove_buffers(widget.get_state())
    state = json.loads(json.dumps(state))
    encoded = [base64.b64encode(bytes(b)).decode() for b in buffers]
    return page.evaluate(MOUNT, [f"/static/{module}.js", state, paths, encoded])


def saved(page) -> dict:
    """The model state at the widget's last ``save_changes()`` (empty if never called)."""
    return page.evaluate("window.model.saved.at(-1) ?? {}")


def errors(page) -> list[str]:
    return page.evaluate("window.errors")
