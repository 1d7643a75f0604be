"""State-dict layouts: conversion from torchvision, transformers, official and old timm names.

The real packages are the reference: torchvision's ``swin_t`` and transformers'
``SwinForImageClassification`` get seeded random weights in every float parameter, their state
dicts go through ``swinref.convert_state_dict`` and ``swinref.forward`` must reproduce their own
logits in float64. Exports (``swinref.models.v1_layouts.from_timm``) must load with ``strict=True`` into the
same packages (and through timm's ``checkpoint_filter_fn`` for the official names) and give the
same logits. Round trips through every pair of layouts must give back identical arrays.
"""

from __future__ import annotations

import functools
import itertools
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import layout_configs

import swinref
from swinref.models import v1_layouts as layouts
from swinref.models.v1_layouts import LAYOUTS, SOURCE_LAYOUTS, detect_layout, from_timm, to_timm

torch = pytest.importorskip("torch", reason="the layout cross-checks need torch")
torchvision = pytest.importorskip("torchvision", reason="the layout cross-checks need torchvision")
transformers = pytest.importorskip("transformers", reason="the layout cross-checks need transformers")
pytest.importorskip("timm", reason="randomize_ and the old-name filter come from timm")

from timm_helpers import randomize_  # noqa: E402

# float64 logits: torchvision and transformers pad then roll where timm (and swinref) roll then
# pad; the two agree exactly when no block pads, as at 224 with window 7 and in SMALL below. What
# remains is rounding: unit roundoff 1.1e-16 times O(1..10) activations over a few hundred
# operations on the deepest path, ~1e-13 at worst (measured: 4e-15 torchvision, 3e-15 transformers
# on swin_t). 1e-10 leaves a 1000x margin and is far below what a swapped q/k, a transposed merge
# or a wrong index costs with these random weights (O(0.1..1)).
ATOL_F64 = 1e-10

# A small model on which all the packages agree with timm: 8x8 -> 4x4 -> 2x2 token grids with a
# 2x2 window need no padding; stages 1 and 2 shift (mask active), stage 3 clamps to shift 0.
SMALL = dict(
    img_size=32,
    patch_size=4,
    embed_dim=16,
    depths=(2, 2, 2),
    num_heads=(2, 4, 8),
    window_size=2,
    num_classes=5,
)


def family(layout: str) -> str:
    """The user-facing source value that accepts ``layout``."""
    return next(s for s, members in SOURCE_LAYOUTS.items() if s != "auto" and layout in members)


def distinct_params(cfg: swinref.SwinConfig, seed: int = 0) -> dict[str, np.ndarray]:
    """Params with a different random value in every entry, so a swapped pair cannot go unseen."""
    rng = np.random.default_rng(seed)
    return {n: rng.standard_normal(s) for n, s in swinref.param_shapes(cfg).items()}


def tv_model(cfg: swinref.SwinConfig):
    """torchvision's SwinTransformer for a swinref config (patch norm always on)."""
    from torchvision.models.swin_transformer import SwinTransformer

    return (
        SwinTransformer(
            patch_size=[cfg.patch_size] * 2,
            embed_dim=cfg.embed_dim,
            depths=list(cfg.depths),
            num_heads=list(cfg.num_heads),
            window_size=list(cfg.window),
            num_classes=cfg.num_classes,
        )
        .double()
        .eval()
    )


def hf_model(cfg: swinref.SwinConfig, *, seed: int | None = None):
    """transformers' SwinForImageClassification for a swinref config, float64, eval mode."""
    hf_cfg = transformers.SwinConfig(
        image_size=cfg.image_hw[0],
        patch_size=cfg.patch_size,
        num_channels=cfg.in_chans,
        embed_dim=cfg.embed_dim,
        depths=list(cfg.depths),
        num_heads=list(cfg.num_heads),
        window_size=cfg.window[0],
        mlp_ratio=cfg.mlp_ratio,
        qkv_bias=cfg.qkv_bias,
        num_labels=cfg.num_classes,
    )
    model = transformers.SwinForImageClassification(hf_cfg).double().eval()
    return model if seed is None else randomize_(model, seed=seed)


def swinref_logits(params, cfg, x: np.ndarray) -> np.ndarray:
    xp = swinref.get_namespace("numpy")
    out = swinref.forward(swinref.to_namespace(params, xp, dtype="float64"), xp.asarray(x), cfg)
    return swinref.to_numpy(out)


def assert_logits_close(got, expected, *, what: str) -> None:
    assert got.shape == expected.shape, f"{what}: shape {got.shape}, expected {expected.shape}"
    diff = float(np.max(np.abs(np.asarray(got, np.float64) - np.asarray(expected, np.float64))))
    assert diff <= ATOL_F64, f"{what}: max abs diff {diff:.3e}, expected <= {ATOL_F64}"


def image(cfg: swinref.SwinConfig, seed: int = 1) -> np.ndarray:
    H, W = cfg.image_hw
    return np.random.default_rng(seed).standard_normal((1, cfg.in_chans, H, W))


@functools.cache
def swin_t_reference():
    """A seeded random torchvision swin_t (float64) converted by source="auto": (cfg, params,
    input, swinref logits, torchvision logits). Built once: the 224 forwards dominate the time."""
    cfg = swinref.SwinConfig.named("swin_t")
    model = randomize_(torchvision.models.swin_t(weights=None).double().eval(), seed=3)
    x = image(cfg)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    state_dict = model.state_dict()
    assert detect_layout(state_dict) == "torchvision", "torchvision swin_t names detected as torchvision"
    params = swinref.convert_state_dict(state_dict, cfg, source="auto")
    return cfg, params, x, swinref_logits(params, cfg, x), expected


# ----- the real packages' own forward ----------------------------------------------------------
@pytest.mark.crosscheck
def test_torchvision_swin_t_logits_match():
    *_, ours, expected = swin_t_reference()
    assert_logits_close(ours, expected, what="logits vs torchvision swin_t")


@pytest.mark.crosscheck
def test_transformers_swin_t_logits_match():
    """The same random weights in transformers' swin_t (through our hf export, loaded strictly):
    its state_dict() must convert back to exactly our params and its logits must match ours."""
    cfg, params, x, ours, _ = swin_t_reference()
    hf = hf_model(cfg)
    hf.load_state_dict(
        {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in from_timm(params, cfg, "hf").items()},
        strict=True,
    )
    back = swinref.convert_state_dict(hf.state_dict(), cfg, source="auto")
    for name, value in params.items():
        assert np.array_equal(back[name], value), (
            f"{name}: transformers state_dict() converts to other values than were loaded"
        )
    with torch.no_grad():
        logits = hf(pixel_values=torch.from_numpy(x)).logits.numpy()
    assert_logits_close(ours, logits, what="logits vs transformers swin_t")


@pytest.mark.crosscheck
def test_transformers_small_logits_match():
    """transformers' own random init (every float parameter), converted from its state_dict()."""
    cfg = swinref.SwinConfig(**SMALL)
    hf = hf_model(cfg, seed=4)
    x = image(cfg)
    with torch.no_grad():
        expected = hf(pixel_values=torch.from_numpy(x)).logits.numpy()
    state_dict = hf.state_dict()
    assert detect_layout(state_dict) == "hf", "transformers 5.x state_dict() names detected as hf"
    params = swinref.convert_state_dict(state_dict, cfg, source="hf")
    assert_logits_close(swinref_logits(params, cfg, x), expected, what="logits vs transformers (small)")


# ----- exports load into the real packages -------------------------------------------------------
@functools.cache
def small_reference():
    """(cfg, params, input, swinref logits) for SMALL with distinct random params."""
    cfg = swinref.SwinConfig(**SMALL)
    params = {n: 0.3 * v for n, v in distinct_params(cfg, seed=5).items()}  # keep logits O(1)
    x = image(cfg)
    return cfg, params, x, swinref_logits(params, cfg, x)


def _strict_load(model, state_dict):
    model.load_state_dict(
        {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state_dict.items()}, strict=True
    )
    return model


@pytest.mark.crosscheck
@pytest.mark.parametrize("layout", ["torchvision", "hf", "timm", "official", "timm_old"])
def test_export_loads_strictly_and_gives_the_same_logits(layout):
    from timm.models.swin_transformer import SwinTransformer, checkpoint_filter_fn

    cfg, params, x, ours = small_reference()
    exported = from_timm(params, cfg, layout)
    with torch.no_grad():
        if layout == "torchvision":
            logits = _strict_load(tv_model(cfg), exported)(torch.from_numpy(x))
        elif layout == "hf":
            logits = _strict_load(hf_model(cfg), exported)(pixel_values=torch.from_numpy(x)).logits
        else:  # timm; the official and old names through timm's own checkpoint filter
            model = SwinTransformer(**SMALL).double().eval()
            tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in exported.items()}
            if layout != "timm":
                tensors = checkpoint_filter_fn(tensors, model)
            model.load_state_dict(tensors, strict=True)
            logits = model(torch.from_numpy(x))
    assert_logits_close(logits.numpy(), ours, what=f"{layout} export in its package")


@pytest.mark.crosscheck
def test_hf4_export_is_what_transformers_converts_on_load(tmp_path):
    """transformers 5.x renames 4.x names on from_pretrained; our hf4 export must load cleanly."""
    from safetensors.numpy import save_file

    cfg, params, x, ours = small_reference()
    exported = from_timm(params, cfg, "hf4")
    save_file({k: np.ascontiguousarray(v) for k, v in exported.items()}, str(tmp_path / "model.safetensors"))
    hf_model(cfg).config.save_pretrained(tmp_path)
    model, info = transformers.SwinForImageClassification.from_pretrained(
        tmp_path, output_loading_info=True, dtype=torch.float64
    )
    problems = {k: v for k, v in info.items() if v}  # missing/unexpected/mismatched keys, errors
    assert not problems, f"loading our hf4 export: expected no missing/unexpected keys, got {problems}"
    with torch.no_grad():
        logits = model.eval()(pixel_values=torch.from_numpy(x)).logits.numpy()
    assert_logits_close(logits, ours, what="hf4 export via from_pretrained")


@pytest.mark.crosscheck
def test_save_pretrained_files_use_hf4_names_and_convert(tmp_path):
    """transformers 5.x writes the 4.x names to disk; source="hf" must take them."""
    cfg = swinref.SwinConfig(**SMALL)
    model = hf_model(cfg, seed=6)
    model.save_pretrained(tmp_path)
    stored = swinref.load_state_dict(tmp_path / "model.safetensors")
    assert detect_layout(stored) == "hf4", f"save_pretrained names: expected hf4, got {detect_layout(stored)}"
    from_file = swinref.convert_state_dict(stored, cfg, source="hf")
    in_memory = swinref.convert_state_dict(model.state_dict(), cfg, source="hf")
    for name, value in in_memory.items():
        assert np.array_equal(from_file[name], value), f"{name}: file and state_dict() conversions differ"


@pytest.mark.crosscheck
def test_torchvision_pth_loads_through_load_state_dict(tmp_path):
    cfg = swinref.SwinConfig(**SMALL)
    model = randomize_(tv_model(cfg), seed=7)
    torch.save(model.state_dict(), tmp_path / "tv.pth")
    params = swinref.convert_state_dict(swinref.load_state_dict(tmp_path / "tv.pth"), cfg, source="auto")
    expected = swinref.convert_state_dict(model.state_dict(), cfg, source="torchvision")
    assert params.keys() == expected.keys(), "same names from the file and from memory"
    for name, value in expected.items():
        assert np.array_equal(params[name], value), f"{name}: .pth and in-memory conversions differ"


# ----- detection and names of the real packages ----------------------------------------------------
@pytest.mark.crosscheck
def test_detect_layout_on_real_state_dicts():
    from timm.models.swin_transformer import SwinTransformer

    cfg = swinref.SwinConfig(**SMALL)
    found = {
        "torchvision": detect_layout(tv_model(cfg).state_dict()),
        "hf": detect_layout(hf_model(cfg).state_dict()),
        "timm": detect_layout(SwinTransformer(**SMALL).state_dict()),
    }
    assert found == {"torchvision": "torchvision", "hf": "hf", "timm": "timm"}, f"detected {found}"


def test_every_layout_names_every_entry_once():
    """The name maps are one-to-one, so renaming can never merge two parameters."""
    cfg = swinref.SwinConfig.named("swin_t")
    for layout in LAYOUTS:
        names = [
            n for v in layouts.name_map(cfg, layout).values() for n in (v if isinstance(v, tuple) else (v,))
        ]
        assert len(names) == len(set(names)), f"{layout}: duplicate source names"
        clash = set(names) & set(layouts.derived_buffers(cfg, layout))
        assert not clash, f"{layout}: a parameter and a buffer share names {sorted(clash)[:3]}"


# ----- round trips ---------------------------------------------------------------------------------
def expected_detection(layout: str, cfg: swinref.SwinConfig) -> str:
    if layout in ("official", "timm_old"):
        if len(cfg.depths) == 1 and not cfg.num_classes:
            return "timm"  # no merge and no head: the names are timm's, and so is the conversion
        return "official"  # timm_old shares every name with official
    return layout


def official_misfit(cfg: swinref.SwinConfig) -> str | None:
    """Why no official model carries cfg's tables (a re-statement of the official constructor:
    one int window, stage i at floor(grid / 2**i) with even grids before every merge, a stage with
    min(H, W) <= M attending in min(H, W) x min(H, W) windows), or None when one does."""
    if cfg.window[0] != cfg.window[1]:
        return "one int window_size"
    M = cfg.window[0]
    H, W = (s // cfg.patch_size for s in cfg.image_hw)
    grids = [(H, W)]
    for _ in cfg.depths[1:]:
        if H % 2 or W % 2:  # the official model cannot run at all: the cause named first
            return "odd"
        H, W = H // 2, W // 2
        grids.append((H, W))
    for i, (H, W) in enumerate(grids):
        side = min(H, W) if min(H, W) <= M else M
        table = (2 * side - 1) ** 2
        if swinref.param_shapes(cfg)[f"layers.{i}.blocks.0.attn.relative_position_bias_table"][0] != table:
            return "min(H, W) <="
    return None


def check_round_trip(params, cfg, a: str, b: str) -> None:
    """params -> export as a -> convert -> export as b -> convert must give params back, bit for bit.

    Where the official code has no model with cfg's tables, exporting to its layouts must fail
    with the cause instead."""
    misfit = official_misfit(cfg)
    if misfit and {a, b} & {"official", "timm_old"}:
        with pytest.raises(ValueError, match=re.escape(misfit)):
            from_timm(params, cfg, "official" if a in ("official", "timm_old") else b)
        return
    exported = from_timm(params, cfg, a)
    detected = detect_layout(exported)
    assert detected == expected_detection(a, cfg), (
        f"export as {a}: detected {detected}, expected {expected_detection(a, cfg)}"
    )
    assert to_timm(exported, cfg, a).keys() == params.keys(), f"to_timm({a}): names differ from ours"
    ours = swinref.convert_state_dict(exported, cfg, source=family(a))
    back = swinref.convert_state_dict(from_timm(ours, cfg, b), cfg, source="auto")
    assert back.keys() == params.keys(), f"{a} -> ours -> {b} -> ours: names differ"
    for name, value in params.items():
        got = back[name]
        assert got.dtype == value.dtype and np.array_equal(got, value), (
            f"{a} -> ours -> {b} -> ours: {name} changed (dtype {got.dtype}, expected {value.dtype})"
        )


def test_layout_configs_reach_the_name_changing_cases():
    """The drawn configs include several stages with merges, a clamped (smaller) table, a
    non-square window, no qkv bias and no head: each changes which names or shapes exist."""
    from hypothesis import find

    def clamped(cfg):
        return any(
            swinref.param_shapes(cfg)[f"layers.{i}.blocks.0.attn.relative_position_bias_table"][0]
            < (2 * cfg.window[0] - 1) * (2 * cfg.window[1] - 1)
            for i in range(len(cfg.depths))
        )

    for what, condition in [
        ("3 stages", lambda c: len(c.depths) == 3),
        ("a clamped table", clamped),
        (
            "non-square window, no qkv bias, no head",
            lambda c: c.window[0] != c.window[1] and not c.qkv_bias and c.num_classes == 0,
        ),
    ]:
        assert find(layout_configs(), condition) is not None, f"layout_configs never drew {what}"


@pytest.mark.parametrize("a,b", list(itertools.product(LAYOUTS, LAYOUTS)))
def test_round_trip_every_pair_of_layouts(a, b):
    cfg = swinref.SwinConfig(**SMALL)
    check_round_trip(distinct_params(cfg), cfg, a, b)


@given(
    cfg=layout_configs(),
    a=st.sampled_from(LAYOUTS),
    b=st.sampled_from(LAYOUTS),
    seed=st.integers(0, 2**32 - 1),
)
def test_round_trip_on_drawn_configs(cfg, a, b, seed):
    check_round_trip(distinct_params(cfg, seed), cfg, a, b)


# ----- errors ---------------------------------------------------------------------------------------
def test_unknown_source_lists_the_valid_ones():
    cfg = swinref.SwinConfig(**SMALL)
    with pytest.raises(ValueError) as e:
        swinref.convert_state_dict({}, cfg, source="keras")
    for valid in ("timm", "torchvision", "hf", "official", "auto"):
        assert repr(valid) in str(e.value) or valid in str(e.value), f"{valid!r} missing from: {e.value}"
    with pytest.raises(ValueError, match="unknown layout 'hf3'.*timm_old"):
        from_timm(distinct_params(cfg), cfg, "hf3")


@pytest.mark.parametrize("keys", [[], ["module.encoder.weight", "fc.bias"]], ids=["empty", "unrelated"])
def test_undetectable_layout_names_the_patterns(keys):
    state_dict = {k: np.zeros(2) for k in keys}
    for call in (
        lambda: detect_layout(state_dict),
        lambda: swinref.convert_state_dict(state_dict, swinref.SwinConfig(**SMALL), source="auto"),
    ):
        with pytest.raises(ValueError) as e:
            call()
        text = str(e.value)
        for pattern in ("features", "swin", "patch_embed"):
            assert pattern in text, f"expected the pattern {pattern!r} in: {text}"
        assert ("empty" in text) if not keys else ("module.encoder.weight" in text), text


def _error(state_dict, cfg, source) -> str:
    with pytest.raises(swinref.WeightsError) as e:
        swinref.convert_state_dict(state_dict, cfg, source=source)
    return str(e.value)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_wrong_depth_names_the_stored_keys(layout):
    stored_cfg = swinref.SwinConfig(**SMALL)
    wanted = swinref.SwinConfig(**{**SMALL, "depths": (2, 3, 2)})
    text = _error(from_timm(distinct_params(stored_cfg), stored_cfg, layout), wanted, "auto")
    detected = "official" if layout == "timm_old" else layout
    assert f"in layout {detected!r} (detected from its names)" in text, text
    for name in ("layers.1.blocks.2.norm1.weight", "layers.1.blocks.2.mlp.fc2.bias"):
        stored_name = layouts.layout_name(name, layout)
        assert "missing (" in text and stored_name in text, f"missing {stored_name} not named in: {text}"


# how an error names the fused qkv of the layouts that store q, k, v apart
QKV_LABELS = {
    "hf": "swin.encoder.layers.0.blocks.0.attention.{q_proj,k_proj,v_proj}.weight (stacked as qkv)",
    "hf4": "swin.encoder.layers.0.blocks.0.attention.self.{query,key,value}.weight (stacked as qkv)",
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_wrong_width_names_keys_and_shapes(layout):
    stored_cfg = swinref.SwinConfig(**SMALL)
    wanted = swinref.SwinConfig(**{**SMALL, "embed_dim": 24, "num_heads": (3, 6, 12)})
    text = _error(from_timm(distinct_params(stored_cfg), stored_cfg, layout), wanted, family(layout))
    proj = layouts.layout_name("patch_embed.proj.weight", layout)
    assert f"{proj}: got (16, 3, 4, 4), expected (24, 3, 4, 4)" in text, text
    shown = QKV_LABELS.get(layout, layouts.layout_name("layers.0.blocks.0.attn.qkv.weight", layout))
    assert f"{shown}: got (48, 16), expected (72, 24)" in text, text


def test_stored_buffers_are_checked_against_the_config():
    cfg = swinref.SwinConfig(**SMALL)
    tv = from_timm(distinct_params(cfg), cfg, "torchvision")
    index = "features.1.0.attn.relative_position_index"
    tv[index] = tv[index][::-1].copy()
    assert "features.1.0.attn.relative_position_index: stored relative_position_index" in _error(
        tv, cfg, "torchvision"
    )

    official = from_timm(distinct_params(cfg), cfg, "official")
    assert official["layers.0.blocks.1.attn_mask"].shape == (16, 4, 4), "8x8 grid, 2x2 window: 16 windows"
    official["layers.0.blocks.1.attn_mask"] = official["layers.0.blocks.1.attn_mask"][:8]
    official["layers.2.blocks.1.attn_mask"] = np.zeros((1, 4, 4))  # stage 3 clamps to no shift
    text = _error(official, cfg, "official")
    assert "layers.0.blocks.1.attn_mask: stored attn_mask (8, 4, 4), expected (16, 4, 4)" in text, text
    assert "layers.2.blocks.1.attn_mask: a derived buffer where this config has none" in text, text


def test_incomplete_qkv_is_reported_under_the_stored_names():
    cfg = swinref.SwinConfig(**SMALL)
    hf = from_timm(distinct_params(cfg), cfg, "hf")
    del hf["swin.encoder.layers.0.blocks.0.attention.k_proj.weight"]
    text = _error(hf, cfg, "hf")
    assert QKV_LABELS["hf"] in text.split("unexpected")[0], f"qkv should be listed as missing: {text}"
    assert "swin.encoder.layers.0.blocks.0.attention.q_proj.weight" in text, text


def test_explicit_source_that_does_not_fit_gets_a_hint():
    cfg = swinref.SwinConfig(**SMALL)
    text = _error(from_timm(distinct_params(cfg), cfg, "timm"), cfg, "torchvision")
    assert "hint: the names look like the 'timm' layout: pass source='timm'" in text, text
