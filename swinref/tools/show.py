"""Pictures of the shifted-window scheme: ``swinref show --out DIR``.

Four PNGs for any grid, window and shift, drawn from the arrays swinref itself computes
(:func:`swinref.windows.region_ids`, :func:`~swinref.windows.shift_mask`); every drawing function
returns the arrays it drew so a test can compare them with the code's:

- ``cyclic_shift.png``: region ids of the token grid before and after the roll by (-sh, -sw);
- ``window_regrouping.png``: the shifted windows over the original grid (up to nine pieces) and
  the regular windows after the roll (each now holding pieces of up to four regions);
- ``masks.png``: the (N, N) attention mask of every window;
- ``attention.png``: one query token's attention weights over its window, from random q and k
  (seeded, d = 8) plus a random relative position bias table and the mask.

A grid that is not a multiple of the window is zero-padded at the bottom/right and the padded grid
is rolled (the torchvision and official order; timm rolls before padding). Padding tokens are
drawn faded. matplotlib is imported only here (``pip install swinref[show]``).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..artifacts.fileio import OutputExistsError, atomic_write
from ..core import backend
from ..core.numerics import softmax
from ..core.windows import region_ids, shift_mask, window_partition
from ..models.v1 import relative_position_bias

_REGION_COLOURS = "tab10"  # ids 0..8 get distinct colours
# beyond these a token is under a pixel wide and the masks figure has hundreds of panels
MAX_TOKENS = 128 * 128
MAX_WINDOWS = 256


def _save(fig, path, *, dpi: int, overwrite: bool) -> None:
    """The figure as a PNG, written atomically (figures here are not pyplot's: nothing to close)."""
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=dpi), overwrite=overwrite, what="picture")


class Geometry:
    """A grid (H, W), window (Mh, Mw) and shift (sh, sw), validated, with the padded size."""

    def __init__(self, size, window, shift):
        self.size = _pair(size, "size (H, W)")
        self.window = _pair(window, "window (Mh, Mw)")
        self.shift = _pair(shift, "shift (sh, sw)", low=0)
        for s, m, axis in zip(self.shift, self.window, "hw", strict=False):
            if s >= m:
                raise ValueError(
                    f"shift {self.shift} must be below the window {self.window} on each "
                    f"axis (0 <= s{axis} < M{axis})"
                )
        self.padded = tuple(-(-r // m) * m for r, m in zip(self.size, self.window, strict=False))
        tokens = self.padded[0] * self.padded[1]
        windows = tokens // (self.window[0] * self.window[1])
        if tokens > MAX_TOKENS or windows > MAX_WINDOWS:
            raise ValueError(
                f"{self!r} pads to {tokens} tokens in {windows} windows; pictures are drawn for at most "
                f"{MAX_TOKENS} tokens and {MAX_WINDOWS} windows (one panel per window)"
            )

    def __repr__(self):
        return f"grid {self.size[0]}x{self.size[1]}, window {self.window}, shift {self.shift}"


def _pair(value, what: str, *, low: int = 1) -> tuple[int, int]:
    v = (value, value) if isinstance(value, int) else tuple(value)
    if len(v) == 1:
        v = (v[0], v[0])
    if len(v) != 2 or not all(isinstance(a, (int, np.integer)) and a >= low for a in v):
        raise ValueError(f"{what} must be one or two integers >= {low}, got {value!r}")
    return int(v[0]), int(v[1])


def _np():
    return backend.get_namespace("numpy")


# ----- the arrays ---------------------------------------------------------------------------
def region_grids(g: Geometry) -> dict[str, np.ndarray]:
    """``after``: region ids of the rolled, padded grid (what the mask uses); ``before``: the same
    ids at each token's place before the roll. Both (Hp, Wp) int64."""
    after = np.asarray(region_ids(g.padded, g.window, g.shift, xp=_np()))
    before = np.roll(after, g.shift, axis=(0, 1))  # the roll by -shift moved (i+s, j+s) to (i, j)
    return {"before": before, "after": after}


def window_masks(g: Geometry) -> np.ndarray:
    """(nW, N, N) additive mask, exactly :func:`swinref.windows.shift_mask`."""
    return np.asarray(shift_mask(g.padded, g.window, g.shift, xp=_np()))


def query_attention(g: Geometry, query: tuple[int, int], *, seed: int = 0, head_dim: int = 8) -> dict:
    """Softmax weights of query token ``query`` (original grid coordinates) over its window.

    Random q, k ~ N(0, 1) of width ``head_dim`` for every token and a N(0, 1) bias table, seeded;
    logits = q.k / sqrt(d) + bias + mask, as in window attention. Returns ``weights`` (Hp, Wp),
    NaN outside the query's window, on the original (unrolled) grid, and ``window_weights`` (N,).
    """
    Hp, Wp = g.padded
    (Mh, Mw), (sh, sw) = g.window, g.shift
    qi, qj = query
    if not (0 <= qi < g.size[0] and 0 <= qj < g.size[1]):
        raise ValueError(
            f"query {query} is outside the {g.size[0]}x{g.size[1]} grid; expected 0 <= I < "
            f"{g.size[0]}, 0 <= J < {g.size[1]}"
        )
    xp = _np()
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((Hp, Wp, head_dim))
    k = rng.standard_normal((Hp, Wp, head_dim))
    table = rng.standard_normal(((2 * Mh - 1) * (2 * Mw - 1), 1))
    # positions after the roll by -shift
    ri, rj = (qi - sh) % Hp, (qj - sw) % Wp
    w = (ri // Mh) * (Wp // Mw) + rj // Mw  # the query's window, row-major
    t = (ri % Mh) * Mw + rj % Mw  # the query's token within it
    k_rolled = np.roll(k, (-sh, -sw), axis=(0, 1))
    k_win = np.asarray(window_partition(k_rolled[None], g.window, xp=xp))[w]  # (N, d)
    q_tok = np.roll(q, (-sh, -sw), axis=(0, 1))[ri, rj]  # (d,)
    logits = k_win @ q_tok / math.sqrt(head_dim)  # (N,)
    logits = logits + np.asarray(relative_position_bias(table, g.window, xp=xp))[0, t]
    logits = logits + window_masks(g)[w, t]
    weights = np.asarray(softmax(logits, axis=-1, xp=xp))  # (N,)
    r0, c0 = (w // (Wp // Mw)) * Mh, (w % (Wp // Mw)) * Mw
    rolled = np.full((Hp, Wp), np.nan)
    rolled[r0 : r0 + Mh, c0 : c0 + Mw] = weights.reshape(Mh, Mw)
    grid = np.roll(rolled, (sh, sw), axis=(0, 1))  # back to original coordinates
    return {"weights": grid, "window_weights": weights, "window": w, "token": t}


# ----- drawing --------------------------------------------------------------------------------
def _figure(ncols: int, nrows: int = 1, *, cell: float = 3.2):
    from matplotlib.figure import Figure  # no pyplot: no global state, Agg canvas on save  # noqa: PLC0415

    fig = Figure(figsize=(cell * ncols, cell * nrows + 0.4), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def _draw_regions(ax, ids, g: Geometry, title: str, *, lines_h=(), lines_w=(), annotate=True):
    Hp, Wp = ids.shape
    ax.imshow(ids, cmap=_REGION_COLOURS, vmin=0, vmax=10, interpolation="nearest")
    faded = np.zeros((Hp, Wp, 4))
    faded[g.size[0] :, :, 3] = faded[:, g.size[1] :, 3] = 0.6  # padding tokens
    faded[..., :3] = 1.0
    ax.imshow(faded, interpolation="nearest")
    if annotate and Hp * Wp <= 32 * 32:
        fontsize = max(4, min(9, int(120 / max(Hp, Wp))))
        for i in range(Hp):
            for j in range(Wp):
                ax.text(j, i, str(int(ids[i, j])), ha="center", va="center", fontsize=fontsize)
    for y in lines_h:
        ax.axhline(y - 0.5, color="black", linewidth=2)
    for x in lines_w:
        ax.axvline(x - 0.5, color="black", linewidth=2)
    ax.set_xticks(range(Wp))
    ax.set_yticks(range(Hp))
    ax.tick_params(labelsize=6, length=0)
    ax.set_title(title, fontsize=9)


def _padding_note(g: Geometry) -> str:
    if g.padded == g.size:
        return ""
    return f"\npadded to {g.padded[0]}x{g.padded[1]} (faded), then rolled"


def draw_cyclic_shift(g: Geometry, path, *, overwrite: bool = False) -> dict[str, np.ndarray]:
    """Region ids before and after the roll by (-sh, -sw). Returns the two (Hp, Wp) arrays drawn."""
    arrays = region_grids(g)
    fig, axes = _figure(2)
    _draw_regions(axes[0, 0], arrays["before"], g, "before the roll: region id of each token")
    _draw_regions(axes[0, 1], arrays["after"], g, f"after roll by {(-g.shift[0], -g.shift[1])}")
    fig.suptitle(f"cyclic shift, {g}{_padding_note(g)}", fontsize=10)
    _save(fig, path, dpi=100, overwrite=overwrite)
    return arrays


def draw_window_regrouping(g: Geometry, path, *, dpi: int = 100, overwrite: bool = False) -> dict[str, Any]:
    """Shifted windows over the original grid and the regular windows after the roll, over the
    region ids. Returns ``before``/``after`` ids and the window boundaries drawn."""
    arrays = region_grids(g)
    (Hp, Wp), (Mh, Mw), (sh, sw) = g.padded, g.window, g.shift
    shifted_h = sorted({(sh + k * Mh) % Hp for k in range(Hp // Mh)} - {0})
    shifted_w = sorted({(sw + k * Mw) % Wp for k in range(Wp // Mw)} - {0})
    regular_h, regular_w = list(range(Mh, Hp, Mh)), list(range(Mw, Wp, Mw))
    fig, axes = _figure(2)
    pieces = (len(shifted_h) + 1) * (len(shifted_w) + 1)
    _draw_regions(
        axes[0, 0],
        arrays["before"],
        g,
        f"original grid: shifted windows ({pieces} pieces)",
        lines_h=shifted_h,
        lines_w=shifted_w,
    )
    _draw_regions(
        axes[0, 1],
        arrays["after"],
        g,
        f"after the roll: {(Hp // Mh) * (Wp // Mw)} regular windows",
        lines_h=regular_h,
        lines_w=regular_w,
    )
    fig.suptitle(f"window regrouping, {g}{_padding_note(g)}", fontsize=10)
    _save(fig, path, dpi=dpi, overwrite=overwrite)
    return {**arrays, "lines_before": (shifted_h, shifted_w), "lines_after": (regular_h, regular_w)}


def draw_masks(g: Geometry, path, *, overwrite: bool = False) -> np.ndarray:
    """One (N, N) panel per window, 0 light and -100 dark. Returns the (nW, N, N) mask drawn."""
    masks = window_masks(g)
    rows, cols = g.padded[0] // g.window[0], g.padded[1] // g.window[1]
    fig, axes = _figure(cols, rows, cell=2.0)
    for w in range(rows * cols):
        ax = axes[w // cols, w % cols]
        ax.imshow(masks[w], cmap="Greys_r", vmin=-100, vmax=0, interpolation="nearest")
        ax.set_title(f"window {w}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"attention masks (white 0, black -100)\n{g}{_padding_note(g)}", fontsize=9)
    _save(fig, path, dpi=100, overwrite=overwrite)
    return masks


def draw_attention(
    g: Geometry, query: tuple[int, int], path, *, seed: int = 0, overwrite: bool = False
) -> dict:
    """The query's attention weights on the original grid. Returns :func:`query_attention`'s dict."""
    out = query_attention(g, query, seed=seed)
    fig, axes = _figure(1, cell=5.0)
    ax = axes[0, 0]
    image = ax.imshow(out["weights"], cmap="viridis", vmin=0.0, interpolation="nearest")
    ax.plot([query[1]], [query[0]], marker="x", color="red", markersize=10)
    fig.colorbar(image, ax=ax, shrink=0.8)
    ax.set_title(
        f"attention of query {tuple(query)} (red x), random q/k seed {seed}\n{g}\n"
        "blank: outside its window" + _padding_note(g).replace("\n", "; "),
        fontsize=8,
    )
    _save(fig, path, dpi=100, overwrite=overwrite)
    return out


def render(
    out_dir, size=(8, 8), window=(4, 4), shift=None, query=None, *, seed: int = 0, overwrite: bool = False
) -> dict[str, Path]:
    """Write the four PNGs into ``out_dir``; shift defaults to M // 2, the query to the last token.

    Each PNG is written atomically; existing PNGs are refused unless ``overwrite=True``, before
    any is drawn. Returns {name: path}.
    """
    window = _pair(window, "window (Mh, Mw)")
    shift = (window[0] // 2, window[1] // 2) if shift is None else shift
    g = Geometry(size, window, shift)
    query = (g.size[0] - 1, g.size[1] - 1) if query is None else _pair(query, "query (I, J)", low=0)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = ("cyclic_shift", "window_regrouping", "masks", "attention")
    paths = {name: out / f"{name}.png" for name in names}
    present = [str(p) for p in paths.values() if os.path.lexists(p)]
    if present and not overwrite:
        raise OutputExistsError(f"{', '.join(present)} exist; overwrite explicitly (--force)")
    draw_cyclic_shift(g, paths["cyclic_shift"], overwrite=overwrite)
    draw_window_regrouping(g, paths["window_regrouping"], overwrite=overwrite)
    draw_masks(g, paths["masks"], overwrite=overwrite)
    draw_attention(g, query, paths["attention"], seed=seed, overwrite=overwrite)
    return paths
