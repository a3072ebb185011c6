"""``labtrack.sklearn``: the scikit-learn model flavor and autologging, used like
``mlflow.sklearn``.

    import labtrack.sklearn

    labtrack.sklearn.autolog()           # every fit logs params, metrics, tags and the model
    model = LogisticRegression().fit(X, y)

    labtrack.sklearn.save_model(model, "model-folder", input_example=X[:5])
    estimator = labtrack.sklearn.load_model("runs:/<run_id>/model")

See ``labtrack.models.sklearn`` for the details.
"""

from labtrack.models.sklearn import (
    FLAVOR_NAME,
    SERIALIZATION_FORMAT_CLOUDPICKLE,
    SERIALIZATION_FORMAT_PICKLE,
    SERIALIZATION_FORMAT_SKOPS,
    autolog,
    load_model,
    log_model,
    save_model,
)

__all__ = [
    "FLAVOR_NAME",
    "SERIALIZATION_FORMAT_CLOUDPICKLE",
    "SERIALIZATION_FORMAT_PICKLE",
    "SERIALIZATION_FORMAT_SKOPS",
    "autolog",
    "load_model",
    "log_model",
    "save_model",
]
