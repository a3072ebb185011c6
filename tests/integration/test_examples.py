"""The examples a newcomer runs first must keep working."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

import labtrack

EXAMPLES = Path(__file__).parents[2] / "examples"


def test_quickstart_notebook_runs_and_logs(tmp_path, monkeypatch):
    monkeypatch.setenv("LABTRACK_TRACKING_URI", str(tmp_path / "store"))
    notebook = nbformat.read(EXAMPLES / "quickstart.ipynb", as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert f"tracking URI: {tmp_path / 'store'}" in text
    assert "3 series, " in text
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert any("text/html" in o.get("data", {}) for o in outputs)  # the runs DataFrame
    runs = labtrack.TrackingClient(str(tmp_path / "store")).search_runs(
        [labtrack.TrackingClient(str(tmp_path / "store")).get_experiment_by_name(
            "quickstart-notebook").experiment_id])
    assert len(runs) == 10 and all(r.info.status == "FINISHED" for r in runs)


def test_quickstart_script_runs(tmp_path):
    env = {**os.environ, "LABTRACK_TRACKING_URI": str(tmp_path / "store")}
    result = subprocess.run([sys.executable, str(EXAMPLES / "quickstart.py")], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Best three runs by final loss:" in result.stdout
