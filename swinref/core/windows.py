"""Window operations for 2-D (image) and 3-D (video) token grids: partition, reverse, cyclic shift,
padding, the shifted-window mask, relative positions and the window clamp rules.

Every function works for any number k of spatial axes: a grid is channels-last, (B, *S, C) with
S = (H, W) or (D, H, W), and a window is a k-tuple (Mh, Mw) or (Md, Mh, Mw). All functions take the
array namespace ``xp`` keyword-only and use only the array API standard.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from . import backend

MASK_VALUE = -100.0  # official Swin (and timm, torchvision, Video Swin): -100, not -inf


def window_partition(x, window: Sequence[int], *, xp):
    """Cut a token grid into non-overlapping windows, row-major, batch outermost.

    x: (B, *S, C) with every S[a] a multiple of window[a]. Returns (B*nW, N, C), N = prod(window);
    tokens inside a window are numbered row-major over its k axes.
    """
    B, *S, C = x.shape
    k = len(window)
    if len(S) != k or any(s % m for s, m in zip(S, window, strict=False)):
        raise ValueError(
            f"grid {'x'.join(map(str, S))} is not a multiple of the window {'x'.join(map(str, window))}"
        )
    split = [B]
    for s, m in zip(S, window, strict=False):
        split += [s // m, m]  # (B, S0/M0, M0, S1/M1, M1, ..., C)
    x = xp.reshape(x, (*split, C))
    # window indices first, then the offsets inside the window: (B, S0/M0, S1/M1, ..., M0, M1, ..., C)
    x = xp.permute_dims(x, (0, *range(1, 2 * k, 2), *range(2, 2 * k + 1, 2), 2 * k + 1))
    nW = math.prod(s // m for s, m in zip(S, window, strict=False))
    return xp.reshape(x, (B * nW, math.prod(window), C))  # (B*nW, N, C)


def window_reverse(windows, window: Sequence[int], *size: int, xp):
    """Inverse of :func:`window_partition`: windows (B*nW, N, C) back to the grid (B, *size, C).

    ``size`` is the grid extent, e.g. ``window_reverse(w, (4, 4), H, W, xp=xp)``.
    """
    C = windows.shape[-1]
    k = len(window)
    x = xp.reshape(windows, (-1, *(s // m for s, m in zip(size, window, strict=False)), *window, C))
    # interleave again: (B, S0/M0, M0, S1/M1, M1, ..., C)
    order = [0]
    for a in range(k):
        order += [1 + a, 1 + k + a]
    x = xp.permute_dims(x, (*order, 2 * k + 1))
    return xp.reshape(x, (-1, *size, C))


def cyclic_shift(x, shift: Sequence[int], *, xp):
    """Roll the token grid x (B, *S, C) by ``shift`` over its spatial axes (numpy/torch sign).

    Swin rolls by -s before partition (towards the top-left) and by +s after reverse.
    """
    if not any(shift):
        return x
    return xp.roll(x, shift=tuple(shift), axis=tuple(range(1, len(shift) + 1)))


def pad_end(x, pads: Mapping[int, int], *, xp):
    """Zero-pad x at the end of each axis in ``pads`` (axis -> amount), in the order given."""
    for axis, amount in pads.items():
        if amount:
            shape = list(x.shape)
            shape[axis] = amount
            x = xp.concat([x, xp.zeros(tuple(shape), dtype=x.dtype, device=backend.device(x))], axis=axis)
    return x


def pad_bottom_right(x, pad_h: int, pad_w: int, *, xp):
    """Zero-pad a 2-D token grid x (B, H, W, C) at the bottom and right: (B, H+pad_h, W+pad_w, C)."""
    return pad_end(x, {1: pad_h, 2: pad_w}, xp=xp)


def relative_position_index(window: Sequence[int], *, xp, device=None):
    """Index into the relative position bias table for every token pair of one window.

    Returns (N, N) int64, N = prod(window), tokens numbered row-major. For a 2-D window entry
    (i, j) is ``(hi - hj + Mh - 1) * (2*Mw - 1) + (wi - wj + Mw - 1)``; in 3-D
    ``(dd + Md-1)(2Mh-1)(2Mw-1) + (dh + Mh-1)(2Mw-1) + (dw + Mw-1)``: each axis's offset, shifted
    to start at 0, times the table size of the axes after it.
    """
    axes = [xp.arange(m, dtype=xp.int64, device=device) for m in window]
    grids = xp.meshgrid(*axes, indexing="ij")  # k arrays of shape window
    index = None
    for a, (g, m) in enumerate(zip(grids, window, strict=False)):
        c = xp.reshape(g, (-1,))  # (N,) coordinate along axis a
        rel = c[:, None] - c[None, :] + (m - 1)  # (N, N) in [0, 2m-2]
        stride = math.prod(2 * w - 1 for w in window[a + 1 :])
        index = rel * stride if index is None else index + rel * stride
    return index


def region_ids(size: Sequence[int], window: Sequence[int], shift: Sequence[int], *, xp, device=None):
    """Region label of every token of the (padded) shifted grid, as used by the mask.

    Along each axis of length L with window M and shift s > 0 there are three slices,
    [0, L-M), [L-M, L-s), [L-s, L); with s == 0 the axis is one region. Labels are the slice
    numbers read as base-3 digits, first axis most significant: ``3 * row + col`` in 2-D (nine
    regions), ``9 * d + 3 * h + w`` in 3-D (27). Returns int64 of shape ``size``.
    """

    def axis_labels(L: int, M: int, s: int):
        i = xp.arange(L, dtype=xp.int64, device=device)
        if s == 0:
            return xp.zeros_like(i)
        one = xp.ones_like(i)
        return xp.where(i >= L - M, one, 0 * one) + xp.where(i >= L - s, one, 0 * one)

    k = len(size)
    labels = None
    for a, (L, M, s) in enumerate(zip(size, window, shift, strict=False)):
        lab = axis_labels(L, M, s) * 3 ** (k - 1 - a)
        lab = xp.reshape(lab, tuple(L if b == a else 1 for b in range(k)))  # broadcast along axis a
        labels = lab if labels is None else labels + lab
    return labels


def shift_mask(
    size: Sequence[int], window: Sequence[int], shift: Sequence[int], *, xp, dtype=None, device=None
):
    """Additive attention mask of shifted-window attention for a (padded) grid of ``size``.

    size must be a multiple of the window. Returns (nW, N, N) of ``dtype`` (default float64): 0
    where two tokens of a window carry the same region id (:func:`region_ids`), -100 elsewhere.
    """
    labels = region_ids(size, window, shift, xp=xp, device=device)  # size
    win = window_partition(xp.reshape(labels, (1, *size, 1)), window, xp=xp)[..., 0]  # (nW, N)
    same = win[:, :, None] == win[:, None, :]  # (nW, N, N)
    dtype = xp.float64 if dtype is None else dtype
    zero = xp.zeros(same.shape, dtype=dtype, device=device)
    return xp.where(same, zero, zero + MASK_VALUE)


CLAMP_RULES = ("timm", "official", "torchvision", "hf", "detection")


def clamp_window(
    resolution: Sequence[int], window: Sequence[int], shift: Sequence[int], *, rule: str = "timm"
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Window and shift a block actually uses at a token resolution (H, W) or (D, H, W).

    rule "timm": per dimension, where r <= window, the window becomes r and that dimension's
    shift 0 (timm ``SwinTransformerBlock._calc_window_shift``; Video Swin ``get_window_size``, any
    number of axes).
    rule "official": when min(H, W) <= window (square windows), window = min(H, W) on both axes
    and shift 0 (microsoft/Swin-Transformer ``SwinTransformerBlock.__init__``).
    rule "hf": the official rule (transformers ``SwinLayer.set_shift_and_window_size``).
    rule "torchvision": the window never changes; a dimension's shift is dropped where the window
    covers the grid padded to a multiple of it, i.e. where r <= window
    (``shifted_window_attention``).
    rule "detection": window and shift never change (the detection backbones, and transformers'
    ``always_partition=True``).
    """
    if rule == "timm":
        win = tuple(r if r <= m else m for r, m in zip(resolution, window, strict=False))
        sh = tuple(0 if r <= m else s for r, m, s in zip(resolution, win, shift, strict=False))
        return win, sh
    if rule in ("official", "hf"):
        if window[0] != window[1]:
            raise ValueError(f"the {rule} clamp rule needs a square window, got {tuple(window)}")
        low = min(resolution)
        if low <= window[0]:
            return (low, low), (0, 0)
        return tuple(window), tuple(shift)
    if rule == "torchvision":
        padded = tuple(-(-r // m) * m for r, m in zip(resolution, window, strict=False))
        return tuple(window), tuple(
            0 if m >= p else s for m, p, s in zip(window, padded, shift, strict=False)
        )
    if rule == "detection":
        return tuple(window), tuple(shift)
    raise ValueError(f"unknown clamp rule {rule!r}; expected one of {', '.join(CLAMP_RULES)}")


def shifted_window_apply(
    x,
    window: Sequence[int],
    shift: Sequence[int],
    attend: Callable[[Any, Any], Any],
    *,
    roll_first: bool,
    mask_for,
    xp,
):
    """Run ``attend`` on the (shifted) windows of x (B, *S, C) and put the result back on the grid.

    The grid is zero-padded at the end of each axis to a multiple of the window. ``roll_first``
    rolls the unpadded grid and pads after (timm's 2-D model); otherwise it pads and rolls the
    padded grid (official detection code, torchvision, transformers, Video Swin).
    ``attend(windows (B*nW, N, C), mask (nW, N, N) or None) -> (B*nW, N, C)``;
    ``mask_for(padded_size)`` gives the mask, called only when the shift is non-zero.
    Returns (B, *S, C): reversed, rolled back and cropped to S.
    """
    _, *S, _ = x.shape
    pads = {1 + a: (-s) % m for a, (s, m) in enumerate(zip(S, window, strict=False))}
    back = tuple(-s for s in shift)
    if roll_first:  # timm rolls first and then pads bottom/right
        h = pad_end(cyclic_shift(x, back, xp=xp), pads, xp=xp)  # (B, *padded, C)
    else:  # the others pad, then roll the padded grid
        h = cyclic_shift(pad_end(x, pads, xp=xp), back, xp=xp)  # (B, *padded, C)
    del x  # only the shifted copy is needed from here; a caller that passed x in frees it now
    padded = tuple(h.shape[1:-1])
    mask = mask_for(padded) if any(shift) else None
    h = window_partition(h, window, xp=xp)  # (B*nW, N, C)
    h = attend(h, mask)  # (B*nW, N, C)
    h = window_reverse(h, window, *padded, xp=xp)  # (B, *padded, C)
    crop = (slice(None), *(slice(0, s) for s in S), slice(None))
    if roll_first:
        return cyclic_shift(h[crop], shift, xp=xp)  # (B, *S, C)
    return cyclic_shift(h, shift, xp=xp)[crop]
