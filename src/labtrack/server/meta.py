"""Server metadata: health, version and capabilities."""

from __future__ import annotations

import labtrack
from labtrack.server.router import Router

router = Router()

# Version of labtrack's own REST additions; the side panel checks it in its handshake.
LABTRACK_API_VERSION = 1


class PlainText(str):
    """An action result written as text/plain instead of JSON."""


@router.get("/health")
def health(request, context):
    """Liveness probe: OK."""
    return PlainText("OK")


@router.get("/version")
def version(request, context):
    """The labtrack version serving this API."""
    return PlainText(labtrack.__version__)


@router.get("/api/3.0/mlflow/server-info")
def mlflow_server_info(request, context):
    """Capabilities the MLflow 3 client probes before uploading artifacts."""
    return {
        "store_type": "SqlStore",
        "workspaces_enabled": False,
        "multipart_uploads_enabled": False,
        "server": "labtrack",
        "version": labtrack.__version__,
    }


@router.get("/api/2.0/labtrack/server-info")
def labtrack_server_info(request, context):
    """Version handshake for labtrack's own clients (the side panel, widgets)."""
    return {
        "name": "labtrack",
        "version": labtrack.__version__,
        "api_version": LABTRACK_API_VERSION,
        "user": request.user,
        "artifact_root": context.wire.public_uri(context.wire.root_uri),
    }
