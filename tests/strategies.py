"""Hypothesis strategies shared by the test modules."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays


# ----- golden files --------------------------------------------------------------------------
@st.composite
def golden_tensors(draw):
    """(x, logits): a small (B, C, H, W) input and (B, K) logits of one float dtype, with every
    kind of float value (NaN, infinities, -0.0, subnormals) so that a round trip must keep bits."""
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    width = 32 if dtype == np.float32 else 64
    elements = st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True, width=width)
    B = draw(st.integers(1, 2))
    shape = (B, draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    x = draw(arrays(dtype, shape, elements=elements))
    logits = draw(arrays(dtype, (B, draw(st.integers(1, 5))), elements=elements))
    return x, logits


class Perturbation(NamedTuple):
    tensor: int  # which tensor, modulo the number of tensors
    flat_index: int  # which element, modulo its size
    delta: float  # added to that element
    atol: float  # tolerance of the comparison


@st.composite
def perturbations(draw):
    """One element changed by a delta near, below or above the tolerance (either sign)."""
    atol = draw(st.sampled_from([1e-10, 1e-6, 1e-3]))
    factor = draw(st.one_of(st.sampled_from([0.0, 0.5, 0.999999, 1.000001, 2.0]), st.floats(0.0, 10.0)))
    sign = draw(st.sampled_from([-1.0, 1.0]))
    return Perturbation(
        tensor=draw(st.integers(0, 10_000)),
        flat_index=draw(st.integers(0, 10**6)),
        delta=sign * factor * atol,
        atol=atol,
    )


# ----- window geometry, attention, merging ----------------------------------------------------
# The `be` fixture is function-scoped but immutable (a namespace and a device), so sharing it
# across the examples of one test is safe; property tests over `be` use these settings.
backend_settings = settings(
    suppress_health_check=(*settings().suppress_health_check, HealthCheck.function_scoped_fixture)
)

#: Seeds for NumPy generators: arrays are drawn from a seed so examples stay fast and printable.
seeds = st.integers(0, 2**32 - 1)


class Geometry(NamedTuple):
    """A (B, H, W, C) token grid whose H and W are multiples of the window (Mh, Mw)."""

    B: int
    H: int
    W: int
    C: int
    window: tuple[int, int]

    @property
    def N(self) -> int:
        return self.window[0] * self.window[1]

    @property
    def nW(self) -> int:
        return (self.H // self.window[0]) * (self.W // self.window[1])


def window_sizes(max_side: int = 4):
    """(Mh, Mw), each side in 1..max_side; square and non-square."""
    return st.tuples(st.integers(1, max_side), st.integers(1, max_side))


@st.composite
def geometries(
    draw, *, max_side: int = 4, max_windows: int = 3, max_batch: int = 2, max_channels: int = 4
) -> Geometry:
    """A grid of 1..max_windows windows per axis, so H % Mh == 0 and W % Mw == 0 by construction."""
    Mh, Mw = draw(window_sizes(max_side), label="window")
    rows = draw(st.integers(1, max_windows), label="window rows")
    cols = draw(st.integers(1, max_windows), label="window columns")
    B = draw(st.integers(1, max_batch), label="batch")
    C = draw(st.integers(1, max_channels), label="channels")
    return Geometry(B, rows * Mh, cols * Mw, C, (Mh, Mw))


@st.composite
def shifts(draw, window: tuple[int, int]) -> tuple[int, int]:
    """(sh, sw) with 0 <= s < M per axis (0 on one axis included)."""
    Mh, Mw = window
    return (draw(st.integers(0, Mh - 1), label="shift h"), draw(st.integers(0, Mw - 1), label="shift w"))


@st.composite
def shifted_geometries(draw, **kwargs) -> tuple[Geometry, tuple[int, int]]:
    """A geometry and a shift valid for its window."""
    g = draw(geometries(**kwargs), label="geometry")
    return g, draw(shifts(g.window), label="shift")


class Heads(NamedTuple):
    num_heads: int
    head_dim: int


def heads(max_heads: int = 3, max_head_dim: int = 4):
    """(nH, d); the channels are C = nH * d."""
    return st.builds(Heads, st.integers(1, max_heads), st.integers(1, max_head_dim))


class MergeGrid(NamedTuple):
    """A (B, H, W, C) grid of any size, odd included, for patch merging."""

    B: int
    H: int
    W: int
    C: int


def merge_grids(max_side: int = 7, max_channels: int = 4):
    return st.builds(
        MergeGrid,
        st.integers(1, 2),
        st.integers(1, max_side),
        st.integers(1, max_side),
        st.integers(1, max_channels),
    )


class EmbedCase(NamedTuple):
    """Patch embedding: a (B, Cin, H, W) image with H, W multiples of the patch P, C outputs."""

    B: int
    in_chans: int
    H: int
    W: int
    patch: int
    C: int


@st.composite
def embed_cases(draw, max_patch: int = 4, max_patches: int = 3) -> EmbedCase:
    P = draw(st.integers(1, max_patch), label="patch")
    return EmbedCase(
        B=draw(st.integers(1, 2), label="batch"),
        in_chans=draw(st.integers(1, 3), label="in_chans"),
        H=P * draw(st.integers(1, max_patches), label="patch rows"),
        W=P * draw(st.integers(1, max_patches), label="patch columns"),
        patch=P,
        C=draw(st.integers(1, 4), label="embed dim"),
    )


def float_lists(lo: float, hi: float, *, min_size: int = 1, max_size: int = 32):
    """Lists of finite float64 values in [lo, hi] (hypothesis favours the ends and simple values)."""
    return st.lists(
        st.floats(lo, hi, allow_nan=False, allow_infinity=False), min_size=min_size, max_size=max_size
    )


# ----- state-dict layouts --------------------------------------------------------------------
@st.composite
def layout_configs(draw):
    """A small SwinConfig over the axes that change parameter names and shapes: stage count,
    depths, heads, widths, windows (square or not, clamped or not), biases, norms, head."""
    from swinref import SwinConfig

    stages = draw(st.integers(1, 3), label="stages")
    depths = tuple(draw(st.lists(st.integers(1, 3), min_size=stages, max_size=stages), label="depths"))
    heads0 = draw(st.integers(1, 3), label="heads0")
    head_dim = draw(st.sampled_from([1, 2, 4]), label="head_dim")
    window = draw(
        st.one_of(st.integers(1, 4), st.tuples(st.integers(1, 4), st.integers(1, 4))), label="window_size"
    )
    patch = draw(st.sampled_from([1, 2, 4]), label="patch_size")
    grid = draw(st.tuples(st.integers(1, 8), st.integers(1, 8)), label="token grid")
    return SwinConfig(
        img_size=(grid[0] * patch, grid[1] * patch),
        patch_size=patch,
        in_chans=draw(st.integers(1, 3), label="in_chans"),
        num_classes=draw(st.sampled_from([0, 3]), label="num_classes"),
        embed_dim=heads0 * head_dim,
        depths=depths,
        num_heads=tuple(heads0 * 2**i for i in range(stages)),
        window_size=window,
        mlp_ratio=draw(st.sampled_from([1.0, 2.0, 4.0]), label="mlp_ratio"),
        qkv_bias=draw(st.booleans(), label="qkv_bias"),
        patch_norm=draw(st.booleans(), label="patch_norm"),
    )


# ----- fast path (swinref/fast.py) ------------------------------------------------------------
@st.composite
def gelu_inputs(draw):
    """(dtype, x): a 1-D float32 or float64 array of finite values, most within GELU's curved range
    [-12, 12], some of any magnitude (to cross the table's ends)."""
    dtype = draw(st.sampled_from([np.float32, np.float64]), label="dtype")
    width = 32 if dtype == np.float32 else 64
    elements = st.one_of(
        st.floats(-12.0, 12.0, width=width), st.floats(allow_nan=False, allow_infinity=False, width=width)
    )
    x = draw(arrays(dtype, st.integers(1, 100), elements=elements), label="x")
    return dtype, x


# ----- Swin V2 (swinref/v2.py) ----------------------------------------------------------------
@st.composite
def v2_query_rows(draw):
    """(x, zero_rows): a (rows, d) float64 array of q or k vectors, some rows exactly zero (what a
    padded token's k is), the others of any magnitude from 1e-6 to 1e6."""
    rows = draw(st.integers(1, 6), label="rows")
    d = draw(st.integers(1, 8), label="head dim")
    magnitude = st.floats(1e-6, 1e6) | st.floats(-1e6, -1e-6)
    x = draw(arrays(np.float64, (rows, d), elements=magnitude), label="x")
    zero = np.asarray(draw(st.lists(st.booleans(), min_size=rows, max_size=rows), label="zero rows"))
    x[zero] = 0.0
    return x, zero


@st.composite
def v2_windows(draw):
    """(window, pretrained_window): a window (Mh, Mw) in 1..12 and a pre-training window that is
    (0, 0) (none) or in 2..16 per axis."""
    window = draw(st.tuples(st.integers(1, 12), st.integers(1, 12)), label="window")
    pretrained = draw(
        st.one_of(st.just((0, 0)), st.tuples(st.integers(2, 16), st.integers(2, 16))),
        label="pretrained window",
    )
    return window, pretrained


def v2_logit_scales():
    """Per-head logit_scale values (nH, 1, 1) from below 0 to far above the log(100) clamp,
    the clamp point itself included."""
    clamp = float(np.log(100.0))
    values = st.one_of(
        st.floats(-5.0, 10.0), st.sampled_from([clamp, np.nextafter(clamp, 0.0), np.nextafter(clamp, 10.0)])
    )
    return st.integers(1, 6).flatmap(lambda nH: arrays(np.float64, (nH, 1, 1), elements=values))


# ----- size semantics (swinref.models.v1.SEMANTICS) ----------------------------------------------
class ClampCase(NamedTuple):
    """A block's token grid, the configured window and the shift it would use unclamped."""

    resolution: tuple[int, int]
    window: tuple[int, int]
    shift: tuple[int, int]


@st.composite
def clamp_cases(draw, *, square_window: bool = False) -> ClampCase:
    """Grids from 1x1 to 20x20 against windows 1..9 (around, above and below the grid), shifted
    (M // 2) or not."""
    Mh = draw(st.integers(1, 9), label="window h")
    Mw = Mh if square_window else draw(st.integers(1, 9), label="window w")
    resolution = (draw(st.integers(1, 20), label="grid h"), draw(st.integers(1, 20), label="grid w"))
    shifted = draw(st.booleans(), label="shifted block")
    shift = (Mh // 2, Mw // 2) if shifted else (0, 0)
    return ClampCase(resolution, (Mh, Mw), shift)


class SizedModel(NamedTuple):
    """A tiny two-stage config and an input size (any, not only multiples of patch or window)."""

    cfg: object
    size: tuple[int, int]


@st.composite
def sized_models(
    draw, *, semantics=("timm", "torchvision", "hf", "detection"), min_side: int = 4, max_side: int = 40
) -> SizedModel:
    """A config with embed_dim 4, depths (2, 2), a square window 2..5, and an input of any size
    in min_side..max_side per axis (timm: a multiple of the patch, with strict_img_size=False).

    transformers sizes its tables for the configured window and fails where a stage's grid is
    smaller than it (an error case of its own test), so hf inputs start at the smallest size that
    runs: stage 1's grid ceil(ceil(H / 4) / 2) >= M, i.e. H >= 8M - 7 (up to 8 tokens more)."""
    from swinref import SwinConfig

    sem = draw(st.sampled_from(list(semantics)), label="semantics")
    window = draw(st.integers(2, 5), label="window")
    low, high = min_side, max_side
    if sem == "hf":
        low = max(min_side, 8 * window - 7)
        high = max(max_side, low + 8)
    H = draw(st.integers(low, high), label="H")
    W = draw(st.integers(low, high), label="W")
    if sem == "timm":
        H, W = max(4, H - H % 4), max(4, W - W % 4)
    img = (draw(st.integers(1, 10), label="img_size h") * 4, draw(st.integers(1, 10), label="img_size w") * 4)
    cfg = SwinConfig(
        img_size=img,
        embed_dim=4,
        depths=(2, 2),
        num_heads=(1, 2),
        window_size=window,
        num_classes=3,
        semantics=sem,
        strict_img_size=False,
    )
    return SizedModel(cfg, (H, W))


# ----- image sets ----------------------------------------------------------------------------
def image_sizes(min_side: int = 1, max_side: int = 80):
    """(width, height) of a decoded image, from a single pixel to larger than the 32 x 32 crop."""
    side = st.integers(min_side, max_side)
    return st.tuples(side, side)
