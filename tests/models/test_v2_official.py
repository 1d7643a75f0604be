"""SwinV2Config(semantics="official"): the microsoft/Swin-Transformer V2 forward, from its facts.

The official ``models/swin_transformer_v2.py`` (not installable, so re-stated here) differs from
timm in three places only:

- the logit scale is clamped at ``torch.log(torch.tensor(1. / 0.01))``, a float32 tensor: log(100)
  rounded to float32, 4.605170249938965, not 4.605170185988092; a float64 model keeps that value;
- a stage with min(H, W) <= M attends in square min(H, W) windows with shift 0 (timm: per axis);
- nothing is padded: grids must be multiples of the window and even before every merge.

Measured against the real file (``python benchmarks/official_check.py CHECKOUT``, every parameter
random, logit scales in [log 2, log 200]): 64x32 / window 4: 2.5e-16 (float64), 7.5e-8 (float32)
where timm, torchvision and transformers are 5.5e-3 to 1.1e-2 away; swinv2_tiny at 256: 6.2e-15
(float64), timm 6.4e-10 away.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

import swinref
from swinref import v2

SQUARE = v2.SwinV2Config(
    img_size=32, embed_dim=8, depths=(2, 2), num_heads=(2, 4), window_size=4, num_classes=5
)


def run(cfg, params, x):
    return np.asarray(v2.forward(params, x, cfg))


def image(cfg, dtype="float64"):
    return np.random.default_rng(1).standard_normal((2, 3, *cfg.image_hw)).astype(dtype)


def test_official_logit_cap_is_log_100_rounded_to_float32():
    cap = v2.OFFICIAL_LOGIT_SCALE_MAX
    assert cap == 4.605170249938965, f"official cap {cap!r}"
    assert cap == float(np.float32(math.log(100.0))) and cap != math.log(100.0)
    scale = np.array([[[cap + 1.0]], [[1.0]]])
    got = np.asarray(v2.logit_scale({"logit_scale": scale}, cap=cap, xp=swinref.get_namespace("numpy")))
    assert got[0, 0, 0] == math.exp(cap) and got[1, 0, 0] == math.e, f"temperatures {got.ravel()}"


def test_cap_moves_float64_logits_only_for_heads_above_it():
    """Square grid, nothing padded: official and timm differ only by the cap, so (float64) heads
    above it move the logits a little, heads below it change nothing, and in float32 the two caps
    are the same number."""
    official = dataclasses.replace(SQUARE, semantics="official")
    params = v2.init_params(SQUARE, scheme="random")  # logit scales in [log 2, log 200]
    above = [n for n in params if n.endswith("logit_scale") and (params[n] > math.log(100)).any()]
    assert above, "the random scheme must put some heads above the cap"
    diff = np.abs(run(official, params, image(SQUARE)) - run(SQUARE, params, image(SQUARE))).max()
    # exp(cap) / 100 - 1 = 6.4e-8 relative on O(1) cosine logits of the clamped heads; through
    # softmax, the post-norms and the head: well below 1e-5, far above float64 rounding (1e-15)
    assert 1e-13 < diff < 1e-5, f"official vs timm with heads above the cap: {diff:.3e}"
    below = {n: (np.minimum(v, math.log(50)) if n.endswith("logit_scale") else v) for n, v in params.items()}
    same = run(official, below, image(SQUARE)), run(SQUARE, below, image(SQUARE))
    assert np.array_equal(*same), "no head above the cap: official must equal timm bit for bit"
    f32 = {n: v.astype(np.float32) for n, v in params.items()}
    a, b = run(official, f32, image(SQUARE, "float32")), run(SQUARE, f32, image(SQUARE, "float32"))
    assert np.array_equal(a, b), "in float32 both caps are float32(log 100): outputs must be equal"


def official_rule(grid, window, shifted):
    """The official block constructor: min(H, W) <= M gives a square min(H, W) window, shift 0."""
    if min(grid) <= window:
        return (min(grid),) * 2, (0, 0)
    return (window, window), ((window // 2,) * 2 if shifted else (0, 0))


@pytest.mark.parametrize("grid", [(8, 4), (4, 8), (2, 8), (8, 8), (16, 8), (3, 3)])
@pytest.mark.parametrize("shifted", [False, True])
def test_official_window_clamp_is_min_h_w(grid, shifted):
    cfg = dataclasses.replace(SQUARE, semantics="official")
    g = v2.block_geometry(grid, cfg, stage=0, shifted=shifted)
    assert (g.window, g.shift) == official_rule(grid, 4, shifted), f"{grid}: {(g.window, g.shift)}"
    assert g.logit_cap == v2.OFFICIAL_LOGIT_SCALE_MAX


def test_non_square_grid_differs_from_every_other_semantics():
    """64x32, window 4: stage 1 (8x4) is unshifted in the official model; timm shifts its rows."""
    cfgs = {
        s: dataclasses.replace(SQUARE, img_size=(64, 32), semantics=s)
        for s in ("official", "timm", "torchvision", "hf")
    }
    params = v2.init_params(cfgs["official"], scheme="random")
    params = {n: (np.minimum(v, math.log(50)) if n.endswith("logit_scale") else v) for n, v in params.items()}
    out = {s: run(c, params, image(c)) for s, c in cfgs.items()}
    for s in ("timm", "torchvision", "hf"):
        diff = np.abs(out["official"] - out[s]).max()
        assert diff > 1e-4, f"{s} equals official at 64x32 ({diff:.2e}): a shift was dropped or kept wrongly"


@pytest.mark.parametrize(
    "img,window,match",
    [
        (24, 4, "not a multiple of the window 4"),  # 6x6 grid, window 4, no padding
        (20, 5, "patch merging needs an even grid, got 5x5"),  # a 5x5 grid merged
    ],
)
def test_official_rejects_what_the_released_code_asserts(img, window, match):
    cfg = dataclasses.replace(SQUARE, img_size=img, window_size=window, semantics="official")
    with pytest.raises(ValueError, match=match):
        run(cfg, v2.init_params(cfg), image(cfg))
