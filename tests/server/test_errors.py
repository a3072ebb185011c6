"""Request-level errors under jupyter_server: content type, malformed bodies, wrong field
types, size limits, unknown paths and methods. Every error is MLflow's
``{"error_code", "message"}`` with MLflow's status, and no bad input yields a 500."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit

import pytest
from jupyter_server.utils import url_path_join

from tests.server.conftest import ARTIFACTS, MLFLOW, STANDALONE_TOKEN

CONTENT_TYPE_ERROR = "Bad Request. Content-Type must be one of ['application/json']."
JSON = {"Content-Type": "application/json"}
CREATE = f"{MLFLOW}/experiments/create"


async def post_raw(api, body: bytes | str, path: str = CREATE, headers=None):
    return await api.request("POST", path, body=body, headers=JSON if headers is None else headers)


def assert_error_shape(reply, status: int, error_code: str) -> dict:
    assert reply.status == status, reply.body
    assert reply.content_type.startswith("application/json")
    data = reply.json
    assert set(data) == {"error_code", "message"}
    assert data["error_code"] == error_code
    assert isinstance(data["message"], str) and data["message"]
    return data


# -- Content-Type ----------------------------------------------------------------------------


async def test_a_post_body_that_is_not_json_typed_is_refused(api):
    reply = await post_raw(api, '{"name": "x"}', headers={"Content-Type": "text/plain"})
    data = assert_error_shape(reply, 400, "INVALID_PARAMETER_VALUE")
    assert data["message"] == CONTENT_TYPE_ERROR


async def test_a_post_body_without_content_type_is_refused(api):
    reply = await post_raw(api, '{"name": "x"}', headers={})
    assert reply.status == 400
    assert reply.json["message"] == CONTENT_TYPE_ERROR


async def test_a_form_encoded_post_is_refused(api):
    reply = await post_raw(api, "name=x",
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert reply.status == 400
    assert reply.json["message"] == CONTENT_TYPE_ERROR


async def test_json_with_a_charset_parameter_is_accepted(api):
    reply = await post_raw(api, '{"name": "x"}',
                           headers={"Content-Type": "application/json; charset=utf-8"})
    assert reply.status == 200


async def test_the_content_type_is_case_insensitive(api):
    reply = await post_raw(api, '{"name": "x"}', headers={"Content-Type": "Application/JSON"})
    assert reply.status == 200


async def test_a_patch_body_must_be_json_too(api):
    model_id = (await api.create_logged_model())["info"]["model_id"]
    reply = await api.request("PATCH", f"{MLFLOW}/logged-models/{model_id}",
                              body='{"status": "LOGGED_MODEL_READY"}',
                              headers={"Content-Type": "text/plain"})
    assert reply.status == 400
    assert reply.json["message"] == CONTENT_TYPE_ERROR


# -- malformed bodies ------------------------------------------------------------------------


async def test_malformed_json_is_400(api):
    reply = await post_raw(api, '{"name": ')
    data = assert_error_shape(reply, 400, "INVALID_PARAMETER_VALUE")
    assert data["message"].startswith("Malformed JSON in request body")


async def test_a_json_array_body_is_400(api):
    reply = await post_raw(api, '[{"name": "x"}]')
    data = assert_error_shape(reply, 400, "INVALID_PARAMETER_VALUE")
    assert data["message"] == "Malformed request body: expected a JSON object, got list."


@pytest.mark.parametrize("body", ["5", "null", "true", '"text"', "1e400"])
async def test_a_json_scalar_body_is_400(api, body):
    reply = await post_raw(api, body)
    assert_error_shape(reply, 400, "INVALID_PARAMETER_VALUE")


async def test_a_double_encoded_body_is_read_as_legacy_clients_send_it(api):
    reply = await post_raw(api, json.dumps(json.dumps({"name": "legacy"})))
    assert reply.status == 200
    _, data = await api.get("experiments/get-by-name", {"experiment_name": "legacy"})
    assert data["experiment"]["experiment_id"] == reply.json["experiment_id"]


async def test_a_body_that_is_not_utf8_is_400(api):
    reply = await post_raw(api, b'{"name": "\xff\xfe"}')
    data = assert_error_shape(reply, 400, "INVALID_PARAMETER_VALUE")
    assert data["message"].startswith("Malformed JSON in request body")


async def test_a_lone_surrogate_escape_is_400(api):
    reply = await post_raw(api, '{"name": "broken \\ud800"}')
    assert_error_shape(reply, 400, "INVALID_PARAMETER_VALUE")


async def test_escaped_surrogate_pairs_are_text(api):
    # Python's json (MLflow's client) escapes non-ASCII, emoji as surrogate pairs.
    reply = await post_raw(api, json.dumps({"name": "model \U0001f680"}))
    assert reply.status == 200
    _, data = await api.get("experiments/get", {"experiment_id": reply.json["experiment_id"]})
    assert data["experiment"]["name"] == "model \U0001f680"


async def test_deeply_nested_json_is_400(api):
    reply = await post_raw(api, "[" * 100_000 + "]" * 100_000)
    assert_error_shape(reply, 400, "INVALID_PARAMETER_VALUE")


async def test_an_empty_post_body_is_an_empty_request(api):
    reply = await post_raw(api, b"")
    data = assert_error_shape(reply, 400, "INVALID_PARAMETER_VALUE")
    assert data["message"] == "Missing value for required parameter 'name'."


# -- wrong field types -----------------------------------------------------------------------

# (method, path, body): one ill-typed field each; {run} and {model} are filled in.
WRONG_TYPES = [
    ("POST", "experiments/create", {"name": ["x"]}),
    ("POST", "experiments/create", {"name": "x", "tags": "team=a"}),
    ("POST", "experiments/create", {"name": "x", "tags": [{"key": "k", "value": 1}]}),
    ("POST", "experiments/create", {"name": "x", "artifact_location": 5}),
    ("POST", "experiments/search", {"max_results": "ten"}),
    ("POST", "experiments/search", {"max_results": True}),
    ("POST", "experiments/search", {"max_results": 10, "filter": 5}),
    ("POST", "experiments/search", {"max_results": 10, "order_by": 5}),
    ("POST", "experiments/search", {"max_results": 10, "page_token": 5}),
    ("POST", "experiments/update", {"experiment_id": {"id": 1}, "new_name": "x"}),
    ("POST", "experiments/delete", {"experiment_id": None}),
    ("POST", "experiments/set-experiment-tag", {"experiment_id": "0", "key": "k", "value": 1}),
    ("POST", "runs/create", {"experiment_id": 0}),
    ("POST", "runs/create", {"start_time": 1.5}),
    ("POST", "runs/create", {"run_name": ["a"]}),
    ("POST", "runs/update", {"run_id": "{run}", "end_time": "later"}),
    ("POST", "runs/update", {"run_id": 5}),
    ("POST", "runs/log-metric", {"run_id": "{run}", "key": 1, "value": 1, "timestamp": 1}),
    ("POST", "runs/log-metric", {"run_id": "{run}", "key": "k", "value": [1], "timestamp": 1}),
    ("POST", "runs/log-metric", {"run_id": "{run}", "key": "k", "value": 1, "timestamp": "x"}),
    ("POST", "runs/log-metric", {"run_id": "{run}", "key": "k", "value": 1, "timestamp": -1}),
    ("POST", "runs/log-metric", {"run_id": "{run}", "key": "k", "value": 1, "timestamp": 2**64}),
    ("POST", "runs/log-parameter", {"run_id": "{run}", "key": "k", "value": {"v": 1}}),
    ("POST", "runs/set-tag", {"run_id": "{run}", "key": ["k"], "value": "v"}),
    ("POST", "runs/delete-tag", {"run_id": "{run}", "key": 5}),
    ("POST", "runs/log-batch", {"run_id": "{run}", "metrics": [1, 2]}),
    ("POST", "runs/log-batch", {"run_id": "{run}", "params": {"k": "v"}}),
    ("POST", "runs/log-batch", {"run_id": "{run}", "params": [{"key": "k", "value": 1}]}),
    ("POST", "runs/log-batch", {"run_id": "{run}", "tags": [{"key": None, "value": "v"}]}),
    ("POST", "runs/log-batch", {"run_id": "{run}",
                                "metrics": [{"key": "k", "value": "x", "timestamp": 1}]}),
    ("POST", "runs/search", {"experiment_ids": {"0": "0"}}),
    ("POST", "runs/search", {"experiment_ids": [0]}),
    ("POST", "runs/search", {"experiment_ids": ["0"], "max_results": [5]}),
    ("POST", "runs/search", {"experiment_ids": ["0"], "run_view_type": 1}),
    ("POST", "runs/log-inputs", {"run_id": "{run}", "datasets": [{"dataset": "iris"}]}),
    ("POST", "runs/log-inputs", {"run_id": "{run}",
                                 "datasets": [{"dataset": {"name": 1, "digest": "d"}}]}),
    ("POST", "runs/log-inputs", {"run_id": "{run}", "models": [{"model_id": 5}]}),
    ("POST", "runs/outputs", {"run_id": "{run}", "models": [{"model_id": "{model}",
                                                            "step": "x"}]}),
    ("POST", "runs/log-model", {"run_id": "{run}", "model_json": {"artifact_path": "m"}}),
    ("POST", "runs/log-model", {"run_id": "{run}", "model_json": "NaN"}),
    ("POST", "runs/log-model", {"run_id": "{run}", "model_json": "[1]"}),
    ("POST", "logged-models", {"experiment_id": "0", "name": 5}),
    ("POST", "logged-models", {"experiment_id": "0", "params": [{"key": "k", "value": 1}]}),
    ("PATCH", "logged-models/{model}", {"status": True}),
    ("PATCH", "logged-models/{model}", {"status": 2.5}),
    ("PATCH", "logged-models/{model}/tags", {"tags": "k=v"}),
    ("POST", "logged-models/{model}/params", {"params": [{"key": 1, "value": "v"}]}),
    ("POST", "logged-models/search", {"experiment_ids": ["0"], "max_results": "all"}),
    ("POST", "logged-models/search", {"experiment_ids": ["0"], "order_by": ["name"]}),
    ("POST", "logged-models/search", {"experiment_ids": ["0"],
                                      "order_by": [{"field_name": "name",
                                                    "ascending": "no"}]}),
]


@pytest.mark.parametrize(("method", "endpoint", "body"), WRONG_TYPES,
                         ids=[f"{m} {p} {json.dumps(b)}" for m, p, b in WRONG_TYPES])
async def test_a_wrongly_typed_field_is_400_not_500(api, method, endpoint, body):
    run_id = (await api.create_run())["info"]["run_id"]
    model_id = (await api.create_logged_model())["info"]["model_id"]
    filled = json.loads(json.dumps(body).replace("{run}", run_id).replace("{model}", model_id))
    path = f"{MLFLOW}/{endpoint}".replace("{model}", model_id)
    reply = await api.request(method, path, filled)
    assert_error_shape(reply, 400, "INVALID_PARAMETER_VALUE")


async def test_a_wrongly_typed_query_argument_is_400(api):
    status, data = await api.get("experiments/search", {"max_results": "1.5"})
    assert status == 400
    assert data["error_code"] == "INVALID_PARAMETER_VALUE"


async def test_a_boolean_given_as_other_text_is_400(api):
    # MLflow reads booleans given as text only as "true"/"false".
    status, data = await api.call("POST", f"{MLFLOW}/logged-models/search", {
        "experiment_ids": ["0"], "order_by": [{"field_name": "name", "ascending": "yes"}]})
    assert status == 400
    assert data["message"] == "Invalid boolean value: yes, must be 'true' or 'false'."


# -- out-of-range numbers ---------------------------------------------------------------------


async def test_an_experiment_id_beyond_int64_is_not_a_500(api):
    status, _data = await api.get("experiments/get", {"experiment_id": str(2**70)})
    assert status in (400, 404)


async def test_a_page_token_offset_beyond_int64_is_400(api):
    token = "eyJvZmZzZXQiOiAxMTgwNTkxNjIwNzE3NDExMzAzNDI0fQ=="  # {"offset": 2**70}
    status, _data = await api.post("experiments/search", {"max_results": 5, "page_token": token})
    assert status == 400


async def test_a_filter_number_beyond_int64_is_not_a_500(api):
    status, _data = await api.post("runs/search", {
        "experiment_ids": ["0"], "filter": f"attributes.start_time > {2**70}"})
    assert status in (200, 400)


# -- size limits -----------------------------------------------------------------------------


@pytest.mark.parametrize("labtrack_config", [{"max_request_bytes": 1024}])
async def test_a_body_over_max_request_bytes_is_413(api):
    reply = await post_raw(api, json.dumps({"name": "x" * 2000}))
    data = assert_error_shape(reply, 413, "REQUEST_LIMIT_EXCEEDED")
    assert "max_request_bytes" in data["message"]
    _, found = await api.post("experiments/search", {"max_results": 10})
    assert [e["name"] for e in found["experiments"]] == ["Default"]


@pytest.mark.parametrize("labtrack_config", [{"max_request_bytes": 1024}])
async def test_a_body_at_max_request_bytes_is_accepted(api):
    body = json.dumps({"name": "x", "pad": ""})
    body = json.dumps({"name": "x", "pad": " " * (1024 - len(body))})
    assert len(body) == 1024
    reply = await post_raw(api, body)
    assert reply.status == 200


# -- unknown paths and methods ---------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
async def test_an_unknown_path_under_the_mount_is_a_json_404(api, method):
    reply = await api.request(method, "/api/2.0/mlflow/no-such-endpoint",
                              {} if method == "POST" else None)
    data = assert_error_shape(reply, 404, "ENDPOINT_NOT_FOUND")
    assert "no-such-endpoint" in data["message"]


async def test_an_unimplemented_mlflow_endpoint_is_endpoint_not_found(api):
    # MLflow's client falls back to other endpoint variants on ENDPOINT_NOT_FOUND.
    reply = await api.request("GET", "/api/2.0/mlflow/traces/search")
    assert_error_shape(reply, 404, "ENDPOINT_NOT_FOUND")


async def test_a_path_parameter_must_not_span_segments(api):
    reply = await api.request("GET", f"{MLFLOW}/logged-models/m-1/extra/segments")
    assert_error_shape(reply, 404, "ENDPOINT_NOT_FOUND")


async def test_a_wrong_method_is_405_in_the_error_shape(api):
    reply = await api.request("GET", f"{MLFLOW}/runs/create")
    data = assert_error_shape(reply, 405, "BAD_REQUEST")
    assert data["message"] == "GET is not allowed on this path."


async def test_a_405_lists_the_allowed_methods(api):
    reply = await api.request("PUT", f"{MLFLOW}/experiments/search", {})
    assert reply.status == 405
    assert reply.headers["Allow"] == "GET, POST"


async def test_runs_search_is_post_only_as_in_mlflow(api):
    reply = await api.request("GET", f"{MLFLOW}/runs/search")
    assert_error_shape(reply, 405, "BAD_REQUEST")


async def test_a_wrong_method_on_the_artifact_file_route_is_405(api):
    reply = await api.request("POST", f"{ARTIFACTS}/0/x.txt", {})
    assert_error_shape(reply, 405, "BAD_REQUEST")


# -- keep-alive ------------------------------------------------------------------------------

# tornado's test client asks for "Connection: close" unless told otherwise.
KEEP_ALIVE = {"Connection": "keep-alive"}


async def test_a_request_refused_before_its_body_is_read_announces_the_close(api):
    # tornado drops the connection after such an answer; keep-alive clients (MLflow's pooled
    # requests session) must be told, or their next call fails on the dead connection.
    reply = await api.request("PUT", f"{ARTIFACTS}/..%2Fescape.txt", body=b"x" * 100,
                              headers=KEEP_ALIVE)
    assert reply.status == 400
    assert reply.headers.get("Connection") == "close"


async def test_an_answered_request_keeps_the_connection_open(api):
    reply = await api.request("GET", f"{MLFLOW}/experiments/get", params={"experiment_id": "0"},
                              headers=KEEP_ALIVE)
    assert reply.status == 200
    assert reply.headers.get("Connection") != "close"



# -- bodies nobody asked for -----------------------------------------------------------------


async def status_before_the_body(url: str, headers: str = "") -> bytes:
    """POST declaring a 100 MB body but sending 10 bytes, and read the status line. A server
    that waits for the body (buffering it) never answers; the timeout only ends the hang."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                     f"Content-Length: 100000000\r\n{headers}\r\n".encode() + b"0123456789")
        await writer.drain()
        return await asyncio.wait_for(reader.readline(), timeout=30)
    finally:
        writer.close()


async def test_standalone_refuses_an_anonymous_body_to_an_unknown_path_unread(standalone):
    line = await status_before_the_body(standalone.url + "/no-such-path")
    assert line.startswith(b"HTTP/1.1 401 ")


async def test_standalone_answers_404_to_an_unknown_path_without_reading_the_body(standalone):
    line = await status_before_the_body(standalone.url + "/no-such-path",
                                        f"Authorization: Bearer {STANDALONE_TOKEN}\r\n")
    assert line.startswith(b"HTTP/1.1 404 ")


async def test_jupyter_answers_404_to_an_unknown_path_without_reading_the_body(
        jp_serverapp, http_server_client, jp_base_url, jp_auth_header):
    url = http_server_client.get_url(url_path_join(jp_base_url, "labtrack", "no-such-path"))
    line = await status_before_the_body(url, f"Authorization: {jp_auth_header['Authorization']}"
                                             "\r\n")
    assert line.startswith(b"HTTP/1.1 404 ")
