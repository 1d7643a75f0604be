"""The ``swinref`` command line. Each command lives in the module that owns its feature and
registers itself through a ``register(subparsers)`` function listed here."""

from __future__ import annotations

import argparse
import importlib
import sys

# module -> provides register(subparsers); each registered parser sets ``func(args) -> int``
COMMAND_MODULES = (
    "swinref.golden",
    "swinref.flops",
    "swinref.crosscheck",
    "swinref.vectors",
    "swinref.show",
)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="swinref",
        description="Golden-reference Swin Transformer: golden files, comparisons, model facts.",
    )
    parser.add_argument("--version", action="version", version=f"swinref {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
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
