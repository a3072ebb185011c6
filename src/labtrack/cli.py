"""The ``labtrack`` command."""

from __future__ import annotations

import argparse
import importlib
import sys

from labtrack.errors import LabtrackError

# Each module adds its subcommands to the parser with add_commands(subparsers).
COMMAND_MODULES = (
    "labtrack.server.commands",
    "labtrack.server.account_commands",
    "labtrack.models.commands",
    "labtrack.projects.commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="labtrack",
        description="Experiment tracking and a model registry inside Jupyter.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except LabtrackError as error:
        print(f"labtrack: {error.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
