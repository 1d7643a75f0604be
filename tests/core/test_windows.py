"""Window partition / reverse and the cyclic shift, on every backend.

These operations only move values, so every comparison is exact (np.array_equal).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from strategies import backend_settings, geometries, seeds, shifted_geometries

from swinref.core.backend import to_numpy
from swinref.core.windows import cyclic_shift, window_partition, window_reverse


def _grid(g, seed):
    """A (B, H, W, C) float64 grid whose values are all distinct, so any misplacement shows."""
    rng = np.random.default_rng(seed)
    return rng.permutation(g.B * g.H * g.W * g.C).reshape(g.B, g.H, g.W, g.C).astype(np.float64)


def _naive_partition(x, window):
    """Windows in row-major order, batch outermost, each flattened row-major: explicit loops."""
    B, H, W, C = x.shape
    Mh, Mw = window
    out = []
    for b in range(B):
        for r in range(H // Mh):
            for c in range(W // Mw):
                out.append(x[b, r * Mh : (r + 1) * Mh, c * Mw : (c + 1) * Mw, :].reshape(Mh * Mw, C))
    return np.stack(out)  # (B*nW, N, C)


def _assert_equal(got, expected, what):
    got = to_numpy(got)
    assert got.shape == expected.shape, f"{what}: shape {got.shape}, expected {expected.shape}"
    assert np.array_equal(got, expected), (
        f"{what}: {np.sum(got != expected)} of {got.size} values differ; first mismatch at "
        f"{np.argwhere(got != expected)[0].tolist()}"
    )


@backend_settings
@given(g=geometries(), seed=seeds)
def test_partition_then_reverse_is_identity(be, g, seed):
    x = _grid(g, seed)
    windows = window_partition(be.asarray(x), g.window, xp=be.xp)
    assert tuple(windows.shape) == (g.B * g.nW, g.N, g.C), (
        f"partition shape: expected {(g.B * g.nW, g.N, g.C)}, got {tuple(windows.shape)}"
    )
    _assert_equal(window_reverse(windows, g.window, g.H, g.W, xp=be.xp), x, "reverse(partition(x))")


@backend_settings
@given(g=geometries(), seed=seeds)
def test_reverse_then_partition_is_identity(be, g, seed):
    rng = np.random.default_rng(seed)
    w = rng.permutation(g.B * g.nW * g.N * g.C).reshape(g.B * g.nW, g.N, g.C).astype(np.float64)
    x = window_reverse(be.asarray(w), g.window, g.H, g.W, xp=be.xp)
    _assert_equal(window_partition(x, g.window, xp=be.xp), w, "partition(reverse(w))")


@backend_settings
@given(g=geometries(), seed=seeds)
def test_partition_order_matches_naive_loop(be, g, seed):
    x = _grid(g, seed)
    _assert_equal(
        window_partition(be.asarray(x), g.window, xp=be.xp),
        _naive_partition(x, g.window),
        f"partition of a {g.H}x{g.W} grid into {g.window} windows",
    )


@pytest.mark.parametrize(
    "size, window",
    [
        ((1, 1), (1, 1)),  # one token, one window
        ((4, 4), (4, 4)),  # window == grid
        ((2, 6), (2, 3)),  # non-square window, one row of windows
        ((6, 2), (3, 1)),  # tall window
        ((7, 7), (7, 7)),  # Swin's last stage at 224: a single 7x7 window
    ],
)
def test_partition_edge_cases_match_naive_loop(be, size, window):
    H, W = size
    x = np.arange(2 * H * W * 3, dtype=np.float64).reshape(2, H, W, 3)
    windows = window_partition(be.asarray(x), window, xp=be.xp)
    _assert_equal(windows, _naive_partition(x, window), f"partition {size} by {window}")
    _assert_equal(window_reverse(windows, window, H, W, xp=be.xp), x, f"reverse {size} by {window}")


@pytest.mark.parametrize("size, window", [((5, 4), (2, 2)), ((4, 6), (4, 4)), ((3, 3), (2, 3))])
def test_partition_rejects_a_grid_that_is_not_a_multiple(size, window):
    import array_api_compat.numpy as xp

    x = np.zeros((1, *size, 1))
    with pytest.raises(ValueError, match="not a multiple of the window") as info:
        window_partition(x, window, xp=xp)
    assert f"{size[0]}x{size[1]}" in str(info.value), f"message should name the grid: {info.value}"


@backend_settings
@given(case=shifted_geometries(), seed=seeds)
def test_cyclic_shift_back_and_forth_is_identity(be, case, seed):
    g, (sh, sw) = case
    x = _grid(g, seed)
    rolled = cyclic_shift(be.asarray(x), (-sh, -sw), xp=be.xp)
    _assert_equal(cyclic_shift(rolled, (sh, sw), xp=be.xp), x, f"roll by {(-sh, -sw)} then {(sh, sw)}")


@backend_settings
@given(case=shifted_geometries(), seed=seeds)
def test_cyclic_shift_matches_numpy_roll(be, case, seed):
    g, (sh, sw) = case
    x = _grid(g, seed)
    for shift in ((-sh, -sw), (sh, sw), (-sh, sw)):
        _assert_equal(
            cyclic_shift(be.asarray(x), shift, xp=be.xp),
            np.roll(x, shift, axis=(1, 2)),
            f"cyclic_shift by {shift} vs numpy.roll",
        )


def test_negative_shift_moves_tokens_towards_the_top_left(be):
    # the direction Swin relies on: after rolling by (-s, -s), token (s, s) sits at (0, 0)
    x = np.arange(16, dtype=np.float64).reshape(1, 4, 4, 1)
    rolled = to_numpy(cyclic_shift(be.asarray(x), (-1, -1), xp=be.xp))[0, :, :, 0]
    assert rolled[0, 0] == x[0, 1, 1, 0], f"expected {x[0, 1, 1, 0]} at (0, 0), got {rolled[0, 0]}"
    assert rolled[3, 3] == x[0, 0, 0, 0], f"expected {x[0, 0, 0, 0]} at (3, 3), got {rolled[3, 3]}"
