"""``examples/ci_gate.py`` against a real ``labtrack server``: the gate runs as its own process
(as a user would run it, with a production manager's token), is registered as a webhook for
TRANSITION_REQUEST_CREATED with a secret, and approves or rejects each request by the metric
the version's run logged. Outcomes are awaited by polling the server's state with a deadline.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from labtrack import webhooks
from labtrack.entities import ActivityType, DeliveryStatus
from tests.integration.test_governance import (
    LabtrackServer,
    clean_environment,
    free_port,
    running_server,
    stop_process,
    wait_for,
)

GATE = Path(__file__).parents[2] / "examples" / "ci_gate.py"
METRIC, MINIMUM = "accuracy", 0.9


@contextlib.contextmanager
def running_gate(base: Path, server: LabtrackServer, user: str, secret: str):
    """The example gate as a subprocess listening on a free loopback port."""
    port = free_port()
    log = base / "gate.log"
    command = [sys.executable, str(GATE), "--listen", f"127.0.0.1:{port}",
               "--tracking-uri", server.url, "--token", server.tokens[user],
               "--secret", secret, "--metric", METRIC, "--minimum", str(MINIMUM)]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, env=clean_environment(base), cwd=base,
                                   stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
    try:
        def listening():
            with socket.socket() as sock:
                return sock.connect_ex(("127.0.0.1", port)) == 0

        wait_for(listening, f"the gate on port {port}", timeout=120, process=process)
        yield f"http://127.0.0.1:{port}/hook", process, log
    finally:
        stop_process(process)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("ci-gate-server")) as running:
        yield running


@pytest.fixture(scope="module")
def secret():
    return secrets.token_urlsafe(24)


@pytest.fixture(scope="module")
def gate(tmp_path_factory, server, secret):
    with running_gate(tmp_path_factory.mktemp("ci-gate"), server, "bob", secret) as running:
        yield running


@pytest.fixture
def model(server, gate, secret):
    """olivia's model with ann as editor and bob (the gate's user) as production manager,
    the gate registered as its TRANSITION_REQUEST_CREATED webhook, and version 1 (a good
    one) in Production."""
    olivia = server.registry("olivia")
    name = f"gated-{uuid.uuid4().hex[:10]}"
    olivia.create_registered_model(name)
    olivia.set_permissions(name, [("ann", "CAN_EDIT"),
                                  ("bob", "CAN_MANAGE_PRODUCTION_VERSIONS")])
    url, _, _ = gate
    webhook = olivia.create_webhook(["TRANSITION_REQUEST_CREATED"], url, model_name=name,
                                    secret=secret)
    register(server, "olivia", name, 0.93)
    olivia.transition_stage(name, "1", "Production")
    return name, webhook


_experiments: dict[str, str] = {}


def _experiment(server: LabtrackServer) -> str:
    """One experiment per server for the runs these tests log."""
    if server.url not in _experiments:
        _experiments[server.url] = server.tracking("olivia").create_experiment(
            f"ci-gate-{uuid.uuid4().hex[:8]}")
    return _experiments[server.url]


def register(server: LabtrackServer, user: str, name: str, metric: float | None) -> str:
    """A run of ``user`` logging ``metric`` (none when None), registered as a new version."""
    tracking = server.tracking(user)
    run = tracking.create_run(_experiment(server), run_name="training")
    if metric is not None:
        tracking.log_metric(run.info.run_id, METRIC, metric, step=0)
    tracking.write_artifact(run.info.run_id, "model/weights.txt", b"weights")
    version = server.registry(user).create_model_version(
        name, f"{run.info.artifact_uri}/model", run.info.run_id)
    return version.version


def stages(server, name):
    return {v.version: str(v.current_stage)
            for v in server.registry("olivia").search_model_versions(f"name = '{name}'")}


def decision(server, name, version):
    """The gate's approval or rejection of a request for ``version``, once it exists."""
    for activity in server.registry("olivia").list_activities(name, version):
        if activity.activity_type in (ActivityType.APPROVED_REQUEST,
                                      ActivityType.REJECTED_REQUEST):
            return activity
    return None


def settled_delivery(server, webhook_id):
    """The webhook's one delivery once the server recorded its outcome (the gate answers
    after acting, so the decision can be visible before the delivery is settled)."""
    [delivery] = server.registry("olivia").list_deliveries(webhook_id)
    return None if delivery.status == DeliveryStatus.PENDING else delivery


def test_a_request_for_a_good_version_is_approved(server, gate, model):
    name, webhook = model
    _, process, log = gate
    ann = server.registry("ann")
    version = register(server, "ann", name, 0.97)
    ann.create_transition_request(name, version, "Production", "New features")

    activity = wait_for(lambda: decision(server, name, version),
                        f"the gate's decision on version {version}", process=process)
    assert activity.activity_type == ActivityType.APPROVED_REQUEST, log.read_text()
    assert activity.user_id == "bob"
    assert METRIC in activity.comment and "0.97" in activity.comment
    assert stages(server, name) == {"1": "Archived", version: "Production"}
    assert ann.list_transition_requests(name) == []

    delivery = wait_for(lambda: settled_delivery(server, webhook.id), "the delivery's outcome")
    assert (delivery.status, delivery.response_status) == (DeliveryStatus.DELIVERED, 200)


def test_a_version_registered_from_a_logged_model_is_judged_by_its_run(server, gate, model):
    """A version registered from ``models:/<model_id>`` (as ``mlflow.register_model`` does
    for MLflow 3 models) is judged by the metric of the logged model's source run."""
    name, _ = model
    _, process, log = gate
    tracking = server.tracking("ann")
    run = tracking.create_run(_experiment(server), run_name="training")
    tracking.log_metric(run.info.run_id, METRIC, 0.96, step=0)
    created = server.call("ann", "POST", "/api/2.0/mlflow/logged-models",
                          experiment_id=_experiment(server), name="model",
                          source_run_id=run.info.run_id)
    assert created.status_code == 200, created.text
    model_id = created.json()["model"]["info"]["model_id"]
    version = server.registry("ann").create_model_version(
        name, f"models:/{model_id}", model_id=model_id).version
    server.registry("ann").create_transition_request(name, version, "Production")

    activity = wait_for(lambda: decision(server, name, version),
                        f"the gate's decision on version {version}", process=process)
    assert activity.activity_type == ActivityType.APPROVED_REQUEST, (
        activity.comment, log.read_text())
    assert "0.96" in activity.comment
    assert stages(server, name) == {"1": "Archived", version: "Production"}


@pytest.mark.parametrize(("metric", "reason"), [(0.62, "below the required"),
                                                (None, "logged no")])
def test_a_request_for_a_weak_version_is_rejected(server, gate, model, metric, reason):
    name, webhook = model
    _, process, log = gate
    ann = server.registry("ann")
    version = register(server, "ann", name, metric)
    ann.create_transition_request(name, version, "Production", "Try this one")

    activity = wait_for(lambda: decision(server, name, version),
                        f"the gate's decision on version {version}", process=process)
    assert activity.activity_type == ActivityType.REJECTED_REQUEST, log.read_text()
    assert activity.user_id == "bob"
    assert METRIC in activity.comment and reason in activity.comment
    assert stages(server, name) == {"1": "Production", version: "None"}
    assert ann.list_transition_requests(name) == []

    delivery = wait_for(lambda: settled_delivery(server, webhook.id), "the delivery's outcome")
    assert (delivery.status, delivery.response_status) == (DeliveryStatus.DELIVERED, 200)


def test_a_redelivered_event_is_acknowledged_and_changes_nothing(server, gate, model,
                                                                 secret):
    """Deliveries can arrive twice (a retry after a lost answer, or two webhooks): the gate
    must answer 2xx to the repeat instead of failing on the already-closed request (a 5xx
    makes labtrack retry it until it gives up), and take no second action."""
    name, webhook = model
    url, process, _ = gate
    version = register(server, "ann", name, 0.99)
    request = server.registry("ann").create_transition_request(name, version, "Production")
    wait_for(lambda: decision(server, name, version), "the gate's decision",
             process=process)
    delivery = wait_for(lambda: settled_delivery(server, webhook.id), "the delivery's outcome")
    activities_before = [a.id for a in server.registry("olivia").list_activities(name)]

    body = json.dumps({"event": "TRANSITION_REQUEST_CREATED", "webhook_id": webhook.id,
                       "model_name": name, "version": version, "from_stage": "None",
                       "to_stage": "Production", "user_id": "ann",
                       "request_id": request.id, "text": ""}).encode()
    # The same delivery again (a retry), and the same event under another delivery id (a
    # second webhook pointing at the gate), each freshly signed.
    for delivery_id in (delivery.id, uuid.uuid4().hex):
        repeat = requests.post(url, data=body, timeout=60,
                               headers=signed_headers(secret, delivery_id, body))
        assert 200 <= repeat.status_code < 300, repeat.text
    assert [a.id for a in server.registry("olivia").list_activities(name)] == activities_before
    assert stages(server, name) == {"1": "Archived", version: "Production"}


def signed_headers(secret: str, delivery_id: str, body: bytes) -> dict[str, str]:
    timestamp = int(time.time())
    return {"Content-Type": "application/json",
            webhooks.DELIVERY_ID_HEADER: delivery_id,
            webhooks.TIMESTAMP_HEADER: str(timestamp),
            webhooks.EVENT_HEADER: "TRANSITION_REQUEST_CREATED",
            webhooks.SIGNATURE_HEADER: webhooks.signature(secret, delivery_id, timestamp, body)}


def test_the_gate_refuses_unsigned_and_forged_deliveries(server, gate, model):
    name, webhook = model
    url, _, _ = gate
    # The server stops calling the gate, so only the forged deliveries below reach it.
    server.registry("olivia").update_webhook(webhook.id, status="DISABLED")
    version = register(server, "ann", name, 0.99)
    request = server.registry("ann").create_transition_request(name, version, "Staging")
    body = json.dumps({"event": "TRANSITION_REQUEST_CREATED", "model_name": name,
                       "version": version, "to_stage": "Staging",
                       "request_id": request.id}).encode()
    timestamp = int(time.time())
    unsigned = requests.post(url, data=body, timeout=60, headers={
        webhooks.DELIVERY_ID_HEADER: "forged-1", webhooks.TIMESTAMP_HEADER: str(timestamp)})
    forged = requests.post(url, data=body, timeout=60, headers={
        webhooks.DELIVERY_ID_HEADER: "forged-2", webhooks.TIMESTAMP_HEADER: str(timestamp),
        webhooks.SIGNATURE_HEADER: webhooks.signature("guessed", "forged-2", timestamp, body)})
    assert (unsigned.status_code, forged.status_code) == (401, 401)
    # The request is still open and the version untouched.
    assert [r.id for r in server.registry("ann").list_transition_requests(name, version)] == [
        request.id]
    assert stages(server, name)[version] == "None"
    assert server.registry("olivia").list_deliveries(webhook.id) == []
