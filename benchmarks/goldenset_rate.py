"""Images per second of ``swinref golden --images`` on 1 and 2 local Dask workers.

    python benchmarks/goldenset_rate.py                                  # swin_t, 16 images, batch 4
    python benchmarks/goldenset_rate.py --images 32 --batch-size 8 --workers 1 2

Generates ``--images`` random RGB PNGs (320 x 280, seed 0) in a temporary directory, then for each
worker count starts a LocalCluster (one thread per worker process; distributed sets
OMP/OPENBLAS/MKL_NUM_THREADS=1 in the workers) and times one full run into a fresh store with
seeded-init weights in float64, precise mode. Reported: the cluster start-up (not counted in
the rate); the run's wall time, which includes sending the weights to the workers, reading and
decoding the files and writing the shards; and the 1-minute load average after the run (a load
above the worker count means other processes competed for the cores). The stores of all worker
counts must have identical shard digests; the script says whether they do.

The peer: timm's model in float64 eval mode, batch ``--timm-batch`` (default 8),
``--timm-threads`` torch threads, same seeded weights, random input; its
images/s is the median of 5 timed batches after 2 warm-up ones, and every worker count's rate is
printed as a ratio to it. ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` are removed from this
script's environment (and so its workers') before NumPy is imported.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="swin_t")
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--timm-batch", type=int, default=8)
    ap.add_argument("--timm-threads", type=int, default=min(2, os.cpu_count() or 1))
    args = ap.parse_args()
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # old-kernel settings: this run only
        os.environ.pop(var, None)

    import numpy as np
    from PIL import Image

    import swinref
    from swinref.artifacts.goldenset import connect, open_store, run_golden_set

    cfg = swinref.SwinConfig.named(args.model)
    params = swinref.init_params(cfg, seed=0)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        image_dir = os.path.join(tmp, "images")
        os.makedirs(image_dir)
        for i in range(args.images):
            Image.fromarray(rng.integers(0, 256, (280, 320, 3), dtype=np.uint8)).save(
                os.path.join(image_dir, f"{i:05d}.png")
            )
        print(
            f"{args.model}, {args.images} images of 320x280, batch {args.batch_size}, float64 precise, "
            f"{os.cpu_count()} CPUs"
        )
        print(
            f"{'workers':>7} {'start-up s':>10} {'run s':>8} {'images/s':>9} {'load avg (1 min) after':>23}"
        )
        digests = {}
        rates: dict[int, float] = {}
        for n in args.workers:
            t0 = time.perf_counter()
            client = connect(workers=n)
            started = time.perf_counter() - t0
            try:
                out = os.path.join(tmp, f"store_{n}")
                report = run_golden_set(
                    image_dir,
                    out,
                    cfg=cfg,
                    params=params,
                    model=args.model,
                    batch_size=args.batch_size,
                    client=client,
                )
            finally:
                cluster = client.cluster
                client.close()
                cluster.close()
            digests[n] = {k: r["sha256"] for k, r in open_store(out).shards.items()}
            # the load average shows whether other processes competed for the cores during the run
            rates[n] = report.rate
            print(
                f"{n:>7} {started:>10.1f} {report.seconds:>8.1f} {report.rate:>9.3f} "
                f"{os.getloadavg()[0]:>23.2f}"
            )
        same = all(d == digests[args.workers[0]] for d in digests.values())
        print("shard digests identical across worker counts:", same)
    peer = timm_rate(args.model, params, args.timm_batch, args.timm_threads)
    print(
        f"timm float64, batch {args.timm_batch}, {args.timm_threads} threads: {peer:.2f} images/s "
        f"(load avg {os.getloadavg()[0]:.2f})"
    )
    for n, rate in rates.items():
        print(f"swinref golden set, {n} worker(s) / timm: {rate / peer:.2f}x the throughput")


def timm_rate(model: str, params, batch: int, threads: int) -> float:
    """Images per second of timm's model in float64 eval mode (median of 5 batches)."""
    import numpy as np
    import timm
    import torch

    names = {"swin_t": "swin_tiny_patch4_window7_224", "swin_s": "swin_small_patch4_window7_224"}
    torch.set_num_threads(threads)
    net = timm.create_model(names.get(model, model), pretrained=False).eval().double()
    net.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in params.items()}, strict=True)
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((batch, 3, 224, 224)))
    times = []
    with torch.inference_mode():
        for i in range(7):
            t0 = time.perf_counter()
            net(x)
            if i >= 2:
                times.append(time.perf_counter() - t0)
    return batch / float(np.median(times))


if __name__ == "__main__":
    main()
