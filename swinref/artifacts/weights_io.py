"""Weights files: write params, read state dicts without unpickling, digest params.

Files are read without unpickling: safetensors, ``.npz`` through ``np.load(allow_pickle=False)``,
and PyTorch ``.pth`` only through ``torch.load(weights_only=True)``. Checking a state dict against
a config is the family's job (:func:`swinref.convert_state_dict`).
"""

from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..core import backend
from ..core.params import WeightsError
from ..models import registry


# ----- files ---------------------------------------------------------------------------------
def save_params(
    params: Mapping[str, Any], path: str | os.PathLike, *, metadata: Mapping[str, str] | None = None
) -> None:
    """Write params to ``.safetensors`` or ``.npz`` (chosen by the extension)."""
    arrays = {n: np.ascontiguousarray(backend.to_numpy(v)) for n, v in params.items()}
    path = os.fspath(path)
    if path.endswith(".safetensors"):
        from safetensors.numpy import save_file  # noqa: PLC0415

        save_file(arrays, path, metadata=dict(metadata or {}))
    elif path.endswith(".npz"):
        # numpy's stub types savez's **kwds together with its allow_pickle: bool keyword
        np.savez(path, **arrays)  # type: ignore[arg-type]
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
            from safetensors.numpy import load_file  # noqa: PLC0415

            return dict(load_file(path))
        if path.endswith(".npz"):
            with np.load(path, allow_pickle=False) as f:
                return {k: f[k] for k in f.files}
        if path.endswith((".pth", ".pt", ".bin")):
            import torch  # noqa: PLC0415

            obj = torch.load(path, map_location="cpu", weights_only=True)
            for key in ("model", "state_dict"):
                if isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
                    obj = obj[key]
            if not isinstance(obj, Mapping):
                raise WeightsError(
                    f"it holds a {type(obj).__name__}; expected a state dict (a mapping of names to tensors)"
                )
            return {k: backend.to_numpy(v) for k, v in obj.items() if hasattr(v, "shape")}
    except pickle.UnpicklingError as e:
        # torch's text suggests weights_only=False, which we never do: keep only its reason
        reason = [
            ln.strip()
            for ln in str(e).splitlines()[1:]
            if ln.strip() and not ln.startswith(("Check the documentation", "Please file an issue"))
        ]
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


def load_params(
    path: str | os.PathLike, cfg, *, source: str | None = None, dtype: str | None = None
) -> dict[str, np.ndarray]:
    """Read a weights file and check it against ``cfg`` (see :func:`swinref.convert_state_dict`)."""
    return registry.convert_state_dict(load_state_dict(path), cfg, source=source, dtype=dtype)


def params_digest(params: Mapping[str, Any]) -> str:
    """SHA-256 over names, dtypes, shapes and bytes of the params in name order."""
    h = hashlib.sha256()
    for name in sorted(params):
        a = np.ascontiguousarray(backend.to_numpy(params[name]))
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()
