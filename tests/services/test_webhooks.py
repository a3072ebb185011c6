"""Webhook delivery to a real HTTP receiver on loopback: events, signatures, retries, SSRF."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from labtrack import webhooks
from labtrack.entities import DeliveryStatus, WebhookEvent
from labtrack.errors import InvalidParameterValue
from labtrack.services.permissions import RegistrySettings
from labtrack.services.registry import RegistryService
from labtrack.services.webhook_delivery import WebhookDispatcher

SECRET = "s3cret"


class Receiver:
    """An HTTP server that records what it gets and answers ``failures`` errors first."""

    def __init__(self):
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.failures: list[int] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    status = receiver.failures.pop(0) if receiver.failures else 200
                    if status == 200:
                        receiver.received.append((dict(self.headers), body))
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"nope")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self) -> list[str]:
        return [json.loads(body)["event"] for _, body in self.received]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture
def dispatcher(store):
    dispatcher = WebhookDispatcher(store, allowed_hosts=("127.0.0.1",), backoff_seconds=0.01)
    yield dispatcher
    dispatcher.wait_idle()
    dispatcher.close()


@pytest.fixture
def registry(service, dispatcher):
    return RegistryService(service, RegistrySettings(admins=frozenset({"admin"})), dispatcher)


def test_every_event_arrives_once_and_signed(registry, dispatcher, receiver):
    registry.create_webhook([e.value for e in WebhookEvent], receiver.url, secret=SECRET,
                            user="admin")
    registry.create_registered_model("m", user="ann")
    registry.create_model_version("m", "/x", user="ann")
    registry.set_model_version_tag("m", "1", "k", "v", user="ann")
    registry.create_comment("m", "1", "nice", user="ann")
    registry.set_permissions("m", [("bob", "CAN_MANAGE_PRODUCTION_VERSIONS")], user="ann")
    registry.create_transition_request("m", "1", "Production", "go", user="ann")
    registry.approve_transition_request("m", "1", "Production", user="bob")
    assert dispatcher.wait_idle()
    assert sorted(receiver.events()) == sorted([
        "REGISTERED_MODEL_CREATED", "MODEL_VERSION_CREATED", "MODEL_VERSION_TAG_SET",
        "COMMENT_CREATED", "TRANSITION_REQUEST_CREATED",
        "TRANSITION_REQUEST_TO_PRODUCTION_CREATED", "MODEL_VERSION_TRANSITIONED_STAGE",
        "MODEL_VERSION_TRANSITIONED_TO_PRODUCTION"])
    for headers, body in receiver.received:
        assert webhooks.verify_signature(SECRET, headers, body)
        assert not webhooks.verify_signature("wrong", headers, body)
        assert not webhooks.verify_signature(SECRET, headers, body + b" ")
    ids = [headers[webhooks.DELIVERY_ID_HEADER] for headers, _ in receiver.received]
    assert len(set(ids)) == len(ids)
    approval = next(json.loads(b) for _, b in receiver.received
                    if json.loads(b)["event"] == "MODEL_VERSION_TRANSITIONED_TO_PRODUCTION")
    assert (approval["model_name"], approval["version"], approval["from_stage"],
            approval["to_stage"], approval["user_id"]) == ("m", "1", "None", "Production", "bob")


def test_model_webhooks_only_hear_their_model(registry, dispatcher, receiver):
    registry.create_registered_model("mine", user="ann")
    registry.create_registered_model("other", user="ann")
    registry.create_webhook(["MODEL_VERSION_CREATED"], receiver.url, model_name="mine",
                            user="ann")
    registry.create_model_version("other", "/x", user="ann")
    registry.create_model_version("mine", "/x", user="ann")
    assert dispatcher.wait_idle()
    assert [json.loads(b)["model_name"] for _, b in receiver.received] == ["mine"]


def test_failed_attempts_are_retried_and_logged(registry, dispatcher, receiver):
    receiver.failures = [500, 503]
    hook = registry.create_webhook(["REGISTERED_MODEL_CREATED"], receiver.url, user="admin")
    registry.create_registered_model("m", user="ann")
    assert dispatcher.wait_idle()
    [delivery] = registry.list_deliveries(hook.id, user="admin")
    assert (delivery.status, delivery.attempts, delivery.response_status) == (
        DeliveryStatus.DELIVERED, 3, 200)
    assert receiver.events() == ["REGISTERED_MODEL_CREATED"]


def test_a_refusing_receiver_is_not_retried_and_the_failure_is_visible(registry, dispatcher,
                                                                        receiver):
    receiver.failures = [400]
    hook = registry.create_webhook(["REGISTERED_MODEL_CREATED"], receiver.url, user="admin")
    registry.create_registered_model("m", user="ann")
    assert dispatcher.wait_idle()
    [delivery] = registry.list_deliveries(hook.id, user="admin")
    assert (delivery.status, delivery.attempts, delivery.response_status) == (
        DeliveryStatus.FAILED, 1, 400)
    assert "HTTP 400" in delivery.last_error


def test_internal_addresses_need_the_allowlist(store, service, receiver):
    strict = WebhookDispatcher(store, allowed_hosts=(), backoff_seconds=0.01)
    registry = RegistryService(service, RegistrySettings(admins=frozenset({"admin"})), strict)
    hook = registry.create_webhook(["REGISTERED_MODEL_CREATED"], receiver.url, user="admin")
    registry.create_registered_model("m", user="ann")
    assert strict.wait_idle()
    strict.close()
    [delivery] = registry.list_deliveries(hook.id, user="admin")
    assert delivery.status == DeliveryStatus.FAILED
    assert "internal address 127.0.0.1" in delivery.last_error
    assert receiver.received == []
    cidr = WebhookDispatcher(store, allowed_hosts=("127.0.0.0/8",))
    cidr.check_destination(receiver.url)  # allowed by range
    cidr.close()


def test_secrets_are_never_returned(registry, receiver):
    hook = registry.create_webhook(["REGISTERED_MODEL_CREATED"], receiver.url, secret=SECRET,
                                   user="admin")
    rendered = json.dumps([hook.to_dict(), [h.to_dict() for h in registry.list_webhooks(
        user="admin")]])
    assert SECRET not in rendered and hook.has_secret


def test_webhook_management(registry, dispatcher, receiver):
    hook = registry.create_webhook(["REGISTERED_MODEL_CREATED"], receiver.url, user="admin",
                                   description="CI")
    updated = registry.update_webhook(hook.id, user="admin", status="DISABLED",
                                      events=["MODEL_VERSION_CREATED", "COMMENT_CREATED"])
    assert (str(updated.status), [str(e) for e in updated.events]) == (
        "DISABLED", ["MODEL_VERSION_CREATED", "COMMENT_CREATED"])
    registry.create_registered_model("m", user="ann")
    registry.create_model_version("m", "/x", user="ann")
    assert dispatcher.wait_idle() and receiver.received == []  # disabled hooks stay quiet
    status, detail = registry.test_webhook(hook.id, user="admin")
    assert (status, detail) == (200, "delivered")
    assert json.loads(receiver.received[0][1])["test"] is True
    registry.delete_webhook(hook.id, user="admin")
    assert registry.list_webhooks(user="admin") == []
    with pytest.raises(InvalidParameterValue, match="Invalid webhook URL"):
        registry.create_webhook(["COMMENT_CREATED"], "ftp://x", user="admin")
    with pytest.raises(InvalidParameterValue, match="Invalid webhook event 'NOPE'"):
        registry.create_webhook(["NOPE"], receiver.url, user="admin")


def test_pending_deliveries_resume_after_a_restart(store, service, receiver):
    quiet = RegistryService(service, RegistrySettings(admins=frozenset({"admin"})))
    hook = quiet.create_webhook(["REGISTERED_MODEL_CREATED"], receiver.url, user="admin")
    store.create_delivery("left-over", hook.id, WebhookEvent.REGISTERED_MODEL_CREATED,
                          json.dumps({"event": "REGISTERED_MODEL_CREATED"}), 1)
    dispatcher = WebhookDispatcher(store, allowed_hosts=("127.0.0.1",))
    dispatcher.resume_pending()
    assert dispatcher.wait_idle()
    dispatcher.close()
    assert receiver.events() == ["REGISTERED_MODEL_CREATED"]
    assert store.list_deliveries(hook.id, 10)[0].status == DeliveryStatus.DELIVERED


def test_signatures_expire():
    import time

    body = b"{}"
    stale = int(time.time()) - 3600
    headers = {webhooks.DELIVERY_ID_HEADER: "d", webhooks.TIMESTAMP_HEADER: str(stale),
               webhooks.SIGNATURE_HEADER: webhooks.signature(SECRET, "d", stale, body)}
    assert not webhooks.verify_signature(SECRET, headers, body)
    assert webhooks.verify_signature(SECRET, headers, body, tolerance_seconds=7200)
    assert not webhooks.verify_signature(SECRET, {}, body)


def test_a_delivery_claimed_by_a_live_sender_is_left_to_it_and_a_stale_one_is_taken_over(
        store, service, receiver):
    quiet = RegistryService(service, RegistrySettings(admins=frozenset({"admin"})))
    hook = quiet.create_webhook(["REGISTERED_MODEL_CREATED"], receiver.url, user="admin")
    body = json.dumps({"event": "REGISTERED_MODEL_CREATED"})
    dispatcher = WebhookDispatcher(store, allowed_hosts=("127.0.0.1",))
    store.create_delivery("in-flight", hook.id, WebhookEvent.REGISTERED_MODEL_CREATED, body,
                          int(time.time() * 1000), claimed_by="another-live-process")
    assert dispatcher.resume_pending() == 0
    assert dispatcher.wait_idle()
    assert receiver.received == []
    # The other process died mid-send: once its claim is older than the timeout, it is ours.
    stale = int(time.time() * 1000) - int(dispatcher.claim_timeout_seconds * 1000) - 1
    store.claim_delivery("in-flight", "another-live-process", stale, stale)
    assert dispatcher.resume_pending() == 1
    assert dispatcher.wait_idle()
    dispatcher.close()
    assert [h[webhooks.DELIVERY_ID_HEADER] for h, _ in receiver.received] == ["in-flight"]
    assert store.list_deliveries(hook.id, 10)[0].status == DeliveryStatus.DELIVERED
