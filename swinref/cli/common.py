"""What several commands share: console output, number formats, and the model arguments."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from typing import Any

from ..artifacts.fileio import OutputExistsError
from ..models import registry


def stdout_console():
    from rich.console import Console  # noqa: PLC0415  (rich loads only for commands that print tables)

    # a pipe or file gets 160 columns so that tables of long tensor names are not squeezed
    return Console(width=None if sys.stdout.isatty() else 160, highlight=False)


def int_at_least(low: int):
    """An argparse type: an int >= ``low`` (a clear one-line error otherwise)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low:
            raise argparse.ArgumentTypeError(f"expected an int >= {low}, got {text!r}")
        return value

    parse.__name__ = f"int >= {low}"  # argparse names the type in its messages
    return parse


def fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3e}"


def parse_size(text: str, *, axes: int = 2) -> tuple[int, ...]:
    """``"224"`` -> (224, 224); ``"224x160"`` -> (224, 160); for video ``"8x64x64"`` (T, H, W)."""
    try:
        parts = [int(v) for v in text.lower().replace(",", "x").split("x")]
    except ValueError:
        parts = []
    if len(parts) == 1 and axes == 2:
        parts = parts * 2
    if len(parts) != axes or min(parts) < 1:
        form = "H or HxW" if axes == 2 else "TxHxW"
        raise ValueError(f"--input-size must be {form} with positive ints, got {text!r}")
    return tuple(parts)


def add_model_arguments(p: argparse.ArgumentParser, *, default: str | None = "swin_t") -> None:
    """--model, --semantics and --input-size, the same for every command that runs a model."""
    names = ", ".join(registry.released_names())
    p.add_argument(
        "--model",
        default=default,
        help=f"a released model of any family ({names}), a JSON config object or a .json "
        'file ("family": "v1" | "v2" | "video", default v1)' + (f" (default {default})" if default else ""),
    )
    p.add_argument(
        "--semantics",
        default=None,
        help="whose size handling to reproduce: V1 official, timm, torchvision, hf, detection; "
        "V2 timm, torchvision, hf (default timm)",
    )
    p.add_argument(
        "--input-size",
        default=None,
        metavar="SIZE",
        help="input size: H or HxW for images, TxHxW for video clips (default: the config's "
        "img_size; video 32x224x224)",
    )


def model_config(args: argparse.Namespace) -> tuple[str, Any, tuple[int, ...] | None]:
    """(model label, config, input size or None) from --model, --semantics and --input-size.

    With an input size other than img_size, a V1 config under timm semantics switches to timm's
    any-size mode (``strict_img_size=False``) and a V2 config takes it as its img_size.
    """
    cfg = registry.config_from(args.model)
    family = registry.family_of(cfg)
    label = args.model if not str(args.model).lstrip().startswith("{") else "custom config"
    over: dict[str, Any] = {}
    if args.semantics is not None:
        if not family.semantics:
            raise ValueError(f"--semantics does not apply to {family.title}: it has one behaviour")
        if args.semantics not in family.semantics:
            raise ValueError(
                f"--semantics for {family.title} must be one of "
                f"{', '.join(family.semantics)}, got {args.semantics!r}"
            )
        over["semantics"] = args.semantics
    size = None
    if args.input_size is not None:
        size = parse_size(args.input_size, axes=len(family.input_shape(cfg, batch=1)) - 2)
        if family.name == "v2":
            over["img_size"] = size
        elif family.name == "v1" and size != cfg.image_hw and over.get("semantics", cfg.semantics) == "timm":
            over["strict_img_size"] = False
    if over:
        cfg = dataclasses.replace(cfg, **over)
    return label, cfg, size


def add_force_argument(p: argparse.ArgumentParser, what: str = "the output file") -> None:
    p.add_argument(
        "--force",
        action="store_true",
        help=f"overwrite {what} if it exists (atomically: readers see the old or the new file); "
        "without it an existing output is refused",
    )


def check_output_path(path: str, *, force: bool, what: str = "output") -> None:
    """Refuse an output path before any work is done: a directory, a missing or unwritable
    parent directory, or an existing file without --force (each a one-line usage error)."""
    if os.path.isdir(path):
        raise ValueError(f"{what} {path} is a directory; give a file path")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise FileNotFoundError(f"{what} {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(f"{what} {path}: directory {parent} is not writable")
    if os.path.lexists(path) and not force:
        raise OutputExistsError(f"{what} {path} exists; pass --force to overwrite it")


def parse_names(text: str) -> list[str]:
    """``"logits,layers.3"`` -> ["logits", "layers.3"]; empty entries dropped."""
    return [n.strip() for n in text.split(",") if n.strip()]


def print_port_comparison(result, *, reference: str, port: str, extra: list[str] | None = None) -> int:
    """Print a :class:`swinref.artifacts.ports.PortComparison` as a table; return the exit code."""
    from rich.table import Table  # noqa: PLC0415

    console = stdout_console()
    console.print(f"golden (reference) {reference}\nport               {port} ({result.port_dtype})")
    for line in extra or []:
        console.print(line)
    console.print(f"bounds: {result.bound_rule}")
    table = Table(show_lines=False)
    for col in ("tensor", "shape", "port shape", "max abs", "bound", "result"):
        table.add_column(col, no_wrap=True)
    for r in result.rows:
        status = r.status
        if status == "pass":
            status = "[green]pass[/green]"
        elif status != "not provided":
            status = f"[red]{status}[/red]"
        port_shape = "-" if r.port_shape is None else str(r.port_shape)
        if r.adapter:
            port_shape += f" ({r.adapter})"
        table.add_row(r.name, str(r.shape), port_shape, fmt(r.max_abs), fmt(r.bound), status)
    console.print(table)
    for note in result.notes:
        console.print(f"note: {note}")
    absent = [r.name for r in result.rows if r.passed is None]
    if absent:
        console.print(f"not provided ({len(absent)}): {', '.join(absent)}")
    failures = result.failures
    if result.passed:
        console.print(f"[green]PASS[/green]: {len(result.compared)} tensors within their bounds")
        return 0
    if not failures:
        console.print("[red]FAIL[/red]: no tensor was compared")
        return 1
    first = result.first_diverging
    where = f"; first diverging layer: {first}" if first else ""
    listed = ", ".join(f"{r.name} ({r.status})" for r in failures)
    console.print(
        f"[red]FAIL[/red]: {len(failures)} tensors beyond their bounds or required and absent"
        f"{where}; {listed}"
    )
    return 1
