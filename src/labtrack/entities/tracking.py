"""Tracking entities: experiments, runs and what a run records.

``to_dict()`` emits MLflow's JSON field names (``run_id``/``run_uuid``, ``start_time``,
``lifecycle_stage`` …) so the REST server can send entities unchanged and the TypeScript side
can mirror them field for field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple


class RunStatus(StrEnum):
    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    @property
    def is_terminated(self) -> bool:
        return self in (RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED)


class LifecycleStage(StrEnum):
    ACTIVE = "active"
    DELETED = "deleted"


class ViewType(StrEnum):
    """Which lifecycle stages a search returns."""

    ACTIVE_ONLY = "ACTIVE_ONLY"
    DELETED_ONLY = "DELETED_ONLY"
    ALL = "ALL"

    @property
    def stages(self) -> tuple[LifecycleStage, ...]:
        if self is ViewType.ACTIVE_ONLY:
            return (LifecycleStage.ACTIVE,)
        if self is ViewType.DELETED_ONLY:
            return (LifecycleStage.DELETED,)
        return (LifecycleStage.ACTIVE, LifecycleStage.DELETED)


def _key_values(mapping: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in mapping.items()]


class Metric(NamedTuple):
    """One metric point.

    A NamedTuple rather than a dataclass: millions of points are created when a long history
    is read, and tuple construction is several times cheaper.
    """

    key: str
    value: float
    timestamp: int
    step: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "value": self.value, "timestamp": self.timestamp,
                "step": self.step}

    def same_point(self, other: Metric) -> bool:
        """Equality that treats NaN as equal to NaN (the tuple ``==`` does not)."""
        if self.key != other.key or self.timestamp != other.timestamp or self.step != other.step:
            return False
        if math.isnan(self.value):
            return math.isnan(other.value)
        return self.value == other.value


@dataclass(frozen=True, slots=True)
class Param:
    key: str
    value: str

    def to_dict(self) -> dict[str, str]:
        return {"key": self.key, "value": self.value}


@dataclass(frozen=True, slots=True)
class RunTag:
    key: str
    value: str

    def to_dict(self) -> dict[str, str]:
        return {"key": self.key, "value": self.value}


@dataclass(frozen=True, slots=True)
class ExperimentTag:
    key: str
    value: str

    def to_dict(self) -> dict[str, str]:
        return {"key": self.key, "value": self.value}


@dataclass(frozen=True, slots=True)
class Experiment:
    experiment_id: str
    name: str
    artifact_location: str
    lifecycle_stage: LifecycleStage
    creation_time: int | None = None
    last_update_time: int | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "experiment_id": self.experiment_id,
            "name": self.name,
            "artifact_location": self.artifact_location,
            "lifecycle_stage": str(self.lifecycle_stage),
        }
        if self.last_update_time is not None:
            out["last_update_time"] = self.last_update_time
        if self.creation_time is not None:
            out["creation_time"] = self.creation_time
        out["tags"] = _key_values(self.tags)
        return out


@dataclass(frozen=True, slots=True)
class RunInfo:
    run_id: str
    experiment_id: str
    run_name: str
    user_id: str
    status: RunStatus
    start_time: int | None
    end_time: int | None
    artifact_uri: str
    lifecycle_stage: LifecycleStage

    @property
    def run_uuid(self) -> str:
        """MLflow's legacy name for ``run_id``."""
        return self.run_id

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "run_id": self.run_id,
            "run_uuid": self.run_id,
            "run_name": self.run_name,
            "experiment_id": self.experiment_id,
            "user_id": self.user_id,
            "status": str(self.status),
        }
        if self.start_time is not None:
            out["start_time"] = self.start_time
        if self.end_time is not None:
            out["end_time"] = self.end_time
        out["artifact_uri"] = self.artifact_uri
        out["lifecycle_stage"] = str(self.lifecycle_stage)
        return out


@dataclass(frozen=True, slots=True)
class RunData:
    """What a run recorded: the latest value of each metric, params and tags.

    ``metrics`` maps key → latest value as in MLflow (``run.data.metrics["acc"]``);
    ``metric_objects`` keeps the step and timestamp of those latest points.
    """

    metric_objects: tuple[Metric, ...] = ()
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def metrics(self) -> dict[str, float]:
        return {m.key: m.value for m in self.metric_objects}

    def to_dict(self) -> dict[str, Any]:
        return {
            "metrics": [m.to_dict() for m in self.metric_objects],
            "params": _key_values(self.params),
            "tags": _key_values(self.tags),
        }


@dataclass(frozen=True, slots=True)
class Run:
    info: RunInfo
    data: RunData

    def to_dict(self) -> dict[str, Any]:
        return {"info": self.info.to_dict(), "data": self.data.to_dict(), "inputs": {}}


@dataclass(frozen=True, slots=True)
class MetricSeries:
    """A metric series as a chart reads it, possibly downsampled.

    Columns rather than rows, so charts and binary encoders take them as they are.
    ``resolution`` is how many raw points each stored summary row covered (1: raw points were
    read); ``total_points`` is the length of the raw series.
    """

    run_id: str
    key: str
    x_axis: str
    x: list[float]
    steps: list[int]
    timestamps: list[int]
    values: list[float]
    total_points: int
    resolution: int

    @property
    def sampled(self) -> bool:
        return len(self.values) < self.total_points

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "key": self.key,
            "x_axis": self.x_axis,
            "x": self.x,
            "steps": self.steps,
            "timestamps": self.timestamps,
            "values": self.values,
            "total_points": self.total_points,
            "resolution": self.resolution,
        }


@dataclass(frozen=True, slots=True)
class FileInfo:
    """An artifact: ``path`` is relative to the run's artifact root."""

    path: str
    is_dir: bool
    file_size: int | None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "is_dir": self.is_dir}
        if self.file_size is not None:
            out["file_size"] = self.file_size
        return out


class PagedList(list):
    """A page of results; ``token`` fetches the next page (``None`` on the last one)."""

    def __init__(self, items=(), token: str | None = None):
        super().__init__(items)
        self.token = token
