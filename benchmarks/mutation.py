"""Mutation check of the property suite: does it catch the mistakes Swin ports actually make?

Each mutant is one text edit of a temporary copy of the package (the working tree is never
touched). For each, the property suite runs on NumPy only, without any cross-check against timm,
torchvision or transformers; the mutant is *killed* when at least one test fails. Prints a table
(mutant, killed, the failing tests) and the score killed/total; exits 1 if any mutant survives.

    python benchmarks/mutation.py            # all mutants, about a minute on 2 cores
    python benchmarks/mutation.py -m roll_sign -m tanh_gelu -v
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROPERTY_SUITE = (
    "tests/core/test_windows.py",
    "tests/core/test_mask.py",
    "tests/core/test_relative_position.py",
    "tests/models/test_attention.py",
    "tests/models/test_merging.py",
    "tests/core/test_numerics.py",
    "tests/models/test_mutation_guards.py",
)
# NumPy only: drop the other backends' parametrisations, keep the tests that take no backend
NUMPY_ONLY = "not array_api_strict and not torch and not cupy"


@dataclass(frozen=True)
class Mutant:
    name: str
    mistake: str
    file: str  # relative to the repository root
    old: str  # must occur in the file; every occurrence is replaced
    new: str
    extra_tests: tuple[str, ...] = ()


MUTANTS = (
    Mutant(
        "roll_sign",
        "roll by +s before attention (and +s again after)",
        "swinref/core/windows.py",
        "back = tuple(-s for s in shift)",
        "back = tuple(shift)",
    ),
    Mutant(
        "shift_amount",
        "shift by ceil(M/2) instead of M // 2",
        "swinref/models/v1.py",
        "target_shift = (window[0] // 2, window[1] // 2)",
        "target_shift = ((window[0] + 1) // 2, (window[1] + 1) // 2)",
    ),
    Mutant(
        "mask_value_inf",
        "mask value -inf instead of -100",
        "swinref/core/windows.py",
        "return xp.where(same, zero, zero + MASK_VALUE)",
        "return xp.where(same, zero, zero - float('inf'))",
    ),
    Mutant(
        "mask_region_slice",
        "region slice [L-M, L-s) off by one",
        "swinref/core/windows.py",
        "xp.where(i >= L - M, one, 0 * one)",
        "xp.where(i >= L - M + 1, one, 0 * one)",
    ),
    Mutant(
        "relpos_off_by_one",
        "relative index offset M instead of M - 1",
        "swinref/core/windows.py",
        "rel = c[:, None] - c[None, :] + (m - 1)",
        "rel = c[:, None] - c[None, :] + m",
    ),
    Mutant(
        "relpos_transposed",
        "relative index transposed (j - i)",
        "swinref/core/windows.py",
        "rel = c[:, None] - c[None, :] + (m - 1)",
        "rel = c[None, :] - c[:, None] + (m - 1)",
    ),
    Mutant(
        "merge_order",
        "patch merging x1/x2 swapped (column offset first)",
        "swinref/core/layers.py",
        "x = xp.permute_dims(x, (*range(n), n, n + 2, n + 3, n + 1, n + 4))",
        "x = xp.permute_dims(x, (*range(n), n, n + 2, n + 1, n + 3, n + 4))",
    ),
    Mutant(
        "layernorm_eps",
        "LayerNorm eps 1e-6 instead of 1e-5",
        "swinref/core/numerics.py",
        "LN_EPS = 1e-5",
        "LN_EPS = 1e-6",
    ),
    Mutant(
        "tanh_gelu",
        "tanh approximation of GELU",
        "swinref/core/numerics.py",
        "return 0.5 * x * erfc(-x * _INV_SQRT2, xp=xp)",
        "return 0.5 * x * (1.0 + xp.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))",
    ),
    Mutant(
        "scale_twice",
        "attention scale d**-0.5 applied to q and to the logits",
        "swinref/core/layers.py",
        "attn = xp.matmul(q, xp.matrix_transpose(k))  # (B_, nH, N, N)",
        "attn = xp.matmul(q, xp.matrix_transpose(k)) * d**-0.5  # (B_, nH, N, N)",
    ),
    Mutant(
        "pad_roll_order",
        "timm semantics pads, then rolls (the other implementations' order)",
        "swinref/models/v1.py",
        'roll_first=cfg.semantics == "timm"',
        "roll_first=False",
        extra_tests=("tests/models/test_semantics.py",),
    ),
    Mutant(
        "pad_roll_order_block",
        "the block swaps the two orders (roll_first pads first)",
        "swinref/core/windows.py",
        "if roll_first:",
        "if not roll_first:",
        extra_tests=("tests/models/test_semantics.py",),
    ),
)


def make_copy(dest: Path) -> None:
    shutil.copytree(ROOT / "swinref", dest / "swinref", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "tests", dest / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "pyproject.toml", dest / "pyproject.toml")


def apply(mutant: Mutant, dest: Path) -> None:
    path = dest / mutant.file
    text = path.read_text()
    if mutant.old not in text:
        raise SystemExit(
            f"mutant {mutant.name}: the text to replace is no longer in {mutant.file}; "
            f"update MUTANTS:\n{mutant.old}"
        )
    path.write_text(text.replace(mutant.old, mutant.new))


def run_suite(dest: Path, tests: tuple[str, ...]) -> tuple[int, list[str], str]:
    env = dict(os.environ, PYTHONPATH=str(dest), HYPOTHESIS_PROFILE="dev", PYTHONDONTWRITEBYTECODE="1")
    cmd = [sys.executable, "-m", "pytest", "-q", "-rf", "-p", "no:cacheprovider", "-k", NUMPY_ONLY, *tests]
    proc = subprocess.run(cmd, cwd=dest, env=env, capture_output=True, text=True)
    failed = sorted(set(re.findall(r"^FAILED (\S+?)(?: - .*)?$", proc.stdout, flags=re.M)))
    return proc.returncode, failed, proc.stdout + proc.stderr


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "-m",
        "--mutant",
        action="append",
        choices=[m.name for m in MUTANTS],
        help="run only these mutants (repeatable)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="print the failing tests' output")
    parser.add_argument(
        "--no-guards",
        action="store_true",
        help="leave out tests/models/test_mutation_guards.py (the score of the other tests alone)",
    )
    args = parser.parse_args(argv)
    chosen = [m for m in MUTANTS if not args.mutant or m.name in args.mutant]
    suite = tuple(t for t in PROPERTY_SUITE if not (args.no_guards and "guards" in t))

    with tempfile.TemporaryDirectory(prefix="swinref-mutation-") as tmp:
        base = Path(tmp) / "clean"
        make_copy(base)
        start = time.perf_counter()
        rc, failed, out = run_suite(base, suite + ("tests/models/test_semantics.py",))
        if rc != 0:
            print(out)
            raise SystemExit(f"the unmutated suite fails ({failed}); fix that first")
        print(f"unmutated suite passes ({time.perf_counter() - start:.0f} s)\n")

        rows = []
        for m in chosen:
            dest = Path(tmp) / m.name
            make_copy(dest)
            apply(m, dest)
            start = time.perf_counter()
            rc, failed, out = run_suite(dest, suite + m.extra_tests)
            killed = rc == 1 and bool(failed)  # 1: tests failed; any other code is a problem
            if rc not in (0, 1):
                print(out)
                raise SystemExit(f"mutant {m.name}: pytest exited {rc}, not a test failure")
            rows.append((m, killed, failed, time.perf_counter() - start))
            if args.verbose and failed:
                print(out[-3000:])

    width = max(len(m.name) for m in chosen)
    print(f"{'mutant':<{width}}  {'result':<8} {'time':>5}  failing tests (the mistake)")
    for m, killed, failed, secs in rows:
        print(
            f"{m.name:<{width}}  {'killed' if killed else 'SURVIVED':<8} {secs:4.0f}s  "
            f"{len(failed)} failed ({m.mistake})"
        )
        for test in sorted({re.sub(r"\[.*\]$", "", t) for t in failed}):  # one line per test function
            print(f"{'':<{width}}  {'':<8} {'':>5}  {test}")
    n_killed = sum(killed for _, killed, _, _ in rows)
    print(f"\nmutation score: {n_killed}/{len(rows)} killed")
    return 0 if n_killed == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
