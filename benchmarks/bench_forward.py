"""Forward-pass speed and peak memory: swinref (fast and precise modes) against timm, on the CPU.

    python benchmarks/bench_forward.py                      # the ratio table, before and after
    python benchmarks/bench_forward.py --baseline-ref none  # the ratio table of this tree only
    python benchmarks/bench_forward.py --cases swin_t:1:float32 --repeats 20   # per-case table
    python benchmarks/bench_forward.py --cases swin_t:1:float32 --accuracy     # + fast vs precise
    python benchmarks/bench_forward.py --cases swin_t:1:float32 --impls precise jax timm  # + JAX

Without ``--cases`` it prints the ratio table: swin_t, 224, same random weights, against timm
eager in its own process: precise float32 and float64 (batch 1, ``--threads``), fast float32
(batch 1, ``--threads`` and 1 thread), the peak extra memory of precise float64 at batch 4 (one
warm-up and one measured call), and
fast float32 against onnxruntime running timm's ONNX export (exported once per run, legacy
TorchScript exporter, opset 17; ``pip install onnx onnxruntime``, else the row says so). Each
(tree, implementation, case, thread count) runs in its own process; ``--rounds`` rounds run the
processes in alternating order, and each ratio is the median over rounds of the per-round
median-time ratio. ``--baseline-ref REF`` (default ``e1f568e``) also measures swinref at that
commit (``git archive`` into a temporary directory, imported from there in its own processes)
so "before" and "after" come from the same run; ``none`` leaves it out.

Every worker runs with ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` removed from its
environment (they force old OpenBLAS kernels: NumPy's sgemm then runs at a third of its speed,
while torch is unaffected) and prints the BLAS kernels it loaded (threadpoolctl, when installed).
The variables are removed here only, for the benchmark's own subprocesses.

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
(params, model and input built, garbage collected) the worker returns free C-heap memory to the
system (glibc's ``malloc_trim``, so no implementation reuses memory freed during its setup),
resets its resident-set high-water mark (``/proc/self/clear_refs`` with "5", Linux >= 4.0; this
also resets ``ru_maxrss``) and records its current RSS; after the warm-up and timed calls it reads
the high-water mark (``VmHWM``; not ``ru_maxrss``, which Linux carries over from the parent
process across exec) and reports the difference. Setup transients (initialisers, state-dict
copies) are thus excluded for every implementation alike. Where the reset is refused the table
says so and falls back to ``ru_maxrss`` after the calls minus ``ru_maxrss`` after setup (which
hides a forward peak below the setup peak). Params are reported separately as their byte size.
Each worker measures one implementation and one case only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import warnings

DEFAULT_CASES = (
    "swin_t:1:float32",
    "swin_t:8:float32",
    "swin_t:1:float64",
    "swin_t:8:float64",
    "swin_b:1:float32",
)
IMPLS = ("fast", "precise", "timm", "jax", "ort")
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


def _trim_heap() -> None:
    """Return the C heap's free memory to the system (glibc ``malloc_trim``; a no-op elsewhere).

    Without it, memory freed during setup (a model built in float32 and cast, a state dict
    copied) stays resident and a forward that reuses it looks cheaper than one that does not; which
    of the two happens changes from process to process (timm float64 at batch 4 measured 20 or
    57 MiB in the same command)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _status_mib(field: str) -> float:
    """VmRSS (current) or VmHWM (peak since start or the last reset) of this process, MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    raise OSError(f"no {field} in /proc/self/status")


# ----- worker (one implementation, one case) -----------------------------------------------------
def worker(
    impl: str, case: str, threads: int, warmup: int, repeats: int, out_prefix: str, onnx_path: str | None
) -> None:
    import time

    import numpy as np

    import swinref
    from swinref.models.v1 import SwinConfig

    torch = jax = ort = None
    if impl == "timm":
        import timm
        import torch

        torch.set_num_threads(threads)
    elif impl == "jax":
        import jax
    elif impl == "ort":
        import onnxruntime as ort
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
    elif impl == "ort":
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
        del params

        def run():
            return session.run(None, {"x": x})[0]
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
    _trim_heap()
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
                "blas": blas_kernels(),
                "swinref": os.path.dirname(swinref.__file__),
            },
            f,
        )


def blas_kernels() -> str:
    """The BLAS libraries this process loaded and the kernel each runs (threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (pip install threadpoolctl)"
    found = [
        f"{i.get('internal_api')} {i.get('version')} {i.get('architecture', '?')} x{i.get('num_threads')}"
        f" ({os.path.basename(i.get('filepath', ''))})"
        for i in threadpool_info()
        if i.get("user_api") == "blas"
    ]
    return "; ".join(found) or "none loaded"


def worker_env(threads: int, pythonpath: str) -> dict[str, str]:
    """The environment of a worker: the thread count for every BLAS, swinref from ``pythonpath``,
    and without the variables that force old OpenBLAS kernels."""
    env = dict(os.environ)
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        env.pop(var, None)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    env["PYTHONPATH"] = pythonpath
    return env


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


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_worker(
    impl: str,
    case: str,
    args,
    tmp: str,
    *,
    threads: int | None = None,
    tree: str = REPO,
    tag: str = "",
    onnx_path: str | None = None,
    calls: tuple[int, int] | None = None,
) -> dict:
    threads = args.threads if threads is None else threads
    warmup, repeats = (args.warmup, args.repeats) if calls is None else calls
    env = worker_env(threads, tree)
    if impl == "jax":
        env["JAX_ENABLE_X64"] = "1" if case.endswith("float64") else "0"
    prefix = os.path.join(tmp, f"{tag}{impl}-{threads}-{case.replace(':', '-')}")
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--worker",
        impl,
        case,
        "--threads",
        str(threads),
        "--warmup",
        str(warmup),
        "--repeats",
        str(repeats),
        "--out",
        prefix,
    ]
    if onnx_path:
        cmd += ["--onnx", onnx_path]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"worker {impl} {case} ({tree}) failed:\n{proc.stderr}")
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


# ----- the ratio table -----------------------------------------------------------------------------
BASELINE_REF = "e1f568e"

# (label, tree, impl, case, threads or None for --threads): every process of a round
RATIO_RUNS = (
    ("precise f32", "precise", "swin_t:1:float32", None),
    ("precise f64", "precise", "swin_t:1:float64", None),
    ("fast f32", "fast", "swin_t:1:float32", None),
    ("fast f32 1t", "fast", "swin_t:1:float32", 1),
    ("precise f64 b4", "precise", "swin_t:4:float64", None),
)
PEER_RUNS = (
    ("timm f32", "timm", "swin_t:1:float32", None),
    ("timm f64", "timm", "swin_t:1:float64", None),
    ("timm f32 1t", "timm", "swin_t:1:float32", 1),
    ("timm f64 b4", "timm", "swin_t:4:float64", None),
    ("ort f32", "ort", "swin_t:1:float32", None),
)
# (row, numerator, denominator, what): the ratios
RATIOS = (
    ("precise float32 / timm, time", "precise f32", "timm f32", "time"),
    ("precise float64 / timm, time", "precise f64", "timm f64", "time"),
    ("fast float32 / timm, time", "fast f32", "timm f32", "time"),
    ("fast float32 / timm, time, 1 thread", "fast f32 1t", "timm f32 1t", "time"),
    ("precise float64 / timm, peak extra memory, batch 4", "precise f64 b4", "timm f64 b4", "mem"),
    ("fast float32 / onnxruntime (timm's ONNX export), time", "fast f32", "ort f32", "time"),
)


def export_onnx(path: str, threads: int) -> str | None:
    """timm's swin_t (swinref's seeded weights, float32) as ONNX at ``path``; None with the reason
    printed when onnx/onnxruntime are missing or the export fails."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import timm
        import torch

        import swinref
        from swinref.models.v1 import SwinConfig
    except ImportError as e:
        print(f"onnxruntime row left out: {e} (pip install onnx onnxruntime)")
        return None
    torch.set_num_threads(threads)
    cfg = SwinConfig.named("swin_t")
    params = swinref.init_params(cfg, seed=0, dtype="float32")
    model = timm.create_model(TIMM_NAMES["swin_t"], pretrained=False).eval()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in params.items()}, strict=True)
    x = torch.zeros(1, 3, *cfg.image_hw)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer notes
            torch.onnx.export(
                model, (x,), path, input_names=["x"], output_names=["logits"], opset_version=17, dynamo=False
            )
    except Exception as e:  # the exporter's errors are of many kinds; the row says why it is missing
        print(f"onnxruntime row left out: the ONNX export failed: {type(e).__name__}: {e}")
        return None
    return path


def baseline_tree(ref: str, tmp: str) -> str:
    """The swinref package of commit ``ref`` (``git archive``) unpacked under ``tmp``."""
    dest = os.path.join(tmp, "baseline")
    os.makedirs(dest)
    archive = subprocess.run(
        ["git", "-C", REPO, "archive", "--format=tar", ref, "swinref"], capture_output=True
    )
    if archive.returncode != 0:
        raise SystemExit(f"--baseline-ref {ref}: git archive failed: {archive.stderr.decode().strip()}")
    subprocess.run(["tar", "-x", "-C", dest], input=archive.stdout, check=True)
    return dest


def _git_describe(tree: str) -> str:
    proc = subprocess.run(["git", "-C", tree, "log", "-1", "--format=%h %s"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", tree, "status", "--porcelain"], capture_output=True, text=True)
    return proc.stdout.strip()[:70] + (" (uncommitted changes)" if dirty.stdout.strip() else "")


def ratio_table(args) -> int:
    """The issue's ratio table, before (``--baseline-ref``) and after (this tree)."""
    import numpy as np

    for line in machine_report(args.threads):
        print(line)
    print("OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE: removed from every worker's environment")
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"after": REPO}
        if args.baseline_ref.lower() != "none":
            trees["before"] = baseline_tree(args.baseline_ref, tmp)
        onnx_path = export_onnx(os.path.join(tmp, "swin_t.onnx"), args.threads)
        jobs = [
            (f"{tree} {label}", tree, impl, case, t) for tree in trees for label, impl, case, t in RATIO_RUNS
        ]
        jobs += [
            (label, "after", impl, case, t)
            for label, impl, case, t in PEER_RUNS
            if impl != "ort" or onnx_path
        ]
        results: dict[str, list[dict]] = {job[0]: [] for job in jobs}
        for r in range(args.rounds):
            order = jobs if r % 2 == 0 else jobs[::-1]  # alternate: no implementation always runs first
            for key, tree, impl, case, t in order:
                memory_only = case.split(":")[1] != "1"  # the batch-4 rows compare peak memory only
                results[key].append(
                    run_worker(
                        impl,
                        case,
                        args,
                        tmp,
                        threads=t,
                        tree=trees[tree],
                        tag=tree,
                        onnx_path=onnx_path,
                        calls=(1, 1) if memory_only else None,
                    )
                )
            print(
                f"round {r + 1}/{args.rounds} done; load average (1 min) {os.getloadavg()[0]:.2f}", flush=True
            )
        print()
        print(
            "swinref trees:",
            "; ".join(f"{k}: {_git_describe(REPO) if k == 'after' else args.baseline_ref}" for k in trees),
        )
        for key in ("after precise f32", "timm f32", "ort f32"):
            if key in results:
                print(f"BLAS in the {key.replace('after ', '')} worker: {results[key][0]['blas']}")
        print()

        def median_ms(key: str, i: int) -> float:
            return float(np.median(results[key][i]["times"])) * 1e3

        def mem(key: str, i: int) -> float:
            run = results[key][i]
            return run["rss_after"] - run["rss_setup"]

        header = f"| swinref / peer | {' | '.join(trees)} |"
        print(
            f"swin_t 224, {args.threads} threads unless marked; {args.rounds} rounds, each "
            f"{args.repeats} timed calls after {args.warmup} warm-up calls; ratio = median over "
            "rounds of median time (or peak extra RSS) ratios"
        )
        print(header)
        print("|---|" + "---|" * len(trees))
        for row, num, den, what in RATIOS:
            if den not in results:
                continue
            cells = []
            for tree in trees:
                key = f"{tree} {num}"
                ratios = [
                    (median_ms(key, i) / median_ms(den, i)) if what == "time" else (mem(key, i) / mem(den, i))
                    for i in range(args.rounds)
                ]
                cells.append(f"{np.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})")
            print(f"| {row.replace('threads', str(args.threads))} | {' | '.join(cells)} |")
        print()
        print("absolute figures (median over rounds): time ms / peak extra MiB / max |logits - timm|")
        for key in results:
            peer = {"f32": "timm f32", "f64": "timm f64", "1t": "timm f32 1t", "b4": "timm f64 b4"}[
                key.split()[-1]
            ]
            diff = np.abs(results[key][0]["logits"].astype(np.float64) - results[peer][0]["logits"]).max()
            print(
                f"  {key:<22} {np.median([median_ms(key, i) for i in range(args.rounds)]):9.1f} ms "
                f"{np.median([mem(key, i) for i in range(args.rounds)]):8.0f} MiB   {diff:.1e}"
            )
        print(f"load average at the end: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--cases",
        nargs="+",
        metavar="MODEL:BATCH:DTYPE",
        help=f"per-case table of these cases (e.g. {' '.join(DEFAULT_CASES)}) instead of the ratio table",
    )
    ap.add_argument("--impls", nargs="+", default=list(DEFAULT_IMPLS), choices=IMPLS)
    ap.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--accuracy", action="store_true", help="also print fast vs precise on swin_t")
    ap.add_argument("--worker", nargs=2, metavar=("IMPL", "CASE"), help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--onnx", help=argparse.SUPPRESS)
    ap.add_argument("--rounds", type=int, default=3, help="ratio table: rounds of alternating processes")
    ap.add_argument(
        "--baseline-ref",
        default=BASELINE_REF,
        help="ratio table: also measure swinref at this git commit ('none': this tree only)",
    )
    args = ap.parse_args(argv)
    if args.worker:
        worker(*args.worker, args.threads, args.warmup, args.repeats, args.out, args.onnx)
        return 0
    if args.cases is None:
        return ratio_table(args)
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
