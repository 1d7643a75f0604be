"""``swinref golden`` and ``swinref compare``: golden files and image-set stores from the command line."""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from ..artifacts.fileio import atomic_write
from ..artifacts.golden import compare_golden, golden_input, read_golden, sha256_file, write_golden
from ..artifacts.goldenset import compare_stores, intermediate_names, run_golden_set
from ..artifacts.imageset import EvalTransform
from ..artifacts.ports import compare_port, is_golden_file, seeded_source
from ..artifacts.weights_io import load_params, save_params
from ..core import backend
from ..models import registry
from .common import (
    add_force_argument,
    add_model_arguments,
    check_output_path,
    fmt,
    int_at_least,
    model_config,
    parse_names,
    print_port_comparison,
    stdout_console,
)

GOLDEN_HELP = """\
Run one forward pass and write a golden file (safetensors): the input, every named intermediate
and the logits, with a JSON header under the metadata key 'swinref'.

Weights: seeded (swinref.init_params(cfg, seed=SEED, scheme=INIT)) unless --weights gives a file
(.safetensors, .npz or .pth, timm names). The default scheme "random" makes every parameter
non-trivial (random biases, LayerNorm weights and biases, position tables), so a port that drops
any of them fails; "timm" is timm's initialisation (zero biases, unit LayerNorm weights).
For a port: --save-input FILE.npy writes the input, --save-weights FILE (.safetensors or .npz)
writes the weights in --layout (timm, official, torchvision, hf: the family's layouts).
Input: numpy.random.default_rng(INPUT_SEED).standard_normal((BATCH, in_chans, H, W)), drawn in
float64 with NumPy's PCG64 and cast to --dtype; the input is also stored in the file.
The same arguments always write the same bytes (no timestamps).
"""


def _human_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _weights(args: argparse.Namespace, cfg) -> tuple[dict[str, np.ndarray], str]:
    """The params and their provenance line: seeded init, or a file in any layout of the family."""
    if args.weights is not None and args.seed is not None:
        raise ValueError("--seed picks seeded init weights; it cannot be combined with --weights FILE")
    scheme = getattr(args, "init", None)
    if args.weights is not None and scheme is not None:
        raise ValueError("--init picks seeded init weights; it cannot be combined with --weights FILE")
    if args.weights is None:
        seed = 0 if args.seed is None else args.seed
        scheme = scheme or "random"
        params = registry.init_params(cfg, seed=seed, dtype=args.dtype, scheme=scheme)
        return params, seeded_source(seed, scheme)
    params = load_params(args.weights, cfg, dtype=args.dtype, source=getattr(args, "source", None))
    return params, f"{args.weights} sha256={sha256_file(args.weights)}"


def _cmd_golden(args: argparse.Namespace) -> int:
    if args.images is not None:  # a whole image set into a store
        return cmd_golden_images(args)
    from rich.console import Console  # noqa: PLC0415
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn  # noqa: PLC0415

    start = time.perf_counter()
    label, cfg, size = model_config(args)
    xp = backend.get_namespace(args.backend, float64=args.dtype == "float64")
    out = args.out or f"golden_{label.replace(' ', '_')}.safetensors"
    check_output_path(out, force=args.force, what="golden file")
    if args.batch < 1:
        raise ValueError(f"--batch must be a positive int, got {args.batch}")
    layout = _check_port_files(args, cfg)

    err = Console(stderr=True)
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=not err.is_terminal,
    )
    with progress:
        task = progress.add_task("input", total=4)
        x = golden_input(cfg, batch=args.batch, seed=args.input_seed, dtype=args.dtype, size=size)
        progress.update(task, advance=1, description="weights")
        params, source = _weights(args, cfg)
        progress.update(task, advance=1, description=f"forward ({args.backend}, {args.dtype})")
        on_backend = backend.to_namespace(params, xp)
        logits, inter = registry.forward(
            on_backend, backend.to_namespace({"x": x}, xp)["x"], cfg, return_intermediates=True
        )
        progress.update(task, advance=1, description="write")
        logits = backend.to_numpy(logits)
        write_golden(
            out,
            cfg=cfg,
            params=params,
            x=x,
            logits=logits,
            intermediates=None if args.no_intermediates else inter,
            metadata=dict(
                model=label, backend=args.backend, weights_source=source, input_seed=args.input_seed
            ),
            overwrite=args.force,
        )
        _save_port_files(args, cfg, x, params, layout)
        progress.update(task, advance=1, description="done")
    elapsed = time.perf_counter() - start

    console = stdout_console()
    n_tensors = 2 + (0 if args.no_intermediates else len([n for n in inter if n != "logits"]))
    top = np.argsort(-logits[0], kind="stable")[:5]
    console.print(f"[bold]wrote[/bold] {out}  ({_human_size(os.path.getsize(out))}, {n_tensors} tensors)")
    console.print(
        f"model {label} ({registry.family_of(cfg).title}), input {tuple(x.shape)}, "
        f"{args.dtype} on {args.backend}, weights: {source}, input seed {args.input_seed}, "
        f"batch {args.batch}"
    )
    sample = "clip" if x.ndim == 5 else "image"
    console.print(
        f"logits shape {tuple(logits.shape)}; top-5 classes of {sample} 0: "
        + ", ".join(f"{int(i)} ({logits[0, i]:.6g})" for i in top)
    )
    if args.save_input:
        console.print(f"input {tuple(x.shape)} {x.dtype} saved to {args.save_input}")
    if args.save_weights:
        console.print(f"weights ({layout} layout) saved to {args.save_weights}")
    console.print(f"wall time {elapsed:.2f} s")
    return 0


def _check_port_files(args: argparse.Namespace, cfg) -> str | None:
    """Check --save-input, --save-weights and --layout before any work; return the layout."""
    family = registry.family_of(cfg)
    layouts = [name for name in family.layouts if name != "auto"]
    if args.layout is not None and args.save_weights is None:
        raise ValueError("--layout names the layout of --save-weights FILE; give --save-weights too")
    if args.save_input is not None:
        if not args.save_input.endswith(".npy"):
            raise ValueError(f"--save-input must name a .npy file, got {args.save_input!r}")
        check_output_path(args.save_input, force=args.force, what="input file")
    if args.save_weights is None:
        return None
    if not args.save_weights.endswith((".safetensors", ".npz")):
        raise ValueError(f"--save-weights must name a .safetensors or .npz file, got {args.save_weights!r}")
    check_output_path(args.save_weights, force=args.force, what="weights file")
    layout = args.layout or family.default_layout
    if layout not in layouts:
        raise ValueError(
            f"--layout {layout!r} is not a layout of {family.title}; its layouts: {', '.join(layouts)}"
        )
    return layout


def _save_port_files(args: argparse.Namespace, cfg, x: np.ndarray, params, layout: str | None) -> None:
    if args.save_input is not None:
        atomic_write(args.save_input, lambda f: np.save(f, x), overwrite=args.force, what="input file")
    if layout is not None:
        state = registry.export_state_dict(params, cfg, layout=layout)
        save_params(state, args.save_weights, overwrite=args.force)


def _pair_text(a, b) -> str:
    """One value when A and B agree or one is absent, else ``A vs B``."""
    if a == b or b is None:
        return str(a)
    return str(b) if a is None else f"{a} vs {b}"


def _cmd_compare(args: argparse.Namespace) -> int:
    if os.path.isdir(args.a) and os.path.isdir(args.b):  # two golden set stores: swinref/goldenset.py
        return cmd_compare_stores(args)
    if not is_golden_file(args.b):  # a port's plain outputs: safetensors, .npz or a .npy directory
        if args.rtol is not None:
            raise ValueError("--rtol applies to two golden files; a port's outputs take --atol")
        port_result = compare_port(
            args.a,
            args.b,
            require=parse_names(args.require),
            atol=args.atol,
            weights=args.weights,
            source=args.source,
        )
        return print_port_comparison(port_result, reference=args.a, port=args.b)
    from rich.table import Table  # noqa: PLC0415

    a, b = read_golden(args.a), read_golden(args.b)
    result = compare_golden(a, b, atol=args.atol, rtol=args.rtol)
    console = stdout_console()
    why = (
        "given"
        if args.atol is not None or args.rtol is not None
        else f"default for {a.metadata['dtype']} vs {b.metadata['dtype']}"
    )
    console.print(f"A (reference) {args.a}\nB             {args.b}")
    console.print(
        f"tolerance: |A - B| <= atol + rtol * |A| with atol={result.atol:g}, rtol={result.rtol:g} ({why})"
    )

    table = Table(show_lines=False)
    table.add_column("tensor", no_wrap=True)
    for col in ("shape", "dtype", "max abs", "max rel", "worst index", "result"):
        table.add_column(col, no_wrap=col in ("max abs", "max rel", "result"))
    for r in result.rows:
        shape, dtype = _pair_text(r.shape_a, r.shape_b), _pair_text(r.dtype_a, r.dtype_b)
        problem = f" ({r.problem})" if r.problem else ""
        verdict = "[green]pass[/green]" if r.passed else f"[red]FAIL[/red]{problem}"
        table.add_row(
            r.name,
            shape,
            dtype,
            fmt(r.max_abs),
            fmt(r.max_rel),
            "-" if r.worst_index is None else str(r.worst_index),
            verdict,
        )
    console.print(table)
    for note in result.notes:
        console.print(f"note: {note}")

    failures = result.failures
    if not failures:
        worst = max((r.max_abs for r in result.rows if r.max_abs is not None), default=0.0)
        console.print(
            f"[green]PASS[/green]: all {len(result.rows)} tensors within tolerance "
            f"(largest abs difference {worst:.3e})"
        )
        return 0
    listed = ", ".join(r.name + (f" ({r.problem})" if r.problem else "") for r in failures)
    console.print(
        f"[red]FAIL[/red]: {len(failures)} of {len(result.rows)} tensors beyond tolerance "
        f"or not comparable; first in forward order: {failures[0].name}; all: {listed}"
    )
    return 1


def register(sub) -> None:
    """Add the ``golden`` and ``compare`` commands to the ``swinref`` command line."""

    p = sub.add_parser(
        "golden",
        help="write a golden file (input, intermediates, logits)",
        description=GOLDEN_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_arguments(p)
    p.add_argument(
        "--weights",
        metavar="FILE",
        default=None,
        help="weights file (.safetensors, .npz, .pth) in any layout of the family; default: seeded init",
    )
    p.add_argument(
        "--source",
        default=None,
        help="layout of --weights (V1: timm, torchvision, hf, official, auto; V2: timm, official, "
        "torchvision, hf, auto; video: official); default: the family's own",
    )
    p.add_argument(
        "--seed",
        type=int_at_least(0),
        default=None,
        help="seed of the initialised weights, swinref.init_params(cfg, seed=SEED) (default 0)",
    )
    p.add_argument(
        "--init",
        choices=("random", "timm"),
        default=None,
        help="scheme of the seeded weights: random (default; every parameter non-trivial) or timm "
        "(timm's initialisation: zero biases, unit LayerNorm weights)",
    )
    p.add_argument(
        "--save-input", metavar="FILE.npy", default=None, help="also write the input as a .npy file"
    )
    p.add_argument(
        "--save-weights",
        metavar="FILE",
        default=None,
        help="also write the weights (.safetensors or .npz) in --layout, for the port to load",
    )
    p.add_argument(
        "--layout",
        default=None,
        help="layout of --save-weights: V1 timm, timm_old, torchvision, hf, hf4, official; "
        "V2 timm, official, torchvision, hf; video official (default: the family's own)",
    )
    p.add_argument(
        "--input-seed",
        type=int_at_least(0),
        default=0,
        help="seed of the input, numpy.random.default_rng(INPUT_SEED).standard_normal (default 0)",
    )
    p.add_argument("--batch", type=int_at_least(1), default=1, help="images in the input batch (default 1)")
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    p.add_argument(
        "--backend",
        choices=backend.BACKENDS,
        default="numpy",
        help="array library that runs the forward pass (default numpy)",
    )
    p.add_argument("--no-intermediates", action="store_true", help="store only the input and the logits")
    p.add_argument(
        "--out", metavar="FILE", default=None, help="output path (default golden_MODEL.safetensors)"
    )
    add_force_argument(p, "the golden file")

    add_image_arguments(p)
    p.set_defaults(func=_cmd_golden)

    c = sub.add_parser(
        "compare",
        help="compare two golden files tensor by tensor",
        description="Compare every tensor of golden file B against the reference A: "
        "|A - B| <= atol + rtol * |A|. Default atol 1e-10 when both files are float64, "
        "1e-4 when either is float32; rtol 0. B may instead be a port's outputs: a plain "
        "safetensors file, an .npz or a directory of NAME.npy files named with swinref's tensor "
        "names (logits, layers.2.blocks.3, ...), any subset; (B, L, C) token sequences and "
        "channels-first maps are mapped onto swinref's grids. A float32 port gets per-tensor "
        "bounds calibrated by swinref's own float32 run (README, tolerance policy). Exit 0 when "
        "all pass, 1 when any tensor is beyond tolerance, missing or mis-shaped (for a port: a "
        "--require tensor absent), 2 for an unreadable file.",
    )
    c.add_argument("a", metavar="A", help="reference golden file")
    c.add_argument("b", metavar="B", help="golden file, or a port's outputs, to check against A")
    c.add_argument("--atol", type=float, default=None, help="absolute tolerance (default by dtype)")
    c.add_argument("--rtol", type=float, default=None, help="relative tolerance (default 0)")
    c.add_argument(
        "--require",
        metavar="NAMES",
        default="logits",
        help="port outputs: comma-separated tensors that must be present (default logits)",
    )
    c.add_argument(
        "--weights",
        metavar="FILE",
        default=None,
        help="port outputs: the weights A was made from, for calibrated float32 bounds "
        "(seeded weights are rebuilt from A's metadata)",
    )
    c.add_argument("--source", default=None, help="layout of --weights (default: the family's own)")
    add_compare_arguments(c)
    c.set_defaults(func=_cmd_compare)


IMAGES_HELP = """\
With --images, golden outputs for a whole image set go into the store directory --out (see
docs/golden_sets.md): the preprocessed inputs, logits, top-5 and the --intermediates, in
safetensors shards of --batch-size images with a manifest of digests and provenance. Batches run
on Dask: a LocalCluster of --workers processes, or the cluster at --scheduler. Rerunning the same
command resumes: only missing or corrupt shards are computed."""


def add_image_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``swinref golden --images``."""
    g = p.add_argument_group("image sets", IMAGES_HELP)
    g.add_argument(
        "--images",
        metavar="DIR_OR_GLOB",
        default=None,
        help="a directory (its .png/.jpg/.jpeg files, recursively) or a quoted glob pattern",
    )
    g.add_argument(
        "--batch-size", type=int_at_least(1), default=8, help="images per batch and shard (default 8)"
    )
    g.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        default=None,
        help="address of a running Dask scheduler (default: start a LocalCluster)",
    )
    g.add_argument(
        "--workers",
        type=int_at_least(1),
        default=os.cpu_count() or 1,
        help="LocalCluster worker processes, one thread each (default: CPU count)",
    )
    g.add_argument(
        "--on-bad-file",
        choices=("skip", "fail"),
        default="skip",
        help="undecodable files: list and skip them (default) or stop",
    )
    g.add_argument(
        "--intermediates",
        metavar="NAMES",
        default="",
        help="comma-separated forward intermediates to store (e.g. patch_embed,layers.3), "
        "'all', or empty for none (default)",
    )
    g.add_argument(
        "--crop-pct",
        type=float,
        default=None,
        help="resize the shorter side to floor(img_size / CROP_PCT) before the center crop "
        "(default: timm's for the model, 0.9 at 224, 1.0 at 384)",
    )
    g.add_argument(
        "--interpolation",
        choices=("bicubic", "bilinear", "nearest"),
        default=None,
        help="resize filter (default bicubic, timm's for Swin)",
    )
    g.add_argument(
        "--max-shards",
        type=int_at_least(1),
        default=None,
        help="compute at most this many shards, then stop (rerun to continue)",
    )


def cmd_golden_images(args: argparse.Namespace) -> int:
    """``swinref golden --images``: build the params, run, print a summary."""
    if args.out is None:
        raise ValueError("--images needs --out STORE, the store directory to write or resume")
    if args.save_input is not None or args.save_weights is not None:
        raise ValueError("--save-input and --save-weights write one forward pass's files; not with --images")
    _, cfg, _ = model_config(args)
    if registry.family_of(cfg).name == "video":
        raise ValueError("--images runs image models (V1, V2); a video model takes clips")
    params, source = _weights(args, cfg)
    names = [n.strip() for n in args.intermediates.split(",") if n.strip()]
    if names == ["all"]:
        names = intermediate_names(cfg)
    transform = EvalTransform.for_model(
        cfg, args.model, crop_pct=args.crop_pct, interpolation=args.interpolation
    )
    try:
        report = run_golden_set(
            args.images,
            args.out,
            cfg=cfg,
            params=params,
            model=args.model,
            weights_source=source,
            batch_size=args.batch_size,
            dtype=args.dtype,
            backend_name=args.backend,
            intermediates=names,
            transform=transform,
            on_bad_file=args.on_bad_file,
            scheduler=args.scheduler,
            workers=args.workers,
            max_shards=args.max_shards,
        )
    except KeyboardInterrupt:  # shards written so far are whole and recorded; the rerun resumes
        return 130
    console = stdout_console()
    for note in report.notes:
        console.print(f"note: {note}")
    console.print(
        f"[bold]store[/bold] {report.store}: {report.images} images in {report.shards} shards; "
        f"this run computed {report.shards_computed} shards ({report.images_computed} images) "
        f"in {report.seconds:.1f} s, {report.rate:.2f} images/s; "
        f"{'complete' if report.complete else 'INCOMPLETE: rerun to continue'}"
    )
    if report.skipped:
        console.print(f"skipped {len(report.skipped)} unreadable files:")
        for n, r in report.skipped:
            console.print(f"  {n}: {r}")
    return 0


def add_compare_arguments(c: argparse.ArgumentParser) -> None:
    c.add_argument(
        "--worst",
        type=int_at_least(0),
        default=10,
        help="with two stores: how many of the most different images to list (default 10)",
    )


def cmd_compare_stores(args: argparse.Namespace) -> int:
    """``swinref compare STORE_A STORE_B``: tensor and image tables, exit 0 / 1."""
    from rich.table import Table  # noqa: PLC0415

    r = compare_stores(args.a, args.b, atol=args.atol, rtol=args.rtol, worst=args.worst)
    console = stdout_console()
    console.print(f"A (reference) {args.a}\nB             {args.b}")
    console.print(f"tolerance: |A - B| <= atol + rtol * |A| with atol={r.atol:g}, rtol={r.rtol:g}")
    table = Table(title="per tensor, over all images")
    for col in ("tensor", "max abs", "max rel", "worst image", "result"):
        table.add_column(col, no_wrap=True)
    for name, t in r.tensors.items():
        table.add_row(
            name,
            fmt(t["max_abs"]),
            fmt(t["max_rel"]),
            str(t["worst_image"]) if t["max_abs"] > 0 else "-",
            "[green]pass[/green]" if t["passed"] else "[red]FAIL[/red]",
        )
    console.print(table)
    worst = Table(title=f"the {len(r.worst)} images with the largest logits difference")
    for col in ("image", "logits max abs", "input max abs", "top-1 A", "top-1 B", "result"):
        worst.add_column(col, no_wrap=True)
    for d in r.worst:
        worst.add_row(
            d.name,
            fmt(d.logits_max_abs),
            fmt(d.input_max_abs),
            str(d.top1_a),
            str(d.top1_b),
            "[green]pass[/green]" if d.passed else "[red]FAIL[/red]",
        )
    console.print(worst)
    for note in r.notes:
        console.print(f"note: {note}")
    for label, names in (("only in A", r.only_a), ("only in B", r.only_b)):
        if names:
            more = " ..." if len(names) > 10 else ""
            console.print(f"{len(names)} images {label}: {', '.join(names[:10])}{more}")
    console.print(
        f"images compared {r.images}; top-1 agreement {r.top1_agree}/{r.images} "
        f"({100 * r.top1_rate:.2f}%); images beyond tolerance {r.failed_images}"
    )
    if r.passed:
        console.print("[green]PASS[/green]")
        return 0
    console.print("[red]FAIL[/red]")
    return 1
