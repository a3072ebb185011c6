"""``Wire``: entities as MLflow's REST API writes them."""

from __future__ import annotations

import json
import math

from labtrack.entities import (
    Dataset,
    DatasetInput,
    LifecycleStage,
    Metric,
    ModelOutput,
    Run,
    RunData,
    RunInfo,
    RunInputs,
    RunOutputs,
    RunStatus,
)
from labtrack.server.wire import Wire
from labtrack.store.artifacts import local_path_to_uri


def _run(artifact_uri: str, inputs: RunInputs | None = None,
         outputs: RunOutputs | None = None) -> Run:
    info = RunInfo("abc", "1", "name", "ann", RunStatus.FINISHED, 5, 9, artifact_uri,
                   LifecycleStage.ACTIVE)
    metrics = (Metric("a", math.nan, 1, 2), Metric("b", math.inf, 3, 4), Metric("c", 1.5, 5, 6))
    return Run(info, RunData(metrics, {"p": "1", "q": "2"}, {"t": "x"}),
               inputs or RunInputs(), outputs or RunOutputs())


def test_a_run_is_its_to_dict_with_the_public_uri_and_proto3_doubles(tmp_path):
    wire = Wire(str(tmp_path))
    full = _run(
        f"{local_path_to_uri(str(tmp_path))}/1/abc/artifacts",
        RunInputs((DatasetInput(Dataset("iris", "d1", "local", "/data"), {"k": "v"}),),
                  ("model-1",)),
        RunOutputs((ModelOutput("model-2", 3),)),
    )
    for run, uri in ((full, "mlflow-artifacts:/1/abc/artifacts"),
                     (_run("s3://bucket/abc"), "s3://bucket/abc")):
        expected = run.to_dict()
        expected["info"]["artifact_uri"] = uri
        for point, text in zip(expected["data"]["metrics"], ("NaN", "Infinity")):
            point["value"] = text
        # Same fields in the same order: the JSON text itself does not change.
        assert json.dumps(wire.run(run)) == json.dumps(expected)
