"""``labtrack.pyfunc``: the python_function model flavor, used like ``mlflow.pyfunc``.

    import labtrack.pyfunc

    class Doubler(labtrack.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return model_input * 2

    with labtrack.start_run():
        info = labtrack.pyfunc.log_model("model", python_model=Doubler(),
                                         input_example=frame, registered_model_name="doubler")
    model = labtrack.pyfunc.load_model("models:/doubler@champion")
    model.predict(frame)

See ``labtrack.models.pyfunc`` for the details.
"""

from labtrack.models.pyfunc import (
    FLAVOR_NAME,
    ModelLoadError,
    PyFuncModel,
    PythonModel,
    PythonModelContext,
    SchemaError,
    add_to_model,
    get_model_dependencies,
    load_model,
    log_model,
    save_model,
)

__all__ = [
    "FLAVOR_NAME",
    "ModelLoadError",
    "PyFuncModel",
    "PythonModel",
    "PythonModelContext",
    "SchemaError",
    "add_to_model",
    "get_model_dependencies",
    "load_model",
    "log_model",
    "save_model",
]
