"""The examples a newcomer runs first must keep working."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).parents[2] / "examples"


def test_quickstart_script_runs(tmp_path):
    env = {**os.environ, "LABTRACK_TRACKING_URI": str(tmp_path / "store")}
    result = subprocess.run([sys.executable, str(EXAMPLES / "quickstart.py")], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Best three runs by final loss:" in result.stdout
