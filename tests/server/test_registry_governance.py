"""The registry's governance over HTTP: the audit trail, comments, transition requests and
per-model permissions (the Databricks registry's endpoints plus labtrack's listings).

Single-user behaviour runs under jupyter_server, where the caller created every model and
is a registry admin. The rules between people run on the standalone server with three token
users: ann creates the models (so manages them), bob gets whatever level a test grants (the
default is CAN_READ), olivia is the registry admin.
"""

from __future__ import annotations

import asyncio

import pytest

from labtrack.client.run_context import current_user
from tests.server.conftest import LABTRACK, MLFLOW, PERMISSIONS

ACTIVITIES = f"{LABTRACK}/activities/list"
COMMENTS = f"{MLFLOW}/comments"
REQUESTS = f"{MLFLOW}/transition-requests"
BAD_STAGE = ("Invalid Model Version stage: Bogus. Value must be one of None, Staging, "
             "Production, Archived.")
LEVELS = ["CAN_READ", "CAN_EDIT", "CAN_MANAGE_STAGING_VERSIONS",
          "CAN_MANAGE_PRODUCTION_VERSIONS", "CAN_MANAGE"]


async def model_with_versions(api, count: int = 1, name: str = "model") -> None:
    await api.create_registered_model(name)
    for _ in range(count):
        await api.create_model_version(name)


async def activities(api, name: str = "model", **params) -> list[dict]:
    data = await api.ok("GET", ACTIVITIES, params={"name": name, **params})
    return data["activities"]


async def activity_types(api, name: str = "model", **params) -> list[str]:
    return [a["activity_type"] for a in await activities(api, name, **params)]


async def stage_of(api, version: str = "1", name: str = "model") -> str:
    data = await api.ok("GET", f"{MLFLOW}/model-versions/get",
                        params={"name": name, "version": version})
    return data["model_version"]["current_stage"]


async def request_transition(api, stage: str, version: str = "1", name: str = "model",
                             **fields):
    return await api.post("transition-requests/create",
                          {"name": name, "version": version, "stage": stage, **fields})


async def approve(api, stage: str, version: str = "1", name: str = "model", **fields):
    return await api.post("transition-requests/approve", {
        "name": name, "version": version, "stage": stage, "archive_existing_versions": False,
        **fields})


async def reject(api, stage: str, version: str = "1", name: str = "model", **fields):
    return await api.post("transition-requests/reject",
                          {"name": name, "version": version, "stage": stage, **fields})


async def cancel(api, stage: str, creator: str, version: str = "1", name: str = "model"):
    return await api.call("DELETE", f"{REQUESTS}/delete", params={
        "name": name, "version": version, "stage": stage, "creator": creator})


async def open_requests(api, **params) -> list[dict]:
    return (await api.ok("GET", f"{REQUESTS}/list", params=params))["requests"]


async def comment(api, text: str, version: str = "1", name: str = "model") -> dict:
    data = await api.ok("POST", f"{COMMENTS}/create",
                        {"name": name, "version": version, "comment": text})
    return data["comment"]


async def comments(api, version: str = "1", name: str = "model") -> list[dict]:
    data = await api.ok("GET", f"{LABTRACK}/comments/list",
                        params={"name": name, "version": version})
    return data["comments"]


async def model_id(api, name: str = "model") -> str:
    data = await api.ok("GET", f"{MLFLOW}/registered-models/get", params={"name": name})
    return data["registered_model"]["id"]


def denied(user: str, held: str, action: str, needed: str, model: str = "model") -> dict:
    return {"error_code": "PERMISSION_DENIED",
            "message": f"User '{user}' has {held} on registered model '{model}'; {action} "
                       f"needs {needed}."}


# == single user (jupyter_server) ===========================================================

# -- the audit trail -------------------------------------------------------------------------


async def test_activities_are_listed_newest_first(api):
    await model_with_versions(api)
    await api.transition("model", "1", "Staging")
    assert await activity_types(api) == [
        "APPLIED_TRANSITION", "MODEL_VERSION_CREATED", "REGISTERED_MODEL_CREATED"]


async def test_an_activity_has_the_databricks_fields(api):
    await model_with_versions(api)
    await api.transition("model", "1", "Staging")
    latest = (await activities(api))[0]
    assert latest == {
        "id": latest["id"],
        "model_name": "model",
        "version": "1",
        "activity_type": "APPLIED_TRANSITION",
        "user_id": current_user(),
        "creation_timestamp": latest["creation_timestamp"],
        "last_updated_timestamp": latest["creation_timestamp"],
        "from_stage": "None",
        "to_stage": "Staging",
    }


async def test_activities_of_one_version_leave_out_the_others(api):
    await model_with_versions(api, 2)
    found = await activities(api, version="2")
    assert [(a["activity_type"], a["version"]) for a in found] == [
        ("MODEL_VERSION_CREATED", "2")]


async def test_activities_are_paged_with_next_page_token(api):
    await model_with_versions(api, 4)
    pages, token = [], None
    while True:
        params = {"name": "model", "max_results": "2", **({"page_token": token} if token else {})}
        data = await api.ok("GET", ACTIVITIES, params=params)
        pages.append([a["id"] for a in data["activities"]])
        token = data.get("next_page_token")
        if not token:
            break
    assert [len(page) for page in pages] == [2, 2, 1]
    ids = [int(i) for page in pages for i in page]
    assert ids == sorted(ids, reverse=True)


async def test_archiving_shows_as_a_system_transition(api):
    await model_with_versions(api, 2)
    await api.transition("model", "1", "Production")
    await api.transition("model", "2", "Production", archive_existing_versions=True)
    system = [a for a in await activities(api, version="1")
              if a["activity_type"] == "SYSTEM_TRANSITION"]
    assert [(a["from_stage"], a["to_stage"]) for a in system] == [("Production", "Archived")]
    assert "version 2" in system[0]["system_comment"]


async def test_a_rename_is_recorded_under_the_new_name(api):
    await api.create_registered_model("old")
    await api.post("registered-models/rename", {"name": "old", "new_name": "new"})
    latest = (await activities(api, "new"))[0]
    assert (latest["activity_type"], latest["system_comment"]) == (
        "MODEL_RENAMED", "Renamed from 'old'.")


async def test_moving_an_alias_is_recorded(api):
    await model_with_versions(api, 2)
    for version in ("1", "2"):
        await api.post("registered-models/alias",
                       {"name": "model", "alias": "champion", "version": version})
    latest = (await activities(api))[0]
    assert (latest["activity_type"], latest["system_comment"]) == (
        "ALIAS_SET", "Alias 'champion' now points to version 2 (was version 1).")


async def test_a_deleted_models_history_does_not_appear_under_a_new_model(api):
    await model_with_versions(api, name="old")
    await api.call("DELETE", f"{MLFLOW}/registered-models/delete", {"name": "old"})
    await api.create_registered_model("new")
    found = await activities(api, "new")
    assert [(a["model_name"], a["activity_type"]) for a in found] == [
        ("new", "REGISTERED_MODEL_CREATED")]


async def test_activities_of_an_unknown_model_are_404(api):
    status, data = await api.call("GET", ACTIVITIES, params={"name": "nope"})
    assert (status, data["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")


async def test_activities_of_an_unknown_version_are_404(api):
    await model_with_versions(api)
    status, data = await api.call("GET", ACTIVITIES, params={"name": "model", "version": "3"})
    assert (status, data["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")


async def test_activities_of_a_version_beyond_int64_are_refused(api):
    await model_with_versions(api)
    status, data = await api.call("GET", ACTIVITIES,
                                  params={"name": "model", "version": str(2**63)})
    assert (status, data["error_code"]) == (400, "INVALID_PARAMETER_VALUE")


async def test_activities_without_a_name_are_a_missing_parameter(api):
    status, data = await api.call("GET", ACTIVITIES)
    assert (status, data["message"]) == (400, "Missing value for required parameter 'name'.")


# -- comments --------------------------------------------------------------------------------


async def test_create_comment_returns_the_databricks_comment_object(api):
    await model_with_versions(api)
    status, data = await api.post("comments/create",
                                  {"name": "model", "version": "1", "comment": "Looks good"})
    assert status == 200
    created = data["comment"]
    assert created == {
        "id": created["id"],
        "model_name": "model",
        "version": "1",
        "user_id": current_user(),
        "comment": "Looks good",
        "creation_timestamp": created["creation_timestamp"],
        "last_updated_timestamp": created["creation_timestamp"],
        "available_actions": ["EDIT_COMMENT", "DELETE_COMMENT"],
    }


async def test_comments_are_listed_oldest_first(api):
    await model_with_versions(api)
    for text in ("first", "second", "third"):
        await comment(api, text)
    assert [c["comment"] for c in await comments(api)] == ["first", "second", "third"]


async def test_a_comment_is_recorded_as_new_comment(api):
    await model_with_versions(api)
    await comment(api, "Looks good")
    latest = (await activities(api))[0]
    assert (latest["activity_type"], latest["comment"]) == ("NEW_COMMENT", "Looks good")


async def test_update_comment_changes_its_text(api):
    await model_with_versions(api)
    created = await comment(api, "typo")
    status, data = await api.call("PATCH", f"{COMMENTS}/update",
                                  {"id": created["id"], "comment": "fixed"})
    assert (status, data["comment"]["comment"]) == (200, "fixed")
    assert [c["comment"] for c in await comments(api)] == ["fixed"]


async def test_delete_comment_with_a_query_argument_removes_it(api):
    await model_with_versions(api)
    created = await comment(api, "oops")
    status, data = await api.call("DELETE", f"{COMMENTS}/delete", params={"id": created["id"]})
    assert (status, data) == (200, {})
    assert await comments(api) == []


async def test_an_empty_comment_is_a_missing_parameter(api):
    await model_with_versions(api)
    status, data = await api.post("comments/create",
                                  {"name": "model", "version": "1", "comment": ""})
    assert (status, data["message"]) == (400, "Missing value for required parameter 'comment'.")


async def test_a_comment_longer_than_65535_characters_is_refused(api):
    await model_with_versions(api)
    status, data = await api.post("comments/create",
                                  {"name": "model", "version": "1", "comment": "x" * 65536})
    assert (status, data["error_code"]) == (400, "INVALID_PARAMETER_VALUE")


async def test_a_comment_on_an_unknown_version_is_404(api):
    await model_with_versions(api)
    status, data = await api.post("comments/create",
                                  {"name": "model", "version": "2", "comment": "hi"})
    assert (status, data["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")


async def test_comments_of_a_version_beyond_int64_are_refused(api):
    await model_with_versions(api)
    status, data = await api.call("GET", f"{LABTRACK}/comments/list",
                                  params={"name": "model", "version": str(2**63)})
    assert (status, data["error_code"]) == (400, "INVALID_PARAMETER_VALUE")


async def test_updating_a_comment_id_beyond_int64_is_404_not_500(api):
    status, data = await api.call("PATCH", f"{COMMENTS}/update",
                                  {"id": str(2**63), "comment": "x"})
    assert (status, data["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")


async def test_updating_an_unknown_comment_is_404(api):
    status, data = await api.call("PATCH", f"{COMMENTS}/update", {"id": "99", "comment": "x"})
    assert status == 404
    assert data == {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Comment 99 not found."}


async def test_deleting_an_unknown_comment_is_404(api):
    status, data = await api.call("DELETE", f"{COMMENTS}/delete", params={"id": "99"})
    assert (status, data["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")


# -- transition requests ---------------------------------------------------------------------


async def test_create_request_returns_the_open_request(api):
    await model_with_versions(api)
    status, data = await request_transition(api, "Staging", comment="ready")
    assert status == 200
    created = data["request"]
    assert created == {
        "id": created["id"],
        "model_name": "model",
        "version": "1",
        "to_stage": "Staging",
        "user_id": current_user(),
        "creation_timestamp": created["creation_timestamp"],
        "status": "OPEN",
        "comment": "ready",
        "available_actions": ["APPROVE_TRANSITION_REQUEST", "REJECT_TRANSITION_REQUEST",
                              "CANCEL_TRANSITION_REQUEST"],
    }


async def test_a_request_does_not_move_the_version(api):
    await model_with_versions(api)
    await request_transition(api, "Staging")
    assert await stage_of(api) == "None"


async def test_a_request_is_recorded_with_its_stages(api):
    await model_with_versions(api)
    await request_transition(api, "Staging", comment="ready")
    latest = (await activities(api))[0]
    assert (latest["activity_type"], latest["from_stage"], latest["to_stage"],
            latest["comment"]) == ("REQUESTED_TRANSITION", "None", "Staging", "ready")


async def test_a_request_to_a_bad_stage_is_refused(api):
    await model_with_versions(api)
    status, data = await request_transition(api, "Bogus")
    assert (status, data) == (400, {"error_code": "INVALID_PARAMETER_VALUE",
                                    "message": BAD_STAGE})


async def test_a_request_to_the_current_stage_is_refused(api):
    await model_with_versions(api)
    status, data = await request_transition(api, "None")
    assert (status, data["message"]) == (400, "Version 1 of 'model' is already in None.")


async def test_a_second_identical_request_by_the_same_user_is_refused(api):
    await model_with_versions(api)
    await request_transition(api, "Staging")
    status, data = await request_transition(api, "Staging")
    assert (status, data["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert "already has an open request" in data["message"]


async def test_a_request_for_an_unknown_version_is_404(api):
    await model_with_versions(api)
    status, data = await request_transition(api, "Staging", version="2")
    assert (status, data["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")


async def test_list_returns_the_open_requests_of_a_version(api):
    await model_with_versions(api, 2)
    await request_transition(api, "Staging", version="1")
    await request_transition(api, "Production", version="2")
    found = await open_requests(api, name="model", version="2")
    assert [(r["version"], r["to_stage"]) for r in found] == [("2", "Production")]


async def test_list_without_a_version_covers_the_model(api):
    await model_with_versions(api, 2)
    await request_transition(api, "Staging", version="1")
    await request_transition(api, "Production", version="2")
    assert [r["version"] for r in await open_requests(api, name="model")] == ["1", "2"]


async def test_list_without_a_name_covers_every_model(api):
    await model_with_versions(api, name="a")
    await model_with_versions(api, name="b")
    await request_transition(api, "Staging", name="a")
    await request_transition(api, "Staging", name="b")
    assert [r["model_name"] for r in await open_requests(api)] == ["a", "b"]


async def test_approve_moves_the_version_and_returns_the_activity(api):
    await model_with_versions(api)
    await request_transition(api, "Staging")
    status, data = await approve(api, "Staging", comment="ok")
    assert status == 200
    activity = data["activity"]
    assert (activity["activity_type"], activity["from_stage"], activity["to_stage"],
            activity["comment"], activity["user_id"]) == (
        "APPROVED_REQUEST", "None", "Staging", "ok", current_user())
    assert await stage_of(api) == "Staging"


async def test_an_approved_request_is_no_longer_open(api):
    await model_with_versions(api)
    await request_transition(api, "Staging")
    await approve(api, "Staging")
    assert await open_requests(api, name="model") == []


async def test_approve_with_archive_existing_versions_archives_the_stage(api):
    await model_with_versions(api, 2)
    await api.transition("model", "1", "Staging")
    await request_transition(api, "Staging", version="2")
    await approve(api, "Staging", version="2", archive_existing_versions=True)
    assert (await stage_of(api, "1"), await stage_of(api, "2")) == ("Archived", "Staging")


async def test_approve_a_request_by_its_id(api):
    await model_with_versions(api)
    created = (await request_transition(api, "Staging"))[1]["request"]
    status, data = await approve(api, "Staging", request_id=created["id"])
    assert (status, data["activity"]["activity_type"]) == (200, "APPROVED_REQUEST")


async def test_approve_of_a_request_id_beyond_int64_is_404_not_500(api):
    await model_with_versions(api)
    status, data = await approve(api, "Staging", request_id=str(2**63))
    assert (status, data["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")


async def test_list_with_a_version_that_is_not_a_number_is_refused(api):
    await model_with_versions(api)
    status, data = await api.call("GET", f"{REQUESTS}/list",
                                  params={"name": "model", "version": "abc"})
    assert (status, data["message"]) == (400, "Parameter 'version' must be an integer, got 'abc'.")


async def test_approve_without_an_open_request_is_404(api):
    await model_with_versions(api)
    status, data = await approve(api, "Staging")
    assert status == 404
    assert data == {"error_code": "RESOURCE_DOES_NOT_EXIST",
                    "message": "No open request to move version 1 of 'model' to Staging."}


async def test_approving_a_rejected_request_is_a_conflict(api):
    await model_with_versions(api)
    await request_transition(api, "Staging")
    await reject(api, "Staging")
    status, data = await approve(api, "Staging")
    assert (status, data["error_code"]) == (409, "RESOURCE_CONFLICT")
    assert "no longer open: it was rejected by" in data["message"]


async def test_reject_closes_the_request_and_leaves_the_stage(api):
    await model_with_versions(api)
    await request_transition(api, "Staging")
    status, data = await reject(api, "Staging", comment="not yet")
    assert status == 200
    assert (data["activity"]["activity_type"], data["activity"]["comment"]) == (
        "REJECTED_REQUEST", "not yet")
    assert (await stage_of(api), await open_requests(api, name="model")) == ("None", [])


async def test_cancel_by_delete_with_query_arguments_closes_the_request(api):
    await model_with_versions(api)
    await request_transition(api, "Staging")
    status, data = await cancel(api, "Staging", creator=current_user())
    assert (status, data["activity"]["activity_type"]) == (200, "CANCELLED_REQUEST")
    assert await open_requests(api, name="model") == []


async def test_cancel_without_a_stage_is_a_missing_parameter(api):
    await model_with_versions(api)
    status, data = await api.call("DELETE", f"{REQUESTS}/delete",
                                  params={"name": "model", "version": "1"})
    assert (status, data["message"]) == (400, "Missing value for required parameter 'stage'.")


# -- permissions -----------------------------------------------------------------------------


async def test_get_permissions_lists_the_creator_as_manager(api):
    await api.create_registered_model("model")
    identifier = await model_id(api)
    status, data = await api.call("GET", f"{PERMISSIONS}/{identifier}")
    assert status == 200
    assert data == {
        "object_id": f"/registered-models/{identifier}",
        "object_type": "registered-model",
        "access_control_list": [{"user_name": current_user(), "all_permissions": [
            {"permission_level": "CAN_MANAGE", "inherited": False}]}],
    }


async def test_patch_permissions_grants_a_level(api):
    await api.create_registered_model("model")
    identifier = await model_id(api)
    status, data = await api.call("PATCH", f"{PERMISSIONS}/{identifier}", {
        "access_control_list": [{"user_name": "zed", "permission_level": "CAN_EDIT"}]})
    assert status == 200
    assert {"user_name": "zed", "all_permissions": [
        {"permission_level": "CAN_EDIT", "inherited": False}]} in data["access_control_list"]


async def test_put_permissions_replaces_the_list(api):
    await api.create_registered_model("model")
    identifier = await model_id(api)
    await api.call("PATCH", f"{PERMISSIONS}/{identifier}", {
        "access_control_list": [{"user_name": "zed", "permission_level": "CAN_EDIT"}]})
    status, data = await api.call("PUT", f"{PERMISSIONS}/{identifier}", {
        "access_control_list": [{"user_name": "yan", "permission_level": "CAN_READ"}]})
    assert status == 200
    assert sorted(e["user_name"] for e in data["access_control_list"]) == sorted(
        ["yan", current_user()])


async def test_a_permission_change_is_recorded(api):
    await api.create_registered_model("model")
    await api.call("PATCH", f"{PERMISSIONS}/{await model_id(api)}", {
        "access_control_list": [{"user_name": "zed", "permission_level": "CAN_EDIT"}]})
    latest = (await activities(api))[0]
    assert (latest["activity_type"], latest["system_comment"]) == (
        "PERMISSIONS_CHANGED", "Access granted: zed=CAN_EDIT")


async def test_an_unknown_permission_level_is_refused(api):
    await api.create_registered_model("model")
    status, data = await api.call("PATCH", f"{PERMISSIONS}/{await model_id(api)}", {
        "access_control_list": [{"user_name": "zed", "permission_level": "CAN_FLY"}]})
    assert (status, data["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert data["message"].startswith("Invalid permission level 'CAN_FLY'")


async def test_an_entry_without_a_user_name_is_refused(api):
    await api.create_registered_model("model")
    status, data = await api.call("PATCH", f"{PERMISSIONS}/{await model_id(api)}", {
        "access_control_list": [{"group_name": "admins", "permission_level": "CAN_READ"}]})
    assert (status, data["message"]) == (
        400, "Missing value for required parameter 'user_name'.")


async def test_permissions_of_an_unknown_model_id_are_404(api):
    status, data = await api.call("GET", f"{PERMISSIONS}/999")
    assert (status, data["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")


async def test_permissions_of_a_model_id_beyond_int64_are_404_not_500(api):
    status, data = await api.call("GET", f"{PERMISSIONS}/{2**63}")
    assert (status, data["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")


async def test_permission_levels_lists_the_five_levels_in_order(api):
    await api.create_registered_model("model")
    status, data = await api.call("GET", f"{PERMISSIONS}/{await model_id(api)}/permissionLevels")
    assert status == 200
    assert [level["permission_level"] for level in data["permission_levels"]] == LEVELS
    assert all(level["description"] for level in data["permission_levels"])


async def test_permission_levels_of_an_unknown_model_id_are_404(api):
    status, data = await api.call("GET", f"{PERMISSIONS}/999/permissionLevels")
    assert (status, data["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")


# == between people (labtrack server, one token per user) ===================================


@pytest.fixture
def ann(registry_server):
    return registry_server.as_user("ann")


@pytest.fixture
def bob(registry_server):
    return registry_server.as_user("bob")


@pytest.fixture
def olivia(registry_server):
    return registry_server.as_user("olivia")


async def anns_model(ann, bob=None, level: str | None = None, versions: int = 1) -> None:
    """ann's model "model" with ``versions`` versions; bob granted ``level`` if given."""
    await model_with_versions(ann, versions)
    if level is not None:
        await ann.grant("model", "bob", level)


# -- what each level allows ------------------------------------------------------------------


async def test_a_reader_reads_the_model(ann, bob):
    await anns_model(ann)
    status, data = await bob.get("registered-models/get", {"name": "model"})
    assert (status, data["registered_model"]["user_id"]) == (200, "ann")


async def test_a_reader_may_not_tag(ann, bob):
    await anns_model(ann)
    status, data = await bob.post("registered-models/set-tag",
                                  {"name": "model", "key": "k", "value": "v"})
    assert (status, data) == (403, denied("bob", "CAN_READ", "setting a tag", "CAN_EDIT"))


async def test_a_reader_may_comment(ann, bob):
    await anns_model(ann)
    status, data = await bob.post("comments/create",
                                  {"name": "model", "version": "1", "comment": "question"})
    assert (status, data["comment"]["user_id"]) == (200, "bob")


async def test_a_reader_may_not_request_a_transition(ann, bob):
    await anns_model(ann)
    status, data = await request_transition(bob, "Staging")
    assert (status, data) == (403, denied("bob", "CAN_READ", "requesting a transition",
                                          "CAN_EDIT"))


async def test_an_editor_may_create_a_version(ann, bob):
    await anns_model(ann, bob, "CAN_EDIT")
    assert (await bob.create_model_version("model"))["user_id"] == "bob"


async def test_an_editor_may_request_a_transition(ann, bob):
    await anns_model(ann, bob, "CAN_EDIT")
    status, data = await request_transition(bob, "Staging")
    assert (status, data["request"]["user_id"]) == (200, "bob")


async def test_an_editor_may_not_transition(ann, bob):
    await anns_model(ann, bob, "CAN_EDIT")
    status, data = await bob.post("model-versions/transition-stage", {
        "name": "model", "version": "1", "stage": "Staging", "archive_existing_versions": False})
    assert (status, data) == (403, denied(
        "bob", "CAN_EDIT", "moving a version from None to Staging",
        "CAN_MANAGE_STAGING_VERSIONS"))


async def test_an_editor_may_not_move_an_alias(ann, bob):
    await anns_model(ann, bob, "CAN_EDIT")
    status, data = await bob.post("registered-models/alias",
                                  {"name": "model", "alias": "champion", "version": "1"})
    assert (status, data) == (403, denied("bob", "CAN_EDIT", "moving an alias",
                                          "CAN_MANAGE_STAGING_VERSIONS"))


async def test_a_staging_manager_may_transition_to_staging(ann, bob):
    await anns_model(ann, bob, "CAN_MANAGE_STAGING_VERSIONS")
    status, data = await bob.post("model-versions/transition-stage", {
        "name": "model", "version": "1", "stage": "Staging", "archive_existing_versions": False})
    assert (status, data["model_version"]["current_stage"]) == (200, "Staging")


async def test_a_staging_manager_may_not_transition_to_production(ann, bob):
    await anns_model(ann, bob, "CAN_MANAGE_STAGING_VERSIONS")
    status, data = await bob.post("model-versions/transition-stage", {
        "name": "model", "version": "1", "stage": "Production",
        "archive_existing_versions": False})
    assert (status, data) == (403, denied(
        "bob", "CAN_MANAGE_STAGING_VERSIONS", "moving a version from None to Production",
        "CAN_MANAGE_PRODUCTION_VERSIONS"))


async def test_a_staging_manager_may_not_take_a_version_out_of_production(ann, bob):
    await anns_model(ann, bob, "CAN_MANAGE_STAGING_VERSIONS")
    await ann.transition("model", "1", "Production")
    status, data = await bob.post("model-versions/transition-stage", {
        "name": "model", "version": "1", "stage": "Archived", "archive_existing_versions": False})
    assert (status, data["error_code"]) == (403, "PERMISSION_DENIED")
    assert "needs CAN_MANAGE_PRODUCTION_VERSIONS" in data["message"]


async def test_a_staging_manager_may_approve_a_staging_request(ann, bob):
    await anns_model(ann, bob, "CAN_MANAGE_STAGING_VERSIONS")
    await request_transition(ann, "Staging")
    status, _ = await approve(bob, "Staging")
    assert status == 200
    assert await stage_of(ann) == "Staging"


async def test_a_staging_manager_may_not_approve_a_production_request(ann, bob):
    await anns_model(ann, bob, "CAN_MANAGE_STAGING_VERSIONS")
    await request_transition(ann, "Production")
    status, data = await approve(bob, "Production")
    assert (status, data) == (403, denied(
        "bob", "CAN_MANAGE_STAGING_VERSIONS", "approving a move from None to Production",
        "CAN_MANAGE_PRODUCTION_VERSIONS"))
    assert await stage_of(ann) == "None"


async def test_a_production_manager_may_approve_a_production_request(ann, bob):
    await anns_model(ann, bob, "CAN_MANAGE_PRODUCTION_VERSIONS")
    await request_transition(ann, "Production")
    status, data = await approve(bob, "Production")
    assert (status, data["activity"]["user_id"]) == (200, "bob")
    assert await stage_of(ann) == "Production"


async def test_a_production_manager_may_reject_a_production_request(ann, bob):
    await anns_model(ann, bob, "CAN_MANAGE_PRODUCTION_VERSIONS")
    await request_transition(ann, "Production")
    status, data = await reject(bob, "Production")
    assert (status, data["activity"]["activity_type"]) == (200, "REJECTED_REQUEST")


async def test_a_production_manager_may_not_grant_permissions(ann, bob):
    await anns_model(ann, bob, "CAN_MANAGE_PRODUCTION_VERSIONS")
    status, data = await bob.call("PATCH", f"{PERMISSIONS}/{await model_id(ann)}", {
        "access_control_list": [{"user_name": "bob", "permission_level": "CAN_MANAGE"}]})
    assert (status, data) == (403, denied(
        "bob", "CAN_MANAGE_PRODUCTION_VERSIONS", "granting permissions", "CAN_MANAGE"))


async def test_a_production_manager_may_not_delete_the_model(ann, bob):
    await anns_model(ann, bob, "CAN_MANAGE_PRODUCTION_VERSIONS")
    status, data = await bob.call("DELETE", f"{MLFLOW}/registered-models/delete",
                                  {"name": "model"})
    assert (status, data) == (403, denied(
        "bob", "CAN_MANAGE_PRODUCTION_VERSIONS", "deleting it", "CAN_MANAGE"))


async def test_a_production_manager_may_not_delete_a_version(ann, bob):
    await anns_model(ann, bob, "CAN_MANAGE_PRODUCTION_VERSIONS")
    status, data = await bob.call("DELETE", f"{MLFLOW}/model-versions/delete",
                                  {"name": "model", "version": "1"})
    assert (status, data) == (403, denied(
        "bob", "CAN_MANAGE_PRODUCTION_VERSIONS", "deleting a version", "CAN_MANAGE"))


async def test_a_production_manager_may_not_rename_the_model(ann, bob):
    await anns_model(ann, bob, "CAN_MANAGE_PRODUCTION_VERSIONS")
    status, data = await bob.post("registered-models/rename",
                                  {"name": "model", "new_name": "mine"})
    assert (status, data) == (403, denied(
        "bob", "CAN_MANAGE_PRODUCTION_VERSIONS", "renaming it", "CAN_MANAGE"))


async def test_a_manager_may_grant_permissions(ann, bob):
    await anns_model(ann, bob, "CAN_MANAGE")
    status, _ = await bob.call("PATCH", f"{PERMISSIONS}/{await model_id(ann)}", {
        "access_control_list": [{"user_name": "olivia", "permission_level": "CAN_READ"}]})
    assert status == 200


async def test_a_reader_may_see_the_access_list_but_not_replace_it(ann, bob):
    await anns_model(ann)
    identifier = await model_id(ann)
    status, _ = await bob.call("GET", f"{PERMISSIONS}/{identifier}")
    assert status == 200
    status, data = await bob.call("PUT", f"{PERMISSIONS}/{identifier}",
                                  {"access_control_list": []})
    assert (status, data) == (403, denied("bob", "CAN_READ", "granting permissions",
                                          "CAN_MANAGE"))


async def test_the_registry_admin_manages_every_model(ann, olivia):
    await anns_model(ann)
    status, _ = await olivia.post("registered-models/rename",
                                  {"name": "model", "new_name": "renamed"})
    assert status == 200


# -- approving one's own request -------------------------------------------------------------


async def test_the_requester_may_not_approve_their_own_production_request(ann):
    await anns_model(ann)
    await request_transition(ann, "Production")
    status, data = await approve(ann, "Production")
    assert status == 403
    assert data == {"error_code": "PERMISSION_DENIED", "message":
                    "User 'ann' requested this transition to Production and cannot approve "
                    "it: Production requests need another approver."}
    assert await stage_of(ann) == "None"


async def test_the_requester_may_approve_their_own_staging_request(ann):
    await anns_model(ann)
    await request_transition(ann, "Staging")
    status, _ = await approve(ann, "Staging")
    assert status == 200


async def test_the_admin_may_approve_someone_elses_production_request(ann, olivia):
    await anns_model(ann)
    await request_transition(ann, "Production")
    status, _ = await approve(olivia, "Production")
    assert status == 200
    assert await stage_of(ann) == "Production"


# -- cancelling and comments between people ---------------------------------------------------


async def test_someone_else_may_not_cancel_a_request(ann, bob):
    await anns_model(ann, bob, "CAN_MANAGE_PRODUCTION_VERSIONS")
    await request_transition(ann, "Staging")
    status, data = await cancel(bob, "Staging", creator="ann")
    assert (status, data["error_code"]) == (403, "PERMISSION_DENIED")
    assert data["message"].startswith("Only 'ann' (who made it) or a manager of 'model'")


async def test_a_manager_may_cancel_someone_elses_request(ann, bob):
    await anns_model(ann, bob, "CAN_EDIT")
    await request_transition(bob, "Staging")
    status, data = await cancel(ann, "Staging", creator="bob")
    assert (status, data["activity"]["user_id"]) == (200, "ann")


async def test_someone_else_may_not_edit_a_comment(ann, bob):
    await anns_model(ann)
    created = await comment(ann, "mine")
    status, data = await bob.call("PATCH", f"{COMMENTS}/update",
                                  {"id": created["id"], "comment": "yours"})
    assert status == 403
    assert data == {"error_code": "PERMISSION_DENIED",
                    "message": f"Only 'ann' can edit comment {created['id']}."}


async def test_a_reader_may_not_delete_someone_elses_comment(ann, bob):
    await anns_model(ann)
    created = await comment(ann, "mine")
    status, data = await bob.call("DELETE", f"{COMMENTS}/delete", params={"id": created["id"]})
    assert (status, data["error_code"]) == (403, "PERMISSION_DENIED")
    assert [c["comment"] for c in await comments(ann)] == ["mine"]


async def test_the_admin_may_delete_someone_elses_comment(ann, olivia):
    await anns_model(ann)
    created = await comment(ann, "mine")
    status, _ = await olivia.call("DELETE", f"{COMMENTS}/delete", params={"id": created["id"]})
    assert status == 200
    assert await comments(ann) == []


# -- what each caller is offered -------------------------------------------------------------


async def test_request_actions_differ_per_caller(ann, bob, olivia):
    await anns_model(ann, bob, "CAN_MANAGE_PRODUCTION_VERSIONS")
    await request_transition(ann, "Production")
    offered = {name: (await open_requests(api, name="model"))[0]["available_actions"]
               for name, api in (("ann", ann), ("bob", bob), ("olivia", olivia))}
    assert offered == {
        "ann": ["REJECT_TRANSITION_REQUEST", "CANCEL_TRANSITION_REQUEST"],
        "bob": ["APPROVE_TRANSITION_REQUEST", "REJECT_TRANSITION_REQUEST"],
        "olivia": ["APPROVE_TRANSITION_REQUEST", "REJECT_TRANSITION_REQUEST"],
    }


async def test_a_reader_is_offered_no_request_actions(ann, bob):
    await anns_model(ann)
    await request_transition(ann, "Staging")
    assert (await open_requests(bob, name="model"))[0]["available_actions"] == []


async def test_comment_actions_differ_per_caller(ann, bob, olivia):
    await anns_model(ann)
    await comment(ann, "mine")
    offered = {name: (await comments(api))[0]["available_actions"]
               for name, api in (("ann", ann), ("bob", bob), ("olivia", olivia))}
    assert offered == {"ann": ["EDIT_COMMENT", "DELETE_COMMENT"], "bob": [],
                       "olivia": ["DELETE_COMMENT"]}


async def test_databricks_get_reports_each_callers_level(ann, bob, olivia):
    await anns_model(ann, bob, "CAN_EDIT")
    levels = {}
    for name, api in (("ann", ann), ("bob", bob), ("olivia", olivia)):
        data = await api.ok("GET", f"{MLFLOW}/databricks/registered-models/get",
                            params={"name": "model"})
        levels[name] = data["registered_model_databricks"]["permission_level"]
    assert levels == {"ann": "CAN_MANAGE", "bob": "CAN_EDIT", "olivia": "CAN_MANAGE"}


# -- approvals at the same moment ------------------------------------------------------------


async def test_two_simultaneous_approvals_of_one_request_let_exactly_one_through(ann, bob,
                                                                                  olivia):
    await anns_model(ann, bob, "CAN_MANAGE_PRODUCTION_VERSIONS", versions=2)
    await request_transition(ann, "Production")
    answers = await asyncio.gather(approve(bob, "Production"), approve(olivia, "Production"))
    assert sorted(status for status, _ in answers) == [200, 409]
    [conflict] = [data for status, data in answers if status == 409]
    assert conflict["error_code"] == "RESOURCE_CONFLICT"
    assert "is no longer open: it was approved by" in conflict["message"]


async def test_two_simultaneous_approvals_record_one_approval(ann, bob, olivia):
    await anns_model(ann, bob, "CAN_MANAGE_PRODUCTION_VERSIONS", versions=2)
    await request_transition(ann, "Production")
    await asyncio.gather(approve(bob, "Production"), approve(olivia, "Production"))
    assert (await activity_types(ann)).count("APPROVED_REQUEST") == 1
    assert await stage_of(ann, "1") == "Production"


async def test_simultaneous_approvals_with_archiving_leave_one_version_in_production(
        ann, bob, olivia):
    await anns_model(ann, bob, "CAN_MANAGE_PRODUCTION_VERSIONS", versions=2)
    await request_transition(ann, "Production", version="1")
    await request_transition(ann, "Production", version="2")
    answers = await asyncio.gather(
        approve(bob, "Production", version="1", archive_existing_versions=True),
        approve(olivia, "Production", version="2", archive_existing_versions=True))
    assert [status for status, _ in answers] == [200, 200]
    data = await ann.ok("GET", f"{MLFLOW}/model-versions/search",
                        params={"filter": "name = 'model' AND current_stage = 'Production'"})
    assert len(data["model_versions"]) == 1
