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

# The public names are the implementation's own ``__all__``: one list to keep.
from labtrack.models.pyfunc import *  # noqa: F403
from labtrack.models.pyfunc import __all__ as __all__
