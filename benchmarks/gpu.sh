#!/usr/bin/env bash
# swinref on an NVIDIA GPU: CuPy against NumPy (float64 and float32 swin_t logits), then swin_t
# batch 32 float32 timed against timm on CUDA in the same run; then the same checks for the
# precise path under jax.jit on the GPU (x64 on for float64, matmul precision "highest": no TF32).
# Prints one table.
#
#   bash benchmarks/gpu.sh                 # installs the project's extras: pip install -e '.[gpu,test,jax-gpu]'
#   SWINREF_SKIP_INSTALL=1 bash benchmarks/gpu.sh     # use what is installed (no network needed)
#   SWINREF_GPU_DRYRUN=1 SWINREF_GPU_BATCH=1 bash benchmarks/gpu.sh   # no GPU: NumPy and torch CPU
#                                                    # stand in (checks the script itself)
# SWINREF_GPU_BATCH (default 32) and SWINREF_GPU_REPEATS (default 10) size the timing.
# SWINREF_GPU_JAX=0 leaves JAX out; otherwise a JAX that cannot see the GPU is a failed check.
#
# Exit status: 0 when the accuracy checks pass, 1 when one fails, 2 when there is no usable GPU.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

dryrun="${SWINREF_GPU_DRYRUN:-0}"
if [[ "$dryrun" != 1 ]]; then
    if ! command -v nvidia-smi >/dev/null 2>&1; then
        echo "gpu.sh: nvidia-smi not found: this script needs an NVIDIA GPU and driver" >&2
        exit 2
    fi
    if ! nvidia-smi -L; then
        echo "gpu.sh: nvidia-smi sees no GPU" >&2
        exit 2
    fi
    if [[ "${SWINREF_SKIP_INSTALL:-0}" != 1 ]]; then
        # only the project's own extras (gpu: cupy-cuda13x[ctk]; test: torch, timm, ...; jax-gpu:
        # jax[cuda13])
        extras=gpu,test
        if [[ "${SWINREF_GPU_JAX:-1}" == 1 ]]; then
            extras=gpu,test,jax-gpu
        fi
        python -m pip install -q -e ".[$extras]"
    fi
fi

# JAX: no preallocation of 75% of the GPU (CuPy and torch share it in this process)
SWINREF_GPU_DRYRUN="$dryrun" XLA_PYTHON_CLIENT_PREALLOCATE=false python - <<'PY'
import os
import sys
import time

import numpy as np

import swinref
from swinref.models.v1 import SwinConfig

DRYRUN = os.environ["SWINREF_GPU_DRYRUN"] == "1"
# float64: CuPy and NumPy differ only in summation order and libdevice's last bits
TOL64 = 1e-10
# float32 against the float64 NumPy golden: float32 rounding through 12 blocks (measured on CPU:
# 3e-7 on logits of magnitude 0.6); 1e-4 is the float32 bound used across swinref
TOL32 = 1e-4
BATCH_CHECK, WARMUP = 2, 3
BATCH_TIME = int(os.environ.get("SWINREF_GPU_BATCH", "32"))
REPEATS = int(os.environ.get("SWINREF_GPU_REPEATS", "10"))


def fail(msg, code=2):
    print(f"gpu.sh: {msg}", file=sys.stderr)
    sys.exit(code)


import torch

if DRYRUN:
    xp = swinref.get_namespace("numpy")
    tdev = "cpu"
    sync = lambda: None  # noqa: E731
    gpu_name = "dry run: NumPy and torch CPU stand in for CuPy and CUDA"
else:
    try:
        import cupy
    except ImportError as e:
        fail(f"cupy is not importable ({e}); install the gpu extra: pip install -e '.[gpu]'")
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # CUDARuntimeError: no driver / no device
        fail(f"CuPy finds no CUDA device: {e}")
    if count < 1:
        fail("CuPy finds no CUDA device")
    if not torch.cuda.is_available():
        fail("torch.cuda.is_available() is False: timm cannot run on the GPU")
    xp = swinref.get_namespace("cupy")
    tdev = "cuda"
    gpu_name = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()

    def sync():
        cupy.cuda.Device().synchronize()
        torch.cuda.synchronize()

    # CuPy keeps TF32 off unless CUPY_TF32=1; keep timm in true float32 too
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False

import timm

cfg = SwinConfig.named("swin_t")
params64 = swinref.init_params(cfg, seed=0, dtype="float64")
x64 = np.random.default_rng(0).standard_normal((BATCH_CHECK, 3, 224, 224))
print(f"device: {gpu_name}")
versions = [f"numpy {np.__version__}", f"torch {torch.__version__}", f"timm {timm.__version__}",
            f"swinref {swinref.__version__}"]
if not DRYRUN:
    versions.append(f"cupy {cupy.__version__} (CUDA runtime {cupy.cuda.runtime.runtimeGetVersion()})")
print("versions: " + ", ".join(versions))

# ----- accuracy: device against the NumPy float64 golden --------------------------------------------
golden = swinref.forward(params64, x64, cfg)  # NumPy, precise, float64
rows, ok = [], True
for dtype, tol in (("float64", TOL64), ("float32", TOL32)):
    p = swinref.to_namespace(params64, xp, dtype=dtype)
    x = swinref.to_namespace({"x": x64}, xp, dtype=dtype)["x"]
    out = swinref.to_numpy(swinref.forward(p, x, cfg)).astype(np.float64)
    diff = float(np.abs(out - golden).max())
    passed = diff <= tol
    ok &= passed
    rows.append((f"swin_t b{BATCH_CHECK} {dtype} logits", f"max |device - numpy f64| = {diff:.2e}",
                 f"<= {tol:g}: {'ok' if passed else 'FAIL'}"))
    del p, x

# ----- speed: swin_t batch 32 float32, swinref (precise, on the device) vs timm on CUDA --------------
xb = np.random.default_rng(1).standard_normal((BATCH_TIME, 3, 224, 224)).astype(np.float32)
p32 = swinref.to_namespace(params64, xp, dtype="float32")
x32 = swinref.to_namespace({"x": xb}, xp)["x"]
model = timm.create_model("swin_tiny_patch4_window7_224", pretrained=False).eval()
model.load_state_dict({k: torch.from_numpy(v.astype(np.float32)) for k, v in params64.items()})
model = model.to(tdev)
tx = torch.from_numpy(xb).to(tdev)


def timed(fn):
    for _ in range(WARMUP):
        out = fn()
    sync()
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        out = fn()
        sync()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), out


with torch.inference_mode():
    t_timm, out_timm = timed(lambda: model(tx))
t_ref, out_ref = timed(lambda: swinref.forward(p32, x32, cfg))
agree = float(np.abs(swinref.to_numpy(out_ref).astype(np.float64) - out_timm.cpu().numpy()).max())
rows.append((f"swin_t b{BATCH_TIME} float32 time", f"swinref {t_ref * 1e3:.1f} ms, timm {t_timm * 1e3:.1f} ms",
             f"ratio {t_ref / t_timm:.2f}x (median of {REPEATS})"))
rows.append((f"swin_t b{BATCH_TIME} float32 agreement", f"max |swinref - timm| = {agree:.2e}", ""))
if not DRYRUN:
    rows.append(("peak device memory", f"cupy pool {cupy.get_default_memory_pool().total_bytes() / 2**20:.0f} MiB",
                 f"torch {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB"))
del p32, x32


# ----- JAX: the precise path under jax.jit on the device ---------------------------------------------
def jax_rows():
    """(rows, ok): float64/float32 logits against the NumPy golden, then the batch timing."""
    try:
        import jax
    except ImportError as e:
        return [("jax", f"not importable: {e}", "FAIL: pip install -e '.[jax-gpu]' (or SWINREF_GPU_JAX=0)")], False
    jax.config.update("jax_enable_x64", True)  # float64 rows; float32 arrays stay float32
    jax.config.update("jax_default_matmul_precision", "highest")  # true float32 products, no TF32
    platform = "cpu" if DRYRUN else "gpu"
    try:
        dev = jax.devices(platform)[0]
    except RuntimeError as e:
        return [("jax", f"no {platform} device: {e}", "FAIL: pip install -e '.[jax-gpu]' (or SWINREF_GPU_JAX=0)")], False
    jxp = swinref.get_namespace("jax")
    jitted = jax.jit(lambda p, v: swinref.forward(p, v, cfg))
    out_rows, passed_all = [("jax", f"jax {jax.__version__} on {dev}", "")], True
    for dtype, tol in (("float64", TOL64), ("float32", TOL32)):
        p = swinref.to_namespace(params64, jxp, device=dev, dtype=dtype)
        x = swinref.to_namespace({"x": x64}, jxp, device=dev, dtype=dtype)["x"]
        out = swinref.to_numpy(jitted(p, x)).astype(np.float64)
        diff = float(np.abs(out - golden).max())
        passed = diff <= tol
        passed_all &= passed
        out_rows.append((f"jax jit swin_t b{BATCH_CHECK} {dtype} logits", f"max |jax - numpy f64| = {diff:.2e}",
                         f"<= {tol:g}: {'ok' if passed else 'FAIL'}"))
        del p, x
    pj = swinref.to_namespace(params64, jxp, device=dev, dtype="float32")
    xj = swinref.to_namespace({"x": xb}, jxp, device=dev)["x"]
    t0 = time.perf_counter()
    jitted(pj, xj).block_until_ready()
    t_first = time.perf_counter() - t0
    t_jax, out_jax = timed(lambda: jitted(pj, xj).block_until_ready())
    agree_jax = float(np.abs(swinref.to_numpy(out_jax).astype(np.float64) - out_timm.cpu().numpy()).max())
    out_rows.append((f"jax jit swin_t b{BATCH_TIME} float32 time", f"jax {t_jax * 1e3:.1f} ms, timm {t_timm * 1e3:.1f} ms",
                     f"ratio {t_jax / t_timm:.2f}x (median of {REPEATS}; first call {t_first:.1f} s)"))
    out_rows.append((f"jax jit swin_t b{BATCH_TIME} float32 agreement", f"max |jax - timm| = {agree_jax:.2e}", ""))
    stats = dev.memory_stats() or {}
    if "peak_bytes_in_use" in stats:
        out_rows.append(("peak device memory, jax", f"{stats['peak_bytes_in_use'] / 2**20:.0f} MiB", ""))
    return out_rows, passed_all


if os.environ.get("SWINREF_GPU_JAX", "1") == "1":
    jrows, jok = jax_rows()
    rows += jrows
    ok &= jok

width = [max(len(r[i]) for r in rows) for i in range(3)]
print(f"{'check':<{width[0]}}  {'result':<{width[1]}}  verdict")
for r in rows:
    print(f"{r[0]:<{width[0]}}  {r[1]:<{width[1]}}  {r[2]}")
sys.exit(0 if ok else 1)
PY
