"""Where a notebook run came from: the notebook, the cells executed, git, the environment.

Captured, not guessed: the Jupyter server tells each kernel its notebook in
``JPY_SESSION_NAME`` (VS Code sets ``__vsc_ipynb_file__``); the executed cells are IPython's
own input history; git and package versions are read at the moment the run starts.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labtrack.client.run_context import (
    GIT_COMMIT_TAG,
    SOURCE_NAME_TAG,
    SOURCE_TYPE_TAG,
    USER_TAG,
    current_user,
)

NOTEBOOK_PATH_TAG = "labtrack.notebook.path"
GIT_BRANCH_TAG = "mlflow.source.git.branch"
GIT_REPO_TAG = "mlflow.source.git.repoURL"
GIT_DIRTY_TAG = "labtrack.git.dirty"
PYTHON_TAG = "labtrack.python.version"

# Packages whose versions matter for reproducing a model, recorded when installed.
KEY_PACKAGES = (
    "labtrack", "numpy", "pandas", "scipy", "scikit-learn", "torch", "tensorflow", "keras",
    "jax", "xgboost", "lightgbm", "catboost", "statsmodels", "transformers", "polars",
    "pyarrow", "matplotlib",
)


@dataclass
class Provenance:
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)  # artifact path -> text
    notebook_file: Path | None = None  # snapshot to attach, when it exists on disk


def notebook_path(shell: Any = None) -> str | None:
    """The notebook this kernel runs, as the Jupyter server (or VS Code) reports it."""
    if shell is not None:
        vscode = shell.user_ns.get("__vsc_ipynb_file__")
        if vscode:
            return str(vscode)
    return os.environ.get("JPY_SESSION_NAME") or None


def executed_cells(shell: Any) -> str:
    """Every cell executed in this kernel so far, in order, as a readable script."""
    history = shell.user_ns.get("In") or []
    blocks = [f"# In[{number}]:\n{source.rstrip()}\n"
              for number, source in enumerate(history) if number and source.strip()]
    return "\n".join(blocks)


def _git(folder: Path, *args: str) -> str | None:
    try:
        result = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True,
                                timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def git_state(folder: Path) -> dict[str, str]:
    commit = _git(folder, "rev-parse", "HEAD")
    if not commit:
        return {}
    state = {GIT_COMMIT_TAG: commit,
             GIT_DIRTY_TAG: "true" if _git(folder, "status", "--porcelain") else "false"}
    branch = _git(folder, "rev-parse", "--abbrev-ref", "HEAD")
    if branch and branch != "HEAD":
        state[GIT_BRANCH_TAG] = branch
    remote = _git(folder, "config", "--get", "remote.origin.url")
    if remote:
        state[GIT_REPO_TAG] = remote
    return state


def package_versions() -> dict[str, str]:
    versions = {}
    for name in KEY_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def capture(shell: Any, cell_source: str | None = None) -> Provenance:
    """Tags and artifacts describing where a run started from this kernel came from."""
    path = notebook_path(shell)
    folder = Path(path).parent if path else Path.cwd()
    tags = {
        USER_TAG: current_user(),
        SOURCE_TYPE_TAG: "NOTEBOOK",
        PYTHON_TAG: platform.python_version(),
        **git_state(folder),
    }
    if path:
        tags[SOURCE_NAME_TAG] = path
        tags[NOTEBOOK_PATH_TAG] = path
    environment = {
        "python": sys.version,
        "platform": platform.platform(),
        "executable": sys.executable,
        "packages": package_versions(),
    }
    artifacts = {
        "notebook/executed_cells.py": executed_cells(shell),
        "notebook/environment.json": json.dumps(environment, indent=2),
    }
    if cell_source is not None:
        artifacts["notebook/cell.py"] = cell_source
    snapshot = Path(path) if path and Path(path).is_file() else None
    return Provenance(tags, artifacts, snapshot)
