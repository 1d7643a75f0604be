"""Forward-level properties of Swin V1 that stand on their own.

Every named intermediate of swinref's forward is recomputed from the previous one by the loop
definitions in tests/naive.py, with the window and shift that the block geometry of each
semantics gives (written out below, not read from swinref). Nothing here compares two swinref
code paths, so a mistake shared by all of them (a roll sign, an eps, a mask) is still caught.

Tolerance: float64, absolute 1e-12 on activations of order 1 (up to about 30 after the residual
sums). The two sides do the same arithmetic in another order; the largest difference measured
over all cases here is 1.8e-15 (``check_v1_forward`` returns it). The smallest realistic
mistake, LayerNorm eps 1e-6 instead of 1e-5, moves these outputs by about 1e-6.
"""

from __future__ import annotations

import dataclasses

import naive
import numpy as np
import pytest

import swinref
from swinref import SwinConfig

ATOL = 1e-12


def v1_geometry(cfg: SwinConfig, stage: int, grid: tuple[int, int], shifted: bool):
    """Window, shift, pad/roll order and table window of a block, per semantics (docs/semantics.md).

    timm decides per axis on the configured grid (r <= M: window r, shift 0); the official code
    on the configured grid with min(H, W) <= M (square window min(H, W), shift 0); transformers
    the same on the actual grid; torchvision never clamps and drops the shift on an axis whose
    padded length is <= M; detection backbones never change anything. timm rolls, then pads.
    """
    M = cfg.window
    s = (M[0] // 2, M[1] // 2) if shifted else (0, 0)
    H, W = cfg.image_hw
    configured = tuple(-(-(n // cfg.patch_size) // 2**stage) for n in (H, W))
    sem = cfg.semantics
    if sem == "timm":
        win = tuple(r if r <= m else m for r, m in zip(configured, M, strict=True))
        shift = tuple(0 if r <= m else t for r, m, t in zip(configured, M, s, strict=True))
        return win, shift, True, win
    if sem in ("official", "hf"):
        r = min(configured if sem == "official" else grid)
        if r <= M[0]:
            return (r, r), (0, 0), False, (r, r) if sem == "official" else M
        return M, s, False, M
    if sem == "torchvision":
        padded = tuple(-(-r // m) * m for r, m in zip(grid, M, strict=True))
        return M, tuple(0 if p <= m else t for p, m, t in zip(padded, M, s, strict=True)), False, M
    return M, s, False, M  # detection


def run(cfg, params, x):
    xp = swinref.get_namespace("numpy")
    logits, inter = swinref.forward(
        swinref.to_namespace(params, xp), xp.asarray(x), cfg, return_intermediates=True
    )
    return {k: np.asarray(v) for k, v in inter.items()}


def check_v1_forward(cfg: SwinConfig, params, x) -> float:
    """Recompute every intermediate from the previous one; returns the largest difference seen."""
    inter = run(cfg, params, x)
    match = naive.Matcher(inter, ATOL, cfg.semantics)
    same = match.same

    P = cfg.patch_size
    same("patch_embed", naive.patch_embed(params, "patch_embed.", x, (P, P), norm=cfg.patch_norm))
    h = inter["patch_embed"]
    for i, depth in enumerate(cfg.depths):
        if i > 0:
            same(f"layers.{i}.downsample", naive.v1_merge(params, f"layers.{i}.downsample.", h))
            h = inter[f"layers.{i}.downsample"]
        grid = (h.shape[1], h.shape[2])
        for j in range(depth):
            window, shift, roll_first, table = v1_geometry(cfg, i, grid, shifted=j % 2 == 1)
            name = f"layers.{i}.blocks.{j}"
            expected = naive.v1_block(
                params,
                f"{name}.",
                h,
                cfg.num_heads[i],
                window,
                shift,
                roll_first=roll_first,
                table_window=table,
            )
            same(name, expected)
            h = inter[name]
    normed = naive.layer_norm(h, params["norm.weight"], params["norm.bias"])
    same("norm", normed)
    pooled = inter["norm"].mean(axis=(1, 2))
    same("pre_logits", pooled)
    same("logits", pooled @ params["head.fc.weight"].T + params["head.fc.bias"])
    return match.worst


BASE = dict(patch_size=2, embed_dim=6, num_heads=(1, 2, 2), depths=(2, 2, 2), mlp_ratio=2.0, num_classes=5)

# (semantics, img_size, window, input size): every block kind appears somewhere -- shifted with
# padding in both pad/roll orders, a non-square window, and a clamp where the grid equals the window
CASES = {
    # stage grids 12x20 (3x5 windows), 6x10 (pads to 8x12 after rolling), 3x5 (rows clamp to 3, shift (0, 2))
    "timm": dict(semantics="timm", img_size=(24, 40), window_size=4),
    # 16x16, 8x8, 4x4: the last stage's min(H, W) == M, so its odd block runs unshifted
    "official": dict(semantics="official", img_size=32, window_size=4),
    # 14x10, 7x5, 4x3 (odd grids padded by the merge); pads, then rolls; no clamp, shift dropped per axis
    "torchvision": dict(semantics="torchvision", img_size=(28, 20), window_size=(4, 3)),
    # 16x20, 8x10, 4x5: the last stage's min(H, W) == M on the actual grid: unshifted, padded 4x8
    "hf": dict(semantics="hf", img_size=(32, 40), window_size=4),
    # 10x14, 5x7, 3x4: window fixed, every odd block shifted and padded
    "detection": dict(semantics="detection", img_size=(20, 28), window_size=3),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_v1_intermediate_follows_from_the_previous_by_its_definition(name):
    cfg = SwinConfig(**BASE, **CASES[name])
    params = swinref.init_params(cfg, seed=1, scheme="random")
    x = np.random.default_rng(2).standard_normal((2, 3, *cfg.image_hw))
    check_v1_forward(cfg, params, x)


def test_large_logits_see_the_mask_value():
    # With q.k of several hundred, -100 no longer hides the other regions (exp(-100 + 300) is not
    # small), so only the official -100 (not -inf, not -1e9) reproduces the shifted blocks.
    cfg = SwinConfig(**BASE, **CASES["timm"])
    params = swinref.init_params(cfg, seed=3, scheme="random")
    for name in params:
        if name.endswith("attn.qkv.weight"):
            params[name] = 20.0 * params[name]
    x = np.random.default_rng(4).standard_normal((1, 3, *cfg.image_hw))
    check_v1_forward(cfg, params, x)


def test_layer_norm_eps_on_low_variance_tokens():
    # Tokens whose variance is about eps: the normalised values depend on eps itself, so 1e-6 or
    # 1e-12 instead of PyTorch's 1e-5 changes the merge output at O(0.1), not at rounding level.
    cfg = SwinConfig(**BASE, **CASES["official"])
    params = swinref.init_params(cfg, seed=5, scheme="random")
    rng = np.random.default_rng(6)
    x = 1.0 + 3e-3 * rng.standard_normal((1, 8, 8, 6))  # per-token variance ~1e-5
    xp = swinref.get_namespace("numpy")
    merged = np.asarray(
        swinref.models.v1.patch_merging(
            swinref.to_namespace(
                {k[len("layers.1.downsample.") :]: v for k, v in params.items() if "layers.1.down" in k}, xp
            ),
            xp.asarray(x),
            xp=xp,
        )
    )
    expected = naive.v1_merge(params, "layers.1.downsample.", x)
    wrong = (
        naive.layer_norm(
            naive.merge_2x2(x),
            params["layers.1.downsample.norm.weight"],
            params["layers.1.downsample.norm.bias"],
            eps=1e-6,
        )
        @ params["layers.1.downsample.reduction.weight"].T
    )
    assert np.abs(wrong - expected).max() > 1e-2, "the case must separate eps 1e-5 from 1e-6"
    diff = np.abs(merged - expected).max()
    assert diff <= ATOL, f"patch merging on low-variance tokens vs LayerNorm with eps 1e-5: {diff:.3e}"


def test_the_roll_moves_tokens_towards_the_top_left():
    # Window 4, shift 2 on an 8x8 grid whose tokens are all equal except one at (1, 1): rolled by
    # (-2, -2) it sits at (7, 7), in the bottom-right window and its bottom-right region, which
    # holds the tokens from rows and columns 0..1. Only those see it. Rolled the other way it would
    # sit at (3, 3) in one region with rows and columns 6, 7, 0, 1; unshifted, with rows 0..3.
    cfg = SwinConfig(
        **{**BASE, "depths": (2,), "num_heads": (1,)}, semantics="official", img_size=16, window_size=4
    )
    params = swinref.init_params(cfg, seed=7, scheme="random")
    base = np.random.default_rng(8).standard_normal((1, 1, 1, 6)) * np.ones((1, 8, 8, 6))
    spike = base.copy()
    spike[0, 1, 1] += np.random.default_rng(9).standard_normal(6)  # not constant: LayerNorm would remove it
    xp = swinref.get_namespace("numpy")

    def block(g):
        p = {
            k[len("layers.0.blocks.1.") :]: v for k, v in params.items() if k.startswith("layers.0.blocks.1.")
        }
        return np.asarray(
            swinref.models.v1.swin_block(
                swinref.to_namespace(p, xp),
                xp.asarray(g),
                num_heads=1,
                window=(4, 4),
                shift=(2, 2),
                roll_first=False,
                xp=xp,
            )
        )

    changed = np.abs(block(spike) - block(base)).max(axis=-1)[0] > 1e-12  # (8, 8)
    rows = np.isin(np.arange(8), [0, 1])
    expected = rows[:, None] & rows[None, :]
    assert np.array_equal(changed, expected), (
        f"tokens influenced by a change at (1, 1):\n{changed.astype(int)}\nexpected rows and columns "
        f"0..1 (its region after rolling by -2):\n{expected.astype(int)}"
    )


def test_first_shifted_block_of_a_stage_uses_the_mask():
    # The first shifted block of each stage is where a lazily built mask is most often missing;
    # recompute it alone, with the regions written out, and compare with the same block unmasked.
    cfg = SwinConfig(**BASE, **CASES["official"])
    params = swinref.init_params(cfg, seed=9, scheme="random")
    x = np.random.default_rng(10).standard_normal((1, 3, 32, 32))
    inter = run(cfg, params, x)
    h = inter["layers.0.blocks.0"]
    got = inter["layers.0.blocks.1"]
    masked = naive.v1_block(params, "layers.0.blocks.1.", h, 1, (4, 4), (2, 2), roll_first=False)
    saved = naive.MASK
    try:
        naive.MASK = 0.0
        unmasked = naive.v1_block(params, "layers.0.blocks.1.", h, 1, (4, 4), (2, 2), roll_first=False)
    finally:
        naive.MASK = saved
    assert np.abs(unmasked - masked).max() > 1e-2, "the case must separate masked from unmasked"
    diff = np.abs(got - masked).max()
    assert diff <= ATOL, f"first shifted block vs the masked definition: {diff:.3e}"


def test_geometry_helper_sees_every_block_kind():
    # guard on the cases above: each kind of block the definitions must cover does occur
    kinds = set()
    for spec in CASES.values():
        cfg = SwinConfig(**BASE, **spec)
        grid = tuple(n // cfg.patch_size for n in cfg.image_hw)
        for i in range(cfg.num_stages):
            g = tuple(-(-n // 2**i) for n in grid)
            window, shift, roll_first, _ = v1_geometry(cfg, i, g, shifted=True)
            padded = any(n % m for n, m in zip(g, window, strict=True))
            kinds.add(("shifted" if any(shift) else "unshifted", "padded" if padded else "exact", roll_first))
            if window != cfg.window:
                kinds.add("clamped")
    assert {
        ("shifted", "padded", True),
        ("shifted", "padded", False),
        ("shifted", "exact", False),
        "clamped",
    } <= kinds, kinds


def test_dataclass_cases_are_valid_configs():
    for spec in CASES.values():
        dataclasses.replace(SwinConfig(**BASE, **spec))
