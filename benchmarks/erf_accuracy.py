"""Accuracy of swinref's erf, erfc and GELU against mpmath at 50 significant digits.

    python benchmarks/erf_accuracy.py                 # numpy, float64 and float32
    python benchmarks/erf_accuracy.py --backend torch # any of swinref.core.backend.BACKENDS
    python benchmarks/erf_accuracy.py --fit           # re-derive the coefficient tables

Errors are relative, in units in the last place (ULP) of the true value in the evaluated dtype:
|got - true| / spacing(true). Each row is a grid of ``-n`` points (default 20,000) plus as many
uniform random points (seed 0) on the range: 40,000 points per row by default. The figures quoted
in the README, in swinref/core/numerics.py and in tests/core/test_numerics.py are this command's.
"""

from __future__ import annotations

import argparse

import mpmath
import numpy as np

from swinref.core import backend, numerics

mpmath.mp.dps = 50

# Rows: (function, dtype, range). erfc underflows beyond ~26.5 (float64) and leaves float32's normal
# range beyond ~9.2. GELU is split by sign because its left tail behaves differently (ulp_error).
ROWS = [
    ("erf", "float64", (-6.0, 6.0)),
    ("erfc", "float64", (-6.0, 26.0)),
    ("gelu", "float64", (0.0, 8.0)),
    ("gelu", "float64", (-3.0, 0.0)),
    ("gelu", "float64", (-8.0, -3.0)),
    ("erf", "float32", (-4.0, 4.0)),
    ("erfc", "float32", (-4.0, 9.0)),
    ("gelu", "float32", (0.0, 8.0)),
    ("gelu", "float32", (-3.0, 0.0)),
    ("gelu", "float32", (-8.0, -3.0)),
]
TRUE = {
    "erf": mpmath.erf,
    "erfc": mpmath.erfc,
    "gelu": lambda x: x * mpmath.erfc(-x / mpmath.sqrt(2)) / 2,
}


def sample(lo: float, hi: float, n: int, dtype: str, seed: int = 0) -> np.ndarray:
    """n grid points plus n uniform random points on [lo, hi], rounded to dtype."""
    rng = np.random.default_rng(seed)
    return np.concatenate([np.linspace(lo, hi, n), rng.uniform(lo, hi, n)]).astype(dtype)


def ulp_error(got: np.ndarray, x: np.ndarray, name: str) -> np.ndarray:
    """|got - true| / spacing(true) per element, true value from mpmath at the exact input x.

    Note for GELU: the formula rounds x / sqrt(2) before erfc; for x << 0 that half-ULP input error
    is amplified about x**2 / 2 times, so the relative error of any such implementation
    (PyTorch's included) grows in the far left tail where GELU is ~0.
    """
    fn = TRUE[name]
    out = np.empty(x.shape, dtype=np.float64)
    for i, (g, xi) in enumerate(zip(got.tolist(), x.tolist())):
        t = fn(mpmath.mpf(xi))
        spacing = np.spacing(np.abs(np.asarray(float(t), dtype=got.dtype))).astype(np.float64)
        out[i] = float(abs(mpmath.mpf(g) - t) / mpmath.mpf(float(spacing)))
    return out


def accuracy_table(backend_name: str = "numpy", n: int = 20000) -> list[tuple]:
    """(function, dtype, range, max ULP, argument of the max, mean ULP) for every row of ROWS."""
    xp = backend.get_namespace(backend_name)
    table = []
    for name, dtype, (lo, hi) in ROWS:
        x = sample(lo, hi, n, dtype)
        got = backend.to_numpy(getattr(numerics, name)(backend.to_namespace({"x": x}, xp)["x"], xp=xp))
        err = ulp_error(got, x, name)
        table.append((name, dtype, (lo, hi), float(err.max()), float(x[err.argmax()]), float(err.mean())))
    return table


# ----- coefficient derivation -----------------------------------------------------------------
def _small_target(z):
    """erf(sqrt z) / sqrt z - 1, the function fitted in z = x**2 for |x| < SMALL_LIMIT."""
    if z == 0:
        return 2 / mpmath.sqrt(mpmath.pi) - 1
    x = mpmath.sqrt(z)
    return mpmath.erf(x) / x - 1


def _tail_target(t):
    """r = log(x * erfc(x)) + x**2 + TAIL_SHIFT at x = 1/t, the function fitted in t."""
    x = 1 / t
    return mpmath.log(x * mpmath.erfc(x)) + x * x + mpmath.mpf(numerics._TAIL_SHIFT)


def fit_tables() -> str:
    """Python source of the coefficient tables in swinref/numerics.py, derived with mpmath.

    Chebyshev fits (mpmath.chebyfit, near-minimax) at 40 digits; tail pieces are fitted in the
    centred variable u = 1/x - centre so Horner's rule stays well conditioned.
    """
    mpmath.mp.dps = 40
    lines = []
    small, err = mpmath.chebyfit(_small_target, [0, mpmath.mpf(numerics._SMALL_LIMIT) ** 2], 12, error=True)
    lines.append(
        f"# erf(x) = x + x * p(x**2) for |x| < {numerics._SMALL_LIMIT}: p, highest power first "
        f"(fit error {float(err):.1e}).\n"
        "_ERF_SMALL = (\n" + "".join(f"    {float(c)!r},\n" for c in small) + ")"
    )
    limits = (numerics._SMALL_LIMIT, numerics._TAIL_SPLIT, numerics._TAIL_LIMIT)
    pieces = (("_TAIL_NEAR", limits[0], limits[1], 20), ("_TAIL_FAR", limits[1], limits[2], 24))
    lines.append(
        "# erfc(x) = exp(-x**2 - 3/4 + r) / x, r = poly(1/x - centre): (centre, poly), poly\n"
        "# highest power first."
    )
    for name, x_lo, x_hi, terms in pieces:
        lo, hi = 1 / mpmath.mpf(x_hi), 1 / mpmath.mpf(x_lo)
        centre = float((lo + hi) / 2)
        c = mpmath.mpf(centre)
        poly, err = mpmath.chebyfit(lambda u: _tail_target(c + u), [lo - c, hi - c], terms, error=True)
        lines.append(
            f"# {x_lo:g} <= x <= {x_hi:g} (fit error {float(err):.1e}).\n{name} = ({centre!r}, (\n"
            + "".join(f"    {float(v)!r},\n" for v in poly)
            + "))"
        )
    mpmath.mp.dps = 50
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="numpy", choices=backend.BACKENDS)
    parser.add_argument("-n", type=int, default=20000, help="grid points (and as many random) per row")
    parser.add_argument("--fit", action="store_true", help="print the coefficient tables and exit")
    args = parser.parse_args(argv)
    if args.fit:
        print(fit_tables())
        return
    print(f"backend {args.backend}, mpmath {mpmath.mp.dps} digits, {2 * args.n} points per row")
    print(f"{'function':8} {'dtype':8} {'range':>14} {'max ULP':>8} {'at x':>12} {'mean ULP':>9}")
    for name, dtype, (lo, hi), worst, at, mean in accuracy_table(args.backend, args.n):
        print(f"{name:8} {dtype:8} {f'[{lo:g}, {hi:g}]':>14} {worst:8.2f} {at:12.6g} {mean:9.3f}")


if __name__ == "__main__":
    main()
