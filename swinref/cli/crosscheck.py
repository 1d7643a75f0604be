"""``swinref crosscheck``: swinref against timm, torchvision or transformers, layer by layer,
for Swin V1, Swin V2 and Video Swin."""

from __future__ import annotations

import sys

from ..models import registry
from ..tools.crosscheck import (
    ALL_IMPLS,
    FAMILY_IMPLS,
    IMPLS,
    MATRIX_CASES,
    SEMANTICS,
    TOLERANCE,
    CrosscheckReport,
    crosscheck,
    run_matrix,
    tolerance_rule,
)
from .common import parse_size


def _parse_weights(text: str | None):
    if text is None:
        return None
    return int(text) if text.isdigit() else text


def register(sub) -> None:
    p = sub.add_parser(
        "crosscheck",
        help="compare swinref layer by layer with timm, torchvision or transformers",
        description="Build an implementation with the same weights as swinref, run both on the same "
        "input in float64 and float32 and print the per-layer differences. Implementations: "
        + "; ".join(f"{registry.family_named(f).title}: {', '.join(i)}" for f, i in FAMILY_IMPLS.items())
        + ". Exit code 1 when a layer exceeds the tolerance (float64 1e-10; float32 1e-4, for Swin "
        "V2 at most 3x the implementation's own float32 error + 1e-5), 2 on a usage error.",
    )
    p.add_argument("impl", nargs="?", choices=ALL_IMPLS, help="implementation to compare with")
    p.add_argument(
        "model",
        nargs="?",
        default="swin_t",
        help="a released name of any family (swin_t, swinv2_tiny_window8_256, ...), a JSON config "
        'object or a .json file ("family": "v1" | "v2" | "video", default v1) (default swin_t)',
    )
    p.add_argument(
        "--weights",
        default=None,
        help="an int seed for random weights (default 0) or a checkpoint in the implementation's layout",
    )
    p.add_argument(
        "--input-size",
        default=None,
        help="H or HxW; TxHxW for Video Swin (default: the config's img_size; video 32x224x224)",
    )
    p.add_argument("--dtypes", default="float64,float32", help="comma-separated (default both)")
    p.add_argument(
        "--semantics",
        default=None,
        choices=SEMANTICS,  # V1's; V2's are a subset
        help="swinref semantics to compare with (default: the implementation's): V1 official, timm, "
        "torchvision, hf, detection; V2 timm, torchvision, hf; not for Video Swin",
    )
    p.add_argument(
        "--matrix",
        action="store_true",
        help="run every implementation on the standard cases and print the matrix",
    )
    p.set_defaults(func=_main)


def _main(args) -> int:
    from rich.console import Console  # noqa: PLC0415
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn  # noqa: PLC0415

    # a wide table even when the output is a file or a pipe (rich falls back to 80 columns there)
    console = Console(width=None if sys.stdout.isatty() else 140)
    dtypes = tuple(d.strip() for d in args.dtypes.split(",") if d.strip())
    if args.matrix:
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as bar:
            task = bar.add_task("matrix", total=len(IMPLS) * len(MATRIX_CASES))

            def step(msg):
                bar.update(task, description=msg)
                if "/" in msg:
                    bar.advance(task)

            results = run_matrix(dtypes=dtypes, progress=step)
        console.print(matrix_table(results, dtypes))
        return 0 if all(r.passed for r in results.values()) else 1
    if args.impl is None:
        raise ValueError("name an implementation (timm, torchvision, hf, hf_backbone) or use --matrix")
    size = parse_size(args.input_size, axes=_size_axes(args.model)) if args.input_size else None
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("crosscheck", total=None)
        report = crosscheck(
            args.impl,
            args.model,
            weights=_parse_weights(args.weights),
            input_size=size,
            dtypes=dtypes,
            semantics=args.semantics,
            progress=lambda msg: bar.update(task, description=msg),
        )
    if report.rows:
        console.print(report_table(report))
    console.print(report.summary())
    return 0 if report.passed else 1


def _size_axes(model: str) -> int:
    """3 (TxHxW) for a Video Swin config, else 2; an unresolvable model is reported later."""
    try:
        cfg = registry.config_from(model)
    except (ValueError, TypeError):
        return 2
    return 3 if registry.family_of(cfg).name == "video" else 2


def report_table(report: CrosscheckReport):
    """A rich table: one row per layer, one column pair per dtype."""
    from rich.table import Table  # noqa: PLC0415

    dtypes = list(report.first_divergence)
    sem = f" (semantics={report.semantics})" if report.semantics else ""
    t = Table(
        title=f"swinref{sem} vs {report.impl}: {report.model} "
        f"at {'x'.join(str(v) for v in report.input_size)}",
        caption="; ".join(f"{d}: {tolerance_rule(report.family, d)}" for d in dtypes)
        if report.family != "v1"
        else None,
    )
    t.add_column("layer")
    for d in dtypes:
        t.add_column(f"{d} max abs", justify="right")
        t.add_column(f"{d} max rel", justify="right")
    names = list(dict.fromkeys(r.name for r in report.rows))
    by = {(r.name, r.dtype): r for r in report.rows}
    for n in names:
        cells = []
        for d in dtypes:
            r = by.get((n, d))
            style = "" if r is None or r.ok else "[bold red]"
            cells += [f"{style}{r.max_abs:.2e}" if r else "-", f"{r.max_rel:.2e}" if r else "-"]
        t.add_row(n, *cells)
    return t


def matrix_table(results: dict[tuple[str, str], CrosscheckReport], dtypes=("float64", "float32")):
    """implementation x case x dtype -> the largest difference over every compared layer."""
    from rich.table import Table  # noqa: PLC0415

    t = Table(title="swinref cross-check matrix: max abs difference over all layers")
    t.add_column("implementation")
    t.add_column("case")
    t.add_column("input")
    for d in dtypes:
        t.add_column(f"{d} (tol {TOLERANCE[d]:.0e})", justify="right")
    t.add_column("verdict")
    for (impl, case), r in results.items():
        if r.impl_error or r.swinref_error:
            cells = ["raises" if r.both_raised else "-"] * len(dtypes)
        else:
            cells = [f"{r.max_abs(d):.2e}" for d in dtypes]
        verdict = "both raise" if r.both_raised else "pass" if r.passed else "FAIL: " + r.summary()
        t.add_row(impl, case, f"{r.input_size[0]}x{r.input_size[1]}", *cells, verdict)
    return t
