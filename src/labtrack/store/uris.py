"""Which store a backend store URI names."""

from __future__ import annotations

import os
from urllib.parse import urlparse

from labtrack import config
from labtrack.errors import InvalidParameterValue
from labtrack.store.base import Store

POSTGRES_SCHEMES = ("postgresql", "postgres")


def is_postgres_uri(uri: str) -> bool:
    return urlparse(uri).scheme in POSTGRES_SCHEMES


def open_store(uri: str, artifact_root: str | os.PathLike | None = None) -> Store:
    """``postgresql://user:password@host:port/database`` opens a ``PostgresStore`` (the
    ``postgres`` extra installs its driver); a folder or ``.db`` path or ``sqlite:///`` URI
    opens a ``SqliteStore``."""
    if is_postgres_uri(uri):
        try:
            from labtrack.store.postgres import PostgresStore
        except ImportError as error:
            raise InvalidParameterValue(
                f"A PostgreSQL store needs psycopg: pip install 'labtrack[postgres]' ({error})."
            ) from None
        return PostgresStore(uri, artifact_root)
    from labtrack.store.sqlite import SqliteStore

    return SqliteStore(config.sqlite_database_path(uri), artifact_root)
