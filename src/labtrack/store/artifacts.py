"""Artifact repositories: the files a run keeps (models, plots, text, notebooks).

Every run has one folder, ``<experiment artifact location>/<run_id>/artifacts``: a local folder
(``LocalArtifactRepository``) or a prefix in an object store (``s3://``, ``gs://``,
``abfss://``, ``wasbs://``; ``ObjectStoreArtifactRepository`` in ``object_store``). Both keep
the ``ArtifactRepository`` contract below. Paths come from users and HTTP clients, so every path
is checked as text (no absolute paths, no ``..`` segments, also after URL-decoding, no NUL
bytes); the local repository also checks the resolved real path, following symlinks, stays
inside the run's folder.
"""

from __future__ import annotations

import abc
import os
import posixpath
import re
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from labtrack.entities import FileInfo
from labtrack.errors import InvalidParameterValue, ResourceDoesNotExist

if TYPE_CHECKING:
    from labtrack.store.object_store import ObjectStoreSettings

# How many rounds of percent-decoding are inspected: "%252e%252e" is "%2e%2e" is "..".
_DECODE_ROUNDS = 3
# Object stores an artifact location may name (each needs its optional extra installed).
OBJECT_STORE_SCHEMES = ("s3", "gs", "abfss", "wasbs")
# The hidden file a local upload writes before renaming it: never listed nor copied.
_UPLOAD_TEMPORARY = re.compile(r"\..+\.upload-[0-9a-f]{32}")


class ArtifactPathError(InvalidParameterValue):
    """An artifact path that would leave the artifact root."""


def local_path_to_uri(path: str | os.PathLike) -> str:
    return Path(path).expanduser().resolve().as_uri()


def is_object_store_uri(uri: str | os.PathLike) -> bool:
    return isinstance(uri, str) and urlparse(uri).scheme in OBJECT_STORE_SCHEMES


def artifact_root_uri(root: str | os.PathLike) -> str:
    """The URI of an artifact root given as a folder, a ``file:`` URI or an object-store URI
    (without a trailing slash)."""
    if is_object_store_uri(root):
        return str(root).rstrip("/")
    if isinstance(root, str) and root.startswith("file:"):
        return local_path_to_uri(uri_to_local_path(root))
    return local_path_to_uri(root)


def normalize_artifact_root(root: str | os.PathLike | None) -> str | None:
    """An artifact root as stores record it: an object-store URI without its trailing
    slash, or an absolute folder; None stays None."""
    if not root:
        return None
    if is_object_store_uri(root):
        return str(root).rstrip("/")
    return str(Path(root).expanduser().resolve())


def join_artifact_uri(base_uri: str, *parts: str) -> str:
    """``base_uri`` with ``/``-separated child parts appended."""
    return "/".join([base_uri.rstrip("/"), *(p.strip("/") for p in parts if p)])


def uri_inside(uri: str, root_uri: str) -> bool:
    """Whether the artifact ``uri`` is ``root_uri`` or lies under it. Local folders are
    compared on their real paths (symlinks resolved), object-store URIs on their text after
    refusing ``..`` and other escapes in the part below the root."""
    if is_object_store_uri(root_uri) or is_object_store_uri(uri):
        root = root_uri.rstrip("/")
        if uri.rstrip("/") == root:
            return True
        if not uri.startswith(root + "/"):
            return False
        parsed = urlparse(uri)
        if parsed.query or parsed.fragment:
            return False
        try:
            safe_relative_path(uri[len(root) + 1:])
        except ArtifactPathError:
            return False
        return True
    real = os.path.realpath(uri_to_local_path(uri))
    real_root = os.path.realpath(uri_to_local_path(root_uri))
    return _inside(real, real_root)


def uri_to_local_path(uri: str) -> str:
    """The local folder of a ``file:`` URI or plain path."""
    parsed = urlparse(str(uri))
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise InvalidParameterValue(f"Artifact URI '{uri}' names a remote host.")
        if parsed.query or parsed.fragment:
            raise InvalidParameterValue(
                f"Artifact URI '{uri}' must not contain a query or fragment ('?' or '#')."
            )
        return url2pathname(parsed.path)
    if parsed.scheme == "" or (len(parsed.scheme) == 1 and os.name == "nt"):
        return os.path.abspath(os.path.expanduser(uri))
    raise InvalidParameterValue(
        f"Artifact URI '{uri}' uses the unsupported scheme '{parsed.scheme}'."
    )


def safe_relative_path(path: str | None) -> str:
    """Normalise a client-given artifact path, refusing anything that could escape the root.

    Returns ``""`` for the root itself.
    """
    if path is None or path in ("", ".", "/"):
        # MLflow clients send "/" or nothing for the root listing.
        return ""
    if not isinstance(path, str):
        raise ArtifactPathError(f"Invalid artifact path {path!r}: expected a string.")
    forms = [path]
    for _ in range(_DECODE_ROUNDS):
        decoded = unquote(forms[-1])
        if decoded == forms[-1]:
            break
        forms.append(decoded)
    for form in forms:
        if "\x00" in form:
            raise ArtifactPathError(f"Invalid artifact path {path!r}: contains a NUL byte.")
        unified = form.replace("\\", "/")
        if unified.startswith("/") or (len(unified) > 1 and unified[1] == ":"):
            raise ArtifactPathError(
                f"Invalid artifact path {path!r}: absolute paths are not allowed."
            )
        if ".." in unified.split("/"):
            raise ArtifactPathError(
                f"Invalid artifact path {path!r}: '..' segments are not allowed."
            )
    normalized = posixpath.normpath(path)
    return "" if normalized == "." else normalized


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


class ArtifactUpload(abc.ABC):
    """One file being written in chunks: nothing is visible under its name until ``commit``;
    ``discard`` throws the partial file away (a no-op once committed)."""

    @abc.abstractmethod
    def write(self, chunk: bytes) -> None: ...

    @abc.abstractmethod
    def commit(self) -> None: ...

    @abc.abstractmethod
    def discard(self) -> None: ...


class ArtifactRepository(abc.ABC):
    """The files under one artifact root (a run's, a logged model's, or the proxy's).

    Every ``path`` is relative to the root and checked with ``safe_relative_path``. Files
    are streamed (``open_read`` / ``open_write``), never read whole, except by the explicit
    ``read_bytes`` / ``write_bytes`` for small files.
    """

    root_uri: str

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.root_uri!r})"

    @abc.abstractmethod
    def list_artifacts(self, path: str | None = None) -> list[FileInfo]:
        """The direct children of ``path``, folders without a size, sorted by path; ``[]``
        when ``path`` is not a folder."""

    @abc.abstractmethod
    def open_read(self, artifact_file: str) -> BinaryIO:
        """A binary stream of one file; ``ResourceDoesNotExist`` if it is not a file."""

    @abc.abstractmethod
    def open_write(self, artifact_file: str) -> ArtifactUpload:
        """Start writing one file (replacing any file of that name); refuses a folder."""

    @abc.abstractmethod
    def log_artifact(self, local_file: str | os.PathLike,
                     artifact_path: str | None = None) -> None:
        """Copy one local file into the folder ``artifact_path``."""

    @abc.abstractmethod
    def download_artifacts(self, artifact_path: str | None,
                           dst_path: str | os.PathLike) -> str:
        """Copy a file or folder into ``dst_path``; returns the local path of the copy."""

    @abc.abstractmethod
    def delete(self, path: str) -> None:
        """Delete a file or a folder with everything under it (never the root)."""

    def log_artifacts(self, local_dir: str | os.PathLike,
                      artifact_path: str | None = None) -> None:
        """Copy a local folder's files under ``artifact_path``."""
        source = Path(local_dir)
        if not source.is_dir():
            raise InvalidParameterValue(f"'{local_dir}' is not a directory.")
        base = safe_relative_path(artifact_path)
        for folder, _dirs, files in os.walk(source):
            relative = os.path.relpath(folder, source)
            sub = base if relative == "." else posixpath.join(base, Path(relative).as_posix())
            for name in files:
                self.log_artifact(Path(folder) / name, sub)

    def write_bytes(self, artifact_file: str, data: bytes) -> None:
        upload = self.open_write(artifact_file)
        try:
            upload.write(data)
            upload.commit()
        finally:
            upload.discard()

    def read_bytes(self, artifact_file: str) -> bytes:
        with self.open_read(artifact_file) as stream:
            return stream.read()


class _LocalUpload(ArtifactUpload):
    """Writes to a hidden temporary file beside the target, renamed over it on commit."""

    def __init__(self, target: Path):
        self.target = target
        self.temporary = target.with_name(f".{target.name}.upload-{uuid.uuid4().hex}")
        self.stream = open(self.temporary, "wb")  # noqa: SIM115 - closed by commit/discard

    def write(self, chunk: bytes) -> None:
        self.stream.write(chunk)

    def commit(self) -> None:
        self.stream.close()
        os.replace(self.temporary, self.target)

    def discard(self) -> None:
        self.stream.close()
        if self.temporary.exists():
            self.temporary.unlink()


class LocalArtifactRepository(ArtifactRepository):
    """A run's artifact folder on the local file system."""

    def __init__(self, root_uri: str):
        self.root_uri = root_uri
        self.root = Path(uri_to_local_path(root_uri))

    def resolve(self, path: str | None) -> Path:
        """The on-disk location of ``path``; refuses paths that leave the root."""
        relative = safe_relative_path(path)
        target = self.root / relative if relative else self.root
        real_root = os.path.realpath(self.root)
        if not _inside(os.path.realpath(target), real_root):
            raise ArtifactPathError(
                f"Invalid artifact path {path!r}: it resolves outside the run's artifact root "
                "(through a symbolic link)."
            )
        return target

    def _destination(self, artifact_path: str | None, name: str) -> Path:
        folder = self.resolve(artifact_path)
        target = self.resolve(posixpath.join(safe_relative_path(artifact_path), name))
        folder.mkdir(parents=True, exist_ok=True)
        # mkdir may have walked through a symlinked folder: check again on the real path.
        self.resolve(posixpath.join(safe_relative_path(artifact_path), name))
        return target

    def log_artifact(self, local_file: str | os.PathLike, artifact_path: str | None = None):
        source = Path(local_file)
        if not source.is_file():
            raise InvalidParameterValue(f"'{local_file}' is not a file.")
        shutil.copyfile(source, self._destination(artifact_path, source.name))

    def log_artifacts(self, local_dir: str | os.PathLike, artifact_path: str | None = None):
        source = Path(local_dir)
        if not source.is_dir():
            raise InvalidParameterValue(f"'{local_dir}' is not a directory.")
        base = safe_relative_path(artifact_path)
        for folder, _dirs, files in os.walk(source):
            relative = os.path.relpath(folder, source)
            sub = base if relative == "." else posixpath.join(base, Path(relative).as_posix())
            if not files:
                self.resolve(sub).mkdir(parents=True, exist_ok=True)
            for name in files:
                shutil.copyfile(Path(folder) / name, self._destination(sub, name))

    def write_bytes(self, artifact_file: str, data: bytes) -> None:
        relative = safe_relative_path(artifact_file)
        if not relative:
            raise ArtifactPathError("An artifact file needs a name.")
        folder, name = posixpath.split(relative)
        self._destination(folder, name).write_bytes(data)

    def read_bytes(self, artifact_file: str) -> bytes:
        target = self.resolve(artifact_file)
        if not target.is_file():
            raise ResourceDoesNotExist(f"No artifact file '{artifact_file}'.")
        return target.read_bytes()

    def open_read(self, artifact_file: str) -> BinaryIO:
        target = self.resolve(artifact_file)
        if not target.is_file():
            raise ResourceDoesNotExist(f"No artifact file at '{artifact_file}'.")
        return open(target, "rb")  # noqa: SIM115 - the caller closes it

    def open_write(self, artifact_file: str) -> ArtifactUpload:
        relative = safe_relative_path(artifact_file)
        if not relative:
            raise ArtifactPathError("An artifact file needs a name.")
        if self.resolve(relative).is_dir():
            raise InvalidParameterValue(f"'{artifact_file}' is a directory.")
        folder, name = posixpath.split(relative)
        return _LocalUpload(self._destination(folder, name))

    def list_artifacts(self, path: str | None = None) -> list[FileInfo]:
        """The direct children of ``path``, folders without a size, sorted by path."""
        relative = safe_relative_path(path)
        folder = self.resolve(relative)
        if not folder.is_dir():
            return []
        real_root = os.path.realpath(self.root)
        infos = []
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            if not _inside(os.path.realpath(entry.path), real_root):
                continue  # a symlink leading out of the root is not part of the run
            if _UPLOAD_TEMPORARY.fullmatch(entry.name):
                continue  # an upload still in progress
            child = posixpath.join(relative, entry.name) if relative else entry.name
            if entry.is_dir():
                infos.append(FileInfo(child, True, None))
            else:
                infos.append(FileInfo(child, False, entry.stat().st_size))
        return infos

    def download_artifacts(self, artifact_path: str | None, dst_path: str | os.PathLike) -> str:
        """Copy a file or folder into ``dst_path``; returns the local path of the copy."""
        source = self.resolve(artifact_path)
        if not source.exists():
            raise ResourceDoesNotExist(f"No artifact at '{artifact_path}'.")
        destination = Path(dst_path)
        destination.mkdir(parents=True, exist_ok=True)
        target = destination / (source.name if safe_relative_path(artifact_path) else "artifacts")
        if source.is_dir():
            real_root = os.path.realpath(self.root)
            for folder, dirs, files in os.walk(source):
                # Never follow links out of the root while copying a folder.
                dirs[:] = [d for d in dirs
                           if _inside(os.path.realpath(os.path.join(folder, d)), real_root)]
                out = target / os.path.relpath(folder, source)
                out.mkdir(parents=True, exist_ok=True)
                for name in files:
                    if _UPLOAD_TEMPORARY.fullmatch(name):
                        continue
                    if _inside(os.path.realpath(os.path.join(folder, name)), real_root):
                        shutil.copyfile(os.path.join(folder, name), out / name)
        else:
            shutil.copyfile(source, target)
        return str(target)

    def delete(self, path: str) -> None:
        target = self.resolve(path)
        if not safe_relative_path(path):
            raise ArtifactPathError("Refusing to delete the whole artifact root.")
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
        else:
            raise ResourceDoesNotExist(f"No artifact at '{path}'.")


def artifact_repository(uri: str,
                        settings: ObjectStoreSettings | None = None) -> ArtifactRepository:
    """The repository for an artifact URI: an object store for ``s3://``, ``gs://``,
    ``abfss://`` and ``wasbs://`` (``settings`` default to the environment's), else a local
    folder."""
    if is_object_store_uri(uri):
        from labtrack.store.object_store import ObjectStoreArtifactRepository

        return ObjectStoreArtifactRepository(uri, settings)
    return LocalArtifactRepository(uri)
