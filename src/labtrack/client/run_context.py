"""Tags every new run gets: who started it, from what source, at which git commit.

The notebook-specific provenance (notebook path, executed cells) is added by
``labtrack.notebook``; this module covers scripts and plain interpreters.
"""

from __future__ import annotations

import functools
import getpass
import os
import subprocess
import sys

USER_TAG = "mlflow.user"
SOURCE_NAME_TAG = "mlflow.source.name"
SOURCE_TYPE_TAG = "mlflow.source.type"
GIT_COMMIT_TAG = "mlflow.source.git.commit"
PARENT_RUN_ID_TAG = "mlflow.parentRunId"
NOTE_TAG = "mlflow.note.content"


def current_user() -> str:
    # getpass.getuser's order: the login variables, then the account database. Every run
    # asks, so the account lookup (a passwd read when no variable is set, as in containers)
    # is done once per uid.
    for variable in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        user = os.environ.get(variable)
        if user:
            return user
    return _account_name(os.getuid())


@functools.cache
def _account_name(uid: int) -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers) and no USER variable
        return "unknown"


def _source_path() -> str | None:
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    return os.path.abspath(path) if path else None


@functools.cache
def _git_commit(folder: str) -> str | None:
    # Cached per folder: a sweep creating thousands of runs must not spawn git each time.
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and commit else None


def default_run_tags() -> dict[str, str]:
    tags = {USER_TAG: current_user()}
    if "ipykernel" in sys.modules:
        tags[SOURCE_TYPE_TAG] = "NOTEBOOK"
    else:
        tags[SOURCE_TYPE_TAG] = "LOCAL"
    source = _source_path()
    if source:
        tags[SOURCE_NAME_TAG] = source
        commit = _git_commit(os.path.dirname(source))
        if commit:
            tags[GIT_COMMIT_TAG] = commit
    return tags
