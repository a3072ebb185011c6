"""labtrack's own client on a local store whose artifact root is a bucket (a team's store
opened directly, with credentials): artifacts and models go to S3 and come back."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import labtrack
import labtrack.pyfunc
from labtrack.store import SqliteStore


class Doubler(labtrack.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input["x"] * 2


@pytest.fixture
def s3_store(s3_endpoint, fluent_uri, monkeypatch):
    """The fluent API's store, created with an ``s3://`` artifact root."""
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", s3_endpoint.url)
    root = s3_endpoint.fresh_root()
    SqliteStore(Path(fluent_uri) / "labtrack.db", root).close()
    return root


def test_artifacts_and_models_round_trip_through_the_bucket(s3_endpoint, s3_store, fluent_uri,
                                                            tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    with labtrack.start_run() as run:
        labtrack.log_artifact(notes, "docs")
        info = labtrack.pyfunc.log_model("model", python_model=Doubler(),
                                         input_example=pd.DataFrame({"x": [1.0]}))
    run_id = run.info.run_id
    assert run.info.artifact_uri.startswith(f"{s3_store}/0/{run_id}")
    stored = s3_endpoint.tree(run.info.artifact_uri)
    assert stored["docs/notes.txt"] == b"hello"

    client = labtrack.TrackingClient(fluent_uri)
    assert [f.path for f in client.list_artifacts(run_id, "docs")] == ["docs/notes.txt"]
    local = client.download_artifacts(run_id, "docs/notes.txt", tmp_path / "out")
    assert Path(local).read_text() == "hello"

    model = labtrack.pyfunc.load_model(info.model_uri)
    assert model.predict(pd.DataFrame({"x": [2.0, 3.0]})).tolist() == [4.0, 6.0]
