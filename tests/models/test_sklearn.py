"""labtrack.sklearn: save/log/load and autologging."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import labtrack
import labtrack.pyfunc
import labtrack.sklearn
from labtrack.errors import InvalidParameterValue

CLASSIFIER_METRICS = {"training_accuracy_score", "training_precision_score",
                      "training_recall_score", "training_f1_score", "training_log_loss",
                      "training_roc_auc", "training_score"}
REGRESSOR_METRICS = {"training_mean_squared_error", "training_root_mean_squared_error",
                     "training_mean_absolute_error", "training_r2_score", "training_score"}


@pytest.fixture
def autolog():
    labtrack.sklearn.autolog()
    yield
    labtrack.sklearn.autolog(disable=True)


def test_save_and_load(tmp_path, classification):
    features, labels = classification
    estimator = LogisticRegression().fit(features, labels)
    labtrack.sklearn.save_model(estimator, tmp_path / "m", input_example=features[:3])
    mlmodel = yaml.safe_load((tmp_path / "m" / "MLmodel").read_text())
    assert mlmodel["flavors"]["sklearn"]["serialization_format"] == "cloudpickle"
    assert mlmodel["flavors"]["sklearn"]["pickled_model"] == "model.pkl"
    assert mlmodel["flavors"]["python_function"]["loader_module"] == "mlflow.sklearn"
    assert mlmodel["flavors"]["python_function"]["model_path"] == "model.pkl"
    assert mlmodel["signature"]["inputs"] == (
        '[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 3]}}]')
    assert mlmodel["signature"]["outputs"] == (
        '[{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}]')
    requirements = (tmp_path / "m" / "requirements.txt").read_text().split()
    assert any(r.startswith("scikit-learn==") for r in requirements)
    assert any(r.startswith("cloudpickle==") for r in requirements)
    native = labtrack.sklearn.load_model(tmp_path / "m")
    assert np.array_equal(native.coef_, estimator.coef_)
    wrapped = labtrack.pyfunc.load_model(tmp_path / "m")
    assert np.array_equal(wrapped.predict(features), estimator.predict(features))
    with pytest.raises(labtrack.pyfunc.SchemaError, match="shape of input"):
        wrapped.predict(features[:, :2])


def test_pickle_format_and_predict_fn(tmp_path, classification):
    features, labels = classification
    estimator = LogisticRegression().fit(features, labels)
    labtrack.sklearn.save_model(estimator, tmp_path / "m", serialization_format="pickle",
                                pyfunc_predict_fn="predict_proba")
    probabilities = labtrack.pyfunc.load_model(tmp_path / "m").predict(features)
    assert np.allclose(probabilities, estimator.predict_proba(features))
    with pytest.raises(InvalidParameterValue, match="Unknown serialization format"):
        labtrack.sklearn.save_model(estimator, tmp_path / "x", serialization_format="joblib")


def test_log_model_registers(fluent_uri, classification):
    features, labels = classification
    estimator = LogisticRegression().fit(features, labels)
    with labtrack.start_run() as run:
        info = labtrack.sklearn.log_model(estimator, "clf", registered_model_name="churn",
                                          input_example=features[:2])
    assert info.registered_model_version == "1"
    loaded = labtrack.sklearn.load_model("models:/churn/1")
    assert np.array_equal(loaded.coef_, estimator.coef_)
    by_run = labtrack.pyfunc.load_model(f"runs:/{run.info.run_id}/clf")
    assert np.array_equal(by_run.predict(features), estimator.predict(features))


def test_autolog_logs_a_classifier_fit(fluent_uri, autolog, classification):
    features, labels = classification
    with labtrack.start_run() as run:
        estimator = LogisticRegression(C=0.5, max_iter=200).fit(features, labels)
    fetched = labtrack.get_run(run.info.run_id)
    assert set(fetched.data.params) == set(estimator.get_params(deep=True))
    assert fetched.data.params["C"] == "0.5" and fetched.data.params["max_iter"] == "200"
    assert CLASSIFIER_METRICS <= set(fetched.data.metrics)
    assert fetched.data.metrics["training_score"] == pytest.approx(
        estimator.score(features, labels))
    assert fetched.data.metrics["training_accuracy_score"] == pytest.approx(
        estimator.score(features, labels))
    assert fetched.data.tags["estimator_name"] == "LogisticRegression"
    assert fetched.data.tags["estimator_class"] == (
        "sklearn.linear_model._logistic.LogisticRegression")
    outputs = fetched.outputs.model_outputs
    assert len(outputs) == 1
    client = labtrack.TrackingClient(fluent_uri)
    logged = client.get_logged_model(outputs[0].model_id)
    assert logged.name == "model" and logged.source_run_id == run.info.run_id
    contexts = [d.tags.get("mlflow.data.context") for d in fetched.inputs.dataset_inputs]
    assert contexts == ["train"]
    model = labtrack.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    assert np.array_equal(model.predict(features), estimator.predict(features))
    assert model.metadata.signature is not None


def test_autolog_starts_and_ends_a_run_and_logs_a_pipeline_once(fluent_uri, autolog,
                                                                classification):
    features, labels = classification
    pipeline = make_pipeline(StandardScaler(), LinearRegression())
    pipeline.fit(features, labels.astype(float))
    assert labtrack.active_run() is None
    run = labtrack.last_active_run()
    assert run.info.status == "FINISHED"
    assert REGRESSOR_METRICS <= set(run.data.metrics)
    assert run.data.tags["estimator_name"] == "Pipeline"
    assert "standardscaler__with_mean" in run.data.params
    assert len(run.outputs.model_outputs) == 1  # the inner fits are not logged again


def test_autolog_disable_restores_fit(fluent_uri, classification):
    features, labels = classification
    labtrack.sklearn.autolog()
    labtrack.sklearn.autolog(disable=True)
    LogisticRegression().fit(features, labels)
    assert not labtrack.TrackingClient(fluent_uri).search_runs(["0"])
    assert not getattr(LogisticRegression.fit, "__labtrack_autolog__", False)
