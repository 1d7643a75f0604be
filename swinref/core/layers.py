"""Building blocks shared by every Swin family: patch embedding, MLP, window attention, the 2x2
merge reorder, the relative position bias gather and the pooled head.

Each is a small pure function of a params mapping (local checkpoint names) and the namespace
``xp``, written with the array API standard only. A family module composes them; what differs
between families (V2's cosine attention and post-norm, Video's 3-D grids) stays in the family.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from . import backend
from .cache import host_constant
from .numerics import LN_EPS, gelu, layer_norm, linear, softmax
from .windows import pad_end, relative_position_index, shift_mask


def patch_embed(p: Mapping[str, Any], x, *, patch_size: int | Sequence[int], patch_norm: bool, xp):
    """Patch embedding: a conv with kernel = stride = P, done as patch reshape + matmul.

    x: (B, Cin, *S) with every S[a] a multiple of P[a] (2-D: (H, W); 3-D: (T, H, W)); p:
    ``proj.weight`` (C, Cin, *P), ``proj.bias`` (C,), and ``norm.weight``/``norm.bias`` (C,) when
    ``patch_norm``; an int P means P on every axis. Returns the token grid (B, *S/P, C); a patch is
    flattened as (Cin, *P).
    """
    B, Cin, *S = x.shape
    if isinstance(patch_size, int):
        patch_size = (patch_size,) * len(S)
    k = len(patch_size)
    C = p["proj.weight"].shape[0]
    grid = tuple(s // q for s, q in zip(S, patch_size, strict=False))
    split = [B, Cin]
    for g, q in zip(grid, patch_size, strict=False):
        split += [g, q]  # (B, Cin, S0/P0, P0, S1/P1, P1, ...)
    x = xp.reshape(x, tuple(split))
    # (B, S0/P0, S1/P1, ..., Cin, P0, P1, ...)
    x = xp.permute_dims(x, (0, *range(2, 2 * k + 2, 2), 1, *range(3, 2 * k + 3, 2)))
    K = Cin * math.prod(patch_size)
    x = xp.reshape(x, (B, *grid, K))  # patch flattened as (Cin, *P)
    weight = xp.reshape(p["proj.weight"], (C, K))
    x = linear(x, weight, p["proj.bias"], xp=xp)  # (B, *grid, C)
    if patch_norm:
        x = layer_norm(x, p["norm.weight"], p["norm.bias"], eps=LN_EPS, xp=xp)
    return x


#: Tokens per block of the MLP and the window attention on NumPy, in whole images (at least
#: one): the hidden and qkv blocks stay small and no activation-sized hidden array is made.
BLOCK_TOKENS = 4096


def by_images(fn, x, tokens_per_image: int, *, xp):
    """``fn`` on blocks of whole images of x, whose leading axis counts ``images * k`` rows.

    x: (R, ...) with R * prod(rest) = images * tokens_per_image * C; fn maps (r, ...) to
    (r, ...) row by row within an image. On NumPy the images go through in blocks of about
    :data:`BLOCK_TOKENS` tokens (one image at least) so the per-image intermediates stay small;
    elsewhere fn gets x whole. A batch of one image is always one block.
    """
    if not backend.is_numpy(xp) or x.ndim < 2 or x.size == 0:
        return fn(x)
    shape = x.shape
    per_image = tokens_per_image * shape[-1]
    images = xp.reshape(x, (-1, per_image))  # (B, one image's elements)
    out = backend.map_blocks(
        lambda rows: xp.reshape(fn(xp.reshape(rows, (-1, *shape[1:]))), (-1, per_image)),
        images,
        row=per_image,
        block=max(BLOCK_TOKENS // tokens_per_image, 1) * per_image,
        threads=1,  # fn calls BLAS, which has threads of its own
    )
    return xp.reshape(out, shape)


def mlp(p: Mapping[str, Any], x, *, xp):
    """fc1 -> exact GELU -> fc2. x: (B, ..., C); returns (B, ..., C).

    On NumPy in blocks of whole images (:func:`by_images`): no activation-sized hidden array.
    """
    tokens = math.prod(x.shape[1:-1]) if x.ndim > 2 else 1
    return by_images(lambda rows: _mlp(p, rows, xp=xp), x, tokens, xp=xp)


def _mlp(p: Mapping[str, Any], x, *, xp):
    h = gelu(linear(x, p["fc1.weight"], p["fc1.bias"], xp=xp), xp=xp, overwrite=True)  # (..., r*C)
    return linear(h, p["fc2.weight"], p["fc2.bias"], xp=xp)


# ----- geometry constants, built on the host once and converted per call ------------------------
def host_index(window: tuple[int, ...]) -> np.ndarray:
    """The relative position index (N, N) int64 of a window, cached on the host."""
    return host_constant(
        "relative_position_index",
        (tuple(window),),
        lambda: np.asarray(relative_position_index(window, xp=backend.get_namespace("numpy"))),
    )


def host_mask(
    size: tuple[int, ...], window: tuple[int, ...], shift: tuple[int, ...], dtype: str
) -> np.ndarray:
    """The shift mask of a padded grid, built once per geometry and dtype on the host."""
    return host_constant(
        "shift_mask",
        (tuple(size), tuple(window), tuple(shift), dtype),
        lambda: np.asarray(
            shift_mask(size, window, shift, xp=backend.get_namespace("numpy"), dtype=np.dtype(dtype))
        ),
    )


def mask_for(like, window: tuple[int, ...], shift: tuple[int, ...]):
    """``padded size -> mask`` in like's namespace, device and dtype, for :func:`shifted_window_apply`."""
    dtype = backend.float_dtype_name(like.dtype)
    return lambda size: backend.from_host(host_mask(size, window, shift, dtype), like)


def index_like(window: tuple[int, ...], like):
    """The relative position index of ``window`` in like's namespace and on its device."""
    return backend.from_host(host_index(window), like)


# ----- components --------------------------------------------------------------------------------
def gather_bias(table, index, *, xp):
    """Per-head bias (nH, N, N) from a table (T, nH) and a relative index (N, N) into its rows."""
    N = index.shape[0]
    nH = table.shape[1]
    bias = xp.take(table, xp.reshape(index, (-1,)), axis=0)  # (N*N, nH)
    return xp.permute_dims(xp.reshape(bias, (N, N, nH)), (2, 0, 1))  # (nH, N, N)


def split_heads(qkv, num_heads: int, *, xp):
    """(B_, N, 3C) -> q, k, v, each (B_, nH, N, d): the fused qkv output, head-major."""
    B_, N, C3 = qkv.shape
    d = C3 // 3 // num_heads
    qkv = xp.reshape(qkv, (B_, N, 3, num_heads, d))
    qkv = xp.permute_dims(qkv, (2, 0, 3, 1, 4))  # (3, B_, nH, N, d)
    return qkv[0, ...], qkv[1, ...], qkv[2, ...]


def merge_heads(out, *, xp):
    """(B_, nH, N, d) -> (B_, N, nH*d): heads back to channels."""
    B_, nH, N, d = out.shape
    return xp.reshape(xp.permute_dims(out, (0, 2, 1, 3)), (B_, N, nH * d))


def add_window_mask(attn, mask, *, repeats: int = 1, xp):
    """Add the shift mask (nW, N, N) to logits (B*nW, nH, N, N) per window, over batch and heads.

    ``repeats`` adds it that many times (transformers' Swin V2 adds it twice).
    """
    B_, nH, N, _ = attn.shape
    nW = mask.shape[0]
    attn = xp.reshape(attn, (B_ // nW, nW, nH, N, N))
    for _ in range(repeats):
        attn = attn + mask[None, :, None, :, :]
    return xp.reshape(attn, (B_, nH, N, N))


def window_attention(p: Mapping[str, Any], x, *, num_heads: int, bias, mask=None, xp):
    """Multi-head self-attention inside each window with an additive position bias (V1, Video).

    x: (B*nW, N, C); bias: (nH, N, N); mask: None or (nW, N, N). p: ``qkv.weight`` (3C, C),
    ``qkv.bias`` (3C,) or absent, ``proj.weight`` (C, C), ``proj.bias``. Returns (B*nW, N, C).
    """
    B_, N, C = x.shape
    nW = 1 if mask is None else mask.shape[0]  # windows per image, when the mask says

    def attend(windows):  # (k*nW, N, C), whole images
        out = _attend(p, windows, num_heads=num_heads, bias=bias, mask=mask, xp=xp)  # (k*nW, N, C)
        return linear(out, p["proj.weight"], p["proj.bias"], xp=xp)

    return by_images(attend, x, nW * N, xp=xp)


def _attend(p: Mapping[str, Any], x, *, num_heads: int, bias, mask, xp):
    """softmax(q k^T + bias + mask) v with heads merged back, (B_, N, C). A function of its own so
    that qkv and the logits are freed before the output projection."""
    B_, N, C = x.shape
    nH = num_heads
    d = C // nH
    qkv = linear(x, p["qkv.weight"], p["qkv.bias"] if "qkv.bias" in p else None, xp=xp)  # (B_, N, 3C)
    q, k, v = split_heads(qkv, num_heads, xp=xp)  # (B_, nH, N, d) each
    # in place, on the fresh qkv product or the fresh logits (libraries without in-place
    # operators rebind): the same rounding as ``q * scale`` and ``attn + bias``, without copies
    q *= d**-0.5  # the official code scales q, not the logits
    attn = xp.matmul(q, xp.matrix_transpose(k))  # (B_, nH, N, N)
    attn += bias
    if mask is not None:
        nW = mask.shape[0]
        attn = xp.reshape(attn, (B_ // nW, nW, nH, N, N))
        attn += mask[None, :, None, :, :]  # per window, over batch and heads
        attn = xp.reshape(attn, (B_, nH, N, N))
    attn = softmax(attn, axis=-1, xp=xp, overwrite=True)
    out = xp.matmul(attn, v)  # (B_, nH, N, d)
    del qkv, q, k, v, attn  # free them before the heads are merged (a copy)
    return merge_heads(out, xp=xp)  # (B_, N, C)


def space_to_depth(x, *, xp):
    """The 2x2 merge reorder of the last two spatial axes: (..., H, W, C) -> (..., H2, W2, 4C).

    Odd H or W is zero-padded at the end first (timm, torchvision, transformers, detection
    backbones, Video Swin). Channel order of the 4C: x[0::2, 0::2], x[1::2, 0::2], x[0::2, 1::2],
    x[1::2, 1::2] (the official order; the row offset varies fastest).
    """
    *lead, H, W, C = x.shape
    n = len(lead)
    x = pad_end(x, {n: H % 2, n + 1: W % 2}, xp=xp)
    H2, W2 = (H + 1) // 2, (W + 1) // 2
    x = xp.reshape(x, (*lead, H2, 2, W2, 2, C))  # (..., H/2, dh, W/2, dw, C)
    x = xp.permute_dims(x, (*range(n), n, n + 2, n + 3, n + 1, n + 4))  # (..., H/2, W/2, dw, dh, C)
    return xp.reshape(x, (*lead, H2, W2, 4 * C))


def pool_head(p: Mapping[str, Any], x, *, head: str, xp):
    """Mean over every token axis, then the classifier ``{head}.weight``/``{head}.bias`` if present.

    x: (B, *S, C) already normed. Returns (pre_logits (B, C), logits (B, classes) or None).
    """
    pooled = xp.mean(x, axis=tuple(range(1, x.ndim - 1)))  # (B, C)
    if f"{head}.weight" not in p:
        return pooled, None
    return pooled, linear(pooled, p[f"{head}.weight"], p[f"{head}.bias"], xp=xp)
