"""Shared fixtures: the backends every portable test runs on, and hypothesis profiles."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from swinref.core import backend

# "dev" for quick local runs, "ci" (more examples, derandomized) where CI is set;
# HYPOTHESIS_PROFILE overrides either.
settings.register_profile("dev", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "ci", max_examples=100, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

# Under CI a skip is a failure, except where no GPU is present: a missing timm, torchvision or
# transformers would otherwise turn every cross-check into a skip while the run stays green.
STRICT_SKIPS = os.environ.get("CI", "") not in ("", "0", "false")
ALLOWED_SKIP_REASONS = ("cupy unavailable",)  # no CuPy or no CUDA device on this machine
CROSSCHECK_MODULES = (
    "torch",
    "torchvision",
    "timm",
    "transformers",
    "array_api_strict",
    "mpmath",
    "PIL",
    "dask",
    "jax",
    "onnx",
    "onnxruntime",
    "onnxscript",
    "mmengine",  # with mmcv and einops: what mmaction2's swin.py imports (video-crosscheck extra)
    "mmcv",
    "einops",
)


def _skip_allowed(reason: str) -> bool:
    return any(a in reason for a in ALLOWED_SKIP_REASONS)


def pytest_sessionstart(session):
    if not STRICT_SKIPS:
        return
    import importlib

    missing = []
    for name in CROSSCHECK_MODULES:
        try:
            importlib.import_module(name)
        except Exception as e:  # ImportError, or a broken install that fails on import
            missing.append(f"{name} ({type(e).__name__}: {e})")
    if missing:
        pytest.exit(
            "CI needs every cross-check dependency, and these do not import: " + "; ".join(missing),
            returncode=1,
        )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if STRICT_SKIPS and report.skipped and not hasattr(report, "wasxfail"):
        reason = str(report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr)
        if not _skip_allowed(reason):
            report.outcome = "failed"
            report.longrepr = f"skipped under CI, which allows only GPU skips: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    report = outcome.get_result()
    if STRICT_SKIPS and report.skipped:
        reason = str(report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr)
        if not _skip_allowed(reason):
            report.outcome = "failed"
            report.longrepr = f"module skipped under CI, which allows only GPU skips: {reason}"


@dataclass(frozen=True)
class Backend:
    """An array namespace plus the device arrays are created on in tests."""

    name: str
    xp: Any
    device: Any = None

    def asarray(self, a, dtype=None):
        a = np.asarray(a) if dtype is None else np.asarray(a, dtype=dtype)
        return backend.to_namespace({"a": a}, self.xp, device=self.device)["a"]

    def __repr__(self):
        return self.name


def _available_backends() -> list[Any]:
    out = [pytest.param(Backend("numpy", backend.get_namespace("numpy")), id="numpy")]
    import array_api_strict

    strict = backend.get_namespace("array_api_strict")
    # the non-default device catches arrays created without device=...
    out.append(
        pytest.param(
            Backend("array_api_strict", strict, array_api_strict.Device("device1")), id="array_api_strict"
        )
    )
    try:
        import torch  # noqa: F401

        out.append(pytest.param(Backend("torch", backend.get_namespace("torch")), id="torch"))
    except ImportError:
        out.append(pytest.param(None, id="torch", marks=pytest.mark.skip(reason="torch not installed")))
    try:
        import jax

        # float64 needs x64 mode, off by default; set before any JAX array exists
        jax.config.update("jax_enable_x64", True)
        out.append(pytest.param(Backend("jax", backend.get_namespace("jax")), id="jax"))
    except ImportError:
        out.append(pytest.param(None, id="jax", marks=pytest.mark.skip(reason="jax not installed")))
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() < 1:
            raise RuntimeError("no GPU")
        out.append(pytest.param(Backend("cupy", backend.get_namespace("cupy")), id="cupy"))
    except Exception as e:  # ImportError, or CUDA present but no device
        out.append(pytest.param(None, id="cupy", marks=pytest.mark.skip(reason=f"cupy unavailable: {e}")))
    return out


BACKEND_PARAMS = _available_backends()


@pytest.fixture(params=BACKEND_PARAMS)
def be(request) -> Backend:
    """Every available backend: numpy, array-api-strict (on its extra device), torch, jax, cupy."""
    return request.param


def assert_close(actual, expected, *, atol: float, rtol: float = 0.0, what: str = "") -> None:
    """Compare any backend's array with a NumPy expectation; message says what differed."""
    a = backend.to_numpy(actual)
    e = np.asarray(expected)
    assert a.shape == e.shape, f"{what}: shape {a.shape}, expected {e.shape}"
    diff = np.abs(a.astype(np.float64) - e.astype(np.float64))
    bound = atol + rtol * np.abs(e.astype(np.float64))
    worst = np.unravel_index(np.argmax(diff - bound), diff.shape) if diff.size else ()
    assert np.all(diff <= bound), (
        f"{what}: max abs diff {diff.max():.3e} at {worst} exceeds atol={atol} rtol={rtol} "
        f"(got {a[worst]!r}, expected {e[worst]!r})"
    )


# Eager JAX compiles every operation once per new shape and dtype (0.1 to 4 s per drawn
# example of the window and mask properties, against milliseconds on NumPy), so property tests
# run fewer examples on it. The same code runs on every backend and NumPy, array-api-strict
# and torch keep the full profile; JAX's draws check that the code runs and agrees on JAX.
JAX_MAX_EXAMPLES = 5


@pytest.hookimpl(hookwrapper=True)
def pytest_pyfunc_call(pyfuncitem):
    test = pyfuncitem.obj
    callspec = getattr(pyfuncitem, "callspec", None)
    drawn = getattr(test, "is_hypothesis_test", False)
    on_jax = callspec is not None and getattr(callspec.params.get("be"), "name", None) == "jax"
    if not (drawn and on_jax):
        yield
        return
    full = test._hypothesis_internal_use_settings
    test._hypothesis_internal_use_settings = settings(
        full, max_examples=min(full.max_examples, JAX_MAX_EXAMPLES)
    )
    try:
        yield
    finally:
        test._hypothesis_internal_use_settings = full
