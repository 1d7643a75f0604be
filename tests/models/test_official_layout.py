"""The official V1 layout follows the official constructor on every grid it can build.

microsoft/Swin-Transformer (``models/swin_transformer.py``) is not an installable package, so its
rules are re-stated here from what its constructor does, independently of swinref's code:

- stage i is built for a floor(grid / 2**i) token grid, and its patch merging asserts an even grid;
- a block whose stage has min(H, W) <= M attends in square min(H, W) windows with shift 0, also
  on non-square grids (timm 1.0 clamps each axis alone instead);
- every block stores ``attn.relative_position_index`` (N, N) for its window, and every block left
  shifted an ``attn_mask`` (nW, N, N) of 0 / -100 built from the 3 x 3 regions of the unpadded grid.

An export is what that model loads with ``strict=True`` when its names and buffers equal this
re-statement exactly; measured against the real file (``python benchmarks/official_check.py
CHECKOUT``, float64, every parameter random) the 16x64 and 224x448 cases below load strictly,
round-trip exactly and match ``semantics="official"`` to 2.2e-16 / 7.1e-15.
"""

from __future__ import annotations

import numpy as np
import pytest

import swinref
from swinref.models import v1_layouts as layouts

NON_SQUARE = dict(
    img_size=(16, 64), embed_dim=8, depths=(2, 2), num_heads=(2, 4), window_size=4, num_classes=3
)


def official_blocks(img_hw, patch, window, depths):
    """(stage, block, window side, shift, grid) for every block, as the official constructor builds them."""
    H, W = img_hw[0] // patch, img_hw[1] // patch
    out = []
    for i, depth in enumerate(depths):
        if i:
            assert H % 2 == 0 and W % 2 == 0, "the official merge asserts even grids"
            H, W = H // 2, W // 2
        for j in range(depth):
            side, shift = window, (window // 2 if j % 2 else 0)
            if min(H, W) <= window:
                side, shift = min(H, W), 0
            out.append((i, j, side, shift, (H, W)))
    return out


def official_index(side):
    coords = [(h, w) for h in range(side) for w in range(side)]
    return np.array(
        [[(a[0] - b[0] + side - 1) * (2 * side - 1) + a[1] - b[1] + side - 1 for b in coords] for a in coords]
    )


def official_mask(grid, side, shift):
    H, W = grid
    labels = np.zeros((H, W))
    cuts = lambda n: (slice(0, n - side), slice(n - side, n - shift), slice(n - shift, n))  # noqa: E731
    for k, (hs, ws) in enumerate((hs, ws) for hs in cuts(H) for ws in cuts(W)):
        labels[hs, ws] = k
    windows = labels.reshape(H // side, side, W // side, side).transpose(0, 2, 1, 3).reshape(-1, side * side)
    return np.where(windows[:, None, :] != windows[:, :, None], -100.0, 0.0)


def official_buffers(cfg):
    out = {}
    for i, j, side, shift, grid in official_blocks(cfg.image_hw, cfg.patch_size, cfg.window[0], cfg.depths):
        out[f"layers.{i}.blocks.{j}.attn.relative_position_index"] = official_index(side)
        if shift:
            out[f"layers.{i}.blocks.{j}.attn_mask"] = official_mask(grid, side, shift)
    return out


def random_params(cfg, seed=0):
    rng = np.random.default_rng(seed)
    return {n: rng.standard_normal(s) for n, s in swinref.param_shapes(cfg).items()}


def check_official_export(cfg):
    params = random_params(cfg)
    exported = layouts.export_state_dict(params, cfg, layout="official")
    expected = official_buffers(cfg)
    names = {layouts.layout_name(n, "official") for n in params} | set(expected)
    assert set(exported) == names, (
        f"export names differ from the official model's: extra {sorted(set(exported) - names)[:4]}, "
        f"missing {sorted(names - set(exported))[:4]}"
    )
    for name, value in expected.items():
        assert exported[name].shape == value.shape and np.array_equal(exported[name], value), (
            f"{name}: {exported[name].shape}, expected the official {value.shape}"
        )
    back = swinref.convert_state_dict(exported, cfg, source="official")
    assert back.keys() == params.keys() and all(np.array_equal(back[n], params[n]) for n in params), (
        "official export -> import did not give the params back"
    )


def test_non_square_grid_under_the_window_uses_the_official_square_clamp():
    """16x64, window 4: stage grids 4x16 and 2x8; the official code attends in 4x4 and 2x2 windows
    without shift (index 16x16 and 4x4, no mask), where timm's per-axis rule keeps a width shift
    on stage 0 and 2x4 windows on stage 1."""
    cfg = swinref.SwinConfig(**NON_SQUARE, semantics="official")
    check_official_export(cfg)
    buffers = layouts.derived_buffers(cfg, "official")
    assert buffers["layers.1.blocks.0.attn.relative_position_index"].shape == (4, 4)
    assert not any(n.endswith("attn_mask") for n in buffers), "no official block is shifted here"
    timm = layouts.derived_buffers(swinref.SwinConfig(**NON_SQUARE), "timm")
    assert "layers.0.blocks.1.attn_mask" in timm, "timm keeps the width shift: the rules must differ here"


def test_timm_semantics_cannot_carry_official_tables_on_such_grids():
    """With semantics='timm' stage 1's tables are 2x4-window sized: neither direction can work, and
    both say so and how to fix it."""
    official = swinref.SwinConfig(**NON_SQUARE, semantics="official")
    timm = swinref.SwinConfig(**NON_SQUARE)
    exported = layouts.export_state_dict(random_params(official), official, layout="official")
    with pytest.raises(swinref.WeightsError, match=r"2x2 window .*semantics='official'"):
        swinref.convert_state_dict(exported, timm, source="official")
    with pytest.raises(ValueError, match=r"layout 'official'.*2x2 window.*semantics='timm'"):
        layouts.export_state_dict(random_params(timm), timm, layout="official")


@pytest.mark.parametrize("semantics", ["timm", "official"])
def test_swin_t_at_224x448_exports_the_official_buffers(semantics):
    """Grids 56x112 ... 7x14: the last stage has min(H, W) = 7 <= 7, so the official model has no
    shifted block there (timm shifts its width). Tables agree in size, so either semantics exports."""
    cfg = swinref.SwinConfig.named("swin_t", img_size=(224, 448), semantics=semantics)
    buffers = layouts.derived_buffers(cfg, "official")
    assert "layers.3.blocks.1.attn_mask" not in buffers, "official: no shift on the 7x14 stage"
    assert buffers["layers.0.blocks.1.attn_mask"].shape == (128, 49, 49), "8 x 16 windows of 7x7"
    expected = official_buffers(cfg)
    assert buffers.keys() == expected.keys()
    for name, value in expected.items():
        assert np.array_equal(buffers[name], value), f"{name} differs from the official buffer"
    assert "layers.3.blocks.1.attn_mask" in layouts.derived_buffers(cfg, "timm"), "timm keeps the shift"


def test_odd_grid_names_the_official_merge():
    """swin_t at 112: stage 2 ends on 7x7, which the official merge rejects; its model still builds
    stage 3 for floor(7 / 2) = 3, so its tables are 3x3-window sized. The error is the merge."""
    cfg = swinref.SwinConfig.named("swin_t", img_size=112)
    shapes = swinref.param_shapes(cfg)
    stored = {layouts.layout_name(n, "official"): np.zeros(s) for n, s in shapes.items()}
    for j in range(2):
        stored[f"layers.3.blocks.{j}.attn.relative_position_bias_table"] = np.zeros((25, 24))
        stored[f"layers.3.blocks.{j}.attn.relative_position_index"] = official_index(3)
    with pytest.raises(swinref.WeightsError) as e:
        swinref.convert_state_dict(stored, cfg, source="official")
    text = str(e.value)
    assert "odd 7x7 token grid" in text and "patch merging" in text, text
    assert "relative_position_bias_table" not in text, f"a table-shape error hides the cause: {text}"
    with pytest.raises(ValueError, match="odd 7x7 token grid"):
        layouts.export_state_dict(random_params(cfg), cfg, layout="official")


def test_non_square_window_has_no_official_model():
    cfg = swinref.SwinConfig(**{**NON_SQUARE, "window_size": (2, 4)})
    with pytest.raises(ValueError, match="one int window_size"):
        layouts.export_state_dict(random_params(cfg), cfg, layout="official")
