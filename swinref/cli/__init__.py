"""The ``swinref`` command line: argparse, console output and exit codes only.

Each command group is one module here with a ``register(subparsers)`` function; the library does
the work and raises typed errors, which :func:`main` turns into one-line messages and exit codes.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
import warnings

from .._version import __version__
from . import check, crosscheck, golden, info, show, vectors

# module -> register(subparsers); each registered parser sets ``func(args) -> int``
COMMAND_MODULES = (golden, check, info, crosscheck, vectors, show)


EXIT_OK = 0  # success, or compared and within tolerance
EXIT_BEYOND = 1  # compared and beyond tolerance (or missing / mis-shaped tensors)
EXIT_USAGE = 2  # usage or input error: one line naming the option or file and what is expected
EXIT_INTERNAL = 3  # a bug in swinref: one line, the traceback with --debug or SWINREF_DEBUG=1
DEBUG_ENV = "SWINREF_DEBUG"


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors on one line (exit 2), no usage block before them."""

    def error(self, message: str):
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="swinref",
        description="Golden-reference Swin Transformer: golden files, comparisons, model facts.",
    )
    parser.add_argument("--version", action="version", version=f"swinref {__version__}")
    parser.add_argument(
        "--debug",
        action="store_true",
        help=f"print the traceback of an internal error (also {DEBUG_ENV}=1)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    if isinstance(e, OSError) and e.filename is not None and str(e.filename) not in text:
        text = f"{e.filename}: {text}"
    return text


def _usage_error(e: BaseException) -> str | None:
    """The one-line message of an input or usage error, or None for an internal error."""
    if isinstance(e, MemoryError):
        return "out of memory: the requested batch, sizes or files are too large for this machine"
    if isinstance(e, ImportError):
        return _one_line(e)
    if isinstance(e, OSError):
        # files and directories the user named: missing, unwritable, a directory, disk full, name too long
        return _one_line(e)
    if isinstance(e, ValueError) and _raised_by_swinref(e):
        # swinref's own input errors: ValueError and its kinds (WeightsError, GoldenFileError,
        # InputFileError, SuiteError, GoldenSetError). A ValueError raised inside NumPy or another
        # library is a case swinref failed to check, so it counts as internal.
        return _one_line(e)
    return None


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _raised_by_swinref(e: BaseException) -> bool:
    tb = e.__traceback__
    last = None
    while tb is not None:
        last = tb
        tb = tb.tb_next
    return last is not None and os.path.abspath(last.tb_frame.f_code.co_filename).startswith(_PACKAGE_DIR)


def _warning_line(command: str):
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"swinref {command}: warning: {' '.join(str(message).split())}", file=sys.stderr)

    return show


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit code (see the module constants EXIT_*)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version (0) or a usage error (2, already printed)
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    debug = args.debug or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    with warnings.catch_warnings():
        warnings.simplefilter("always", RuntimeWarning)
        warnings.showwarning = _warning_line(args.command)
        try:
            return int(args.func(args) or 0)
        except KeyboardInterrupt:
            print(f"swinref {args.command}: interrupted", file=sys.stderr)
            return 130
        except Exception as e:  # every error ends here as one line and an exit code
            message = _usage_error(e)
            if debug:
                traceback.print_exc()
            if message is not None:
                print(f"swinref {args.command}: error: {message}", file=sys.stderr)
                return EXIT_USAGE
            print(
                f"swinref {args.command}: internal error: {type(e).__name__}: {_one_line(e)} "
                f"(rerun with --debug or {DEBUG_ENV}=1 for the traceback)",
                file=sys.stderr,
            )
            return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
