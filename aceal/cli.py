"""The ``aceal`` command line: a thin layer over library calls.

Each subcommand lives in its own module under :mod:`aceal.commands` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a callable
taking the parsed ``argparse.Namespace`` and returning an exit status.
Bad input (:class:`aceal.errors.AcealInputError`) exits with status 2 and one line.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from aceal.errors import AcealInputError

#: subcommand modules, in the order ``aceal --help`` lists them
COMMAND_MODULES = ("fit", "eval", "data", "validate")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aceal", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"aceal.commands.{name}")
        except ModuleNotFoundError as err:
            if err.name == f"aceal.commands.{name}":
                continue  # command not shipped (yet)
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except AcealInputError as err:
        print(f"aceal {args.command}: error: {err}", file=sys.stderr)
        return 2
    except FileNotFoundError as err:
        where = err.filename or err
        print(f"aceal {args.command}: error: {where}: file not found", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
