"""Authentication on every route, under jupyter_server and under ``labtrack server``.

Without credentials every documented route answers 401 or 403 in MLflow's error shape and
does nothing. The standalone server accepts its token as ``Bearer``, ``token`` or as the
password of HTTP Basic, and the token's user becomes the ``user_id`` of new runs.
"""

from __future__ import annotations

import re

import pytest

from labtrack.server.routes import documented_routes
from tests.server.conftest import (
    ARTIFACTS,
    MLFLOW,
    STANDALONE_TOKEN,
    STANDALONE_USER,
    basic_auth,
)

DUMMY_PATH_VALUES = {
    "model_id": "m-0123456789abcdef0123456789abcdef",
    "tag_key": "k",
    "path": "0/0123456789abcdef0123456789abcdef/artifacts/f.txt",
    "registered_model_id": "1",
}
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def concrete(path: str) -> str:
    return _PLACEHOLDER.sub(lambda m: DUMMY_PATH_VALUES[m.group(1)], path)


async def refusals(api) -> dict[tuple[str, str], object]:
    """Every documented route called without credentials; the answers that are not a
    401/403 in the error shape."""
    wrong = {}
    for method, path in sorted(documented_routes()):
        body = {} if method in ("POST", "PATCH", "PUT") else None
        reply = await api.request(method, concrete(path), body)
        ok = (reply.status in (401, 403)
              and reply.content_type.startswith("application/json")
              and set(reply.json) == {"error_code", "message"}
              and reply.json["error_code"] in ("UNAUTHENTICATED", "PERMISSION_DENIED"))
        if not ok:
            wrong[(method, path)] = (reply.status, reply.body[:200])
    return wrong


def test_the_route_walk_covers_path_parameters():
    placeholders = {name for _, path in documented_routes() for name in _PLACEHOLDER.findall(path)}
    assert placeholders <= set(DUMMY_PATH_VALUES)


# -- jupyter_server --------------------------------------------------------------------------


async def test_jupyter_refuses_every_route_without_credentials(anonymous_api):
    assert await refusals(anonymous_api) == {}


@pytest.mark.parametrize("allow_unauthenticated_access", [True])
async def test_jupyter_refuses_every_route_even_where_jupyter_would_let_it_through(
        anonymous_api):
    # jupyter_server's default lets undecorated handlers decide; labtrack's own check holds.
    assert await refusals(anonymous_api) == {}


async def test_jupyter_refuses_a_wrong_token(anonymous_api):
    status, data = await anonymous_api.get(
        "experiments/get", {"experiment_id": "0"}, headers={"Authorization": "token wrong"})
    assert status in (401, 403)
    assert data["error_code"] in ("UNAUTHENTICATED", "PERMISSION_DENIED")


async def test_jupyter_anonymous_writes_change_nothing(anonymous_api, api):
    await anonymous_api.post("experiments/create", {"name": "intruder"})
    _, data = await api.post("experiments/search", {"max_results": 10})
    assert [e["name"] for e in data["experiments"]] == ["Default"]


async def test_jupyter_anonymous_upload_writes_no_file(anonymous_api, tracking_dir):
    reply = await anonymous_api.request("PUT", f"{ARTIFACTS}/0/intruder.txt", body=b"x")
    assert reply.status in (401, 403)
    assert not list(tracking_dir.rglob("intruder.txt"))


async def test_jupyter_accepts_its_token(api):
    status, _ = await api.get("experiments/get", {"experiment_id": "0"})
    assert status == 200


# -- standalone server -----------------------------------------------------------------------


async def test_standalone_refuses_every_route_without_credentials(standalone):
    assert await refusals(standalone.api()) == {}


async def test_standalone_answers_401_with_a_challenge(standalone):
    reply = await standalone.api().request("GET", f"{MLFLOW}/experiments/get",
                                           params={"experiment_id": "0"})
    assert reply.status == 401
    assert reply.json == {"error_code": "UNAUTHENTICATED", "message": "Authentication required."}
    assert reply.headers["WWW-Authenticate"].startswith("Bearer")


async def test_standalone_refuses_a_wrong_bearer_token(standalone):
    api = standalone.api({"Authorization": "Bearer wrong"})
    status, data = await api.get("experiments/get", {"experiment_id": "0"})
    assert (status, data["error_code"]) == (401, "UNAUTHENTICATED")


async def test_standalone_refuses_basic_auth_with_a_wrong_password(standalone):
    api = standalone.api({"Authorization": basic_auth("alice", "wrong")})
    status, _ = await api.get("experiments/get", {"experiment_id": "0"})
    assert status == 401


async def test_standalone_refuses_malformed_basic_auth(standalone):
    api = standalone.api({"Authorization": "Basic not-base64!"})
    status, _ = await api.get("experiments/get", {"experiment_id": "0"})
    assert status == 401


async def test_standalone_refuses_an_unknown_scheme(standalone):
    api = standalone.api({"Authorization": f"Digest {STANDALONE_TOKEN}"})
    status, _ = await api.get("experiments/get", {"experiment_id": "0"})
    assert status == 401


async def test_standalone_refuses_the_token_as_a_query_argument(standalone):
    status, _ = await standalone.api().get("experiments/get",
                                           {"experiment_id": "0", "token": STANDALONE_TOKEN})
    assert status == 401


async def test_standalone_anonymous_writes_change_nothing(standalone, standalone_api):
    await standalone.api().post("experiments/create", {"name": "intruder"})
    _, data = await standalone_api.post("experiments/search", {"max_results": 10})
    assert [e["name"] for e in data["experiments"]] == ["Default"]


async def test_standalone_accepts_a_bearer_token(standalone):
    api = standalone.api({"Authorization": f"Bearer {STANDALONE_TOKEN}"})
    status, _ = await api.get("experiments/get", {"experiment_id": "0"})
    assert status == 200


async def test_standalone_accepts_the_token_scheme(standalone):
    api = standalone.api({"Authorization": f"token {STANDALONE_TOKEN}"})
    status, _ = await api.get("experiments/get", {"experiment_id": "0"})
    assert status == 200


async def test_standalone_accepts_basic_auth_with_the_token_as_password(standalone):
    # What MLflow's client sends for MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD.
    api = standalone.api({"Authorization": basic_auth("anyone", STANDALONE_TOKEN)})
    status, _ = await api.get("experiments/get", {"experiment_id": "0"})
    assert status == 200


async def test_standalone_records_the_token_user_as_user_id(standalone_api):
    run = await standalone_api.create_run()
    assert run["info"]["user_id"] == STANDALONE_USER


async def test_standalone_keeps_a_user_id_the_request_gives(standalone_api):
    run = await standalone_api.create_run(user_id="bob")
    assert run["info"]["user_id"] == "bob"


async def test_standalone_server_info_names_the_token_user(standalone_api):
    _, data = await standalone_api.call("GET", "/api/2.0/labtrack/server-info")
    assert data["user"] == STANDALONE_USER


async def test_standalone_serves_artifacts(standalone_api):
    run = await standalone_api.create_run()
    folder = run["info"]["artifact_uri"][len("mlflow-artifacts:/"):]
    put = await standalone_api.request("PUT", f"{ARTIFACTS}/{folder}/a.bin", body=b"\x00\x01")
    got = await standalone_api.request("GET", f"{ARTIFACTS}/{folder}/a.bin")
    assert (put.status, got.status, got.body) == (200, 200, b"\x00\x01")


async def test_standalone_health_is_plain_text(standalone_api):
    reply = await standalone_api.request("GET", "/health")
    assert (reply.status, reply.body) == (200, b"OK")
    assert reply.content_type.startswith("text/plain")
