"""Window operations: partition, reverse, cyclic shift, the shifted-window mask, relative positions.

All functions take the array namespace ``xp`` keyword-only and use only the array API standard.
Token grids are channels-last, (B, H, W, C); windows are (Mh, Mw).
"""

from __future__ import annotations

MASK_VALUE = -100.0  # official Swin (and timm, torchvision): -100, not -inf


def window_partition(x, window: tuple[int, int], *, xp):
    """Cut a token grid into non-overlapping windows, row-major, batch outermost.

    x: (B, H, W, C) with H % Mh == 0 and W % Mw == 0. Returns (B*nW, Mh*Mw, C).
    """
    B, H, W, C = x.shape
    Mh, Mw = window
    if H % Mh or W % Mw:
        raise ValueError(f"grid {H}x{W} is not a multiple of the window {Mh}x{Mw}")
    x = xp.reshape(x, (B, H // Mh, Mh, W // Mw, Mw, C))
    x = xp.permute_dims(x, (0, 1, 3, 2, 4, 5))  # (B, H/Mh, W/Mw, Mh, Mw, C)
    return xp.reshape(x, (B * (H // Mh) * (W // Mw), Mh * Mw, C))  # (B*nW, N, C)


def window_reverse(windows, window: tuple[int, int], H: int, W: int, *, xp):
    """Inverse of :func:`window_partition`. windows: (B*nW, Mh*Mw, C). Returns (B, H, W, C)."""
    Mh, Mw = window
    C = windows.shape[-1]
    x = xp.reshape(windows, (-1, H // Mh, W // Mw, Mh, Mw, C))
    x = xp.permute_dims(x, (0, 1, 3, 2, 4, 5))  # (B, H/Mh, Mh, W/Mw, Mw, C)
    return xp.reshape(x, (-1, H, W, C))


def cyclic_shift(x, shift: tuple[int, int], *, xp):
    """Roll the token grid x (B, H, W, C) by ``shift`` over (H, W), numpy/torch sign convention.

    Swin rolls by (-s, -s) before partition (towards the top-left) and by (+s, +s) after reverse.
    """
    if not any(shift):
        return x
    return xp.roll(x, shift=tuple(shift), axis=(1, 2))


def relative_position_index(window: tuple[int, int], *, xp, device=None):
    """Index into the relative position bias table for every token pair of one window.

    Returns (N, N) int64 with N = Mh*Mw; entry (i, j) is
    ``(hi - hj + Mh - 1) * (2*Mw - 1) + (wi - wj + Mw - 1)``, tokens numbered row-major.
    """
    Mh, Mw = window
    rows = xp.arange(Mh, dtype=xp.int64, device=device)
    cols = xp.arange(Mw, dtype=xp.int64, device=device)
    hh, ww = xp.meshgrid(rows, cols, indexing="ij")  # (Mh, Mw) each
    h = xp.reshape(hh, (-1,))  # (N,)
    w = xp.reshape(ww, (-1,))
    dh = h[:, None] - h[None, :] + (Mh - 1)  # (N, N) in [0, 2Mh-2]
    dw = w[:, None] - w[None, :] + (Mw - 1)
    return dh * (2 * Mw - 1) + dw


def region_ids(size: tuple[int, int], window: tuple[int, int], shift: tuple[int, int], *, xp,
               device=None):
    """Region label of every token of the (padded) shifted grid, as used by the mask.

    Along each axis of length L with window M and shift s > 0 there are three slices,
    [0, L-M), [L-M, L-s), [L-s, L); with s == 0 the axis is one region. Labels are
    ``3 * row_slice + col_slice``, so up to nine regions numbered row-major.
    Returns (H, W) int64.
    """

    def axis_labels(L: int, M: int, s: int):
        i = xp.arange(L, dtype=xp.int64, device=device)
        if s == 0:
            return xp.zeros_like(i)
        one = xp.ones_like(i)
        return xp.where(i >= L - M, one, 0 * one) + xp.where(i >= L - s, one, 0 * one)

    (H, W), (Mh, Mw), (sh, sw) = size, window, shift
    return 3 * axis_labels(H, Mh, sh)[:, None] + axis_labels(W, Mw, sw)[None, :]


def shift_mask(size: tuple[int, int], window: tuple[int, int], shift: tuple[int, int], *, xp,
               dtype=None, device=None):
    """Additive attention mask of shifted-window attention for a (padded) grid of ``size``.

    size (H, W) must be a multiple of the window. Returns (nW, N, N) of ``dtype``: 0 where two
    tokens of a window carry the same region id (:func:`region_ids`), -100 elsewhere.
    """
    H, W = size
    labels = region_ids(size, window, shift, xp=xp, device=device)  # (H, W)
    win = window_partition(xp.reshape(labels, (1, H, W, 1)), window, xp=xp)[..., 0]  # (nW, N)
    same = win[:, :, None] == win[:, None, :]  # (nW, N, N)
    dtype = xp.float64 if dtype is None else dtype
    zero = xp.zeros(same.shape, dtype=dtype, device=device)
    return xp.where(same, zero, zero + MASK_VALUE)


CLAMP_RULES = ("timm", "official", "torchvision", "hf", "detection")


def clamp_window(resolution: tuple[int, int], window: tuple[int, int], shift: tuple[int, int],
                 *, rule: str = "timm") -> tuple[tuple[int, int], tuple[int, int]]:
    """Window and shift a block actually uses at a token resolution (H, W).

    rule "timm": per dimension, where r <= window, the window becomes r and that dimension's
    shift 0 (timm ``SwinTransformerBlock._calc_window_shift``).
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
        win = tuple(r if r <= m else m for r, m in zip(resolution, window))
        sh = tuple(0 if r <= m else s for r, m, s in zip(resolution, win, shift))
        return win, sh
    if rule in ("official", "hf"):
        if window[0] != window[1]:
            raise ValueError(f"the {rule} clamp rule needs a square window, got {window}")
        low = min(resolution)
        if low <= window[0]:
            return (low, low), (0, 0)
        return tuple(window), tuple(shift)
    if rule == "torchvision":
        padded = tuple(-(-r // m) * m for r, m in zip(resolution, window))
        return tuple(window), tuple(0 if m >= p else s for m, p, s in zip(window, padded, shift))
    if rule == "detection":
        return tuple(window), tuple(shift)
    raise ValueError(f"unknown clamp rule {rule!r}; expected one of {', '.join(CLAMP_RULES)}")


def pad_bottom_right(x, pad_h: int, pad_w: int, *, xp):
    """Zero-pad a token grid x (B, H, W, C) at the bottom and right. Returns (B, H+pad_h, W+pad_w, C)."""
    B, H, W, C = x.shape
    if pad_h:
        x = xp.concat([x, xp.zeros((B, pad_h, W, C), dtype=x.dtype, device=x.device)], axis=1)
    if pad_w:
        x = xp.concat([x, xp.zeros((B, H + pad_h, pad_w, C), dtype=x.dtype, device=x.device)], axis=2)
    return x
