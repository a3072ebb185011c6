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


def _mapping(items: list[dict[str, str]] | None) -> dict[str, str]:
    return {item["key"]: item.get("value", "") for item in items or ()}


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Metric:
        # float() also reads proto3 JSON's "NaN", "Infinity" and "-Infinity".
        return cls(data["key"], float(data["value"]), int(data.get("timestamp", 0)),
                   int(data.get("step", 0)))

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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Experiment:
        return cls(
            experiment_id=str(data["experiment_id"]),
            name=data["name"],
            artifact_location=data.get("artifact_location", ""),
            lifecycle_stage=LifecycleStage(data.get("lifecycle_stage", "active")),
            creation_time=_optional_int(data.get("creation_time")),
            last_update_time=_optional_int(data.get("last_update_time")),
            tags=_mapping(data.get("tags")),
        )


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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunInfo:
        return cls(
            run_id=data.get("run_id") or data["run_uuid"],
            experiment_id=str(data["experiment_id"]),
            run_name=data.get("run_name", ""),
            user_id=data.get("user_id", ""),
            status=RunStatus(data.get("status", "RUNNING")),
            start_time=_optional_int(data.get("start_time")),
            end_time=_optional_int(data.get("end_time")),
            artifact_uri=data.get("artifact_uri", ""),
            lifecycle_stage=LifecycleStage(data.get("lifecycle_stage", "active")),
        )


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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunData:
        return cls(
            metric_objects=tuple(Metric.from_dict(m) for m in data.get("metrics") or ()),
            params=_mapping(data.get("params")),
            tags=_mapping(data.get("tags")),
        )


@dataclass(frozen=True, slots=True)
class Dataset:
    """A dataset a run used, identified within its experiment by (name, digest)."""

    name: str
    digest: str
    source_type: str = ""
    source: str = ""
    schema: str | None = None
    profile: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "digest": self.digest,
                               "source_type": self.source_type, "source": self.source}
        if self.schema is not None:
            out["schema"] = self.schema
        if self.profile is not None:
            out["profile"] = self.profile
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Dataset:
        return cls(data["name"], data["digest"], data.get("source_type", ""),
                   data.get("source", ""), data.get("schema"), data.get("profile"))


@dataclass(frozen=True, slots=True)
class DatasetInput:
    dataset: Dataset
    tags: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"tags": _key_values(self.tags), "dataset": self.dataset.to_dict()}


@dataclass(frozen=True, slots=True)
class ModelOutput:
    """A logged model a run produced (at ``step``)."""

    model_id: str
    step: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"model_id": self.model_id, "step": self.step}


@dataclass(frozen=True, slots=True)
class RunInputs:
    dataset_inputs: tuple[DatasetInput, ...] = ()
    model_inputs: tuple[str, ...] = ()  # logged model ids

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.dataset_inputs:
            out["dataset_inputs"] = [d.to_dict() for d in self.dataset_inputs]
        if self.model_inputs:
            out["model_inputs"] = [{"model_id": m} for m in self.model_inputs]
        return out


@dataclass(frozen=True, slots=True)
class RunOutputs:
    model_outputs: tuple[ModelOutput, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        if not self.model_outputs:
            return {}
        return {"model_outputs": [m.to_dict() for m in self.model_outputs]}


@dataclass(frozen=True, slots=True)
class Run:
    info: RunInfo
    data: RunData
    inputs: RunInputs = RunInputs()
    outputs: RunOutputs = RunOutputs()

    def to_dict(self) -> dict[str, Any]:
        return {"info": self.info.to_dict(), "data": self.data.to_dict(),
                "inputs": self.inputs.to_dict(), "outputs": self.outputs.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Run:
        inputs = data.get("inputs") or {}
        outputs = data.get("outputs") or {}
        return cls(
            info=RunInfo.from_dict(data["info"]),
            data=RunData.from_dict(data.get("data") or {}),
            inputs=RunInputs(
                tuple(DatasetInput(Dataset.from_dict(d["dataset"]), _mapping(d.get("tags")))
                      for d in inputs.get("dataset_inputs") or ()),
                tuple(m["model_id"] for m in inputs.get("model_inputs") or ()),
            ),
            outputs=RunOutputs(tuple(ModelOutput(m["model_id"], int(m.get("step", 0)))
                                     for m in outputs.get("model_outputs") or ())),
        )


class LoggedModelStatus(StrEnum):
    """MLflow 3's ``LoggedModelStatus`` (the wire uses these names)."""

    PENDING = "LOGGED_MODEL_PENDING"
    READY = "LOGGED_MODEL_READY"
    UPLOAD_FAILED = "LOGGED_MODEL_UPLOAD_FAILED"


@dataclass(frozen=True, slots=True)
class LoggedModel:
    """A model logged by a run (MLflow 3): its own id, artifacts, params and tags."""

    model_id: str
    experiment_id: str
    name: str
    artifact_location: str
    creation_timestamp: int
    last_updated_timestamp: int
    status: LoggedModelStatus
    lifecycle_stage: LifecycleStage = LifecycleStage.ACTIVE
    model_type: str | None = None
    source_run_id: str | None = None
    status_message: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "model_id": self.model_id,
            "experiment_id": self.experiment_id,
            "name": self.name,
            "artifact_uri": self.artifact_location,
            "creation_timestamp_ms": self.creation_timestamp,
            "last_updated_timestamp_ms": self.last_updated_timestamp,
            "status": str(self.status),
            "tags": _key_values(self.tags),
        }
        for key in ("model_type", "source_run_id", "status_message"):
            if getattr(self, key):
                info[key] = getattr(self, key)
        return {"info": info, "data": {"params": _key_values(self.params), "metrics": []}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoggedModel:
        info = data["info"]
        return cls(
            model_id=info["model_id"],
            experiment_id=str(info["experiment_id"]),
            name=info.get("name", ""),
            artifact_location=info.get("artifact_uri", ""),
            creation_timestamp=int(info.get("creation_timestamp_ms", 0)),
            last_updated_timestamp=int(info.get("last_updated_timestamp_ms", 0)),
            status=LoggedModelStatus(info.get("status", "LOGGED_MODEL_PENDING")),
            model_type=info.get("model_type"),
            source_run_id=info.get("source_run_id"),
            status_message=info.get("status_message"),
            tags=_mapping(info.get("tags")),
            params=_mapping((data.get("data") or {}).get("params")),
        )


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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MetricSeries:
        return cls(
            run_id=data["run_id"],
            key=data["key"],
            x_axis=data["x_axis"],
            x=list(data["x"]),
            steps=[int(s) for s in data["steps"]],
            timestamps=[int(t) for t in data["timestamps"]],
            values=[float(v) for v in data["values"]],
            total_points=int(data["total_points"]),
            resolution=int(data["resolution"]),
        )


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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FileInfo:
        size = data.get("file_size")
        return cls(data["path"], bool(data.get("is_dir", False)),
                   None if size is None else int(size))


class PagedList(list):
    """A page of results; ``token`` fetches the next page (``None`` on the last one)."""

    def __init__(self, items=(), token: str | None = None):
        super().__init__(items)
        self.token = token
