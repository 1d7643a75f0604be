"""``swinref vectors`` and ``swinref verify``: write the test-vector suite, check a port's outputs."""

from __future__ import annotations

import argparse
import json
import sys

from ..artifacts.fileio import atomic_write
from ..tools.vectors import (
    CASES,
    DTYPES,
    MANIFEST,
    SUITE_VERSION,
    junit_xml,
    report_dict,
    verify,
    write_suite,
)
from .common import add_force_argument, check_output_path, stdout_console


def _cmd_vectors(args: argparse.Namespace) -> int:
    from rich.console import Console  # noqa: PLC0415
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: PLC0415

    dtypes = DTYPES if args.dtype == "both" else (args.dtype,)
    total = sum(len(c.dtypes(dtypes)) for c in CASES)
    err = Console(stderr=True)
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    with bar:
        task = bar.add_task("writing test vectors", total=total)
        manifest = write_suite(
            args.out,
            dtypes=dtypes,
            progress=lambda name: bar.update(task, advance=1, description=name),
            overwrite=args.force,
        )
    size = sum(e["bytes"] for e in manifest["cases"])
    comps = sorted({e["component"] for e in manifest["cases"]})
    console = stdout_console()
    console.print(
        f"[bold]wrote[/bold] {len(manifest['cases'])} case files and {MANIFEST} to {args.out} "
        f"({size / 1024:.1f} KiB of cases; suite version {SUITE_VERSION})"
    )
    console.print(f"{len(CASES)} cases over {len(comps)} components, dtypes {', '.join(dtypes)}")
    return 0


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.2e}"


def _cmd_verify(args: argparse.Namespace) -> int:
    from rich.console import Console  # noqa: PLC0415
    from rich.markup import escape  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    for path, what in ((args.report_json, "--report-json"), (args.junit, "--junit")):
        if path is not None:
            check_output_path(path, force=args.force, what=what)
    results = verify(args.expected, args.actual, select=args.select)
    if not results:
        raise ValueError(f"no case of the suite matches --select {args.select!r}")
    # a pipe or file gets 200 columns: the table has ten of them and long case names
    console = Console(width=None if sys.stdout.isatty() else 200, highlight=False)
    console.print(
        f"expected {args.expected}\nactual   {args.actual}\n"
        "rule: |expected - actual| <= atol + rtol * |expected| (tolerances per case)"
    )
    table = Table()
    for col in ("case", "tensor", "shape", "dtype", "max abs", "max rel", "ULP", "atol", "rtol", "result"):
        table.add_column(col, no_wrap=True)
    for r in results:
        if args.failures_only and r.passed:
            continue
        tol = (f"{r.atol:g}", f"{r.rtol:g}")
        for kind, _ in r.problems:
            table.add_row(r.name, "-", "-", r.dtype, "-", "-", "-", *tol, f"[red]FAIL[/red] {kind}")
        for t in r.tensors:
            if args.failures_only and t.passed:
                continue
            shape = (
                str(t.shape_expected)
                if t.shape_actual in (None, t.shape_expected)
                else f"{t.shape_expected} vs {t.shape_actual}"
            )
            dtype = (
                t.dtype_expected
                if t.dtype_actual in (None, t.dtype_expected)
                else f"{t.dtype_expected} vs {t.dtype_actual}"
            )
            verdict = "[green]pass[/green]" if t.passed else f"[red]FAIL[/red] {t.kind}"
            table.add_row(
                r.name,
                t.name,
                shape,
                dtype,
                _fmt(t.max_abs),
                _fmt(t.max_rel),
                "-" if t.max_ulp is None else str(t.max_ulp),
                *tol,
                verdict,
            )
    console.print(table)
    report = report_dict(results, args.expected, args.actual)
    if args.report_json:
        text = json.dumps(report, indent=1, sort_keys=True) + "\n"
        atomic_write(args.report_json, text.encode("utf-8"), overwrite=args.force, what="JSON report")
    if args.junit:
        atomic_write(args.junit, junit_xml(results), overwrite=args.force, what="JUnit report")
    s = report["summary"]
    if report["passed"]:
        console.print(
            f"[green]PASS[/green]: all {s['cases']} cases ({s['tensors']} output tensors) within tolerance"
        )
        return 0
    bad = [r for r in results if not r.passed]
    for r in bad:
        for kind, message in r.failures():
            console.print(f"[red]FAIL[/red] {r.name} {escape(f'[{kind}]')} {escape(message)}", soft_wrap=True)
    listed = "; ".join(f"{r.name} ({', '.join(sorted({k for k, _ in r.failures()}))})" for r in bad)
    console.print(
        f"[red]FAIL[/red]: {s['failed']} of {s['cases']} cases failed ({s['tensors_failed']} "
        f"of {s['tensors']} output tensors compared): {listed}",
        soft_wrap=True,
    )
    return 1


VECTORS_HELP = """\
Write the test-vector suite: one safetensors file per case (inputs/, params/ and outputs/ tensors,
JSON metadata under the key 'swinref' with the component, arguments, dtype and tolerance) and
manifest.json (suite version, swinref version, and per file its sha256, tensors and tolerance).
Two runs write byte-identical files. See docs/conformance.md.
"""

VERIFY_HELP = """\
Check a port's outputs against the suite. ACTUAL holds one file per case with the same file
name and the same outputs/ tensor names (inputs/ and params/ may be omitted). Every output tensor
must have the expected dtype and shape and satisfy |expected - actual| <= atol + rtol * |expected|
with the case's tolerance from the manifest. Exit 0 when every case passes, 1 when any fails
(missing file or tensor, unreadable file, wrong shape or dtype, values beyond tolerance), 2 when
EXPECTED has no usable manifest or an option is wrong, 3 on an internal error.
"""


def register(sub) -> None:
    """Add the ``vectors`` and ``verify`` commands to the ``swinref`` command line."""
    p = sub.add_parser(
        "vectors",
        help="write the language-neutral test-vector suite",
        description=VECTORS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", metavar="DIR", required=True, help="directory to write the suite into")
    p.add_argument(
        "--dtype",
        choices=("both", *DTYPES),
        default="both",
        help="dtype variants of the float cases (default both)",
    )
    add_force_argument(p, "the suite's files")
    p.set_defaults(func=_cmd_vectors)

    v = sub.add_parser(
        "verify",
        help="check a port's outputs against the test-vector suite",
        description=VERIFY_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    v.add_argument("expected", metavar="DIR_EXPECTED", help="the suite written by 'swinref vectors'")
    v.add_argument("actual", metavar="DIR_ACTUAL", help="the port's outputs in the same layout")
    v.add_argument("--report-json", metavar="PATH", default=None, help="write the JSON report here")
    v.add_argument("--junit", metavar="PATH", default=None, help="write JUnit XML here")
    v.add_argument(
        "--select",
        metavar="GLOB",
        default=None,
        help="check only cases whose name matches (e.g. 'block_*.float32')",
    )
    v.add_argument(
        "--failures-only", action="store_true", help="list only failing cases and tensors in the table"
    )
    add_force_argument(v, "the report files")
    v.set_defaults(func=_cmd_verify)
