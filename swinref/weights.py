"""Parameters: expected names and shapes, seeded initialisation, conversion, safe file formats.

Params are a flat mapping from timm's state-dict names to arrays. Files are read without
unpickling: safetensors, ``.npz`` through ``np.load(allow_pickle=False)``, and PyTorch ``.pth``
only through ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Mapping
from typing import Any

import numpy as np

from .config import SwinConfig

# "timm" accepts timm's current and <= 0.8 names, "hf" transformers 5.x and 4.x names, "auto" any
# layout of swinref.layouts, detected from the names.
SOURCES = ("timm", "torchvision", "hf", "official", "auto")

# Buffers that some checkpoints carry; they are derived from the config, so we check, not load.
_DERIVED_BUFFERS = ("relative_position_index", "attn_mask")


class WeightsError(ValueError):
    """A state dict does not fit the config: missing, unexpected or mis-shaped entries."""


def param_shapes(cfg: SwinConfig) -> dict[str, tuple[int, ...]]:
    """Every parameter name (timm layout) and its shape, in checkpoint order."""
    from .model import table_window  # a clamped stage has a smaller table (timm, official)

    C0, P = cfg.embed_dim, cfg.patch_size
    shapes: dict[str, tuple[int, ...]] = {
        "patch_embed.proj.weight": (C0, cfg.in_chans, P, P),
        "patch_embed.proj.bias": (C0,),
    }
    if cfg.patch_norm:
        shapes["patch_embed.norm.weight"] = (C0,)
        shapes["patch_embed.norm.bias"] = (C0,)
    for i, depth in enumerate(cfg.depths):
        C, nH, hidden = cfg.stage_dim(i), cfg.num_heads[i], cfg.mlp_hidden(i)
        Mh, Mw = table_window(cfg, i)
        if i > 0:
            shapes[f"layers.{i}.downsample.norm.weight"] = (2 * C,)
            shapes[f"layers.{i}.downsample.norm.bias"] = (2 * C,)
            shapes[f"layers.{i}.downsample.reduction.weight"] = (C, 2 * C)
        for j in range(depth):
            b = f"layers.{i}.blocks.{j}"
            shapes[f"{b}.norm1.weight"] = (C,)
            shapes[f"{b}.norm1.bias"] = (C,)
            shapes[f"{b}.attn.relative_position_bias_table"] = ((2 * Mh - 1) * (2 * Mw - 1), nH)
            shapes[f"{b}.attn.qkv.weight"] = (3 * C, C)
            if cfg.qkv_bias:
                shapes[f"{b}.attn.qkv.bias"] = (3 * C,)
            shapes[f"{b}.attn.proj.weight"] = (C, C)
            shapes[f"{b}.attn.proj.bias"] = (C,)
            shapes[f"{b}.norm2.weight"] = (C,)
            shapes[f"{b}.norm2.bias"] = (C,)
            shapes[f"{b}.mlp.fc1.weight"] = (hidden, C)
            shapes[f"{b}.mlp.fc1.bias"] = (hidden,)
            shapes[f"{b}.mlp.fc2.weight"] = (C, hidden)
            shapes[f"{b}.mlp.fc2.bias"] = (C,)
    shapes["norm.weight"] = (cfg.num_features,)
    shapes["norm.bias"] = (cfg.num_features,)
    if cfg.num_classes:
        shapes["head.fc.weight"] = (cfg.num_classes, cfg.num_features)
        shapes["head.fc.bias"] = (cfg.num_classes,)
    return shapes


def count_params(cfg: SwinConfig) -> int:
    """Number of learned parameters (timm's ``sum(p.numel() for p in model.parameters())``)."""
    return int(sum(np.prod(s) for s in param_shapes(cfg).values()))


def _trunc_normal(rng: np.random.Generator, shape, std: float) -> np.ndarray:
    # timm's trunc_normal_(std=.02) cuts at absolute +-2, i.e. 100 std: resample what falls outside
    out = rng.normal(0.0, std, size=shape)
    bad = np.abs(out) > 2.0
    while bad.any():
        out[bad] = rng.normal(0.0, std, size=int(bad.sum()))
        bad = np.abs(out) > 2.0
    return out


def init_params(cfg: SwinConfig, *, seed: int = 0, dtype: str = "float64") -> dict[str, np.ndarray]:
    """Seeded weights in timm's initialisation scheme, as NumPy arrays.

    Truncated normal (std 0.02) for every linear and conv weight and for the relative position
    tables; zero biases; LayerNorm weight 1 and bias 0. The same seed gives the same bits.
    """
    rng = np.random.default_rng(seed)
    params = {}
    for name, shape in param_shapes(cfg).items():
        leaf = name.rsplit(".", 1)[-1]
        is_norm = ".norm" in name or name.startswith("norm.")
        if is_norm and leaf == "weight":
            value = np.ones(shape)
        elif leaf == "bias":
            value = np.zeros(shape)
        else:
            value = _trunc_normal(rng, shape, 0.02)
        params[name] = value.astype(dtype)
    return params


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # torch tensors: leave autograd and the device behind
        value = value.detach().cpu()
        if str(value.dtype) == "torch.bfloat16":
            value = value.float()
        return value.numpy()
    return np.asarray(value)


def _check_derived(name: str, value: np.ndarray, cfg: SwinConfig) -> str | None:
    """A stored index buffer must equal the one the config implies; masks are only shape-checked."""
    if name.endswith("relative_position_index"):
        from .backend import get_namespace
        from .model import table_window
        from .windows import relative_position_index

        xp = get_namespace("numpy")
        parts = name.split(".")  # layers.{i}.blocks.{j}.attn.relative_position_index
        window = table_window(cfg, int(parts[1])) if parts[0] == "layers" else cfg.window
        expected = np.asarray(relative_position_index(window, xp=xp))
        if value.shape != expected.shape or not np.array_equal(value.reshape(expected.shape), expected):
            return f"{name}: stored relative_position_index differs from the one for window {window}"
    return None


def convert_state_dict(state_dict: Mapping[str, Any], cfg: SwinConfig, *, source: str = "timm",
                       dtype: str | None = None) -> dict[str, np.ndarray]:
    """Check a state dict against ``cfg`` and return params (NumPy arrays, timm names).

    state_dict: names to arrays (NumPy, torch tensors, anything with ``__array__``).
    source: the layout of the names, one of :data:`SOURCES` (see :mod:`swinref.layouts`); other
        layouts are renamed to timm's names first and errors name their entries as stored.
    dtype: ``None`` keeps the stored dtype; ``"float32"``/``"float64"`` cast explicitly.
    Raises :class:`WeightsError` listing every missing, unexpected and mis-shaped key at once.
    Stored ``relative_position_index`` / ``attn_mask`` buffers are not loaded (they are derived
    from the config) but an index (for the renamed layouts also a mask) that disagrees with the
    config is reported.
    """
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"state_dict must be a mapping of names to arrays, got {type(state_dict).__name__}")
    if getattr(cfg, "version", 1) == 2:  # a SwinV2Config: V2 names and layouts live in swinref/v2.py
        from .v2 import convert_state_dict as convert_v2

        return convert_v2(state_dict, cfg, source=source, dtype=dtype)
    if not isinstance(cfg, SwinConfig):
        raise TypeError(f"cfg must be a SwinConfig or SwinV2Config, got {type(cfg).__name__} "
                        "(Video Swin weights: swinref.video.convert_state_dict)")
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")
    if dtype not in (None, "float32", "float64"):
        raise ValueError(f"dtype must be None, 'float32' or 'float64', got {dtype!r}")
    from . import layouts

    expected = param_shapes(cfg)
    params: dict[str, np.ndarray] = {}
    unexpected, misshaped, wrong_kind = [], [], []
    source_keys = list(state_dict.keys())
    layout, detected = layouts.resolve_source(source_keys, source)
    labels: dict[str, str] = {}  # timm name -> name as stored, for messages
    if layout != "timm":  # rename first; derived buffers are checked while renaming
        renamed = layouts.rename(state_dict, cfg, layout)
        state_dict, labels = renamed.params, renamed.labels
        unexpected, misshaped = list(renamed.unexpected), list(renamed.problems)
    for name, value in state_dict.items():
        if name.rsplit(".", 1)[-1] in _DERIVED_BUFFERS:
            problem = _check_derived(name, _to_numpy(value), cfg)
            if problem:
                misshaped.append(problem)
            continue
        if name not in expected:
            unexpected.append(name)
            continue
        array = _to_numpy(value)
        if tuple(array.shape) != expected[name]:
            misshaped.append(f"{labels.get(name, name)}: got {tuple(array.shape)}, expected {expected[name]}")
            continue
        if array.dtype.kind != "f":
            wrong_kind.append(f"{labels.get(name, name)}: dtype {array.dtype}, expected a float dtype")
            continue
        params[name] = array.astype(dtype) if dtype else array
    missing = [labels.get(n, n) for n in expected if n not in state_dict]
    if missing or unexpected or misshaped or wrong_kind:
        where = "" if layout == "timm" and not detected else (
            f" in layout {layout!r}" + (" (detected from its names)" if detected else ""))
        lines = [f"state dict{where} does not match the config ({_describe(cfg)}):"]
        hint = None if source == "auto" else layouts.mismatch_hint(source_keys, source)
        if hint:
            lines.append(f"  hint: {hint}")
        for title, items in (("missing", missing), ("unexpected", unexpected),
                             ("mis-shaped", misshaped), ("wrong dtype", wrong_kind)):
            if items:
                lines.append(f"  {title} ({len(items)}):")
                lines.extend(f"    {item}" for item in items)
        raise WeightsError("\n".join(lines))
    return {n: params[n] for n in expected}


def _describe(cfg: SwinConfig) -> str:
    return (f"embed_dim={cfg.embed_dim}, depths={cfg.depths}, num_heads={cfg.num_heads}, "
            f"window_size={cfg.window_size}, num_classes={cfg.num_classes}")


# ----- files ---------------------------------------------------------------------------------
def save_params(params: Mapping[str, Any], path: str | os.PathLike, *,
                metadata: Mapping[str, str] | None = None) -> None:
    """Write params to ``.safetensors`` or ``.npz`` (chosen by the extension)."""
    from .backend import to_numpy

    arrays = {n: np.ascontiguousarray(to_numpy(v)) for n, v in params.items()}
    path = os.fspath(path)
    if path.endswith(".safetensors"):
        from safetensors.numpy import save_file

        save_file(arrays, path, metadata=dict(metadata or {}))
    elif path.endswith(".npz"):
        np.savez(path, **arrays)
    else:
        raise ValueError(f"unsupported weights file {path!r}: use .safetensors or .npz")


def load_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a state dict from ``.safetensors``, ``.npz`` or ``.pth``/``.pt`` without unpickling.

    A ``.pth`` is read with ``torch.load(weights_only=True)``; a checkpoint that nests its state
    dict under ``"model"`` or ``"state_dict"`` is unwrapped.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"weights file not found: {path}")
    try:
        if path.endswith(".safetensors"):
            from safetensors.numpy import load_file

            return dict(load_file(path))
        if path.endswith(".npz"):
            with np.load(path, allow_pickle=False) as f:
                return {k: f[k] for k in f.files}
        if path.endswith((".pth", ".pt", ".bin")):
            import torch

            obj = torch.load(path, map_location="cpu", weights_only=True)
            for key in ("model", "state_dict"):
                if isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
                    obj = obj[key]
            if not isinstance(obj, Mapping):
                raise WeightsError(f"it holds a {type(obj).__name__}; expected a state dict "
                                   "(a mapping of names to tensors)")
            return {k: _to_numpy(v) for k, v in obj.items() if hasattr(v, "shape")}
    except pickle.UnpicklingError as e:
        # torch's text suggests weights_only=False, which we never do: keep only its reason
        reason = [ln.strip() for ln in str(e).splitlines()[1:] if ln.strip()
                  and not ln.startswith(("Check the documentation", "Please file an issue"))]
        raise WeightsError(
            f"refused weights file {path}: it is not a plain state dict of tensors; swinref reads "
            ".pth files only with torch.load(weights_only=True) and never unpickles other objects"
            + (f" ({' '.join(reason)})" if reason else "")
        ) from e
    except (OSError, ValueError, RuntimeError) as e:
        raise WeightsError(f"cannot read weights file {path}: {e}") from e
    except Exception as e:  # safetensors raises its own error type for corrupt headers
        raise WeightsError(f"cannot read weights file {path}: {type(e).__name__}: {e}") from e
    raise ValueError(f"unsupported weights file {path!r}: use .safetensors, .npz or .pth")


def load_params(path: str | os.PathLike, cfg: SwinConfig, *, source: str = "timm",
                dtype: str | None = None) -> dict[str, np.ndarray]:
    """Read a weights file and check it against ``cfg`` (see :func:`convert_state_dict`)."""
    return convert_state_dict(load_state_dict(path), cfg, source=source, dtype=dtype)


def params_digest(params: Mapping[str, Any]) -> str:
    """SHA-256 over names, dtypes, shapes and bytes of the params in name order."""
    from .backend import to_numpy

    h = hashlib.sha256()
    for name in sorted(params):
        a = np.ascontiguousarray(to_numpy(params[name]))
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()
