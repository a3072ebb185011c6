"""A/B serving: a 90/10 split over 10,000 requests, sticky request keys, and a registry alias
moved under traffic with zero failed requests — ``labtrack models serve --variant`` in a
subprocess, driven over HTTP on 127.0.0.1."""

from __future__ import annotations

import os
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest
import requests

import labtrack
import labtrack.pyfunc
from labtrack.models.routing import RegistryPoller, Router, Variant, VariantSpec
from labtrack.models.scoring import VARIANT_HEADER, VERSION_HEADER
from tests.models.conftest import wait_for
from tests.models.test_scoring import _start_cli, _stop_cli

REQUESTS = 10_000
WORKERS = 8
BODY = {"dataframe_split": {"columns": ["x"], "data": [[1.0]]}}


def constant_model(value):
    """A model answering ``value`` (its class is pickled by value: the server process loads
    it without this test module)."""

    class Constant(labtrack.pyfunc.PythonModel):
        def predict(self, model_input):
            return [value] * len(model_input)

    return Constant()


@pytest.fixture
def registry(fluent_uri):
    """Model 'rec' with versions 1, 2, 3 answering 1, 2, 3; champion → 1, challenger → 2."""
    frame = pd.DataFrame({"x": [1.0]})
    for value in (1, 2, 3):
        with labtrack.start_run():
            labtrack.pyfunc.log_model("model", python_model=constant_model(value),
                                      input_example=frame, registered_model_name="rec")
    client = labtrack.TrackingClient(fluent_uri)
    client.set_registered_model_alias("rec", "champion", 1)
    client.set_registered_model_alias("rec", "challenger", 2)
    return client


@pytest.fixture
def ab_server(registry, fluent_uri, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABTRACK_")}
    env["LABTRACK_HOME"] = str(tmp_path / "home")
    process, url = _start_cli(
        ["--variant", "a=models:/rec@champion:90", "--variant", "b=models:/rec@challenger:10",
         "--tracking-uri", fluent_uri, "--poll-interval", "0.2", "--metrics-interval", "0.5"],
        env, tmp_path / "serve.log")
    try:
        yield url, process
    finally:
        if process.poll() is None:
            _stop_cli(process)


class Traffic:
    """Sends requests from ``WORKERS`` threads (one keep-alive session each) and records what
    came back: (key, status, variant, version, prediction)."""

    def __init__(self, url):
        self.url = url
        self.local = threading.local()
        self.lock = threading.Lock()
        self.results = []

    def send(self, key):
        session = getattr(self.local, "session", None)
        if session is None:
            session = self.local.session = requests.Session()
        headers = {"X-Request-Key": key} if key else {}
        response = session.post(f"{self.url}/invocations", json=BODY, headers=headers,
                                timeout=60)
        prediction = response.json()["predictions"][0] if response.ok else None
        record = (key, response.status_code, response.headers.get(VARIANT_HEADER),
                  response.headers.get(VERSION_HEADER), prediction)
        with self.lock:
            self.results.append(record)
        return record

    def send_all(self, keys):
        with ThreadPoolExecutor(WORKERS) as pool:
            return list(pool.map(self.send, keys))


def test_split_stickiness_reload_and_metrics(ab_server, registry):
    url, process = ab_server
    traffic = Traffic(url)

    # 10,000 requests from 10,000 different keys: a 90/10 split within ±2 points.
    results = traffic.send_all([f"user-{uuid.uuid4().hex}" for _ in range(REQUESTS)])
    assert all(status == 200 for _, status, *_ in results)
    counts = Counter(variant for _, _, variant, _, _ in results)
    assert set(counts) == {"a", "b"}
    assert abs(counts["a"] / REQUESTS - 0.90) <= 0.02, counts
    # Each variant serves its version: a → champion (1), b → challenger (2).
    assert {(v, version, p) for _, _, v, version, p in results} == {("a", "1", 1),
                                                                    ("b", "2", 2)}

    # Sticky: every request of a key reaches the same variant.
    keys = [f"session-{n}" for n in range(300)] * 5
    sticky = traffic.send_all(keys)
    by_key = {}
    for key, _, variant, _, _ in sticky:
        by_key.setdefault(key, set()).add(variant)
    assert all(len(variants) == 1 for variants in by_key.values())
    assert {v for variants in by_key.values() for v in variants} == {"a", "b"}

    # Without a key the split is exact (weighted round-robin).
    keyless = Counter(v for _, _, v, _, _ in traffic.send_all([None] * 1000))
    assert keyless == {"a": 900, "b": 100}

    # Move the challenger alias while traffic flows: no request fails.
    stop = threading.Event()

    def background():
        n = 0
        while not stop.is_set():
            traffic.send(f"load-{n}")
            n += 1

    before = len(traffic.results)
    threads = [threading.Thread(target=background) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: len(traffic.results) > before + 200)
        registry.set_registered_model_alias("rec", "challenger", 3)
        wait_for(lambda: requests.get(f"{url}/variants", timeout=30).json()["variants"][1][
            "model_version"] == "3")
        switched = len(traffic.results)
        wait_for(lambda: sum(1 for r in traffic.results[switched:] if r[2] == "b") >= 50)
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    during = traffic.results[before:]
    assert all(status == 200 for _, status, *_ in during), Counter(r[1] for r in during)
    b_answers = [(version, prediction) for _, _, v, version, prediction in during if v == "b"]
    assert set(b_answers) == {("2", 2), ("3", 3)}
    after = [r for r in traffic.results[switched:] if r[2] == "b"]
    assert sum(1 for r in after if r[3] == "2") <= 4  # only requests already in flight
    assert after[-1][3] == "3"
    assert {(v, version) for _, _, v, version, _ in during if v == "a"} == {("a", "1")}

    # Stopping the server logs the last interval and ends the metrics run.
    assert _stop_cli(process) == 0
    served = Counter(variant for _, _, variant, _, _ in traffic.results)
    experiment = registry.get_experiment_by_name("serving")
    (run,) = registry.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    metrics = run.data.metrics
    assert metrics["a.requests"] == served["a"] and metrics["b.requests"] == served["b"]
    assert metrics["a.errors"] == metrics["b.errors"] == 0
    for variant in ("a", "b"):
        history = registry.get_metric_history(run.info.run_id, f"{variant}.latency_p99_ms")
        assert history and all(point.value > 0 for point in history)
        assert registry.get_metric_history(run.info.run_id, f"{variant}.latency_p50_ms")
        assert registry.get_metric_history(run.info.run_id, f"{variant}.latency_p95_ms")
    versions = {p.value for p in registry.get_metric_history(run.info.run_id,
                                                             "b.model_version")}
    assert versions == {2.0, 3.0}
    assert run.data.params == {"a.uri": "models:/rec@champion", "a.weight": "90",
                               "b.uri": "models:/rec@challenger", "b.weight": "10"}


@pytest.mark.parametrize(("text", "expected"), [
    ("a=models:/rec@champion:90", VariantSpec("a", "models:/rec@champion", 90.0)),
    ("b=models:/rec/2", VariantSpec("b", "models:/rec/2", 1.0)),
    ("c=runs:/abc/model:0.5", VariantSpec("c", "runs:/abc/model", 0.5)),
    ("d=/srv/models/rec", VariantSpec("d", "/srv/models/rec", 1.0)),
])
def test_variant_specs(text, expected):
    assert VariantSpec.parse(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("models:/rec@champion", "expected name=URI:weight"),
    ("a b=models:/rec/1", "Invalid variant name"),
    ("a=models:/rec/1:0", "the weight must be positive"),
    ("a=models:/rec", "name a version"),
])
def test_bad_variant_specs(text, message):
    with pytest.raises(labtrack.LabtrackError, match=message):
        VariantSpec.parse(text)


def test_hash_routing_follows_the_weights():
    """The router alone: buckets of 10,000 keys land by weight, the same key always on the
    same variant."""

    class Stub:
        version = None

    router = Router([Variant(VariantSpec("a", "models:/m/1", 3), Stub()),
                     Variant(VariantSpec("b", "models:/m/2", 1), Stub())])
    picks = Counter(router.choose(f"k{n}").name for n in range(10_000))
    assert abs(picks["a"] / 10_000 - 0.75) <= 0.02
    assert all(router.choose("same").name == router.choose("same").name for _ in range(50))


def test_a_broken_version_is_not_swapped_in(fluent_uri, serve):
    """The poller keeps serving the current version when the new one fails to load, and
    picks up the next good one."""

    class Broken(labtrack.pyfunc.PythonModel):
        def load_context(self, context):
            raise RuntimeError("missing feature store credentials")

        def predict(self, model_input):
            return [0] * len(model_input)

    client = labtrack.TrackingClient(fluent_uri)
    for model in (constant_model(1), Broken(), constant_model(3)):
        with labtrack.start_run():
            labtrack.pyfunc.log_model("model", python_model=model,
                                      registered_model_name="flaky")
    client.set_registered_model_alias("flaky", "live", 1)
    server = serve(models=["models:/flaky@live"], poll_interval=None, tracking_uri=fluent_uri)
    variant = server.router.variants[0]
    poller = RegistryPoller(server.router, client, interval=3600)

    def answer():
        response = requests.post(f"{server.url}/invocations", json=BODY, timeout=30)
        assert response.status_code == 200, response.text
        return response.headers[VERSION_HEADER], response.json()["predictions"]

    assert answer() == ("1", [1])
    client.set_registered_model_alias("flaky", "live", 2)
    assert poller.check(variant) is False
    assert answer() == ("1", [1])
    client.set_registered_model_alias("flaky", "live", 3)
    assert poller.check(variant) is True
    assert answer() == ("3", [3])


def test_a_stage_move_reloads_the_variant(fluent_uri, serve):
    """models:/<name>/Production follows transitions: archiving v1 and promoting v2."""
    client = labtrack.TrackingClient(fluent_uri)
    for value in (1, 2):
        with labtrack.start_run():
            labtrack.pyfunc.log_model("model", python_model=constant_model(value),
                                      registered_model_name="staged")
    client.transition_model_version_stage("staged", 1, "Production")
    server = serve(variants=["prod=models:/staged/Production:1", "pinned=models:/staged/1:1"],
                   poll_interval=0.1, tracking_uri=fluent_uri)

    def served():
        return {v["name"]: v["model_version"] for v in
                requests.get(f"{server.url}/variants", timeout=30).json()["variants"]}

    assert served() == {"prod": "1", "pinned": "1"}
    client.transition_model_version_stage("staged", 2, "Production",
                                          archive_existing_versions=True)
    wait_for(lambda: served() == {"prod": "2", "pinned": "1"})
    response = requests.post(f"{server.url}/invocations", json=BODY,
                             headers={"X-Request-Key": "k"}, timeout=30)
    assert response.status_code == 200
    assert response.json()["predictions"] == [int(response.headers[VERSION_HEADER])]
