"""erf, erfc and GELU against mpmath; LayerNorm and softmax against their definitions; on every
backend.

Errors of erf/erfc/GELU are relative, in ULP of the true value: |got - true| / spacing(true), the
true value computed by mpmath at 50 digits from the exact (float64) input. The bounds sit slightly
above what ``python benchmarks/erf_accuracy.py`` measures (40,000 points per row: a grid of 20,000
and 20,000 uniform random ones; numpy, and ``--backend torch``).
"""

from __future__ import annotations

import functools
import math

import mpmath
import numpy as np
import pytest
from conftest import assert_close
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from strategies import backend_settings, float_lists, seeds

from swinref.core.backend import to_numpy
from swinref.core.numerics import erf, erfc, gelu, layer_norm, softmax

mpmath.mp.dps = 50

# Measured maxima (float64): erf 0.88 ULP on [-6, 6], erfc 2.72 ULP on [-6, 26] (2.89 with torch).
ERF_MAX_ULP = 1.5
ERFC_MAX_ULP = 3.5
# Measured maxima (float32, float32 ULP): erf 1.08 on [-4, 4]; erfc 4.28 on [-4, 9] (numpy's
# float32 exp; 0.93 and 2.51 with torch's).
ERF32_MAX_ULP = 2.0
ERFC32_MAX_ULP = 5.0


@functools.cache
def _true(name: str, x: float):
    x = mpmath.mpf(x)
    if name == "erf":
        return mpmath.erf(x)
    if name == "erfc":
        return mpmath.erfc(x)
    return x * mpmath.erfc(-x / mpmath.sqrt(2)) / 2  # gelu


def _ulp_errors(name: str, x: np.ndarray, got: np.ndarray) -> np.ndarray:
    """Per element |got - true| / spacing(true), spacing taken in got's dtype."""
    out = np.empty(x.shape)
    for i, (xi, gi) in enumerate(zip(x.tolist(), got.tolist())):
        t = _true(name, xi)
        spacing = float(np.spacing(np.abs(np.asarray(float(t), dtype=got.dtype))))
        out[i] = float(abs(mpmath.mpf(gi) - t) / spacing)
    return out


def _evaluate(be, fn, x: np.ndarray) -> np.ndarray:
    got = fn(be.asarray(x), xp=be.xp)
    if be.device is not None:
        assert got.device == be.device, f"{fn.__name__} result on {got.device}, expected {be.device}"
    got = to_numpy(got)
    assert got.dtype == x.dtype and got.shape == x.shape, (
        f"{fn.__name__}: expected {x.dtype} {x.shape}, got {got.dtype} {got.shape}"
    )
    return got


def _flushes_subnormals(be) -> bool:
    """True where the backend flushes subnormal float64 operands and results to zero (XLA on
    the CPU runs with FTZ/DAZ set): there erf(x) for a subnormal x is 0 by the hardware's rule."""
    tiny = np.array([np.finfo(np.float64).smallest_subnormal * 4])
    return bool(to_numpy(be.asarray(tiny) * 1.0)[0] == 0.0)


def _without_flushed(be, name, x, got):
    """On a flush-to-zero backend, drop the points whose input or true result is subnormal,
    after checking what the backend gave there: at a subnormal input, the function's value at 0
    (the input is read as 0: erf 0, erfc 1) to within the smallest normal; at a subnormal true
    result, a result below the smallest normal (0 or the subnormal answer). Elsewhere return x
    and got unchanged."""
    if be is None or not _flushes_subnormals(be):
        return x, got
    tiny = float(np.finfo(got.dtype).tiny)
    true = np.array([abs(float(_true(name, float(v)))) for v in x.tolist()])
    at_zero = float(_true(name, 0.0))
    subnormal_in = (x != 0) & (np.abs(x) < np.finfo(x.dtype).tiny)
    subnormal_out = (true > 0) & (true < tiny) & ~subnormal_in
    assert np.all(np.abs(got[subnormal_in] - at_zero) <= tiny), (
        f"{name} at subnormal inputs {x[subnormal_in]!r}: {got[subnormal_in]!r}, expected {name}(0) = {at_zero}"
    )
    assert np.all(np.abs(got[subnormal_out]) <= tiny), (
        f"{name} with subnormal true results at {x[subnormal_out]!r}: {got[subnormal_out]!r}"
    )
    flushed = subnormal_in | subnormal_out
    return x[~flushed], got[~flushed]


def _assert_ulp(name, x, got, bound, *, be=None):
    x, got = _without_flushed(be, name, x, got)
    if x.size == 0:
        return
    err = _ulp_errors(name, x, got)
    worst = int(np.argmax(err))
    assert err[worst] <= bound, (
        f"{name}({x[worst]!r}) = {got[worst]!r}, expected {mpmath.nstr(_true(name, float(x[worst])), 20)}: "
        f"{err[worst]:.2f} ULP > {bound} ULP"
    )


# Where the evaluation switches formula, and their neighbours.
SWITCHES = [0.25, 0.84375, 2.0]
_EDGES = np.array(sorted({v for s in SWITCHES for v in (s, np.nextafter(s, 0.0), np.nextafter(s, 9.0))}))
ERF_GRID = np.concatenate([np.linspace(-6.0, 6.0, 2401), _EDGES, -_EDGES, [1e-300, 5e-324, -1e-8]])
ERFC_GRID = np.concatenate([np.linspace(-6.0, 26.0, 3201), _EDGES, -_EDGES, [1e-300, 25.99]])


def test_erf_on_a_dense_grid(be):
    _assert_ulp("erf", ERF_GRID, _evaluate(be, erf, ERF_GRID), ERF_MAX_ULP, be=be)


def test_erfc_on_a_dense_grid(be):
    _assert_ulp("erfc", ERFC_GRID, _evaluate(be, erfc, ERFC_GRID), ERFC_MAX_ULP, be=be)


@backend_settings
@given(xs=float_lists(-6.0, 6.0))
def test_erf_at_drawn_points(be, xs):
    x = np.asarray(xs, dtype=np.float64)
    _assert_ulp("erf", x, _evaluate(be, erf, x), ERF_MAX_ULP, be=be)


@backend_settings
@given(xs=float_lists(-6.0, 26.0))
def test_erfc_at_drawn_points(be, xs):
    x = np.asarray(xs, dtype=np.float64)
    _assert_ulp("erfc", x, _evaluate(be, erfc, x), ERFC_MAX_ULP, be=be)


def test_erf_and_erfc_in_float32(be):
    x = np.linspace(-4.0, 4.0, 1601).astype(np.float32)
    _assert_ulp("erf", x, _evaluate(be, erf, x), ERF32_MAX_ULP)
    x = np.linspace(-4.0, 9.0, 2601).astype(np.float32)
    _assert_ulp("erfc", x, _evaluate(be, erfc, x), ERFC32_MAX_ULP)


@pytest.mark.parametrize(
    "fn, x, expected",
    [
        (erf, 0.0, 0.0),
        (erf, math.inf, 1.0),
        (erf, -math.inf, -1.0),
        (erf, 30.0, 1.0),
        (erf, -30.0, -1.0),
        (erfc, 0.0, 1.0),
        (erfc, math.inf, 0.0),
        (erfc, -math.inf, 2.0),
        (erfc, 30.0, 0.0),
        (erfc, -30.0, 2.0),
        (gelu, 0.0, 0.0),
        (gelu, math.inf, math.inf),
        (gelu, 1e300, 1e300),
    ],
)
def test_special_values(be, fn, x, expected):
    got = _evaluate(be, fn, np.array([x]))[0]
    assert got == expected, f"{fn.__name__}({x}) should be exactly {expected}, got {got!r}"


@pytest.mark.parametrize("fn", [erf, erfc, gelu])
def test_nan_propagates(be, fn):
    got = _evaluate(be, fn, np.array([math.nan]))[0]
    assert math.isnan(got), f"{fn.__name__}(nan) should be nan, got {got!r}"


def test_erf_keeps_the_sign_of_zero(be):
    got = _evaluate(be, erf, np.array([-0.0]))[0]
    assert got == 0.0 and math.copysign(1.0, got) == -1.0, f"erf(-0.0) should be -0.0, got {got!r}"


# ----- GELU -----------------------------------------------------------------------------------
# float64, x >= 0: 0.5 * x * erfc(-x/sqrt(2)) with erfc in [1, 2]; measured <= 1.47 ULP.
GELU_POS_MAX_ULP = 2.0


def _gelu_bound(x):
    """ULP bound of float64 GELU at x.

    For x < 0 the rounding of y = x/sqrt(2) (the constant and the product, at most 1.8 units of
    2**-53 relative) is amplified by erfc's relative slope, |y * erfc'(y) / erfc(y)| <= 2y**2 + 1 =
    x**2 + 1, so the error grows like 1.8 * x**2 ULP; PyTorch's formula has the same term. Measured:
    at most 2.0 + 1.8 * x**2.
    """
    return np.where(x >= 0, GELU_POS_MAX_ULP, 3.0 + 2.0 * x * x)


def _assert_gelu(x, got, *, be=None):
    x, got = _without_flushed(be, "gelu", x, got)
    if x.size == 0:
        return
    err = _ulp_errors("gelu", x, got)
    excess = err - _gelu_bound(x)
    worst = int(np.argmax(excess))
    assert excess[worst] <= 0, (
        f"gelu({x[worst]!r}) = {got[worst]!r}, expected {mpmath.nstr(_true('gelu', float(x[worst])), 20)}: "
        f"{err[worst]:.2f} ULP > bound {_gelu_bound(x[worst]):.2f} ULP"
    )


GELU_GRID = np.linspace(-8.0, 8.0, 3201)


def test_gelu_on_a_dense_grid(be):
    _assert_gelu(GELU_GRID, _evaluate(be, gelu, GELU_GRID), be=be)


@backend_settings
@given(xs=float_lists(-8.0, 8.0))
def test_gelu_at_drawn_points(be, xs):
    x = np.asarray(xs, dtype=np.float64)
    _assert_gelu(x, _evaluate(be, gelu, x), be=be)


# float32 GELU against the float64 GELU of the same (float32) inputs, in float32 ULP of the result
# (np.spacing of the float32 result), so that no bound can be met by returning 0. For x >= 0 the
# result is at least x/2: within 2 ULP (measured 1.58). For x < 0 the result |x| Phi(x) is small
# and the error grows with x**2: rounding -x/sqrt(2) to float32 moves erfc(t) by a relative
# 2 t**2 * 2**-24 (t = -x/sqrt(2)), i.e. x**2 / 2 ULP, on top of the float32 erfc's own few ULP.
# Bound: 3 * (1 + x**2) ULP; measured on numpy at 600,000 points of [-10, 0): at most
# 1.97 * (1 + x**2) (x = -1.44), and 85 ULP at x = -9.97 against a bound of 301.
GELU32_POS_MAX_ULP = 2.0
GELU32_NEG_ULP_PER_1_PLUS_X2 = 3.0


def _check_gelu32(be, x32):
    if _flushes_subnormals(be):  # float32 subnormal inputs read as 0 there; checked below
        sub = (x32 != 0) & (np.abs(x32) < np.finfo(np.float32).tiny)
        if sub.any():
            assert np.all(np.abs(_evaluate(be, gelu, x32[sub])) <= np.finfo(np.float32).tiny)
        x32 = x32[~sub]
        if x32.size == 0:
            return
    got = _evaluate(be, gelu, x32).astype(np.float64)
    ref = _evaluate(be, gelu, x32.astype(np.float64))
    diff = np.abs(got - ref)
    ulp = diff / np.spacing(np.abs(ref).astype(np.float32)).astype(np.float64)
    x = x32.astype(np.float64)
    bound = np.where(x >= 0, GELU32_POS_MAX_ULP, GELU32_NEG_ULP_PER_1_PLUS_X2 * (1.0 + x * x))
    worst = int(np.argmax(ulp - bound))
    assert ulp[worst] <= bound[worst], (
        f"float32 gelu({x32[worst]!r}) = {got[worst]!r}, float64 gives {ref[worst]!r}: "
        f"{ulp[worst]:.2f} float32 ULP > bound {bound[worst]:.2f} ULP"
    )


def test_gelu_float32_against_float64_on_a_grid(be):
    _check_gelu32(be, np.linspace(-8.0, 8.0, 16001).astype(np.float32))


@backend_settings
@given(x=arrays(np.float32, st.integers(1, 64), elements=st.floats(-10.0, 10.0, width=32)))
def test_gelu_float32_against_float64_at_drawn_points(be, x):
    _check_gelu32(be, x)


# ----- LayerNorm and softmax --------------------------------------------------------------------
def _layer_norm_by_definition(x, weight, bias, eps):
    """Per row: exactly rounded mean and biased variance (math.fsum), then normalise."""
    out = np.empty_like(x)
    for idx in np.ndindex(*x.shape[:-1]):
        row = x[idx].tolist()
        mean = math.fsum(row) / len(row)
        var = math.fsum((v - mean) ** 2 for v in row) / len(row)
        out[idx] = [(v - mean) / math.sqrt(var + eps) * w + b for v, w, b in zip(row, weight, bias)]
    return out


# Inputs with spread `scale` and an offset up to 10 * scale; outputs are O(1) to O(10). The two
# sides differ by the rounding of the mean and the variance sums (relative C * 2**-53 with
# C <= 16, amplified at most 10x by the offset): well under 1e-12.
LN_ATOL = 1e-12


@backend_settings
@given(
    rows=st.integers(1, 4),
    C=st.integers(1, 16),
    scale=st.sampled_from([1e-2, 1.0, 1e2]),
    offset=st.floats(-10.0, 10.0),
    seed=seeds,
)
def test_layer_norm_matches_definition(be, rows, C, scale, offset, seed):
    rng = np.random.default_rng(seed)
    x = scale * (offset + rng.standard_normal((rows, C)))
    weight, bias = 1.0 + 0.5 * rng.standard_normal(C), rng.standard_normal(C)
    got = layer_norm(be.asarray(x), be.asarray(weight), be.asarray(bias), eps=1e-5, xp=be.xp)
    assert_close(
        got,
        _layer_norm_by_definition(x, weight, bias, 1e-5),
        atol=LN_ATOL,
        what=f"layer_norm of a ({rows}, {C}) input, scale {scale}, offset {offset}, seed {seed}",
    )


@pytest.mark.parametrize(
    "x",
    [
        [[3.0]],  # C = 1: the centred value is 0, the output is the bias
        [[2.5, 2.5, 2.5]],  # a constant row
        [[1e8, 1e8 + 1.0, 1e8 + 2.0]],  # a large offset over a small spread
    ],
)
def test_layer_norm_edge_cases(be, x):
    x = np.asarray(x)
    C = x.shape[-1]
    weight, bias = np.linspace(0.5, 1.5, C), np.linspace(-1.0, 1.0, C)
    got = layer_norm(be.asarray(x), be.asarray(weight), be.asarray(bias), eps=1e-5, xp=be.xp)
    assert_close(
        got, _layer_norm_by_definition(x, weight, bias, 1e-5), atol=LN_ATOL, what=f"layer_norm({x.tolist()})"
    )


def _softmax_by_definition(x, axis):
    """exp(x_i) / sum_j exp(x_j) along axis, the sum exactly rounded (math.fsum)."""
    moved = np.moveaxis(x, axis, -1)
    out = np.empty_like(moved)
    for idx in np.ndindex(*moved.shape[:-1]):
        e = [math.exp(v) for v in moved[idx].tolist()]
        total = math.fsum(e)
        out[idx] = [v / total for v in e]
    return np.moveaxis(out, -1, axis)


# Logits in [-50, 50]: the definition's exp(x) does not overflow there. The implementation
# computes exp(x - max) instead; the rounding of x - max (at most |x - max| * 2**-53 <= 1.1e-14
# relative after exp) is the only systematic difference, hence rtol = 5e-14.
SOFTMAX_RTOL = 5e-14


@backend_settings
@given(
    x=arrays(np.float64, st.tuples(st.integers(1, 3), st.integers(1, 8)), elements=st.floats(-50.0, 50.0)),
    axis=st.sampled_from([0, 1, -1]),
)
def test_softmax_matches_definition(be, x, axis):
    got = softmax(be.asarray(x), axis=axis, xp=be.xp)
    assert_close(
        got,
        _softmax_by_definition(x, axis),
        atol=0.0,
        rtol=SOFTMAX_RTOL,
        what=f"softmax over axis {axis} of {x.tolist()}",
    )


@backend_settings
@given(
    x=arrays(np.float64, st.integers(1, 8), elements=st.floats(-5.0, 5.0)),
    shift=st.sampled_from([-1e4, 700.0, 1e4]),
)
def test_softmax_is_shift_invariant_without_overflow(be, x, shift):
    # exp(1e4) overflows, so only the max subtraction keeps the result finite. x + shift rounds x;
    # the differences of the shifted logits are exact (Sterbenz), so the reference is the
    # definition at (x + shift) - shift, with the same tolerance as above.
    shifted = x + shift
    got = to_numpy(softmax(be.asarray(shifted), axis=-1, xp=be.xp))
    assert np.all(np.isfinite(got)), f"softmax of logits near {shift} should be finite, got {got}"
    assert_close(
        got,
        _softmax_by_definition(shifted - shift, -1),
        atol=0.0,
        rtol=SOFTMAX_RTOL,
        what=f"softmax of {x.tolist()} + {shift}",
    )
