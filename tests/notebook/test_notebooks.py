"""The notebooks under notebooks/ run top to bottom in a real kernel and leave in the store
what they say they do."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import numpy as np
from nbclient import NotebookClient

import labtrack
import labtrack.pyfunc

NOTEBOOKS = Path(__file__).parents[2] / "notebooks"


def execute(name: str, tmp_path: Path, monkeypatch) -> tuple[list[dict], labtrack.TrackingClient]:
    store = str(tmp_path / "store")
    monkeypatch.setenv("LABTRACK_TRACKING_URI", store)
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    return outputs, labtrack.TrackingClient(store)


def widget_outputs(outputs: list[dict], class_name: str) -> list[dict]:
    return [o for o in outputs if "labtrack.widgets" in o.get("data", {}).get("text/plain", "")
            and class_name in o["data"]["text/plain"]]


def test_quickstart_trains_sweeps_compares_and_keeps_the_best_model(tmp_path, monkeypatch):
    outputs, client = execute("quickstart.ipynb", tmp_path, monkeypatch)
    experiment = client.get_experiment_by_name("quickstart")
    runs = {run.info.run_name: run for run in client.search_runs([experiment.experiment_id])}
    assert set(runs) == {"sgd-baseline", "alpha-sweep", "alpha=1e-05", "alpha=0.0001",
                         "alpha=0.001", "alpha=0.01", "best-model"}
    assert all(run.info.status == "FINISHED" for run in runs.values())
    parent = runs["alpha-sweep"].info.run_id
    children = [r for r in runs.values() if r.data.tags.get("mlflow.parentRunId") == parent]
    assert len(children) == 4
    baseline = client.get_metric_history(runs["sgd-baseline"].info.run_id, "train_loss")
    assert [m.step for m in baseline] == list(range(40))
    assert runs["sgd-baseline"].data.params == {"alpha": "0.0001", "epochs": "40"}

    # Every widget is live in the notebook and carries a fallback for a saved copy.
    for class_name in ("LiveRun", "RunsTable", "MetricChart"):
        shown = widget_outputs(outputs, class_name)
        assert shown, class_name
        assert all("application/vnd.jupyter.widget-view+json" in o["data"]
                   and "text/html" in o["data"] for o in shown)
    assert "image/png" in widget_outputs(outputs, "MetricChart")[0]["data"]

    # The best child by validation accuracy is the one whose alpha the model was trained with.
    best_child = max(children, key=lambda r: r.data.metrics["val_accuracy"])
    best = runs["best-model"]
    assert best.data.params["best_alpha"] == best_child.data.params["alpha"]
    # ... and its model, logged as a pyfunc with its input example, predicts here.
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    model_uri = re.search(r"logged (models:/\S+)", text).group(1)
    model = labtrack.pyfunc.load_model(model_uri)
    predictions = model.predict(np.zeros((3, 20)))
    assert len(predictions) == 3 and set(np.unique(predictions)) <= {0, 1}


def test_registry_notebook_requests_approves_and_keeps_the_trail(tmp_path, monkeypatch):
    outputs, client = execute("registry.ipynb", tmp_path, monkeypatch)
    name = "churn-classifier"
    stages = {v.version: str(v.current_stage)
              for v in client.search_model_versions(f"name = '{name}'")}
    assert stages == {"1": "Archived", "2": "Production"}
    assert client.list_transition_requests(name) == []
    trail = [(str(a.activity_type), a.version) for a in reversed(client.get_activities(name))]
    assert [kind for kind, _ in trail].count("APPROVED_REQUEST") == 1
    assert ("REQUESTED_TRANSITION", "2") in trail
    assert widget_outputs(outputs, "RegistryBrowser") and widget_outputs(
        outputs, "TransitionRequests")
    audit = next(o for o in outputs if "APPROVED_REQUEST" in o.get("data", {}).get(
        "text/plain", ""))
    assert "Approved from the notebook" in audit["data"]["text/html"]
