"""The shared strategies draw what their docstrings promise, and reach the cases that matter."""

from __future__ import annotations

import math

from hypothesis import find, given
from strategies import (
    embed_cases,
    float_lists,
    geometries,
    heads,
    merge_grids,
    shifted_geometries,
    window_sizes,
)


@given(g=geometries(max_side=4, max_windows=3, max_batch=2, max_channels=4))
def test_geometries_are_multiples_of_the_window(g):
    Mh, Mw = g.window
    assert 1 <= Mh <= 4 and 1 <= Mw <= 4, f"window sides in 1..4, got {g.window}"
    assert g.H % Mh == 0 and g.W % Mw == 0, f"grid {g.H}x{g.W} should be a multiple of {g.window}"
    assert 1 <= g.H // Mh <= 3 and 1 <= g.W // Mw <= 3, f"1..3 windows per axis, got {g}"
    assert 1 <= g.B <= 2 and 1 <= g.C <= 4, f"batch 1..2 and channels 1..4, got {g}"
    assert g.N == Mh * Mw and g.nW == (g.H // Mh) * (g.W // Mw), f"N, nW inconsistent for {g}"


@given(case=shifted_geometries())
def test_shifts_lie_in_the_window(case):
    g, (sh, sw) = case
    assert 0 <= sh < g.window[0] and 0 <= sw < g.window[1], f"shift {(sh, sw)} outside [0, {g.window})"


@given(h=heads(max_heads=3, max_head_dim=4))
def test_heads_are_in_range(h):
    assert 1 <= h.num_heads <= 3 and 1 <= h.head_dim <= 4, f"nH in 1..3 and d in 1..4, got {h}"


@given(e=embed_cases())
def test_embed_images_are_multiples_of_the_patch(e):
    assert e.H % e.patch == 0 and e.W % e.patch == 0, f"image {e.H}x{e.W} vs patch {e.patch}"


@given(xs=float_lists(-6.0, 6.0, max_size=8))
def test_float_lists_are_finite_and_bounded(xs):
    assert 1 <= len(xs) <= 8, f"1..8 values, got {len(xs)}"
    assert all(math.isfinite(x) and -6.0 <= x <= 6.0 for x in xs), f"values outside [-6, 6]: {xs}"


# The cases the properties are meant to cover must be reachable by the strategies.
def test_non_square_windows_are_drawn():
    w = find(window_sizes(), lambda w: w[0] != w[1])
    assert w[0] != w[1], f"expected a non-square window, got {w}"


def test_a_shift_of_zero_on_one_axis_only_is_drawn():
    g, s = find(shifted_geometries(), lambda c: (c[1][0] == 0) != (c[1][1] == 0))
    assert (s[0] == 0) != (s[1] == 0), f"expected exactly one zero shift, got {s}"


def test_several_windows_along_both_axes_are_drawn():
    g = find(geometries(), lambda g: g.H > g.window[0] and g.W > g.window[1] and g.B > 1)
    assert g.nW >= 4 and g.B == 2, f"expected a batch of multi-window grids, got {g}"


def test_odd_merge_grids_are_drawn():
    g = find(merge_grids(), lambda g: g.H % 2 == 1 and g.W % 2 == 1 and g.H > 1 and g.W > 1)
    assert g.H % 2 and g.W % 2, f"expected odd H and W, got {g}"
