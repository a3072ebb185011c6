"""The Python packages a model needs, inferred from what it imports, and the environment files
MLflow writes next to ``MLmodel``: ``requirements.txt``, ``python_env.yaml`` and ``conda.yaml``.

Inference walks the objects being saved (the ``PythonModel``, the estimator, …): the module of
every object's class, and for code that will be pickled *by value* (classes and functions of
``__main__`` — notebooks — or of the modules shipped with ``code_paths``) the modules their
code imports or refers to. Modules shipped with ``code_paths`` are read with ``ast`` for their
own imports. Top-level module names are then mapped to the installed distributions that provide
them (``importlib.metadata``) and pinned to the installed versions; standard-library modules
and the model's own code are left out.
"""

from __future__ import annotations

import ast
import dis
import functools
import importlib.metadata
import os
import platform
import sys
import types
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from labtrack.errors import InvalidParameterValue

REQUIREMENTS_FILE_NAME = "requirements.txt"
PYTHON_ENV_FILE_NAME = "python_env.yaml"
CONDA_ENV_FILE_NAME = "conda.yaml"
_MAX_OBJECTS = 20_000
_LEAF_TYPES = (str, bytes, bytearray, int, float, complex, bool, type(None), range, slice)


def _top(module_name: str | None) -> str | None:
    if not module_name or module_name.startswith("_") and module_name != "__main__":
        return None
    return module_name.split(".", 1)[0]


def _pickled_by_value(module_name: str | None, local_modules: set[str]) -> bool:
    """cloudpickle saves the code of ``__main__`` (and of modules it cannot import) by value;
    the model's own ``code_paths`` modules ship with it, so their imports count too."""
    if module_name in (None, "__main__") or module_name not in sys.modules:
        return True
    return _top(module_name) in local_modules


def _code_modules(code: types.CodeType, namespace: Mapping[str, Any] | None,
                  found: set[str], pending: list) -> None:
    """Modules a code object imports (``import x``, ``from x import y``) or uses through its
    globals (``np.array`` with ``np`` a module)."""
    for instruction in dis.get_instructions(code):
        if instruction.opname == "IMPORT_NAME" and isinstance(instruction.argval, str):
            found.add(instruction.argval)
    if namespace is not None:
        for name in code.co_names:
            if name in namespace:
                pending.append(namespace[name])
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            _code_modules(constant, namespace, found, pending)


def imported_modules(objects: Iterable[Any], local_modules: Iterable[str] = ()) -> set[str]:
    """Top-level names of the modules ``objects`` need when unpickled and run."""
    local = set(local_modules)
    found: set[str] = set()
    seen: set[int] = set()
    pending = list(objects)
    while pending and len(seen) < _MAX_OBJECTS:
        obj = pending.pop()
        if id(obj) in seen or isinstance(obj, _LEAF_TYPES):
            continue
        seen.add(id(obj))
        if isinstance(obj, types.ModuleType):
            found.add(obj.__name__)
            continue
        if isinstance(obj, (staticmethod, classmethod)):
            pending.append(obj.__func__)
            continue
        if isinstance(obj, property):
            pending.extend(f for f in (obj.fget, obj.fset, obj.fdel) if f is not None)
            continue
        if isinstance(obj, types.MethodType):
            pending.extend((obj.__func__, obj.__self__))
            continue
        if isinstance(obj, types.FunctionType):
            found.add(obj.__module__ or "__main__")
            if _pickled_by_value(obj.__module__, local):
                _code_modules(obj.__code__, obj.__globals__, found, pending)
                pending.extend(obj.__defaults__ or ())
                pending.extend((obj.__kwdefaults__ or {}).values())
                pending.extend(cell.cell_contents for cell in obj.__closure__ or ()
                               if _cell_filled(cell))
            continue
        if isinstance(obj, type):
            for klass in obj.__mro__:
                found.add(klass.__module__)
                if klass is not object and _pickled_by_value(klass.__module__, local):
                    pending.extend(vars(klass).values())
            continue
        if isinstance(obj, (types.BuiltinFunctionType, types.CodeType)):
            found.add(getattr(obj, "__module__", None) or "builtins")
            continue
        pending.append(type(obj))
        if isinstance(obj, Mapping) and type(obj).__module__ == "builtins":
            pending.extend(list(obj.keys())[:1000])
            pending.extend(list(obj.values())[:1000])
        elif isinstance(obj, (list, tuple, set, frozenset)):
            pending.extend(list(obj)[:1000])
        elif type(obj).__module__.split(".")[0] in ("numpy", "pandas", "scipy"):
            continue  # the type is enough; no walking through array internals
        else:
            state = getattr(obj, "__dict__", None)
            if isinstance(state, dict):
                pending.extend(state.values())
    return {top for top in (_top(name) for name in found) if top}


def _cell_filled(cell: Any) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - raises ValueError when empty
    except ValueError:
        return False
    return True


def local_modules_of(code_paths: Sequence[str | os.PathLike] | None) -> set[str]:
    """Top-level module names that ``code_paths`` files and folders provide."""
    names = set()
    for path in code_paths or ():
        path = Path(path)
        if path.is_file() and path.suffix == ".py":
            names.add(path.stem)
        elif path.is_dir():
            if (path / "__init__.py").exists():
                names.add(path.name)
            names.update(p.stem for p in path.glob("*.py"))
            names.update(p.name for p in path.iterdir()
                         if p.is_dir() and (p / "__init__.py").exists())
    return names


def code_path_imports(code_paths: Sequence[str | os.PathLike] | None) -> set[str]:
    """Absolute imports of the Python files in ``code_paths``."""
    found: set[str] = set()
    for path in code_paths or ():
        path = Path(path)
        files = [path] if path.is_file() else sorted(path.rglob("*.py"))
        for file in files:
            if file.suffix != ".py":
                continue
            try:
                tree = ast.parse(file.read_text(encoding="utf-8"), str(file))
            except (SyntaxError, UnicodeDecodeError, OSError):
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    found.update(alias.name for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found.add(node.module)
    return {top for top in (_top(name) for name in found) if top}


@functools.cache
def _distributions_of_modules() -> dict[str, tuple[str, ...]]:
    return {k: tuple(v) for k, v in importlib.metadata.packages_distributions().items()}


def _stdlib(name: str) -> bool:
    return name in sys.stdlib_module_names or name in sys.builtin_module_names or name in (
        "__main__", "builtins", "__future__")


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def pinned_requirements(modules: Iterable[str]) -> list[str]:
    """``name==version`` of the installed distributions providing ``modules`` (skipping the
    standard library and modules no distribution provides)."""
    providers = _distributions_of_modules()
    pins: dict[str, str] = {}
    for module in sorted(set(modules)):
        if _stdlib(module):
            continue
        # Editable installs are often missing from packages_distributions(); a distribution
        # named like its module is found directly.
        for distribution in providers.get(module, ()) or (module,):
            try:
                version = importlib.metadata.version(distribution)
            except importlib.metadata.PackageNotFoundError:
                continue
            name = importlib.metadata.metadata(distribution).get("Name") or distribution
            pins.setdefault(_canonical(name), f"{name}=={version}")
    # A skinny distribution and its full sibling both provide the module: keep one.
    if "mlflow" in pins and "mlflow-skinny" in pins:
        del pins["mlflow-skinny"]
    return [pins[key] for key in sorted(pins)]


def requirement_for(distribution: str) -> str | None:
    """``name==version`` of one installed distribution, or None when it is not installed."""
    try:
        return f"{distribution}=={importlib.metadata.version(distribution)}"
    except importlib.metadata.PackageNotFoundError:
        return None


def _requirement_name(requirement: str) -> str:
    for separator in ("[", "=", "<", ">", "!", "~", ";", " ", "@"):
        requirement = requirement.split(separator, 1)[0]
    return _canonical(requirement.strip())


def _read_requirements(value: str | os.PathLike | Sequence[str] | None) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, (str, os.PathLike)):
        path = Path(value)
        if not path.is_file():
            raise InvalidParameterValue(f"Requirements file '{value}' does not exist.")
        lines = path.read_text(encoding="utf-8").splitlines()
    else:
        lines = [str(v) for v in value]
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def read_requirements(path: str | os.PathLike) -> list[str]:
    """The requirement lines of a ``requirements.txt`` (comments, blanks and ``-r``/``-c``
    options left out)."""
    return [line for line in _read_requirements(path) or [] if not line.startswith("-")]


def resolve_requirements(
    inferred: Iterable[str],
    pip_requirements: str | os.PathLike | Sequence[str] | None = None,
    extra_pip_requirements: str | os.PathLike | Sequence[str] | None = None,
) -> list[str]:
    """The model's requirements: ``pip_requirements`` when given (replacing inference), else
    the inferred ones plus ``extra_pip_requirements`` (which win over an inferred pin of the
    same package)."""
    if pip_requirements is not None and extra_pip_requirements is not None:
        raise InvalidParameterValue(
            "Pass pip_requirements or extra_pip_requirements, not both.")
    explicit = _read_requirements(pip_requirements)
    if explicit is not None:
        return explicit
    extra = _read_requirements(extra_pip_requirements) or []
    overridden = {_requirement_name(r) for r in extra}
    base: dict[str, str] = {}
    for requirement in inferred:  # one line per package: the first (pinned) one wins
        name = _requirement_name(requirement)
        if name not in overridden:
            base.setdefault(name, requirement)
    return sorted(base.values(), key=str.lower) + [r for r in extra if r not in base.values()]


def write_environment(path: str | os.PathLike, requirements: Sequence[str]) -> dict[str, str]:
    """Write ``requirements.txt``, ``python_env.yaml`` and ``conda.yaml`` into a model folder;
    returns the pyfunc flavor's ``env`` entry."""
    folder = Path(path)
    (folder / REQUIREMENTS_FILE_NAME).write_text("\n".join(requirements) + "\n",
                                                 encoding="utf-8")
    python = platform.python_version()
    build = [requirement_for("pip") or "pip", requirement_for("setuptools") or "setuptools",
             requirement_for("wheel") or "wheel"]
    python_env = {"python": python, "build_dependencies": build,
                  "dependencies": [f"-r {REQUIREMENTS_FILE_NAME}"]}
    (folder / PYTHON_ENV_FILE_NAME).write_text(
        yaml.safe_dump(python_env, sort_keys=False), encoding="utf-8")
    pip = build[0].replace("==", "<=") if "==" in build[0] else "pip"
    conda = {"channels": ["conda-forge"],
             "dependencies": [f"python={python}", pip, {"pip": list(requirements)}],
             "name": "mlflow-env"}
    (folder / CONDA_ENV_FILE_NAME).write_text(yaml.safe_dump(conda, sort_keys=False),
                                              encoding="utf-8")
    return {"conda": CONDA_ENV_FILE_NAME, "virtualenv": PYTHON_ENV_FILE_NAME}


def infer_requirements(objects: Iterable[Any], code_paths: Sequence[str | os.PathLike] = (),
                       base: Iterable[str] = ()) -> list[str]:
    """Pinned requirements of ``objects`` (what gets pickled), the ``code_paths`` files and the
    distributions in ``base`` (the flavor's own needs, e.g. ``cloudpickle``)."""
    local = local_modules_of(code_paths)
    modules = (imported_modules(objects, local) | code_path_imports(code_paths)) - local
    pins = set(pinned_requirements(modules))
    for distribution in base:
        pin = requirement_for(distribution)
        if pin:
            pins.add(pin)
    by_name = {}
    for pin in sorted(pins):
        by_name.setdefault(_requirement_name(pin), pin)
    return sorted(by_name.values(), key=str.lower)
