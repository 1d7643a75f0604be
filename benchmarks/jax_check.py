"""JAX against NumPy: max abs logit difference and time, eager and under ``jax.jit``, per family and dtype.

    python benchmarks/jax_check.py                          # every row, a few minutes on 2 cores
    python benchmarks/jax_check.py --rows v1:float32 v2:float64
    python benchmarks/jax_check.py --rows video:float64 --threads 1

Rows (FAMILY:DTYPE), batch 1, ``init_params(seed=0, scheme="random")`` (every parameter
non-trivial) and a standard-normal input (seed 0):

- ``v1``: swin_t at 224;
- ``v2``: swinv2_tiny_window8_256 at 256;
- ``video``: Video Swin-T (swin_tiny_patch244_window877_kinetics400_1k) on an 8 x 112 x 112 clip
  (the window's time extent clamps from 8 to 4 tokens).

Every row runs in its own subprocess: float32 rows with JAX's default (``JAX_ENABLE_X64=0``),
float64 rows with ``JAX_ENABLE_X64=1``; ``--threads`` sets OPENBLAS/OMP/MKL_NUM_THREADS there
(NumPy's BLAS; XLA uses its own thread pool over every core). Differences are against
swinref's NumPy forward in the same dtype; for scale, the same difference for the model code on
PyTorch's namespace (CPU; "-" without torch). Times: NumPy and JAX eager are the median of
``--repeats`` calls after one warm-up call; "jit first" is the first call of the jitted forward
(trace, compile and run); "jit later" the median of ``--repeats`` calls after it. JAX calls end
with ``block_until_ready()``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile

ROWS = ("v1:float32", "v1:float64", "v2:float32", "v2:float64", "video:float32", "video:float64")
MODELS = {
    "v1": ("swin_t", None),
    "v2": ("swinv2_tiny_window8_256", None),
    "video": ("swin_tiny_patch244_window877_kinetics400_1k", (8, 112, 112)),
}


def parse_row(text: str) -> tuple[str, str]:
    family, _, dtype = text.partition(":")
    if family not in MODELS or dtype not in ("float32", "float64"):
        raise SystemExit(f"bad row {text!r}: expected FAMILY:DTYPE, family one of {', '.join(MODELS)}")
    return family, dtype


# ----- worker (one family, one dtype) ----------------------------------------------------------------
def worker(row: str, repeats: int, out: str) -> None:
    import time

    import jax
    import numpy as np

    import swinref
    from swinref.core import backend
    from swinref.models import registry

    family, dtype = parse_row(row)
    name, size = MODELS[family]
    cfg = swinref.named(name)
    params = swinref.init_params(cfg, seed=0, dtype=dtype, scheme="random")
    shape = registry.family_of(cfg).input_shape(cfg, batch=1, size=size)
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)

    def timed(fn, n):
        times, result = [], None
        for _ in range(n):
            t0 = time.perf_counter()
            result = fn()
            times.append(time.perf_counter() - t0)
        return float(np.median(times)), result

    fwd = lambda: swinref.forward(params, x, cfg)  # noqa: E731
    fwd()
    t_numpy, expected = timed(fwd, repeats)

    jxp = backend.get_namespace("jax")
    pj = swinref.to_namespace(params, jxp)
    xj = jxp.asarray(x)
    eager = lambda: swinref.forward(pj, xj, cfg).block_until_ready()  # noqa: E731
    eager()
    t_eager, out_eager = timed(eager, repeats)

    jitted = jax.jit(lambda p, v: swinref.forward(p, v, cfg))
    call = lambda: jitted(pj, xj).block_until_ready()  # noqa: E731
    t_first, _ = timed(call, 1)
    t_jit, out_jit = timed(call, repeats)

    def diff(a):
        got = swinref.to_numpy(a)
        assert got.dtype == expected.dtype, f"{row}: the backend returned {got.dtype}"
        return float(np.abs(got.astype(np.float64) - expected).max())

    # for scale: the same model code on PyTorch's namespace (CPU), where torch is installed
    try:
        txp = backend.get_namespace("torch")
    except (ImportError, ValueError):
        torch_diff = None
    else:
        torch_diff = diff(swinref.forward(swinref.to_namespace(params, txp), txp.asarray(x), cfg))

    with open(out, "w") as f:
        json.dump(
            {
                "eager_diff": diff(out_eager),
                "jit_diff": diff(out_jit),
                "torch_diff": torch_diff,
                "max_logit": float(np.abs(expected).max()),
                "numpy_s": t_numpy,
                "eager_s": t_eager,
                "jit_first_s": t_first,
                "jit_s": t_jit,
                "jax": jax.__version__,
                "jax_device": str(jax.devices()[0]),
            },
            f,
        )


# ----- parent -------------------------------------------------------------------------------------
def run_row(row: str, args, tmp: str) -> dict:
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(args.threads)
    env["JAX_ENABLE_X64"] = "1" if row.endswith("float64") else "0"
    out = os.path.join(tmp, row.replace(":", "-") + ".json")
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", row, "--repeats", str(args.repeats)]
    proc = subprocess.run([*cmd, "--out", out], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"worker {row} failed:\n{proc.stderr}")
    with open(out) as f:
        return json.load(f)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", nargs="+", default=list(ROWS), metavar="FAMILY:DTYPE")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.worker, args.repeats, args.out)
        return 0
    for row in args.rows:
        parse_row(row)

    import numpy as np

    print(
        f"python {platform.python_version()}, numpy {np.__version__}; {os.cpu_count()} logical cores, "
        f"load average {', '.join(f'{v:.2f}' for v in os.getloadavg())}; BLAS threads {args.threads}"
    )
    print(
        f"max|d|: max abs logit difference to NumPy in the same dtype; times: median of {args.repeats} "
        "(jit first: one call, trace + compile + run)"
    )
    header = (
        f"{'row':<14} {'max|logit|':>10} {'eager max|d|':>12} {'jit max|d|':>10} {'torch max|d|':>12} "
        f"{'numpy ms':>9} "
        f"{'eager ms':>9} {'jit first s':>11} {'jit ms':>8}  command"
    )
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        for row in args.rows:
            r = run_row(row, args, tmp)
            command = f"python benchmarks/jax_check.py --rows {row} --threads {args.threads}"
            torch_diff = "-" if r["torch_diff"] is None else f"{r['torch_diff']:.1e}"
            print(
                f"{row:<14} {r['max_logit']:>10.2f} {r['eager_diff']:>12.1e} {r['jit_diff']:>10.1e} "
                f"{torch_diff:>12} {r['numpy_s'] * 1e3:>9.0f} {r['eager_s'] * 1e3:>9.0f} "
                f"{r['jit_first_s']:>11.1f} {r['jit_s'] * 1e3:>8.0f}  {command}"
            )
            sys.stdout.flush()
    print(f"jax {r['jax']} on {r['jax_device']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
