"""The one cache of swinref: geometry constants (relative position indices, shift masks, V2
coordinate tables, gather indices of the fast path), built on the host as NumPy arrays.

Nothing here depends on a params value, a batch size, an array library or a device, so no traced
or device array can outlive the call that made it: callers convert a host constant into their
namespace and device when they use it (:func:`swinref.core.backend.from_host`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

_CACHE: dict[tuple, Any] = {}


def host_constant(kind: str, key: tuple, build: Callable[[], Any]) -> Any:
    """The cached value of ``build()`` for (kind, key); built on first use.

    ``build`` must return a NumPy array or a tuple of NumPy arrays (or None); anything else (a
    device array, a JAX tracer) raises TypeError and is not cached. The arrays are made read-only.
    """
    full = (kind, *key)
    value = _CACHE.get(full)
    if value is None:
        value = build()
        for part in value if isinstance(value, tuple) else (value,):
            if part is not None and not isinstance(part, np.ndarray):
                raise TypeError(
                    f"host constant {kind!r} must be built with NumPy, got {type(part).__name__}: "
                    "device and traced arrays are never cached"
                )
            if part is not None:
                part.flags.writeable = False
        _CACHE[full] = value
    return value


def clear_caches() -> None:
    """Drop every cached constant (they are rebuilt on demand)."""
    _CACHE.clear()


def cache_size() -> int:
    """How many constants are cached (for tests and diagnostics)."""
    return len(_CACHE)
