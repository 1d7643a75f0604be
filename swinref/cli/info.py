"""``swinref info``: parameters and multiply-adds of any model."""

from __future__ import annotations

import argparse

from ..models import registry
from ..models.v1 import SHORT_NAMES
from ..tools.flops import COMPONENTS, PAPER_GFLOPS, count_flops
from .common import parse_size


def render_info(name: str, console=None, *, input_size: tuple[int, ...] | None = None) -> None:
    """Print params and a FLOPs table (per stage and component) for any model: a released name of
    any family, a JSON config object or a .json file."""
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    console = console or Console(width=max(110, Console().width))
    cfg = registry.config_from(name)
    family = registry.family_of(cfg)
    full = SHORT_NAMES.get(name, name) if family.name == "v1" else name
    report = count_flops(cfg, input_size=input_size)
    params = registry.count_params(cfg)
    fields = ", ".join(
        f"{k}={v}"
        for k, v in cfg.to_dict().items()
        if k in ("img_size", "embed_dim", "depths", "num_heads", "window_size", "patch_size")
    )
    console.print(f"[bold]{full}[/bold] ({family.title})  {fields}")
    console.print(f"input {registry.family_of(cfg).input_shape(cfg, batch=1, size=input_size)}")
    console.print(f"params: {params:,} ({params / 1e6:.1f} M)")
    table = Table(title="multiply-adds (G) per stage and component, batch 1")
    groups = list(report.table())
    table.add_column("component", no_wrap=True)
    for g in groups:
        table.add_column(g, justify="right", no_wrap=True)
    table.add_column("total", justify="right", style="bold")
    grid = report.table()
    for comp in COMPONENTS:
        values = [grid[g].get(comp, 0) for g in groups]
        if not any(values):
            continue
        table.add_row(comp, *(f"{v / 1e9:.3f}" if v else "" for v in values), f"{sum(values) / 1e9:.3f}")
    totals = report.by_group()
    table.add_row("total", *(f"{totals[g] / 1e9:.3f}" for g in groups), f"{report.gflops:.3f}", style="bold")
    console.print(table)
    paper = PAPER_GFLOPS.get(full)
    paper_text = f"{paper:.1f} G" if paper is not None else "not in the paper"
    norms = count_flops(cfg, include_norms=True).by_component()["norm"]
    console.print(
        f"total: {report.gflops:.2f} G multiply-adds (rounded {report.gflops:.1f} G); paper: {paper_text}"
    )
    console.print(f"LayerNorms (not in the total, one MAC per element): {norms / 1e9:.3f} G")


def _info(args: argparse.Namespace) -> int:
    size = None
    if args.input_size:
        cfg = registry.config_from(args.name)
        size = parse_size(args.input_size, axes=len(registry.family_of(cfg).input_shape(cfg, batch=1)) - 2)
    render_info(args.name, input_size=size)
    return 0


def register(sub) -> None:
    """Add ``swinref info NAME`` to the command line."""
    p = sub.add_parser(
        "info",
        help="parameters and multiply-adds of a model of any family",
        description="Parameter count and multiply-adds per stage and component, next to the paper's GFLOPs.",
    )
    p.add_argument(
        "name",
        help="a released model of any family (swin_t, a timm V1 or V2 name, a Video "
        "Swin config name), a JSON config object or a .json file",
    )
    p.add_argument(
        "--input-size",
        default=None,
        metavar="SIZE",
        help="count at this input size: HxW, or TxHxW for video (default: the config's)",
    )
    p.set_defaults(func=_info)
