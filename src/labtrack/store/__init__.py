"""Persistence: the ``Store`` contract, the SQLite store and artifact repositories."""

from labtrack.store.artifacts import (
    ArtifactRepository,
    LocalArtifactRepository,
    artifact_repository,
)
from labtrack.store.base import MetricBucket, MetricSeriesInfo, Store
from labtrack.store.sqlite import SqliteStore

__all__ = [
    "ArtifactRepository",
    "LocalArtifactRepository",
    "MetricBucket",
    "MetricSeriesInfo",
    "SqliteStore",
    "Store",
    "artifact_repository",
]
