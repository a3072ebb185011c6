"""What only object stores have: URIs naming buckets, containers and accounts, keys written
by other tools, the optional packages, and where the files land in the bucket."""

from __future__ import annotations

import sys

import pytest

from labtrack.errors import InvalidParameterValue
from labtrack.store.artifacts import artifact_repository, uri_inside
from labtrack.store.object_store import (
    ArtifactStoreError,
    ObjectLocation,
    ObjectStoreSettings,
    _filesystem,
)


@pytest.fixture
def s3_root(s3_endpoint):
    return f"{s3_endpoint.fresh_root()}/1/run/artifacts"


@pytest.fixture
def s3_repo(s3_endpoint, s3_root):
    return artifact_repository(s3_root, ObjectStoreSettings(s3_endpoint_url=s3_endpoint.url))


def test_files_land_under_the_prefix(s3_endpoint, s3_root, s3_repo, tmp_path):
    (tmp_path / "src" / "sub").mkdir(parents=True)
    (tmp_path / "src" / "sub" / "b.bin").write_bytes(b"\x00\xff")
    s3_repo.log_artifacts(tmp_path / "src", "data")
    s3_repo.write_bytes("notes.txt", b"hi")
    assert s3_endpoint.tree(s3_root) == {"data/sub/b.bin": b"\x00\xff", "notes.txt": b"hi"}


def test_keys_that_escape_are_neither_listed_nor_downloaded(s3_endpoint, s3_root, s3_repo,
                                                           tmp_path):
    s3_repo.write_bytes("data/ok.txt", b"ok")
    # Another tool wrote keys with ".." segments under the run's prefix.
    s3_endpoint.put(f"{s3_root}/data/../../../evil.txt", b"evil")
    s3_endpoint.put(f"{s3_root}/data/sub/../../x.txt", b"evil")
    # "data/.." is not listed; "data/sub" is a harmless name, whose only entry is not.
    assert [f.path for f in s3_repo.list_artifacts("data")] == ["data/ok.txt", "data/sub"]
    assert s3_repo.list_artifacts("data/sub") == []
    out = tmp_path / "out"
    s3_repo.download_artifacts("data", out)
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")
                     if p.is_file())
    assert written == ["out/data/ok.txt"]


def test_missing_files_and_empty_folders(s3_repo, tmp_path):
    assert s3_repo.list_artifacts() == []
    assert s3_repo.list_artifacts("nothing/here") == []
    s3_repo.write_bytes("a.txt", b"a")
    assert s3_repo.list_artifacts("a.txt") == []  # a file has no children


@pytest.mark.parametrize("uri, expected", [
    ("s3://bucket/some/prefix/", ObjectLocation("s3", None, "bucket/some/prefix")),
    ("s3://bucket", ObjectLocation("s3", None, "bucket")),
    ("gs://bucket/p", ObjectLocation("gs", None, "bucket/p")),
    ("abfss://models@acct.dfs.core.windows.net/mlruns",
     ObjectLocation("abfss", "acct", "models/mlruns")),
    ("wasbs://models@acct.blob.core.windows.net/mlruns",
     ObjectLocation("wasbs", "acct", "models/mlruns")),
    ("abfss://models/mlruns", ObjectLocation("abfss", None, "models/mlruns")),
])
def test_locations_name_bucket_account_and_key(uri, expected):
    assert ObjectLocation.parse(uri) == expected


@pytest.mark.parametrize("uri, message", [
    ("s3://bucket/a/../../other", "Invalid artifact URI"),
    ("s3:///no-bucket", "names no bucket"),
    ("s3://bucket/x?versionId=1", "query or fragment"),
])
def test_bad_locations_are_refused(uri, message):
    with pytest.raises(InvalidParameterValue, match=message):
        ObjectLocation.parse(uri)


def test_uri_inside_compares_object_prefixes():
    root = "s3://bucket/root"
    assert uri_inside("s3://bucket/root/1/run/artifacts", root)
    assert uri_inside("s3://bucket/root", root)
    assert not uri_inside("s3://bucket/rootless/1", root)
    assert not uri_inside("s3://bucket/root/../other", root)
    assert not uri_inside("s3://bucket/root/%2e%2e/other", root)
    assert not uri_inside("s3://other-bucket/root/1", root)
    assert not uri_inside("file:///srv/root/1", root)


@pytest.mark.parametrize("uri, package, extra", [
    ("gs://bucket/p", "gcsfs", "gcs"),
    ("abfss://c@acct.dfs.core.windows.net/p", "adlfs", "azure"),
    ("s3://bucket/p", "s3fs", "s3"),
])
def test_a_missing_package_names_the_extra(monkeypatch, uri, package, extra):
    monkeypatch.setitem(sys.modules, package, None)  # as if it were not installed
    _filesystem.cache_clear()
    try:
        with pytest.raises(InvalidParameterValue,
                           match=rf"need the '{package}' package: pip install "
                                 rf"'labtrack\[{extra}\]'"):
            artifact_repository(uri, ObjectStoreSettings())
    finally:
        _filesystem.cache_clear()


def test_failures_of_the_store_are_reported_with_the_location(s3_endpoint):
    repo = artifact_repository("s3://no-such-bucket/runs",
                               ObjectStoreSettings(s3_endpoint_url=s3_endpoint.url))
    with pytest.raises(ArtifactStoreError,
                       match="The artifact store failed on 's3://no-such-bucket/runs/a.txt'"):
        repo.write_bytes("a.txt", b"x")
    with pytest.raises(ArtifactStoreError) as raised:
        repo.write_bytes("b.txt", b"x")
    assert raised.value.to_dict()["error_code"] == "INTERNAL_ERROR"


# Python 3.12+ warns about fork() with threads (fsspec's IO thread): what --workers does.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_repository_made_before_a_fork_works_in_the_child(s3_repo):
    """``labtrack server --workers`` forks after the proxy's repository exists."""
    import os

    s3_repo.write_bytes("parent.txt", b"p")
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave without running pytest's teardown
        try:
            s3_repo.write_bytes("child.txt", s3_repo.read_bytes("parent.txt") + b"c")
            os.write(writer, b"ok")
        except BaseException as error:  # noqa: BLE001 - reported to the parent
            os.write(writer, repr(error).encode()[:500])
        finally:
            os._exit(0)
    os.close(writer)
    with os.fdopen(reader, "rb") as answer:
        said = answer.read()
    os.waitpid(pid, 0)
    assert said == b"ok"
    assert s3_repo.read_bytes("child.txt") == b"pc"
