"""timm models with seeded random weights, and their named intermediates, for the cross-checks.

Every float parameter is drawn at random, so a bias, a LayerNorm affine or a position table that
swinref mishandled could not hide behind timm's default initialisation (zero biases, unit norms).
Import this module only after ``pytest.importorskip("torch")`` and ``("timm")``.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import timm
import torch
from timm.models.swin_transformer import SwinTransformer

import swinref
from swinref.models.v1 import SHORT_NAMES

# Models compared against timm: a released name, or timm constructor kwargs (the same kwargs build
# the SwinConfig). The small ones cover what the released models never reach.
CROSSCHECK_MODELS: dict[str, str | dict[str, Any]] = {
    "swin_t": "swin_t",
    "swin_s": "swin_s",
    "small": dict(img_size=64, embed_dim=32, depths=(2, 2), num_heads=(2, 4), window_size=4, num_classes=10),
    # 16x16 and 8x8 grids with a 5x5 window: every block pads (timm rolls first, then pads)
    "padded": dict(img_size=64, embed_dim=32, depths=(2, 2), num_heads=(2, 4), window_size=5, num_classes=10),
    "non_square": dict(
        img_size=(64, 96), embed_dim=32, depths=(2, 2), num_heads=(2, 4), window_size=(4, 6), num_classes=10
    ),
    # stage 1 grid 8x8 pads to 14x14; stage 2 grid 4x4 <= 7 clamps the window to 4x4, no shift
    "clamped": dict(
        img_size=32, embed_dim=32, depths=(2, 2), num_heads=(2, 4), window_size=7, num_classes=10
    ),
    # stage 2 grid 4x8 with a 6x6 window: clamped to (4, 6) in height only, shift (0, 3)
    "clamped_one_axis": dict(
        img_size=(32, 64), embed_dim=32, depths=(2, 2), num_heads=(2, 4), window_size=6, num_classes=10
    ),
}


def swinref_config(model: str | dict[str, Any]) -> swinref.SwinConfig:
    if isinstance(model, str):
        return swinref.SwinConfig.named(model)
    return swinref.SwinConfig(**model)


def build_timm(model: str | dict[str, Any], *, device: str | None = None) -> torch.nn.Module:
    """timm's model for a released short name or constructor kwargs, in eval mode (float32)."""
    with torch.device(device or "cpu"):
        if isinstance(model, str):
            return timm.create_model(SHORT_NAMES.get(model, model)).eval()
        return SwinTransformer(**model).eval()


def randomize_(module: torch.nn.Module, *, seed: int) -> torch.nn.Module:
    """Overwrite every float parameter with seeded random values that keep activations O(1).

    Matrix and conv weights ~ N(0, 1/fan_in), so each linear map keeps unit scale and attention
    logits are O(1) (attention is neither uniform nor one-hot); relative position tables ~ N(0, 0.5),
    comparable to the q.k logits; LayerNorm weights 1 + 0.1 N(0, 1); all biases 0.1 N(0, 1).
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            z = torch.randn(p.shape, generator=gen, dtype=torch.float64)
            leaf = name.rsplit(".", 1)[-1]
            if name.endswith("relative_position_bias_table"):
                value = 0.5 * z
            elif leaf == "bias":
                value = 0.1 * z
            elif p.ndim == 1:  # LayerNorm weight
                value = 1.0 + 0.1 * z
            else:  # Linear (out, in) or Conv (out, in, kh, kw)
                value = z / np.sqrt(p[0].numel())
            p.copy_(value.to(p.dtype))
    return module


@functools.cache
def random_timm(key: str, seed: int = 0) -> torch.nn.Module:
    """The randomised float32 timm model of ``CROSSCHECK_MODELS[key]`` (built once per session)."""
    return randomize_(build_timm(CROSSCHECK_MODELS[key]), seed=seed)


def intermediate_names(model: torch.nn.Module) -> list[str]:
    """timm module names whose outputs swinref also returns, in the order they are computed."""
    names = ["patch_embed"]
    for i, stage in enumerate(model.layers):
        if not isinstance(stage.downsample, torch.nn.Identity):
            names.append(f"layers.{i}.downsample")
        names += [f"layers.{i}.blocks.{j}" for j in range(len(stage.blocks))]
        names.append(f"layers.{i}")
    return names + ["norm", "pre_logits", "logits"]


def timm_intermediates(model: torch.nn.Module, x: torch.Tensor) -> dict[str, np.ndarray]:
    """Run timm on x and collect every output named by :func:`intermediate_names` (as NumPy).

    Module outputs come from forward hooks; "pre_logits" and "logits" from ``forward_head``.
    The dict is ordered as the hooks fired.
    """
    out: dict[str, np.ndarray] = {}
    hooked = [n for n in intermediate_names(model) if n not in ("pre_logits", "logits")]

    def hook(name):
        def save(_module, _inputs, output):
            out[name] = output.detach().numpy().copy()

        return save

    handles = [model.get_submodule(n).register_forward_hook(hook(n)) for n in hooked]
    try:
        with torch.no_grad():
            feats = model.forward_features(x)
            out["pre_logits"] = model.forward_head(feats, pre_logits=True).numpy()
            out["logits"] = model.forward_head(feats).numpy()
    finally:
        for h in handles:
            h.remove()
    return out


def random_input(cfg: swinref.SwinConfig, *, batch: int = 2, seed: int = 1) -> np.ndarray:
    """A seeded float64 image batch (B, in_chans, H, W) ~ N(0, 1)."""
    H, W = cfg.image_hw
    return np.random.default_rng(seed).standard_normal((batch, cfg.in_chans, H, W))


def max_abs_diff(a: Any, b: Any) -> float:
    a = swinref.to_numpy(a).astype(np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise AssertionError(f"shape {a.shape}, expected {b.shape}")
    return float(np.max(np.abs(a - b)))
