"""A NumPy-only fast path of the Swin V1 forward, checked against the portable reference.

``swinref.forward(params, x, cfg, mode="fast")`` runs this module. It computes the same function
as :func:`swinref.models.v1.forward` (which stays the definition of correct) with NumPy-specific
means: every linear layer is one 2-D GEMM over all tokens; cyclic shift, padding and window
partition are one ``np.take`` with precomputed flat indices (and the reverse another); q, k, v are
strided views of the qkv output that BLAS reads in place; attn @ v writes straight into the
heads-back-to-channels layout; LayerNorm, softmax and GELU work in place and, for the MLP, on
row blocks that stay in cache; GELU uses a tabulated Taylor expansion of the normal CDF (below).
Only geometry (gather indices, masks) is cached, per grid size, window, shift and dtype; nothing
derived from the params is cached, so editing params in place is always seen.

GELU: ``x * Phi(x)`` with ``Phi`` expanded around the nearest node x0 = k/128 of a table of Phi
and phi on [-L, L]: ``Phi(x0 + t) = Phi(x0) + phi(x0) * sum_j (-1)^j He_j(x0) t^(j+1) / (j+1)!``
(He: probabilists' Hermite polynomials), |t| <= 1/256, degree 5 in float64 (truncation <= 2e-17)
and 2 in float32 (<= 4e-9). Two table look-ups per element; the rest is arithmetic. The table
spans [-9, 9]; below it GELU is 0 (true value above -1e-18), above it x. Measured against mpmath:
absolute error <= 1.0 eps * max(1, |x|) in float64 and 1.13 eps * max(1, |x|) in float32
(tests/models/test_fast.py holds 2 eps); relative error is not promised in the far left tail (up to
~190 eps in float64 and ~16 eps in float32 where |GELU| < 1e-5).

Measured difference to the precise path (swin_t, ``init_params(seed=0)``, one 224x224 image of
standard normal values, seed 0; ``python benchmarks/bench_forward.py --accuracy``): max
|fast - precise| on the logits (magnitude up to 0.61) is 6.7e-16 in float64 and 2.8e-7 in float32.
The float32 figure is ordinary float32 rounding: precise float32 itself is off its float64 run by
2.6e-7 on the same input. ``tests/models/test_fast.py`` holds every intermediate to
1e-12 (float64) and 1e-4 (float32) of the tensor's scale.

The fast path takes NumPy arrays only (``numpy.ndarray``, which is also what array-api-compat's
NumPy namespace produces); any other array raises ``TypeError`` naming the precise mode.
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..core import backend
from ..core.cache import host_constant
from ..core.layers import host_index, host_mask
from ..core.numerics import LN_EPS
from ..core.windows import clamp_window
from .v1 import SwinConfig, check_input, check_params

MLP_ROWS = 512  # MLP row block: keeps the (rows, 4C) hidden activations in cache for GELU

# ----- GELU --------------------------------------------------------------------------------------
_STEP = 128  # table nodes per unit; |t| <= 1/256


def _phi_tables(limit: int) -> tuple[np.ndarray, np.ndarray]:
    """Normal CDF and density at the nodes k/128 on [-limit, limit], float64, each (2*limit*128 + 1,).

    The end nodes hold the limits Phi = 0, phi = 0 (left) and Phi = 1, phi = 0 (right), so inputs
    beyond +-limit give exactly 0 and x.
    """
    x0 = np.arange(-limit * _STEP, limit * _STEP + 1) / _STEP
    root2 = decimal.Decimal(2).sqrt(decimal.Context(prec=40))
    cdf = np.empty_like(x0)
    for i, v in enumerate(x0):
        # Phi(v) = erfc(z) / 2 with z = -v / sqrt(2); z = a + r with a a double and r its rounding
        # error, erfc(a + r) = erfc(a) - r * 2/sqrt(pi) * exp(-a^2) to first order (r ~ 1e-16 a)
        a = -v / math.sqrt(2.0)
        r = float(decimal.Decimal(-v) / root2 - decimal.Decimal(a))
        cdf[i] = 0.5 * (math.erfc(a) - r * 2.0 / math.sqrt(math.pi) * math.exp(-a * a))
    pdf = np.exp(-0.5 * x0 * x0) / math.sqrt(2.0 * math.pi)
    cdf[0], cdf[-1], pdf[0], pdf[-1] = 0.0, 1.0, 0.0, 0.0
    return cdf, pdf


# dtype -> (limit L, CDF table, PDF table, round-to-integer constant 1.5 * 2**(mantissa bits))
_GELU_TABLES = {
    np.dtype(np.float64): (9, *_phi_tables(9), 1.5 * 2.0**52),
    # float32: the pdf table is pre-divided by 128 (exact), see gelu_
    np.dtype(np.float32): (
        9,
        _phi_tables(9)[0].astype(np.float32),
        (_phi_tables(9)[1] / _STEP).astype(np.float32),
        1.5 * 2.0**23,
    ),
}
_INT_OF = {np.dtype(np.float64): np.int64, np.dtype(np.float32): np.int32}


GELU_CHUNK_BYTES = 256 * 1024  # per scratch buffer: measured best between 64 KB and 1 MB


def gelu_(x: np.ndarray) -> np.ndarray:
    """Exact-GELU ``x * Phi(x)`` in place on a contiguous float32/float64 array; returns x.

    Phi(x0 + t) = Phi(x0) + phi(x0) * t * S(x0, t) around the nearest node x0 = k/128, with
    S = sum_j (-1)^j He_j(x0) t^j / (j+1)!: terms j <= 4 in float64 (truncation <= 2e-17),
    j <= 1 in float32 (<= 4e-9, a fifteenth of float32's half ulp at 1). Works on chunks of
    GELU_CHUNK_BYTES with scratch allocated once per call.
    """
    limit, cdf, pdf, magic = _GELU_TABLES[x.dtype]
    dtype = x.dtype
    itype = _INT_OF[dtype]
    offset_bits = np.array(magic, dtype).view(itype) - limit * _STEP  # bits of magic + node 0
    flat = x.reshape(-1)
    n = min(flat.size, GELU_CHUNK_BYTES // dtype.itemsize)
    t, a, acc, c = (np.empty(n, dtype) for _ in range(4))
    k = np.empty(n, np.intp)  # np.take wants intp: a float32 run widens its int32 here, once
    lo, hi = -limit * _STEP, limit * _STEP
    # x * 128 overflows for |x| near the float maximum (then clipped); inf and nan propagate
    with np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, flat.size, n):
            xs = flat[start : start + n]
            m = xs.size
            t_, a_, acc_, c_, k_ = t[:m], a[:m], acc[:m], c[:m], k[:m]
            np.multiply(xs, _STEP, out=t_)  # exact: a power of two
            np.clip(t_, lo, hi, out=t_)
            np.add(t_, magic, out=a_)  # rounds to the nearest integer, held in the low mantissa bits
            np.subtract(a_.view(itype), offset_bits, out=k_)  # table row, no float->int conversion
            a_ -= magic  # 128 * x0 (the node), exact
            t_ -= a_  # 128 * t, exact
            if dtype == np.float64:
                t_ *= 1.0 / _STEP  # t
                a_ *= 1.0 / _STEP  # x0
                np.multiply(a_, a_, out=c_)  # x0^2
                # S = 1 + t*(-x0/2 + t*((x0^2-1)/6 + t*(-(x0^2-3)x0/24 + t*(x0^4 - 6x0^2 + 3)/120)))
                np.subtract(c_, 6.0, out=acc_)
                acc_ *= c_
                acc_ += 3.0
                acc_ *= t_
                acc_ *= 1.0 / 120.0
                c_ -= 3.0
                c_ *= a_
                c_ *= -1.0 / 24.0
                acc_ += c_
                acc_ *= t_
                np.multiply(a_, a_, out=c_)
                c_ -= 1.0
                c_ *= 1.0 / 6.0
                acc_ += c_
                acc_ *= t_
                a_ *= -0.5
                acc_ += a_
                acc_ *= t_
                acc_ += 1.0
                acc_ *= t_  # t * S
            else:
                # in units of 1/128: 128 t * S = 128 t * (1 - (128 x0)(128 t) / 32768); the float32
                # pdf table carries the remaining 1/128
                np.multiply(a_, t_, out=acc_)
                acc_ *= -1.0 / 32768.0
                acc_ += 1.0
                acc_ *= t_
            np.take(pdf, k_, out=c_, mode="clip")  # "clip": NaN input gives a NaN, not an IndexError
            acc_ *= c_
            np.take(cdf, k_, out=c_, mode="clip")
            acc_ += c_
            xs *= acc_
    return x


# ----- small numerics, in place ------------------------------------------------------------------
def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, out: np.ndarray | None = None):
    """LayerNorm over the last axis of a 2-D (T, C) array, biased variance, eps 1e-5."""
    C = x.shape[-1]
    mean = x.sum(axis=-1, keepdims=True)
    mean *= 1.0 / C
    out = np.subtract(x, mean, out=out)
    var = np.einsum("ij,ij->i", out, out)[:, None]  # (T, 1)
    var *= 1.0 / C
    var += LN_EPS
    np.sqrt(var, out=var)
    out /= var
    out *= weight
    out += bias
    return out


def softmax_(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis in place; returns x."""
    x -= x.max(axis=-1, keepdims=True)
    np.exp(x, out=x)
    x /= x.sum(axis=-1, keepdims=True)
    return x


def linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None):
    """x (T, Cin) @ weight.T (Cout, Cin) + bias, as one GEMM (BLAS reads the transpose in place)."""
    y = x @ weight.T  # (T, Cout)
    if bias is not None:
        y += bias
    return y


# ----- geometry ----------------------------------------------------------------------------------
def _geometry(H: int, W: int, window: tuple[int, int], shift: tuple[int, int], dtype):
    """Gather indices and mask of one block's geometry (host constants, in the one swinref cache).

    Returns (to_windows, to_grid, mask, rel_index): ``tokens[to_windows]`` is the rolled, padded,
    partitioned token list (index H*W points at an appended zero row, used only when padding);
    ``windowed[to_grid]`` undoes it for the H*W real tokens; mask is (nW, 1, N, N) or None (the
    portable :func:`swinref.core.windows.shift_mask`); rel_index is the flat (N*N,) portable
    :func:`swinref.core.windows.relative_position_index`.
    """
    return host_constant(
        "fast_geometry",
        (H, W, tuple(window), tuple(shift), np.dtype(dtype).str),
        lambda: _build_geometry(H, W, window, shift, dtype),
    )


def _build_geometry(H: int, W: int, window: tuple[int, int], shift: tuple[int, int], dtype):
    Mh, Mw = window
    sh, sw = shift
    Hp, Wp = H + (-H) % Mh, W + (-W) % Mw
    # position (r, c) of the rolled and padded grid holds token ((r + sh) % H, (c + sw) % W), or
    # padding where r >= H or c >= W (timm rolls, then pads)
    r = np.arange(Hp)[:, None]
    c = np.arange(Wp)[None, :]
    src = np.where((r < H) & (c < W), ((r + sh) % H) * W + (c + sw) % W, H * W)  # (Hp, Wp)
    to_windows = src.reshape(Hp // Mh, Mh, Wp // Mw, Mw).transpose(0, 2, 1, 3).reshape(-1)
    real = to_windows < H * W
    to_grid = np.empty(H * W, dtype=np.intp)
    to_grid[to_windows[real]] = np.nonzero(real)[0]
    mask = None
    if sh or sw:
        mask = host_mask((Hp, Wp), window, shift, backend.float_dtype_name(np.dtype(dtype)))
        mask = mask[:, None]  # (nW, 1, N, N): broadcast over heads
    return to_windows, to_grid, mask, host_index(window).reshape(-1)


# ----- components --------------------------------------------------------------------------------
def patch_embed(params: Mapping[str, Any], x: np.ndarray, cfg: SwinConfig) -> np.ndarray:
    """(B, Cin, H, W) -> (B, H/P, W/P, C) tokens, as one GEMM over all patches."""
    B, Cin, H, W = x.shape
    P = cfg.patch_size
    weight = params["patch_embed.proj.weight"]
    C = weight.shape[0]
    patches = x.reshape(B, Cin, H // P, P, W // P, P).transpose(0, 2, 4, 1, 3, 5)
    patches = patches.reshape(B * (H // P) * (W // P), Cin * P * P)  # (B*h*w, Cin*P*P), one copy
    t = linear(patches, weight.reshape(C, Cin * P * P), params["patch_embed.proj.bias"])
    if cfg.patch_norm:
        layer_norm(t, params["patch_embed.norm.weight"], params["patch_embed.norm.bias"], out=t)
    return t.reshape(B, H // P, W // P, C)


def window_attention_block(
    p: str,
    params: Mapping[str, Any],
    x: np.ndarray,
    *,
    num_heads: int,
    window: tuple[int, int],
    shift: tuple[int, int],
) -> np.ndarray:
    """The attention half of a block, residual included: x + (S)W-MSA(norm1(x)).

    x: (B, H, W, C) contiguous; returns a new (B, H, W, C) array.
    """
    B, H, W, C = x.shape
    nH = num_heads
    d = C // nH
    N = window[0] * window[1]
    to_windows, to_grid, mask, rel_index = _geometry(H, W, window, shift, x.dtype)
    h = layer_norm(x.reshape(B * H * W, C), params[f"{p}.norm1.weight"], params[f"{p}.norm1.bias"])
    h = h.reshape(B, H * W, C)
    if to_windows.size != H * W:  # padding: an extra zero token per image
        h = np.concatenate([h, np.zeros((B, 1, C), h.dtype)], axis=1)
    win = np.take(h, to_windows, axis=1)  # (B, nW*N, C): roll + pad + partition in one gather
    T = win.shape[1]
    nW = T // N
    qkv = linear(
        win.reshape(B * T, C), params[f"{p}.attn.qkv.weight"], params.get(f"{p}.attn.qkv.bias")
    )  # (B*nW*N, 3C)
    qkv = qkv.reshape(B * nW, N, 3, nH, d).transpose(2, 0, 3, 1, 4)  # (3, B_, nH, N, d), a view
    q, k, v = qkv[0], qkv[1], qkv[2]
    q *= d**-0.5  # in place, inside the qkv buffer
    attn = q @ k.transpose(0, 1, 3, 2)  # (B_, nH, N, N)
    table = params[f"{p}.attn.relative_position_bias_table"]
    bias = np.take(table, rel_index, axis=0).T.reshape(nH, N, N)  # (nH, N, N)
    if mask is not None:
        attn = attn.reshape(B, nW, nH, N, N)
        attn += mask + bias  # (nW, nH, N, N) broadcast over batch
        attn = attn.reshape(B * nW, nH, N, N)
    else:
        attn += bias
    softmax_(attn)
    out = np.empty((B * nW, N, nH, d), x.dtype)
    np.matmul(attn, v, out=out.transpose(0, 2, 1, 3))  # heads back to channels while writing
    out = linear(out.reshape(B * T, C), params[f"{p}.attn.proj.weight"], params[f"{p}.attn.proj.bias"])
    out = np.take(out.reshape(B, T, C), to_grid, axis=1)  # (B, H*W, C): reverse, crop, roll back
    out += x.reshape(B, H * W, C)
    return out.reshape(B, H, W, C)


def mlp_block_(p: str, params: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """x += MLP(norm2(x)) in place, on row blocks so GELU's input stays in cache. x: (B, H, W, C)."""
    C = x.shape[-1]
    t = x.reshape(-1, C)
    w1, b1 = params[f"{p}.mlp.fc1.weight"], params[f"{p}.mlp.fc1.bias"]
    w2, b2 = params[f"{p}.mlp.fc2.weight"], params[f"{p}.mlp.fc2.bias"]
    n1w, n1b = params[f"{p}.norm2.weight"], params[f"{p}.norm2.bias"]
    for start in range(0, t.shape[0], MLP_ROWS):
        rows = t[start : start + MLP_ROWS]
        # GELU in place, on blocks shared by the threads of swinref.core.backend.map_blocks
        hidden = backend.map_blocks(gelu_, linear(layer_norm(rows, n1w, n1b), w1, b1), in_place=True)
        rows += linear(hidden, w2, b2)
    return x


def patch_merging(p: str, params: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """(B, H, W, C) -> (B, ceil(H/2), ceil(W/2), 2C); channel order x00, x10, x01, x11."""
    B, H, W, C = x.shape
    if H % 2 or W % 2:
        x = np.pad(x, ((0, 0), (0, H % 2), (0, W % 2), (0, 0)))
    H2, W2 = (H + 1) // 2, (W + 1) // 2
    t = x.reshape(B, H2, 2, W2, 2, C).transpose(0, 1, 3, 4, 2, 5).reshape(B * H2 * W2, 4 * C)
    t = layer_norm(t, params[f"{p}.norm.weight"], params[f"{p}.norm.bias"])
    return linear(t, params[f"{p}.reduction.weight"]).reshape(B, H2, W2, -1)


# ----- the whole model ---------------------------------------------------------------------------
def check_numpy(params: Mapping[str, Any], x) -> None:
    """The fast path is NumPy only: x and every param must be numpy arrays."""
    if not isinstance(x, np.ndarray):
        raise TypeError(
            f"mode='fast' runs on NumPy arrays only, got input of type {type(x).__module__}."
            f"{type(x).__name__}; use mode='precise' (the default) for other array libraries"
        )
    for name, value in params.items():
        if not isinstance(value, np.ndarray):
            raise TypeError(
                f"mode='fast' runs on NumPy arrays only, parameter {name!r} is a "
                f"{type(value).__module__}.{type(value).__name__}; use mode='precise'"
            )


def forward(params: Mapping[str, Any], x: np.ndarray, cfg: SwinConfig, *, return_intermediates: bool = False):
    """Same contract and intermediates as :func:`swinref.models.v1.forward`, NumPy arrays only.

    Runs the family's input and params checks, plus the fast path's own limits (NumPy arrays,
    semantics "timm", the configured img_size).
    """
    check_numpy(params, x)
    check_input(x, cfg)
    check_params(params, x, cfg)
    semantics = getattr(cfg, "semantics", "timm")
    if semantics != "timm":
        raise ValueError(
            f"mode='fast' implements semantics='timm' only, the config has "
            f"semantics={semantics!r}; use mode='precise'"
        )
    if tuple(x.shape[2:]) != cfg.image_hw:
        raise ValueError(
            f"mode='fast' needs the configured img_size {cfg.image_hw}, got an input of "
            f"{tuple(x.shape[2:])}; use mode='precise' for other sizes"
        )
    inter: dict[str, Any] = {}  # every stored array is new and never written again
    h = patch_embed(params, np.ascontiguousarray(x), cfg)  # (B, h, w, C)
    inter["patch_embed"] = h
    for i, depth in enumerate(cfg.depths):
        stage = f"layers.{i}"
        if i > 0:
            h = patch_merging(f"{stage}.downsample", params, h)
            inter[f"{stage}.downsample"] = h
        resolution = (h.shape[1], h.shape[2])
        for j in range(depth):
            target = (cfg.window[0] // 2, cfg.window[1] // 2) if j % 2 else (0, 0)
            window, shift = clamp_window(resolution, cfg.window, target, rule="timm")
            p = f"{stage}.blocks.{j}"
            h = window_attention_block(
                p,
                params,
                h,
                num_heads=cfg.num_heads[i],
                window=(window[0], window[1]),
                shift=(shift[0], shift[1]),
            )
            h = mlp_block_(p, params, h)
            inter[p] = h
        inter[stage] = inter[f"{stage}.blocks.{depth - 1}"]
    B, hh, ww, C = h.shape
    h = layer_norm(h.reshape(-1, C), params["norm.weight"], params["norm.bias"]).reshape(B, hh, ww, C)
    inter["norm"] = h
    pooled = h.mean(axis=(1, 2))  # (B, C)
    inter["pre_logits"] = pooled
    logits = None
    if "head.fc.weight" in params:
        logits = linear(pooled, params["head.fc.weight"], params["head.fc.bias"])
        inter["logits"] = logits
    out = pooled if logits is None else logits
    return (out, inter) if return_intermediates else out
