"""Size semantics: window clamp rules, input padding/cropping, pad/roll order, odd merges, errors.

The timm, torchvision and transformers columns are also cross-checked against the installed
packages (test_crosscheck_matrix.py); the official and detection columns have no installable
package, so their behaviour is pinned here by properties.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from semantics_helpers import random_image, random_params, run
from strategies import backend_settings, clamp_cases, sized_models

import swinref
from swinref import SwinConfig
from swinref.core import cache
from swinref.core.cache import clear_caches
from swinref.core.windows import clamp_window
from swinref.models import v1 as model
from swinref.models.v1 import SEMANTICS


def _expected_clamp(rule, resolution, window, shift):
    """Each rule restated axis by axis from docs/semantics.md (independently of windows.py)."""
    if rule == "timm":
        win = [r if r <= m else m for r, m in zip(resolution, window)]
        return tuple(win), tuple(0 if r <= m else s for r, m, s in zip(resolution, window, shift))
    if rule in ("official", "hf"):
        low = min(resolution)
        return ((low, low), (0, 0)) if low <= window[0] else (window, shift)
    if rule == "torchvision":  # padded size = ceil(r / M) * M; the shift goes where M covers it
        return window, tuple(0 if math.ceil(r / m) == 1 else s for r, m, s in zip(resolution, window, shift))
    return window, shift  # detection


# ----- the clamp decision ---------------------------------------------------------------------
@given(data=st.data())
def test_clamp_decision_follows_each_rule(data):
    rule = data.draw(st.sampled_from(SEMANTICS), label="rule")
    case = data.draw(clamp_cases(square_window=rule in ("official", "hf")), label="case")
    got = clamp_window(case.resolution, case.window, case.shift, rule=rule)
    want = _expected_clamp(rule, case.resolution, case.window, case.shift)
    assert got == want, f"{rule} at {case}: expected (window, shift) {want}, got {got}"
    (wh, ww), (sh, sw) = got
    assert 1 <= wh and 1 <= ww and 0 <= sh < wh and 0 <= sw < ww, f"{rule}: invalid geometry {got}"


@given(data=st.data())
def test_block_geometry_decides_at_img_size_or_per_call(data):
    """timm and official decide for the configured grid whatever the input; the others per call."""
    sem = data.draw(st.sampled_from(SEMANTICS), label="semantics")
    window = data.draw(st.integers(2, 8), label="window")
    img = data.draw(st.tuples(st.integers(1, 12), st.integers(1, 12)), label="img_size / 8")
    cfg = SwinConfig(
        img_size=(8 * img[0], 8 * img[1]),
        embed_dim=4,
        depths=(2, 2),
        num_heads=(1, 2),
        window_size=window,
        semantics=sem,
        num_classes=0,
    )
    stage = data.draw(st.integers(0, 1), label="stage")
    runtime = data.draw(st.tuples(st.integers(1, 30), st.integers(1, 30)), label="actual grid")
    shifted = data.draw(st.booleans(), label="shifted")
    decided_on = model.config_grid(cfg, stage) if sem in ("timm", "official") else runtime
    shift = (window // 2,) * 2 if shifted else (0, 0)
    want = _expected_clamp(sem, decided_on, (window, window), shift)
    got = model.block_geometry(cfg, stage, runtime, shifted)
    assert got == want, f"{sem} stage {stage} grid {runtime} (img {cfg.image_hw}): expected {want}, got {got}"


def test_unknown_semantics_lists_the_valid_ones():
    with pytest.raises(ValueError, match="official, timm, torchvision, hf, detection"):
        SwinConfig(semantics="mmdet")
    with pytest.raises(ValueError, match="unknown clamp rule"):
        clamp_window((4, 4), (7, 7), (3, 3), rule="mmdet")


# ----- padding and cropping of the image ------------------------------------------------------
_TWO_STAGE = dict(img_size=32, embed_dim=8, depths=(2, 2), num_heads=(2, 4), window_size=3, num_classes=5)


@settings(max_examples=10)
@given(data=st.data())
def test_padding_semantics_equal_a_caller_padded_image(data):
    """hf / detection zero-pad the image to a multiple of the patch: passing the zero-padded image
    gives the same computation, so the outputs are bitwise equal."""
    sem = data.draw(st.sampled_from(["hf", "detection"]), label="semantics")
    # from 21: stage-1 grids of at least 3x3, so transformers never clamps below its 3x3 table
    H, W = data.draw(st.tuples(st.integers(21, 34), st.integers(21, 34)), label="size")
    cfg = SwinConfig(**_TWO_STAGE, semantics=sem)
    params = random_params(cfg)
    x = random_image(cfg, (H, W))
    padded = np.zeros(x.shape[:2] + (-(-H // 4) * 4, -(-W // 4) * 4))
    padded[:, :, :H, :W] = x
    a, _ = run(cfg, params, x)
    b, _ = run(cfg, params, padded)
    assert np.array_equal(a, b), f"{sem} {H}x{W}: max diff {np.abs(a - b).max():.3e}, expected 0"


@settings(max_examples=10)
@given(data=st.data())
def test_torchvision_crops_the_remainder(data):
    """torchvision's strided conv ignores the last H % 4 rows and W % 4 columns, whatever they hold."""
    H, W = data.draw(st.tuples(st.integers(3, 7), st.integers(3, 7)), label="patches")
    extra = data.draw(st.tuples(st.integers(0, 3), st.integers(0, 3)), label="extra rows/columns")
    cfg = SwinConfig(**_TWO_STAGE, semantics="torchvision")
    params = random_params(cfg)
    x = random_image(cfg, (4 * H + extra[0], 4 * W + extra[1]))
    a, _ = run(cfg, params, x)
    b, _ = run(cfg, params, x[:, :, : 4 * H, : 4 * W])
    assert np.array_equal(a, b), f"{extra} extra: max diff {np.abs(a - b).max():.3e}, expected 0"


@settings(max_examples=8)
@given(data=st.data())
def test_multiples_without_clamping_are_one_computation(data):
    """Where no padding, no clamp and no odd merge is involved, every semantics performs the same
    operations (pad/roll order only matters with padding), so the outputs are bitwise equal."""
    window = data.draw(st.integers(2, 3), label="window")
    m = data.draw(st.integers(2, 3), label="stage-1 windows per axis")
    n = data.draw(st.integers(2, 3), label="stage-1 windows along W")
    size = (8 * window * m, 8 * window * n)  # stage grids (2wm, 2wn) and (wm, wn): multiples, > w
    outs = {}
    for sem in SEMANTICS:
        cfg = SwinConfig(
            img_size=size,
            embed_dim=4,
            depths=(2, 2),
            num_heads=(1, 2),
            window_size=window,
            num_classes=3,
            semantics=sem,
        )
        outs[sem] = run(cfg, random_params(cfg), random_image(cfg, size))[0]
    for sem, out in outs.items():
        assert np.array_equal(out, outs["timm"]), (
            f"{sem} vs timm at {size}, window {window}: max diff {np.abs(out - outs['timm']).max():.3e}, "
            "expected 0"
        )


# ----- pad/roll order -------------------------------------------------------------------------
def test_roll_then_pad_differs_from_pad_then_roll():
    """On a grid that needs padding, timm's roll-then-pad moves different tokens into each window
    than pad-then-roll; with O(1) weights the outputs differ by far more than rounding (> 1e-3)."""
    cfg_t = SwinConfig(
        img_size=(28, 36), embed_dim=8, depths=(2,), num_heads=(2,), window_size=4, num_classes=5
    )
    cfg_d = dataclasses.replace(cfg_t, semantics="detection")  # 7x9 grid: pads to 8x12, shift 2
    params = random_params(cfg_t)
    x = random_image(cfg_t, (28, 36))
    a = run(cfg_t, params, x)[1]["layers.0.blocks.0"]
    b = run(cfg_d, params, x)[1]["layers.0.blocks.0"]
    assert np.array_equal(a, b), "the unshifted block must not depend on pad/roll order"
    a = run(cfg_t, params, x)[0]
    b = run(cfg_d, params, x)[0]
    assert np.abs(a - b).max() > 1e-3, (
        f"expected the shifted block to differ, max diff {np.abs(a - b).max():.3e}"
    )


# ----- detection: never clamps, always shifts -------------------------------------------------
@given(case=clamp_cases())
def test_detection_never_clamps(case):
    got = clamp_window(case.resolution, case.window, case.shift, rule="detection")
    assert got == (case.window, case.shift), f"expected {case.window, case.shift} unchanged, got {got}"


def test_detection_keeps_the_shift_where_torchvision_drops_it():
    """A 5x5 grid with window 7: torchvision drops the shift (7 covers the padded 7x7), the
    detection code still rolls by 3 and masks; the outputs must differ."""
    base = dict(img_size=20, embed_dim=8, depths=(2,), num_heads=(2,), window_size=7, num_classes=5)
    tv, det = SwinConfig(**base, semantics="torchvision"), SwinConfig(**base, semantics="detection")
    params = random_params(tv)
    x = random_image(tv, (20, 20))
    a, b = run(tv, params, x)[0], run(det, params, x)[0]
    assert np.abs(a - b).max() > 1e-3, f"expected different outputs, max diff {np.abs(a - b).max():.3e}"


@settings(max_examples=10)
@given(m=sized_models(semantics=("detection",), min_side=1, max_side=30))
def test_detection_runs_any_size(m):
    """Any H, W >= 1 (padded to a patch, a window and even merges) gives finite outputs whose stage
    grids are ceil(H / 4) x ceil(W / 4), then halved rounding up."""
    logits, inter = run(m.cfg, random_params(m.cfg), random_image(m.cfg, m.size))
    assert np.all(np.isfinite(logits)), f"non-finite logits at {m.size}"
    h, w = -(-m.size[0] // 4), -(-m.size[1] // 4)
    assert inter["layers.0"].shape[1:3] == (h, w), (
        f"stage 0 grid {inter['layers.0'].shape[1:3]}, expected {(h, w)}"
    )
    assert inter["layers.1"].shape[1:3] == (-(-h // 2), -(-w // 2)), (
        "stage 1 grid is not ceil(h/2) x ceil(w/2)"
    )


# ----- official ---------------------------------------------------------------------------------
@pytest.mark.parametrize("img,window", [(64, 4), (32, 4), (112, 7)])
def test_official_equals_timm_on_square_grids(img, window):
    """On square grids both rules clamp the same way and nothing is padded: identical computation."""
    cfg = SwinConfig(
        img_size=img, embed_dim=8, depths=(2, 2), num_heads=(2, 4), window_size=window, num_classes=5
    )
    off = dataclasses.replace(cfg, semantics="official")
    params = random_params(cfg)
    x = random_image(cfg, (img, img))
    a, b = run(cfg, params, x)[0], run(off, params, x)[0]
    assert np.array_equal(a, b), f"max diff {np.abs(a - b).max():.3e}, expected 0"


def test_official_min_rule_on_a_non_square_grid():
    """Stage 1 grid 8x4, window 4: the official rule (min(H, W) <= M) drops both shifts, timm drops
    only the width shift. transformers uses the official rule and pads nothing here: equal to it."""
    base = dict(img_size=(64, 32), embed_dim=8, depths=(2, 2), num_heads=(2, 4), window_size=4, num_classes=5)
    cfgs = {s: SwinConfig(**base, semantics=s) for s in ("official", "hf", "timm")}
    params = random_params(cfgs["official"])
    x = random_image(cfgs["official"], (64, 32))
    out = {s: run(c, params, x)[0] for s, c in cfgs.items()}
    assert model.block_geometry(cfgs["official"], 1, (8, 4), True) == ((4, 4), (0, 0))
    assert model.block_geometry(cfgs["timm"], 1, (8, 4), True) == ((4, 4), (2, 0))
    assert np.array_equal(out["official"], out["hf"]), "official and hf must agree here"
    assert np.abs(out["official"] - out["timm"]).max() > 1e-3, "timm keeps a shift; outputs must differ"


@pytest.mark.parametrize(
    "img,window,size,match",
    [
        (64, 4, (60, 64), "does not match the config's img_size"),
        (20, 5, (20, 20), "patch merging needs an even grid"),  # 5x5 grid merged
        (32, 3, (32, 32), "not a multiple of the window"),  # 8x8 grid, window 3, no padding
    ],
)
def test_official_rejects_what_the_released_code_asserts(img, window, size, match):
    cfg = SwinConfig(
        img_size=img,
        embed_dim=8,
        depths=(2, 2),
        num_heads=(2, 4),
        window_size=window,
        num_classes=5,
        semantics="official",
    )
    with pytest.raises(ValueError, match=match):
        run(cfg, random_params(cfg), random_image(cfg, size))


# ----- timm sizes, transformers clamp, too-small inputs ----------------------------------------
def test_timm_strict_and_any_size_modes():
    cfg = SwinConfig(**_TWO_STAGE)
    params = random_params(cfg)
    with pytest.raises(ValueError, match="strict_img_size=False"):
        run(cfg, params, random_image(cfg, (36, 28)))
    loose = dataclasses.replace(cfg, strict_img_size=False)
    logits, inter = run(loose, params, random_image(cfg, (36, 28)))
    assert inter["layers.0"].shape[1:3] == (9, 7), f"grid {inter['layers.0'].shape[1:3]}, expected (9, 7)"
    with pytest.raises(ValueError, match="not a multiple of the patch size 4"):
        run(loose, params, random_image(cfg, (35, 28)))


def test_hf_clamp_below_the_table_window_is_an_error():
    """transformers shrinks the window to min(H, W) but keeps an M x M bias: it fails, so do we."""
    cfg = SwinConfig(
        img_size=32,
        embed_dim=8,
        depths=(2, 2),
        num_heads=(2, 4),
        window_size=7,
        num_classes=5,
        semantics="hf",
    )
    with pytest.raises(ValueError, match="transformers clamps the window to 4x4"):
        run(cfg, random_params(cfg), random_image(cfg, (32, 32)))  # 8x8 then 4x4 grid


@pytest.mark.parametrize(
    "sem,size,match",
    [
        ("torchvision", (3, 8), "too small to give a single 4x4 patch"),
        ("timm", (2, 8), "not a multiple of the patch size"),
        ("detection", (0, 8), "too small"),
        ("hf", (8, 0), "too small"),
    ],
)
def test_too_small_for_a_token(sem, size, match):
    cfg = SwinConfig(**_TWO_STAGE, semantics=sem, strict_img_size=False)
    with pytest.raises(ValueError, match=match):
        run(cfg, random_params(cfg), random_image(cfg, size))


# ----- masks per size, every backend ----------------------------------------------------------
def test_masks_are_built_per_size_and_cached():
    """Running at a second size must not reuse the first size's mask; results equal fresh runs."""
    cfg = SwinConfig(**_TWO_STAGE, semantics="detection")
    params = random_params(cfg)
    xa, xb = random_image(cfg, (30, 22)), random_image(cfg, (17, 41))
    clear_caches()
    fresh_b = run(cfg, params, xb)[0]
    clear_caches()
    first_a = run(cfg, params, xa)[0]
    b = run(cfg, params, xb)[0]
    again_a = run(cfg, params, xa)[0]
    assert np.array_equal(b, fresh_b), "second size used a stale mask"
    assert np.array_equal(first_a, again_a), "cached rerun differs from the first run"
    sizes = {k[1] for k in cache._CACHE if k[0] == "shift_mask"}
    assert {(9, 6), (6, 12)} <= sizes, f"expected masks for both padded grids, cached sizes {sizes}"


@pytest.mark.parametrize("semantics", ["timm", "torchvision", "hf", "detection"])
@settings(backend_settings, max_examples=3)  # per semantics and backend: JAX compiles every new shape
@given(data=st.data())
def test_every_backend_agrees_at_any_size(be, semantics, data):
    """Padding, cropping and masks are created on the input's device and namespace (array-api-strict
    on its extra device catches a stray default device). float64 backends agree to 1e-12: the same
    operations, summed in a different order (|outputs| ~ 1). Every draw runs: sized_models gives
    transformers only sizes it accepts (its error case is test_hf_clamp_below_the_table_window_is_an_error)."""
    m = data.draw(sized_models(semantics=(semantics,), max_side=24), label="model and size")
    event("padded" if any(s % (4 * m.cfg.window[0]) for s in m.size) else "no padding")
    params = random_params(m.cfg)
    x = random_image(m.cfg, m.size)
    want = run(m.cfg, params, x)[0]
    got = swinref.forward(swinref.to_namespace(params, be.xp, device=be.device), be.asarray(x), m.cfg)
    diff = np.abs(swinref.to_numpy(got) - want).max()
    assert diff <= 1e-12, f"{be} {m.cfg.semantics} at {m.size}: max diff {diff:.3e}, expected <= 1e-12"
