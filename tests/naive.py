"""Loop definitions of every Swin forward step, written from the papers and released code, not
from swinref: each token's window, shift, region, relative offset and attention is computed one
at a time with Python loops over token coordinates. The property tests recompute swinref's
named intermediates with these, one step from the previous one.

Nothing here imports swinref. Shapes are channels-last: a grid is (B, *S, C) with S = (H, W) or
(D, H, W); a window M and a shift s have one entry per spatial axis.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

EPS = 1e-5  # every Swin LayerNorm (PyTorch's default); written out, not read from swinref
MASK = -100.0  # official Swin adds -100 between tokens of different regions, not -inf
LOGIT_SCALE_MAX = math.log(100.0)  # Swin V2 clamps the logit scale at log(1 / 0.01)
NORMALIZE_EPS = 1e-12  # F.normalize: x / max(||x||, 1e-12)


# ----- elementwise ---------------------------------------------------------------------------
def layer_norm(x, weight, bias, eps: float = EPS):
    """(x - mean) / sqrt(biased var + eps) * weight + bias over the last axis."""
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def gelu(x):
    """Exact GELU, 0.5 x (1 + erf(x / sqrt 2)), with Python's math.erf per element."""
    erf = np.vectorize(math.erf, otypes=[np.float64])
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def mlp(p, prefix, x):
    h = gelu(x @ p[f"{prefix}fc1.weight"].T + p[f"{prefix}fc1.bias"])
    return h @ p[f"{prefix}fc2.weight"].T + p[f"{prefix}fc2.bias"]


def softmax_row(row):
    e = np.exp(row - row.max())
    return e / e.sum()


# ----- geometry --------------------------------------------------------------------------------
def region(q: int, L: int, M: int, s: int) -> int:
    """Slice of position q on an axis of (padded) length L: [0, L-M), [L-M, L-s), [L-s, L)."""
    if s == 0:
        return 0
    return 0 if q < L - M else (1 if q < L - s else 2)


def source(q: int, S: int, P: int, s: int, roll_first: bool) -> int | None:
    """Which original token sits at position q (of P) of the shifted, padded axis; None for padding.

    Rolling by -s moves token t to t - s, so position q holds token q + s. timm rolls the S real
    tokens and pads after them; the others pad to P first and roll all P positions.
    """
    if roll_first:
        return (q + s) % S if q < S else None
    t = (q + s) % P
    return t if t < S else None


def relative_index(ci, cj, window) -> int:
    """Row of the bias table for tokens at window coordinates ci, cj: each axis's offset shifted
    to start at 0, times the table size of the axes after it (2-D: (dh+Mh-1)(2Mw-1) + dw+Mw-1)."""
    index = 0
    for a, m in enumerate(window):
        stride = math.prod(2 * w - 1 for w in window[a + 1 :])
        index += (ci[a] - cj[a] + m - 1) * stride
    return index


def coords_in(window) -> list[tuple[int, ...]]:
    """Window coordinates of its tokens in row-major order."""
    return list(itertools.product(*(range(m) for m in window)))


def v2_coords(window, pretrained=(0, 0)) -> dict[tuple[int, int], tuple[float, float]]:
    """Swin V2's log-spaced input of the cpb MLP for every offset (dh, dw), built in float32 as the
    ports' buffer is: t = offset / (W - 1) * 8 with W the pre-training window (if any) else the
    window, then sign(t) log2(|t| + 1) / log2(8)."""
    ref = pretrained if pretrained[0] > 0 else window
    out = {}
    for dh in range(-(window[0] - 1), window[0]):
        for dw in range(-(window[1] - 1), window[1]):
            pair = []
            for d, r in ((dh, ref[0]), (dw, ref[1])):
                t = np.float32(np.float32(d) / np.float32(max(r - 1, 1))) * np.float32(8.0)
                lg = np.float32(math.log2(float(np.float32(abs(t) + np.float32(1.0)))))
                pair.append(float(np.float32(np.sign(t) * lg / np.float32(3.0))))
            out[(dh, dw)] = (pair[0], pair[1])
    return out


# ----- attention over one shifted, padded grid ---------------------------------------------------
def shifted_attention(x, window, shift, logits_fn, values_fn, out_fn, *, roll_first: bool, mask_repeats=1):
    """Windowed attention on grid x (B, *S, C), token by token.

    logits_fn(X (N, C), pairs) -> (nH, N, N) logits before the mask, for the window's inputs X
    (zeros at padding) and its token coordinates; values_fn(X) -> (nH, N, d); out_fn(O (N, C)) -> (N, C).
    Returns (B, *S, C): each real token's output, back at its own position.
    """
    B, *S, C = x.shape
    P = [-(-s_ // m) * m for s_, m in zip(S, window, strict=True)]
    out = np.zeros_like(x)
    local = coords_in(window)
    for b in range(B):
        for w in itertools.product(*(range(p // m) for p, m in zip(P, window, strict=True))):
            pos = [tuple(w[a] * window[a] + c[a] for a in range(len(S))) for c in local]  # shifted grid
            src = [tuple(source(q[a], S[a], P[a], shift[a], roll_first) for a in range(len(S))) for q in pos]
            real = [all(t is not None for t in s_) for s_ in src]
            X = np.stack([x[(b, *s_)] if r else np.zeros(C) for s_, r in zip(src, real, strict=True)])
            logits = logits_fn(X, local)  # (nH, N, N)
            labels = [tuple(region(q[a], P[a], window[a], shift[a]) for a in range(len(S))) for q in pos]
            N = len(local)
            for i in range(N):
                for j in range(N):
                    if labels[i] != labels[j]:
                        logits[:, i, j] += MASK * mask_repeats
            V = values_fn(X)  # (nH, N, d)
            heads = [np.stack([softmax_row(logits[h, i]) @ V[h] for i in range(N)]) for h in range(len(V))]
            out_w = out_fn(np.concatenate(heads, axis=-1))  # (N, C)
            for i in range(N):
                if real[i]:
                    out[(b, *src[i])] = out_w[i]
    return out


def split_qkv(p, prefix, X, num_heads, k_bias_zero=False):
    """q, k, v, each (nH, N, d): rows [0, C), [C, 2C), [2C, 3C) of the fused qkv, head h = columns
    [h d, (h+1) d) of each."""
    C = X.shape[-1]
    d = C // num_heads
    W = p[f"{prefix}qkv.weight"]
    if f"{prefix}qkv.bias" in p:
        b = p[f"{prefix}qkv.bias"]
    elif f"{prefix}q_bias" in p:
        b = np.concatenate([p[f"{prefix}q_bias"], np.zeros(C), p[f"{prefix}v_bias"]])
    else:
        b = np.zeros(3 * C)
    qkv = X @ W.T + b  # (N, 3C)
    parts = [qkv[:, i * C : (i + 1) * C] for i in range(3)]
    return [np.stack([t[:, h * d : (h + 1) * d] for h in range(num_heads)]) for t in parts]


def v1_logits(p, prefix, num_heads, table_window, index_tokens=None):
    """V1 / Video logits: (q d^-0.5) . k + table[index(i, j)]; ``index_tokens`` (the window whose
    token numbering the index uses, Video's released quirk) defaults to the attended window."""
    table = p[f"{prefix}relative_position_bias_table"]

    def fn(X, local):
        q, k, _ = split_qkv(p, prefix, X, num_heads)
        d = q.shape[-1]
        logits = (q * d**-0.5) @ k.transpose(0, 2, 1)
        numbering = coords_in(table_window) if index_tokens is None else index_tokens
        N = len(local)
        for i in range(N):
            for j in range(N):
                logits[:, i, j] += table[relative_index(numbering[i], numbering[j], table_window)]
        return logits

    return fn


def v2_logits(p, prefix, num_heads, window, pretrained):
    """V2 logits: cos(q_i, k_j) exp(min(scale, log 100)) + 16 sigmoid(cpb(coords(i - j)))."""
    coords = v2_coords(window, pretrained)

    def cpb(offset):
        c = np.asarray(coords[offset])
        hidden = np.maximum(p[f"{prefix}cpb_mlp.0.weight"] @ c + p[f"{prefix}cpb_mlp.0.bias"], 0.0)
        return 16.0 / (1.0 + np.exp(-(p[f"{prefix}cpb_mlp.2.weight"] @ hidden)))  # (nH,)

    def fn(X, local):
        q, k, _ = split_qkv(p, prefix, X, num_heads)
        unit_q = q / np.maximum(np.linalg.norm(q, axis=-1, keepdims=True), NORMALIZE_EPS)
        unit_k = k / np.maximum(np.linalg.norm(k, axis=-1, keepdims=True), NORMALIZE_EPS)
        scale = np.exp(np.minimum(p[f"{prefix}logit_scale"].reshape(-1), LOGIT_SCALE_MAX))
        logits = unit_q @ unit_k.transpose(0, 2, 1) * scale[:, None, None]
        N = len(local)
        for i in range(N):
            for j in range(N):
                logits[:, i, j] += cpb((local[i][0] - local[j][0], local[i][1] - local[j][1]))
        return logits

    return fn


def _values(p, prefix, num_heads):
    return lambda X: split_qkv(p, prefix, X, num_heads)[2]


def _proj(p, prefix):
    return lambda o: o @ p[f"{prefix}proj.weight"].T + p[f"{prefix}proj.bias"]


# ----- blocks ------------------------------------------------------------------------------------
def v1_block(p, prefix, x, num_heads, window, shift, *, roll_first, table_window=None, index_tokens=None):
    """Pre-norm block (V1 and Video): x + attn(norm1(x)), then x + mlp(norm2(x))."""
    a = f"{prefix}attn."
    h = layer_norm(x, p[f"{prefix}norm1.weight"], p[f"{prefix}norm1.bias"])
    h = shifted_attention(
        h,
        window,
        shift,
        v1_logits(p, a, num_heads, table_window or window, index_tokens),
        _values(p, a, num_heads),
        _proj(p, a),
        roll_first=roll_first,
    )
    x = x + h
    return x + mlp(p, f"{prefix}mlp.", layer_norm(x, p[f"{prefix}norm2.weight"], p[f"{prefix}norm2.bias"]))


def v2_block(p, prefix, x, num_heads, window, shift, *, roll_first, pretrained=(0, 0), mask_repeats=1):
    """Res-post-norm block: x + norm1(attn(x)), then x + norm2(mlp(x))."""
    a = f"{prefix}attn."
    h = shifted_attention(
        x,
        window,
        shift,
        v2_logits(p, a, num_heads, window, pretrained),
        _values(p, a, num_heads),
        _proj(p, a),
        roll_first=roll_first,
        mask_repeats=mask_repeats,
    )
    x = x + layer_norm(h, p[f"{prefix}norm1.weight"], p[f"{prefix}norm1.bias"])
    return x + layer_norm(mlp(p, f"{prefix}mlp.", x), p[f"{prefix}norm2.weight"], p[f"{prefix}norm2.bias"])


# ----- merging and embedding ---------------------------------------------------------------------
def merge_2x2(x):
    """(..., H, W, C) -> (..., ceil(H/2), ceil(W/2), 4C): output (i, j) concatenates the tokens at
    (2i, 2j), (2i+1, 2j), (2i, 2j+1), (2i+1, 2j+1), zeros beyond the grid."""
    *lead, H, W, C = x.shape
    out = np.zeros((*lead, -(-H // 2), -(-W // 2), 4 * C))
    for i in range(out.shape[-3]):
        for j in range(out.shape[-2]):
            for n, (di, dj) in enumerate(((0, 0), (1, 0), (0, 1), (1, 1))):
                if 2 * i + di < H and 2 * j + dj < W:
                    out[..., i, j, n * C : (n + 1) * C] = x[..., 2 * i + di, 2 * j + dj, :]
    return out


def v1_merge(p, prefix, x):
    """V1 / Video: LayerNorm(4C), then the reduction to 2C."""
    h = layer_norm(merge_2x2(x), p[f"{prefix}norm.weight"], p[f"{prefix}norm.bias"])
    return h @ p[f"{prefix}reduction.weight"].T


def v2_merge(p, prefix, x):
    """V2: the reduction to 2C, then LayerNorm(2C)."""
    h = merge_2x2(x) @ p[f"{prefix}reduction.weight"].T
    return layer_norm(h, p[f"{prefix}norm.weight"], p[f"{prefix}norm.bias"])


def patch_embed(p, prefix, x, patch, *, norm: bool):
    """Conv with kernel = stride = patch, one output token at a time; x (B, Cin, *S) -> (B, *S/P, C)."""
    weight, bias = p[f"{prefix}proj.weight"], p[f"{prefix}proj.bias"]
    B, Cin, *S = x.shape
    grid = [s_ // q for s_, q in zip(S, patch, strict=True)]
    out = np.zeros((B, *grid, weight.shape[0]))
    for g in itertools.product(*(range(n) for n in grid)):
        box = tuple(slice(g[a] * patch[a], (g[a] + 1) * patch[a]) for a in range(len(S)))
        cell = x[(slice(None), slice(None), *box)]  # (B, Cin, *P)
        axes = list(range(1, cell.ndim))
        out[(slice(None), *g)] = np.tensordot(cell, weight, axes=(axes, axes)) + bias
    if norm:
        out = layer_norm(out, p[f"{prefix}norm.weight"], p[f"{prefix}norm.bias"])
    return out


class Matcher:
    """Checks named intermediates against definitions within ``atol`` and keeps the largest
    difference seen (the figure the forward properties report)."""

    def __init__(self, inter, atol: float, label: str = ""):
        self.inter, self.atol, self.label, self.worst = inter, atol, label, 0.0

    def same(self, name: str, expected) -> None:
        got = self.inter[name]
        assert got.shape == expected.shape, f"{name}: shape {got.shape}, expected {expected.shape}"
        diff = float(np.max(np.abs(got - expected)))
        self.worst = max(self.worst, diff)
        where = f" ({self.label})" if self.label else ""
        assert diff <= self.atol, f"{name}{where}: max |swinref - definition| = {diff:.3e} > {self.atol}"
