"""Every validation rule, through the service that applies it, with its error message."""

from __future__ import annotations

import pytest

from labtrack.entities import Metric, Param, RunStatus, RunTag
from labtrack.errors import InvalidParameterValue, ParamValueConflict, ResourceDoesNotExist
from labtrack.services import validation


@pytest.fixture
def run_id(service):
    return service.create_run("0").info.run_id


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", "Missing value for required parameter 'key'"),
        (None, "Missing value for required parameter 'key'"),
        ("bad!key", "may only contain alphanumerics"),
        ("semi;colon", "may only contain alphanumerics"),
        ("a" * 251, "exceeds the maximum length of 250 characters (it has 251)"),
        ("../up", "would resolve to"),
        ("/abs", "would resolve to '/abs'"),
        ("a//b", "would resolve to 'a/b'"),
        ("a/./b", "would resolve to 'a/b'"),
        (".", "would resolve to '.'"),
        (12, "expected a string, got int"),
    ],
)
def test_bad_keys_are_rejected_for_metrics_params_and_tags(service, run_id, key, message):
    for call in (
        lambda: service.log_metric(run_id, key, 1.0),
        lambda: service.log_param(run_id, key, "v"),
        lambda: service.set_tag(run_id, key, "v"),
    ):
        with pytest.raises(InvalidParameterValue, match=_escaped(message)) as caught:
            call()
        assert caught.value.error_code == "INVALID_PARAMETER_VALUE"


def _escaped(text):
    import re

    return re.escape(text)


def test_good_keys_are_accepted(service, run_id):
    for key in ("a", "a" * 250, "train/loss", "val acc", "x-y_z.w", "ns:key", "Über"):
        service.log_metric(run_id, key, 1.0)
    assert len(service.get_run(run_id).data.metrics) == 7


def test_param_value_over_6000_is_rejected_not_truncated(service, run_id):
    service.log_param(run_id, "ok", "x" * 6000)
    with pytest.raises(InvalidParameterValue) as caught:
        service.log_param(run_id, "long", "x" * 6001)
    assert caught.value.message.startswith(
        "Value of param 'long' exceeds the maximum length of 6000 characters (it has 6001)")
    assert "does not truncate" in caught.value.message
    assert service.get_run(run_id).data.params == {"ok": "x" * 6000}


def test_tag_value_over_8000_is_rejected_not_truncated(service, run_id):
    service.set_tag(run_id, "ok", "x" * 8000)
    with pytest.raises(InvalidParameterValue, match="Value of tag 'long' exceeds the maximum "
                                                    "length of 8000 characters"):
        service.set_tag(run_id, "long", "y" * 8001)
    assert "long" not in service.get_run(run_id).data.tags


def test_experiment_limits(service):
    with pytest.raises(InvalidParameterValue, match="maximum length of 500"):
        service.create_experiment("e" * 501)
    with pytest.raises(InvalidParameterValue, match="An experiment name is required"):
        service.create_experiment("")
    with pytest.raises(InvalidParameterValue, match="maximum length of 20000"):
        service.create_experiment("ok", tags={"k": "v" * 20001})


@pytest.mark.parametrize(
    ("metrics", "params", "tags", "message"),
    [
        (1001, 0, 0, "at most 1000 metrics. Got 1001 metrics"),
        (0, 101, 0, "at most 100 params. Got 101 params"),
        (0, 0, 101, "at most 100 tags. Got 101 tags"),
        (950, 30, 30, "at most 1000 metrics, params, and tags. Got 1010"),
    ],
)
def test_batch_limits(service, run_id, metrics, params, tags, message):
    with pytest.raises(InvalidParameterValue, match=message):
        service.log_batch(
            run_id,
            metrics=[Metric("m", 1.0, 1, i) for i in range(metrics)],
            params=[Param(f"p{i}", "v") for i in range(params)],
            tags=[RunTag(f"t{i}", "v") for i in range(tags)],
        )
    assert service.get_run(run_id).data.params == {}


def test_batch_at_the_limits_is_accepted(service, run_id):
    service.log_batch(run_id, metrics=[Metric("m", 1.0, 1, i) for i in range(1000)])
    service.log_batch(run_id, params=[Param(f"p{i}", "v") for i in range(100)],
                      tags=[RunTag(f"t{i}", "v") for i in range(100)])
    assert len(service.get_metric_history(run_id, "m")) == 1000


def test_params_are_write_once_with_both_values_named(service, run_id):
    service.log_param(run_id, "lr", "0.01")
    service.log_param(run_id, "lr", "0.01")
    with pytest.raises(ParamValueConflict) as caught:
        service.log_param(run_id, "lr", "0.02")
    assert caught.value.message == (
        "Changing param values is not allowed. Param with key='lr' was already logged with "
        f"value='0.01' for run ID='{run_id}'. Attempted logging new value '0.02'.")
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"


def test_duplicate_param_keys_in_one_batch(service, run_id):
    with pytest.raises(InvalidParameterValue, match=r"Duplicate parameter keys .*\['a'\]"):
        service.log_batch(run_id, params=[Param("a", "1"), Param("a", "2")])


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1.0", "Got invalid value '1.0' for metric 'm'"),
        (True, "Got invalid value True for metric 'm'"),
        (None, "Missing value for required parameter 'value'"),
        ([1.0], "Got invalid value [1.0] for metric 'm'"),
        (10**400, "fits a 64-bit float"),
    ],
)
def test_metric_values_must_be_numbers(service, run_id, value, message):
    with pytest.raises(InvalidParameterValue, match=_escaped(message)):
        service.log_metric(run_id, "m", value)


def test_number_like_metric_values_are_accepted(service, run_id):
    import decimal

    import numpy

    service.log_metric(run_id, "int", 3)
    service.log_metric(run_id, "numpy", numpy.float32(0.5))
    service.log_metric(run_id, "numpy0d", numpy.array(2.5))
    service.log_metric(run_id, "decimal", decimal.Decimal("1.25"))
    assert service.get_run(run_id).data.metrics == {
        "decimal": 1.25, "int": 3.0, "numpy": 0.5, "numpy0d": 2.5}


@pytest.mark.parametrize(
    ("timestamp", "step", "message"),
    [
        (-1, 0, "timestamp must lie in [0,"),
        (1.5, 0, "timestamp must be a whole number"),
        ("x", 0, "timestamp must be a 64-bit integer"),
        (1, 2**63, "step must lie in"),
        (1, 0.5, "step must be a whole number"),
    ],
)
def test_metric_timestamp_and_step_must_be_int64(service, run_id, timestamp, step, message):
    with pytest.raises(InvalidParameterValue, match=_escaped(message)):
        service.log_metric(run_id, "m", 1.0, timestamp=timestamp, step=step)


@pytest.mark.parametrize(
    "bad",
    [
        Metric("m", "x", 5, 0),
        Metric("m", None, 5, 0),
        Metric("m", True, 5, 0),
        Metric("bad!", 1.0, 5, 0),
        Metric("a" * 251, 1.0, 5, 0),
        Metric(None, 1.0, 5, 0),
        Metric("m", 1.0, -1, 0),
        Metric("m", 1.0, 1.5, 0),
        Metric("m", 1.0, 5, True),
        Metric("m", 1.0, 5, 2**63),
        Metric("m", 1.0, 5, -(2**63) - 1),
    ],
)
def test_a_bad_point_in_a_full_batch_is_reported_as_if_alone(service, run_id, bad):
    good = [Metric("m", i / 10, 1000 + i, i) for i in range(999)]
    with pytest.raises(InvalidParameterValue) as alone:
        service.log_batch(run_id, metrics=[bad])
    with pytest.raises(InvalidParameterValue) as in_batch:
        service.log_batch(run_id, metrics=[*good[:600], bad, *good[600:]])
    assert in_batch.value.message == alone.value.message
    assert service.get_run(run_id).data.metrics == {}


def test_the_first_bad_point_of_a_batch_is_the_one_reported(service, run_id):
    points = [Metric("m", 1.0, 5, i) for i in range(10)]
    points[3] = Metric("m", 1.0, -1, 3)
    points[7] = Metric("bad!", 1.0, 5, 7)
    with pytest.raises(InvalidParameterValue, match="Invalid timestamp -1"):
        service.log_batch(run_id, metrics=points)


def test_a_batch_of_number_like_values_is_stored_as_floats(service, run_id):
    import numpy

    service.log_batch(run_id, metrics=[Metric("m", 0.5, 1, 0), Metric("m", 3, 2, 1),
                                       Metric("m", numpy.float32(0.25), 3, 2)])
    history = service.get_metric_history(run_id, "m")
    assert [(type(p.value), p.value, p.timestamp, p.step) for p in history] == [
        (float, 0.5, 1, 0), (float, 3.0, 2, 1), (float, 0.25, 3, 2)]


def test_writes_to_a_deleted_run_are_refused(service, run_id):
    service.delete_run(run_id)
    for call in (
        lambda: service.log_metric(run_id, "m", 1.0),
        lambda: service.log_param(run_id, "p", "v"),
        lambda: service.set_tag(run_id, "t", "v"),
        lambda: service.log_metric_columns(run_id, {"m": ([1.0], [1], [0])}),
        lambda: service.end_run(run_id, metric_columns={"m": ([1.0], [1], [0])}),
    ):
        with pytest.raises(InvalidParameterValue, match="must be in the 'active' state. "
                                                        "Current state is deleted"):
            call()
    run = service.get_run(run_id)
    assert (run.data.metrics, run.data.params, run.info.status) == ({}, {}, RunStatus.RUNNING)
    assert "t" not in run.data.tags


def test_writes_to_a_missing_run_or_a_deleted_experiment_are_refused(service):
    missing = "0" * 32
    for call in (
        lambda: service.log_batch(missing, params=[Param("p", "v")]),
        lambda: service.log_metric_columns(missing, {"m": ([1.0], [1], [0])}),
        lambda: service.end_run(missing),
    ):
        with pytest.raises(ResourceDoesNotExist, match=f"Run with id={missing} not found"):
            call()
    with pytest.raises(ResourceDoesNotExist, match="No Experiment with id=424242 exists"):
        service.create_run("424242")
    experiment_id = service.create_experiment("gone")
    service.delete_experiment(experiment_id)
    with pytest.raises(InvalidParameterValue, match=f"The experiment {experiment_id} must be "
                                                    "in the 'active' state"):
        service.create_run(experiment_id)
    assert list(service.search_runs([experiment_id], run_view_type="ALL")) == []


def test_buffered_columns_are_validated_too(service, run_id):
    with pytest.raises(InvalidParameterValue, match="Got invalid value 'x'"):
        service.log_metric_columns(run_id, {"m": ([1.0, "x"], [1, 2], [0, 1])})
    with pytest.raises(InvalidParameterValue, match="differ in length"):
        service.log_metric_columns(run_id, {"m": ([1.0], [1, 2], [0])})
    with pytest.raises(InvalidParameterValue, match="may only contain"):
        service.log_metric_columns(run_id, {"bad!": ([1.0], [1], [0])})


def test_invalid_run_ids(service):
    with pytest.raises(InvalidParameterValue, match="for parameter 'run_id'"):
        service.get_run("../etc")
    with pytest.raises(InvalidParameterValue, match="for parameter 'run_id'"):
        service.get_run("")


def test_max_results_bounds(service):
    for bad in (0, -1, 50001, "10", True):
        with pytest.raises(InvalidParameterValue, match="max_results"):
            service.search_runs(["0"], max_results=bad)
    with pytest.raises(InvalidParameterValue, match="at most 50000"):
        service.search_experiments(max_results=50001)


def test_key_cache_never_lets_a_bad_key_through():
    validation.validate_key("Metric", "good")
    with pytest.raises(InvalidParameterValue):
        validation.validate_key("Metric", "bad!")
    with pytest.raises(InvalidParameterValue):
        validation.validate_key("Metric", "bad!")
