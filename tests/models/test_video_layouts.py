"""Video Swin weights in torchvision's layout (``models.video.SwinTransformer3d``), both ways.

torchvision's own model is the reference: its state dict, every parameter random, goes through
``swinref.convert_state_dict(source="torchvision")`` and swinref's float64 forward must reproduce
its logits; swinref's export must load into it with ``strict=True`` and give the same logits.
The clip 5x36x52 is 3x9x13 tokens after the (2, 4, 4) patch embedding (which pads T from 5 to 6),
longer than the time window 2 and padded in T, H and W by every block of both stages.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

import swinref
from swinref import video
from swinref.models import video_layouts

torch = pytest.importorskip("torch", reason="the layout checks need torch")
pytest.importorskip("torchvision", reason="the layout checks need torchvision")

CFG = video.VideoSwinConfig(
    embed_dim=8, depths=(2, 2), num_heads=(2, 4), window_size=(2, 4, 4), num_classes=5
)
CLIP = (1, 3, 5, 36, 52)
# float64, same sums in another order: a few ULP of O(1) activations (measured 4e-16 here); 1e-10
# is far below what a swapped fc1/fc2 or a misplaced merge costs with random weights (O(0.1))
ATOL_F64 = 1e-10


def torchvision_model(cfg: video.VideoSwinConfig, seed: int = 0):
    from torchvision.models.video.swin_transformer import PatchEmbed3d, SwinTransformer3d

    m = SwinTransformer3d(
        patch_size=list(cfg.patch_size),
        embed_dim=cfg.embed_dim,
        depths=list(cfg.depths),
        num_heads=list(cfg.num_heads),
        window_size=list(cfg.window_size),
        stochastic_depth_prob=0.0,
        num_classes=cfg.num_classes,
        patch_embed=functools.partial(PatchEmbed3d, in_channels=cfg.in_chans),
    ).double()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():  # every parameter random: biases, norms and tables included
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) * (0.5 if p.ndim > 1 else 0.2))
    return m.eval()


def logits_of(module, x):
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


def test_torchvision_state_dict_converts_and_matches_its_logits():
    m = torchvision_model(CFG)
    params = swinref.convert_state_dict(m.state_dict(), CFG, source="torchvision")
    assert list(params) == list(video.param_shapes(CFG)), "converted names in param_shapes order"
    x = np.random.default_rng(1).standard_normal(CLIP)
    diff = np.abs(np.asarray(video.forward(params, x, CFG)) - logits_of(m, x)).max()
    assert diff <= ATOL_F64, f"float64 logits differ from torchvision's by {diff:.3e} > {ATOL_F64}"
    assert video_layouts.detect_layout(m.state_dict()) == "torchvision"
    auto = swinref.convert_state_dict(m.state_dict(), CFG, source="auto")
    assert all(np.array_equal(auto[n], params[n]) for n in params), "auto must detect torchvision"


def test_export_loads_strictly_into_torchvision_and_round_trips():
    params = video.init_params(CFG, seed=3, scheme="random")
    exported = swinref.export_state_dict(params, CFG, layout="torchvision")
    m = torchvision_model(CFG, seed=1)
    m.load_state_dict(
        {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in exported.items()}, strict=True
    )
    x = np.random.default_rng(2).standard_normal(CLIP)
    diff = np.abs(np.asarray(video.forward(params, x, CFG)) - logits_of(m, x)).max()
    assert diff <= ATOL_F64, f"exported weights: logits differ by {diff:.3e} > {ATOL_F64}"
    back = swinref.convert_state_dict(exported, CFG, source="torchvision")
    assert back.keys() == params.keys() and all(np.array_equal(back[n], params[n]) for n in params)
    official = swinref.export_state_dict(params, CFG, layout="official")
    assert video_layouts.detect_layout(official) == "official"
    assert all(np.array_equal(official[n], params[n]) for n in params)


def test_names_map_one_to_one():
    names = [video_layouts.layout_name(n, CFG, "torchvision") for n in video.param_shapes(CFG)]
    assert len(set(names)) == len(names), "two parameters share a torchvision name"
    assert "features.0.1.mlp.3.weight" in names and "features.1.reduction.weight" in names
    assert "features.2.0.attn.qkv.weight" in names and "head.bias" in names


def test_torchvision_problems_are_named_as_stored():
    sd = {k: v.numpy() for k, v in torchvision_model(CFG).state_dict().items()}
    del sd["features.1.reduction.weight"]
    sd["features.2.1.attn.relative_position_index"] = sd["features.2.1.attn.relative_position_index"] + 1
    sd["features.0.0.mlp.0.weight"] = sd["features.0.0.mlp.0.weight"][:, :4]
    with pytest.raises(swinref.WeightsError) as e:
        swinref.convert_state_dict(sd, CFG, source="torchvision")
    text = str(e.value)
    for part in (
        "backbone.layers.0.downsample.reduction.weight",  # missing: named by what the config needs
        "features.2.1.attn.relative_position_index: stored index differs",
        "features.0.0.mlp.0.weight: got (32, 4), expected (32, 8)",
    ):
        assert part in text, f"expected {part!r} in: {text}"
    with pytest.raises(swinref.WeightsError, match="look like the 'torchvision' layout"):
        swinref.convert_state_dict(sd, CFG, source="official")
    with pytest.raises(ValueError, match="unknown layout 'mmaction'.*official, torchvision, mmaction2"):
        swinref.export_state_dict(video.init_params(CFG), CFG, layout="mmaction")
