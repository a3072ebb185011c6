"""Server metadata endpoints and the extension's process setup under jupyter_server."""

from __future__ import annotations

import os

import pytest

import labtrack
from labtrack import config
from labtrack.client.run_context import current_user
from labtrack.store import SqliteStore


async def test_health_answers_ok_as_plain_text(api):
    reply = await api.request("GET", "/health")
    assert reply.status == 200
    assert reply.body == b"OK"
    assert reply.content_type.startswith("text/plain")


async def test_version_answers_the_package_version_as_plain_text(api):
    reply = await api.request("GET", "/version")
    assert reply.status == 200
    assert reply.body.decode() == labtrack.__version__
    assert reply.content_type.startswith("text/plain")


async def test_mlflow_server_info_reports_no_multipart_uploads(api):
    status, data = await api.call("GET", "/api/3.0/mlflow/server-info")
    assert status == 200
    assert data == {
        "store_type": "SqlStore",
        "workspaces_enabled": False,
        "multipart_uploads_enabled": False,
        "server": "labtrack",
        "version": labtrack.__version__,
    }


async def test_labtrack_server_info_names_the_user_and_the_artifact_root(api):
    status, data = await api.call("GET", "/api/2.0/labtrack/server-info")
    assert status == 200
    assert data == {
        "name": "labtrack",
        "version": labtrack.__version__,
        "api_version": 1,
        "user": current_user(),
        "artifact_root": "mlflow-artifacts:/",
    }


async def test_json_answers_are_labelled_application_json(api):
    reply = await api.request("GET", "/api/3.0/mlflow/server-info")
    assert reply.content_type.startswith("application/json")


async def test_extension_exports_the_tracking_uri_of_its_store(jp_serverapp, tracking_dir):
    assert os.environ[config.TRACKING_URI_ENV] == f"sqlite:///{tracking_dir / 'labtrack.db'}"


async def test_the_exported_uri_opens_the_store_the_server_writes(api):
    experiment_id = await api.create_experiment("seen by kernels")
    # What a kernel started by this server does with the inherited variable:
    database = config.sqlite_database_path(os.environ[config.TRACKING_URI_ENV])
    store = SqliteStore(database)
    try:
        assert store.get_experiment_by_name("seen by kernels").experiment_id == experiment_id
    finally:
        store.close()


@pytest.mark.parametrize("labtrack_config", [{"export_tracking_uri": False}])
async def test_the_export_can_be_turned_off(jp_serverapp):
    assert config.TRACKING_URI_ENV not in os.environ
