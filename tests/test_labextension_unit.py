"""The JupyterLab side panel's unit tests — jest, in labextension/src/__tests__ — run with the
rest of the suite: its API layer and its model against an in-memory server behind
ServerConnection (the only thing mocked), offline."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

LABEXTENSION = Path(__file__).resolve().parents[1] / "labextension"


def npm() -> str:
    path = shutil.which("npm")
    if path is None:
        pytest.fail("npm is needed for the side panel's unit tests (.ci/run installs Node.js).")
    return path


def test_the_side_panels_jest_suite_passes():
    if not (LABEXTENSION / "node_modules" / ".bin" / "jest").exists():
        # A fresh clone whose editable install skipped npm: install the front end's tools.
        installed = subprocess.run([npm(), "install", "--prefix", str(LABEXTENSION)],
                                   capture_output=True, text=True, timeout=900)
        assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
    result = subprocess.run([npm(), "test", "--prefix", str(LABEXTENSION), "--", "--ci"],
                            capture_output=True, text=True, timeout=900)
    report = result.stdout + result.stderr
    assert result.returncode == 0, report[-8000:]
    summary = re.search(r"Tests:\s+(\d+) passed, (\d+) total", report)
    assert summary and summary.group(1) == summary.group(2), report[-3000:]
