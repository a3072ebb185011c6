"""The scoring server over real HTTP on 127.0.0.1: every payload format and every error, and
the ``labtrack models serve`` / ``labtrack models predict`` commands."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
from sklearn.linear_model import LogisticRegression

import labtrack
import labtrack.pyfunc
import labtrack.sklearn
from tests.models.conftest import START_TIMEOUT_S

LABTRACK = str(Path(sys.executable).parent / "labtrack")


def weighted_model():
    """x * k + y; refuses negative x (a model error). Defined in a function, so the class is
    pickled by value and the model loads in other processes too."""

    class Weighted(labtrack.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            if (model_input["x"] < 0).any():
                raise ValueError("x must not be negative")
            return model_input["x"] * params["k"] + model_input["y"]

    return Weighted()


def chat_model():
    """A chat model in MLflow's unified LLM shape: it answers with the last message's
    content repeated ``times`` (a param) and echoes any other request key it was given."""

    class Echo(labtrack.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            text = model_input["messages"][-1]["content"]
            extra = sorted(key for key in model_input if key != "messages")
            return {"choices": [{"message": {"role": "assistant",
                                             "content": " ".join([text] * params["times"])}}],
                    "extra_keys": extra}

    return Echo()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A column-based pyfunc model with a params schema, a tensor-based sklearn model and a
    chat model with a params schema and no input schema."""
    from labtrack.models.signature import DataType, ModelSignature, ParamSchema, ParamSpec

    folder = tmp_path_factory.mktemp("scoring-models")
    labtrack.pyfunc.save_model(
        folder / "chat", python_model=chat_model(),
        signature=ModelSignature(params=ParamSchema([ParamSpec("times", DataType.long, 1)])))
    frame = pd.DataFrame({"x": [1.0, 2.0], "y": [0.5, 0.25]})
    labtrack.pyfunc.save_model(folder / "weighted", python_model=weighted_model(),
                               input_example=(frame, {"k": 10.0}))
    rng = np.random.default_rng(1)
    features = rng.random((50, 3))
    labels = (features[:, 0] > 0.5).astype(int)
    estimator = LogisticRegression().fit(features, labels)
    labtrack.sklearn.save_model(estimator, folder / "clf", input_example=features[:2])
    return {"weighted": folder / "weighted", "clf": folder / "clf", "chat": folder / "chat",
            "estimator": estimator, "features": features}


@pytest.fixture(scope="module")
def servers(models):
    from labtrack.models.scoring import build_server

    started = {name: build_server(models=[str(models[name])], port=0).start()
               for name in ("weighted", "clf", "chat")}
    yield {name: server.url for name, server in started.items()}
    for server in started.values():
        server.stop()


def post(url, body, content_type="application/json"):
    data = json.dumps(body) if not isinstance(body, (str, bytes)) else body
    headers = {"Content-Type": content_type} if content_type else {}
    return requests.post(f"{url}/invocations", data=data, headers=headers, timeout=30)


def predictions(response):
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json"
    return response.json()["predictions"]


def test_health_ping_and_version(servers):
    for path in ("/ping", "/health"):
        response = requests.get(servers["weighted"] + path, timeout=30)
        assert response.status_code == 200 and response.text == "\n"
    assert requests.get(servers["weighted"] + "/version", timeout=30).text == (
        labtrack.__version__)


def test_dataframe_split(servers):
    body = {"dataframe_split": {"columns": ["x", "y"], "data": [[1.0, 0.5], [2, 1]]}}
    assert predictions(post(servers["weighted"], body)) == [{"0": 10.5}, {"0": 21.0}]
    body = {"dataframe_split": {"columns": ["y", "x"], "index": [7, 8],
                                "data": [[0.5, 1.0], [1, 2]]}, "params": {"k": 2}}
    assert predictions(post(servers["weighted"], body)) == [{"0": 2.5}, {"0": 5.0}]


def test_dataframe_records_with_params_and_charset(servers):
    body = {"dataframe_records": [{"x": 1, "y": 0}, {"x": 3, "y": 1}], "params": {"k": 3}}
    response = post(servers["weighted"], body, "application/json; charset=utf-8")
    assert predictions(response) == [{"0": 3.0}, {"0": 10.0}]


def test_instances_and_inputs(servers, models):
    assert predictions(post(servers["weighted"], {
        "instances": [{"x": 1.0, "y": 1.0}, {"x": 2.0, "y": 0.0}]})) == [{"0": 11.0},
                                                                          {"0": 20.0}]
    assert predictions(post(servers["weighted"], {
        "inputs": {"x": [1, 2], "y": [0, 0]}, "params": {"k": 1}})) == [{"0": 1.0},
                                                                         {"0": 2.0}]
    rows = models["features"][:4]
    expected = models["estimator"].predict(rows).tolist()
    assert predictions(post(servers["clf"], {"inputs": rows.tolist()})) == expected
    assert predictions(post(servers["clf"], {"instances": rows.tolist()})) == expected
    split = {"dataframe_split": {"columns": ["a", "b", "c"], "data": rows.tolist()}}
    assert predictions(post(servers["clf"], split)) == expected


def test_csv(servers, models):
    assert predictions(post(servers["weighted"], "x,y\n1,2\n3,4\n", "text/csv")) == [
        {"0": 12.0}, {"0": 34.0}]
    rows = models["features"][:3]
    text = pd.DataFrame(rows, columns=["a", "b", "c"]).to_csv(index=False)
    assert predictions(post(servers["clf"], text, "text/csv; charset=utf-8")) == (
        models["estimator"].predict(rows).tolist())


def test_parquet(servers, models):
    frame = pd.DataFrame({"x": [1.0, 3.0], "y": [2.0, 4.0]})
    response = post(servers["weighted"], frame.to_parquet(), "application/vnd.apache.parquet")
    assert predictions(response) == [{"0": 12.0}, {"0": 34.0}]
    rows = models["features"][:3]
    table = pd.DataFrame(rows, columns=["a", "b", "c"]).to_parquet()
    assert predictions(post(servers["clf"], table, "application/vnd.apache.parquet")) == (
        models["estimator"].predict(rows).tolist())
    response = post(servers["weighted"], b"PAR1 not parquet", "application/vnd.apache.parquet")
    assert response.status_code == 400
    assert "valid Parquet Pandas DataFrame" in response.json()["message"]


def test_parquet_without_pyarrow_says_what_to_install(monkeypatch, models):
    from labtrack.models.pyfunc import load_model
    from labtrack.models.scoring import score

    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow → ImportError
    result = score(load_model(str(models["weighted"])), b"PAR1",
                   "application/vnd.apache.parquet")
    assert result.status == 415
    assert "pip install 'labtrack[parquet]'" in result.body


def test_unified_llm_payloads_go_unwrapped(servers):
    body = {"messages": [{"role": "user", "content": "hi"}], "times": 3, "temperature": 0.5}
    response = post(servers["chat"], body)
    assert response.status_code == 200, response.text
    # No "predictions" wrapper; "times" is a param of the signature, "temperature" is not,
    # so it stays in the model's input (as MLflow splits them).
    assert response.json() == {
        "choices": [{"message": {"role": "assistant", "content": "hi hi hi"}}],
        "extra_keys": ["temperature"]}
    response = post(servers["chat"], {"messages": [{"role": "user", "content": "yo"}]})
    assert response.json()["choices"][0]["message"]["content"] == "yo"
    response = post(servers["chat"], {"messages": [{"role": "user", "content": "x"}],
                                      "times": "many"})
    assert response.status_code == 400
    assert "Param 'times'" in response.json()["message"]


@pytest.mark.parametrize(("body", "code", "message"), [
    ("{not json", "BAD_REQUEST", "Ensure that input is a valid JSON formatted string"),
    (b"\xff\xfe{", "BAD_REQUEST", "valid JSON"),
    ([1, 2], "BAD_REQUEST", "Received a list"),
    ({"data": [[1]]}, "BAD_REQUEST", "exactly one of the input fields"),
    ({"columns": ["x"], "data": [[1]]}, "BAD_REQUEST", "changed in MLflow 2.0"),
    ({"inputs": [[1]], "instances": [[1]]}, "BAD_REQUEST", "Received dictionary with input "
                                                             "fields: ['inputs', 'instances']"),
    ({"dataframe_split": [[1, 2]]}, "BAD_REQUEST", "split format must be a dictionary"),
    ({"dataframe_split": {"columns": ["x"]}}, "BAD_REQUEST", "must have a 'data' field"),
    ({"dataframe_split": {"data": [[1]], "rows": 1}}, "BAD_REQUEST",
     "must have a 'data' field"),
    ({"dataframe_split": {"columns": ["x", "y", "z"], "data": [[1, 2]]}}, "BAD_REQUEST",
     "not a valid dataframe representation"),
    ({"dataframe_records": {"x": 1}}, "BAD_REQUEST", "must be a list of records"),
    ({"dataframe_records": [[1, 2]]}, "BAD_REQUEST", "must be a list of records"),
    ({"inputs": {"x": [1], "y": [1]}, "params": [1]}, "BAD_REQUEST",
     "'params' must be a JSON object"),
    ({"instances": [{"x": 1, "y": 1}, {"x": 2}]}, "BAD_REQUEST",
     "length of values for each input/column name are not the same"),
    ({"inputs": {"x": [[1, 2], [3]], "y": [1, 2]}}, "BAD_REQUEST",
     "Input 'x' could not be read as an array"),
    ({"dataframe_records": [{"x": 1.0}]}, "INVALID_PARAMETER_VALUE",
     "Model is missing inputs ['y']"),
    ({"dataframe_records": [{"x": "one", "y": 1.0}]}, "INVALID_PARAMETER_VALUE",
     "Incompatible input types for column 'x'"),
    ({"dataframe_records": [{"x": 1.0, "y": 1.0}], "params": {"k": "ten"}},
     "INVALID_PARAMETER_VALUE", "Param 'k' must be double"),
    ({"dataframe_records": [{"x": -1.0, "y": 1.0}]}, "BAD_REQUEST",
     "unexpected error while evaluating the model. Verify that the input is compatible with "
     "the model for inference. Error: ValueError: x must not be negative"),
])
def test_malformed_json_is_a_clear_400(servers, body, code, message):
    response = post(servers["weighted"], body)
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] == code
    assert message in response.json()["message"]


def test_tensor_errors(servers):
    response = post(servers["clf"], {"inputs": [[1.0, 2.0]]})
    assert response.status_code == 400
    assert "shape of input (1, 2) does not match the expected shape (-1, 3)" in (
        response.json()["message"])
    response = post(servers["clf"], {"inputs": [[1.0, "a", 2.0]]})
    assert response.status_code == 400
    assert "could not be read as an array of float64" in response.json()["message"]


@pytest.mark.parametrize("body", ["", "x,y\n", "\xff"])
def test_bad_csv_is_a_400(servers, body):
    raw = body.encode("latin-1")
    response = post(servers["weighted"], raw, "text/csv")
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] in ("BAD_REQUEST", "INVALID_PARAMETER_VALUE")


@pytest.mark.parametrize(("content_type", "message"), [
    ("text/plain", "only supports the following content types"),
    ("application/x-parquet", "only supports the following content types"),
    ("application/json; charset=latin-1", "only supports UTF-8"),
    ("application/json; format=pandas-split", "Unrecognized content type parameter 'format'"),
    (None, "A Content-Type header is required"),
])
def test_unsupported_content_types_are_415(servers, content_type, message):
    response = post(servers["weighted"], {"inputs": {"x": [1], "y": [1]}}, content_type)
    assert response.status_code == 415
    assert message in response.text


def test_unknown_routes_and_methods(servers):
    response = requests.get(servers["weighted"] + "/predict", timeout=30)
    assert response.status_code == 404
    assert response.json()["error_code"] == "ENDPOINT_NOT_FOUND"
    response = requests.get(servers["weighted"] + "/invocations", timeout=30)
    assert response.status_code == 405
    variants = requests.get(servers["weighted"] + "/variants", timeout=30).json()
    assert [v["name"] for v in variants["variants"]] == ["default"]
    assert variants["variants"][0]["errors"] >= 1


def _start_cli(arguments, env, log):
    """``labtrack models serve … --port 0``; returns the process and the URL it printed."""
    with open(log, "wb") as errors:
        process = subprocess.Popen([LABTRACK, "models", "serve", *arguments, "--port", "0"],
                                   stdout=subprocess.PIPE, stderr=errors, text=True, env=env)
    found = {}

    def read():
        for line in process.stdout:
            if line.startswith("Listening on "):
                found["url"] = line.split("Listening on ", 1)[1].strip()
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(START_TIMEOUT_S)
    if "url" not in found:
        process.kill()
        process.wait()
        process.stdout.close()
        raise AssertionError(f"serve did not start: {Path(log).read_text()}")
    return process, found["url"]


def _stop_cli(process):
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(60)
    finally:
        process.stdout.close()


def _cli_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABTRACK_")}
    env["LABTRACK_TRACKING_URI"] = str(tmp_path / "store")
    return env


def test_serve_command(models, tmp_path):
    process, url = _start_cli(["-m", str(models["weighted"])], _cli_env(tmp_path),
                              tmp_path / "serve.log")
    try:
        assert requests.get(url + "/ping", timeout=30).status_code == 200
        body = {"dataframe_split": {"columns": ["x", "y"], "data": [[1, 1]]}}
        assert predictions(post(url, body)) == [{"0": 11.0}]
    finally:
        assert _stop_cli(process) == 0


def test_predict_command(models, tmp_path):
    env = _cli_env(tmp_path)
    (tmp_path / "in.csv").write_text("x,y\n1,0\n2,1\n")
    (tmp_path / "in.json").write_text(json.dumps(
        {"dataframe_records": [{"x": 1, "y": 0}], "params": {"k": 2}}))
    pd.DataFrame({"x": [3.0], "y": [1.0]}).to_parquet(tmp_path / "in.parquet")
    for source, expected in (("in.csv", [{"0": 10.0}, {"0": 21.0}]),
                             ("in.json", [{"0": 2.0}]),
                             ("in.parquet", [{"0": 31.0}])):
        result = subprocess.run([LABTRACK, "models", "predict", "-m", str(models["weighted"]),
                                 "-i", str(tmp_path / source), "-o", str(tmp_path / "out.json")],
                                capture_output=True, text=True, env=env, timeout=300)
        assert result.returncode == 0, result.stderr
        assert json.loads((tmp_path / "out.json").read_text()) == {"predictions": expected}
    (tmp_path / "bad.json").write_text('{"dataframe_records": [{"x": 1}]}')
    result = subprocess.run([LABTRACK, "models", "predict", "-m", str(models["weighted"]),
                             "-i", str(tmp_path / "bad.json")], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 2
    assert "Model is missing inputs ['y']" in result.stderr
