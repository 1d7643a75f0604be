"""Language-neutral test vectors for Swin ports, and the command that checks a port against them.

``swinref vectors --out DIR`` writes a suite: one small safetensors file per case plus
``manifest.json``. A case is one component called once (a window partition, a shifted block, a
whole small model); its file holds everything a port needs to call its own version of it:

    tensors   ``inputs/<name>``    the call's array arguments (e.g. ``inputs/x``, ``inputs/mask``)
              ``params/<name>``    the component's parameters under checkpoint names
                                   (``params/qkv.weight``, ``params/attn.relative_position_bias_table``)
              ``outputs/<name>``   the expected results (``outputs/y``, ``outputs/logits``, ...)
    metadata  safetensors metadata key ``swinref``: a JSON object with the case name, component,
              the swinref function it exercises, its non-array arguments (window, shift, heads,
              semantics, ...), dtype, tolerance and the reason for that tolerance.

Values come from ``numpy.random.default_rng(seed)`` with a per-case seed (CRC-32 of the case
name); the float32 variant of a case holds the float64 values rounded to float32. Expected outputs
are computed in float64 from exactly the stored inputs and params (upcast when float32) and then
rounded to the case dtype, so they are the correctly rounded answer, not one float32 evaluation.

``swinref verify EXPECTED ACTUAL`` reads a port's outputs written in the same layout (same file
names, same ``outputs/`` names; ``inputs/`` and ``params/`` may be left out) and checks each
output tensor against the case's tolerance, ``|expected - actual| <= atol + rtol * |expected|``.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import math
import os
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._version import __version__
from ..artifacts.fileio import (
    GoldenFileError,
    InputFileError,
    OutputExistsError,
    atomic_write,
    inside,
    read_regular,
    read_safetensors_file,
)
from ..artifacts.golden import compare_arrays
from ..core import backend, numerics, windows
from ..models import v1, v2

SUITE_FORMAT = "swinref-vectors"
SUITE_VERSION = 2  # 2: case files name their definition in words, not by module path
READABLE_SUITE_VERSIONS = (1, 2)  # version 1 files differ only in the informational 'function' field
MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = 64 << 20  # the suite manifest is about 0.2 MiB
MAX_CASE_BYTES = 1 << 30  # case files are kilobytes; a port output file may hold bigger tensors
REPORT_FORMAT = "swinref-verify-report"
METADATA_KEY = "swinref"
ROLES = ("inputs", "params", "outputs")
DTYPES = ("float64", "float32")

# ----- tolerances ------------------------------------------------------------------------------
# |expected - actual| <= atol + rtol * |expected|, per output tensor of a case.
EXACT = (0.0, 0.0, "pure data movement, integer arithmetic or a constant fill: every port gets the same bits")
F64 = (
    1e-10,
    0.0,
    "float64: ports differ by summation order and erf/exp implementations, "
    "about 1e-15 on values of order 1 (1e-14 measured on swin_t)",
)
F32 = (
    1e-5,
    1e-5,
    "float32 evaluation against the correctly rounded result: values of order 1 "
    "carry a few float32 rounding errors (eps 1.2e-7) per operation, ~1e-6 measured",
)
F32_DEEP = (
    1e-4,
    1e-5,
    "float32 through several blocks (or cosine logits scaled by up to 100): "
    "rounding errors add up across layers, ~1e-5 measured at most",
)


@dataclass(frozen=True)
class Case:
    """One test vector: a component called once with fixed arguments and seeded arrays."""

    name: str
    component: str
    args: dict[str, Any]
    exact: bool = False  # data movement / integer results: tolerance 0 in every dtype
    deep: bool = False  # several layers: the wider float32 tolerance
    int_only: bool = False  # no floating-point tensor at all: written once, dtype int64

    @property
    def seed(self) -> int:
        return zlib.crc32(self.name.encode())

    def dtypes(self, wanted: tuple[str, ...]) -> tuple[str, ...]:
        return ("int64",) if self.int_only else wanted

    def file_name(self, dtype: str) -> str:
        return f"{self.name}.safetensors" if self.int_only else f"{self.name}.{dtype}.safetensors"

    def tolerance(self, dtype: str) -> dict[str, Any]:
        atol, rtol, why = (
            EXACT
            if self.exact or self.int_only
            else (F64 if dtype == "float64" else F32_DEEP if self.deep else F32)
        )
        return {"atol": atol, "rtol": rtol, "why": why}


# ----- seeded values ---------------------------------------------------------------------------
def _linear_weight(rng, shape):
    return rng.standard_normal(shape) / math.sqrt(math.prod(shape[1:]))  # N(0, 1/fan_in)


def fill_param(rng: np.random.Generator, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """A non-trivial value for a parameter, chosen by its checkpoint name.

    Unlike timm's initialisation (zero biases, unit norms, tables of std 0.02), every entry
    matters here, so a port that drops a bias or a table is caught.
    """
    leaf = name.rsplit(".", 1)[-1]
    if name.endswith("relative_position_bias_table"):
        return 0.5 * rng.standard_normal(shape)
    if name.endswith("logit_scale"):  # the first head always above the clamp at log(100)
        scale = rng.uniform(math.log(2.0), math.log(100.0), size=shape)
        scale.flat[0] = math.log(200.0)
        return scale
    owner = name.split(".")[-2] if "." in name else ""
    if owner.startswith("norm"):  # LayerNorm: weight near 1, bias near 0
        return (1.0 if leaf == "weight" else 0.0) + 0.1 * rng.standard_normal(shape)
    if leaf == "bias" or name.endswith(("q_bias", "v_bias")):
        return 0.1 * rng.standard_normal(shape)
    return _linear_weight(rng, shape)


def _params(rng, shapes: Mapping[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    return {n: fill_param(rng, n, tuple(s)) for n, s in shapes.items()}


def _attn_shapes(C: int, nH: int, window, prefix: str = "") -> dict[str, tuple[int, ...]]:
    Mh, Mw = window
    return {
        f"{prefix}qkv.weight": (3 * C, C),
        f"{prefix}qkv.bias": (3 * C,),
        f"{prefix}relative_position_bias_table": ((2 * Mh - 1) * (2 * Mw - 1), nH),
        f"{prefix}proj.weight": (C, C),
        f"{prefix}proj.bias": (C,),
    }


def _block_shapes(C: int, nH: int, window, hidden: int) -> dict[str, tuple[int, ...]]:
    return {
        "norm1.weight": (C,),
        "norm1.bias": (C,),
        **_attn_shapes(C, nH, window, "attn."),
        "norm2.weight": (C,),
        "norm2.bias": (C,),
        "mlp.fc1.weight": (hidden, C),
        "mlp.fc1.bias": (hidden,),
        "mlp.fc2.weight": (C, hidden),
        "mlp.fc2.bias": (C,),
    }


def _v2_attn_shapes(C: int, nH: int, prefix: str = "") -> dict[str, tuple[int, ...]]:
    return {
        f"{prefix}qkv.weight": (3 * C, C),
        f"{prefix}q_bias": (C,),
        f"{prefix}v_bias": (C,),
        f"{prefix}logit_scale": (nH, 1, 1),
        **_cpb_shapes(nH, prefix),
        f"{prefix}proj.weight": (C, C),
        f"{prefix}proj.bias": (C,),
    }


def _cpb_shapes(nH: int, prefix: str = "") -> dict[str, tuple[int, ...]]:
    return {
        f"{prefix}cpb_mlp.0.weight": (v2.CPB_HIDDEN, 2),
        f"{prefix}cpb_mlp.0.bias": (v2.CPB_HIDDEN,),
        f"{prefix}cpb_mlp.2.weight": (nH, v2.CPB_HIDDEN),
    }


def _v2_block_shapes(C: int, nH: int, hidden: int) -> dict[str, tuple[int, ...]]:
    return {
        **_v2_attn_shapes(C, nH, "attn."),
        "norm1.weight": (C,),
        "norm1.bias": (C,),
        "mlp.fc1.weight": (hidden, C),
        "mlp.fc1.bias": (hidden,),
        "mlp.fc2.weight": (C, hidden),
        "mlp.fc2.bias": (C,),
        "norm2.weight": (C,),
        "norm2.bias": (C,),
    }


def _v1_config(args: Mapping[str, Any]):
    return v1.SwinConfig.from_dict(args["config"])


def _stage_param_shapes(cfg, stage: int) -> dict[str, tuple[int, ...]]:
    prefix = f"layers.{stage}."
    return {n: s for n, s in v1.param_shapes(cfg).items() if n.startswith(prefix)}


# ----- components: seeded arrays in, swinref results out -------------------------------------
# make(case, rng) -> (inputs, params) in float64; run(args, inputs, params, xp) -> outputs.
def _make_x(shape_key: str = "shape"):
    return lambda c, rng: ({"x": rng.standard_normal(tuple(c.args[shape_key]))}, {})


def _t(v) -> tuple:
    return tuple(v) if isinstance(v, (list, tuple)) else (v, v)


def _run_patch_embed(a, i, p, xp):
    return {"y": v1.patch_embed(p, i["x"], patch_size=a["patch_size"], patch_norm=a["patch_norm"], xp=xp)}


def _make_patch_embed(c, rng):
    a = c.args
    B, Cin, H, W = a["shape"]
    C, P = a["embed_dim"], a["patch_size"]
    shapes = {"proj.weight": (C, Cin, P, P), "proj.bias": (C,)}
    if a["patch_norm"]:
        shapes.update({"norm.weight": (C,), "norm.bias": (C,)})
    return {"x": rng.standard_normal((B, Cin, H, W))}, _params(rng, shapes)


def _make_layer_norm(c, rng):
    C = c.args["shape"][-1]
    x = c.args.get("scale", 1.0) * rng.standard_normal(tuple(c.args["shape"]))
    return {"x": x}, _params(rng, {"norm.weight": (C,), "norm.bias": (C,)})


def _run_layer_norm(a, i, p, xp):
    return {"y": numerics.layer_norm(i["x"], p["norm.weight"], p["norm.bias"], eps=a["eps"], xp=xp)}


def _make_gelu(c, rng):
    edges = np.linspace(-10.0, 10.0, 81)  # the tails (erf saturates) and the steep part near 0
    return {"x": np.concatenate([edges, 3.0 * rng.standard_normal(175)]).reshape(4, 64)}, {}


def _run_gelu(a, i, p, xp):
    return {"y": numerics.gelu(i["x"], xp=xp)}


def _run_partition(a, i, p, xp):
    return {"windows": windows.window_partition(i["x"], _t(a["window"]), xp=xp)}


def _make_reverse(c, rng):
    B, H, W, C = c.args["shape"]
    Mh, Mw = c.args["window"]
    return {"windows": rng.standard_normal((B * (H // Mh) * (W // Mw), Mh * Mw, C))}, {}


def _run_reverse(a, i, p, xp):
    _, H, W, _ = a["shape"]
    return {"x": windows.window_reverse(i["windows"], _t(a["window"]), H, W, xp=xp)}


def _run_rel_index(a, i, p, xp):
    return {"index": windows.relative_position_index(_t(a["window"]), xp=xp)}


def _make_rel_bias(c, rng):
    Mh, Mw = c.args["window"]
    shapes = {"relative_position_bias_table": ((2 * Mh - 1) * (2 * Mw - 1), c.args["num_heads"])}
    return {}, _params(rng, shapes)


def _run_rel_bias(a, i, p, xp):
    return {"bias": v1.relative_position_bias(p["relative_position_bias_table"], _t(a["window"]), xp=xp)}


def _run_mask(a, i, p, xp, *, dtype):
    size, window, shift = _t(a["size"]), _t(a["window"]), _t(a["shift"])
    return {
        "region_ids": windows.region_ids(size, window, shift, xp=xp),
        "mask": windows.shift_mask(size, window, shift, xp=xp, dtype=dtype),
    }


def _attention_inputs(c, rng) -> dict:
    """x (B_, N, C) drawn from rng, plus the shift mask when the case names one."""
    a = c.args
    inputs = {"x": rng.standard_normal(tuple(a["shape"]))}
    if a.get("mask_from"):
        m = a["mask_from"]
        inputs["mask"] = np.asarray(
            windows.shift_mask(
                _t(m["size"]), _t(a["window"]), _t(m["shift"]), xp=backend.get_namespace("numpy")
            )
        )
    return inputs


def _make_attention(c, rng):
    a = c.args
    inputs = _attention_inputs(c, rng)
    return inputs, _params(rng, _attn_shapes(a["shape"][2], a["num_heads"], a["window"]))


def _run_attention(a, i, p, xp):
    return {
        "y": v1.window_attention(
            p, i["x"], num_heads=a["num_heads"], window=_t(a["window"]), mask=i.get("mask"), xp=xp
        )
    }


def _make_block(c, rng):
    a = c.args
    C = a["shape"][-1]
    return (
        {"x": rng.standard_normal(tuple(a["shape"]))},
        _params(rng, _block_shapes(C, a["num_heads"], a["window"], a["mlp_hidden"])),
    )


def _run_block(a, i, p, xp):
    return {
        "y": v1.swin_block(
            p,
            i["x"],
            num_heads=a["num_heads"],
            window=_t(a["window"]),
            shift=_t(a["shift"]),
            roll_first=a["roll_first"],
            xp=xp,
        )
    }


def _make_merging(c, rng):
    C = c.args["shape"][-1]
    shapes = {"norm.weight": (4 * C,), "norm.bias": (4 * C,), "reduction.weight": (2 * C, 4 * C)}
    return {"x": rng.standard_normal(tuple(c.args["shape"]))}, _params(rng, shapes)


def _run_merging(a, i, p, xp):
    return {"y": v1.patch_merging(p, i["x"], xp=xp)}


def _make_stage(c, rng):
    cfg, i = _v1_config(c.args), c.args["stage"]
    h, w = v1.config_grid(cfg, max(i - 1, 0))  # the grid this stage receives
    C = cfg.stage_dim(i - 1) if i > 0 else cfg.embed_dim
    x = rng.standard_normal((c.args["batch"], h, w, C))
    return {"x": x}, _params(rng, _stage_param_shapes(cfg, i))


def _run_stage(a, i, p, xp):
    return {"y": v1.run_stage(p, i["x"], _v1_config(a), a["stage"], xp=xp)}


def _make_model(c, rng):
    cfg = _v1_config(c.args)
    H, W = cfg.image_hw
    x = rng.standard_normal((c.args["batch"], cfg.in_chans, H, W))
    return {"x": x}, _params(rng, v1.param_shapes(cfg))


def _run_model(a, i, p, xp):
    _, inter = v1.forward(p, i["x"], _v1_config(a), return_intermediates=True)
    return dict(inter)  # logits and every named intermediate


def _make_cpb(c, rng):
    return {}, _params(rng, _cpb_shapes(c.args["num_heads"]))


def _run_cpb(a, i, p, xp, *, dtype):
    window, pre = _t(a["window"]), _t(a["pretrained_window"])
    coords = xp.astype(
        v2.relative_coords_table(window, pre, xp=xp), dtype
    )  # built in float32, as in every port
    index = windows.relative_position_index(window, xp=xp)
    bias = v2.continuous_position_bias(p, coords, index, num_heads=a["num_heads"], xp=xp)
    return {"coords": coords, "bias": bias}


def _make_v2_attention(c, rng):
    a = c.args
    inputs = _attention_inputs(c, rng)
    return inputs, _params(rng, _v2_attn_shapes(a["shape"][2], a["num_heads"]))


def _run_v2_attention(a, i, p, xp):
    return {
        "y": v2.window_attention(
            p,
            i["x"],
            num_heads=a["num_heads"],
            window=_t(a["window"]),
            pretrained_window=_t(a["pretrained_window"]),
            mask=i.get("mask"),
            xp=xp,
        )
    }


def _make_v2_block(c, rng):
    a = c.args
    C = a["shape"][-1]
    return (
        {"x": rng.standard_normal(tuple(a["shape"]))},
        _params(rng, _v2_block_shapes(C, a["num_heads"], a["mlp_hidden"])),
    )


def _run_v2_block(a, i, p, xp):
    geometry = v2.BlockGeometry(
        _t(a["window"]), _t(a["shift"]), roll_first=a["roll_first"], mask_repeats=a["mask_repeats"]
    )
    return {
        "y": v2.swin_v2_block(
            p,
            i["x"],
            num_heads=a["num_heads"],
            geometry=geometry,
            pretrained_window=_t(a["pretrained_window"]),
            xp=xp,
        )
    }


def _run_video_partition(a, i, p, xp):
    return {"windows": windows.window_partition(i["x"], tuple(a["window"]), xp=xp)}


def _make_video_reverse(c, rng):
    B, D, H, W, C = c.args["shape"]
    Md, Mh, Mw = c.args["window"]
    nW = (D // Md) * (H // Mh) * (W // Mw)
    return {"windows": rng.standard_normal((B * nW, Md * Mh * Mw, C))}, {}


def _run_video_reverse(a, i, p, xp):
    _, D, H, W, _ = a["shape"]
    return {"x": windows.window_reverse(i["windows"], tuple(a["window"]), D, H, W, xp=xp)}


def _run_video_mask(a, i, p, xp, *, dtype):
    size, window, shift = tuple(a["size"]), tuple(a["window"]), tuple(a["shift"])
    return {
        "region_ids": windows.region_ids(size, window, shift, xp=xp),
        "mask": windows.shift_mask(size, window, shift, xp=xp, dtype=dtype),
    }


def _run_video_index(a, i, p, xp):
    return {"index": windows.relative_position_index(tuple(a["window"]), xp=xp)}


@dataclass(frozen=True)
class Component:
    function: str  # what the case computes, in words (recorded as the case's 'definition')
    make: Callable
    run: Callable
    needs_dtype: bool = False  # run(..., dtype=) builds a constant of the case dtype (masks, coords)


_NO_ARRAYS: Callable[..., tuple[dict[str, Any], dict[str, Any]]] = lambda c, rng: ({}, {})  # noqa: E731

COMPONENTS: dict[str, Component] = {
    "patch_embed": Component(
        "V1 patch embedding: conv with kernel = stride = P as patch matmul, then LayerNorm",
        _make_patch_embed,
        _run_patch_embed,
    ),
    "layer_norm": Component(
        "LayerNorm over the last axis, biased variance", _make_layer_norm, _run_layer_norm
    ),
    "gelu": Component("exact erf GELU", _make_gelu, _run_gelu),
    "window_partition": Component("window partition, row-major, batch outermost", _make_x(), _run_partition),
    "window_reverse": Component("window reverse (inverse of the partition)", _make_reverse, _run_reverse),
    "relative_position_index": Component("relative position index of one window", _NO_ARRAYS, _run_rel_index),
    "relative_position_bias": Component(
        "relative position bias gathered from the table, (nH, N, N)", _make_rel_bias, _run_rel_bias
    ),
    "shift_mask": Component(
        "shifted-window region ids and the 0 / -100 mask", _NO_ARRAYS, _run_mask, needs_dtype=True
    ),
    "window_attention": Component(
        "V1 window attention with relative position bias and optional mask", _make_attention, _run_attention
    ),
    "block": Component("V1 pre-norm block: (S)W-MSA and MLP with residuals", _make_block, _run_block),
    "patch_merging": Component(
        "V1 patch merging: 2x2 space-to-depth, LayerNorm(4C), Linear(4C -> 2C)", _make_merging, _run_merging
    ),
    "stage": Component(
        "V1 stage: merge, then its blocks with the clamped window and alternating shift",
        _make_stage,
        _run_stage,
    ),
    "model": Component("V1 forward with every named intermediate", _make_model, _run_model),
    "v2_continuous_position_bias": Component(
        "V2 log-spaced coordinates and continuous position bias (16 sigmoid of the cpb MLP)",
        _make_cpb,
        _run_cpb,
        needs_dtype=True,
    ),
    "v2_window_attention": Component(
        "V2 scaled cosine window attention", _make_v2_attention, _run_v2_attention
    ),
    "v2_block": Component("V2 res-post-norm block", _make_v2_block, _run_v2_block),
    "video_window_partition": Component("3-D window partition", _make_x(), _run_video_partition),
    "video_window_reverse": Component("3-D window reverse", _make_video_reverse, _run_video_reverse),
    "video_shift_mask": Component(
        "3-D region ids (27 regions) and the 0 / -100 mask", _NO_ARRAYS, _run_video_mask, needs_dtype=True
    ),
    "video_relative_position_index": Component("3-D relative position index", _NO_ARRAYS, _run_video_index),
}


def _model_config(**kw) -> dict[str, Any]:
    return v1.SwinConfig(**kw).to_dict()


# Two stages on an 8x8 token grid, window 4: shifted blocks in stage 0, and in stage 1 the grid
# equals the window (the clamp boundary: window 4, shift 0).
_SMALL = dict(
    img_size=32, patch_size=4, embed_dim=16, depths=(2, 2), num_heads=(2, 4), window_size=4, num_classes=10
)
# A 6x10 token grid, window 4: padding in stage 0; stage 1 (3x5) clamps the rows only.
_WIDE = dict(
    img_size=(24, 40),
    patch_size=4,
    embed_dim=8,
    depths=(2, 2),
    num_heads=(2, 2),
    window_size=4,
    num_classes=5,
)


def _cases() -> list[Case]:
    c = Case
    mask_8 = {"size": [8, 8], "shift": [2, 2]}
    return [
        c(
            "patch_embed_norm",
            "patch_embed",
            {"shape": [1, 3, 8, 8], "patch_size": 4, "embed_dim": 8, "patch_norm": True},
        ),
        c(
            "patch_embed_nonsquare_b2",
            "patch_embed",
            {"shape": [2, 2, 6, 10], "patch_size": 2, "embed_dim": 4, "patch_norm": False},
        ),
        c("layer_norm", "layer_norm", {"shape": [2, 3, 16], "eps": 1e-5}),
        # variance ~1e-5, the size of eps: a port with another eps is off by tens of percent
        c("layer_norm_small_variance", "layer_norm", {"shape": [4, 16], "eps": 1e-5, "scale": 3e-3}),
        c("gelu", "gelu", {"shape": [4, 64], "form": "exact erf, not the tanh approximation"}),
        c(
            "window_partition_8x8_w4_b2",
            "window_partition",
            {"shape": [2, 8, 8, 3], "window": [4, 4]},
            exact=True,
        ),
        c(
            "window_partition_6x9_w3",
            "window_partition",
            {"shape": [1, 6, 9, 2], "window": [3, 3]},
            exact=True,
        ),
        c(
            "window_partition_4x9_w2x3",
            "window_partition",
            {"shape": [1, 4, 9, 2], "window": [2, 3]},
            exact=True,
        ),
        c(
            "window_partition_one_window",
            "window_partition",
            {"shape": [2, 4, 4, 2], "window": [4, 4]},
            exact=True,
        ),
        c(
            "window_reverse_8x8_w4_b2",
            "window_reverse",
            {"shape": [2, 8, 8, 3], "window": [4, 4]},
            exact=True,
        ),
        c("window_reverse_6x9_w3", "window_reverse", {"shape": [1, 6, 9, 2], "window": [3, 3]}, exact=True),
        c("window_reverse_4x9_w2x3", "window_reverse", {"shape": [1, 4, 9, 2], "window": [2, 3]}, exact=True),
        c(
            "window_reverse_one_window",
            "window_reverse",
            {"shape": [2, 4, 4, 2], "window": [4, 4]},
            exact=True,
        ),
        c("relative_position_index_1x1", "relative_position_index", {"window": [1, 1]}, int_only=True),
        c("relative_position_index_3x3", "relative_position_index", {"window": [3, 3]}, int_only=True),
        c("relative_position_index_2x3", "relative_position_index", {"window": [2, 3]}, int_only=True),
        c("relative_position_index_7x7", "relative_position_index", {"window": [7, 7]}, int_only=True),
        c(
            "relative_position_bias_3x3",
            "relative_position_bias",
            {"window": [3, 3], "num_heads": 2},
            exact=True,
        ),
        c(
            "relative_position_bias_2x3",
            "relative_position_bias",
            {"window": [2, 3], "num_heads": 3},
            exact=True,
        ),
        c("shift_mask_8x8_w4_s2", "shift_mask", {"window": [4, 4], **mask_8}, exact=True),
        c(
            "shift_mask_8x8_w4_s0",
            "shift_mask",
            {"size": [8, 8], "window": [4, 4], "shift": [0, 0]},
            exact=True,
        ),
        c(
            "shift_mask_6x9_w3_s1",
            "shift_mask",
            {"size": [6, 9], "window": [3, 3], "shift": [1, 1]},
            exact=True,
        ),
        c(
            "shift_mask_4x8_w2x4_s1x2",
            "shift_mask",
            {"size": [4, 8], "window": [2, 4], "shift": [1, 2]},
            exact=True,
        ),
        c(
            "shift_mask_one_window",
            "shift_mask",
            {"size": [4, 4], "window": [4, 4], "shift": [2, 2]},
            exact=True,
        ),
        c("window_attention", "window_attention", {"shape": [4, 9, 8], "window": [3, 3], "num_heads": 2}),
        c(
            "window_attention_masked_b2",
            "window_attention",
            {
                "shape": [8, 16, 8],
                "window": [4, 4],
                "num_heads": 2,
                "mask_from": mask_8,
                "mask": "inputs/mask is shift_mask(size, window, shift) of mask_from; batch 2 x 4 windows",
            },
        ),
        c("window_attention_2x3", "window_attention", {"shape": [3, 6, 6], "window": [2, 3], "num_heads": 3}),
        c(
            "block_shift0",
            "block",
            {
                "shape": [1, 8, 8, 8],
                "window": [4, 4],
                "shift": [0, 0],
                "num_heads": 2,
                "mlp_hidden": 32,
                "roll_first": True,
            },
        ),
        c(
            "block_shift2_b2",
            "block",
            {
                "shape": [2, 8, 8, 8],
                "window": [4, 4],
                "shift": [2, 2],
                "num_heads": 2,
                "mlp_hidden": 32,
                "roll_first": True,
            },
        ),
        c(
            "block_pad_roll_then_pad",
            "block",
            {
                "shape": [1, 6, 5, 8],
                "window": [4, 4],
                "shift": [2, 2],
                "num_heads": 2,
                "mlp_hidden": 32,
                "roll_first": True,
                "order": "timm: roll the 6x5 grid, then pad to 8x8",
            },
        ),
        c(
            "block_pad_pad_then_roll",
            "block",
            {
                "shape": [1, 6, 5, 8],
                "window": [4, 4],
                "shift": [2, 2],
                "num_heads": 2,
                "mlp_hidden": 32,
                "roll_first": False,
                "order": "torchvision/transformers: pad to 8x8, then roll",
            },
        ),
        c(
            "block_nonsquare_w2x3_b2",
            "block",
            {
                "shape": [2, 4, 9, 6],
                "window": [2, 3],
                "shift": [1, 1],
                "num_heads": 3,
                "mlp_hidden": 12,
                "roll_first": True,
            },
        ),
        c(
            "block_one_window",
            "block",
            {
                "shape": [1, 4, 4, 8],
                "window": [4, 4],
                "shift": [0, 0],
                "num_heads": 2,
                "mlp_hidden": 32,
                "roll_first": True,
            },
        ),
        c("patch_merging_b2", "patch_merging", {"shape": [2, 4, 6, 4]}),
        c(
            "patch_merging_odd",
            "patch_merging",
            {"shape": [1, 5, 3, 4], "padding": "odd H, W zero-padded at the bottom/right"},
        ),
        c("stage_shifted", "stage", {"config": _model_config(**_SMALL), "stage": 0, "batch": 1}),
        c("stage_clamped", "stage", {"config": _model_config(**_SMALL), "stage": 1, "batch": 2}),
        c(
            "stage_padded_torchvision",
            "stage",
            {"config": _model_config(**_WIDE, semantics="torchvision"), "stage": 0, "batch": 1},
        ),
        c("model_v1_small_b2", "model", {"config": _model_config(**_SMALL), "batch": 2}, deep=True),
        c("model_v1_nonsquare_padded", "model", {"config": _model_config(**_WIDE), "batch": 1}, deep=True),
        c(
            "v2_cpb_4x4",
            "v2_continuous_position_bias",
            {"window": [4, 4], "pretrained_window": [0, 0], "num_heads": 2},
        ),
        c(
            "v2_cpb_2x3_pretrained_4x4",
            "v2_continuous_position_bias",
            {"window": [2, 3], "pretrained_window": [4, 4], "num_heads": 3},
        ),
        c(
            "v2_window_attention",
            "v2_window_attention",
            {"shape": [2, 16, 8], "window": [4, 4], "pretrained_window": [0, 0], "num_heads": 2},
            deep=True,
        ),
        c(
            "v2_window_attention_masked_b2",
            "v2_window_attention",
            {
                "shape": [8, 16, 8],
                "window": [4, 4],
                "pretrained_window": [0, 0],
                "num_heads": 2,
                "mask_from": mask_8,
            },
            deep=True,
        ),
        c(
            "v2_block_shift0",
            "v2_block",
            {
                "shape": [1, 8, 8, 8],
                "window": [4, 4],
                "shift": [0, 0],
                "pretrained_window": [0, 0],
                "num_heads": 2,
                "mlp_hidden": 32,
                "roll_first": True,
                "mask_repeats": 1,
            },
            deep=True,
        ),
        c(
            "v2_block_shift2_padded",
            "v2_block",
            {
                "shape": [2, 6, 7, 8],
                "window": [4, 4],
                "shift": [2, 2],
                "pretrained_window": [0, 0],
                "num_heads": 2,
                "mlp_hidden": 32,
                "roll_first": True,
                "mask_repeats": 1,
            },
            deep=True,
        ),
        c(
            "video_window_partition",
            "video_window_partition",
            {"shape": [1, 4, 4, 6, 2], "window": [2, 2, 3]},
            exact=True,
        ),
        c(
            "video_window_reverse",
            "video_window_reverse",
            {"shape": [1, 4, 4, 6, 2], "window": [2, 2, 3]},
            exact=True,
        ),
        c(
            "video_shift_mask",
            "video_shift_mask",
            {"size": [4, 4, 6], "window": [2, 2, 3], "shift": [1, 1, 1]},
            exact=True,
        ),
        c(
            "video_relative_position_index_2x2x2",
            "video_relative_position_index",
            {"window": [2, 2, 2]},
            int_only=True,
        ),
        c(
            "video_relative_position_index_2x3x3",
            "video_relative_position_index",
            {"window": [2, 3, 3]},
            int_only=True,
        ),
    ]


CASES: tuple[Case, ...] = tuple(_cases())


# ----- evaluation ------------------------------------------------------------------------------
def evaluate(
    case: Case,
    inputs: Mapping[str, np.ndarray],
    params: Mapping[str, np.ndarray],
    *,
    dtype: str,
    compute_dtype: str = "float64",
) -> dict[str, np.ndarray]:
    """The case's outputs for the given arrays, as NumPy arrays of the case ``dtype``.

    Float arrays are cast to ``compute_dtype`` before the call (float64: the reference; float32:
    what a float32 port computes) and the results rounded to ``dtype``; integer results keep int64.
    """
    xp = backend.get_namespace("numpy")
    work = np.float64 if compute_dtype == "float64" else np.float32

    def cast(d):
        return {k: (v.astype(work) if v.dtype.kind == "f" else v) for k, v in d.items()}

    comp = COMPONENTS[case.component]
    kw = {"dtype": work} if comp.needs_dtype else {}
    out = comp.run(case.args, cast(inputs), cast(params), xp, **kw)
    result = {}
    for k, v in out.items():
        v = np.asarray(backend.to_numpy(v))
        if v.dtype.kind == "f" and dtype in DTYPES:
            v = v.astype(dtype)
        result[k] = np.ascontiguousarray(v)
    return result


def case_arrays(case: Case, dtype: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The seeded inputs and params of ``case``, rounded to ``dtype`` (float64 values for int cases)."""
    inputs, params = COMPONENTS[case.component].make(case, np.random.default_rng(case.seed))

    def cast(d):
        return {
            k: np.ascontiguousarray(np.asarray(v, dtype=dtype if dtype in DTYPES else None))
            for k, v in d.items()
        }

    return cast(inputs), cast(params)


def case_tensors(case: Case, dtype: str) -> dict[str, np.ndarray]:
    """Every tensor of a case file: inputs/, params/ and outputs/ names."""
    inputs, params = case_arrays(case, dtype)
    outputs = evaluate(case, inputs, params, dtype=dtype)
    tensors = {f"inputs/{k}": v for k, v in inputs.items()}
    tensors.update({f"params/{k}": v for k, v in params.items()})
    tensors.update({f"outputs/{k}": v for k, v in outputs.items()})
    return tensors


def case_metadata(case: Case, dtype: str, tensors: Mapping[str, np.ndarray]) -> dict[str, Any]:
    return {
        "format": SUITE_FORMAT,
        "suite_version": SUITE_VERSION,
        "swinref_version": __version__,
        "case": case.name,
        "component": case.component,
        "definition": COMPONENTS[case.component].function,
        "args": case.args,
        "dtype": dtype,
        "seed": case.seed,
        "tolerance": case.tolerance(dtype),
        "tensors": {
            role: [n.split("/", 1)[1] for n in tensors if n.startswith(role + "/")] for role in ROLES
        },
    }


def _encode(tensors: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> bytes:
    from safetensors.numpy import save  # noqa: PLC0415

    header = json.dumps(meta, sort_keys=True, separators=(",", ":"))
    return save(dict(tensors), metadata={METADATA_KEY: header})


def write_suite(
    out: str | os.PathLike,
    *,
    dtypes: tuple[str, ...] = DTYPES,
    cases: tuple[Case, ...] = CASES,
    progress=None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write every case file and ``manifest.json`` into ``out``; returns the manifest.

    Every file is written atomically (:func:`swinref.artifacts.fileio.atomic_write`), the manifest
    last, so a suite whose manifest exists is whole. A directory that already holds a suite
    manifest or any of the case files is refused unless ``overwrite=True``, before anything is
    written. ``progress(description)`` is called once per file written, when given.
    """
    bad = [d for d in dtypes if d not in DTYPES]
    if bad or not dtypes:
        raise ValueError(f"dtypes must be a non-empty subset of {list(DTYPES)}, got {list(dtypes)}")
    out = os.fspath(out)
    if os.path.lexists(out) and not os.path.isdir(out):
        raise NotADirectoryError(f"suite directory {out} exists and is not a directory")
    os.makedirs(out, exist_ok=True)
    if not overwrite:
        names = [MANIFEST] + [c.file_name(d) for c in cases for d in c.dtypes(dtypes)]
        present = [n for n in names if os.path.lexists(os.path.join(out, n))]
        if present:
            raise OutputExistsError(
                f"suite directory {out} already holds {_listed(present)}; "
                "overwrite it explicitly (--force) or choose an empty directory"
            )
    entries = []
    for case in cases:
        for dtype in case.dtypes(dtypes):
            tensors = case_tensors(case, dtype)
            meta = case_metadata(case, dtype, tensors)
            blob = _encode(tensors, meta)
            name = case.file_name(dtype)
            atomic_write(os.path.join(out, name), blob, overwrite=overwrite, what="case file")
            entries.append(
                {
                    "name": f"{case.name}.{dtype}" if not case.int_only else case.name,
                    "case": case.name,
                    "file": name,
                    "component": case.component,
                    "dtype": dtype,
                    "sha256": hashlib.sha256(blob).hexdigest(),
                    "bytes": len(blob),
                    "tolerance": meta["tolerance"],
                    "tensors": {
                        n: {"role": n.split("/", 1)[0], "shape": list(v.shape), "dtype": str(v.dtype)}
                        for n, v in tensors.items()
                    },
                }
            )
            if progress is not None:
                progress(name)
    manifest = {
        "format": SUITE_FORMAT,
        "suite_version": SUITE_VERSION,
        "swinref_version": __version__,
        "tolerance_rule": "|expected - actual| <= atol + rtol * |expected| per element",
        "cases": entries,
    }
    text = json.dumps(manifest, sort_keys=True, indent=1) + "\n"
    path = os.path.join(out, MANIFEST)
    atomic_write(path, text.encode("utf-8"), overwrite=overwrite, what="suite manifest")
    return manifest


def _listed(names: list[str]) -> str:
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more files" if len(names) > 3 else "")


# ----- reading ---------------------------------------------------------------------------------
class SuiteError(ValueError):
    """The expected suite itself is unusable: no manifest, or one that does not parse."""


def read_manifest(suite: str | os.PathLike) -> dict[str, Any]:
    path = os.path.join(os.fspath(suite), MANIFEST)
    if not os.path.isdir(os.fspath(suite)):
        raise SuiteError(f"expected suite directory not found: {os.fspath(suite)}")
    if not os.path.exists(path):
        raise SuiteError(
            f"{path} not found: the expected directory must hold a suite written by "
            "'swinref vectors --out DIR'"
        )
    try:
        manifest = json.loads(read_regular(path, what="suite manifest", max_bytes=MAX_MANIFEST_BYTES))
    except InputFileError as e:
        raise SuiteError(str(e)) from e
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SuiteError(f"{path} is not a readable JSON manifest: {e}") from e
    if not isinstance(manifest, dict) or manifest.get("format") != SUITE_FORMAT:
        raise SuiteError(
            f"{path} is not a {SUITE_FORMAT} manifest (its 'format' is "
            f"{manifest.get('format') if isinstance(manifest, dict) else None!r})"
        )
    if manifest.get("suite_version") not in READABLE_SUITE_VERSIONS:
        raise SuiteError(
            f"{path}: suite version {manifest.get('suite_version')!r} is not supported; "
            f"this swinref reads versions {', '.join(map(str, READABLE_SUITE_VERSIONS))}"
        )
    cases = manifest.get("cases")
    fields = ("name", "file", "component", "dtype", "sha256", "tolerance", "tensors")
    if not isinstance(cases, list) or not all(
        isinstance(c, dict) and all(k in c for k in fields) for c in cases
    ):
        raise SuiteError(f"{path}: 'cases' must be a list of objects with fields {list(fields)}")
    unsafe = [
        c["file"]
        for c in cases
        if not isinstance(c["file"], str)
        or os.path.basename(c["file"]) != c["file"]
        or c["file"] in ("", ".", "..")
    ]
    if unsafe:
        raise SuiteError(
            f"{path}: case file names must be plain names inside the suite directory, got {unsafe}"
        )
    for c in cases:
        problem = _entry_problem(c)
        if problem:
            raise SuiteError(f"{path}: case {c.get('name')!r}: {problem}")
    return manifest


def _entry_problem(c: Mapping[str, Any]) -> str | None:
    """What is wrong with a manifest case entry's types and tolerance, or None."""
    for key in ("name", "component", "dtype", "sha256"):
        if not isinstance(c[key], str):
            return f"{key!r} must be a string, got {type(c[key]).__name__}"
    tol = c["tolerance"]
    if not isinstance(tol, dict):
        return "'tolerance' must be an object with 'atol' and 'rtol'"
    for key in ("atol", "rtol"):
        v = tol.get(key)
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
            return f"tolerance {key!r} must be a finite number >= 0, got {v!r}"
    return None


def read_case_file(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Tensors and (possibly empty) metadata of a case file; GoldenFileError when unreadable."""
    path = os.fspath(path)
    try:  # clear messages for special, short, foreign and truncated files, read only when whole
        data, header = read_safetensors_file(path, what="case file", max_bytes=MAX_CASE_BYTES)
    except InputFileError as e:
        raise GoldenFileError(str(e)) from e
    return _case_from_bytes(data, header, path)


def _case_from_bytes(
    data: bytes, header: Mapping[str, Any], path: str
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    from safetensors.numpy import load  # noqa: PLC0415

    try:
        tensors = load(data)
    except Exception as e:  # safetensors raises its own error type for inconsistent headers
        raise GoldenFileError(f"{path}: cannot read its tensors: {type(e).__name__}: {e}") from e
    stored = (header.get("__metadata__") or {}).get(METADATA_KEY)
    try:
        meta = json.loads(stored) if stored else {}
    except json.JSONDecodeError as e:
        raise GoldenFileError(f"{path}: its {METADATA_KEY!r} metadata is not JSON ({e})") from e
    return dict(tensors), meta


def recompute(path: str | os.PathLike, *, compute_dtype: str = "float64") -> dict[str, np.ndarray]:
    """A case file's outputs recomputed by swinref from the file's own inputs, params and args."""
    tensors, meta = read_case_file(path)
    case = Case(meta["case"], meta["component"], meta["args"])
    pick = {
        role: {n.split("/", 1)[1]: v for n, v in tensors.items() if n.startswith(role + "/")}
        for role in ("inputs", "params")
    }
    return evaluate(case, pick["inputs"], pick["params"], dtype=meta["dtype"], compute_dtype=compute_dtype)


# ----- verification ----------------------------------------------------------------------------
def ulp_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise number of float32 values between a and b (0 for +0 and -0), as int64.

    The float32 bit patterns are mapped onto one monotonic integer line (negative floats
    mirrored below zero), so the distance counts representable values, across zero as well.
    """

    def line(x):
        bits = np.ascontiguousarray(x, dtype=np.float32).view(np.int32).astype(np.int64)
        return np.where(bits < 0, -(bits & 0x7FFFFFFF), bits)

    return np.abs(line(a) - line(b))


@dataclass
class TensorCheck:
    name: str  # output name without the "outputs/" prefix
    passed: bool
    kind: str  # "pass", "mismatch", "missing-tensor", "wrong-shape", "wrong-dtype"
    message: str = ""
    shape_expected: list[int] | None = None
    shape_actual: list[int] | None = None
    dtype_expected: str | None = None
    dtype_actual: str | None = None
    max_abs: float | None = None
    max_rel: float | None = None
    max_ulp: int | None = None


@dataclass
class CaseCheck:
    name: str
    file: str
    component: str
    dtype: str
    atol: float
    rtol: float
    tensors: list[TensorCheck] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (kind, message) of the whole case

    @property
    def passed(self) -> bool:
        return not self.problems and all(t.passed for t in self.tensors)

    def failures(self) -> list[tuple[str, str]]:
        return self.problems + [(t.kind, t.message) for t in self.tensors if not t.passed]


def _check_tensor(
    name: str, exp: np.ndarray, act: np.ndarray | None, atol: float, rtol: float
) -> TensorCheck:
    t = TensorCheck(
        name=name, passed=False, kind="pass", shape_expected=list(exp.shape), dtype_expected=str(exp.dtype)
    )
    if act is None:
        t.kind, t.message = "missing-tensor", f"outputs/{name} is missing from the actual file"
        return t
    t.shape_actual, t.dtype_actual = list(act.shape), str(act.dtype)
    if act.dtype != exp.dtype:
        t.kind = "wrong-dtype"
        t.message = f"outputs/{name} has dtype {act.dtype}, expected {exp.dtype}"
        return t
    if act.shape != exp.shape:
        t.kind = "wrong-shape"
        t.message = f"outputs/{name} has shape {list(act.shape)}, expected {list(exp.shape)}"
        return t
    c = compare_arrays(name, exp, act, atol=atol, rtol=rtol)
    t.max_abs, t.max_rel, t.passed = c.max_abs, c.max_rel, c.passed
    if exp.dtype == np.float32 and exp.size:
        t.max_ulp = int(ulp_distance(exp, act).max())
    if not c.passed:
        t.kind = "mismatch"
        t.message = (
            f"outputs/{name} differs by up to {c.max_abs:.3e} (rel {c.max_rel:.3e}) at index "
            f"{list(c.worst_index or ())}, allowed {atol:g} + {rtol:g} * |expected|"
        )
    return t


def verify(
    expected: str | os.PathLike, actual: str | os.PathLike, *, select: str | None = None
) -> list[CaseCheck]:
    """Check a port's outputs in ``actual`` against the suite in ``expected``, case by case.

    Raises :class:`SuiteError` when ``expected`` has no usable manifest; every other problem (a
    missing or unreadable actual file, a missing tensor, a wrong shape or dtype, values beyond
    tolerance, an expected file whose digest does not match the manifest) is a failed case.
    ``select``: a glob on case names (``"block_*"``) to check only some cases.
    """
    expected, actual = os.fspath(expected), os.fspath(actual)
    manifest = read_manifest(expected)
    if not os.path.isdir(actual):
        raise FileNotFoundError(f"actual directory not found: {actual}")
    results = []
    for entry in manifest["cases"]:
        if select and not fnmatch.fnmatchcase(entry["name"], select):
            continue
        tol = entry["tolerance"]
        check = CaseCheck(
            entry["name"],
            entry["file"],
            entry["component"],
            entry["dtype"],
            float(tol["atol"]),
            float(tol["rtol"]),
        )
        results.append(check)
        exp_path, act_path = os.path.join(expected, entry["file"]), os.path.join(actual, entry["file"])
        damaged = "the reference suite is damaged"
        if not os.path.lexists(exp_path):
            check.problems.append(
                ("expected-corrupt", f"the expected file {entry['file']} is missing: {damaged}")
            )
            continue
        if not inside(expected, exp_path):
            check.problems.append(
                ("expected-corrupt", f"the expected file {entry['file']} links outside the suite: refused")
            )
            continue
        try:
            data, header = read_safetensors_file(exp_path, what="expected file", max_bytes=MAX_CASE_BYTES)
            if hashlib.sha256(data).hexdigest() != entry["sha256"]:
                raise GoldenFileError(f"its sha256 differs from the manifest: {damaged}")
            exp_tensors, exp_meta = _case_from_bytes(data, header, exp_path)
            if exp_meta.get("tolerance") != tol:
                raise GoldenFileError(
                    f"its tolerance {exp_meta.get('tolerance')} differs from the manifest's {tol}: {damaged}"
                )
        except (GoldenFileError, InputFileError, OSError) as e:
            check.problems.append(("expected-corrupt", f"the expected file {entry['file']}: {e}"))
            continue
        if not os.path.exists(act_path):
            check.problems.append(("missing-file", f"{entry['file']} is missing from the actual directory"))
            continue
        try:
            act_tensors, _ = read_case_file(act_path)
        except (GoldenFileError, InputFileError, OSError) as e:
            check.problems.append(("corrupt-file", f"{entry['file']} cannot be read: {e}"))
            continue
        names = [
            n for n in (exp_meta.get("tensors") or {}).get("outputs", []) if f"outputs/{n}" in exp_tensors
        ]  # the component's own order (forward order)
        names += sorted(
            n.split("/", 1)[1]
            for n in exp_tensors
            if n.startswith("outputs/") and n.split("/", 1)[1] not in names
        )
        for name in names:
            check.tensors.append(
                _check_tensor(
                    name,
                    exp_tensors[f"outputs/{name}"],
                    act_tensors.get(f"outputs/{name}"),
                    check.atol,
                    check.rtol,
                )
            )
    return results


def _finite(v):
    return v if v is None or math.isfinite(v) else str(v)  # JSON has no infinity


def report_dict(results: list[CaseCheck], expected: str, actual: str) -> dict[str, Any]:
    failed = [r for r in results if not r.passed]
    return {
        "format": REPORT_FORMAT,
        "suite_version": SUITE_VERSION,
        "swinref_version": __version__,
        "expected": expected,
        "actual": actual,
        "passed": not failed,
        "summary": {
            "cases": len(results),
            "passed": len(results) - len(failed),
            "failed": len(failed),
            "tensors": sum(len(r.tensors) for r in results),
            "tensors_failed": sum(1 for r in results for t in r.tensors if not t.passed),
        },
        "cases": [
            {
                "name": r.name,
                "file": r.file,
                "component": r.component,
                "dtype": r.dtype,
                "atol": r.atol,
                "rtol": r.rtol,
                "passed": r.passed,
                "failures": [{"kind": k, "message": m} for k, m in r.failures()],
                "tensors": [
                    {
                        "name": t.name,
                        "passed": t.passed,
                        "kind": t.kind,
                        "shape_expected": t.shape_expected,
                        "shape_actual": t.shape_actual,
                        "dtype_expected": t.dtype_expected,
                        "dtype_actual": t.dtype_actual,
                        "max_abs": _finite(t.max_abs),
                        "max_rel": _finite(t.max_rel),
                        "max_ulp": t.max_ulp,
                    }
                    for t in r.tensors
                ],
            }
            for r in results
        ],
    }


def junit_xml(results: list[CaseCheck]) -> bytes:
    """JUnit XML: one testsuite, one testcase per case, a failure element naming each bad tensor."""
    failed = sum(1 for r in results if not r.passed)
    suites = ET.Element("testsuites", name="swinref verify", tests=str(len(results)), failures=str(failed))
    suite = ET.SubElement(
        suites,
        "testsuite",
        name="swinref-vectors",
        tests=str(len(results)),
        failures=str(failed),
        errors="0",
        skipped="0",
    )
    for r in results:
        tc = ET.SubElement(suite, "testcase", classname=f"swinref.vectors.{r.component}", name=r.name)
        failures = r.failures()
        if failures:
            kinds = sorted({k for k, _ in failures})
            f = ET.SubElement(tc, "failure", type=",".join(kinds), message="; ".join(m for _, m in failures))
            f.text = "\n".join(f"[{k}] {m}" for k, m in failures)
    return ET.tostring(suites, encoding="utf-8", xml_declaration=True)
