"""Artifact endpoints under jupyter_server: the run listing and MLflow's proxied artifact
service (upload, download, list and delete through /api/2.0/mlflow-artifacts/artifacts),
each with the artifacts in a local folder and in S3 (moto's server on loopback)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.object_store import BUCKET
from tests.server.conftest import ARTIFACTS


@dataclass
class ArtifactStore:
    """Where the server under test keeps artifacts, and a look at what it holds there."""

    config: dict
    files: Callable[[str], dict[str, bytes]]  # folder under the root -> {relative path: bytes}
    everything: Callable[[], list[str]]  # every file name the store holds, anywhere


def _local_files(folder) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(params=["local", "s3"])
def artifact_store(request, tracking_dir, tmp_path) -> ArtifactStore:
    if request.param == "local":
        root = tracking_dir / "artifacts"
        return ArtifactStore({}, lambda folder: _local_files(root / folder),
                             lambda: [p.name for p in tmp_path.rglob("*")])
    endpoint = request.getfixturevalue("s3_endpoint")
    root = endpoint.fresh_root()
    return ArtifactStore(
        {"artifacts_destination": root, "s3_endpoint_url": endpoint.url},
        lambda folder: endpoint.tree(f"{root}/{folder}"),
        lambda: [name.rpartition("/")[2] for name in endpoint.tree(f"s3://{BUCKET}")])


@pytest.fixture
def labtrack_config(artifact_store) -> dict:
    return artifact_store.config

# Every byte value, and enough data to take several reads of the streaming download.
BINARY = bytes(range(256)) * 16
LARGE = os.urandom(3 * 1024 * 1024 + 17)


async def new_run(api) -> tuple[str, str]:
    """(run_id, proxy path of the run's artifact folder)."""
    info = (await api.create_run())["info"]
    prefix = "mlflow-artifacts:/"
    assert info["artifact_uri"].startswith(prefix)
    return info["run_id"], info["artifact_uri"][len(prefix):]


async def upload(api, path: str, content: bytes):
    return await api.request("PUT", f"{ARTIFACTS}/{path}", body=content)


async def test_kernels_are_given_the_s3_endpoint(api, artifact_store):
    """Kernels open the same store and write its artifacts themselves."""
    await new_run(api)  # the extension is up
    assert os.environ.get("MLFLOW_S3_ENDPOINT_URL") == artifact_store.config.get(
        "s3_endpoint_url")


async def test_upload_answers_an_empty_json_object(api):
    _, folder = await new_run(api)
    reply = await upload(api, f"{folder}/data.bin", BINARY)
    assert reply.status == 200
    assert reply.json == {}


async def test_download_returns_the_uploaded_bytes(api):
    _, folder = await new_run(api)
    await upload(api, f"{folder}/data.bin", BINARY)
    reply = await api.request("GET", f"{ARTIFACTS}/{folder}/data.bin")
    assert reply.status == 200
    assert reply.body == BINARY


async def test_a_large_file_round_trips_unchanged(api):
    _, folder = await new_run(api)
    assert (await upload(api, f"{folder}/weights.bin", LARGE)).status == 200
    reply = await api.request("GET", f"{ARTIFACTS}/{folder}/weights.bin")
    assert reply.body == LARGE


async def test_an_empty_file_round_trips(api):
    _, folder = await new_run(api)
    await upload(api, f"{folder}/empty.txt", b"")
    reply = await api.request("GET", f"{ARTIFACTS}/{folder}/empty.txt")
    assert (reply.status, reply.body) == (200, b"")


async def test_download_is_an_attachment_that_must_not_be_sniffed(api):
    _, folder = await new_run(api)
    await upload(api, f"{folder}/page.html", b"<script>alert(1)</script>")
    reply = await api.request("GET", f"{ARTIFACTS}/{folder}/page.html")
    assert reply.headers["Content-Disposition"] == 'attachment; filename="page.html"'
    assert reply.headers["X-Content-Type-Options"] == "nosniff"


async def test_download_is_labelled_with_the_files_type(api):
    _, folder = await new_run(api)
    await upload(api, f"{folder}/plot.png", b"\x89PNG\r\n\x1a\n")
    await upload(api, f"{folder}/blob", BINARY)
    png = await api.request("GET", f"{ARTIFACTS}/{folder}/plot.png")
    blob = await api.request("GET", f"{ARTIFACTS}/{folder}/blob")
    assert png.content_type == "image/png"
    assert blob.content_type == "application/octet-stream"


async def test_upload_replaces_an_existing_file(api):
    _, folder = await new_run(api)
    await upload(api, f"{folder}/notes.txt", b"first")
    await upload(api, f"{folder}/notes.txt", b"second")
    reply = await api.request("GET", f"{ARTIFACTS}/{folder}/notes.txt")
    assert reply.body == b"second"


async def test_upload_leaves_no_temporary_files(api, artifact_store):
    _, folder = await new_run(api)
    await upload(api, f"{folder}/a.txt", b"a")
    assert artifact_store.files(folder) == {"a.txt": b"a"}


async def test_uploaded_bytes_are_stored_unchanged(api, artifact_store):
    _, folder = await new_run(api)
    await upload(api, f"{folder}/model/weights.bin", LARGE)
    assert artifact_store.files(folder) == {"model/weights.bin": LARGE}


async def test_upload_onto_a_folder_is_refused(api):
    _, folder = await new_run(api)
    await upload(api, f"{folder}/sub/a.txt", b"a")
    reply = await upload(api, f"{folder}/sub", b"b")
    assert reply.status == 400
    assert reply.json["error_code"] == "INVALID_PARAMETER_VALUE"


async def test_download_of_a_missing_file_is_404(api):
    _, folder = await new_run(api)
    reply = await api.request("GET", f"{ARTIFACTS}/{folder}/missing.txt")
    assert reply.status == 404
    assert reply.json == {"error_code": "RESOURCE_DOES_NOT_EXIST",
                          "message": f"No artifact file at '{folder}/missing.txt'."}


async def test_download_of_a_folder_is_404(api):
    _, folder = await new_run(api)
    await upload(api, f"{folder}/sub/a.txt", b"a")
    reply = await api.request("GET", f"{ARTIFACTS}/{folder}/sub")
    assert reply.status == 404
    assert reply.json["error_code"] == "RESOURCE_DOES_NOT_EXIST"


@pytest.mark.parametrize("path", ["../outside.txt", "0/../../outside.txt",
                                  "%2e%2e/outside.txt", "0/%2e%2e/%2e%2e/outside.txt"])
async def test_paths_leaving_the_artifact_root_are_refused(api, path, artifact_store):
    reply = await upload(api, path, b"x")
    assert reply.status == 400
    assert reply.json["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "outside.txt" not in artifact_store.everything()


async def test_delete_removes_the_file(api):
    _, folder = await new_run(api)
    await upload(api, f"{folder}/gone.txt", b"x")
    reply = await api.request("DELETE", f"{ARTIFACTS}/{folder}/gone.txt")
    assert (reply.status, reply.json) == (200, {})
    assert (await api.request("GET", f"{ARTIFACTS}/{folder}/gone.txt")).status == 404


async def test_delete_of_a_missing_file_is_404(api):
    _, folder = await new_run(api)
    reply = await api.request("DELETE", f"{ARTIFACTS}/{folder}/missing.txt")
    assert reply.status == 404
    assert reply.json["error_code"] == "RESOURCE_DOES_NOT_EXIST"


# -- listings --------------------------------------------------------------------------------


async def test_run_listing_shows_uploaded_files_relative_to_the_run(api):
    run_id, folder = await new_run(api)
    await upload(api, f"{folder}/model/weights.bin", BINARY)
    await upload(api, f"{folder}/notes.txt", b"hello")
    status, data = await api.get("artifacts/list", {"run_id": run_id})
    assert status == 200
    assert data == {
        "root_uri": f"mlflow-artifacts:/{folder}",
        "files": [
            {"path": "model", "is_dir": True},
            {"path": "notes.txt", "is_dir": False, "file_size": 5},
        ],
    }


async def test_run_listing_of_a_subfolder(api):
    run_id, folder = await new_run(api)
    await upload(api, f"{folder}/model/weights.bin", BINARY)
    _, data = await api.get("artifacts/list", {"run_id": run_id, "path": "model"})
    assert data["files"] == [
        {"path": "model/weights.bin", "is_dir": False, "file_size": len(BINARY)}]


async def test_run_listing_of_a_fresh_run_is_empty(api):
    run_id, _ = await new_run(api)
    _, data = await api.get("artifacts/list", {"run_id": run_id})
    assert data["files"] == []


async def test_run_listing_with_a_traversing_path_is_refused(api):
    run_id, _ = await new_run(api)
    status, data = await api.get("artifacts/list", {"run_id": run_id, "path": "../.."})
    assert status == 400
    assert data["error_code"] == "INVALID_PARAMETER_VALUE"


async def test_run_listing_of_an_unknown_run_is_404(api):
    status, data = await api.get("artifacts/list",
                                 {"run_id": "0123456789abcdef0123456789abcdef"})
    assert status == 404
    assert data["error_code"] == "RESOURCE_DOES_NOT_EXIST"


async def test_run_listing_without_run_id_is_a_missing_parameter(api):
    status, data = await api.get("artifacts/list")
    assert status == 400
    assert data["message"] == "Missing value for required parameter 'run_id'."


async def test_proxy_listing_names_entries_relative_to_the_folder(api):
    _, folder = await new_run(api)
    await upload(api, f"{folder}/model/weights.bin", BINARY)
    await upload(api, f"{folder}/notes.txt", b"hello")
    status, data = await api.call("GET", ARTIFACTS, params={"path": folder})
    assert status == 200
    assert data == {"files": [
        {"path": "model", "is_dir": True},
        {"path": "notes.txt", "is_dir": False, "file_size": 5},
    ]}


async def test_proxy_listing_of_a_missing_folder_is_empty(api):
    status, data = await api.call("GET", ARTIFACTS, params={"path": "0/nothing-here"})
    assert (status, data) == (200, {"files": []})


async def test_proxy_listing_with_a_traversing_path_is_refused(api):
    status, data = await api.call("GET", ARTIFACTS, params={"path": "../"})
    assert status == 400
    assert data["error_code"] == "INVALID_PARAMETER_VALUE"


# -- size limits -----------------------------------------------------------------------------


@pytest.mark.parametrize("labtrack_config", [{"max_request_bytes": 1024}])
async def test_artifact_uploads_are_not_bound_by_the_json_body_limit(api):
    _, folder = await new_run(api)
    reply = await upload(api, f"{folder}/big.bin", BINARY)
    assert len(BINARY) > 1024
    assert reply.status == 200


@pytest.mark.parametrize("labtrack_config", [{"max_upload_bytes": 1000}])
async def test_an_upload_over_max_upload_bytes_is_413(api, tracking_dir):
    _, folder = await new_run(api)
    reply = await upload(api, f"{folder}/big.bin", BINARY)
    assert reply.status == 413
    assert reply.json["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    assert "max_upload_bytes" in reply.json["message"]
    assert not (tracking_dir / "artifacts" / folder).exists()
