"""The extension in central-server mode: a real ``labtrack server`` subprocess for a team
(ann, bob), and a real jupyter_server whose ``c.LabTrack.tracking_uri`` names it with ann's
token. Everything under ``{base_url}labtrack/`` must come from, and land in, the central
server, as ann."""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass

import pytest
import requests

from labtrack import config
from labtrack.client import TrackingClient
from tests.server.conftest import ARTIFACTS, LABTRACK, MLFLOW
from tests.standalone_server import free_port, labtrack_server

NOTEBOOK_PATH_TAG = "labtrack.notebook.path"


@dataclass
class Central:
    url: str
    tokens: dict[str, str]  # user -> token

    def client(self, user: str) -> TrackingClient:
        return TrackingClient(self.url, token=self.tokens[user])


@pytest.fixture(scope="module")
def central(tmp_path_factory):
    """``labtrack server`` on loopback: ann and bob with tokens, everyone may edit models."""
    base = tmp_path_factory.mktemp("central")
    tokens = {"ann": secrets.token_hex(16), "bob": secrets.token_hex(16)}
    token_file = base / "tokens"
    token_file.write_text("".join(f"{user}:{token}\n" for user, token in tokens.items()))
    with labtrack_server(base, ["--backend-store-uri", str(base / "store"),
                                "--token-file", str(token_file),
                                "--default-permission", "CAN_EDIT"], tokens["ann"]) as url:
        yield Central(url, tokens)


@pytest.fixture
def labtrack_config(request, central):
    """ann's token (default), a token the central server never issued ("wrong-token"), or a
    central server that is not running ("down")."""
    which = getattr(request, "param", "ann")
    if which == "small-uploads":
        return {"tracking_uri": central.url, "tracking_token": central.tokens["ann"],
                "max_upload_bytes": 1024}
    if which == "down":
        return {"tracking_uri": f"http://127.0.0.1:{free_port()}", "tracking_token": "t"}
    token = central.tokens["ann"] if which == "ann" else "not-a-token"
    return {"tracking_uri": central.url, "tracking_token": token}


def _unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


async def test_exports_the_central_uri_and_token_to_kernels_and_opens_no_store(
        jp_serverapp, central, tracking_dir):
    assert os.environ[config.TRACKING_URI_ENV] == central.url
    assert os.environ["LABTRACK_TRACKING_TOKEN"] == central.tokens["ann"]
    assert not tracking_dir.exists()


async def test_panel_lists_the_central_runs_and_this_notebooks_runs_first(
        api, central, jp_root_dir):
    ann = central.client("ann")
    experiment_id = ann.create_experiment(_unique("team"))
    notebook = os.path.join(str(jp_root_dir), "plants", "plant-7.ipynb")
    mine = ann.create_run(experiment_id, tags={NOTEBOOK_PATH_TAG: notebook}).info.run_id
    other = ann.create_run(experiment_id).info.run_id

    root = await api.ok("GET", f"{LABTRACK}/panel/server-root")
    assert root == {"root_dir": str(jp_root_dir)}
    page = await api.ok("POST", f"{LABTRACK}/panel/runs/search", {
        "experiment_ids": [experiment_id], "notebook_path": "plants/plant-7.ipynb"})
    assert {run["info"]["run_id"] for run in page["runs"]} == {mine, other}
    assert [run["info"]["run_id"] for run in page["notebook_runs"]] == [mine]
    assert page["notebook_path"] == notebook


async def test_registry_reads_and_an_approval_land_in_the_central_server_as_ann(
        api, central):
    ann, bob = central.client("ann"), central.client("bob")
    name = _unique("recommender")
    ann.create_registered_model(name)
    ann.create_model_version(name, "mlflow-artifacts:/0/models/m-1/artifacts")
    bob.request_transition(name, 1, "Staging", comment="ready for QA")

    found = await api.ok("GET", f"{MLFLOW}/registered-models/search",
                         params={"filter": f"name = '{name}'"})
    assert [model["name"] for model in found["registered_models"]] == [name]
    pending = await api.ok("GET", f"{MLFLOW}/transition-requests/list", params={"name": name})
    assert [(r["to_stage"], r["user_id"]) for r in pending["requests"]] == [("Staging", "bob")]

    approved = await api.ok("POST", f"{MLFLOW}/transition-requests/approve", {
        "name": name, "version": "1", "stage": "Staging", "comment": "looks good"})
    assert approved["activity"]["user_id"] == "ann"
    assert bob.get_model_version(name, 1).current_stage == "Staging"
    assert bob.list_transition_requests(name) == []


async def test_a_run_logged_through_jupyter_belongs_to_ann_on_the_central_server(
        api, central):
    experiment_id = await api.create_experiment(_unique("via-jupyter"))
    run = await api.create_run(experiment_id)
    await api.log_metric(run["info"]["run_id"], "mape", 0.125)

    stored = central.client("bob").get_run(run["info"]["run_id"])
    assert stored.info.user_id == "ann"
    assert stored.data.metrics["mape"] == 0.125


async def test_mlflow_errors_pass_through_unchanged(api):
    status, body = await api.get("runs/get", params={"run_id": "f" * 32})
    assert status == 404
    assert body["error_code"] == "RESOURCE_DOES_NOT_EXIST"


async def test_a_large_artifact_streams_through_both_ways(api, central):
    ann = central.client("ann")
    experiment_id = ann.create_experiment(_unique("artifacts"))
    run_id = ann.create_run(experiment_id).info.run_id
    data = os.urandom(24 * 1024 * 1024 + 17)
    path = f"{ARTIFACTS}/{experiment_id}/{run_id}/artifacts/weights.bin"
    reply = await api.request("PUT", path, body=data,
                              headers={"Content-Type": "application/octet-stream"})
    assert reply.status == 200, reply.body
    # It reached the central server whole: read it there directly.
    direct = requests.get(central.url + path, timeout=60, headers={
        "Authorization": f"Bearer {central.tokens['bob']}"})
    assert hashlib.sha256(direct.content).digest() == hashlib.sha256(data).digest()
    assert [f.path for f in ann.list_artifacts(run_id)] == ["weights.bin"]

    reply = await api.request("GET", path)
    assert reply.status == 200
    assert reply.headers["Content-Disposition"] == 'attachment; filename="weights.bin"'
    assert len(reply.body) == len(data)
    assert hashlib.sha256(reply.body).digest() == hashlib.sha256(data).digest()


@pytest.mark.parametrize("labtrack_config", ["small-uploads"], indirect=True)
async def test_an_upload_over_max_upload_bytes_is_a_413_and_never_reaches_the_server(
        api, central):
    ann = central.client("ann")
    experiment_id = ann.create_experiment(_unique("limits"))
    run_id = ann.create_run(experiment_id).info.run_id
    path = f"{ARTIFACTS}/{experiment_id}/{run_id}/artifacts/big.bin"
    status, body = await api.call("PUT", path, body=b"x" * 2048,
                                  headers={"Content-Type": "application/octet-stream"})
    assert status == 413
    assert body["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    assert central.client("ann").list_artifacts(run_id) == []


@pytest.mark.parametrize("labtrack_config", ["wrong-token"], indirect=True)
async def test_a_refused_token_says_to_set_tracking_token(api, central):
    status, body = await api.get("experiments/search", params={"max_results": "10"})
    assert status == 401
    assert body["error_code"] == "UNAUTHENTICATED"
    assert "c.LabTrack.tracking_token" in body["message"]
    assert central.url in body["message"]


@pytest.mark.parametrize("labtrack_config", ["down"], indirect=True)
async def test_an_unreachable_central_server_is_a_502_in_mlflows_shape(api):
    status, body = await api.get("experiments/search", params={"max_results": "10"})
    assert status == 502
    assert body["error_code"] == "TEMPORARILY_UNAVAILABLE"
    assert "did not answer" in body["message"]


async def test_a_registry_browser_in_a_kernel_lists_the_team_models(jp_serverapp, central):
    """A kernel's environment is the one the extension exported: the widget's default
    client reaches the central server as ann."""
    from labtrack.widgets import RegistryBrowser

    name = _unique("forecaster")
    central.client("bob").create_registered_model(name)
    browser = RegistryBrowser(filter_string=f"name = '{name}'")
    assert [model["name"] for model in browser.models] == [name]
