"""The ``swinref`` command line: argparse, console output and exit codes only.

Each command group is one module here with a ``register(subparsers)`` function; the library does
the work and raises typed errors, which :func:`main` turns into one-line messages and exit codes.
"""

from __future__ import annotations

import argparse
import sys

from .._version import __version__
from . import crosscheck, golden, info, show, vectors

# module -> register(subparsers); each registered parser sets ``func(args) -> int``
COMMAND_MODULES = (golden, info, crosscheck, vectors, show)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="swinref",
        description="Golden-reference Swin Transformer: golden files, comparisons, model facts.",
    )
    parser.add_argument("--version", action="version", version=f"swinref {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, FileNotFoundError, ImportError) as e:
        # bad input of any kind: one clear line, no traceback
        print(f"swinref {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
