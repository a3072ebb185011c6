"""``labtrack.sklearn``: the scikit-learn model flavor and autologging, used like
``mlflow.sklearn``.

    import labtrack.sklearn

    labtrack.sklearn.autolog()           # every fit logs params, metrics, tags and the model
    model = LogisticRegression().fit(X, y)

    labtrack.sklearn.save_model(model, "model-folder", input_example=X[:5])
    estimator = labtrack.sklearn.load_model("runs:/<run_id>/model")

See ``labtrack.models.sklearn`` for the details.
"""

# The public names are the implementation's own ``__all__``: one list to keep.
from labtrack.models.sklearn import *  # noqa: F403
from labtrack.models.sklearn import __all__ as __all__
