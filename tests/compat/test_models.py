"""Models and datasets with the stock client: sklearn autologging, LoggedModels, inputs."""

from __future__ import annotations

import mlflow
import mlflow.data
import mlflow.pyfunc
import mlflow.sklearn
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from tests.compat.conftest import ARTIFACT_SERVER_KINDS, tracking_server_of

# The models' files travel through the artifact proxy: check them with S3 behind it too.
tracking_server = tracking_server_of(ARTIFACT_SERVER_KINDS)

TRAINING_METRICS = {"training_accuracy_score", "training_f1_score", "training_precision_score",
                    "training_recall_score", "training_log_loss", "training_roc_auc",
                    "training_score"}


@pytest.fixture
def training_data():
    rng = np.random.default_rng(0)
    features = rng.random((80, 3))
    labels = (features[:, 0] + 0.3 * features[:, 1] > 0.65).astype(int)
    return features, labels


@pytest.fixture
def sklearn_autolog():
    mlflow.sklearn.autolog()
    try:
        yield
    finally:
        mlflow.sklearn.autolog(disable=True)


def test_sklearn_autolog_logs_and_reloads_the_model(mlflow_client, tracking_server, experiment_id,
                                                    sklearn_autolog, training_data):
    features, labels = training_data
    with mlflow.start_run() as run:
        estimator = LogisticRegression(C=0.5, max_iter=200).fit(features, labels)
    run_id = run.info.run_id
    fetched = mlflow_client.get_run(run_id)
    assert fetched.info.status == "FINISHED"

    # Params: the estimator's own.
    expected_params = estimator.get_params(deep=True)
    assert set(fetched.data.params) == set(expected_params)
    assert fetched.data.params["C"] == "0.5"
    assert fetched.data.params["max_iter"] == "200"
    assert fetched.data.params["solver"] == str(expected_params["solver"])

    # Training metrics.
    metrics = fetched.data.metrics
    assert TRAINING_METRICS <= set(metrics)
    assert metrics["training_score"] == pytest.approx(estimator.score(features, labels))
    assert metrics["training_accuracy_score"] == pytest.approx(
        estimator.score(features, labels))
    assert 0 < metrics["training_log_loss"]

    # Tags.
    assert fetched.data.tags["estimator_name"] == "LogisticRegression"
    assert fetched.data.tags["estimator_class"] == (
        "sklearn.linear_model._logistic.LogisticRegression")

    # The model is a LoggedModel, recorded as the run's output.
    outputs = fetched.outputs.model_outputs
    assert len(outputs) == 1
    model_id = outputs[0].model_id
    assert model_id.startswith("m-")
    logged = mlflow_client.get_logged_model(model_id)
    assert logged.source_run_id == run_id
    assert logged.experiment_id == experiment_id
    assert logged.name == "model"
    assert str(logged.status) == "READY"
    assert logged.artifact_location == (
        f"mlflow-artifacts:/{experiment_id}/models/{model_id}/artifacts")
    assert mlflow.last_logged_model().model_id == model_id
    stored = tracking_server.stored_files(logged.artifact_location)
    assert "sklearn" in stored["MLmodel"].decode()
    assert "model.pkl" in stored

    # The training data is a run input.
    contexts = [
        {tag.key: tag.value for tag in dataset_input.tags}.get("mlflow.data.context")
        for dataset_input in fetched.inputs.dataset_inputs
    ]
    assert "train" in contexts

    # It loads back and predicts what the fitted estimator predicts.
    expected = estimator.predict(features)
    by_model_id = mlflow.pyfunc.load_model(f"models:/{model_id}")
    assert np.array_equal(np.asarray(by_model_id.predict(features)), expected)
    by_run = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    assert np.array_equal(np.asarray(by_run.predict(features)), expected)
    native = mlflow.sklearn.load_model(f"models:/{model_id}")
    assert np.array_equal(native.coef_, estimator.coef_)


def test_log_input_of_a_pandas_dataset(mlflow_client, experiment_id, tmp_path):
    frame = pd.DataFrame({"x1": [0.1, 0.5, 0.9, 0.3], "x2": [1, 2, 3, 4], "y": [0, 1, 1, 0]})
    source = tmp_path / "train.csv"
    frame.to_csv(source, index=False)
    train = mlflow.data.from_pandas(frame, source=str(source), name="train-data", targets="y")
    evaluation = mlflow.data.from_pandas(frame.iloc[:2], source=str(source), name="eval-data")
    with mlflow.start_run() as run:
        mlflow.log_input(train, context="training", tags={"split": "v1"})
        mlflow.log_input(evaluation, context="evaluation")
        mlflow.log_input(train, context="training", tags={"split": "v1"})  # no duplicate

    inputs = mlflow_client.get_run(run.info.run_id).inputs.dataset_inputs
    by_name = {i.dataset.name: i for i in inputs}
    assert sorted(by_name) == ["eval-data", "train-data"]
    assert len(inputs) == 2

    logged, sent = by_name["train-data"].dataset, train._to_mlflow_entity()
    assert logged.digest == train.digest
    assert (logged.source_type, logged.source) == (sent.source_type, sent.source)
    assert logged.schema == sent.schema
    assert logged.profile == sent.profile
    tags = {tag.key: tag.value for tag in by_name["train-data"].tags}
    assert tags == {"mlflow.data.context": "training", "split": "v1"}
    eval_tags = {tag.key: tag.value for tag in by_name["eval-data"].tags}
    assert eval_tags == {"mlflow.data.context": "evaluation"}
    assert by_name["eval-data"].dataset.digest == evaluation.digest

    # The dataset source resolves back to a dataset the client can load.
    reloaded = mlflow.data.get_source(by_name["train-data"].dataset)
    assert reloaded.to_json() == train.source.to_json()
