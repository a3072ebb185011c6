"""The registry through TrackingClient and the fluent API on a local store."""

from __future__ import annotations

import labtrack
from labtrack.entities import ActivityType, ModelStage


def test_register_model_from_a_run_and_walk_it_to_production(fluent_uri, tmp_path):
    with labtrack.start_run() as run:
        labtrack.log_text("weights", "model/weights.txt")
    version = labtrack.register_model(f"runs:/{run.run_id}/model", "demand", {"k": "v"})
    assert (version.name, version.version, version.run_id) == ("demand", "1", run.run_id)
    assert version.source == f"{run.info.artifact_uri}/model"
    assert version.tags == {"k": "v"}
    client = labtrack.TrackingClient(fluent_uri)
    again = client.register_model(f"runs:/{run.run_id}/model", "demand")
    assert again.version == "2"
    client.transition_model_version_stage("demand", 1, "Production")
    request = client.request_transition("demand", 2, "Production", "better backtest")
    assert client.list_transition_requests()[0].id == request.id
    client.cancel_transition_request("demand", 2, "Production", "changed my mind")
    client.transition_model_version_stage("demand", 2, "Production",
                                          archive_existing_versions=True, comment="ship")
    assert {v.version: v.current_stage for v in client.get_latest_versions("demand")} == {
        "1": ModelStage.ARCHIVED, "2": ModelStage.PRODUCTION}
    client.set_registered_model_alias("demand", "champion", 2)
    assert client.get_model_version_by_alias("demand", "champion").version == "2"
    comment = client.create_comment("demand", 2, "Deployed to plant 7")
    assert client.list_comments("demand", 2) == [comment]
    kinds = [a.activity_type for a in client.get_activities("demand", 2)]
    assert kinds[:4] == [ActivityType.NEW_COMMENT, ActivityType.ALIAS_SET,
                         ActivityType.APPLIED_TRANSITION, ActivityType.CANCELLED_REQUEST]
    download = client.get_model_version_download_uri("demand", 2)
    assert download.endswith("/model")


def test_register_model_from_a_local_path(client, tmp_path):
    folder = tmp_path / "exported"
    folder.mkdir()
    version = client.register_model(str(folder), "local-model")
    assert version.source == folder.as_uri()
    found = client.search_model_versions("name = 'local-model'")
    assert [v.version for v in found] == ["1"]
    assert client.search_registered_models("name LIKE 'local%'")[0].name == "local-model"


def test_permissions_round_trip(client):
    client.create_registered_model("shared")
    client.set_permissions("shared", {"ann": "CAN_EDIT"})
    levels = {p.user_name: str(p.permission_level) for p in client.get_permissions("shared")}
    assert levels["ann"] == "CAN_EDIT"
    assert "CAN_MANAGE" in levels.values()
