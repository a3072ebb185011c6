"""Artifact repositories: upload, list with sizes, download, streaming, and every escape
attempt refused — for a local folder and for S3 (moto's server on loopback) alike; the
symbolic-link rules only exist locally."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from labtrack.errors import InvalidParameterValue, ResourceDoesNotExist
from labtrack.store.artifacts import (
    ArtifactPathError,
    LocalArtifactRepository,
    artifact_repository,
    local_path_to_uri,
    safe_relative_path,
    uri_to_local_path,
)
from labtrack.store.object_store import ObjectStoreSettings


@pytest.fixture
def local_repo(tmp_path):
    root = tmp_path / "root" / "run" / "artifacts"
    return LocalArtifactRepository(local_path_to_uri(root))


@pytest.fixture(params=["local", "s3"])
def repo(request, tmp_path):
    """The same contract over a local folder and over an S3 prefix."""
    if request.param == "local":
        return request.getfixturevalue("local_repo")
    endpoint = request.getfixturevalue("s3_endpoint")
    return artifact_repository(f"{endpoint.fresh_root()}/run/artifacts",
                               ObjectStoreSettings(s3_endpoint_url=endpoint.url,
                                                   part_bytes=5 * 1024 * 1024))


@pytest.fixture
def secret(tmp_path):
    path = tmp_path / "root" / "secret.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("top secret")
    return path


def test_upload_list_and_download(repo, tmp_path):
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "a.txt").write_text("hello")
    (source / "sub" / "b.bin").write_bytes(b"\x00" * 10)
    repo.log_artifacts(source, "data")
    repo.log_artifact(source / "a.txt")
    repo.write_bytes("notes/readme.md", b"# hi")
    listing = repo.list_artifacts()
    assert [(f.path, f.is_dir, f.file_size) for f in listing] == [
        ("a.txt", False, 5), ("data", True, None), ("notes", True, None)]
    assert [(f.path, f.file_size) for f in repo.list_artifacts("data")] == [
        ("data/a.txt", 5), ("data/sub", None)]
    assert [(f.path, f.file_size) for f in repo.list_artifacts("data/sub")] == [
        ("data/sub/b.bin", 10)]
    assert repo.list_artifacts("missing") == []
    out = repo.download_artifacts("data", tmp_path / "out")
    assert (Path(out) / "sub" / "b.bin").read_bytes() == b"\x00" * 10
    single = repo.download_artifacts("notes/readme.md", tmp_path / "one")
    assert Path(single).read_text() == "# hi"
    assert repo.read_bytes("a.txt") == b"hello"
    with pytest.raises(ResourceDoesNotExist):
        repo.download_artifacts("nope.txt", tmp_path / "x")


@pytest.mark.parametrize(
    "path",
    [
        "../secret.txt",
        "a/../../secret.txt",
        "..",
        "/etc/passwd",
        "%2e%2e/secret.txt",
        "%2E%2E%2Fsecret.txt",
        "%252e%252e/secret.txt",
        "..%2fsecret.txt",
        "..\\secret.txt",
        "C:\\Windows\\win.ini",
        "ok/\x00/x",
    ],
    ids=["dotdot", "nested-dotdot", "bare-dotdot", "absolute", "encoded", "encoded-slash",
         "double-encoded", "mixed-encoding", "backslash", "windows-drive", "nul-byte"],
)
def test_escaping_paths_are_refused_everywhere(repo, secret, tmp_path, path):
    for attempt in (
        lambda: repo.read_bytes(path),
        lambda: repo.list_artifacts(path),
        lambda: repo.download_artifacts(path, tmp_path / "out"),
        lambda: repo.write_bytes(path, b"pwned"),
        lambda: repo.log_artifact(secret, path),
        lambda: repo.delete(path),
    ):
        with pytest.raises(ArtifactPathError, match="Invalid artifact path"):
            attempt()
    assert secret.read_text() == "top secret"


def test_symlink_out_of_the_root_is_refused(local_repo, secret, tmp_path):
    repo = local_repo
    repo.write_bytes("inside.txt", b"x")
    os.symlink(secret, repo.root / "link.txt")
    os.symlink(secret.parent, repo.root / "linkdir")
    with pytest.raises(ArtifactPathError, match="symbolic link"):
        repo.read_bytes("link.txt")
    with pytest.raises(ArtifactPathError, match="symbolic link"):
        repo.download_artifacts("linkdir/secret.txt", tmp_path / "out")
    with pytest.raises(ArtifactPathError, match="symbolic link"):
        repo.write_bytes("linkdir/new.txt", b"pwned")
    assert not (secret.parent / "new.txt").exists()
    # Listing the root does not advertise the escaping links.
    assert [f.path for f in repo.list_artifacts()] == ["inside.txt"]
    # Copying the whole root skips them too.
    out = repo.download_artifacts(None, tmp_path / "all")
    assert sorted(os.listdir(out)) == ["inside.txt"]


def test_symlink_inside_the_root_is_allowed(local_repo):
    repo = local_repo
    repo.write_bytes("real/data.txt", b"ok")
    os.symlink(repo.root / "real", repo.root / "alias")
    assert repo.read_bytes("alias/data.txt") == b"ok"


def test_safe_relative_path_normalises_harmless_paths():
    assert safe_relative_path(None) == ""
    assert safe_relative_path("/") == ""
    assert safe_relative_path("./a//b/") == "a/b"
    assert safe_relative_path("100%.txt") == "100%.txt"


def test_uri_helpers(tmp_path):
    uri = local_path_to_uri(tmp_path / "a b")
    assert uri.startswith("file://") and "a%20b" in uri
    assert uri_to_local_path(uri) == str(tmp_path / "a b")
    with pytest.raises(InvalidParameterValue, match="query or fragment"):
        uri_to_local_path("file:///tmp/x?y=1")
    with pytest.raises(InvalidParameterValue, match="query or fragment"):
        uri_to_local_path("file:///tmp/x#frag")
    with pytest.raises(InvalidParameterValue, match="remote host"):
        uri_to_local_path("file://evil.example.com/tmp/x")
    with pytest.raises(InvalidParameterValue, match="unsupported scheme"):
        uri_to_local_path("ftp://host/x")


def test_deleting_the_root_is_refused(repo):
    repo.write_bytes("a.txt", b"x")
    with pytest.raises(ArtifactPathError, match="whole artifact root"):
        repo.delete("")
    repo.delete("a.txt")
    assert repo.list_artifacts() == []


# -- streaming -------------------------------------------------------------------------------


def test_a_streamed_upload_appears_only_when_committed(repo):
    parts = [bytes([n]) * (2 * 1024 * 1024 + n) for n in range(4)]  # more than one S3 part
    upload = repo.open_write("model/weights.bin")
    for part in parts:
        upload.write(part)
    assert repo.list_artifacts("model") == []
    upload.commit()
    upload.discard()  # a no-op after the commit
    assert [(f.path, f.file_size) for f in repo.list_artifacts("model")] == [
        ("model/weights.bin", sum(map(len, parts)))]
    with repo.open_read("model/weights.bin") as stream:
        read = []
        while chunk := stream.read(1024 * 1024):
            read.append(chunk)
    assert b"".join(read) == b"".join(parts)


def test_a_discarded_upload_leaves_nothing_and_keeps_the_old_file(repo):
    repo.write_bytes("notes.txt", b"old")
    upload = repo.open_write("notes.txt")
    upload.write(b"x" * (6 * 1024 * 1024))
    upload.discard()
    assert repo.read_bytes("notes.txt") == b"old"
    assert [f.path for f in repo.list_artifacts()] == ["notes.txt"]


def test_streams_refuse_folders_and_missing_files(repo):
    repo.write_bytes("sub/a.txt", b"a")
    with pytest.raises(InvalidParameterValue, match="is a directory"):
        repo.open_write("sub")
    with pytest.raises(ResourceDoesNotExist, match="No artifact file at 'sub'"):
        repo.open_read("sub")
    with pytest.raises(ResourceDoesNotExist, match="No artifact file at 'missing.bin'"):
        repo.open_read("missing.bin")
    with pytest.raises(ArtifactPathError, match="needs a name"):
        repo.open_write("")


@pytest.mark.parametrize("path", ["../x", "%2e%2e/x", "/x", "a/\x00"])
def test_streams_refuse_escaping_paths(repo, path):
    with pytest.raises(ArtifactPathError, match="Invalid artifact path"):
        repo.open_write(path)
    with pytest.raises(ArtifactPathError, match="Invalid artifact path"):
        repo.open_read(path)


def test_deleting_a_folder_removes_everything_under_it(repo):
    repo.write_bytes("keep.txt", b"k")
    repo.write_bytes("tmp/a.txt", b"a")
    repo.write_bytes("tmp/deeper/b.txt", b"b")
    repo.delete("tmp")
    assert [f.path for f in repo.list_artifacts()] == ["keep.txt"]
    with pytest.raises(ResourceDoesNotExist):
        repo.delete("tmp")
