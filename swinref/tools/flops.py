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

import math
from dataclasses import dataclass
from typing import Any

from ..core.windows import clamp_window
from ..models import registry
from ..models.v2 import CPB_HIDDEN

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
COMPONENTS = (
    "patch_embed",
    "norm",
    "attn.qkv",
    "attn.qk",
    "attn.av",
    "attn.proj",
    "attn.cpb",
    "mlp.fc1",
    "mlp.fc2",
    "downsample",
    "head",
)


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

    config: Any
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


def count_flops(
    cfg: Any, *, include_norms: bool = False, input_size: tuple[int, ...] | None = None
) -> FlopsReport:
    """Count the multiply-adds of ``cfg``'s forward pass for one sample (see the module docstring).

    Any family: V1 and V2 images ((H, W), default img_size), Video clips ((T, H, W), default
    32x224x224). V2 adds its continuous position bias MLP (``attn.cpb``: Linear(2, 512) and
    Linear(512, nH) over the (2Mh-1)(2Mw-1) table rows, once per block). ``include_norms`` adds
    one MAC per LayerNorm element as ``"norm"`` rows. Windows follow timm's per-axis clamp at the
    input's grid (Video: its per-axis ``get_window_size``).
    """
    family = registry.family_of(cfg)
    shape = family.input_shape(cfg, batch=1, size=input_size)
    sizes = shape[2:]
    if family.name == "video":
        patch, window = tuple(cfg.patch_size), tuple(cfg.window_size)
    else:
        patch, window = (cfg.patch_size,) * 2, tuple(cfg.window)
    grid = tuple(-(-s // p) for s, p in zip(sizes, patch, strict=False))  # inputs are padded to whole patches
    tokens = math.prod(grid)
    C = cfg.embed_dim
    rows: list[tuple[str, str, int]] = [
        ("patch_embed", "patch_embed", tokens * C * cfg.in_chans * math.prod(patch))
    ]
    if cfg.to_dict().get("patch_norm", True) and include_norms:
        rows.append(("patch_embed", "norm", tokens * C))
    for i, depth in enumerate(cfg.depths):
        group = f"stage {i}"
        if i > 0:  # patch merging (spatial axes only): LayerNorm(4C) and Linear(4C -> 2C)
            grid = (*grid[:-2], (grid[-2] + 1) // 2, (grid[-1] + 1) // 2)
            merged = math.prod(grid)
            if include_norms:
                rows.append((group, "norm", merged * (2 * C if family.name == "v2" else 4 * C)))
            rows.append((group, "downsample", merged * 4 * C * 2 * C))
        C = cfg.stage_dim(i)
        nH = cfg.num_heads[i]
        hidden = cfg.mlp_hidden(i)
        tokens = math.prod(grid)
        for j in range(depth):
            shift = tuple(m // 2 for m in window) if j % 2 else (0,) * len(window)
            win, _ = clamp_window(grid, window, shift, rule="timm")
            padded = tuple(-(-g // m) * m for g, m in zip(grid, win, strict=False))
            N = math.prod(win)
            windows = math.prod(p // m for p, m in zip(padded, win, strict=False))
            if include_norms:
                rows.append((group, "norm", 2 * tokens * C))  # norm1 and norm2
            rows.append((group, "attn.qkv", math.prod(padded) * C * 3 * C))
            rows.append((group, "attn.qk", windows * nH * N * N * (C // nH)))
            rows.append((group, "attn.av", windows * nH * N * N * (C // nH)))
            rows.append((group, "attn.proj", math.prod(padded) * C * C))
            if family.name == "v2":
                table = math.prod(2 * m - 1 for m in win)
                rows.append((group, "attn.cpb", table * (2 * CPB_HIDDEN + CPB_HIDDEN * nH)))
            rows.append((group, "mlp.fc1", tokens * C * hidden))
            rows.append((group, "mlp.fc2", tokens * hidden * C))
    if include_norms:
        rows.append(("head", "norm", tokens * C))
    if cfg.num_classes:
        rows.append(("head", "head", C * cfg.num_classes))
    return FlopsReport(cfg, tuple(rows))
