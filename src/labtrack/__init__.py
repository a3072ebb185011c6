"""labtrack: experiment tracking and a model registry that live inside Jupyter.

    import labtrack

    labtrack.set_experiment("forecasting")
    with labtrack.start_run(run_name="baseline"):
        labtrack.log_params({"lr": 0.01, "depth": 6})
        for step in range(1000):
            labtrack.log_metric("loss", 1 / (step + 1), step=step)

Data goes to the embedded SQLite store in the user's data directory unless
``LABTRACK_TRACKING_URI`` or ``labtrack.set_tracking_uri`` says otherwise.
"""

from labtrack.client import MetricWriterError, TrackingClient
from labtrack.client.fluent import (
    ActiveRun,
    active_run,
    create_experiment,
    delete_experiment,
    delete_tag,
    end_run,
    flush,
    get_artifact_uri,
    get_experiment,
    get_experiment_by_name,
    get_run,
    get_tracking_uri,
    last_active_run,
    log_artifact,
    log_artifacts,
    log_dict,
    log_figure,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    log_text,
    register_model,
    search_experiments,
    search_runs,
    set_experiment,
    set_tag,
    set_tags,
    set_tracking_uri,
    start_run,
)
from labtrack.entities import (
    Experiment,
    Metric,
    MetricSeries,
    ModelStage,
    ModelVersion,
    Param,
    RegisteredModel,
    Run,
    RunData,
    RunInfo,
    RunStatus,
    RunTag,
    ViewType,
)
from labtrack.errors import LabtrackError

__version__ = "0.1.0"


def load_ipython_extension(ipython) -> None:
    """``%load_ext labtrack``: registers the ``%mlrun`` / ``%%mlrun`` magics."""
    from labtrack.notebook.magics import load

    load(ipython)


def _jupyter_labextension_paths() -> list[dict]:
    """Where the prebuilt JupyterLab side panel lives (for ``jupyter labextension develop``;
    an installed wheel puts it in ``share/jupyter/labextensions/labtrack``)."""
    return [{"src": "labextension", "dest": "labtrack"}]


def _jupyter_server_extension_points() -> list[dict]:
    """Tells jupyter_server where the extension lives (imported only when it loads)."""
    from labtrack.server.app import LabTrack

    return [{"module": "labtrack", "app": LabTrack}]

__all__ = [
    "ActiveRun",
    "Experiment",
    "LabtrackError",
    "Metric",
    "MetricSeries",
    "MetricWriterError",
    "ModelStage",
    "ModelVersion",
    "Param",
    "RegisteredModel",
    "Run",
    "RunData",
    "RunInfo",
    "RunStatus",
    "RunTag",
    "TrackingClient",
    "ViewType",
    "__version__",
    "active_run",
    "create_experiment",
    "delete_experiment",
    "delete_tag",
    "end_run",
    "flush",
    "get_artifact_uri",
    "get_experiment",
    "get_experiment_by_name",
    "get_run",
    "get_tracking_uri",
    "last_active_run",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_text",
    "register_model",
    "search_experiments",
    "search_runs",
    "set_experiment",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
]
