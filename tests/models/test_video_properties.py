"""Forward-level properties of Video Swin that stand on their own (no torch, no 2-D model).

Every intermediate of the forward is recomputed from the previous one by the loop definitions in
tests/naive.py with the window and shift the released ``get_window_size`` rule gives (written out
below): the 3-D shift on all three axes, the 3-D relative index, the 27 mask regions, padding
before the roll, the spatial-only merge. Then the 3-D geometry on its own.

Tolerance of the forward: float64, absolute 1e-12; both sides do the same arithmetic in another
order, the largest difference measured over the cases here is below 1e-14.
"""

from __future__ import annotations

import naive
import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

import swinref
from swinref import video
from swinref.core.windows import region_ids, relative_position_index

ATOL = 1e-12
np_xp = swinref.get_namespace("numpy")


def video_geometry(full, grid, shifted: bool):
    """Released ``get_window_size``: per axis, r <= M gives window r and shift 0 (note ``<=``)."""
    window = tuple(r if r <= m else m for r, m in zip(grid, full, strict=True))
    shift = tuple(0 if r <= m or not shifted else m // 2 for r, m in zip(grid, full, strict=True))
    return window, shift


def check_video_forward(cfg: video.VideoSwinConfig, params, x) -> float:
    _, inter = swinref.forward(swinref.to_namespace(params, np_xp), x, cfg, return_intermediates=True)
    inter = {k: np.asarray(v) for k, v in inter.items()}
    match = naive.Matcher(inter, ATOL)
    same = match.same

    full = cfg.window_size
    same(
        "backbone.patch_embed",
        naive.patch_embed(params, "backbone.patch_embed.", x, cfg.patch_size, norm=cfg.patch_norm),
    )
    h = inter["backbone.patch_embed"]
    for i, depth in enumerate(cfg.depths):
        stage = f"backbone.layers.{i}"
        grid = h.shape[1:4]
        for j in range(depth):
            window, shift = video_geometry(full, grid, shifted=j % 2 == 1)
            N = window[0] * window[1] * window[2]
            name = f"{stage}.blocks.{j}"
            expected = naive.v1_block(
                params,
                f"{name}.",
                h,
                cfg.num_heads[i],
                window,
                shift,
                roll_first=False,
                table_window=full,
                # released quirk: the first N x N entries of the full window's index
                index_tokens=naive.coords_in(full)[:N],
            )
            same(name, expected)
            h = inter[name]
        if i < cfg.num_stages - 1:
            same(f"{stage}.downsample", naive.v1_merge(params, f"{stage}.downsample.", h))
            h = inter[f"{stage}.downsample"]
    same("backbone.norm", naive.layer_norm(h, params["backbone.norm.weight"], params["backbone.norm.bias"]))
    pooled = inter["backbone.norm"].mean(axis=(1, 2, 3))
    same("pre_logits", pooled)
    same("logits", pooled @ params["cls_head.fc_cls.weight"].T + params["cls_head.fc_cls.bias"])
    return match.worst


BASE = dict(patch_size=(2, 2, 2), embed_dim=6, depths=(2, 2), num_heads=(1, 2), mlp_ratio=2.0, num_classes=5)
CASES = {
    # grid 4x5x7, window 3: shift (1, 1, 1) with every axis padded (4 -> 6 puts the first frame
    # next to padding in one region only if padding comes first); then 4x3x4: H == M clamps (shift 0)
    "shift_all_axes": (dict(window_size=(3, 3, 3)), (8, 10, 14)),
    # one frame of tokens: time clamps to 1; 1x6x6 pads to 1x8x8 with shift (0, 2, 2); then 1x3x3:
    # a spatial clamp, where the released code uses the first 9 x 9 entries of the 2x4x4 index
    "clamped": (dict(window_size=(2, 4, 4)), (2, 12, 12)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_video_intermediate_follows_from_the_previous_by_its_definition(name):
    spec, clip = CASES[name]
    cfg = video.VideoSwinConfig(**BASE, **spec)
    params = swinref.init_params(cfg, seed=1, scheme="random")
    x = np.random.default_rng(2).standard_normal((2, 3, *clip))
    check_video_forward(cfg, params, x)


@given(window=st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4)))
def test_3d_relative_index_is_the_offset_formula(window):
    event(f"{sum(m > 1 for m in window)} axes longer than 1")
    got = np.asarray(relative_position_index(window, xp=np_xp))
    coords = naive.coords_in(window)
    want = np.array([[naive.relative_index(ci, cj, window) for cj in coords] for ci in coords])
    assert np.array_equal(got, want), (
        f"window {window}: index differs at {np.argwhere(got != want)[:3].tolist()}"
    )


@st.composite
def shifted_3d(draw):
    """A (D, H, W) grid padded to the window, a window of 2..4 per axis and a shift in 1..M-1 on
    time (the axis under test) and 0..M-1 elsewhere."""
    window = tuple(draw(st.integers(2, 4), label=f"window {a}") for a in "dhw")
    size = tuple(m * draw(st.integers(1, 3), label=f"windows along {a}") for m, a in zip(window, "dhw"))
    shift = (draw(st.integers(1, window[0] - 1), label="shift d"),) + tuple(
        draw(st.integers(0, m - 1), label=f"shift {a}") for m, a in zip(window[1:], "hw")
    )
    return size, window, shift


@given(case=shifted_3d())
def test_mask_regions_slice_every_axis_time_included(case):
    size, window, shift = case
    event(f"{sum(s > 0 for s in shift)} axes shifted")
    got = np.asarray(region_ids(size, window, shift, xp=np_xp))
    want = np.zeros(size, dtype=np.int64)
    for d in range(size[0]):
        for h in range(size[1]):
            for w in range(size[2]):
                r = [naive.region(q, L, m, s) for q, L, m, s in zip((d, h, w), size, window, shift)]
                want[d, h, w] = 9 * r[0] + 3 * r[1] + r[2]
    assert np.array_equal(got, want), f"{case}: region ids differ at {np.argwhere(got != want)[:3].tolist()}"
    # time is the most significant digit: frames fall into the non-empty slices among
    # [0, D-M), [D-M, D-s), [D-s, D) (the first is empty when one window covers time)
    slices = {int(v) for d in range(size[0]) for v in np.unique(got[d] // 9)}
    expected = {0, 1, 2} if size[0] > window[0] else {1, 2}
    assert slices == expected, f"{case}: time slices {slices}, expected {expected}"


def test_merging_leaves_time_alone():
    rng = np.random.default_rng(3)
    C = 4
    p = {
        "norm.weight": 1 + 0.1 * rng.normal(size=4 * C),
        "norm.bias": 0.1 * rng.normal(size=4 * C),
        "reduction.weight": rng.normal(size=(2 * C, 4 * C)) / 4,
    }
    x = rng.normal(size=(1, 5, 6, 7, C))
    out = np.asarray(video.patch_merging(p, x, xp=np_xp))
    assert out.shape == (1, 5, 3, 4, 2 * C), f"merged shape {out.shape}, expected time 5 kept, (3, 4) spatial"
    y = x.copy()
    y[:, 2] += rng.normal(size=(6, 7, C))
    changed = np.abs(np.asarray(video.patch_merging(p, y, xp=np_xp)) - out).max(axis=(0, 2, 3, 4))
    assert np.array_equal(changed > 0, np.arange(5) == 2), (
        f"changing frame 2 changed frames {np.nonzero(changed)[0]}"
    )
    want = naive.v1_merge(p, "", x)
    assert np.abs(out - want).max() <= 1e-12, (
        "every frame merged like a 2-D grid (LayerNorm(4C), then reduce)"
    )
