"""Model cost: multiply-adds per component, the paper's complexity formulas, and ``swinref info``.

FLOPs here are multiply-accumulates (MACs), as in the Swin paper's tables (Liu et al. 2021,
Table 1) and in the official code's ``flops()`` methods. What is counted:

- every matrix product, one MAC per multiply: patch-embed conv (as a matmul), qkv, q @ k^T,
  attn @ v, proj, fc1, fc2, patch-merging reduction, classifier head;
- LayerNorms only with ``include_norms=True``, one MAC per element (the official code's
  ``flops()`` convention).

Never counted: biases, the relative-position bias and mask additions, softmax, GELU, the residual
additions, the mean pool, rolls and reshapes. Attention is counted on the padded grid (what the
windowed code computes); no released configuration needs padding.

Matrix products alone, rounded to 0.1 G, give the paper's totals for all six released models:
swin_t 4.49 -> 4.5, swin_s 8.74 -> 8.7, swin_b 15.43 -> 15.4, swin_l 34.48 -> 34.5 at 224;
swin_b 47.08 -> 47.1 and swin_l 103.92 -> 103.9 at 384. Adding the norms changes only the last
one: 103.95 -> 104.0, so the paper's numbers are read as matrix products only.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from .config import SHORT_NAMES, SwinConfig
from .windows import clamp_window

# GFLOPs (multiply-adds) reported in Liu et al. 2021, Table 1, by timm name.
PAPER_GFLOPS = {
    "swin_tiny_patch4_window7_224": 4.5,
    "swin_small_patch4_window7_224": 8.7,
    "swin_base_patch4_window7_224": 15.4,
    "swin_base_patch4_window12_384": 47.1,
    "swin_large_patch4_window7_224": 34.5,
    "swin_large_patch4_window12_384": 103.9,
}

#: Component names used in :class:`FlopsReport` rows, in forward order.
COMPONENTS = ("patch_embed", "norm", "attn.qkv", "attn.qk", "attn.av", "attn.proj", "mlp.fc1",
              "mlp.fc2", "downsample", "head")


def global_msa_flops(h: int, w: int, C: int) -> int:
    """MACs of one global multi-head self-attention layer on h x w tokens of C channels.

    4hwC^2 (q, k, v and output projections) + 2(hw)^2 C (q @ k^T and attn @ v): quadratic in hw.
    """
    return 4 * h * w * C * C + 2 * (h * w) ** 2 * C


def window_msa_flops(h: int, w: int, C: int, M: int) -> int:
    """MACs of one window attention layer (M x M windows) on h x w tokens: 4hwC^2 + 2M^2 hwC.

    Linear in hw for a fixed M (the paper's Eq. 1 and 2).
    """
    return 4 * h * w * C * C + 2 * M * M * h * w * C


@dataclass(frozen=True)
class FlopsReport:
    """Multiply-adds of one forward pass for batch 1, split by where they happen.

    rows: ``(group, component, macs)`` with group ``"patch_embed"``, ``"stage {i}"`` (merging at
    the start of stage i >= 1 included, as in timm) or ``"head"`` (final norm and classifier), and
    component one of :data:`COMPONENTS`.
    """

    config: SwinConfig
    rows: tuple[tuple[str, str, int], ...]

    @property
    def total(self) -> int:
        return sum(m for _, _, m in self.rows)

    @property
    def gflops(self) -> float:
        return self.total / 1e9

    def by_group(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for group, _, m in self.rows:
            out[group] = out.get(group, 0) + m
        return out

    def by_component(self) -> dict[str, int]:
        out = {c: 0 for c in COMPONENTS}
        for _, comp, m in self.rows:
            out[comp] += m
        return out

    def table(self) -> dict[str, dict[str, int]]:
        """group -> component -> MACs (components with zero MACs left out)."""
        out: dict[str, dict[str, int]] = {}
        for group, comp, m in self.rows:
            out.setdefault(group, {})
            out[group][comp] = out[group].get(comp, 0) + m
        return out


def count_flops(cfg: SwinConfig, *, include_norms: bool = False) -> FlopsReport:
    """Count the multiply-adds of ``cfg``'s forward pass for one image (see the module docstring).

    ``include_norms`` adds one MAC per LayerNorm element as ``"norm"`` rows.
    """
    rows: list[tuple[str, str, int]] = []
    H, W = cfg.image_hw
    P = cfg.patch_size
    h, w = H // P, W // P
    C = cfg.embed_dim
    rows.append(("patch_embed", "patch_embed", h * w * C * cfg.in_chans * P * P))
    if cfg.patch_norm and include_norms:
        rows.append(("patch_embed", "norm", h * w * C))
    for i, depth in enumerate(cfg.depths):
        group = f"stage {i}"
        if i > 0:  # patch merging: LayerNorm(4C) on the merged grid, then Linear(4C -> 2C)
            h, w = (h + 1) // 2, (w + 1) // 2
            if include_norms:
                rows.append((group, "norm", h * w * 4 * C))
            rows.append((group, "downsample", h * w * 4 * C * 2 * C))
        C = cfg.stage_dim(i)
        nH = cfg.num_heads[i]
        hidden = cfg.mlp_hidden(i)
        for j in range(depth):
            shift = (cfg.window[0] // 2, cfg.window[1] // 2) if j % 2 else (0, 0)
            (Mh, Mw), _ = clamp_window((h, w), cfg.window, shift, rule="timm")
            hp, wp = -(-h // Mh) * Mh, -(-w // Mw) * Mw  # padded grid
            N = Mh * Mw
            windows = (hp // Mh) * (wp // Mw)
            if include_norms:
                rows.append((group, "norm", 2 * h * w * C))  # norm1 and norm2
            rows.append((group, "attn.qkv", hp * wp * C * 3 * C))
            rows.append((group, "attn.qk", windows * nH * N * N * (C // nH)))
            rows.append((group, "attn.av", windows * nH * N * N * (C // nH)))
            rows.append((group, "attn.proj", hp * wp * C * C))
            rows.append((group, "mlp.fc1", h * w * C * hidden))
            rows.append((group, "mlp.fc2", h * w * hidden * C))
    if include_norms:
        rows.append(("head", "norm", h * w * C))
    if cfg.num_classes:
        rows.append(("head", "head", C * cfg.num_classes))
    return FlopsReport(cfg, tuple(rows))


# ----- swinref info -----------------------------------------------------------------------------
def _resolve(name: str) -> tuple[str, SwinConfig]:
    cfg = SwinConfig.named(name)
    return SHORT_NAMES.get(name, name), cfg


def render_info(name: str, console=None) -> None:
    """Print params and a FLOPs table (per stage and component) for a model of the zoo."""
    from rich.console import Console
    from rich.table import Table

    from .weights import count_params

    console = console or Console(width=max(110, Console().width))
    full, cfg = _resolve(name)
    report = count_flops(cfg)
    params = count_params(cfg)
    console.print(f"[bold]{full}[/bold]  img_size={cfg.img_size} embed_dim={cfg.embed_dim} "
                  f"depths={cfg.depths} num_heads={cfg.num_heads} window_size={cfg.window_size}")
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
    table.add_row("total", *(f"{totals[g] / 1e9:.3f}" for g in groups), f"{report.gflops:.3f}",
                  style="bold")
    console.print(table)
    paper = PAPER_GFLOPS.get(full)
    paper_text = f"{paper:.1f} G" if paper is not None else "not in the paper"
    norms = count_flops(cfg, include_norms=True).by_component()["norm"]
    console.print(f"total: {report.gflops:.2f} G multiply-adds (rounded {report.gflops:.1f} G); "
                  f"paper: {paper_text}")
    console.print(f"LayerNorms (not in the total, one MAC per element): {norms / 1e9:.3f} G")


def _info(args: argparse.Namespace) -> int:
    render_info(args.name)
    return 0


def register(sub) -> None:
    """Add ``swinref info NAME`` to the command line."""
    p = sub.add_parser("info", help="parameters and multiply-adds of a released model",
                       description="Parameter count and multiply-adds per stage and component, "
                                   "next to the paper's GFLOPs.")
    p.add_argument("name", help=f"model name: one of {', '.join(SHORT_NAMES)} or a timm name")
    p.set_defaults(func=_info)
