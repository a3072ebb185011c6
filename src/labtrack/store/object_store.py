"""Artifact repositories in object storage: S3 (and S3-compatible endpoints), Google Cloud
Storage and Azure (ADLS Gen2 / Blob), through fsspec.

Each store needs its fsspec implementation, an optional extra of labtrack:

======================  ==========  =====================
URI                     package     ``pip install`` extra
======================  ==========  =====================
``s3://bucket/prefix``  s3fs        ``labtrack[s3]``
``gs://bucket/prefix``  gcsfs       ``labtrack[gcs]``
``abfss://container@account.dfs.core.windows.net/prefix``,
``wasbs://container@account.blob.core.windows.net/prefix``
                        adlfs       ``labtrack[azure]``
======================  ==========  =====================

Credentials come from each SDK's usual sources (``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` / ``AWS_PROFILE``, ``GOOGLE_APPLICATION_CREDENTIALS``,
``AZURE_STORAGE_CONNECTION_STRING`` / ``AZURE_STORAGE_ACCOUNT_KEY`` …); an S3-compatible
endpoint (MinIO, Ceph, moto) from ``--s3-endpoint-url`` or ``MLFLOW_S3_ENDPOINT_URL``.

Object stores have no folders: a "folder" is the common prefix of keys, so an empty folder
does not exist and a listing shows only folders that hold files. Paths are checked as text
exactly like local ones, and keys found in the store that would not pass that check (``..``
segments written by another tool) are neither listed nor downloaded.
"""

from __future__ import annotations

import functools
import logging
import os
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlparse

from labtrack.entities import FileInfo
from labtrack.errors import InvalidParameterValue, LabtrackError, ResourceDoesNotExist
from labtrack.store.artifacts import (
    ArtifactPathError,
    ArtifactRepository,
    ArtifactUpload,
    safe_relative_path,
)

S3_ENDPOINT_URL_ENV = "MLFLOW_S3_ENDPOINT_URL"
log = logging.getLogger("labtrack.artifacts")
# scheme -> (fsspec package, labtrack extra)
_PACKAGES = {"s3": ("s3fs", "s3"), "gs": ("gcsfs", "gcs"), "abfss": ("adlfs", "azure"),
             "wasbs": ("adlfs", "azure")}
# S3's smallest multipart part is 5 MiB and an upload has at most 10,000 parts: 16 MiB parts
# allow files up to 156 GiB while one upload holds at most one part in memory.
DEFAULT_PART_BYTES = 16 * 1024 * 1024


class ArtifactStoreError(LabtrackError):
    """The object store failed or refused a request (credentials, bucket, network)."""

    error_code = "INTERNAL_ERROR"


@dataclass(frozen=True)
class ObjectStoreSettings:
    """How labtrack reaches object stores.

    :param s3_endpoint_url: an S3-compatible endpoint instead of AWS (MinIO, Ceph, moto).
    :param part_bytes: size of one part of a multipart upload, and of one ranged read: the
        most memory one streamed file takes.
    """

    s3_endpoint_url: str | None = None
    part_bytes: int = DEFAULT_PART_BYTES

    @classmethod
    def from_environment(cls, s3_endpoint_url: str | None = None) -> ObjectStoreSettings:
        """Settings from the environment; an explicit ``s3_endpoint_url`` wins over
        ``MLFLOW_S3_ENDPOINT_URL``."""
        return cls(s3_endpoint_url=s3_endpoint_url or os.environ.get(S3_ENDPOINT_URL_ENV)
                   or None)


@dataclass(frozen=True)
class ObjectLocation:
    """An object-store URI split into what fsspec needs: the scheme, the storage account
    (Azure only) and the path ``bucket/key`` (``container/key`` on Azure)."""

    scheme: str
    account: str | None
    path: str

    @classmethod
    def parse(cls, uri: str) -> ObjectLocation:
        parsed = urlparse(uri)
        if parsed.scheme not in _PACKAGES:
            raise InvalidParameterValue(f"'{uri}' is not an object-store URI.")
        if parsed.query or parsed.fragment:
            raise InvalidParameterValue(
                f"Artifact URI '{uri}' must not contain a query or fragment ('?' or '#').")
        bucket, account = parsed.netloc, None
        if parsed.scheme in ("abfss", "wasbs") and "@" in bucket:
            # container@account.dfs.core.windows.net (or .blob. for wasbs)
            bucket, _, host = bucket.partition("@")
            account = host.split(".", 1)[0] or None
        if not bucket:
            raise InvalidParameterValue(f"Artifact URI '{uri}' names no bucket or container.")
        key = parsed.path.strip("/")
        if key:
            try:
                key = safe_relative_path(key)
            except ArtifactPathError as error:
                raise InvalidParameterValue(f"Invalid artifact URI '{uri}': {error}") from None
        return cls(parsed.scheme, account, f"{bucket}/{key}" if key else bucket)


def _import(scheme: str):
    package, extra = _PACKAGES[scheme]
    try:
        return __import__(package)
    except ImportError:
        raise InvalidParameterValue(
            f"Artifacts in {scheme}:// need the '{package}' package: "
            f"pip install 'labtrack[{extra}]'.") from None


def filesystem(scheme: str, account: str | None, settings: ObjectStoreSettings):
    """One fsspec file system per store and settings, shared by every repository (it pools
    connections), and per process: fsspec's file systems do not survive a fork, and
    ``labtrack server --workers`` forks. Listings are never cached: other processes write
    too."""
    return _filesystem(scheme, account, settings, os.getpid())


@functools.lru_cache(maxsize=16)
def _filesystem(scheme: str, account: str | None, settings: ObjectStoreSettings, pid: int):
    module = _import(scheme)
    if scheme == "s3":
        client_kwargs = {"endpoint_url": settings.s3_endpoint_url} if settings.s3_endpoint_url \
            else {}
        return module.S3FileSystem(client_kwargs=client_kwargs, use_listings_cache=False,
                                   skip_instance_cache=True)
    if scheme == "gs":
        return module.GCSFileSystem(use_listings_cache=False, skip_instance_cache=True)
    options = {"account_name": account} if account else {}
    return module.AzureBlobFileSystem(use_listings_cache=False, skip_instance_cache=True,
                                      **options)


class _ObjectUpload(ArtifactUpload):
    """fsspec's buffered writer: each full part is sent at once (an S3 multipart upload),
    and the object appears only when the upload completes in ``commit``."""

    def __init__(self, stream, uri: str):
        self.stream = stream
        self.uri = uri

    def write(self, chunk: bytes) -> None:
        with _StoreFailures(self.uri):
            self.stream.write(chunk)

    def commit(self) -> None:
        with _StoreFailures(self.uri):
            self.stream.close()

    def discard(self) -> None:
        if self.stream.closed:
            return
        try:
            self.stream.discard()  # aborts the multipart upload
        except OSError as error:
            # The parts stay in the bucket until its lifecycle rules expire them: say so.
            log.warning("Could not abort the unfinished upload of %s: %s", self.uri, error)
        # The writer is unusable now; mark it closed so that closing it (as the garbage
        # collector does) does not try to finish the upload.
        self.stream.closed = True


class _StoreFailures:
    """Turns the store's failures into labtrack errors the API reports in MLflow's shape."""

    def __init__(self, uri: str, missing: str | None = None):
        self.uri = uri
        self.missing = missing

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if error is None or isinstance(error, LabtrackError):
            return False
        if isinstance(error, FileNotFoundError) and self.missing:
            raise ResourceDoesNotExist(self.missing) from error
        if isinstance(error, OSError | ValueError):
            raise ArtifactStoreError(
                f"The artifact store failed on '{self.uri}': {error}") from error
        return False


class ObjectStoreArtifactRepository(ArtifactRepository):
    """The files under one object-store prefix."""

    def __init__(self, root_uri: str, settings: ObjectStoreSettings | None = None):
        self.root_uri = root_uri.rstrip("/")
        self.location = ObjectLocation.parse(self.root_uri)
        self.settings = settings or ObjectStoreSettings.from_environment()
        filesystem(self.location.scheme, self.location.account, self.settings)  # fail early

    @property
    def fs(self):
        return filesystem(self.location.scheme, self.location.account, self.settings)

    def _key(self, path: str | None) -> str:
        relative = safe_relative_path(path)
        return f"{self.location.path}/{relative}" if relative else self.location.path

    def _uri(self, path: str | None) -> str:
        relative = safe_relative_path(path)
        return f"{self.root_uri}/{relative}" if relative else self.root_uri

    def _info(self, key: str, uri: str) -> dict | None:
        with _StoreFailures(uri):
            try:
                return self.fs.info(key)
            except FileNotFoundError:
                return None

    def list_artifacts(self, path: str | None = None) -> list[FileInfo]:
        relative = safe_relative_path(path)
        key = self._key(relative)
        with _StoreFailures(self._uri(relative)):
            try:
                entries = self.fs.ls(key, detail=True)
            except (FileNotFoundError, NotADirectoryError):
                return []
        infos = []
        for entry in entries:
            name = entry["name"].rstrip("/")
            if not name.startswith(key + "/"):
                continue  # the file itself (a listing of a file) or a foreign entry
            child_name = name[len(key) + 1:]
            try:
                child = safe_relative_path(posixpath.join(relative, child_name))
            except ArtifactPathError:
                continue  # a key no artifact path can name
            if "/" in child_name or not child_name:
                continue
            if entry["type"] == "directory":
                infos.append(FileInfo(child, True, None))
            else:
                infos.append(FileInfo(child, False, int(entry["size"])))
        return sorted(infos, key=lambda info: info.path)

    def open_read(self, artifact_file: str) -> BinaryIO:
        key, uri = self._key(artifact_file), self._uri(artifact_file)
        info = self._info(key, uri)
        if info is None or info["type"] != "file":
            raise ResourceDoesNotExist(f"No artifact file at '{artifact_file}'.")
        with _StoreFailures(uri, missing=f"No artifact file at '{artifact_file}'."):
            return self.fs.open(key, "rb", block_size=self.settings.part_bytes)

    def open_write(self, artifact_file: str) -> ArtifactUpload:
        relative = safe_relative_path(artifact_file)
        if not relative:
            raise ArtifactPathError("An artifact file needs a name.")
        key, uri = self._key(relative), self._uri(relative)
        info = self._info(key, uri)
        if info is not None and info["type"] == "directory":
            raise InvalidParameterValue(f"'{artifact_file}' is a directory.")
        with _StoreFailures(uri):
            return _ObjectUpload(self.fs.open(key, "wb", block_size=self.settings.part_bytes),
                                 uri)

    def log_artifact(self, local_file: str | os.PathLike,
                     artifact_path: str | None = None) -> None:
        source = Path(local_file)
        if not source.is_file():
            raise InvalidParameterValue(f"'{local_file}' is not a file.")
        target = posixpath.join(safe_relative_path(artifact_path), source.name)
        upload = self.open_write(target)
        try:
            with open(source, "rb") as stream:
                while chunk := stream.read(self.settings.part_bytes):
                    upload.write(chunk)
            upload.commit()
        finally:
            upload.discard()

    def download_artifacts(self, artifact_path: str | None,
                           dst_path: str | os.PathLike) -> str:
        relative = safe_relative_path(artifact_path)
        key, uri = self._key(relative), self._uri(relative)
        info = self._info(key, uri)
        if info is None:
            raise ResourceDoesNotExist(f"No artifact at '{artifact_path}'.")
        destination = Path(dst_path)
        destination.mkdir(parents=True, exist_ok=True)
        target = destination / (posixpath.basename(relative) if relative else "artifacts")
        with _StoreFailures(uri, missing=f"No artifact at '{artifact_path}'."):
            if info["type"] != "directory":
                self.fs.get_file(key, str(target))
                return str(target)
            target.mkdir(parents=True, exist_ok=True)
            for name in self.fs.find(key):
                try:
                    below = safe_relative_path(name[len(key) + 1:])
                except ArtifactPathError:
                    continue  # never write outside the destination
                if not name.startswith(key + "/") or not below:
                    continue
                out = target / below
                out.parent.mkdir(parents=True, exist_ok=True)
                self.fs.get_file(name, str(out))
        return str(target)

    def delete(self, path: str) -> None:
        relative = safe_relative_path(path)
        if not relative:
            raise ArtifactPathError("Refusing to delete the whole artifact root.")
        key, uri = self._key(relative), self._uri(relative)
        info = self._info(key, uri)
        if info is None:
            raise ResourceDoesNotExist(f"No artifact at '{path}'.")
        with _StoreFailures(uri, missing=f"No artifact at '{path}'."):
            self.fs.rm(key, recursive=info["type"] == "directory")
