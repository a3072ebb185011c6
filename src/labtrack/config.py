"""Where labtrack keeps its data, and the environment variables that change it.

============================  ===============================================================
``LABTRACK_TRACKING_URI``     The store to log to: a folder or ``.db`` file path,
                              ``sqlite:///relative.db`` / ``sqlite:////absolute.db``,
                              ``postgresql://…`` for a central server's database, or
                              ``http(s)://host:port[/labtrack]`` for a labtrack server.
                              Default: ``labtrack.db`` in the data directory.
``LABTRACK_TRACKING_TOKEN``   Bearer token sent to a labtrack server (a Jupyter token under
                              Jupyter, a server token for ``labtrack server``).
``LABTRACK_HOME``             The data directory (default: the platform's user data folder,
                              e.g. ``~/.local/share/labtrack`` on Linux).
``LABTRACK_FLUSH_INTERVAL``   Seconds between background flushes of buffered metric points
                              (default 0.5).
``LABTRACK_RUN_ID``           ``start_run()`` without arguments resumes this run.
``LABTRACK_EXPERIMENT_NAME``  Experiment for new runs when none was set (created if missing).
``LABTRACK_EXPERIMENT_ID``    Experiment id for new runs when none was set.
``LABTRACK_WEBHOOK_ALLOWED_HOSTS``  Comma-separated hosts, IPs or CIDR ranges that registry
                              webhooks may call although they are internal addresses.
``LABTRACK_POSTGRES_POOL_SIZE``  Most connections a PostgreSQL store holds open per process
                              (default 10; read by ``labtrack.store.postgres``).
============================  ===============================================================
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlparse

import platformdirs

from labtrack.errors import InvalidParameterValue

TRACKING_URI_ENV = "LABTRACK_TRACKING_URI"
HOME_ENV = "LABTRACK_HOME"
FLUSH_INTERVAL_ENV = "LABTRACK_FLUSH_INTERVAL"
RUN_ID_ENV = "LABTRACK_RUN_ID"
EXPERIMENT_NAME_ENV = "LABTRACK_EXPERIMENT_NAME"
EXPERIMENT_ID_ENV = "LABTRACK_EXPERIMENT_ID"
WEBHOOK_ALLOWED_HOSTS_ENV = "LABTRACK_WEBHOOK_ALLOWED_HOSTS"

DATABASE_FILE_NAME = "labtrack.db"
_DATABASE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


def data_dir() -> Path:
    configured = os.environ.get(HOME_ENV)
    return Path(configured).expanduser() if configured else Path(
        platformdirs.user_data_dir("labtrack", appauthor=False)
    )


def default_tracking_uri() -> str:
    """``LABTRACK_TRACKING_URI``, else the embedded store in the data directory."""
    configured = os.environ.get(TRACKING_URI_ENV)
    if configured:
        return configured
    return f"sqlite:///{(data_dir() / DATABASE_FILE_NAME).resolve()}"


def flush_interval() -> float:
    raw = os.environ.get(FLUSH_INTERVAL_ENV)
    if not raw:
        return 0.5
    try:
        value = float(raw)
    except ValueError:
        raise InvalidParameterValue(
            f"{FLUSH_INTERVAL_ENV}={raw!r} is not a number of seconds."
        ) from None
    if not 0 < value <= 60:
        raise InvalidParameterValue(f"{FLUSH_INTERVAL_ENV} must lie in (0, 60] seconds.")
    return value


def webhook_allowed_hosts() -> tuple[str, ...]:
    raw = os.environ.get(WEBHOOK_ALLOWED_HOSTS_ENV, "")
    return tuple(host.strip() for host in raw.split(",") if host.strip())


def sqlite_database_path(tracking_uri: str) -> Path:
    """The database file a local tracking URI designates.

    ``sqlite:///x.db`` is relative and ``sqlite:////abs/x.db`` absolute (SQLAlchemy's
    convention, as MLflow uses it); ``file:///folder`` and plain paths name a folder (the
    database is ``labtrack.db`` inside) unless they end in ``.db``/``.sqlite``/``.sqlite3`` or
    name an existing file.
    """
    parsed = urlparse(tracking_uri)
    if parsed.scheme == "sqlite":
        if parsed.netloc:
            raise InvalidParameterValue(
                f"Invalid tracking URI '{tracking_uri}': use sqlite:///relative/path.db or "
                "sqlite:////absolute/path.db."
            )
        path = unquote(parsed.path)
        if path in ("", "/"):
            raise InvalidParameterValue(
                f"Invalid tracking URI '{tracking_uri}': in-memory databases cannot be shared "
                "with the Jupyter server; give a file path."
            )
        return Path(path[1:]).expanduser().resolve()
    if parsed.scheme == "file":
        return _folder_or_file(Path(unquote(parsed.path)))
    if parsed.scheme in ("", ) or (len(parsed.scheme) == 1 and os.name == "nt"):
        return _folder_or_file(Path(tracking_uri).expanduser())
    raise InvalidParameterValue(
        f"Unsupported tracking URI '{tracking_uri}': use a folder or .db path, or "
        "sqlite:///path.db."
    )


def _folder_or_file(path: Path) -> Path:
    path = path.resolve()
    if path.suffix.lower() in _DATABASE_SUFFIXES or path.is_file():
        return path
    return path / DATABASE_FILE_NAME
