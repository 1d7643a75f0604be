"""Golden files: one forward pass frozen in a safetensors file, and the comparison of two of them.

A golden file holds the input, the logits and (optionally) every named intermediate of
:func:`swinref.forward`, plus a JSON header that says exactly how they were made:

    tensors   ``input``                      (B, in_chans, H, W)
              ``intermediates/<name>``       one per forward intermediate, e.g.
                                             ``intermediates/layers.0.blocks.1`` (B, h, w, C)
              ``logits``                     (B, num_classes)
    metadata  safetensors metadata key ``swinref``: a JSON object with the format name and
              version, the model config (``SwinConfig.to_dict()``), model name, dtype, backend,
              package version, weight digest (:func:`swinref.params_digest`, on float64
              values), weights source,
              input seed, batch and the intermediate names in forward order.

The file is plain safetensors: any language with a safetensors reader can load it, compare its
own port layer by layer, and find the first tensor that diverges. Nothing here unpickles, and
the metadata carries no timestamp, so the same command writes the same bytes.

The seeded input (``swinref golden --input-seed S``) is, in any language with NumPy's PCG64::

    numpy.random.default_rng(S).standard_normal((B, in_chans, H, W))   # float64, C order

cast to float32 for ``--dtype float32``. The input is stored in the file as well, so a port
does not have to regenerate it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from .._version import __version__
from ..core import backend
from ..models import registry
from .fileio import (
    GoldenFileError,
    InputFileError,
    atomic_write,
    open_regular,
    read_safetensors_file,
)
from .weights_io import params_digest

FORMAT = "swinref-golden"
FORMAT_VERSION = 1
METADATA_KEY = "swinref"  # the one safetensors metadata entry that holds our JSON header
INTERMEDIATE_PREFIX = "intermediates/"

REQUIRED_FIELDS = (
    "format",
    "format_version",
    "config",
    "model",
    "dtype",
    "backend",
    "swinref_version",
    "weights_digest",
    "weights_source",
    "input_seed",
    "batch",
    "intermediates",
)
# provenance the caller knows and write_golden cannot derive from the arrays
CALLER_FIELDS = ("model", "backend", "weights_source", "input_seed")

# default tolerances of `compare`: |A - B| <= atol + rtol * |A|
FLOAT64_ATOL = 1e-10  # float64 ports differ by summation order, ~1e-14 on swin_t logits
FLOAT32_ATOL = 1e-4  # float32 rounding accumulated over 12 blocks, activations of order 1
DEFAULT_RTOL = 0.0


class Golden(NamedTuple):
    """A golden file's contents: ``tensors`` (name -> NumPy array) and parsed ``metadata``."""

    tensors: dict[str, np.ndarray]
    metadata: dict[str, Any]

    @property
    def input(self) -> np.ndarray:
        return self.tensors["input"]

    @property
    def logits(self) -> np.ndarray:
        return self.tensors["logits"]

    @property
    def intermediates(self) -> dict[str, np.ndarray]:
        """Intermediates by their forward name (``layers.0.blocks.1``), in forward order."""
        return {n: self.tensors[INTERMEDIATE_PREFIX + n] for n in self.metadata["intermediates"]}

    @property
    def config(self):
        """The model config of any family (V1 files carry no ``family`` field)."""
        return registry.config_from(self.metadata["config"])


# ----- the seeded input ----------------------------------------------------------------------
def golden_input(
    cfg, *, batch: int = 1, seed: int = 0, dtype: str = "float64", size: tuple[int, ...] | None = None
) -> np.ndarray:
    """The seeded golden input: ``default_rng(seed).standard_normal(shape)``.

    shape is the family's input, (B, in_chans, H, W) or (B, in_chans, T, H, W), at ``size`` or
    the config's default size. Drawn in float64 by NumPy's PCG64 generator, then cast to ``dtype``.
    """
    if not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive int, got {batch!r}")
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    shape = registry.family_of(cfg).input_shape(cfg, batch=batch, size=size)
    x = np.random.default_rng(seed).standard_normal(shape)
    return x.astype(dtype)


def input_recipe(seed: int, shape: tuple[int, ...], dtype: str) -> str:
    """The input generation spelled out, stored in the metadata next to the seed."""
    cast = "" if dtype == "float64" else f", cast to {dtype}"
    return f"numpy.random.default_rng({seed}).standard_normal({tuple(shape)}) in float64{cast}"


# ----- writing -------------------------------------------------------------------------------
def write_golden(
    path: str | os.PathLike,
    *,
    cfg,
    params: Mapping[str, Any],
    x,
    logits,
    intermediates: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write a golden file atomically and return the metadata written.

    cfg: a config of any family. x: the input (B, in_chans, H, W) or (B, in_chans, T, H, W),
    float32/float64; logits: (B, num_classes); intermediates: the
    mapping ``forward(..., return_intermediates=True)`` returns, or None to store none (its
    ``logits`` entry is the same array as ``logits`` and is stored once). Arrays may come from
    any backend. ``params`` is only digested. ``metadata`` holds the provenance the caller knows:
    ``model`` (name or None), ``backend`` (default: the namespace of x), ``weights_source``
    (``"seeded init seed=N scheme=S"``, which :func:`swinref.compare_port` reads back to rebuild
    the weights, or ``"<path> sha256=<hex>"``) and ``input_seed`` (None when the
    input was not generated by :func:`golden_input`).

    The file appears whole or not at all (:func:`swinref.artifacts.fileio.atomic_write`); an
    existing file is refused unless ``overwrite=True``. Weights or tensors that are not finite,
    or activations so large that LayerNorm's variance overflows, are written as they are, named
    in a ``numerics_warnings`` metadata entry and raised as a :class:`RuntimeWarning`.
    """

    family = registry.family_of(cfg)
    given = dict(metadata or {})
    unknown = sorted(set(given) - set(CALLER_FIELDS))
    if unknown:
        raise ValueError(
            f"unknown golden metadata fields {unknown}; expected a subset of {list(CALLER_FIELDS)}"
        )
    host_x = np.ascontiguousarray(backend.to_numpy(x))
    host_logits = np.ascontiguousarray(backend.to_numpy(logits))
    dtype = str(host_x.dtype)
    if dtype not in ("float32", "float64"):
        raise TypeError(f"input dtype must be float32 or float64, got {dtype}")
    rank = len(family.input_shape(cfg, batch=1))
    if host_x.ndim != rank or host_logits.ndim != 2 or host_logits.shape[0] != host_x.shape[0]:
        raise ValueError(
            f"expected x {family.input_form} and logits (B, classes); got {host_x.shape} "
            f"and {host_logits.shape}"
        )
    tensors = {"input": host_x}
    names = []
    for name, value in (intermediates or {}).items():
        if name == "logits":
            continue
        names.append(name)
        tensors[INTERMEDIATE_PREFIX + name] = np.ascontiguousarray(backend.to_numpy(value))
    tensors["logits"] = host_logits
    for name, value in tensors.items():
        if str(value.dtype) != dtype:
            raise TypeError(
                f"tensor {name!r} is {value.dtype} but the input is {dtype}; a golden file holds one dtype"
            )

    input_seed = given.get("input_seed")
    meta: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": registry.config_dict(cfg),
        "model": given.get("model"),
        "dtype": dtype,
        "backend": given.get("backend") or backend.backend_name(backend.namespace(x)),
        "swinref_version": __version__,
        "weights_digest": params_digest(params),
        "weights_source": given.get("weights_source", "unspecified"),
        "input_seed": input_seed,
        "batch": int(host_x.shape[0]),
        "intermediates": names,
    }
    if input_seed is not None:
        meta["input_recipe"] = input_recipe(input_seed, host_x.shape, dtype)
    problems = numerics_warnings(params, tensors)
    if problems:  # absent when all is well, so ordinary golden files keep their bytes
        meta["numerics_warnings"] = problems
        for p in problems:
            warnings.warn(p, RuntimeWarning, stacklevel=2)

    from safetensors.numpy import save  # noqa: PLC0415

    header = json.dumps(meta, sort_keys=True, separators=(",", ":"))
    blob = save(tensors, metadata={METADATA_KEY: header})
    atomic_write(path, blob, overwrite=overwrite, what="golden file")
    return meta


def _names(names: list[str]) -> str:
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def _max_finite(v: np.ndarray) -> float:
    finite = np.abs(v[np.isfinite(v)])
    return float(finite.max()) if finite.size else 0.0


def numerics_warnings(params: Mapping[str, Any], tensors: Mapping[str, np.ndarray]) -> list[str]:
    """Reasons to distrust a golden file's numbers: non-finite weights or tensors, huge activations.

    Huge: some value's square overflows the dtype (|v| > sqrt(max), about 1.3e154 in float64 and
    1.8e19 in float32), so a LayerNorm over it has an infinite variance. swinref then normalises
    the row to 0 (it subtracts the mean first); PyTorch's fused kernel returns NaN; neither is a
    meaningful golden value.
    """
    out = []
    bad_w = [n for n in sorted(params) if not np.isfinite(backend.to_numpy(params[n])).all()]
    if bad_w:
        out.append(f"weights hold NaN or Inf: {_names(bad_w)}")
    bad_t = [n for n, v in tensors.items() if v.dtype.kind == "f" and not np.isfinite(v).all()]
    if bad_t:
        out.append(f"tensors hold NaN or Inf: {_names(bad_t)}")
    huge = [
        n
        for n, v in tensors.items()
        if v.dtype.kind == "f" and _max_finite(v) > math.sqrt(float(np.finfo(v.dtype).max))
    ]
    if huge:
        out.append(
            f"values whose square overflows {next(iter(tensors.values())).dtype} (LayerNorm variance "
            f"would be Inf; PyTorch gives NaN there): {_names(huge)}"
        )
    return out


# ----- reading -------------------------------------------------------------------------------
def _parse_metadata(header: Mapping[str, Any], path: str) -> dict[str, Any]:
    stored = header.get("__metadata__") or {}
    if METADATA_KEY not in stored:
        keys = sorted(stored) or "none"
        raise GoldenFileError(
            f"{path} is a safetensors file but not a swinref golden file: it has no "
            f"{METADATA_KEY!r} metadata entry (metadata keys: {keys})"
        )
    try:
        meta = json.loads(stored[METADATA_KEY])
    except json.JSONDecodeError as e:
        raise GoldenFileError(f"{path}: the {METADATA_KEY!r} metadata is not valid JSON ({e})") from e
    if not isinstance(meta, dict):
        raise GoldenFileError(f"{path}: the {METADATA_KEY!r} metadata must be a JSON object")
    if meta.get("format") != FORMAT:
        raise GoldenFileError(f"{path}: metadata format is {meta.get('format')!r}, expected {FORMAT!r}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise GoldenFileError(
            f"{path}: golden format version {meta.get('format_version')!r} is not "
            f"supported; this swinref reads version {FORMAT_VERSION}"
        )
    missing = [f for f in REQUIRED_FIELDS if f not in meta]
    if missing:
        raise GoldenFileError(
            f"{path}: golden metadata lacks required fields {missing}; "
            f"expected all of {list(REQUIRED_FIELDS)}"
        )
    try:
        registry.config_from(meta["config"])
    except (TypeError, ValueError) as e:
        raise GoldenFileError(f"{path}: golden metadata holds an invalid model config: {e}") from e
    if not isinstance(meta["intermediates"], list):
        raise GoldenFileError(f"{path}: metadata 'intermediates' must be a list of names")
    return meta


def read_golden(path: str | os.PathLike) -> Golden:
    """Read and check a golden file: tensors ordered input, intermediates (forward order), logits.

    Raises FileNotFoundError for a missing file and :class:`GoldenFileError` for a truncated
    file, a file that is not safetensors, a safetensors file without swinref metadata, or
    metadata that does not parse or lacks required fields. Never unpickles.
    """
    path = os.fspath(path)
    try:
        data, header = read_safetensors_file(path, what="golden file")
    except InputFileError as e:
        raise GoldenFileError(str(e)) from e
    except OSError as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise GoldenFileError(f"cannot read golden file {path}: {e.strerror or e}") from e
    meta = _parse_metadata(header, path)

    from safetensors.numpy import load  # noqa: PLC0415

    try:
        stored = load(data)
    except Exception as e:  # safetensors raises its own error type for inconsistent headers
        raise GoldenFileError(f"{path}: cannot read its tensors: {type(e).__name__}: {e}") from e
    names = ["input"] + [INTERMEDIATE_PREFIX + n for n in meta["intermediates"]] + ["logits"]
    absent = [n for n in names if n not in stored]
    if absent:
        raise GoldenFileError(f"{path}: tensors named in the metadata are missing: {absent}")
    extra = sorted(set(stored) - set(names))
    tensors = {n: stored[n] for n in names + extra}
    if str(tensors["input"].dtype) != meta["dtype"]:
        raise GoldenFileError(
            f"{path}: input is {tensors['input'].dtype} but the metadata says {meta['dtype']}"
        )
    return Golden(tensors, meta)


# ----- comparing -----------------------------------------------------------------------------
@dataclass(frozen=True)
class TensorComparison:
    """One tensor of a comparison. ``problem`` is set when it could not be compared elementwise."""

    name: str
    shape_a: tuple[int, ...] | None
    shape_b: tuple[int, ...] | None
    dtype_a: str | None
    dtype_b: str | None
    max_abs: float | None = None
    max_rel: float | None = None
    worst_index: tuple[int, ...] | None = None
    passed: bool = False
    problem: str | None = None


@dataclass(frozen=True)
class Comparison:
    """Every tensor of A against B under ``|A - B| <= atol + rtol * |A|``."""

    rows: list[TensorComparison]
    atol: float
    rtol: float
    notes: list[str]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.rows)

    @property
    def failures(self) -> list[TensorComparison]:
        return [r for r in self.rows if not r.passed]


def default_tolerance(dtype_a: str, dtype_b: str) -> tuple[float, float]:
    """(atol, rtol): 1e-10 when both files are float64, 1e-4 when either is float32; rtol 0."""
    if dtype_a == dtype_b == "float64":
        return FLOAT64_ATOL, DEFAULT_RTOL
    return FLOAT32_ATOL, DEFAULT_RTOL


def compare_arrays(name: str, a: np.ndarray, b: np.ndarray, *, atol: float, rtol: float) -> TensorComparison:
    """Elementwise check of B against the reference A.

    Equal elements (same infinity, NaN in both) count as a difference of 0; any other NaN or
    infinity in either counts as an infinite difference. ``max_rel`` is ``|A - B| / |A|``.
    """
    shapes: dict[str, Any] = dict(
        name=name, shape_a=tuple(a.shape), shape_b=tuple(b.shape), dtype_a=str(a.dtype), dtype_b=str(b.dtype)
    )
    if a.shape != b.shape:
        return TensorComparison(**shapes, problem=f"shape {tuple(a.shape)} vs {tuple(b.shape)}")
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    same = (a64 == b64) | (np.isnan(a64) & np.isnan(b64))
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        diff = np.where(same, 0.0, np.abs(a64 - b64))
        diff = np.where(np.isnan(diff), np.inf, diff)
        rel = np.where(diff == 0, 0.0, diff / np.abs(a64))
        rel = np.where(np.isnan(rel), np.inf, rel)  # a NaN reference: no relative scale
        excess = np.where(same, -np.inf, diff - (atol + rtol * np.abs(a64)))
    if diff.size == 0:
        return TensorComparison(**shapes, max_abs=0.0, max_rel=0.0, worst_index=None, passed=True)
    excess = np.where(np.isnan(excess), np.inf, excess)  # inf - inf: an infinity against a number
    worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(excess)), diff.shape))
    max_abs = float(diff.max())
    return TensorComparison(
        **shapes,
        max_abs=max_abs,
        max_rel=float(rel.max()),
        worst_index=worst if max_abs > 0 else None,
        passed=bool(np.all(excess <= 0)),
    )


def _ordered_names(a: Golden, b: Golden) -> list[str]:
    """A's tensors in file order; B-only tensors go before ``logits`` so logits stay last."""
    names = [n for n in a.tensors if n != "logits"]
    names += [n for n in b.tensors if n not in a.tensors and n != "logits"]
    if "logits" in a.tensors or "logits" in b.tensors:
        names.append("logits")
    return names


def _metadata_notes(a: Golden, b: Golden) -> list[str]:
    notes = []
    for field in ("config", "weights_digest", "input_seed", "batch", "dtype", "backend"):
        va: Any = a.metadata.get(field)  # JSON values; the config is an object
        vb: Any = b.metadata.get(field)
        if va != vb:
            if field == "config":
                diff = {
                    k: (va.get(k), vb.get(k)) for k in sorted(set(va) | set(vb)) if va.get(k) != vb.get(k)
                }
                notes.append(f"configs differ: {diff}")
            else:
                notes.append(f"{field} differs: A {va!r}, B {vb!r}")
    return notes


def compare_golden(
    a: Golden | str | os.PathLike,
    b: Golden | str | os.PathLike,
    *,
    atol: float | None = None,
    rtol: float | None = None,
) -> Comparison:
    """Compare every tensor of golden file B against the reference A.

    Tolerance: ``|A - B| <= atol + rtol * |A|`` elementwise; ``None`` takes
    :func:`default_tolerance` of the two files' dtypes. A tensor missing from either file or
    with different shapes fails. Metadata differences (weights, config, seeds) are listed in
    ``notes`` and do not fail by themselves.
    """
    a = a if isinstance(a, Golden) else read_golden(a)
    b = b if isinstance(b, Golden) else read_golden(b)
    d_atol, d_rtol = default_tolerance(a.metadata["dtype"], b.metadata["dtype"])
    atol = d_atol if atol is None else float(atol)
    rtol = d_rtol if rtol is None else float(rtol)
    for label, v in (("atol", atol), ("rtol", rtol)):
        if not (math.isfinite(v) and v >= 0):
            raise ValueError(f"{label} must be a finite number >= 0, got {v}")
    rows = []
    for name in _ordered_names(a, b):
        ta, tb = a.tensors.get(name), b.tensors.get(name)
        if ta is None or tb is None:
            rows.append(
                TensorComparison(
                    name=name,
                    shape_a=None if ta is None else tuple(ta.shape),
                    shape_b=None if tb is None else tuple(tb.shape),
                    dtype_a=None if ta is None else str(ta.dtype),
                    dtype_b=None if tb is None else str(tb.dtype),
                    problem="missing in A" if ta is None else "missing in B",
                )
            )
            continue
        rows.append(compare_arrays(name, ta, tb, atol=atol, rtol=rtol))
    return Comparison(rows=rows, atol=atol, rtol=rtol, notes=_metadata_notes(a, b))


def sha256_file(path: str) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open_regular(path) as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
