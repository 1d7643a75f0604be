"""Forward-pass speed and peak memory: swinref (fast and precise modes) against timm, on the CPU.

    python benchmarks/bench_forward.py                      # the default cases, a few minutes
    python benchmarks/bench_forward.py --cases swin_t:1:float32 --repeats 20
    python benchmarks/bench_forward.py --accuracy           # also fast vs precise on swin_t logits
    python benchmarks/bench_forward.py --impls precise jax timm   # also the precise path jitted by JAX

Every (implementation, case) runs in its own subprocess with the same thread count for BLAS
(OPENBLAS/OMP/MKL_NUM_THREADS, set before NumPy or torch is imported) and for torch
(``torch.set_num_threads``); timm runs in eval mode under ``torch.inference_mode()``. ``jax``
(not in the default set; ``pip install 'swinref[jax]'``) is the precise path under ``jax.jit`` with
params and input as JAX arrays, x64 enabled (``JAX_ENABLE_X64=1``) for float64 cases only; XLA
uses its own thread pool over every core, the BLAS variables do not reach it, and the first
warm-up call includes tracing and compilation. All
implementations get the same weights (swinref's seeded timm-style init, loaded into timm with
``load_state_dict``) and the same input (standard normal, seed 0); the parent checks that their
logits agree.

Time: the median (and min) wall time of ``--repeats`` forward calls after ``--warmup`` calls.
Memory: the peak extra resident memory of the forward calls. After the imports and the setup
(params, model and input built, garbage collected) the worker resets its resident-set high-water
mark (``/proc/self/clear_refs`` with "5", Linux >= 4.0; this also resets ``ru_maxrss``) and
records its current RSS; after the warm-up and timed calls it reads the high-water mark
(``VmHWM``; not ``ru_maxrss``, which Linux carries over from the parent process across exec) and
reports the difference. Setup transients (initialisers, state-dict copies) are thus excluded for every
implementation alike. Where the reset is refused the table says so and falls back to ``ru_maxrss``
after the calls minus ``ru_maxrss`` after setup (which hides a forward peak below the setup
peak). Params are reported separately as their byte size. Each worker measures one
implementation and one case only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile

DEFAULT_CASES = (
    "swin_t:1:float32",
    "swin_t:8:float32",
    "swin_t:1:float64",
    "swin_t:8:float64",
    "swin_b:1:float32",
)
IMPLS = ("fast", "precise", "timm", "jax")
DEFAULT_IMPLS = ("fast", "precise", "timm")
TIMM_NAMES = {
    "swin_t": "swin_tiny_patch4_window7_224",
    "swin_s": "swin_small_patch4_window7_224",
    "swin_b": "swin_base_patch4_window7_224",
    "swin_l": "swin_large_patch4_window7_224",
}


def parse_case(text: str) -> tuple[str, int, str]:
    try:
        name, batch, dtype = text.split(":")
        batch = int(batch)
    except ValueError:
        raise SystemExit(f"bad case {text!r}: expected MODEL:BATCH:DTYPE, e.g. swin_t:1:float32")
    if name not in TIMM_NAMES or dtype not in ("float32", "float64") or batch < 1:
        raise SystemExit(
            f"bad case {text!r}: model one of {', '.join(TIMM_NAMES)}, batch >= 1, dtype float32 or float64"
        )
    return name, batch, dtype


def _maxrss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _reset_peak_rss() -> bool:
    """Reset this process's RSS high-water mark (Linux clear_refs "5"); False where refused."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _status_mib(field: str) -> float:
    """VmRSS (current) or VmHWM (peak since start or the last reset) of this process, MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    raise OSError(f"no {field} in /proc/self/status")


# ----- worker (one implementation, one case) -----------------------------------------------------
def worker(impl: str, case: str, threads: int, warmup: int, repeats: int, out_prefix: str) -> None:
    import time

    import numpy as np

    import swinref
    from swinref.models.v1 import SwinConfig

    torch = jax = None
    if impl == "timm":
        import timm
        import torch

        torch.set_num_threads(threads)
    elif impl == "jax":
        import jax
    rss_imports = _maxrss_mib()

    name, batch, dtype = parse_case(case)
    cfg = SwinConfig.named(name)
    params = swinref.init_params(cfg, seed=0, dtype=dtype)
    param_bytes = sum(v.nbytes for v in params.values())
    x = np.random.default_rng(0).standard_normal((batch, 3, *cfg.image_hw)).astype(dtype)
    if impl == "timm":
        model = timm.create_model(TIMM_NAMES[name], pretrained=False).eval()
        if dtype == "float64":
            model = model.double()
        model.load_state_dict({k: torch.from_numpy(v) for k, v in params.items()}, strict=True)
        del params
        tx = torch.from_numpy(x)

        def run():
            with torch.inference_mode():
                return model(tx).numpy()
    elif impl == "jax":
        jxp = swinref.get_namespace("jax")
        jparams = swinref.to_namespace(params, jxp)
        del params
        jx = jxp.asarray(x)
        jitted = jax.jit(lambda p, v: swinref.forward(p, v, cfg))

        def run():
            return jitted(jparams, jx).block_until_ready()
    else:

        def run():
            return swinref.forward(params, x, cfg, mode=impl)

    import gc

    gc.collect()
    reset = _reset_peak_rss()
    rss_setup = _status_mib("VmRSS") if reset else _maxrss_mib()

    for _ in range(warmup):
        logits = run()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        logits = run()
        times.append(time.perf_counter() - t0)
    # VmHWM, not ru_maxrss: Linux keeps the parent's high-water mark in ru_maxrss across exec
    rss_after = _status_mib("VmHWM") if reset else _maxrss_mib()
    np.save(out_prefix + ".npy", swinref.to_numpy(logits))
    with open(out_prefix + ".json", "w") as f:
        json.dump(
            {
                "times": times,
                "rss_imports": rss_imports,
                "rss_setup": rss_setup,
                "rss_after": rss_after,
                "param_mib": param_bytes / 2**20,
                "peak_reset": reset,
            },
            f,
        )


# ----- parent --------------------------------------------------------------------------------------
def machine_report(threads: int) -> list[str]:
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import numpy as np

    blas = "unknown"
    try:
        info = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{info.get('name')} {info.get('version')}"
    except Exception:
        pass
    versions = [f"python {platform.python_version()}", f"numpy {np.__version__} ({blas})"]
    for mod in ("torch", "timm", "jax", "swinref"):
        try:
            versions.append(f"{mod} {__import__(mod).__version__}")
        except ImportError:
            versions.append(f"{mod} not installed")
    return [
        f"cpu: {cpu}; logical cores: {os.cpu_count()}; load average: "
        f"{', '.join(f'{v:.2f}' for v in os.getloadavg())}",
        f"threads: {threads} (BLAS env and torch.set_num_threads)",
        "versions: " + ", ".join(versions),
    ]


def run_worker(impl: str, case: str, args, tmp: str) -> dict:
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(args.threads)
    if impl == "jax":
        env["JAX_ENABLE_X64"] = "1" if case.endswith("float64") else "0"
    prefix = os.path.join(tmp, f"{impl}-{case.replace(':', '-')}")
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--worker",
        impl,
        case,
        "--threads",
        str(args.threads),
        "--warmup",
        str(args.warmup),
        "--repeats",
        str(args.repeats),
        "--out",
        prefix,
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"worker {impl} {case} failed:\n{proc.stderr}")
    with open(prefix + ".json") as f:
        result = json.load(f)
    import numpy as np

    result["logits"] = np.load(prefix + ".npy")
    return result


def accuracy_report() -> list[str]:
    """Max |fast - precise| on swin_t logits (seeded init, one standard-normal image)."""
    import numpy as np

    import swinref
    from swinref.models.v1 import SwinConfig

    cfg = SwinConfig.named("swin_t")
    lines = []
    for dtype in ("float64", "float32"):
        params = swinref.init_params(cfg, seed=0, dtype=dtype)
        x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(dtype)
        precise = swinref.forward(params, x, cfg)
        fast = swinref.forward(params, x, cfg, mode="fast")
        diff = np.abs(fast.astype(np.float64) - precise).max()
        lines.append(
            f"swin_t {dtype}: max |fast - precise| on logits = {diff:.2e} "
            f"(max |logit| {np.abs(precise).max():.2f})"
        )
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", nargs="+", default=list(DEFAULT_CASES), metavar="MODEL:BATCH:DTYPE")
    ap.add_argument("--impls", nargs="+", default=list(DEFAULT_IMPLS), choices=IMPLS)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--accuracy", action="store_true", help="also print fast vs precise on swin_t")
    ap.add_argument("--worker", nargs=2, metavar=("IMPL", "CASE"), help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(*args.worker, args.threads, args.warmup, args.repeats, args.out)
        return 0
    for case in args.cases:
        parse_case(case)

    import numpy as np

    for line in machine_report(args.threads):
        print(line)
    print(
        f"repeats: {args.repeats} timed after {args.warmup} warm-up calls; time = median (min) in ms; "
        "mem = peak extra RSS of the forward calls over the RSS after setup, MiB"
    )
    header = (
        f"{'case':<18} {'impl':<8} {'median ms':>10} {'min ms':>9} {'vs timm':>8} "
        f"{'mem MiB':>8} {'params MiB':>10} {'max|d| vs timm':>15}"
    )
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.cases:
            results = {impl: run_worker(impl, case, args, tmp) for impl in args.impls}
            base = results.get("timm")
            for impl, r in results.items():
                med, low = np.median(r["times"]) * 1e3, min(r["times"]) * 1e3
                ratio = f"{med / (np.median(base['times']) * 1e3):.2f}x" if base else "-"
                diff = (
                    f"{np.abs(r['logits'].astype(np.float64) - base['logits']).max():.1e}"
                    if base and impl != "timm"
                    else "-"
                )
                mem = r["rss_after"] - r["rss_setup"]
                note = "" if r["peak_reset"] else "  (peak reset refused: ru_maxrss difference)"
                print(
                    f"{case:<18} {impl:<8} {med:>10.1f} {low:>9.1f} {ratio:>8} {mem:>8.0f} "
                    f"{r['param_mib']:>10.0f} {diff:>15}{note}"
                )
            sys.stdout.flush()
    if args.accuracy:
        for line in accuracy_report():
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
