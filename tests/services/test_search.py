"""The search grammar: a table of filters and the runs they must return, ordering, paging."""

from __future__ import annotations

import pytest

from labtrack.entities import Metric, Param, RunStatus, RunTag, ViewType
from labtrack.errors import InvalidParameterValue
from labtrack.services.search import (
    EXPERIMENT_ATTRIBUTES,
    make_page_token,
    parse_filter,
    parse_order_by,
    parse_page_token,
)
from labtrack.store.query import Comparison, Entity, OrderTerm

NAN = float("nan")

# name, start_time, user, status, metrics, params, tags
RUNS = [
    ("alpha", 1000, "ann", "FINISHED", {"acc": 0.9, "loss": 0.2, "val acc": 0.8},
     {"model": "cnn", "lr": "0.01"}, {"team": "vision", "mlflow.source.name": "train.py"}),
    ("beta", 2000, "bob", "FAILED", {"acc": 0.5, "loss": 0.7},
     {"model": "rnn", "lr": "0.1"}, {"team": "nlp"}),
    ("gamma", 3000, "ann", "FINISHED", {"acc": NAN, "loss": float("inf")},
     {"model": "CNN-large", "lr": "0.01"}, {"team": "Vision"}),
    ("delta", 4000, "cy", "RUNNING", {"loss": -1.5},
     {"model": "cnn_small"}, {}),
    ("epsilon", 5000, "cy", "KILLED", {"acc": 0.5},
     {}, {"team": "it's quoted"}),
]


@pytest.fixture
def seeded(service):
    experiment_id = service.create_experiment("grammar")
    ids = {}
    for name, start, user, status, metrics, params, tags in RUNS:
        run = service.create_run(experiment_id, user_id=user, start_time=start, run_name=name)
        service.log_batch(
            run.info.run_id,
            metrics=[Metric(k, v, start, 0) for k, v in metrics.items()],
            params=[Param(k, v) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
        service.update_run(run.info.run_id, status=status)
        ids[name] = run.info.run_id
    return service, experiment_id, ids


def names(runs):
    return {r.info.run_name for r in runs}


FILTER_TABLE = [
    # metrics: numeric comparators on the latest value; NaN only matches !=
    ("metrics.acc > 0.5", {"alpha"}),
    ("metrics.acc >= 0.5", {"alpha", "beta", "epsilon"}),
    ("metrics.acc = 0.5", {"beta", "epsilon"}),
    ("metrics.acc != 0.5", {"alpha", "gamma"}),
    ("metrics.acc < 1", {"alpha", "beta", "epsilon"}),
    ("metrics.acc <= 0.9", {"alpha", "beta", "epsilon"}),
    ("metrics.loss > 100", {"gamma"}),
    ("metrics.loss < -1", {"delta"}),
    ("metrics.loss >= -1.5e0", {"alpha", "beta", "gamma", "delta"}),
    ("metric.acc > .6", {"alpha"}),
    ("metrics.`val acc` > 0", {"alpha"}),
    ('metrics."val acc" > 0', {"alpha"}),
    ("metrics.missing > 0", set()),
    ("metrics.missing != 0", set()),
    # params and tags: string comparators, LIKE case-sensitive, ILIKE not
    ("params.model = 'cnn'", {"alpha"}),
    ("params.model != 'cnn'", {"beta", "gamma", "delta"}),
    ("params.model LIKE 'cnn%'", {"alpha", "delta"}),
    ("params.model LIKE '%NN%'", {"gamma"}),
    ("params.model ILIKE 'cnn%'", {"alpha", "gamma", "delta"}),
    ("params.model like 'cnn_small'", {"delta"}),
    ("params.model LIKE 'cnn_'", set()),
    ("params.model LIKE 'r_n'", {"beta"}),
    ("params.model IS NULL", {"epsilon"}),
    ("params.model IS NOT NULL", {"alpha", "beta", "gamma", "delta"}),
    ("parameters.lr = '0.01'", {"alpha", "gamma"}),
    ('params.lr = "0.1"', {"beta"}),
    ("tags.team = 'vision'", {"alpha"}),
    ("tags.team ILIKE 'VISION'", {"alpha", "gamma"}),
    ("tags.team = 'it''s quoted'", {"epsilon"}),
    ("tags.`mlflow.source.name` = 'train.py'", {"alpha"}),
    ("tags.mlflow.source.name = 'train.py'", {"alpha"}),
    ("tag.team IS NULL", {"delta"}),
    # attributes
    ("attributes.status = 'FINISHED'", {"alpha", "gamma"}),
    ("status != 'FINISHED'", {"beta", "delta", "epsilon"}),
    ("attributes.user_id = 'ann'", {"alpha", "gamma"}),
    ("attributes.run_name LIKE '%a'", {"alpha", "beta", "gamma", "delta"}),
    ("attributes.`run name` = 'beta'", {"beta"}),
    ("run_name ILIKE 'ALPHA'", {"alpha"}),
    ("attributes.start_time >= 3000", {"gamma", "delta", "epsilon"}),
    ("attributes.created < 2000", {"alpha"}),
    ("attributes.end_time > 0", {"alpha", "beta", "gamma", "epsilon"}),
    ("attr.artifact_uri LIKE 'file://%'", {"alpha", "beta", "gamma", "delta", "epsilon"}),
    # conjunctions
    ("metrics.acc > 0.4 AND params.model LIKE 'cnn%'", {"alpha"}),
    ("metrics.acc >= 0.5 and tags.team != 'nlp' and attributes.user_id = 'cy'", {"epsilon"}),
    ("", {"alpha", "beta", "gamma", "delta", "epsilon"}),
]


@pytest.mark.parametrize(("filter_string", "expected"), FILTER_TABLE,
                         ids=[f for f, _ in FILTER_TABLE])
def test_filter_table(seeded, filter_string, expected):
    service, experiment_id, _ = seeded
    assert names(service.search_runs([experiment_id], filter_string)) == expected


def test_run_id_in_and_not_in(seeded):
    service, experiment_id, ids = seeded
    wanted = f"('{ids['alpha']}', '{ids['delta']}')"
    assert names(service.search_runs([experiment_id], f"attributes.run_id IN {wanted}")) == {
        "alpha", "delta"}
    assert names(service.search_runs([experiment_id], f"run_id NOT IN {wanted}")) == {
        "beta", "gamma", "epsilon"}


@pytest.mark.parametrize(
    ("filter_string", "message"),
    [
        ("metrics.acc > 0.5 OR metrics.acc < 0.1", "Invalid clause(s) in filter string: 'OR'"),
        ("(metrics.acc > 0.5)", "parentheses are not supported"),
        ("metrics.acc LIKE '0.5'", "invalid comparator 'LIKE' for metric 'acc'"),
        ("metrics.acc > 'high'", "expected a number for metric 'acc'"),
        ("params.model > 'a'", "invalid comparator '>' for param 'model'"),
        ("params.model = cnn", "expected a quoted string value for param 'model'"),
        ("params.model IN ('a')", "invalid comparator 'IN' for param 'model'"),
        ("attributes.status IN ('FINISHED')", "invalid comparator 'IN' for attribute"),
        ("attributes.bogus = 'x'", "invalid attribute key 'bogus'"),
        ("attributes.start_time = 'yesterday'", "expected a number for attribute 'start_time'"),
        ("foo.bar = 'x'", "invalid entity type 'foo'"),
        ("datasets.name = 'x'", "filtering by datasets is not supported yet"),
        ("metrics.acc >", "it ends too early"),
        ("metrics.acc > 0.5 metrics.loss < 1", "expected AND before"),
        ("metrics.acc ~ 1", "unexpected character '~'"),
        ("params.model IS 'x'", "expected NULL or NOT NULL after IS"),
        ("run_id IN ('a', 'b'", "it ends too early"),
        ("metrics. > 1", "expected a key after 'metrics.'"),
    ],
)
def test_filter_errors_are_clear(seeded, filter_string, message):
    service, experiment_id, _ = seeded
    with pytest.raises(InvalidParameterValue) as caught:
        service.search_runs([experiment_id], filter_string)
    assert message in caught.value.message
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"


def order(service, experiment_id, *clauses):
    return [r.info.run_name for r in service.search_runs([experiment_id],
                                                          order_by=list(clauses))]


def test_order_by_metric_puts_nan_then_missing_last(seeded):
    service, experiment_id, _ = seeded
    # acc: alpha .9, beta .5 (start 2000), epsilon .5 (start 5000), gamma NaN, delta missing;
    # ties go by start time, newest first.
    assert order(service, experiment_id, "metrics.acc DESC") == [
        "alpha", "epsilon", "beta", "gamma", "delta"]
    assert order(service, experiment_id, "metrics.acc") == [
        "epsilon", "beta", "alpha", "gamma", "delta"]
    assert order(service, experiment_id, "metrics.loss ASC") == [
        "delta", "alpha", "beta", "gamma", "epsilon"]


def test_order_by_several_keys_and_attributes(seeded):
    service, experiment_id, _ = seeded
    assert order(service, experiment_id, "params.lr ASC", "metrics.acc DESC") == [
        "alpha", "gamma", "beta", "epsilon", "delta"]
    assert order(service, experiment_id, "attributes.start_time") == [
        "alpha", "beta", "gamma", "delta", "epsilon"]
    assert order(service, experiment_id, "user_id DESC", "run_name") == [
        "delta", "epsilon", "beta", "alpha", "gamma"]
    # Binary string order (upper case first); the run without the tag comes last.
    assert order(service, experiment_id, "tags.team") == [
        "gamma", "epsilon", "beta", "alpha", "delta"]


def test_order_by_errors(seeded):
    service, experiment_id, _ = seeded
    with pytest.raises(InvalidParameterValue, match="duplicate fields"):
        service.search_runs([experiment_id], order_by=["metrics.acc", "metrics.acc DESC"])
    with pytest.raises(InvalidParameterValue, match="expected '<identifier> \\[ASC\\|DESC\\]'"):
        service.search_runs([experiment_id], order_by=["metrics.acc sideways"])
    with pytest.raises(InvalidParameterValue, match="invalid attribute key"):
        service.search_runs([experiment_id], order_by=["nonsense"])


def test_paging_walks_every_run_once_in_order(seeded):
    service, experiment_id, _ = seeded
    expected = order(service, experiment_id, "metrics.acc DESC")
    seen, token = [], None
    while True:
        page = service.search_runs([experiment_id], order_by=["metrics.acc DESC"],
                                   max_results=2, page_token=token)
        seen.extend(r.info.run_name for r in page)
        assert len(page) <= 2
        token = page.token
        if token is None:
            break
    assert seen == expected
    exact = service.search_runs([experiment_id], max_results=5)
    assert len(exact) == 5 and exact.token is None


def test_view_types(seeded):
    service, experiment_id, ids = seeded
    service.delete_run(ids["beta"])
    assert "beta" not in names(service.search_runs([experiment_id]))
    assert names(service.search_runs([experiment_id], run_view_type=ViewType.DELETED_ONLY)) == {
        "beta"}
    assert len(service.search_runs([experiment_id], run_view_type="ALL")) == 5
    with pytest.raises(InvalidParameterValue, match="Invalid view type 'SOME'"):
        service.search_runs([experiment_id], run_view_type="SOME")


def test_search_across_experiments(seeded):
    service, experiment_id, _ = seeded
    other = service.create_experiment("other")
    service.create_run(other, run_name="zeta")
    assert len(service.search_runs([experiment_id, other])) == 6
    assert names(service.search_runs([other])) == {"zeta"}
    assert len(service.search_runs(["9999"])) == 0


def test_page_tokens():
    assert parse_page_token(make_page_token(42)) == 42
    assert make_page_token(1) == "eyJvZmZzZXQiOiAxfQ=="  # MLflow's encoding
    assert parse_page_token(None) == 0
    for bad in ("not base64!", "eyJmb28iOiAxfQ==", make_page_token(-1)):
        with pytest.raises(InvalidParameterValue, match="Invalid page token"):
            parse_page_token(bad)


def test_parse_filter_shapes():
    assert parse_filter("metrics.acc > 0.5 AND params.m = 'x'") == [
        Comparison(Entity.METRIC, "acc", ">", 0.5), Comparison(Entity.PARAM, "m", "=", "x")]
    assert parse_filter("created >= 5") == [
        Comparison(Entity.ATTRIBUTE, "start_time", ">=", 5)]
    assert parse_filter("tags.t IS NOT NULL") == [
        Comparison(Entity.TAG, "t", "IS NOT NULL", None)]
    assert parse_order_by(["metrics.`a b` DESC", "start_time"]) == [
        OrderTerm(Entity.METRIC, "a b", False), OrderTerm(Entity.ATTRIBUTE, "start_time", True)]


def test_experiment_search_grammar(service):
    service.create_experiment("forecast-plant-1", tags={"site": "north"})
    service.create_experiment("forecast-plant-2", tags={"site": "south"})
    service.create_experiment("Recommender")

    def search(filter_string=None, order_by=None, view="ACTIVE_ONLY"):
        return [e.name for e in service.search_experiments(view, 100, filter_string, order_by)]

    assert search("name LIKE 'forecast%'", ["name DESC"]) == [
        "forecast-plant-2", "forecast-plant-1"]
    assert search("name ILIKE 'recommender'") == ["Recommender"]
    assert search("tags.site = 'north'") == ["forecast-plant-1"]
    assert search("tags.site IS NULL", ["name"]) == ["Default", "Recommender"]
    assert search("attributes.creation_time > 0 AND name != 'Default'", ["name"]) == [
        "Recommender", "forecast-plant-1", "forecast-plant-2"]
    assert search(order_by=["experiment_id"])[0] == "Default"
    assert search("experiment_id IN ('0')") == ["Default"]
    with pytest.raises(InvalidParameterValue, match="only attributes, tags can be searched"):
        service.search_experiments(filter_string="metrics.acc > 1")
    with pytest.raises(InvalidParameterValue, match="invalid attribute key 'status'"):
        parse_filter("status = 'x'", EXPERIMENT_ATTRIBUTES)


def test_status_of_seeded_runs(seeded):
    service, _, ids = seeded
    assert service.get_run(ids["delta"]).info.status == RunStatus.RUNNING
    assert service.get_run(ids["alpha"]).info.end_time is not None
