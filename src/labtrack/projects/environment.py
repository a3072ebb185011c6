"""The Python a project runs with: the current interpreter, or a cached virtualenv.

``local`` runs the command with the interpreter running labtrack: ``python`` and ``python3``
on the child's PATH are shims for it.

``virtualenv`` builds an environment from the project's ``python_env.yaml`` (MLflow's format:
``python``, ``build_dependencies``, ``dependencies``) with ``python -m venv`` and pip, once per
content hash, under ``<labtrack data dir>/projects/envs/``. A build happens in a folder of its
own and is published by creating a symlink named after the hash — one atomic step, so a
concurrent launch sees either no environment or a complete one, never a half-built one (the
build folder is never renamed, because pip writes its absolute path into the scripts it
installs). A lock file makes concurrent launches wait for one build instead of doing two.

labtrack itself must be importable in the environment, at the very version that launched the
run (the child writes to the same store, so its schema must match). It is not on an index to
install from, so the environment gets a ``.pth`` file naming a *runtime folder*: symlinks to
the launching installation's ``labtrack`` package and to the distributions it depends on (its
``Requires-Dist`` closure, no extras) — nothing else of the launching environment. A ``.pth``
path comes after the environment's own site-packages, so a version the project pins wins over
the one labtrack brings. This costs no download and no copy. When ``python_env.yaml`` asks for
another Python version (compiled dependencies of the launching interpreter would not load),
the runtime folder holds labtrack alone and its dependencies are pip-installed instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from labtrack import config
from labtrack.projects.spec import ProjectError, load_yaml

LOCAL = "local"
VIRTUALENV = "virtualenv"
ENV_MANAGERS = (LOCAL, VIRTUALENV)
_FORMAT = 1  # bump to invalidate every cached environment
_BIN = "Scripts" if os.name == "nt" else "bin"
_RUNTIME_PTH = "labtrack-runtime.pth"

Output = Callable[[bytes], None]


def _stderr(data: bytes) -> None:
    stream = getattr(sys.stderr, "buffer", None)
    if stream is not None:
        stream.write(data)
        stream.flush()
    else:
        sys.stderr.write(data.decode("utf-8", "replace"))
        sys.stderr.flush()


def projects_dir() -> Path:
    return config.data_dir() / "projects"


# -- python_env.yaml --------------------------------------------------------------------------


@dataclass(frozen=True)
class PythonEnv:
    """A ``python_env.yaml``: the Python version and the packages of an environment."""

    python: str | None = None
    build_dependencies: tuple[str, ...] = ()
    dependencies: tuple[str, ...] = ()
    base_dir: Path = field(default_factory=Path.cwd)  # relative requirement paths start here

    @classmethod
    def load(cls, path: str | os.PathLike) -> PythonEnv:
        path = Path(path)
        document = load_yaml(path) or {}
        if not isinstance(document, dict):
            raise ProjectError(f"{path}: expected a mapping with 'python' and 'dependencies'.")
        unknown = sorted(set(map(str, document)) - {"python", "build_dependencies",
                                                     "dependencies"})
        if unknown:
            raise ProjectError(
                f"{path}: unknown keys {unknown}; python_env.yaml has 'python', "
                "'build_dependencies' and 'dependencies'."
            )
        python = document.get("python")
        if isinstance(python, float):
            raise ProjectError(
                f"{path}: write the Python version as a string, e.g. python: \"{python}\" "
                "(YAML reads an unquoted 3.10 as the number 3.1)."
            )
        if python is not None and not isinstance(python, str | int):
            raise ProjectError(f"{path}: 'python' must be a version such as \"3.11\".")
        python = str(python).strip() if python is not None else None
        if python is not None and not re.fullmatch(r"\d+(\.\d+){0,2}", python):
            raise ProjectError(
                f"{path}: 'python' must be a version such as \"3.11\" or \"3.11.7\", not "
                f"{python!r}."
            )
        lists = {}
        for key in ("build_dependencies", "dependencies"):
            value = document.get(key) or []
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ProjectError(f"{path}: '{key}' must be a list of pip requirements.")
            lists[key] = tuple(v.strip() for v in value if v.strip())
        return cls(python, lists["build_dependencies"], lists["dependencies"],
                   path.parent.resolve())

    def fingerprint(self) -> dict:
        """What identifies the environment: the requirements, and the content of the
        requirement files and local archives they name."""
        files = {}
        for requirement in (*self.build_dependencies, *self.dependencies):
            for candidate in _referenced_files(requirement):
                path = (self.base_dir / candidate)
                if path.is_file():
                    files[candidate] = hashlib.sha256(path.read_bytes()).hexdigest()
        return {"python": self.python, "build_dependencies": list(self.build_dependencies),
                "dependencies": list(self.dependencies), "files": files}


def _referenced_files(requirement: str) -> list[str]:
    match = re.match(r"^(?:-r|--requirement|-c|--constraint)[\s=]*(\S+)", requirement)
    if match:
        return [match.group(1)]
    if requirement.startswith((".", "/")) or requirement.endswith((".whl", ".tar.gz", ".zip")):
        return [requirement]
    return []


# -- what a prepared environment gives the child ----------------------------------------------


@dataclass(frozen=True)
class PreparedEnvironment:
    """How to run a command in an environment."""

    manager: str
    python: str                       # the interpreter running ``.py`` entry points
    path_entries: tuple[str, ...]     # put first on the child's PATH
    variables: dict = field(default_factory=dict)
    location: Path | None = None      # the virtualenv, if any

    def apply(self, environ: dict[str, str]) -> dict[str, str]:
        """``environ`` with this environment's PATH and variables."""
        environ = dict(environ)
        path = environ.get("PATH", "")
        environ["PATH"] = os.pathsep.join([*self.path_entries, *([path] if path else [])])
        if self.manager == VIRTUALENV:
            environ.pop("PYTHONHOME", None)
        environ.update(self.variables)
        return environ


def prepare_environment(manager: str, env_file: Path | None,
                        output: Output = _stderr) -> PreparedEnvironment:
    """The environment ``manager`` (``local`` or ``virtualenv``) gives a project whose
    ``python_env`` file is ``env_file``; builds the virtualenv if it is not cached yet."""
    if manager not in ENV_MANAGERS:
        raise ProjectError(
            f"Unknown environment manager '{manager}': use {' or '.join(ENV_MANAGERS)}."
        )
    if manager == LOCAL:
        return _local()
    python_env = PythonEnv.load(env_file) if env_file is not None else PythonEnv()
    return VirtualenvBuilder(python_env, output).get()


def _local() -> PreparedEnvironment:
    """This interpreter, and, when it is a virtualenv's, that environment activated (its
    console scripts on PATH), whatever PATH labtrack was started with."""
    executable = sys.executable
    entries = [str(_shim_dir(executable))]
    variables = {}
    if sys.prefix != sys.base_prefix:
        entries.append(str(Path(sys.prefix) / _BIN))
        variables["VIRTUAL_ENV"] = sys.prefix
    return PreparedEnvironment(LOCAL, executable, tuple(entries), variables)


def _shim_dir(executable: str) -> Path:
    """A folder whose ``python`` and ``python3`` run ``executable``. Scripts, not symlinks:
    a symlinked venv interpreter would not find its ``pyvenv.cfg``."""
    key = hashlib.sha256(executable.encode()).hexdigest()[:16]
    folder = projects_dir() / "shims" / key
    if (folder / "python").exists():
        return folder
    staging = folder.with_name(f"{key}.{uuid.uuid4().hex}")
    staging.mkdir(parents=True)
    for name in ("python", "python3"):
        if os.name == "nt":
            (staging / f"{name}.cmd").write_text(f'@"{executable}" %*\r\n')
        else:
            shim = staging / name
            shim.write_text(f"#!/bin/sh\nexec {shlex.quote(executable)} \"$@\"\n")
            shim.chmod(0o755)
    _publish_folder(staging, folder)
    return folder


def _publish_folder(staging: Path, folder: Path) -> None:
    """Rename ``staging`` to ``folder``; if another process got there first, keep theirs."""
    try:
        os.rename(staging, folder)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not folder.exists():
            raise


# -- the interpreter a python_env asks for ----------------------------------------------------


def _version_matches(actual: str, requested: str) -> bool:
    return actual.split(".")[: len(requested.split("."))] == requested.split(".")


def find_interpreter(requested: str | None) -> tuple[str, str]:
    """``(executable, full version)`` of a Python matching ``requested`` (``3.11`` or
    ``3.11.7``): the current interpreter if it matches, else ``pythonX.Y`` on PATH."""
    current = platform.python_version()
    if requested is None or _version_matches(current, requested):
        return sys.executable, current
    major_minor = ".".join(requested.split(".")[:2])
    names = [f"python{major_minor}"] + (["python3", "python"] if "." not in requested else [])
    for name in names:
        candidate = shutil.which(name)
        if not candidate:
            continue
        try:
            version = subprocess.run(
                [candidate, "-c", "import platform; print(platform.python_version())"],
                capture_output=True, text=True, timeout=30,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            continue
        if version and _version_matches(version, requested):
            return candidate, version
    raise ProjectError(
        f"The project's python_env asks for Python {requested}, but this is Python {current} "
        f"and no python{major_minor} is on PATH: install Python {major_minor}, or run with "
        "--env-manager local."
    )


# -- labtrack inside the environment ----------------------------------------------------------


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_names(requirements: Sequence[str]) -> list[str]:
    """Names of the requirements that apply here, extras left out."""
    try:
        from packaging.requirements import InvalidRequirement, Requirement
    except ImportError:  # packaging comes with jupyter_server; a rough parse otherwise
        names = []
        for text in requirements:
            spec, _, marker = text.partition(";")
            if "extra" not in marker:
                match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
                if match:
                    names.append(match.group(1))
        return names
    names = []
    for text in requirements:
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            continue
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            names.append(requirement.name)
    return names


def _dependency_closure(root: str = "labtrack"):
    """The distributions ``root`` needs at run time (``Requires-Dist`` without extras),
    ``root`` included, as installed here."""
    from importlib import metadata

    found: dict[str, metadata.Distribution] = {}
    pending = [root]
    while pending:
        name = _canonical(pending.pop())
        if name in found:
            continue
        try:
            distribution = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        found[name] = distribution
        pending.extend(_requirement_names(distribution.requires or []))
    return found


def _labtrack_package() -> Path:
    import labtrack

    return Path(labtrack.__file__).resolve().parent


def _top_level_entries(distribution) -> list[Path]:
    """The importable top-level files and folders of a distribution, and its metadata
    folder, where they are installed."""
    names: set[str] = set()
    for file in distribution.files or []:
        first = file.parts[0] if file.parts else ""
        if not first or first in ("..", "__pycache__") or first.endswith((".pth", ".data")):
            continue
        names.add(first)
    if not names:
        top_level = distribution.read_text("top_level.txt") or ""
        names.update(line.strip() for line in top_level.splitlines() if line.strip())
    entries = []
    for name in sorted(names):
        located = Path(distribution.locate_file(name))
        if located.exists():
            entries.append(located)
    return entries


@dataclass(frozen=True)
class LabtrackRuntime:
    """The runtime folder to name in the environment's ``.pth`` file, and what pip must
    install besides (labtrack's requirements when the Python version differs)."""

    folder: Path
    pip_requirements: tuple[str, ...]
    key: str


def labtrack_runtime(python_version: str) -> LabtrackRuntime:
    """The runtime folder making this labtrack importable by a Python of ``python_version``."""
    same = python_version.split(".")[:2] == platform.python_version().split(".")[:2]
    package = _labtrack_package()
    entries: dict[str, Path] = {"labtrack": package}
    requirements: tuple[str, ...] = ()
    closure = _dependency_closure("labtrack")
    own = closure.get("labtrack")
    if own is not None:
        for entry in _top_level_entries(own):
            if entry.name.endswith(".dist-info"):
                entries.setdefault(entry.name, entry)
    if same:
        for name, distribution in closure.items():
            if name == "labtrack":
                continue
            for entry in _top_level_entries(distribution):
                entries.setdefault(entry.name, entry)
    elif own is not None:
        requirements = tuple(
            text.partition(";")[0].strip() for text in own.requires or []
            if _requirement_names([text])
        )
    described = {
        "format": _FORMAT, "python": ".".join(python_version.split(".")[:2]),
        "entries": sorted((name, str(path)) for name, path in entries.items()),
        "versions": sorted((n, d.version) for n, d in closure.items()),
    }
    key = hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:24]
    folder = projects_dir() / "runtime" / key
    if not folder.is_dir():
        staging = folder.with_name(f"{key}.{uuid.uuid4().hex}")
        staging.mkdir(parents=True)
        for name, path in entries.items():
            os.symlink(path, staging / name, target_is_directory=path.is_dir())
        _publish_folder(staging, folder)
    return LabtrackRuntime(folder, requirements, key)


# -- virtualenvs ------------------------------------------------------------------------------


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock (POSIX); elsewhere the atomic publication alone protects."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _venv_python(location: Path) -> Path:
    return location / _BIN / ("python.exe" if os.name == "nt" else "python")


class VirtualenvBuilder:
    """Finds or builds the cached virtualenv of one ``python_env``."""

    def __init__(self, python_env: PythonEnv, output: Output = _stderr):
        self.python_env = python_env
        self.output = output
        self.interpreter, self.version = find_interpreter(python_env.python)
        self.runtime = labtrack_runtime(self.version)
        described = {
            "format": _FORMAT,
            "env": python_env.fingerprint(),
            "interpreter": os.path.realpath(self.interpreter),
            "version": self.version,
            "runtime": self.runtime.key,
        }
        self.key = hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()
        self.key = self.key[:32]
        self.envs = projects_dir() / "envs"
        self.link = self.envs / self.key

    def _published(self) -> Path | None:
        if not os.path.lexists(self.link):
            return None
        location = self.link.resolve()
        if _venv_python(location).exists():
            return location
        self.link.unlink()  # its build was removed by hand: build again
        return None

    def get(self) -> PreparedEnvironment:
        location = self._published()
        if location is None:
            with _file_lock(self.envs / f"{self.key}.lock"):
                location = self._published() or self._build()
        else:
            self.output(f"labtrack: reusing virtualenv {location}\n".encode())
        bin_dir = location / _BIN
        return PreparedEnvironment(
            VIRTUALENV, str(_venv_python(location)), (str(bin_dir),),
            {"VIRTUAL_ENV": str(location)}, location,
        )

    def _build(self) -> Path:
        build = self.envs / f"{self.key}.{uuid.uuid4().hex[:12]}"
        self.output(f"labtrack: creating virtualenv {build} (Python {self.version})\n".encode())
        try:
            self._run([self.interpreter, "-m", "venv", str(build)], "python -m venv")
            python = str(_venv_python(build))
            pip = [python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input"]
            env = self.python_env
            if env.build_dependencies:
                self._run([*pip, *_pip_args(env.build_dependencies)], "pip install")
            if env.dependencies:
                self._run([*pip, *_pip_args(env.dependencies)], "pip install")
            if self.runtime.pip_requirements:
                self._run([*pip, *self.runtime.pip_requirements], "pip install")
            site_packages = subprocess.run(
                [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                capture_output=True, text=True, check=True, timeout=60,
            ).stdout.strip()
            Path(site_packages, _RUNTIME_PTH).write_text(f"{self.runtime.folder}\n")
            self._run([python, "-c", "import labtrack"], "importing labtrack in the virtualenv")
            (build / "labtrack-env.json").write_text(json.dumps({
                "python": self.version, "interpreter": self.interpreter,
                "build_dependencies": list(env.build_dependencies),
                "dependencies": list(env.dependencies), "base_dir": str(env.base_dir),
            }, indent=2))
            try:
                os.symlink(build.name, self.link, target_is_directory=True)
            except FileExistsError:  # published meanwhile by a process without the lock
                shutil.rmtree(build, ignore_errors=True)
                return self.link.resolve()
        except BaseException:
            shutil.rmtree(build, ignore_errors=True)
            raise
        return build

    def _run(self, command: list[str], what: str) -> None:
        tail: list[bytes] = []
        try:
            process = subprocess.Popen(command, cwd=self.python_env.base_dir,
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL)
        except OSError as error:
            raise ProjectError(f"Cannot run {what}: {error}") from None
        try:
            for line in iter(process.stdout.readline, b""):
                self.output(line)
                tail = (tail + [line])[-20:]
            code = process.wait()
        except BaseException:
            process.kill()
            process.wait()
            raise
        finally:
            process.stdout.close()
        if code != 0:
            detail = b"".join(tail).decode("utf-8", "replace").rstrip()
            raise ProjectError(f"Building the virtualenv failed: {what} exited with {code}:\n"
                               f"{detail}")


def _pip_args(requirements: Sequence[str]) -> list[str]:
    """Requirement lines as pip arguments (``-r file`` lines become two arguments)."""
    args: list[str] = []
    for requirement in requirements:
        match = re.match(r"^(-r|--requirement|-c|--constraint)[\s=]*(\S+)$", requirement)
        args.extend([match.group(1), match.group(2)] if match else [requirement])
    return args
