"""Persistence: the ``Store`` contract, the SQLite and PostgreSQL stores and artifact
repositories. ``PostgresStore`` is imported from ``labtrack.store.postgres`` (its driver is an
optional extra); ``open_store`` picks the store a URI names."""

from labtrack.store.artifacts import (
    ArtifactRepository,
    LocalArtifactRepository,
    artifact_repository,
)
from labtrack.store.base import MetricBucket, MetricSeriesInfo, Store
from labtrack.store.sqlite import SqliteStore
from labtrack.store.uris import open_store

__all__ = [
    "ArtifactRepository",
    "LocalArtifactRepository",
    "MetricBucket",
    "MetricSeriesInfo",
    "SqliteStore",
    "Store",
    "artifact_repository",
    "open_store",
]
