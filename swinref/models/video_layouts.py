"""State-dict layouts of Video Swin: the names other implementations give swinref's parameters.

swinref's Video params carry the released recognizer's names (:func:`swinref.video.param_shapes`:
``backbone.*`` and ``cls_head.fc_cls``). Stage i, block j; the merge "after stage i" is the
spatial patch merging at the end of stage i (i < S - 1). Names were read off the packages:

``official``
    the released Video-Swin-Transformer recognizer (mmaction2-based): ``backbone.patch_embed.
    {proj,norm}``, ``backbone.layers.{i}.blocks.{j}.{norm1, attn.qkv, attn.proj,
    attn.relative_position_bias_table, norm2, mlp.fc1, mlp.fc2}``, the merge after stage i at
    ``backbone.layers.{i}.downsample.{norm,reduction}``, ``backbone.norm``, ``cls_head.fc_cls``;
    saves ``attn.relative_position_index`` (N, N) for the configured window in every block.
``torchvision``
    torchvision 0.29 ``models.video.SwinTransformer3d`` (swin3d_t/s/b): ``patch_embed.{proj,norm}``,
    block j of stage i at ``features.{2i}.{j}`` with ``mlp.0`` / ``mlp.3`` for fc1 / fc2, the
    merge after stage i at ``features.{2i+1}``, ``norm``, ``head``; saves
    ``attn.relative_position_index`` (N, N) in every block, like the released code.
``mmaction2``
    mmaction2 1.2 ``Recognizer3D`` with ``SwinTransformer3D``: the official names, except that
    the final norm is ``backbone.norm{S-1}`` (the norm of its last ``out_indices`` stage); the
    backbone's own ``state_dict()`` is the same without ``backbone.``.

Index buffers are derived from the config: never loaded, only compared with the window's index.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..core import backend
from ..core.params import check_state_dict, host_arrays
from ..core.windows import relative_position_index
from .video import VideoSwinConfig, param_shapes

LAYOUTS = ("official", "torchvision", "mmaction2")
#: The ``source`` values of :func:`convert_state_dict`: a layout, or "auto" (detected from the names).
SOURCES = (*LAYOUTS, "auto")

_INDEX = "attn.relative_position_index"
_BLOCK_RE = re.compile(r"backbone\.layers\.(\d+)\.blocks\.(\d+)\.(.+)")
_MERGE_RE = re.compile(r"backbone\.layers\.(\d+)\.downsample\.(.+)")
_TV_BLOCK_RE = re.compile(r"features\.(\d+)\.(\d+)\.(.+)")
_MMACTION_NORM = re.compile(r"backbone\.norm\d+\.")
_TV_MERGE_RE = re.compile(r"features\.(\d+)\.(reduction|norm)\.(.+)")
# torchvision's block MLP is nn.Sequential(Linear, GELU, Dropout, Linear, Dropout)
_TV_MODULES = {"mlp.fc1.": "mlp.0.", "mlp.fc2.": "mlp.3."}
_TV_FIXED = {"backbone.patch_embed.": "patch_embed.", "backbone.norm.": "norm.", "cls_head.fc_cls.": "head."}


def _check_layout(layout: str) -> None:
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r} for Video Swin; expected one of {', '.join(LAYOUTS)}")


def layout_name(name: str, cfg: VideoSwinConfig, layout: str) -> str:
    """The name an official-named (swinref) Video parameter or buffer has in ``layout``."""
    _check_layout(layout)
    if layout == "official":
        return name
    if layout == "mmaction2":
        final = "backbone.norm."
        return f"backbone.norm{cfg.num_stages - 1}." + name[len(final) :] if name.startswith(final) else name
    m = _BLOCK_RE.fullmatch(name)
    if m:
        local = m[3]
        for ours, theirs in _TV_MODULES.items():
            if local.startswith(ours):
                local = theirs + local[len(ours) :]
        return f"features.{2 * int(m[1])}.{m[2]}.{local}"
    m = _MERGE_RE.fullmatch(name)
    if m:
        return f"features.{2 * int(m[1]) + 1}.{m[2]}"
    for ours, theirs in _TV_FIXED.items():
        if name.startswith(ours):
            return theirs + name[len(ours) :]
    return name  # not a Video Swin name: left as is, reported as unexpected later


def _to_official(name: str, cfg: VideoSwinConfig, layout: str) -> str:
    """A ``layout`` name in the released names (the inverse of :func:`layout_name`)."""
    if layout == "official":
        return name
    if layout == "mmaction2":
        final = f"backbone.norm{cfg.num_stages - 1}."
        return "backbone.norm." + name[len(final) :] if name.startswith(final) else name
    m = _TV_MERGE_RE.fullmatch(name)
    if m and int(m[1]) % 2 == 1:
        return f"backbone.layers.{int(m[1]) // 2}.downsample.{m[2]}.{m[3]}"
    m = _TV_BLOCK_RE.fullmatch(name)
    if m and int(m[1]) % 2 == 0:
        local = m[3]
        for ours, theirs in _TV_MODULES.items():
            if local.startswith(theirs):
                local = ours + local[len(theirs) :]
        return f"backbone.layers.{int(m[1]) // 2}.blocks.{m[2]}.{local}"
    for ours, theirs in _TV_FIXED.items():
        if name.startswith(theirs):
            return ours + name[len(theirs) :]
    return name


def detect_layout(names) -> str:
    """The layout of these names: "torchvision" when one starts with ``features.`` or ``head.``,
    "mmaction2" when one is a numbered final norm ``backbone.norm{k}.``, else "official"."""
    names = list(names)
    if any(n.startswith(("features.", "head.")) for n in names):
        return "torchvision"
    if any(_MMACTION_NORM.match(n) for n in names):
        return "mmaction2"
    return "official"


def index_buffers(cfg: VideoSwinConfig, layout: str) -> dict[str, np.ndarray]:
    """Every block's ``relative_position_index`` (N, N) for the configured window, named in ``layout``.

    Both layouts store the configured window's index even where a stage clamps its window: the
    released code (and torchvision) take its first N x N entries there.
    """
    _check_layout(layout)
    index = np.asarray(relative_position_index(cfg.window_size, xp=backend.get_namespace("numpy")))
    return {
        layout_name(f"backbone.layers.{i}.blocks.{j}.{_INDEX}", cfg, layout): index
        for i, depth in enumerate(cfg.depths)
        for j in range(depth)
    }


def convert_state_dict(
    state_dict: Mapping[str, Any], cfg: VideoSwinConfig, *, source: str = "official", dtype: str | None = None
) -> dict[str, np.ndarray]:
    """Params (NumPy, :func:`swinref.video.param_shapes` names) from a Video Swin state dict.

    source: "official" (the released recognizer), "torchvision" (``SwinTransformer3d``),
    "mmaction2" (its ``Recognizer3D``) or "auto".
    The stored ``relative_position_index`` buffers are not loaded but must equal the index of
    ``cfg.window_size``. Raises :class:`swinref.WeightsError` listing every missing, unexpected and
    mis-shaped entry, each under its stored name. dtype: None keeps the stored dtype,
    "float32"/"float64" cast.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r} for Video Swin; expected one of {', '.join(SOURCES)}")
    arrays = host_arrays(state_dict)
    layout = detect_layout(arrays) if source == "auto" else source
    index = np.asarray(relative_position_index(cfg.window_size, xp=backend.get_namespace("numpy")))
    renamed: dict[str, np.ndarray] = {}
    labels: dict[str, str] = {}  # official name -> stored name, for messages
    problems = []
    for name, array in arrays.items():
        if name.endswith("relative_position_index"):
            if array.shape != index.shape or not np.array_equal(array, index):
                problems.append(f"{name}: stored index differs from window {cfg.window_size}'s")
            continue
        ours = _to_official(name, cfg, layout)
        renamed[ours] = array
        labels[ours] = name
    where = f" (layout {layout!r}, detected from its names)" if source == "auto" else ""
    hints = []
    if layout != detect_layout(arrays):
        hints.append(f"the names look like the {detect_layout(arrays)!r} layout: pass source='auto'")
    return check_state_dict(
        renamed,
        param_shapes(cfg),
        dtype=dtype,
        labels=labels,
        problems=problems,
        hints=hints,
        title=f"state dict{where} does not match the video config:",
    )


def export_state_dict(
    params: Mapping[str, Any], cfg: VideoSwinConfig, *, layout: str = "official", buffers: bool = True
) -> dict[str, np.ndarray]:
    """Params (checked against ``cfg``) in ``layout``'s names; with ``buffers`` also every block's
    ``relative_position_index``, as that layout's model saves it, so it loads with ``strict=True``."""
    _check_layout(layout)
    checked = convert_state_dict(params, cfg, source="official")
    out = {layout_name(name, cfg, layout): value for name, value in checked.items()}
    if buffers:
        out.update(index_buffers(cfg, layout))
    return out
