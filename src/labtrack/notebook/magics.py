"""``%%mlrun`` and ``%mlrun``: tracking from notebook cells.

    %load_ext labtrack

    %%mlrun -e forecasting -n baseline --params lr,depth --live loss
    model = train(lr, depth)          # every cell line runs as usual, inside a run

    %mlrun log lr=0.01 optimizer=adam   # numbers become metrics, the rest params
    %mlrun runs metrics.loss < 0.1      # a table of runs
    %mlrun compare --last 3 --metrics loss,accuracy
    %mlrun models                       # the registry; %mlrun requests to approve
    %mlrun project examples/project -P alpha=0.5   # an MLproject run, live
    %mlrun project . --backend ray --backend-config ray.json   # … as a Ray job
    %mlrun help

A ``%%mlrun`` cell always leaves its run ended: FINISHED, FAILED (the traceback is saved with
the run) or KILLED on an interrupt. The run records the notebook, the cell, every cell
executed so far, the git state and the key package versions.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import shlex
import traceback
from collections.abc import Sequence
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.display import display

import labtrack
from labtrack.entities import RunStatus
from labtrack.errors import LabtrackError
from labtrack.notebook import provenance

ERROR_TAG = "labtrack.error"
_RUNS_LINE = re.compile(
    r"^\s*runs(?:\s+(?:-e|--experiment)\s+(?P<experiment>'[^']*'|\"[^\"]*\"|\S+))?"
    r"(?P<filter>.*)$", re.DOTALL)
ERROR_ARTIFACT = "error/traceback.txt"


class _Parser(argparse.ArgumentParser):
    """argparse that reports mistakes as IPython usage errors (no traceback, no exit)."""

    def error(self, message: str):
        raise UsageError(f"{message}\n\n{self.format_usage().strip()}\n"
                         "(%mlrun help explains every command.)")

    def exit(self, status: int = 0, message: str | None = None):
        if message:
            raise UsageError(message)
        raise UsageError(self.format_help())


def _cell_parser() -> _Parser:
    parser = _Parser(prog="%%mlrun", add_help=False,
                     description="Run the cell inside a tracked run.")
    parser.add_argument("-e", "--experiment", help="experiment name (created when missing)")
    parser.add_argument("-n", "--name", help="run name")
    parser.add_argument("--nested", action="store_true",
                        help="a child of the active run")
    parser.add_argument("--params", default="",
                        help="comma-separated variables whose values to log as params")
    parser.add_argument("--tags", nargs="*", default=[], metavar="KEY=VALUE",
                        help="tags to set on the run")
    parser.add_argument("--live", default=None, metavar="KEYS",
                        help="comma-separated metrics to chart live (default: all)")
    parser.add_argument("--no-widget", action="store_true",
                        help="do not show the live run widget")
    return parser


def _line_parser() -> _Parser:
    parser = _Parser(prog="%mlrun", add_help=False,
                     description="Track runs and use the registry from a notebook.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    start = commands.add_parser("start", help="start a run that later cells log into",
                                add_help=False)
    start.add_argument("-e", "--experiment")
    start.add_argument("-n", "--name")
    start.add_argument("--nested", action="store_true")
    start.add_argument("--tags", nargs="*", default=[], metavar="KEY=VALUE")
    end = commands.add_parser("end", help="end the active run", add_help=False)
    end.add_argument("--status", default="FINISHED",
                     choices=["FINISHED", "FAILED", "KILLED"])
    commands.add_parser("status", help="show the active (or last) run", add_help=False)
    log = commands.add_parser("log", help="log key=value pairs (numbers become metrics)",
                              add_help=False)
    log.add_argument("pairs", nargs="+", metavar="KEY=VALUE")
    log.add_argument("--step", type=int, default=None)
    runs = commands.add_parser("runs", help="a table of the experiment's runs",
                               add_help=False)
    runs.add_argument("filter", nargs="*", metavar="FILTER",
                      help="a search filter, e.g. metrics.loss < 0.1 and params.lr = '0.01'")
    runs.add_argument("-e", "--experiment",
                      help="experiment name (default: the last run's experiment)")
    compare = commands.add_parser("compare", help="chart runs' metrics side by side",
                                  add_help=False)
    compare.add_argument("run_ids", nargs="*", metavar="RUN_ID")
    compare.add_argument("--last", type=int, default=None, metavar="N",
                         help="the N most recent runs of the experiment")
    compare.add_argument("-e", "--experiment",
                         help="experiment of --last (default: the last run's experiment)")
    compare.add_argument("--metrics", default=None, metavar="KEYS",
                         help="comma-separated metric keys (default: all)")
    models = commands.add_parser("models", help="browse the model registry", add_help=False)
    models.add_argument("filter", nargs="*", metavar="FILTER",
                        help="a registry search filter, e.g. name LIKE 'churn%%'")
    requests = commands.add_parser(
        "requests", help="pending transition requests, to approve or reject", add_help=False)
    requests.add_argument("name", nargs="?", default=None, metavar="MODEL",
                          help="only this model's requests (default: every model)")
    project = commands.add_parser("project", help="run an MLproject as a tracked run, live",
                                  add_help=False)
    project.add_argument("uri", metavar="URI", help="a folder, a git repository or repo#subdir")
    project.add_argument("-e", "--entry-point", default="main")
    project.add_argument("-v", "--version", default=None, help="git commit or branch")
    project.add_argument("-P", "--param", action="append", default=[], metavar="KEY=VALUE")
    project.add_argument("--experiment-name", default=None,
                         help="experiment (default: the notebook's current one)")
    project.add_argument("-n", "--run-name", default=None)
    project.add_argument("--env-manager", choices=["local", "virtualenv"], default=None)
    project.add_argument("-b", "--backend", choices=["local", "ray"], default="local",
                         help="where it runs: here, or as a Ray job")
    project.add_argument("-c", "--backend-config", default=None, metavar="FILE|JSON",
                         help="the Ray backend's configuration (address, resources, …)")
    project.add_argument("--async", dest="asynchronous", action="store_true",
                         help="with --backend ray: return once the job is submitted")
    register = commands.add_parser("register", help="register a run's model",
                                   add_help=False)
    register.add_argument("source", metavar="RUN_ID[/PATH]")
    register.add_argument("name", metavar="NAME")
    commands.add_parser("help", help="this help", add_help=False)
    return parser


def _key_values(pairs: Sequence[str], what: str) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise UsageError(f"{what} must be KEY=VALUE, got '{pair}'.")
        out[key] = value
    return out


def _number(text: str) -> float | None:
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


@magics_class
class MlrunMagics(Magics):
    """``%mlrun`` (line) and ``%%mlrun`` (cell)."""

    def __init__(self, shell):
        super().__init__(shell)
        self.widgets: list[Any] = []  # live widgets this session showed, newest last

    @line_cell_magic
    def mlrun(self, line: str, cell: str | None = None):
        """Tracked runs from notebook cells; ``%mlrun help`` lists the commands."""
        try:
            argv = shlex.split(line)
        except ValueError as error:
            raise UsageError(f"Could not read the arguments: {error}") from None
        if cell is not None:
            return self._run_cell(_cell_parser().parse_args(argv), cell)
        if not argv:
            return self._help()
        if argv[0] == "runs":
            return self._runs(line)
        if argv[0] == "models":
            # Like runs: the filter's quotes belong to the search grammar, so take it verbatim.
            return self._models(line.split("models", 1)[1].strip())
        return self._command(argv)

    # -- %%mlrun -----------------------------------------------------------------------------

    def _start(self, experiment: str | None, name: str | None, nested: bool,
               tags: dict[str, str], cell: str | None) -> labtrack.ActiveRun:
        if labtrack.active_run() is not None and not nested:
            raise UsageError(
                f"Run {labtrack.active_run().run_id} is already active: end it with "
                "'%mlrun end', or pass --nested to start a child run.")
        experiment_id = None
        if experiment:
            experiment_id = labtrack.client.fluent._get_or_create_experiment(
                labtrack.client.fluent._get_client(), experiment).experiment_id
        captured = provenance.capture(self.shell, cell)
        run = labtrack.start_run(experiment_id=experiment_id, run_name=name, nested=nested,
                                 tags={**captured.tags, **tags})
        for path, text in captured.artifacts.items():
            labtrack.log_text(text, path)
        if captured.notebook_file is not None:
            labtrack.log_artifact(captured.notebook_file, "notebook")
        return run

    def _show(self, run_id: str, keys: Sequence[str] | None = None):
        from labtrack.widgets import LiveRun

        widget = LiveRun(run_id, keys=list(keys) if keys else None)
        self.widgets.append(widget)
        display(widget)
        return widget

    def _run_cell(self, args: argparse.Namespace, cell: str):
        tags = _key_values(args.tags, "--tags")
        param_names = [p.strip() for p in args.params.split(",") if p.strip()]
        run = self._start(args.experiment, args.name, args.nested, tags, cell)
        widget = None
        if not args.no_widget:
            live = [k.strip() for k in args.live.split(",") if k.strip()] if args.live else None
            widget = self._show(run.run_id, live)
        try:
            result = self._execute(cell)
            self._log_variables(param_names)
        except KeyboardInterrupt:
            self._end(run, RunStatus.KILLED)
            raise
        except BaseException as error:
            self._record_failure(error)
            self._end(run, RunStatus.FAILED)
            raise
        self._end(run, RunStatus.FINISHED)
        if widget is not None:
            widget.refresh()
        return result

    def _execute(self, cell: str):
        """Run the cell's code in the user namespace; return its last expression's value
        (shown as the cell's output, as for any cell)."""
        source = self.shell.transform_cell(cell)
        tree = self.shell.compile.ast_parse(source)
        tree = self.shell.transform_ast(tree)
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        filename = self.shell.compile.cache(source)  # tracebacks show the cell's lines
        exec(self.shell.compile(tree, filename, "exec"), self.shell.user_ns)
        if last is not None:
            return eval(self.shell.compile(last, filename, "eval"), self.shell.user_ns)
        return None

    def _record_failure(self, error: BaseException) -> None:
        text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        try:
            labtrack.log_text(text, ERROR_ARTIFACT)
            summary = f"{type(error).__name__}: {error}"
            labtrack.set_tag(ERROR_TAG, summary if len(summary) <= 8000 else
                             summary[:7900] + f"… (full traceback in {ERROR_ARTIFACT})")
        except LabtrackError as problem:  # the cell's own error matters more
            error.add_note(f"labtrack could not record the failure: {problem}")

    def _log_variables(self, names: Sequence[str]) -> None:
        missing = [n for n in names if n not in self.shell.user_ns]
        if missing:
            raise UsageError(f"--params names undefined variables: {', '.join(missing)}")
        if names:
            labtrack.log_params({n: self.shell.user_ns[n] for n in names})

    @staticmethod
    def _end(run: labtrack.ActiveRun, status: RunStatus) -> None:
        if labtrack.active_run() is not None and labtrack.active_run().run_id == run.run_id:
            labtrack.end_run(status)

    # -- %mlrun COMMAND ----------------------------------------------------------------------

    def _command(self, argv: list[str]):
        command = argv[0]
        if command == "help":
            return self._help()
        args = _line_parser().parse_args(argv)
        handler = getattr(self, f"_cmd_{command}")
        return handler(args)

    def _help(self):
        print(__doc__.strip())
        print()
        print(_line_parser().format_help())

    def _cmd_start(self, args):
        run = self._start(args.experiment, args.name, args.nested,
                          _key_values(args.tags, "--tags"), None)
        print(f"Started run {run.info.run_name} ({run.run_id}); end it with %mlrun end.")
        return self._show(run.run_id)

    def _cmd_end(self, args):
        active = labtrack.active_run()
        if active is None:
            raise UsageError("No run is active.")
        labtrack.end_run(args.status)
        print(f"Ended run {active.info.run_name} ({active.run_id}): {args.status}.")

    def _cmd_status(self, args):
        active = labtrack.active_run()
        run = active or labtrack.last_active_run()
        if run is None:
            raise UsageError("No run yet: start one with %%mlrun or %mlrun start.")
        return self._show(run.info.run_id if active is None else active.run_id)

    def _cmd_log(self, args):
        values = _key_values(args.pairs, "log")
        metrics = {k: n for k, v in values.items() if (n := _number(v)) is not None}
        params = {k: v for k, v in values.items() if k not in metrics}
        if metrics:
            labtrack.log_metrics(metrics, step=args.step)
        if params:
            labtrack.log_params(params)
        labtrack.flush()
        print("Logged " + ", ".join(
            [f"metric {k}={v:g}" for k, v in metrics.items()]
            + [f"param {k}={json.dumps(v)}" for k, v in params.items()]) + ".")

    def _runs(self, line: str):
        """``%mlrun runs [-e NAME] [FILTER]``: the filter is taken verbatim (its quotes
        matter to the search grammar, so it is not split like other arguments)."""
        from labtrack.widgets import RunsTable

        match = _RUNS_LINE.match(line)
        if match is None:  # pragma: no cover - the pattern accepts any line starting with runs
            raise UsageError("usage: %mlrun runs [-e EXPERIMENT] [FILTER]")
        name = shlex.split(match["experiment"])[0] if match["experiment"] else None
        experiment_ids = self._experiment_ids(name)
        widget = RunsTable(experiment_ids=experiment_ids, filter_string=match["filter"].strip())
        self.widgets.append(widget)
        return widget

    @staticmethod
    def _experiment_ids(name: str | None) -> list[str] | None:
        """The named experiment, else the one the last run logged to: after ``%%mlrun -e
        forecasts`` cells, ``runs`` lists forecasts and ``compare --last 3`` charts the last
        three of them (None: the current experiment)."""
        if name is not None:
            experiment = labtrack.get_experiment_by_name(name)
            if experiment is None:
                raise UsageError(f"No experiment named '{name}'.")
            return [experiment.experiment_id]
        last = labtrack.last_active_run()
        return [last.info.experiment_id] if last is not None else None

    def _cmd_compare(self, args):
        from labtrack.widgets import MetricChart

        run_ids = list(args.run_ids)
        if args.last:
            recent = labtrack.search_runs(
                self._experiment_ids(args.experiment),
                max_results=args.last, output_format="list",
                order_by=["attributes.start_time DESC"])
            run_ids += [run.info.run_id for run in recent]
        if not run_ids:
            raise UsageError("Name runs to compare, or use --last N.")
        keys = [k.strip() for k in args.metrics.split(",") if k.strip()] if args.metrics \
            else None
        widget = MetricChart(run_ids=list(dict.fromkeys(run_ids)), keys=keys)
        self.widgets.append(widget)
        return widget

    def _models(self, filter_string: str):
        from labtrack.widgets import RegistryBrowser

        widget = RegistryBrowser(filter_string=filter_string)
        self.widgets.append(widget)
        return widget

    def _cmd_requests(self, args):
        from labtrack.widgets import TransitionRequests

        widget = TransitionRequests(name=args.name)
        self.widgets.append(widget)
        return widget

    def _cmd_project(self, args):
        """Like ``labtrack run``, from a cell: the child's output (a Ray job's driver log)
        streams into the cell, its run shows live beneath, and interrupting the kernel stops
        it (the run ends KILLED). With ``--async`` the cell returns once the Ray job is
        submitted and the widget goes on following the run."""
        from labtrack.client import fluent
        from labtrack.projects import ProjectError, run_project
        from labtrack.projects.runner import parse_parameters

        def show(run_id: str) -> None:
            try:
                self._show(run_id)
            except Exception as error:  # the run goes on without its widget
                print(f"labtrack: cannot show the live run: {error}")

        experiment_id = None if args.experiment_name else fluent._current_experiment_id(
            fluent._get_client())
        try:
            result = run_project(
                args.uri, entry_point=args.entry_point, version=args.version,
                parameters=parse_parameters(args.param),
                experiment_name=args.experiment_name, experiment_id=experiment_id,
                run_name=args.run_name, env_manager=args.env_manager,
                tracking_uri=labtrack.get_tracking_uri(), on_run=show,
                backend=args.backend, backend_config=args.backend_config,
                asynchronous=args.asynchronous)
        except ProjectError as error:
            raise UsageError(str(error)) from None
        if result.status == RunStatus.KILLED:
            raise KeyboardInterrupt
        return result

    def _cmd_register(self, args):
        run_id, _, path = args.source.partition("/")
        version = labtrack.register_model(f"runs:/{run_id}/{path or 'model'}", args.name)
        print(f"Registered {args.name} version {version.version} from run {run_id}.")
        return version


def load(shell) -> None:
    shell.register_magics(MlrunMagics)
