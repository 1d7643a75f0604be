"""One forward, every backend: namespace, dtype and device follow the input; values follow NumPy.

Backends come from the ``be`` fixture (numpy, array-api-strict on its extra device "device1",
torch, cupy when a GPU is present). NumPy in each dtype is the expectation.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_close

import swinref
from swinref.core import backend
from swinref.core.cache import clear_caches

# 12x12 tokens with window 4: stage 1 has three windows per side and a shifted, masked block;
# stage 2 (6x6) pads to 8x8 in both blocks and masks the shifted one.
CFG = swinref.SwinConfig(
    img_size=48, embed_dim=16, depths=(2, 2), num_heads=(2, 4), window_size=4, num_classes=5
)

# Backends differ from NumPy only in rounding (BLAS summation order, libm exp/erf-free ops);
# the activations are at most ~7 in magnitude with the params below. float64: an ulp at 4..8 is
# 8.9e-16, measured differences <= 5e-15 (torch); 1e-12 is 200x that and ~1e11 below what any
# semantic error moves. float32: an ulp at 4..8 is 4.8e-7, measured <= 3.4e-6 (torch);
# 1e-5 is ~20 ulp at the largest values. array-api-strict wraps NumPy: measured exactly 0.
ATOL = {"float64": 1e-12, "float32": 1e-5}
DTYPES = tuple(ATOL)


def random_params(cfg: swinref.SwinConfig, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded float64 params with every entry non-trivial (init_params has zero biases, unit norms)."""
    rng = np.random.default_rng(seed)
    params = {}
    for name, shape in swinref.param_shapes(cfg).items():
        z = rng.standard_normal(shape)
        if name.endswith("relative_position_bias_table"):
            params[name] = 0.5 * z
        elif name.endswith(".bias"):
            params[name] = 0.1 * z
        elif len(shape) == 1:  # LayerNorm weight
            params[name] = 1.0 + 0.1 * z
        else:  # N(0, 1/fan_in) keeps every activation O(1)
            params[name] = z / np.sqrt(np.prod(shape[1:]))
    return params


PARAMS = random_params(CFG)
X = np.random.default_rng(1).standard_normal((2, CFG.in_chans, *CFG.image_hw))
NP = backend.get_namespace("numpy")


def numpy_forward(dtype: str):
    params = swinref.to_namespace(PARAMS, NP, dtype=dtype)
    return swinref.forward(params, NP.asarray(X.astype(dtype)), CFG, return_intermediates=True)


def on(be, dtype: str):
    """(params, input) in be's namespace, on be's device, in ``dtype``."""
    params = swinref.to_namespace(PARAMS, be.xp, device=be.device, dtype=dtype)
    return params, be.asarray(X, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_follows_input_and_matches_numpy(be, dtype):
    params, x = on(be, dtype)
    logits, inter = swinref.forward(params, x, CFG, return_intermediates=True)
    _, expected = numpy_forward(dtype)
    assert np.array_equal(backend.to_numpy(logits), backend.to_numpy(inter["logits"])), (
        "the returned logits differ from intermediates['logits']"
    )
    for name, out in inter.items():
        assert backend.namespace(out) is backend.namespace(x), (
            f"{name}: namespace {backend.namespace(out).__name__}, expected {backend.namespace(x).__name__}"
        )
        assert out.dtype == x.dtype, f"{name}: dtype {out.dtype}, expected {x.dtype}"
        assert backend.device(out) == backend.device(x), (
            f"{name}: device {backend.device(out)}, expected the input's {backend.device(x)}"
        )
        assert_close(out, expected[name], atol=ATOL[dtype], what=f"{be.name} {dtype} {name}")


def test_mixed_dtypes_are_refused(be):
    params, _ = on(be, "float64")
    x32 = be.asarray(X, dtype="float32")
    with pytest.raises(TypeError, match=r"swinref\.to_namespace") as info:
        swinref.forward(params, x32, CFG)
    assert "float64" in str(info.value) and "float32" in str(info.value), (
        f"message should name both dtypes, got: {info.value}"
    )
    params32, x64 = on(be, "float32")[0], be.asarray(X, dtype="float64")
    with pytest.raises(TypeError, match=r"swinref\.to_namespace"):
        swinref.forward(params32, x64, CFG)


def test_params_from_another_namespace_are_refused(be):
    _, x = on(be, "float64")
    # NumPy params against any other backend; array-api-strict params against NumPy input
    other = backend.get_namespace("array_api_strict" if be.name == "numpy" else "numpy")
    params = swinref.to_namespace(PARAMS, other)
    with pytest.raises(TypeError, match=r"not in the input's array namespace.*swinref\.to_namespace"):
        swinref.forward(params, x, CFG)


def test_params_on_another_device_are_refused():
    import array_api_strict as strict

    xp = backend.get_namespace("array_api_strict")
    params = swinref.to_namespace(PARAMS, xp)  # the default device, CPU_DEVICE
    x = swinref.to_namespace({"x": X}, xp, device=strict.Device("device1"))["x"]
    with pytest.raises((TypeError, ValueError), match="device"):
        swinref.forward(params, x, CFG)


@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_is_deterministic(dtype):
    first_logits, first = numpy_forward(dtype)
    _, second = numpy_forward(dtype)
    clear_caches()  # rebuilt masks and indices must give the same bits too
    _, third = numpy_forward(dtype)
    for name, value in first.items():
        for label, again in (("second call", second), ("after clear_caches", third)):
            assert np.array_equal(again[name], value), (
                f"{dtype} {name}: {label} differs by {np.max(np.abs(again[name] - value)):.3e}, "
                "expected bitwise-identical outputs"
            )


INTEGER_AND_FLOAT = {
    "w64": np.linspace(-1.0, 1.0, 6).reshape(2, 3),
    "w32": np.linspace(-1.0, 1.0, 6, dtype=np.float32),
    "idx64": np.arange(6, dtype=np.int64).reshape(3, 2),
    "idx32": np.arange(4, dtype=np.int32),
}


@pytest.mark.parametrize("dtype", [None, "float32", "float64"])
def test_to_namespace_casts_only_floats_and_only_when_asked(be, dtype):
    moved = swinref.to_namespace(INTEGER_AND_FLOAT, be.xp, device=be.device, dtype=dtype)
    assert list(moved) == list(INTEGER_AND_FLOAT), f"names {list(moved)}, expected {list(INTEGER_AND_FLOAT)}"
    for name, host in INTEGER_AND_FLOAT.items():
        want = host.dtype.name if dtype is None or host.dtype.kind != "f" else dtype
        got = moved[name]
        assert backend.namespace(got) is be.xp, (
            f"{name}: namespace {backend.namespace(got)}, expected {be.xp}"
        )
        assert got.dtype == getattr(be.xp, want), (
            f"{name}: dtype {got.dtype}, expected {want} (dtype={dtype})"
        )
        if be.device is not None:
            assert backend.device(got) == be.device, (
                f"{name}: device {backend.device(got)}, expected {be.device}"
            )
        back = backend.to_numpy(got)
        assert np.array_equal(back, host.astype(want)), f"{name}: values changed: {back} vs {host}"


@pytest.mark.parametrize("dtype", ["float16", "int64", "double"])
def test_to_namespace_rejects_other_dtypes(dtype):
    with pytest.raises(ValueError, match="float32 or float64"):
        swinref.to_namespace(INTEGER_AND_FLOAT, NP, dtype=dtype)
