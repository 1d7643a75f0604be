"""A port's outputs against a golden file: plain files, shape adapters, calibrated float32 bounds.

A port writes what it computed under swinref's tensor names (``logits``, ``patch_embed``,
``layers.2.blocks.3``, ...; ``intermediates/NAME`` is accepted too), any subset, as

* a plain safetensors file (no metadata needed),
* an ``.npz`` (read with ``allow_pickle=False``), or
* a directory of ``NAME.npy`` files.

Each tensor present is compared with the golden tensor of that name; the others are listed as
"not provided", and only the names in ``require`` (default: ``logits``) must be present.

Shapes: swinref's intermediates are channels-last grids, (B, h, w, C) for images and
(B, T, h, w, C) for video. A port's (B, L, C) token sequence (official code, Hugging Face hidden
states) with L = h*w (T*h*w) and its NCHW (NCTHW) feature map are mapped onto that grid; any other
shape is an error naming the shapes that would be accepted.

Bounds. Against a float64 golden file, a float64 port must agree to 1e-10 (summation order only).
A float32 port is held to a bound calibrated per tensor from swinref's own float32 run on the
same input and weights (:func:`calibrated_bounds`)::

    bound = K * max|swinref_f32 - golden_f64| + FLOOR_ULPS * eps_f32 * max|golden_f64|

K = 4: two faithful float32 computations of the same function make rounding errors of the same
size, differing by summation order; faithful ports measured at 0.5x-1.2x swinref's own float32
error on swin_t logits, so 4x leaves room for a different order (BLAS blocking, fused kernels)
while a one-block change such as the tanh GELU (20x-80x) fails. The floor, 4 float32 ulps of the
tensor's largest value, covers tensors where swinref's own float32 run happens to be nearly exact.
Without the weights (a golden file made from a weights file, compared without ``--weights``) the
bound falls back to the fixed :data:`swinref.artifacts.golden.FLOAT32_ATOL`, and the result says so.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core import backend
from ..models import registry
from .fileio import GoldenFileError, InputFileError, open_regular, read_safetensors_file, require_regular
from .golden import (
    FLOAT32_ATOL,
    FLOAT64_ATOL,
    INTERMEDIATE_PREFIX,
    METADATA_KEY,
    Golden,
    compare_arrays,
    read_golden,
)
from .weights_io import load_params, params_digest

__all__ = [
    "CALIBRATION_K",
    "FLOOR_ULPS",
    "PortComparison",
    "PortRow",
    "adapt_shape",
    "calibrated_bounds",
    "compare_port",
    "golden_params",
    "is_golden_file",
    "port_dtype",
    "read_port_outputs",
    "seeded_source",
]

CALIBRATION_K = 4.0
FLOOR_ULPS = 4.0
MAX_PORT_BYTES = 16 << 30


# ----- reading -------------------------------------------------------------------------------
def is_golden_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a safetensors file carrying swinref's golden metadata."""
    path = os.fspath(path)
    if os.path.isdir(path) or not path.endswith(".safetensors"):
        return False
    if not os.path.lexists(path):
        return True  # let the golden-file reader say it is missing
    _, header = read_safetensors_file(path, what="port outputs")
    return METADATA_KEY in (header.get("__metadata__") or {})


def _strip(name: str) -> str:
    return name[len(INTERMEDIATE_PREFIX) :] if name.startswith(INTERMEDIATE_PREFIX) else name


def read_port_outputs(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """A port's tensors by swinref name from a safetensors file, an ``.npz`` or a directory of ``.npy``.

    Never unpickles. Raises :class:`InputFileError` for an unreadable, corrupt or empty source,
    a non-float tensor, or a name given twice (``NAME`` and ``intermediates/NAME``).
    """
    path = os.fspath(path)
    raw: dict[str, np.ndarray] = {}
    try:
        if os.path.isdir(path):
            files = sorted(f for f in os.listdir(path) if f.endswith(".npy"))
            if not files:
                raise InputFileError(f"port outputs {path}: the directory holds no NAME.npy files")
            for f in files:
                with open_regular(os.path.join(path, f), what="port tensor", max_bytes=MAX_PORT_BYTES) as fh:
                    raw[f[: -len(".npy")]] = np.load(fh, allow_pickle=False)
        elif path.endswith(".safetensors"):
            from safetensors.numpy import load  # noqa: PLC0415

            data, _ = read_safetensors_file(path, what="port outputs", max_bytes=MAX_PORT_BYTES)
            raw = dict(load(data))
        elif path.endswith(".npz"):
            require_regular(path, what="port outputs", max_bytes=MAX_PORT_BYTES)
            with open_regular(path, what="port outputs") as fh, np.load(fh, allow_pickle=False) as z:
                raw = {k: z[k] for k in z.files}
        else:
            raise InputFileError(
                f"port outputs {path}: expected a .safetensors file, an .npz or a directory of .npy files"
            )
    except (InputFileError, GoldenFileError):
        raise
    except FileNotFoundError:
        raise
    except Exception as e:  # zipfile, numpy format and safetensors errors: a corrupt file
        raise InputFileError(f"cannot read port outputs {path}: {type(e).__name__}: {e}") from e
    out: dict[str, np.ndarray] = {}
    for name, value in raw.items():
        key = _strip(name)
        if key in out:
            raise InputFileError(f"port outputs {path}: tensor {key!r} is given twice")
        if value.dtype.kind != "f":
            raise InputFileError(f"port outputs {path}: tensor {name!r} is {value.dtype}; expected floats")
        out[key] = value
    if not out:
        raise InputFileError(f"port outputs {path} hold no tensors")
    return out


def port_dtype(tensors: Mapping[str, np.ndarray]) -> str:
    """``float64`` when every tensor is float64, else ``float32`` (the port's working precision)."""
    return "float64" if all(v.dtype == np.float64 for v in tensors.values()) else "float32"


# ----- shapes --------------------------------------------------------------------------------
def adapt_shape(name: str, value: np.ndarray, expected: tuple[int, ...]) -> tuple[np.ndarray, str | None]:
    """``value`` mapped onto swinref's shape ``expected``, and the adapter used (None: as given).

    Accepted for a channels-last grid (B, *grid, C): that shape, the token sequence
    (B, prod(grid), C), and the channels-first map (B, C, *grid). Raises ValueError otherwise.
    Where the grid's sides all equal C the two layouts look alike: the tensor is taken as channels
    last, and the adapter text says so.
    """
    shape = tuple(value.shape)
    if shape == tuple(expected):
        if len(expected) in (4, 5) and all(d == expected[-1] for d in expected[1:-1]):
            return value, "taken as channels last (channels first has the same shape)"
        return value, None
    if len(expected) in (4, 5):
        b, grid, c = expected[0], tuple(expected[1:-1]), expected[-1]
        if shape == (b, int(np.prod(grid)), c):
            return value.reshape(expected), "tokens (B, L, C)"
        if shape == (b, c, *grid):
            perm = (0, *range(2, 2 + len(grid)), 1)
            label = "NCHW" if len(grid) == 2 else "NCTHW"
            return np.transpose(value, perm), label
        forms = (
            f"{tuple(expected)}, {(b, int(np.prod(grid)), c)} (tokens) or {(b, c, *grid)} (channels first)"
        )
    else:
        forms = str(tuple(expected))
    raise ValueError(f"tensor {name!r} has shape {shape}; expected {forms}")


# ----- weights and calibration ---------------------------------------------------------------
_SEEDED = re.compile(r"^seeded init seed=(\d+)(?: scheme=(\w+))?$")


def seeded_source(seed: int, scheme: str) -> str:
    """The ``weights_source`` text of seeded weights, which :func:`golden_params` reads back."""
    return f"seeded init seed={seed} scheme={scheme}"


def golden_params(
    golden: Golden, *, weights: str | os.PathLike | None = None, source: str | None = None
) -> dict[str, np.ndarray] | None:
    """The float64 params a golden file was made with, or None when they cannot be rebuilt.

    From ``weights`` (a file in any layout of the family) or, for seeded weights, from the seed and
    scheme in its ``weights_source``. Raises ValueError when the params' float64 digest differs
    from the one the golden file records (wrong file, wrong layout).
    """
    cfg = golden.config
    if weights is not None:
        params = load_params(weights, cfg, source=source, dtype="float64")
        what = str(weights)
    else:
        m = _SEEDED.match(str(golden.metadata.get("weights_source", "")))
        if m is None:
            return None
        scheme = m.group(2) or "timm"
        params = registry.init_params(
            cfg, seed=int(m.group(1)), dtype=golden.metadata["dtype"], scheme=scheme
        )
        what = "the seeded weights it names"
    digest = params_digest(params)
    if digest != golden.metadata["weights_digest"]:
        raise ValueError(
            f"{what} do not match the golden file: weights digest {digest[:16]}... vs "
            f"{golden.metadata['weights_digest'][:16]}... recorded"
        )
    return {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}


def calibrated_bounds(
    golden: Golden, params: Mapping[str, Any], *, k: float = CALIBRATION_K, floor_ulps: float = FLOOR_ULPS
) -> dict[str, float]:
    """Per tensor: ``k * max|swinref_f32 - golden| + floor_ulps * eps_f32 * max|golden|``.

    swinref's float32 run uses the golden input and ``params`` cast to float32. Names are the
    golden tensors' (``logits`` and intermediate names; ``input`` gets the floor alone).
    """
    cfg = golden.config
    p32 = {n: np.asarray(backend.to_numpy(v), dtype=np.float32) for n, v in params.items()}
    x32 = golden.input.astype(np.float32)
    logits, inter = registry.forward(p32, x32, cfg, return_intermediates=True)
    ours = {
        **{n: backend.to_numpy(v) for n, v in inter.items()},
        "logits": backend.to_numpy(logits),
        "input": x32,
    }
    eps = float(np.finfo(np.float32).eps)
    bounds = {}
    for name, ref in _golden_tensors(golden).items():
        ref64 = ref.astype(np.float64)
        scale = float(np.abs(ref64).max()) if ref64.size else 0.0
        err = (
            float(np.abs(ours[name].astype(np.float64) - ref64).max()) if name in ours and ref64.size else 0.0
        )
        bounds[name] = k * err + floor_ulps * eps * scale
    return bounds


def _golden_tensors(golden: Golden) -> dict[str, np.ndarray]:
    return {_strip(n): v for n, v in golden.tensors.items()}


# ----- comparing -----------------------------------------------------------------------------
@dataclass(frozen=True)
class PortRow:
    """One golden tensor: compared (``max_abs`` against ``bound``), or not provided."""

    name: str
    shape: tuple[int, ...]
    port_shape: tuple[int, ...] | None = None
    adapter: str | None = None
    max_abs: float | None = None
    bound: float | None = None
    worst_index: tuple[int, ...] | None = None
    passed: bool | None = None  # None: not provided
    required: bool = False

    @property
    def status(self) -> str:
        if self.passed is None:
            return "not provided (required)" if self.required else "not provided"
        return "pass" if self.passed else "FAIL"


@dataclass(frozen=True)
class PortComparison:
    """A port's tensors against a golden file; ``bound_rule`` says how the bounds were set."""

    rows: list[PortRow]
    port_dtype: str
    golden_dtype: str
    bound_rule: str
    notes: list[str] = field(default_factory=list)

    @property
    def compared(self) -> list[PortRow]:
        return [r for r in self.rows if r.passed is not None]

    @property
    def failures(self) -> list[PortRow]:
        """Rows beyond their bound, and required rows not provided, in forward order."""
        return [r for r in self.rows if r.passed is False or (r.passed is None and r.required)]

    @property
    def first_diverging(self) -> str | None:
        """The first tensor in forward order beyond its bound (None when all compared pass)."""
        return next((r.name for r in self.rows if r.passed is False), None)

    @property
    def passed(self) -> bool:
        return not self.failures and bool(self.compared)


def compare_port(
    golden: Golden | str | os.PathLike,
    port: Mapping[str, Any] | str | os.PathLike,
    *,
    require: tuple[str, ...] | list[str] = ("logits",),
    atol: float | None = None,
    params: Mapping[str, Any] | None = None,
    weights: str | os.PathLike | None = None,
    source: str | None = None,
) -> PortComparison:
    """Compare a port's outputs (a mapping or a file, see :func:`read_port_outputs`) with a golden file.

    Bounds on max abs difference: ``atol`` when given; else 1e-10 for a float64 port against a
    float64 golden file; else, for a float32 port, :func:`calibrated_bounds` when the golden
    file's params are known (``params``, ``weights``, or seeded weights named in the file), and the
    fixed 1e-4 otherwise. Raises ValueError for names swinref does not have or shapes no adapter
    maps (see :func:`adapt_shape`), and for a ``require`` name the golden file does not hold.
    """
    g = golden if isinstance(golden, Golden) else read_golden(golden)
    tensors = dict(read_port_outputs(port)) if isinstance(port, (str, os.PathLike)) else dict(port)
    tensors = {_strip(n): np.asarray(backend.to_numpy(v)) for n, v in tensors.items()}
    ref = _golden_tensors(g)
    ordered = [n for n in ref if n != "input"] + (["input"] if "input" in tensors else [])
    unknown = sorted(set(tensors) - set(ref))
    if unknown:
        raise ValueError(
            f"port tensors {unknown} are not in the golden file; its names are: {', '.join(ref)}"
        )
    absent_required = [n for n in require if n not in ref]
    if absent_required:
        raise ValueError(f"--require names {absent_required} that the golden file does not hold")
    dtype = port_dtype(tensors) if tensors else "float32"
    gdtype = g.metadata["dtype"]
    notes: list[str] = []
    bounds: dict[str, float]
    if atol is not None:
        if not (np.isfinite(atol) and atol >= 0):
            raise ValueError(f"atol must be a finite number >= 0, got {atol}")
        bounds = dict.fromkeys(ref, float(atol))
        rule = f"given: max abs <= {atol:g}"
    elif dtype == "float64" and gdtype == "float64":
        bounds = dict.fromkeys(ref, FLOAT64_ATOL)
        rule = f"float64 port: max abs <= {FLOAT64_ATOL:g}"
    elif gdtype == "float32":
        bounds = dict.fromkeys(ref, FLOAT32_ATOL)
        rule = f"float32 golden file: max abs <= {FLOAT32_ATOL:g}"
    else:
        if params is None:
            params = golden_params(g, weights=weights, source=source)
        if params is None:
            bounds = dict.fromkeys(ref, FLOAT32_ATOL)
            rule = f"float32 port, uncalibrated: max abs <= {FLOAT32_ATOL:g}"
            notes.append(
                "the golden file was made from a weights file; pass --weights FILE for bounds "
                "calibrated by swinref's own float32 run"
            )
        else:
            bounds = calibrated_bounds(g, params)
            rule = (
                f"float32 port, calibrated: bound = {CALIBRATION_K:g} x |swinref float32 - golden| "
                f"+ {FLOOR_ULPS:g} float32 ulps of max|golden|, per tensor"
            )
    rows = []
    for name in ordered:
        want = tuple(ref[name].shape)
        required = name in require
        if name not in tensors:
            rows.append(PortRow(name=name, shape=want, required=required))
            continue
        given = tensors[name]
        value, adapter = adapt_shape(name, given, want)
        c = compare_arrays(name, ref[name], value, atol=bounds[name], rtol=0.0)
        rows.append(
            PortRow(
                name=name,
                shape=want,
                port_shape=tuple(given.shape),
                adapter=adapter,
                max_abs=c.max_abs,
                bound=bounds[name],
                worst_index=c.worst_index,
                passed=c.passed,
                required=required,
            )
        )
    if not any(r.passed is not None for r in rows):
        notes.append("no tensor of the port was compared")
    return PortComparison(rows=rows, port_dtype=dtype, golden_dtype=gdtype, bound_rule=rule, notes=notes)
