"""Registered-model endpoints under jupyter_server: /api/2.0/mlflow/registered-models/* and
the Databricks registry's registered-models/get (MLflow's JSON shapes and error messages)."""

from __future__ import annotations

import pytest

from labtrack.client.run_context import current_user
from tests.server.conftest import MODEL_SOURCE

MISSING_NAME = "Missing value for required parameter 'name'."
BAD_STAGE = ("Invalid Model Version stage: Bogus. Value must be one of None, Staging, "
             "Production, Archived.")


async def get_model(api, name: str = "model") -> dict:
    status, data = await api.get("registered-models/get", {"name": name})
    assert status == 200, data
    return data["registered_model"]


async def search_names(api, **params) -> list[str]:
    status, data = await api.get("registered-models/search", params)
    assert status == 200, data
    return [m["name"] for m in data["registered_models"]]


async def model_with_versions(api, count: int, name: str = "model") -> None:
    await api.create_registered_model(name)
    for _ in range(count):
        await api.create_model_version(name)


# -- create ----------------------------------------------------------------------------------


async def test_create_returns_mlflows_registered_model_shape(api):
    status, data = await api.post("registered-models/create", {
        "name": "forecaster", "description": "Daily demand",
        "tags": [{"key": "team", "value": "vision"}]})
    assert status == 200
    model = data["registered_model"]
    assert model == {
        "name": "forecaster",
        "id": model["id"],
        "creation_timestamp": model["creation_timestamp"],
        "last_updated_timestamp": model["creation_timestamp"],
        "user_id": current_user(),
        "description": "Daily demand",
        "latest_versions": [],
        "tags": [{"key": "team", "value": "vision"}],
        "aliases": [],
    }
    assert isinstance(model["creation_timestamp"], int)


async def test_create_without_a_name_is_a_missing_parameter(api):
    status, data = await api.post("registered-models/create", {})
    assert status == 400
    assert data == {"error_code": "INVALID_PARAMETER_VALUE", "message": MISSING_NAME}


async def test_create_with_a_taken_name_is_resource_already_exists_400(api):
    await api.create_registered_model("taken")
    status, data = await api.post("registered-models/create", {"name": "taken"})
    assert status == 400
    assert data == {"error_code": "RESOURCE_ALREADY_EXISTS",
                    "message": "Registered Model (name=taken) already exists."}


@pytest.mark.parametrize("name", ["team/model", "models:x"])
async def test_create_with_a_slash_or_colon_in_the_name_is_refused(api, name):
    status, data = await api.post("registered-models/create", {"name": name})
    assert (status, data["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert "may not contain '/' or ':'" in data["message"]


# -- get -------------------------------------------------------------------------------------


async def test_get_returns_the_model(api):
    created = await api.create_registered_model("model", description="d")
    assert await get_model(api) == created


async def test_get_of_an_unknown_model_is_resource_does_not_exist_404(api):
    status, data = await api.get("registered-models/get", {"name": "nope"})
    assert status == 404
    assert data == {"error_code": "RESOURCE_DOES_NOT_EXIST",
                    "message": "Registered Model with name=nope not found"}


async def test_get_without_a_name_is_a_missing_parameter(api):
    status, data = await api.get("registered-models/get")
    assert (status, data["message"]) == (400, MISSING_NAME)


async def test_latest_versions_hold_the_newest_version_of_each_stage(api):
    await model_with_versions(api, 4)
    await api.transition("model", "1", "Production")
    await api.transition("model", "2", "Production")
    await api.transition("model", "3", "Staging")
    latest = (await get_model(api))["latest_versions"]
    assert sorted((v["current_stage"], v["version"]) for v in latest) == [
        ("None", "4"), ("Production", "2"), ("Staging", "3")]


async def test_latest_versions_show_sources_as_proxied_artifact_uris(api):
    await model_with_versions(api, 1)
    [latest] = (await get_model(api))["latest_versions"]
    assert latest["source"] == MODEL_SOURCE


# -- rename, update --------------------------------------------------------------------------


async def test_rename_moves_the_model_and_its_versions(api):
    await model_with_versions(api, 1, name="old")
    status, data = await api.post("registered-models/rename",
                                  {"name": "old", "new_name": "new"})
    assert status == 200
    assert data["registered_model"]["name"] == "new"
    assert [v["name"] for v in data["registered_model"]["latest_versions"]] == ["new"]
    status, _ = await api.get("registered-models/get", {"name": "old"})
    assert status == 404


async def test_rename_keeps_the_model_id(api):
    created = await api.create_registered_model("old")
    await api.post("registered-models/rename", {"name": "old", "new_name": "new"})
    assert (await get_model(api, "new"))["id"] == created["id"]


async def test_rename_to_a_taken_name_is_resource_already_exists(api):
    await api.create_registered_model("a")
    await api.create_registered_model("b")
    status, data = await api.post("registered-models/rename", {"name": "a", "new_name": "b"})
    assert (status, data["error_code"]) == (400, "RESOURCE_ALREADY_EXISTS")


async def test_rename_without_a_new_name_is_a_missing_parameter(api):
    await api.create_registered_model("a")
    status, data = await api.post("registered-models/rename", {"name": "a"})
    assert (status, data["message"]) == (
        400, "Missing value for required parameter 'new_name'.")


async def test_rename_of_an_unknown_model_is_404(api):
    status, data = await api.post("registered-models/rename", {"name": "a", "new_name": "b"})
    assert (status, data["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")


async def test_update_sets_the_description(api):
    await api.create_registered_model("model")
    status, data = await api.call("PATCH", "/api/2.0/mlflow/registered-models/update",
                                  {"name": "model", "description": "Better"})
    assert status == 200
    assert data["registered_model"]["description"] == "Better"
    assert (await get_model(api))["description"] == "Better"


async def test_update_of_an_unknown_model_is_404(api):
    status, data = await api.call("PATCH", "/api/2.0/mlflow/registered-models/update",
                                  {"name": "nope", "description": "x"})
    assert (status, data["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")


# -- delete ----------------------------------------------------------------------------------


async def test_delete_with_a_json_body_removes_the_model(api):
    # MLflow's client sends DELETE with a JSON body.
    await api.create_registered_model("model")
    status, data = await api.call("DELETE", "/api/2.0/mlflow/registered-models/delete",
                                  {"name": "model"})
    assert (status, data) == (200, {})
    status, _ = await api.get("registered-models/get", {"name": "model"})
    assert status == 404


async def test_delete_with_query_arguments_removes_the_model(api):
    await api.create_registered_model("model")
    status, _ = await api.call("DELETE", "/api/2.0/mlflow/registered-models/delete",
                               params={"name": "model"})
    assert status == 200
    status, _ = await api.get("registered-models/get", {"name": "model"})
    assert status == 404


async def test_delete_removes_the_versions_too(api):
    await model_with_versions(api, 1)
    await api.call("DELETE", "/api/2.0/mlflow/registered-models/delete", {"name": "model"})
    await api.create_registered_model("model")
    status, data = await api.get("model-versions/get", {"name": "model", "version": "1"})
    assert (status, data["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")


async def test_delete_of_an_unknown_model_is_404(api):
    status, data = await api.call("DELETE", "/api/2.0/mlflow/registered-models/delete",
                                  {"name": "nope"})
    assert (status, data["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")


async def test_delete_without_a_name_is_a_missing_parameter(api):
    status, data = await api.call("DELETE", "/api/2.0/mlflow/registered-models/delete", {})
    assert (status, data["message"]) == (400, MISSING_NAME)


# -- search ----------------------------------------------------------------------------------


async def test_search_without_a_filter_lists_every_model_by_name(api):
    for name in ("b", "c", "a"):
        await api.create_registered_model(name)
    assert await search_names(api) == ["a", "b", "c"]


async def test_search_filters_by_name_like(api):
    for name in ("fraud-v1", "fraud-v2", "churn"):
        await api.create_registered_model(name)
    assert await search_names(api, filter="name LIKE 'fraud%'") == ["fraud-v1", "fraud-v2"]


async def test_search_filters_by_exact_name(api):
    for name in ("fraud", "fraud-v2"):
        await api.create_registered_model(name)
    assert await search_names(api, filter="name = 'fraud'") == ["fraud"]


async def test_search_filters_by_tag(api):
    await api.create_registered_model("a", tags=[{"key": "team", "value": "vision"}])
    await api.create_registered_model("b", tags=[{"key": "team", "value": "nlp"}])
    await api.create_registered_model("c")
    assert await search_names(api, filter="tags.team = 'vision'") == ["a"]


async def test_search_with_the_mlflow_3_clients_prompt_filter_keeps_plain_models(api):
    # MlflowClient.search_registered_models always adds this clause; MLflow's store reads it
    # as "not a prompt", which models without the tag are.
    await api.create_registered_model("plain")
    await api.create_registered_model(
        "prompt", tags=[{"key": "mlflow.prompt.is_prompt", "value": "true"}])
    found = await search_names(api, filter="tag.`mlflow.prompt.is_prompt` != 'true'")
    assert found == ["plain"]


async def test_search_orders_by_name_descending(api):
    for name in ("b", "c", "a"):
        await api.create_registered_model(name)
    assert await search_names(api, order_by="name DESC") == ["c", "b", "a"]


async def test_search_pages_with_next_page_token(api):
    for name in ("a", "b", "c", "d", "e"):
        await api.create_registered_model(name)
    pages, token = [], None
    while True:
        params = {"max_results": "2", **({"page_token": token} if token else {})}
        status, data = await api.get("registered-models/search", params)
        assert status == 200, data
        pages.append([m["name"] for m in data["registered_models"]])
        token = data.get("next_page_token")
        if not token:
            break
    assert pages == [["a", "b"], ["c", "d"], ["e"]]


async def test_search_with_max_results_over_1000_is_refused(api):
    status, data = await api.get("registered-models/search", {"max_results": "1001"})
    assert (status, data["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert "max_results" in data["message"]


async def test_search_with_or_is_refused(api):
    status, data = await api.get("registered-models/search",
                                 {"filter": "name = 'a' OR name = 'b'"})
    assert (status, data["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert "Invalid clause(s) in filter string: 'OR'" in data["message"]


async def test_search_on_an_unknown_attribute_is_refused(api):
    status, data = await api.get("registered-models/search", {"filter": "run_id = 'x'"})
    assert (status, data["error_code"]) == (400, "INVALID_PARAMETER_VALUE")


async def test_search_shows_latest_versions(api):
    await model_with_versions(api, 2)
    status, data = await api.get("registered-models/search")
    assert status == 200
    [model] = data["registered_models"]
    assert [v["version"] for v in model["latest_versions"]] == ["2"]


# -- tags ------------------------------------------------------------------------------------


async def test_set_tag_adds_a_key_value_tag(api):
    await api.create_registered_model("model")
    status, data = await api.post("registered-models/set-tag",
                                  {"name": "model", "key": "team", "value": "vision"})
    assert (status, data) == (200, {})
    assert (await get_model(api))["tags"] == [{"key": "team", "value": "vision"}]


async def test_set_tag_overwrites_the_value(api):
    await api.create_registered_model("model", tags=[{"key": "team", "value": "a"}])
    await api.post("registered-models/set-tag", {"name": "model", "key": "team", "value": "b"})
    assert (await get_model(api))["tags"] == [{"key": "team", "value": "b"}]


async def test_set_tag_without_a_key_is_a_missing_parameter(api):
    await api.create_registered_model("model")
    status, data = await api.post("registered-models/set-tag", {"name": "model", "value": "v"})
    assert (status, data["message"]) == (400, "Missing value for required parameter 'key'.")


async def test_set_tag_on_an_unknown_model_is_404(api):
    status, data = await api.post("registered-models/set-tag",
                                  {"name": "nope", "key": "k", "value": "v"})
    assert (status, data["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")


async def test_delete_tag_removes_it(api):
    await api.create_registered_model("model", tags=[{"key": "team", "value": "a"}])
    status, data = await api.call("DELETE", "/api/2.0/mlflow/registered-models/delete-tag",
                                  {"name": "model", "key": "team"})
    assert (status, data) == (200, {})
    assert (await get_model(api))["tags"] == []


async def test_deleting_an_absent_tag_is_a_no_op_as_in_mlflow(api):
    # MLflow's store deletes the tag only if it exists: idempotent clean-ups never fail.
    await api.create_registered_model("model", tags=[{"key": "team", "value": "a"}])
    status, data = await api.call("DELETE", "/api/2.0/mlflow/registered-models/delete-tag",
                                  {"name": "model", "key": "owner"})
    assert (status, data) == (200, {})
    assert (await get_model(api))["tags"] == [{"key": "team", "value": "a"}]


async def test_deleting_a_tag_of_an_unknown_model_is_404(api):
    status, data = await api.call("DELETE", "/api/2.0/mlflow/registered-models/delete-tag",
                                  {"name": "nope", "key": "team"})
    assert (status, data["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")


# -- aliases ---------------------------------------------------------------------------------


async def set_alias(api, alias: str, version, name: str = "model"):
    return await api.post("registered-models/alias",
                          {"name": name, "alias": alias, "version": version})


async def test_set_alias_shows_on_the_model_and_the_version(api):
    await model_with_versions(api, 2)
    status, data = await set_alias(api, "champion", "1")
    assert (status, data) == (200, {})
    assert (await get_model(api))["aliases"] == [{"alias": "champion", "version": "1"}]
    _, data = await api.get("model-versions/get", {"name": "model", "version": "1"})
    assert data["model_version"]["aliases"] == ["champion"]


async def test_get_alias_returns_the_version_it_points_at(api):
    await model_with_versions(api, 2)
    await set_alias(api, "champion", "2")
    status, data = await api.get("registered-models/alias",
                                 {"name": "model", "alias": "champion"})
    assert status == 200
    assert (data["model_version"]["version"], data["model_version"]["aliases"]) == (
        "2", ["champion"])


async def test_setting_an_alias_again_moves_it(api):
    await model_with_versions(api, 2)
    await set_alias(api, "champion", "1")
    await set_alias(api, "champion", "2")
    _, data = await api.get("model-versions/get", {"name": "model", "version": "1"})
    assert data["model_version"]["aliases"] == []
    assert (await get_model(api))["aliases"] == [{"alias": "champion", "version": "2"}]


async def test_an_alias_version_may_be_a_json_number(api):
    await model_with_versions(api, 1)
    status, _ = await set_alias(api, "champion", 1)
    assert status == 200
    assert (await get_model(api))["aliases"] == [{"alias": "champion", "version": "1"}]


async def test_delete_alias_removes_it(api):
    await model_with_versions(api, 1)
    await set_alias(api, "champion", "1")
    status, data = await api.call("DELETE", "/api/2.0/mlflow/registered-models/alias",
                                  params={"name": "model", "alias": "champion"})
    assert (status, data) == (200, {})
    assert (await get_model(api))["aliases"] == []


async def test_deleting_an_absent_alias_is_a_no_op_as_in_mlflow(api):
    await model_with_versions(api, 1)
    await set_alias(api, "champion", "1")
    status, data = await api.call("DELETE", "/api/2.0/mlflow/registered-models/alias",
                                  {"name": "model", "alias": "challenger"})
    assert (status, data) == (200, {})
    assert (await get_model(api))["aliases"] == [{"alias": "champion", "version": "1"}]


async def test_deleting_an_alias_of_an_unknown_model_is_404(api):
    status, data = await api.call("DELETE", "/api/2.0/mlflow/registered-models/alias",
                                  {"name": "nope", "alias": "champion"})
    assert (status, data["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")


async def test_get_of_an_absent_alias_is_an_invalid_parameter_as_in_mlflow(api):
    await api.create_registered_model("model")
    status, data = await api.get("registered-models/alias", {"name": "model", "alias": "x"})
    assert status == 400
    assert data == {"error_code": "INVALID_PARAMETER_VALUE",
                    "message": "Registered model alias x not found."}


async def test_get_of_an_alias_of_an_unknown_model_is_404(api):
    status, data = await api.get("registered-models/alias", {"name": "nope", "alias": "x"})
    assert (status, data["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")


async def test_the_latest_alias_resolves_to_the_newest_version_as_in_mlflow(api):
    await model_with_versions(api, 3)
    await api.transition("model", "3", "Archived")
    status, data = await api.get("registered-models/alias",
                                 {"name": "model", "alias": "latest"})
    assert (status, data.get("model_version", {}).get("version")) == (200, "3")


@pytest.mark.parametrize("alias", ["latest", "v1", "V12", "has space", "a/b", "x" * 256])
async def test_a_reserved_or_malformed_alias_is_refused(api, alias):
    await model_with_versions(api, 1)
    status, data = await set_alias(api, alias, "1")
    assert (status, data["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert data["message"].startswith("Invalid alias")


async def test_an_alias_to_an_unknown_version_is_404(api):
    await model_with_versions(api, 1)
    status, data = await set_alias(api, "champion", "7")
    assert status == 404
    assert data["message"] == "Model Version (name=model, version=7) not found"


async def test_an_alias_without_a_version_is_a_missing_parameter(api):
    await model_with_versions(api, 1)
    status, data = await api.post("registered-models/alias",
                                  {"name": "model", "alias": "champion"})
    assert (status, data["message"]) == (400, "Missing value for required parameter 'version'.")


async def test_an_alias_without_a_name_is_a_missing_parameter(api):
    status, data = await api.post("registered-models/alias", {"alias": "a", "version": "1"})
    assert (status, data["message"]) == (400, MISSING_NAME)


# -- get-latest-versions ---------------------------------------------------------------------


async def staged_model(api) -> None:
    """Versions 1 and 2 in Production, 3 in Staging, 4 in None."""
    await model_with_versions(api, 4)
    await api.transition("model", "1", "Production")
    await api.transition("model", "2", "Production")
    await api.transition("model", "3", "Staging")


async def test_get_latest_versions_by_post_filters_by_stage(api):
    await staged_model(api)
    status, data = await api.post("registered-models/get-latest-versions",
                                  {"name": "model", "stages": ["Production"]})
    assert status == 200
    assert [(v["version"], v["current_stage"]) for v in data["model_versions"]] == [
        ("2", "Production")]


async def test_get_latest_versions_by_get_takes_repeated_stages(api):
    await staged_model(api)
    status, data = await api.get("registered-models/get-latest-versions",
                                 [("name", "model"), ("stages", "Staging"),
                                  ("stages", "None")])
    assert status == 200
    assert sorted(v["version"] for v in data["model_versions"]) == ["3", "4"]


async def test_get_latest_versions_without_stages_covers_every_stage(api):
    await staged_model(api)
    status, data = await api.post("registered-models/get-latest-versions", {"name": "model"})
    assert status == 200
    assert sorted((v["current_stage"], v["version"]) for v in data["model_versions"]) == [
        ("None", "4"), ("Production", "2"), ("Staging", "3")]


async def test_get_latest_versions_with_a_bad_stage_is_refused(api):
    await api.create_registered_model("model")
    status, data = await api.post("registered-models/get-latest-versions",
                                  {"name": "model", "stages": ["Bogus"]})
    assert status == 400
    assert data == {"error_code": "INVALID_PARAMETER_VALUE", "message": BAD_STAGE}


async def test_get_latest_versions_of_an_unknown_model_is_404(api):
    status, data = await api.post("registered-models/get-latest-versions", {"name": "nope"})
    assert (status, data["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")


# -- the Databricks registry's get -----------------------------------------------------------


async def test_databricks_get_adds_the_callers_permission_level(api):
    created = await api.create_registered_model("model")
    status, data = await api.get("databricks/registered-models/get", {"name": "model"})
    assert status == 200
    assert data["registered_model_databricks"] == {**created, "permission_level": "CAN_MANAGE"}


async def test_databricks_get_of_an_unknown_model_is_404(api):
    status, data = await api.get("databricks/registered-models/get", {"name": "nope"})
    assert (status, data["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
