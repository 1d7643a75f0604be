"""Video Swin Transformer (3D), the forward pass of the released ``SwinTransformer3D`` + I3D head.

Liu et al., "Video Swin Transformer" (CVPR 2022); the released code is ``SwinTransformer3D`` in the
Video-Swin-Transformer repository (mmaction2-based). Every function takes the array namespace
``xp`` keyword-only and uses only the array API standard, like the 2D model.

Extra symbols: T input frames; D the temporal token count (ceil(T / Pt) after the patch embedding);
M = (Md, Mh, Mw) the window; N = Md*Mh*Mw tokens per window. Token grids are channels-last,
(B, D, H, W, C); the released modules hand (B, C, D, H, W) between stages, the values are the same.

What the released code does, and this module reproduces (see docs/video.md):

- the patch embedding zero-pads T, H, W at the end up to multiples of the patch (2, 4, 4);
- a block pads D, H, W at the end to multiples of the window, *then* rolls (timm's 2D model rolls
  first); padded tokens are not masked;
- the window is clamped per dimension with ``<=`` (``get_window_size``): where the token extent
  r <= M the window becomes r and that dimension's shift 0;
- a clamped window (N smaller than the configured window's) takes the first N x N entries of the
  *configured* window's relative position index, not the clamped window's own index;
- the shifted-window mask labels 27 regions (3 slices per axis) with -100 across regions;
- patch merging is spatial only, channel order x0..x3 as in 2D, at the end of stages 0..S-2;
- the head: LayerNorm, mean over time and space, Linear.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..core import backend
from ..core.config import ConfigBase, triple
from ..core.layers import gather_bias, index_like, mask_for, mlp, pool_head, space_to_depth
from ..core.layers import patch_embed as patch_embed_nd
from ..core.layers import window_attention as window_attention_nd
from ..core.numerics import LN_EPS, layer_norm, linear
from ..core.params import (
    INIT_SCHEMES,
    Scope,
    check_arrays_like,
    check_batch,
    check_param_shapes,
    count,
    random_value,
    seeded_params,
    trunc_normal,
)
from ..core.windows import (  # noqa: F401  (the 3-D window ops are the shared N-d ones)
    clamp_window,
    pad_end,
    region_ids,
    relative_position_index,
    shift_mask,
    shifted_window_apply,
    window_partition,
    window_reverse,
)

FAMILY = "video"
Triple = tuple[int, int, int]


# ----- configuration -------------------------------------------------------------------------
@dataclass(frozen=True)
class VideoSwinConfig(ConfigBase):
    """A Video Swin classifier: ``SwinTransformer3D`` backbone plus the I3D head.

    Field names are the released ``SwinTransformer3D`` arguments (``num_classes`` is the
    ``I3DHead`` argument). Defaults are the released Swin-T Kinetics-400 config
    (``swin_tiny_patch244_window877_kinetics400_1k``); the constructor's own defaults
    (patch (4, 4, 4), window (2, 7, 7), patch_norm False) are not used by any released config.
    """

    family: ClassVar[str] = FAMILY

    patch_size: Triple = (2, 4, 4)  # conv kernel = stride over (T, H, W)
    in_chans: int = 3
    embed_dim: int = 96  # C of stage 0; stage i has C * 2**i
    depths: tuple[int, ...] = (2, 2, 6, 2)
    num_heads: tuple[int, ...] = (3, 6, 12, 24)
    window_size: Triple = (8, 7, 7)  # (Md, Mh, Mw) in tokens
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    patch_norm: bool = True  # every released config sets it (the constructor default is False)
    num_classes: int = 400  # 0: no head, the forward returns pooled features

    def __post_init__(self):
        self._normalise()
        problems = []
        for name in ("patch_size", "window_size"):
            try:
                value = triple(getattr(self, name), name)
                object.__setattr__(self, name, value)
                if min(value) < 1:
                    problems.append(f"{name} must be >= 1 on every axis, got {value}")
            except ValueError as e:
                problems.append(str(e))
        problems += self._stage_problems()
        for name in ("qkv_bias", "patch_norm"):
            if not isinstance(getattr(self, name), bool):
                problems.append(f"{name} must be True or False, got {getattr(self, name)!r}")
        self._raise_if(problems)

    @classmethod
    def named(cls, name: str, **overrides: Any) -> VideoSwinConfig:
        """A released model by short name (``swin_t``) or config name; overrides replace fields."""
        key = VIDEO_ALIASES.get(name, name)
        if key not in VIDEO_MODEL_ZOO:
            valid = sorted(set(VIDEO_MODEL_ZOO) | set(VIDEO_ALIASES))
            raise ValueError(f"unknown video model {name!r}; expected one of: {', '.join(valid)}")
        return cls(**{**VIDEO_MODEL_ZOO[key], **overrides})


# Released configs (configs/recognition/swin/*.py of Video-Swin-Transformer; the base model files
# set patch (4, 4, 4) and window (8, 7, 7), every recognition config overrides patch to (2, 4, 4)).
_TINY = dict(embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24))
_SMALL = dict(embed_dim=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24))
_BASE = dict(embed_dim=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32))
VIDEO_MODEL_ZOO: dict[str, dict[str, Any]] = {
    "swin_tiny_patch244_window877_kinetics400_1k": dict(**_TINY, window_size=(8, 7, 7), num_classes=400),
    "swin_small_patch244_window877_kinetics400_1k": dict(**_SMALL, window_size=(8, 7, 7), num_classes=400),
    "swin_base_patch244_window877_kinetics400_1k": dict(**_BASE, window_size=(8, 7, 7), num_classes=400),
    # Something-Something v2 uses the longer temporal window and 174 classes
    "swin_base_patch244_window1677_sthv2": dict(**_BASE, window_size=(16, 7, 7), num_classes=174),
}
VIDEO_ALIASES = {
    "swin_t": "swin_tiny_patch244_window877_kinetics400_1k",
    "swin_s": "swin_small_patch244_window877_kinetics400_1k",
    "swin_b": "swin_base_patch244_window877_kinetics400_1k",
    "swin_b_sthv2": "swin_base_patch244_window1677_sthv2",
}


# ----- parameters ----------------------------------------------------------------------------
def param_shapes(cfg: VideoSwinConfig) -> dict[str, tuple[int, ...]]:
    """Every parameter name and shape, named as in the released recognizer's state dict.

    The backbone lives under ``backbone.`` and the classifier is ``cls_head.fc_cls``; merges sit at
    the end of stage i (``backbone.layers.{i}.downsample``, i < S-1), as in the official 2D code.
    """
    C0, (Pt, Ph, Pw) = cfg.embed_dim, cfg.patch_size
    Md, Mh, Mw = cfg.window_size
    shapes: dict[str, tuple[int, ...]] = {
        "backbone.patch_embed.proj.weight": (C0, cfg.in_chans, Pt, Ph, Pw),
        "backbone.patch_embed.proj.bias": (C0,),
    }
    if cfg.patch_norm:
        shapes["backbone.patch_embed.norm.weight"] = (C0,)
        shapes["backbone.patch_embed.norm.bias"] = (C0,)
    for i, depth in enumerate(cfg.depths):
        C, nH = cfg.stage_dim(i), cfg.num_heads[i]
        hidden = int(C * cfg.mlp_ratio)
        for j in range(depth):
            b = f"backbone.layers.{i}.blocks.{j}"
            shapes[f"{b}.norm1.weight"] = (C,)
            shapes[f"{b}.norm1.bias"] = (C,)
            shapes[f"{b}.attn.relative_position_bias_table"] = (
                (2 * Md - 1) * (2 * Mh - 1) * (2 * Mw - 1),
                nH,
            )
            shapes[f"{b}.attn.qkv.weight"] = (3 * C, C)
            if cfg.qkv_bias:
                shapes[f"{b}.attn.qkv.bias"] = (3 * C,)
            shapes[f"{b}.attn.proj.weight"] = (C, C)
            shapes[f"{b}.attn.proj.bias"] = (C,)
            shapes[f"{b}.norm2.weight"] = (C,)
            shapes[f"{b}.norm2.bias"] = (C,)
            shapes[f"{b}.mlp.fc1.weight"] = (hidden, C)
            shapes[f"{b}.mlp.fc1.bias"] = (hidden,)
            shapes[f"{b}.mlp.fc2.weight"] = (C, hidden)
            shapes[f"{b}.mlp.fc2.bias"] = (C,)
        if i < cfg.num_stages - 1:
            d = f"backbone.layers.{i}.downsample"
            shapes[f"{d}.norm.weight"] = (4 * C,)
            shapes[f"{d}.norm.bias"] = (4 * C,)
            shapes[f"{d}.reduction.weight"] = (2 * C, 4 * C)
    shapes["backbone.norm.weight"] = (cfg.num_features,)
    shapes["backbone.norm.bias"] = (cfg.num_features,)
    if cfg.num_classes:
        shapes["cls_head.fc_cls.weight"] = (cfg.num_classes, cfg.num_features)
        shapes["cls_head.fc_cls.bias"] = (cfg.num_classes,)
    return shapes


def init_params(
    cfg: VideoSwinConfig, *, seed: int = 0, dtype: str = "float64", scheme: str = "timm"
) -> dict[str, np.ndarray]:
    """Seeded weights as NumPy arrays; the same seed gives the same bits.

    scheme "timm": the released initialisation (timm's scheme): truncated normal (std 0.02) for
    linear and conv weights and the bias tables, zero biases, LayerNorm weight 1 / bias 0; the I3D
    head's fc_cls is normal with std 0.01 (its init_std). scheme "random": every entry
    non-trivial (:func:`swinref.core.params.random_value`).
    """
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"scheme must be one of {', '.join(INIT_SCHEMES)}, got {scheme!r}")

    def released(rng: np.random.Generator, name: str, shape: tuple[int, ...]) -> np.ndarray:
        leaf = name.rsplit(".", 1)[-1]
        if ".norm" in name and leaf == "weight":
            return np.ones(shape)
        if leaf == "bias":
            return np.zeros(shape)
        if name.startswith("cls_head."):
            return rng.normal(0.0, 0.01, size=shape)
        return trunc_normal(rng, shape, 0.02)

    return seeded_params(
        param_shapes(cfg), seed=seed, dtype=dtype, value=released if scheme == "timm" else random_value
    )


def count_params(cfg: VideoSwinConfig) -> int:
    """Number of learned parameters of the recognizer (backbone and head)."""
    return count(param_shapes(cfg))


# ----- window geometry -----------------------------------------------------------------------
def get_window_size(resolution: Triple, window: Triple, shift: Triple) -> tuple[Triple, Triple]:
    """Window and shift actually used at a token extent (D, H, W): released ``get_window_size``.

    Per dimension, where r <= M (note ``<=``) the window becomes r and that shift 0: timm's
    per-axis clamp rule (:func:`swinref.core.windows.clamp_window`).
    """
    win, sh = clamp_window(resolution, window, shift, rule="timm")
    return (win[0], win[1], win[2]), (sh[0], sh[1], sh[2])


# ----- components ----------------------------------------------------------------------------
def patch_embed(p: Mapping[str, Any], x, *, patch_size: Triple, patch_norm: bool, xp):
    """3D patch embedding: conv with kernel = stride = (Pt, Ph, Pw) as patch reshape + matmul.

    x: (B, Cin, T, H, W); T, H, W are zero-padded at the end up to multiples of the patch (the
    released ``PatchEmbed3D`` pads W, H, then T). p: ``proj.weight`` (C, Cin, Pt, Ph, Pw),
    ``proj.bias``, and ``norm.*`` with patch_norm. Returns (B, D, H', W', C), D = ceil(T / Pt).
    """
    T, H, W = x.shape[2:]
    x = pad_end(x, {2: (-T) % patch_size[0], 3: (-H) % patch_size[1], 4: (-W) % patch_size[2]}, xp=xp)
    return patch_embed_nd(p, x, patch_size=patch_size, patch_norm=patch_norm, xp=xp)  # (B, D, H', W', C)


def relative_position_bias(table, window: Triple, N: int, *, xp):
    """Per-head bias (nH, N, N) for windows of N tokens, from the configured window's table.

    Released quirk: the code always gathers with ``relative_position_index[:N, :N]`` of the
    *configured* window, also when the window was clamped to fewer tokens. For a clamp of the
    temporal axis only, those are exactly the clamped window's pairs (time is the outermost axis);
    a spatial clamp pairs tokens with offsets that are not theirs.
    """
    index = index_like(window, table)[:N, :N]  # first N x N entries of the full window's, as released
    return gather_bias(table, index, xp=xp)  # (nH, N, N)


def window_attention(p: Mapping[str, Any], x, *, num_heads: int, bias, mask=None, xp):
    """Multi-head self-attention inside each window, as in 2-D (the released code scales q).

    x: (B*nW, N, C); bias: (nH, N, N); mask: None or (nW, N, N). Returns (B*nW, N, C).
    """
    return window_attention_nd(p, x, num_heads=num_heads, bias=bias, mask=mask, xp=xp)


def swin_block(
    p: Mapping[str, Any], x, *, num_heads: int, window: Triple, full_window: Triple, shift: Triple, xp
):
    """One pre-norm 3D block: x + (S)W-MSA(norm1(x)), then x + MLP(norm2(x)).

    x: (B, D, H, W, C); window/shift are the clamped values, full_window the configured one (it
    owns the bias table). Returns (B, D, H, W, C).
    """
    bias = relative_position_bias(
        p["attn.relative_position_bias_table"], full_window, window[0] * window[1] * window[2], xp=xp
    )  # (nH, N, N)

    def attend(windows, mask):  # (B*nW, N, C)
        return window_attention(Scope(p, "attn"), windows, num_heads=num_heads, bias=bias, mask=mask, xp=xp)

    h = layer_norm(x, p["norm1.weight"], p["norm1.bias"], eps=LN_EPS, xp=xp)
    # released order: pad at the end first, then roll (timm's 2D model rolls, then pads)
    h = shifted_window_apply(
        h, window, shift, attend, roll_first=False, mask_for=mask_for(x, window, shift), xp=xp
    )  # (B, D, H, W, C)
    x = x + h
    return x + mlp(
        Scope(p, "mlp"), layer_norm(x, p["norm2.weight"], p["norm2.bias"], eps=LN_EPS, xp=xp), xp=xp
    )


def patch_merging(p: Mapping[str, Any], x, *, xp):
    """Spatial-only 2x2 merge per frame: (B, D, H, W, C) -> (B, D, ceil(H/2), ceil(W/2), 2C).

    Odd H or W is zero-padded at the end first. Channel order as in 2D: x[:, :, 0::2, 0::2],
    x[:, :, 1::2, 0::2], x[:, :, 0::2, 1::2], x[:, :, 1::2, 1::2]; then LayerNorm(4C) and
    Linear(4C -> 2C, no bias).
    """
    x = space_to_depth(x, xp=xp)  # (B, D, H/2, W/2, 4C): time untouched
    x = layer_norm(x, p["norm.weight"], p["norm.bias"], eps=LN_EPS, xp=xp)
    return linear(x, p["reduction.weight"], None, xp=xp)


# ----- input checks --------------------------------------------------------------------------
def check_input(x, cfg: VideoSwinConfig) -> None:
    """Raise a clear error unless x is a float video batch (B, in_chans, T, H, W) of >= 1 patch."""
    if not isinstance(cfg, VideoSwinConfig):
        raise TypeError(
            f"swinref.models.video needs a VideoSwinConfig, got {type(cfg).__name__}; swinref.forward "
            "takes a config of any family"
        )
    shape = tuple(x.shape)
    form = f"(B, {cfg.in_chans}, T, H, W)"
    hint = " (an image batch? add a time axis: x[:, :, None])" if len(shape) == 4 else ""
    check_batch(x, cfg.in_chans, axes="T, H, W", what="video", hint=hint)
    for axis, size, p in zip("THW", shape[2:], cfg.patch_size, strict=False):
        if size < p:
            raise ValueError(
                f"video has {axis}={size}, fewer than one patch ({axis} >= {p} needed for "
                f"patch_size={cfg.patch_size}); expected {form} with T >= {cfg.patch_size[0]}, "
                f"H >= {cfg.patch_size[1]}, W >= {cfg.patch_size[2]}"
            )


MODEL_PREFIXES = ("backbone.", "cls_head.")


def check_params(params: Mapping[str, Any], x, cfg: VideoSwinConfig) -> None:
    """The params contract: names and shapes against cfg, arrays in x's namespace, device, dtype."""
    check_param_shapes(params, param_shapes(cfg), model_prefixes=MODEL_PREFIXES)
    check_arrays_like(params, x)


# ----- the whole model -----------------------------------------------------------------------
def forward(params: Mapping[str, Any], x, cfg: VideoSwinConfig, *, return_intermediates: bool = False):
    """Video Swin forward pass.

    params: mapping named as in :func:`param_shapes` (the released recognizer's state dict),
    arrays in x's namespace, device and dtype. x: (B, in_chans, T, H, W), float32 or float64, any
    T, H, W of at least one patch (smaller multiples of the patch are zero-padded).
    Returns logits (B, num_classes), or pooled features (B, num_features) when num_classes == 0;
    with ``return_intermediates`` also a dict, channels-last (B, D, H, W, C) unless noted:
    ``backbone.patch_embed``; ``backbone.layers.{i}.blocks.{j}``; ``backbone.layers.{i}.downsample``;
    ``backbone.layers.{i}`` (the stage module's output, after its merge); ``backbone.norm``;
    ``pre_logits`` (B, C); ``logits``. Names are the released module paths.
    """
    check_input(x, cfg)
    check_params(params, x, cfg)
    xp = backend.namespace(x)
    inter: dict[str, Any] = {}

    h = patch_embed(
        Scope(params, "backbone.patch_embed"), x, patch_size=cfg.patch_size, patch_norm=cfg.patch_norm, xp=xp
    )  # (B, D, H/4, W/4, C)
    inter["backbone.patch_embed"] = h
    full = cfg.window_size
    for i, depth in enumerate(cfg.depths):
        stage = f"backbone.layers.{i}"
        D, H, W = h.shape[1], h.shape[2], h.shape[3]
        # the stage computes one clamped window for all its blocks (BasicLayer3D)
        window, shift = get_window_size((D, H, W), full, (full[0] // 2, full[1] // 2, full[2] // 2))
        for j in range(depth):
            shifted = j % 2 == 1
            h = swin_block(
                Scope(params, f"{stage}.blocks.{j}"),
                h,
                num_heads=cfg.num_heads[i],
                window=window,
                full_window=full,
                shift=shift if shifted else (0, 0, 0),
                xp=xp,
            )
            inter[f"{stage}.blocks.{j}"] = h
        if i < cfg.num_stages - 1:
            h = patch_merging(Scope(params, f"{stage}.downsample"), h, xp=xp)
            inter[f"{stage}.downsample"] = h
        inter[stage] = h
    h = layer_norm(h, params["backbone.norm.weight"], params["backbone.norm.bias"], eps=LN_EPS, xp=xp)
    inter["backbone.norm"] = h
    pooled, logits = pool_head(params, h, head="cls_head.fc_cls", xp=xp)  # I3D: mean over time and space
    inter["pre_logits"] = pooled
    if logits is None:
        return (pooled, inter) if return_intermediates else pooled
    inter["logits"] = logits
    return (logits, inter) if return_intermediates else logits


def input_shape(cfg: VideoSwinConfig, *, batch: int, size: tuple[int, ...] | None = None) -> tuple[int, ...]:
    """Shape of an input clip batch: (B, in_chans, T, H, W); (T, H, W) = size or :data:`DEFAULT_CLIP`."""
    T, H, W = DEFAULT_CLIP if size is None else size
    return (batch, cfg.in_chans, T, H, W)


# The released test pipelines feed 32 frames at 224 x 224 (Kinetics-400 and Something-Something v2).
DEFAULT_CLIP = (32, 224, 224)
