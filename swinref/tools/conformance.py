"""Property checks for a Python-callable Swin port, function by function.

A port hands over the functions it has through thin adapters that take and return NumPy arrays
(the adapter converts to and from the port's framework), and :func:`check_port` runs the same
hypothesis properties as swinref's own suite plus golden comparisons against swinref on each:

=========================  =======================================================================
``window_partition``       ``(x (B, H, W, C), window (Mh, Mw)) -> (B*nW, N, C)``
``window_reverse``         ``(windows (B*nW, N, C), window, H, W) -> (B, H, W, C)``
``shift_mask``             ``(H, W, window, shift (sh, sw)) -> (nW, N, N)`` additive mask
``relative_position_index````(window) -> (N, N)`` integer index into the bias table
``relative_position_bias`` ``(table ((2Mh-1)(2Mw-1), nH), window) -> (nH, N, N)``
``window_attention``       ``(x (B*nW, N, C), params, num_heads, window, mask (nW, N, N) or None)
                           -> (B*nW, N, C)``; params named as timm's ``WindowAttention``
``shifted_window_attention````(x (B, H, W, C), params, num_heads, window, shift) -> (B, H, W, C)``:
                           roll by -shift, partition, masked attention, reverse, roll back
``v2_coords_table``        ``(window, pretrained_window) -> ((2Mh-1)(2Mw-1), 2)`` log-spaced table
``v2_window_attention``    ``(x (B*nW, N, C), params, num_heads, window, pretrained_window, mask)
                           -> (B*nW, N, C)``; params named as timm's V2 ``WindowAttention``
``v2_patch_merging``       ``(x (B, H, W, C), params) -> (B, ceil(H/2), ceil(W/2), 2C)``
``video_window_partition`` ``(x (B, D, H, W, C), window (Md, Mh, Mw)) -> (B*nW, N, C)``
``video_shift_mask``       ``(D, H, W, window, shift (sd, sh, sw)) -> (nW, N, N)``
``video_relative_position_index`` ``(window (Md, Mh, Mw)) -> (N, N)`` integers
``video_patch_merging``    ``(x (B, D, H, W, C), params) -> (B, D, ceil(H/2), ceil(W/2), 2C)``
=========================  =======================================================================

Every failing check reports the smallest failing example hypothesis found, as a snippet that
rebuilds the inputs and calls the port again. From pytest::

    from swinref.tools.conformance import Port, check_port

    def test_my_port():
        report = check_port(Port(name="mine", window_partition=my_partition), max_examples=50, seed=0)
        assert report.passed, report.summary()
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from ..core import backend, windows
from ..models import v1 as model
from ..models import v2 as v2_model
from ..models import video as video_model

FUNCTIONS = (
    "window_partition",
    "window_reverse",
    "shift_mask",
    "relative_position_index",
    "relative_position_bias",
    "window_attention",
    "shifted_window_attention",
    "v2_coords_table",
    "v2_window_attention",
    "v2_patch_merging",
    "video_window_partition",
    "video_shift_mask",
    "video_relative_position_index",
    "video_patch_merging",
)
VIDEO_FUNCTIONS = tuple(f for f in FUNCTIONS if f.startswith("video_"))

# written out, not read from swinref.windows, so the checks stay independent of the code they check
OFFICIAL_MASK_VALUE = -100.0


@dataclass(frozen=True)
class Port:
    """The functions a port exposes, each an adapter over NumPy arrays (see the module docstring).

    ``atol`` bounds the attention comparisons: 1e-10 suits a float64 port (both sides round at
    about 1e-15 on these O(1) values); a float32 port needs about 1e-4.
    """

    name: str = "port"
    window_partition: Callable | None = None
    window_reverse: Callable | None = None
    shift_mask: Callable | None = None
    relative_position_index: Callable | None = None
    relative_position_bias: Callable | None = None
    window_attention: Callable | None = None
    shifted_window_attention: Callable | None = None
    v2_coords_table: Callable | None = None
    v2_window_attention: Callable | None = None
    v2_patch_merging: Callable | None = None
    video_window_partition: Callable | None = None
    video_shift_mask: Callable | None = None
    video_relative_position_index: Callable | None = None
    video_patch_merging: Callable | None = None
    atol: float = 1e-10

    def provided(self) -> list[str]:
        return [f for f in FUNCTIONS if getattr(self, f) is not None]


class Case(NamedTuple):
    """One example: a (B, H, W, C) grid of whole windows, a shift, heads, and a seed for the values."""

    B: int
    H: int
    W: int
    C: int
    window: tuple[int, int]
    shift: tuple[int, int] = (0, 0)
    num_heads: int = 1
    seed: int = 0
    pretrained: tuple[int, int] = (0, 0)  # V2's pre-training window, (0, 0) for none

    @property
    def N(self) -> int:
        return self.window[0] * self.window[1]

    @property
    def nW(self) -> int:
        return (self.H // self.window[0]) * (self.W // self.window[1])


class VideoCase(NamedTuple):
    """One 3-D example: a (B, D, H, W, C) grid of whole (Md, Mh, Mw) windows, a shift, a seed."""

    B: int
    D: int
    H: int
    W: int
    C: int
    window: tuple[int, int, int]
    shift: tuple[int, int, int] = (0, 0, 0)
    seed: int = 0

    @property
    def N(self) -> int:
        return math.prod(self.window)

    @property
    def nW(self) -> int:
        return math.prod(s // m for s, m in zip((self.D, self.H, self.W), self.window, strict=True))


# ----- inputs, rebuilt from a case (the snippets call these) ----------------------------------
def example_grid(case: Case) -> np.ndarray:
    """(B, H, W, C) float64 with all values distinct, so any misplaced value shows."""
    n = case.B * case.H * case.W * case.C
    values = np.random.default_rng(case.seed).permutation(n).astype(np.float64)
    return values.reshape(case.B, case.H, case.W, case.C)


def example_windows(case: Case) -> np.ndarray:
    """(B*nW, N, C) float64 with all values distinct."""
    return example_grid(case).reshape(case.B * case.nW, case.N, case.C)


def example_table(case: Case) -> np.ndarray:
    """((2Mh-1)(2Mw-1), nH) float64 bias table, unit normal."""
    Mh, Mw = case.window
    return np.random.default_rng(case.seed).standard_normal(((2 * Mh - 1) * (2 * Mw - 1), case.num_heads))


def example_attention(case: Case) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(x (B*nW, N, C), params) float64 with O(1) values; params named as timm's WindowAttention."""
    rng = np.random.default_rng(case.seed)
    C, (Mh, Mw) = case.C, case.window
    params = {
        "qkv.weight": rng.standard_normal((3 * C, C)) / math.sqrt(C),
        "qkv.bias": rng.standard_normal(3 * C),
        "relative_position_bias_table": rng.standard_normal(((2 * Mh - 1) * (2 * Mw - 1), case.num_heads)),
        "proj.weight": rng.standard_normal((C, C)) / math.sqrt(C),
        "proj.bias": rng.standard_normal(C),
    }
    x = rng.standard_normal((case.B * case.nW, case.N, C))
    return x, params


def example_v2_attention(case: Case) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(x (B*nW, N, C), params) float64, params named as timm's V2 WindowAttention; logit scales
    uniform in [log 2, log 200], so some heads lie above the log(100) clamp."""
    rng = np.random.default_rng(case.seed)
    C, nH = case.C, case.num_heads
    params = {
        "qkv.weight": rng.standard_normal((3 * C, C)) / math.sqrt(C),
        "q_bias": 0.1 * rng.standard_normal(C),
        "v_bias": 0.1 * rng.standard_normal(C),
        "logit_scale": rng.uniform(math.log(2.0), math.log(200.0), (nH, 1, 1)),
        "cpb_mlp.0.weight": rng.standard_normal((512, 2)),
        "cpb_mlp.0.bias": rng.standard_normal(512),
        "cpb_mlp.2.weight": rng.standard_normal((nH, 512)) / 20,
        "proj.weight": rng.standard_normal((C, C)) / math.sqrt(C),
        "proj.bias": 0.1 * rng.standard_normal(C),
    }
    return rng.standard_normal((case.B * case.nW, case.N, C)), params


def example_merging(case: Case | VideoCase, *, norm_first: bool) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(x, params) for patch merging: x (B, H, W, C) or (B, D, H, W, C); ``reduction.weight``
    (2C, 4C) and the norm over 4C (V1, Video: ``norm_first``) or over 2C (V2)."""
    rng = np.random.default_rng(case.seed)
    C = case.C
    n = 4 * C if norm_first else 2 * C
    params = {
        "reduction.weight": rng.standard_normal((2 * C, 4 * C)) / math.sqrt(4 * C),
        "norm.weight": 1.0 + 0.1 * rng.standard_normal(n),
        "norm.bias": 0.1 * rng.standard_normal(n),
    }
    lead = (case.B, case.D) if isinstance(case, VideoCase) else (case.B,)
    return rng.standard_normal((*lead, case.H, case.W, C)), params


def example_video_grid(case: VideoCase) -> np.ndarray:
    """(B, D, H, W, C) float64 with all values distinct."""
    n = case.B * case.D * case.H * case.W * case.C
    values = np.random.default_rng(case.seed).permutation(n).astype(np.float64)
    return values.reshape(case.B, case.D, case.H, case.W, case.C)


# ----- references ------------------------------------------------------------------------------
def _np():
    return backend.get_namespace("numpy")


def brute_force_mask(size: tuple[int, int], window: tuple[int, int], shift: tuple[int, int]) -> np.ndarray:
    """(nW, N, N) mask from first principles: un-roll each token to where it sat before the shift
    and label it by the side of each wrap it came from; 0 within a label, -100 across labels."""
    H, W = size
    (Mh, Mw), (sh, sw) = window, shift
    i, j = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    labels = 2 * (((i + sh) % H) < sh) + (((j + sw) % W) < sw)  # rolling by -s brought (i+s, j+s) here
    win = labels.reshape(H // Mh, Mh, W // Mw, Mw).transpose(0, 2, 1, 3).reshape(-1, Mh * Mw)
    return np.where(win[:, :, None] == win[:, None, :], 0.0, OFFICIAL_MASK_VALUE)


def brute_force_mask_3d(size: tuple[int, int, int], window, shift) -> np.ndarray:
    """:func:`brute_force_mask` in 3-D: each token un-rolled on every axis, labelled by the side of
    each wrap it came from (27 labels at most)."""
    grids = np.meshgrid(*(np.arange(n) for n in size), indexing="ij")
    labels = sum(
        3 ** (2 - a) * (((g + s) % n) < s) for a, (g, n, s) in enumerate(zip(grids, size, shift, strict=True))
    )
    (D, H, W), (Md, Mh, Mw) = size, window
    win = (
        np.asarray(labels)
        .reshape(D // Md, Md, H // Mh, Mh, W // Mw, Mw)
        .transpose(0, 2, 4, 1, 3, 5)
        .reshape(-1, Md * Mh * Mw)
    )
    return np.where(win[:, :, None] == win[:, None, :], 0.0, OFFICIAL_MASK_VALUE)


def naive_index_3d(window: tuple[int, int, int]) -> np.ndarray:
    """(N, N) 3-D relative index by its formula, tokens row-major (time outermost)."""
    Md, Mh, Mw = window
    d, rest = np.divmod(np.arange(Md * Mh * Mw), Mh * Mw)
    h, w = np.divmod(rest, Mw)
    return (
        (d[:, None] - d[None, :] + Md - 1) * (2 * Mh - 1) * (2 * Mw - 1)
        + (h[:, None] - h[None, :] + Mh - 1) * (2 * Mw - 1)
        + (w[:, None] - w[None, :] + Mw - 1)
    )


def coords_bound(window: tuple[int, int], pretrained: tuple[int, int]) -> np.ndarray:
    """Largest |value| of each column of V2's table: f(8 (M - 1) / (ref - 1)), f(t) = log2(t + 1) / 3."""
    ref = pretrained if pretrained[0] > 0 else window
    return np.array(
        [math.log2(8.0 * (m - 1) / max(r - 1, 1) + 1.0) / 3.0 for m, r in zip(window, ref, strict=True)]
    )


def naive_index(window: tuple[int, int]) -> np.ndarray:
    """(N, N) relative position index by its formula, tokens row-major in the window."""
    Mh, Mw = window
    h, w = np.divmod(np.arange(Mh * Mw), Mw)
    return (h[:, None] - h[None, :] + Mh - 1) * (2 * Mw - 1) + (w[:, None] - w[None, :] + Mw - 1)


def reference_shifted_attention(x, params, num_heads, window, shift) -> np.ndarray:
    """swinref's roll -> partition -> masked attention -> reverse -> roll back, on a grid of whole windows."""
    xp = _np()
    B, H, W, C = x.shape
    h = windows.cyclic_shift(x, (-shift[0], -shift[1]), xp=xp)
    mask = windows.shift_mask((H, W), window, shift, xp=xp) if any(shift) else None
    out = model.window_attention(
        params,
        windows.window_partition(h, window, xp=xp),
        num_heads=num_heads,
        window=window,
        mask=mask,
        xp=xp,
    )
    return windows.cyclic_shift(windows.window_reverse(out, window, H, W, xp=xp), shift, xp=xp)


# ----- checks ---------------------------------------------------------------------------------
class CheckFailed(AssertionError):
    pass


def _provided(fn: Callable | None) -> Callable:
    """A function the port provides (the runner checks only those, so never None here)."""
    assert fn is not None
    return fn


def _as_array(value, what: str, *, shape: tuple, integer: bool = False) -> np.ndarray:
    got = np.asarray(backend.to_numpy(value) if not isinstance(value, np.ndarray) else value)
    if got.shape != tuple(shape):
        raise CheckFailed(f"{what}: expected shape {tuple(shape)}, got {got.shape}")
    if integer and not np.issubdtype(got.dtype, np.integer):
        raise CheckFailed(f"{what}: expected an integer dtype, got {got.dtype}")
    return got


def _equal(got, expected, what: str) -> None:
    bad = np.argwhere(got != expected)
    if bad.size:
        first = tuple(bad[0].tolist())
        raise CheckFailed(
            f"{what}: {len(bad)} of {got.size} entries differ; first at {first}: "
            f"expected {expected[first].item()!r}, got {got[first].item()!r}"
        )


def _close(got, expected, atol: float, what: str) -> None:
    diff = np.abs(got.astype(np.float64) - expected)
    if not np.all(diff <= atol):  # NaN fails too
        worst = tuple(np.unravel_index(np.nanargmax(np.where(np.isnan(diff), np.inf, diff)), diff.shape))
        raise CheckFailed(
            f"{what}: max abs diff {np.nanmax(np.where(np.isnan(diff), np.inf, diff)):.3e} "
            f"at {worst} exceeds atol={atol} "
            f"(expected {expected[worst].item()!r}, got {got[worst].item()!r})"
        )


def _check_partition(port: Port, case: Case) -> None:
    x = example_grid(case)
    got = _as_array(
        _provided(port.window_partition)(x, case.window),
        "window_partition(x, window)",
        shape=(case.B * case.nW, case.N, case.C),
    )
    expected = windows.window_partition(x, case.window, xp=_np())
    _equal(got, expected, "window_partition vs swinref (windows row-major, batch outermost)")
    if port.window_reverse is not None:
        back = _as_array(
            _provided(port.window_reverse)(got, case.window, case.H, case.W),
            "window_reverse(window_partition(x))",
            shape=x.shape,
        )
        _equal(back, x, "round trip window_reverse(window_partition(x)) == x")


def _check_reverse(port: Port, case: Case) -> None:
    w = example_windows(case)
    got = _as_array(
        _provided(port.window_reverse)(w, case.window, case.H, case.W),
        "window_reverse(windows, window, H, W)",
        shape=(case.B, case.H, case.W, case.C),
    )
    _equal(got, windows.window_reverse(w, case.window, case.H, case.W, xp=_np()), "window_reverse vs swinref")
    _equal(
        windows.window_partition(got, case.window, xp=_np()),
        w,
        "round trip swinref.window_partition(window_reverse(w)) == w",
    )


def _check_mask(port: Port, case: Case) -> None:
    got = _as_array(
        _provided(port.shift_mask)(case.H, case.W, case.window, case.shift),
        "shift_mask(H, W, window, shift)",
        shape=(case.nW, case.N, case.N),
    )
    values = set(np.unique(got).tolist())
    if not values <= {0.0, OFFICIAL_MASK_VALUE}:
        raise CheckFailed(
            f"shift_mask values: expected only 0 and {OFFICIAL_MASK_VALUE} "
            f"(the official mask), got {sorted(values)[:6]}"
        )
    _equal(got, np.swapaxes(got, 1, 2), "shift_mask symmetric (mask[w, i, j] == mask[w, j, i])")
    _equal(
        got,
        brute_force_mask((case.H, case.W), case.window, case.shift),
        "shift_mask vs brute force (tokens attend iff they came from the same side of each wrap)",
    )


def _check_index(port: Port, case: Case) -> None:
    Mh, Mw = case.window
    N = case.N
    got = _as_array(
        _provided(port.relative_position_index)(case.window),
        "relative_position_index(window)",
        shape=(N, N),
        integer=True,
    )
    rows = (2 * Mh - 1) * (2 * Mw - 1)
    if got.min() < 0 or got.max() > rows - 1:
        raise CheckFailed(f"index range: expected within [0, {rows - 1}], got [{got.min()}, {got.max()}]")
    centre = (Mh - 1) * (2 * Mw - 1) + (Mw - 1)  # offset (0, 0)
    _equal(np.diagonal(got), np.full(N, centre), "index diagonal == centre row (offset (0, 0))")
    _equal(got + got.T, np.full((N, N), 2 * centre), "index(i, j) + index(j, i) == 2 * centre")
    _equal(got, naive_index(case.window), "index == (hi-hj+Mh-1)*(2Mw-1) + (wi-wj+Mw-1)")


def _check_bias(port: Port, case: Case) -> None:
    table = example_table(case)
    got = _as_array(
        _provided(port.relative_position_bias)(table, case.window),
        "relative_position_bias(table, window)",
        shape=(case.num_heads, case.N, case.N),
    )
    expected = np.transpose(table[naive_index(case.window)], (2, 0, 1))  # (nH, N, N)
    _equal(got, expected, "bias[h, i, j] == table[index(i, j), h]")


def _check_attention(port: Port, case: Case) -> None:
    x, params = example_attention(case)
    mask = brute_force_mask((case.H, case.W), case.window, case.shift) if any(case.shift) else None
    got = _as_array(
        _provided(port.window_attention)(x, params, case.num_heads, case.window, mask),
        "window_attention(x, params, num_heads, window, mask)",
        shape=x.shape,
    )
    expected = model.window_attention(
        params, x, num_heads=case.num_heads, window=case.window, mask=mask, xp=_np()
    )
    which = "with" if mask is not None else "no"
    _close(got, expected, port.atol, f"window_attention vs swinref ({which} mask)")


def _check_shifted_attention(port: Port, case: Case) -> None:
    x, params = example_attention(case)
    x = x.reshape(case.B, case.H // case.window[0], case.W // case.window[1], *case.window, case.C)
    x = np.ascontiguousarray(x.transpose(0, 1, 3, 2, 4, 5).reshape(case.B, case.H, case.W, case.C))
    got = _as_array(
        _provided(port.shifted_window_attention)(x, params, case.num_heads, case.window, case.shift),
        "shifted_window_attention(x, params, num_heads, window, shift)",
        shape=x.shape,
    )
    expected = reference_shifted_attention(x, params, case.num_heads, case.window, case.shift)
    _close(got, expected, port.atol, f"shifted_window_attention vs swinref (shift {case.shift})")


# one float32 ULP at 1: ports build the table in float32 and their log2 may round either way
COORDS_ATOL = 2.0**-23


def _check_v2_coords(port: Port, case: Case) -> None:
    Mh, Mw = case.window
    got = _as_array(
        _provided(port.v2_coords_table)(case.window, case.pretrained),
        "v2_coords_table(window, pretrained_window)",
        shape=((2 * Mh - 1) * (2 * Mw - 1), 2),
    )
    _equal(got, -got[::-1], "table odd: row of offset -(dh, dw) == -row of (dh, dw)")
    bound = coords_bound(case.window, case.pretrained)
    if np.any(np.abs(got) > bound + COORDS_ATOL):
        raise CheckFailed(
            f"table range: |column| must stay within f(8 (M-1)/(ref-1)) = {bound}, got {np.abs(got).max(0)}"
        )
    expected = v2_model.host_coords_table(case.window, case.pretrained).astype(np.float64)
    _close(
        got, expected, COORDS_ATOL, "v2 coords table vs sign(t) log2(|t| + 1) / 3, t = 8 offset / (ref - 1)"
    )


def _check_v2_attention(port: Port, case: Case) -> None:
    x, params = example_v2_attention(case)
    mask = brute_force_mask((case.H, case.W), case.window, case.shift) if any(case.shift) else None
    got = _as_array(
        _provided(port.v2_window_attention)(x, params, case.num_heads, case.window, case.pretrained, mask),
        "v2_window_attention(x, params, num_heads, window, pretrained_window, mask)",
        shape=x.shape,
    )
    expected = v2_model.window_attention(
        params,
        x,
        num_heads=case.num_heads,
        window=case.window,
        pretrained_window=case.pretrained,
        mask=mask,
        xp=_np(),
    )
    which = "with" if mask is not None else "no"
    _close(got, expected, port.atol, f"v2_window_attention vs swinref ({which} mask)")


def _check_v2_merging(port: Port, case: Case) -> None:
    x, params = example_merging(case, norm_first=False)
    out = (case.B, -(-case.H // 2), -(-case.W // 2), 2 * case.C)
    got = _as_array(_provided(port.v2_patch_merging)(x, params), "v2_patch_merging(x, params)", shape=out)
    expected = v2_model.patch_merging(params, x, xp=_np())
    _close(got, expected, port.atol, "v2_patch_merging vs swinref (x0..x3 order, reduce, then LayerNorm(2C))")


def _check_video_partition(port: Port, case: VideoCase) -> None:
    x = example_video_grid(case)
    got = _as_array(
        _provided(port.video_window_partition)(x, case.window),
        "video_window_partition(x, window)",
        shape=(case.B * case.nW, case.N, case.C),
    )
    expected = windows.window_partition(x, case.window, xp=_np())
    _equal(
        got, expected, "video_window_partition vs swinref (windows row-major over D, H, W; batch outermost)"
    )


def _check_video_mask(port: Port, case: VideoCase) -> None:
    got = _as_array(
        _provided(port.video_shift_mask)(case.D, case.H, case.W, case.window, case.shift),
        "video_shift_mask(D, H, W, window, shift)",
        shape=(case.nW, case.N, case.N),
    )
    values = set(np.unique(got).tolist())
    if not values <= {0.0, OFFICIAL_MASK_VALUE}:
        raise CheckFailed(
            f"video_shift_mask values: expected only 0 and {OFFICIAL_MASK_VALUE}, got {sorted(values)[:6]}"
        )
    _equal(got, np.swapaxes(got, 1, 2), "video_shift_mask symmetric")
    _equal(
        got,
        brute_force_mask_3d((case.D, case.H, case.W), case.window, case.shift),
        "video_shift_mask vs brute force (same side of each wrap on all three axes)",
    )


def _check_video_index(port: Port, case: VideoCase) -> None:
    Md, Mh, Mw = case.window
    N = case.N
    got = _as_array(
        _provided(port.video_relative_position_index)(case.window),
        "video_relative_position_index(window)",
        shape=(N, N),
        integer=True,
    )
    rows = (2 * Md - 1) * (2 * Mh - 1) * (2 * Mw - 1)
    if got.min() < 0 or got.max() > rows - 1:
        raise CheckFailed(f"index range: expected within [0, {rows - 1}], got [{got.min()}, {got.max()}]")
    centre = (rows - 1) // 2  # offset (0, 0, 0)
    _equal(np.diagonal(got), np.full(N, centre), "index diagonal == centre row (offset (0, 0, 0))")
    _equal(got + got.T, np.full((N, N), 2 * centre), "index(i, j) + index(j, i) == 2 * centre")
    _equal(
        got,
        naive_index_3d(case.window),
        "index == (dd+Md-1)(2Mh-1)(2Mw-1) + (dh+Mh-1)(2Mw-1) + (dw+Mw-1)",
    )


def _check_video_merging(port: Port, case: VideoCase) -> None:
    x, params = example_merging(case, norm_first=True)
    out = (case.B, case.D, -(-case.H // 2), -(-case.W // 2), 2 * case.C)
    got = _as_array(
        _provided(port.video_patch_merging)(x, params), "video_patch_merging(x, params)", shape=out
    )
    expected = video_model.patch_merging(params, x, xp=_np())
    _close(
        got, expected, port.atol, "video_patch_merging vs swinref (per frame: x0..x3, LayerNorm(4C), reduce)"
    )


_CHECKS: dict[str, tuple[str, Callable]] = {
    "window_partition": ("round trip and order vs swinref", _check_partition),
    "window_reverse": ("inverse of partition vs swinref", _check_reverse),
    "shift_mask": ("brute-force mask, -100/0, symmetric", _check_mask),
    "relative_position_index": ("range, diagonal, symmetry, formula", _check_index),
    "relative_position_bias": ("gather of the table", _check_bias),
    "window_attention": ("vs swinref, with and without mask", _check_attention),
    "shifted_window_attention": ("roll/mask/attention vs swinref", _check_shifted_attention),
    "v2_coords_table": ("odd, bounded, log2 formula", _check_v2_coords),
    "v2_window_attention": ("vs swinref, scales across the clamp", _check_v2_attention),
    "v2_patch_merging": ("reduce, then norm, vs swinref", _check_v2_merging),
    "video_window_partition": ("3-D order vs swinref", _check_video_partition),
    "video_shift_mask": ("3-D brute-force mask, symmetric", _check_video_mask),
    "video_relative_position_index": ("range, diagonal, symmetry, formula", _check_video_index),
    "video_patch_merging": ("per frame vs swinref", _check_video_merging),
}


def check_example(port: Port, function: str, case: Case | VideoCase) -> None:
    """Run one function's checks on one case; raises AssertionError naming what differs."""
    if function not in _CHECKS:
        raise ValueError(f"unknown function {function!r}; expected one of {', '.join(FUNCTIONS)}")
    if getattr(port, function) is None:
        raise ValueError(f"the port does not provide {function}")
    _CHECKS[function][1](port, case)


# ----- hypothesis -----------------------------------------------------------------------------
# Golden edge cases every run also tries: Swin's 14x14 stage with window 7 and shift 3, one
# window per image, a non-square window with per-axis shift, a single token, batch > 1.
GOLDEN_CASES = (
    Case(B=1, H=14, W=14, C=2, window=(7, 7), shift=(3, 3), num_heads=2, seed=1),
    Case(B=1, H=4, W=4, C=2, window=(4, 4), shift=(2, 2), num_heads=1, seed=2),
    Case(B=2, H=6, W=8, C=3, window=(3, 4), shift=(1, 2), num_heads=3, seed=3),
    Case(B=1, H=1, W=1, C=1, window=(1, 1), shift=(0, 0), num_heads=1, seed=4),
)


# V2: a fine-tuned window (12 -> 8 with pre-training window 12) and an unshifted single window.
V2_GOLDEN_CASES = (
    Case(B=1, H=16, W=16, C=2, window=(8, 8), shift=(4, 4), num_heads=2, seed=5, pretrained=(12, 12)),
    Case(B=2, H=3, W=5, C=3, window=(3, 5), shift=(0, 0), num_heads=1, seed=6),
)
# Video: the released window (2, 7, 7) with shift (1, 3, 3) over 2 x 2 x 2 windows, one window.
VIDEO_GOLDEN_CASES = (
    VideoCase(B=1, D=4, H=14, W=14, C=2, window=(2, 7, 7), shift=(1, 3, 3), seed=7),
    VideoCase(B=2, D=2, H=2, W=2, C=1, window=(2, 2, 2), shift=(1, 1, 1), seed=8),
)


def _cases(function: str):
    from hypothesis import strategies as st  # noqa: PLC0415

    seeds = st.integers(0, 2**32 - 1)

    @st.composite
    def cases(draw):
        Mh = draw(st.integers(1, 4), label="window h")
        Mw = draw(st.integers(1, 4), label="window w")
        # torchvision-style ports drop the shift on an axis a single window covers (docs/semantics.md);
        # give shifted attention at least two windows per axis so every port shifts
        low = 2 if function == "shifted_window_attention" else 1
        rows = draw(st.integers(low, 3), label="window rows")
        cols = draw(st.integers(low, 3), label="window columns")
        heads = draw(st.integers(1, 3), label="heads")
        head_dim = draw(st.integers(1, 3), label="head dim")
        C = heads * head_dim if "attention" in function else draw(st.integers(1, 3), label="channels")
        pretrained = (0, 0)
        if function.startswith("v2_") and draw(st.booleans(), label="pre-training window"):
            pretrained = (
                draw(st.integers(2, 16), label="pretrained h"),
                draw(st.integers(2, 16), label="pretrained w"),
            )
        return Case(
            B=draw(st.integers(1, 2), label="batch"),
            H=rows * Mh,
            W=cols * Mw,
            C=C,
            window=(Mh, Mw),
            shift=(
                draw(st.integers(0, Mh - 1), label="shift h"),
                draw(st.integers(0, Mw - 1), label="shift w"),
            ),
            num_heads=heads,
            seed=draw(seeds, label="seed"),
            pretrained=pretrained,
        )

    @st.composite
    def video_cases(draw):
        window = tuple(draw(st.integers(1, 3), label=f"window {a}") for a in "dhw")
        size = tuple(
            m * draw(st.integers(1, 2), label=f"windows along {a}")
            for m, a in zip(window, "dhw", strict=True)
        )
        return VideoCase(
            B=draw(st.integers(1, 2), label="batch"),
            D=size[0],
            H=size[1],
            W=size[2],
            C=draw(st.integers(1, 3), label="channels"),
            window=(window[0], window[1], window[2]),
            shift=(
                draw(st.integers(0, window[0] - 1), label="shift d"),
                draw(st.integers(0, window[1] - 1), label="shift h"),
                draw(st.integers(0, window[2] - 1), label="shift w"),
            ),
            seed=draw(seeds, label="seed"),
        )

    return video_cases() if function in VIDEO_FUNCTIONS else cases()


def _golden_for(function: str) -> tuple[Case | VideoCase, ...]:
    if function in VIDEO_FUNCTIONS:
        return VIDEO_GOLDEN_CASES
    out = []
    for c in GOLDEN_CASES + (V2_GOLDEN_CASES if function.startswith("v2_") else ()):
        if "attention" in function:
            c = c._replace(C=c.num_heads * c.C)
        if function == "shifted_window_attention" and (c.H == c.window[0] or c.W == c.window[1]):
            continue
        out.append(c)
    return tuple(out)


@dataclass
class CheckResult:
    function: str
    checks: str
    passed: bool
    examples: int = 0
    case: Case | VideoCase | None = None
    message: str = ""
    snippet: str = ""


@dataclass
class Report:
    port: str
    results: list[CheckResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results)

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed]

    def __getitem__(self, function: str) -> CheckResult:
        for r in self.results:
            if r.function == function:
                return r
        raise KeyError(f"{function!r} was not checked; checked: {[r.function for r in self.results]}")

    def summary(self) -> str:
        lines = [f"conformance of {self.port}:"]
        for r in self.results:
            status = "pass" if r.passed else "FAIL"
            lines.append(f"  {status}  {r.function:<26} {r.checks} ({r.examples} examples)")
        for r in self.failures:
            lines += ["", f"{r.function}: {r.message}", "reproduce with:", r.snippet]
        return "\n".join(lines)

    __str__ = summary


def _snippet(function: str, case: Case | VideoCase) -> str:
    inputs = {
        "window_partition": "x = example_grid(case)\nport.window_partition(x, case.window)",
        "window_reverse": "w = example_windows(case)\nport.window_reverse(w, case.window, case.H, case.W)",
        "shift_mask": f"port.shift_mask({case.H}, {case.W}, {case.window}, {case.shift})",
        "relative_position_index": f"port.relative_position_index({case.window})",
        "relative_position_bias": "port.relative_position_bias(example_table(case), case.window)",
        "window_attention": (
            "x, params = example_attention(case)\n"
            "mask = brute_force_mask((case.H, case.W), case.window, case.shift) "
            "if any(case.shift) else None\n"
            "port.window_attention(x, params, case.num_heads, case.window, mask)"
        ),
        "shifted_window_attention": "",  # the inputs are laid out inside the check
        "v2_coords_table": f"port.v2_coords_table({case.window}, {getattr(case, 'pretrained', None)})",
        "v2_window_attention": (
            "x, params = example_v2_attention(case)\n"
            "mask = brute_force_mask((case.H, case.W), case.window, case.shift) "
            "if any(case.shift) else None\n"
            "port.v2_window_attention(x, params, case.num_heads, case.window, case.pretrained, mask)"
        ),
        "v2_patch_merging": (
            "x, params = example_merging(case, norm_first=False)\nport.v2_patch_merging(x, params)"
        ),
        "video_window_partition": "x = example_video_grid(case)\nport.video_window_partition(x, case.window)",
        "video_shift_mask": "port.video_shift_mask(case.D, case.H, case.W, case.window, case.shift)",
        "video_relative_position_index": f"port.video_relative_position_index({case.window})",
        "video_patch_merging": (
            "x, params = example_merging(case, norm_first=True)\nport.video_patch_merging(x, params)"
        ),
    }[function]
    return (
        "from swinref.tools.conformance import *\n"
        f"case = {case!r}\n"
        + (f"{inputs}\n" if inputs else "")
        + f"check_example(port, {function!r}, case)  # raises with the message above"
    )


def _property(port: Port, name: str, seen: list[int], last_failure: list):
    def prop(case):
        seen[0] += 1
        try:
            check_example(port, name, case)
        except Exception as e:  # a crash of the port is a failure too
            last_failure[:] = [(case, e)]
            raise

    return prop


def check_port(
    port: Port, *, max_examples: int = 50, seed: int = 0, functions: list[str] | None = None
) -> Report:
    """Run the properties and golden comparisons for every function ``port`` provides.

    Each function gets ``max_examples`` drawn cases (reproducible from ``seed``; a failure is
    shrunk to a small example), then the golden cases. Returns a :class:`Report`; never raises
    for a port's mistake or crash (those are failures in the report).
    """
    try:
        from hypothesis import HealthCheck, given, settings  # noqa: PLC0415
        from hypothesis import seed as hypothesis_seed  # noqa: PLC0415
    except ImportError as e:
        raise ImportError(
            "swinref.tools.conformance.check_port needs hypothesis: pip install hypothesis"
        ) from e

    if not isinstance(port, Port):
        raise TypeError(f"expected a swinref.tools.conformance.Port, got {type(port).__name__}")
    names = port.provided() if functions is None else list(functions)
    for name in names:
        if name not in _CHECKS:
            raise ValueError(f"unknown function {name!r}; expected some of {', '.join(FUNCTIONS)}")
        if getattr(port, name) is None:
            raise ValueError(f"the port does not provide {name}")
    if not names:
        raise ValueError(
            "the port provides no function to check; set at least one of " + ", ".join(FUNCTIONS)
        )
    report = Report(port.name)
    for name in names:
        seen: list[int] = [0]
        last_failure: list[tuple[Case | VideoCase, BaseException]] = []

        test = given(case=_cases(name))(_property(port, name, seen, last_failure))
        test = settings(
            max_examples=max_examples,
            deadline=None,
            database=None,
            print_blob=False,
            suppress_health_check=list(HealthCheck),
        )(test)
        test = hypothesis_seed(seed)(test)
        result = CheckResult(name, _CHECKS[name][0], passed=True)
        try:
            test()  # drawn cases first, so that a failure is shrunk to a small example
            prop = _property(port, name, seen, last_failure)
            for case in _golden_for(name):
                prop(case)
        except Exception:  # hypothesis re-raises the last (smallest) failing example
            if not last_failure:  # not the port's failure: a mistake in how check_port was called
                raise
            case, err = last_failure[-1]
            kind = "" if isinstance(err, AssertionError) else f"{type(err).__name__}: "
            result.passed = False
            result.case = case
            result.message = kind + str(err).strip()
            result.snippet = _snippet(name, case)
        result.examples = seen[0]
        report.results.append(result)
    return report


__all__ = [
    "COORDS_ATOL",
    "Case",
    "CheckResult",
    "FUNCTIONS",
    "GOLDEN_CASES",
    "Port",
    "Report",
    "V2_GOLDEN_CASES",
    "VIDEO_FUNCTIONS",
    "VIDEO_GOLDEN_CASES",
    "VideoCase",
    "brute_force_mask",
    "brute_force_mask_3d",
    "check_example",
    "check_port",
    "coords_bound",
    "example_attention",
    "example_grid",
    "example_merging",
    "example_table",
    "example_v2_attention",
    "example_video_grid",
    "example_windows",
    "naive_index",
    "naive_index_3d",
    "reference_shifted_attention",
]
