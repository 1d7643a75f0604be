"""JAX as a backend: eager and under ``jax.jit`` (retraced for a second batch size), every family,
float64 only with x64 enabled, constants built on the host.

The portable property tests, the eager forward of every family included, run on JAX through the
``be`` fixture (tests/conftest.py, which enables x64 before any JAX array exists). Here: the whole forward of V1, V2 and Video Swin
jitted, against NumPy in float64: logits within 1e-12 (measured below 1e-14, summation order
only), intermediates as stated at the bounds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import assert_close

import swinref
from swinref.core import backend
from swinref.core.cache import cache_size, clear_caches, host_constant
from swinref.models import registry, v2

jax = pytest.importorskip("jax", reason="jax not installed (pip install 'swinref[jax]')")
jax.config.update("jax_enable_x64", True)  # conftest does it first; repeated for a lone run of this file

JXP = backend.get_namespace("jax")
NP = backend.get_namespace("numpy")

# float64: JAX and NumPy differ in summation order (XLA's dot and reductions) and libm only.
# Logits of every family: measured <= 8e-15; every V1 and Video intermediate <= 7e-15. 1e-12 is
# the bound every backend meets (tests/core/test_backends.py).
ATOL64 = 1e-12
# V2's intermediates: its logit scale (up to 100 with the "random" init) amplifies the rounding
# of the cosine similarities; measured 1.1e-12 (JAX eager and jit alike) and 6e-13 (torch) on
# layers.1 at batch 3, logits 8e-15. 1e-10 is the V2 bound across backends (tests/models/test_v2.py).
ATOL64_V2_INTERMEDIATES = 1e-10
# float32 V1: measured <= 2e-6 on these sizes; 1e-5 as for the other backends.
ATOL32 = 1e-5

# Tiny models with a shifted, masked block and a padded stage, so that every geometry constant
# (index, mask, V2 coordinates) reaches the trace: V1 and V2 at 48 px with window 4 have a 12x12
# grid (shifted windows, 9-region mask) and then 6x6 (padded to 8x8, masked); the video clip
# 8x32x32 with window (2, 4, 4) has a 4x8x8 grid (shift (1, 2, 2), 27-region mask) and then 4x4x4
# (spatial window clamped, time still shifted).
CONFIGS = {
    "v1": (
        swinref.SwinConfig(
            img_size=48, embed_dim=8, depths=(2, 2), num_heads=(1, 2), window_size=4, num_classes=3
        ),
        None,
    ),
    "v2": (
        swinref.SwinV2Config(
            img_size=48, embed_dim=8, depths=(2, 2), num_heads=(1, 2), window_size=4, num_classes=3
        ),
        None,
    ),
    "video": (
        swinref.VideoSwinConfig(
            patch_size=(2, 4, 4),
            embed_dim=8,
            depths=(2, 2),
            num_heads=(1, 2),
            window_size=(2, 4, 4),
            num_classes=3,
        ),
        (8, 32, 32),
    ),
}
BATCHES = (1, 3)


def _case(family: str, batch: int, dtype: str = "float64"):
    cfg, size = CONFIGS[family]
    params = swinref.init_params(cfg, seed=0, dtype=dtype, scheme="random")
    shape = registry.family_of(cfg).input_shape(cfg, batch=batch, size=size)
    x = np.random.default_rng(batch).standard_normal(shape).astype(dtype)
    return cfg, params, x


def _assert_matches(
    got: dict, expected: dict, *, atol: float, dtype: str, what: str, inner_atol=None
) -> None:
    """Every intermediate within ``inner_atol`` (default ``atol``), the logits within ``atol``."""
    assert set(got) == set(expected), f"{what}: intermediates {sorted(got)}, expected {sorted(expected)}"
    for name, value in got.items():
        assert backend.namespace(value) is JXP, f"{what} {name}: not a JAX array ({type(value).__name__})"
        assert value.dtype == getattr(JXP, dtype), f"{what} {name}: dtype {value.dtype}, expected {dtype}"
        bound = atol if name == "logits" or inner_atol is None else inner_atol
        assert_close(value, expected[name], atol=bound, what=f"{what} {name}")


def _inner_atol(family: str) -> float:
    return ATOL64_V2_INTERMEDIATES if family == "v2" else ATOL64


@pytest.mark.parametrize("family", list(CONFIGS))
def test_jit_matches_numpy_and_retraces_for_another_batch(family):
    clear_caches()  # the first trace builds every constant: none of them may keep a tracer
    cfg = CONFIGS[family][0]
    traces = []

    def forward(p, x):
        traces.append(x.shape[0])
        return swinref.forward(p, x, cfg, return_intermediates=True)

    jitted = jax.jit(forward)
    for batch in BATCHES:
        _, params, x = _case(family, batch)
        _, expected = swinref.forward(params, x, cfg, return_intermediates=True)
        logits, inter = jitted(swinref.to_namespace(params, JXP), JXP.asarray(x))
        _assert_matches(
            inter,
            expected,
            atol=ATOL64,
            inner_atol=_inner_atol(family),
            dtype="float64",
            what=f"{family} jit batch {batch}",
        )
        assert np.array_equal(backend.to_numpy(logits), backend.to_numpy(inter["logits"]))
    assert traces == list(BATCHES), (
        f"traced for batches {traces}, expected one trace per batch size {BATCHES}"
    )
    _, params, x = _case(family, BATCHES[0])
    jitted(swinref.to_namespace(params, JXP), JXP.asarray(x))
    assert traces == list(BATCHES), "a batch size seen before was traced again"
    assert cache_size() > 0, "the forward should have cached its geometry constants on the host"


def test_jit_float32_matches_numpy_float32():
    cfg, params, x = _case("v1", 2, dtype="float32")
    _, expected = swinref.forward(params, x, cfg, return_intermediates=True)
    jitted = jax.jit(lambda p, v: swinref.forward(p, v, cfg, return_intermediates=True)[1])
    inter = jitted(swinref.to_namespace(params, JXP), JXP.asarray(x))
    _assert_matches(inter, expected, atol=ATOL32, dtype="float32", what="v1 jit float32")


@pytest.mark.parametrize(
    "window, pretrained", [((8, 8), (0, 0)), ((5, 7), (0, 0)), ((12, 12), (8, 8)), ((24, 24), (12, 12))]
)
def test_v2_coords_table_has_numpy_bits_eager_and_jitted(window, pretrained):
    """JAX's float32 division by a constant is not correctly rounded; the table must not depend on it."""
    want = np.asarray(v2.relative_coords_table(window, pretrained, xp=NP))
    eager = backend.to_numpy(v2.relative_coords_table(window, pretrained, xp=JXP))
    jitted = backend.to_numpy(jax.jit(lambda: v2.relative_coords_table(window, pretrained, xp=JXP))())
    for label, got in (("eager", eager), ("jit", jitted)):
        assert got.dtype == np.float32, f"{label}: dtype {got.dtype}, expected float32"
        assert np.array_equal(got, want), (
            f"{label}: {np.sum(got != want)} entries differ from NumPy, max {np.abs(got - want).max():.2e}"
        )


def test_backend_is_registered():
    assert "jax" in backend.BACKENDS
    a = JXP.asarray(np.arange(6.0).reshape(2, 3))
    assert backend.namespace(a) is JXP, (
        f"namespace of a JAX array is {backend.namespace(a)}, expected jax.numpy"
    )
    assert backend.backend_name(JXP) == "jax"
    host = backend.to_numpy(a)
    assert isinstance(host, np.ndarray) and host.dtype == np.float64
    assert np.array_equal(host, np.arange(6.0).reshape(2, 3))
    assert swinref.get_namespace("jax") is JXP


def test_device_lookup_under_jit_and_for_arrays_without_device():
    a = JXP.zeros(3)
    assert backend.device(a) == jax.devices()[0]
    seen = []
    jax.jit(lambda v: seen.append(backend.device(v)) or v)(a)
    assert seen == [None], f"a traced array has no device; got {seen}"
    # a constant made for a traced array is left to jit to place
    out = jax.jit(lambda v: backend.from_host(np.arange(3.0), v) + v)(a)
    assert np.array_equal(backend.to_numpy(out), np.arange(3.0))
    import dask.array as da

    backend.device(da.zeros(3))  # no error: dask is not a target, but lookups must not break on it

    class NoDevice:
        pass

    assert backend.device(NoDevice()) is None


def test_host_constants_refuse_device_and_traced_arrays():
    before = cache_size()
    with pytest.raises(TypeError, match="NumPy"):
        host_constant("test_jax_refused", (1,), lambda: JXP.zeros(2))

    def traced(v):
        host_constant("test_jax_refused", (2,), lambda: v * 2)
        return v

    with pytest.raises(TypeError, match="traced arrays are never cached"):
        jax.jit(traced)(JXP.zeros(2))
    assert cache_size() == before, "a refused constant was cached"


_X64_OFF = textwrap.dedent(
    """
    import jax
    import numpy as np
    import swinref

    xp = swinref.get_namespace("jax")
    for kwargs in ({}, {"dtype": "float64"}):
        try:
            swinref.to_namespace({"w": np.zeros(2, np.float32 if kwargs else np.float64)}, xp, **kwargs)
        except ValueError as e:
            print("refused:", e)
        else:
            print("accepted", kwargs)
    cfg = swinref.SwinConfig(img_size=32, embed_dim=8, depths=(2, 2), num_heads=(1, 2), window_size=4, num_classes=3)
    params = swinref.init_params(cfg, seed=0, dtype="float64")
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32))
    expected = swinref.forward(swinref.to_namespace(params, swinref.get_namespace("numpy"), dtype="float32"),
                               x.astype(np.float32), cfg)
    p32 = swinref.to_namespace(params, xp, dtype="float32")
    out = jax.jit(lambda p, v: swinref.forward(p, v, cfg))(p32, xp.asarray(x.astype(np.float32)))
    print("float32", out.dtype, float(np.abs(swinref.to_numpy(out) - expected).max()))
    """
)


def test_float64_without_x64_is_refused_and_float32_works():
    env = {**os.environ, "JAX_ENABLE_X64": "0"}
    proc = subprocess.run(
        [sys.executable, "-c", _X64_OFF], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    refused = [line for line in lines if line.startswith("refused:")]
    assert len(refused) == 2, f"float64 kept and float64 requested must both be refused; got {lines}"
    for line in refused:
        for needed in ("'jax'", 'jax.config.update("jax_enable_x64", True)', "JAX_ENABLE_X64=1", "float32"):
            assert needed in line, f"message should name {needed!r}: {line}"
    result = [line for line in lines if line.startswith("float32")]
    assert result and result[0].split()[1] == "float32", f"float32 forward without x64: {lines}"
    assert float(result[0].split()[2]) <= ATOL32, f"float32 forward without x64 differs from NumPy: {lines}"


def test_golden_command_runs_on_jax_in_float64(tmp_path):
    """``swinref golden --backend jax`` switches x64 on for its own process and agrees with NumPy."""
    model = '{"img_size":32,"embed_dim":8,"depths":[2,2],"num_heads":[1,2],"window_size":4,"num_classes":3}'
    env = {**os.environ, "JAX_ENABLE_X64": "0"}
    files = {}
    for name in ("numpy", "jax"):
        files[name] = tmp_path / f"{name}.safetensors"
        cmd = [sys.executable, "-m", "swinref", "golden", "--model", model, "--backend", name]
        proc = subprocess.run(
            [*cmd, "--out", str(files[name])], env=env, capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, f"{name}: {proc.stderr}"
    want, got = swinref.read_golden(files["numpy"]), swinref.read_golden(files["jax"])
    assert got.metadata["backend"] == "jax", got.metadata
    for name, value in want.tensors.items():
        assert got.tensors[name].dtype == np.float64, f"{name}: {got.tensors[name].dtype}"
        assert_close(got.tensors[name], value, atol=ATOL64, what=f"golden on jax, {name}")
