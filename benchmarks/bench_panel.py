"""How long the JupyterLab side panel takes to draw its first screen of runs and of models,
with 10,000 runs and 500 registered models, in a real JupyterLab and headless Chromium.

    .venv/bin/python benchmarks/bench_panel.py            # 10,000 runs, 500 models
    .venv/bin/python benchmarks/bench_panel.py --quick    # 1,000 runs, 50 models
    .venv/bin/python benchmarks/bench_panel.py --runs 20000 --models 1000 --repeats 9

The store is filled once through labtrack's Python API (``TrackingClient`` for the runs,
``RegistryService`` for the registry, as "ann") and cached under
``benchmarks/.work/panel/<runs>x<models>/`` (a ``complete.json`` marks a finished fill;
``--rebuild`` refills). The runs are spread over 10 experiments, each with 5 params, 3
metrics and 2 tags; 100 of them were "logged from" the notebook ``bench.ipynb`` (its path as
provenance), which the Runs measurement has open, so the panel lists those first. Each model
has 1–4 versions, some in Staging and Production, some aliases; 25 transition requests are
open (the panel's badge).

Then a JupyterLab serving that store (under base_url ``/bench/``) is driven by Playwright
with Debian's Chromium (no browser download). Each repeat loads JupyterLab afresh (a new
panel model, a reset layout) and waits until the side panel's version handshake is done
(it happens at page load, for the badge); the clock then runs from the command that shows
the panel (or the click on its Models tab) until the first screen of rows is in the DOM and
painted (two animation frames later). The REST calls behind each view are also timed alone.
No MLflow side: MLflow has no JupyterLab panel. Timings are wall-clock: run on a quiet
machine and read the load average printed with the table. Nothing here is asserted; a missed
target is reported in the table.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work" / "panel"
RESULTS = HERE / "results" / "panel-latest.md"
FULL = (10_000, 500)
QUICK = (1_000, 50)
EXPERIMENTS = 10
NOTEBOOK = "bench.ipynb"
NOTEBOOK_RUNS = 100
OPEN_REQUESTS = 25
BASE_URL = "/bench/"
TOKEN = "bench-panel-token"
FIRST_SCREEN_ROWS = 20  # rows visible without scrolling in a 1000 px high window
TARGET_MS = 1000.0
BASE_MS = 1_767_225_600_000  # 2026-01-01 00:00 UTC: fixed, so the store is reproducible
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


def progress(message: str) -> None:
    print(message, flush=True, file=sys.stderr)


# -- the cached store --------------------------------------------------------------------------


def populate(folder: Path, runs: int, models: int) -> dict:
    import labtrack
    from labtrack.entities import Metric, Param, RunTag
    from labtrack.services.permissions import RegistrySettings
    from labtrack.services.registry import RegistryService

    if folder.exists():
        shutil.rmtree(folder)
    (folder / "notebooks").mkdir(parents=True)
    notebook_file = str((folder / "notebooks" / NOTEBOOK).resolve())
    (folder / "notebooks" / NOTEBOOK).write_text(json.dumps({
        "cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    client = labtrack.TrackingClient(str(folder / "store"))
    experiments = [client.create_experiment(f"plant-{i:02d}") for i in range(EXPERIMENTS)]
    rng = random.Random(7)
    started = time.perf_counter()
    run_ids = []
    notebook_every = max(1, runs // NOTEBOOK_RUNS)
    for i in range(runs):
        start_ms = BASE_MS + i * 60_000
        tags = {"site": f"site-{i % 37}", "model": rng.choice(["arima", "prophet", "lgbm"])}
        if i % notebook_every == 0 and i // notebook_every < NOTEBOOK_RUNS:
            tags.update({"labtrack.notebook.path": notebook_file,
                         "mlflow.source.name": notebook_file, "mlflow.source.type": "NOTEBOOK"})
        run = client.create_run(experiments[i % EXPERIMENTS], start_time=start_ms,
                                run_name=f"run-{i:05d}", tags=tags)
        run_id = run.info.run_id
        client.log_batch(
            run_id,
            metrics=[Metric("rmse", rng.uniform(0.5, 5), start_ms + 50_000, 99),
                     Metric("mae", rng.uniform(0.2, 3), start_ms + 50_000, 99),
                     Metric("r2", rng.uniform(0, 1), start_ms + 50_000, 99)],
            params=[Param("lr", str(rng.choice([0.001, 0.01, 0.1]))),
                    Param("depth", str(rng.randint(2, 12))),
                    Param("window", str(rng.choice([24, 48, 168]))),
                    Param("features", str(rng.randint(5, 50))),
                    Param("seed", str(i))],
            tags=[RunTag("stage", rng.choice(["dev", "prod"]))])
        client.set_terminated(run_id, end_time=start_ms + 55_000)
        run_ids.append(run_id)
        if (i + 1) % 1000 == 0:
            progress(f"  {i + 1:,} runs ({time.perf_counter() - started:.0f} s)")
    runs_seconds = time.perf_counter() - started

    started = time.perf_counter()
    ann = RegistryService(client.service, RegistrySettings())
    requests = 0
    for m in range(models):
        name = f"plant-{m:03d}-forecast"
        ann.create_registered_model(name, description=f"Forecast for plant {m}", user="ann")
        versions = 1 + m % 4
        for v in range(versions):
            info = client.get_run(run_ids[(m * 7 + v) % len(run_ids)]).info
            ann.create_model_version(name, f"{info.artifact_uri}/model", info.run_id, user="ann")
        if versions >= 2:
            ann.transition_stage(name, "1", "Production", user="ann")
            ann.set_alias(name, "champion", "1", user="ann")
        if versions >= 3:
            ann.transition_stage(name, "2", "Staging", user="ann")
        if versions >= 2 and requests < OPEN_REQUESTS:
            ann.create_transition_request(name, str(versions), "Production", "looks better",
                                          user="ann")
            requests += 1
    registry_seconds = time.perf_counter() - started
    client.flush()
    manifest = {"runs": runs, "models": models, "runs_seconds": runs_seconds,
                "registry_seconds": registry_seconds, "open_requests": requests,
                "notebook_runs": min(NOTEBOOK_RUNS, runs)}
    (folder / "complete.json").write_text(json.dumps(manifest))
    return manifest


def cached_store(runs: int, models: int, rebuild: bool) -> tuple[Path, dict]:
    folder = WORK / f"{runs}x{models}"
    marker = folder / "complete.json"
    if marker.exists() and not rebuild:
        progress(f"Using the cached store in {folder}")
        return folder, json.loads(marker.read_text())
    progress(f"Filling {folder}: {runs:,} runs, {models:,} registered models...")
    return folder, populate(folder, runs, models)


# -- JupyterLab and Chromium ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_lab(folder: Path) -> tuple[subprocess.Popen, str, object]:
    import requests

    port = free_port()
    scratch = folder / "lab"
    shutil.rmtree(scratch, ignore_errors=True)
    (scratch / "config" / "labconfig").mkdir(parents=True)
    # No "get Jupyter news?" toast.
    (scratch / "config" / "labconfig" / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    env = {**os.environ, "LABTRACK_HOME": str(scratch / "home"),
           "JUPYTER_CONFIG_DIR": str(scratch / "config"),
           "JUPYTER_RUNTIME_DIR": str(scratch / "runtime")}
    env.pop("LABTRACK_TRACKING_URI", None)
    log = open(scratch / "lab.log", "w")  # noqa: SIM115 - closed in stop_lab
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--port={port}",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={TOKEN}",
         f"--ServerApp.base_url={BASE_URL}", f"--ServerApp.root_dir={folder / 'notebooks'}",
         f"--LabTrack.tracking_uri={folder / 'store'}", "--LabApp.news_url=",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         "--LabApp.expose_app_in_browser=True"],
        env=env, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
    url = f"http://127.0.0.1:{port}{BASE_URL.rstrip('/')}"
    deadline = time.monotonic() + 180
    while True:
        try:
            if requests.get(f"{url}/api/status", params={"token": TOKEN}, timeout=5).ok:
                return process, url, log
        except requests.ConnectionError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            stop_lab(process, log)
            raise SystemExit(f"JupyterLab did not start; see {scratch / 'lab.log'}")
        time.sleep(0.3)


def stop_lab(process: subprocess.Popen, log) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    log.close()


# In the page: run `action`, then resolve with the milliseconds until `selector` matches at
# least `rows` elements and two animation frames (a paint) have passed.
MEASURE = """async ([action, selector, rows]) => {
    const painted = () => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
    const start = performance.now();
    if (action === 'open-panel') {
        void window.jupyterapp.commands.execute('labtrack:open-panel');
    } else {
        document.querySelector(action).click();
    }
    const deadline = start + 120000;
    while (document.querySelectorAll(selector).length < rows) {
        if (performance.now() > deadline) {
            const panel = document.querySelector('#labtrack-panel');
            throw new Error('no first screen: ' + (panel ? panel.innerText : 'no panel'));
        }
        await new Promise(r => requestAnimationFrame(r));
    }
    await painted();
    return performance.now() - start;
}"""


def measure_views(url: str, repeats: int, runs: int, models: int) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("Chromium is needed: apt-get install chromium")
    run_rows = min(FIRST_SCREEN_ROWS, runs)
    model_rows = min(FIRST_SCREEN_ROWS, models)
    times: dict[str, list[float]] = {"runs_notebook": [], "runs": [], "models": []}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            for repeat in range(repeats):
                for view, path in (("runs_notebook", f"/tree/{NOTEBOOK}"), ("runs", ""),
                                   ("models", "")):
                    context = browser.new_context(viewport={"width": 1400, "height": 1000})
                    page = context.new_page()
                    page.goto(f"{url}/lab{path}?reset&token={TOKEN}")
                    page.wait_for_selector("#labtrack-panel .jp-Labtrack-server:not(:empty)",
                                           state="attached", timeout=120_000)
                    if path:
                        page.wait_for_selector(".jp-Notebook", timeout=120_000)
                    if view == "models":
                        page.evaluate("() => window.jupyterapp.commands.execute("
                                      "'labtrack:open-panel')")
                        page.wait_for_selector("#labtrack-panel tr.jp-Labtrack-run")
                        elapsed = page.evaluate(MEASURE, [
                            "#labtrack-panel .jp-Labtrack-tab[data-tab='models']",
                            "#labtrack-panel tr.jp-Labtrack-model", model_rows])
                    else:
                        selector = "#labtrack-panel tr.jp-Labtrack-run"
                        if view == "runs_notebook":
                            selector += ".jp-mod-notebook"
                        elapsed = page.evaluate(MEASURE, ["open-panel", selector, run_rows])
                    times[view].append(elapsed)
                    context.close()
                progress(f"  repeat {repeat + 1}: " + ", ".join(
                    f"{view} {values[-1]:.0f} ms" for view, values in times.items()))
        finally:
            browser.close()
    return times


def rest_times(url: str, repeats: int) -> dict[str, list[float]]:
    """The calls behind each first screen, alone, from Python (server time + loopback)."""
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"token {TOKEN}"
    base = f"{url}/labtrack/api/2.0"
    calls = {
        "panel/runs/search, notebook open (100 runs + its runs)": (
            "POST", f"{base}/labtrack/panel/runs/search",
            {"json": {"notebook_path": NOTEBOOK, "max_results": 100}}),
        "panel/runs/search (100 runs)": (
            "POST", f"{base}/labtrack/panel/runs/search", {"json": {"max_results": 100}}),
        "registered-models/search (100 models)": (
            "GET", f"{base}/mlflow/registered-models/search",
            {"params": {"max_results": 100, "order_by": "name ASC"}}),
        "transition-requests/list (all models)": (
            "GET", f"{base}/mlflow/transition-requests/list", {}),
    }
    out: dict[str, list[float]] = {}
    for name, (method, address, kwargs) in calls.items():
        samples = []
        for _ in range(repeats + 1):
            began = time.perf_counter()
            response = session.request(method, address, timeout=60, **kwargs)
            response.raise_for_status()
            samples.append((time.perf_counter() - began) * 1000)
        out[name] = samples[1:]  # the first call warms the server's caches
    return out


# -- report --------------------------------------------------------------------------------------


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE,
                                capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "?"
    chromium = shutil.which("chromium") or "chromium"
    try:
        version = subprocess.run([chromium, "--version"], capture_output=True, text=True,
                                 timeout=30).stdout.strip().splitlines()[-1]
    except (OSError, subprocess.SubprocessError, IndexError):
        version = "?"
    import jupyterlab

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"- CPU: {cpu}, {os.cpu_count()} logical cores; {platform.platform()}; "
            f"load average (1 min) at the start: {load:.2f}\n"
            f"- Python {platform.python_version()}, JupyterLab {jupyterlab.__version__}, "
            f"{version} (headless), labtrack commit {commit}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=FULL[0])
    parser.add_argument("--models", type=int, default=FULL[1])
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK[0]:,} runs and {QUICK[1]} models")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rebuild", action="store_true", help="refill the cached store")
    parser.add_argument("--output", type=Path, help="where to write the Markdown table")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.models = QUICK
    full = (args.runs, args.models) == FULL
    output = args.output or (RESULTS if full else WORK / "panel-latest-partial.md")
    header = machine()

    folder, manifest = cached_store(args.runs, args.models, args.rebuild)
    progress("Starting JupyterLab...")
    process, url, log = start_lab(folder)
    try:
        progress("Timing the REST calls...")
        rest = rest_times(url, max(args.repeats, 5))
        progress("Timing the panel in headless Chromium...")
        views = measure_views(url, args.repeats, args.runs, args.models)
    finally:
        stop_lab(process, log)

    def verdict(ms: float) -> str:
        return "met" if ms < TARGET_MS else "**NOT met**"

    labels = {
        "runs_notebook": f"Runs, `{NOTEBOOK}` open ({manifest['notebook_runs']} of its runs "
                         "listed first)",
        "runs": "Runs, no notebook open",
        "models": "Models (tab switch)",
    }
    rows = [f"| {labels[view]} | {values[0]:,.0f} ms | **{statistics.median(values):,.0f} ms** "
            f"| {max(values):,.0f} ms | {verdict(statistics.median(values))} |"
            for view, values in views.items()]
    lines = [
        "# labtrack: the JupyterLab side panel's first screen",
        "",
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, "
        f"`benchmarks/bench_panel.py`{' --quick' if args.quick else ''}.",
        "",
        header,
        f"- Store: {args.runs:,} runs in {EXPERIMENTS} experiments (5 params, 3 metrics, 2 tags "
        f"each; filled in {manifest['runs_seconds']:.1f} s) and {args.models:,} registered "
        f"models with 1–4 versions, stages, aliases and {manifest['open_requests']} open "
        f"transition requests (filled in {manifest['registry_seconds']:.1f} s), cached in "
        f"`benchmarks/.work/panel/{args.runs}x{args.models}/`.",
        "",
        f"| view | first load | median of {args.repeats} | slowest | target < "
        f"{TARGET_MS:,.0f} ms |",
        "|---|---|---|---|---|",
        *rows,
        "",
        "Each load is a fresh JupyterLab page (new panel state, reset layout) whose version "
        "handshake with the server extension is done (at page load, for the badge). Runs: "
        "from the `labtrack:open-panel` command to the first "
        f"{min(FIRST_SCREEN_ROWS, args.runs)} rows of runs (the notebook's own, when one is "
        "open) in the DOM and painted; the panel reads one page of 100 runs across all "
        "experiments plus the notebook's runs in one call, and the experiment list. Models: "
        "from the click on the Models tab (Runs already drawn) to the first "
        f"{min(FIRST_SCREEN_ROWS, args.models)} rows painted; one page of 100 models.",
        "",
        "The REST calls behind those screens, alone (Python `requests` over loopback, median "
        f"of {max(args.repeats, 5)} after one warm-up call):",
        "",
        *[f"- {name}: {statistics.median(values):,.0f} ms" for name, values in rest.items()],
        "",
    ]
    text = "\n".join(lines)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    print(text)
    progress(f"Written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
