"""Parameter sweeps: one parent run, a child run per combination of values.

``-P lr=0.001,0.01,0.1 -P depth=3:8`` describes the space: a comma list (``\\,`` for a comma
inside a value), or an integer range ``a:b`` (both ends included) or ``a:b:step``; any other
value is a constant. The sweep runs the whole grid, or ``--random N`` combinations drawn from
it without repetition (seeded, and the seed is recorded), ``--max-parallel K`` at a time.
Each child is a complete project run (provenance, parameters, output, status) tagged with
``mlflow.parentRunId``; a child that fails is recorded and the others go on. With
``--metric KEY``, the parent records the best child (``--goal min|max``) — its run id,
parameters and metric value — and logs that value as its own ``KEY``. The parent ends
FINISHED when at least one child succeeded, FAILED otherwise, KILLED on Ctrl-C.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import json
import math
import random
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from labtrack.entities import RunStatus
from labtrack.errors import LabtrackError
from labtrack.projects.backends import make_backend
from labtrack.projects.runner import (
    DEFAULT_ENTRY_POINT,
    DEFAULT_STOP_TIMEOUT_S,
    LaunchCancelled,
    OutputSinks,
    ProjectLauncher,
    ProjectRun,
    TrackingHandoff,
    _terminal,
    deferred_interrupts,
    resolve_experiment,
    say,
)
from labtrack.projects.spec import ProjectError
from labtrack.services import validation

SWEEP_MODE_TAG = "labtrack.sweep.mode"
SWEEP_SIZE_TAG = "labtrack.sweep.size"
SWEEP_PARALLEL_TAG = "labtrack.sweep.maxParallel"
SWEEP_SEED_TAG = "labtrack.sweep.seed"
SWEEP_METRIC_TAG = "labtrack.sweep.metric"
SWEEP_GOAL_TAG = "labtrack.sweep.goal"
SWEEP_INDEX_TAG = "labtrack.sweep.index"
BEST_RUN_TAG = "labtrack.sweep.bestRunId"
BEST_VALUE_TAG = "labtrack.sweep.bestValue"
BEST_PARAMS_TAG = "labtrack.sweep.bestParams"
SUCCEEDED_TAG = "labtrack.sweep.succeeded"
FAILED_TAG = "labtrack.sweep.failed"
FAILED_RUNS_TAG = "labtrack.sweep.failedRunIds"
SUMMARY_ARTIFACT = "sweep/summary.json"
MAX_GRID_SIZE = 10_000  # a larger space needs --random
GOALS = ("min", "max")

_RANGE = re.compile(r"^\s*(-?\d+)\s*:\s*(-?\d+)\s*(?::\s*(-?\d+)\s*)?$")


def parse_values(key: str, spec: str) -> list[str]:
    """The values one ``-P key=spec`` stands for."""
    match = _RANGE.match(spec)
    if match:
        start, stop = int(match.group(1)), int(match.group(2))
        step = int(match.group(3)) if match.group(3) else (1 if stop >= start else -1)
        if step == 0 or (stop - start) * step < 0:
            raise ProjectError(
                f"-P {key}={spec}: the step must be non-zero and go from {start} towards "
                f"{stop}."
            )
        count = (stop - start) // step + 1
        if count > MAX_GRID_SIZE:
            raise ProjectError(f"-P {key}={spec} has {count} values; at most {MAX_GRID_SIZE}.")
        return [str(start + i * step) for i in range(count)]
    values = [v.replace("\\,", ",").strip() for v in re.split(r"(?<!\\),", spec)]
    if len(values) > 1 and any(v == "" for v in values):
        raise ProjectError(f"-P {key}={spec}: an empty value in the list.")
    return list(dict.fromkeys(values))  # duplicates would run the same child twice


@dataclass(frozen=True)
class SweepSpace:
    """The values of each swept parameter, in the order given."""

    axes: Mapping[str, Sequence[str]]
    specs: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, specs: Mapping[str, str]) -> SweepSpace:
        if not specs:
            raise ProjectError("A sweep needs at least one -P key=values.")
        return cls({k: parse_values(k, v) for k, v in specs.items()}, dict(specs))

    @property
    def size(self) -> int:
        return math.prod(len(v) for v in self.axes.values())

    def _at(self, index: int) -> dict[str, str]:
        combination = {}
        for key in reversed(list(self.axes)):
            values = self.axes[key]
            index, position = divmod(index, len(values))
            combination[key] = values[position]
        return {k: combination[k] for k in self.axes}

    def grid(self) -> list[dict[str, str]]:
        if self.size > MAX_GRID_SIZE:
            raise ProjectError(
                f"The grid has {self.size} combinations (more than {MAX_GRID_SIZE}); sample "
                "some with --random N."
            )
        keys = list(self.axes)
        return [dict(zip(keys, values)) for values in itertools.product(*self.axes.values())]

    def sample(self, count: int, seed: int) -> list[dict[str, str]]:
        """``count`` distinct combinations (all of them if there are fewer)."""
        indices = random.Random(seed).sample(range(self.size), min(count, self.size))
        return [self._at(i) for i in indices]


@dataclass
class SweepChild:
    index: int
    parameters: dict[str, str]
    run: ProjectRun | None = None
    error: str | None = None
    metric: float | None = None

    @property
    def status(self) -> str:
        if self.run is not None:
            return str(self.run.status)
        return "NOT_STARTED" if self.error is None else "ERROR"

    def summary(self) -> dict:
        return {
            "index": self.index, "parameters": self.parameters, "status": self.status,
            "run_id": self.run.run_id if self.run else None,
            "exit_code": self.run.exit_code if self.run else None,
            "metric": None if self.metric is None or math.isnan(self.metric) else self.metric,
            "error": self.error,
        }


@dataclass
class SweepResult:
    parent_run_id: str
    status: RunStatus
    children: list[SweepChild]
    best: SweepChild | None = None

    def shell_exit_code(self) -> int:
        return {RunStatus.FINISHED: 0, RunStatus.KILLED: 130}.get(self.status, 1)


class _LinePrefixer:
    """Shows a child's output line by line, each line prefixed, whole lines at a time (many
    children share the terminal)."""

    lock = threading.Lock()

    def __init__(self, prefix: str, stream_name: str):
        self.prefix = prefix.encode()
        self.write = _terminal(stream_name)
        self.pending = b""

    def __call__(self, data: bytes) -> None:
        self.pending += data
        *lines, self.pending = self.pending.split(b"\n")
        if lines:
            text = b"".join(self.prefix + line + b"\n" for line in lines)
            with self.lock:
                self.write(text)

    def finish(self) -> None:
        if self.pending:
            self(b"\n")


def _best(children: list[SweepChild], goal: str) -> SweepChild | None:
    candidates = [c for c in children if c.run is not None and c.run.succeeded
                  and c.metric is not None and not math.isnan(c.metric)]
    if not candidates:
        return None
    pick = min if goal == "min" else max
    return pick(candidates, key=lambda c: c.metric)  # the first of equals wins


def run_sweep(
    uri: str,
    parameters: Mapping[str, str],
    entry_point: str = DEFAULT_ENTRY_POINT,
    version: str | None = None,
    experiment_name: str | None = None,
    experiment_id: str | None = None,
    run_name: str | None = None,
    env_manager: str | None = None,
    tracking_uri: str | None = None,
    max_parallel: int = 1,
    random_count: int | None = None,
    seed: int | None = None,
    metric: str | None = None,
    goal: str = "min",
    stop_timeout: float = DEFAULT_STOP_TIMEOUT_S,
    backend: str = "local",
    backend_config: str | Mapping | None = None,
) -> SweepResult:
    """Run the sweep (what ``labtrack sweep`` does). Every combination's parameters are
    checked before anything runs. With ``backend="ray"`` each child is a Ray job, and
    ``max_parallel`` of them are submitted at a time."""
    if max_parallel < 1:
        raise ProjectError("--max-parallel must be at least 1.")
    if random_count is not None and random_count < 1:
        raise ProjectError("--random must be at least 1.")
    if goal not in GOALS:
        raise ProjectError(f"--goal must be min or max, not {goal!r}.")
    if metric:
        validation.validate_key("Metric", metric)
    space = SweepSpace.parse(parameters)
    if random_count is not None:
        seed = random.randrange(2**31) if seed is None else seed
        combinations = space.sample(random_count, seed)
    else:
        combinations = space.grid()
    chosen = make_backend(backend, backend_config)
    with ProjectLauncher(uri, entry_point, version, env_manager, tracking_uri,
                         stop_timeout=stop_timeout, backend=chosen) as launcher:
        for combination in combinations:
            launcher.resolve_parameters(combination)
        launcher.prepare()
        client = launcher.client
        experiment = resolve_experiment(client, experiment_name, experiment_id)
        tags = {
            SWEEP_MODE_TAG: "random" if random_count is not None else "grid",
            SWEEP_SIZE_TAG: str(len(combinations)),
            SWEEP_PARALLEL_TAG: str(max_parallel),
        }
        if random_count is not None:
            tags[SWEEP_SEED_TAG] = str(seed)
        if metric:
            tags.update({SWEEP_METRIC_TAG: metric, SWEEP_GOAL_TAG: goal})
        parent = launcher.create_run(experiment, space.specs, run_name, tags=tags)
        parent_id, parent_name = parent.info.run_id, parent.info.run_name
        say(f"sweep {parent_id} ('{parent_name}'): {len(combinations)} runs, "
            f"{max_parallel} at a time")
        children = [SweepChild(i + 1, c) for i, c in enumerate(combinations)]
        status = RunStatus.FAILED
        try:
            with TrackingHandoff(client.tracking_uri) as handoff:
                interrupted = _run_children(launcher, children, experiment, handoff,
                                            parent_id, parent_name, max_parallel)
            with deferred_interrupts():
                best = _record(launcher, parent_id, children, metric, goal)
            if interrupted:
                status = RunStatus.KILLED
            elif any(c.run is not None and c.run.succeeded for c in children):
                status = RunStatus.FINISHED
        except KeyboardInterrupt:
            status, best = RunStatus.KILLED, None
        finally:
            with deferred_interrupts():
                try:
                    client.set_terminated(parent_id, status)
                except LabtrackError as error:
                    say(f"sweep {parent_id}: could not record its end ({status}): {error}")
        _report(parent_id, status, children, best, metric)
        return SweepResult(parent_id, status, children, best)


def _run_children(launcher: ProjectLauncher, children: list[SweepChild], experiment: str,
                  handoff: TrackingHandoff, parent_id: str, parent_name: str,
                  max_parallel: int) -> bool:
    """Run the children, ``max_parallel`` at a time; True if Ctrl-C stopped them."""
    total = len(children)
    width = len(str(total))

    def run_child(child: SweepChild) -> None:
        label = f"[{child.index:0{width}d}/{total}]"
        sinks = OutputSinks(_LinePrefixer(f"{label} ", "stdout"),
                            _LinePrefixer(f"{label} ", "stderr"))
        try:
            child.run = launcher.launch(
                child.parameters, experiment, handoff,
                run_name=f"{parent_name}-{child.index:0{width}d}", parent_run_id=parent_id,
                tags={SWEEP_INDEX_TAG: str(child.index)}, sinks=sinks,
                announce=lambda message: say(f"{label} {message}"),
            )
        except LaunchCancelled:
            pass
        except Exception as error:  # one child's problem must not stop the sweep
            child.error = f"{type(error).__name__}: {error}"
            say(f"{label} could not run: {child.error}")
        finally:
            sinks.stdout.finish()
            sinks.stderr.finish()

    executor = concurrent.futures.ThreadPoolExecutor(max_parallel,
                                                     thread_name_prefix="labtrack-sweep")
    futures = []
    interrupted = False
    try:
        futures.extend(executor.submit(run_child, child) for child in children)
        concurrent.futures.wait(futures)
    except KeyboardInterrupt:
        interrupted = True
        say("stopping the sweep (Ctrl-C again to kill the runs at once)")
        timer = launcher.stop_all()
        try:
            concurrent.futures.wait(futures)
        except KeyboardInterrupt:
            launcher.kill_all()
            concurrent.futures.wait(futures)
        timer.cancel()
    finally:
        executor.shutdown(wait=True)
    return interrupted


def _record(launcher: ProjectLauncher, parent_id: str, children: list[SweepChild],
            metric: str | None, goal: str) -> SweepChild | None:
    client = launcher.client
    for child in children:
        if metric and child.run is not None:
            child.metric = client.get_run(child.run.run_id).data.metrics.get(metric)
    succeeded = [c for c in children if c.run is not None and c.run.succeeded]
    failed = [c for c in children if c.run is not None and not c.run.succeeded]
    tags = {
        SUCCEEDED_TAG: str(len(succeeded)),
        FAILED_TAG: str(len(failed) + sum(1 for c in children if c.error)),
    }
    if failed:
        tags[FAILED_RUNS_TAG] = ",".join(c.run.run_id for c in failed)
    best = _best(children, goal) if metric else None
    if best is not None:
        tags[BEST_RUN_TAG] = best.run.run_id
        tags[BEST_VALUE_TAG] = repr(best.metric)
        tags[BEST_PARAMS_TAG] = json.dumps(best.parameters, ensure_ascii=False)
    for key, value in tags.items():
        client.set_tag(parent_id, key, value)
    if best is not None:
        client.log_metric(parent_id, metric, best.metric)
    client.log_text(parent_id, json.dumps({
        "metric": metric, "goal": goal if metric else None,
        "best_run_id": best.run.run_id if best else None,
        "children": [c.summary() for c in children],
    }, indent=2, ensure_ascii=False), SUMMARY_ARTIFACT)
    return best


def _report(parent_id: str, status: RunStatus, children: list[SweepChild],
            best: SweepChild | None, metric: str | None) -> None:
    lines = [f"sweep {parent_id} {status}:"]
    for child in children:
        values = " ".join(f"{k}={v}" for k, v in child.parameters.items())
        score = f" {metric}={child.metric:g}" if metric and child.metric is not None else ""
        run = f" run {child.run.run_id}" if child.run else f" ({child.error})" if \
            child.error else ""
        lines.append(f"  [{child.index}] {child.status:<11} {values}{score}{run}")
    if best is not None:
        lines.append(f"  best: run {best.run.run_id} with {metric}={best.metric:g}")
    elif metric:
        lines.append(f"  no successful run logged metric '{metric}'")
    say("\n".join(lines))
