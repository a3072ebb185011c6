"""What the JupyterLab side panel needs beyond MLflow's API: the folder the Jupyter server
serves, and one call that lists a notebook's own runs next to a page of all runs.

JupyterLab names a notebook relative to the server's root folder; a kernel records the
notebook it runs as an absolute path (tags ``labtrack.notebook.path`` and
``mlflow.source.name``), so only the server can match the two.
"""

from __future__ import annotations

import os

from labtrack.client.run_context import SOURCE_NAME_TAG
from labtrack.server.router import Router
from labtrack.services.validation import MAX_RESULTS_SEARCH_EXPERIMENTS

router = Router()
PANEL = "/api/2.0/labtrack/panel"
# Recorded by labtrack.notebook.provenance (a layer above this one) for runs started in a
# notebook; mlflow.source.name holds the same path.
NOTEBOOK_PATH_TAG = "labtrack.notebook.path"
# A notebook's own runs come in one answer, newest first, at most this many.
NOTEBOOK_RUNS_LIMIT = 1000
NEWEST_FIRST = ["attributes.start_time DESC"]


def notebook_file(path: str, root_dir: str | None) -> str:
    """A notebook path as kernels record it: absolute, the way jupyter_server joins a
    contents path (``dir/nb.ipynb``, always with ``/``) to its root folder."""
    if os.path.isabs(path) or root_dir is None:
        return path
    return os.path.join(root_dir, *[part for part in path.split("/") if part])


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _and(*clauses: str | None) -> str:
    return " AND ".join(clause for clause in clauses if clause and clause.strip())


def _experiment_ids(context, requested: list[str]) -> list[str]:
    """The requested experiments, or every active one."""
    if requested:
        return requested
    ids, token = [], None
    while True:
        page = context.tracking.search_experiments(
            max_results=MAX_RESULTS_SEARCH_EXPERIMENTS, page_token=token)
        ids.extend(e.experiment_id for e in page)
        token = page.token
        if not token:
            return ids


def _notebook_runs(context, experiment_ids: list[str], user_filter: str | None,
                   path: str) -> list:
    """Runs whose notebook tag or source name is ``path``, newest first."""
    found: dict[str, object] = {}
    for tag in (NOTEBOOK_PATH_TAG, SOURCE_NAME_TAG):
        page = context.tracking.search_runs(
            experiment_ids, _and(user_filter, f"tags.`{tag}` = {_quoted(path)}"),
            "ACTIVE_ONLY", NOTEBOOK_RUNS_LIMIT, NEWEST_FIRST)
        for run in page:
            found.setdefault(run.info.run_id, run)
    runs = sorted(found.values(), key=lambda r: (-(r.info.start_time or 0), r.info.run_id))
    return runs[:NOTEBOOK_RUNS_LIMIT]


@router.get(f"{PANEL}/server-root")
def server_root(request, context):
    """The folder the Jupyter server serves (null outside Jupyter)."""
    return {"root_dir": context.root_dir}


@router.post(f"{PANEL}/runs/search")
def search_panel_runs(request, context):
    """A page of runs across experiments, newest first, and on the first page the runs of
    one notebook (named as JupyterLab names it)."""
    experiment_ids = _experiment_ids(context, request.strings("experiment_ids"))
    user_filter = request.string("filter")
    page_token = request.string("page_token")
    page = context.tracking.search_runs(
        experiment_ids, user_filter, "ACTIVE_ONLY",
        request.integer("max_results", default=100), NEWEST_FIRST, page_token)
    out: dict = {"runs": [context.wire.run(run) for run in page]}
    if page.token:
        out["next_page_token"] = page.token
    path = request.string("notebook_path")
    if path:
        absolute = notebook_file(path, context.root_dir)
        out["notebook_path"] = absolute
        if not page_token:
            out["notebook_runs"] = [context.wire.run(run) for run in _notebook_runs(
                context, experiment_ids, user_filter, absolute)]
    return out
