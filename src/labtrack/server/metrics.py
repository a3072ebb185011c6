"""Metric history endpoints: MLflow's paged history and labtrack's downsampled series."""

from __future__ import annotations

from labtrack.server import wire
from labtrack.server.router import Router

router = Router()


@router.get("/api/2.0/mlflow/metrics/get-history")
def get_metric_history(request, context):
    """Every point of one metric of a run (paged when max_results is given)."""
    run_id = request.string("run_id") or request.string("run_uuid")
    if not run_id:
        request.string("run_id", required=True)
    page = context.tracking.get_metric_history(
        run_id,
        request.string("metric_key", required=True),
        request.integer("max_results"),
        request.string("page_token"),
    )
    out = {"metrics": [wire.metric(m) for m in page]}
    if page.token:
        out["next_page_token"] = page.token
    return out


def _downsampled(request, context):
    series = context.tracking.get_metric_history_downsampled(
        request.strings("run_ids", required=True),
        request.strings("metric_keys") or None,
        request.integer("max_points", default=1000),
        request.string("x_axis") or "step",
    )
    return {"series": [context.wire.series(s) for s in series]}


@router.get("/api/2.0/labtrack/metrics/get-history-downsampled")
def get_history_downsampled(request, context):
    """Chart-ready series for many runs and keys: at most max_points each, extremes kept."""
    return _downsampled(request, context)


@router.post("/api/2.0/labtrack/metrics/get-history-downsampled")
def get_history_downsampled_post(request, context):
    """The same, with the arguments in a JSON body (for long run id lists)."""
    return _downsampled(request, context)
