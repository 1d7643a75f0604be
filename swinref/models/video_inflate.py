"""Video Swin weights from a 2-D Swin V1 model: the released ``inflate_weights``.

A converter between two families, so it lives beside both rather than inside either.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..core import backend
from .v1 import SwinConfig
from .v1 import param_shapes as param_shapes_2d
from .video import VideoSwinConfig, param_shapes


def inflate_2d(
    params_2d: Mapping[str, Any], cfg2d: SwinConfig, cfg3d: VideoSwinConfig, *, seed: int = 0
) -> dict[str, np.ndarray]:
    """3D params from a 2D Swin V1 model (timm layout), as the released ``inflate_weights``.

    - the patch-embed conv (C, Cin, Ph, Pw) is repeated over Pt time steps and divided by Pt, so a
      static clip of Pt frames embeds like one frame;
    - each relative position bias table ((2Mh-1)(2Mw-1), nH) is repeated (2Md-1) times along the
      rows, one copy per temporal offset;
    - every other tensor is copied; the 2D merge at the start of stage i+1 (timm) becomes the 3D
      merge at the end of stage i; the head ``head.fc`` becomes ``cls_head.fc_cls`` when the class
      counts agree, otherwise a fresh head is drawn from ``seed`` (normal, std 0.01; the released
      recipe also trains a new head).
    The spatial window must equal the 2D one (the released code would resize the table bicubically
    otherwise; that is not reproduced). Returns NumPy arrays in params_2d's float dtype.
    """
    mismatched = [
        f"{n3} {a!r} vs 2D {n2} {b!r}"
        for n3, a, n2, b in (
            ("in_chans", cfg3d.in_chans, "in_chans", cfg2d.in_chans),
            ("embed_dim", cfg3d.embed_dim, "embed_dim", cfg2d.embed_dim),
            ("depths", cfg3d.depths, "depths", tuple(cfg2d.depths)),
            ("num_heads", cfg3d.num_heads, "num_heads", tuple(cfg2d.num_heads)),
            ("mlp_ratio", cfg3d.mlp_ratio, "mlp_ratio", cfg2d.mlp_ratio),
            ("qkv_bias", cfg3d.qkv_bias, "qkv_bias", cfg2d.qkv_bias),
            ("patch_norm", cfg3d.patch_norm, "patch_norm", cfg2d.patch_norm),
            ("patch_size[1:]", cfg3d.patch_size[1:], "patch_size", (cfg2d.patch_size,) * 2),
            ("window_size[1:]", cfg3d.window_size[1:], "window_size", tuple(cfg2d.window)),
        )
        if a != b
    ]
    if mismatched:
        raise ValueError(
            "cannot inflate: the 3D config must match the 2D one except for time:\n  "
            + "\n  ".join(mismatched)
        )
    src = {name: backend.to_numpy(v) for name, v in params_2d.items()}
    missing = [name for name in param_shapes_2d(cfg2d) if name not in src]
    if missing:
        raise ValueError(
            f"cannot inflate: the 2D params lack {len(missing)} entries of the 2D "
            f"config (timm names expected): {', '.join(missing[:5])}" + (", ..." if len(missing) > 5 else "")
        )
    dtype = src["patch_embed.proj.weight"].dtype
    Pt, Md = cfg3d.patch_size[0], cfg3d.window_size[0]
    out: dict[str, np.ndarray] = {}
    for name, shape in param_shapes(cfg3d).items():
        if name == "backbone.patch_embed.proj.weight":
            w = src["patch_embed.proj.weight"]  # (C, Cin, Ph, Pw)
            out[name] = np.repeat(w[:, :, None], Pt, axis=2) / Pt  # (C, Cin, Pt, Ph, Pw)
        elif name.endswith("relative_position_bias_table"):
            table = src[name[len("backbone.") :]]  # ((2Mh-1)(2Mw-1), nH)
            if table.shape[0] * (2 * Md - 1) != shape[0]:
                raise ValueError(
                    f"cannot inflate {name[len('backbone.') :]}: its table has {table.shape[0]} "
                    f"rows, the {cfg3d.window_size[1]}x{cfg3d.window_size[2]} window needs "
                    f"{shape[0] // (2 * Md - 1)}; the 2D model clamps this stage's window at its "
                    "img_size (a grid smaller than the window): inflate from a 2D model whose "
                    "stages are all at least one window wide"
                )
            out[name] = np.tile(table, (2 * Md - 1, 1))  # temporal offset outermost
        elif ".downsample." in name:
            i, leaf = int(name.split(".")[2]), name.split(".downsample.")[1]
            out[name] = src[f"layers.{i + 1}.downsample.{leaf}"]  # timm: start of stage i+1
        elif name.startswith("cls_head."):
            continue
        else:
            out[name] = src[name[len("backbone.") :]]
        if out[name].shape != shape:
            raise ValueError(f"cannot inflate {name}: got {out[name].shape}, expected {shape}")
    if cfg3d.num_classes:
        if cfg3d.num_classes == cfg2d.num_classes:
            out["cls_head.fc_cls.weight"] = src["head.fc.weight"]
            out["cls_head.fc_cls.bias"] = src["head.fc.bias"]
        else:
            rng = np.random.default_rng(seed)
            out["cls_head.fc_cls.weight"] = rng.normal(
                0.0, 0.01, size=(cfg3d.num_classes, cfg3d.num_features)
            )
            out["cls_head.fc_cls.bias"] = np.zeros(cfg3d.num_classes)
    return {name: np.asarray(v, dtype=dtype) for name, v in out.items()}
