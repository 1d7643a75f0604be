"""Video Swin (3D): window geometry, the 27-region mask, the released quirks, and the inflation
identity (a static clip through the inflated 3D model equals the 2D model on its frame).

Geometry tests only move or compare integers and are exact. Model comparisons are float64 and
state their tolerance where they make it.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import event, given
from hypothesis import strategies as st
from strategies_video import (
    InflationCase,
    backend_settings,
    grids3d,
    identity_holds,
    inflation_cases,
    seeds,
    spatial_clamp,
    stage_sizes,
    windows3d,
)

import swinref
from swinref import video
from swinref.core.backend import to_numpy
from swinref.models import video_layouts
from swinref.models.v1 import patch_merging as patch_merging_2d
from swinref.models.video_inflate import inflate_2d

NP = swinref.get_namespace("numpy")


def _assert_equal(got, expected, what):
    got = to_numpy(got)
    assert got.shape == expected.shape, f"{what}: shape {got.shape}, expected {expected.shape}"
    assert np.array_equal(got, expected), (
        f"{what}: {np.sum(got != expected)} of {got.size} values differ; first mismatch at "
        f"{np.argwhere(got != expected)[0].tolist()}"
    )


# ----- window partition / reverse ------------------------------------------------------------
@backend_settings
@given(g=grids3d(), batch=st.integers(1, 2), channels=st.integers(1, 3), seed=seeds)
def test_partition_then_reverse_is_identity(be, g, batch, channels, seed):
    D, H, W = g.size
    x = np.random.default_rng(seed).permutation(batch * D * H * W * channels).astype(np.float64)
    x = x.reshape(batch, D, H, W, channels)  # distinct values: any misplacement shows
    windows = video.window_partition(be.asarray(x), g.window, xp=be.xp)
    N = int(np.prod(g.window))
    nW = D * H * W // N
    assert tuple(windows.shape) == (batch * nW, N, channels), (
        f"partition shape: expected {(batch * nW, N, channels)}, got {tuple(windows.shape)}"
    )
    _assert_equal(video.window_reverse(windows, g.window, D, H, W, xp=be.xp), x, "reverse(partition(x))")


@backend_settings
@given(g=grids3d(), seed=seeds)
def test_partition_order_is_window_then_token_row_major(be, g, seed):
    """Window k, token n holds the grid value at (window origin + offset of n), both row-major."""
    D, H, W = g.size
    Md, Mh, Mw = g.window
    x = np.random.default_rng(seed).permutation(2 * D * H * W).astype(np.float64).reshape(2, D, H, W, 1)
    got = to_numpy(video.window_partition(be.asarray(x), g.window, xp=be.xp))[..., 0]
    b, kd, kh, kw, td, th, tw = np.meshgrid(
        np.arange(2),
        np.arange(D // Md),
        np.arange(H // Mh),
        np.arange(W // Mw),
        np.arange(Md),
        np.arange(Mh),
        np.arange(Mw),
        indexing="ij",
    )
    expected = x[b, kd * Md + td, kh * Mh + th, kw * Mw + tw, 0].reshape(got.shape)
    _assert_equal(got, expected, "window partition order")


def test_partition_rejects_a_grid_that_is_not_a_multiple():
    x = np.zeros((1, 3, 4, 4, 1))
    with pytest.raises(ValueError, match=r"3x4x4 is not a multiple of the window 2x2x2"):
        video.window_partition(NP.asarray(x), (2, 2, 2), xp=NP)


# ----- relative position index ---------------------------------------------------------------
@backend_settings
@given(window=windows3d(max_side=5))
def test_relative_index_range_centre_and_symmetry(be, window):
    Md, Mh, Mw = window
    index = to_numpy(video.relative_position_index(window, xp=be.xp, device=be.device))
    N = Md * Mh * Mw
    size = (2 * Md - 1) * (2 * Mh - 1) * (2 * Mw - 1)
    centre = (Md - 1) * (2 * Mh - 1) * (2 * Mw - 1) + (Mh - 1) * (2 * Mw - 1) + (Mw - 1)
    assert index.shape == (N, N), f"index shape: expected {(N, N)}, got {index.shape}"
    assert index.min() >= 0 and index.max() <= size - 1, (
        f"index range: expected within [0, {size - 1}], got [{index.min()}, {index.max()}]"
    )
    assert centre == (size - 1) // 2, f"centre {centre} is not the middle of {size} rows"
    assert np.all(np.diag(index) == centre), f"diagonal: expected all {centre}, got {np.diag(index)}"
    # offset (i, j) is minus offset (j, i), and the table is laid out symmetric about its centre
    assert np.all(index + index.T == 2 * centre), "index[i, j] + index[j, i] != 2 * centre"


@given(window=windows3d(max_side=5))
def test_relative_index_decodes_to_the_coordinate_offsets(window):
    """Every row of the table means one offset (dd, dh, dw): decoding gives coords(i) - coords(j)."""
    Md, Mh, Mw = window
    index = to_numpy(video.relative_position_index(window, xp=NP))
    coords = np.stack(np.unravel_index(np.arange(Md * Mh * Mw), window), axis=-1)  # (N, 3)
    offsets = coords[:, None, :] - coords[None, :, :]  # (N, N, 3)
    decoded = np.stack(np.unravel_index(index, (2 * Md - 1, 2 * Mh - 1, 2 * Mw - 1)), axis=-1)
    _assert_equal(decoded - np.array([Md - 1, Mh - 1, Mw - 1]), offsets, "decoded offsets")


# ----- the shifted-window mask ---------------------------------------------------------------
def _mask_by_unrolling(size, window, shift):
    """The mask from first principles, without the implementation's labels or partition.

    After rolling by -s, the token at p came from o = (p + s) mod L. Two tokens of one window may
    attend to each other iff they were neighbours in the same way before the roll: on every axis
    o_i - o_j == p_i - p_j (no wrap between them).
    """
    grids = np.meshgrid(*[np.arange(n) for n in size], indexing="ij")
    p = np.stack([g.ravel() for g in grids], axis=-1)  # (L, 3) rolled positions
    o = (p + np.array(shift)) % np.array(size)  # (L, 3) where they came from
    win = p // np.array(window)  # window coordinates of each token
    order = np.lexsort(
        (p[:, 2] % window[2], p[:, 1] % window[1], p[:, 0] % window[0], win[:, 2], win[:, 1], win[:, 0])
    )  # window row-major, then token row-major
    N = int(np.prod(window))
    p, o = p[order].reshape(-1, N, 3), o[order].reshape(-1, N, 3)
    same = np.all((o[:, :, None] - o[:, None, :]) == (p[:, :, None] - p[:, None, :]), axis=-1)
    return np.where(same, 0.0, -100.0)  # (nW, N, N)


@backend_settings
@given(g=grids3d())
def test_mask_equals_the_unrolled_region_labelling(be, g):
    got = video.shift_mask(g.size, g.window, g.shift, xp=be.xp, device=be.device)
    _assert_equal(got, _mask_by_unrolling(g.size, g.window, g.shift), f"mask for {g}")


@backend_settings
@given(g=grids3d())
def test_region_count_is_the_product_of_slices_per_axis(be, g):
    """Per axis: 1 region without shift, 2 when the axis is a single window, else 3 (up to 27)."""
    labels = to_numpy(video.region_ids(g.size, g.window, g.shift, xp=be.xp, device=be.device))
    expected = 1
    for L, M, s in zip(g.size, g.window, g.shift):
        expected *= 1 if s == 0 else (2 if L == M else 3)
    got = len(np.unique(labels))
    assert got == expected, f"{g}: expected {expected} regions, got {got}"
    assert labels.min() >= 0 and labels.max() < 27, f"labels outside [0, 27): {np.unique(labels)}"


# ----- window clamp and the released bias quirk ----------------------------------------------
@pytest.mark.parametrize(
    "resolution, window, shift, expected",
    [
        ((8, 56, 56), (8, 7, 7), (4, 3, 3), ((8, 7, 7), (0, 3, 3))),  # <=: D == Md is clamped
        ((16, 7, 7), (8, 7, 7), (4, 3, 3), ((8, 7, 7), (4, 0, 0))),  # last stage of Swin-T at 224
        ((4, 14, 5), (8, 7, 7), (4, 3, 3), ((4, 7, 5), (0, 3, 0))),
        ((9, 8, 8), (8, 7, 7), (4, 3, 3), ((8, 7, 7), (4, 3, 3))),
    ],
)
def test_get_window_size_clamps_per_dimension_with_le(resolution, window, shift, expected):
    got = video.get_window_size(resolution, window, shift)
    assert got == expected, f"get_window_size{resolution, window, shift}: expected {expected}, got {got}"


def _proper_rows(clamped, full):
    """Table rows of the clamped window's own pairs, in the full window's table layout."""
    coords = np.stack(np.unravel_index(np.arange(int(np.prod(clamped))), clamped), axis=-1)
    off = coords[:, None, :] - coords[None, :, :] + (np.array(full) - 1)
    Md, Mh, Mw = full
    return off[..., 0] * (2 * Mh - 1) * (2 * Mw - 1) + off[..., 1] * (2 * Mw - 1) + off[..., 2]


@pytest.mark.parametrize(
    "full, clamped, pairs_are_right",
    [
        ((8, 7, 7), (4, 7, 7), True),  # temporal clamp only: time is the outermost axis
        ((4, 3, 3), (1, 3, 3), True),
        ((8, 7, 7), (8, 4, 7), False),  # spatial clamp: the first N tokens are other tokens
        ((2, 3, 3), (2, 3, 2), False),
        ((4, 3, 3), (2, 2, 2), False),
    ],
)
def test_clamped_window_takes_the_first_entries_of_the_full_index(full, clamped, pairs_are_right):
    nH = 2
    rows = (2 * full[0] - 1) * (2 * full[1] - 1) * (2 * full[2] - 1)
    table = np.arange(rows * nH, dtype=np.float64).reshape(rows, nH)  # row r -> values 2r, 2r+1
    N = int(np.prod(clamped))
    bias = to_numpy(video.relative_position_bias(NP.asarray(table), full, N, xp=NP))  # (nH, N, N)
    first = to_numpy(video.relative_position_index(full, xp=NP))[:N, :N]
    _assert_equal(bias[0], 2.0 * first, "bias gathers index_full[:N, :N]")
    same = np.array_equal(first, _proper_rows(clamped, full))
    assert same == pairs_are_right, (
        f"full {full}, clamped {clamped}: expected the first-N rows to "
        f"{'equal' if pairs_are_right else 'differ from'} the clamped window's own pairs"
    )


# ----- components ----------------------------------------------------------------------------
@given(
    patch=st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4)),
    thw=st.tuples(st.integers(1, 7), st.integers(1, 9), st.integers(1, 9)),
    cin=st.integers(1, 3),
    cout=st.integers(1, 4),
    seed=seeds,
)
def test_patch_embed_equals_a_padded_conv3d(patch, thw, cin, cout, seed):
    """Reshape + matmul with end padding equals torch's conv3d (kernel = stride) on the padded clip.

    Tolerance 1e-13: both sum Cin*Pt*Ph*Pw <= 144 products of O(1) numbers in float64 in
    different orders; the rounding difference is a few ULP of the sum.
    """
    thw = tuple(max(a, p) for a, p in zip(thw, patch))  # at least one patch per axis
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, cin) + thw)
    weight, bias = rng.standard_normal((cout, cin) + patch), rng.standard_normal(cout)
    got = video.patch_embed(
        {"proj.weight": NP.asarray(weight), "proj.bias": NP.asarray(bias)},
        NP.asarray(x),
        patch_size=patch,
        patch_norm=False,
        xp=NP,
    )
    pads = [(-n) % p for n, p in zip(thw, patch)]
    padded = torch.nn.functional.pad(torch.from_numpy(x), (0, pads[2], 0, pads[1], 0, pads[0]))
    ref = (
        torch.nn.functional.conv3d(padded, torch.from_numpy(weight), torch.from_numpy(bias), stride=patch)
        .permute(0, 2, 3, 4, 1)
        .numpy()
    )
    assert got.shape == ref.shape, f"shape: expected {ref.shape}, got {got.shape}"
    err = np.max(np.abs(np.asarray(got) - ref))
    assert err <= 1e-13, f"patch embed vs conv3d: max abs diff {err:.3e} > 1e-13"


@given(D=st.integers(1, 3), H=st.integers(1, 6), W=st.integers(1, 6), seed=seeds)
def test_patch_merging_is_the_2d_merge_on_every_frame(D, H, W, seed):
    rng = np.random.default_rng(seed)
    C = 3
    x = rng.standard_normal((2, D, H, W, C))
    p = {
        "norm.weight": NP.asarray(rng.standard_normal(4 * C)),
        "norm.bias": NP.asarray(rng.standard_normal(4 * C)),
        "reduction.weight": NP.asarray(rng.standard_normal((2 * C, 4 * C))),
    }
    got = np.asarray(video.patch_merging(p, NP.asarray(x), xp=NP))
    for t in range(D):
        ref = np.asarray(patch_merging_2d(p, NP.asarray(x[:, t]), xp=NP))
        # the same arithmetic on the same numbers; only the matmul layout may differ by an ULP
        err = np.max(np.abs(got[:, t] - ref))
        assert err <= 1e-14, f"frame {t}: merge differs from the 2D merge by {err:.3e}"


# ----- configs and params --------------------------------------------------------------------
def test_swin_t_parameter_count_follows_from_the_2d_count():
    """Video Swin-T = 2D Swin-T (28,288,354, timm) with a 400-class head, bias tables grown from
    13*13 to 15*13*13 rows and a conv two frames deep."""
    cfg = video.VideoSwinConfig.named("swin_t")
    shapes = video.param_shapes(cfg)
    got = sum(int(np.prod(s)) for s in shapes.values())
    head = (1000 - 400) * (768 + 1)
    tables = (15 - 1) * 13 * 13 * sum(d * h for d, h in zip((2, 2, 6, 2), (3, 6, 12, 24)))
    conv = 96 * 3 * 4 * 4 * (2 - 1)
    expected = 28_288_354 - head + tables + conv
    assert got == expected, f"Video Swin-T params: expected {expected:,}, got {got:,}"


@pytest.mark.parametrize(
    "name, embed_dim, window, classes",
    [
        ("swin_t", 96, (8, 7, 7), 400),
        ("swin_s", 96, (8, 7, 7), 400),
        ("swin_b", 128, (8, 7, 7), 400),
        ("swin_b_sthv2", 128, (16, 7, 7), 174),
    ],
)
def test_named_configs(name, embed_dim, window, classes):
    cfg = video.VideoSwinConfig.named(name)
    got = (cfg.embed_dim, cfg.window_size, cfg.num_classes, cfg.patch_size)
    assert got == (embed_dim, window, classes, (2, 4, 4)), f"{name}: got {got}"


# ----- the model on every backend ------------------------------------------------------------
_TINY = video.VideoSwinConfig(
    embed_dim=8, depths=(2, 1), num_heads=(2, 4), window_size=(2, 2, 3), num_classes=5, in_chans=2
)


def test_forward_agrees_on_every_backend(be):
    """Odd sizes (padding everywhere), clamps and shifts; float64 on every backend vs NumPy.

    Tolerance 1e-12: the same float64 formulas; backends differ only in summation order
    (measured differences are ~1e-15 on O(1) outputs).
    """
    params = video.init_params(_TINY, seed=1)
    x = np.random.default_rng(2).standard_normal((2, 2, 7, 13, 22))
    ref, ref_inter = video.forward(
        {k: NP.asarray(v) for k, v in params.items()}, NP.asarray(x), _TINY, return_intermediates=True
    )
    moved = swinref.to_namespace(params, be.xp, device=be.device)
    got, inter = video.forward(moved, be.asarray(x), _TINY, return_intermediates=True)
    assert list(inter) == list(ref_inter), f"intermediate names: {list(inter)} vs {list(ref_inter)}"
    for name in ref_inter:
        a, e = to_numpy(inter[name]), np.asarray(ref_inter[name])
        assert a.shape == e.shape, f"{name}: shape {a.shape}, expected {e.shape}"
        err = np.max(np.abs(a - e))
        assert err <= 1e-12, f"{be.name} {name}: max abs diff {err:.3e} vs numpy > 1e-12"


def test_intermediates_are_named_by_module_path():
    params = {k: NP.asarray(v) for k, v in video.init_params(_TINY, seed=0).items()}
    x = NP.asarray(np.zeros((1, 2, 4, 16, 24)))
    logits, inter = video.forward(params, x, _TINY, return_intermediates=True)
    expected = {
        "backbone.patch_embed": (1, 2, 4, 6, 8),
        "backbone.layers.0.blocks.0": (1, 2, 4, 6, 8),
        "backbone.layers.0.blocks.1": (1, 2, 4, 6, 8),
        "backbone.layers.0.downsample": (1, 2, 2, 3, 16),
        "backbone.layers.0": (1, 2, 2, 3, 16),
        "backbone.layers.1.blocks.0": (1, 2, 2, 3, 16),
        "backbone.layers.1": (1, 2, 2, 3, 16),
        "backbone.norm": (1, 2, 2, 3, 16),
        "pre_logits": (1, 16),
        "logits": (1, 5),
    }
    got = {k: tuple(v.shape) for k, v in inter.items()}
    assert got == expected, f"intermediates: expected {expected}, got {got}"
    assert tuple(logits.shape) == (1, 5), f"logits shape {tuple(logits.shape)}, expected (1, 5)"


# ----- the inflation identity ----------------------------------------------------------------
def _configs(case):
    H, W = case.tokens_hw
    cfg2d = swinref.SwinConfig(
        img_size=(H * case.patch, W * case.patch),
        patch_size=case.patch,
        in_chans=case.in_chans,
        num_classes=case.num_classes,
        embed_dim=case.embed_dim,
        depths=case.depths,
        num_heads=case.num_heads,
        window_size=case.window[1:],
        qkv_bias=case.qkv_bias,
        patch_norm=case.patch_norm,
    )
    cfg3d = video.VideoSwinConfig(
        patch_size=(case.patch_t, case.patch, case.patch),
        in_chans=case.in_chans,
        embed_dim=case.embed_dim,
        depths=case.depths,
        num_heads=case.num_heads,
        window_size=case.window,
        qkv_bias=case.qkv_bias,
        patch_norm=case.patch_norm,
        num_classes=case.num_classes,
    )
    return cfg2d, cfg3d


def _strong_params(cfg2d, seed):
    """2D params far from the init (std 0.02 would make attention almost uniform and hide errors):
    weights ~ N(0, 1/fan_in), bias tables ~ N(0, 1), norm weights ~ 1 + N(0, 0.2), biases N(0, 0.2)."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in swinref.param_shapes(cfg2d).items():
        if name.endswith("relative_position_bias_table"):
            out[name] = rng.standard_normal(shape)
        elif name.endswith("weight") and len(shape) >= 2:
            out[name] = rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))
        elif name.endswith("weight"):
            out[name] = 1.0 + 0.2 * rng.standard_normal(shape)
        else:
            out[name] = 0.2 * rng.standard_normal(shape)
    return out


def _record_geometry(case):
    """Hypothesis events: which of the conditions in docs/video.md an example exercises."""
    D, Md = case.temporal_tokens, case.window[0]
    event(
        "time: "
        + (
            "clamped, D < Md"
            if D < Md
            else "D == Md"
            if D == Md
            else "shifted, D multiple of Md"
            if D % Md == 0
            else "padded"
        )
    )
    shifted_pad = exact_fit = False
    for r_h, r_w, depth in zip(
        stage_sizes(case.tokens_hw[0], len(case.depths)),
        stage_sizes(case.tokens_hw[1], len(case.depths)),
        case.depths,
    ):
        for r, M in ((r_h, case.window[1]), (r_w, case.window[2])):
            shifted_pad |= depth >= 2 and r > M and r % M != 0
            exact_fit |= r == M
    event(f"space: padding under a shift {shifted_pad}, a stage exactly one window wide {exact_fit}")


def _identity_error(case, seed):
    """Largest |3D - 2D| over every compared output, and the name of the 3D output where it is."""
    cfg2d, cfg3d = _configs(case)
    p2 = _strong_params(cfg2d, seed)
    p3 = inflate_2d(p2, cfg2d, cfg3d)
    B, Cin, T, H, W = case.video_shape
    frame = np.random.default_rng(seed + 1).standard_normal((B, Cin, H, W))
    clip = np.repeat(frame[:, :, None], T, axis=2)  # (B, Cin, T, H, W), every frame the same
    _, inter2 = swinref.forward(
        {k: NP.asarray(v) for k, v in p2.items()}, NP.asarray(frame), cfg2d, return_intermediates=True
    )
    _, inter3 = video.forward(
        {k: NP.asarray(v) for k, v in p3.items()}, NP.asarray(clip), cfg3d, return_intermediates=True
    )
    pairs = [("patch_embed", "backbone.patch_embed")]
    for i, depth in enumerate(case.depths):
        pairs += [(f"layers.{i}.blocks.{j}", f"backbone.layers.{i}.blocks.{j}") for j in range(depth)]
    pairs += [("norm", "backbone.norm"), ("pre_logits", "pre_logits")]
    if case.num_classes:
        pairs.append(("logits", "logits"))
    worst = (0.0, "")
    for n2, n3 in pairs:
        a2, a3 = np.asarray(inter2[n2]), np.asarray(inter3[n3])
        if a3.ndim == 5:  # (B, D, H, W, C): every temporal token against the frame's output
            assert a3.shape[1] == case.temporal_tokens, (
                f"{n3}: {a3.shape[1]} temporal tokens, expected {case.temporal_tokens}"
            )
            a2 = np.broadcast_to(a2[:, None], a3.shape)
        assert a2.shape == a3.shape, f"{n3}: shape {a3.shape}, 2D {n2} has {a2.shape}"
        worst = max(worst, (float(np.max(np.abs(a3 - a2))), n3))
    return worst


@given(case=inflation_cases(identity=True), seed=seeds)
def test_static_clip_through_inflated_model_equals_2d_model(case, seed):
    """Where docs/video.md says it holds, the 3D model on a static clip is the 2D model on the
    frame: patch embedding, every block of every stage (each temporal token), the final norm,
    the pooled features and the logits.

    Tolerance 1e-10 (float64, outputs O(1)): the two compute the same sums in different orders (a
    softmax over Md copies of each key, a conv over Pt equal frames divided by Pt), which moves
    values by a few ULP per layer (measured <= 4e-15); masked terms (exp(-100) ~ 4e-44 relative)
    also differ and are negligible.
    """
    _record_geometry(case)
    err, where = _identity_error(case, seed)
    assert err <= 1e-10, f"{case}: 3D vs 2D max abs diff {err:.3e} at {where} > 1e-10"


@given(case=inflation_cases(identity=None), seed=seeds)
def test_identity_holds_exactly_where_docs_say(case, seed):
    """For any size: equal to 1e-10 where :func:`identity_holds` says so, visibly different
    (> 1e-6) elsewhere; where a stage is narrower than the window, inflation is refused.

    The 1e-6 floor is four orders above the identity's tolerance and far below the O(0.1-1)
    differences a broken condition makes with these weights (see the probes in docs/video.md).
    """
    H, W = case.tokens_hw
    stages = len(case.depths)
    if spatial_clamp(H, case.window[1], stages) or spatial_clamp(W, case.window[2], stages):
        cfg2d, cfg3d = _configs(case)
        with pytest.raises(ValueError, match="clamps this stage's window"):
            inflate_2d(_strong_params(cfg2d, seed), cfg2d, cfg3d)
        return
    _record_geometry(case)
    err, where = _identity_error(case, seed)
    event(f"identity holds: {identity_holds(case)}")
    if identity_holds(case):
        assert err <= 1e-10, f"{case}: identity should hold, max abs diff {err:.3e} at {where}"
    else:
        assert err > 1e-6, f"{case}: identity should fail, but max abs diff is only {err:.3e}"


def _case(**changes):
    base = dict(
        embed_dim=4,
        depths=(2, 2),
        num_heads=(1, 2),
        patch=2,
        patch_t=2,
        window=(2, 2, 2),
        frames=4,
        tokens_hw=(8, 8),
        in_chans=2,
        num_classes=3,
        qkv_bias=True,
        patch_norm=True,
        batch=1,
    )
    base.update(changes)
    return InflationCase(**base)


@pytest.mark.parametrize(
    "why, case",
    [
        ("baseline: the identity holds", _case()),
        ("temporal clamp: D = 1 < Md, the quirk takes the right pairs", _case(frames=2, window=(4, 2, 2))),
        ("padding p = M / 2 = s under a shift: wrapped tokens stay one region", _case(tokens_hw=(9, 8))),
        ("frames not a multiple of Pt: the last token embeds a zero frame", _case(frames=5)),
        ("D > Md, not a multiple: padding tokens join the last window", _case(frames=6)),
        (
            "padding p != M / 2 under a shift: 3D pads then rolls, 2D rolls then pads",
            _case(window=(2, 3, 3), tokens_hw=(7, 9), depths=(2, 1)),
        ),
    ],
)
def test_identity_examples(why, case):
    """Readable instances of the conditions in docs/video.md (the property above draws them)."""
    err, where = _identity_error(case, 0)
    expected = identity_holds(case)
    assert expected == (why.startswith(("baseline", "temporal clamp", "padding p = "))), (
        f"{why}: identity_holds says {expected}"
    )
    if expected:
        assert err <= 1e-10, f"{why}: diff {err:.3e} at {where} > 1e-10"
    else:
        assert err > 1e-4, f"{why}: expected a visible difference, got {err:.3e} at {where}"


def test_inflated_weights_follow_the_released_recipe():
    case = _case()
    cfg2d, cfg3d = _configs(case)
    p2 = _strong_params(cfg2d, 3)
    p3 = inflate_2d(p2, cfg2d, cfg3d)
    conv = p3["backbone.patch_embed.proj.weight"]
    assert conv.shape == (4, 2, 2, 2, 2), f"conv shape {conv.shape}"
    for t in range(2):  # each time step is the 2D kernel / Pt (exact: division by 2)
        _assert_equal(conv[:, :, t], p2["patch_embed.proj.weight"] / 2, f"conv time step {t}")
    table2 = p2["layers.1.blocks.0.attn.relative_position_bias_table"]
    table3 = p3["backbone.layers.1.blocks.0.attn.relative_position_bias_table"]
    _assert_equal(table3, np.concatenate([table2] * 3), "table repeated over 2*Md-1 = 3 offsets")
    _assert_equal(
        p3["backbone.layers.0.downsample.reduction.weight"],
        p2["layers.1.downsample.reduction.weight"],
        "merge moved to the end of stage 0",
    )
    _assert_equal(p3["cls_head.fc_cls.weight"], p2["head.fc.weight"], "head copied")
    assert set(p3) == set(video.param_shapes(cfg3d)), "inflated names differ from param_shapes"


def test_inflating_to_another_class_count_draws_a_new_head():
    case = _case()
    cfg2d, cfg3d = _configs(case)
    p3 = inflate_2d(_strong_params(cfg2d, 0), cfg2d, dataclasses.replace(cfg3d, num_classes=7))
    assert p3["cls_head.fc_cls.weight"].shape == (7, 8), "new head shape"
    assert np.all(p3["cls_head.fc_cls.bias"] == 0), "new head bias must start at zero"


# ----- bad input -----------------------------------------------------------------------------
def _tiny_params():
    return {k: NP.asarray(v) for k, v in video.init_params(_TINY, seed=0).items()}


@pytest.mark.parametrize(
    "shape, message",
    [
        ((1, 2, 16, 16), r"rank 5, \(B, 2, T, H, W\); got shape \(1, 2, 16, 16\).*add a time axis"),
        ((1, 2, 4, 16, 16, 1), r"rank 5, \(B, 2, T, H, W\)"),
        ((1, 3, 4, 16, 16), r"3 channels, config expects in_chans=2: shape must be \(B, 2, T, H, W\)"),
        ((1, 2, 1, 16, 16), r"T=1, fewer than one patch \(T >= 2 needed"),
        ((1, 2, 4, 3, 16), r"H=3, fewer than one patch \(H >= 4 needed"),
        ((0, 2, 4, 16, 16), r"batch is empty"),
    ],
)
def test_bad_video_shape_is_named(shape, message):
    with pytest.raises(ValueError, match=message):
        video.forward(_tiny_params(), NP.asarray(np.zeros(shape)), _TINY)


def test_integer_video_is_rejected():
    with pytest.raises(TypeError, match="float32 or float64"):
        video.forward(_tiny_params(), NP.asarray(np.zeros((1, 2, 4, 8, 8), dtype=np.int64)), _TINY)


def test_missing_and_misshaped_params_are_listed():
    params = _tiny_params()
    del params["backbone.norm.bias"]
    params["cls_head.fc_cls.weight"] = NP.asarray(np.zeros((4, 16)))
    message = r"(?s)missing \(1\):\n    backbone.norm.bias.*fc_cls.weight: got \(4, 16\), expected \(5, 16\)"
    with pytest.raises(ValueError, match=message):
        video.forward(params, NP.asarray(np.zeros((1, 2, 4, 8, 8))), _TINY)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(window_size=(8, 7)), "window_size must be an int or a triple"),
        (dict(patch_size=(0, 4, 4)), "patch_size must be >= 1"),
        (dict(depths=(2, 2), num_heads=(3,)), "depths has 2 stages but num_heads has 1"),
        (
            dict(embed_dim=10, num_heads=(3, 6, 12, 24)),
            r"stage 0 width 10 \(embed_dim \* 2\*\*0\) is not divisible by num_heads\[0\] = 3",
        ),
    ],
)
def test_bad_config_is_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        video.VideoSwinConfig(**kwargs)


def test_unknown_named_model_lists_the_names():
    with pytest.raises(ValueError, match="unknown video model 'swin_x'.*swin_t"):
        video.VideoSwinConfig.named("swin_x")


def test_inflating_from_a_different_2d_model_names_each_mismatch():
    cfg2d = swinref.SwinConfig.named("swin_t")
    cfg3d = video.VideoSwinConfig.named("swin_b")
    with pytest.raises(ValueError, match=r"(?s)embed_dim 128 vs 2D embed_dim 96.*num_heads"):
        inflate_2d({}, cfg2d, cfg3d)


def test_inflating_incomplete_2d_params_names_what_is_missing():
    case = _case()
    cfg2d, cfg3d = _configs(case)
    params = _strong_params(cfg2d, 0)
    del params["layers.1.downsample.norm.weight"]
    with pytest.raises(ValueError, match="lack 1 entries.*layers.1.downsample.norm.weight"):
        inflate_2d(params, cfg2d, cfg3d)


def _released_state_dict(cfg, seed=0):
    """A state dict laid out like a released checkpoint: params plus every block's persistent
    relative_position_index buffer (int64, of the configured window)."""
    sd = {k: torch.from_numpy(v) for k, v in video.init_params(cfg, seed=seed).items()}
    index = torch.from_numpy(np.asarray(video.relative_position_index(cfg.window_size, xp=NP)))
    for i, depth in enumerate(cfg.depths):
        for j in range(depth):
            sd[f"backbone.layers.{i}.blocks.{j}.attn.relative_position_index"] = index.clone()
    return sd


def test_released_state_dict_converts_and_runs():
    sd = _released_state_dict(_TINY)
    params = video_layouts.convert_state_dict(sd, _TINY)
    assert list(params) == list(video.param_shapes(_TINY)), "converted names in param_shapes order"
    for name, value in params.items():
        _assert_equal(value, sd[name].numpy(), name)
    logits = video.forward(params, np.zeros((1, 2, 2, 8, 12)), _TINY)
    assert tuple(logits.shape) == (1, 5), f"logits shape {tuple(logits.shape)}, expected (1, 5)"


def test_state_dict_problems_are_listed_together():
    sd = _released_state_dict(_TINY)
    sd["backbone.layers.1.blocks.0.attn.relative_position_index"] += 1
    sd["backbone.extra.weight"] = torch.zeros(3)
    del sd["cls_head.fc_cls.bias"]
    with pytest.raises(
        swinref.WeightsError,
        match=r"(?s)missing \(1\):\n    cls_head.fc_cls.bias.*"
        r"unexpected \(1\):\n    backbone.extra.weight.*"
        r"blocks.0.attn.relative_position_index: stored index differs",
    ):
        video_layouts.convert_state_dict(sd, _TINY)
