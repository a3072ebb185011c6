"""Where a project's code comes from, and the git provenance recorded with its runs.

A project URI is a local folder, a local git repository, a git URL (``https://…``,
``ssh://…``, ``git@host:…``, ``file://…``), each optionally followed by ``#subdir``. A local
folder runs in place and its working-tree state is recorded (commit, branch, dirty). With a
version (``-v`` commit, tag or branch), or for a git URL, the repository is cloned into a
temporary folder and that version is checked out; the clone is removed afterwards.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

from labtrack.projects.spec import ProjectError

GIT_TIMEOUT_S = 600  # a clone of a big repository may take minutes; never wait forever
_GIT_URL = re.compile(r"^(?:https?|ssh|git|git\+ssh|git\+https)://|^[\w.-]+@[\w.-]+:")


@dataclass(frozen=True)
class GitInfo:
    commit: str
    branch: str | None
    repo_url: str
    dirty: bool
    diff: str = ""  # uncommitted changes to tracked files (``git diff HEAD``) when dirty


@dataclass
class ProjectSource:
    """A project folder ready to run, and where it came from."""

    uri: str                 # as given, for the ``mlflow.source.name`` tag
    directory: Path          # the folder holding the MLproject file (or the scripts)
    git: GitInfo | None
    version: str | None = None
    _temporary: Path | None = None

    def close(self) -> None:
        """Remove the temporary clone, if any."""
        if self._temporary is not None:
            shutil.rmtree(self._temporary, ignore_errors=True)
            self._temporary = None

    def __enter__(self) -> ProjectSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _git(args: list[str], cwd: Path | None = None, check: bool = True) -> str:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    try:
        result = subprocess.run(
            ["git", "-c", "advice.detachedHead=false", *args], cwd=cwd, env=env,
            capture_output=True, text=True, timeout=GIT_TIMEOUT_S,
        )
    except FileNotFoundError:
        raise ProjectError("git is not installed, and this project needs it.") from None
    except subprocess.TimeoutExpired:
        raise ProjectError(f"git {args[0]} took longer than {GIT_TIMEOUT_S} s.") from None
    if check and result.returncode != 0:
        message = result.stderr.strip() or result.stdout.strip()
        raise ProjectError(f"git {' '.join(args)} failed: {message}")
    return result.stdout.strip() if result.returncode == 0 else ""


def split_subdirectory(uri: str) -> tuple[str, str]:
    """``repo#sub/dir`` → ``("repo", "sub/dir")``; the subdirectory may not leave the repo."""
    base, _, subdirectory = uri.partition("#")
    subdirectory = subdirectory.strip("/")
    if subdirectory:
        parts = PurePosixPath(subdirectory).parts
        if ".." in parts or subdirectory.startswith("/") or "\\" in subdirectory:
            raise ProjectError(
                f"Invalid project subdirectory '{subdirectory}': it must be a relative path "
                "inside the repository."
            )
    return base, subdirectory


def is_git_url(uri: str) -> bool:
    return bool(_GIT_URL.match(uri)) or uri.endswith(".git") and not Path(uri).exists()


def _local_path(uri: str) -> Path | None:
    if uri.startswith("file://"):
        return Path(unquote(urlparse(uri).path))
    if is_git_url(uri):
        return None
    return Path(uri).expanduser()


def work_tree_root(folder: Path) -> Path | None:
    """The top of the git work tree ``folder`` is in, or ``None``."""
    if shutil.which("git") is None:
        return None
    top = _git(["rev-parse", "--show-toplevel"], cwd=folder, check=False)
    return Path(top).resolve() if top else None


def _origin_url(repo: Path) -> str | None:
    return _git(["remote", "get-url", "origin"], cwd=repo, check=False) or None


def git_info(repo: Path, repo_url: str | None = None, branch: str | None = None) -> GitInfo | None:
    """Commit, branch, repository URL and dirty state of the work tree at ``repo``; ``None``
    when it has no commit yet."""
    commit = _git(["rev-parse", "--verify", "--quiet", "HEAD"], cwd=repo, check=False)
    if not commit:
        return None
    if branch is None:
        current = _git(["symbolic-ref", "--quiet", "--short", "HEAD"], cwd=repo, check=False)
        branch = current or None
    # Dirty means tracked files differ from the commit (as `git describe --dirty`): untracked
    # files such as __pycache__ or outputs do not change what the commit runs.
    status = _git(["status", "--porcelain", "--untracked-files=no"], cwd=repo, check=False)
    diff = _git(["diff", "HEAD", "--no-color"], cwd=repo, check=False) if status else ""
    return GitInfo(
        commit=commit,
        branch=branch,
        repo_url=repo_url or _origin_url(repo) or str(repo),
        dirty=bool(status),
        diff=diff,
    )


def resolve(uri: str, version: str | None = None, cwd: str | os.PathLike | None = None
            ) -> ProjectSource:
    """Make the project at ``uri`` (at ``version``, if given) available locally."""
    base, subdirectory = split_subdirectory(str(uri))
    if not base:
        raise ProjectError("No project URI given.")
    local = _local_path(base)
    if local is not None:
        if not local.is_absolute():
            local = Path(cwd or os.getcwd()) / local
        local = local.resolve()
        if not local.is_dir():
            raise ProjectError(
                f"No project at '{base}': not a folder (nor a git URL such as "
                "https://host/repo.git)."
            )
        return _local(str(uri), local, subdirectory, version)
    return _clone(str(uri), base, base, subdirectory, version)


def _project_dir(root: Path, subdirectory: str, uri: str) -> Path:
    directory = (root / subdirectory).resolve() if subdirectory else root
    if not directory.is_dir():
        raise ProjectError(f"No folder '{subdirectory}' in the project at '{uri}'.")
    return directory


def _local(uri: str, folder: Path, subdirectory: str, version: str | None) -> ProjectSource:
    root = work_tree_root(folder)
    if version is None:
        directory = _project_dir(folder, subdirectory, uri)
        info = git_info(root) if root is not None else None
        return ProjectSource(uri, directory, info)
    if root is None:
        raise ProjectError(
            f"-v/--version '{version}' needs a git repository, and '{folder}' is not in one."
        )
    # A subfolder of the repository (path/to/repo/sub) is the same as repo#sub.
    inner = folder.relative_to(root).as_posix()
    subdirectory = "/".join(p for p in (inner if inner != "." else "", subdirectory) if p)
    return _clone(uri, str(root), _origin_url(root) or str(root), subdirectory, version)


def _is_branch(clone: Path, version: str) -> bool:
    return bool(_git(["rev-parse", "--verify", "--quiet", f"refs/remotes/origin/{version}"],
                     cwd=clone, check=False))


def _clone(uri: str, repo: str, repo_url: str, subdirectory: str,
           version: str | None) -> ProjectSource:
    temporary = Path(tempfile.mkdtemp(prefix="labtrack-project-"))
    clone = temporary / "repo"
    try:
        branch = None
        if version is None:
            _git(["clone", "--quiet", "--", repo, str(clone)])
        else:
            if version.startswith("-"):
                raise ProjectError(f"Invalid version '{version}': a commit, tag or branch.")
            _git(["clone", "--quiet", "--no-checkout", "--", repo, str(clone)])
            # A branch becomes a local branch tracking origin's; anything else detaches.
            branch = version if _is_branch(clone, version) else None
            args = ["checkout", "--quiet", version] if branch else \
                ["checkout", "--quiet", "--detach", version]
            try:
                _git(args, cwd=clone)
            except ProjectError as error:
                raise ProjectError(
                    f"Cannot check out version '{version}' of {repo}: no such commit, tag or "
                    f"branch ({error.message})"
                ) from None
        directory = _project_dir(clone, subdirectory, uri)
        info = git_info(clone, repo_url=repo_url, branch=branch)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return ProjectSource(uri, directory, info, version, _temporary=temporary)
