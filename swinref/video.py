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

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import backend
from .config import StageWidths
from .model import LN_EPS, Scope, _cached, check_params, mlp
from .numerics import layer_norm, linear, softmax
from .weights import _trunc_normal
from .weights import param_shapes as param_shapes_2d
from .windows import MASK_VALUE

Triple = tuple[int, int, int]


def _triple(v: Any, name: str) -> Triple:
    if isinstance(v, int) and not isinstance(v, bool):
        return (v, v, v)
    if isinstance(v, (tuple, list)) and len(v) == 3 and all(
            isinstance(i, int) and not isinstance(i, bool) for i in v):
        return (int(v[0]), int(v[1]), int(v[2]))
    raise ValueError(f"{name} must be an int or a triple of ints (T, H, W), got {v!r}")


# ----- configuration -------------------------------------------------------------------------
@dataclass(frozen=True)
class VideoSwinConfig(StageWidths):
    """A Video Swin classifier: ``SwinTransformer3D`` backbone plus the I3D head.

    Field names are the released ``SwinTransformer3D`` arguments (``num_classes`` is the
    ``I3DHead`` argument). Defaults are the released Swin-T Kinetics-400 config
    (``swin_tiny_patch244_window877_kinetics400_1k``); the constructor's own defaults
    (patch (4, 4, 4), window (2, 7, 7), patch_norm False) are not used by any released config.
    """

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
        object.__setattr__(self, "depths", tuple(self.depths))
        object.__setattr__(self, "num_heads", tuple(self.num_heads))
        problems = []
        for name in ("patch_size", "window_size"):
            try:
                value = _triple(getattr(self, name), name)
                object.__setattr__(self, name, value)
                if min(value) < 1:
                    problems.append(f"{name} must be >= 1 on every axis, got {value}")
            except ValueError as e:
                problems.append(str(e))
        for name in ("in_chans", "embed_dim"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                problems.append(f"{name} must be a positive int, got {v!r}")
        if not isinstance(self.num_classes, int) or self.num_classes < 0:
            problems.append(f"num_classes must be an int >= 0, got {self.num_classes!r}")
        if not self.depths or any(not isinstance(d, int) or d < 1 for d in self.depths):
            problems.append(f"depths must be one or more positive ints, got {self.depths!r}")
        if len(self.depths) != len(self.num_heads):
            problems.append(f"depths has {len(self.depths)} stages but num_heads has "
                            f"{len(self.num_heads)}: give one head count per stage")
        elif isinstance(self.embed_dim, int):
            for i, h in enumerate(self.num_heads):
                if not isinstance(h, int) or h < 1 or self.stage_dim(i) % h:
                    problems.append(f"num_heads[{i}] = {h!r} must be a positive divisor of the "
                                    f"stage width {self.stage_dim(i)}")
        if not self.mlp_ratio > 0:
            problems.append(f"mlp_ratio must be > 0, got {self.mlp_ratio!r}")
        if problems:
            raise ValueError("invalid VideoSwinConfig:\n  - " + "\n  - ".join(problems))

    @classmethod
    def named(cls, name: str, **overrides: Any) -> "VideoSwinConfig":
        """A released model by short name (``swin_t``) or config name; overrides replace fields."""
        key = _VIDEO_ALIASES.get(name, name)
        if key not in VIDEO_MODEL_ZOO:
            valid = sorted(set(VIDEO_MODEL_ZOO) | set(_VIDEO_ALIASES))
            raise ValueError(f"unknown video model {name!r}; expected one of: {', '.join(valid)}")
        return cls(**{**VIDEO_MODEL_ZOO[key], **overrides})

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}


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
_VIDEO_ALIASES = {
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
                (2 * Md - 1) * (2 * Mh - 1) * (2 * Mw - 1), nH)
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


def init_params(cfg: VideoSwinConfig, seed: int = 0, *, dtype: str = "float64") -> dict[str, np.ndarray]:
    """Seeded weights as NumPy arrays: the released initialisation scheme.

    Truncated normal (std 0.02) for linear and conv weights and the bias tables, zero biases,
    LayerNorm weight 1 / bias 0; the I3D head's fc_cls is normal with std 0.01 (its init_std).
    """
    rng = np.random.default_rng(seed)
    params = {}
    for name, shape in param_shapes(cfg).items():
        leaf = name.rsplit(".", 1)[-1]
        is_norm = ".norm" in name
        if is_norm and leaf == "weight":
            value = np.ones(shape)
        elif leaf == "bias":
            value = np.zeros(shape)
        elif name.startswith("cls_head."):
            value = rng.normal(0.0, 0.01, size=shape)
        else:
            value = _trunc_normal(rng, shape, 0.02)
        params[name] = value.astype(dtype)
    return params


def convert_state_dict(state_dict: Mapping[str, Any], cfg: VideoSwinConfig, *,
                       dtype: str | None = None) -> dict[str, np.ndarray]:
    """Params (NumPy, :func:`param_shapes` names) from a released recognizer's state dict.

    The persistent ``relative_position_index`` buffers are not loaded but must equal the index of
    ``cfg.window_size``. Raises ValueError listing every missing, unexpected and mis-shaped entry.
    dtype: None keeps the stored dtype, "float32"/"float64" cast.
    """
    expected = param_shapes(cfg)
    index = np.asarray(relative_position_index(cfg.window_size, xp=backend.get_namespace("numpy")))
    params, problems = {}, []
    for name, value in state_dict.items():
        array = backend.to_numpy(value)
        if name.endswith("relative_position_index"):
            if array.shape != index.shape or not np.array_equal(array, index):
                problems.append(f"{name}: stored index differs from window {cfg.window_size}'s")
        elif name not in expected:
            problems.append(f"unexpected {name}")
        elif array.shape != expected[name]:
            problems.append(f"{name}: got {array.shape}, expected {expected[name]}")
        else:
            params[name] = array.astype(dtype) if dtype else array
    problems += [f"missing {name} {shape}" for name, shape in expected.items() if name not in state_dict]
    if problems:
        raise ValueError("state dict does not match the video config:\n  " + "\n  ".join(problems))
    return {name: params[name] for name in expected}


# ----- window geometry -----------------------------------------------------------------------
def get_window_size(resolution: Triple, window: Triple, shift: Triple) -> tuple[Triple, Triple]:
    """Window and shift actually used at a token extent (D, H, W): released ``get_window_size``.

    Per dimension, where r <= M (note ``<=``) the window becomes r and that shift 0.
    """
    win = tuple(r if r <= m else m for r, m in zip(resolution, window))
    sh = tuple(0 if r <= m else s for r, m, s in zip(resolution, window, shift))
    return win, sh


def window_partition(x, window: Triple, *, xp):
    """Cut (B, D, H, W, C) into windows, ordered (d, h, w) row-major, batch outermost.

    D, H, W must be multiples of (Md, Mh, Mw). Returns (B*nW, Md*Mh*Mw, C); tokens inside a window
    are ordered (d, h, w) row-major.
    """
    B, D, H, W, C = x.shape
    Md, Mh, Mw = window
    if D % Md or H % Mh or W % Mw:
        raise ValueError(f"grid {D}x{H}x{W} is not a multiple of the window {Md}x{Mh}x{Mw}")
    x = xp.reshape(x, (B, D // Md, Md, H // Mh, Mh, W // Mw, Mw, C))
    x = xp.permute_dims(x, (0, 1, 3, 5, 2, 4, 6, 7))  # (B, D/Md, H/Mh, W/Mw, Md, Mh, Mw, C)
    return xp.reshape(x, (-1, Md * Mh * Mw, C))  # (B*nW, N, C)


def window_reverse(windows, window: Triple, D: int, H: int, W: int, *, xp):
    """Inverse of :func:`window_partition`. windows: (B*nW, N, C). Returns (B, D, H, W, C)."""
    Md, Mh, Mw = window
    C = windows.shape[-1]
    x = xp.reshape(windows, (-1, D // Md, H // Mh, W // Mw, Md, Mh, Mw, C))
    x = xp.permute_dims(x, (0, 1, 4, 2, 5, 3, 6, 7))  # (B, D/Md, Md, H/Mh, Mh, W/Mw, Mw, C)
    return xp.reshape(x, (-1, D, H, W, C))


def relative_position_index(window: Triple, *, xp, device=None):
    """Bias-table row of every token pair of one (Md, Mh, Mw) window. Returns (N, N) int64.

    Entry (i, j) is ``(dd + Md-1)(2Mh-1)(2Mw-1) + (dh + Mh-1)(2Mw-1) + (dw + Mw-1)`` with
    (dd, dh, dw) = coords(i) - coords(j), tokens numbered (d, h, w) row-major.
    """
    Md, Mh, Mw = window
    axes = [xp.arange(m, dtype=xp.int64, device=device) for m in window]
    dd, hh, ww = (xp.reshape(g, (-1,)) for g in xp.meshgrid(*axes, indexing="ij"))  # (N,) each
    rel_d = dd[:, None] - dd[None, :] + (Md - 1)  # (N, N) in [0, 2Md-2]
    rel_h = hh[:, None] - hh[None, :] + (Mh - 1)
    rel_w = ww[:, None] - ww[None, :] + (Mw - 1)
    return rel_d * ((2 * Mh - 1) * (2 * Mw - 1)) + rel_h * (2 * Mw - 1) + rel_w


def region_ids(size: Triple, window: Triple, shift: Triple, *, xp, device=None):
    """Region label of every token of the padded, shifted grid (D, H, W). Returns int64 (D, H, W).

    Per axis of length L: slices [0, L-M), [L-M, L-s), [L-s, L); with s == 0 the axis is one
    region. Labels ``9*d_slice + 3*h_slice + w_slice``: up to 27 regions (released ``compute_mask``).
    """

    def axis_labels(L: int, M: int, s: int):
        i = xp.arange(L, dtype=xp.int64, device=device)
        if s == 0:
            return xp.zeros_like(i)
        one = xp.ones_like(i)
        return xp.where(i >= L - M, one, 0 * one) + xp.where(i >= L - s, one, 0 * one)

    ld, lh, lw = (axis_labels(L, M, s) for L, M, s in zip(size, window, shift))
    return 9 * ld[:, None, None] + 3 * lh[None, :, None] + lw[None, None, :]


def shift_mask(size: Triple, window: Triple, shift: Triple, *, xp, dtype=None, device=None):
    """Additive mask of shifted 3D window attention on a padded grid ``size`` (D, H, W).

    Returns (nW, N, N): 0 where two tokens of a window share a region id, -100 elsewhere.
    """
    D, H, W = size
    labels = region_ids(size, window, shift, xp=xp, device=device)  # (D, H, W)
    win = window_partition(xp.reshape(labels, (1, D, H, W, 1)), window, xp=xp)[..., 0]  # (nW, N)
    same = win[:, :, None] == win[:, None, :]  # (nW, N, N)
    zero = xp.zeros(same.shape, dtype=xp.float64 if dtype is None else dtype, device=device)
    return xp.where(same, zero, zero + MASK_VALUE)


def _pad_end(x, pads: Mapping[int, int], *, xp):
    """Zero-pad x at the end of each axis in ``pads`` (axis -> amount)."""
    for axis, amount in pads.items():
        if amount:
            shape = list(x.shape)
            shape[axis] = amount
            x = xp.concat([x, xp.zeros(tuple(shape), dtype=x.dtype, device=x.device)], axis=axis)
    return x


# ----- components ----------------------------------------------------------------------------
def patch_embed(p: Mapping[str, Any], x, *, patch_size: Triple, patch_norm: bool, xp):
    """3D patch embedding: conv with kernel = stride = (Pt, Ph, Pw) as patch reshape + matmul.

    x: (B, Cin, T, H, W); T, H, W are zero-padded at the end up to multiples of the patch (the
    released ``PatchEmbed3D`` pads W, H, then T). p: ``proj.weight`` (C, Cin, Pt, Ph, Pw),
    ``proj.bias``, and ``norm.*`` with patch_norm. Returns (B, D, H', W', C), D = ceil(T / Pt).
    """
    Pt, Ph, Pw = patch_size
    B, Cin, T, H, W = x.shape
    x = _pad_end(x, {2: (-T) % Pt, 3: (-H) % Ph, 4: (-W) % Pw}, xp=xp)
    D, Hp, Wp = -(-T // Pt), -(-H // Ph), -(-W // Pw)
    C = p["proj.weight"].shape[0]
    x = xp.reshape(x, (B, Cin, D, Pt, Hp, Ph, Wp, Pw))
    x = xp.permute_dims(x, (0, 2, 4, 6, 1, 3, 5, 7))  # (B, D, H', W', Cin, Pt, Ph, Pw)
    x = xp.reshape(x, (B, D, Hp, Wp, Cin * Pt * Ph * Pw))  # patch flattened as (Cin, t, row, col)
    weight = xp.reshape(p["proj.weight"], (C, Cin * Pt * Ph * Pw))
    x = linear(x, weight, p["proj.bias"], xp=xp)  # (B, D, H', W', C)
    if patch_norm:
        x = layer_norm(x, p["norm.weight"], p["norm.bias"], eps=LN_EPS, xp=xp)
    return x


def relative_position_bias(table, window: Triple, N: int, *, xp):
    """Per-head bias (nH, N, N) for windows of N tokens, from the configured window's table.

    Released quirk: the code always gathers with ``relative_position_index[:N, :N]`` of the
    *configured* window, also when the window was clamped to fewer tokens. For a clamp of the
    temporal axis only, those are exactly the clamped window's pairs (time is the outermost axis);
    a spatial clamp pairs tokens with offsets that are not theirs.
    """
    nH = table.shape[1]
    key = ("relpos3d", backend.backend_name(xp), repr(table.device), tuple(window))
    index = _cached("video", key, lambda: relative_position_index(window, xp=xp, device=table.device))
    rows = xp.reshape(index[:N, :N], (-1,))  # first N x N entries, as released
    bias = xp.reshape(xp.take(table, rows, axis=0), (N, N, nH))
    return xp.permute_dims(bias, (2, 0, 1))  # (nH, N, N)


def window_attention(p: Mapping[str, Any], x, *, num_heads: int, bias, mask=None, xp):
    """Multi-head self-attention inside each window.

    x: (B*nW, N, C); bias: (nH, N, N); mask: None or (nW, N, N). Returns (B*nW, N, C).
    """
    B_, N, C = x.shape
    nH = num_heads
    d = C // nH
    qkv = linear(x, p["qkv.weight"], p["qkv.bias"] if "qkv.bias" in p else None, xp=xp)
    qkv = xp.permute_dims(xp.reshape(qkv, (B_, N, 3, nH, d)), (2, 0, 3, 1, 4))  # (3, B_, nH, N, d)
    q, k, v = qkv[0, ...], qkv[1, ...], qkv[2, ...]
    q = q * d**-0.5  # released code scales q
    attn = xp.matmul(q, xp.matrix_transpose(k)) + bias  # (B_, nH, N, N)
    if mask is not None:
        nW = mask.shape[0]
        attn = xp.reshape(attn, (B_ // nW, nW, nH, N, N)) + mask[None, :, None, :, :]
        attn = xp.reshape(attn, (B_, nH, N, N))
    attn = softmax(attn, axis=-1, xp=xp)
    out = xp.matmul(attn, v)  # (B_, nH, N, d)
    out = xp.reshape(xp.permute_dims(out, (0, 2, 1, 3)), (B_, N, C))
    return linear(out, p["proj.weight"], p["proj.bias"], xp=xp)


def swin_block(p: Mapping[str, Any], x, *, num_heads: int, window: Triple, full_window: Triple,
               shift: Triple, mask, xp):
    """One pre-norm 3D block: x + (S)W-MSA(norm1(x)), then x + MLP(norm2(x)).

    x: (B, D, H, W, C); window/shift are the clamped values, full_window the configured one (it
    owns the bias table); mask (nW, N, N) for shifted blocks, else None. Returns (B, D, H, W, C).
    """
    B, D, H, W, C = x.shape
    Md, Mh, Mw = window
    h = layer_norm(x, p["norm1.weight"], p["norm1.bias"], eps=LN_EPS, xp=xp)
    # released order: pad at the end first, then roll (timm's 2D model rolls, then pads)
    h = _pad_end(h, {1: (-D) % Md, 2: (-H) % Mh, 3: (-W) % Mw}, xp=xp)
    Dp, Hp, Wp = h.shape[1], h.shape[2], h.shape[3]
    if any(shift):
        h = xp.roll(h, shift=tuple(-s for s in shift), axis=(1, 2, 3))
    windows = window_partition(h, window, xp=xp)  # (B*nW, N, C)
    bias = relative_position_bias(p["attn.relative_position_bias_table"], full_window,
                                  windows.shape[1], xp=xp)
    windows = window_attention(Scope(p, "attn"), windows, num_heads=num_heads, bias=bias,
                               mask=mask if any(shift) else None, xp=xp)
    h = window_reverse(windows, window, Dp, Hp, Wp, xp=xp)  # (B, Dp, Hp, Wp, C)
    if any(shift):
        h = xp.roll(h, shift=tuple(shift), axis=(1, 2, 3))
    x = x + h[:, :D, :H, :W, :]
    return x + mlp(Scope(p, "mlp"), layer_norm(x, p["norm2.weight"], p["norm2.bias"],
                                               eps=LN_EPS, xp=xp), xp=xp)


def patch_merging(p: Mapping[str, Any], x, *, xp):
    """Spatial-only 2x2 merge per frame: (B, D, H, W, C) -> (B, D, ceil(H/2), ceil(W/2), 2C).

    Odd H or W is zero-padded at the end first. Channel order as in 2D: x[:, :, 0::2, 0::2],
    x[:, :, 1::2, 0::2], x[:, :, 0::2, 1::2], x[:, :, 1::2, 1::2]; then LayerNorm(4C) and
    Linear(4C -> 2C, no bias).
    """
    B, D, H, W, C = x.shape
    x = _pad_end(x, {2: H % 2, 3: W % 2}, xp=xp)
    H2, W2 = (H + 1) // 2, (W + 1) // 2
    x = xp.reshape(x, (B, D, H2, 2, W2, 2, C))  # (B, D, H/2, dh, W/2, dw, C)
    x = xp.permute_dims(x, (0, 1, 2, 4, 5, 3, 6))  # (B, D, H/2, W/2, dw, dh, C): dh fastest
    x = xp.reshape(x, (B, D, H2, W2, 4 * C))
    x = layer_norm(x, p["norm.weight"], p["norm.bias"], eps=LN_EPS, xp=xp)
    return linear(x, p["reduction.weight"], None, xp=xp)


# ----- input checks --------------------------------------------------------------------------
def check_input(x, cfg: VideoSwinConfig) -> None:
    """Raise a clear error unless x is a float video batch (B, in_chans, T, H, W) of >= 1 patch."""
    xp = backend.namespace(x)
    shape = tuple(x.shape)
    form = f"(B, {cfg.in_chans}, T, H, W)"
    if len(shape) != 5:
        hint = " (an image batch? add a time axis: x[:, :, None])" if len(shape) == 4 else ""
        raise ValueError(f"video input must have rank 5, {form}; got shape {shape}{hint}")
    if shape[1] != cfg.in_chans:
        raise ValueError(f"video has {shape[1]} channels, config expects in_chans={cfg.in_chans}: "
                         f"shape must be {form}, got {shape}")
    if x.dtype not in (xp.float32, xp.float64):
        raise TypeError(f"video dtype must be float32 or float64, got {x.dtype}")
    if shape[0] < 1:
        raise ValueError(f"video batch is empty: shape {shape}")
    for axis, size, p in zip("THW", shape[2:], cfg.patch_size):
        if size < p:
            raise ValueError(
                f"video has {axis}={size}, fewer than one patch ({axis} >= {p} needed for "
                f"patch_size={cfg.patch_size}); expected {form} with T >= {cfg.patch_size[0]}, "
                f"H >= {cfg.patch_size[1]}, W >= {cfg.patch_size[2]}")


def check_param_shapes(params: Mapping[str, Any], cfg: VideoSwinConfig) -> None:
    """Every parameter ``cfg`` needs must be present with its shape; all problems in one error."""
    problems = []
    for name, shape in param_shapes(cfg).items():
        if name not in params:
            problems.append(f"missing {name} {shape}")
        elif tuple(params[name].shape) != shape:
            problems.append(f"{name}: got {tuple(params[name].shape)}, expected {shape}")
    if problems:
        raise ValueError("video params do not match the config:\n  " + "\n  ".join(problems))


# ----- the whole model -----------------------------------------------------------------------
def forward(params: Mapping[str, Any], x, cfg: VideoSwinConfig, *,
            return_intermediates: bool = False):
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
    if not isinstance(cfg, VideoSwinConfig):
        raise TypeError(f"cfg must be a VideoSwinConfig, got {type(cfg).__name__}")
    check_input(x, cfg)
    check_params(params, x)
    check_param_shapes(params, cfg)
    xp = backend.namespace(x)
    inter: dict[str, Any] = {}

    h = patch_embed(Scope(params, "backbone.patch_embed"), x, patch_size=cfg.patch_size,
                    patch_norm=cfg.patch_norm, xp=xp)  # (B, D, H/4, W/4, C)
    inter["backbone.patch_embed"] = h
    full = cfg.window_size
    for i, depth in enumerate(cfg.depths):
        stage = f"backbone.layers.{i}"
        D, H, W = h.shape[1], h.shape[2], h.shape[3]
        # the stage computes one clamped window and the shifted blocks' mask (BasicLayer3D)
        window, shift = get_window_size((D, H, W), full, tuple(m // 2 for m in full))
        padded = tuple(-(-r // m) * m for r, m in zip((D, H, W), window))
        mask = None
        if any(shift):
            key = ("mask3d", backend.backend_name(xp), repr(x.device), str(x.dtype), padded,
                   window, shift)
            mask = _cached("video", key, lambda: shift_mask(padded, window, shift, xp=xp, dtype=x.dtype,
                                                   device=x.device))
        for j in range(depth):
            shifted = j % 2 == 1
            h = swin_block(Scope(params, f"{stage}.blocks.{j}"), h, num_heads=cfg.num_heads[i],
                           window=window, full_window=full,
                           shift=shift if shifted else (0, 0, 0), mask=mask, xp=xp)
            inter[f"{stage}.blocks.{j}"] = h
        if i < cfg.num_stages - 1:
            h = patch_merging(Scope(params, f"{stage}.downsample"), h, xp=xp)
            inter[f"{stage}.downsample"] = h
        inter[stage] = h
    h = layer_norm(h, params["backbone.norm.weight"], params["backbone.norm.bias"], eps=LN_EPS,
                   xp=xp)
    inter["backbone.norm"] = h
    pooled = xp.mean(h, axis=(1, 2, 3))  # I3D head: average over time and space
    inter["pre_logits"] = pooled
    if not cfg.num_classes:
        return (pooled, inter) if return_intermediates else pooled
    logits = linear(pooled, params["cls_head.fc_cls.weight"], params["cls_head.fc_cls.bias"], xp=xp)
    inter["logits"] = logits
    return (logits, inter) if return_intermediates else logits


# ----- inflating 2D weights ------------------------------------------------------------------
def inflate_2d(params_2d: Mapping[str, Any], cfg2d, cfg3d: VideoSwinConfig, *,
               seed: int = 0) -> dict[str, np.ndarray]:
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
        f"{n3} {a!r} vs 2D {n2} {b!r}" for n3, a, n2, b in (
            ("in_chans", cfg3d.in_chans, "in_chans", cfg2d.in_chans),
            ("embed_dim", cfg3d.embed_dim, "embed_dim", cfg2d.embed_dim),
            ("depths", cfg3d.depths, "depths", tuple(cfg2d.depths)),
            ("num_heads", cfg3d.num_heads, "num_heads", tuple(cfg2d.num_heads)),
            ("mlp_ratio", cfg3d.mlp_ratio, "mlp_ratio", cfg2d.mlp_ratio),
            ("qkv_bias", cfg3d.qkv_bias, "qkv_bias", cfg2d.qkv_bias),
            ("patch_norm", cfg3d.patch_norm, "patch_norm", cfg2d.patch_norm),
            ("patch_size[1:]", cfg3d.patch_size[1:], "patch_size", (cfg2d.patch_size,) * 2),
            ("window_size[1:]", cfg3d.window_size[1:], "window_size", tuple(cfg2d.window)),
        ) if a != b
    ]
    if mismatched:
        raise ValueError("cannot inflate: the 3D config must match the 2D one except for time:\n  "
                         + "\n  ".join(mismatched))
    src = {name: backend.to_numpy(v) for name, v in params_2d.items()}
    missing = [name for name in param_shapes_2d(cfg2d) if name not in src]
    if missing:
        raise ValueError(f"cannot inflate: the 2D params lack {len(missing)} entries of the 2D "
                         f"config (timm names expected): {', '.join(missing[:5])}"
                         + (", ..." if len(missing) > 5 else ""))
    dtype = src["patch_embed.proj.weight"].dtype
    Pt, Md = cfg3d.patch_size[0], cfg3d.window_size[0]
    out: dict[str, np.ndarray] = {}
    for name, shape in param_shapes(cfg3d).items():
        if name == "backbone.patch_embed.proj.weight":
            w = src["patch_embed.proj.weight"]  # (C, Cin, Ph, Pw)
            out[name] = np.repeat(w[:, :, None], Pt, axis=2) / Pt  # (C, Cin, Pt, Ph, Pw)
        elif name.endswith("relative_position_bias_table"):
            table = src[name[len("backbone."):]]  # ((2Mh-1)(2Mw-1), nH)
            if table.shape[0] * (2 * Md - 1) != shape[0]:
                raise ValueError(
                    f"cannot inflate {name[len('backbone.'):]}: its table has {table.shape[0]} "
                    f"rows, the {cfg3d.window_size[1]}x{cfg3d.window_size[2]} window needs "
                    f"{shape[0] // (2 * Md - 1)}; the 2D model clamps this stage's window at its "
                    "img_size (a grid smaller than the window): inflate from a 2D model whose "
                    "stages are all at least one window wide")
            out[name] = np.tile(table, (2 * Md - 1, 1))  # temporal offset outermost
        elif ".downsample." in name:
            i, leaf = int(name.split(".")[2]), name.split(".downsample.")[1]
            out[name] = src[f"layers.{i + 1}.downsample.{leaf}"]  # timm: start of stage i+1
        elif name.startswith("cls_head."):
            continue
        else:
            out[name] = src[name[len("backbone."):]]
        if out[name].shape != shape:
            raise ValueError(f"cannot inflate {name}: got {out[name].shape}, expected {shape}")
    if cfg3d.num_classes:
        if cfg3d.num_classes == cfg2d.num_classes:
            out["cls_head.fc_cls.weight"] = src["head.fc.weight"]
            out["cls_head.fc_cls.bias"] = src["head.fc.bias"]
        else:
            rng = np.random.default_rng(seed)
            out["cls_head.fc_cls.weight"] = rng.normal(0.0, 0.01, size=(cfg3d.num_classes,
                                                                         cfg3d.num_features))
            out["cls_head.fc_cls.bias"] = np.zeros(cfg3d.num_classes)
    return {name: np.asarray(v, dtype=dtype) for name, v in out.items()}

