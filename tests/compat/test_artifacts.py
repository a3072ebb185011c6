"""Artifacts through the stock mlflow client: upload, list, download, and where they land —
on the server's disk, or in S3 for a server started with ``--artifacts-destination s3://…``."""

from __future__ import annotations

import json
import random
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
import mlflow.artifacts
import pytest
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

from tests.compat.conftest import ARTIFACT_SERVER_KINDS, tracking_server_of

BLOB = bytes(range(256)) * 40 + b"\x00\xff\x00"  # every byte value, NULs included
LARGE = random.Random(1234).randbytes(5 * 1024 * 1024 + 17)


tracking_server = tracking_server_of(ARTIFACT_SERVER_KINDS)


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _listing(mlflow_client, run_id, path=None):
    return [(f.path, f.is_dir, f.file_size) for f in mlflow_client.list_artifacts(run_id, path)]


@pytest.fixture
def source_tree(tmp_path) -> Path:
    """A local folder with nested sub-folders and binary files."""
    root = tmp_path / "source"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "a.txt").write_text("alpha\n")
    (root / "sub" / "blob.bin").write_bytes(BLOB)
    (root / "sub" / "deeper" / "z.bin").write_bytes(b"\x89PNG\r\n\x1a\n" + BLOB[:100])
    return root


@pytest.fixture
def logged_run(mlflow_client, experiment_id, tmp_path, source_tree):
    """A finished run with one artifact of every kind."""
    notes = tmp_path / "notes.txt"
    notes.write_text("some notes\n")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(notes))
        mlflow.log_artifacts(str(source_tree), artifact_path="data")
        mlflow.log_text("héllo wörld\n", "text/hello.txt")
        mlflow.log_dict({"lr": 0.1, "layers": [64, 32], "name": "net"}, "config/params.json")
        mlflow.log_dict({"lr": 0.1, "name": "net"}, "config/params.yaml")
        figure, axes = plt.subplots()
        axes.plot([1, 2, 3], [3, 1, 2])
        mlflow.log_figure(figure, "plots/curve.png")
        plt.close(figure)
    return run


def test_list_at_several_depths(mlflow_client, logged_run):
    run_id = logged_run.info.run_id
    assert _listing(mlflow_client, run_id) == [
        ("config", True, None), ("data", True, None), ("notes.txt", False, 11),
        ("plots", True, None), ("text", True, None),
    ]
    assert _listing(mlflow_client, run_id, "data") == [
        ("data/a.txt", False, 6), ("data/sub", True, None)]
    assert _listing(mlflow_client, run_id, "data/sub") == [
        ("data/sub/blob.bin", False, len(BLOB)), ("data/sub/deeper", True, None)]
    assert _listing(mlflow_client, run_id, "data/sub/deeper") == [
        ("data/sub/deeper/z.bin", False, 108)]
    assert [p for p, *_ in _listing(mlflow_client, run_id, "config")] == [
        "config/params.json", "config/params.yaml"]
    assert _listing(mlflow_client, run_id, "no-such-folder") == []


def test_run_listing_endpoint(api, logged_run):
    """``GET /api/2.0/mlflow/artifacts/list``, which older clients and the UI use."""
    run_id = logged_run.info.run_id
    response = api.get("/api/2.0/mlflow/artifacts/list",
                       params={"run_id": run_id, "path": "data/sub"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["root_uri"] == logged_run.info.artifact_uri
    assert body["files"] == [
        {"path": "data/sub/blob.bin", "is_dir": False, "file_size": len(BLOB)},
        {"path": "data/sub/deeper", "is_dir": True},
    ]


def test_files_land_under_the_artifact_root(tracking_server, logged_run, source_tree):
    location = tracking_server.stored_location(logged_run.info.artifact_uri)
    assert location.endswith(f"/{logged_run.info.experiment_id}/{logged_run.info.run_id}"
                             "/artifacts")
    stored = tracking_server.stored_files(logged_run.info.artifact_uri)
    assert stored["notes.txt"] == b"some notes\n"
    assert {k.removeprefix("data/"): v for k, v in stored.items()
            if k.startswith("data/")} == _tree(source_tree)
    assert stored["text/hello.txt"].decode("utf-8") == "héllo wörld\n"
    assert json.loads(stored["config/params.json"]) == {
        "lr": 0.1, "layers": [64, 32], "name": "net"}
    assert stored["plots/curve.png"].startswith(b"\x89PNG\r\n\x1a\n")
    # No upload leftovers (temporary files) next to the artifacts.
    assert sorted(stored) == [
        "config/params.json", "config/params.yaml", "data/a.txt", "data/sub/blob.bin",
        "data/sub/deeper/z.bin", "notes.txt", "plots/curve.png", "text/hello.txt"]


def test_download_a_file(mlflow_client, tracking_server, logged_run, tmp_path):
    run_id = logged_run.info.run_id
    local = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="data/sub/blob.bin", dst_path=str(tmp_path / "one"))
    assert Path(local).read_bytes() == BLOB

    local = mlflow_client.download_artifacts(run_id, "plots/curve.png", str(tmp_path / "two"))
    stored = tracking_server.stored_files(logged_run.info.artifact_uri)
    assert Path(local).read_bytes() == stored["plots/curve.png"]

    assert mlflow.artifacts.load_text(f"runs:/{run_id}/text/hello.txt") == "héllo wörld\n"
    assert mlflow.artifacts.load_dict(f"runs:/{run_id}/config/params.json") == {
        "lr": 0.1, "layers": [64, 32], "name": "net"}
    # load_dict reads JSON only; the YAML form is checked as text.
    yaml_text = mlflow.artifacts.load_text(f"runs:/{run_id}/config/params.yaml")
    assert "lr: 0.1" in yaml_text and "name: net" in yaml_text


def test_download_a_folder(logged_run, source_tree, tmp_path):
    run_id = logged_run.info.run_id
    local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="data",
                                                dst_path=str(tmp_path / "folder"))
    assert _tree(Path(local)) == _tree(source_tree)

    local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="data/sub",
                                                dst_path=str(tmp_path / "nested"))
    assert _tree(Path(local)) == _tree(source_tree / "sub")

    everything = Path(mlflow.artifacts.download_artifacts(run_id=run_id,
                                                          dst_path=str(tmp_path / "all")))
    assert sorted(_tree(everything)) == [
        "config/params.json", "config/params.yaml", "data/a.txt", "data/sub/blob.bin",
        "data/sub/deeper/z.bin", "notes.txt", "plots/curve.png", "text/hello.txt"]


def test_large_and_awkwardly_named_files(mlflow_client, tracking_server, experiment_id,
                                         tmp_path):
    folder = tmp_path / "odd"
    folder.mkdir()
    names = ["large.bin", "with space+plus&amp;.txt", "résumé.txt", "100%.txt"]
    (folder / "large.bin").write_bytes(LARGE)
    for name in names[1:]:
        (folder / name).write_text(name)
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(folder), artifact_path="odd")
    run_id = run.info.run_id
    assert sorted(p for p, *_ in _listing(mlflow_client, run_id, "odd")) == sorted(
        f"odd/{name}" for name in names)
    stored = tracking_server.stored_files(run.info.artifact_uri)
    assert stored == {f"odd/{name}": data for name, data in _tree(folder).items()}
    local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="odd",
                                                dst_path=str(tmp_path / "back"))
    assert _tree(Path(local)) == _tree(folder)


def test_overwrite_and_delete(mlflow_client, tracking_server, experiment_id):
    with mlflow.start_run() as run:
        mlflow.log_text("first", "out/result.txt")
        mlflow.log_text("second version", "out/result.txt")
        mlflow.log_text("keep", "out/keep.txt")
    run_id = run.info.run_id
    assert mlflow.artifacts.load_text(f"runs:/{run_id}/out/result.txt") == "second version"

    repository = get_artifact_repository(run.info.artifact_uri)
    repository.delete_artifacts("out/result.txt")
    assert [p for p, *_ in _listing(mlflow_client, run_id, "out")] == ["out/keep.txt"]
    assert tracking_server.stored_files(run.info.artifact_uri) == {"out/keep.txt": b"keep"}
