"""The side panel's endpoints: the server's root folder, and a page of runs with the runs of
one notebook (named relative to that folder, recorded absolute by kernels) listed apart."""

from __future__ import annotations

import os

from tests.server.conftest import LABTRACK, MLFLOW

PANEL = f"{LABTRACK}/panel"
NOTEBOOK_TAG = "labtrack.notebook.path"
SOURCE_TAG = "mlflow.source.name"


async def make_run(api, experiment_id: str, name: str, start: int, tags: dict | None = None):
    run = await api.create_run(experiment_id, run_name=name, start_time=start,
                               tags=[{"key": k, "value": v} for k, v in (tags or {}).items()])
    return run["info"]["run_id"]


def names(runs: list[dict]) -> list[str]:
    return [run["info"]["run_name"] for run in runs]


async def test_server_root_is_the_jupyter_root_folder(api, jp_root_dir):
    status, data = await api.call("GET", f"{PANEL}/server-root")
    assert status == 200
    assert data == {"root_dir": str(jp_root_dir)}


async def test_the_standalone_server_has_no_root_folder(standalone_api):
    status, data = await standalone_api.call("GET", f"{PANEL}/server-root")
    assert (status, data) == (200, {"root_dir": None})


async def test_a_notebooks_runs_come_apart_newest_first_across_experiments(api, jp_root_dir):
    notebook = os.path.join(str(jp_root_dir), "work", "train.ipynb")
    other = await api.create_experiment("other")
    await make_run(api, "0", "tagged", 1000, {NOTEBOOK_TAG: notebook, SOURCE_TAG: notebook})
    await make_run(api, other, "mlflow-logged", 3000, {SOURCE_TAG: notebook})
    await make_run(api, "0", "elsewhere", 2000, {NOTEBOOK_TAG: notebook + ".bak"})
    await make_run(api, other, "script", 4000, {SOURCE_TAG: "/tmp/train.py"})

    status, data = await api.call("POST", f"{PANEL}/runs/search",
                                  {"notebook_path": "work/train.ipynb"})
    assert status == 200
    assert data["notebook_path"] == notebook
    assert names(data["notebook_runs"]) == ["mlflow-logged", "tagged"]
    assert names(data["runs"]) == ["script", "mlflow-logged", "elsewhere", "tagged"]
    assert "next_page_token" not in data


async def test_experiments_and_filter_narrow_both_lists(api, jp_root_dir):
    notebook = str(jp_root_dir / "nb.ipynb")
    other = await api.create_experiment("other")
    first = await make_run(api, "0", "a", 1000, {NOTEBOOK_TAG: notebook})
    await make_run(api, other, "b", 2000, {NOTEBOOK_TAG: notebook})
    await make_run(api, "0", "c", 3000)
    await api.log_metric(first, "loss", 0.5)

    _, data = await api.call("POST", f"{PANEL}/runs/search",
                             {"notebook_path": "nb.ipynb", "experiment_ids": ["0"]})
    assert names(data["notebook_runs"]) == ["a"]
    assert names(data["runs"]) == ["c", "a"]

    _, data = await api.call("POST", f"{PANEL}/runs/search",
                             {"notebook_path": "nb.ipynb", "filter": "metrics.loss < 1"})
    assert names(data["notebook_runs"]) == ["a"]
    assert names(data["runs"]) == ["a"]


async def test_later_pages_leave_out_the_notebooks_runs(api, jp_root_dir):
    notebook = str(jp_root_dir / "nb.ipynb")
    for i in range(5):
        await make_run(api, "0", f"r{i}", 1000 + i, {NOTEBOOK_TAG: notebook} if i == 0 else {})

    _, first = await api.call("POST", f"{PANEL}/runs/search",
                              {"notebook_path": "nb.ipynb", "max_results": 2})
    assert names(first["runs"]) == ["r4", "r3"]
    assert names(first["notebook_runs"]) == ["r0"]
    _, second = await api.call("POST", f"{PANEL}/runs/search", {
        "notebook_path": "nb.ipynb", "max_results": 2, "page_token": first["next_page_token"]})
    assert names(second["runs"]) == ["r2", "r1"]
    assert "notebook_runs" not in second


async def test_without_a_notebook_there_is_no_notebook_list(api):
    await make_run(api, "0", "only", 1000)
    _, data = await api.call("POST", f"{PANEL}/runs/search", {})
    assert names(data["runs"]) == ["only"]
    assert "notebook_runs" not in data and "notebook_path" not in data


async def test_a_quote_in_the_notebook_name_is_matched_literally(api, jp_root_dir):
    notebook = str(jp_root_dir / "ann's notebook.ipynb")
    await make_run(api, "0", "quoted", 1000, {NOTEBOOK_TAG: notebook})
    _, data = await api.call("POST", f"{PANEL}/runs/search",
                             {"notebook_path": "ann's notebook.ipynb"})
    assert names(data["notebook_runs"]) == ["quoted"]


async def test_an_absolute_notebook_path_is_taken_as_it_is(standalone_api):
    await make_run(standalone_api, "0", "abs", 1000, {NOTEBOOK_TAG: "/srv/nb.ipynb"})
    status, data = await standalone_api.call("POST", f"{PANEL}/runs/search",
                                             {"notebook_path": "/srv/nb.ipynb"})
    assert status == 200
    assert data["notebook_path"] == "/srv/nb.ipynb"
    assert names(data["notebook_runs"]) == ["abs"]


async def test_a_bad_filter_is_a_readable_400(api):
    status, data = await api.call("POST", f"{PANEL}/runs/search",
                                  {"filter": "metrics.loss <", "notebook_path": "nb.ipynb"})
    assert status == 400
    assert data["error_code"] == "INVALID_PARAMETER_VALUE"
    assert data["message"] == "Invalid filter string 'metrics.loss <': it ends too early."


async def test_deleted_experiments_are_left_out_by_default(api):
    gone = await api.create_experiment("gone")
    await make_run(api, gone, "hidden", 1000)
    await api.ok("POST", f"{MLFLOW}/experiments/delete", {"experiment_id": gone})
    _, data = await api.call("POST", f"{PANEL}/runs/search", {})
    assert names(data["runs"]) == []
