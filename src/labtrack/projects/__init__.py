"""Reproducible projects: MLproject files, ``labtrack run``, environments, git capture, sweeps.

    from labtrack.projects import run_project, run_sweep

    result = run_project("examples/project", parameters={"learning_rate": "0.05"})
    result.run_id, result.status

``spec`` parses MLproject files, ``source`` resolves folders and git repositories (and their
provenance), ``environment`` prepares the interpreter, ``runner`` launches one run and
``sweep`` many, on a backend from ``backends`` (``local``: a child process, see ``process``;
``ray``: a Ray job); ``commands`` adds ``labtrack run`` and ``labtrack sweep`` to the CLI.

    run_project("examples/project", backend="ray",
                backend_config={"address": "http://127.0.0.1:8265", "num_gpus": 1})
"""

from labtrack.projects.runner import ProjectRun, run_project
from labtrack.projects.spec import ProjectError, load_project
from labtrack.projects.sweep import SweepResult, run_sweep

__all__ = ["ProjectError", "ProjectRun", "SweepResult", "load_project", "run_project",
           "run_sweep"]
