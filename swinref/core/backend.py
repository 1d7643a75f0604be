"""The one module that knows about array-api-compat and about specific array libraries.

Everything else in swinref receives an array namespace ``xp`` and uses only the Python array API
standard. This module turns arrays into namespaces, moves parameter mappings between namespaces
and devices, and converts results back to NumPy for files and reports.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, overload

import array_api_compat
import numpy as np

#: Backends swinref is tested on, by the name users pass on the command line.
BACKENDS = ("numpy", "array_api_strict", "cupy", "torch", "jax")


def namespace(*arrays: Any):
    """The array-API namespace shared by ``arrays`` (raises if they come from different libraries)."""
    return array_api_compat.array_namespace(*arrays)


def device(x: Any):
    """The device ``x`` lives on, in its library's own terms; None where it has none.

    A JAX array traced inside ``jax.jit`` has no device (placement is decided when the compiled
    function runs): this returns None and constants made for it are left for jit to place. Arrays
    of libraries without a ``device`` attribute (dask.array) get array-api-compat's answer, or
    None where it has none.
    """
    try:
        return array_api_compat.device(x)
    except AttributeError:
        return None


def get_namespace(name: str, *, float64: bool = False):
    """The array-API namespace of a backend by name: one of :data:`BACKENDS`.

    ``float64=True`` asks for a namespace that holds float64: for JAX this switches on
    ``jax_enable_x64`` for the whole process (JAX's own switch; it must happen before any JAX
    array is made). Command-line runs use it; a library caller that has not enabled x64 gets a
    ValueError from :func:`to_namespace` instead of silent float32.

    Raises ValueError for an unknown name and ImportError (with the install hint) for a library
    that is not installed.
    """
    modules = {
        "numpy": "array_api_compat.numpy",
        "array_api_strict": "array_api_strict",
        "cupy": "array_api_compat.cupy",
        "torch": "array_api_compat.torch",
        "jax": "jax.numpy",  # array-API compatible itself; array-api-compat returns it unwrapped
    }
    if name not in modules:
        raise ValueError(f"unknown backend {name!r}; expected one of {', '.join(BACKENDS)}")
    try:
        xp = importlib.import_module(modules[name])
        if name == "jax" and float64:
            importlib.import_module("jax").config.update("jax_enable_x64", True)
        return xp
    except ImportError as e:
        hint = {"cupy": " (pip install 'swinref[gpu]')", "jax": " (pip install 'swinref[jax]')"}.get(name, "")
        raise ImportError(f"backend {name!r} is not available: {e}{hint}") from e


def backend_name(xp) -> str:
    """The short backend name of a namespace (``"numpy"``, ``"cupy"``, ...)."""
    if array_api_compat.is_numpy_namespace(xp):
        return "numpy"
    if array_api_compat.is_cupy_namespace(xp):
        return "cupy"
    if array_api_compat.is_torch_namespace(xp):
        return "torch"
    if array_api_compat.is_array_api_strict_namespace(xp):
        return "array_api_strict"
    if array_api_compat.is_jax_namespace(xp):
        return "jax"
    return getattr(xp, "__name__", repr(xp))


def is_numpy(xp) -> bool:
    """True for NumPy's namespace (plain or array-api-compat wrapped)."""
    return array_api_compat.is_numpy_namespace(xp)


def to_numpy(x: Any) -> np.ndarray:
    """A NumPy copy of any supported array (from any device), dtype kept."""
    if isinstance(x, np.ndarray):
        return x
    if array_api_compat.is_cupy_array(x):
        return x.get()
    if array_api_compat.is_torch_array(x):
        x = x.detach().cpu()
        if str(x.dtype) == "torch.bfloat16":  # NumPy has no bfloat16: widen, exactly
            x = x.float()
        return x.numpy()
    if array_api_compat.is_jax_array(x):
        import jax  # noqa: PLC0415

        return np.asarray(jax.device_get(x))  # from any device; fails on a traced array, as it must
    if array_api_compat.is_array_api_strict_namespace(namespace(x)):
        import array_api_strict  # noqa: PLC0415

        x = x.to_device(array_api_strict.Device("CPU_DEVICE"))
        return np.from_dlpack(x)
    return np.asarray(x)


@overload
def float_dtype_name(dtype: None) -> None: ...
@overload
def float_dtype_name(dtype: object) -> str: ...
def float_dtype_name(dtype: Any) -> str | None:
    """'float32' / 'float64' for a dtype given as a string or any library's dtype object.

    None stays None; any other dtype raises ValueError."""
    if dtype is None:
        return None
    name = dtype if isinstance(dtype, str) else str(dtype).replace("torch.", "")
    name = name.rsplit(".", 1)[-1].strip("'>")
    if name not in ("float32", "float64"):
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    return name


def to_namespace(params: Mapping[str, Any], xp, *, device: Any = None, dtype: Any = None) -> dict[str, Any]:
    """Move every array of ``params`` into namespace ``xp`` (and onto ``device``), optionally cast.

    This is the one call that readies weights for a backend::

        params = swinref.to_namespace(params, cupy_xp)                    # GPU, dtype kept
        params = swinref.to_namespace(params, np_xp, dtype="float32")     # explicit cast

    ``dtype`` is ``None`` (keep each array's dtype), ``"float32"`` or ``"float64"``. Integer
    arrays are never cast. A float64 array for a backend that cannot hold float64 (JAX with its
    default ``jax_enable_x64=False``) raises ValueError instead of arriving as float32.
    """
    target = float_dtype_name(dtype)
    out = {}
    for name, value in params.items():
        host = to_numpy(value)
        if target is not None and host.dtype.kind == "f":
            host = host.astype(target, copy=False)
        moved = _from_numpy(xp, host, device)
        if host.dtype == np.float64 and float_dtype_name(moved.dtype) != "float64":
            raise ValueError(_no_float64(xp, name, moved.dtype))
        out[name] = moved
    return out


def _no_float64(xp, name: str, got: Any) -> str:
    what = f"float64 was requested for {name!r} but backend {backend_name(xp)!r} made it {got}"
    if array_api_compat.is_jax_namespace(xp):
        return (
            f"{what}: JAX holds float64 only with x64 enabled; call "
            'jax.config.update("jax_enable_x64", True) before creating arrays, or set '
            "JAX_ENABLE_X64=1, or use dtype='float32'"
        )
    return f"{what}; use dtype='float32'"


def _from_numpy(xp, host: np.ndarray, device_: Any):
    host = np.ascontiguousarray(host)
    if array_api_compat.is_torch_namespace(xp):
        import torch  # noqa: PLC0415

        t = torch.from_numpy(host.copy())
        return t if device_ is None else t.to(device_)
    if array_api_compat.is_array_api_strict_namespace(xp):
        a = xp.asarray(host)
        return a if device_ is None else a.to_device(device_)
    if device_ is None:
        return xp.asarray(host)
    return xp.asarray(host, device=device_)


def from_host(host: np.ndarray, like: Any, *, dtype: Any = None):
    """A NumPy constant as an array in ``like``'s namespace and on its device, cast to ``dtype``.

    This is how cached host constants (indices, masks, tables) reach the forward pass; nothing
    device-side is ever cached.
    """
    xp = namespace(like)
    a = _from_numpy(xp, host, device(like))
    return a if dtype is None else xp.astype(a, dtype)


def like(x: Any, value: Any):
    """``value`` (NumPy array or Python data) as an array in x's namespace, on x's device."""
    xp = namespace(x)
    host = np.asarray(value)
    return _from_numpy(xp, host, device(x))


# ----- elementwise work on NumPy in blocks -------------------------------------------------------
#: Elements per block of :func:`map_blocks`: a float64 block and the few temporaries of an
#: elementwise chain stay in cache (measured on swin_t's GELU: 4096 and 16384 are 3x and 1.5x slower,
#: per-call overhead).
BLOCK_ELEMENTS = 65536

_POOL: dict[int, ThreadPoolExecutor] = {}
if hasattr(os, "register_at_fork"):  # a forked child has none of the parent's pool threads
    os.register_at_fork(after_in_child=_POOL.clear)


def worker_threads() -> int:
    """Threads :func:`map_blocks` uses: ``SWINREF_NUM_THREADS``, else the BLAS thread setting
    (``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``, first set), else the CPUs
    this process may run on."""
    for var in ("SWINREF_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        value = os.environ.get(var, "")
        if value.strip().isdigit() and int(value) > 0:
            return int(value)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def map_blocks(
    fn: Callable[..., Any],
    x: np.ndarray,
    *,
    in_place: bool = False,
    row: int | None = None,
    block: int | None = None,
    threads: int | None = None,
    writes: bool = False,
) -> np.ndarray:
    """``fn`` applied to a NumPy array block by block, about :data:`BLOCK_ELEMENTS` at a time.

    ``row=None``: blocks are contiguous 1-D pieces and ``fn`` must be elementwise (each output
    element depends on its own input element only). ``row=n``: x's last axis has length n, blocks
    are 2-D ``(rows, n)`` and ``fn`` must work row by row (softmax, LayerNorm over the last axis).
    ``fn`` returns a block of its input's shape and dtype; the result then does not depend on the
    blocking or the thread count, bit for bit. Blocks run in a thread pool of
    :func:`worker_threads` threads, the calling thread included (NumPy releases the GIL inside its
    ufuncs). Returns a new array of x's shape; ``in_place=True`` writes the result over x instead,
    when x is a writeable C-contiguous array that the caller never reads again, and returns it.
    ``writes=True``: ``fn(block, dest)`` writes its result into ``dest`` (which may be ``block``
    itself when in place) instead of returning it, so no block-sized result is allocated.
    ``block`` (elements, default :data:`BLOCK_ELEMENTS`) and ``threads`` (default
    :func:`worker_threads`) override the defaults; ``threads=1`` for an ``fn`` that calls BLAS,
    which has threads of its own.
    """
    if row is not None and (x.ndim == 0 or x.shape[-1] != row or row < 1):
        raise ValueError(f"map_blocks: row={row} needs an array whose last axis is {row}, got {x.shape}")
    own = in_place and x.flags.c_contiguous and x.flags.writeable
    flat = np.ascontiguousarray(x).reshape(-1) if row is None else np.ascontiguousarray(x).reshape(-1, row)
    step = max(1, (BLOCK_ELEMENTS if block is None else block) // (row or 1))
    n = flat.shape[0]
    if n <= step and not own and not writes:
        return np.asarray(fn(flat)).reshape(x.shape)
    out = flat if own else np.empty_like(flat)

    errors = np.geterr()  # the caller's np.errstate, which pool threads do not inherit

    def run(start: int) -> None:
        with np.errstate(**errors):
            if writes:
                fn(flat[start : start + step], out[start : start + step])
            else:
                out[start : start + step] = fn(flat[start : start + step])

    def run_share(share: range) -> None:
        for start in share:
            run(start)

    starts = range(0, n, step)
    threads = min(worker_threads() if threads is None else threads, len(starts))
    if threads <= 1:
        for start in starts:
            run(start)
        return out.reshape(x.shape)
    pool = _POOL.get(threads)
    if pool is None:  # threads - 1 workers: the calling thread takes a share too
        pool = _POOL[threads] = ThreadPoolExecutor(threads - 1, thread_name_prefix="swinref")
    shares = [starts[i::threads] for i in range(threads)]
    futures = [pool.submit(run_share, share) for share in shares[1:]]
    run_share(shares[0])
    for future in futures:
        future.result()  # re-raises a block's error
    return out.reshape(x.shape)
