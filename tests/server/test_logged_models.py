"""MLflow 3 logged-model endpoints under jupyter_server: /api/2.0/mlflow/logged-models."""

from __future__ import annotations

import re

from tests.server.conftest import ARTIFACTS

MODELS = "/api/2.0/mlflow/logged-models"


async def model_id_of(api, **fields) -> str:
    return (await api.create_logged_model(**fields))["info"]["model_id"]


async def get_model(api, model_id: str) -> dict:
    return (await api.ok("GET", f"{MODELS}/{model_id}"))["model"]


async def search(api, **body) -> dict:
    return await api.ok("POST", f"{MODELS}/search", {"experiment_ids": ["0"], **body})


# -- create, get -----------------------------------------------------------------------------


async def test_create_returns_a_pending_model_in_mlflows_shape(api):
    experiment_id = await api.create_experiment("models")
    run_id = (await api.create_run(experiment_id))["info"]["run_id"]
    status, data = await api.call("POST", MODELS, {
        "experiment_id": experiment_id, "name": "model", "model_type": "sklearn",
        "source_run_id": run_id, "params": [{"key": "alpha", "value": "0.5"}],
        "tags": [{"key": "team", "value": "vision"}]})
    assert status == 200
    info = data["model"]["info"]
    model_id = info["model_id"]
    assert re.fullmatch(r"m-[0-9a-f]{32}", model_id)
    assert info == {
        "model_id": model_id,
        "experiment_id": experiment_id,
        "name": "model",
        "artifact_uri": f"mlflow-artifacts:/{experiment_id}/models/{model_id}/artifacts",
        "creation_timestamp_ms": info["creation_timestamp_ms"],
        "last_updated_timestamp_ms": info["last_updated_timestamp_ms"],
        "status": "LOGGED_MODEL_PENDING",
        "tags": [{"key": "team", "value": "vision"}],
        "model_type": "sklearn",
        "source_run_id": run_id,
    }
    assert isinstance(info["creation_timestamp_ms"], int)
    assert data["model"]["data"] == {"params": [{"key": "alpha", "value": "0.5"}],
                                     "metrics": []}


async def test_create_without_a_name_generates_one(api):
    model = await api.create_logged_model()
    assert re.fullmatch(r"[a-z]+-[a-z]+-\d{1,3}", model["info"]["name"])


async def test_create_without_experiment_id_is_a_missing_parameter(api):
    status, data = await api.call("POST", MODELS, {"name": "model"})
    assert status == 400
    assert data == {"error_code": "INVALID_PARAMETER_VALUE",
                    "message": "Missing value for required parameter 'experiment_id'."}


async def test_create_in_an_unknown_experiment_is_404(api):
    status, data = await api.call("POST", MODELS, {"experiment_id": "999"})
    assert status == 404
    assert data["error_code"] == "RESOURCE_DOES_NOT_EXIST"


async def test_create_with_an_unknown_source_run_is_404(api):
    status, data = await api.call("POST", MODELS, {
        "experiment_id": "0", "source_run_id": "0123456789abcdef0123456789abcdef"})
    assert status == 404
    assert data["error_code"] == "RESOURCE_DOES_NOT_EXIST"


async def test_get_returns_the_model(api):
    model_id = await model_id_of(api, name="model")
    status, data = await api.call("GET", f"{MODELS}/{model_id}")
    assert status == 200
    assert data["model"]["info"]["model_id"] == model_id
    assert data["model"]["info"]["name"] == "model"


async def test_get_of_an_unknown_model_is_404(api):
    status, data = await api.call("GET", f"{MODELS}/m-0123")
    assert status == 404
    assert data == {"error_code": "RESOURCE_DOES_NOT_EXIST",
                    "message": "Logged model with ID 'm-0123' not found."}


# -- finalize --------------------------------------------------------------------------------


async def test_finalize_marks_the_model_ready(api):
    model_id = await model_id_of(api)
    status, data = await api.call("PATCH", f"{MODELS}/{model_id}",
                                  {"model_id": model_id, "status": "LOGGED_MODEL_READY"})
    assert status == 200
    assert data["model"]["info"]["status"] == "LOGGED_MODEL_READY"
    assert (await get_model(api, model_id))["info"]["status"] == "LOGGED_MODEL_READY"


async def test_finalize_accepts_the_proto_enum_number(api):
    model_id = await model_id_of(api)
    _, data = await api.call("PATCH", f"{MODELS}/{model_id}", {"status": 3})
    assert data["model"]["info"]["status"] == "LOGGED_MODEL_UPLOAD_FAILED"


async def test_finalize_with_an_unknown_status_is_400(api):
    model_id = await model_id_of(api)
    status, data = await api.call("PATCH", f"{MODELS}/{model_id}", {"status": "DONE"})
    assert status == 400
    assert data["error_code"] == "INVALID_PARAMETER_VALUE"


async def test_finalize_with_an_unknown_status_number_is_400(api):
    model_id = await model_id_of(api)
    status, data = await api.call("PATCH", f"{MODELS}/{model_id}", {"status": 9})
    assert status == 400
    assert data["error_code"] == "INVALID_PARAMETER_VALUE"


async def test_finalize_without_status_is_a_missing_parameter(api):
    model_id = await model_id_of(api)
    status, data = await api.call("PATCH", f"{MODELS}/{model_id}", {})
    assert status == 400
    assert data["message"] == "Missing value for required parameter 'status'."


async def test_finalize_of_an_unknown_model_is_404(api):
    status, data = await api.call("PATCH", f"{MODELS}/m-0123",
                                  {"status": "LOGGED_MODEL_READY"})
    assert status == 404
    assert data["error_code"] == "RESOURCE_DOES_NOT_EXIST"


# -- search ----------------------------------------------------------------------------------


async def test_search_filters_by_name(api):
    wanted = await model_id_of(api, name="model")
    await model_id_of(api, name="other")
    data = await search(api, filter="name = 'model'")
    assert [m["info"]["model_id"] for m in data["models"]] == [wanted]


async def test_search_filters_by_param_and_tag(api):
    wanted = await model_id_of(api, params=[{"key": "alpha", "value": "1"}],
                               tags=[{"key": "team", "value": "a"}])
    await model_id_of(api, params=[{"key": "alpha", "value": "1"}])
    data = await search(api, filter="params.alpha = '1' AND tags.team = 'a'")
    assert [m["info"]["model_id"] for m in data["models"]] == [wanted]


async def test_search_orders_by_field_name(api):
    ids = [await model_id_of(api, name=name) for name in ("b", "c", "a")]
    data = await search(api, order_by=[{"field_name": "name", "ascending": False}])
    assert [m["info"]["model_id"] for m in data["models"]] == [ids[1], ids[0], ids[2]]


async def test_search_pages_walk_every_model_once(api):
    created = [await model_id_of(api) for _ in range(5)]
    found, sizes, token = [], [], None
    while True:
        body = {"max_results": 2, **({"page_token": token} if token else {})}
        data = await search(api, **body)
        sizes.append(len(data["models"]))
        found += [m["info"]["model_id"] for m in data["models"]]
        token = data.get("next_page_token")
        if not token:
            break
    assert sizes == [2, 2, 1]
    assert sorted(found) == sorted(created)


async def test_search_without_experiment_ids_is_a_missing_parameter(api):
    status, data = await api.call("POST", f"{MODELS}/search", {})
    assert status == 400
    assert data["message"] == "Missing value for required parameter 'experiment_ids'."


async def test_search_with_or_in_the_filter_is_refused(api):
    status, data = await api.call("POST", f"{MODELS}/search", {
        "experiment_ids": ["0"], "filter": "name = 'a' OR name = 'b'"})
    assert status == 400
    assert data["message"].startswith("Invalid clause(s) in filter string: 'OR'")


async def test_search_with_a_bad_page_token_is_400(api):
    status, data = await api.call("POST", f"{MODELS}/search", {
        "experiment_ids": ["0"], "page_token": "nope"})
    assert status == 400
    assert "page token" in data["message"]


async def test_search_by_dataset_is_refused_as_unsupported(api):
    status, data = await api.call("POST", f"{MODELS}/search", {
        "experiment_ids": ["0"], "datasets": [{"dataset_name": "iris"}]})
    assert status == 400
    assert "datasets is not supported" in data["message"]


# -- tags, params, artifacts, delete ---------------------------------------------------------


async def test_set_tags_adds_and_overwrites_tags(api):
    model_id = await model_id_of(api, tags=[{"key": "a", "value": "1"}])
    status, data = await api.call("PATCH", f"{MODELS}/{model_id}/tags", {
        "tags": [{"key": "a", "value": "2"}, {"key": "b", "value": "3"}]})
    assert (status, data) == (200, {})
    tags = {t["key"]: t["value"] for t in (await get_model(api, model_id))["info"]["tags"]}
    assert tags == {"a": "2", "b": "3"}


async def test_delete_tag_removes_it(api):
    model_id = await model_id_of(api, tags=[{"key": "a", "value": "1"}])
    status, data = await api.call("DELETE", f"{MODELS}/{model_id}/tags/a")
    assert (status, data) == (200, {})
    assert (await get_model(api, model_id))["info"]["tags"] == []


async def test_delete_of_an_unknown_tag_is_404(api):
    model_id = await model_id_of(api)
    status, data = await api.call("DELETE", f"{MODELS}/{model_id}/tags/nope")
    assert status == 404
    assert data["error_code"] == "RESOURCE_DOES_NOT_EXIST"


async def test_log_params_adds_params(api):
    model_id = await model_id_of(api)
    status, data = await api.call("POST", f"{MODELS}/{model_id}/params", {
        "params": [{"key": "alpha", "value": "0.5"}]})
    assert (status, data) == (200, {})
    assert (await get_model(api, model_id))["data"]["params"] == [
        {"key": "alpha", "value": "0.5"}]


async def test_changing_a_model_param_is_refused(api):
    model_id = await model_id_of(api, params=[{"key": "alpha", "value": "0.5"}])
    status, data = await api.call("POST", f"{MODELS}/{model_id}/params", {
        "params": [{"key": "alpha", "value": "0.9"}]})
    assert status == 400
    assert data["error_code"] == "INVALID_PARAMETER_VALUE"


async def test_artifact_directories_lists_files_uploaded_to_the_model(api):
    model = await api.create_logged_model()
    model_id = model["info"]["model_id"]
    folder = model["info"]["artifact_uri"][len("mlflow-artifacts:/"):]
    await api.request("PUT", f"{ARTIFACTS}/{folder}/MLmodel", body=b"flavors: {}\n")
    status, data = await api.call("GET", f"{MODELS}/{model_id}/artifacts/directories")
    assert status == 200
    assert data == {"files": [{"path": "MLmodel", "is_dir": False, "file_size": 12}]}


async def test_delete_hides_the_model(api):
    model_id = await model_id_of(api)
    status, data = await api.call("DELETE", f"{MODELS}/{model_id}")
    assert (status, data) == (200, {})
    assert (await api.call("GET", f"{MODELS}/{model_id}"))[0] == 404
    assert (await search(api)).get("models", []) == []


async def test_delete_of_an_unknown_model_is_404(api):
    status, data = await api.call("DELETE", f"{MODELS}/m-0123")
    assert status == 404
    assert data["error_code"] == "RESOURCE_DOES_NOT_EXIST"


async def test_lifecycle_create_finalize_get_search_tag_delete(api):
    """The sequence mlflow.<flavor>.log_model sends, end to end."""
    model_id = await model_id_of(api, name="model")
    await api.ok("PATCH", f"{MODELS}/{model_id}", {"status": "LOGGED_MODEL_READY"})
    assert (await get_model(api, model_id))["info"]["status"] == "LOGGED_MODEL_READY"
    found = await search(api, filter="name = 'model'")
    assert [m["info"]["model_id"] for m in found["models"]] == [model_id]
    await api.ok("PATCH", f"{MODELS}/{model_id}/tags", {"tags": [{"key": "k", "value": "v"}]})
    await api.ok("DELETE", f"{MODELS}/{model_id}/tags/k")
    await api.ok("DELETE", f"{MODELS}/{model_id}")
    assert (await search(api, filter="name = 'model'")).get("models", []) == []
