"""Models: MLflow's MLmodel format, the ``python_function`` and ``sklearn`` flavors, model URIs
and the REST scoring server (with A/B routing between registry versions).

=================  ===========================================================================
``mlmodel``        the ``MLmodel`` file (``Model``) and ``ModelInfo``, and logging a model
                   folder as an MLflow 3 logged model of a run
``signature``      model signatures: schemas, inference from examples, enforcement
``requirements``   the dependencies a model imports → ``requirements.txt``, ``python_env.yaml``
``uri``            ``runs:/``, ``models:/`` (version, stage, alias, ``latest``, model id), paths
``pyfunc``         the ``python_function`` flavor (public as ``labtrack.pyfunc``)
``sklearn``        the scikit-learn flavor and autologging (public as ``labtrack.sklearn``)
``scoring``        the scoring protocol (payload parsing) and the tornado scoring app
``routing``        A/B variants: weighted sticky routing, registry polling, per-variant metrics
``commands``       ``labtrack models serve`` and ``labtrack models predict``
=================  ===========================================================================

Everything here needs numpy and pandas (and PyYAML and cloudpickle, which labtrack installs);
``labtrack.models`` itself imports nothing heavy, so the ``labtrack`` command starts fast.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Model": "labtrack.models.mlmodel",
    "ModelInfo": "labtrack.models.mlmodel",
    "ModelSignature": "labtrack.models.signature",
    "infer_signature": "labtrack.models.signature",
}


def __getattr__(name: str) -> Any:
    """``labtrack.models.Model`` etc., imported on first use."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'labtrack.models' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = sorted(_EXPORTS)
