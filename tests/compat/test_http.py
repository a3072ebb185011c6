"""HTTP-level behaviour the stock client relies on: auth errors and reusable connections.

The mlflow client keeps connections alive in a pooled ``requests`` session. A server that
closes a connection after a response without saying ``Connection: close`` makes the
client's *next* call fail with "Connection reset" / "RemoteDisconnected" (with retries off,
as here, it surfaces as an MlflowException). ``http.client`` reuses a kept-alive connection
without probing it first, which makes that deterministic to check.
"""

from __future__ import annotations

import http.client
import json
import uuid
from urllib.parse import urlsplit

import mlflow
import pytest
import requests
from mlflow.exceptions import ERROR_CODE_TO_HTTP_STATUS, MlflowException

PROXY = "/api/2.0/mlflow-artifacts/artifacts"


def _connection(server):
    parts = urlsplit(server.uri)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=60), parts.path


def _exchange(connection, prefix, method, path, body=None, headers=None):
    connection.request(method, prefix + path, body=body, headers=headers or {})
    response = connection.getresponse()
    return response.status, response.getheader("Connection"), response.read()


# Requests refused before the server reads them (and one accepted upload as a control).
REFUSED = {
    "upload-outside-the-root": ("PUT", f"{PROXY}/..%2fescape.txt", b"x" * 100, "good", {}),
    "empty-upload-outside-the-root": ("PUT", f"{PROXY}/..%2fescape.txt", b"", "good", {}),
    "upload-with-a-wrong-token": ("PUT", f"{PROXY}/compat-http/ok.txt", b"x" * 100, "bad", {}),
    "json-with-a-wrong-token": ("POST", "/api/2.0/mlflow/experiments/create",
                                json.dumps({"name": "never"}).encode(), "bad",
                                {"Content-Type": "application/json"}),
    "get-with-a-wrong-token": ("GET", "/api/2.0/mlflow/experiments/get?experiment_id=0",
                               None, "bad", {}),
    "accepted-upload (control)": ("PUT", f"{PROXY}/compat-http/ok.txt", b"x" * 100, "good",
                                  {}),
}


@pytest.mark.parametrize(("method", "path", "body", "token", "headers"), REFUSED.values(),
                         ids=REFUSED.keys())
def test_connection_is_reusable_after_a_response(tracking_server, method, path, body, token,
                                                 headers):
    """Keep-alive: either the server says ``Connection: close`` (then http.client reconnects)
    or the connection must still serve the next request."""
    connection, prefix = _connection(tracking_server)
    good = {"Authorization": f"Bearer {tracking_server.token}"}
    auth = good if token == "good" else {"Authorization": "Bearer wrong-token"}
    try:
        status, connection_header, _ = _exchange(connection, prefix, method, path, body,
                                                 {**auth, **headers})
        try:
            next_status, _, next_body = _exchange(connection, prefix, "GET", "/health",
                                                  headers=good)
        except (http.client.HTTPException, ConnectionError) as error:
            pytest.fail(
                f"{method} {prefix}{path} answered {status} with Connection: "
                f"{connection_header!r}, then the server dropped the kept-alive connection: "
                f"the next request failed with {error!r}. Send 'Connection: close' when "
                "closing after a response, or read the request body and keep the connection.")
        assert (next_status, next_body) == (200, b"OK")
    finally:
        connection.close()


def test_wrong_token_is_refused_in_mlflow_error_shape(api, tracking_server):
    for token in ("wrong-token", ""):
        response = api.get("/api/2.0/mlflow/experiments/get", params={"experiment_id": "0"},
                           headers={"Authorization": f"Bearer {token}"})
        assert response.status_code in (401, 403), response.text
        body = response.json()
        assert ERROR_CODE_TO_HTTP_STATUS[body["error_code"]] == response.status_code
        assert body["message"]


def test_stock_client_with_a_wrong_token(mlflow_client, fresh_client_session, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "wrong-token")
    with pytest.raises(MlflowException) as error:
        mlflow.MlflowClient().get_experiment("0")
    assert error.value.error_code in ("UNAUTHENTICATED", "PERMISSION_DENIED")


def test_unknown_endpoint_is_a_json_404(api):
    response = api.get("/api/2.0/mlflow/no-such-endpoint")
    assert response.status_code == 404
    assert response.json()["error_code"] in ("ENDPOINT_NOT_FOUND", "RESOURCE_DOES_NOT_EXIST",
                                             "NOT_FOUND")


def test_a_cookie_alone_cannot_write(tracking_server, mlflow_client):
    """Cross-site requests: whatever cookie an authenticated call left behind (Jupyter sets a
    login cookie), a write without the token — JSON or a "simple" text/plain form — is
    refused (under Jupyter by its XSRF check) and changes nothing."""
    name = f"csrf-{uuid.uuid4().hex[:12]}"
    with requests.Session() as browser:
        warm = browser.get(f"{tracking_server.uri}/api/2.0/mlflow/experiments/get",
                           params={"experiment_id": "0"}, headers=tracking_server.headers)
        assert warm.status_code == 200
        for kwargs in ({"json": {"name": name}},
                       {"data": json.dumps({"name": name}),
                        "headers": {"Content-Type": "text/plain"}}):
            response = browser.post(f"{tracking_server.uri}/api/2.0/mlflow/experiments/create",
                                    **kwargs)
            assert 400 <= response.status_code < 500, response.text
            body = response.json()
            assert ERROR_CODE_TO_HTTP_STATUS[body["error_code"]] == response.status_code
    assert mlflow_client.get_experiment_by_name(name) is None
