"""Time per token of window attention vs global attention as the image grows.

    python benchmarks/scaling.py                         # sizes 224 448 896 1344, plot scaling.png
    python benchmarks/scaling.py --global-max 896 --out /tmp/scaling.png

Runs swin_t's stage-1 block (C = 96, window 7, 3 heads, MLP ratio 4) on the token grid of an
image of each size (h = w = size / 4: 56, 112, 224, 336 tokens a side), through swinref's NumPy
fast path (``swinref.models.v1_fast``, float32, seeded timm-style weights). Next to it, a global-attention
block on the same tokens: the same LayerNorms, qkv, proj and MLP, but one attention over all h*w
tokens (no windows, no bias), the quadratic baseline of the Swin paper's Eq. (1).

The global attention's (nH, T, T) logits do not fit in memory at large T (at 1344: 112,896 tokens,
3 x 112896^2 float32 = 153 GB), so queries are processed in chunks of ``--chunk`` rows; the result
is exact, only the memory is bounded. Sizes above ``--global-max`` are not run: their time is
extrapolated from the largest measured size with the multiply-add count (``swinref.tools.flops``), which
is how the table marks them. Each time is the median of ``--repeats`` calls after one warm-up.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

C, NUM_HEADS, WINDOW = 96, 3, 7  # swin_t, stage 1


def stage1_params(seed: int = 0) -> dict[str, np.ndarray]:
    """Weights of one stage-1 block of swin_t (timm names, prefix ``blk``), float32."""
    import swinref
    from swinref.models.v1 import SwinConfig

    params = swinref.init_params(SwinConfig.named("swin_t"), seed=seed, dtype="float32")
    prefix = "layers.0.blocks.0."
    return {"blk." + k[len(prefix) :]: v for k, v in params.items() if k.startswith(prefix)}


def window_block(params, x):
    """Swin block (shift 0) on x (1, h, w, C) with the fast path's components."""
    from swinref.models import v1_fast as fast

    h = fast.window_attention_block(
        "blk", params, x, num_heads=NUM_HEADS, window=(WINDOW, WINDOW), shift=(0, 0)
    )
    return fast.mlp_block_("blk", params, h)


def global_block(params, x, chunk: int):
    """The same block with one global attention over all tokens; queries in chunks of ``chunk``."""
    from swinref.models import v1_fast as fast

    B, H, W, _ = x.shape
    T, d = H * W, C // NUM_HEADS
    t = x.reshape(T, C)
    h = fast.layer_norm(t, params["blk.norm1.weight"], params["blk.norm1.bias"])
    qkv = fast.linear(h, params["blk.attn.qkv.weight"], params["blk.attn.qkv.bias"])  # (T, 3C)
    qkv = qkv.reshape(T, 3, NUM_HEADS, d).transpose(1, 2, 0, 3)  # (3, nH, T, d)
    q, k, v = qkv[0] * d**-0.5, np.ascontiguousarray(qkv[1]), np.ascontiguousarray(qkv[2])
    out = np.empty((T, NUM_HEADS, d), np.float32)
    for start in range(0, T, chunk):
        logits = q[:, start : start + chunk] @ k.transpose(0, 2, 1)  # (nH, chunk, T)
        fast.softmax_(logits)
        np.matmul(logits, v, out=out[start : start + chunk].transpose(1, 0, 2))
    y = fast.linear(out.reshape(T, C), params["blk.attn.proj.weight"], params["blk.attn.proj.bias"])
    y += t
    return fast.mlp_block_("blk", params, y.reshape(B, H, W, C))


def median_time(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def block_macs(side: int, *, windowed: bool) -> int:
    """Multiply-adds of one block: attention (the paper's formula) + the MLP (2 * 4C^2 per token)."""
    from swinref.tools.flops import global_msa_flops, window_msa_flops

    attn = window_msa_flops(side, side, C, WINDOW) if windowed else global_msa_flops(side, side, C)
    return attn + 2 * side * side * C * 4 * C


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[224, 448, 896, 1344])
    ap.add_argument(
        "--global-max",
        type=int,
        default=448,
        help="largest image size whose global attention is run (larger: extrapolated)",
    )
    ap.add_argument("--chunk", type=int, default=1024, help="query rows per global-attention chunk")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "scaling.png"))
    args = ap.parse_args(argv)
    bad = [s for s in args.sizes if s % (4 * WINDOW)]
    if bad:
        raise SystemExit(
            f"sizes must be multiples of {4 * WINDOW} (grid a multiple of the window), got {bad}"
        )

    params = stage1_params()
    rng = np.random.default_rng(0)
    print(
        f"swin_t stage-1 block: C={C}, window {WINDOW}, {NUM_HEADS} heads, float32, NumPy fast path; "
        f"threads: OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'default')}, "
        f"cores {os.cpu_count()}"
    )
    print(
        f"{'image':>6} {'tokens':>8} {'window ms':>10} {'ns/token':>9} {'global ms':>11} {'ns/token':>10} "
        f"{'global/window':>14} {'MAC ratio':>10}"
    )
    rows = []
    measured = None  # (size, seconds) of the largest measured global run
    for size in args.sizes:
        side = size // 4
        T = side * side
        x = rng.standard_normal((1, side, side, C)).astype(np.float32)
        tw = median_time(lambda: window_block(params, x), args.repeats)
        if size <= args.global_max:
            tg = median_time(lambda: global_block(params, x, args.chunk), args.repeats)
            measured, how = (size, tg), ""
        elif measured is not None:
            s0, t0 = measured
            tg = t0 * block_macs(side, windowed=False) / block_macs(s0 // 4, windowed=False)
            how = f" (extrapolated from {s0} by MACs)"
        else:
            tg, how = float("nan"), " (not run)"
        mac_ratio = block_macs(side, windowed=False) / block_macs(side, windowed=True)
        rows.append((size, T, tw, tg, bool(how)))
        print(
            f"{size:>6} {T:>8} {tw * 1e3:>10.1f} {tw / T * 1e9:>9.0f} {tg * 1e3:>11.1f} "
            f"{tg / T * 1e9:>10.0f} {tg / tw:>14.1f} {mac_ratio:>10.1f}{how}"
        )
        sys.stdout.flush()

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install -e '.[bench]'): no plot written")
        return 0
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    tokens = [r[1] for r in rows]
    ax.plot(tokens, [r[2] / r[1] * 1e9 for r in rows], "o-", label="window attention (M=7)")
    meas = [r for r in rows if not r[4]]
    extra = [r for r in rows if r[4] and np.isfinite(r[3])]
    ax.plot(
        [r[1] for r in meas], [r[3] / r[1] * 1e9 for r in meas], "s-", color="C3", label="global attention"
    )
    if extra:
        link = meas[-1:] + extra
        ax.plot(
            [r[1] for r in link],
            [r[3] / r[1] * 1e9 for r in link],
            "s--",
            color="C3",
            mfc="none",
            label="global attention (extrapolated by MACs)",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(tokens, [f"{r[1]}\n({r[0]}px)" for r in rows])
    ax.minorticks_off()
    ax.set_xlabel("tokens h*w (image size)")
    ax.set_ylabel("time per token (ns)")
    ax.set_title("swin_t stage-1 block, float32, NumPy")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"plot: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
