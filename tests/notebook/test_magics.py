"""The %mlrun magics through IPython's test shell, on a real store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.testing import globalipapp
from IPython.testing.globalipapp import start_ipython

import labtrack
from labtrack.entities import RunStatus


@pytest.fixture(scope="module")
def shell():
    start_ipython()  # the first call starts the global shell (later calls return None)
    ip = globalipapp.get_ipython()
    ip.run_line_magic("load_ext", "labtrack")
    return ip


@pytest.fixture
def ip(shell, fluent_uri):
    shell.user_ns.pop("__vsc_ipynb_file__", None)
    yield shell
    while labtrack.active_run() is not None:
        labtrack.end_run()
    for widget in shell.magics_manager.registry["MlrunMagics"].widgets:
        widget.close()


def client():
    return labtrack.TrackingClient(labtrack.get_tracking_uri())


def last_run():
    return labtrack.last_active_run()


def artifact_text(run, path):
    return client().service.artifact_repository(run.info.run_id).read_bytes(path).decode()


def test_a_cell_runs_inside_a_finished_run_with_its_provenance(ip, tmp_path, monkeypatch):
    notebook = tmp_path / "analysis.ipynb"
    notebook.write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4,
                                    "nbformat_minor": 5}))
    monkeypatch.setenv("JPY_SESSION_NAME", str(notebook))
    ip.run_cell("lr = 0.05\ndepth = 7", store_history=True)
    result = ip.run_cell_magic(
        "mlrun", "-e forecasts -n baseline --params lr,depth --tags team=energy site=north",
        "import labtrack\nfor i in range(20):\n    labtrack.log_metric('loss', 1 / (i + 1), "
        "step=i)\nlr * 10")
    assert result == 0.5  # the last expression is the cell's value
    run = last_run()
    assert (run.info.run_name, run.info.status) == ("baseline", RunStatus.FINISHED)
    assert labtrack.get_experiment(run.info.experiment_id).name == "forecasts"
    assert run.data.params == {"depth": "7", "lr": "0.05"}
    assert run.data.metrics == {"loss": 1 / 20}
    tags = run.data.tags
    assert (tags["team"], tags["site"]) == ("energy", "north")
    assert tags["mlflow.source.type"] == "NOTEBOOK"
    assert tags["labtrack.notebook.path"] == str(notebook)
    assert tags["mlflow.source.name"] == str(notebook)
    assert tags["labtrack.python.version"].count(".") == 2
    assert "for i in range(20)" in artifact_text(run, "notebook/cell.py")
    assert "lr = 0.05" in artifact_text(run, "notebook/executed_cells.py")
    environment = json.loads(artifact_text(run, "notebook/environment.json"))
    assert "labtrack" in environment["packages"]
    assert json.loads(artifact_text(run, "notebook/analysis.ipynb"))["nbformat"] == 4


def test_git_state_is_recorded(ip, tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    for command in (["init", "-q", "-b", "main"], ["config", "user.email", "t@example.com"],
                    ["config", "user.name", "T"]):
        subprocess.run(["git", *command], cwd=repo, check=True)
    (repo / "nb.ipynb").write_text("{}")
    subprocess.run(["git", "add", "."], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-qm", "first"], cwd=repo, check=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                            text=True, check=True).stdout.strip()
    monkeypatch.setenv("JPY_SESSION_NAME", str(repo / "nb.ipynb"))
    ip.run_cell_magic("mlrun", "--no-widget", "x = 1")
    tags = last_run().data.tags
    assert (tags["mlflow.source.git.commit"], tags["labtrack.git.dirty"],
            tags["mlflow.source.git.branch"]) == (commit, "false", "main")
    (repo / "nb.ipynb").write_text("{'changed': 1}")
    ip.run_cell_magic("mlrun", "--no-widget", "x = 2")
    assert last_run().data.tags["labtrack.git.dirty"] == "true"


def test_an_exception_ends_the_run_failed_with_the_traceback(ip):
    with pytest.raises(ZeroDivisionError):
        ip.run_cell_magic("mlrun", "-n broken", "import labtrack\nlabtrack.log_metric('m', 1)"
                                                "\ndef inner():\n    return 1 / 0\ninner()")
    run = last_run()
    assert run.info.status == RunStatus.FAILED
    assert run.data.tags["labtrack.error"] == "ZeroDivisionError: division by zero"
    text = artifact_text(run, "error/traceback.txt")
    assert "in inner" in text and "ZeroDivisionError" in text
    assert run.data.metrics == {"m": 1.0}
    assert labtrack.active_run() is None  # nothing left dangling


def test_an_interrupt_ends_the_run_killed(ip):
    with pytest.raises(KeyboardInterrupt):
        ip.run_cell_magic("mlrun", "", "raise KeyboardInterrupt")
    assert last_run().info.status == RunStatus.KILLED
    assert labtrack.active_run() is None


def test_nested_cells_and_the_active_run_rule(ip):
    ip.run_line_magic("mlrun", "start -n parent")
    parent = labtrack.active_run()
    with pytest.raises(UsageError, match="is already active"):
        ip.run_cell_magic("mlrun", "", "pass")
    ip.run_cell_magic("mlrun", "--nested -n child", "pass")
    child = last_run()
    assert child.data.tags["mlflow.parentRunId"] == parent.run_id
    assert labtrack.active_run().run_id == parent.run_id
    ip.run_line_magic("mlrun", "end --status KILLED")
    assert labtrack.get_run(parent.run_id).info.status == RunStatus.KILLED


def test_log_numbers_as_metrics_and_the_rest_as_params(ip, capsys):
    ip.run_line_magic("mlrun", "start")
    ip.run_line_magic("mlrun", "log acc=0.93 epochs=10 optimizer=adam note='two words'")
    run = labtrack.get_run(labtrack.active_run().run_id)
    assert run.data.metrics == {"acc": 0.93, "epochs": 10.0}
    assert run.data.params == {"note": "two words", "optimizer": "adam"}
    assert "metric acc=0.93" in capsys.readouterr().out
    ip.run_line_magic("mlrun", "log --step 3 acc=0.95")
    history = client().get_metric_history(run.info.run_id, "acc")
    assert [(m.value, m.step) for m in history] == [(0.93, 0), (0.95, 3)]


def test_status_shows_the_active_or_last_run(ip):
    from labtrack.widgets import LiveRun

    with pytest.raises(UsageError, match="No run yet"):
        labtrack.client.fluent._last_active_run_id = None
        ip.run_line_magic("mlrun", "status")
    ip.run_cell_magic("mlrun", "--no-widget -n done", "pass")
    widget = ip.run_line_magic("mlrun", "status")
    assert isinstance(widget, LiveRun) and widget.run_name == "done"


def test_register_a_runs_model(ip):
    ip.run_cell_magic("mlrun", "--no-widget", "import labtrack\n"
                                             "labtrack.log_text('w', 'model/weights.txt')")
    run = last_run()
    version = ip.run_line_magic("mlrun", f"register {run.info.run_id} demand")
    assert (version.name, version.version, version.run_id) == ("demand", "1", run.info.run_id)
    again = ip.run_line_magic("mlrun", f"register {run.info.run_id}/model demand")
    assert again.version == "2"


@pytest.mark.parametrize("line", [
    "bogus", "end --status DONE", "log novalue", "register onlyone",
    "start --tags notapair", "log a=1 --step x",
])
def test_bad_arguments_give_usage_not_tracebacks(ip, line):
    with pytest.raises(UsageError) as caught:
        ip.run_line_magic("mlrun", line)
    assert "usage: %mlrun" in str(caught.value) or "KEY=VALUE" in str(caught.value)


def test_bad_cell_arguments_and_missing_param_variables(ip):
    with pytest.raises(UsageError, match="usage: %%mlrun"):
        ip.run_cell_magic("mlrun", "--bogus", "pass")
    with pytest.raises(UsageError, match="undefined variables: nope"):
        ip.run_cell_magic("mlrun", "--no-widget --params nope", "pass")
    assert labtrack.active_run() is None


def test_end_without_a_run_and_help(ip, capsys):
    with pytest.raises(UsageError, match="No run is active"):
        ip.run_line_magic("mlrun", "end")
    ip.run_line_magic("mlrun", "help")
    out = capsys.readouterr().out
    assert "%%mlrun" in out and "register" in out


def test_the_live_widget_follows_the_cell(ip):
    ip.run_cell_magic("mlrun", "--live loss", "import labtrack\n"
                      "for i in range(50):\n    labtrack.log_metric('loss', i, step=i)\n"
                      "    labtrack.log_metric('other', i, step=i)")
    widget = ip.magics_manager.registry["MlrunMagics"].widgets[-1]
    assert widget.status == "FINISHED"
    assert [e["key"] for e in widget.series_index] == ["loss"]
    assert widget.series_index[0]["total_points"] == 50


def test_extension_loads_from_config(tmp_path):
    script = tmp_path / "check.py"
    script.write_text("from IPython import get_ipython\n"
                      "print('mlrun' in get_ipython().magics_manager.magics['cell'])\n")
    result = subprocess.run(
        [sys.executable, "-m", "IPython", "--InteractiveShellApp.extensions=['labtrack']",
         str(script)],
        capture_output=True, text=True, timeout=120,
        cwd=Path(__file__).parent)
    assert result.stdout.strip().endswith("True"), result.stderr


def _finished_run(ip, name, loss, lr):
    ip.run_cell_magic("mlrun", f"--no-widget -e tables -n {name}",
                      f"import labtrack\nlabtrack.log_param('lr', '{lr}')\n"
                      f"for i in range(3):\n    labtrack.log_metric('loss', {loss} + i, step=i)")
    return last_run()


def test_runs_shows_a_table_filtered_with_the_search_grammar(ip):
    from labtrack.widgets import RunsTable

    _finished_run(ip, "slow", 5, "0.001")
    fast = _finished_run(ip, "fast", 0, "0.1")
    ip.run_line_magic("mlrun", "start -e elsewhere")
    ip.run_line_magic("mlrun", "end")
    # The filter keeps its quotes: lr's value is a string literal of the grammar.
    table = ip.run_line_magic("mlrun", "runs -e tables params.lr = '0.1' and metrics.loss < 3")
    assert isinstance(table, RunsTable)
    assert [row[0] for row in table.rows] == [fast.info.run_id]
    everything = ip.run_line_magic("mlrun", "runs --experiment 'tables'")
    assert len(everything.rows) == 2
    # Without -e: the experiment of the last run, here the one just ended in 'elsewhere'.
    assert len(ip.run_line_magic("mlrun", "runs").rows) == 1
    with pytest.raises(UsageError, match="No experiment named 'nowhere'"):
        ip.run_line_magic("mlrun", "runs -e nowhere")


def test_compare_charts_named_or_recent_runs(ip):
    from labtrack.widgets import MetricChart

    first = _finished_run(ip, "a", 1, "0.1")
    second = _finished_run(ip, "b", 2, "0.2")
    third = _finished_run(ip, "c", 3, "0.3")
    chart = ip.run_line_magic("mlrun", "compare --last 2 --metrics loss")
    assert isinstance(chart, MetricChart)
    assert set(chart.run_ids) == {second.info.run_id, third.info.run_id}
    assert chart.metric_keys == ["loss"]
    named = ip.run_line_magic("mlrun", f"compare {first.info.run_id} {third.info.run_id}")
    assert named.run_ids == [first.info.run_id, third.info.run_id]
    with pytest.raises(UsageError, match="--last N"):
        ip.run_line_magic("mlrun", "compare")


def test_models_and_requests_open_the_registry_widgets(ip):
    from labtrack.widgets import RegistryBrowser, TransitionRequests

    ip.run_cell_magic("mlrun", "--no-widget", "import labtrack\n"
                                             "labtrack.log_text('w', 'model/weights.txt')")
    run_id = last_run().info.run_id
    for name in ("churn", "churn-eu", "demand"):
        ip.run_line_magic("mlrun", f"register {run_id} {name}")
    client().request_transition("churn", 1, "Production", comment="ship it")
    browser = ip.run_line_magic("mlrun", "models name LIKE 'churn%'")
    assert isinstance(browser, RegistryBrowser)
    assert [m["name"] for m in browser.models] == ["churn", "churn-eu"]
    assert ip.run_line_magic("mlrun", "models").models[-1]["name"] == "demand"
    requests = ip.run_line_magic("mlrun", "requests churn")
    assert isinstance(requests, TransitionRequests)
    assert [(r["model_name"], r["to_stage"]) for r in requests.requests] == [
        ("churn", "Production")]
    assert ip.run_line_magic("mlrun", "requests demand").requests == []


def test_help_lists_every_command(ip, capsys):
    ip.run_line_magic("mlrun", "help")
    out = capsys.readouterr().out
    for command in ("start", "end", "status", "log", "runs", "compare", "models", "requests",
                    "project", "register"):
        assert f"  {command}" in out


def _write_project(folder: Path) -> Path:
    folder.mkdir()
    (folder / "MLproject").write_text(
        "name: tiny\n"
        "entry_points:\n"
        "  main:\n"
        "    parameters:\n"
        "      alpha: {type: float, default: 0.1}\n"
        "      fail: {type: int, default: 0}\n"
        "    command: python train.py {alpha} {fail}\n")
    (folder / "train.py").write_text(
        "import sys\n"
        "import labtrack\n"
        "alpha, fail = float(sys.argv[1]), int(sys.argv[2])\n"
        "for step in range(5):\n"
        "    labtrack.log_metric('loss', alpha / (step + 1), step=step)\n"
        "print('trained with', alpha)\n"
        "sys.exit(3 if fail else 0)\n")
    return folder


def test_project_runs_an_mlproject_into_the_current_experiment_live(ip, tmp_path, capfd):
    from labtrack.widgets import LiveRun

    project = _write_project(tmp_path / "tiny")
    labtrack.set_experiment("projects-from-notebook")
    result = ip.run_line_magic("mlrun", f"project {project} -P alpha=0.5 -n first")
    assert result.status == RunStatus.FINISHED
    run = client().get_run(result.run_id)
    assert (run.info.run_name, run.info.status) == ("first", RunStatus.FINISHED)
    assert labtrack.get_experiment(run.info.experiment_id).name == "projects-from-notebook"
    assert run.data.params == {"alpha": "0.5", "fail": "0"}
    assert run.data.metrics == {"loss": 0.1}
    assert run.data.tags["mlflow.source.type"] == "PROJECT"
    assert "trained with 0.5" in capfd.readouterr().out  # the child's output, streamed
    widget = ip.magics_manager.registry["MlrunMagics"].widgets[-1]
    assert isinstance(widget, LiveRun) and widget.run_id == result.run_id

    failed = ip.run_line_magic("mlrun", f"project {project} -P fail=1 "
                                        "--experiment-name elsewhere")
    assert (failed.status, failed.exit_code) == (RunStatus.FAILED, 3)
    assert labtrack.get_experiment(failed.experiment_id).name == "elsewhere"


def test_project_errors_are_usage_messages_and_create_no_run(ip, tmp_path):
    project = _write_project(tmp_path / "tiny")
    labtrack.set_experiment("project-errors")
    experiment_id = labtrack.get_experiment_by_name("project-errors").experiment_id
    with pytest.raises(UsageError, match="alpha"):
        ip.run_line_magic("mlrun", f"project {project} -P alpha=fast")
    with pytest.raises(UsageError, match="entry point"):
        ip.run_line_magic("mlrun", f"project {project} -e nowhere")
    with pytest.raises(UsageError, match="key=value"):
        ip.run_line_magic("mlrun", f"project {project} -P alpha")
    assert client().search_runs([experiment_id]) == []
