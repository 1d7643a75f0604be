"""Backbone outputs: swinref.forward_features against timm features_only, transformers SwinBackbone,
and its own forward; shapes, formats, per-stage norms, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from semantics_helpers import random_image, random_params, run

import swinref
from swinref import SwinConfig
from swinref.core.numerics import layer_norm

# float64 on both sides: the same operations summed in another order, |features| ~ 1 (see
# swinref.tools.crosscheck.TOLERANCE for the reasoning behind 1e-10).
ATOL64 = 1e-10

_SMALL = dict(img_size=64, embed_dim=16, depths=(2, 2, 2), num_heads=(2, 4, 8), window_size=4, num_classes=10)


def _features(cfg, params, x, **kwargs):
    xp = swinref.get_namespace("numpy")
    out = swinref.forward_features(swinref.to_namespace(params, xp), xp.asarray(x), cfg, **kwargs)
    return [np.asarray(o) for o in out]


@settings(max_examples=10)
@given(data=st.data())
def test_features_are_the_stage_outputs(data):
    """Without norms, map i is forward's ``layers.{i}`` in NCHW, for any subset and order of stages."""
    sem = data.draw(st.sampled_from(["timm", "torchvision", "detection"]), label="semantics")
    indices = data.draw(st.lists(st.integers(0, 2), min_size=1, max_size=3, unique=True), label="out_indices")
    cfg = SwinConfig(**_SMALL, semantics=sem, strict_img_size=False)
    size = (
        (64, 64)
        if sem == "timm"
        else data.draw(st.tuples(st.integers(20, 70), st.integers(20, 70)), label="size")
    )
    params = random_params(cfg)
    x = random_image(cfg, size)
    inter = run(cfg, params, x)[1]
    maps = _features(cfg, params, x, out_indices=tuple(indices))
    nhwc = _features(cfg, params, x, out_indices=tuple(indices), fmt="NHWC")
    for i, m, h in zip(indices, maps, nhwc):
        want = inter[f"layers.{i}"]
        assert np.array_equal(h, want), f"NHWC map {i} differs from layers.{i}"
        assert np.array_equal(m, want.transpose(0, 3, 1, 2)), f"NCHW map {i} is not layers.{i} transposed"
        B, C, hh, ww = m.shape
        assert C == cfg.stage_dim(i), f"map {i}: {C} channels, expected {cfg.stage_dim(i)}"
        assert (hh, ww) == want.shape[1:3], f"map {i}: grid {(hh, ww)}, expected {want.shape[1:3]}"


def test_per_stage_norms_use_norm_i():
    cfg = SwinConfig(**_SMALL, semantics="detection")
    params = random_params(cfg, backbone_norms=True)
    x = random_image(cfg, (50, 45))
    plain = _features(cfg, params, x, fmt="NHWC")
    normed = _features(cfg, params, x, fmt="NHWC", norm=True)
    xp = swinref.get_namespace("numpy")
    for i, (p, n) in enumerate(zip(plain, normed)):
        want = np.asarray(
            layer_norm(
                xp.asarray(p),
                xp.asarray(params[f"norm{i}.weight"]),
                xp.asarray(params[f"norm{i}.bias"]),
                eps=1e-5,
                xp=xp,
            )
        )
        assert np.array_equal(n, want), f"map {i}: not LayerNorm(norm{i}) of the stage output"


def test_backbone_needs_neither_final_norm_nor_head():
    cfg = SwinConfig(**_SMALL)
    params = {k: v for k, v in random_params(cfg).items() if not k.startswith(("norm.", "head."))}
    maps = _features(cfg, params, random_image(cfg, (64, 64)))
    assert [m.shape[1] for m in maps] == [16, 32, 64], f"channels {[m.shape[1] for m in maps]}"


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(out_indices=(3,)), r"out_indices must be .* in 0\.\.2"),
        (dict(out_indices=()), "out_indices must be a non-empty"),
        (dict(out_indices=(True,)), "out_indices"),
        (dict(fmt="CHW"), "fmt must be 'NCHW' or 'NHWC'"),
        (dict(norm=True), r"missing params \['norm0.weight'"),
    ],
)
def test_bad_backbone_arguments(kwargs, match):
    cfg = SwinConfig(**_SMALL)
    with pytest.raises(ValueError, match=match):
        _features(cfg, random_params(cfg), random_image(cfg, (64, 64)), **kwargs)


# ----- against the implementations ------------------------------------------------------------
@pytest.mark.crosscheck
@pytest.mark.parametrize("img,size", [(64, (64, 64)), (64, (96, 40))])
def test_matches_timm_features_only(img, size):
    """timm ``features_only=True`` (strict_img_size=False for the second size): the stage outputs.
    timm's feature maps for Swin come out channels-last (NHWC)."""
    torch = pytest.importorskip("torch")
    timm = pytest.importorskip("timm")
    from swinref.tools.crosscheck import build_impl, randomize_

    kw = dict(img_size=img, embed_dim=16, depths=(2, 2, 2), num_heads=(2, 4, 8), window_size=4)
    cfg = SwinConfig(**kw, num_classes=10, strict_img_size=size == (img, img))
    full = randomize_(build_impl("timm", cfg), seed=3)
    feats = (
        timm.create_model(
            "swin_tiny_patch4_window7_224",
            features_only=True,
            out_indices=(0, 1, 2),
            pretrained=False,
            strict_img_size=cfg.strict_img_size,
            **kw,
        )
        .double()
        .eval()
    )
    sd = {k: v for k, v in full.state_dict().items() if not k.startswith(("norm.", "head."))}
    loaded = feats.load_state_dict(
        {k.replace("layers.", "layers_", 1): v for k, v in sd.items()}, strict=False
    )
    assert not loaded.missing_keys, f"timm features model left unloaded: {loaded.missing_keys[:3]}"
    params = swinref.convert_state_dict({k: v.numpy() for k, v in full.state_dict().items()}, cfg)
    x = random_image(cfg, size)
    with torch.no_grad():
        theirs = [t.numpy() for t in feats(torch.from_numpy(x))]
    ours = _features(cfg, params, x, fmt="NHWC")
    assert len(theirs) == 3, f"timm returned {len(theirs)} maps, expected 3"
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert a.shape == b.shape, f"map {i}: shape {a.shape}, timm {b.shape}"
        d = np.abs(a - b).max()
        assert d <= ATOL64, f"map {i}: max abs diff {d:.3e} > {ATOL64}"


@pytest.mark.crosscheck
def test_matches_transformers_swin_backbone_subset():
    """transformers SwinBackbone with out_features stage1 and stage3 = forward_features(out_indices
    (0, 2), norm=True) under detection semantics; the norms come from hidden_states_norms."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from swinref.tools.crosscheck import build_impl, impl_params, randomize_

    cfg = SwinConfig(**{**_SMALL, "num_classes": 0}, semantics="detection")
    module = randomize_(build_impl("hf_backbone", cfg), seed=4)
    params = impl_params({k: v.numpy() for k, v in module.state_dict().items()}, cfg, "hf_backbone")
    module.out_features = ["stage1", "stage3"]
    x = random_image(cfg, (70, 45))
    with torch.no_grad():
        theirs = [t.numpy() for t in module(pixel_values=torch.from_numpy(x)).feature_maps]
    ours = _features(cfg, params, x, out_indices=(0, 2), norm=True)
    assert len(theirs) == 2, f"transformers returned {len(theirs)} maps, expected 2"
    for i, (a, b) in zip((0, 2), zip(ours, theirs)):
        assert a.shape == b.shape, f"stage {i}: shape {a.shape}, transformers {b.shape}"
        d = np.abs(a - b).max()
        assert d <= ATOL64, f"stage {i}: max abs diff {d:.3e} > {ATOL64}"
