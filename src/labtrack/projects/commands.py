"""``labtrack run`` and ``labtrack sweep``: run an MLproject once, or over a parameter grid."""

from __future__ import annotations

import argparse
import contextlib
import signal
from collections.abc import Iterator

RUN_EPILOG = """\
examples:
  labtrack run examples/project -P learning_rate=0.05
  labtrack run . -e evaluate.py -P data=./data.csv --experiment-name forecasting
  labtrack run path/to/repo#projects/demand -v main --env-manager virtualenv
  labtrack run . -P epochs=50 --backend ray --backend-config ray.json

The run gets the parameters, provenance tags (mlflow.source.type=PROJECT, entry point, git
commit / branch / repo URL, labtrack.source.git.dirty) and the command's output as
logs/output.txt. The command logs into that run with labtrack.start_run() or
mlflow.start_run(): LABTRACK_RUN_ID, LABTRACK_TRACKING_URI, LABTRACK_EXPERIMENT_ID and
MLFLOW_RUN_ID, MLFLOW_TRACKING_URI, MLFLOW_TRACKING_TOKEN, MLFLOW_EXPERIMENT_ID are set for
it. The store is LABTRACK_TRACKING_URI (default: the embedded store). Exit code 0 ends the
run FINISHED, anything else FAILED; Ctrl-C stops the command and ends it KILLED. labtrack
run exits with the command's exit code (130 after Ctrl-C).

With --backend ray the project folder (or the git commit) is submitted as a Ray job to the
cluster in --backend-config (e.g. {"address": "http://127.0.0.1:8265", "num_gpus": 1}); the
run gets the tag labtrack.ray.jobId, follows the job's status (PENDING -> SCHEDULED,
RUNNING, SUCCEEDED -> FINISHED, FAILED, STOPPED -> KILLED) and keeps the driver log as
logs/ray-driver.txt. --async returns once the job is submitted.
"""

SWEEP_EPILOG = """\
values (-P key=VALUES, repeatable):
  0.001,0.01,0.1     a list (write \\, for a comma inside a value)
  3:8                the integers 3 to 8, both included;  0:100:10  with a step
  anything else      a constant, the same for every run

examples:
  labtrack sweep examples/project -P learning_rate=0.01,0.05,0.2 -P epochs=10:50:20 \\
      --metric rmse --max-parallel 3
  labtrack sweep . -P lr=0.001,0.01,0.1 -P depth=3:8 --random 10 --seed 7 \\
      --max-parallel 4 --metric val_loss --goal min

Every combination becomes a child run (tag mlflow.parentRunId) of one parent run. A child
that fails is recorded and the others go on. With --metric, the parent records the best
child (tags labtrack.sweep.bestRunId, labtrack.sweep.bestValue, labtrack.sweep.bestParams)
and logs its value as the same metric; sweep/summary.json lists every child. The parent ends
FINISHED if at least one child succeeded (exit code 0), FAILED otherwise (exit code 1);
Ctrl-C stops every child and ends the parent KILLED (exit code 130). With --backend ray
every child is a Ray job, --max-parallel K of them submitted at a time.
"""


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a scheduler, `kill`) stops the project like Ctrl-C does: the child is stopped
    and the run ends KILLED rather than being left RUNNING."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(args: argparse.Namespace) -> int:
    from labtrack.projects.runner import parse_parameters, run_project

    parameters = parse_parameters(args.param)
    with _sigterm_as_interrupt():
        try:
            result = run_project(
                args.uri, entry_point=args.entry_point, version=args.version,
                parameters=parameters, experiment_name=args.experiment_name,
                experiment_id=args.experiment_id, run_name=args.run_name,
                env_manager=args.env_manager, stop_timeout=args.stop_timeout,
                backend=args.backend, backend_config=args.backend_config,
                asynchronous=args.asynchronous,
            )
        except KeyboardInterrupt:  # before the run existed: nothing to record
            return 130
    return result.shell_exit_code()


def _sweep(args: argparse.Namespace) -> int:
    from labtrack.projects.runner import parse_parameters
    from labtrack.projects.sweep import run_sweep

    parameters = parse_parameters(args.param)
    with _sigterm_as_interrupt():
        try:
            result = run_sweep(
                args.uri, parameters, entry_point=args.entry_point, version=args.version,
                experiment_name=args.experiment_name, experiment_id=args.experiment_id,
                run_name=args.run_name, env_manager=args.env_manager,
                max_parallel=args.max_parallel, random_count=args.random, seed=args.seed,
                metric=args.metric, goal=args.goal, stop_timeout=args.stop_timeout,
                backend=args.backend, backend_config=args.backend_config,
            )
        except KeyboardInterrupt:
            return 130
    return result.shell_exit_code()


def _common(parser: argparse.ArgumentParser, param_help: str) -> None:
    parser.add_argument("uri", metavar="URI",
                        help="the project: a folder, a git repository (folder or URL), "
                        "optionally with #subdir")
    parser.add_argument("-e", "--entry-point", default="main",
                        help="entry point of the MLproject file, or a .py/.sh file of the "
                        "project (default: main)")
    parser.add_argument("-v", "--version", default=None,
                        help="git commit, tag or branch to run (the repository is cloned to a "
                        "temporary folder); default: the folder as it is")
    parser.add_argument("-P", "--param", action="append", default=None, metavar="KEY=VALUE",
                        help=param_help)
    parser.add_argument("--experiment-name", default=None,
                        help="experiment of the run(s), created when missing (default: "
                        "$LABTRACK_EXPERIMENT_NAME / $LABTRACK_EXPERIMENT_ID, else Default)")
    parser.add_argument("--experiment-id", default=None, help="experiment id instead of name")
    parser.add_argument("--env-manager", choices=("local", "virtualenv"), default=None,
                        help="local: this Python; virtualenv: a cached virtualenv built from "
                        "the project's python_env.yaml (default: virtualenv when the project "
                        "has one, else local)")
    parser.add_argument("--stop-timeout", type=float, default=10.0, metavar="SECONDS",
                        help="after Ctrl-C, how long the command gets to exit after SIGTERM "
                        "before SIGKILL (default: 10)")
    parser.add_argument("-b", "--backend", choices=("local", "ray"), default="local",
                        help="where the command runs: local (a child process here, the "
                        "default) or ray (a Ray job on the cluster of --backend-config; "
                        'needs pip install "labtrack[ray]")')
    parser.add_argument("-c", "--backend-config", default=None, metavar="FILE|JSON",
                        help="the backend's configuration, a JSON file or JSON text; for "
                        "ray: address, num_cpus, num_gpus, memory, resources, runtime_env, "
                        "tracking_uri … (see the README)")


def add_commands(commands) -> None:
    """Add ``labtrack run`` and ``labtrack sweep``."""
    run = commands.add_parser(
        "run",
        help="run an MLproject (folder or git repository) as a tracked run",
        description="Run an entry point of an MLproject (MLflow's format) as one tracked run.",
        epilog=RUN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(run, "a parameter value (repeatable); values are checked against the entry "
            "point's types, undeclared ones are passed as --KEY VALUE")
    run.add_argument("--run-name", default=None, help="name of the run (default: generated)")
    run.add_argument("--async", dest="asynchronous", action="store_true",
                     help="with --backend ray: return once the job is submitted (the job "
                     "ends its run itself; needs an http(s) LABTRACK_TRACKING_URI)")
    run.set_defaults(handler=_run)

    sweep = commands.add_parser(
        "sweep",
        help="run an MLproject over a grid or random sample of parameter values",
        description="Run an entry point of an MLproject once per combination of parameter "
        "values, as child runs of one parent run.",
        epilog=SWEEP_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(sweep, "the values of a parameter: a list, a range or a constant (see below; "
            "repeatable)")
    sweep.add_argument("--run-name", default=None,
                       help="name of the parent run (children are named after it, -1, -2, "
                       "…)")
    sweep.add_argument("--random", type=int, default=None, metavar="N",
                       help="run N combinations drawn at random (no repeats) instead of the "
                       "whole grid")
    sweep.add_argument("--seed", type=int, default=None,
                       help="seed of --random (default: a random seed, recorded on the parent)")
    sweep.add_argument("--max-parallel", type=int, default=1, metavar="K",
                       help="runs at a time (default: 1)")
    sweep.add_argument("--metric", default=None, metavar="KEY",
                       help="metric that ranks the children; the parent records the best")
    sweep.add_argument("--goal", choices=("min", "max"), default="min",
                       help="whether the best --metric is the smallest or largest (default: "
                       "min)")
    sweep.set_defaults(handler=_sweep)
