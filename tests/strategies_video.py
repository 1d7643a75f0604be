"""Hypothesis strategies for the Video Swin (3D) tests (tests/models/test_video.py)."""

from __future__ import annotations

from typing import NamedTuple

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st


class Grid3d(NamedTuple):
    """A windowed token grid: (D, H, W) multiples of the window, and a shift per axis."""

    size: tuple[int, int, int]
    window: tuple[int, int, int]
    shift: tuple[int, int, int]


@st.composite
def windows3d(draw, max_side: int = 4):
    """A window (Md, Mh, Mw), each side in [1, max_side]."""
    return tuple(draw(st.integers(1, max_side), label=f"window[{a}]") for a in "dhw")


@st.composite
def grids3d(draw, max_side: int = 4, max_windows: int = 3):
    """A grid that the window tiles, with a shift 0 <= s < M per axis (the released assertion).

    Half of the axes get the shift M // 2 the model uses; the rest any allowed value.
    """
    window = draw(windows3d(max_side), label="window")
    size = tuple(
        m * draw(st.integers(1, max_windows), label=f"windows along {a}") for m, a in zip(window, "dhw")
    )
    shift = tuple(
        draw(st.one_of(st.just(m // 2), st.integers(0, m - 1)), label=f"shift {a}")
        for m, a in zip(window, "dhw")
    )
    return Grid3d(size, window, shift)


def stage_sizes(first: int, stages: int) -> list[int]:
    """Token extent of each stage along one spatial axis (merging pads odd sizes: ceil)."""
    sizes = [first]
    for _ in range(stages - 1):
        sizes.append(-(-sizes[-1] // 2))
    return sizes


def spatial_identity_holds(first: int, window: int, depths: tuple[int, ...]) -> bool:
    """Whether one spatial axis keeps the 3D model equal to the 2D one (docs/video.md).

    At every stage the extent r must be >= M: below, timm's 2D model sizes its bias tables for the
    clamped window, so there is no 2D model with the 3D model's tables (and the released 3D code
    would gather the bias of the wrong token pairs). Where a stage has shifted blocks (depth >= 2)
    and r > M, the 3D code pads then rolls while timm's 2D code rolls then pads; the two agree only
    without padding (p = 0) or when p = M / 2 = s (then the wrapped tokens form one region in both
    and keep their relative offsets).
    """
    for r, depth in zip(stage_sizes(first, len(depths)), depths):
        if r < window:
            return False
        pad = (-r) % window
        if depth >= 2 and r > window and pad and not (window % 2 == 0 and pad == window // 2):
            return False
    return True


def spatial_clamp(first: int, window: int, stages: int) -> bool:
    """Whether some stage has an extent below the window (2D tables shrink; no inflation)."""
    return any(r < window for r in stage_sizes(first, stages))


def temporal_identity_holds(frames: int, patch_t: int, window: int) -> bool:
    """Whether a static clip of T frames keeps the 3D model equal to the 2D model on its frame.

    T must be a multiple of Pt (else the last temporal token embeds a zero frame), and the
    D = T / Pt temporal tokens must need no temporal padding: D <= Md (the window is clamped to
    D) or D a multiple of Md (padding tokens would join the last window unmasked in the
    unshifted blocks).
    """
    if frames % patch_t:
        return False
    tokens = frames // patch_t
    return tokens <= window or tokens % window == 0


class InflationCase(NamedTuple):
    """A 2D model, the 3D model inflated from it, and the size of a static clip."""

    embed_dim: int
    depths: tuple[int, ...]
    num_heads: tuple[int, ...]
    patch: int  # spatial patch (the 2D patch_size)
    patch_t: int  # temporal patch Pt
    window: tuple[int, int, int]  # (Md, Mh, Mw)
    frames: int  # T
    tokens_hw: tuple[int, int]  # (H, W) tokens after the patch embedding
    in_chans: int
    num_classes: int
    qkv_bias: bool
    patch_norm: bool
    batch: int

    @property
    def video_shape(self) -> tuple[int, int, int, int, int]:
        H, W = self.tokens_hw
        return (self.batch, self.in_chans, self.frames, H * self.patch, W * self.patch)

    @property
    def temporal_tokens(self) -> int:
        return -(-self.frames // self.patch_t)


def identity_holds(case: InflationCase) -> bool:
    """Whether the inflated 3D model on a static clip must equal the 2D model (docs/video.md)."""
    (H, W), (Md, Mh, Mw) = case.tokens_hw, case.window
    return (
        temporal_identity_holds(case.frames, case.patch_t, Md)
        and spatial_identity_holds(H, Mh, case.depths)
        and spatial_identity_holds(W, Mw, case.depths)
    )


@st.composite
def inflation_cases(draw, *, identity: bool | None = True):
    """Small configs and clip sizes.

    identity True: only cases where the identity holds; None: any size (at least one patch).
    Sizes are drawn from the list of admissible values, not filtered, so no example is rejected.
    """
    stages = draw(st.integers(1, 3), label="stages")
    depths = tuple(draw(st.integers(1, 2), label=f"depth[{i}]") for i in range(stages))
    head_dim = draw(st.sampled_from([2, 4]), label="head dim")
    heads0 = draw(st.integers(1, 2), label="heads of stage 0")
    num_heads = tuple(heads0 * 2**i for i in range(stages))
    Md, Mh, Mw = (draw(st.integers(1, 4), label=f"window[{a}]") for a in "dhw")
    Pt = draw(st.integers(1, 3), label="temporal patch")
    P = draw(st.sampled_from([2, 4]), label="spatial patch")

    def pick(window: int, label: str) -> int:
        top = window * 2 ** (stages - 1) * 2 + 3
        candidates = [r for r in range(1, top) if not identity or spatial_identity_holds(r, window, depths)]
        return draw(st.sampled_from(candidates), label=label)

    H, W = pick(Mh, "tokens H"), pick(Mw, "tokens W")
    frames = [t for t in range(Pt, Pt * (2 * Md + 2)) if not identity or temporal_identity_holds(t, Pt, Md)]
    return InflationCase(
        embed_dim=heads0 * head_dim,
        depths=depths,
        num_heads=num_heads,
        patch=P,
        patch_t=Pt,
        window=(Md, Mh, Mw),
        frames=draw(st.sampled_from(frames), label="frames T"),
        tokens_hw=(H, W),
        in_chans=draw(st.integers(1, 3), label="in_chans"),
        num_classes=draw(st.sampled_from([0, 3]), label="num_classes"),
        qkv_bias=draw(st.booleans(), label="qkv_bias"),
        patch_norm=draw(st.booleans(), label="patch_norm"),
        batch=draw(st.integers(1, 2), label="batch"),
    )


#: For @given tests that also take the function-scoped ``be`` fixture (the fixture only selects a
#: namespace; it holds no state between examples).
backend_settings = settings(
    suppress_health_check=(*settings().suppress_health_check, HealthCheck.function_scoped_fixture)
)

#: Seeds for NumPy generators: arrays are drawn from a seed so examples stay fast and printable.
seeds = st.integers(0, 2**32 - 1)
