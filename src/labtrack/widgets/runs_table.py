"""``RunsTable``: the runs of one or more experiments as a table that stays smooth with
thousands of rows: choose param/metric/tag columns, sort and filter in the kernel with the
search grammar, and select runs for the next cell (``widget.selected_run_ids``,
``widget.runs``).

The browser keeps only the visible rows in the DOM. The kernel sends the rows as one JSON
list of compact arrays (``rows``) whose positions ``row_columns`` names: five attributes
every row needs, then the chosen ``columns``. Choosing other columns rebuilds the rows from
the runs already read; editing the filter or the sort searches again.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import anywidget
import traitlets
from anywidget.experimental import command

from labtrack.client import TrackingClient
from labtrack.entities import Run, ViewType
from labtrack.services.search import parse_order_by
from labtrack.services.validation import MAX_RESULTS_SEARCH_RUNS
from labtrack.widgets._encoding import json_number
from labtrack.widgets._fallback import html_table
from labtrack.widgets._runs import short_run_id

STATIC = Path(__file__).parent / "static"

#: What every row carries, in this order, before the chosen columns.
ROW_PREFIX = ("attributes.run_id", "attributes.run_name", "attributes.status",
              "attributes.start_time", "attributes.end_time")
#: Attributes that may be chosen as columns (name, status, start and duration always show).
ATTRIBUTE_COLUMNS = ("attributes.user_id", "attributes.end_time", "attributes.experiment_id",
                     "attributes.artifact_uri", "attributes.run_id")
_ATTRIBUTES = {"run_id", "run_name", "status", "start_time", "end_time", "user_id",
               "experiment_id", "artifact_uri"}
_PREFIXES = {"attribute": "attributes", "attributes": "attributes", "metric": "metrics",
             "metrics": "metrics", "param": "params", "params": "params", "tag": "tags",
             "tags": "tags"}
_ENTITY_PREFIX = {"attribute": "attributes", "metric": "metrics", "param": "params",
                  "tag": "tags"}
#: Tags every run has that would only repeat another column.
_HIDDEN_TAGS = {"mlflow.runName"}
#: How many metrics and how many params show before the user chooses.
DEFAULT_PER_KIND = 8
#: Rows in the static fallback.
FALLBACK_ROWS = 100


def _column(name: Any) -> str:
    """``name`` as a column key (``metrics.acc``; ``metric.acc`` is read as that too)."""
    if not isinstance(name, str):
        raise traitlets.TraitError(f"A column is a string such as 'metrics.acc', not {name!r}.")
    prefix, dot, key = name.partition(".")
    canonical = _PREFIXES.get(prefix)
    if not dot or not key or canonical is None:
        raise traitlets.TraitError(
            f"Invalid column {name!r}: write attributes.<name>, params.<key>, metrics.<key> "
            f"or tags.<key>.")
    if canonical == "attributes" and key not in _ATTRIBUTES:
        raise traitlets.TraitError(
            f"Invalid column {name!r}: attributes are {', '.join(sorted(_ATTRIBUTES))}.")
    return f"{canonical}.{key}"


def _unique(values: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _value_getter(column: str) -> Callable[[Run, dict[str, float]], Any]:
    """How one cell of ``column`` is read from a run (and its latest metrics)."""
    prefix, _, key = column.partition(".")
    if prefix == "metrics":
        return lambda run, metrics: json_number(metrics.get(key))
    if prefix == "params":
        return lambda run, metrics: run.data.params.get(key)
    if prefix == "tags":
        return lambda run, metrics: run.data.tags.get(key)
    if key == "status":
        return lambda run, metrics: str(run.info.status)
    return lambda run, metrics: getattr(run.info, key)


def discover_columns(runs: Sequence[Run]) -> list[str]:
    """Every column the runs can show: the choosable attributes, then their params, metrics
    and tags (user tags before the ``mlflow.*``/``labtrack.*`` system tags), each sorted."""
    params: set[str] = set()
    metrics: set[str] = set()
    tags: set[str] = set()
    for run in runs:
        params.update(run.data.params)
        metrics.update(m.key for m in run.data.metric_objects)
        tags.update(run.data.tags)
    tags -= _HIDDEN_TAGS
    system = sorted(t for t in tags if t.startswith(("mlflow.", "labtrack.")))
    user = sorted(tags.difference(system))
    return [*ATTRIBUTE_COLUMNS, *(f"metrics.{k}" for k in sorted(metrics)),
            *(f"params.{k}" for k in sorted(params)), *(f"tags.{k}" for k in user),
            *(f"tags.{k}" for k in system)]


def default_columns(available: Sequence[str], per_kind: int = DEFAULT_PER_KIND) -> list[str]:
    """What shows before the user chooses: the first metrics, then the first params."""
    metrics = [c for c in available if c.startswith("metrics.")][:per_kind]
    params = [c for c in available if c.startswith("params.")][:per_kind]
    return metrics + params


def order_by_clause(column: str, ascending: bool = True) -> str:
    """An ``order_by`` clause for a column key, quoting keys the grammar cannot read bare."""
    prefix, _, key = column.partition(".")
    bare = key and all(ch.isalnum() or ch in "_.-/:" for ch in key)
    written = key if bare else '"' + key.replace('"', '""') + '"'
    return f"{prefix}.{written} {'ASC' if ascending else 'DESC'}"


def _format_time(ms: int | None) -> str:
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S") if ms else ""


def _format_duration(start: int | None, end: int | None) -> str:
    if not start or not end:
        return ""
    seconds = max(0, round((end - start) / 1000))
    h, m, s = seconds // 3600, seconds % 3600 // 60, seconds % 60
    return f"{h}h {m}m {s}s" if h else f"{m}m {s}s" if m else f"{s}s"


class _FallbackRows(Sequence):
    """The rows of the static table, formatted only for the ones it shows."""

    def __init__(self, widget: RunsTable):
        self._rows = widget.rows
        self._selected = set(widget.selected_run_ids)
        self._extra = len(widget.row_columns) - len(ROW_PREFIX)

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        run_id, name, status, start, end, *values = self._rows[index]
        return ["✓" if run_id in self._selected else "", status, f"{name} ({short_run_id(run_id)})",
                _format_time(start), _format_duration(start, end),
                *values[:self._extra]]


class RunsTable(anywidget.AnyWidget):
    """The runs of ``experiment_ids`` (default: the current experiment) as a table.

    :param experiment_ids: the experiments whose runs are listed.
    :param filter_string: MLflow's search grammar, e.g. ``metrics.acc > 0.9 AND
        params.model = 'cnn'``; a bad filter is shown in the widget, not raised.
    :param order_by: clauses such as ``["metrics.acc DESC"]`` (default: newest first).
    :param client: the client to read with (default: the current tracking URI).
    :param max_runs: at most this many runs are read; ``truncated`` says when there were more.
    :param columns: the columns to show (default: the first metrics and params found).
    """

    _esm = STATIC / "runs_table.js"
    _css = STATIC / "widgets.css"

    experiment_ids = traitlets.List(traitlets.Unicode()).tag(sync=True)
    experiment_names = traitlets.Dict().tag(sync=True)  # id → name, for titles and cells
    filter_string = traitlets.Unicode("").tag(sync=True)
    order_by = traitlets.List(traitlets.Unicode()).tag(sync=True)
    sort_keys = traitlets.List().tag(sync=True)  # [[column, ascending], …] from order_by
    max_runs = traitlets.Int(10_000).tag(sync=True)
    row_columns = traitlets.List(traitlets.Unicode()).tag(sync=True)
    rows = traitlets.List().tag(sync=True)  # [[run_id, name, status, start, end, *values], …]
    truncated = traitlets.Bool(False).tag(sync=True)  # more runs matched than max_runs
    available_columns = traitlets.List(traitlets.Unicode()).tag(sync=True)
    columns = traitlets.List(traitlets.Unicode()).tag(sync=True)
    selected_run_ids = traitlets.List(traitlets.Unicode()).tag(sync=True)
    loading = traitlets.Bool(False).tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)

    def __init__(self, experiment_ids: Sequence[str] | str | None = None,
                 filter_string: str = "", order_by: Sequence[str] | None = None,
                 client: TrackingClient | None = None, max_runs: int = 10_000,
                 columns: Sequence[str] | None = None, **kwargs):
        import labtrack
        from labtrack.client import fluent

        self._client = client or TrackingClient(labtrack.get_tracking_uri())
        if experiment_ids is None:
            experiment_ids = [fluent._current_experiment_id(self._client)]
        elif isinstance(experiment_ids, str):
            experiment_ids = [experiment_ids]
        if isinstance(order_by, str):
            order_by = [order_by]
        self._ready = False
        self._updating = False
        self._columns_chosen = columns is not None
        self._runs: list[Run] = []
        super().__init__(
            experiment_ids=[str(e) for e in experiment_ids], filter_string=filter_string or "",
            order_by=list(order_by or ()), max_runs=max_runs, columns=list(columns or ()),
            **kwargs)
        self._ready = True
        self.refresh()

    # -- validation --------------------------------------------------------------------------

    @traitlets.validate("columns")
    def _valid_columns(self, proposal):
        return _unique([_column(c) for c in proposal["value"]])

    @traitlets.validate("selected_run_ids")
    def _valid_selection(self, proposal):
        return _unique(proposal["value"])

    @traitlets.validate("max_runs")
    def _valid_max_runs(self, proposal):
        if proposal["value"] < 1:
            raise traitlets.TraitError(f"max_runs must be at least 1, not {proposal['value']}.")
        return proposal["value"]

    # -- reacting to the front end (and to Python assignments) -------------------------------

    @traitlets.observe("filter_string", "order_by", "experiment_ids", "max_runs")
    def _on_query(self, change) -> None:
        if self._ready and not self._updating:
            self.refresh()

    @traitlets.observe("columns")
    def _on_columns(self, change) -> None:
        if self._ready and not self._updating:
            self._columns_chosen = True
            with self.hold_sync():
                self.row_columns, self.rows = self._payload()

    @command
    def _refresh(self, msg: Any, buffers: list[bytes]) -> tuple[dict[str, Any], list[bytes]]:
        """The refresh button: search again; answers with the outcome."""
        self.refresh()
        return {"error": self.error, "count": len(self.rows)}, []

    # -- reading -----------------------------------------------------------------------------

    def refresh(self) -> None:
        """Search again with the current filter and sort, and send the rows to the browser.

        A bad filter or sort, or a store that cannot be read, is shown in ``error`` (the rows
        of the last good search stay)."""
        self.loading = True
        try:
            runs, truncated = self._search()
            sort_keys = [[f"{_ENTITY_PREFIX[str(term.entity)]}.{term.key}", term.ascending]
                         for term in parse_order_by(self.order_by)]
            names = self._experiment_names()
        except Exception as error:  # shown in the widget: a cell must not fail on a typo
            with self.hold_sync():
                self.error = getattr(error, "message", None) or str(error)
                self.loading = False
            return
        self._runs = runs
        available = discover_columns(runs)
        self._updating = True
        try:
            with self.hold_sync():
                if not self._columns_chosen:
                    self.columns = default_columns(available)
                self.available_columns = available
                self.experiment_names = names
                self.row_columns, self.rows = self._payload()
                self.sort_keys = sort_keys
                self.truncated = truncated
                self.error = ""
                self.loading = False
        finally:
            self._updating = False

    def _search(self) -> tuple[list[Run], bool]:
        runs: list[Run] = []
        if not self.experiment_ids:
            return runs, False
        token = None
        while True:
            page = self._client.search_runs(
                self.experiment_ids, self.filter_string,
                max_results=min(self.max_runs - len(runs), MAX_RESULTS_SEARCH_RUNS),
                order_by=self.order_by or None, page_token=token)
            runs.extend(page)
            token = page.token
            if not token:
                return runs, False
            if len(runs) >= self.max_runs:
                return runs, True

    def _experiment_names(self) -> dict[str, str]:
        return {e: self._client.get_experiment(e).name for e in self.experiment_ids}

    def _payload(self) -> tuple[list[str], list[list[Any]]]:
        row_columns = [*ROW_PREFIX, *self.columns]
        extra = [_value_getter(c) for c in self.columns]
        rows = []
        for run in self._runs:
            info = run.info
            metrics = {m.key: m.value for m in run.data.metric_objects}
            rows.append([info.run_id, info.run_name, str(info.status), info.start_time,
                         info.end_time, *(get(run, metrics) for get in extra)])
        return row_columns, rows

    # -- for the next cell -------------------------------------------------------------------

    @property
    def runs(self) -> list[Run]:
        """The selected runs, read again now, in the order they were selected."""
        wanted = list(self.selected_run_ids)
        if not wanted:
            return []
        quoted = ", ".join("'" + run_id.replace("'", "''") + "'" for run_id in wanted)
        found = {run.info.run_id: run for run in self._client.search_runs(
            self.experiment_ids, f"attributes.run_id IN ({quoted})",
            run_view_type=ViewType.ALL, max_results=len(wanted))} if self.experiment_ids else {}
        for run_id in wanted:  # selected in Python from another experiment
            if run_id not in found:
                try:
                    found[run_id] = self._client.get_run(run_id)
                except Exception:  # deleted for good since it was selected
                    continue
        return [found[run_id] for run_id in wanted if run_id in found]

    @property
    def all_runs(self) -> list[Run]:
        """Every run the table lists, in its order (as last read)."""
        return list(self._runs)

    # -- saved notebooks ---------------------------------------------------------------------

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return None
        data, metadata = bundle
        names = ", ".join(self.experiment_names.get(e, e) for e in self.experiment_ids)
        caption = f"labtrack runs of {names}: {len(self.rows)}"
        if self.truncated:
            caption += f" (the first {self.max_runs})"
        if self.filter_string:
            caption += f" matching {self.filter_string}"
        if self.selected_run_ids:
            caption += f", {len(self.selected_run_ids)} selected"
        columns = ["", "status", "run", "start time", "duration", *self.row_columns[
            len(ROW_PREFIX):]]
        table = html_table(columns, _FallbackRows(self), caption=caption, limit=FALLBACK_ROWS)
        if self.error:
            table = f"<p class='labtrack-error'>{html.escape(self.error)}</p>{table}"
        data["text/html"] = table
        return data, metadata
