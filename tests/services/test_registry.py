"""The registry service: MLflow's registry rules plus governance, on a real store."""

from __future__ import annotations

import threading

import pytest

from labtrack.entities import (
    ActivityAction,
    ActivityType,
    ModelStage,
    PermissionLevel,
    RequestStatus,
)
from labtrack.errors import InvalidParameterValue, ResourceAlreadyExists, ResourceDoesNotExist
from labtrack.services.permissions import PermissionDenied, RegistrySettings
from labtrack.services.registry import RegistryService, RequestConflict

OWNER = "olivia"


@pytest.fixture
def registry(service):
    return RegistryService(service, RegistrySettings())


@pytest.fixture
def model(registry, service):
    registry.create_registered_model("forecaster", {"team": "energy"}, "Plant load model",
                                     user=OWNER)
    run = service.create_run("0")
    for _ in range(3):
        registry.create_model_version("forecaster", f"{run.info.artifact_uri}/model",
                                      run.info.run_id, user=OWNER)
    return "forecaster"


def stages(registry, name):
    versions = registry.search_model_versions(f"name = '{name}'", user=OWNER)
    return {v.version: str(v.current_stage) for v in versions}


def test_registered_model_lifecycle(registry):
    created = registry.create_registered_model("m", {"k": "v"}, "first", user=OWNER)
    assert (created.name, created.user_id, created.tags, created.description) == (
        "m", OWNER, {"k": "v"}, "first")
    with pytest.raises(ResourceAlreadyExists, match=r"Registered Model \(name=m\) already"):
        registry.create_registered_model("m", user=OWNER)
    registry.update_registered_model("m", "second", user=OWNER)
    registry.set_registered_model_tag("m", "k", "w", user=OWNER)
    renamed = registry.rename_registered_model("m", "m2", user=OWNER)
    assert (renamed.name, renamed.description, renamed.tags) == ("m2", "second", {"k": "w"})
    with pytest.raises(ResourceDoesNotExist, match="name=m not found"):
        registry.get_registered_model("m", user=OWNER)
    registry.delete_registered_model_tag("m2", "k", user=OWNER)
    registry.delete_registered_model("m2", user=OWNER)
    with pytest.raises(ResourceDoesNotExist):
        registry.get_registered_model("m2", user=OWNER)
    for bad in ("", "a/b", "a:b"):
        with pytest.raises(InvalidParameterValue):
            registry.create_registered_model(bad, user=OWNER)


def test_search_registered_models(registry):
    for name in ("plant-1", "plant-2", "factory-1"):
        registry.create_registered_model(name, {"site": name.split("-")[0]}, user=OWNER)
    names = lambda **kw: [m.name for m in registry.search_registered_models(  # noqa: E731
        user=OWNER, **kw)]
    assert names() == ["factory-1", "plant-1", "plant-2"]
    assert names(filter_string="name LIKE 'plant%'", order_by=["name DESC"]) == [
        "plant-2", "plant-1"]
    assert names(filter_string="tags.site = 'factory'") == ["factory-1"]
    assert names(filter_string="name IN ('plant-2', 'factory-1')") == ["factory-1", "plant-2"]
    first = registry.search_registered_models(max_results=2, user=OWNER)
    rest = registry.search_registered_models(max_results=2, page_token=first.token, user=OWNER)
    assert [m.name for m in first] + [m.name for m in rest] == names()
    assert rest.token is None


def test_versions_are_numbered_and_searchable(registry, model, service):
    assert stages(registry, model) == {"1": "None", "2": "None", "3": "None"}
    version = registry.get_model_version(model, "2", user=OWNER)
    assert version.source.endswith("/model") and version.run_id
    registry.update_model_version(model, "2", "better", user=OWNER)
    registry.set_model_version_tag(model, "2", "validated", "yes", user=OWNER)
    found = registry.search_model_versions("tags.validated = 'yes'", user=OWNER)
    assert [(v.version, v.description) for v in found] == [("2", "better")]
    assert [v.version for v in registry.search_model_versions(
        f"name = '{model}' AND version_number >= 2", order_by=["version_number ASC"],
        user=OWNER)] == ["2", "3"]
    run_id = version.run_id
    assert len(registry.search_model_versions(f"run_id = '{run_id}'", user=OWNER)) == 3
    registry.delete_model_version_tag(model, "2", "validated", user=OWNER)
    registry.delete_model_version(model, "3", user=OWNER)
    assert stages(registry, model) == {"1": "None", "2": "None"}
    created = registry.create_model_version(model, "/models/x", user=OWNER)
    assert created.version == "4"  # numbers are never reused
    assert registry.get_model_version_download_uri(model, "4", user=OWNER) == "/models/x"


def test_stages_latest_versions_and_archiving(registry, model):
    registry.transition_stage(model, "1", "Production", user=OWNER)
    registry.transition_stage(model, "2", "staging", user=OWNER)
    latest = {str(v.current_stage): v.version
              for v in registry.get_latest_versions(model, user=OWNER)}
    assert latest == {"None": "3", "Production": "1", "Staging": "2"}
    assert [v.version for v in registry.get_latest_versions(model, ["Production"],
                                                            user=OWNER)] == ["1"]
    registry.transition_stage(model, "3", "Production", user=OWNER)  # without archiving
    assert stages(registry, model) == {"1": "Production", "2": "Staging", "3": "Production"}
    registry.transition_stage(model, "2", "Production", archive_existing_versions=True,
                              user=OWNER)
    assert stages(registry, model) == {"1": "Archived", "2": "Production", "3": "Archived"}
    model_entity = registry.get_registered_model(model, user=OWNER)
    assert {str(v.current_stage): v.version for v in model_entity.latest_versions} == {
        "Archived": "3", "Production": "2"}
    with pytest.raises(InvalidParameterValue, match="Invalid Model Version stage: Bogus"):
        registry.transition_stage(model, "1", "Bogus", user=OWNER)


def test_aliases(registry, model):
    registry.set_alias(model, "champion", "1", user=OWNER)
    registry.set_alias(model, "champion", "2", user=OWNER)
    assert registry.get_model_version_by_alias(model, "champion", user=OWNER).version == "2"
    assert registry.get_model_version(model, "2", user=OWNER).aliases == ("champion",)
    assert registry.get_registered_model(model, user=OWNER).aliases == {"champion": "2"}
    registry.delete_alias(model, "champion", user=OWNER)
    registry.delete_alias(model, "champion", user=OWNER)  # absent: a no-op, as in MLflow
    with pytest.raises(InvalidParameterValue, match="alias champion not found"):
        registry.get_model_version_by_alias(model, "champion", user=OWNER)
    for bad in ("latest", "v3", "has space", "x" * 256):
        with pytest.raises(InvalidParameterValue):
            registry.set_alias(model, bad, "1", user=OWNER)
    activities = [a.system_comment for a in registry.list_activities(model, user=OWNER)
                  if a.activity_type in (ActivityType.ALIAS_SET, ActivityType.ALIAS_DELETED)]
    assert activities == [
        "Alias 'champion' removed from version 2.",
        "Alias 'champion' now points to version 2 (was version 1).",
        "Alias 'champion' now points to version 1."]


def test_the_governance_story(registry, model):
    """An editor requests; she cannot approve; a production manager rejects, then approves
    the second request and archives the current Production version."""
    registry.transition_stage(model, "1", "Production", user=OWNER)
    registry.set_permissions(model, [("ann", "CAN_EDIT"),
                                     ("bob", "CAN_MANAGE_PRODUCTION_VERSIONS")], user=OWNER)
    request = registry.create_transition_request(model, "2", "Production", "Ready to ship",
                                                 user="ann")
    assert request.available_actions == (ActivityAction.CANCEL_TRANSITION_REQUEST,)
    with pytest.raises(PermissionDenied, match="needs CAN_MANAGE_PRODUCTION_VERSIONS"):
        registry.approve_transition_request(model, "2", "Production", user="ann")
    [seen_by_bob] = registry.list_transition_requests(user="bob")
    assert seen_by_bob.available_actions == (ActivityAction.APPROVE_TRANSITION_REQUEST,
                                             ActivityAction.REJECT_TRANSITION_REQUEST)
    registry.reject_transition_request(model, "2", "Production", "Backtest on 2025 first",
                                       user="bob")
    assert registry.list_transition_requests(user="bob") == []
    registry.create_comment(model, "2", "Backtest done, MAPE 4.1%", user="ann")
    registry.create_transition_request(model, "2", "Production", "Again", user="ann")
    approval = registry.approve_transition_request(model, "2", "Production", True,
                                                   "Ship it", user="bob")
    assert (approval.activity_type, approval.user_id, approval.comment) == (
        ActivityType.APPROVED_REQUEST, "bob", "Ship it")
    assert stages(registry, model) == {"1": "Archived", "2": "Production", "3": "None"}
    trail = [(str(a.activity_type), a.user_id, a.version, a.from_stage and str(a.from_stage),
              a.to_stage and str(a.to_stage)) for a in registry.list_activities(
                  model, user=OWNER)]
    assert trail[:6] == [
        ("SYSTEM_TRANSITION", "bob", "1", "Production", "Archived"),
        ("APPROVED_REQUEST", "bob", "2", "None", "Production"),
        ("REQUESTED_TRANSITION", "ann", "2", "None", "Production"),
        ("NEW_COMMENT", "ann", "2", None, None),
        ("REJECTED_REQUEST", "bob", "2", "None", "Production"),
        ("REQUESTED_TRANSITION", "ann", "2", "None", "Production"),
    ]
    version_trail = registry.list_activities(model, "2", user="ann")
    assert all(a.version == "2" for a in version_trail)
    times = [a.creation_timestamp for a in registry.list_activities(model, user=OWNER)]
    assert times == sorted(times, reverse=True)


def test_requester_cannot_approve_production_but_may_approve_staging(registry, model):
    registry.set_permissions(model, [("carl", "CAN_MANAGE_PRODUCTION_VERSIONS")], user=OWNER)
    registry.create_transition_request(model, "1", "Production", user="carl")
    with pytest.raises(PermissionDenied, match="cannot approve it"):
        registry.approve_transition_request(model, "1", "Production", user="carl")
    registry.create_transition_request(model, "2", "Staging", user="carl")
    registry.approve_transition_request(model, "2", "Staging", user="carl")
    assert stages(registry, model)["2"] == "Staging"


def test_cancelling_requests(registry, model):
    registry.set_permissions(model, [("ann", "CAN_EDIT"), ("dan", "CAN_EDIT")], user=OWNER)
    registry.create_transition_request(model, "1", "Staging", user="ann")
    with pytest.raises(ResourceDoesNotExist, match="No open request"):
        registry.cancel_transition_request(model, "1", "Staging", user="dan")
    with pytest.raises(PermissionDenied, match="can cancel"):
        registry.cancel_transition_request(model, "1", "Staging", creator="ann", user="dan")
    activity = registry.cancel_transition_request(model, "1", "Staging", user="ann")
    assert activity.activity_type == ActivityType.CANCELLED_REQUEST
    with pytest.raises(RequestConflict, match="no longer open: it was cancelled by 'ann'"):
        registry.approve_transition_request(model, "1", "Staging", user=OWNER)
    with pytest.raises(InvalidParameterValue, match="already in None"):
        registry.create_transition_request(model, "1", "None", user="ann")


def _approve_concurrently(registry, model, version, request_id, users):
    """Start one approval per user at the same instant; returns "ok" or the conflict each."""
    barrier = threading.Barrier(len(users))
    outcomes: list[object] = []

    def approve(user):
        barrier.wait()
        try:
            registry.approve_transition_request(model, version, "Production", True,
                                                request_id=request_id, user=user)
            outcomes.append("ok")
        except RequestConflict as conflict:
            outcomes.append(conflict)

    threads = [threading.Thread(target=approve, args=(user,)) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_two_approvals_at_once_exactly_one_succeeds(registry, model):
    registry.set_permissions(model, [("bob", "CAN_MANAGE_PRODUCTION_VERSIONS"),
                                     ("eve", "CAN_MANAGE_PRODUCTION_VERSIONS")], user=OWNER)
    registry.transition_stage(model, "1", "Production", user=OWNER)
    for attempt in range(5):
        version = str(2 + attempt % 2)
        request = registry.create_transition_request(model, version, "Production",
                                                     user=OWNER)
        outcomes = _approve_concurrently(registry, model, version, request.id, ("bob", "eve"))
        assert outcomes.count("ok") == 1, outcomes
        [conflict] = [o for o in outcomes if o != "ok"]
        assert conflict.error_code == "RESOURCE_CONFLICT"
        assert "no longer open: it was approved by" in conflict.message
        production = [v for v, s in stages(registry, model).items() if s == "Production"]
        assert production == [version]
        registry.transition_stage(model, version, "None", user=OWNER)
        registry.transition_stage(model, "1", "Production", user=OWNER)


# Every registry write, the level it needs (None: rules other than the level, tested apart).
WRITES = {
    "update_description": PermissionLevel.CAN_EDIT,
    "set_model_tag": PermissionLevel.CAN_EDIT,
    "set_version_tag": PermissionLevel.CAN_EDIT,
    "update_version_description": PermissionLevel.CAN_EDIT,
    "create_version": PermissionLevel.CAN_EDIT,
    "request_transition": PermissionLevel.CAN_EDIT,
    "comment": PermissionLevel.CAN_READ,
    "transition_to_staging": PermissionLevel.CAN_MANAGE_STAGING_VERSIONS,
    "transition_to_archived": PermissionLevel.CAN_MANAGE_STAGING_VERSIONS,
    "approve_staging_request": PermissionLevel.CAN_MANAGE_STAGING_VERSIONS,
    "reject_staging_request": PermissionLevel.CAN_MANAGE_STAGING_VERSIONS,
    "set_alias": PermissionLevel.CAN_MANAGE_STAGING_VERSIONS,
    "transition_to_production": PermissionLevel.CAN_MANAGE_PRODUCTION_VERSIONS,
    "transition_out_of_production": PermissionLevel.CAN_MANAGE_PRODUCTION_VERSIONS,
    "approve_production_request": PermissionLevel.CAN_MANAGE_PRODUCTION_VERSIONS,
    "reject_production_request": PermissionLevel.CAN_MANAGE_PRODUCTION_VERSIONS,
    "delete_version": PermissionLevel.CAN_MANAGE,
    "rename_model": PermissionLevel.CAN_MANAGE,
    "set_permissions": PermissionLevel.CAN_MANAGE,
    "create_model_webhook": PermissionLevel.CAN_MANAGE,
    "delete_model": PermissionLevel.CAN_MANAGE,
}


def _perform(registry, write, user):
    m = "matrix"
    calls = {
        "update_description": lambda: registry.update_registered_model(m, "d", user=user),
        "set_model_tag": lambda: registry.set_registered_model_tag(m, "k", "v", user=user),
        "set_version_tag": lambda: registry.set_model_version_tag(m, "1", "k", "v", user=user),
        "update_version_description": lambda: registry.update_model_version(m, "1", "d",
                                                                            user=user),
        "create_version": lambda: registry.create_model_version(m, "/x", user=user),
        "request_transition": lambda: registry.create_transition_request(m, "1", "Staging",
                                                                         user=user),
        "comment": lambda: registry.create_comment(m, "1", "hi", user=user),
        "transition_to_staging": lambda: registry.transition_stage(m, "1", "Staging", user=user),
        "transition_to_archived": lambda: registry.transition_stage(m, "1", "Archived",
                                                                    user=user),
        "approve_staging_request": lambda: registry.approve_transition_request(
            m, "2", "Staging", user=user),
        "reject_staging_request": lambda: registry.reject_transition_request(
            m, "2", "Staging", user=user),
        "set_alias": lambda: registry.set_alias(m, "a", "1", user=user),
        "transition_to_production": lambda: registry.transition_stage(m, "1", "Production",
                                                                      user=user),
        "transition_out_of_production": lambda: registry.transition_stage(m, "3", "Archived",
                                                                          user=user),
        "approve_production_request": lambda: registry.approve_transition_request(
            m, "1", "Production", user=user),
        "reject_production_request": lambda: registry.reject_transition_request(
            m, "1", "Production", user=user),
        "delete_version": lambda: registry.delete_model_version(m, "1", user=user),
        "rename_model": lambda: registry.rename_registered_model(m, "renamed", user=user),
        "set_permissions": lambda: registry.set_permissions(m, [("z", "CAN_READ")], user=user),
        "create_model_webhook": lambda: registry.create_webhook(
            ["MODEL_VERSION_CREATED"], "https://ci.example.com/hook", model_name=m, user=user),
        "delete_model": lambda: registry.delete_registered_model(m, user=user),
    }
    calls[write]()


@pytest.mark.parametrize("level", [None, *PermissionLevel], ids=str)
@pytest.mark.parametrize("write", sorted(WRITES))
def test_permission_matrix(service, write, level):
    registry = RegistryService(service, RegistrySettings(default_permission=None))
    registry.create_registered_model("matrix", user=OWNER)
    for _ in range(3):
        registry.create_model_version("matrix", "/x", user=OWNER)
    registry.transition_stage("matrix", "3", "Production", user=OWNER)
    registry.create_transition_request("matrix", "1", "Production", user=OWNER)
    registry.create_transition_request("matrix", "2", "Staging", user=OWNER)
    if level is not None:
        registry.set_permissions("matrix", [("user", level)], user=OWNER)
    allowed = level is not None and level >= WRITES[write]
    if allowed:
        _perform(registry, write, "user")
    else:
        with pytest.raises(PermissionDenied) as denied:
            _perform(registry, write, "user")
        assert denied.value.error_code == "PERMISSION_DENIED"
        assert "'user'" in denied.value.message


def test_reading_needs_at_least_read_when_the_default_is_none(service):
    registry = RegistryService(service, RegistrySettings(default_permission=None))
    registry.create_registered_model("private", user=OWNER)
    with pytest.raises(PermissionDenied, match="has no permission"):
        registry.get_registered_model("private", user="stranger")
    assert list(registry.search_registered_models(user="stranger")) == []
    assert [m.name for m in registry.search_registered_models(user=OWNER)] == ["private"]


def test_admins_manage_everything(service):
    registry = RegistryService(service, RegistrySettings(default_permission=None,
                                                         admins=frozenset({"root"})))
    registry.create_registered_model("m", user=OWNER)
    registry.delete_registered_model("m", user="root")
    with pytest.raises(PermissionDenied, match="registry admins only"):
        registry.create_webhook(["REGISTERED_MODEL_CREATED"], "https://x.example", user=OWNER)
    registry.create_webhook(["REGISTERED_MODEL_CREATED"], "https://x.example", user="root")


def test_comments(registry, model):
    registry.set_permissions(model, [("ann", "CAN_READ")], user=OWNER)
    comment = registry.create_comment(model, "1", "Looks good", user="ann")
    assert comment.available_actions == (ActivityAction.EDIT_COMMENT,
                                         ActivityAction.DELETE_COMMENT)
    [as_owner] = registry.list_comments(model, "1", user=OWNER)
    assert as_owner.available_actions == (ActivityAction.DELETE_COMMENT,)
    with pytest.raises(PermissionDenied, match="Only 'ann' can edit"):
        registry.update_comment(comment.id, "edited", user=OWNER)
    assert registry.update_comment(comment.id, "Looks great", user="ann").comment == (
        "Looks great")
    registry.delete_comment(comment.id, user=OWNER)  # managers moderate
    assert registry.list_comments(model, "1", user=OWNER) == []
    with pytest.raises(InvalidParameterValue, match="'comment'"):
        registry.create_comment(model, "1", "   ", user="ann")
    kinds = [a.activity_type for a in registry.list_activities(model, "1", user=OWNER)][:3]
    assert kinds == [ActivityType.COMMENT_DELETED, ActivityType.COMMENT_EDITED,
                     ActivityType.NEW_COMMENT]


def test_activities_are_paged_newest_first(registry, model):
    for i in range(7):
        registry.set_alias(model, f"a{i}", "1", user=OWNER)
    everything = list(registry.list_activities(model, user=OWNER, max_results=1000))
    pages, token = [], None
    while True:
        page = registry.list_activities(model, max_results=3, page_token=token, user=OWNER)
        pages.extend(page)
        token = page.token
        if token is None:
            break
    assert [a.id for a in pages] == [a.id for a in everything]
    assert [int(a.id) for a in everything] == sorted((int(a.id) for a in everything),
                                                     reverse=True)


def test_deleting_a_model_keeps_its_history_but_drops_the_rest(registry, model):
    registry.create_transition_request(model, "1", "Staging", user=OWNER)
    registry.delete_registered_model(model, user=OWNER)
    assert registry.list_transition_requests(user=OWNER) == []
    assert registry.store.list_transition_requests(status=None) == []
    rows = registry.store._fetchone(
        "SELECT count(*) FROM activities WHERE model_name = ?", (model,))[0]
    assert rows >= 5


def test_request_status_and_versions_stay_consistent(registry, model):
    request = registry.create_transition_request(model, "1", "Staging", user=OWNER)
    registry.approve_transition_request(model, "1", "Staging", user=OWNER)
    closed = registry.store.get_transition_request(request.id)
    assert (closed.status, closed.resolved_by) == (RequestStatus.APPROVED, OWNER)
    assert registry.get_model_version(model, "1", user=OWNER).current_stage == (
        ModelStage.STAGING)
