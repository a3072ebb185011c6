"""labtrack.pyfunc: saving, logging, loading, signatures, requirements and model URIs."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import textwrap
from pathlib import Path

import cloudpickle
import numpy as np
import pandas as pd
import pytest
import sklearn
import yaml
from sklearn.linear_model import LinearRegression

import labtrack
import labtrack.pyfunc
from labtrack.errors import InvalidParameterValue, ResourceDoesNotExist
from labtrack.models import Model
from labtrack.models.uri import parse_model_uri, resolve_version


class Scaler(labtrack.pyfunc.PythonModel):
    """Multiplies column x by the number in the 'factor' artifact (and by params['k'])."""

    def load_context(self, context):
        with open(context.artifacts["factor"]) as stream:
            self.factor = float(stream.read())

    def predict(self, context, model_input, params=None):
        return model_input["x"] * self.factor * (params or {}).get("k", 1.0)


class Plain(labtrack.pyfunc.PythonModel):
    """predict without a context; returns an array."""

    def predict(self, model_input):
        return np.asarray(model_input["x"]) + 1


class Constant(labtrack.pyfunc.PythonModel):
    def __init__(self, value):
        self.value = value

    def predict(self, context, model_input, params=None):
        return np.full(len(model_input), self.value)


@pytest.fixture
def factor_file(tmp_path):
    path = tmp_path / "factor.txt"
    path.write_text("3")
    return path


def _module(tmp_path, name, body):
    path = tmp_path / "src" / f"{name}.py"
    path.parent.mkdir(exist_ok=True)
    path.write_text(textwrap.dedent(body))
    return path


def test_saved_folder_is_mlflows_layout(tmp_path, factor_file, frame):
    helper = _module(tmp_path, "helper_mod", "def twice(x):\n    return 2 * x\n")
    target = tmp_path / "model"
    labtrack.pyfunc.save_model(target, python_model=Scaler(),
                               artifacts={"factor": str(factor_file)}, code_paths=[helper],
                               input_example=(frame[["x"]], {"k": 1.0}),
                               metadata={"owner": "recsys"})
    names = {p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()}
    assert names == {"MLmodel", "python_model.pkl", "artifacts/factor.txt",
                     "code/helper_mod.py", "requirements.txt", "python_env.yaml",
                     "conda.yaml", "input_example.json", "serving_input_example.json"}
    mlmodel = yaml.safe_load((target / "MLmodel").read_text())
    flavor = mlmodel["flavors"]["python_function"]
    assert flavor["loader_module"] == "mlflow.pyfunc.model"
    assert flavor["python_model"] == "python_model.pkl"
    assert flavor["code"] == "code"
    assert flavor["python_version"] == platform.python_version()
    assert flavor["cloudpickle_version"] == cloudpickle.__version__
    assert flavor["artifacts"] == {"factor": {"path": "artifacts/factor.txt",
                                              "uri": str(factor_file)}}
    assert flavor["env"] == {"conda": "conda.yaml", "virtualenv": "python_env.yaml"}
    assert json.loads(mlmodel["signature"]["inputs"]) == [
        {"type": "double", "name": "x", "required": True}]
    assert json.loads(mlmodel["signature"]["outputs"]) == [
        {"type": "double", "name": "x", "required": True}]
    assert json.loads(mlmodel["signature"]["params"]) == [
        {"name": "k", "default": 1.0, "shape": None, "type": "double"}]
    assert mlmodel["saved_input_example_info"]["type"] == "dataframe"
    assert mlmodel["metadata"] == {"owner": "recsys"}
    assert mlmodel["utc_time_created"] and mlmodel["model_uuid"]
    assert mlmodel["model_size_bytes"] > 0
    assert json.loads((target / "input_example.json").read_text()) == {
        "inputs": {"columns": ["x"], "data": [[1.0], [2.0], [3.0]]}, "params": {"k": 1.0}}
    assert json.loads((target / "serving_input_example.json").read_text()) == {
        "dataframe_split": {"columns": ["x"], "data": [[1.0], [2.0], [3.0]]},
        "params": {"k": 1.0}}
    env = yaml.safe_load((target / "python_env.yaml").read_text())
    assert env["python"] == platform.python_version()
    assert env["dependencies"] == ["-r requirements.txt"]


def test_load_predict_with_artifacts_and_params(tmp_path, factor_file, frame):
    labtrack.pyfunc.save_model(tmp_path / "m", python_model=Scaler(),
                               artifacts={"factor": str(factor_file)},
                               input_example=(frame[["x"]], {"k": 1.0}))
    model = labtrack.pyfunc.load_model(tmp_path / "m")
    assert model.predict(frame).tolist() == [3.0, 6.0, 9.0]
    assert model.predict(frame, params={"k": 2}).tolist() == [6.0, 12.0, 18.0]
    assert isinstance(model.unwrap_python_model(), Scaler)
    assert model.unwrap_python_model().factor == 3.0
    assert model.metadata.get_input_schema().input_names() == ["x"]


def test_predict_without_context_and_without_params(tmp_path, frame):
    labtrack.pyfunc.save_model(tmp_path / "m", python_model=Plain(), input_example=frame)
    model = labtrack.pyfunc.load_model(tmp_path / "m")
    assert model.predict(frame).tolist() == [2.0, 3.0, 4.0]
    assert json.loads(model.metadata.to_dict()["signature"]["outputs"]) == [
        {"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1]}}]


def test_signature_is_enforced_with_a_clear_error(tmp_path, frame):
    labtrack.pyfunc.save_model(tmp_path / "m", python_model=Plain(), input_example=frame)
    model = labtrack.pyfunc.load_model(tmp_path / "m")
    with pytest.raises(labtrack.pyfunc.SchemaError,
                       match=r"Model is missing inputs \['y'\]"):
        model.predict(frame[["x"]])
    with pytest.raises(labtrack.pyfunc.SchemaError, match="column 'x'.*double"):
        model.predict(pd.DataFrame({"x": ["a"], "y": [1.0]}))
    # Safe conversions pass: integers for doubles, extra columns dropped, a dict as a row.
    assert model.predict(pd.DataFrame({"x": [1], "y": [2], "z": [0]})).tolist() == [2.0]
    assert model.predict({"x": 1.0, "y": 2.0}).tolist() == [2.0]


def test_explicit_and_absent_signatures(tmp_path, frame):
    signature = labtrack.models.infer_signature(frame[["x"]])
    labtrack.pyfunc.save_model(tmp_path / "a", python_model=Plain(), signature=signature,
                               input_example=frame)
    assert Model.load(tmp_path / "a").signature == signature
    labtrack.pyfunc.save_model(tmp_path / "b", python_model=Plain(), signature=False,
                               input_example=frame)
    unchecked = labtrack.pyfunc.load_model(tmp_path / "b")
    assert unchecked.metadata.signature is None
    assert unchecked.predict({"x": [5.0]}).tolist() == [6.0]


def test_requirements_follow_what_the_model_imports(tmp_path, frame):
    local = _module(tmp_path, "features_mod", """
        import json
        import scipy.special

        def squash(values):
            return scipy.special.expit(values)
    """)
    estimator = LinearRegression().fit(frame[["x"]], frame["y"])

    class WithEstimator(labtrack.pyfunc.PythonModel):  # defined here: pickled by value
        def __init__(self):
            self.estimator = estimator

        def predict(self, context, model_input, params=None):
            import features_mod

            return features_mod.squash(self.estimator.predict(model_input[["x"]]))

    sys.path.insert(0, str(local.parent))
    try:
        labtrack.pyfunc.save_model(tmp_path / "m", python_model=WithEstimator(),
                                   code_paths=[local], input_example=frame,
                                   extra_pip_requirements=["gunicorn>=20"])
    finally:
        sys.path.remove(str(local.parent))
        sys.modules.pop("features_mod", None)
    lines = (tmp_path / "m" / "requirements.txt").read_text().split()
    names = {line.split("=")[0].split(">")[0] for line in lines}
    assert {"scikit-learn", "scipy", "numpy", "pandas", "cloudpickle", "labtrack",
            "gunicorn"} <= names
    assert f"scikit-learn=={sklearn.__version__}" in lines
    assert "gunicorn>=20" in lines
    assert not names & {"json", "features-mod", "features_mod"}
    conda = yaml.safe_load((tmp_path / "m" / "conda.yaml").read_text())
    assert conda["dependencies"][-1]["pip"] == lines
    labtrack.pyfunc.save_model(tmp_path / "pinned", python_model=Plain(),
                               pip_requirements=["pandas==2.2.0"])
    assert (tmp_path / "pinned" / "requirements.txt").read_text().split() == ["pandas==2.2.0"]


def test_models_packaged_as_artifacts_bring_their_requirements(tmp_path, frame):
    import labtrack.sklearn

    estimator = LinearRegression().fit(frame[["x"]], frame["y"])
    labtrack.sklearn.save_model(estimator, tmp_path / "regressor")
    labtrack.pyfunc.save_model(tmp_path / "m", python_model=Plain(),
                               artifacts={"regressor": str(tmp_path / "regressor")})
    lines = (tmp_path / "m" / "requirements.txt").read_text().split()
    assert f"scikit-learn=={sklearn.__version__}" in lines
    assert len({line.split("==")[0] for line in lines}) == len(lines)  # one line per package


def test_two_versions_of_a_code_module_serve_side_by_side(tmp_path, frame):
    """Each model keeps the version of its code_paths module it was loaded with."""

    def model_with_logic(folder, offset):
        logic = _module(tmp_path / folder, "business_rules", f"OFFSET = {offset}\n")

        class Ruled(labtrack.pyfunc.PythonModel):
            def load_context(self, context):
                import business_rules

                self.rules = business_rules

            def predict(self, context, model_input, params=None):
                return model_input["x"] + self.rules.OFFSET

        labtrack.pyfunc.save_model(tmp_path / f"model-{offset}", python_model=Ruled(),
                                   code_paths=[logic])
        return labtrack.pyfunc.load_model(tmp_path / f"model-{offset}")

    (tmp_path / "v1").mkdir()
    (tmp_path / "v2").mkdir()
    first = model_with_logic("v1", 100)
    second = model_with_logic("v2", 200)
    assert first.predict(frame).tolist() == [101.0, 102.0, 103.0]
    assert second.predict(frame).tolist() == [201.0, 202.0, 203.0]


def test_one_class_saved_with_two_logic_versions_keeps_both(tmp_path, frame):
    """A notebook saves the same PythonModel class twice, with two versions of its rules
    module; loaded side by side (here, and in a server), each keeps its own code."""
    rules = _module(tmp_path, "pricing_rules", "MARKUP = 1\n")
    sys.path.insert(0, str(rules.parent))
    try:
        import pricing_rules

        class Priced(labtrack.pyfunc.PythonModel):
            def predict(self, context, model_input, params=None):
                return model_input["x"] * pricing_rules.MARKUP

        labtrack.pyfunc.save_model(tmp_path / "v1", python_model=Priced(), code_paths=[rules])
        rules.write_text("MARKUP = 2\n")
        labtrack.pyfunc.save_model(tmp_path / "v2", python_model=Priced(), code_paths=[rules])
    finally:
        sys.path.remove(str(rules.parent))
        sys.modules.pop("pricing_rules", None)
    first = labtrack.pyfunc.load_model(tmp_path / "v1")
    second = labtrack.pyfunc.load_model(tmp_path / "v2")
    assert first.predict(frame).tolist() == [1.0, 2.0, 3.0]
    assert second.predict(frame).tolist() == [2.0, 4.0, 6.0]
    assert first.predict(frame).tolist() == [1.0, 2.0, 3.0]  # not overwritten by the second


def test_custom_loader_module(tmp_path):
    _module(tmp_path, "my_loader", """
        class Model:
            def __init__(self, path):
                with open(path) as stream:
                    self.offset = float(stream.read())

            def predict(self, data, params=None):
                return [v + self.offset for v in data]

        def _load_pyfunc(path):
            return Model(path)
    """)
    data = tmp_path / "offset.txt"
    data.write_text("0.5")
    labtrack.pyfunc.save_model(tmp_path / "m", loader_module="my_loader", data_path=data,
                               code_paths=[tmp_path / "src" / "my_loader.py"])
    model = labtrack.pyfunc.load_model(tmp_path / "m")
    assert model.predict([1.0, 2.0]) == [1.5, 2.5]
    assert model.loader_module == "my_loader"


def test_save_errors(tmp_path, frame):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(InvalidParameterValue, match="already exists and is not empty"):
        labtrack.pyfunc.save_model(tmp_path / "full", python_model=Plain())
    with pytest.raises(InvalidParameterValue, match="either python_model or loader_module"):
        labtrack.pyfunc.save_model(tmp_path / "none")
    with pytest.raises(InvalidParameterValue, match="Code path '.*nope.py' does not exist"):
        labtrack.pyfunc.save_model(tmp_path / "bad", python_model=Plain(),
                                   code_paths=[tmp_path / "nope.py"])
    assert not (tmp_path / "bad").exists()
    with pytest.raises(labtrack.pyfunc.ModelLoadError, match="no python_function flavor"):
        (tmp_path / "other").mkdir()
        Model().add_flavor("keras").save(tmp_path / "other" / "MLmodel")
        labtrack.pyfunc.load_model(tmp_path / "other")
    with pytest.raises(ResourceDoesNotExist, match="the path does not exist"):
        labtrack.pyfunc.load_model(tmp_path / "missing")


def test_log_model_is_an_mlflow3_logged_model(fluent_uri, factor_file, frame):
    client = labtrack.TrackingClient(fluent_uri)
    with labtrack.start_run() as run:
        labtrack.log_param("lr", 0.1)
        info = labtrack.pyfunc.log_model("scaler", python_model=Scaler(),
                                         artifacts={"factor": str(factor_file)},
                                         input_example=frame[["x"]], tags={"team": "recs"})
    assert info.model_uri == f"models:/{info.model_id}"
    assert info.run_id == run.info.run_id and info.name == "scaler"
    logged = client.get_logged_model(info.model_id)
    assert str(logged.status) == "LOGGED_MODEL_READY"
    assert logged.name == "scaler" and logged.source_run_id == run.info.run_id
    assert logged.params == {"lr": "0.1"} and logged.tags["team"] == "recs"
    assert logged.artifact_location.endswith(f"/models/{info.model_id}/artifacts")
    outputs = client.get_run(run.info.run_id).outputs.model_outputs
    assert [o.model_id for o in outputs] == [info.model_id]
    stored = Model.load(client.download_artifact_location(logged.artifact_location))
    assert (stored.run_id, stored.model_id) == (run.info.run_id, info.model_id)
    assert stored.artifact_path == logged.artifact_location
    for uri in (f"runs:/{run.info.run_id}/scaler", f"models:/{info.model_id}"):
        assert labtrack.pyfunc.load_model(uri).predict(frame).tolist() == [3.0, 6.0, 9.0]


def test_log_model_starts_a_run_when_none_is_active(fluent_uri, frame):
    info = labtrack.pyfunc.log_model(python_model=Plain(), input_example=frame)
    assert labtrack.active_run().info.run_id == info.run_id
    assert info.name == "model"
    labtrack.end_run()


def test_registry_uris_resolve(fluent_uri, frame):
    client = labtrack.TrackingClient(fluent_uri)
    infos = []
    for value in (1, 2, 3):
        with labtrack.start_run():
            infos.append(labtrack.pyfunc.log_model(
                "model", python_model=Constant(value), input_example=frame,
                registered_model_name="recommender"))
    assert [i.registered_model_version for i in infos] == ["1", "2", "3"]
    client.transition_model_version_stage("recommender", 2, "Production")
    client.set_registered_model_alias("recommender", "champion", 1)

    def predicted(uri):
        return labtrack.pyfunc.load_model(uri).predict(frame).tolist()[0]

    assert predicted("models:/recommender/1") == 1
    assert predicted("models:/recommender/Production") == 2
    assert predicted("models:/recommender/production") == 2
    assert predicted("models:/recommender/latest") == 3
    assert predicted("models:/recommender@champion") == 1
    assert resolve_version("models:/recommender@champion", client).version == "1"
    client.set_registered_model_alias("recommender", "champion", 3)
    assert predicted("models:/recommender@champion") == 3
    with pytest.raises(labtrack.LabtrackError, match="alias nobody not found"):
        labtrack.pyfunc.load_model("models:/recommender@nobody")
    with pytest.raises(ResourceDoesNotExist, match="in stage 'Staging'"):
        labtrack.pyfunc.load_model("models:/recommender/Staging")


@pytest.mark.parametrize(("uri", "message"), [
    ("models:/", "name a version"),
    ("models:/name", "name a version, stage, 'latest' or alias"),
    ("models:/name/Prod", "'Prod' is not a version number, a stage"),
    ("models://name/1", "one slash after 'models:'"),
    ("runs:/abc", r"expected runs:/<run_id>/<path>"),
    ("s3://bucket/model", "Unsupported model URI"),
    ("", "A model URI is required"),
])
def test_bad_uris_say_what_is_expected(uri, message):
    with pytest.raises(InvalidParameterValue, match=message):
        parse_model_uri(uri)


def test_log_and_load_over_rest(labtrack_server, monkeypatch, frame, factor_file):
    monkeypatch.setenv("LABTRACK_TRACKING_TOKEN", labtrack_server.token)
    labtrack.set_tracking_uri(labtrack_server.url)
    try:
        labtrack.set_experiment("rest-models")
        with labtrack.start_run() as run:
            info = labtrack.pyfunc.log_model("scaler", python_model=Scaler(),
                                             artifacts={"factor": str(factor_file)},
                                             input_example=frame[["x"]],
                                             registered_model_name="rest-scaler")
        client = labtrack.TrackingClient(labtrack_server.url)
        logged = client.get_logged_model(info.model_id)
        assert logged.artifact_location.startswith("mlflow-artifacts:/")
        assert str(logged.status) == "LOGGED_MODEL_READY"
        client.set_registered_model_alias("rest-scaler", "champion", 1)
        for uri in (f"runs:/{run.info.run_id}/scaler", f"models:/{info.model_id}",
                    "models:/rest-scaler/1", "models:/rest-scaler@champion"):
            assert labtrack.pyfunc.load_model(uri).predict(frame).tolist() == [3.0, 6.0, 9.0]

        # The folder a remote model was downloaded into lives as long as the process.
        script = ("import os, labtrack.pyfunc\n"
                  "model = labtrack.pyfunc.load_model('models:/rest-scaler/1')\n"
                  "print(model.model_path, os.path.isfile(os.path.join(model.model_path, "
                  "'MLmodel')))")
        env = {**os.environ, "LABTRACK_TRACKING_URI": labtrack_server.url,
               "LABTRACK_TRACKING_TOKEN": labtrack_server.token}
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        folder, had_model = done.stdout.split()
        assert had_model == "True" and Path(folder).name.startswith("labtrack-model-")
        assert not Path(folder).exists()
    finally:
        labtrack.set_tracking_uri(None)
        labtrack.client.fluent._experiment_id = None
