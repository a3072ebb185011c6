"""The ``MLproject`` file: entry points, typed parameters, command templates, environment.

The format is MLflow's::

    name: forecasting
    python_env: python_env.yaml          # optional; without it the current interpreter runs
    entry_points:
      main:
        parameters:
          data: path                     # a bare type: required
          lr: {type: float, default: 0.01}
          depth: {type: int, default: 6}
          tag: {type: string, default: "baseline run"}
        command: "python train.py --data {data} --lr {lr} --depth {depth} --tag {tag}"

Parameter types are ``string``, ``float``, ``int``, ``path`` and ``uri``. Unlike MLflow,
``float`` and ``int`` values are checked (MLflow only documents the check). Every value is
shell-quoted into the command; parameters the entry point does not declare are appended as
``--key value``. An entry point that is not declared but names a ``.py`` or ``.sh`` file of the
project runs that script. A folder without an ``MLproject`` file is a project whose entry
points are its scripts.
"""

from __future__ import annotations

import os
import shlex
import string
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from labtrack.errors import InvalidParameterValue

MLPROJECT_FILE_NAME = "MLproject"
DEFAULT_ENV_FILE_NAME = "python_env.yaml"
PARAMETER_TYPES = ("string", "float", "int", "path", "uri")
_UNSUPPORTED_ENVIRONMENTS = {
    "conda_env": "conda environments",
    "docker_env": "docker environments",
}


class ProjectError(InvalidParameterValue):
    """The project, its MLproject file or the values given to it are not usable."""


def load_yaml(path: Path) -> object:
    try:
        import yaml
    except ImportError:  # a dependency of jupyter_server, so normally present
        raise ProjectError(
            f"Reading {path.name} needs PyYAML: pip install pyyaml."
        ) from None
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ProjectError(f"{path} is not valid YAML: {error}") from None
    except OSError as error:
        raise ProjectError(f"Cannot read {path}: {error.strerror}") from None


@dataclass(frozen=True)
class Parameter:
    """A declared parameter: its type and default (``None`` when it is required)."""

    name: str
    type: str = "string"
    default: str | None = None

    @property
    def required(self) -> bool:
        return self.default is None

    def resolve(self, value: str, base_dir: Path, entry_point: str) -> str:
        """The value to log and to put in the command, or a ``ProjectError`` naming this
        parameter. Relative paths are taken from ``base_dir``."""

        def invalid(reason: str) -> ProjectError:
            return ProjectError(
                f"Invalid value {value!r} for parameter '{self.name}' ({self.type}) of entry "
                f"point '{entry_point}': {reason}."
            )

        if self.type == "string":
            return value
        if self.type == "float":
            try:
                float(value)
            except ValueError:
                raise invalid("not a number") from None
            return value.strip()
        if self.type == "int":
            text = value.strip()
            try:
                int(text, 10)
            except ValueError:
                raise invalid("not an integer") from None
            return text
        if self.type == "path":
            return _resolve_path(value, base_dir, invalid)
        # uri: URIs with a scheme stay as given; local paths are made absolute (MLflow's docs)
        if not value.strip():
            raise invalid("empty")
        if _has_scheme(value):
            return value
        return str((base_dir / Path(value).expanduser()).resolve())


def _has_scheme(value: str) -> bool:
    scheme = urlparse(value).scheme
    # "C:\data" parses with scheme "c" on any OS; a one-letter scheme is a Windows drive.
    return len(scheme) > 1


def _resolve_path(value: str, base_dir: Path, invalid) -> str:
    if not value.strip():
        raise invalid("empty")
    if _has_scheme(value):
        parsed = urlparse(value)
        if parsed.scheme != "file":
            raise invalid(
                f"'{parsed.scheme}:' locations are not supported for 'path' parameters; give a "
                "local path (or declare the parameter as 'uri')"
            )
        value = unquote(parsed.path)
    path = (base_dir / Path(value).expanduser()).resolve()
    if not path.exists():
        raise invalid(f"no such file or directory: {path}")
    return str(path)


def _parameter(entry_point: str, name: object, declaration: object, where: str) -> Parameter:
    if not isinstance(name, str) or not name:
        raise ProjectError(f"{where}: entry point '{entry_point}' has a parameter without a "
                           "name.")
    default = None
    if isinstance(declaration, str):
        kind = declaration
    elif declaration is None:
        kind = "string"
    elif isinstance(declaration, Mapping):
        unknown = sorted(set(map(str, declaration)) - {"type", "default"})
        if unknown:
            raise ProjectError(
                f"{where}: parameter '{name}' of entry point '{entry_point}' has unknown keys "
                f"{unknown}; a parameter is a type, or a mapping with 'type' and 'default'."
            )
        kind = declaration.get("type", "string")
        if "default" in declaration and declaration["default"] is not None:
            default = _default_text(declaration["default"])
    else:
        raise ProjectError(
            f"{where}: parameter '{name}' of entry point '{entry_point}' must be a type name or "
            "a mapping with 'type' and 'default'."
        )
    if kind not in PARAMETER_TYPES:
        raise ProjectError(
            f"{where}: parameter '{name}' of entry point '{entry_point}' has unknown type "
            f"{kind!r}; use one of {', '.join(PARAMETER_TYPES)}."
        )
    return Parameter(name, kind, default)


def _default_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class EntryPoint:
    """A command template and its parameters."""

    name: str
    command: str
    parameters: Mapping[str, Parameter] = field(default_factory=dict)
    script: bool = False

    def resolve_parameters(
        self, values: Mapping[str, str], project_dir: Path, cwd: Path | None = None
    ) -> tuple[dict[str, str], dict[str, str]]:
        """``(declared, extra)``: every declared parameter's value (given or default, typed
        and resolved) and the undeclared ones as given.

        Paths given by the user are relative to ``cwd`` (where ``labtrack run`` was started);
        default paths are relative to the project folder.
        """
        cwd = Path(cwd or os.getcwd())
        missing = [p.name for p in self.parameters.values()
                   if p.required and p.name not in values]
        if missing:
            raise ProjectError(
                f"Entry point '{self.name}' needs a value for "
                f"{_names(missing)} (no default): pass -P {missing[0]}=VALUE."
            )
        declared: dict[str, str] = {}
        for name, parameter in self.parameters.items():
            if name in values:
                declared[name] = parameter.resolve(str(values[name]), cwd, self.name)
            else:
                declared[name] = parameter.resolve(parameter.default, project_dir, self.name)
        extra = {k: str(v) for k, v in values.items() if k not in self.parameters}
        return declared, extra

    def command_line(
        self, declared: Mapping[str, str], extra: Mapping[str, str], python: str = "python",
        shell: str = "bash",
    ) -> str:
        """The shell command: the template with every value quoted, then ``--key value`` for
        each undeclared parameter."""
        quote = shlex.quote
        if self.script:
            runner = python if self.name.endswith(".py") else shell
            command = f"{quote(runner)} {quote(self.name)}"
        else:
            command = self.command.format(**{k: quote(v) for k, v in declared.items()})
        for key, value in extra.items():
            command += f" --{quote(key)} {quote(value)}"
        return command


def _names(names: list[str]) -> str:
    quoted = [f"'{n}'" for n in names]
    if len(quoted) == 1:
        return f"parameter {quoted[0]}"
    return "parameters " + ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _template_fields(command: str, where: str, entry_point: str) -> set[str]:
    fields: set[str] = set()
    try:
        for _, name, spec, conversion in string.Formatter().parse(command):
            if name is None:
                continue
            if not name or name.isdigit() or any(c in name for c in ".[]"):
                raise ProjectError(
                    f"{where}: the command of entry point '{entry_point}' has a placeholder "
                    f"{{{name}}} that is not a parameter name (write {{{{ and }}}} for "
                    "literal braces)."
                )
            if spec or conversion:
                raise ProjectError(
                    f"{where}: the command of entry point '{entry_point}' formats {{{name}}}; "
                    "placeholders take the value as given, without format specs."
                )
            fields.add(name)
    except ValueError as error:
        raise ProjectError(
            f"{where}: the command of entry point '{entry_point}' is not a valid template "
            f"({error}); write {{{{ and }}}} for literal braces."
        ) from None
    return fields


@dataclass(frozen=True)
class Project:
    """A parsed project folder."""

    directory: Path
    name: str
    entry_points: Mapping[str, EntryPoint]
    env_file: Path | None = None  # the python_env.yaml, if any
    has_mlproject: bool = True

    def entry_point(self, name: str) -> EntryPoint:
        if name in self.entry_points:
            return self.entry_points[name]
        if name.endswith((".py", ".sh")):
            script = (self.directory / name).resolve()
            if not _inside(script, self.directory.resolve()):
                raise ProjectError(f"Entry point '{name}' is outside the project folder.")
            if not script.is_file():
                raise ProjectError(
                    f"Entry point '{name}': no such script in {self.directory}."
                )
            return EntryPoint(name, "", {}, script=True)
        declared = ", ".join(f"'{n}'" for n in self.entry_points) or "none"
        raise ProjectError(
            f"Project '{self.name}' has no entry point '{name}' (declared: {declared}; a "
            ".py or .sh file of the project also works)."
        )


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
    except ValueError:
        return False
    return True


def find_mlproject(directory: Path) -> Path | None:
    """The ``MLproject`` file of a folder, its name matched case-insensitively as in MLflow."""
    exact = directory / MLPROJECT_FILE_NAME
    if exact.is_file():
        return exact
    try:
        for child in directory.iterdir():
            if child.name.lower() == MLPROJECT_FILE_NAME.lower() and child.is_file():
                return child
    except OSError:
        pass
    return None


def load_project(directory: str | os.PathLike) -> Project:
    """Parse and check the project in ``directory``."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ProjectError(f"No project folder at {directory}.")
    mlproject = find_mlproject(directory)
    default_env = directory / DEFAULT_ENV_FILE_NAME
    if mlproject is None:
        return Project(directory, directory.resolve().name, {},
                       default_env if default_env.is_file() else None, has_mlproject=False)
    where = str(mlproject)
    document = load_yaml(mlproject)
    if document is None:
        document = {}
    if not isinstance(document, Mapping):
        raise ProjectError(f"{where}: expected a mapping with 'name' and 'entry_points'.")
    name = document.get("name") or directory.resolve().name
    if not isinstance(name, str):
        raise ProjectError(f"{where}: 'name' must be a string.")
    for key, what in _UNSUPPORTED_ENVIRONMENTS.items():
        if key in document:
            raise ProjectError(
                f"{where}: {what} ('{key}') are not supported by labtrack; declare a "
                "'python_env' file (MLflow's python_env.yaml format) or none."
            )
    env_file = None
    if "python_env" in document:
        value = document["python_env"]
        if not isinstance(value, str) or not value:
            raise ProjectError(f"{where}: 'python_env' must be the path of a YAML file.")
        env_file = (directory / value).resolve()
        if not _inside(env_file, directory.resolve()):
            raise ProjectError(f"{where}: python_env file '{value}' is outside the project.")
        if not env_file.is_file():
            raise ProjectError(f"{where}: python_env file '{value}' does not exist.")
    elif default_env.is_file():
        env_file = default_env  # MLflow uses python_env.yaml when the file names none
    raw_entry_points = document.get("entry_points") or {}
    if not isinstance(raw_entry_points, Mapping):
        raise ProjectError(f"{where}: 'entry_points' must map names to entry points.")
    entry_points: dict[str, EntryPoint] = {}
    for entry_name, body in raw_entry_points.items():
        entry_name = str(entry_name)
        if not isinstance(body, Mapping) or not isinstance(body.get("command"), str):
            raise ProjectError(f"{where}: entry point '{entry_name}' needs a 'command' string.")
        raw_parameters = body.get("parameters") or {}
        if not isinstance(raw_parameters, Mapping):
            raise ProjectError(
                f"{where}: the parameters of entry point '{entry_name}' must be a mapping."
            )
        parameters = {str(k): _parameter(entry_name, k, v, where)
                      for k, v in raw_parameters.items()}
        undeclared = sorted(_template_fields(body["command"], where, entry_name)
                            - set(parameters))
        if undeclared:
            raise ProjectError(
                f"{where}: the command of entry point '{entry_name}' uses "
                + ", ".join("{" + n + "}" for n in undeclared)
                + ", which " + ("is not a declared parameter." if len(undeclared) == 1
                                else "are not declared parameters.")
            )
        entry_points[entry_name] = EntryPoint(entry_name, body["command"], parameters)
    return Project(directory, name, entry_points, env_file)


def shell_program() -> list[str]:
    """How commands run: ``bash -c`` (as MLflow) or ``sh -c`` without bash; ``cmd /c`` on
    Windows."""
    if sys.platform == "win32":
        return ["cmd", "/c"]
    import shutil

    bash = shutil.which("bash")
    return [bash, "-c"] if bash else ["/bin/sh", "-c"]
