"""Experiment endpoints under jupyter_server: /api/2.0/mlflow/experiments/*."""

from __future__ import annotations

MISSING_NAME = "Missing value for required parameter 'name'."


async def search_all(api, page_size: int, **body) -> list[list[str]]:
    """Walk experiments/search page by page; the experiment ids of each page."""
    pages, token = [], None
    while True:
        request = {"max_results": page_size, **body}
        if token:
            request["page_token"] = token
        status, data = await api.post("experiments/search", request)
        assert status == 200, data
        pages.append([e["experiment_id"] for e in data["experiments"]])
        token = data.get("next_page_token")
        if not token:
            return pages


# -- create ----------------------------------------------------------------------------------


async def test_create_returns_the_new_id_as_a_string(api):
    status, data = await api.post("experiments/create", {"name": "forecasting"})
    assert status == 200
    assert data == {"experiment_id": "1"}


async def test_create_without_name_is_a_missing_parameter(api):
    status, data = await api.post("experiments/create", {})
    assert status == 400
    assert data == {"error_code": "INVALID_PARAMETER_VALUE", "message": MISSING_NAME}


async def test_create_with_empty_name_is_a_missing_parameter(api):
    status, data = await api.post("experiments/create", {"name": ""})
    assert (status, data["message"]) == (400, MISSING_NAME)


async def test_create_with_a_number_as_name_is_a_wrong_type(api):
    status, data = await api.post("experiments/create", {"name": 123})
    assert status == 400
    assert data["error_code"] == "INVALID_PARAMETER_VALUE"
    assert data["message"].startswith("Invalid value 123 for parameter 'name' supplied")


async def test_create_with_a_taken_name_is_resource_already_exists_400(api):
    await api.create_experiment("taken")
    status, data = await api.post("experiments/create", {"name": "taken"})
    assert status == 400
    assert data["error_code"] == "RESOURCE_ALREADY_EXISTS"
    assert "taken" in data["message"]


async def test_create_with_tags_stores_them(api):
    experiment_id = await api.create_experiment(
        "tagged", tags=[{"key": "team", "value": "vision"}])
    _, data = await api.get("experiments/get", {"experiment_id": experiment_id})
    assert data["experiment"]["tags"] == [{"key": "team", "value": "vision"}]


async def test_create_with_a_proxied_artifact_location_keeps_it(api):
    experiment_id = await api.create_experiment(
        "custom", artifact_location="mlflow-artifacts:/shared/custom")
    _, data = await api.get("experiments/get", {"experiment_id": experiment_id})
    assert data["experiment"]["artifact_location"] == "mlflow-artifacts:/shared/custom"


async def test_create_with_an_artifact_location_outside_the_root_is_refused(api, tmp_path):
    status, data = await api.post(
        "experiments/create", {"name": "escape", "artifact_location": str(tmp_path / "elsewhere")})
    assert status == 400
    assert data["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "artifact root" in data["message"]


async def test_create_with_a_traversing_proxied_location_is_refused(api):
    status, data = await api.post(
        "experiments/create", {"name": "escape", "artifact_location": "mlflow-artifacts:/../x"})
    assert status == 400
    assert data["error_code"] == "INVALID_PARAMETER_VALUE"


# -- get -------------------------------------------------------------------------------------


async def test_get_returns_mlflows_experiment_shape(api):
    experiment_id = await api.create_experiment("shape")
    status, data = await api.get("experiments/get", {"experiment_id": experiment_id})
    assert status == 200
    experiment = data["experiment"]
    assert experiment["experiment_id"] == experiment_id
    assert experiment["name"] == "shape"
    assert experiment["artifact_location"] == f"mlflow-artifacts:/{experiment_id}"
    assert experiment["lifecycle_stage"] == "active"
    assert experiment["tags"] == []
    # int64 fields are JSON numbers, not proto3-JSON strings
    assert isinstance(experiment["creation_time"], int)
    assert isinstance(experiment["last_update_time"], int)


async def test_a_fresh_store_has_the_default_experiment_0(api):
    _, data = await api.get("experiments/get", {"experiment_id": "0"})
    assert data["experiment"]["name"] == "Default"


async def test_get_unknown_experiment_is_404(api):
    status, data = await api.get("experiments/get", {"experiment_id": "999"})
    assert status == 404
    assert data == {"error_code": "RESOURCE_DOES_NOT_EXIST",
                    "message": "No Experiment with id=999 exists"}


async def test_get_without_experiment_id_is_a_missing_parameter(api):
    status, data = await api.get("experiments/get")
    assert status == 400
    assert data["message"] == "Missing value for required parameter 'experiment_id'."


async def test_get_returns_deleted_experiments_too(api):
    experiment_id = await api.create_experiment("gone")
    await api.ok("POST", "/api/2.0/mlflow/experiments/delete", {"experiment_id": experiment_id})
    _, data = await api.get("experiments/get", {"experiment_id": experiment_id})
    assert data["experiment"]["lifecycle_stage"] == "deleted"


async def test_get_by_name_finds_the_experiment(api):
    experiment_id = await api.create_experiment("by name")
    status, data = await api.get("experiments/get-by-name", {"experiment_name": "by name"})
    assert status == 200
    assert data["experiment"]["experiment_id"] == experiment_id


async def test_get_by_name_of_an_unknown_name_is_404(api):
    status, data = await api.get("experiments/get-by-name", {"experiment_name": "nope"})
    assert status == 404
    assert data["error_code"] == "RESOURCE_DOES_NOT_EXIST"


async def test_get_by_name_without_name_is_a_missing_parameter(api):
    status, data = await api.get("experiments/get-by-name")
    assert status == 400
    assert data["message"] == "Missing value for required parameter 'experiment_name'."


# -- search ----------------------------------------------------------------------------------


async def test_search_without_max_results_must_be_a_positive_integer(api):
    status, data = await api.post("experiments/search", {})
    assert status == 400
    assert data["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "max_results" in data["message"]
    assert "must be a positive integer" in data["message"]


async def test_search_above_50000_results_is_refused(api):
    status, data = await api.post("experiments/search", {"max_results": 50001})
    assert status == 400
    assert "must be at most 50000" in data["message"]


async def test_search_with_a_string_max_results_reads_it_as_int64(api):
    # proto3 JSON writes int64 as a decimal string; MLflow accepts both forms.
    status, data = await api.post("experiments/search", {"max_results": "10"})
    assert status == 200
    assert [e["name"] for e in data["experiments"]] == ["Default"]


async def test_search_with_a_non_numeric_max_results_is_a_wrong_type(api):
    status, data = await api.post("experiments/search", {"max_results": "many"})
    assert status == 400
    assert data["message"].startswith("Invalid value \"many\" for parameter 'max_results'")


async def test_search_by_query_string_with_get(api):
    await api.create_experiment("alpha")
    status, data = await api.get("experiments/search",
                                 {"max_results": "10", "filter": "name = 'alpha'"})
    assert status == 200
    assert [e["name"] for e in data["experiments"]] == ["alpha"]


async def test_search_filters_by_name(api):
    await api.create_experiment("alpha")
    await api.create_experiment("beta")
    _, data = await api.post("experiments/search",
                             {"max_results": 10, "filter": "name LIKE 'al%'"})
    assert [e["name"] for e in data["experiments"]] == ["alpha"]


async def test_search_filters_by_tag(api):
    await api.create_experiment("alpha", tags=[{"key": "team", "value": "vision"}])
    await api.create_experiment("beta")
    _, data = await api.post("experiments/search",
                             {"max_results": 10, "filter": "tags.team = 'vision'"})
    assert [e["name"] for e in data["experiments"]] == ["alpha"]


async def test_search_with_or_in_the_filter_is_refused(api):
    status, data = await api.post(
        "experiments/search", {"max_results": 10, "filter": "name = 'a' OR name = 'b'"})
    assert status == 400
    assert data["error_code"] == "INVALID_PARAMETER_VALUE"
    assert data["message"].startswith("Invalid clause(s) in filter string: 'OR'")


async def test_search_orders_by_name(api):
    for name in ("b", "c", "a"):
        await api.create_experiment(name)
    _, data = await api.post("experiments/search",
                             {"max_results": 10, "order_by": ["name DESC"]})
    assert [e["name"] for e in data["experiments"]] == ["c", "b", "a", "Default"]


async def test_search_pages_walk_every_experiment_once(api):
    created = [await api.create_experiment(f"e{i}") for i in range(6)]
    pages = await search_all(api, page_size=3, order_by=["name ASC"])
    assert [len(page) for page in pages] == [3, 3, 1]
    assert sorted(sum(pages, [])) == sorted(["0", *created])


async def test_search_last_full_page_has_no_next_token(api):
    await api.create_experiment("one")
    _, data = await api.post("experiments/search", {"max_results": 2})
    assert len(data["experiments"]) == 2
    assert "next_page_token" not in data


async def test_search_with_a_bad_page_token_is_400(api):
    status, data = await api.post("experiments/search",
                                  {"max_results": 10, "page_token": "not-a-token"})
    assert status == 400
    assert data["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "page token" in data["message"]


async def test_search_active_only_hides_deleted_experiments(api):
    experiment_id = await api.create_experiment("gone")
    await api.post("experiments/delete", {"experiment_id": experiment_id})
    _, data = await api.post("experiments/search", {"max_results": 10})
    assert [e["name"] for e in data["experiments"]] == ["Default"]


async def test_search_deleted_only_lists_deleted_experiments(api):
    experiment_id = await api.create_experiment("gone")
    await api.post("experiments/delete", {"experiment_id": experiment_id})
    _, data = await api.post("experiments/search",
                             {"max_results": 10, "view_type": "DELETED_ONLY"})
    assert [e["name"] for e in data["experiments"]] == ["gone"]


async def test_search_with_an_unknown_view_type_is_400(api):
    status, data = await api.post("experiments/search",
                                  {"max_results": 10, "view_type": "SOMETIMES"})
    assert status == 400
    assert data["error_code"] == "INVALID_PARAMETER_VALUE"


# -- update, delete, restore -----------------------------------------------------------------


async def test_update_renames_the_experiment(api):
    experiment_id = await api.create_experiment("old")
    status, data = await api.post("experiments/update",
                                  {"experiment_id": experiment_id, "new_name": "new"})
    assert (status, data) == (200, {})
    _, data = await api.get("experiments/get", {"experiment_id": experiment_id})
    assert data["experiment"]["name"] == "new"


async def test_update_to_a_taken_name_is_resource_already_exists(api):
    await api.create_experiment("taken")
    experiment_id = await api.create_experiment("mine")
    status, data = await api.post("experiments/update",
                                  {"experiment_id": experiment_id, "new_name": "taken"})
    assert status == 400
    assert data["error_code"] == "RESOURCE_ALREADY_EXISTS"


async def test_update_without_new_name_is_a_missing_parameter(api):
    experiment_id = await api.create_experiment("old")
    status, data = await api.post("experiments/update", {"experiment_id": experiment_id})
    assert status == 400
    assert data["message"] == "Missing value for required parameter 'new_name'."


async def test_update_of_an_unknown_experiment_is_404(api):
    status, data = await api.post("experiments/update",
                                  {"experiment_id": "999", "new_name": "x"})
    assert status == 404
    assert data["error_code"] == "RESOURCE_DOES_NOT_EXIST"


async def test_delete_marks_the_experiment_deleted(api):
    experiment_id = await api.create_experiment("gone")
    status, data = await api.post("experiments/delete", {"experiment_id": experiment_id})
    assert (status, data) == (200, {})
    _, data = await api.get("experiments/get", {"experiment_id": experiment_id})
    assert data["experiment"]["lifecycle_stage"] == "deleted"


async def test_delete_also_deletes_the_experiments_runs(api):
    experiment_id = await api.create_experiment("gone")
    run = await api.create_run(experiment_id)
    await api.post("experiments/delete", {"experiment_id": experiment_id})
    _, data = await api.get("runs/get", {"run_id": run["info"]["run_id"]})
    assert data["run"]["info"]["lifecycle_stage"] == "deleted"


async def test_delete_of_the_default_experiment_is_refused(api):
    status, data = await api.post("experiments/delete", {"experiment_id": "0"})
    assert status == 400
    assert data["error_code"] == "INVALID_PARAMETER_VALUE"


async def test_delete_of_an_unknown_experiment_is_404(api):
    status, data = await api.post("experiments/delete", {"experiment_id": "999"})
    assert status == 404
    assert data["error_code"] == "RESOURCE_DOES_NOT_EXIST"


async def test_delete_with_a_numeric_experiment_id_is_a_wrong_type(api):
    status, data = await api.post("experiments/delete", {"experiment_id": 1})
    assert status == 400
    assert data["message"].startswith("Invalid value 1 for parameter 'experiment_id'")


async def test_restore_brings_back_the_experiment_and_its_runs(api):
    experiment_id = await api.create_experiment("back")
    run = await api.create_run(experiment_id)
    await api.post("experiments/delete", {"experiment_id": experiment_id})
    status, data = await api.post("experiments/restore", {"experiment_id": experiment_id})
    assert (status, data) == (200, {})
    _, data = await api.get("experiments/get", {"experiment_id": experiment_id})
    assert data["experiment"]["lifecycle_stage"] == "active"
    _, data = await api.get("runs/get", {"run_id": run["info"]["run_id"]})
    assert data["run"]["info"]["lifecycle_stage"] == "active"


async def test_restore_of_an_active_experiment_is_400(api):
    experiment_id = await api.create_experiment("here")
    status, data = await api.post("experiments/restore", {"experiment_id": experiment_id})
    assert status == 400
    assert data["error_code"] == "INVALID_PARAMETER_VALUE"


async def test_create_with_the_name_of_a_deleted_experiment_says_so(api):
    experiment_id = await api.create_experiment("gone")
    await api.post("experiments/delete", {"experiment_id": experiment_id})
    status, data = await api.post("experiments/create", {"name": "gone"})
    assert status == 400
    assert data["error_code"] == "RESOURCE_ALREADY_EXISTS"
    assert "deleted state" in data["message"]


# -- tags ------------------------------------------------------------------------------------


async def test_set_experiment_tag_adds_the_tag(api):
    experiment_id = await api.create_experiment("tagged")
    status, data = await api.post("experiments/set-experiment-tag",
                                  {"experiment_id": experiment_id, "key": "k", "value": "v"})
    assert (status, data) == (200, {})
    _, data = await api.get("experiments/get", {"experiment_id": experiment_id})
    assert data["experiment"]["tags"] == [{"key": "k", "value": "v"}]


async def test_set_experiment_tag_overwrites_the_value(api):
    experiment_id = await api.create_experiment("tagged")
    for value in ("1", "2"):
        await api.post("experiments/set-experiment-tag",
                       {"experiment_id": experiment_id, "key": "k", "value": value})
    _, data = await api.get("experiments/get", {"experiment_id": experiment_id})
    assert data["experiment"]["tags"] == [{"key": "k", "value": "2"}]


async def test_set_experiment_tag_without_key_is_a_missing_parameter(api):
    experiment_id = await api.create_experiment("tagged")
    status, data = await api.post("experiments/set-experiment-tag",
                                  {"experiment_id": experiment_id, "value": "v"})
    assert status == 400
    assert data["message"] == "Missing value for required parameter 'key'."


async def test_set_experiment_tag_on_a_deleted_experiment_is_400(api):
    experiment_id = await api.create_experiment("gone")
    await api.post("experiments/delete", {"experiment_id": experiment_id})
    status, data = await api.post("experiments/set-experiment-tag",
                                  {"experiment_id": experiment_id, "key": "k", "value": "v"})
    assert status == 400
    assert data == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": f"The experiment {experiment_id} must be in the 'active' state. Current "
                   "state is deleted.",
    }


async def test_delete_experiment_tag_removes_the_tag(api):
    experiment_id = await api.create_experiment(
        "tagged", tags=[{"key": "k", "value": "v"}])
    status, data = await api.post("experiments/delete-experiment-tag",
                                  {"experiment_id": experiment_id, "key": "k"})
    assert (status, data) == (200, {})
    _, data = await api.get("experiments/get", {"experiment_id": experiment_id})
    assert data["experiment"]["tags"] == []


async def test_delete_of_an_unknown_experiment_tag_is_404(api):
    experiment_id = await api.create_experiment("tagged")
    status, data = await api.post("experiments/delete-experiment-tag",
                                  {"experiment_id": experiment_id, "key": "nope"})
    assert status == 404
    assert data["error_code"] == "RESOURCE_DOES_NOT_EXIST"
