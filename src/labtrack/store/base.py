"""The ``Store`` contract: persistence for experiments, runs, params, tags and metrics.

A store keeps data consistent (unique names, write-once params, append-only metric history,
latest values and summaries kept in step with it) but applies no policy: validation, limits,
messages about missing resources and search grammar live in ``labtrack.services``. Reads of
something that does not exist return ``None``; the service decides what that means.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from labtrack.entities import (
    DatasetInput,
    Experiment,
    LifecycleStage,
    LoggedModel,
    LoggedModelStatus,
    Metric,
    ModelOutput,
    Param,
    Run,
    RunInfo,
    RunStatus,
    RunTag,
    ViewType,
)
from labtrack.store.query import Comparison, OrderTerm
from labtrack.store.registry import RegistryStore

#: A service's rule for a write, called by the store inside the write's transaction before
#: anything is written, with the id and the lifecycle stage of the experiment or run written
#: to (``None``: there is none). It raises to refuse the write. Checking there costs no
#: separate read, and no concurrent delete can slip in between the check and the write.
LifecycleGuard = Callable[[str, "str | None"], None]


@dataclass(frozen=True, slots=True)
class MetricSeriesInfo:
    """A stored series: one (run, key) with its length and the run's start time."""

    series_id: int
    run_id: str
    key: str
    point_count: int
    run_start_time: int | None


@dataclass(frozen=True, slots=True)
class MetricBucket:
    """Summary of ``count`` consecutive points of a series (see ``metric_summary``).

    Each of first/last/min/max is a real point ``(step, timestamp, value)``; min and max skip
    NaN and are ``None`` when every point of the bucket is NaN.
    """

    bucket: int
    count: int
    first: tuple[int, int, float]
    last: tuple[int, int, float]
    min: tuple[int, int, float] | None
    max: tuple[int, int, float] | None


class Store(RegistryStore, ABC):
    """Persistence for tracking and registry data. Implementations must be safe to use from
    several threads and several processes at once."""

    # -- experiments -------------------------------------------------------------------------

    @abstractmethod
    def create_experiment(
        self, name: str, artifact_location: str | None, tags: dict[str, str], time_ms: int
    ) -> str:
        """Create an active experiment and return its id. Raises ``ResourceAlreadyExists``
        when any experiment (active or deleted) already has ``name``. Without
        ``artifact_location`` the experiment gets a folder under the store's artifact root."""

    @abstractmethod
    def get_experiment(self, experiment_id: str) -> Experiment | None: ...

    @abstractmethod
    def get_experiment_by_name(self, name: str) -> Experiment | None: ...

    @abstractmethod
    def search_experiments(
        self,
        view_type: ViewType,
        comparisons: Sequence[Comparison],
        order_by: Sequence[OrderTerm],
        max_results: int,
        offset: int,
    ) -> list[Experiment]:
        """Experiments matching all comparisons, ordered by ``order_by`` then by creation
        time (newest first) and id."""

    @abstractmethod
    def rename_experiment(self, experiment_id: str, new_name: str, time_ms: int) -> None:
        """Raises ``ResourceAlreadyExists`` when the name is taken."""

    @abstractmethod
    def set_experiment_lifecycle(
        self, experiment_id: str, stage: LifecycleStage, time_ms: int
    ) -> None:
        """Delete or restore an experiment together with its runs: deleting marks its active
        runs deleted at ``time_ms``; restoring brings back exactly the runs deleted with it."""

    @abstractmethod
    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None: ...

    @abstractmethod
    def delete_experiment_tag(self, experiment_id: str, key: str) -> bool:
        """Returns whether the tag existed."""

    # -- runs --------------------------------------------------------------------------------

    @abstractmethod
    def create_run(
        self,
        run_id: str,
        experiment_id: str,
        user_id: str,
        run_name: str,
        start_time: int,
        status: RunStatus,
        tags: dict[str, str],
        guard: LifecycleGuard | None = None,
    ) -> Run:
        """The run's artifact URI is ``<experiment artifact location>/<run_id>/artifacts``.
        ``guard`` sees the experiment."""

    @abstractmethod
    def get_run(self, run_id: str) -> Run | None: ...

    @abstractmethod
    def get_run_info(self, run_id: str) -> RunInfo | None:
        """The run without its data: cheap enough to call before every write."""

    @abstractmethod
    def update_run_info(
        self,
        run_id: str,
        status: RunStatus | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo:
        """Fields left ``None`` keep their value. A new name also updates the
        ``mlflow.runName`` tag so the two never disagree."""

    @abstractmethod
    def set_run_lifecycle(self, run_id: str, stage: LifecycleStage, time_ms: int) -> None: ...

    @abstractmethod
    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric],
        params: Sequence[Param],
        tags: Sequence[RunTag],
        guard: LifecycleGuard | None = None,
    ) -> None:
        """Write everything in one transaction. Metrics are appended to the history in the
        given order, and the latest values and summaries follow. An existing param with a
        different value raises ``ParamValueConflict`` and nothing is written. ``guard``, like
        that of the two methods below, sees the run."""

    @abstractmethod
    def append_metric_columns(
        self,
        run_id: str,
        columns: Mapping[str, tuple[Sequence[float], Sequence[int], Sequence[int]]],
        guard: LifecycleGuard | None = None,
    ) -> None:
        """Append ``{key: (values, timestamps, steps)}`` to the run's histories in one
        transaction: the bulk path of buffered logging, no per-point objects needed."""

    @abstractmethod
    def finish_run(
        self,
        run_id: str,
        columns: Mapping[str, tuple[Sequence[float], Sequence[int], Sequence[int]]],
        status: RunStatus,
        end_time: int,
        guard: LifecycleGuard | None = None,
    ) -> RunInfo:
        """Append the run's last buffered points and set its final status in one
        transaction (ending a run is the hottest write of a sweep)."""

    @abstractmethod
    def delete_tag(self, run_id: str, key: str) -> bool:
        """Returns whether the tag existed."""

    @abstractmethod
    def search_runs(
        self,
        experiment_ids: Sequence[str],
        comparisons: Sequence[Comparison],
        order_by: Sequence[OrderTerm],
        view_type: ViewType,
        max_results: int,
        offset: int,
    ) -> list[Run]:
        """Runs matching all comparisons. A comparison on a metric, param or tag the run
        lacks is false (``IS NULL`` excepted). Ties, and what ``order_by`` leaves unordered,
        go by start time (newest first) then run id; missing and NaN values sort last."""

    @abstractmethod
    def log_inputs(
        self, run_id: str, datasets: Sequence[DatasetInput], model_ids: Sequence[str]
    ) -> None:
        """Record datasets (deduplicated per experiment by name and digest) and logged
        models the run used."""

    @abstractmethod
    def log_outputs(self, run_id: str, outputs: Sequence[ModelOutput]) -> None:
        """Record logged models the run produced."""

    # -- logged models (MLflow 3) ------------------------------------------------------------

    @abstractmethod
    def create_logged_model(
        self,
        model_id: str,
        experiment_id: str,
        name: str,
        time_ms: int,
        model_type: str | None,
        source_run_id: str | None,
        params: dict[str, str],
        tags: dict[str, str],
    ) -> LoggedModel:
        """Artifacts live in ``<experiment artifact location>/models/<model_id>/artifacts``."""

    @abstractmethod
    def get_logged_model(self, model_id: str) -> LoggedModel | None: ...

    @abstractmethod
    def update_logged_model(
        self, model_id: str, time_ms: int, status: LoggedModelStatus | None = None,
        lifecycle_stage: LifecycleStage | None = None,
    ) -> None: ...

    @abstractmethod
    def set_logged_model_tags(self, model_id: str, tags: dict[str, str], time_ms: int) -> None:
        ...

    @abstractmethod
    def delete_logged_model_tag(self, model_id: str, key: str) -> bool: ...

    @abstractmethod
    def log_logged_model_params(self, model_id: str, params: dict[str, str]) -> None:
        """Params are write-once like run params (``ParamValueConflict``)."""

    @abstractmethod
    def search_logged_models(
        self,
        experiment_ids: Sequence[str],
        comparisons: Sequence[Comparison],
        order_by: Sequence[OrderTerm],
        max_results: int,
        offset: int,
    ) -> list[LoggedModel]:
        """Active logged models, newest first unless ordered otherwise."""

    # -- metric history ----------------------------------------------------------------------

    @abstractmethod
    def get_metric_history(
        self, run_id: str, key: str, max_results: int | None = None, offset: int = 0
    ) -> list[Metric]:
        """Points ordered by (timestamp, step, value) as MLflow orders them."""

    @abstractmethod
    def get_metric_series(
        self, run_ids: Sequence[str], keys: Sequence[str] | None
    ) -> list[MetricSeriesInfo]:
        """The stored series of these runs (all their keys when ``keys`` is None)."""

    @abstractmethod
    def read_metric_points(self, series_id: int) -> list[tuple[int, int, float]]:
        """Raw ``(step, timestamp, value)`` of a series in logging order."""

    @abstractmethod
    def read_metric_buckets(self, series_id: int, level: int) -> list[MetricBucket]:
        """The summaries of one level (``metric_summary.LEVEL_SIZES``) in bucket order."""

    @abstractmethod
    def read_metric_summary_points(self, series_id: int, level: int
                                   ) -> list[tuple[int, int, float]]:
        """The real points one level's buckets preserve (each bucket's first, last, minimum
        and maximum) as ``(step, timestamp, value)``, in no particular order and possibly
        repeated: what a chart reduces instead of the raw series."""

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the data lives, fit for a log line (no password)."""

    @property
    @abstractmethod
    def artifact_root(self) -> str:
        """Where experiments without an explicit artifact location keep their artifacts: a
        local folder or an object-store URI (see ``artifacts.artifact_root_uri``)."""

    def close(self) -> None:
        """Release connections. The store may be reopened implicitly by a later call."""
