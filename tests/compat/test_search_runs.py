"""``search_runs`` through the stock mlflow client: filters, ordering, paging, DataFrames."""

from __future__ import annotations

import math

import mlflow
import pytest
from mlflow.entities import Metric, Param, ViewType
from mlflow.exceptions import MlflowException

from tests.compat.helpers import unique

START = 1_700_000_000_000
# name: (params, metrics, tags, status)
RUNS = {
    "alpha": ({"model": "cnn", "lr": "0.1"}, {"acc": 0.9, "loss": 0.3}, {"team": "Vision"},
              "FINISHED"),
    "beta": ({"model": "cnn-large", "lr": "0.01"}, {"acc": 0.7, "loss": 0.5}, {"team": "nlp"},
             "FAILED"),
    "gamma": ({"model": "rnn"}, {"acc": 0.8, "loss": 0.4}, {"team": "vision"}, "FINISHED"),
    "delta": ({"model": "mlp"}, {"loss": 0.1}, {}, "RUNNING"),
    "epsilon": ({"model": "cnn"}, {"acc": 0.9, "loss": 0.2}, {"team": "vision"}, "FINISHED"),
}


class Populated:
    def __init__(self, name, experiment_id, ids):
        self.name = name
        self.experiment_id = experiment_id
        self.ids = ids  # run name -> run id
        self.names = {run_id: name for name, run_id in ids.items()}


@pytest.fixture(scope="module")
def populated(tracking_server):
    """One experiment with five runs, created once per server (searches only read it)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_TOKEN", tracking_server.token)
        client = mlflow.MlflowClient(tracking_server.uri)
        name = unique("search-runs")
        experiment_id = client.create_experiment(name)
        ids = {}
        for index, (run_name, (params, metrics, tags, status)) in enumerate(RUNS.items()):
            run = client.create_run(experiment_id, start_time=START + index * 1000,
                                    run_name=run_name, tags=tags)
            client.log_batch(
                run.info.run_id,
                metrics=[Metric(k, v, START + index * 1000, 0) for k, v in metrics.items()],
                params=[Param(k, v) for k, v in params.items()],
            )
            if status != "RUNNING":
                client.set_terminated(run.info.run_id, status, end_time=START + index * 1000 + 1)
            ids[run_name] = run.info.run_id
    return Populated(name, experiment_id, ids)


def names(populated, runs):
    return [populated.names[run.info.run_id] for run in runs]


@pytest.mark.parametrize(
    ("filter_string", "expected"),
    [
        ("metrics.acc > 0.75", {"alpha", "gamma", "epsilon"}),
        ("metrics.acc >= 0.9 AND params.model = 'cnn'", {"alpha", "epsilon"}),
        ("metrics.acc != 0.9", {"beta", "gamma"}),
        ("metrics.loss <= 0.2", {"delta", "epsilon"}),
        ("params.model = 'cnn'", {"alpha", "epsilon"}),
        ("params.model != 'cnn'", {"beta", "gamma", "delta"}),
        ("params.model LIKE 'cnn%'", {"alpha", "beta", "epsilon"}),
        ("params.lr IS NOT NULL", {"alpha", "beta"}),
        ("tags.team = 'vision'", {"gamma", "epsilon"}),
        ("tags.team LIKE 'vis%'", {"gamma", "epsilon"}),  # LIKE is case-sensitive
        ("tags.team ILIKE 'VIS%'", {"alpha", "gamma", "epsilon"}),
        ("tags.team IS NULL", {"delta"}),
        ("tags.`mlflow.runName` = 'gamma'", {"gamma"}),
        ("attributes.status = 'FAILED'", {"beta"}),
        ("attributes.status != 'FINISHED'", {"beta", "delta"}),
        ("attributes.run_name = 'delta'", {"delta"}),
        ("attributes.run_name LIKE '%lph%'", {"alpha"}),
        (f"attributes.start_time >= {START + 3000}", {"delta", "epsilon"}),
        ("attributes.status = 'FINISHED' AND tags.team ILIKE 'vision' AND metrics.loss < 0.35",
         {"alpha", "epsilon"}),
    ],
)
def test_filters(mlflow_client, populated, filter_string, expected):
    runs = mlflow_client.search_runs([populated.experiment_id], filter_string)
    assert set(names(populated, runs)) == expected


def test_filter_run_id_in(mlflow_client, populated):
    wanted = [populated.ids["beta"], populated.ids["delta"]]
    quoted = ", ".join(f"'{run_id}'" for run_id in wanted)
    runs = mlflow_client.search_runs([populated.experiment_id],
                                     f"attributes.run_id IN ({quoted})")
    assert set(names(populated, runs)) == {"beta", "delta"}
    runs = mlflow_client.search_runs([populated.experiment_id],
                                     f"attributes.run_id NOT IN ({quoted})")
    assert set(names(populated, runs)) == {"alpha", "gamma", "epsilon"}


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        (None, ["epsilon", "delta", "gamma", "beta", "alpha"]),  # newest first
        (["attributes.start_time ASC"], ["alpha", "beta", "gamma", "delta", "epsilon"]),
        (["metrics.acc DESC", "attributes.run_name ASC"],
         ["alpha", "epsilon", "gamma", "beta", "delta"]),  # a missing metric sorts last
        (["metrics.acc ASC"], ["beta", "gamma", "epsilon", "alpha", "delta"]),  # ties: newest
        (["params.model ASC", "metrics.loss ASC"],
         ["epsilon", "alpha", "beta", "delta", "gamma"]),
        (["tags.team DESC", "attributes.run_name DESC"],
         ["gamma", "epsilon", "beta", "alpha", "delta"]),
    ],
    ids=["default", "start_time", "metric-desc", "metric-asc", "param-metric", "tag"],
)
def test_order_by(mlflow_client, populated, order_by, expected):
    runs = mlflow_client.search_runs([populated.experiment_id], order_by=order_by)
    assert names(populated, runs) == expected


def test_paging(mlflow_client, populated):
    pages, token = [], None
    while True:
        page = mlflow_client.search_runs([populated.experiment_id], max_results=2,
                                         order_by=["attributes.start_time ASC"],
                                         page_token=token)
        pages.append(names(populated, page))
        token = page.token
        if not token:
            break
    assert pages == [["alpha", "beta"], ["gamma", "delta"], ["epsilon"]]

    filtered = mlflow_client.search_runs([populated.experiment_id], "params.model LIKE 'cnn%'",
                                         max_results=2, order_by=["metrics.loss ASC"])
    assert names(populated, filtered) == ["epsilon", "alpha"]
    rest = mlflow_client.search_runs([populated.experiment_id], "params.model LIKE 'cnn%'",
                                     max_results=2, order_by=["metrics.loss ASC"],
                                     page_token=filtered.token)
    assert names(populated, rest) == ["beta"]
    assert not rest.token


def test_dataframe(mlflow_client, populated):
    frame = mlflow.search_runs([populated.experiment_id],
                               order_by=["attributes.start_time ASC"])
    assert list(frame["tags.mlflow.runName"]) == list(RUNS)
    assert list(frame["run_id"]) == [populated.ids[name] for name in RUNS]
    assert list(frame["status"]) == [status for *_, status in RUNS.values()]
    assert list(frame["params.model"]) == ["cnn", "cnn-large", "rnn", "mlp", "cnn"]
    acc = list(frame["metrics.acc"])
    assert acc[:3] == [0.9, 0.7, 0.8] and math.isnan(acc[3]) and acc[4] == 0.9
    assert frame["experiment_id"].unique().tolist() == [populated.experiment_id]
    assert {"start_time", "end_time", "artifact_uri", "tags.team"} <= set(frame.columns)

    by_name = mlflow.search_runs(experiment_names=[populated.name],
                                 filter_string="params.model = 'cnn'",
                                 order_by=["metrics.loss ASC"])
    assert list(by_name["tags.mlflow.runName"]) == ["epsilon", "alpha"]

    as_list = mlflow.search_runs([populated.experiment_id], "tags.team = 'nlp'",
                                 output_format="list")
    assert [run.info.run_id for run in as_list] == [populated.ids["beta"]]


def test_several_experiments_and_view_types(mlflow_client, populated, experiment_id):
    with mlflow.start_run(run_name="other") as kept:
        pass
    with mlflow.start_run(run_name="gone") as gone:
        pass
    mlflow_client.delete_run(gone.info.run_id)
    both = mlflow_client.search_runs([populated.experiment_id, experiment_id])
    assert len(both) == 6
    assert kept.info.run_id in {r.info.run_id for r in both}
    only_deleted = mlflow_client.search_runs([experiment_id], run_view_type=ViewType.DELETED_ONLY)
    assert [r.info.run_id for r in only_deleted] == [gone.info.run_id]
    everything = mlflow_client.search_runs([experiment_id], run_view_type=ViewType.ALL)
    assert {r.info.run_id for r in everything} == {kept.info.run_id, gone.info.run_id}


def test_results_carry_data(mlflow_client, populated):
    (run,) = mlflow_client.search_runs([populated.experiment_id], "attributes.run_name = 'alpha'")
    assert run.data.params == {"model": "cnn", "lr": "0.1"}
    assert run.data.metrics == {"acc": 0.9, "loss": 0.3}
    assert run.data.tags["team"] == "Vision"
    assert run.info.status == "FINISHED"
    assert run.info.end_time == START + 1


@pytest.mark.parametrize(
    "filter_string",
    ["params.model = 'cnn' OR params.model = 'rnn'", "metrics.acc LIKE '0.9'",
     "nonsense.key = 'x'", "params.model = cnn"],
)
def test_bad_filters_are_refused(mlflow_client, populated, filter_string):
    with pytest.raises(MlflowException) as error:
        mlflow_client.search_runs([populated.experiment_id], filter_string)
    assert error.value.error_code == "INVALID_PARAMETER_VALUE"
