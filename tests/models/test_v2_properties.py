"""Forward-level properties of Swin V2 that stand on their own (component formulas: test_v2.py).

Every intermediate of the forward is recomputed from the previous one by the loop definitions in
tests/naive.py (res-post-norm blocks, scaled cosine attention, the continuous position bias with
its float32 coordinate table, reduce-then-norm merging) with the window, shift, pad/roll order
and mask count each semantics gives, written out below. Then the invariants of the V2 attention:
the bias bound, invariance to the scale of q and k, the logit-scale clamp.

Tolerance of the forward: float64, absolute 1e-12. Both sides build the coordinate table with
the same float32 roundings and then do the same float64 arithmetic in another order; the largest
difference measured over the cases here is below 1e-14 (``check_v2_forward`` returns it).
"""

from __future__ import annotations

import math

import naive
import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

import swinref
from swinref import v2

ATOL = 1e-12
np_xp = swinref.get_namespace("numpy")


def v2_geometry(cfg: v2.SwinV2Config, stage: int, grid: tuple[int, int], shifted: bool):
    """(window, shift, roll_first, mask repeats) of a V2 block at ``grid``, per semantics.

    timm: per axis on the actual grid, r <= M gives window r and shift 0; rolls, then pads.
    torchvision: the window never changes, an axis whose padded length is <= M is not shifted;
    pads first. transformers: one int, min(r, M) with r = floor(configured grid / 2**stage),
    shift 0 when r <= M; pads first and adds the mask twice.
    """
    M = cfg.window
    s = (M[0] // 2, M[1] // 2) if shifted else (0, 0)
    if cfg.semantics == "timm":
        win = tuple(r if r <= m else m for r, m in zip(grid, M, strict=True))
        return win, tuple(0 if r <= m else t for r, m, t in zip(grid, M, s, strict=True)), True, 1
    if cfg.semantics == "torchvision":
        padded = tuple(-(-r // m) * m for r, m in zip(grid, M, strict=True))
        return M, tuple(0 if p <= m else t for p, m, t in zip(padded, M, s, strict=True)), False, 1
    r = cfg.image_hw[0] // cfg.patch_size // 2**stage
    m = min(r, M[0])
    return (m, m), ((0, 0) if r <= m else s), False, 2


def check_v2_forward(cfg: v2.SwinV2Config, params, x) -> float:
    _, inter = swinref.forward(swinref.to_namespace(params, np_xp), x, cfg, return_intermediates=True)
    inter = {k: np.asarray(v) for k, v in inter.items()}
    match = naive.Matcher(inter, ATOL, cfg.semantics)
    same = match.same

    P = cfg.patch_size
    same("patch_embed", naive.patch_embed(params, "patch_embed.", x, (P, P), norm=True))
    h = inter["patch_embed"]
    for i, depth in enumerate(cfg.depths):
        if i > 0:
            same(f"layers.{i}.downsample", naive.v2_merge(params, f"layers.{i}.downsample.", h))
            h = inter[f"layers.{i}.downsample"]
        grid = (h.shape[1], h.shape[2])
        for j in range(depth):
            window, shift, roll_first, repeats = v2_geometry(cfg, i, grid, shifted=j % 2 == 1)
            name = f"layers.{i}.blocks.{j}"
            expected = naive.v2_block(
                params,
                f"{name}.",
                h,
                cfg.num_heads[i],
                window,
                shift,
                roll_first=roll_first,
                pretrained=cfg.pretrained_window(i),
                mask_repeats=repeats,
            )
            same(name, expected)
            h = inter[name]
    same("norm", naive.layer_norm(h, params["norm.weight"], params["norm.bias"]))
    pooled = inter["norm"].mean(axis=(1, 2))
    same("pre_logits", pooled)
    same("logits", pooled @ params["head.fc.weight"].T + params["head.fc.bias"])
    return match.worst


BASE = dict(patch_size=2, embed_dim=6, num_heads=(1, 2, 2), depths=(2, 2, 2), mlp_ratio=2.0, num_classes=5)
CASES = {
    # 12x20, 6x10 (rolls, then pads to 8x12; pre-training window 6), 3x5 (rows clamp to 3, shift (0, 2))
    "timm": dict(semantics="timm", img_size=(24, 40), window_size=4, pretrained_window_sizes=(0, 6, 0)),
    # 14x10, 7x5, 4x3: pads first, no clamp, shift dropped on an axis the padded window covers
    "torchvision": dict(semantics="torchvision", img_size=(28, 20), window_size=(4, 3)),
    # 12x12, 6x6, 3x3: window 3 on the last stage, mask added twice on the shifted blocks
    "hf": dict(semantics="hf", img_size=24, window_size=4, pretrained_window_sizes=(8, 0, 0)),
}


def _params(cfg, seed):
    params = swinref.init_params(cfg, seed=seed, scheme="random")
    for name in params:
        if name.endswith("logit_scale"):  # the first head above the log(100) clamp, the others below
            params[name] = np.linspace(6.0, 1.0, params[name].size).reshape(params[name].shape)
    return params


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_v2_intermediate_follows_from_the_previous_by_its_definition(name):
    cfg = v2.SwinV2Config(**BASE, **CASES[name])
    x = np.random.default_rng(2).standard_normal((2, 3, *cfg.image_hw))
    check_v2_forward(cfg, _params(cfg, 1), x)


# ----- the continuous position bias -----------------------------------------------------------
@given(
    window=st.tuples(st.integers(1, 12), st.integers(1, 12)),
    pretrained=st.one_of(st.just((0, 0)), st.tuples(st.integers(2, 16), st.integers(2, 16))),
)
def test_coordinate_table_is_log_spaced_odd_and_bounded(window, pretrained):
    event("pretrained window" if pretrained[0] else "no pretrained window")
    table = np.asarray(v2.relative_coords_table(window, pretrained, xp=np_xp))
    Mh, Mw = window
    assert table.shape == ((2 * Mh - 1) * (2 * Mw - 1), 2), f"table shape {table.shape}"
    expected = naive.v2_coords(window, pretrained)
    offsets = [(dh, dw) for dh in range(-(Mh - 1), Mh) for dw in range(-(Mw - 1), Mw)]
    want = np.array([expected[o] for o in offsets], dtype=np.float32)
    assert np.array_equal(table, want), (
        f"window {window}, pretrained {pretrained}: first difference at row "
        f"{np.argwhere(table != want)[0]}: got {table[table != want][:2]}, want {want[table != want][:2]}"
    )
    assert np.array_equal(table, -table[::-1]), "offset -(dh, dw) must give -row (dh, dw)"
    ref = pretrained if pretrained[0] else window
    # |t| <= 8 (M - 1) / (ref - 1): at most 1 (log2(9) / 3 ~ 1.057 at |t| = 8) without a larger pretraining window
    bound = [math.log2(8 * (m - 1) / max(r - 1, 1) + 1) / 3 for m, r in zip(window, ref, strict=True)]
    assert np.all(np.abs(table) <= np.float32(bound) + 1e-6), f"table beyond {bound}: {np.abs(table).max(0)}"


@pytest.mark.parametrize("gain", [1.0, 50.0])
def test_position_bias_stays_within_16_sigmoid_bounds(gain):
    # 16 * sigmoid: in (0, 16) whatever the MLP computes; large weights drive it to both ends
    rng = np.random.default_rng(3)
    nH, window = 4, (5, 3)
    p = {
        "cpb_mlp.0.weight": rng.normal(size=(512, 2)),
        "cpb_mlp.0.bias": rng.normal(size=512),
        "cpb_mlp.2.weight": gain * rng.normal(size=(nH, 512)) / 20,
    }
    coords = np.asarray(v2.relative_coords_table(window, xp=np_xp)).astype(np.float64)
    index = np.asarray(swinref.core.windows.relative_position_index(window, xp=np_xp))
    bias = np.asarray(v2.continuous_position_bias(p, coords, index, num_heads=nH, xp=np_xp))
    assert bias.min() >= 0.0 and bias.max() <= 16.0, f"bias in [{bias.min()}, {bias.max()}], expected [0, 16]"
    if gain > 1:
        assert bias.max() > 15.9 and bias.min() < 0.1, f"saturated bias spans [{bias.min()}, {bias.max()}]"


# ----- scaled cosine attention -----------------------------------------------------------------
def _attention_params(rng, C, nH):
    return {
        "qkv.weight": rng.normal(size=(3 * C, C)) / math.sqrt(C),
        "q_bias": 0.1 * rng.normal(size=C),
        "v_bias": 0.1 * rng.normal(size=C),
        "logit_scale": np.linspace(1.0, 6.0, nH).reshape(nH, 1, 1),
        "cpb_mlp.0.weight": rng.normal(size=(512, 2)),
        "cpb_mlp.0.bias": rng.normal(size=512),
        "cpb_mlp.2.weight": rng.normal(size=(nH, 512)) / 20,
        "proj.weight": rng.normal(size=(C, C)) / math.sqrt(C),
        "proj.bias": 0.1 * rng.normal(size=C),
    }


def _attend(p, x, nH, window):
    return np.asarray(v2.window_attention(p, x, num_heads=nH, window=window, xp=np_xp))


@given(
    which=st.sampled_from(["q", "k"]),
    # 10**e with |e| in [0.1, 3]: shrunk or grown by 1.26x .. 1000x, never ~1
    factor=st.builds(lambda e, sign: 10.0 ** (sign * e), st.floats(0.1, 3.0), st.sampled_from([-1, 1])),
    head=st.integers(0, 1),
    seed=st.integers(0, 2**32 - 1),
)
def test_cosine_attention_ignores_the_scale_of_q_and_k(which, factor, head, seed):
    event(f"scale {which}")
    event("factor < 1" if factor < 1 else "factor > 1")
    rng = np.random.default_rng(seed)
    C, nH, window = 6, 2, (2, 3)
    d = C // nH
    p = _attention_params(rng, C, nH)
    x = rng.normal(size=(2, 6, C))
    base = _attend(p, x, nH, window)
    scaled = dict(p)
    rows = slice((0 if which == "q" else C) + head * d, (0 if which == "q" else C) + (head + 1) * d)
    scaled["qkv.weight"] = p["qkv.weight"].copy()
    scaled["qkv.weight"][rows] *= factor
    if which == "q":  # the k bias is zero; the q bias scales with q
        scaled["q_bias"] = p["q_bias"].copy()
        scaled["q_bias"][head * d : (head + 1) * d] *= factor
    diff = np.abs(_attend(scaled, x, nH, window) - base).max()
    # q / ||q|| changes by a few ulps; the logits (up to 100) carry that to ~1e-13 in the output
    assert diff <= 1e-11, f"scaling head {head}'s {which} by {factor} moved the output by {diff:.3e}"
    v_scaled = dict(p)
    v_scaled["qkv.weight"] = p["qkv.weight"].copy()
    v_scaled["qkv.weight"][2 * C :] *= 2.0
    assert np.abs(_attend(v_scaled, x, nH, window) - base).max() > 1e-3, "v's scale must matter"


def test_logit_scale_is_clamped_at_log_100_in_the_forward():
    rng = np.random.default_rng(4)
    C, nH, window = 6, 2, (2, 2)
    p = _attention_params(rng, C, nH)
    x = rng.normal(size=(3, 4, C))

    def with_scale(s):
        return _attend(dict(p, logit_scale=np.full((nH, 1, 1), s)), x, nH, window)

    at_clamp = with_scale(math.log(100.0))
    above = np.abs(with_scale(9.0) - at_clamp).max()
    below = np.abs(with_scale(math.log(50.0)) - at_clamp).max()
    assert above <= 1e-13, f"a logit scale of 9 must act as log(100): output moved by {above:.3e}"
    assert below > 1e-3, f"a logit scale of log(50) must differ from log(100), moved only {below:.3e}"


def test_res_post_norm_normalises_each_branch():
    # x + norm1(attn(x)): with norm1 = LayerNorm(weight 1, bias 0) the branch added to x has mean 0
    # and variance ~1 per token, whatever the attention computed (pre-norm would not: it adds attn's
    # raw output); likewise norm2 after the MLP
    cfg = v2.SwinV2Config(**BASE, **CASES["timm"])
    params = _params(cfg, 5)
    block = "layers.0.blocks.1."
    for n in ("norm1", "norm2"):
        params[f"{block}{n}.weight"] = np.ones_like(params[f"{block}{n}.weight"])
        params[f"{block}{n}.bias"] = np.zeros_like(params[f"{block}{n}.bias"])
    x = np.random.default_rng(6).standard_normal((1, 3, *cfg.image_hw))
    _, inter = swinref.forward(swinref.to_namespace(params, np_xp), x, cfg, return_intermediates=True)
    branch = np.asarray(inter["layers.0.blocks.1"]) - np.asarray(inter["layers.0.blocks.0"])
    # the sum of two LayerNorm outputs: mean 0 per token
    assert np.abs(branch.mean(-1)).max() < 1e-12, f"branch means {np.abs(branch.mean(-1)).max():.3e}"


def test_merge_reduces_then_normalises():
    # with the norm's weight 1 and bias 0, every merged token has mean 0 and variance v / (v + eps)
    cfg = v2.SwinV2Config(**BASE, **CASES["timm"])
    params = _params(cfg, 7)
    p = {k.removeprefix("layers.1.downsample."): v for k, v in params.items() if "layers.1.downsample" in k}
    p["norm.weight"], p["norm.bias"] = np.ones(12), np.zeros(12)
    x = np.random.default_rng(8).standard_normal((2, 5, 7, 6))
    out = np.asarray(v2.patch_merging(p, x, xp=np_xp))
    reduced = naive.merge_2x2(x) @ p["reduction.weight"].T
    var = reduced.var(-1)
    assert np.abs(out.mean(-1)).max() < 1e-12, "merged tokens must have mean 0 (normalised last)"
    assert np.allclose(out.var(-1), var / (var + 1e-5), rtol=1e-12), "variance v / (v + eps) per token"
