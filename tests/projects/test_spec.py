"""The MLproject format: parsing, parameter types, command templating (run by a real shell)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from labtrack.projects.spec import ProjectError, load_project, shell_program


def write_project(folder: Path, mlproject: str, name: str = "MLproject") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(mlproject)
    return folder


def test_the_demo_project_parses(demo):
    project = load_project(demo)
    assert project.name == "demo"
    assert set(project.entry_points) == {"main", "echo", "exit", "sleep", "both_clients",
                                         "sweep"}
    main = project.entry_points["main"].parameters
    assert {n: (p.type, p.default) for n, p in main.items()} == {
        "alpha": ("float", "0.5"), "epochs": ("int", "3"), "label": ("string", "plain"),
        "data": ("path", "data/train.csv"), "target": ("uri", "file:///tmp/target"),
    }
    assert project.entry_points["echo"].parameters["text"].required
    assert project.env_file is None


def test_values_are_checked_by_type_and_errors_name_the_parameter(demo, tmp_path):
    main = load_project(demo).entry_point("main")
    with pytest.raises(ProjectError, match=r"'abc' for parameter 'alpha' \(float\).*not a "
                                           "number"):
        main.resolve_parameters({"alpha": "abc"}, demo, tmp_path)
    with pytest.raises(ProjectError, match=r"parameter 'epochs' \(int\).*not an integer"):
        main.resolve_parameters({"epochs": "3.5"}, demo, tmp_path)
    with pytest.raises(ProjectError, match=r"parameter 'data' \(path\).*no such file"):
        main.resolve_parameters({"data": "missing.csv"}, demo, tmp_path)
    with pytest.raises(ProjectError, match=r"parameter 'data'.*'s3:' locations are not "
                                           "supported"):
        main.resolve_parameters({"data": "s3://bucket/train.csv"}, demo, tmp_path)

    declared, extra = main.resolve_parameters(
        {"alpha": " 1e-3 ", "epochs": "7", "label": "x", "extra": "value"}, demo, tmp_path)
    assert declared["alpha"] == "1e-3" and declared["epochs"] == "7"
    # The default path is relative to the project; a given one to where labtrack runs.
    assert declared["data"] == str((demo / "data" / "train.csv").resolve())
    assert declared["target"] == "file:///tmp/target"  # a URI stays as given
    assert extra == {"extra": "value"}

    (tmp_path / "mine.csv").write_text("x,y\n")
    declared, _ = main.resolve_parameters({"data": "mine.csv", "target": "out/dir"}, demo,
                                          tmp_path)
    assert declared["data"] == str(tmp_path / "mine.csv")
    assert declared["target"] == str(tmp_path / "out" / "dir")  # a local 'uri' made absolute


def test_required_parameters_must_be_given(demo, tmp_path):
    echo = load_project(demo).entry_point("echo")
    with pytest.raises(ProjectError, match=r"needs a value for parameter 'text'.*-P text="):
        echo.resolve_parameters({}, demo, tmp_path)
    project = write_project(tmp_path / "p", """
entry_points:
  main:
    parameters: {a: string, b: int, c: {type: float, default: 1}}
    command: "echo {a} {b} {c}"
""")
    with pytest.raises(ProjectError, match="parameters 'a' and 'b'"):
        load_project(project).entry_point("main").resolve_parameters({}, project, tmp_path)


@pytest.mark.parametrize(
    "mlproject, message",
    [
        ("entry_points: {main: {parameters: {x: double}, command: 'echo {x}'}}",
         r"parameter 'x' of entry point 'main' has unknown type 'double'"),
        ("entry_points: {main: {command: 'echo {x}'}}",
         r"uses \{x\}, which is not a declared parameter"),
        ("entry_points: {main: {parameters: {x: float}, command: 'echo {x:.2f}'}}",
         "without format specs"),
        ("entry_points: {main: {command: 'echo {'}}", "literal braces"),
        ("entry_points: {main: {parameters: {x: string}}}",
         "entry point 'main' needs a 'command' string"),
        ("conda_env: conda.yaml\nentry_points: {}", r"conda environments \('conda_env'\) are "
                                                   "not supported"),
        ("docker_env: {image: x}\nentry_points: {}", "docker environments"),
        ("python_env: missing.yaml\nentry_points: {}", "'missing.yaml' does not exist"),
        ("- a list", "expected a mapping"),
        ("entry_points: {main: {parameters: {x: {type: int, dflt: 1}}, command: 'a {x}'}}",
         r"unknown keys \['dflt'\]"),
        ("name: [unclosed", "not valid YAML"),
    ],
)
def test_mlproject_mistakes_are_explained(tmp_path, mlproject, message):
    project = write_project(tmp_path / "p", mlproject)
    with pytest.raises(ProjectError, match=message):
        load_project(project)


def test_the_file_name_is_matched_case_insensitively_and_python_env_yaml_is_found(tmp_path):
    project = write_project(tmp_path / "p", "name: lower\nentry_points: {main: {command: "
                            "'true'}}\n", name="mlproject")
    (project / "python_env.yaml").write_text("dependencies: []\n")
    loaded = load_project(project)
    assert loaded.name == "lower" and "main" in loaded.entry_points
    assert loaded.env_file == project / "python_env.yaml"


def test_scripts_are_entry_points_also_without_an_mlproject_file(demo, tmp_path):
    folder = tmp_path / "scripts"
    folder.mkdir()
    (folder / "job.py").write_text("print('job')\n")
    project = load_project(folder)
    assert project.name == "scripts" and not project.has_mlproject
    script = project.entry_point("job.py")
    declared, extra = script.resolve_parameters({"n": "2"}, folder, tmp_path)
    assert script.command_line(declared, extra, python="/py/python") == \
        "/py/python job.py --n 2"
    with pytest.raises(ProjectError, match="no such script"):
        project.entry_point("other.py")
    with pytest.raises(ProjectError, match="outside the project"):
        project.entry_point("../demo/hello.py")
    with pytest.raises(ProjectError, match=r"no entry point 'train' \(declared: none"):
        project.entry_point("train")
    with pytest.raises(ProjectError, match=r"declared: 'main', 'echo'"):
        load_project(demo).entry_point("missing")


AWKWARD = [
    "two words",
    "it's",
    'say "hi"',
    "a;b",
    "x && touch pwned",
    "$(touch pwned)",
    "`touch pwned`",
    "$HOME",
    "back\\slash",
    "new\nline",
    "*",
    "--flag",
    "",
    "ünïcödé ✓",
    "{braces}",
]


@pytest.mark.parametrize("value", AWKWARD)
def test_awkward_values_reach_the_program_unchanged(demo, tmp_path, value):
    """The command runs in a real shell: every value arrives as exactly one argument."""
    echo = load_project(demo).entry_point("echo")
    declared, extra = echo.resolve_parameters({"text": value, "odd": value}, demo, tmp_path)
    command = echo.command_line(declared, extra, python="python")
    result = subprocess.run([*shell_program(), command.replace("python", _python(), 1)],
                            cwd=demo, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    arguments = json.loads(result.stdout.split("ARGS ", 1)[1])
    assert arguments == [value, "1", "--odd", value]
    assert not (demo / "pwned").exists()


def _python() -> str:
    import shlex
    import sys

    return shlex.quote(sys.executable)
