"""Properties that guard against the mistakes ports make in composing a Swin block, which the
per-function tests cannot see: the roll's sign, the shift amount, pad/roll order, the LayerNorm
eps. ``benchmarks/mutation.py`` applies each mistake to swinref and checks that some test fails.

A shifted block is compared with a definition written out with loops and scalar math from the paper's definition:
LayerNorm (eps 1e-5), timm's roll-then-pad, region labels by the three slices of each axis of the
padded grid, per-window attention (tests/models/test_attention.py's loop), exact GELU via math.erf.

Tolerance (float64): both sides evaluate the same O(1) dot products (length <= 2 * 4C = 48) and
softmaxes in different orders; rounding differences are a few 1e-15. atol = 1e-12 keeps a wide
margin, while the mistakes change outputs by far more: eps 1e-6 instead of 1e-5 moves every
normalised value by about 5e-6 relative, tanh GELU by up to 5e-4, a wrong roll or order by O(0.1).
"""

from __future__ import annotations

import math

import numpy as np
from conftest import assert_close
from hypothesis import given
from hypothesis import strategies as st
from strategies import backend_settings, heads, seeds
from test_attention import _block_params, _naive_window_attention

from swinref import SwinConfig
from swinref.core.backend import to_namespace
from swinref.models.v1 import block_geometry, swin_block

ATOL = 1e-12  # see the module docstring
DEFINITION_LN_EPS = 1e-5  # written out: the reference must not read the constant it guards


def _layer_norm(x, weight, bias):
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + DEFINITION_LN_EPS) * weight + bias


def _gelu(x):
    return np.vectorize(lambda v: 0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0))))(x)


def _slice_labels(L, M, s):
    """Per axis of the padded grid: 0 on [0, L-M), 1 on [L-M, L-s), 2 on [L-s, L); one region if s == 0."""
    if s == 0:
        return [0] * L
    return [0 if i < L - M else 1 if i < L - s else 2 for i in range(L)]


def _naive_block(p, x, num_heads, window, shift):
    """timm's shifted block by definition: roll the unpadded grid by -shift, pad, windows, masked
    attention, reverse, crop, roll back, residual; then the MLP with its residual."""
    B, H, W, C = x.shape
    (Mh, Mw), (sh, sw) = window, shift
    Hp, Wp = H + (-H) % Mh, W + (-W) % Mw
    h = _layer_norm(x, p["norm1.weight"], p["norm1.bias"])
    h = np.roll(h, (-sh, -sw), axis=(1, 2))  # timm rolls first ...
    padded = np.zeros((B, Hp, Wp, C))
    padded[:, :H, :W] = h  # ... and pads after
    rows, cols = _slice_labels(Hp, Mh, sh), _slice_labels(Wp, Mw, sw)
    wins, masks = [], []
    for b in range(B):
        for r in range(0, Hp, Mh):
            for c in range(0, Wp, Mw):
                wins.append(padded[b, r : r + Mh, c : c + Mw].reshape(Mh * Mw, C))
                if b == 0:
                    lab = [3 * rows[r + i] + cols[c + j] for i in range(Mh) for j in range(Mw)]
                    masks.append([[0.0 if a == z else -100.0 for z in lab] for a in lab])
    attn_p = {k[len("attn.") :]: v for k, v in p.items() if k.startswith("attn.")}
    mask = np.asarray(masks) if (sh or sw) else None
    out = _naive_window_attention(attn_p, np.stack(wins), num_heads, window, mask)
    back = np.zeros((B, Hp, Wp, C))
    k = 0
    for b in range(B):
        for r in range(0, Hp, Mh):
            for c in range(0, Wp, Mw):
                back[b, r : r + Mh, c : c + Mw] = out[k].reshape(Mh, Mw, C)
                k += 1
    x = x + np.roll(back[:, :H, :W], (sh, sw), axis=(1, 2))
    h = _layer_norm(x, p["norm2.weight"], p["norm2.bias"])
    h = _gelu(h @ p["mlp.fc1.weight"].T + p["mlp.fc1.bias"]) @ p["mlp.fc2.weight"].T + p["mlp.fc2.bias"]
    return x + h


@backend_settings
@given(h=heads(max_heads=2, max_head_dim=2), seed=seeds, data=st.data())
def test_shifted_block_matches_its_definition(be, h, seed, data):
    Mh = data.draw(st.integers(2, 3), label="window h")
    Mw = data.draw(st.integers(2, 3), label="window w")
    # grids of 1..2 windows and up to M-1 more tokens: some need padding, some do not
    H = data.draw(st.integers(Mh, 2 * Mh + Mh - 1), label="H")
    W = data.draw(st.integers(Mw, 2 * Mw + Mw - 1), label="W")
    shift = (
        data.draw(st.integers(0, Mh - 1), label="shift h"),
        data.draw(st.integers(0, Mw - 1), label="shift w"),
    )
    rng = np.random.default_rng(seed)
    C = h.num_heads * h.head_dim
    p = _block_params(rng, C, h.num_heads, (Mh, Mw))
    x = rng.standard_normal((1, H, W, C))
    got = swin_block(
        to_namespace(p, be.xp, device=be.device),
        be.asarray(x),
        num_heads=h.num_heads,
        window=(Mh, Mw),
        shift=shift,
        xp=be.xp,
    )
    assert_close(
        got,
        _naive_block(p, x, h.num_heads, (Mh, Mw), shift),
        atol=ATOL,
        what=f"swin_block vs definition, grid {H}x{W}, window {(Mh, Mw)}, shift {shift}, {h}",
    )


def test_shifted_block_with_padding_and_a_shift_matches_its_definition(be):
    # the pad/roll order only matters where the grid is padded and shifted: make sure one such case runs
    rng = np.random.default_rng(11)
    p = _block_params(rng, 4, 2, (3, 3))
    x = rng.standard_normal((2, 5, 7, 4))  # pads to 6x9
    got = swin_block(
        to_namespace(p, be.xp, device=be.device),
        be.asarray(x),
        num_heads=2,
        window=(3, 3),
        shift=(1, 1),
        xp=be.xp,
    )
    assert_close(
        got,
        _naive_block(p, x, 2, (3, 3), (1, 1)),
        atol=ATOL,
        what="swin_block on a 5x7 grid, window 3, shift 1 (padded, timm roll-then-pad)",
    )


@given(window=st.tuples(st.integers(1, 12), st.integers(1, 12)), stage=st.integers(0, 3))
def test_shifted_blocks_shift_by_half_the_window_rounded_down(window, stage):
    # the official code: shift_size = window_size // 2 on odd blocks; a grid larger than the window is not clamped
    cfg = SwinConfig(
        img_size=(64 * 13, 64 * 13),
        patch_size=4,
        embed_dim=8,
        depths=(2, 2, 2, 2),
        num_heads=(1, 2, 4, 8),
        window_size=window,
    )
    grid = (208 // 2**stage, 208 // 2**stage)  # >= 26 > 12: never clamped
    got_window, got_shift = block_geometry(cfg, stage, grid, shifted=True)
    expected = (window[0] // 2, window[1] // 2)
    assert got_window == window and got_shift == expected, (
        f"window {window}, stage {stage}: expected window {window} and shift {expected}, "
        f"got {got_window} and {got_shift}"
    )
    assert block_geometry(cfg, stage, grid, shifted=False)[1] == (0, 0), "unshifted blocks must not shift"
