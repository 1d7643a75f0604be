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
from .fileio import (
    GoldenFileError,
    InputFileError,
    atomic_write,
    open_regular,
    read_safetensors_file,
    require_regular,
)


# ----- files ---------------------------------------------------------------------------------
def save_params(
    params: Mapping[str, Any],
    path: str | os.PathLike,
    *,
    metadata: Mapping[str, str] | None = None,
    overwrite: bool = False,
) -> None:
    """Write params to ``.safetensors`` or ``.npz`` (chosen by the extension), atomically.

    An existing file is refused unless ``overwrite=True`` (see :func:`fileio.atomic_write`).
    """
    arrays = {n: np.ascontiguousarray(backend.to_numpy(v)) for n, v in params.items()}
    path = os.fspath(path)
    if path.endswith(".safetensors"):
        from safetensors.numpy import save  # noqa: PLC0415

        blob = save(arrays, metadata=dict(metadata or {}))
        atomic_write(path, blob, overwrite=overwrite, what="weights file")
    elif path.endswith(".npz"):
        # numpy's stub types savez's **kwds together with its allow_pickle: bool keyword
        atomic_write(path, lambda f: np.savez(f, **arrays), overwrite=overwrite, what="weights file")  # type: ignore[arg-type]
    else:
        raise ValueError(f"unsupported weights file {path!r}: use .safetensors or .npz")


MAX_WEIGHTS_BYTES = 16 << 30  # swin_l in float64 with every derived buffer is under 2 GiB


def _npz_members(path: str, max_bytes: int) -> None:
    """Check an ``.npz`` before inflating it: plain ``.npy`` members whose headers fit their sizes.

    Each member's array header is read (a few hundred bytes inflated) and its shape and dtype
    must account for exactly the member's declared size; the declared sizes together must stay
    within ``max_bytes``. A zip bomb or a member that is not a plain array is refused here, before
    any tensor is inflated.
    """
    import zipfile  # noqa: PLC0415

    try:
        with open_regular(path, what="weights file") as raw, zipfile.ZipFile(raw) as z:
            total = 0
            for info in z.infolist():
                if not info.filename.endswith(".npy"):
                    raise WeightsError(
                        f"cannot read weights file {path}: member {info.filename!r} is not a .npy array"
                    )
                with z.open(info) as m:
                    version = np.lib.format.read_magic(m)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(m)
                    else:
                        shape, _, dtype = np.lib.format.read_array_header_2_0(m)
                    header_len = m.tell()
                if dtype.hasobject:
                    raise WeightsError(
                        f"cannot read weights file {path}: member {info.filename!r} holds Python objects "
                        "(they need unpickling, which swinref never does)"
                    )
                need = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
                if header_len + need != info.file_size:
                    raise WeightsError(
                        f"cannot read weights file {path}: member {info.filename!r} declares "
                        f"{info.file_size} bytes but its array header {tuple(shape)} {dtype} needs "
                        f"{header_len + need}"
                    )
                total += info.file_size
                if total > max_bytes:
                    raise WeightsError(
                        f"cannot read weights file {path}: it inflates to more than "
                        f"{max_bytes:,} bytes; refused"
                    )
    except zipfile.BadZipFile as e:
        raise WeightsError(f"cannot read weights file {path}: not a readable .npz (zip) file: {e}") from e


def load_state_dict(path: str | os.PathLike, *, max_bytes: int = MAX_WEIGHTS_BYTES) -> dict[str, np.ndarray]:
    """Read a state dict from ``.safetensors``, ``.npz`` or ``.pth``/``.pt`` without unpickling.

    Only a regular file of at most ``max_bytes`` is read; a safetensors header and an ``.npz``'s
    member headers are checked against the file before any tensor is read or inflated.

    A ``.pth`` is read with ``torch.load(weights_only=True)``; a checkpoint that nests its state
    dict under ``"model"`` or ``"state_dict"`` is unwrapped.
    """
    path = os.fspath(path)
    require_regular(path, what="weights file", max_bytes=max_bytes)
    try:
        if path.endswith(".safetensors"):
            from safetensors.numpy import load  # noqa: PLC0415

            data, _ = read_safetensors_file(path, what="weights file", max_bytes=max_bytes)
            return dict(load(data))
        if path.endswith(".npz"):
            _npz_members(path, max_bytes)
            with open_regular(path, what="weights file") as raw, np.load(raw, allow_pickle=False) as f:
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
    except WeightsError:
        raise
    except (GoldenFileError, InputFileError) as e:
        where = "" if path in str(e) else f" {path}"  # the reader's message names the file already
        raise WeightsError(f"cannot read weights file{where}: {e}") from e
    except (OSError, ValueError, RuntimeError) as e:
        raise WeightsError(f"cannot read weights file {path}: {e}") from e
    except Exception as e:  # safetensors raises its own error type for corrupt headers
        raise WeightsError(f"cannot read weights file {path}: {type(e).__name__}: {e}") from e
    raise ValueError(f"unsupported weights file {path!r}: use .safetensors, .npz or .pth")


def load_params(
    path: str | os.PathLike, cfg, *, source: str | None = None, dtype: str | None = None
) -> dict[str, np.ndarray]:
    """Read a weights file and check it against ``cfg`` (see :func:`swinref.convert_state_dict`).

    The file may hold at most :func:`weights_cap` bytes for ``cfg``, checked from its size (and an
    ``.npz``'s member headers) before any tensor is read or inflated.
    """
    return registry.convert_state_dict(
        load_state_dict(path, max_bytes=weights_cap(cfg)), cfg, source=source, dtype=dtype
    )


def weights_cap(cfg) -> int:
    """The most bytes a weights file for ``cfg`` may hold: 8x its params in float64, plus 1 GiB.

    The factor covers float64 storage of every param (x1), optimizer or EMA copies a training
    checkpoint may carry (x3 more), and the derived buffers (relative position indices, attention
    masks) some layouts store, which grow with the input size; the 1 GiB covers small models at
    large inputs. An ``.npz`` that inflates beyond this is refused before it is inflated.
    """
    return 8 * 8 * registry.count_params(cfg) + (1 << 30)


def params_digest(params: Mapping[str, Any]) -> str:
    """SHA-256 over names, shapes and float64 values of the params in name order.

    Floating-point params are digested as float64, so the same values stored in float32 and in
    float64 give the same digest; other dtypes (integer buffers) are digested as stored.
    """
    h = hashlib.sha256()
    for name in sorted(params):
        a = np.asarray(backend.to_numpy(params[name]))
        if a.dtype.kind == "f":
            a = a.astype(np.float64)
        a = np.ascontiguousarray(a)
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()
