"""Golden files: one forward pass frozen in a safetensors file, and the comparison of two of them.

A golden file holds the input, the logits and (optionally) every named intermediate of
:func:`swinref.forward`, plus a JSON header that says exactly how they were made:

    tensors   ``input``                      (B, in_chans, H, W)
              ``intermediates/<name>``       one per forward intermediate, e.g.
                                             ``intermediates/layers.0.blocks.1`` (B, h, w, C)
              ``logits``                     (B, num_classes)
    metadata  safetensors metadata key ``swinref``: a JSON object with the format name and
              version, the model config (``SwinConfig.to_dict()``), model name, dtype, backend,
              package version, weight digest (:func:`swinref.params_digest`), weights source,
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

import argparse
import hashlib
import json
import math
import os
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from . import backend
from .config import SwinConfig

FORMAT = "swinref-golden"
FORMAT_VERSION = 1
METADATA_KEY = "swinref"  # the one safetensors metadata entry that holds our JSON header
INTERMEDIATE_PREFIX = "intermediates/"

REQUIRED_FIELDS = (
    "format", "format_version", "config", "model", "dtype", "backend", "swinref_version",
    "weights_digest", "weights_source", "input_seed", "batch", "intermediates",
)
# provenance the caller knows and write_golden cannot derive from the arrays
CALLER_FIELDS = ("model", "backend", "weights_source", "input_seed")

# default tolerances of `compare`: |A - B| <= atol + rtol * |A|
FLOAT64_ATOL = 1e-10  # float64 ports differ by summation order, ~1e-14 on swin_t logits
FLOAT32_ATOL = 1e-4  # float32 rounding accumulated over 12 blocks, activations of order 1
DEFAULT_RTOL = 0.0


class GoldenFileError(ValueError):
    """A file is not a readable swinref golden file: truncated, not safetensors, or foreign."""


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
    def config(self) -> SwinConfig:
        return SwinConfig.from_dict(self.metadata["config"])


# ----- the seeded input ----------------------------------------------------------------------
def golden_input(cfg: SwinConfig, *, batch: int = 1, seed: int = 0, dtype: str = "float64") -> np.ndarray:
    """The seeded golden input: ``default_rng(seed).standard_normal((B, in_chans, H, W))``.

    Drawn in float64 by NumPy's PCG64 generator, then cast to ``dtype`` (float32 or float64).
    """
    if not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive int, got {batch!r}")
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    H, W = cfg.image_hw
    x = np.random.default_rng(seed).standard_normal((batch, cfg.in_chans, H, W))
    return x.astype(dtype)


def input_recipe(seed: int, shape: tuple[int, ...], dtype: str) -> str:
    """The input generation spelled out, stored in the metadata next to the seed."""
    cast = "" if dtype == "float64" else f", cast to {dtype}"
    return f"numpy.random.default_rng({seed}).standard_normal({tuple(shape)}) in float64{cast}"


# ----- writing -------------------------------------------------------------------------------
def write_golden(path: str | os.PathLike, *, cfg: SwinConfig, params: Mapping[str, Any], x, logits,
                 intermediates: Mapping[str, Any] | None = None,
                 metadata: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Write a golden file and return the metadata written.

    x: (B, in_chans, H, W) float32/float64 input; logits: (B, num_classes); intermediates: the
    mapping ``forward(..., return_intermediates=True)`` returns, or None to store none (its
    ``logits`` entry is the same array as ``logits`` and is stored once). Arrays may come from
    any backend. ``params`` is only digested. ``metadata`` holds the provenance the caller knows:
    ``model`` (name or None), ``backend`` (default: the namespace of x), ``weights_source``
    (``"seeded init seed=N"`` or ``"<path> sha256=<hex>"``) and ``input_seed`` (None when the
    input was not generated by :func:`golden_input`).
    """
    from . import __version__
    from .weights import params_digest

    if not isinstance(cfg, SwinConfig):
        raise TypeError(f"cfg must be a SwinConfig, got {type(cfg).__name__}")
    given = dict(metadata or {})
    unknown = sorted(set(given) - set(CALLER_FIELDS))
    if unknown:
        raise ValueError(f"unknown golden metadata fields {unknown}; "
                         f"expected a subset of {list(CALLER_FIELDS)}")
    host_x = np.ascontiguousarray(backend.to_numpy(x))
    host_logits = np.ascontiguousarray(backend.to_numpy(logits))
    dtype = str(host_x.dtype)
    if dtype not in ("float32", "float64"):
        raise TypeError(f"input dtype must be float32 or float64, got {dtype}")
    if host_x.ndim != 4 or host_logits.ndim != 2 or host_logits.shape[0] != host_x.shape[0]:
        raise ValueError(f"expected x (B, C, H, W) and logits (B, classes); got {host_x.shape} "
                         f"and {host_logits.shape}")
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
            raise TypeError(f"tensor {name!r} is {value.dtype} but the input is {dtype}; "
                            "a golden file holds one dtype")

    input_seed = given.get("input_seed")
    meta: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": cfg.to_dict(),
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

    from safetensors.numpy import save

    header = json.dumps(meta, sort_keys=True, separators=(",", ":"))
    blob = save(tensors, metadata={METADATA_KEY: header})
    with open(os.fspath(path), "wb") as f:
        f.write(blob)
    return meta


# ----- reading -------------------------------------------------------------------------------
def _parse_header(data: bytes, path: str) -> dict[str, Any]:
    """The safetensors JSON header, with clear errors for short, foreign and truncated files."""
    not_st = f"{path} is not a safetensors file"
    if len(data) < 8:
        raise GoldenFileError(f"{not_st}: it has {len(data)} bytes, fewer than the 8-byte header length")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise GoldenFileError(
            f"{not_st} or is truncated: its header length field says {n} bytes but only "
            f"{len(data) - 8} follow"
        )
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise GoldenFileError(f"{not_st}: its header is not JSON ({e})") from e
    if not isinstance(header, dict):
        raise GoldenFileError(f"{not_st}: its header is not a JSON object")
    end = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            end = max(end, int(info["data_offsets"][1]))
        except (TypeError, KeyError, IndexError, ValueError) as e:
            raise GoldenFileError(f"{not_st}: header entry {name!r} has no data_offsets") from e
    if 8 + n + end > len(data):
        raise GoldenFileError(
            f"{path} is truncated: its tensors need {8 + n + end} bytes but the file has {len(data)}"
        )
    return header


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
        raise GoldenFileError(f"{path}: golden format version {meta.get('format_version')!r} is not "
                              f"supported; this swinref reads version {FORMAT_VERSION}")
    missing = [f for f in REQUIRED_FIELDS if f not in meta]
    if missing:
        raise GoldenFileError(f"{path}: golden metadata lacks required fields {missing}; "
                              f"expected all of {list(REQUIRED_FIELDS)}")
    try:
        SwinConfig.from_dict(meta["config"])
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
    if not os.path.exists(path):
        raise FileNotFoundError(f"golden file not found: {path}")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise GoldenFileError(f"cannot read golden file {path}: {e}") from e
    header = _parse_header(data, path)
    meta = _parse_metadata(header, path)

    from safetensors.numpy import load

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
        raise GoldenFileError(f"{path}: input is {tensors['input'].dtype} but the metadata says "
                              f"{meta['dtype']}")
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
    shapes = dict(name=name, shape_a=tuple(a.shape), shape_b=tuple(b.shape),
                  dtype_a=str(a.dtype), dtype_b=str(b.dtype))
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
    return TensorComparison(**shapes, max_abs=max_abs, max_rel=float(rel.max()),
                            worst_index=worst if max_abs > 0 else None, passed=bool(np.all(excess <= 0)))


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
        va, vb = a.metadata.get(field), b.metadata.get(field)
        if va != vb:
            if field == "config":
                diff = {k: (va.get(k), vb.get(k)) for k in sorted(set(va) | set(vb))
                        if va.get(k) != vb.get(k)}
                notes.append(f"configs differ: {diff}")
            else:
                notes.append(f"{field} differs: A {va!r}, B {vb!r}")
    return notes


def compare_golden(a: Golden | str | os.PathLike, b: Golden | str | os.PathLike, *,
                   atol: float | None = None, rtol: float | None = None) -> Comparison:
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
            rows.append(TensorComparison(
                name=name,
                shape_a=None if ta is None else tuple(ta.shape),
                shape_b=None if tb is None else tuple(tb.shape),
                dtype_a=None if ta is None else str(ta.dtype),
                dtype_b=None if tb is None else str(tb.dtype),
                problem="missing in A" if ta is None else "missing in B",
            ))
            continue
        rows.append(compare_arrays(name, ta, tb, atol=atol, rtol=rtol))
    return Comparison(rows=rows, atol=atol, rtol=rtol, notes=_metadata_notes(a, b))


# ----- command line --------------------------------------------------------------------------
GOLDEN_HELP = """\
Run one forward pass and write a golden file (safetensors): the input, every named intermediate
and the logits, with a JSON header under the metadata key 'swinref'.

Weights: seeded init (swinref.init_params(cfg, seed=SEED)) unless --weights gives a file
(.safetensors, .npz or .pth, timm names).
Input: numpy.random.default_rng(INPUT_SEED).standard_normal((BATCH, in_chans, H, W)), drawn in
float64 with NumPy's PCG64 and cast to --dtype; the input is also stored in the file.
The same arguments always write the same bytes (no timestamps).
"""


def _sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _stdout_console():
    import sys

    from rich.console import Console

    # a pipe or file gets 160 columns so that tables of long tensor names are not squeezed
    return Console(width=None if sys.stdout.isatty() else 160, highlight=False)


def _human_size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _cmd_golden(args: argparse.Namespace) -> int:
    if args.images is not None:  # a whole image set into a store: swinref/goldenset.py
        from .goldenset import cmd_golden_images

        return cmd_golden_images(args)
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from .model import forward
    from .weights import init_params, load_params

    start = time.perf_counter()
    if args.weights is not None and args.seed is not None:
        raise ValueError("--seed picks seeded init weights; it cannot be combined with --weights FILE")
    cfg = SwinConfig.named(args.model)
    xp = backend.get_namespace(args.backend)
    out = args.out or f"golden_{args.model}.safetensors"

    err = Console(stderr=True)
    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                        TimeElapsedColumn(), console=err, disable=not err.is_terminal)
    with progress:
        task = progress.add_task("input", total=4)
        x = golden_input(cfg, batch=args.batch, seed=args.input_seed, dtype=args.dtype)
        progress.update(task, advance=1, description="weights")
        if args.weights is None:
            seed = 0 if args.seed is None else args.seed
            params = init_params(cfg, seed=seed, dtype=args.dtype)
            source = f"seeded init seed={seed}"
        else:
            params = load_params(args.weights, cfg, dtype=args.dtype)
            source = f"{args.weights} sha256={_sha256_file(args.weights)}"
        progress.update(task, advance=1, description=f"forward ({args.backend}, {args.dtype})")
        on_backend = backend.to_namespace(params, xp)
        logits, inter = forward(on_backend, backend.to_namespace({"x": x}, xp)["x"], cfg,
                                return_intermediates=True)
        progress.update(task, advance=1, description="write")
        logits = backend.to_numpy(logits)
        write_golden(out, cfg=cfg, params=params, x=x, logits=logits,
                     intermediates=None if args.no_intermediates else inter,
                     metadata=dict(model=args.model, backend=args.backend,
                                   weights_source=source, input_seed=args.input_seed))
        progress.update(task, advance=1, description="done")
    elapsed = time.perf_counter() - start

    console = _stdout_console()
    n_tensors = 2 + (0 if args.no_intermediates else len([n for n in inter if n != "logits"]))
    top = np.argsort(-logits[0], kind="stable")[:5]
    console.print(f"[bold]wrote[/bold] {out}  ({_human_size(os.path.getsize(out))}, {n_tensors} tensors)")
    console.print(f"model {args.model}, {args.dtype} on {args.backend}, weights: {source}, "
                  f"input seed {args.input_seed}, batch {args.batch}")
    console.print(f"logits shape {tuple(logits.shape)}; top-5 classes of image 0: "
                  + ", ".join(f"{int(i)} ({logits[0, i]:.6g})" for i in top))
    console.print(f"wall time {elapsed:.2f} s")
    return 0


def _pair_text(a, b) -> str:
    """One value when A and B agree or one is absent, else ``A vs B``."""
    if a == b or b is None:
        return str(a)
    return str(b) if a is None else f"{a} vs {b}"


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3e}"


def _cmd_compare(args: argparse.Namespace) -> int:
    if os.path.isdir(args.a) and os.path.isdir(args.b):  # two golden set stores: swinref/goldenset.py
        from .goldenset import cmd_compare_stores

        return cmd_compare_stores(args)
    from rich.table import Table

    a, b = read_golden(args.a), read_golden(args.b)
    result = compare_golden(a, b, atol=args.atol, rtol=args.rtol)
    console = _stdout_console()
    why = ("given" if args.atol is not None or args.rtol is not None
           else f"default for {a.metadata['dtype']} vs {b.metadata['dtype']}")
    console.print(f"A (reference) {args.a}\nB             {args.b}")
    console.print(f"tolerance: |A - B| <= atol + rtol * |A| with atol={result.atol:g}, "
                  f"rtol={result.rtol:g} ({why})")

    table = Table(show_lines=False)
    table.add_column("tensor", no_wrap=True)
    for col in ("shape", "dtype", "max abs", "max rel", "worst index", "result"):
        table.add_column(col, no_wrap=col in ("max abs", "max rel", "result"))
    for r in result.rows:
        shape, dtype = _pair_text(r.shape_a, r.shape_b), _pair_text(r.dtype_a, r.dtype_b)
        problem = f" ({r.problem})" if r.problem else ""
        verdict = "[green]pass[/green]" if r.passed else f"[red]FAIL[/red]{problem}"
        table.add_row(r.name, shape, dtype, _fmt(r.max_abs), _fmt(r.max_rel),
                      "-" if r.worst_index is None else str(r.worst_index), verdict)
    console.print(table)
    for note in result.notes:
        console.print(f"note: {note}")

    failures = result.failures
    if not failures:
        worst = max((r.max_abs for r in result.rows if r.max_abs is not None), default=0.0)
        console.print(f"[green]PASS[/green]: all {len(result.rows)} tensors within tolerance "
                      f"(largest abs difference {worst:.3e})")
        return 0
    listed = ", ".join(r.name + (f" ({r.problem})" if r.problem else "") for r in failures)
    console.print(f"[red]FAIL[/red]: {len(failures)} of {len(result.rows)} tensors beyond tolerance "
                  f"or not comparable; first in forward order: {failures[0].name}; all: {listed}")
    return 1


def register(sub) -> None:
    """Add the ``golden`` and ``compare`` commands to the ``swinref`` command line."""
    from .backend import BACKENDS
    from .config import MODEL_ZOO, SHORT_NAMES

    p = sub.add_parser("golden", help="write a golden file (input, intermediates, logits)",
                       description=GOLDEN_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="swin_t",
                   help=f"model name, one of {', '.join([*SHORT_NAMES, *MODEL_ZOO])} (default swin_t)")
    p.add_argument("--weights", metavar="FILE", default=None,
                   help="weights file (.safetensors, .npz, .pth; timm names); default: seeded init")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the initialised weights, swinref.init_params(cfg, seed=SEED) (default 0)")
    p.add_argument("--input-seed", type=int, default=0,
                   help="seed of the input, numpy.random.default_rng(INPUT_SEED).standard_normal (default 0)")
    p.add_argument("--batch", type=int, default=1, help="images in the input batch (default 1)")
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    p.add_argument("--backend", choices=BACKENDS, default="numpy",
                   help="array library that runs the forward pass (default numpy)")
    p.add_argument("--no-intermediates", action="store_true", help="store only the input and the logits")
    p.add_argument("--out", metavar="FILE", default=None,
                   help="output path (default golden_MODEL.safetensors)")
    from .goldenset import add_compare_arguments, add_image_arguments

    add_image_arguments(p)
    p.set_defaults(func=_cmd_golden)

    c = sub.add_parser(
        "compare", help="compare two golden files tensor by tensor",
        description="Compare every tensor of golden file B against the reference A: "
                    "|A - B| <= atol + rtol * |A|. Default atol 1e-10 when both files are float64, "
                    "1e-4 when either is float32; rtol 0. Exit 0 when all pass, 1 when any tensor is "
                    "beyond tolerance, missing or mis-shaped, 2 for an unreadable file.")
    c.add_argument("a", metavar="A", help="reference golden file")
    c.add_argument("b", metavar="B", help="golden file to check against A")
    c.add_argument("--atol", type=float, default=None, help="absolute tolerance (default by dtype)")
    c.add_argument("--rtol", type=float, default=None, help="relative tolerance (default 0)")
    add_compare_arguments(c)
    c.set_defaults(func=_cmd_compare)
