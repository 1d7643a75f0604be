"""Swin V2 components and their properties, on every backend; configs, params and bad input.

The cross-checks against timm, torchvision and transformers are in test_crosscheck_v2.py; here each
V2 ingredient is checked against a direct NumPy statement of its formula.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from conftest import assert_close
from hypothesis import HealthCheck, given, settings
from strategies import v2_logit_scales, v2_query_rows, v2_windows

import swinref
from swinref import v2

# fixtures do not change between hypothesis examples here (a backend is a constant namespace)
fixture_ok = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])

# A model small enough for every backend: grids 8 -> 4 with window 3, so stage 1 pads (8 -> 9)
# and shifts, stage 2 pads (4 -> 6) and shifts; stage 1 has a pre-training window.
SMALL = v2.SwinV2Config(
    img_size=32,
    embed_dim=8,
    depths=(2, 2),
    num_heads=(2, 4),
    window_size=3,
    pretrained_window_sizes=(5, 0),
    num_classes=5,
)


def _np_normalize(x):
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _np_coords(window, pretrained):
    """The coordinate table written out in float64: f(t) = sign(8t) log2(|8t| + 1) / 3."""
    ref = pretrained if pretrained[0] > 0 else window
    axes = [np.arange(-(m - 1), m) / max(r - 1, 1) * 8.0 for m, r in zip(window, ref)]
    dh, dw = np.meshgrid(*axes, indexing="ij")
    t = np.stack([dh.ravel(), dw.ravel()], axis=-1)
    return np.sign(t) * np.log2(np.abs(t) + 1.0) / 3.0


def _np_index(window):
    Mh, Mw = window
    coords = [(h, w) for h in range(Mh) for w in range(Mw)]
    return np.array(
        [[(hi - hj + Mh - 1) * (2 * Mw - 1) + (wi - wj + Mw - 1) for hj, wj in coords] for hi, wi in coords]
    )


def _np_layer_norm(x, w, b):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + 1e-5) * w + b


@given(case=v2_query_rows())
def test_query_rows_strategy_marks_its_zero_rows(case):
    x, zero = case
    assert np.all(x[zero] == 0), f"rows marked zero are {x[zero]}"
    assert np.all(np.any(x[~zero] != 0, axis=-1)), f"unmarked rows must be nonzero, got {x[~zero]}"


# ----- cosine attention ingredients ----------------------------------------------------------------
def test_normalize_maps_zero_vectors_to_zero(be):
    x = np.zeros((3, 4))
    x[1] = [3.0, 4.0, 0.0, 0.0]
    got = swinref.to_numpy(v2.l2_normalize(be.asarray(x), xp=be.xp))
    assert np.all(np.isfinite(got)), f"normalize of a zero vector gave {got[0]}, expected zeros"
    assert np.array_equal(got[[0, 2]], np.zeros((2, 4))), f"zero rows became {got[[0, 2]]}, expected 0"
    assert_close(got[1], [0.6, 0.8, 0.0, 0.0], atol=1e-15, what="unit vector of (3, 4, 0, 0)")


@fixture_ok
@given(case=v2_query_rows())
def test_normalize_is_x_over_max_norm_eps(be, case):
    x, zero = case
    got = swinref.to_numpy(v2.l2_normalize(be.asarray(x), xp=be.xp))
    assert_close(got, _np_normalize(x), atol=0, rtol=1e-14, what="x / max(||x||, 1e-12)")
    norms = np.linalg.norm(got[~zero], axis=-1)
    assert np.allclose(norms, 1.0, atol=1e-14), f"row norms {norms}, expected 1"


@fixture_ok
@given(scale=v2_logit_scales())
def test_logit_scale_is_clamped_at_100(be, scale):
    got = swinref.to_numpy(v2.logit_scale({"logit_scale": be.asarray(scale)}, xp=be.xp))
    want = np.exp(np.minimum(scale, math.log(1 / 0.01)))
    assert_close(got, want, atol=0, rtol=1e-15, what="exp(min(logit_scale, log 100))")
    assert np.all(got <= 100.0 * (1 + 1e-15)), f"temperature {got.max()} above 100"


@fixture_ok
@given(case=v2_windows())
def test_coords_table_matches_formula(be, case):
    window, pretrained = case
    got = swinref.to_numpy(v2.relative_coords_table(window, pretrained, xp=be.xp, device=be.device))
    want = _np_coords(window, pretrained)
    assert got.dtype == np.float32, f"table dtype {got.dtype}, expected float32 like every port"
    # the port builds it in float32: three float32 roundings of values below 1.5 stay within 4e-7
    assert_close(got, want, atol=4e-7, what=f"coords table window {window} pretrained {pretrained}")
    assert np.array_equal(got, -got[::-1]), "the table must be odd: row -(dh, dw) = -row (dh, dw)"


@pytest.mark.parametrize(
    "window,pretrained", [((4, 4), (0, 0)), ((3, 5), (0, 0)), ((6, 6), (4, 4)), ((1, 1), (0, 0))]
)
def test_continuous_position_bias_matches_formula(be, window, pretrained):
    rng = np.random.default_rng(0)
    nH = 3
    p = {
        "cpb_mlp.0.weight": rng.normal(size=(512, 2)),
        "cpb_mlp.0.bias": rng.normal(size=512),
        "cpb_mlp.2.weight": rng.normal(size=(nH, 512)) / 20,
    }
    coords = _np_coords(window, pretrained).astype(np.float32).astype(np.float64)
    index = _np_index(window)
    table = np.maximum(coords @ p["cpb_mlp.0.weight"].T + p["cpb_mlp.0.bias"], 0) @ p["cpb_mlp.2.weight"].T
    want = 16 / (1 + np.exp(-table[index].transpose(2, 0, 1)))  # (nH, N, N)
    got = v2.continuous_position_bias(
        {k: be.asarray(v) for k, v in p.items()},
        be.asarray(coords),
        be.asarray(index),
        num_heads=nH,
        xp=be.xp,
    )
    assert_close(got, want, atol=1e-12, what="16 * sigmoid(cpb_mlp(coords))[index]")
    assert np.all((swinref.to_numpy(got) > 0) & (swinref.to_numpy(got) < 16)), "bias outside (0, 16)"


def test_window_attention_matches_direct_formula(be):
    """One shifted window set: q/v bias with zero k bias, cosine logits, cpb, mask added once/twice."""
    rng = np.random.default_rng(1)
    B_, M, C, nH = 4, (2, 3), 6, 2
    N, d = M[0] * M[1], C // nH
    p = {
        "qkv.weight": rng.normal(size=(3 * C, C)),
        "q_bias": rng.normal(size=C),
        "v_bias": rng.normal(size=C),
        "logit_scale": np.array([[[1.0]], [[6.0]]]),
        "cpb_mlp.0.weight": rng.normal(size=(512, 2)),
        "cpb_mlp.0.bias": rng.normal(size=512),
        "cpb_mlp.2.weight": rng.normal(size=(nH, 512)) / 20,
        "proj.weight": rng.normal(size=(C, C)),
        "proj.bias": rng.normal(size=C),
    }
    x = rng.normal(size=(B_, N, C))
    x[0, -1] = 0.0  # a padded token: its k is exactly zero
    mask = np.where(rng.random((2, N, N)) < 0.3, -100.0, 0.0)
    qkv = x @ p["qkv.weight"].T + np.concatenate([p["q_bias"], np.zeros(C), p["v_bias"]])
    q, k, v = qkv.reshape(B_, N, 3, nH, d).transpose(2, 0, 3, 1, 4)
    cos = _np_normalize(q) @ _np_normalize(k).transpose(0, 1, 3, 2)
    coords = _np_coords(M, (0, 0)).astype(np.float32).astype(np.float64)
    table = np.maximum(coords @ p["cpb_mlp.0.weight"].T + p["cpb_mlp.0.bias"], 0) @ p["cpb_mlp.2.weight"].T
    bias = 16 / (1 + np.exp(-table[_np_index(M)].transpose(2, 0, 1)))
    for repeats in (1, 2):
        logits = cos * np.exp(np.minimum(p["logit_scale"], math.log(100))) + bias
        logits = (logits.reshape(2, 2, nH, N, N) + repeats * mask[None, :, None]).reshape(B_, nH, N, N)
        attn = np.exp(logits - logits.max(-1, keepdims=True))
        attn /= attn.sum(-1, keepdims=True)
        want = (attn @ v).transpose(0, 2, 1, 3).reshape(B_, N, C) @ p["proj.weight"].T + p["proj.bias"]
        got = v2.window_attention(
            {k_: be.asarray(a) for k_, a in p.items()},
            be.asarray(x),
            num_heads=nH,
            window=M,
            mask=be.asarray(mask),
            mask_repeats=repeats,
            xp=be.xp,
        )
        assert_close(got, want, atol=1e-11, what=f"V2 window attention, mask added {repeats}x")


def test_patch_merging_reduces_before_norm(be):
    rng = np.random.default_rng(2)
    B, H, W, C = 2, 5, 4, 3  # odd H: padded with a zero row first
    x = rng.normal(size=(B, H, W, C))
    p = {
        "reduction.weight": rng.normal(size=(2 * C, 4 * C)),
        "norm.weight": rng.normal(size=2 * C),
        "norm.bias": rng.normal(size=2 * C),
    }
    xpad = np.concatenate([x, np.zeros((B, 1, W, C))], axis=1)
    cat = np.concatenate(
        [xpad[:, 0::2, 0::2], xpad[:, 1::2, 0::2], xpad[:, 0::2, 1::2], xpad[:, 1::2, 1::2]], axis=-1
    )  # the official x0, x1, x2, x3 order
    want = _np_layer_norm(cat @ p["reduction.weight"].T, p["norm.weight"], p["norm.bias"])
    got = v2.patch_merging({k: be.asarray(v) for k, v in p.items()}, be.asarray(x), xp=be.xp)
    assert_close(got, want, atol=1e-12, what="V2 merge: Linear(4C -> 2C), then LayerNorm(2C)")
    v1_order = _np_layer_norm(cat, np.ones(4 * C), np.zeros(4 * C)) @ p["reduction.weight"].T
    assert np.abs(v1_order - want).max() > 0.1, "the test cannot tell the two orders apart"


# ----- blocks and the whole model ----------------------------------------------------------------
def test_timm_init_makes_every_block_the_identity():
    """Post-norm with zero-initialised norm1/norm2 (timm's res-post-norm init): x passes unchanged.

    A pre-norm (V1) block would add proj.bias and fc2.bias, which the random scheme makes nonzero;
    here those biases are set nonzero on purpose.
    """
    params = v2.init_params(SMALL, seed=0)
    for name in params:
        if name.endswith(("attn.proj.bias", "mlp.fc2.bias")):
            params[name] = np.full_like(params[name], 0.5)
    x = np.random.default_rng(3).standard_normal((1, 3, 32, 32))
    _, inter = v2.forward(params, x, SMALL, return_intermediates=True)
    for i, depth in enumerate(SMALL.depths):
        start = inter["patch_embed"] if i == 0 else inter[f"layers.{i}.downsample"]
        assert np.array_equal(inter[f"layers.{i}.blocks.{depth - 1}"], start), (
            f"stage {i}: blocks changed x although norm1/norm2 are zero"
        )


def test_forward_agrees_across_backends(be):
    params = v2.init_params(SMALL, seed=4, scheme="random")
    x = np.random.default_rng(5).standard_normal((2, 3, 32, 32))
    want, want_inter = v2.forward(params, x, SMALL, return_intermediates=True)
    got, inter = v2.forward(
        swinref.to_namespace(params, be.xp, device=be.device), be.asarray(x), SMALL, return_intermediates=True
    )
    assert list(inter) == list(want_inter), f"intermediate names {list(inter)}, expected {list(want_inter)}"
    # float64 with different BLAS / libm: rounding only, 1e-10 as in the cross-checks
    for name in ("layers.0", "layers.1", "logits"):
        assert_close(inter[name], want_inter[name], atol=1e-10, what=f"{be.name} {name}")


def test_intermediate_names_follow_v1_scheme():
    params = v2.init_params(SMALL, seed=0, scheme="random")
    _, inter = v2.forward(params, np.zeros((1, 3, 32, 32)), SMALL, return_intermediates=True)
    want = [
        "patch_embed",
        "layers.0.blocks.0",
        "layers.0.blocks.1",
        "layers.0",
        "layers.1.downsample",
        "layers.1.blocks.0",
        "layers.1.blocks.1",
        "layers.1",
        "norm",
        "pre_logits",
        "logits",
    ]
    assert list(inter) == want, f"names {list(inter)}, expected {want}"


def test_swinref_forward_dispatches_on_v2_configs():
    params = v2.init_params(SMALL, seed=6, scheme="random")
    x = np.random.default_rng(7).standard_normal((1, 3, 32, 32))
    assert np.array_equal(swinref.forward(params, x, SMALL), v2.forward(params, x, SMALL)), (
        "swinref.forward with a SwinV2Config must equal swinref.v2.forward"
    )


def test_hf_semantics_differ_only_through_shifted_blocks():
    """transformers adds the -100 mask twice and pads before rolling: no shifted block, no change."""
    params = v2.init_params(SMALL, seed=8, scheme="random")
    x = np.random.default_rng(9).standard_normal((1, 3, 32, 32))
    hf = dataclasses.replace(SMALL, semantics="hf")
    diff = np.abs(v2.forward(params, x, SMALL) - v2.forward(params, x, hf)).max()
    assert diff > 1e-3, f"hf and timm semantics differ by {diff:.2e} on shifted blocks, expected > 1e-3"
    unshifted = dataclasses.replace(SMALL, depths=(1, 1))
    params1 = v2.init_params(unshifted, seed=8, scheme="random")
    diff1 = np.abs(
        v2.forward(params1, x, unshifted)
        - v2.forward(params1, x, dataclasses.replace(unshifted, semantics="hf"))
    ).max()
    # without shifts, hf's pad-first order is the same computation: equal up to rounding
    assert diff1 <= 1e-12, f"without shifted blocks hf differs from timm by {diff1:.2e}, expected 0"


@pytest.mark.parametrize(
    "semantics,res,want",
    [
        ("timm", (8, 8), ((3, 3), (1, 1))),
        ("timm", (2, 5), ((2, 3), (0, 1))),
        ("torchvision", (2, 5), ((3, 3), (0, 1))),  # no clamp; rows pad to 3 <= 3: that shift is 0
        ("torchvision", (4, 4), ((3, 3), (1, 1))),
    ],
)
def test_block_geometry_per_semantics(semantics, res, want):
    cfg = dataclasses.replace(SMALL, semantics=semantics)
    g = v2.block_geometry(res, cfg, stage=0, shifted=True)
    assert (g.window, g.shift) == want, f"{semantics} at {res}: {(g.window, g.shift)}, expected {want}"
    assert g.roll_first == (semantics == "timm"), f"{semantics}: roll_first {g.roll_first}"


# ----- configs and params --------------------------------------------------------------------------
def test_tiny_param_count():
    cfg = v2.SwinV2Config.named("swinv2_tiny_window8_256")
    assert v2.count_params(cfg) == 28_347_154, f"count_params {v2.count_params(cfg)}, expected 28,347,154"
    assert swinref.family_of(cfg).name == "v2" and swinref.SwinConfig().__class__ is not v2.SwinV2Config


def test_named_rejects_unknown_and_applies_overrides():
    cfg = v2.SwinV2Config.named("swinv2_base_window12to16_192to256", num_classes=7)
    assert cfg.num_classes == 7 and cfg.pretrained_window_sizes == (12, 12, 12, 6), f"got {cfg}"
    with pytest.raises(ValueError, match="unknown Swin V2 model 'swin_t'; expected one of"):
        v2.SwinV2Config.named("swin_t")


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(semantics="detection"), "semantics must be one of timm, official, torchvision, hf"),
        (dict(semantics="official", window_size=(8, 4)), "semantics='official' needs a square window"),
        (dict(pretrained_window_sizes=(8,)), "pretrained_window_sizes has 1 entries for 4 stages"),
        (dict(semantics="hf", window_size=(8, 4)), "semantics='hf' needs a square window"),
        (
            dict(num_heads=(3, 6, 12, 25)),
            "stage 3 width 768 (embed_dim * 2**3) is not divisible by num_heads",
        ),
        (dict(img_size=30), "img_size 30x30 is not a multiple of patch_size 4"),
    ],
)
def test_config_validation_names_the_problem(kwargs, message):
    with pytest.raises(ValueError, match="invalid SwinV2Config") as e:
        v2.SwinV2Config(**kwargs)
    assert message in str(e.value), f"error {e.value!s}, expected it to say {message!r}"


def test_init_params_is_seeded_and_follows_timm_init():
    a, b = v2.init_params(SMALL, seed=3), v2.init_params(SMALL, seed=3)
    assert swinref.params_digest(a) == swinref.params_digest(b), "same seed, different params"
    assert swinref.params_digest(a) != swinref.params_digest(v2.init_params(SMALL, seed=4)), "seed ignored"
    assert list(a) == list(v2.param_shapes(SMALL)), "init_params order differs from param_shapes"
    assert np.all(a["layers.0.blocks.0.norm1.weight"] == 0), "res-post-norm init: norm1 weight 0"
    assert np.all(a["patch_embed.norm.weight"] == 1), "non-block norms keep weight 1"
    assert np.allclose(a["layers.1.blocks.0.attn.logit_scale"], math.log(10)), "logit_scale init log(10)"
    r = v2.init_params(SMALL, seed=3, scheme="random")
    ls = np.concatenate([v.ravel() for n, v in r.items() if n.endswith("logit_scale")])
    assert ls.max() > math.log(100), "the random scheme must reach above the clamp"


# ----- bad input -----------------------------------------------------------------------------------
def test_v1_weights_for_a_v2_config_name_the_missing_v2_keys():
    v1_cfg = swinref.SwinConfig(
        img_size=32, embed_dim=8, depths=(2, 2), num_heads=(2, 4), window_size=3, num_classes=5
    )
    with pytest.raises(swinref.WeightsError) as e:
        v2.convert_state_dict(swinref.init_params(v1_cfg), SMALL)
    msg = str(e.value)
    for needle in (
        "looks like a Swin V1 state dict",
        "missing",
        "layers.0.blocks.0.attn.logit_scale",
        "layers.0.blocks.0.attn.cpb_mlp.0.weight",
        "layers.0.blocks.0.attn.q_bias",
        "unexpected",
        "layers.0.blocks.0.attn.relative_position_bias_table",
    ):
        assert needle in msg, f"error does not mention {needle!r}:\n{msg}"


def test_v2_weights_for_a_v1_config_name_the_missing_v1_keys():
    v1_cfg = swinref.SwinConfig(
        img_size=32, embed_dim=8, depths=(2, 2), num_heads=(2, 4), window_size=3, num_classes=5
    )
    with pytest.raises(swinref.WeightsError) as e:
        swinref.convert_state_dict(v2.init_params(SMALL), v1_cfg)
    msg = str(e.value)
    for needle in (
        "missing",
        "layers.0.blocks.0.attn.relative_position_bias_table",
        "layers.0.blocks.0.attn.qkv.bias",
        "unexpected",
        "layers.0.blocks.0.attn.logit_scale",
    ):
        assert needle in msg, f"error does not mention {needle!r}:\n{msg}"


def test_misshaped_weights_are_listed():
    sd = v2.init_params(SMALL)
    sd["layers.1.blocks.0.attn.logit_scale"] = np.zeros((3, 1, 1))
    with pytest.raises(swinref.WeightsError, match=r"logit_scale: got \(3, 1, 1\), expected \(4, 1, 1\)"):
        v2.convert_state_dict(sd, SMALL)


@pytest.mark.parametrize(
    "shape,dtype,error,message",
    [
        ((3, 32, 32), "float64", ValueError, r"rank 4, \(B, 3, H, W\)"),
        ((1, 4, 32, 32), "float64", ValueError, r"4 channels, config expects in_chans=3"),
        ((1, 3, 32, 32), "int64", TypeError, "dtype must be float32 or float64"),
        (
            (1, 3, 64, 32),
            "float64",
            ValueError,
            r"input size 64x32 does not match the config's img_size 32x32",
        ),
    ],
)
def test_bad_input_is_named(shape, dtype, error, message):
    params = v2.init_params(SMALL)
    with pytest.raises(error, match=message):
        v2.forward(params, np.zeros(shape, dtype=dtype), SMALL)


def test_params_of_another_dtype_are_refused():
    params = v2.init_params(SMALL, dtype="float32")
    with pytest.raises(TypeError, match="is float32 but the input is float64"):
        v2.forward(params, np.zeros((1, 3, 32, 32)), SMALL)


def test_v1_config_is_refused_by_the_v2_forward():
    with pytest.raises(TypeError, match="needs a SwinV2Config, got SwinConfig"):
        v2.forward({}, np.zeros((1, 3, 224, 224)), swinref.SwinConfig())
    with pytest.raises(ValueError, match="state dict does not match the Swin V2 config"):
        swinref.convert_state_dict(swinref.init_params(swinref.SwinConfig()), swinref.SwinV2Config())
