"""Experiment endpoints (MLflow REST API 2.0)."""

from __future__ import annotations

from labtrack.errors import ResourceDoesNotExist
from labtrack.server.router import Router
from labtrack.services.validation import MAX_RESULTS_SEARCH_EXPERIMENTS, validate_max_results

router = Router()
PREFIX = "/api/2.0/mlflow/experiments"


@router.post(f"{PREFIX}/create")
def create_experiment(request, context):
    """Create an experiment."""
    experiment_id = context.tracking.create_experiment(
        request.string("name", required=True),
        context.wire.stored_location(request.string("artifact_location")),
        request.key_values("tags"),
    )
    return {"experiment_id": experiment_id}


@router.get(f"{PREFIX}/get")
def get_experiment(request, context):
    """Get an experiment by id (deleted ones too)."""
    experiment = context.tracking.get_experiment(request.string("experiment_id", required=True))
    return {"experiment": context.wire.experiment(experiment)}


@router.get(f"{PREFIX}/get-by-name")
def get_experiment_by_name(request, context):
    """Get an experiment by name."""
    name = request.string("experiment_name", required=True)
    experiment = context.tracking.get_experiment_by_name(name)
    if experiment is None:
        raise ResourceDoesNotExist(f"Could not find experiment with name '{name}'")
    return {"experiment": context.wire.experiment(experiment)}


def _search(request, context):
    # Over REST MLflow requires max_results (0 is "missing"), up to 50000.
    max_results = validate_max_results(
        request.integer("max_results", default=0), MAX_RESULTS_SEARCH_EXPERIMENTS
    )
    page = context.tracking.search_experiments(
        request.string("view_type") or "ACTIVE_ONLY",
        max_results,
        request.string("filter"),
        request.strings("order_by"),
        request.string("page_token"),
    )
    out = {"experiments": [context.wire.experiment(e) for e in page]}
    if page.token:
        out["next_page_token"] = page.token
    return out


@router.get(f"{PREFIX}/search")
def search_experiments_get(request, context):
    """Search experiments (query-string form)."""
    return _search(request, context)


@router.post(f"{PREFIX}/search")
def search_experiments(request, context):
    """Search experiments."""
    return _search(request, context)


@router.post(f"{PREFIX}/update")
def update_experiment(request, context):
    """Rename an experiment."""
    context.tracking.rename_experiment(
        request.string("experiment_id", required=True), request.string("new_name", required=True)
    )
    return {}


@router.post(f"{PREFIX}/delete")
def delete_experiment(request, context):
    """Delete an experiment and its runs (restorable)."""
    context.tracking.delete_experiment(request.string("experiment_id", required=True))
    return {}


@router.post(f"{PREFIX}/restore")
def restore_experiment(request, context):
    """Restore a deleted experiment and the runs deleted with it."""
    context.tracking.restore_experiment(request.string("experiment_id", required=True))
    return {}


@router.post(f"{PREFIX}/set-experiment-tag")
def set_experiment_tag(request, context):
    """Set a tag on an experiment."""
    context.tracking.set_experiment_tag(
        request.string("experiment_id", required=True),
        request.string("key", required=True),
        request.string("value", default=""),
    )
    return {}


@router.post(f"{PREFIX}/delete-experiment-tag")
def delete_experiment_tag(request, context):
    """Delete a tag of an experiment."""
    context.tracking.delete_experiment_tag(
        request.string("experiment_id", required=True), request.string("key", required=True)
    )
    return {}
