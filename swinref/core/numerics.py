"""Elementwise and normalisation numerics written with the array API standard only.

The standard has no ``erf``. :func:`erf` and :func:`erfc` use two forms:

- ``|x| < 0.84375``: ``erf(x) = x + x * p(x**2)``, p a polynomial; ``erfc`` is ``1 - erf`` for
  x < 1/4 and ``0.5 - ((x - 0.5) + x * p)`` above, which avoids the cancellation of ``1 - erf``.
- ``x >= 0.84375``: ``erfc(x) = exp(-x**2 - 3/4 + r(1/x)) / x`` with r a small correction
  (|r| < 0.18) given by two polynomials in 1/x, and ``erf = 1 - erfc``; ``exp(-x**2)`` is split
  into an exactly representable part and a small remainder so that the rounding of ``x**2``
  is not amplified in the tail.

The layout follows fdlibm's ``s_erf.c`` (Sun Microsystems); the polynomials are our own Chebyshev
fits made with mpmath (``python benchmarks/erf_accuracy.py --fit`` re-derives the tables).
Measured accuracy, relative to the true value, with ``python benchmarks/erf_accuracy.py`` (mpmath at
50 digits; per row 40,000 points: a grid of 20,000 and 20,000 uniform random ones, seed 0; NumPy,
and ``--backend torch``): float64 erf <= 0.88 ULP on [-6, 6] and erfc <= 2.72 ULP on [-6, 26]
(2.89 with torch, whose ``exp`` rounds differently). In float32, erf <= 1.08 ULP on [-4, 4] and
erfc <= 4.28 ULP on [-4, 9] with NumPy, whose float32 ``exp`` is itself off by up to 2.4 ULP
(torch: 0.93 and 2.51). GELU (float64) is within 1.47 ULP for x >= 0; for x < 0 the rounding of
x / sqrt(2) is amplified about x**2 times (14.9 ULP near x = -2.8, 93 near x = -8, where GELU is
-5e-15), the same term as in PyTorch's own formula.

On NumPy, :func:`erfc`, :func:`gelu`, :func:`layer_norm` and :func:`softmax` run on cache-sized
blocks in a thread pool (:func:`swinref.core.backend.map_blocks`) through the NumPy kernels at the
end of this module: erfc evaluates each element's own form only, and every block-sized temporary
lives in per-thread work arrays. The results are bit for bit those of the whole-array definitions,
which every other library runs (tests/core/test_blocks.py).
"""

from __future__ import annotations

import math
import threading

import numpy as np

from . import backend

LN_EPS = 1e-5  # every LayerNorm of every Swin family and port (PyTorch's default)

_SMALL_LIMIT = 0.84375  # |x| below: the power-series form; above: the exponential tail form
_TAIL_SPLIT = 2.0  # the two tail polynomials meet at x = 2 (1/x = 0.5)
_TAIL_LIMIT = 28.0  # erfc(x) underflows to 0 in float64 beyond x = 27.3; clipping keeps inf out
_TAIL_SHIFT = 0.75  # exact constant taken out of the tail exponent so that r stays small

# erf(x) = x + x * p(x**2) for |x| < 0.84375: p, highest power first (fit error 1.4e-19).
_ERF_SMALL = (
    -8.879702704985848e-10,
    1.4205594850504056e-08,
    -1.630309508468887e-07,
    1.6457914349746103e-06,
    -1.4925463570287675e-05,
    0.00012055327421282683,
    -0.000854832691425112,
    0.005223977624080742,
    -0.026866170645031,
    0.11283791670954745,
    -0.3761263890318375,
    0.1283791670955126,
)
# erfc(x) = exp(-x**2 - 3/4 + r) / x, r = poly(1/x - centre): (centre, poly), poly
# highest power first.
# 0.84375 <= x <= 2 (fit error 1.1e-18).
_TAIL_NEAR = (
    0.8425925925925926,
    (
        0.002385698150117389,
        -0.003457778698860136,
        0.002730464751393329,
        -0.0021074309047436337,
        0.0011670154531944726,
        0.0006157618864152704,
        -0.0029908996352279076,
        0.005566349922775305,
        -0.0078088742310787685,
        0.00892100881272417,
        -0.007865484707296172,
        0.0034595138118012217,
        0.005423676618849254,
        -0.019429744472128294,
        0.03781527123679145,
        -0.0562960764849237,
        0.060874152524933944,
        -0.0037596229305665516,
        -0.36360094446941876,
        -0.042485102717416325,
    ),
)
# 2 <= x <= 28 (fit error 7.4e-19).
_TAIL_FAR = (
    0.26785714285714285,
    (
        8136.977350933666,
        -3269.269039477305,
        -2319.5662499992213,
        1655.6384810411473,
        -231.38502073058547,
        -144.11585914782822,
        140.9064203156064,
        -75.80808520169883,
        17.122109875132963,
        10.804833410622354,
        -13.707690510892773,
        6.935879773435948,
        -0.6460619597514795,
        -2.0048057570967495,
        1.8337256346269382,
        -0.6513000527921303,
        -0.28083830250281633,
        0.5556238061825903,
        -0.3297616718627923,
        -0.05807567861553954,
        0.3273502129866201,
        -0.31230769155659255,
        -0.229437865845352,
        0.14452040148118156,
    ),
)


def _poly(u, coeffs):
    """Horner evaluation, coefficients highest power first.

    In place on a fresh accumulator (one allocation, not two per term); a library without
    in-place operators (JAX) falls back to ``acc = acc * u`` with the same rounding.
    """
    acc = coeffs[0] * u + coeffs[1]
    for c in coeffs[2:]:
        acc *= u
        acc += c
    return acc


def _exp_neg_square_shifted(a, r, *, xp):
    """exp(-a**2 - 3/4 + r) for a >= 0 without amplifying the rounding error of a**2.

    a = m + f with m a multiple of 1/128 (at most 12 significant bits for a <= 28), so m*m is
    exact even in float32 and -(m*m) - 3/4 is exact; the rest, 2*m*f + f*f - r, is small.
    """
    m = xp.round(a * 128.0) / 128.0
    f = a - m
    return xp.exp(-(m * m) - _TAIL_SHIFT) * xp.exp(r - (2.0 * m * f + f * f))


def _erfc_tail(a, *, xp):
    """erfc(a) for a >= 0.84375 (smaller ``a`` gives finite values that callers discard)."""
    a = xp.clip(a, _SMALL_LIMIT, _TAIL_LIMIT)
    t = 1.0 / a
    near_centre, near = _TAIL_NEAR
    far_centre, far = _TAIL_FAR
    r = xp.where(a < _TAIL_SPLIT, _poly(t - near_centre, near), _poly(t - far_centre, far))
    return _exp_neg_square_shifted(a, r, xp=xp) / a


def _erf_small_parts(x, *, xp):
    """(x, x * p(x**2)) with erf(x) = x + x * p(x**2), for |x| < 0.84375 (x clipped there)."""
    x = xp.clip(x, -_SMALL_LIMIT, _SMALL_LIMIT)
    return x, x * _poly(x * x, _ERF_SMALL)


def erf(x, *, xp):
    """Error function, elementwise. x: any shape, float32 or float64; returns x's shape and dtype."""
    a = xp.abs(x)
    xs = xp.clip(x, -_SMALL_LIMIT, _SMALL_LIMIT)
    # x + x * p, scaled by 8 and back (exact): fdlibm's guard that keeps x * p out of the
    # subnormal range, which flush-to-zero backends (JAX on CPU) would drop for |x| < 2e-307
    small = (xs * 8.0 + xs * (_poly(xs * xs, _ERF_SMALL) * 8.0)) * 0.125
    large = 1.0 - _erfc_tail(a, xp=xp)
    return xp.where(a < _SMALL_LIMIT, small, xp.where(x < 0, -large, large))


def erfc(x, *, xp):
    """Complementary error function 1 - erf(x), accurate in relative terms for large positive x.

    x: any shape, float32 or float64; returns x's shape and dtype. On NumPy this runs over
    cache-sized blocks (in a thread pool, see :func:`swinref.core.backend.map_blocks`), each
    element through its own form only (:func:`_erfc_into`); every other library runs
    :func:`erfc_portable`. Both give the same bits (tests/core/test_blocks.py checks it).
    """
    if backend.is_numpy(xp):
        return backend.map_blocks(_erfc_block, x, writes=True)
    return erfc_portable(x, xp=xp)


def erfc_portable(x, *, xp):
    """:func:`erfc` by evaluating every form on every element and selecting with ``where``.

    The definition of the result: no data-dependent shapes, so it also runs under ``jax.jit``.
    """
    a = xp.abs(x)
    xs, corr = _erf_small_parts(x, xp=xp)
    # for 1/4 <= x < 0.84375, x - 0.5 is exact and 0.5 - erfc(x) is formed without cancellation
    small = xp.where(x < 0.25, 1.0 - (xs + corr), 0.5 - ((xs - 0.5) + corr))
    tail = _erfc_tail(a, xp=xp)
    return xp.where(a < _SMALL_LIMIT, small, xp.where(x < 0, 2.0 - tail, tail))


_INV_SQRT2 = 1.0 / math.sqrt(2.0)


def gelu(x, *, xp, overwrite: bool = False):
    """Exact (erf-based) GELU, ``0.5 * x * (1 + erf(x / sqrt(2)))`` (PyTorch ``nn.GELU()``).

    Written as ``0.5 * x * erfc(-x / sqrt(2))``: the same function without the cancellation of
    ``1 + erf`` for negative x. x: any shape; returns x's shape and dtype. ``overwrite=True``
    says x is an intermediate the caller never reads again: on NumPy the result is then written
    over it (no second activation-sized array); x is never changed otherwise.
    """
    if backend.is_numpy(xp):  # erfc and the products block by block, while the block is in cache
        return backend.map_blocks(_gelu_block, x, in_place=overwrite, writes=True)
    return 0.5 * x * erfc_portable(-x * _INV_SQRT2, xp=xp)


def layer_norm(x, weight, bias, *, eps: float = 1e-5, xp):
    """LayerNorm over the last axis with biased variance (PyTorch ``nn.LayerNorm``).

    x: (..., C); weight, bias: (C,). Returns (..., C). On NumPy it runs on blocks of rows
    (:func:`swinref.core.backend.map_blocks`): the same arithmetic per row, so the same bits.
    """
    if backend.is_numpy(xp) and x.ndim >= 1 and x.shape[-1] > 0:
        w, b = np.asarray(weight), np.asarray(bias)
        return backend.map_blocks(
            lambda rows, dest: _layer_norm_rows(rows, w, b, eps, dest), x, row=x.shape[-1], writes=True
        )
    return _layer_norm(x, weight, bias, eps=eps, xp=xp)


def _layer_norm(x, weight, bias, *, eps: float, xp):
    mean = xp.mean(x, axis=-1, keepdims=True)
    centred = x - mean
    var = xp.mean(centred * centred, axis=-1, keepdims=True)
    return centred / xp.sqrt(var + eps) * weight + bias


def softmax(x, *, axis: int = -1, xp, overwrite: bool = False):
    """Softmax along ``axis``, max-subtracted. Returns x's shape.

    On NumPy, for the last axis, it runs on blocks of rows (the same bits); ``overwrite=True``
    says x is an intermediate the caller never reads again, and the result is written over it.
    """
    if backend.is_numpy(xp) and x.ndim >= 1 and axis in (-1, x.ndim - 1) and x.shape[-1] > 0:
        return backend.map_blocks(_softmax_rows, x, in_place=overwrite, row=x.shape[-1], writes=True)
    return _softmax(x, axis=axis, xp=xp)


def _softmax(x, *, axis: int, xp):
    e = xp.exp(x - xp.max(x, axis=axis, keepdims=True))
    return e / xp.sum(e, axis=axis, keepdims=True)


def linear(x, weight, bias=None, *, xp):
    """``x @ weight.T + bias`` (PyTorch ``nn.Linear``). x: (..., Cin); weight: (Cout, Cin).

    The leading axes are flattened first: one 2-D product instead of a stack of small ones
    (NumPy loops over the stack), the same arithmetic per output element.
    """
    *lead, Cin = x.shape
    y = xp.matmul(xp.reshape(x, (-1, Cin)), xp.matrix_transpose(weight))  # (prod(lead), Cout)
    y = xp.reshape(y, (*lead, weight.shape[0]))  # (..., Cout)
    if bias is not None:
        y += bias  # in place on the fresh product (libraries without in-place ops rebind)
    return y


# ----- the NumPy kernels -------------------------------------------------------------------------
# Each one writes into ``dest`` with NumPy's ``out=`` arguments the bits of the portable definition
# above, the same operations in the same order on each element (tests/core/test_blocks.py checks
# it). They run on one block of :func:`swinref.core.backend.map_blocks` at a time, so every full-
# block temporary lives in the calling thread's work arrays instead of fresh memory: a fresh array
# of a block's size comes from the C allocator as new pages, and the page faults cost more than the
# arithmetic.
_WORK = threading.local()


def _work(dtype: np.dtype, n: int, k: int) -> list[np.ndarray]:
    """k work arrays of n elements of ``dtype``, owned by the calling thread and reused by its next
    call. Their contents mean nothing between calls."""
    store: dict[np.dtype, np.ndarray] = _WORK.__dict__.setdefault("arrays", {})
    buf = store.get(dtype)
    if buf is None or buf.shape[0] < k or buf.shape[1] < n:
        rows, cols = (k, n) if buf is None else (max(k, buf.shape[0]), max(n, buf.shape[1]))
        buf = store[dtype] = np.empty((rows, cols), dtype)
    return [buf[i, :n] for i in range(k)]


def _erfc_into(z: np.ndarray, dest: np.ndarray, work: list[np.ndarray]) -> None:
    """erfc_portable(z) written into ``dest`` (1-D, z's size, not overlapping z or ``work``).

    The small-argument form runs on the whole block, then only the elements outside it are
    gathered (by index: a gather by index costs a fraction of a boolean-mask gather) and each
    goes through the operations the portable form applies to its region, so the two tail
    polynomials (20 and 24 terms) and the two exps run on few elements, once each.
    """
    a, xs, u, corr = work[:4]
    np.abs(z, out=a)
    np.clip(z, -_SMALL_LIMIT, _SMALL_LIMIT, out=xs)
    np.multiply(xs, xs, out=u)
    np.multiply(u, _ERF_SMALL[0], out=corr)  # Horner, as _poly
    corr += _ERF_SMALL[1]
    for c in _ERF_SMALL[2:]:
        corr *= u
        corr += c
    np.multiply(xs, corr, out=corr)
    np.add(xs, corr, out=dest)
    np.subtract(1.0, dest, out=dest)  # 1 - (x + x p), the form below 1/4
    small = a < _SMALL_LIMIT  # NaN is not: it goes through the tail and stays NaN
    (mid,) = np.nonzero(small & (z >= 0.25))
    if mid.size:
        dest[mid] = 0.5 - ((xs[mid] - 0.5) + corr[mid])
    (tail,) = np.nonzero(~small)
    if tail.size:
        ta = np.clip(a[tail], _SMALL_LIMIT, _TAIL_LIMIT)
        t = 1.0 / ta
        r = np.empty_like(ta)
        near = ta < _TAIL_SPLIT
        for which, (centre, coeffs) in ((near, _TAIL_NEAR), (~near, _TAIL_FAR)):
            (i,) = np.nonzero(which)
            if i.size:
                r[i] = _poly(t[i] - centre, coeffs)
        value = _exp_neg_square_shifted(ta, r, xp=np) / ta
        (negative,) = np.nonzero(z[tail] < 0)
        if negative.size:
            value[negative] = 2.0 - value[negative]
        dest[tail] = value


def _erfc_block(z: np.ndarray, dest: np.ndarray) -> None:
    _erfc_into(z, dest, _work(z.dtype, z.shape[0], 4))


def _gelu_block(x: np.ndarray, dest: np.ndarray) -> None:
    """0.5 * x * erfc_portable(-x / sqrt 2) into ``dest``, which may be x itself."""
    z, e, *work = _work(x.dtype, x.shape[0], 6)
    np.negative(x, out=z)
    np.multiply(z, _INV_SQRT2, out=z)
    _erfc_into(z, e, work)
    np.multiply(x, 0.5, out=dest)
    np.multiply(dest, e, out=dest)


def _layer_norm_rows(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float, dest: np.ndarray
) -> None:
    """_layer_norm of rows x (r, C) into ``dest`` (r, C), which may be x itself."""
    mean = np.mean(x, axis=-1, keepdims=True)
    np.subtract(x, mean, out=dest)  # centred
    (square,) = _work(x.dtype, x.size, 1)
    square = square.reshape(x.shape)
    np.multiply(dest, dest, out=square)
    scale = np.mean(square, axis=-1, keepdims=True)
    scale += eps
    np.sqrt(scale, out=scale)
    np.divide(dest, scale, out=dest)
    np.multiply(dest, weight, out=dest)
    np.add(dest, bias, out=dest)


def _softmax_rows(x: np.ndarray, dest: np.ndarray) -> None:
    """_softmax of rows x (r, n) along the last axis into ``dest``, which may be x itself."""
    peak = np.max(x, axis=-1, keepdims=True)
    np.subtract(x, peak, out=dest)
    np.exp(dest, out=dest)
    total = np.sum(dest, axis=-1, keepdims=True)
    np.divide(dest, total, out=dest)
