"""Window attention against a per-window, per-head loop written from the paper's formulas, and the
translation equivariance of unshifted window attention, on every backend.

Tolerance (float64): every value in these cases is O(1) to O(10) (unit-normal inputs, weights
scaled by 1/sqrt(C), bias table entries and logits of a few units); each output is a chain of
dot products of length at most 3C = 36, a softmax and two more dot products, so the rounding error
of either evaluation is a few 1e-15 and the two differ only in summation order and in where the
scale d**-0.5 is applied. atol = 1e-12 keeps a wide margin over that while a layout mistake
(head split, q/k/v order, bias transposed, mask broadcast over the wrong axis) gives O(0.1) errors.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import assert_close
from hypothesis import event, given
from hypothesis import strategies as st
from strategies import backend_settings, geometries, heads, seeds, shifted_geometries

from swinref.core.backend import to_namespace, to_numpy
from swinref.core.windows import shift_mask
from swinref.models.v1 import swin_block, window_attention

ATOL = 1e-12  # see the module docstring


def _attention_params(rng, C, num_heads, window, *, qkv_bias=True):
    Mh, Mw = window
    p = {
        "qkv.weight": rng.standard_normal((3 * C, C)) / math.sqrt(C),
        "relative_position_bias_table": rng.standard_normal(((2 * Mh - 1) * (2 * Mw - 1), num_heads)),
        "proj.weight": rng.standard_normal((C, C)) / math.sqrt(C),
        "proj.bias": rng.standard_normal(C),
    }
    if qkv_bias:
        p["qkv.bias"] = rng.standard_normal(3 * C)
    return p


def _naive_window_attention(p, x, num_heads, window, mask=None):
    """The paper's definition, one window and one head at a time, scalar softmax per query."""
    B_, N, C = x.shape
    d = C // num_heads
    Mh, Mw = window
    coords = [(h, w) for h in range(Mh) for w in range(Mw)]  # row-major tokens of a window
    Wqkv = p["qkv.weight"]
    bqkv = p.get("qkv.bias", np.zeros(3 * C))
    table = p["relative_position_bias_table"]
    out = np.empty((B_, N, C))
    for w in range(B_):
        q = [Wqkv[0:C] @ x[w, t] + bqkv[0:C] for t in range(N)]  # rows [0:C] of qkv are q
        k = [Wqkv[C : 2 * C] @ x[w, t] + bqkv[C : 2 * C] for t in range(N)]
        v = [Wqkv[2 * C :] @ x[w, t] + bqkv[2 * C :] for t in range(N)]
        heads_out = np.empty((N, C))
        for head in range(num_heads):
            ch = slice(head * d, (head + 1) * d)  # head-major channels
            for i, (hi, wi) in enumerate(coords):
                logits = []
                for j, (hj, wj) in enumerate(coords):
                    index = (hi - hj + Mh - 1) * (2 * Mw - 1) + (wi - wj + Mw - 1)
                    logit = float(q[i][ch] @ k[j][ch]) * d**-0.5 + table[index, head]
                    if mask is not None:
                        logit += mask[w % mask.shape[0], i, j]  # windows are batch-outermost
                    logits.append(logit)
                top = max(logits)
                e = [math.exp(a - top) for a in logits]
                total = sum(e)
                heads_out[i, ch] = sum(e[j] / total * v[j][ch] for j in range(N))
        out[w] = heads_out @ p["proj.weight"].T + p["proj.bias"]
    return out


def _run(be, p, x, num_heads, window, mask=None):
    params = to_namespace(p, be.xp, device=be.device)
    got = window_attention(
        params,
        be.asarray(x),
        num_heads=num_heads,
        window=window,
        mask=None if mask is None else be.asarray(mask),
        xp=be.xp,
    )
    if be.device is not None:
        assert got.device == be.device, f"output on {got.device}, expected {be.device}"
    return got


@backend_settings
@given(g=geometries(max_side=3, max_windows=2, max_channels=1), h=heads(), seed=seeds)
def test_window_attention_matches_loops_without_mask(be, g, h, seed):
    rng = np.random.default_rng(seed)
    C = h.num_heads * h.head_dim
    p = _attention_params(rng, C, h.num_heads, g.window)
    x = rng.standard_normal((g.B * g.nW, g.N, C))
    got = _run(be, p, x, h.num_heads, g.window)
    assert_close(
        got,
        _naive_window_attention(p, x, h.num_heads, g.window),
        atol=ATOL,
        what=f"window attention, {g}, {h}, seed {seed}",
    )


@backend_settings
@given(case=shifted_geometries(max_side=3, max_windows=2, max_channels=1), h=heads(), seed=seeds)
def test_window_attention_matches_loops_with_shift_mask(be, case, h, seed):
    g, shift = case
    rng = np.random.default_rng(seed)
    C = h.num_heads * h.head_dim
    p = _attention_params(rng, C, h.num_heads, g.window)
    x = rng.standard_normal((g.B * g.nW, g.N, C))
    mask = to_numpy(shift_mask((g.H, g.W), g.window, shift, xp=be.xp, device=be.device))
    got = _run(be, p, x, h.num_heads, g.window, mask)
    assert_close(
        got,
        _naive_window_attention(p, x, h.num_heads, g.window, mask),
        atol=ATOL,
        what=f"masked window attention, {g}, shift {shift}, {h}, seed {seed}",
    )


@backend_settings
@given(
    g=geometries(max_side=3, max_windows=2, max_channels=1), h=heads(), seed=seeds, batch=st.integers(2, 3)
)
def test_window_attention_broadcasts_a_mask_per_window(be, g, h, seed, batch):
    # a mask with different values in every window shows whether window w of image b uses mask[w]
    rng = np.random.default_rng(seed)
    C = h.num_heads * h.head_dim
    p = _attention_params(rng, C, h.num_heads, g.window)
    x = rng.standard_normal((batch * g.nW, g.N, C))
    mask = rng.uniform(-5.0, 0.0, size=(g.nW, g.N, g.N))
    got = _run(be, p, x, h.num_heads, g.window, mask)
    assert_close(
        got,
        _naive_window_attention(p, x, h.num_heads, g.window, mask),
        atol=ATOL,
        what=f"window attention with a random mask, {g}, batch {batch}, {h}, seed {seed}",
    )


@pytest.mark.parametrize(
    "window, num_heads, head_dim, qkv_bias",
    [
        ((1, 1), 1, 1, True),  # a single token attends to itself only
        ((2, 3), 2, 3, False),  # no qkv bias (the parameter is absent)
        ((3, 2), 3, 1, True),  # d = 1
        ((7, 7), 1, 2, True),  # Swin's window size
    ],
)
def test_window_attention_edge_cases(be, window, num_heads, head_dim, qkv_bias):
    rng = np.random.default_rng(7)
    C = num_heads * head_dim
    p = _attention_params(rng, C, num_heads, window, qkv_bias=qkv_bias)
    x = rng.standard_normal((2, window[0] * window[1], C))
    got = _run(be, p, x, num_heads, window)
    assert_close(
        got,
        _naive_window_attention(p, x, num_heads, window),
        atol=ATOL,
        what=f"window attention, window {window}, nH {num_heads}, d {head_dim}, bias {qkv_bias}",
    )


# ----- W-MSA equivariance ---------------------------------------------------------------------
def _block_params(rng, C, num_heads, window, mlp_ratio=2):
    p = {f"attn.{k}": v for k, v in _attention_params(rng, C, num_heads, window).items()}
    for norm in ("norm1", "norm2"):
        p[f"{norm}.weight"] = 1.0 + 0.1 * rng.standard_normal(C)
        p[f"{norm}.bias"] = 0.1 * rng.standard_normal(C)
    p["mlp.fc1.weight"] = rng.standard_normal((mlp_ratio * C, C)) / math.sqrt(C)
    p["mlp.fc1.bias"] = 0.1 * rng.standard_normal(mlp_ratio * C)
    p["mlp.fc2.weight"] = rng.standard_normal((C, mlp_ratio * C)) / math.sqrt(mlp_ratio * C)
    p["mlp.fc2.bias"] = 0.1 * rng.standard_normal(C)
    return p


def _block(be, p, x, num_heads, window, shift=(0, 0)):
    return to_numpy(
        swin_block(
            to_namespace(p, be.xp, device=be.device),
            be.asarray(x),
            num_heads=num_heads,
            window=window,
            shift=shift,
            xp=be.xp,
        )
    )


# Rolling by whole windows only permutes the windows, and every other part of the block acts per
# token, so the outputs hold the same arithmetic on the same values: they agree to the last bit
# up to BLAS choosing a different kernel for a row at another position. 1e-13 (about 100 ULP of
# these O(1) values) allows that and nothing more; a misaligned window changes values at O(0.1).
EQUIVARIANCE_ATOL = 1e-13


@backend_settings
@given(
    g=geometries(max_side=3, max_windows=3, max_channels=1),
    h=heads(max_heads=2, max_head_dim=3),
    seed=seeds,
    data=st.data(),
)
def test_unshifted_block_is_equivariant_to_rolls_by_whole_windows(be, g, h, seed, data):
    Mh, Mw = g.window
    rows, cols = g.H // Mh, g.W // Mw
    if rows * cols == 1:  # one window admits only the zero roll: give the grid a second column
        cols = 2
    W = cols * Mw
    # a roll by k whole windows, k = 1 .. nW-1 in row-major window order: never the identity
    k = data.draw(st.integers(1, rows * cols - 1), label="roll in windows")
    roll = (Mh * (k // cols), Mw * (k % cols))
    event("roll along rows and columns" if all(roll) else "roll along one axis")
    rng = np.random.default_rng(seed)
    C = h.num_heads * h.head_dim
    p = _block_params(rng, C, h.num_heads, g.window)
    x = rng.standard_normal((g.B, g.H, W, C))
    rolled_then_block = _block(be, p, np.roll(x, roll, axis=(1, 2)), h.num_heads, g.window)
    block_then_rolled = np.roll(_block(be, p, x, h.num_heads, g.window), roll, axis=(1, 2))
    assert_close(
        rolled_then_block,
        block_then_rolled,
        atol=EQUIVARIANCE_ATOL,
        what=f"block(roll(x, {roll})) vs roll(block(x), {roll}), {g}, W {W}, {h}, seed {seed}",
    )


def test_unshifted_block_is_not_equivariant_to_a_one_token_roll(be):
    # the property above is not vacuous: rolling by less than a window regroups the tokens
    rng = np.random.default_rng(3)
    window, C = (2, 2), 4
    p = _block_params(rng, C, 2, window)
    x = rng.standard_normal((1, 4, 4, C))
    rolled_then_block = _block(be, p, np.roll(x, (1, 0), axis=(1, 2)), 2, window)
    block_then_rolled = np.roll(_block(be, p, x, 2, window), (1, 0), axis=(1, 2))
    diff = np.abs(rolled_then_block - block_then_rolled).max()
    assert diff > 1e-3, f"expected a one-token roll to change the output, max diff {diff:.3e}"
