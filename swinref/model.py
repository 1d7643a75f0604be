"""The Swin Transformer V1 forward pass, one small pure function per component.

Every function receives its parameters as a mapping keyed by the checkpoint's local names
(``"qkv.weight"``, ``"norm1.bias"``, ...) and the array namespace ``xp``; it uses only the array
API standard. Behaviour follows timm's ``swin_transformer.py`` (roll then pad, per-dimension window
clamp, odd sizes padded in patch merging); where timm reproduces a quirk of the official code the
comment says so.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from . import backend
from .config import SwinConfig
from .numerics import gelu, layer_norm, linear, softmax
from .windows import (
    clamp_window,
    cyclic_shift,
    pad_bottom_right,
    relative_position_index,
    shift_mask,
    window_partition,
    window_reverse,
)

LN_EPS = 1e-5  # every LayerNorm in Swin V1 (PyTorch default)


class Scope(Mapping):
    """Read-only view of ``params`` under a name prefix: ``Scope(p, "layers.0")["norm.weight"]``."""

    def __init__(self, params: Mapping[str, Any], prefix: str):
        self._params = params
        self._prefix = prefix + "." if prefix else ""

    def __getitem__(self, name: str):
        return self._params[self._prefix + name]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (self._prefix + name) in self._params

    def __iter__(self) -> Iterator[str]:
        n = len(self._prefix)
        return (k[n:] for k in self._params if k.startswith(self._prefix))

    def __len__(self) -> int:
        return sum(1 for _ in self)


# ----- geometry caches -----------------------------------------------------------------------
# Indices and masks depend only on the window, shift, grid size, backend, device and dtype; they
# are rebuilt for every new combination and reused across calls.
_CACHE: dict[tuple, Any] = {}


def _cached(kind: str, key: tuple, build):
    full = (kind,) + key
    value = _CACHE.get(full)
    if value is None:
        value = _CACHE[full] = build()
    return value


def _device_key(dev) -> str:
    return repr(dev)


def clear_caches() -> None:
    """Drop every cached index and mask (they are rebuilt on demand)."""
    _CACHE.clear()


# ----- components ----------------------------------------------------------------------------
def patch_embed(p: Mapping[str, Any], x, *, patch_size: int, patch_norm: bool, xp):
    """Patch embedding: a conv with kernel = stride = P, done as patch reshape + matmul.

    x: (B, Cin, H, W) with H, W multiples of P; p: ``proj.weight`` (C, Cin, P, P), ``proj.bias``
    (C,), and ``norm.weight``/``norm.bias`` (C,) when ``patch_norm``. Returns (B, H/P, W/P, C).
    """
    B, Cin, H, W = x.shape
    P = patch_size
    C = p["proj.weight"].shape[0]
    x = xp.reshape(x, (B, Cin, H // P, P, W // P, P))
    x = xp.permute_dims(x, (0, 2, 4, 1, 3, 5))  # (B, H/P, W/P, Cin, P, P)
    x = xp.reshape(x, (B, H // P, W // P, Cin * P * P))  # patch flattened as (Cin, row, col)
    weight = xp.reshape(p["proj.weight"], (C, Cin * P * P))
    x = linear(x, weight, p["proj.bias"], xp=xp)  # (B, H/P, W/P, C)
    if patch_norm:
        x = layer_norm(x, p["norm.weight"], p["norm.bias"], eps=LN_EPS, xp=xp)
    return x


def relative_position_bias(table, window: tuple[int, int], *, xp):
    """Gather the learned table ((2Mh-1)*(2Mw-1), nH) into a per-head bias (nH, N, N)."""
    N = window[0] * window[1]
    nH = table.shape[1]
    key = (backend.backend_name(xp), _device_key(table.device), tuple(window))
    index = _cached("relpos", key, lambda: relative_position_index(window, xp=xp, device=table.device))
    bias = xp.take(table, xp.reshape(index, (-1,)), axis=0)  # (N*N, nH)
    bias = xp.reshape(bias, (N, N, nH))
    return xp.permute_dims(bias, (2, 0, 1))  # (nH, N, N)


def window_attention(p: Mapping[str, Any], x, *, num_heads: int, window: tuple[int, int],
                     mask=None, xp):
    """Multi-head self-attention inside each window, with relative position bias.

    x: (B*nW, N, C), N = Mh*Mw; mask: None or (nW, N, N), added per window and broadcast over
    batch and heads. p: ``qkv.weight`` (3C, C), ``qkv.bias`` (3C,) or absent,
    ``relative_position_bias_table``, ``proj.weight`` (C, C), ``proj.bias``. Returns (B*nW, N, C).
    """
    B_, N, C = x.shape
    nH = num_heads
    d = C // nH
    qkv = linear(x, p["qkv.weight"], p["qkv.bias"] if "qkv.bias" in p else None, xp=xp)
    qkv = xp.reshape(qkv, (B_, N, 3, nH, d))
    qkv = xp.permute_dims(qkv, (2, 0, 3, 1, 4))  # (3, B_, nH, N, d): q, k, v head-major
    q, k, v = qkv[0, ...], qkv[1, ...], qkv[2, ...]
    q = q * d**-0.5  # the official code scales q, not the logits
    attn = xp.matmul(q, xp.matrix_transpose(k))  # (B_, nH, N, N)
    attn = attn + relative_position_bias(p["relative_position_bias_table"], window, xp=xp)
    if mask is not None:
        nW = mask.shape[0]
        attn = xp.reshape(attn, (B_ // nW, nW, nH, N, N)) + mask[None, :, None, :, :]
        attn = xp.reshape(attn, (B_, nH, N, N))
    attn = softmax(attn, axis=-1, xp=xp)
    out = xp.matmul(attn, v)  # (B_, nH, N, d)
    out = xp.reshape(xp.permute_dims(out, (0, 2, 1, 3)), (B_, N, C))  # heads back to channels
    return linear(out, p["proj.weight"], p["proj.bias"], xp=xp)


def mlp(p: Mapping[str, Any], x, *, xp):
    """fc1 -> exact GELU -> fc2. x: (..., C); returns (..., C)."""
    h = gelu(linear(x, p["fc1.weight"], p["fc1.bias"], xp=xp), xp=xp)  # (..., r*C)
    return linear(h, p["fc2.weight"], p["fc2.bias"], xp=xp)


def block_geometry(resolution: tuple[int, int], window: tuple[int, int],
                   shifted: bool) -> tuple[tuple[int, int], tuple[int, int]]:
    """Window and shift of a block at a token resolution (timm's per-dimension clamp)."""
    target_shift = (window[0] // 2, window[1] // 2) if shifted else (0, 0)
    return clamp_window(resolution, window, target_shift, rule="timm")


def swin_block(p: Mapping[str, Any], x, *, num_heads: int, window: tuple[int, int],
               shift: tuple[int, int], xp):
    """One pre-norm Swin block: x + (S)W-MSA(norm1(x)), then x + MLP(norm2(x)).

    x: (B, H, W, C); window and shift are the already clamped values for this resolution.
    Returns (B, H, W, C).
    """
    B, H, W, C = x.shape
    Mh, Mw = window
    h = layer_norm(x, p["norm1.weight"], p["norm1.bias"], eps=LN_EPS, xp=xp)
    h = cyclic_shift(h, (-shift[0], -shift[1]), xp=xp)
    # timm rolls first and then pads bottom/right (the others pad, then roll)
    pad_h, pad_w = (-H) % Mh, (-W) % Mw
    h = pad_bottom_right(h, pad_h, pad_w, xp=xp)  # (B, Hp, Wp, C)
    Hp, Wp = H + pad_h, W + pad_w
    mask = None
    if any(shift):
        key = (backend.backend_name(xp), _device_key(x.device), str(x.dtype), (Hp, Wp), window, shift)
        mask = _cached("mask", key, lambda: shift_mask((Hp, Wp), window, shift, xp=xp,
                                                       dtype=x.dtype, device=x.device))
    windows = window_partition(h, window, xp=xp)  # (B*nW, N, C)
    windows = window_attention(Scope(p, "attn"), windows, num_heads=num_heads, window=window,
                               mask=mask, xp=xp)
    h = window_reverse(windows, window, Hp, Wp, xp=xp)[:, :H, :W, :]  # (B, H, W, C)
    h = cyclic_shift(h, shift, xp=xp)
    x = x + h
    return x + mlp(Scope(p, "mlp"), layer_norm(x, p["norm2.weight"], p["norm2.bias"], eps=LN_EPS, xp=xp), xp=xp)


def patch_merging(p: Mapping[str, Any], x, *, xp):
    """2x2 space-to-depth, LayerNorm(4C), Linear(4C -> 2C, no bias).

    x: (B, H, W, C); odd H or W is zero-padded at the bottom/right first (timm, torchvision).
    Channel order of the 4C: x[0::2, 0::2], x[1::2, 0::2], x[0::2, 1::2], x[1::2, 1::2]
    (the official order; the row offset varies fastest). Returns (B, ceil(H/2), ceil(W/2), 2C).
    """
    B, H, W, C = x.shape
    x = pad_bottom_right(x, H % 2, W % 2, xp=xp)
    H2, W2 = (H + 1) // 2, (W + 1) // 2
    x = xp.reshape(x, (B, H2, 2, W2, 2, C))  # (B, H/2, dh, W/2, dw, C)
    x = xp.permute_dims(x, (0, 1, 3, 4, 2, 5))  # (B, H/2, W/2, dw, dh, C)
    x = xp.reshape(x, (B, H2, W2, 4 * C))
    x = layer_norm(x, p["norm.weight"], p["norm.bias"], eps=LN_EPS, xp=xp)
    return linear(x, p["reduction.weight"], None, xp=xp)  # (B, H/2, W/2, 2C)


def head(p: Mapping[str, Any], x, *, xp):
    """Mean over tokens, then the classifier. x: (B, H, W, C) already normed.

    Returns (pre_logits (B, C), logits (B, num_classes) or None when there is no head).
    """
    pooled = xp.mean(x, axis=(1, 2))  # (B, C)
    if "head.fc.weight" not in p:
        return pooled, None
    return pooled, linear(pooled, p["head.fc.weight"], p["head.fc.bias"], xp=xp)


# ----- input checks --------------------------------------------------------------------------
def check_input(x, cfg: SwinConfig) -> None:
    """Raise a clear error unless x is a float (B, in_chans, H, W) image batch of cfg's size."""
    xp = backend.namespace(x)
    shape = tuple(x.shape)
    if len(shape) != 4:
        raise ValueError(f"input must have rank 4, (B, {cfg.in_chans}, H, W); got shape {shape}")
    if shape[1] != cfg.in_chans:
        raise ValueError(
            f"input has {shape[1]} channels, config expects in_chans={cfg.in_chans}: "
            f"shape must be (B, {cfg.in_chans}, H, W), got {shape}"
        )
    if x.dtype not in (xp.float32, xp.float64):
        raise TypeError(f"input dtype must be float32 or float64, got {x.dtype}")
    if shape[0] < 1:
        raise ValueError(f"input batch is empty: shape {shape}")
    if tuple(shape[2:]) != cfg.image_hw:
        H, W = cfg.image_hw
        raise ValueError(
            f"input size {shape[2]}x{shape[3]} does not match the config's img_size {H}x{W}; "
            f"expected shape (B, {cfg.in_chans}, {H}, {W})"
        )


def check_params(params: Mapping[str, Any], x) -> None:
    """Params must live in x's namespace and have x's float dtype (no silent promotion)."""
    xp = backend.namespace(x)
    for name, value in params.items():
        try:
            backend.namespace(x, value)
        except TypeError as e:
            raise TypeError(
                f"parameter {name!r} is not in the input's array namespace ({backend.backend_name(xp)}); "
                "move the params with swinref.to_namespace(params, xp)"
            ) from e
        if value.dtype != x.dtype:
            raise TypeError(
                f"parameter {name!r} is {value.dtype} but the input is {x.dtype}; swinref never "
                "promotes silently: cast with swinref.to_namespace(params, xp, dtype=...)"
            )


# ----- the whole model -----------------------------------------------------------------------
def forward(params: Mapping[str, Any], x, cfg: SwinConfig, *, return_intermediates: bool = False):
    """Swin V1 forward pass.

    params: mapping named like timm's state dict, arrays in x's namespace, device and dtype.
    x: (B, in_chans, H, W), float32 or float64, H x W = cfg.img_size.
    Returns logits (B, num_classes) (pooled features (B, num_features) when num_classes == 0);
    with ``return_intermediates`` returns ``(logits, intermediates)`` where intermediates maps
    stable names to arrays: ``patch_embed`` (B, H/4, W/4, C); ``layers.{i}.downsample`` (the patch
    merging at the start of stage i >= 1); ``layers.{i}.blocks.{j}`` (B, h, w, C_i); ``layers.{i}``
    (stage output); ``norm`` (final LayerNorm, B, h, w, C); ``pre_logits`` (B, C); ``logits``.
    Names are timm's module names, so hooks on a timm model give the matching tensors.
    """
    check_input(x, cfg)
    check_params(params, x)
    xp = backend.namespace(x)
    inter: dict[str, Any] = {}

    h = patch_embed(Scope(params, "patch_embed"), x, patch_size=cfg.patch_size,
                    patch_norm=cfg.patch_norm, xp=xp)  # (B, H/4, W/4, C)
    inter["patch_embed"] = h
    for i, depth in enumerate(cfg.depths):
        stage = f"layers.{i}"
        if i > 0:  # timm keeps the merge at the start of the next stage (official: end of stage)
            h = patch_merging(Scope(params, f"{stage}.downsample"), h, xp=xp)
            inter[f"{stage}.downsample"] = h
        resolution = (h.shape[1], h.shape[2])
        for j in range(depth):
            window, shift = block_geometry(resolution, cfg.window, shifted=j % 2 == 1)
            h = swin_block(Scope(params, f"{stage}.blocks.{j}"), h, num_heads=cfg.num_heads[i],
                           window=window, shift=shift, xp=xp)
            inter[f"{stage}.blocks.{j}"] = h
        inter[stage] = h
    h = layer_norm(h, params["norm.weight"], params["norm.bias"], eps=LN_EPS, xp=xp)
    inter["norm"] = h
    pooled, logits = head(params, h, xp=xp)
    inter["pre_logits"] = pooled
    out = pooled if logits is None else logits
    if logits is not None:
        inter["logits"] = logits
    return (out, inter) if return_intermediates else out
