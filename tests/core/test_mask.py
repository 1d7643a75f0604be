"""The shifted-window attention mask against a brute-force construction, on every backend.

The brute force never uses region_ids' three slices: it un-rolls each token's coordinates to
where the token sat before the cyclic shift and labels it by the contiguous block of the original
grid it came from (per axis: the first s rows/columns, which the roll wraps around, or the rest).
Two tokens of a window may attend to each other iff they carry the same label.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from strategies import backend_settings, seeds, shifted_geometries

from swinref.core.backend import to_numpy
from swinref.core.numerics import softmax
from swinref.core.windows import MASK_VALUE, shift_mask


def _origin_labels(size, shift):
    """(H, W) labels of the shifted grid from the original coordinates of each token."""
    H, W = size
    sh, sw = shift
    labels = np.empty((H, W), dtype=np.int64)
    for i in range(H):
        for j in range(W):
            # rolling by (-sh, -sw) put original token ((i + sh) % H, (j + sw) % W) at (i, j)
            oi, oj = (i + sh) % H, (j + sw) % W
            labels[i, j] = 2 * int(oi < sh) + int(oj < sw)  # which side of each wrap it came from
    return labels


def _brute_force_mask(size, window, shift):
    """(nW, N, N): 0 where two tokens of a window share an origin label, MASK_VALUE elsewhere."""
    H, W = size
    Mh, Mw = window
    labels = _origin_labels(size, shift)
    masks = []
    for r in range(H // Mh):
        for c in range(W // Mw):
            win = labels[r * Mh : (r + 1) * Mh, c * Mw : (c + 1) * Mw].reshape(-1)  # row-major tokens
            masks.append(np.where(win[:, None] == win[None, :], 0.0, MASK_VALUE))
    return np.stack(masks)


def _check_mask(be, size, window, shift):
    mask = shift_mask(size, window, shift, xp=be.xp, dtype=be.xp.float64, device=be.device)
    if be.device is not None:
        assert mask.device == be.device, f"mask created on {mask.device}, expected {be.device}"
    got = to_numpy(mask)
    expected = _brute_force_mask(size, window, shift)
    assert got.dtype == np.float64, f"mask dtype: expected float64, got {got.dtype}"
    assert got.shape == expected.shape, f"mask shape: expected {expected.shape}, got {got.shape}"
    bad = np.argwhere(got != expected)
    assert bad.size == 0, (
        f"mask for grid {size}, window {window}, shift {shift}: {len(bad)} entries differ, first "
        f"(window, i, j) = {bad[0].tolist()}: expected {expected[tuple(bad[0])]}, got {got[tuple(bad[0])]}"
    )


@backend_settings
@given(case=shifted_geometries(max_side=4, max_windows=3))
def test_shift_mask_matches_brute_force(be, case):
    g, shift = case
    _check_mask(be, (g.H, g.W), g.window, shift)


@pytest.mark.parametrize(
    "size, window, shift",
    [
        ((14, 14), (7, 7), (3, 3)),  # Swin-T's second stage geometry
        ((8, 8), (4, 4), (2, 0)),  # shift on rows only
        ((8, 8), (4, 4), (0, 2)),  # shift on columns only
        ((6, 8), (3, 4), (1, 2)),  # non-square window, per-axis shift
        ((4, 4), (4, 4), (2, 2)),  # one window: all four origins meet in it
        ((4, 6), (2, 3), (1, 2)),  # shift = M - 1 on columns
        ((3, 3), (3, 3), (0, 0)),  # no shift: no masking at all
    ],
)
def test_shift_mask_edge_cases(be, size, window, shift):
    _check_mask(be, size, window, shift)


def test_unshifted_mask_masks_nothing(be):
    mask = to_numpy(shift_mask((6, 6), (3, 3), (0, 0), xp=be.xp, device=be.device))
    assert np.all(mask == 0.0), f"expected an all-zero mask without shift, got {np.unique(mask)}"


def test_mask_value_is_minus_100():
    # official Swin, timm and torchvision add -100, not -inf; float32 softmax then gives 0
    assert MASK_VALUE == -100.0, f"expected -100.0, got {MASK_VALUE}"


@backend_settings
@given(case=shifted_geometries(max_side=4, max_windows=2), seed=seeds)
def test_masked_softmax_weights_stay_in_the_region(be, case, seed):
    g, shift = case
    size = (g.H, g.W)
    rng = np.random.default_rng(seed)
    logits = rng.uniform(-10.0, 10.0, size=(g.nW, g.N, g.N))  # moderate logits, |logit| <= 10
    mask = shift_mask(size, g.window, shift, xp=be.xp, dtype=be.xp.float64, device=be.device)
    weights = to_numpy(softmax(be.asarray(logits) + mask, axis=-1, xp=be.xp))
    outside = _brute_force_mask(size, g.window, shift) != 0.0
    # a masked weight is at most exp(-100 + 20) / 1 = 1.8e-35 (logits span at most 20)
    worst = weights[outside].max(initial=0.0)
    assert worst < 1e-30, f"softmax weight outside the region: expected < 1e-30, got {worst:.3e}"
    # and the weights inside each query's region sum to 1 up to those leaks and rounding
    inside = np.where(outside, 0.0, weights).sum(axis=-1)
    assert np.allclose(inside, 1.0, rtol=0, atol=1e-14), (
        f"in-region weights should sum to 1, got range [{inside.min()!r}, {inside.max()!r}]"
    )
