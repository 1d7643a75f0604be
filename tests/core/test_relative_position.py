"""Relative position index and the bias gathered from the table, on every backend."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from strategies import backend_settings, heads, seeds, window_sizes

from swinref.core.backend import to_numpy
from swinref.core.windows import relative_position_index
from swinref.models.v1 import relative_position_bias


def _naive_index(window):
    """(N, N) index by explicit loops over token pairs, tokens numbered row-major in the window."""
    Mh, Mw = window
    coords = [(h, w) for h in range(Mh) for w in range(Mw)]
    index = np.empty((len(coords), len(coords)), dtype=np.int64)
    for i, (hi, wi) in enumerate(coords):
        for j, (hj, wj) in enumerate(coords):
            index[i, j] = (hi - hj + Mh - 1) * (2 * Mw - 1) + (wi - wj + Mw - 1)
    return index


def _index(be, window):
    index = relative_position_index(window, xp=be.xp, device=be.device)
    if be.device is not None:
        assert index.device == be.device, f"index created on {index.device}, expected {be.device}"
    got = to_numpy(index)
    assert got.dtype == np.int64, f"index dtype: expected int64, got {got.dtype}"
    return got


def _centre(window):
    Mh, Mw = window
    return (Mh - 1) * (2 * Mw - 1) + (Mw - 1)  # offset (0, 0)


def _check_index(be, window):
    Mh, Mw = window
    N = Mh * Mw
    got = _index(be, window)
    assert got.shape == (N, N), f"index shape: expected {(N, N)}, got {got.shape}"
    table_rows = (2 * Mh - 1) * (2 * Mw - 1)
    assert got.min() >= 0 and got.max() <= table_rows - 1, (
        f"index range: expected within [0, {table_rows - 1}], got [{got.min()}, {got.max()}]"
    )
    centre = _centre(window)
    assert np.all(np.diagonal(got) == centre), f"diagonal: expected {centre}, got {np.diagonal(got)}"
    assert np.all(got + got.T == 2 * centre), (
        f"index(i, j) + index(j, i) should be {2 * centre}; got {np.unique(got + got.T)}"
    )
    expected = _naive_index(window)
    bad = np.argwhere(got != expected)
    assert bad.size == 0, (
        f"window {window}: index{tuple(bad[0])} expected {expected[tuple(bad[0])]}, got {got[tuple(bad[0])]}"
    )


@backend_settings
@given(window=window_sizes(max_side=7))
def test_relative_position_index_properties(be, window):
    _check_index(be, window)


@pytest.mark.parametrize("window", [(1, 1), (1, 5), (5, 1), (2, 3), (7, 7), (12, 12)])
def test_relative_position_index_edge_cases(be, window):
    _check_index(be, window)


def test_every_table_row_is_used_for_full_offsets(be):
    # in an (Mh, Mw) window every offset in [-(M-1), M-1]^2 occurs, so every table row is read
    window = (3, 4)
    used = np.unique(_index(be, window))
    assert np.array_equal(used, np.arange(5 * 7)), f"expected rows 0..34 all used, got {used.tolist()}"


@backend_settings
@given(window=window_sizes(max_side=4), h=heads(), seed=seeds)
def test_relative_position_bias_gathers_the_table(be, window, h, seed):
    Mh, Mw = window
    N, nH = Mh * Mw, h.num_heads
    table = np.random.default_rng(seed).standard_normal(((2 * Mh - 1) * (2 * Mw - 1), nH))
    got = to_numpy(relative_position_bias(be.asarray(table), window, xp=be.xp))
    assert got.shape == (nH, N, N), f"bias shape: expected {(nH, N, N)}, got {got.shape}"
    index = _naive_index(window)
    for head in range(nH):
        for i in range(N):
            for j in range(N):
                assert got[head, i, j] == table[index[i, j], head], (
                    f"bias[{head}, {i}, {j}]: expected table[{index[i, j]}, {head}] = "
                    f"{table[index[i, j], head]}, got {got[head, i, j]}"
                )
