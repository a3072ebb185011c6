"""notebooks/recommender.ipynb runs end to end: package, register, serve A/B, promote, chart."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
from nbclient import NotebookClient

import labtrack

NOTEBOOK = Path(__file__).parents[2] / "notebooks" / "recommender.ipynb"


def test_recommender_notebook(tmp_path, monkeypatch):
    store = str(tmp_path / "store")
    monkeypatch.setenv("LABTRACK_TRACKING_URI", store)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    plain = "\n".join(o.get("data", {}).get("text/plain", "") for o in outputs)
    assert "customers who saw more than one variant: 0" in text
    assert "server exit code: 0" in text
    assert any("image/png" in o.get("data", {}) for o in outputs)

    # The diverse rules (v2) recommend more categories than the plain top-k (v1).
    champion = float(re.search(r"champion \(v1\)\s+([\d.]+)", plain).group(1))
    challenger = float(re.search(r"challenger \(v2\)\s+([\d.]+)", plain).group(1))
    assert challenger > champion

    client = labtrack.TrackingClient(store)
    versions = {v.version: v for v in client.search_model_versions("name = 'recommender'")}
    assert sorted(versions) == ["1", "2"]
    assert sorted(versions["2"].aliases) == ["challenger", "champion"]
    serving = client.get_experiment_by_name("serving")
    (run,) = client.search_runs([serving.experiment_id])
    assert run.info.status == "FINISHED"
    metrics = run.data.metrics
    assert metrics["a.requests"] + metrics["b.requests"] == 2000
    assert metrics["a.errors"] == metrics["b.errors"] == 0
    assert 0.85 <= metrics["a.requests"] / 2000 <= 0.95
    assert metrics["a.model_version"] == 2.0  # promoted while serving
