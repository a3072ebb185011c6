"""Model-version endpoints under jupyter_server: /api/2.0/mlflow/model-versions/* (MLflow's
JSON shapes; sources confined to the artifact store and shown as ``mlflow-artifacts:/…``)."""

from __future__ import annotations

import pytest

from labtrack.client.run_context import current_user
from tests.server.conftest import MLFLOW, MODEL_SOURCE

MISSING_VERSION = "Missing value for required parameter 'version'."
BAD_STAGE = ("Invalid Model Version stage: Bogus. Value must be one of None, Staging, "
             "Production, Archived.")


async def get_version(api, version: str = "1", name: str = "model") -> dict:
    status, data = await api.get("model-versions/get", {"name": name, "version": version})
    assert status == 200, data
    return data["model_version"]


async def model_with_versions(api, count: int, name: str = "model") -> list[dict]:
    await api.create_registered_model(name)
    return [await api.create_model_version(name) for _ in range(count)]


async def search_versions(api, params) -> list[tuple[str, str]]:
    status, data = await api.get("model-versions/search", params)
    assert status == 200, data
    return [(v["name"], v["version"]) for v in data["model_versions"]]


async def run_artifact_uri(api) -> tuple[str, str]:
    run = await api.create_run()
    return run["info"]["run_id"], run["info"]["artifact_uri"]


# -- create ----------------------------------------------------------------------------------


async def test_create_returns_mlflows_model_version_shape(api):
    await api.create_registered_model("model")
    run_id, artifact_uri = await run_artifact_uri(api)
    status, data = await api.post("model-versions/create", {
        "name": "model", "source": f"{artifact_uri}/model", "run_id": run_id,
        "description": "first", "tags": [{"key": "data", "value": "2024"}],
        "run_link": "http://ci/1"})
    assert status == 200
    version = data["model_version"]
    assert version == {
        "name": "model",
        "version": "1",
        "creation_timestamp": version["creation_timestamp"],
        "last_updated_timestamp": version["creation_timestamp"],
        "user_id": current_user(),
        "current_stage": "None",
        "description": "first",
        "source": f"{artifact_uri}/model",
        "run_id": run_id,
        "run_link": "http://ci/1",
        "status": "READY",
        "tags": [{"key": "data", "value": "2024"}],
        "aliases": [],
    }
    assert isinstance(version["creation_timestamp"], int)


async def test_versions_are_numbered_per_model(api):
    await model_with_versions(api, 2, name="a")
    await api.create_registered_model("b")
    assert (await api.create_model_version("b"))["version"] == "1"
    assert (await api.create_model_version("a"))["version"] == "3"


async def test_a_runs_uri_source_is_kept_as_given(api):
    await api.create_registered_model("model")
    run_id, _ = await run_artifact_uri(api)
    version = await api.create_model_version(source=f"runs:/{run_id}/model", run_id=run_id)
    assert version["source"] == f"runs:/{run_id}/model"


async def test_a_models_uri_source_is_kept_as_given(api):
    await api.create_registered_model("model")
    version = await api.create_model_version(source="models:/m-0123456789abcdef/")
    assert version["source"] == "models:/m-0123456789abcdef/"


async def test_a_file_uri_inside_the_artifact_store_is_shown_as_a_proxied_uri(api,
                                                                             tracking_dir):
    await api.create_registered_model("model")
    source = (tracking_dir.resolve() / "artifacts" / "0" / "model").as_uri()
    version = await api.create_model_version(source=source)
    assert version["source"] == "mlflow-artifacts:/0/model"


async def test_create_without_a_source_is_a_missing_parameter(api):
    await api.create_registered_model("model")
    status, data = await api.post("model-versions/create", {"name": "model"})
    assert (status, data["message"]) == (400, "Missing value for required parameter 'source'.")


async def test_create_without_a_name_is_a_missing_parameter(api):
    status, data = await api.post("model-versions/create", {"source": MODEL_SOURCE})
    assert (status, data["message"]) == (400, "Missing value for required parameter 'name'.")


async def test_create_for_an_unknown_model_is_404(api):
    status, data = await api.post("model-versions/create",
                                  {"name": "nope", "source": MODEL_SOURCE})
    assert status == 404
    assert data == {"error_code": "RESOURCE_DOES_NOT_EXIST",
                    "message": "Registered Model with name=nope not found"}


async def test_create_with_an_unknown_run_is_404(api):
    await api.create_registered_model("model")
    status, data = await api.post("model-versions/create", {
        "name": "model", "source": MODEL_SOURCE, "run_id": "0123456789abcdef0123456789abcdef"})
    assert (status, data["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")


@pytest.mark.parametrize("source", [
    "/etc",
    "file:///etc/passwd",
    "relative/folder",
    "s3://bucket/model",
])
async def test_a_source_outside_the_artifact_store_is_refused(api, source):
    await api.create_registered_model("model")
    status, data = await api.post("model-versions/create", {"name": "model", "source": source})
    assert (status, data["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert source in data["message"]


@pytest.mark.parametrize("source", [
    "mlflow-artifacts:/../../etc",
    "mlflow-artifacts:/0/%2e%2e/%2e%2e/%2e%2e/etc",
    "mlflow-artifacts:/0/model#../../etc",
    "mlflow-artifacts:/0/model?x=../../etc",
    "runs:/0123456789abcdef0123456789abcdef/../../../etc",
    "runs:/0123456789abcdef0123456789abcdef/model#frag",
    "runs:/0123456789abcdef0123456789abcdef/model?x=1",
    "models:/m-1/../../etc",
])
async def test_a_source_that_tries_to_escape_the_artifact_store_is_refused(api, source):
    await api.create_registered_model("model")
    status, data = await api.post("model-versions/create", {"name": "model", "source": source})
    assert (status, data["error_code"]) == (400, "INVALID_PARAMETER_VALUE")


async def test_a_file_uri_escaping_the_root_with_dot_dot_is_refused(api, tracking_dir):
    await api.create_registered_model("model")
    source = (tracking_dir / "artifacts").as_uri() + "/../../../etc"
    status, data = await api.post("model-versions/create", {"name": "model", "source": source})
    assert (status, data["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert "artifact store" in data["message"]


async def test_a_refused_source_creates_no_version(api):
    await api.create_registered_model("model")
    await api.post("model-versions/create", {"name": "model", "source": "/etc"})
    status, data = await api.get("model-versions/get", {"name": "model", "version": "1"})
    assert status == 404


# -- get, update, delete ---------------------------------------------------------------------


async def test_get_returns_the_version(api):
    [created] = await model_with_versions(api, 1)
    assert await get_version(api) == created


async def test_get_accepts_the_version_as_a_json_number_in_post_bodies(api):
    await model_with_versions(api, 1)
    status, data = await api.call("PATCH", f"{MLFLOW}/model-versions/update",
                                  {"name": "model", "version": 1, "description": "d"})
    assert (status, data["model_version"]["version"]) == (200, "1")


async def test_get_without_a_version_is_a_missing_parameter(api):
    await model_with_versions(api, 1)
    status, data = await api.get("model-versions/get", {"name": "model"})
    assert status == 400
    assert data == {"error_code": "INVALID_PARAMETER_VALUE", "message": MISSING_VERSION}


async def test_get_without_a_name_is_a_missing_parameter(api):
    status, data = await api.get("model-versions/get", {"version": "1"})
    assert (status, data["message"]) == (400, "Missing value for required parameter 'name'.")


async def test_get_of_an_unknown_version_is_404(api):
    await model_with_versions(api, 1)
    status, data = await api.get("model-versions/get", {"name": "model", "version": "9"})
    assert status == 404
    assert data == {"error_code": "RESOURCE_DOES_NOT_EXIST",
                    "message": "Model Version (name=model, version=9) not found"}


async def test_get_of_a_version_that_is_not_a_number_is_refused_as_in_mlflow(api):
    await model_with_versions(api, 1)
    status, data = await api.get("model-versions/get", {"name": "model", "version": "latest"})
    assert status == 400
    assert data == {"error_code": "INVALID_PARAMETER_VALUE",
                    "message": "Parameter 'version' must be an integer, got 'latest'."}


async def test_get_of_a_version_beyond_int64_is_refused(api):
    await model_with_versions(api, 1)
    status, data = await api.get("model-versions/get",
                                 {"name": "model", "version": str(2**63)})
    assert (status, data["error_code"]) == (400, "INVALID_PARAMETER_VALUE")


async def test_an_alias_to_a_version_beyond_int64_is_refused(api):
    await model_with_versions(api, 1)
    status, data = await api.post("registered-models/alias",
                                  {"name": "model", "alias": "a", "version": 2**63})
    assert (status, data["error_code"]) == (400, "INVALID_PARAMETER_VALUE")


async def test_get_of_a_version_of_an_unknown_model_is_404(api):
    status, data = await api.get("model-versions/get", {"name": "nope", "version": "1"})
    assert (status, data["message"]) == (404, "Registered Model with name=nope not found")


async def test_update_sets_the_description(api):
    await model_with_versions(api, 1)
    status, data = await api.call("PATCH", f"{MLFLOW}/model-versions/update",
                                  {"name": "model", "version": "1", "description": "tuned"})
    assert status == 200
    assert data["model_version"]["description"] == "tuned"
    assert (await get_version(api))["description"] == "tuned"


async def test_update_of_an_unknown_version_is_404(api):
    await model_with_versions(api, 1)
    status, data = await api.call("PATCH", f"{MLFLOW}/model-versions/update",
                                  {"name": "model", "version": "5", "description": "x"})
    assert (status, data["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")


async def test_delete_removes_the_version(api):
    await model_with_versions(api, 2)
    status, data = await api.call("DELETE", f"{MLFLOW}/model-versions/delete",
                                  {"name": "model", "version": "1"})
    assert (status, data) == (200, {})
    status, _ = await api.get("model-versions/get", {"name": "model", "version": "1"})
    assert status == 404


async def test_delete_with_query_arguments_removes_the_version(api):
    await model_with_versions(api, 1)
    status, _ = await api.call("DELETE", f"{MLFLOW}/model-versions/delete",
                               params={"name": "model", "version": "1"})
    assert status == 200
    status, _ = await api.get("model-versions/get", {"name": "model", "version": "1"})
    assert status == 404


async def test_a_deleted_version_number_is_never_reused(api):
    await model_with_versions(api, 2)
    await api.call("DELETE", f"{MLFLOW}/model-versions/delete", {"name": "model", "version": "2"})
    assert (await api.create_model_version())["version"] == "3"


async def test_a_deleted_version_leaves_the_latest_versions(api):
    await model_with_versions(api, 2)
    await api.call("DELETE", f"{MLFLOW}/model-versions/delete", {"name": "model", "version": "2"})
    _, data = await api.get("registered-models/get", {"name": "model"})
    assert [v["version"] for v in data["registered_model"]["latest_versions"]] == ["1"]


async def test_deleting_a_version_removes_its_aliases(api):
    await model_with_versions(api, 1)
    await api.post("registered-models/alias",
                   {"name": "model", "alias": "champion", "version": "1"})
    await api.call("DELETE", f"{MLFLOW}/model-versions/delete", {"name": "model", "version": "1"})
    _, data = await api.get("registered-models/get", {"name": "model"})
    assert data["registered_model"]["aliases"] == []


async def test_delete_of_an_unknown_version_is_404(api):
    await model_with_versions(api, 1)
    status, data = await api.call("DELETE", f"{MLFLOW}/model-versions/delete",
                                  {"name": "model", "version": "4"})
    assert (status, data["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")


async def test_delete_without_a_version_is_a_missing_parameter(api):
    await model_with_versions(api, 1)
    status, data = await api.call("DELETE", f"{MLFLOW}/model-versions/delete", {"name": "model"})
    assert (status, data["message"]) == (400, MISSING_VERSION)


# -- download uri ----------------------------------------------------------------------------


async def test_download_uri_is_the_proxied_artifact_uri(api):
    await model_with_versions(api, 1)
    status, data = await api.get("model-versions/get-download-uri",
                                 {"name": "model", "version": "1"})
    assert (status, data) == (200, {"artifact_uri": MODEL_SOURCE})


async def test_download_uri_of_a_runs_source_is_the_runs_uri(api):
    await api.create_registered_model("model")
    run_id, _ = await run_artifact_uri(api)
    await api.create_model_version(source=f"runs:/{run_id}/model")
    _, data = await api.get("model-versions/get-download-uri",
                            {"name": "model", "version": "1"})
    assert data == {"artifact_uri": f"runs:/{run_id}/model"}


async def test_download_uri_of_a_logged_model_source_is_the_models_artifact_uri(api):
    # MLflow 3 resolves models:/<model_id> to the logged model's artifact location.
    await api.create_registered_model("model")
    logged = (await api.create_logged_model())["info"]
    await api.create_model_version(source=f"models:/{logged['model_id']}",
                                   model_id=logged["model_id"])
    _, data = await api.get("model-versions/get-download-uri",
                            {"name": "model", "version": "1"})
    assert data == {"artifact_uri": logged["artifact_uri"]}


async def test_a_version_from_a_logged_model_takes_its_source_run(api):
    await api.create_registered_model("model")
    run_id, _ = await run_artifact_uri(api)
    logged = (await api.create_logged_model(source_run_id=run_id))["info"]
    version = await api.create_model_version(source=f"models:/{logged['model_id']}",
                                             model_id=logged["model_id"])
    assert version.get("run_id") == run_id


async def test_download_uri_of_a_registered_version_source_is_that_versions_uri(api):
    await model_with_versions(api, 1, name="base")
    await api.create_registered_model("model")
    await api.create_model_version(source="models:/base/1")
    _, data = await api.get("model-versions/get-download-uri",
                            {"name": "model", "version": "1"})
    assert data == {"artifact_uri": MODEL_SOURCE}


async def test_download_uri_of_an_unknown_version_is_404(api):
    await api.create_registered_model("model")
    status, data = await api.get("model-versions/get-download-uri",
                                 {"name": "model", "version": "1"})
    assert (status, data["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")


# -- tags ------------------------------------------------------------------------------------


async def test_set_tag_adds_a_key_value_tag(api):
    await model_with_versions(api, 1)
    status, data = await api.post("model-versions/set-tag", {
        "name": "model", "version": "1", "key": "validated", "value": "yes"})
    assert (status, data) == (200, {})
    assert (await get_version(api))["tags"] == [{"key": "validated", "value": "yes"}]


async def test_set_tag_on_an_unknown_version_is_404(api):
    await model_with_versions(api, 1)
    status, data = await api.post("model-versions/set-tag",
                                  {"name": "model", "version": "2", "key": "k", "value": "v"})
    assert (status, data["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")


async def test_set_tag_without_a_key_is_a_missing_parameter(api):
    await model_with_versions(api, 1)
    status, data = await api.post("model-versions/set-tag",
                                  {"name": "model", "version": "1", "value": "v"})
    assert (status, data["message"]) == (400, "Missing value for required parameter 'key'.")


async def test_delete_tag_removes_it(api):
    await api.create_registered_model("model")
    await api.create_model_version(tags=[{"key": "k", "value": "v"}])
    status, data = await api.call("DELETE", f"{MLFLOW}/model-versions/delete-tag",
                                  {"name": "model", "version": "1", "key": "k"})
    assert (status, data) == (200, {})
    assert (await get_version(api))["tags"] == []


async def test_deleting_an_absent_version_tag_is_a_no_op_as_in_mlflow(api):
    await api.create_registered_model("model")
    await api.create_model_version(tags=[{"key": "k", "value": "v"}])
    status, data = await api.call("DELETE", f"{MLFLOW}/model-versions/delete-tag",
                                  {"name": "model", "version": "1", "key": "other"})
    assert (status, data) == (200, {})
    assert (await get_version(api))["tags"] == [{"key": "k", "value": "v"}]


async def test_deleting_a_tag_of_an_unknown_version_is_404(api):
    await model_with_versions(api, 1)
    status, data = await api.call("DELETE", f"{MLFLOW}/model-versions/delete-tag",
                                  {"name": "model", "version": "2", "key": "k"})
    assert (status, data["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")


# -- search ----------------------------------------------------------------------------------


async def two_models(api) -> str:
    """a: versions 1-3 (3 tagged stage=best); b: versions 1-2 (1 from a run). The run id."""
    await model_with_versions(api, 2, name="a")
    await api.create_model_version("a", tags=[{"key": "stage", "value": "best"}])
    await api.create_registered_model("b")
    run_id, artifact_uri = await run_artifact_uri(api)
    await api.create_model_version("b", source=f"{artifact_uri}/model", run_id=run_id)
    await api.create_model_version("b")
    return run_id


async def test_search_filters_by_name(api):
    await two_models(api)
    assert sorted(await search_versions(api, {"filter": "name = 'b'"})) == [
        ("b", "1"), ("b", "2")]


async def test_search_filters_by_name_in_a_list(api):
    await two_models(api)
    found = await search_versions(api, {"filter": "name IN ('a', 'b')"})
    assert len(found) == 5


async def test_search_filters_by_run_id(api):
    run_id = await two_models(api)
    assert await search_versions(api, {"filter": f"run_id = '{run_id}'"}) == [("b", "1")]


async def test_search_filters_by_version_number(api):
    await two_models(api)
    found = await search_versions(api, {"filter": "name = 'a' AND version_number >= 2",
                                        "order_by": "version_number ASC"})
    assert found == [("a", "2"), ("a", "3")]


async def test_search_filters_by_tag(api):
    await two_models(api)
    assert await search_versions(api, {"filter": "tags.stage = 'best'"}) == [("a", "3")]


async def test_search_filters_by_source_path_as_the_client_registered_it(api):
    await model_with_versions(api, 1)
    found = await search_versions(api, {"filter": f"source_path = '{MODEL_SOURCE}'"})
    assert found == [("model", "1")]


async def test_search_filters_by_source_path_prefix(api):
    await api.create_registered_model("model")
    await api.create_model_version(source="mlflow-artifacts:/0/models/a")
    await api.create_model_version(source="mlflow-artifacts:/1/models/b")
    found = await search_versions(api, {"filter": "source_path LIKE 'mlflow-artifacts:/1/%'"})
    assert found == [("model", "2")]


async def test_search_orders_by_version_number_descending(api):
    await two_models(api)
    found = await search_versions(api, {"filter": "name = 'a'",
                                        "order_by": "version_number DESC"})
    assert found == [("a", "3"), ("a", "2"), ("a", "1")]


async def test_search_pages_with_next_page_token(api):
    await model_with_versions(api, 5)
    pages, token = [], None
    while True:
        params = {"max_results": "2", "order_by": "version_number ASC",
                  **({"page_token": token} if token else {})}
        status, data = await api.get("model-versions/search", params)
        assert status == 200, data
        pages.append([v["version"] for v in data["model_versions"]])
        token = data.get("next_page_token")
        if not token:
            break
    assert pages == [["1", "2"], ["3", "4"], ["5"]]


async def test_search_shows_sources_as_proxied_uris(api):
    await model_with_versions(api, 1)
    status, data = await api.get("model-versions/search", {"filter": "name = 'model'"})
    assert [v["source"] for v in data["model_versions"]] == [MODEL_SOURCE]


async def test_search_with_a_bad_filter_is_refused(api):
    status, data = await api.get("model-versions/search", {"filter": "name = 'a' OR name = 'b'"})
    assert (status, data["error_code"]) == (400, "INVALID_PARAMETER_VALUE")


async def test_search_with_a_bad_page_token_is_refused(api):
    status, data = await api.get("model-versions/search", {"page_token": "not a token"})
    assert (status, data["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert data["message"].startswith("Invalid page token")


# -- transition-stage ------------------------------------------------------------------------


async def transition(api, version: str, stage: str, archive: bool = False):
    return await api.post("model-versions/transition-stage", {
        "name": "model", "version": version, "stage": stage,
        "archive_existing_versions": archive})


async def test_transition_returns_the_version_in_its_new_stage(api):
    await model_with_versions(api, 1)
    status, data = await transition(api, "1", "Staging")
    assert status == 200
    assert (data["model_version"]["version"], data["model_version"]["current_stage"]) == (
        "1", "Staging")
    assert (await get_version(api))["current_stage"] == "Staging"


async def test_transition_accepts_a_lower_case_stage(api):
    await model_with_versions(api, 1)
    status, data = await transition(api, "1", "production")
    assert (status, data["model_version"]["current_stage"]) == (200, "Production")


async def test_transition_to_a_bad_stage_is_refused_with_mlflows_message(api):
    await model_with_versions(api, 1)
    status, data = await transition(api, "1", "Bogus")
    assert status == 400
    assert data == {"error_code": "INVALID_PARAMETER_VALUE", "message": BAD_STAGE}


async def test_transition_without_a_stage_is_a_missing_parameter(api):
    await model_with_versions(api, 1)
    status, data = await api.post("model-versions/transition-stage",
                                  {"name": "model", "version": "1"})
    assert (status, data["message"]) == (400, "Missing value for required parameter 'stage'.")


async def test_transition_of_an_unknown_version_is_404(api):
    await model_with_versions(api, 1)
    status, data = await transition(api, "2", "Staging")
    assert (status, data["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")


async def test_transition_with_archive_existing_versions_archives_the_others(api):
    await model_with_versions(api, 3)
    await transition(api, "1", "Production")
    await transition(api, "2", "Production")
    await transition(api, "3", "Production", archive=True)
    stages = [(await get_version(api, v))["current_stage"] for v in ("1", "2", "3")]
    assert stages == ["Archived", "Archived", "Production"]


async def test_transition_without_archiving_leaves_the_others_in_place(api):
    await model_with_versions(api, 2)
    await transition(api, "1", "Production")
    await transition(api, "2", "Production", archive=False)
    stages = [(await get_version(api, v))["current_stage"] for v in ("1", "2")]
    assert stages == ["Production", "Production"]


async def test_archive_existing_versions_leaves_other_stages_alone(api):
    await model_with_versions(api, 2)
    await transition(api, "1", "Staging")
    await transition(api, "2", "Production", archive=True)
    assert (await get_version(api, "1"))["current_stage"] == "Staging"


async def test_transition_with_a_non_boolean_archive_flag_is_refused(api):
    await model_with_versions(api, 1)
    status, data = await api.post("model-versions/transition-stage", {
        "name": "model", "version": "1", "stage": "Staging",
        "archive_existing_versions": "maybe"})
    assert (status, data["error_code"]) == (400, "INVALID_PARAMETER_VALUE")


async def test_databricks_transition_returns_the_version_and_records_the_comment(api):
    await model_with_versions(api, 1)
    status, data = await api.post("databricks/model-versions/transition-stage", {
        "name": "model", "version": "1", "stage": "Staging",
        "archive_existing_versions": False, "comment": "passed checks"})
    assert status == 200
    assert data["model_version_databricks"]["current_stage"] == "Staging"
    _, activities = await api.call("GET", "/api/2.0/labtrack/activities/list",
                                   params={"name": "model", "version": "1"})
    latest = activities["activities"][0]
    assert (latest["activity_type"], latest["comment"], latest["to_stage"]) == (
        "APPLIED_TRANSITION", "passed checks", "Staging")
