"""The registry's governance end to end: a real ``labtrack server`` subprocess with three users
(owner olivia — a registry admin —, editor ann and production manager bob), each acting
through her own client and token, and a real webhook receiver checking every delivery's
signature.

The helpers here (``running_server``, ``WebhookReceiver``, ``wait_for``) are also used by
``test_ci_gate.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

import labtrack
from labtrack import webhooks
from labtrack.client.rest import RestTrackingService
from labtrack.client.rest_registry import RestRegistryService
from labtrack.entities import (
    ActivityAction,
    ActivityType,
    DeliveryStatus,
    ModelStage,
    PermissionLevel,
    WebhookEvent,
)
from labtrack.errors import LabtrackError
from tests.standalone_server import free_port

USERS = ("olivia", "ann", "bob")
START_TIMEOUT_S = 120
STOP_TIMEOUT_S = 20
DELIVERY_TIMEOUT_S = 60  # a liveness bound for polling, never a timing assertion
MLFLOW = "/api/2.0/mlflow"


# -- a real server ------------------------------------------------------------------------------


@dataclass
class LabtrackServer:
    url: str
    tokens: dict[str, str]  # user -> token
    store: Path
    log: Path
    _clients: dict[str, RestTrackingService] = field(default_factory=dict)

    def headers(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def registry(self, user: str) -> RestRegistryService:
        """The registry over REST as ``user`` (her token, her own HTTP session)."""
        return RestRegistryService(self.tracking(user))

    def tracking(self, user: str) -> RestTrackingService:
        if user not in self._clients:
            self._clients[user] = RestTrackingService(self.url, token=self.tokens[user],
                                                      retries=0)
        return self._clients[user]

    def close_clients(self) -> None:
        for client in self._clients.values():
            client.session.close()
        self._clients.clear()

    def call(self, user: str, method: str, route: str, **body) -> requests.Response:
        """One raw request as ``user``, to see the HTTP status itself."""
        return requests.request(method, f"{self.url}{route}", json=body,
                                headers=self.headers(user), timeout=60)



def stop_process(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def clean_environment(base: Path) -> dict[str, str]:
    """The test's environment without any tracking settings or tokens it may carry."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("LABTRACK_", "MLFLOW_"))}
    env.update(LABTRACK_HOME=str(base / "home"), PYTHONUNBUFFERED="1",
               MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
    return env


def wait_for(condition: Callable[[], object], what: str,
             timeout: float = DELIVERY_TIMEOUT_S, process: subprocess.Popen | None = None):
    """Poll ``condition`` until it returns something truthy (returned), within ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        outcome = condition()
        if outcome:
            return outcome
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the process exited ({process.returncode}) while waiting "
                                 f"for {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what} after {timeout} s")
        time.sleep(0.05)


@contextlib.contextmanager
def running_server(base: Path, users=USERS, admins=("olivia",),
                   allowed_hosts=("127.0.0.1",)) -> Iterator[LabtrackServer]:
    """``labtrack server --token-file …`` in a subprocess; stopped on exit, whatever happens."""
    base.mkdir(parents=True, exist_ok=True)
    tokens = {user: secrets.token_hex(16) for user in users}
    token_file = base / "tokens.txt"
    token_file.write_text("# user:token\n" + "".join(f"{u}:{t}\n" for u, t in tokens.items()))
    store = base / "store"
    labtrack_command = Path(sys.executable).parent / "labtrack"
    for attempt in range(5):
        port = free_port()
        log = base / f"server-{attempt}.log"
        command = [str(labtrack_command), "server", "--host", "127.0.0.1", "--port", str(port),
                   "--backend-store-uri", str(store),
                   "--artifacts-destination", str(store / "artifacts"),
                   "--token-file", str(token_file)]
        command += [arg for admin in admins for arg in ("--admin", admin)]
        command += [arg for host in allowed_hosts for arg in ("--webhook-allowed-host", host)]
        with open(log, "wb") as out:
            process = subprocess.Popen(command, env=clean_environment(base), cwd=base,
                                       stdout=out, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL)
        try:
            server = LabtrackServer(f"http://127.0.0.1:{port}", tokens, store, log)

            def ready(server=server, process=process):
                if process.poll() is not None:
                    return "exited"
                try:
                    response = requests.get(f"{server.url}/health",
                                            headers=server.headers(users[0]), timeout=5)
                except requests.ConnectionError:
                    return None
                return "ready" if response.status_code == 200 else None

            state = wait_for(ready, f"{server.url}/health", START_TIMEOUT_S)
            if state == "ready":
                try:
                    yield server
                finally:
                    server.close_clients()
                return
            if "in use" not in log.read_text(errors="replace").lower():
                raise RuntimeError(f"labtrack server exited at start; log:\n"
                                   f"{log.read_text(errors='replace')}")
        finally:
            stop_process(process)
    raise RuntimeError("Could not start labtrack server on a free port.")


# -- a real webhook receiver --------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    signature_valid: bool

    @property
    def delivery_id(self) -> str:
        return self.headers[webhooks.DELIVERY_ID_HEADER]

    @property
    def payload(self) -> dict:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    """A ``ThreadingHTTPServer`` on loopback recording every POST and whether its signature
    verifies with ``secret`` (checked on arrival, so the freshness window cannot expire)."""

    secret: str
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = dict(self.headers.items())
                valid = webhooks.verify_signature(receiver.secret, headers, body)
                with receiver.lock:
                    receiver.received.append(Received(headers, body, valid))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                       name="webhook-receiver")
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()

    def for_model(self, name: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.payload.get("model_name") == name]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("governance")) as running:
        yield running


@pytest.fixture(scope="module")
def receiver():
    receiver = WebhookReceiver(secret=secrets.token_urlsafe(24))
    try:
        yield receiver
    finally:
        receiver.close()


@pytest.fixture(scope="module")
def users(server):
    return {user: server.registry(user) for user in USERS}


@pytest.fixture(scope="module")
def experiment_id(server):
    return server.tracking("olivia").create_experiment(f"governance-{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="module")
def webhook(server, users, receiver):
    """olivia's registry-wide webhook for every event, signed with the receiver's secret."""
    created = users["olivia"].create_webhook([e.value for e in WebhookEvent], receiver.url,
                                             secret=receiver.secret,
                                             description="governance test receiver")
    try:
        yield created
    finally:
        users["olivia"].delete_webhook(created.id)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def log_model_run(server: LabtrackServer, user: str, experiment_id: str) -> tuple[str, str]:
    """A run of ``user`` with a model folder among its artifacts: (run id, source URI)."""
    tracking = server.tracking(user)
    run = tracking.create_run(experiment_id, run_name=f"{user}-training")
    tracking.write_artifact(run.info.run_id, "model/weights.txt", b"0.1 0.2 0.3")
    return run.info.run_id, f"{run.info.artifact_uri}/model"


def stages(registry: RestRegistryService, name: str) -> dict[str, str]:
    return {v.version: str(v.current_stage)
            for v in registry.search_model_versions(f"name = '{name}'")}


def event_key(payload: dict) -> tuple:
    return (payload["event"], payload.get("version"), payload.get("from_stage"),
            payload.get("to_stage"), payload.get("user_id"))


# -- the story ----------------------------------------------------------------------------------


def test_the_governance_story(server, users, receiver, webhook, experiment_id):
    olivia, ann, bob = users["olivia"], users["ann"], users["bob"]
    name = unique("forecaster")

    # olivia creates the model and grants ann CAN_EDIT and bob CAN_MANAGE_PRODUCTION_VERSIONS.
    created = olivia.create_registered_model(name, {"team": "energy"}, "Plant load model")
    assert created.user_id == "olivia"
    olivia.set_permissions(name, [("ann", "CAN_EDIT"),
                                  ("bob", "CAN_MANAGE_PRODUCTION_VERSIONS")])
    assert {p.user_name: p.permission_level for p in olivia.get_permissions(name)} == {
        "olivia": PermissionLevel.CAN_MANAGE, "ann": PermissionLevel.CAN_EDIT,
        "bob": PermissionLevel.CAN_MANAGE_PRODUCTION_VERSIONS}

    # Version 1 goes to Production.
    run_1, source_1 = log_model_run(server, "olivia", experiment_id)
    assert olivia.create_model_version(name, source_1, run_1).version == "1"
    first = olivia.transition_stage(name, "1", "Production", comment="Initial release")
    assert first.current_stage == ModelStage.PRODUCTION

    # ann registers version 2 and requests Production; she cannot move it herself.
    run_2, source_2 = log_model_run(server, "ann", experiment_id)
    second = ann.create_model_version(name, source_2, run_2, description="Retrained on 2025")
    assert (second.version, second.user_id) == ("2", "ann")
    direct = server.call("ann", "POST", f"{MLFLOW}/model-versions/transition-stage", name=name,
                         version="2", stage="Production", archive_existing_versions=True)
    assert direct.status_code == 403, direct.text
    assert direct.json()["error_code"] == "PERMISSION_DENIED"

    request = ann.create_transition_request(name, "2", "Production", "Ready to ship")
    assert (request.user_id, request.to_stage, request.comment) == (
        "ann", ModelStage.PRODUCTION, "Ready to ship")
    assert request.available_actions == (ActivityAction.CANCEL_TRANSITION_REQUEST,)
    [seen_by_bob] = bob.list_transition_requests(name, "2")
    assert seen_by_bob.id == request.id
    assert seen_by_bob.available_actions == (ActivityAction.APPROVE_TRANSITION_REQUEST,
                                             ActivityAction.REJECT_TRANSITION_REQUEST)

    # ann cannot approve her own request: 403, and nothing changes.
    refused = server.call("ann", "POST", f"{MLFLOW}/transition-requests/approve", name=name,
                          version="2", stage="Production", archive_existing_versions=True)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error_code"] == "PERMISSION_DENIED"
    with pytest.raises(LabtrackError) as error:
        ann.approve_transition_request(name, "2", "Production", True)
    assert error.value.error_code == "PERMISSION_DENIED"
    assert stages(olivia, name) == {"1": "Production", "2": "None"}
    assert [r.id for r in ann.list_transition_requests(name)] == [request.id]

    # bob rejects with a comment; the request is closed.
    rejected = bob.reject_transition_request(name, "2", "Production",
                                             "Backtest on the 2025 data first")
    assert (rejected.activity_type, rejected.user_id, rejected.comment) == (
        ActivityType.REJECTED_REQUEST, "bob", "Backtest on the 2025 data first")
    assert ann.list_transition_requests(name) == []
    assert stages(olivia, name) == {"1": "Production", "2": "None"}

    # ann comments and requests again; bob approves, archiving version 1.
    ann.create_comment(name, "2", "Backtest done: MAPE 4.1%")
    again = ann.create_transition_request(name, "2", "Production", "Backtested, please ship")
    assert again.id != request.id
    approved = bob.approve_transition_request(name, "2", "Production", True, "Ship it")
    assert (approved.activity_type, approved.user_id, approved.comment) == (
        ActivityType.APPROVED_REQUEST, "bob", "Ship it")
    assert (approved.from_stage, approved.to_stage) == (ModelStage.NONE,
                                                        ModelStage.PRODUCTION)
    assert stages(olivia, name) == {"1": "Archived", "2": "Production"}
    assert [v.version for v in olivia.get_latest_versions(name, ["Production"])] == ["2"]
    assert ann.list_transition_requests(name) == []

    # The audit trail, newest first, names every step with its user, stages and comment.
    trail = olivia.list_activities(name, max_results=1000)
    assert trail.token is None
    steps = [(str(a.activity_type), a.user_id, a.version,
              a.from_stage and str(a.from_stage), a.to_stage and str(a.to_stage), a.comment)
             for a in trail]
    assert steps == [
        ("SYSTEM_TRANSITION", "bob", "1", "Production", "Archived", None),
        ("APPROVED_REQUEST", "bob", "2", "None", "Production", "Ship it"),
        ("REQUESTED_TRANSITION", "ann", "2", "None", "Production", "Backtested, please ship"),
        ("NEW_COMMENT", "ann", "2", None, None, "Backtest done: MAPE 4.1%"),
        ("REJECTED_REQUEST", "bob", "2", "None", "Production",
         "Backtest on the 2025 data first"),
        ("REQUESTED_TRANSITION", "ann", "2", "None", "Production", "Ready to ship"),
        ("MODEL_VERSION_CREATED", "ann", "2", None, "None", None),
        ("APPLIED_TRANSITION", "olivia", "1", "None", "Production", "Initial release"),
        ("MODEL_VERSION_CREATED", "olivia", "1", None, "None", None),
        ("PERMISSIONS_CHANGED", "olivia", None, None, None, None),
        ("REGISTERED_MODEL_CREATED", "olivia", None, None, None, None),
    ]
    times = [a.creation_timestamp for a in reversed(trail)]
    assert times == sorted(times)
    assert all(a.model_name == name for a in trail)
    # Every user who can read the model sees the same trail, and it pages newest first.
    assert [a.id for a in ann.list_activities(name)] == [a.id for a in trail]
    first_page = bob.list_activities(name, max_results=4)
    second_page = bob.list_activities(name, max_results=4, page_token=first_page.token)
    assert [a.id for a in [*first_page, *second_page]] == [a.id for a in trail[:8]]
    assert [a.id for a in ann.list_activities(name, "1")] == [
        a.id for a in trail if a.version == "1"]

    # The receiver got each expected event exactly once, each with a valid signature.
    expected = Counter([
        ("REGISTERED_MODEL_CREATED", None, None, None, "olivia"),
        ("MODEL_VERSION_CREATED", "1", None, None, "olivia"),
        ("MODEL_VERSION_TRANSITIONED_STAGE", "1", "None", "Production", "olivia"),
        ("MODEL_VERSION_TRANSITIONED_TO_PRODUCTION", "1", "None", "Production", "olivia"),
        ("MODEL_VERSION_CREATED", "2", None, None, "ann"),
        ("TRANSITION_REQUEST_CREATED", "2", "None", "Production", "ann"),
        ("TRANSITION_REQUEST_TO_PRODUCTION_CREATED", "2", "None", "Production", "ann"),
        ("COMMENT_CREATED", "2", None, None, "ann"),
        ("TRANSITION_REQUEST_CREATED", "2", "None", "Production", "ann"),
        ("TRANSITION_REQUEST_TO_PRODUCTION_CREATED", "2", "None", "Production", "ann"),
        ("MODEL_VERSION_TRANSITIONED_STAGE", "2", "None", "Production", "bob"),
        ("MODEL_VERSION_TRANSITIONED_TO_PRODUCTION", "2", "None", "Production", "bob"),
        ("MODEL_VERSION_TRANSITIONED_STAGE", "1", "Production", "Archived", "bob"),
        ("MODEL_VERSION_TRANSITIONED_TO_ARCHIVED", "1", "Production", "Archived", "bob"),
    ])

    def settled():
        """Every delivery of this model's events arrived and the server recorded it."""
        deliveries = olivia.list_deliveries(webhook.id, max_results=1000)
        if any(d.status == DeliveryStatus.PENDING for d in deliveries):
            return None
        arrived = receiver.for_model(name)
        return arrived if len(arrived) >= sum(expected.values()) else None

    arrived = wait_for(settled, f"{sum(expected.values())} deliveries for {name}")
    delivery_ids = [r.delivery_id for r in arrived]
    assert len(delivery_ids) == len(set(delivery_ids)), "a delivery arrived twice"
    assert Counter(event_key(r.payload) for r in arrived) == expected
    assert all(r.signature_valid for r in arrived)
    assert not any(webhooks.verify_signature("not-the-secret", r.headers, r.body)
                   for r in arrived)
    for r in arrived:
        assert r.headers[webhooks.EVENT_HEADER] == r.payload["event"]
        assert r.payload["webhook_id"] == webhook.id
    requests_seen = [r.payload for r in arrived
                     if r.payload["event"] == "TRANSITION_REQUEST_CREATED"]
    assert sorted((p["request_id"], p["text"]) for p in requests_seen) == sorted(
        [(request.id, "Ready to ship"), (again.id, "Backtested, please ship")])

    # The server's delivery log agrees: each of them delivered, at the first attempt.
    logged = {d.id: d for d in olivia.list_deliveries(webhook.id, max_results=1000)}
    for delivery_id in delivery_ids:
        assert logged[delivery_id].status == DeliveryStatus.DELIVERED
        assert (logged[delivery_id].attempts, logged[delivery_id].response_status) == (1, 200)


# -- two approvals at once ----------------------------------------------------------------------


def approve_at_once(server: LabtrackServer, sessions: dict[str, requests.Session],
                    body: dict) -> dict[str, requests.Response]:
    """POST the same approval once per session, released together by a barrier."""
    barrier = threading.Barrier(len(sessions))
    responses: dict[str, requests.Response] = {}
    failures: list[BaseException] = []

    def approve(user):
        try:
            barrier.wait(timeout=60)
            responses[user] = sessions[user].post(
                f"{server.url}{MLFLOW}/transition-requests/approve", json=body, timeout=60)
        except BaseException as error:  # reported below, never lost in the thread
            failures.append(error)

    threads = [threading.Thread(target=approve, args=(user,)) for user in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    return responses


def test_two_simultaneous_approvals_exactly_one_succeeds(server, users, experiment_id):
    """olivia (a manager) and bob approve ann's request at the same instant, several rounds:
    exactly one approval wins, the other is 409 RESOURCE_CONFLICT, and the model never has
    two Production versions."""
    olivia, ann = users["olivia"], users["ann"]
    name = unique("race")
    olivia.create_registered_model(name)
    olivia.set_permissions(name, [("ann", "CAN_EDIT"),
                                  ("bob", "CAN_MANAGE_PRODUCTION_VERSIONS")])
    run_id, source = log_model_run(server, "olivia", experiment_id)
    for _ in range(3):
        olivia.create_model_version(name, source, run_id)
    olivia.transition_stage(name, "1", "Production")

    sessions = {}
    for user in ("olivia", "bob"):
        session = requests.Session()
        session.headers.update(server.headers(user))
        session.get(f"{server.url}/health", timeout=30)  # connect before the race
        sessions[user] = session

    rounds = 6
    try:
        for attempt in range(rounds):
            version = "2" if attempt % 2 == 0 else "3"
            request = ann.create_transition_request(name, version, "Production",
                                                    f"round {attempt}")
            body = {"name": name, "version": version, "stage": "Production",
                    "archive_existing_versions": True, "comment": f"approve {attempt}"}
            if attempt % 3 == 0:  # by request id as well as by (name, version, stage)
                body["request_id"] = request.id
            responses = approve_at_once(server, sessions, body)

            codes = sorted(r.status_code for r in responses.values())
            assert codes == [200, 409], {u: r.text for u, r in responses.items()}
            [loser] = [r for r in responses.values() if r.status_code == 409]
            assert loser.json()["error_code"] == "RESOURCE_CONFLICT"
            assert request.id in loser.json()["message"]
            [winner] = [u for u, r in responses.items() if r.status_code == 200]
            assert responses[winner].json()["activity"]["user_id"] == winner

            now = stages(olivia, name)
            assert [v for v, s in now.items() if s == "Production"] == [version], now
            # Back to the starting point for the next round.
            olivia.transition_stage(name, version, "None")
            olivia.transition_stage(name, "1", "Production", archive_existing_versions=True)
            assert [v for v, s in stages(olivia, name).items() if s == "Production"] == ["1"]
    finally:
        for session in sessions.values():
            session.close()

    approvals = [a for a in olivia.list_activities(name, max_results=1000)
                 if a.activity_type == ActivityType.APPROVED_REQUEST]
    assert len(approvals) == rounds
    assert olivia.list_transition_requests(name) == []


# -- the Python client as each user -------------------------------------------------------------


def test_each_tracking_client_acts_as_the_user_whose_token_it_was_given(server, monkeypatch):
    """``TrackingClient("http://…")`` takes its token from LABTRACK_TRACKING_TOKEN when it is
    constructed, so two clients made with two users' tokens act as those two users."""
    monkeypatch.setenv("LABTRACK_TRACKING_TOKEN", server.tokens["olivia"])
    olivia = labtrack.TrackingClient(server.url)
    monkeypatch.setenv("LABTRACK_TRACKING_TOKEN", server.tokens["ann"])
    ann = labtrack.TrackingClient(server.url)

    name = unique("per-user")
    assert olivia.create_registered_model(name).user_id == "olivia"
    olivia.set_permissions(name, {"ann": "CAN_EDIT"})
    experiment_id = olivia.create_experiment(unique("per-user"))
    run = olivia.create_run(experiment_id)
    version = ann.create_model_version(name, f"{run.info.artifact_uri}/model",
                                       run.info.run_id)
    assert version.user_id == "ann"
    request = ann.request_transition(name, version.version, "Production")
    assert request.user_id == "ann"
    with pytest.raises(LabtrackError) as error:
        ann.approve_transition_request(name, version.version, "Production")
    assert error.value.error_code == "PERMISSION_DENIED"
    with pytest.raises(LabtrackError) as error:
        ann.delete_registered_model(name)
    assert error.value.error_code == "PERMISSION_DENIED"
