"""How long a comparison chart of 100 runs × 1,000,000 points takes to get its first frame of
data: ready to leave the kernel, then drawn by the widget in a (headless) browser.

    .venv/bin/python benchmarks/bench_chart.py                  # 100 runs × 1,000,000 points
    .venv/bin/python benchmarks/bench_chart.py --quick          # 10 runs × 100,000 points
    .venv/bin/python benchmarks/bench_chart.py --runs 20 --points 200000

The store is filled once through labtrack's real write path (``TrackingClient.log_metric(…,
synchronous=False)``, the background writer that training loops use) and cached under
``benchmarks/.work/chart/<runs>x<points>/``: 100 M points take 10–20 minutes to log and about
5 GB of disk. A completed store has a ``complete.json`` next to its database; anything else in
that folder is a partial fill and is thrown away. ``--rebuild`` refills it.

Kernel side: everything between ``MetricChart(run_ids, ["loss"])`` and the widget's opening
message being ready to send — reading the runs, reading each series downsampled (from the
stored min/max summary buckets), encoding the float64 buffer, and serialising the widget
state the way ipywidgets does (buffers split out, the rest JSON).

Browser side (unless ``--no-browser``, or when Playwright or a Chromium is missing): the
built ``metric_chart.js`` is given that state in headless Chromium, as anywidget would hand
it over (the buffer as a DataView), and timed until its first frame is painted — decoding,
aligning the series on one x axis, uPlot's first draw. The websocket trip of the buffer
between the two (1–2 MB on one machine) is not measured. Timings are wall-clock: run on a
quiet machine and read the load average printed with the table.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work" / "chart"
RESULTS = HERE / "results" / "chart-latest.md"
KEY = "loss"
EPOCH_EVERY = 10_000  # an "epoch" metric every this many steps, for the metric-as-x chart
STEP_MS = 5  # simulated wall time between two steps
BASE_MS = 1_767_225_600_000  # 2026-01-01 00:00 UTC: fixed, so the store is reproducible
TARGET_SECONDS = 1.0  # the target for kernel + browser, step axis


def progress(message: str) -> None:
    print(message, flush=True, file=sys.stderr)


def loss(run: int, step: int) -> float:
    """A decaying, wiggly loss that differs by run (cheap: 100 M of these are computed)."""
    return ((1.5 + 0.1 * (run % 7)) / (1 + 1e-4 * (1 + run % 5) * step)
            + 0.02 * ((step * 7919 + run * 104729) % 101) / 101)


# -- the cached store ------------------------------------------------------------------------


def store_folder(runs: int, points: int) -> Path:
    return WORK / f"{runs}x{points}"


def populate(folder: Path, runs: int, points: int) -> dict:
    """Log ``runs`` runs of ``points`` points each through the background writer."""
    import labtrack

    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    client = labtrack.TrackingClient(str(folder / "store"))
    experiment_id = client.create_experiment("chart-benchmark")
    run_ids = []
    started = time.perf_counter()
    for run in range(runs):
        start_ms = BASE_MS + run * 3_600_000
        info = client.create_run(experiment_id, start_time=start_ms,
                                 run_name=f"run-{run:03d}").info
        run_id = info.run_id
        client.log_param(run_id, "lr", 10 ** -(1 + run % 4))
        client.log_param(run_id, "optimizer", ("adam", "sgd", "adamw")[run % 3])
        log = client.log_metric
        for step in range(points):
            log(run_id, KEY, loss(run, step), start_ms + step * STEP_MS, step, synchronous=False)
            if step % EPOCH_EVERY == 0:
                log(run_id, "epoch", step // EPOCH_EVERY, start_ms + step * STEP_MS, step,
                    synchronous=False)
        client.flush()
        client.set_terminated(run_id, end_time=start_ms + points * STEP_MS)
        run_ids.append(run_id)
        elapsed = time.perf_counter() - started
        progress(f"  run {run + 1}/{runs} stored; {(run + 1) * points / elapsed:,.0f} points/s, "
                 f"about {elapsed / (run + 1) * (runs - run - 1) / 60:.1f} min left")
    seconds = time.perf_counter() - started
    manifest = {"runs": runs, "points": points, "run_ids": run_ids,
                "populate_seconds": round(seconds, 1),
                "populated_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
    (folder / "complete.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def cached_store(runs: int, points: int, rebuild: bool) -> tuple[Path, dict]:
    folder = store_folder(runs, points)
    marker = folder / "complete.json"
    if marker.exists() and not rebuild:
        progress(f"Using the cached store in {folder} (--rebuild to refill it).")
        return folder, json.loads(marker.read_text())
    progress(f"Filling {folder} with {runs} runs × {points:,} points through the background "
             "writer (once; cached for later runs)...")
    return folder, populate(folder, runs, points)


# -- measurements ----------------------------------------------------------------------------


def first_frame(client, run_ids: list[str], x_axis: str) -> tuple[float, dict]:
    """Seconds from ``MetricChart(...)`` to its opening message being serialised."""
    from ipywidgets.widgets.widget import _remove_buffers

    from labtrack.widgets import MetricChart

    start = time.perf_counter()
    chart = MetricChart(run_ids, [KEY], x_axis=x_axis, client=client)
    state, _paths, buffers = _remove_buffers(chart.get_state())
    message = json.dumps(state, separators=(",", ":"))
    seconds = time.perf_counter() - start
    detail = {
        "series": len(chart.series_index),
        "points_sent": sum(e["length"] for e in chart.series_index),
        "points_stored": sum(e["total_points"] for e in chart.series_index),
        "buffer_bytes": sum(len(b) for b in buffers),
        "json_bytes": len(message),
        "error": chart.error,
    }
    chart.close()
    return seconds, detail


def parts(client, run_ids: list[str]) -> dict[str, float]:
    """Where the time goes, for the step axis: run reads, series reads, encoding."""
    from labtrack.widgets._encoding import encode_series

    timings = {}
    start = time.perf_counter()
    for run_id in run_ids:
        client.service.get_run(run_id)
    timings["read the runs"] = time.perf_counter() - start
    start = time.perf_counter()
    series = client.service.get_metric_history_downsampled(run_ids, [KEY], 1000, "step")
    timings["read the series downsampled"] = time.perf_counter() - start
    start = time.perf_counter()
    encode_series(series)
    timings["encode the float64 buffer"] = time.perf_counter() - start
    return timings


def browser_frames(chart_of, repeats: int) -> tuple[list[float], list[float]] | str:
    """Render times in headless Chromium: (``render()`` returned, first frame painted) in
    seconds, per repeat; or why the browser could not be used."""
    sys.path.insert(0, str(HERE.parent))
    try:
        from tests.widgets.browser import browser_page, errors, mount
    except ImportError as error:
        return f"not measured ({error})"
    renders, frames = [], []
    try:
        with browser_page() as page:
            for _ in range(repeats):
                page.reload()
                chart = chart_of()
                try:
                    times = mount(page, chart, "metric_chart")
                finally:
                    chart.close()
                if errors(page):
                    return f"not measured (page errors: {errors(page)})"
                renders.append(times["render"] / 1000)
                frames.append(times["frame"] / 1000)
    except BaseException as error:  # pytest's skip when no Chromium can be started
        if type(error).__name__ != "Skipped":
            raise
        return f"not measured ({error})"
    return renders, frames


def browser_lines(browser, kernel_times: list[float]) -> list[str]:
    if isinstance(browser, str):
        return ["Browser side (step axis): " + browser + ".", ""]
    renders, frames = browser
    kernel = statistics.median(kernel_times)
    frame = statistics.median(frames)
    met = "met" if kernel + frame < TARGET_SECONDS else "**NOT met**"
    return [
        "Browser side (step axis), headless Chromium, the built `metric_chart.js` given the "
        "state above as ipywidgets delivers it (binary buffer as a DataView) — decoding, "
        "aligning the series on one x axis and uPlot's first draw: `render()` "
        f"{statistics.median(renders) * 1000:,.0f} ms, first frame painted "
        f"**{frame * 1000:,.0f} ms** (median of {len(frames)}).",
        "",
        f"**Kernel + browser: {(kernel + frame) * 1000:,.0f} ms** to the first frame, "
        "not counting the trip of the buffer over the Jupyter websocket (on one machine, "
        "a few ms per MB). Target: under "
        f"{TARGET_SECONDS * 1000:,.0f} ms: {met}.",
        "",
    ]


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
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"- CPU: {cpu}, {os.cpu_count()} logical cores; {platform.platform()}; "
            f"load average (1 min) at the start: {load:.2f}\n"
            f"- Python {platform.python_version()}, labtrack commit {commit}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="10 runs × 100,000 points")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rebuild", action="store_true", help="refill the cached store")
    parser.add_argument("--populate-only", action="store_true")
    parser.add_argument("--no-browser", action="store_true",
                        help="skip the headless-Chromium measurement of the browser side")
    parser.add_argument("--output", type=Path, help="where to write the Markdown table")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.points = 10, 100_000
    full = (args.runs, args.points) == (100, 1_000_000)
    output = args.output or (RESULTS if full else WORK / "chart-latest-partial.md")
    header = machine()

    folder, manifest = cached_store(args.runs, args.points, args.rebuild)
    if args.populate_only:
        return 0

    import labtrack

    client = labtrack.TrackingClient(str(folder / "store"))
    run_ids = manifest["run_ids"]
    rows = []
    checks = []
    for x_axis in ("step", "relative_time", "time", "metric:epoch"):
        times = []
        detail: dict = {}
        for _ in range(args.repeats):
            seconds, detail = first_frame(client, run_ids, x_axis)
            times.append(seconds)
        progress(f"  x_axis={x_axis}: first {times[0] * 1000:.0f} ms, "
                 f"median {statistics.median(times) * 1000:.0f} ms")
        rows.append((x_axis, times, detail))
        expected = args.runs * args.points
        ok = (detail["series"] == args.runs and detail["points_stored"] == expected
              and not detail["error"] and detail["points_sent"] <= args.runs * 1000)
        checks.append(f"- {'OK' if ok else 'FAILED'}: x_axis={x_axis}: {detail['series']} "
                      f"series covering {detail['points_stored']:,} stored points, "
                      f"{detail['points_sent']:,} sent" + (f"; error: {detail['error']}"
                                                            if detail["error"] else ""))
    breakdown = parts(client, run_ids)
    browser = "not measured (--no-browser)"
    if not args.no_browser:
        from labtrack.widgets import MetricChart

        progress("  browser: rendering the step chart in headless Chromium...")
        browser = browser_frames(lambda: MetricChart(run_ids, [KEY], client=client),
                                 args.repeats)

    total = args.runs * args.points
    lines = [
        "# labtrack: comparison chart, time to the first frame of data",
        "",
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, "
        f"`benchmarks/bench_chart.py`{' --quick' if args.quick else ''}.",
        "",
        header,
        f"- Store: {args.runs} runs × {args.points:,} points of `{KEY}` ({total:,} points, plus "
        f"an `epoch` metric every {EPOCH_EVERY:,} steps), logged through "
        "`TrackingClient.log_metric(..., synchronous=False)` in "
        f"{manifest['populate_seconds'] / 60:.1f} min and cached in "
        f"`benchmarks/.work/chart/{args.runs}x{args.points}/`.",
        "",
        "| x axis | kernel, first call | kernel, median of "
        f"{args.repeats} | points sent | float64 buffer | JSON state |",
        "|---|---|---|---|---|---|",
    ]
    for x_axis, times, detail in rows:
        lines.append(
            f"| `{x_axis}` | {times[0] * 1000:,.0f} ms | "
            f"**{statistics.median(times) * 1000:,.0f} ms** | "
            f"{detail['points_sent']:,} of {detail['points_stored']:,} | "
            f"{detail['buffer_bytes'] / 1e6:.2f} MB | {detail['json_bytes'] / 1e3:.0f} kB |")
    lines += [
        "",
        "First frame = `MetricChart(run_ids, [\"loss\"], x_axis=…)` (default `max_points=1000` "
        "per series) until its state is serialised as ipywidgets sends it (buffers split out, "
        "the rest as JSON): reading the runs, reading every series downsampled from the stored "
        "min/max summary buckets, encoding the float64 buffer.",
        "",
        *browser_lines(browser, rows[0][1]),
        "Where the time goes (step axis, one pass):",
        "",
        *[f"- {name}: {seconds * 1000:,.0f} ms" for name, seconds in breakdown.items()],
        "",
        "Checks:",
        "",
        *checks,
        "",
    ]
    text = "\n".join(lines)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    print(text)
    progress(f"Written to {output}")
    return 0 if all(c.startswith("- OK") for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
