"""Seeded O(1) params and inputs for the size-semantics, backbone and cross-check tests."""

from __future__ import annotations

import numpy as np

import swinref
from swinref import param_shapes


def random_params(
    cfg: swinref.SwinConfig, *, seed: int = 0, backbone_norms: bool = False, dtype: str = "float64"
) -> dict[str, np.ndarray]:
    """Params of ``cfg`` (tables sized for its semantics) with values that keep activations O(1).

    Weights ~ N(0, 1/fan_in), tables ~ N(0, 0.5), biases ~ 0.1 N(0, 1), norm weights 1 + 0.1 N(0, 1):
    attention is then neither uniform nor one-hot, so a changed window, shift or mask moves the
    output by far more than rounding. ``backbone_norms`` adds ``norm{i}.weight/bias`` per stage.
    """
    rng = np.random.default_rng(seed)
    shapes = dict(param_shapes(cfg))
    if backbone_norms:
        for i in range(cfg.num_stages):
            shapes[f"norm{i}.weight"] = (cfg.stage_dim(i),)
            shapes[f"norm{i}.bias"] = (cfg.stage_dim(i),)
    out = {}
    for name, shape in shapes.items():
        z = rng.standard_normal(shape)
        if name.endswith("relative_position_bias_table"):
            v = 0.5 * z
        elif name.endswith("bias"):
            v = 0.1 * z
        elif len(shape) == 1:
            v = 1.0 + 0.1 * z
        else:
            v = z / np.sqrt(np.prod(shape[1:]))
        out[name] = v.astype(dtype)
    return out


def random_image(
    cfg: swinref.SwinConfig, size: tuple[int, int], *, batch: int = 2, seed: int = 1
) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, cfg.in_chans) + tuple(size))


def run(cfg: swinref.SwinConfig, params, x, **kwargs):
    """swinref.forward on NumPy; returns (logits, intermediates) as NumPy arrays."""
    xp = swinref.get_namespace("numpy")
    logits, inter = swinref.forward(
        swinref.to_namespace(params, xp), xp.asarray(x), cfg, return_intermediates=True, **kwargs
    )
    return np.asarray(logits), {k: np.asarray(v) for k, v in inter.items()}
