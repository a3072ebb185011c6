"""Experiments through the stock mlflow client: lifecycle, names, tags and search."""

from __future__ import annotations

import mlflow
import pytest
from mlflow.entities import ViewType
from mlflow.exceptions import MlflowException

from tests.compat.helpers import unique


def test_create_get_and_get_by_name(mlflow_client):
    name = unique("exp")
    experiment_id = mlflow_client.create_experiment(name, tags={"team": "vision", "k": "v"})
    assert isinstance(experiment_id, str)

    experiment = mlflow_client.get_experiment(experiment_id)
    assert experiment.experiment_id == experiment_id
    assert experiment.name == name
    assert experiment.lifecycle_stage == "active"
    assert experiment.tags["team"] == "vision"
    assert experiment.tags["k"] == "v"
    # Proxied artifacts: the client uploads through the server, never to its disk.
    assert experiment.artifact_location == f"mlflow-artifacts:/{experiment_id}"
    assert experiment.creation_time > 0
    assert experiment.last_update_time >= experiment.creation_time

    by_name = mlflow_client.get_experiment_by_name(name)
    assert by_name.experiment_id == experiment_id
    assert by_name.tags == experiment.tags


def test_default_experiment_exists(mlflow_client):
    default = mlflow_client.get_experiment("0")
    assert default.name == "Default"
    assert mlflow_client.get_experiment_by_name("Default").experiment_id == "0"


def test_missing_experiment(mlflow_client):
    assert mlflow_client.get_experiment_by_name(unique("missing")) is None
    with pytest.raises(MlflowException) as error:
        mlflow_client.get_experiment("987654321")
    assert error.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_duplicate_name_is_refused(mlflow_client):
    name = unique("dup")
    mlflow_client.create_experiment(name)
    with pytest.raises(MlflowException) as error:
        mlflow_client.create_experiment(name)
    assert error.value.error_code == "RESOURCE_ALREADY_EXISTS"


def test_set_experiment_creates_then_reuses(mlflow_client):
    name = unique("fluent")
    created = mlflow.set_experiment(name)
    assert mlflow_client.get_experiment_by_name(name).experiment_id == created.experiment_id
    assert mlflow.set_experiment(name).experiment_id == created.experiment_id
    with mlflow.start_run() as run:
        pass
    assert run.info.experiment_id == created.experiment_id


def test_rename(mlflow_client):
    old, new = unique("before"), unique("after")
    experiment_id = mlflow_client.create_experiment(old)
    mlflow_client.rename_experiment(experiment_id, new)
    assert mlflow_client.get_experiment(experiment_id).name == new
    assert mlflow_client.get_experiment_by_name(new).experiment_id == experiment_id
    assert mlflow_client.get_experiment_by_name(old) is None


def test_delete_and_restore_with_its_runs(mlflow_client):
    name = unique("deleted")
    experiment_id = mlflow_client.create_experiment(name)
    run_id = mlflow_client.create_run(experiment_id).info.run_id

    mlflow_client.delete_experiment(experiment_id)
    deleted = mlflow_client.get_experiment(experiment_id)  # deleted ones are still readable
    assert deleted.lifecycle_stage == "deleted"
    assert mlflow_client.get_experiment_by_name(name).lifecycle_stage == "deleted"
    assert mlflow_client.get_run(run_id).info.lifecycle_stage == "deleted"
    active = mlflow_client.search_experiments(filter_string=f"name = '{name}'")
    assert active == []
    in_trash = mlflow_client.search_experiments(view_type=ViewType.DELETED_ONLY,
                                                filter_string=f"name = '{name}'")
    assert [e.experiment_id for e in in_trash] == [experiment_id]
    # A deleted experiment still holds its name.
    with pytest.raises(MlflowException) as error:
        mlflow_client.create_experiment(name)
    assert error.value.error_code == "RESOURCE_ALREADY_EXISTS"

    mlflow_client.restore_experiment(experiment_id)
    assert mlflow_client.get_experiment(experiment_id).lifecycle_stage == "active"
    assert mlflow_client.get_run(run_id).info.lifecycle_stage == "active"
    assert [e.experiment_id for e in mlflow_client.search_experiments(
        filter_string=f"name = '{name}'")] == [experiment_id]


def test_experiment_tags(mlflow_client):
    experiment_id = mlflow_client.create_experiment(unique("tags"))
    mlflow_client.set_experiment_tag(experiment_id, "owner", "ada")
    mlflow_client.set_experiment_tag(experiment_id, "stage", "draft")
    mlflow_client.set_experiment_tag(experiment_id, "stage", "final")  # overwrite
    tags = mlflow_client.get_experiment(experiment_id).tags
    assert tags["owner"] == "ada"
    assert tags["stage"] == "final"

    mlflow_client.delete_experiment_tag(experiment_id, "owner")
    assert "owner" not in mlflow_client.get_experiment(experiment_id).tags

    mlflow.set_experiment(experiment_id=experiment_id)
    mlflow.set_experiment_tags({"a": "1", "b": "2"})
    tags = mlflow_client.get_experiment(experiment_id).tags
    assert tags["a"] == "1" and tags["b"] == "2" and tags["stage"] == "final"


def test_search_filter_order_and_paging(mlflow_client):
    prefix = unique("search")
    ids = {}
    for index, suffix in enumerate(["a", "b", "c", "d", "e"]):
        ids[suffix] = mlflow_client.create_experiment(
            f"{prefix}-{suffix}", tags={"parity": "even" if index % 2 == 0 else "odd"}
        )

    found = mlflow_client.search_experiments(filter_string=f"name LIKE '{prefix}-%'",
                                             order_by=["name DESC"])
    assert [e.name for e in found] == [f"{prefix}-{s}" for s in "edcba"]

    even = mlflow_client.search_experiments(
        filter_string=f"name LIKE '{prefix}-%' AND tags.parity = 'even'", order_by=["name ASC"])
    assert [e.experiment_id for e in even] == [ids["a"], ids["c"], ids["e"]]

    upper = mlflow_client.search_experiments(
        filter_string=f"name ILIKE '{prefix.upper()}-%' AND tags.parity != 'even'")
    assert sorted(e.experiment_id for e in upper) == sorted([ids["b"], ids["d"]])

    # Paging: max_results + page_token until the token runs out.
    pages, token = [], None
    while True:
        page = mlflow_client.search_experiments(
            max_results=2, filter_string=f"name LIKE '{prefix}-%'",
            order_by=["name ASC"], page_token=token)
        pages.append([e.name for e in page])
        token = page.token
        if not token:
            break
    assert pages == [[f"{prefix}-a", f"{prefix}-b"], [f"{prefix}-c", f"{prefix}-d"],
                     [f"{prefix}-e"]]

    newest_first = mlflow_client.search_experiments(
        filter_string=f"name LIKE '{prefix}-%'", order_by=["creation_time DESC", "name DESC"])
    assert [e.name for e in newest_first][0] == f"{prefix}-e"

    mlflow_client.delete_experiment(ids["c"])
    every = mlflow_client.search_experiments(view_type=ViewType.ALL,
                                             filter_string=f"name LIKE '{prefix}-%'")
    assert len(every) == 5
    active = mlflow_client.search_experiments(filter_string=f"name LIKE '{prefix}-%'")
    assert ids["c"] not in {e.experiment_id for e in active}
    assert len(active) == 4


def test_search_rejects_or(mlflow_client):
    with pytest.raises(MlflowException) as error:
        mlflow_client.search_experiments(filter_string="name = 'a' OR name = 'b'")
    assert error.value.error_code == "INVALID_PARAMETER_VALUE"
