"""Registry webhooks over HTTP: the Databricks registry's registry-webhooks endpoints and
labtrack's delivery listing.

Management (create/list/update/delete) runs under jupyter_server, whose user is a registry
admin. Deliveries run on the standalone server (ann, bob, olivia the admin) against a real
receiver on 127.0.0.1, the one internal address its allowlist opens; tests wait for the
dispatcher with ``context.webhooks.wait_idle()``.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from labtrack import webhooks
from tests.server.conftest import LABTRACK, MLFLOW, MODEL_SOURCE

HOOKS = f"{MLFLOW}/registry-webhooks"
DELIVERIES = f"{LABTRACK}/registry-webhooks/deliveries"
SECRET = "s3cret-value"
URL = "https://hooks.example.com/registry"
ALL_EVENTS = [
    "MODEL_VERSION_CREATED", "MODEL_VERSION_TRANSITIONED_STAGE",
    "MODEL_VERSION_TRANSITIONED_TO_STAGING", "MODEL_VERSION_TRANSITIONED_TO_PRODUCTION",
    "MODEL_VERSION_TRANSITIONED_TO_ARCHIVED", "TRANSITION_REQUEST_CREATED",
    "TRANSITION_REQUEST_TO_STAGING_CREATED", "TRANSITION_REQUEST_TO_PRODUCTION_CREATED",
    "TRANSITION_REQUEST_TO_ARCHIVED_CREATED", "COMMENT_CREATED", "REGISTERED_MODEL_CREATED",
    "MODEL_VERSION_TAG_SET",
]


class Receiver:
    """A webhook receiver on 127.0.0.1: records each POST, answering ``status``."""

    def __init__(self, status: int = 200):
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.status = status
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.received.append((dict(self.headers), body))
                self.send_response(receiver.status)
                self.end_headers()
                self.wfile.write(b"ok" if receiver.status == 200 else b"nope")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def payloads(self) -> list[dict]:
        return [json.loads(body) for _, body in self.received]

    def events(self) -> list[str]:
        return [payload["event"] for payload in self.payloads()]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


async def create_hook(api, events=("REGISTERED_MODEL_CREATED",), url: str = URL, **fields):
    spec = {"url": url, **fields.pop("spec", {})}
    return await api.post("registry-webhooks/create",
                          {"events": list(events), "http_url_spec": spec, **fields})


async def hook_id(api, *args, **kwargs) -> str:
    status, data = await create_hook(api, *args, **kwargs)
    assert status == 200, data
    return data["webhook"]["id"]


async def deliveries(api, webhook_id: str) -> list[dict]:
    return (await api.ok("GET", DELIVERIES, params={"id": webhook_id}))["deliveries"]


# == management (jupyter_server) ===========================================================


async def test_create_returns_the_webhook_in_the_databricks_shape(api):
    await api.create_registered_model("model")
    status, data = await create_hook(api, ["MODEL_VERSION_CREATED"], model_name="model",
                                     description="CI", spec={"secret": SECRET})
    assert status == 200
    hook = data["webhook"]
    assert hook == {
        "id": hook["id"],
        "events": ["MODEL_VERSION_CREATED"],
        "status": "ACTIVE",
        "creation_timestamp": hook["creation_timestamp"],
        "last_updated_timestamp": hook["creation_timestamp"],
        "description": "CI",
        "model_name": "model",
        "http_url_spec": {"url": URL, "enable_ssl_verification": True, "has_secret": True},
    }


async def test_create_never_returns_the_secret(api):
    reply = await api.request("POST", f"{HOOKS}/create", {
        "events": ["REGISTERED_MODEL_CREATED"], "http_url_spec": {"url": URL, "secret": SECRET}})
    assert reply.status == 200
    assert SECRET.encode() not in reply.body


async def test_list_never_returns_the_secret(api):
    await hook_id(api, spec={"secret": SECRET})
    reply = await api.request("GET", f"{HOOKS}/list")
    assert reply.status == 200 and len(reply.json["webhooks"]) == 1
    assert SECRET.encode() not in reply.body


async def test_update_never_returns_the_secret(api):
    identifier = await hook_id(api)
    reply = await api.request("PATCH", f"{HOOKS}/update",
                              {"id": identifier, "http_url_spec": {"secret": SECRET}})
    assert reply.status == 200
    assert reply.json["webhook"]["http_url_spec"]["has_secret"] is True
    assert SECRET.encode() not in reply.body


async def test_create_without_events_is_a_missing_parameter(api):
    status, data = await api.post("registry-webhooks/create", {"http_url_spec": {"url": URL}})
    assert (status, data["message"]) == (400, "Missing value for required parameter 'events'.")


async def test_create_with_an_unknown_event_is_refused(api):
    status, data = await create_hook(api, ["MODEL_DELETED"])
    assert (status, data["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert data["message"].startswith("Invalid webhook event 'MODEL_DELETED'")


async def test_create_without_an_http_url_spec_is_a_missing_parameter(api):
    status, data = await api.post("registry-webhooks/create",
                                  {"events": ["REGISTERED_MODEL_CREATED"]})
    assert (status, data["message"]) == (
        400, "Missing value for required parameter 'http_url_spec'.")


@pytest.mark.parametrize("spec", ["https://hooks.example.com", ["https://hooks.example.com"]])
async def test_create_with_an_http_url_spec_that_is_not_an_object_is_refused(api, spec):
    status, data = await api.post("registry-webhooks/create",
                                  {"events": ["REGISTERED_MODEL_CREATED"], "http_url_spec": spec})
    assert (status, data["error_code"]) == (400, "INVALID_PARAMETER_VALUE")


@pytest.mark.parametrize("url", ["ftp://hooks.example.com/x", "hooks.example.com/x", "http://"])
async def test_create_with_a_url_that_is_not_http_is_refused(api, url):
    status, data = await create_hook(api, url=url)
    assert (status, data["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert data["message"].startswith(f"Invalid webhook URL '{url}'")


async def test_create_with_an_unknown_status_is_refused(api):
    status, data = await create_hook(api, status="PAUSED")
    assert (status, data["message"]) == (400, "Invalid webhook status 'PAUSED'.")


async def test_create_for_an_unknown_model_is_404(api):
    status, data = await create_hook(api, model_name="nope")
    assert (status, data["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")


async def test_list_of_a_model_shows_only_its_webhooks(api):
    await api.create_registered_model("a")
    await api.create_registered_model("b")
    mine = await hook_id(api, model_name="a")
    await hook_id(api, model_name="b")
    await hook_id(api)
    data = await api.ok("GET", f"{HOOKS}/list", params={"model_name": "a"})
    assert [w["id"] for w in data["webhooks"]] == [mine]


async def test_list_without_a_model_shows_the_registry_wide_webhooks(api):
    await api.create_registered_model("a")
    await hook_id(api, model_name="a")
    registry_wide = await hook_id(api)
    data = await api.ok("GET", f"{HOOKS}/list")
    assert [w["id"] for w in data["webhooks"]] == [registry_wide]


async def test_list_filters_by_event(api):
    await hook_id(api, ["REGISTERED_MODEL_CREATED"])
    commented = await hook_id(api, ["COMMENT_CREATED", "MODEL_VERSION_CREATED"])
    data = await api.ok("GET", f"{HOOKS}/list", params={"events": "COMMENT_CREATED"})
    assert [w["id"] for w in data["webhooks"]] == [commented]


async def test_update_changes_events_status_and_description(api):
    identifier = await hook_id(api)
    status, data = await api.call("PATCH", f"{HOOKS}/update", {
        "id": identifier, "events": ["COMMENT_CREATED"], "status": "DISABLED",
        "description": "paused"})
    assert status == 200
    hook = data["webhook"]
    assert (hook["events"], hook["status"], hook["description"]) == (
        ["COMMENT_CREATED"], "DISABLED", "paused")


async def test_update_changes_the_url(api):
    identifier = await hook_id(api)
    status, data = await api.call("PATCH", f"{HOOKS}/update", {
        "id": identifier, "http_url_spec": {"url": "https://other.example.com/x"}})
    assert (status, data["webhook"]["http_url_spec"]["url"]) == (
        200, "https://other.example.com/x")


async def test_update_to_a_bad_url_is_refused(api):
    identifier = await hook_id(api)
    status, data = await api.call("PATCH", f"{HOOKS}/update", {
        "id": identifier, "http_url_spec": {"url": "file:///etc/passwd"}})
    assert (status, data["error_code"]) == (400, "INVALID_PARAMETER_VALUE")


async def test_update_with_an_http_url_spec_that_is_not_an_object_is_refused(api):
    identifier = await hook_id(api)
    status, data = await api.call("PATCH", f"{HOOKS}/update",
                                  {"id": identifier, "http_url_spec": "https://x.example.com"})
    assert (status, data["error_code"]) == (400, "INVALID_PARAMETER_VALUE")


async def test_update_of_an_unknown_webhook_is_404(api):
    status, data = await api.call("PATCH", f"{HOOKS}/update", {"id": "nope", "status": "ACTIVE"})
    assert status == 404
    assert data == {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Webhook nope not found."}


async def test_delete_with_a_query_argument_removes_the_webhook(api):
    identifier = await hook_id(api)
    status, data = await api.call("DELETE", f"{HOOKS}/delete", params={"id": identifier})
    assert (status, data) == (200, {})
    assert (await api.ok("GET", f"{HOOKS}/list"))["webhooks"] == []


async def test_delete_of_an_unknown_webhook_is_404(api):
    status, data = await api.call("DELETE", f"{HOOKS}/delete", params={"id": "nope"})
    assert (status, data["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")


async def test_delete_without_an_id_is_a_missing_parameter(api):
    status, data = await api.call("DELETE", f"{HOOKS}/delete")
    assert (status, data["message"]) == (400, "Missing value for required parameter 'id'.")


async def test_deliveries_of_a_new_webhook_are_empty(api):
    identifier = await hook_id(api)
    status, data = await api.call("GET", DELIVERIES, params={"id": identifier})
    assert (status, data) == (200, {"deliveries": []})


async def test_deliveries_of_an_unknown_webhook_are_404(api):
    status, data = await api.call("GET", DELIVERIES, params={"id": "nope"})
    assert (status, data["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")


async def test_testing_an_unknown_webhook_is_404(api):
    status, data = await api.post("registry-webhooks/test", {"id": "nope"})
    assert (status, data["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")


# == deliveries (labtrack server, a real receiver) =========================================


@pytest.fixture
def ann(registry_server):
    return registry_server.as_user("ann")


@pytest.fixture
def bob(registry_server):
    return registry_server.as_user("bob")


@pytest.fixture
def olivia(registry_server):
    return registry_server.as_user("olivia")


@pytest.fixture
def wait_idle(registry_server):
    def wait():
        assert registry_server.context.webhooks.wait_idle(), "deliveries still in flight"
    return wait


# -- who may manage webhooks -----------------------------------------------------------------


async def test_only_admins_create_registry_wide_webhooks(bob):
    status, data = await create_hook(bob)
    assert status == 403
    assert data == {"error_code": "PERMISSION_DENIED", "message":
                    "User 'bob' cannot create registry-wide webhooks: registry admins only."}


async def test_a_model_webhook_needs_manage_on_the_model(ann, bob):
    await ann.create_registered_model("model")
    status, data = await create_hook(bob, model_name="model")
    assert (status, data["error_code"]) == (403, "PERMISSION_DENIED")
    assert data["message"].startswith("User 'bob' has CAN_READ on registered model 'model'")
    assert data["message"].endswith("needs CAN_MANAGE.")


async def test_a_models_manager_creates_its_webhooks(ann, receiver):
    await ann.create_registered_model("model")
    status, _ = await create_hook(ann, model_name="model", url=receiver.url)
    assert status == 200


async def test_someone_else_may_not_list_a_models_webhooks(ann, bob):
    await ann.create_registered_model("model")
    await hook_id(ann, model_name="model")
    status, data = await bob.call("GET", f"{HOOKS}/list", params={"model_name": "model"})
    assert (status, data["error_code"]) == (403, "PERMISSION_DENIED")


async def test_someone_else_may_not_read_a_webhooks_deliveries(ann, bob):
    await ann.create_registered_model("model")
    identifier = await hook_id(ann, model_name="model")
    status, data = await bob.call("GET", DELIVERIES, params={"id": identifier})
    assert (status, data["error_code"]) == (403, "PERMISSION_DENIED")


# -- events arrive once, signed --------------------------------------------------------------


async def drive_every_event(ann, bob) -> None:
    """One of each event, through the API, by ann and bob."""
    await ann.create_registered_model("model")                      # REGISTERED_MODEL_CREATED
    await ann.create_model_version("model")                         # MODEL_VERSION_CREATED
    await ann.post("model-versions/set-tag", {"name": "model", "version": "1", "key": "k",
                                              "value": "v"})        # MODEL_VERSION_TAG_SET
    await ann.post("comments/create", {"name": "model", "version": "1",
                                       "comment": "ready"})         # COMMENT_CREATED
    await ann.grant("model", "bob", "CAN_MANAGE_PRODUCTION_VERSIONS")
    await ann.post("transition-requests/create", {                  # TRANSITION_REQUEST_…
        "name": "model", "version": "1", "stage": "Production"})
    await bob.post("transition-requests/approve", {                 # MODEL_VERSION_TRANS…
        "name": "model", "version": "1", "stage": "Production",
        "archive_existing_versions": False})


EVERY_EVENT_ONCE = sorted([
    "REGISTERED_MODEL_CREATED", "MODEL_VERSION_CREATED", "MODEL_VERSION_TAG_SET",
    "COMMENT_CREATED", "TRANSITION_REQUEST_CREATED", "TRANSITION_REQUEST_TO_PRODUCTION_CREATED",
    "MODEL_VERSION_TRANSITIONED_STAGE", "MODEL_VERSION_TRANSITIONED_TO_PRODUCTION"])


async def test_every_event_arrives_exactly_once(ann, bob, olivia, receiver, wait_idle):
    await hook_id(olivia, ALL_EVENTS, url=receiver.url, spec={"secret": SECRET})
    await drive_every_event(ann, bob)
    wait_idle()
    assert sorted(receiver.events()) == EVERY_EVENT_ONCE


async def test_every_delivery_carries_a_valid_signature(ann, bob, olivia, receiver, wait_idle):
    await hook_id(olivia, ALL_EVENTS, url=receiver.url, spec={"secret": SECRET})
    await drive_every_event(ann, bob)
    wait_idle()
    assert receiver.received
    for headers, body in receiver.received:
        assert webhooks.verify_signature(SECRET, headers, body)
        assert not webhooks.verify_signature("another-secret", headers, body)


async def test_every_delivery_has_its_own_id(ann, bob, olivia, receiver, wait_idle):
    await hook_id(olivia, ALL_EVENTS, url=receiver.url, spec={"secret": SECRET})
    await drive_every_event(ann, bob)
    wait_idle()
    ids = [headers[webhooks.DELIVERY_ID_HEADER] for headers, _ in receiver.received]
    assert len(ids) == len(set(ids)) == len(EVERY_EVENT_ONCE)


async def test_a_delivery_names_its_event_in_a_header(ann, olivia, receiver, wait_idle):
    await hook_id(olivia, url=receiver.url)
    await ann.create_registered_model("model")
    wait_idle()
    [(headers, _)] = receiver.received
    assert headers[webhooks.EVENT_HEADER] == "REGISTERED_MODEL_CREATED"


async def test_a_webhook_without_a_secret_sends_no_signature(ann, olivia, receiver, wait_idle):
    await hook_id(olivia, url=receiver.url)
    await ann.create_registered_model("model")
    wait_idle()
    [(headers, _)] = receiver.received
    assert webhooks.SIGNATURE_HEADER not in headers


async def test_an_approval_payload_names_the_move_and_the_approver(ann, bob, olivia, receiver,
                                                                   wait_idle):
    await hook_id(olivia, ["MODEL_VERSION_TRANSITIONED_TO_PRODUCTION"], url=receiver.url)
    await drive_every_event(ann, bob)
    wait_idle()
    [payload] = receiver.payloads()
    assert (payload["model_name"], payload["version"], payload["from_stage"],
            payload["to_stage"], payload["user_id"]) == ("model", "1", "None", "Production",
                                                         "bob")


async def test_a_version_payload_shows_the_source_as_the_api_does(ann, olivia, receiver,
                                                                  wait_idle):
    await hook_id(olivia, ["MODEL_VERSION_CREATED"], url=receiver.url)
    await ann.create_registered_model("model")
    version = await ann.create_model_version("model", source=MODEL_SOURCE)
    wait_idle()
    [payload] = receiver.payloads()
    assert (payload["version"], payload["user_id"]) == ("1", "ann")
    assert payload["source"] == version["source"] == MODEL_SOURCE


async def test_archiving_sends_a_transition_for_the_archived_version(ann, olivia, receiver,
                                                                     wait_idle):
    await ann.create_registered_model("model")
    await ann.create_model_version("model")
    await ann.create_model_version("model")
    await ann.transition("model", "1", "Production")
    await hook_id(olivia, ["MODEL_VERSION_TRANSITIONED_TO_ARCHIVED"], url=receiver.url)
    await ann.transition("model", "2", "Production", archive_existing_versions=True)
    wait_idle()
    [payload] = receiver.payloads()
    assert (payload["version"], payload["from_stage"], payload["to_stage"]) == (
        "1", "Production", "Archived")


async def test_a_model_webhook_hears_only_its_model(ann, receiver, wait_idle):
    await ann.create_registered_model("mine")
    await ann.create_registered_model("other")
    await hook_id(ann, ["MODEL_VERSION_CREATED"], url=receiver.url, model_name="mine")
    await ann.create_model_version("other")
    await ann.create_model_version("mine")
    wait_idle()
    assert [p["model_name"] for p in receiver.payloads()] == ["mine"]


async def test_a_disabled_webhook_hears_nothing(ann, olivia, receiver, wait_idle):
    await hook_id(olivia, url=receiver.url, status="DISABLED")
    await ann.create_registered_model("model")
    wait_idle()
    assert receiver.received == []


async def test_a_test_mode_webhook_hears_no_real_event(ann, olivia, receiver, wait_idle):
    await hook_id(olivia, url=receiver.url, status="TEST_MODE")
    await ann.create_registered_model("model")
    wait_idle()
    assert receiver.received == []


async def test_deleting_a_model_deletes_its_webhooks(ann, olivia, receiver):
    await ann.create_registered_model("model")
    identifier = await hook_id(ann, url=receiver.url, model_name="model")
    await ann.call("DELETE", f"{MLFLOW}/registered-models/delete", {"name": "model"})
    status, data = await olivia.call("GET", DELIVERIES, params={"id": identifier})
    assert (status, data["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")


# -- the deliveries listing ------------------------------------------------------------------


async def test_deliveries_show_status_attempts_and_response(ann, olivia, receiver, wait_idle):
    identifier = await hook_id(olivia, url=receiver.url)
    await ann.create_registered_model("model")
    wait_idle()
    [delivery] = await deliveries(olivia, identifier)
    assert delivery == {
        "id": receiver.received[0][0][webhooks.DELIVERY_ID_HEADER],
        "webhook_id": identifier,
        "event": "REGISTERED_MODEL_CREATED",
        "status": "DELIVERED",
        "attempts": 1,
        "creation_timestamp": delivery["creation_timestamp"],
        "last_attempt_timestamp": delivery["last_attempt_timestamp"],
        "response_status": 200,
    }


async def test_deliveries_are_listed_newest_first(ann, olivia, receiver, wait_idle):
    identifier = await hook_id(olivia, ["REGISTERED_MODEL_CREATED", "MODEL_VERSION_CREATED"],
                               url=receiver.url)
    await ann.create_registered_model("model")
    await ann.create_model_version("model")
    wait_idle()
    assert [d["event"] for d in await deliveries(olivia, identifier)] == [
        "MODEL_VERSION_CREATED", "REGISTERED_MODEL_CREATED"]


async def test_a_refusing_receiver_shows_as_a_failed_delivery(ann, olivia, receiver,
                                                              wait_idle):
    receiver.status = 400
    identifier = await hook_id(olivia, url=receiver.url)
    await ann.create_registered_model("model")
    wait_idle()
    [delivery] = await deliveries(olivia, identifier)
    assert (delivery["status"], delivery["attempts"], delivery["response_status"],
            delivery["last_error"]) == ("FAILED", 1, 400, "HTTP 400: nope")


async def test_deliveries_never_show_the_payload_secret(ann, olivia, receiver, wait_idle):
    identifier = await hook_id(olivia, url=receiver.url, spec={"secret": SECRET})
    await ann.create_registered_model("model")
    wait_idle()
    reply = await olivia.request("GET", DELIVERIES, params={"id": identifier})
    assert reply.status == 200 and SECRET.encode() not in reply.body


# -- internal addresses ----------------------------------------------------------------------


async def test_a_webhook_to_an_internal_address_outside_the_allowlist_is_blocked(
        ann, olivia, wait_idle):
    identifier = await hook_id(olivia, url="http://127.0.0.2:9/hook")
    await ann.create_registered_model("model")
    wait_idle()
    [delivery] = await deliveries(olivia, identifier)
    assert (delivery["status"], delivery["attempts"]) == ("FAILED", 1)
    assert delivery["last_error"].startswith("blocked: '127.0.0.2' resolves to the internal "
                                             "address 127.0.0.2")
    assert "response_status" not in delivery


async def test_testing_a_blocked_webhook_reports_why(olivia):
    identifier = await hook_id(olivia, url="http://10.0.0.1/hook")
    status, data = await olivia.post("registry-webhooks/test", {"id": identifier})
    assert status == 200
    assert data["webhook"]["body"].startswith("blocked: '10.0.0.1' resolves to the internal")


# -- the test endpoint -----------------------------------------------------------------------


async def test_testing_a_webhook_posts_a_signed_test_delivery(olivia, receiver):
    identifier = await hook_id(olivia, ["COMMENT_CREATED"], url=receiver.url,
                               spec={"secret": SECRET})
    status, data = await olivia.post("registry-webhooks/test", {"id": identifier})
    assert (status, data) == (200, {"webhook": {"status_code": 200, "body": "delivered"}})
    [(headers, body)] = receiver.received
    assert webhooks.verify_signature(SECRET, headers, body)
    assert (json.loads(body)["event"], json.loads(body)["test"]) == ("COMMENT_CREATED", True)


async def test_testing_a_webhook_with_another_event(olivia, receiver):
    identifier = await hook_id(olivia, url=receiver.url)
    await olivia.post("registry-webhooks/test",
                      {"id": identifier, "event": "MODEL_VERSION_TAG_SET"})
    assert receiver.events() == ["MODEL_VERSION_TAG_SET"]


async def test_testing_a_webhook_reports_the_receivers_refusal(olivia, receiver):
    receiver.status = 400
    identifier = await hook_id(olivia, url=receiver.url)
    status, data = await olivia.post("registry-webhooks/test", {"id": identifier})
    assert (status, data) == (200, {"webhook": {"status_code": 400, "body": "HTTP 400: nope"}})


async def test_a_test_delivery_is_listed(olivia, receiver):
    identifier = await hook_id(olivia, url=receiver.url)
    await olivia.post("registry-webhooks/test", {"id": identifier})
    [delivery] = await deliveries(olivia, identifier)
    assert (delivery["status"], delivery["attempts"]) == ("DELIVERED", 1)
