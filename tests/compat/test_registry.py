"""The model registry through the stock mlflow client: registering logged, autologged and
plain-artifact models, the registered-model and model-version CRUD and search calls, stages,
aliases, tags, download URIs, and loading registered models back by version, alias and stage.

Both hosts run with a single user who administers the registry (single-user Jupyter owns
everything; the standalone fixture's one token user is its admin), so no call here meets a
permission check — governance is tested in ``tests/integration/test_governance.py``.
"""

from __future__ import annotations

import contextlib

import mlflow
import mlflow.pyfunc
import mlflow.sklearn
import numpy as np
import pytest
from mlflow.exceptions import MlflowException
from sklearn.linear_model import LogisticRegression

from tests.compat.conftest import ARTIFACT_SERVER_KINDS, tracking_server_of
from tests.compat.helpers import unique

# Registering and loading models reads their files through the artifact proxy: with S3
# behind it too.
tracking_server = tracking_server_of(ARTIFACT_SERVER_KINDS)


@pytest.fixture
def training_data():
    rng = np.random.default_rng(7)
    features = rng.random((60, 3))
    labels = (features[:, 0] + 0.4 * features[:, 2] > 0.7).astype(int)
    return features, labels


@pytest.fixture
def sklearn_autolog():
    mlflow.sklearn.autolog()
    try:
        yield
    finally:
        mlflow.sklearn.autolog(disable=True)


@contextlib.contextmanager
def deprecated_stage_api():
    """Stages are deprecated since MLflow 2.9: the client warns, the server still serves them."""
    with pytest.warns(FutureWarning, match="deprecated"):
        yield


def transition(client, name, version, stage, archive_existing_versions=False):
    with deprecated_stage_api():
        return client.transition_model_version_stage(
            name, version, stage, archive_existing_versions=archive_existing_versions)


def latest_versions(client, name, stages=None):
    with deprecated_stage_api():
        return client.get_latest_versions(name, stages)


def stages_of(client, name):
    return {v.version: v.current_stage
            for v in client.search_model_versions(f"name = '{name}'")}


def log_sklearn_model(estimator):
    """``mlflow.sklearn.log_model`` in a format the test venv can load (skops is not
    installed; cloudpickle is what MLflow uses on Databricks)."""
    return mlflow.sklearn.log_model(estimator, name="model",
                                    serialization_format="cloudpickle")


def assert_predicts_like(model_uri, estimator, features):
    loaded = mlflow.pyfunc.load_model(model_uri)
    assert np.array_equal(np.asarray(loaded.predict(features)), estimator.predict(features))


@contextlib.contextmanager
def expect_error(code):
    """``pytest.raises`` for an MlflowException with the given error code."""
    with pytest.raises(MlflowException) as info:
        yield info
    assert info.value.error_code == code, info.value


# -- registering models and loading them back --------------------------------------------------


def test_register_a_logged_model_and_load_it_by_version_alias_and_stage(
        mlflow_client, experiment_id, training_data, api):
    features, labels = training_data
    with mlflow.start_run() as run:
        estimator = LogisticRegression(C=0.7, max_iter=200).fit(features, labels)
        logged = log_sklearn_model(estimator)
    name = unique("logged")
    run_id = run.info.run_id

    version = mlflow.register_model(f"runs:/{run_id}/model", name)
    assert (version.name, version.version, version.run_id) == (name, "1", run_id)
    # MLflow 3: the run has no files at model/, so the client registers the LoggedModel.
    assert version.source == f"models:/{logged.model_id}"
    assert version.status == "READY"
    assert version.current_stage == "None"

    fetched = mlflow_client.get_model_version(name, "1")
    assert (fetched.source, fetched.run_id) == (version.source, run_id)
    assert fetched.creation_timestamp == version.creation_timestamp
    # The client sends the model id (its ModelVersion entity does not read it back).
    raw = api.get("/api/2.0/mlflow/model-versions/get", params={"name": name, "version": "1"})
    assert raw.json()["model_version"]["model_id"] == logged.model_id
    # The client records the registered version on the LoggedModel.
    assert name in mlflow_client.get_logged_model(logged.model_id).tags[
        "mlflow.modelVersions"]

    assert_predicts_like(f"models:/{name}/1", estimator, features)

    mlflow_client.set_registered_model_alias(name, "champion", "1")
    assert_predicts_like(f"models:/{name}@champion", estimator, features)

    transition(mlflow_client, name, "1", "Production")
    assert_predicts_like(f"models:/{name}/Production", estimator, features)
    assert_predicts_like(f"models:/{name}/latest", estimator, features)

    native = mlflow.sklearn.load_model(f"models:/{name}@champion")
    assert np.array_equal(native.coef_, estimator.coef_)


def test_register_an_autologged_model(mlflow_client, experiment_id, sklearn_autolog,
                                      training_data):
    features, labels = training_data
    with mlflow.start_run() as run:
        estimator = LogisticRegression(C=0.2, max_iter=300).fit(features, labels)
    [output] = mlflow_client.get_run(run.info.run_id).outputs.model_outputs
    name = unique("autologged")

    version = mlflow.register_model(f"runs:/{run.info.run_id}/model", name)
    assert (version.version, version.run_id) == ("1", run.info.run_id)
    assert version.source == f"models:/{output.model_id}"

    assert_predicts_like(f"models:/{name}/1", estimator, features)
    # A second registration of the same model is version 2 of the same registered model.
    again = mlflow.register_model(f"runs:/{run.info.run_id}/model", name)
    assert again.version == "2"
    mlflow_client.set_registered_model_alias(name, "champion", "2")
    assert_predicts_like(f"models:/{name}@champion", estimator, features)


def test_log_model_registers_it_when_given_a_registered_model_name(
        mlflow_client, experiment_id, training_data):
    features, labels = training_data
    name = unique("log-and-register")
    with mlflow.start_run() as run:
        estimator = LogisticRegression(C=0.9).fit(features, labels)
        logged = mlflow.sklearn.log_model(estimator, name="model", registered_model_name=name,
                                          serialization_format="cloudpickle")
    assert logged.registered_model_version == "1"
    [version] = mlflow_client.search_model_versions(f"name = '{name}'")
    assert (version.version, version.run_id, version.source) == (
        "1", run.info.run_id, f"models:/{logged.model_id}")
    assert_predicts_like(f"models:/{name}/1", estimator, features)


def test_register_a_model_from_plain_run_artifacts(mlflow_client, experiment_id,
                                                   training_data, tmp_path):
    """A model saved to a folder and logged as ordinary artifacts: registered through its
    ``runs:/`` URI (resolved by the client to the artifact URI) and through that artifact URI
    itself."""
    features, labels = training_data
    estimator = LogisticRegression(C=1.5, max_iter=200).fit(features, labels)
    mlflow.sklearn.save_model(estimator, tmp_path / "exported",
                              serialization_format="cloudpickle")
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(tmp_path / "exported"), "exported")
    artifact_uri = f"{run.info.artifact_uri}/exported"
    name = unique("plain")

    by_run = mlflow.register_model(f"runs:/{run.info.run_id}/exported", name)
    assert (by_run.version, by_run.source, by_run.run_id) == ("1", artifact_uri,
                                                             run.info.run_id)
    by_path = mlflow.register_model(artifact_uri, name)
    assert (by_path.version, by_path.source, by_path.run_id) == ("2", artifact_uri, None)

    for number in ("1", "2"):
        assert mlflow_client.get_model_version_download_uri(name, number) == artifact_uri
        assert_predicts_like(f"models:/{name}/{number}", estimator, features)


def test_download_uri_of_a_logged_model_version_is_its_artifact_location(
        mlflow_client, experiment_id, training_data):
    """MLflow's server answers get-download-uri with the version's storage location — for a
    version registered from ``models:/<model_id>``, the LoggedModel's artifact location — not
    the ``models:/`` source (``SqlAlchemyStore.get_model_version_download_uri``)."""
    features, labels = training_data
    with mlflow.start_run():
        logged = log_sklearn_model(LogisticRegression().fit(features, labels))
    name = unique("download")
    mlflow.register_model(logged.model_uri, name)
    artifact_location = mlflow_client.get_logged_model(logged.model_id).artifact_location
    assert artifact_location.startswith("mlflow-artifacts:/")
    assert mlflow_client.get_model_version_download_uri(name, "1") == artifact_location


# -- registered models -------------------------------------------------------------------------


def test_registered_model_create_get_update_rename_delete(mlflow_client):
    name = unique("crud")
    created = mlflow_client.create_registered_model(name, tags={"team": "energy"},
                                                    description="Plant load")
    assert (created.name, created.description, created.tags) == (
        name, "Plant load", {"team": "energy"})
    assert created.creation_timestamp > 0
    assert created.latest_versions == []

    with expect_error("RESOURCE_ALREADY_EXISTS"):
        mlflow_client.create_registered_model(name)

    fetched = mlflow_client.get_registered_model(name)
    assert (fetched.name, fetched.description, fetched.tags) == (
        name, "Plant load", {"team": "energy"})
    assert fetched.creation_timestamp == created.creation_timestamp

    updated = mlflow_client.update_registered_model(name, description="Hourly plant load")
    assert updated.description == "Hourly plant load"
    assert updated.last_updated_timestamp >= created.last_updated_timestamp
    assert mlflow_client.get_registered_model(name).description == "Hourly plant load"

    mlflow_client.create_model_version(name, "mlflow-artifacts:/0/none/artifacts/model")
    new_name = unique("renamed")
    mlflow_client.rename_registered_model(name, new_name)
    with expect_error("RESOURCE_DOES_NOT_EXIST"):
        mlflow_client.get_registered_model(name)
    renamed = mlflow_client.get_registered_model(new_name)
    assert (renamed.description, renamed.tags) == ("Hourly plant load", {"team": "energy"})
    assert mlflow_client.get_model_version(new_name, "1").name == new_name

    mlflow_client.delete_registered_model(new_name)
    with expect_error("RESOURCE_DOES_NOT_EXIST"):
        mlflow_client.get_registered_model(new_name)
    with expect_error("RESOURCE_DOES_NOT_EXIST"):
        mlflow_client.get_model_version(new_name, "1")
    with expect_error("RESOURCE_DOES_NOT_EXIST"):
        mlflow_client.delete_registered_model(new_name)


def test_search_registered_models_filter_order_and_paging(mlflow_client):
    prefix = unique("search")
    teams = {"a": "grid", "b": "solar", "c": "grid", "d": "wind", "e": "grid"}
    for suffix, team in teams.items():
        mlflow_client.create_registered_model(f"{prefix}-{suffix}", tags={"team": team})

    everything = mlflow_client.search_registered_models(max_results=1000)
    assert {f"{prefix}-{s}" for s in teams} <= {m.name for m in everything}

    mine = f"name LIKE '{prefix}-%'"
    ascending = mlflow_client.search_registered_models(mine)
    assert [m.name for m in ascending] == [f"{prefix}-{s}" for s in "abcde"]
    descending = mlflow_client.search_registered_models(mine, order_by=["name DESC"])
    assert [m.name for m in descending] == [f"{prefix}-{s}" for s in "edcba"]
    by_age = mlflow_client.search_registered_models(
        mine, order_by=["creation_timestamp DESC", "name DESC"])
    assert [m.name for m in by_age] == [f"{prefix}-{s}" for s in "edcba"]

    grid = mlflow_client.search_registered_models(f"{mine} AND tags.team = 'grid'")
    assert [m.name for m in grid] == [f"{prefix}-{s}" for s in "ace"]
    assert all(m.tags == {"team": "grid"} for m in grid)
    one = mlflow_client.search_registered_models(f"name = '{prefix}-d'")
    assert [m.name for m in one] == [f"{prefix}-d"]
    upper = mlflow_client.search_registered_models(f"name ILIKE '{prefix.upper()}-%'")
    assert len(upper) == 5

    pages, token = [], None
    while True:
        page = mlflow_client.search_registered_models(mine, max_results=2, page_token=token,
                                                      order_by=["name ASC"])
        pages.append([m.name for m in page])
        token = page.token
        if not token:
            break
    assert pages == [[f"{prefix}-a", f"{prefix}-b"], [f"{prefix}-c", f"{prefix}-d"],
                     [f"{prefix}-e"]]

    with expect_error("INVALID_PARAMETER_VALUE"):
        mlflow_client.search_registered_models("nonsense ~ 3")


# -- model versions ----------------------------------------------------------------------------


def test_model_version_create_get_update_delete(mlflow_client, experiment_id):
    with mlflow.start_run() as run:
        mlflow.log_text("weights", "model/weights.txt")
    source = f"{run.info.artifact_uri}/model"
    name = unique("versions")
    mlflow_client.create_registered_model(name)

    created = mlflow_client.create_model_version(
        name, source, run_id=run.info.run_id, tags={"stage": "candidate"},
        description="first cut")
    assert (created.name, created.version, created.source, created.run_id) == (
        name, "1", source, run.info.run_id)
    assert (created.tags, created.description, created.status) == (
        {"stage": "candidate"}, "first cut", "READY")
    second = mlflow_client.create_model_version(name, source, run_id=run.info.run_id)
    assert second.version == "2"

    fetched = mlflow_client.get_model_version(name, 1)
    assert (fetched.version, fetched.source, fetched.tags, fetched.description) == (
        "1", source, {"stage": "candidate"}, "first cut")
    updated = mlflow_client.update_model_version(name, 1, description="second look")
    assert updated.description == "second look"
    assert mlflow_client.get_model_version(name, "1").description == "second look"

    mlflow_client.delete_model_version(name, 2)
    with expect_error("RESOURCE_DOES_NOT_EXIST"):
        mlflow_client.get_model_version(name, 2)
    # Numbers are never reused.
    assert mlflow_client.create_model_version(name, source).version == "3"
    with expect_error("RESOURCE_DOES_NOT_EXIST"):
        mlflow_client.get_model_version(name, 99)
    with expect_error("RESOURCE_DOES_NOT_EXIST"):
        mlflow_client.create_model_version(unique("missing"), source)


def test_search_model_versions_filter_order_and_paging(mlflow_client, experiment_id):
    with mlflow.start_run() as first_run:
        pass
    with mlflow.start_run() as second_run:
        pass
    name, other = unique("mv-search"), unique("mv-other")
    mlflow_client.create_registered_model(name)
    mlflow_client.create_registered_model(other)
    for number in range(1, 6):
        run = first_run if number <= 3 else second_run
        mlflow_client.create_model_version(
            name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id,
            tags={"parity": "odd" if number % 2 else "even"})
    mlflow_client.create_model_version(other, f"{first_run.info.artifact_uri}/model",
                                       run_id=first_run.info.run_id)

    def versions(filter_string, **kwargs):
        return [(v.name, v.version)
                for v in mlflow_client.search_model_versions(filter_string, **kwargs)]

    ordered = versions(f"name = '{name}'", order_by=["version_number DESC"])
    assert ordered == [(name, str(n)) for n in (5, 4, 3, 2, 1)]
    assert versions(f"name = '{name}'", order_by=["version_number ASC"]) == ordered[::-1]
    assert versions(f"name = '{name}' AND tags.parity = 'even'",
                    order_by=["version_number"]) == [(name, "2"), (name, "4")]
    assert versions(f"run_id = '{second_run.info.run_id}'",
                    order_by=["version_number"]) == [(name, "4"), (name, "5")]
    assert sorted(versions(f"run_id = '{first_run.info.run_id}'")) == sorted(
        [(name, "1"), (name, "2"), (name, "3"), (other, "1")])
    assert sorted(versions(f"name IN ('{name}', '{other}') AND version_number <= 1")) == sorted(
        [(name, "1"), (other, "1")])
    assert versions(f"name = '{name}' AND version_number > 3",
                    order_by=["version_number"]) == [(name, "4"), (name, "5")]

    pages, token = [], None
    while True:
        page = mlflow_client.search_model_versions(
            f"name = '{name}'", max_results=2, order_by=["version_number ASC"],
            page_token=token)
        pages.append([v.version for v in page])
        token = page.token
        if not token:
            break
    assert pages == [["1", "2"], ["3", "4"], ["5"]]

    with expect_error("INVALID_PARAMETER_VALUE"):
        mlflow_client.search_model_versions("version_number > 'x' AND ")


# -- stages, aliases and tags ------------------------------------------------------------------


def test_stages_latest_versions_and_archiving(mlflow_client):
    name = unique("stages")
    mlflow_client.create_registered_model(name)
    for _ in range(4):
        mlflow_client.create_model_version(name, "mlflow-artifacts:/0/none/artifacts/model")

    moved = transition(mlflow_client, name, "1", "Production")
    assert (moved.version, moved.current_stage) == ("1", "Production")
    transition(mlflow_client, name, "2", "Staging")
    latest = {v.current_stage: v.version for v in latest_versions(mlflow_client, name)}
    assert latest == {"Production": "1", "Staging": "2", "None": "4"}
    assert [v.version for v in latest_versions(mlflow_client, name, ["Production"])] == ["1"]
    assert {v.current_stage: v.version
            for v in mlflow_client.get_registered_model(name).latest_versions} == latest

    # Without archiving, two versions can be in Production; the latest is the newest.
    transition(mlflow_client, name, "3", "Production")
    assert stages_of(mlflow_client, name) == {
        "1": "Production", "2": "Staging", "3": "Production", "4": "None"}
    assert [v.version for v in latest_versions(mlflow_client, name, ["Production"])] == ["3"]

    # archive_existing_versions archives every other version in the target stage only.
    moved = transition(mlflow_client, name, "4", "Production", archive_existing_versions=True)
    assert moved.current_stage == "Production"
    assert stages_of(mlflow_client, name) == {
        "1": "Archived", "2": "Staging", "3": "Archived", "4": "Production"}
    latest = {v.current_stage: v.version for v in latest_versions(mlflow_client, name)}
    assert latest == {"Production": "4", "Staging": "2", "Archived": "3"}
    assert latest_versions(mlflow_client, name, ["None"]) == []

    # Stage names are case-insensitive, as in MLflow.
    assert transition(mlflow_client, name, "2", "archived").current_stage == "Archived"
    with deprecated_stage_api(), expect_error("INVALID_PARAMETER_VALUE"):
        mlflow_client.transition_model_version_stage(name, "1", "Shipping")


def test_aliases(mlflow_client):
    name = unique("aliases")
    mlflow_client.create_registered_model(name)
    for _ in range(2):
        mlflow_client.create_model_version(name, "mlflow-artifacts:/0/none/artifacts/model")

    mlflow_client.set_registered_model_alias(name, "champion", "1")
    mlflow_client.set_registered_model_alias(name, "challenger", 2)
    assert mlflow_client.get_model_version_by_alias(name, "champion").version == "1"
    assert mlflow_client.get_registered_model(name).aliases == {"champion": "1",
                                                                "challenger": "2"}
    assert mlflow_client.get_model_version(name, "2").aliases == ["challenger"]

    # Moving an alias takes it off the previous version.
    mlflow_client.set_registered_model_alias(name, "champion", "2")
    assert mlflow_client.get_model_version_by_alias(name, "champion").version == "2"
    assert mlflow_client.get_model_version(name, "1").aliases == []
    assert sorted(mlflow_client.get_model_version(name, "2").aliases) == ["challenger",
                                                                         "champion"]

    mlflow_client.delete_registered_model_alias(name, "champion")
    assert mlflow_client.get_registered_model(name).aliases == {"challenger": "2"}
    assert mlflow_client.get_model_version(name, "2").aliases == ["challenger"]
    with expect_error("INVALID_PARAMETER_VALUE"):
        mlflow_client.set_registered_model_alias(name, "latest", "1")
    with expect_error("RESOURCE_DOES_NOT_EXIST"):
        mlflow_client.set_registered_model_alias(name, "champion", "7")


def test_registered_model_and_version_tags(mlflow_client):
    name = unique("tags")
    mlflow_client.create_registered_model(name, tags={"team": "grid"})
    mlflow_client.create_model_version(name, "mlflow-artifacts:/0/none/artifacts/model",
                                       tags={"validated": "no"})

    mlflow_client.set_registered_model_tag(name, "owner", "olivia")
    mlflow_client.set_registered_model_tag(name, "team", "solar")  # overwrite
    assert mlflow_client.get_registered_model(name).tags == {"team": "solar",
                                                             "owner": "olivia"}
    mlflow_client.delete_registered_model_tag(name, "owner")
    assert mlflow_client.get_registered_model(name).tags == {"team": "solar"}

    mlflow_client.set_model_version_tag(name, "1", "validated", "yes")
    mlflow_client.set_model_version_tag(name, 1, "dataset", "2025-q4")
    assert mlflow_client.get_model_version(name, "1").tags == {"validated": "yes",
                                                               "dataset": "2025-q4"}
    mlflow_client.delete_model_version_tag(name, "1", "dataset")
    assert mlflow_client.get_model_version(name, "1").tags == {"validated": "yes"}
    assert [v.version for v in mlflow_client.search_model_versions(
        f"name = '{name}' AND tags.validated = 'yes'")] == ["1"]

    with expect_error("RESOURCE_DOES_NOT_EXIST"):
        mlflow_client.set_model_version_tag(name, "2", "validated", "yes")
    with expect_error("RESOURCE_DOES_NOT_EXIST"):
        mlflow_client.set_registered_model_tag(unique("missing"), "team", "grid")


def test_deleting_an_absent_tag_or_alias_is_a_no_op(mlflow_client):
    """As in MLflow, whose store deletes a registered-model tag, a version tag or an alias
    only if it exists (``SqlAlchemyStore.delete_registered_model_tag``,
    ``delete_model_version_tag``, ``delete_registered_model_alias``): scripts that clean up
    idempotently must not fail. The model and the version must exist, though."""
    name = unique("absent")
    mlflow_client.create_registered_model(name, tags={"team": "grid"})
    mlflow_client.create_model_version(name, "mlflow-artifacts:/0/none/artifacts/model",
                                       tags={"validated": "yes"})

    mlflow_client.delete_registered_model_tag(name, "owner")
    mlflow_client.delete_model_version_tag(name, "1", "dataset")
    mlflow_client.delete_registered_model_alias(name, "champion")
    assert mlflow_client.get_registered_model(name).tags == {"team": "grid"}
    assert mlflow_client.get_model_version(name, "1").tags == {"validated": "yes"}

    with expect_error("RESOURCE_DOES_NOT_EXIST"):
        mlflow_client.delete_model_version_tag(name, "9", "dataset")
    with expect_error("RESOURCE_DOES_NOT_EXIST"):
        mlflow_client.delete_registered_model_tag(unique("missing"), "owner")
    with expect_error("RESOURCE_DOES_NOT_EXIST"):
        mlflow_client.delete_registered_model_alias(unique("missing"), "champion")


def test_looking_up_an_absent_alias_is_an_invalid_parameter(mlflow_client):
    """MLflow answers ``get_model_version_by_alias`` for an alias the model does not have with
    INVALID_PARAMETER_VALUE (``SqlAlchemyStore.get_model_version_by_alias``), and for a
    model that does not exist with RESOURCE_DOES_NOT_EXIST."""
    name = unique("no-alias")
    mlflow_client.create_registered_model(name)
    mlflow_client.create_model_version(name, "mlflow-artifacts:/0/none/artifacts/model")
    mlflow_client.set_registered_model_alias(name, "champion", "1")
    mlflow_client.delete_registered_model_alias(name, "champion")
    with expect_error("INVALID_PARAMETER_VALUE"):
        mlflow_client.get_model_version_by_alias(name, "champion")
    with expect_error("RESOURCE_DOES_NOT_EXIST"):
        mlflow_client.get_model_version_by_alias(unique("missing"), "champion")
