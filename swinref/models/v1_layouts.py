"""State-dict layouts: the names other Swin V1 implementations give swinref's parameters.

swinref's params carry timm's current names (:func:`swinref.weights.param_shapes`). This module
renames checkpoints of the other layouts into those names (:func:`to_timm`) and back
(:func:`from_timm`). Every name below was read off the real packages: timm 1.0.31 (and the
0.6.13, 0.8.13.dev0 and 0.9.0 wheels), torchvision 0.29.1 ``swin_t``, transformers 5.24
``SwinForImageClassification`` (its 4.x names from ``transformers/conversion_mapping.py``, entry
``"swin"``) and microsoft/Swin-Transformer ``models/swin_transformer.py``. Stage i, block j; the
merge "of stage s" is the patch merging that feeds stage s (timm keeps it at the start of s, the
others at the end of s - 1).

``timm``
    ``patch_embed.{proj,norm}``, ``layers.{i}.blocks.{j}.{norm1, attn.qkv, attn.proj,
    attn.relative_position_bias_table, norm2, mlp.fc1, mlp.fc2}``, merge of stage s at
    ``layers.{s}.downsample.{norm,reduction}``, ``norm``, ``head.fc``. timm 0.9 also saved
    ``attn.relative_position_index`` (N, N) and ``attn_mask``; timm 1.0 saves no buffers.
``timm_old``
    timm <= 0.8 (what timm's ``checkpoint_filter_fn`` calls old weights): every name as in
    ``official``, so :func:`detect_layout` cannot tell the two apart and reports ``official``.
``official``
    as timm, but the merge of stage s at the end of stage s - 1 (``layers.{s-1}.downsample``) and
    ``head`` for ``head.fc``; saves ``attn.relative_position_index`` (N, N) and, on shifted blocks,
    ``attn_mask`` (nW, N, N). Both follow the official clamp (a stage with min(H, W) <= M attends
    in min(H, W) x min(H, W) windows, unshifted), not timm's per-axis one, on every grid.
``torchvision``
    ``features.0.0`` (conv), ``features.0.2`` (norm), block j of stage i at ``features.{2i+1}.{j}``
    with ``mlp.0`` / ``mlp.3`` for fc1 / fc2, merge of stage s at ``features.{2s}``, ``norm``,
    ``head``; saves ``attn.relative_position_index`` flattened to (N*N,).
``hf``
    transformers 5.x ``state_dict()``: ``swin.embeddings.patch_embeddings.projection``,
    ``swin.embeddings.norm``, ``swin.encoder.layers.{i}.blocks.{j}.{layernorm_before,
    attention.{q,k,v}_proj, attention.o_proj,
    attention.relative_position_bias.relative_position_bias_table, layernorm_after, mlp.fc1,
    mlp.fc2}``, merge of stage s at ``swin.encoder.layers.{s-1}.downsample``, ``swin.layernorm``,
    ``classifier``; saves no buffers.
``hf4``
    transformers 4.x, and also what 5.x ``save_pretrained`` writes to disk: as hf but
    ``attention.self.{query,key,value}``, ``attention.self.relative_position_bias_table``,
    ``attention.output.dense``, ``intermediate.dense``, ``output.dense``; 4.x saved
    ``attention.self.relative_position_index`` (N, N).

The hf q, k, v are the row blocks [0:C], [C:2C], [2C:3C] of timm's fused qkv. Buffers are derived
from the config: they are never loaded, only compared with what the config implies (index values;
mask shape and values), and a disagreement is an error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core import backend
from ..core.params import check_state_dict, host_arrays, problems_error
from ..core.windows import clamp_window, relative_position_index, shift_mask
from .v1 import SwinConfig, config_grid, describe, param_shapes, table_window

LAYOUTS = ("timm", "timm_old", "torchvision", "hf", "hf4", "official")

#: The ``source`` values of :func:`swinref.convert_state_dict` and the layouts each accepts.
SOURCE_LAYOUTS = {
    "timm": ("timm", "timm_old"),
    "torchvision": ("torchvision",),
    "hf": ("hf", "hf4"),
    "official": ("official",),
    "auto": LAYOUTS,
}

# Names outside the blocks and merges: timm name -> name in the layout (module prefixes).
_FIXED = {
    "timm_old": {"head.fc": "head"},
    "official": {"head.fc": "head"},
    "torchvision": {
        "patch_embed.proj": "features.0.0",
        "patch_embed.norm": "features.0.2",
        "head.fc": "head",
    },
    "hf": {
        "patch_embed.proj": "swin.embeddings.patch_embeddings.projection",
        "patch_embed.norm": "swin.embeddings.norm",
        "norm": "swin.layernorm",
        "head.fc": "classifier",
    },
}
_FIXED["hf4"] = _FIXED["hf"]

# Module names inside a block: timm -> layout (unlisted modules keep timm's name).
_BLOCK_MODULES = {
    "torchvision": {"mlp.fc1": "mlp.0", "mlp.fc2": "mlp.3"},  # nn.Sequential(Linear, GELU, Dropout, Linear)
    "hf": {
        "norm1": "layernorm_before",
        "attn.proj": "attention.o_proj",
        "attn.relative_position_bias_table": "attention.relative_position_bias.relative_position_bias_table",
        "norm2": "layernorm_after",
    },
    "hf4": {
        "norm1": "layernorm_before",
        "attn.proj": "attention.output.dense",
        "attn.relative_position_bias_table": "attention.self.relative_position_bias_table",
        "norm2": "layernorm_after",
        "mlp.fc1": "intermediate.dense",
        "mlp.fc2": "output.dense",
    },
}

# Layouts that keep q, k, v as three linears instead of timm's fused attn.qkv.
_QKV_SPLIT = {
    "hf": ("attention.q_proj", "attention.k_proj", "attention.v_proj"),
    "hf4": ("attention.self.query", "attention.self.key", "attention.self.value"),
}


@dataclass(frozen=True)
class _Buffers:
    index: str  # name of the relative position index inside a block
    flat: bool  # stored as (N*N,) rather than (N, N)
    mask: str | None  # name of the stored shift mask inside a block, if the layout has one
    saved: bool  # the layout's own model writes them into its state dict
    # the clamp rule the layout's own model sizes tables (and so the index) with; None: tables
    # always for the configured window (torchvision, transformers)
    rule: str | None


_BUFFERS = {
    "timm": _Buffers("attn.relative_position_index", False, "attn_mask", False, "timm"),
    # timm <= 0.8 still clamped like the official code: min(H, W) <= M, a square window
    "timm_old": _Buffers("attn.relative_position_index", False, "attn_mask", True, "official"),
    "official": _Buffers("attn.relative_position_index", False, "attn_mask", True, "official"),
    "torchvision": _Buffers("attn.relative_position_index", True, None, True, None),
    "hf": _Buffers("attention.relative_position_bias.relative_position_index", True, None, False, None),
    "hf4": _Buffers("attention.self.relative_position_index", False, None, True, None),
}
_BUFFER_LEAVES = ("relative_position_index", "attn_mask")

_BLOCK_RE = re.compile(r"layers\.(\d+)\.blocks\.(\d+)\.(.+)")
_MERGE_RE = re.compile(r"layers\.(\d+)\.downsample\.(.+)")


def _check_layout(layout: str) -> None:
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {', '.join(LAYOUTS)}")


def _block_prefix(layout: str, i: int, j: int) -> str:
    if layout == "torchvision":
        return f"features.{2 * i + 1}.{j}."  # features.0 is the stem, merges sit in between
    if layout in ("hf", "hf4"):
        return f"swin.encoder.layers.{i}.blocks.{j}."
    return f"layers.{i}.blocks.{j}."


def _merge_prefix(layout: str, s: int) -> str:
    """Prefix of the patch merging that feeds stage s >= 1."""
    if layout == "timm":
        return f"layers.{s}.downsample."  # start of stage s
    if layout == "torchvision":
        return f"features.{2 * s}."
    if layout in ("hf", "hf4"):
        return f"swin.encoder.layers.{s - 1}.downsample."  # end of stage s - 1
    return f"layers.{s - 1}.downsample."  # official, timm_old: end of stage s - 1


def _rename_module(name: str, modules: Mapping[str, str]) -> str:
    for old, new in modules.items():
        if name == old or name.startswith(old + "."):
            return new + name[len(old) :]
    return name


def layout_name(name: str, layout: str) -> str | tuple[str, str, str]:
    """The name a timm-named parameter has in ``layout``; three names (q, k, v) for a split qkv."""
    _check_layout(layout)
    m = _BLOCK_RE.fullmatch(name)
    if m:
        prefix, local = _block_prefix(layout, int(m[1]), int(m[2])), m[3]
        if layout in _QKV_SPLIT and local.startswith("attn.qkv."):
            leaf = local[len("attn.qkv.") :]
            q, k, v = (f"{prefix}{part}.{leaf}" for part in _QKV_SPLIT[layout])
            return q, k, v
        return prefix + _rename_module(local, _BLOCK_MODULES.get(layout, {}))
    m = _MERGE_RE.fullmatch(name)
    if m:
        return _merge_prefix(layout, int(m[1])) + m[2]
    return _rename_module(name, _FIXED.get(layout, {}))


def name_map(cfg: SwinConfig, layout: str) -> dict[str, str | tuple[str, str, str]]:
    """Every parameter ``cfg`` needs, timm name -> its name(s) in ``layout``, in timm's order."""
    return {name: layout_name(name, layout) for name in param_shapes(cfg)}


def official_grids(cfg: SwinConfig) -> list[tuple[int, int]]:
    """Token grid of every stage as the official code (and timm <= 0.8) builds the model.

    Stage i gets floor(grid / 2**i); its patch merging asserts even H and W, so a config with an
    odd grid before a merge has no official model that runs: ValueError names that grid. The
    official code also takes one int window_size: a non-square window is a ValueError too.
    """
    if cfg.window[0] != cfg.window[1]:
        raise ValueError(
            f"the official code takes one int window_size (square windows); this config has "
            f"{cfg.window[0]}x{cfg.window[1]}"
        )
    H, W = cfg.image_hw
    P = cfg.patch_size
    grid = (H // P, W // P)
    grids = [grid]
    for i in range(1, len(cfg.depths)):
        if grid[0] % 2 or grid[1] % 2:
            raise ValueError(
                f"the official code cannot run img_size {H}x{W} (patch {P}): layers.{i - 1} ends "
                f"on an odd {grid[0]}x{grid[1]} token grid and its patch merging asserts even H "
                f"and W; use an img_size whose token grid is even before every merge (a multiple "
                f"of {P * 2 ** (len(cfg.depths) - 1)} for {len(cfg.depths)} stages)"
            )
        grid = (grid[0] // 2, grid[1] // 2)  # floor: the official model is sized this way
        grids.append(grid)
    return grids


def _stage_grids(cfg: SwinConfig, rule: str | None) -> list[tuple[int, int]]:
    if rule == "official":
        return official_grids(cfg)
    return [config_grid(cfg, i) for i in range(len(cfg.depths))]  # timm 1.0: merges pad odd grids


def table_mismatch(cfg: SwinConfig, layout: str) -> str | None:
    """Why ``cfg``'s tables cannot be ``layout``'s (its model clamps by another rule), or None.

    The official code (and timm <= 0.8) clamps a stage whose min(H, W) <= M to a square window of
    min(H, W); timm 1.0 clamps each axis alone (``cfg.semantics``). On a non-square grid such as
    2x8 with M = 4 the tables differ in size (3x3 vs 3x7 offsets).
    """
    _check_layout(layout)
    rule = _BUFFERS[layout].rule
    if rule != "official":
        return None
    for i, grid in enumerate(official_grids(cfg)):
        theirs = clamp_window(grid, cfg.window, (0, 0), rule="official")[0]
        ours = table_window(cfg, i)
        if tuple(theirs) != tuple(ours):
            return (
                f"the {layout} layout's model sizes layers.{i}'s tables for a {theirs[0]}x"
                f"{theirs[1]} window (its {grid[0]}x{grid[1]} grid has min(H, W) <= "
                f"{cfg.window[0]}, so the window becomes min(H, W) on both axes), this config "
                f"(semantics={cfg.semantics!r}) for {ours[0]}x{ours[1]}: use "
                "SwinConfig(..., semantics='official')"
            )
    return None


def derived_buffers(cfg: SwinConfig, layout: str) -> dict[str, np.ndarray]:
    """The buffers a ``layout`` checkpoint of ``cfg`` may carry, by name, with their values.

    Index: int64, (N, N) or (N*N,) as the layout stores it, for the window the stage's tables are
    sized for (timm and the official code clamp it to the stage's grid, each by its own rule;
    torchvision and transformers keep the configured window). Masks (timm-family layouts, shifted
    blocks that the layout's model leaves shifted): (nW, N, N) of 0 / -100 for the grid padded
    to a multiple of the window. The official layouts follow the official model whatever
    ``cfg.semantics`` says (ValueError from :func:`official_grids` where it cannot be built).
    """
    _check_layout(layout)
    xp = backend.get_namespace("numpy")
    spec = _BUFFERS[layout]
    out: dict[str, np.ndarray] = {}
    for i, grid in enumerate(_stage_grids(cfg, spec.rule)):
        for j in range(cfg.depths[i]):
            prefix = _block_prefix(layout, i, j)
            target = (cfg.window[0] // 2, cfg.window[1] // 2) if j % 2 else (0, 0)
            window, shift = clamp_window(grid, cfg.window, target, rule=spec.rule or "timm")
            index = np.asarray(relative_position_index(window if spec.rule else cfg.window, xp=xp))
            out[prefix + spec.index] = index.reshape(-1) if spec.flat else index
            if spec.mask and any(shift):
                padded = tuple(-(-g // m) * m for g, m in zip(grid, window, strict=False))
                out[prefix + spec.mask] = np.asarray(shift_mask(padded, window, shift, xp=xp))
    return out


def _check_buffer(name: str, value: np.ndarray, expected: np.ndarray) -> str | None:
    """None when a stored buffer agrees with the config, else the problem in words."""
    if name.endswith("relative_position_index"):
        # accept either storage shape: transformers 5.x keeps (N*N,) where 4.x kept (N, N)
        if value.size != expected.size or not np.array_equal(value.reshape(-1), expected.reshape(-1)):
            return (
                f"{name}: stored relative_position_index {tuple(value.shape)} differs from the "
                f"one the config implies {tuple(expected.shape)}"
            )
        return None
    if tuple(value.shape) != expected.shape:
        return f"{name}: stored attn_mask {tuple(value.shape)}, expected {expected.shape} for this config"
    if not np.array_equal(value, expected):
        return f"{name}: stored attn_mask differs from the 0 / -100 shift mask the config implies"
    return None


# ----- detection ---------------------------------------------------------------------------
_HF4_PATTERN = r"\.attention\.self\.|\.attention\.output\.dense\.|\.intermediate\.dense\."
_DETECT_PATTERNS = (
    ("torchvision", r"^features\.\d+\."),
    ("hf or hf4", r"^swin\.(embeddings|encoder)\."),
    ("timm, timm_old or official", r"^(patch_embed|layers)\."),
)


def detect_layout(keys: Iterable[str]) -> str:
    """The layout (one of :data:`LAYOUTS`) a state dict's names are written in.

    torchvision: ``features.{n}.``; hf4 over hf: any ``attention.self.``, ``attention.output.dense``
    or ``intermediate.dense``; official over timm: a merge at ``layers.0.downsample`` or a bare
    ``head.weight``/``head.bias`` (``timm_old`` has the same names and is reported as official).
    Raises ValueError naming the patterns it looked for when none fits.
    """
    keys = [k for k in keys if isinstance(k, str)]

    def has(pattern: str) -> bool:
        return any(re.search(pattern, k) for k in keys)

    if has(_DETECT_PATTERNS[0][1]):
        return "torchvision"
    if has(_DETECT_PATTERNS[1][1]):
        if has(_HF4_PATTERN):
            return "hf4"
        return "hf"
    if has(_DETECT_PATTERNS[2][1]):
        return "official" if _end_of_stage(keys) else "timm"
    looked = "; ".join(f"{pattern!r} ({name})" for name, pattern in _DETECT_PATTERNS)
    seen = f"got {len(keys)} names, e.g. {keys[:5]}" if keys else "the state dict is empty"
    raise ValueError(
        f"cannot tell the layout of this state dict from its names: looked for "
        f"{looked}; {seen}. Pass source= one of "
        f"{', '.join(s for s in SOURCE_LAYOUTS if s != 'auto')} if you know it."
    )


def _end_of_stage(keys: list[str]) -> bool:
    """Official-style names: the first merge at the end of stage 0, or an un-nested head."""
    return any(k.startswith("layers.0.downsample.") or k in ("head.weight", "head.bias") for k in keys)


def resolve_source(keys: Iterable[str], source: str) -> tuple[str, bool]:
    """The layout a ``source`` value means for these names, and whether it was detected.

    "timm" picks timm_old when the names are official-style, "hf" picks hf4 when the 4.x names
    are present, "auto" runs :func:`detect_layout`.
    """
    if source not in SOURCE_LAYOUTS:
        raise ValueError(f"unknown source {source!r}; expected one of {', '.join(SOURCE_LAYOUTS)}")
    keys = list(keys)
    if source == "auto":
        return detect_layout(keys), True
    if source == "timm":
        try:
            seen = detect_layout(keys)
        except ValueError:
            seen = None  # not timm-like at all: the timm checks will list every name
        return ("timm_old", True) if seen == "official" else ("timm", False)
    if source == "hf":
        return ("hf4", True) if any(re.search(_HF4_PATTERN, k) for k in keys) else ("hf", False)
    return source, False


def mismatch_hint(keys: Iterable[str], source: str) -> str | None:
    """A hint when names given as ``source`` look like another source's layout, else None."""
    try:
        seen = detect_layout(keys)
    except ValueError:
        return None
    if seen in SOURCE_LAYOUTS[source]:
        return None
    family = next(s for s, layouts in SOURCE_LAYOUTS.items() if seen in layouts)
    return f"the names look like the {seen!r} layout: pass source={family!r} or source='auto'"


# ----- conversion ----------------------------------------------------------------------------
@dataclass
class Renamed:
    """A state dict renamed to timm's names, with what a caller needs to report problems.

    params: timm name -> array, for every entry the layout maps (q/k/v already fused).
    labels: timm name -> its name(s) in the source layout, for messages.
    unexpected: source names the layout does not place in ``cfg``.
    problems: derived buffers that disagree with the config, q/k/v that cannot be fused.
    """

    params: dict[str, np.ndarray] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    unexpected: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _label(parts: tuple[str, str, str]) -> str:
    stem = parts[0].rsplit(".", 2)[0]  # "...blocks.0.attention" or "...attention.self"
    names = ",".join(p[len(stem) + 1 :].rsplit(".", 1)[0] for p in parts)
    return f"{stem}.{{{names}}}.{parts[0].rsplit('.', 1)[1]} (stacked as qkv)"


def rename(state_dict: Mapping[str, Any], cfg: SwinConfig, layout: str) -> Renamed:
    """Rename a ``layout`` state dict to timm's names for ``cfg``, collecting every problem.

    Shapes of ordinary parameters are not checked here (:func:`swinref.convert_state_dict` does).
    """
    _check_layout(layout)
    single: dict[str, str] = {}  # source name -> timm name
    split: dict[str, tuple[str, int]] = {}  # q/k/v source name -> (timm qkv name, row block)
    out = Renamed()
    for timm_name, source_name in name_map(cfg, layout).items():
        if isinstance(source_name, tuple):
            for k, part in enumerate(source_name):
                split[part] = (timm_name, k)
            out.labels[timm_name] = _label(source_name)
        else:
            single[source_name] = timm_name
            out.labels[timm_name] = source_name
    try:
        buffers = derived_buffers(cfg, layout)
    except ValueError as e:  # no model of this layout exists for cfg: say why, not which shapes differ
        raise problems_error(
            f"state dict in layout {layout!r} cannot be loaded for this config ({describe(cfg)}):",
            (("cause", [str(e)]),),
        ) from None
    parts: dict[str, dict[int, tuple[str, np.ndarray]]] = {}
    for key, value in state_dict.items():
        if key in single:
            out.params[single[key]] = backend.to_numpy(value)
        elif key in split:
            timm_name, k = split[key]
            parts.setdefault(timm_name, {})[k] = (key, backend.to_numpy(value))
        elif key in buffers:
            problem = _check_buffer(key, backend.to_numpy(value), buffers[key])
            if problem:
                out.problems.append(problem)
        elif key.rsplit(".", 1)[-1] in _BUFFER_LEAVES:
            out.problems.append(
                f"{key}: a derived buffer where this config has none "
                "(no such block, or a block without shift)"
            )
        else:
            out.unexpected.append(key)
    for timm_name, got in parts.items():
        arrays = [got[k][1] for k in sorted(got)]
        if len(got) == 3 and len({a.shape[1:] for a in arrays}) == 1 and arrays[0].ndim in (1, 2):
            out.params[timm_name] = np.concatenate(arrays, axis=0)  # rows [q; k; v]
            continue
        # incomplete or incompatible: qkv is reported missing, the parts as unexpected
        out.unexpected.extend(name for name, _ in got.values())
        if len(got) == 3:
            shapes = ", ".join(f"{name} {tuple(a.shape)}" for name, a in got.values())
            out.problems.append(f"{out.labels[timm_name]}: q, k, v cannot be stacked into qkv: {shapes}")
    return out


def to_timm(state_dict: Mapping[str, Any], cfg: SwinConfig, layout: str) -> dict[str, np.ndarray]:
    """Rename (and fuse q/k/v of) a ``layout`` state dict into timm's names for ``cfg``.

    Returns NumPy arrays in the stored dtypes. Raises :class:`swinref.WeightsError` for names the
    layout does not place in ``cfg`` and for derived buffers that disagree with it. Missing entries
    and shapes are not checked here: :func:`swinref.convert_state_dict` renames the same way and
    then checks them.
    """
    renamed = rename(state_dict, cfg, layout)
    if renamed.unexpected or renamed.problems:
        raise problems_error(
            f"state dict in layout {layout!r} does not fit the config:",
            (("unexpected", renamed.unexpected), ("mis-shaped", renamed.problems)),
        )
    return renamed.params


def from_timm(
    params: Mapping[str, Any], cfg: SwinConfig, layout: str, *, buffers: bool = True
) -> dict[str, np.ndarray]:
    """Export timm-named params into ``layout``: the inverse of :func:`to_timm`.

    params are checked against ``cfg`` first (any backend's arrays; NumPy comes out). qkv is split
    into q, k, v row blocks for the hf layouts. With ``buffers``, the derived buffers the layout's
    own model saves are added (torchvision, official, timm_old, hf4), so that the result loads
    with ``strict=True`` there.
    """
    _check_layout(layout)
    checked = convert_state_dict(host_arrays(params), cfg, source="timm")
    mismatch = table_mismatch(cfg, layout)  # ValueError where the layout's model cannot be built
    if mismatch:
        raise ValueError(f"cannot export to layout {layout!r}: {mismatch}")
    out: dict[str, np.ndarray] = {}
    for name, value in checked.items():
        target = layout_name(name, layout)
        if isinstance(target, tuple):
            C = value.shape[0] // 3
            for k, part in enumerate(target):
                out[part] = value[k * C : (k + 1) * C]  # (C, C) or (C,)
        else:
            out[target] = value
    if buffers and _BUFFERS[layout].saved:
        out.update(derived_buffers(cfg, layout))
    return out


# ----- the family's loader -------------------------------------------------------------------
# "timm" accepts timm's current and <= 0.8 names, "hf" transformers 5.x and 4.x names, "auto" any
# layout above, detected from the names.
SOURCES = ("timm", "torchvision", "hf", "official", "auto")


def _check_derived(name: str, value: np.ndarray, cfg: SwinConfig) -> str | None:
    """A stored index buffer (timm-named) must equal the one the config implies; masks are skipped."""
    if name.endswith("relative_position_index"):
        parts = name.split(".")  # layers.{i}.blocks.{j}.attn.relative_position_index
        window = table_window(cfg, int(parts[1])) if parts[0] == "layers" else cfg.window
        expected = np.asarray(relative_position_index(window, xp=backend.get_namespace("numpy")))
        if value.shape != expected.shape or not np.array_equal(value.reshape(expected.shape), expected):
            return f"{name}: stored relative_position_index differs from the one for window {window}"
    return None


def convert_state_dict(
    state_dict: Mapping[str, Any], cfg: SwinConfig, *, source: str = "timm", dtype: str | None = None
) -> dict[str, np.ndarray]:
    """Check a V1 state dict against ``cfg`` and return params (NumPy arrays, timm names).

    state_dict: names to arrays (NumPy, torch tensors, anything with ``__array__``).
    source: the layout of the names, one of :data:`SOURCES`; other layouts are renamed to timm's
        names first and errors name their entries as stored.
    dtype: ``None`` keeps the stored dtype; ``"float32"``/``"float64"`` cast explicitly.
    Raises :class:`swinref.WeightsError` listing every missing, unexpected and mis-shaped key at
    once. Stored ``relative_position_index`` / ``attn_mask`` buffers are not loaded (they are
    derived from the config) but an index (for the renamed layouts also a mask) that disagrees
    with the config is reported.
    """
    arrays = host_arrays(state_dict)
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")
    source_keys = list(arrays)
    layout, detected = resolve_source(source_keys, source)
    labels: dict[str, str] = {}  # timm name -> name as stored, for messages
    unexpected: list[str] = []
    problems: list[str] = []
    if layout != "timm":  # rename first; derived buffers are checked while renaming
        renamed = rename(arrays, cfg, layout)
        arrays, labels = renamed.params, renamed.labels
        unexpected, problems = list(renamed.unexpected), list(renamed.problems)
    plain = {}
    for name, array in arrays.items():
        if name.rsplit(".", 1)[-1] in _BUFFER_LEAVES:
            problem = _check_derived(name, array, cfg)
            if problem:
                problems.append(problem)
        else:
            plain[name] = array
    where = (
        ""
        if layout == "timm" and not detected
        else (f" in layout {layout!r}" + (" (detected from its names)" if detected else ""))
    )
    hints = [] if source == "auto" else [mismatch_hint(source_keys, source)]
    hints.append(table_mismatch(cfg, layout))
    return check_state_dict(
        plain,
        param_shapes(cfg),
        dtype=dtype,
        labels=labels,
        unexpected=unexpected,
        problems=problems,
        hints=[h for h in hints if h],
        title=f"state dict{where} does not match the config ({describe(cfg)}):",
    )


def export_state_dict(
    params: Mapping[str, Any], cfg: SwinConfig, *, layout: str = "timm", buffers: bool = True
) -> dict[str, np.ndarray]:
    """V1 params in ``layout``'s names (one of :data:`LAYOUTS`): :func:`from_timm`."""
    return from_timm(params, cfg, layout, buffers=buffers)
