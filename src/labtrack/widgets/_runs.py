"""What the comparison widgets share: reading a selection of runs, naming them in legends,
turning a ``params.<k>`` / ``metrics.<k>`` column into numbers a chart can place, and the
colours the browser uses, so a static fallback matches the live widget."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from labtrack.entities import Run
from labtrack.errors import LabtrackError

# The browser's palette (labextension/widgets/lib/colors.ts): a run keeps its colour everywhere.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
           "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")

COLUMN_SOURCES = ("params", "metrics")
LOG_AXIS_RATIO = 1000  # a numeric axis spanning this factor or more is drawn in log scale


def short_run_id(run_id: str) -> str:
    """The last 8 hex digits (as the browser's ``shortRunId``): labtrack's UUIDv7 run ids
    start with their creation time, the same for runs started together."""
    return run_id[-8:]


def color_for(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def load_runs(service, run_ids: Sequence[str]) -> tuple[list[Run], list[str]]:
    """The runs that exist, in ``run_ids`` order (duplicates dropped), and an error line for
    each one that could not be read (unknown id, bad id…)."""
    runs, problems, seen = [], [], set()
    for run_id in run_ids:
        if run_id in seen:
            continue
        seen.add(run_id)
        try:
            runs.append(service.get_run(run_id))
        except LabtrackError as error:
            problems.append(str(error))
    return runs, problems


def run_labels(runs: Sequence[Run]) -> dict[str, str]:
    """Legend labels: the run name, with the start of the id when two runs share a name."""
    names = Counter(run.info.run_name for run in runs)
    return {
        run.info.run_id: (run.info.run_name if run.info.run_name and names[run.info.run_name] == 1
                          else f"{run.info.run_name or 'run'} ({short_run_id(run.info.run_id)})")
        for run in runs
    }


def run_entries(runs: Sequence[Run]) -> list[dict]:
    """The ``runs`` trait: one JSON entry per run, in colour order."""
    labels = run_labels(runs)
    return [{"run_id": run.info.run_id, "name": run.info.run_name,
             "label": labels[run.info.run_id], "status": str(run.info.status)}
            for run in runs]


def check_column(name: str) -> str:
    """``params.<key>`` or ``metrics.<key>``, else a ValueError saying so."""
    source, dot, key = str(name).partition(".")
    if source not in COLUMN_SOURCES or not dot or not key:
        raise ValueError(
            f"'{name}' is not a column: use 'params.<key>' or 'metrics.<key>'.")
    return name


def available_columns(runs: Sequence[Run]) -> tuple[list[str], list[str]]:
    """Every param key and metric key the runs have, sorted."""
    params = sorted({k for run in runs for k in run.data.params})
    metrics = sorted({m.key for run in runs for m in run.data.metric_objects})
    return params, metrics


@dataclass(frozen=True)
class Column:
    """One column across runs as a chart places it. Numeric columns hold their values;
    categorical ones (params that are not all numbers) hold each run's category index.
    NaN: the run has no value (or, for metrics, a value that is not finite)."""

    name: str
    kind: str  # "numeric" | "categorical"
    values: tuple[float, ...]
    categories: tuple[str, ...] = ()
    raw: tuple[str | float | None, ...] = ()  # what the run recorded, for tables and tooltips

    @property
    def label(self) -> str:
        return self.name.partition(".")[2]

    def finite(self) -> list[float]:
        return [v for v in self.values if not math.isnan(v)]

    def index(self) -> dict:
        """The JSON description the browser needs to draw an axis for this column."""
        present = self.finite()
        return {
            "name": self.name,
            "label": self.label,
            "kind": self.kind,
            "categories": list(self.categories),
            "min": min(present) if present else None,
            "max": max(present) if present else None,
            "missing": len(self.values) - len(present),
            "log": self.log,
        }

    @property
    def log(self) -> bool:
        """Whether a log axis shows it better: positive numbers spanning three decades or
        more (learning rates, weight decays…)."""
        present = self.finite()
        return (self.kind == "numeric" and bool(present) and min(present) > 0
                and max(present) / min(present) >= LOG_AXIS_RATIO)

    def display(self, row: int) -> str:
        value = self.raw[row] if self.raw else None
        return "" if value is None else str(value)


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def column(runs: Sequence[Run], name: str) -> Column:
    source, _, key = check_column(name).partition(".")
    if source == "metrics":
        raw = [run.data.metrics.get(key) for run in runs]
        values = tuple(v if v is not None and math.isfinite(v) else math.nan for v in raw)
        return Column(name, "numeric", values, raw=tuple(raw))
    raw = [run.data.params.get(key) for run in runs]
    numbers = [None if v is None else _number(v) for v in raw]
    if all(n is not None for n, v in zip(numbers, raw) if v is not None):
        return Column(name, "numeric",
                      tuple(math.nan if n is None else n for n in numbers), raw=tuple(raw))
    categories = tuple(sorted({v for v in raw if v is not None}))
    position = {c: i for i, c in enumerate(categories)}
    values = tuple(math.nan if v is None else float(position[v]) for v in raw)
    return Column(name, "categorical", values, categories, raw=tuple(raw))
