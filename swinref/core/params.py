"""The params contract, written once for every family.

Params are a flat mapping from checkpoint names to arrays. This module checks them (missing,
unexpected and mis-shaped entries listed together in one :class:`WeightsError`; namespace, device
and dtype against the input), gives read-only views under a name prefix (:class:`Scope`), and draws
seeded values for a table of names and shapes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from . import backend


class WeightsError(ValueError):
    """Params or a state dict do not fit the config: missing, unexpected or mis-shaped entries."""


class Scope(Mapping):
    """Read-only view of ``params`` under a name prefix: ``Scope(p, "layers.0")["norm.weight"]``."""

    def __init__(self, params: Mapping[str, Any], prefix: str):
        self._params = params
        self._prefix = prefix + "." if prefix else ""

    def __getitem__(self, name: str):
        return self._params[self._prefix + name]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (self._prefix + name) in self._params

    def __iter__(self) -> Iterator[str]:
        n = len(self._prefix)
        return (k[n:] for k in self._params if k.startswith(self._prefix))

    def __len__(self) -> int:
        return sum(1 for _ in self)


def problems_error(
    title: str, sections: Iterable[tuple[str, list[str]]], *, hints: Iterable[str] = ()
) -> WeightsError:
    """One :class:`WeightsError` whose message lists every problem under its section title."""
    lines = [title]
    lines.extend(f"  hint: {h}" for h in hints if h)
    for name, items in sections:
        if items:
            lines.append(f"  {name} ({len(items)}):")
            lines.extend(f"    {item}" for item in items)
    return WeightsError("\n".join(lines))


def check_param_shapes(
    params: Mapping[str, Any],
    expected: Mapping[str, tuple[int, ...]],
    *,
    model_prefixes: tuple[str, ...],
    ignore_prefixes: tuple[str, ...] = (),
    loader: str = "swinref.convert_state_dict",
) -> None:
    """Every expected parameter present with its shape, and no unused model parameter.

    ``model_prefixes``: names under these prefixes are the model's own; one that ``expected`` does
    not list (say ``qkv.bias`` with ``qkv_bias=False``) would otherwise be used or ignored
    silently, so it is reported as unexpected. Other names (extra heads, ``norm{i}`` of feature
    maps) are the caller's business. ``ignore_prefixes``: names neither required nor reported.
    Raises one :class:`WeightsError` listing all missing, mis-shaped and unexpected entries.
    """
    missing, misshaped = [], []
    for name, shape in expected.items():
        if name.startswith(ignore_prefixes) and ignore_prefixes:
            continue
        if name not in params:
            missing.append(name)
        elif tuple(params[name].shape) != tuple(shape):
            misshaped.append(f"{name}: got {tuple(params[name].shape)}, expected {tuple(shape)}")
    unexpected = [
        n
        for n in params
        if n.startswith(model_prefixes)
        and n not in expected
        and not (ignore_prefixes and n.startswith(ignore_prefixes))
    ]
    if missing or misshaped or unexpected:
        raise problems_error(
            f"params do not match the config (build them with {loader}):",
            (("missing", missing), ("mis-shaped", misshaped), ("unexpected", unexpected)),
        )


def check_arrays_like(params: Mapping[str, Any], x) -> None:
    """Params must live in x's namespace, on x's device, with x's float dtype (no silent promotion)."""
    xp = backend.namespace(x)
    x_device = backend.device(x)
    for name, value in params.items():
        try:
            backend.namespace(x, value)
        except TypeError as e:
            raise TypeError(
                f"parameter {name!r} is not in the input's array namespace ({backend.backend_name(xp)}); "
                "move the params with swinref.to_namespace(params, xp)"
            ) from e
        if backend.device(value) != x_device:
            raise ValueError(
                f"parameter {name!r} is on device {backend.device(value)} but the input is on "
                f"{x_device}; move the params with swinref.to_namespace(params, xp, device=...)"
            )
        if value.dtype != x.dtype:
            raise TypeError(
                f"parameter {name!r} is {value.dtype} but the input is {x.dtype}; swinref never "
                "promotes silently: cast with swinref.to_namespace(params, xp, dtype=...)"
            )


def check_batch(x, in_chans: int, *, axes: str = "H, W", what: str = "input", hint: str = "") -> None:
    """Rank, ``in_chans`` channels, float32/float64 and a non-empty batch, for any family's input.

    ``axes``: the spatial axes in words ("H, W" for images, "T, H, W" for clips); ``what`` names the
    input in messages; ``hint`` is added to a wrong-rank message.
    """
    xp = backend.namespace(x)
    shape = tuple(x.shape)
    rank = 2 + len(axes.split(","))
    form = f"(B, {in_chans}, {axes})"
    if len(shape) != rank:
        raise ValueError(f"{what} must have rank {rank}, {form}; got shape {shape}{hint}")
    if shape[1] != in_chans:
        raise ValueError(
            f"{what} has {shape[1]} channels, config expects in_chans={in_chans}: "
            f"shape must be {form}, got {shape}"
        )
    if x.dtype not in (xp.float32, xp.float64):
        raise TypeError(f"{what} dtype must be float32 or float64, got {x.dtype}")
    if shape[0] < 1:
        raise ValueError(f"{what} batch is empty: shape {shape}")


def check_image_batch(x, in_chans: int) -> None:
    """:func:`check_batch` for the 2-D families: (B, in_chans, H, W)."""
    check_batch(x, in_chans)


def check_dtype_arg(dtype: str | None) -> None:
    """``dtype`` arguments of the loaders: None (keep) or an explicit float dtype name."""
    if dtype not in (None, "float32", "float64"):
        raise ValueError(f"dtype must be None, 'float32' or 'float64', got {dtype!r}")


def check_state_dict(
    arrays: Mapping[str, np.ndarray],
    expected: Mapping[str, tuple[int, ...]],
    *,
    title: str,
    dtype: str | None = None,
    labels: Mapping[str, str] | None = None,
    unexpected: Iterable[str] = (),
    problems: Iterable[str] = (),
    hints: Iterable[str] = (),
) -> dict[str, np.ndarray]:
    """Params (in ``expected``'s order) from NumPy arrays already renamed to the family's names.

    Every name not in ``expected`` is unexpected; every expected name absent is missing; shapes
    must match exactly and dtypes be floating. ``labels`` maps a name to how the source stored it
    (for messages); ``unexpected`` and ``problems`` add what the renaming found. ``dtype``: None
    keeps the stored dtype, "float32"/"float64" cast. Raises one :class:`WeightsError` for all.
    """
    check_dtype_arg(dtype)
    labels = labels or {}
    unexpected, misshaped, wrong_kind = list(unexpected), list(problems), []
    params: dict[str, np.ndarray] = {}
    for name, array in arrays.items():
        label = labels.get(name, name)
        if name not in expected:
            unexpected.append(label)
        elif tuple(array.shape) != tuple(expected[name]):
            misshaped.append(f"{label}: got {tuple(array.shape)}, expected {tuple(expected[name])}")
        elif array.dtype.kind != "f":
            wrong_kind.append(f"{label}: dtype {array.dtype}, expected a float dtype")
        else:
            params[name] = array.astype(dtype) if dtype else array
    missing = [labels.get(n, n) for n in expected if n not in arrays]
    if missing or unexpected or misshaped or wrong_kind:
        raise problems_error(
            title,
            (
                ("missing", missing),
                ("unexpected", unexpected),
                ("mis-shaped", misshaped),
                ("wrong dtype", wrong_kind),
            ),
            hints=hints,
        )
    return {n: params[n] for n in expected}


def host_arrays(state_dict: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """A state dict's values as NumPy arrays (torch tensors leave autograd and the device)."""
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"state_dict must be a mapping of names to arrays, got {type(state_dict).__name__}")
    return {name: backend.to_numpy(value) for name, value in state_dict.items()}


# ----- seeded values ---------------------------------------------------------------------------
INIT_SCHEMES = ("timm", "random")


def trunc_normal(rng: np.random.Generator, shape, std: float) -> np.ndarray:
    """timm's ``trunc_normal_(std=std)``: normal values, cut at absolute +-2 (resampled)."""
    out = rng.normal(0.0, std, size=shape)
    bad = np.abs(out) > 2.0
    while bad.any():
        out[bad] = rng.normal(0.0, std, size=int(bad.sum()))
        bad = np.abs(out) > 2.0
    return out


def is_norm_param(name: str) -> bool:
    """LayerNorm parameters: ``norm``, ``norm1``, ``patch_embed.norm``, ``downsample.norm``, ..."""
    return ".norm" in name or name.startswith("norm")


def random_value(rng: np.random.Generator, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """A non-trivial value for any parameter, so that a port dropping it is caught.

    Matrices and tables N(0, 1/fan_in); biases N(0, 0.1^2); LayerNorm weights 1 + N(0, 0.1^2).
    """
    leaf = name.rsplit(".", 1)[-1]
    if is_norm_param(name) and leaf == "weight":
        return 1.0 + 0.1 * rng.normal(size=shape)
    if leaf == "bias" or leaf.endswith("_bias") and len(shape) == 1:
        return 0.1 * rng.normal(size=shape)
    fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    return rng.normal(size=shape) / np.sqrt(fan_in)


def seeded_params(
    shapes: Mapping[str, tuple[int, ...]],
    *,
    seed: int,
    dtype: str,
    value: Callable[[np.random.Generator, str, tuple[int, ...]], np.ndarray],
) -> dict[str, np.ndarray]:
    """``value(rng, name, shape)`` for every name in order, one generator seeded with ``seed``.

    The same seed gives the same bits; the result is cast to ``dtype``.
    """
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    rng = np.random.default_rng(seed)
    return {name: np.asarray(value(rng, name, shape)).astype(dtype) for name, shape in shapes.items()}


def count(shapes: Mapping[str, tuple[int, ...]]) -> int:
    """Number of scalars in a table of shapes."""
    return int(sum(int(np.prod(s)) for s in shapes.values()))
