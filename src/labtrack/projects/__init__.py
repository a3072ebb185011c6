"""Reproducible projects: MLproject files, ``labtrack run``, environments, git capture, sweeps.

    from labtrack.projects import run_project, run_sweep

    result = run_project("examples/project", parameters={"learning_rate": "0.05"})
    result.run_id, result.status

``spec`` parses MLproject files, ``source`` resolves folders and git repositories (and their
provenance), ``environment`` prepares the interpreter, ``runner`` launches one run and
``sweep`` many; ``commands`` adds ``labtrack run`` and ``labtrack sweep`` to the CLI.
"""

from labtrack.projects.runner import ProjectRun, run_project
from labtrack.projects.spec import ProjectError, load_project
from labtrack.projects.sweep import SweepResult, run_sweep

__all__ = ["ProjectError", "ProjectRun", "SweepResult", "load_project", "run_project",
           "run_sweep"]
