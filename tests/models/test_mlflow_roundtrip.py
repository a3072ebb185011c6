"""Round trips with the real ``mlflow`` package: labtrack's model folders load in mlflow and
predict the same, MLflow's load in labtrack, and models logged to a labtrack server resolve
through the stock mlflow client (runs:/, models:/<model_id>, models:/<name>/<version>, alias).
"""

from __future__ import annotations

import mlflow
import mlflow.pyfunc
import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LogisticRegression

import labtrack
import labtrack.pyfunc
import labtrack.sklearn


class Recommender(labtrack.pyfunc.PythonModel):
    """Scores items for a user from an artifact; params pick how many."""

    def load_context(self, context):
        self.scores = pd.read_csv(context.artifacts["scores"]).set_index("item")["score"]

    def predict(self, context, model_input, params=None):
        k = (params or {}).get("k", 2)
        top = self.scores.nlargest(k).index.tolist()
        return pd.DataFrame({"user": model_input["user"],
                             "items": [",".join(top)] * len(model_input)})


class MlflowScaler(mlflow.pyfunc.PythonModel):
    """An MLflow PythonModel with an artifact, a code_paths module and params (the type hint
    keeps mlflow from warning that there is none)."""

    def load_context(self, context):
        with open(context.artifacts["factor"]) as stream:
            self.factor = float(stream.read())

    def predict(self, context, model_input: pd.DataFrame, params=None):
        import mlflow_side_helper

        return mlflow_side_helper.scale(model_input["x"], self.factor * params["k"])


@pytest.fixture
def scores_file(tmp_path):
    path = tmp_path / "scores.csv"
    pd.DataFrame({"item": ["a", "b", "c"], "score": [0.2, 0.9, 0.5]}).to_csv(path,
                                                                              index=False)
    return path


@pytest.fixture
def users():
    return pd.DataFrame({"user": np.array([1, 2], dtype="int64")})


def test_labtrack_pyfunc_loads_in_mlflow(tmp_path, scores_file, users, mlflow_env):
    labtrack.pyfunc.save_model(tmp_path / "m", python_model=Recommender(),
                               artifacts={"scores": str(scores_file)},
                               input_example=(users, {"k": 2}))
    ours = labtrack.pyfunc.load_model(tmp_path / "m")
    theirs = mlflow.pyfunc.load_model(str(tmp_path / "m"))
    pd.testing.assert_frame_equal(theirs.predict(users), ours.predict(users))
    pd.testing.assert_frame_equal(theirs.predict(users, params={"k": 3}),
                                  ours.predict(users, params={"k": 3}))
    assert theirs.predict(users, params={"k": 1})["items"].tolist() == ["b", "b"]
    assert theirs.metadata.signature.to_dict() == ours.metadata.signature.to_dict()
    assert theirs.metadata.get_input_schema().input_names() == ["user"]


def test_labtrack_sklearn_loads_in_mlflow(tmp_path, classification, mlflow_env):
    features, labels = classification
    estimator = LogisticRegression().fit(features, labels)
    labtrack.sklearn.save_model(estimator, tmp_path / "m", input_example=features[:3])
    native = mlflow.sklearn.load_model(str(tmp_path / "m"))
    assert np.array_equal(native.coef_, estimator.coef_)
    theirs = mlflow.pyfunc.load_model(str(tmp_path / "m"))
    ours = labtrack.pyfunc.load_model(tmp_path / "m")
    assert np.array_equal(theirs.predict(features), ours.predict(features))
    assert np.array_equal(theirs.predict(features), estimator.predict(features))


def test_mlflow_pyfunc_loads_in_labtrack(tmp_path, mlflow_env):
    helper = tmp_path / "mlflow_side_helper.py"
    helper.write_text("def scale(values, by):\n    return values * by\n")
    factor = tmp_path / "factor.txt"
    factor.write_text("1.5")
    frame = pd.DataFrame({"x": [1.0, 2.0, 4.0]})
    signature = mlflow.models.infer_signature(frame, frame["x"], params={"k": 2.0})
    mlflow.pyfunc.save_model(str(tmp_path / "m"), python_model=MlflowScaler(),
                             artifacts={"factor": str(factor)}, code_paths=[str(helper)],
                             signature=signature, input_example=frame,
                             pip_requirements=["pandas"])
    theirs = mlflow.pyfunc.load_model(str(tmp_path / "m"))
    ours = labtrack.pyfunc.load_model(tmp_path / "m")
    assert ours.predict(frame).tolist() == theirs.predict(frame).tolist() == [3.0, 6.0, 12.0]
    assert ours.predict(frame, params={"k": 1.0}).tolist() == [1.5, 3.0, 6.0]
    with pytest.raises(labtrack.pyfunc.SchemaError, match=r"missing inputs \['x'\]"):
        ours.predict(pd.DataFrame({"z": [1.0]}))


def test_mlflow_sklearn_loads_in_labtrack(tmp_path, mlflow_env):
    rng = np.random.default_rng(3)
    features = rng.random((40, 4))
    target = features @ np.array([1.0, -2.0, 0.5, 0.0])
    estimator = RandomForestRegressor(n_estimators=5, random_state=0).fit(features, target)
    mlflow.sklearn.save_model(estimator, str(tmp_path / "m"), serialization_format="cloudpickle",
                              input_example=features[:2], pip_requirements=["scikit-learn"])
    native = labtrack.sklearn.load_model(tmp_path / "m")
    assert np.array_equal(native.predict(features), estimator.predict(features))
    ours = labtrack.pyfunc.load_model(tmp_path / "m")
    theirs = mlflow.pyfunc.load_model(str(tmp_path / "m"))
    assert np.array_equal(ours.predict(features), theirs.predict(features))


def test_models_logged_to_a_labtrack_server_resolve_in_mlflow(labtrack_server, monkeypatch,
                                                              mlflow_env, scores_file, users,
                                                              classification):
    monkeypatch.setenv("LABTRACK_TRACKING_TOKEN", labtrack_server.token)
    labtrack.set_tracking_uri(labtrack_server.url)
    try:
        labtrack.set_experiment("mlflow-round-trip")
        with labtrack.start_run() as run:
            info = labtrack.pyfunc.log_model(
                "recommender", python_model=Recommender(),
                artifacts={"scores": str(scores_file)}, input_example=(users, {"k": 2}),
                registered_model_name="round-trip-recommender")
        features, labels = classification
        estimator = LogisticRegression().fit(features, labels)
        with labtrack.start_run() as sk_run:
            sk_info = labtrack.sklearn.log_model(estimator, "clf", input_example=features[:2])
        labtrack.TrackingClient(labtrack_server.url).set_registered_model_alias(
            "round-trip-recommender", "champion", info.registered_model_version)
    finally:
        labtrack.set_tracking_uri(None)
        labtrack.client.fluent._experiment_id = None

    monkeypatch.setenv("MLFLOW_TRACKING_URI", labtrack_server.url)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", labtrack_server.token)
    uris = [f"runs:/{run.info.run_id}/recommender", f"models:/{info.model_id}",
            "models:/round-trip-recommender/1", "models:/round-trip-recommender@champion"]
    for uri in uris:
        model = mlflow.pyfunc.load_model(uri)
        assert model.predict(users, params={"k": 1})["items"].tolist() == ["b", "b"], uri
        assert model.metadata.model_id == info.model_id
        assert model.metadata.run_id == run.info.run_id
    native = mlflow.sklearn.load_model(f"runs:/{sk_run.info.run_id}/clf")
    assert np.array_equal(native.predict(features), estimator.predict(features))
    logged = mlflow.MlflowClient().get_logged_model(sk_info.model_id)
    assert logged.name == "clf" and str(logged.status) == "READY"


def test_models_logged_by_mlflow_to_a_labtrack_server_load_in_labtrack(
        labtrack_server, monkeypatch, mlflow_env, classification):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", labtrack_server.url)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", labtrack_server.token)
    features, labels = classification
    estimator = LogisticRegression(C=2.0).fit(features, labels)
    mlflow.set_experiment("logged-by-mlflow")
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(estimator, name="clf",
                                        serialization_format="cloudpickle",
                                        pip_requirements=["scikit-learn"],
                                        registered_model_name="mlflow-logged")
    monkeypatch.setenv("LABTRACK_TRACKING_TOKEN", labtrack_server.token)
    client = labtrack.TrackingClient(labtrack_server.url)
    client.set_registered_model_alias("mlflow-logged", "prod", 1)
    for uri in (f"runs:/{run.info.run_id}/clf", info.model_uri, "models:/mlflow-logged/1",
                "models:/mlflow-logged@prod"):
        model = labtrack.pyfunc.load_model(uri, client=client)
        assert np.array_equal(model.predict(features), estimator.predict(features)), uri
    native = labtrack.sklearn.load_model(info.model_uri, client=client)
    assert native.get_params()["C"] == 2.0
