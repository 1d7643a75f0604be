"""Swin Transformer V2 (Liu et al. 2022, arXiv:2111.09883): config, params and forward pass.

What changes from V1, one function each below:

- res-post-norm blocks: ``x = x + norm1(attn(x))``, then ``x = x + norm2(mlp(x))``;
- scaled cosine attention: ``normalize(q) @ normalize(k)^T * exp(min(logit_scale, log(100)))``
  with a learned per-head ``logit_scale`` (nH, 1, 1), and no ``d ** -0.5``;
- q and v biases, the k bias fixed at zero;
- a continuous position bias: a small MLP (``cpb_mlp``) maps log-spaced relative coordinates to
  per-head biases, ``16 * sigmoid(.)``, instead of V1's learned table;
- patch merging reduces first and normalises after: Linear(4C -> 2C), then LayerNorm(2C).

Behaviour follows timm's ``swin_transformer_v2.py``; ``SwinV2Config.semantics`` selects the
official code's, torchvision's or transformers' variant where they differ (docs/v2.md). timm and
the official code compute the same float32 forward on the released configs; in float64 they
differ by the official float32 logit-scale cap (:data:`OFFICIAL_LOGIT_SCALE_MAX`).
Window partition, shift and mask come from :mod:`swinref.windows`; the
numerics from :mod:`swinref.numerics`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..core import backend
from ..core.cache import host_constant
from ..core.config import ImageGeometry, is_int, pair
from ..core.layers import (
    add_window_mask,
    gather_bias,
    index_like,
    mask_for,
    merge_heads,
    mlp,
    patch_embed,
    pool_head,
    space_to_depth,
    split_heads,
)
from ..core.numerics import LN_EPS, layer_norm, linear, softmax
from ..core.params import (
    INIT_SCHEMES,
    Scope,
    check_arrays_like,
    check_image_batch,
    check_param_shapes,
    check_state_dict,
    count,
    host_arrays,
    random_value,
    seeded_params,
    trunc_normal,
)
from ..core.windows import clamp_window, shifted_window_apply

FAMILY = "v2"
NORMALIZE_EPS = 1e-12  # F.normalize: x / max(||x||, eps), so a zero vector maps to 0, not NaN
LOGIT_SCALE_MAX = math.log(1.0 / 0.01)  # timm: math.log(1 / 0.01) = log(100), a float64 value
# the official code clamps at torch.log(torch.tensor(1. / 0.01)): log(100) rounded to float32,
# 4.605170249938965, 6.4e-8 above log(100); a float64 model keeps it as that float32 value
OFFICIAL_LOGIT_SCALE_MAX = float(np.float32(LOGIT_SCALE_MAX))
CPB_HIDDEN = 512  # cpb_mlp: Linear(2, 512) -> ReLU -> Linear(512, nH, bias=False)
SEMANTICS = ("timm", "official", "torchvision", "hf")


# ----- config --------------------------------------------------------------------------------
@dataclass(frozen=True)
class SwinV2Config(ImageGeometry):
    """A Swin Transformer V2 classifier (or backbone with ``num_classes=0``).

    Field names are those of timm's ``SwinTransformerV2`` constructor, so ``SwinV2Config(**kw)``
    takes timm's keyword arguments. Defaults describe ``swinv2_tiny_window8_256``.
    """

    family: ClassVar[str] = FAMILY

    img_size: int | tuple[int, int] = 256  # input H, W; the forward checks the input against it
    patch_size: int = 4
    in_chans: int = 3
    num_classes: int = 1000  # 0: no head, the forward returns pooled features
    embed_dim: int = 96  # C of stage 1; stage i has C * 2**i
    depths: tuple[int, ...] = (2, 2, 6, 2)
    num_heads: tuple[int, ...] = (3, 6, 12, 24)
    window_size: int | tuple[int, int] = 8
    mlp_ratio: float = 4.0
    qkv_bias: bool = True  # q_bias and v_bias; k never has a bias
    # window of the pre-training run per stage, 0 for "same as window_size": the continuous
    # position bias divides coordinates by it, so a model fine-tuned at a larger window keeps the
    # pre-training scale. None means 0 for every stage (timm's default (0, 0, 0, 0)).
    pretrained_window_sizes: tuple[int | tuple[int, int], ...] | None = None
    # whose forward to reproduce where the ports differ: "timm" (per-axis window clamp, pads),
    # "official" (microsoft/Swin-Transformer: min(H, W) <= M clamp, no padding, float32 logit-scale
    # cap), "torchvision" (pad then roll, no window clamp) or "hf" (transformers: pad then roll,
    # shift mask added twice). Not a timm argument.
    semantics: str = "timm"

    def __post_init__(self):
        self._normalise("img_size", "window_size")
        pws = self.pretrained_window_sizes
        if pws is None:
            pws = (0,) * len(self.depths)
        object.__setattr__(
            self, "pretrained_window_sizes", tuple(tuple(p) if isinstance(p, list) else p for p in pws)
        )
        self.validate()

    @property
    def _pretrained_window_sizes(self) -> tuple[int | tuple[int, int], ...]:
        pws = self.pretrained_window_sizes
        assert pws is not None  # __post_init__ replaces None by one 0 per stage
        return pws

    def pretrained_window(self, i: int) -> tuple[int, int]:
        """Pre-training window of stage i, (0, 0) when there was none."""
        return pair(self._pretrained_window_sizes[i], f"pretrained_window_sizes[{i}]")

    def validate(self) -> None:
        problems = []
        for name in ("img_size", "window_size"):
            try:
                if min(pair(getattr(self, name), name)) < 1:
                    problems.append(f"{name} must be >= 1, got {getattr(self, name)!r}")
            except ValueError as e:
                problems.append(str(e))
        P = self.patch_size
        if not is_int(P) or P < 1:
            problems.append(f"patch_size must be a positive int, got {P!r}")
        elif not problems:
            H, W = self.image_hw
            if H % P or W % P:
                problems.append(f"img_size {H}x{W} is not a multiple of patch_size {P}")
        problems += self._stage_problems()
        if len(self._pretrained_window_sizes) != len(self.depths):
            problems.append(
                f"pretrained_window_sizes has {len(self._pretrained_window_sizes)} entries "
                f"for {len(self.depths)} stages: give one per stage (0 = none)"
            )
        for i, p in enumerate(self._pretrained_window_sizes):
            try:
                pw = pair(p, f"pretrained_window_sizes[{i}]")
                if min(pw) < 0 or (min(pw) == 0) != (max(pw) == 0):
                    problems.append(f"pretrained_window_sizes[{i}] must be 0 or >= 1 on both axes, got {p!r}")
            except ValueError as e:
                problems.append(str(e))
        if self.semantics not in SEMANTICS:
            problems.append(f"semantics must be one of {', '.join(SEMANTICS)}, got {self.semantics!r}")
        elif self.semantics in ("hf", "official") and not problems and self.window[0] != self.window[1]:
            problems.append(
                f"semantics={self.semantics!r} needs a square window ("
                f"{'transformers' if self.semantics == 'hf' else 'the official code'} takes one int), "
                f"got {self.window_size!r}"
            )
        self._raise_if(problems)

    @classmethod
    def named(cls, name: str, **overrides: Any) -> SwinV2Config:
        """A released model's config by timm name, e.g. ``SwinV2Config.named("swinv2_tiny_window8_256")``."""
        if name not in MODEL_ZOO_V2:
            valid = ", ".join(sorted(MODEL_ZOO_V2))
            raise ValueError(f"unknown Swin V2 model {name!r}; expected one of: {valid}")
        return cls(**{**MODEL_ZOO_V2[name], **overrides})


_T = dict(embed_dim=96, num_heads=(3, 6, 12, 24))
_B = dict(embed_dim=128, num_heads=(4, 8, 16, 32))
_L = dict(embed_dim=192, num_heads=(6, 12, 24, 48))
_DEEP = (2, 2, 18, 2)
_FT = (12, 12, 12, 6)  # pre-trained at 192 with window 12: the last stage (6x6) clamped to 6
# timm 1.0.31 registrations (swin_transformer_v2.py); img_size and num_classes from their default
# pretrained cfgs (input_size, num_classes), which timm.create_model passes to the constructor.
MODEL_ZOO_V2: dict[str, dict[str, Any]] = {
    "swinv2_tiny_window8_256": dict(**_T, depths=(2, 2, 6, 2), window_size=8),
    "swinv2_tiny_window16_256": dict(**_T, depths=(2, 2, 6, 2), window_size=16),
    "swinv2_small_window8_256": dict(**_T, depths=_DEEP, window_size=8),
    "swinv2_small_window16_256": dict(**_T, depths=_DEEP, window_size=16),
    "swinv2_base_window8_256": dict(**_B, depths=_DEEP, window_size=8),
    "swinv2_base_window16_256": dict(**_B, depths=_DEEP, window_size=16),
    "swinv2_base_window12_192": dict(**_B, depths=_DEEP, window_size=12, img_size=192, num_classes=21841),
    "swinv2_base_window12to16_192to256": dict(
        **_B, depths=_DEEP, window_size=16, pretrained_window_sizes=_FT
    ),
    "swinv2_base_window12to24_192to384": dict(
        **_B, depths=_DEEP, window_size=24, img_size=384, pretrained_window_sizes=_FT
    ),
    "swinv2_large_window12_192": dict(**_L, depths=_DEEP, window_size=12, img_size=192, num_classes=21841),
    "swinv2_large_window12to16_192to256": dict(
        **_L, depths=_DEEP, window_size=16, pretrained_window_sizes=_FT
    ),
    "swinv2_large_window12to24_192to384": dict(
        **_L, depths=_DEEP, window_size=24, img_size=384, pretrained_window_sizes=_FT
    ),
}


# ----- components ----------------------------------------------------------------------------
def l2_normalize(x, *, eps: float = NORMALIZE_EPS, xp):
    """``x / max(||x||, eps)`` over the last axis (PyTorch ``F.normalize``). x: (..., d).

    A zero vector maps to zeros, not NaN: padded tokens have k = 0 (the k bias is zero), so the
    plain ``x / ||x||`` would poison every window that holds padding.
    """
    norm = xp.sqrt(xp.sum(x * x, axis=-1, keepdims=True))  # (..., 1)
    return x / xp.maximum(norm, xp.asarray(eps, dtype=x.dtype, device=backend.device(x)))


def relative_coords_table(
    window: tuple[int, int], pretrained_window: tuple[int, int] = (0, 0), *, xp, device=None
):
    """Log-spaced relative coordinates fed to the cpb MLP: ((2Mh-1)*(2Mw-1), 2) float32.

    Row (dh, dw), dh in [-(Mh-1), Mh-1] row-major, holds ``f(dh / D_h), f(dw / D_w)`` with
    ``f(t) = sign(8t) * log2(|8t| + 1) / log2(8)``; D is ``pretrained_window - 1`` when a
    pre-training window is given, else ``window - 1``; timm uses max(D, 1) so a window of 1 gives
    the single coordinate 0 (torchvision divides by zero there).

    Built in float32 like every port (their buffer is float32 and only later cast with the model),
    so the float64 forward sees the same rounded coordinates. It is computed once on the host with
    NumPy (:func:`host_coords_table`) and returned in ``xp`` on ``device``, so every backend gets
    the same bits (JAX's float32 division by a constant is not correctly rounded).
    """
    host = host_coords_table((window[0], window[1]), (pretrained_window[0], pretrained_window[1]))
    return backend.to_namespace({"coords": host}, xp, device=device)["coords"]


def _f32(a: np.ndarray) -> np.ndarray:
    """Round float64 values to float32. A single +, -, *, / or sqrt of float32 operands done in
    float64 and rounded once is the correctly rounded float32 result (53 >= 2 * 24 + 2)."""
    return a.astype(np.float32).astype(np.float64)


def _coords_table_numpy(window: tuple[int, int], pretrained_window: tuple[int, int]) -> np.ndarray:
    Mh, Mw = window
    ref = pretrained_window if pretrained_window[0] > 0 else window
    # every port builds the buffer in float32 and casts it with the model later: each step below
    # is one float32 operation, done in float64 and rounded to float32 (_f32)
    dh = _f32(np.arange(-(Mh - 1), Mh, dtype=np.float64) / float(max(ref[0] - 1, 1)))
    dw = _f32(np.arange(-(Mw - 1), Mw, dtype=np.float64) / float(max(ref[1] - 1, 1)))
    gh, gw = np.meshgrid(dh, dw, indexing="ij")  # (2Mh-1, 2Mw-1) each
    t = np.stack([gh.reshape(-1), gw.reshape(-1)], axis=-1) * 8.0  # (T, 2) in [-8, 8]; exact
    # log2 taken in float64 of the float32 |t| + 1 and rounded: PyTorch's float32 log2 bit for bit
    # on all windows up to 48 (NumPy's float32 log2 is not)
    log = _f32(np.log2(_f32(np.abs(t) + 1.0)))
    return (np.sign(t) * log / 3.0).astype(np.float32)  # log2(8) == 3; sign * log is exact


def continuous_position_bias(p: Mapping[str, Any], coords, index, *, num_heads: int, xp):
    """Per-head position bias from the cpb MLP: (nH, N, N), values in (0, 16).

    p: ``cpb_mlp.0.weight`` (512, 2), ``cpb_mlp.0.bias`` (512,), ``cpb_mlp.2.weight`` (nH, 512);
    coords: ((2Mh-1)*(2Mw-1), 2) from :func:`relative_coords_table`, in the params' dtype;
    index: (N, N) from :func:`swinref.windows.relative_position_index`.
    """
    hidden = linear(coords, p["cpb_mlp.0.weight"], p["cpb_mlp.0.bias"], xp=xp)  # (T, 512)
    hidden = xp.maximum(hidden, xp.zeros_like(hidden))  # ReLU
    table = linear(hidden, p["cpb_mlp.2.weight"], None, xp=xp)  # (T, nH)
    bias = gather_bias(table, index, xp=xp)  # (nH, N, N)
    return 16.0 / (1.0 + xp.exp(-bias))  # 16 * sigmoid


def logit_scale(p: Mapping[str, Any], *, cap: float = LOGIT_SCALE_MAX, xp):
    """exp(min(logit_scale, cap)): the per-head temperature, (nH, 1, 1), at most about 100.

    cap: :data:`LOGIT_SCALE_MAX` (timm, torchvision, transformers) or
    :data:`OFFICIAL_LOGIT_SCALE_MAX` (the official code); the two are equal in float32.
    """
    s = p["logit_scale"]
    return xp.exp(xp.minimum(s, xp.asarray(cap, dtype=s.dtype, device=backend.device(s))))


def window_attention(
    p: Mapping[str, Any],
    x,
    *,
    num_heads: int,
    window: tuple[int, int],
    pretrained_window: tuple[int, int] = (0, 0),
    mask=None,
    mask_repeats: int = 1,
    logit_cap: float = LOGIT_SCALE_MAX,
    xp,
):
    """Scaled cosine attention inside each window, with the continuous position bias.

    x: (B*nW, N, C); mask: None or (nW, N, N), added ``mask_repeats`` times (transformers adds
    it twice) per window, broadcast over batch and heads; logit_cap: the clamp of ``logit_scale``
    (:func:`logit_scale`). p: ``qkv.weight`` (3C, C), ``q_bias``
    and ``v_bias`` (C,) or both absent, ``logit_scale`` (nH, 1, 1), ``cpb_mlp.*``,
    ``proj.weight`` (C, C), ``proj.bias``. Returns (B*nW, N, C).
    """
    nH = num_heads
    bias = None
    if "q_bias" in p:  # the k bias is a zero buffer (timm), not a parameter
        bias = xp.concat([p["q_bias"], xp.zeros_like(p["q_bias"]), p["v_bias"]])  # (3C,)
    qkv = linear(x, p["qkv.weight"], bias, xp=xp)  # (B_, N, 3C)
    q, k, v = split_heads(qkv, nH, xp=xp)  # (B_, nH, N, d) each
    attn = xp.matmul(l2_normalize(q, xp=xp), xp.matrix_transpose(l2_normalize(k, xp=xp)))  # (B_, nH, N, N)
    attn = attn * logit_scale(p, cap=logit_cap, xp=xp)
    coords = backend.from_host(host_coords_table(window, pretrained_window), x, dtype=x.dtype)  # (T, 2)
    attn = attn + continuous_position_bias(p, coords, index_like(window, x), num_heads=nH, xp=xp)[None, ...]
    if mask is not None:
        attn = add_window_mask(attn, mask, repeats=mask_repeats, xp=xp)
    attn = softmax(attn, axis=-1, xp=xp)
    out = merge_heads(xp.matmul(attn, v), xp=xp)  # (B_, N, C)
    return linear(out, p["proj.weight"], p["proj.bias"], xp=xp)


def host_coords_table(window: tuple[int, int], pretrained_window: tuple[int, int]) -> np.ndarray:
    """:func:`relative_coords_table` as a float32 NumPy array, built once per window on the host."""
    return host_constant(
        "v2_coords",
        (tuple(window), tuple(pretrained_window)),
        lambda: _coords_table_numpy(window, pretrained_window),
    )


@dataclass(frozen=True)
class BlockGeometry:
    """How one block windows its (H, W) grid: window, shift, and the order of pad and roll."""

    window: tuple[int, int]
    shift: tuple[int, int]
    roll_first: bool  # timm rolls the unpadded grid, then pads; torchvision and transformers pad first
    mask_repeats: int  # transformers adds the shift mask twice
    logit_cap: float = LOGIT_SCALE_MAX  # the official code clamps logit_scale at a float32 log(100)


def block_geometry(
    resolution: tuple[int, int], cfg: SwinV2Config, *, stage: int, shifted: bool
) -> BlockGeometry:
    """Window and shift of a block at grid ``resolution`` (H, W), per ``cfg.semantics``.

    timm: per axis, r <= M gives window r and shift 0. official: where min(H, W) <= M, a square
    window of min(H, W) and shift 0 (also on non-square grids). torchvision: the window is never clamped;
    an axis whose padded length is <= M gets shift 0. transformers: the window is min(r, M) and
    the shift 0 when r <= M, both decided on the first axis only and used for both (it takes one
    int), with r = floor(grid / 2**stage) from the configured img_size.
    """
    M = cfg.window
    target = (M[0] // 2, M[1] // 2) if shifted else (0, 0)
    if cfg.semantics == "timm":
        win, sh = clamp_window(resolution, M, target, rule="timm")
        return BlockGeometry((win[0], win[1]), (sh[0], sh[1]), roll_first=True, mask_repeats=1)
    if cfg.semantics == "official":
        win, sh = clamp_window(resolution, M, target, rule="official")
        for r, m in zip(resolution, win, strict=False):
            if r % m:
                raise ValueError(
                    f"layers.{stage}: the official code does not pad, and its {resolution[0]}x"
                    f"{resolution[1]} grid is not a multiple of the window {m}; use semantics='timm' "
                    "to pad, or an img_size whose grids are multiples of the window"
                )
        return BlockGeometry(
            (win[0], win[1]),
            (sh[0], sh[1]),
            roll_first=True,
            mask_repeats=1,
            logit_cap=OFFICIAL_LOGIT_SCALE_MAX,
        )
    if cfg.semantics == "torchvision":
        padded = (-(-resolution[0] // M[0]) * M[0], -(-resolution[1] // M[1]) * M[1])
        shift = (0 if M[0] >= padded[0] else target[0], 0 if M[1] >= padded[1] else target[1])
        return BlockGeometry(M, shift, roll_first=False, mask_repeats=1)
    grid = cfg.image_hw[0] // cfg.patch_size
    r = grid // 2**stage  # transformers sizes its layers with floor division
    m = min(r, M[0])
    s = 0 if r <= m else target[0]
    return BlockGeometry((m, m), (s, s), roll_first=False, mask_repeats=2)


def swin_v2_block(
    p: Mapping[str, Any],
    x,
    *,
    num_heads: int,
    geometry: BlockGeometry,
    pretrained_window: tuple[int, int] = (0, 0),
    xp,
):
    """One res-post-norm block: x + norm1((S)W-MSA(x)), then x + norm2(MLP(x)).

    x: (B, H, W, C). Padded tokens are zeros; they take part in attention unmasked (every port).
    Returns (B, H, W, C).
    """

    def attend(windows, mask):  # (B*nW, N, C)
        return window_attention(
            Scope(p, "attn"),
            windows,
            num_heads=num_heads,
            window=geometry.window,
            pretrained_window=pretrained_window,
            mask=mask,
            mask_repeats=geometry.mask_repeats,
            logit_cap=geometry.logit_cap,
            xp=xp,
        )

    h = shifted_window_apply(
        x,
        geometry.window,
        geometry.shift,
        attend,
        roll_first=geometry.roll_first,
        mask_for=mask_for(x, geometry.window, geometry.shift),
        xp=xp,
    )  # (B, H, W, C)
    x = x + layer_norm(h, p["norm1.weight"], p["norm1.bias"], eps=LN_EPS, xp=xp)  # post-norm
    return x + layer_norm(
        mlp(Scope(p, "mlp"), x, xp=xp), p["norm2.weight"], p["norm2.bias"], eps=LN_EPS, xp=xp
    )


def patch_merging(p: Mapping[str, Any], x, *, xp):
    """2x2 space-to-depth, Linear(4C -> 2C, no bias), then LayerNorm(2C) (V2: reduce, then norm).

    x: (B, H, W, C); odd H or W is zero-padded at the bottom/right first. Channel order of the 4C:
    x[0::2, 0::2], x[1::2, 0::2], x[0::2, 1::2], x[1::2, 1::2] (row offset fastest, as in V1).
    Returns (B, ceil(H/2), ceil(W/2), 2C).
    """
    x = space_to_depth(x, xp=xp)  # (B, H/2, W/2, 4C)
    x = linear(x, p["reduction.weight"], None, xp=xp)  # (B, H/2, W/2, 2C)
    return layer_norm(x, p["norm.weight"], p["norm.bias"], eps=LN_EPS, xp=xp)


# ----- input checks --------------------------------------------------------------------------
def check_input(x, cfg: SwinV2Config) -> None:
    """Raise a clear error unless x is a float (B, in_chans, H, W) batch of cfg's img_size."""
    if not isinstance(cfg, SwinV2Config):
        raise TypeError(
            f"swinref.v2 needs a SwinV2Config, got {type(cfg).__name__}; swinref.forward "
            "takes a config of any family"
        )
    check_image_batch(x, cfg.in_chans)
    shape = tuple(x.shape)
    H, W = cfg.image_hw
    if tuple(shape[2:]) != (H, W):
        raise ValueError(
            f"input size {shape[2]}x{shape[3]} does not match the config's img_size "
            f"{H}x{W}; expected shape (B, {cfg.in_chans}, {H}, {W})"
        )


MODEL_PREFIXES = ("patch_embed.", "layers.", "norm.", "head.")


def check_params(params: Mapping[str, Any], x, cfg: SwinV2Config) -> None:
    """The params contract: names and shapes against cfg, arrays in x's namespace, device, dtype."""
    check_param_shapes(params, param_shapes(cfg), model_prefixes=MODEL_PREFIXES)
    check_arrays_like(params, x)


# ----- the whole model -----------------------------------------------------------------------
def forward(params: Mapping[str, Any], x, cfg: SwinV2Config, *, return_intermediates: bool = False):
    """Swin V2 forward pass.

    params: mapping named like timm's ``SwinTransformerV2`` state dict (:func:`param_shapes`),
    arrays in x's namespace, device and dtype. x: (B, in_chans, H, W), float32 or float64,
    H x W = cfg.img_size. Returns logits (B, num_classes) (pooled features when num_classes == 0);
    with ``return_intermediates`` returns ``(logits, intermediates)`` named as in V1 (timm module
    names): ``patch_embed``, ``layers.{i}.downsample`` (i >= 1), ``layers.{i}.blocks.{j}``,
    ``layers.{i}``, ``norm``, ``pre_logits``, ``logits``; all grids are (B, h, w, C).
    """
    check_input(x, cfg)
    check_params(params, x, cfg)
    xp = backend.namespace(x)
    inter: dict[str, Any] = {}

    P = cfg.patch_size
    h = patch_embed(
        Scope(params, "patch_embed"), x, patch_size=(P, P), patch_norm=True, xp=xp
    )  # (B, H/4, W/4, C)
    inter["patch_embed"] = h
    for i, depth in enumerate(cfg.depths):
        stage = f"layers.{i}"
        if i > 0:  # timm keeps the merge at the start of the next stage (official: end of stage)
            if cfg.semantics == "official" and (h.shape[1] % 2 or h.shape[2] % 2):
                raise ValueError(
                    f"patch merging needs an even grid, got {h.shape[1]}x{h.shape[2]} after "
                    f"layers.{i - 1}; the official code asserts it (semantics='timm' pads odd grids)"
                )
            h = patch_merging(Scope(params, f"{stage}.downsample"), h, xp=xp)
            inter[f"{stage}.downsample"] = h
        resolution = (h.shape[1], h.shape[2])
        for j in range(depth):
            geometry = block_geometry(resolution, cfg, stage=i, shifted=j % 2 == 1)
            h = swin_v2_block(
                Scope(params, f"{stage}.blocks.{j}"),
                h,
                num_heads=cfg.num_heads[i],
                geometry=geometry,
                pretrained_window=cfg.pretrained_window(i),
                xp=xp,
            )
            inter[f"{stage}.blocks.{j}"] = h
        inter[stage] = h
    h = layer_norm(h, params["norm.weight"], params["norm.bias"], eps=LN_EPS, xp=xp)
    inter["norm"] = h
    pooled, logits = pool_head(params, h, head="head.fc", xp=xp)
    inter["pre_logits"] = pooled
    if logits is not None:
        inter["logits"] = logits
    out = pooled if logits is None else logits
    return (out, inter) if return_intermediates else out


# ----- parameters ----------------------------------------------------------------------------
def param_shapes(cfg: SwinV2Config) -> dict[str, tuple[int, ...]]:
    """Every parameter name (timm layout) and its shape, in timm's state-dict order."""
    C0, P = cfg.embed_dim, cfg.patch_size
    shapes: dict[str, tuple[int, ...]] = {
        "patch_embed.proj.weight": (C0, cfg.in_chans, P, P),
        "patch_embed.proj.bias": (C0,),
        "patch_embed.norm.weight": (C0,),
        "patch_embed.norm.bias": (C0,),
    }
    for i, depth in enumerate(cfg.depths):
        C, nH, hidden = cfg.stage_dim(i), cfg.num_heads[i], cfg.mlp_hidden(i)
        if i > 0:
            shapes[f"layers.{i}.downsample.reduction.weight"] = (C, 2 * C)
            shapes[f"layers.{i}.downsample.norm.weight"] = (C,)
            shapes[f"layers.{i}.downsample.norm.bias"] = (C,)
        for j in range(depth):
            b = f"layers.{i}.blocks.{j}"
            shapes[f"{b}.attn.logit_scale"] = (nH, 1, 1)
            if cfg.qkv_bias:
                shapes[f"{b}.attn.q_bias"] = (C,)
                shapes[f"{b}.attn.v_bias"] = (C,)
            shapes[f"{b}.attn.cpb_mlp.0.weight"] = (CPB_HIDDEN, 2)
            shapes[f"{b}.attn.cpb_mlp.0.bias"] = (CPB_HIDDEN,)
            shapes[f"{b}.attn.cpb_mlp.2.weight"] = (nH, CPB_HIDDEN)
            shapes[f"{b}.attn.qkv.weight"] = (3 * C, C)
            shapes[f"{b}.attn.proj.weight"] = (C, C)
            shapes[f"{b}.attn.proj.bias"] = (C,)
            shapes[f"{b}.norm1.weight"] = (C,)
            shapes[f"{b}.norm1.bias"] = (C,)
            shapes[f"{b}.mlp.fc1.weight"] = (hidden, C)
            shapes[f"{b}.mlp.fc1.bias"] = (hidden,)
            shapes[f"{b}.mlp.fc2.weight"] = (C, hidden)
            shapes[f"{b}.mlp.fc2.bias"] = (C,)
            shapes[f"{b}.norm2.weight"] = (C,)
            shapes[f"{b}.norm2.bias"] = (C,)
    shapes["norm.weight"] = (cfg.num_features,)
    shapes["norm.bias"] = (cfg.num_features,)
    if cfg.num_classes:
        shapes["head.fc.weight"] = (cfg.num_classes, cfg.num_features)
        shapes["head.fc.bias"] = (cfg.num_classes,)
    return shapes


def count_params(cfg: SwinV2Config) -> int:
    """Number of learned parameters (timm's ``sum(p.numel() for p in model.parameters())``)."""
    return count(param_shapes(cfg))


def init_params(
    cfg: SwinV2Config, *, seed: int = 0, dtype: str = "float64", scheme: str = "timm"
) -> dict[str, np.ndarray]:
    """Seeded params as NumPy arrays; the same seed gives the same bits.

    scheme "timm": timm's initialisation. Linear and conv weights truncated normal (std 0.02),
    biases 0, LayerNorms 1/0, logit_scale log(10), and every block's norm1/norm2 weight *and* bias
    0 (res-post-norm init), so each block starts as the identity.
    scheme "random": every entry non-trivial, for tests and measurements: weights
    N(0, 1/fan_in), biases N(0, 0.1^2), LayerNorm weight 1 + N(0, 0.1^2), logit_scale uniform in
    [log 2, log 200] so some heads exceed the clamp at log 100.
    """
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"scheme must be one of {', '.join(INIT_SCHEMES)}, got {scheme!r}")

    def value(rng: np.random.Generator, name: str, shape: tuple[int, ...]) -> np.ndarray:
        if name.endswith("logit_scale"):
            return (
                np.full(shape, math.log(10.0))
                if scheme == "timm"
                else rng.uniform(math.log(2.0), math.log(200.0), size=shape)
            )
        if scheme == "random":
            return random_value(rng, name, shape)
        leaf = name.rsplit(".", 1)[-1]
        if (".norm" in name or name.startswith("norm.")) and leaf == "weight":
            post_norm = ".norm1." in name or ".norm2." in name
            return np.zeros(shape) if post_norm else np.ones(shape)
        if leaf == "bias" or name.endswith(("q_bias", "v_bias")):
            return np.zeros(shape)
        return trunc_normal(rng, shape, 0.02)

    return seeded_params(param_shapes(cfg), seed=seed, dtype=dtype, value=value)


# ----- state-dict layouts --------------------------------------------------------------------
SOURCES = ("timm", "official", "torchvision", "hf", "auto")
# Buffers some layouts store; they follow from the config and are not loaded.
_DERIVED = ("relative_position_index", "relative_coords_table", "attn_mask", "k_bias")


def detect_source(state_dict: Mapping[str, Any]) -> str:
    """Guess a V2 state dict's layout from its names: torchvision, hf, official or timm."""
    names = set(state_dict)
    if "features.0.0.weight" in names:
        return "torchvision"
    if any(n.startswith(("swinv2.", "embeddings.patch_embeddings.")) for n in names):
        return "hf"
    if "layers.0.downsample.reduction.weight" in names:  # merge at the end of stage 0
        return "official"
    return "timm"


def _from_official(name: str) -> str:
    parts = name.split(".")
    if len(parts) > 2 and parts[0] == "layers" and parts[2] == "downsample":
        parts[1] = str(int(parts[1]) + 1)  # official merges at the end of stage i, timm at the start of i+1
        return ".".join(parts)
    if name.startswith("head."):
        return "head.fc." + name[len("head.") :]
    return name


_TV_BLOCK = {"mlp.0.": "mlp.fc1.", "mlp.3.": "mlp.fc2."}


def _from_torchvision(name: str, value: np.ndarray, out: dict[str, np.ndarray]) -> None:
    parts = name.split(".")
    stem = {"0": "patch_embed.proj.", "2": "patch_embed.norm."}
    if parts[0] == "features" and parts[1] == "0" and parts[2] in stem:  # conv, permute, norm
        out[stem[parts[2]] + ".".join(parts[3:])] = value
        return
    if parts[0] != "features" or not parts[1].isdigit() or parts[1] == "0":
        out["head.fc." + name[5:] if name.startswith("head.") else name] = value
        return
    if int(parts[1]) % 2 == 1:  # features.k, k odd: the blocks of stage (k - 1) / 2
        prefix = f"layers.{(int(parts[1]) - 1) // 2}.blocks.{parts[2]}."
        rest = ".".join(parts[3:])
        if rest == "attn.qkv.bias":
            C = value.shape[0] // 3
            # torchvision zeroes the middle (k) third in every forward; what it stores there is unused
            out[prefix + "attn.q_bias"] = value[:C]
            out[prefix + "attn.v_bias"] = value[2 * C :]
            return
        for old, new in _TV_BLOCK.items():
            if rest.startswith(old):
                rest = new + rest[len(old) :]
        out[prefix + rest] = value
        return
    # merges at features.2, 4, 6 -> start of stage 1, 2, 3
    out[f"layers.{int(parts[1]) // 2}.downsample." + ".".join(parts[2:])] = value


_HF_BLOCK = {
    "layernorm_before.": "norm1.",  # transformers applies it after attention despite the name
    "layernorm_after.": "norm2.",
    "attention.self.logit_scale": "attn.logit_scale",
    "attention.self.continuous_position_bias_mlp.": "attn.cpb_mlp.",
    "attention.self.query.bias": "attn.q_bias",
    "attention.self.value.bias": "attn.v_bias",
    "attention.output.dense.": "attn.proj.",
    "intermediate.dense.": "mlp.fc1.",
    "output.dense.": "mlp.fc2.",
}
_HF_TOP = {
    "embeddings.patch_embeddings.projection.": "patch_embed.proj.",
    "embeddings.norm.": "patch_embed.norm.",
    "layernorm.": "norm.",
    "classifier.": "head.fc.",
}


def _from_hf(state_dict: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    qkv: dict[str, dict[str, np.ndarray]] = {}
    for name, value in state_dict.items():
        name = name[len("swinv2.") :] if name.startswith("swinv2.") else name
        parts = name.split(".")
        if name.startswith("encoder.layers.") and len(parts) > 5 and parts[3] == "blocks":
            prefix = f"layers.{parts[2]}.blocks.{parts[4]}."
            rest = ".".join(parts[5:])
            if rest in (
                "attention.self.query.weight",
                "attention.self.key.weight",
                "attention.self.value.weight",
            ):
                qkv.setdefault(prefix, {})[parts[7]] = value
                continue
            for old, new in _HF_BLOCK.items():
                if rest.startswith(old):
                    rest = new + rest[len(old) :]
                    break
            out[prefix + rest] = value
        elif name.startswith("encoder.layers.") and len(parts) > 4 and parts[3] == "downsample":
            out[f"layers.{int(parts[2]) + 1}.downsample." + ".".join(parts[4:])] = value
        else:
            for old, new in _HF_TOP.items():
                if name.startswith(old):
                    name = new + name[len(old) :]
                    break
            out[name] = value
    for prefix, qkv_parts in qkv.items():
        if set(qkv_parts) == {"query", "key", "value"}:  # q, k, v are the row blocks of timm's fused qkv
            out[prefix + "attn.qkv.weight"] = np.concatenate(
                [qkv_parts["query"], qkv_parts["key"], qkv_parts["value"]]
            )
        else:
            incomplete = f"{prefix}attn.{{}}.weight (transformers, no full query/key/value set)"
            out.update({incomplete.format(k): v for k, v in qkv_parts.items()})
    return out


def to_timm_names(state_dict: Mapping[str, Any], source: str = "auto") -> dict[str, np.ndarray]:
    """Rename a V2 state dict of any supported layout to timm's names (derived buffers dropped)."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")
    if source == "auto":
        source = detect_source(state_dict)
    arrays = {n: v for n, v in host_arrays(state_dict).items() if n.rsplit(".", 1)[-1] not in _DERIVED}
    if source == "timm":
        return arrays
    if source == "official":
        return {_from_official(n): v for n, v in arrays.items()}
    if source == "hf":
        return _from_hf(arrays)
    out: dict[str, np.ndarray] = {}
    for name, value in arrays.items():
        _from_torchvision(name, value, out)
    return out


def convert_state_dict(
    state_dict: Mapping[str, Any], cfg: SwinV2Config, *, source: str = "auto", dtype: str | None = None
) -> dict[str, np.ndarray]:
    """Check a Swin V2 state dict against ``cfg`` and return params (NumPy arrays, timm names).

    source: "timm", "official" (microsoft/Swin-Transformer: merges at the end of a stage, ``head``),
    "torchvision" (``features.*``; the fused qkv bias is split into q_bias and v_bias and its
    middle third, which torchvision zeroes in forward, dropped), "hf" (transformers ``Swinv2*``;
    query/key/value fused into qkv) or "auto" (guessed from the names).
    dtype: None keeps the stored dtype; "float32"/"float64" cast explicitly.
    Raises :class:`swinref.WeightsError` listing every missing, unexpected and mis-shaped entry.
    """
    renamed = to_timm_names(state_dict, source)
    unexpected = [n for n in renamed if n not in param_shapes(cfg)]
    hints = []
    if any(n.endswith("relative_position_bias_table") for n in unexpected):
        hints.append(
            "it looks like a Swin V1 state dict (relative_position_bias_table, no "
            "logit_scale / cpb_mlp): use swinref.SwinConfig"
        )
    return check_state_dict(
        renamed,
        param_shapes(cfg),
        dtype=dtype,
        hints=hints,
        title=(
            f"state dict does not match the Swin V2 config (embed_dim={cfg.embed_dim}, "
            f"depths={cfg.depths}, num_heads={cfg.num_heads}, window_size={cfg.window_size}, "
            f"num_classes={cfg.num_classes}):"
        ),
    )


LAYOUTS = ("timm", "official", "torchvision", "hf")
_HF_BLOCK_OUT = {new: old for old, new in _HF_BLOCK.items()}
_HF_TOP_OUT = {new: old for old, new in _HF_TOP.items()}


def _layout_name(name: str, layout: str) -> str:
    """The name a timm-named V2 parameter has in ``layout`` (qkv and q/v biases handled apart)."""
    parts = name.split(".")
    merge = len(parts) > 3 and parts[0] == "layers" and parts[2] == "downsample"
    block = len(parts) > 4 and parts[0] == "layers" and parts[2] == "blocks"
    if layout == "official":
        if merge:  # official merges at the end of stage i - 1
            return ".".join(["layers", str(int(parts[1]) - 1), *parts[2:]])
        return "head." + name[len("head.fc.") :] if name.startswith("head.fc.") else name
    if layout == "torchvision":
        if name.startswith("patch_embed."):
            return {"proj": "features.0.0.", "norm": "features.0.2."}[parts[1]] + parts[2]
        if merge:
            return f"features.{2 * int(parts[1])}." + ".".join(parts[3:])
        if block:
            rest = ".".join(parts[4:])
            for old, new in _TV_BLOCK.items():
                rest = rest.replace(new, old) if rest.startswith(new) else rest
            return f"features.{2 * int(parts[1]) + 1}.{parts[3]}.{rest}"
        return "head." + name[len("head.fc.") :] if name.startswith("head.fc.") else name
    # hf
    if merge:
        return f"swinv2.encoder.layers.{int(parts[1]) - 1}.downsample." + ".".join(parts[3:])
    if block:
        rest = ".".join(parts[4:])
        for new, old in _HF_BLOCK_OUT.items():
            if rest.startswith(new) or rest == new:
                rest = old + rest[len(new) :]
                break
        return f"swinv2.encoder.layers.{parts[1]}.blocks.{parts[3]}.{rest}"
    for new, old in _HF_TOP_OUT.items():
        if name.startswith(new):  # the classifier sits beside the swinv2 model, not inside it
            return ("" if new == "head.fc." else "swinv2.") + old + name[len(new) :]
    return "swinv2." + name


def export_state_dict(
    params: Mapping[str, Any], cfg: SwinV2Config, *, layout: str = "timm"
) -> dict[str, np.ndarray]:
    """V2 params (checked against ``cfg``) in ``layout``'s names: the inverse of :func:`convert_state_dict`.

    torchvision gets one fused qkv bias [q; 0; v]; transformers gets query/key/value split from qkv
    (its key has no bias). Derived buffers (coordinate tables, indices, masks) are not written:
    every V2 port rebuilds them from its config.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r} for Swin V2; expected one of {', '.join(LAYOUTS)}")
    checked = convert_state_dict(params, cfg, source="timm")
    if layout == "timm":
        return checked
    out: dict[str, np.ndarray] = {}
    for name, value in checked.items():
        if layout == "torchvision" and name.endswith(("attn.q_bias", "attn.v_bias")):
            if name.endswith("q_bias"):
                v_bias = checked[name[: -len("q_bias")] + "v_bias"]
                fused = np.concatenate([value, np.zeros_like(value), v_bias])  # [q; k = 0; v]
                out[_layout_name(name[: -len("q_bias")] + "qkv.bias", layout)] = fused
            continue
        if layout == "hf" and name.endswith("attn.qkv.weight"):
            stem = _layout_name(name, layout).rsplit("attn.qkv.weight", 1)[0]
            C = value.shape[0] // 3
            for k, part in enumerate(("query", "key", "value")):
                out[f"{stem}attention.self.{part}.weight"] = value[k * C : (k + 1) * C]
            continue
        out[_layout_name(name, layout)] = value
    return out
