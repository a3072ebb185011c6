"""Environments: the current interpreter, and virtualenvs built once per python_env and reused.

The virtualenvs install a wheel made by the test (no index needed) or nothing at all.
"""

from __future__ import annotations

import os
import platform
import sys
import threading
from pathlib import Path

import pytest

from labtrack.projects.environment import (
    LOCAL,
    VIRTUALENV,
    PythonEnv,
    VirtualenvBuilder,
    find_interpreter,
    prepare_environment,
    projects_dir,
)
from labtrack.projects.spec import ProjectError
from tests.projects.conftest import build_wheel, runs_of

CHECK_SCRIPT = """\
import importlib.util
import sys

import labtrack
import tinydep

print("PREFIX", sys.prefix)
print("HAS_PYTEST", importlib.util.find_spec("pytest") is not None)
with labtrack.start_run():
    labtrack.log_metric("tinydep", tinydep.VALUE)
"""


@pytest.fixture
def venv_project(tmp_path) -> Path:
    """A project whose python_env installs a local wheel."""
    project = tmp_path / "venv-project"
    build_wheel(project / "wheels")
    (project / "MLproject").write_text(
        "name: venv-project\npython_env: env/python_env.yaml\n"
        "entry_points:\n  main:\n    command: python check.py\n")
    (project / "env").mkdir()
    (project / "env" / "python_env.yaml").write_text(
        f'python: "{platform.python_version()}"\nbuild_dependencies: []\n'
        "dependencies:\n  - ../wheels/tinydep-1.0-py3-none-any.whl\n")
    (project / "check.py").write_text(CHECK_SCRIPT)
    return project


def test_a_virtualenv_is_built_once_reused_and_isolated(cli, venv_project, tracking):
    first = cli("run", str(venv_project))
    assert first.returncode == 0, first.stderr
    assert "creating virtualenv" in first.stderr
    second = cli("run", str(venv_project))
    assert second.returncode == 0, second.stderr
    assert "reusing virtualenv" in second.stderr and "creating" not in second.stderr

    envs = projects_dir() / "envs"
    (link,) = [p for p in envs.iterdir() if p.is_symlink()]
    builds = [p for p in envs.iterdir() if p.is_dir() and not p.is_symlink()]
    assert builds == [link.resolve()]  # one build, published under the hash
    for result in (first, second):
        assert f"PREFIX {link.resolve()}" in result.stdout  # the child ran in it
        assert "HAS_PYTEST False" in result.stdout  # nothing of this environment leaks in
    runs = runs_of(tracking)
    assert [r.data.metrics for r in runs] == [{"tinydep": 42.0}] * 2
    assert {r.data.tags["mlflow.project.env"] for r in runs} == {VIRTUALENV}


def test_env_manager_local_uses_this_interpreter_even_with_a_python_env(cli, demo, tracking):
    (demo / "python_env.yaml").write_text("dependencies: [does-not-exist-anywhere]\n")
    result = cli("run", str(demo), "-e", "hello.py", "--env-manager", "local")
    assert result.returncode == 0, result.stderr
    assert runs_of(tracking)[0].data.tags["mlflow.project.env"] == LOCAL
    assert not (projects_dir() / "envs").exists()


def test_concurrent_launches_build_one_environment(tmp_path):
    env_file = tmp_path / "python_env.yaml"
    env_file.write_text("dependencies: []\n")
    locations, errors = [], []

    def prepare() -> None:
        try:
            locations.append(prepare_environment(VIRTUALENV, env_file, lambda _: None).location)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=prepare) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(set(locations)) == 1
    envs = projects_dir() / "envs"
    assert len([p for p in envs.iterdir() if p.is_dir() and not p.is_symlink()]) == 1
    python = Path(locations[0]) / "bin" / "python"
    assert os.access(python, os.X_OK)


def test_a_failed_build_leaves_nothing_behind(tmp_path):
    env_file = tmp_path / "python_env.yaml"
    env_file.write_text("dependencies: [./no-such-file.whl]\n")
    output = []
    with pytest.raises(ProjectError, match="pip install exited with"):
        prepare_environment(VIRTUALENV, env_file, output.append)
    assert b"no-such-file.whl" in b"".join(output)
    assert [p.name for p in (projects_dir() / "envs").iterdir()
            if not p.name.endswith(".lock")] == []


def test_python_env_files_are_checked(tmp_path):
    env_file = tmp_path / "python_env.yaml"
    env_file.write_text("python: 3.10\n")
    with pytest.raises(ProjectError, match=r'write the Python version as a string.*"3.1"'):
        PythonEnv.load(env_file)
    env_file.write_text("python: '3.11'\npackages: [x]\n")
    with pytest.raises(ProjectError, match=r"unknown keys \['packages'\]"):
        PythonEnv.load(env_file)
    env_file.write_text("dependencies: numpy\n")
    with pytest.raises(ProjectError, match="'dependencies' must be a list"):
        PythonEnv.load(env_file)
    env_file.write_text("python: '>=3.9'\n")
    with pytest.raises(ProjectError, match="must be a version such as"):
        PythonEnv.load(env_file)


def test_an_unavailable_python_version_says_what_to_do():
    with pytest.raises(ProjectError, match=r"asks for Python 2\.7.*--env-manager local"):
        find_interpreter("2.7")
    major_minor = ".".join(platform.python_version().split(".")[:2])
    assert find_interpreter(major_minor) == (sys.executable, platform.python_version())


def test_the_environment_hash_follows_the_requirements_and_their_files(tmp_path):
    (tmp_path / "requirements.txt").write_text("tinydep==1.0\n")
    env_file = tmp_path / "python_env.yaml"
    env_file.write_text("dependencies: ['-r requirements.txt']\n")
    first = VirtualenvBuilder(PythonEnv.load(env_file)).key
    assert VirtualenvBuilder(PythonEnv.load(env_file)).key == first
    (tmp_path / "requirements.txt").write_text("tinydep==2.0\n")
    assert VirtualenvBuilder(PythonEnv.load(env_file)).key != first
