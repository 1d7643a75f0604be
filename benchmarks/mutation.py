"""Mutation check of the property suite: does it catch the mistakes Swin ports actually make?

Each mutant is one text edit of a temporary copy of the package (the working tree is never
touched) that reproduces a mistake of a V1, V2 or Video Swin port. For each, the standalone
property suite runs on NumPy only: tests that check swinref against definitions written in the
tests (loops, formulas, mpmath), never against a second swinref code path (the fast path, the
inflation identity, another backend or semantics) and never against timm, torchvision or
transformers. The mutant is *killed* when a test fails; the suite stops at the first failure
(``-x``), so the table names the first killing test in suite order. Prints the table and the
score killed/total; exits 1 if any mutant survives.

    python benchmarks/mutation.py                 # every mutant (the run time is printed)
    python benchmarks/mutation.py -f v2 -v        # one family, with the failures' output
    python benchmarks/mutation.py -m roll_sign --all-failures   # every failing test, not the first
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

# Forward-level properties first, so that "first killing test" names them where they see the mistake.
STANDALONE_SUITE = (
    "tests/models/test_forward_properties.py",
    "tests/models/test_v2_properties.py",
    "tests/models/test_video_properties.py",
    "tests/models/test_mutation_guards.py",
    "tests/models/test_attention.py",
    "tests/models/test_merging.py",
    "tests/models/test_v2.py",
    "tests/core/test_windows.py",
    "tests/core/test_mask.py",
    "tests/core/test_relative_position.py",
    "tests/core/test_numerics.py",
)
# tests in those modules that compare two swinref paths: left out of the score
TWO_PATH_TESTS = (
    "test_forward_agrees_across_backends",  # V2 on each backend vs NumPy
    "test_hf_semantics_differ_only_through_shifted_blocks",  # V2 hf vs timm semantics
)
# NumPy only: drop the other backends' parametrisations, keep the tests that take no backend
SELECT = " and ".join(
    ["not array_api_strict", "not torch", "not cupy", "not jax", *(f"not {t}" for t in TWO_PATH_TESTS)]
)
FAMILIES = ("v1", "v2", "video")


@dataclass(frozen=True)
class Mutant:
    name: str
    family: str  # the family whose port would make the mistake
    mistake: str
    file: str  # relative to the repository root
    old: str  # must occur in the file; every occurrence is replaced
    new: str


MUTANTS = (
    # ----- V1 (and the core every family shares) -----
    Mutant(
        "roll_sign",
        "v1",
        "roll by +s before attention (and -s after)",
        "swinref/core/windows.py",
        "back = tuple(-s for s in shift)",
        "back = tuple(shift)",
    ),
    Mutant(
        "shift_amount",
        "v1",
        "shift by ceil(M/2) instead of M // 2",
        "swinref/models/v1.py",
        "target_shift = (window[0] // 2, window[1] // 2)",
        "target_shift = ((window[0] + 1) // 2, (window[1] + 1) // 2)",
    ),
    Mutant(
        "mask_value_inf",
        "v1",
        "mask value -inf instead of -100",
        "swinref/core/windows.py",
        "return xp.where(same, zero, zero + MASK_VALUE)",
        "return xp.where(same, zero, zero - float('inf'))",
    ),
    Mutant(
        "mask_region_slice",
        "v1",
        "region slice [L-M, L-s) off by one",
        "swinref/core/windows.py",
        "xp.where(i >= L - M, one, 0 * one)",
        "xp.where(i >= L - M + 1, one, 0 * one)",
    ),
    Mutant(
        "shifted_unmasked",
        "v1",
        "shifted blocks attend without the mask",
        "swinref/models/v1.py",
        "mask_for=mask_for(x, window, shift),",
        "mask_for=mask_for(x, window, (0, 0)),",
    ),
    Mutant(
        "relpos_off_by_one",
        "v1",
        "relative index offset M instead of M - 1",
        "swinref/core/windows.py",
        "rel = c[:, None] - c[None, :] + (m - 1)",
        "rel = c[:, None] - c[None, :] + m",
    ),
    Mutant(
        "relpos_transposed",
        "v1",
        "relative index transposed (j - i)",
        "swinref/core/windows.py",
        "rel = c[:, None] - c[None, :] + (m - 1)",
        "rel = c[None, :] - c[:, None] + (m - 1)",
    ),
    Mutant(
        "window_order",
        "v1",
        "windows cut column-major (reverse still row-major)",
        "swinref/core/windows.py",
        "x = xp.permute_dims(x, (0, *range(1, 2 * k, 2), *range(2, 2 * k + 1, 2), 2 * k + 1))",
        "x = xp.permute_dims(x, (0, *reversed(range(1, 2 * k, 2)), *range(2, 2 * k + 1, 2), 2 * k + 1))",
    ),
    Mutant(
        "head_split",
        "v1",
        "qkv split per head first (nH, 3, d) instead of (3, nH, d)",
        "swinref/core/layers.py",
        "qkv = xp.reshape(qkv, (B_, N, 3, num_heads, d))",
        "qkv = xp.permute_dims(xp.reshape(qkv, (B_, N, num_heads, 3, d)), (0, 1, 3, 2, 4))",
    ),
    Mutant(
        "scale_twice",
        "v1",
        "attention scale d**-0.5 applied to q and to the logits",
        "swinref/core/layers.py",
        "attn = xp.matmul(q, xp.matrix_transpose(k))  # (B_, nH, N, N)",
        "attn = xp.matmul(q, xp.matrix_transpose(k)) * d**-0.5  # (B_, nH, N, N)",
    ),
    Mutant(
        "softmax_axis",
        "v1",
        "softmax over the keys' transpose (axis -2)",
        "swinref/core/layers.py",
        "attn = softmax(attn, axis=-1, xp=xp, overwrite=True)",
        "attn = softmax(attn, axis=-2, xp=xp, overwrite=True)",
    ),
    Mutant(
        "merge_order",
        "v1",
        "patch merging x1/x2 swapped (column offset first)",
        "swinref/core/layers.py",
        "x = xp.permute_dims(x, (*range(n), n, n + 2, n + 3, n + 1, n + 4))",
        "x = xp.permute_dims(x, (*range(n), n, n + 2, n + 1, n + 3, n + 4))",
    ),
    Mutant(
        "layernorm_eps",
        "v1",
        "LayerNorm eps 1e-6 instead of 1e-5",
        "swinref/core/numerics.py",
        "LN_EPS = 1e-5",
        "LN_EPS = 1e-6",
    ),
    Mutant(
        "tanh_gelu",
        "v1",
        "tanh approximation of GELU",
        "swinref/core/numerics.py",
        # every backend: NumPy's block path is bypassed too
        "    if backend.is_numpy(xp):  # erfc and the products block by block, while the block is in cache\n"
        "        return backend.map_blocks(_gelu_block, x, in_place=overwrite, writes=True)\n"
        "    return 0.5 * x * erfc_portable(-x * _INV_SQRT2, xp=xp)",
        "    return 0.5 * x * (1.0 + xp.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))",
    ),
    Mutant(
        "clamp_strict",
        "v1",
        "official clamp with min(H, W) < M instead of <=",
        "swinref/core/windows.py",
        "if low <= window[0]:",
        "if low < window[0]:",
    ),
    Mutant(
        "pad_roll_order",
        "v1",
        "timm semantics pads, then rolls (the other implementations' order)",
        "swinref/models/v1.py",
        'roll_first=cfg.semantics == "timm"',
        "roll_first=False",
    ),
    Mutant(
        "pad_roll_order_block",
        "v1",
        "the block swaps the two orders (roll_first pads first)",
        "swinref/core/windows.py",
        "if roll_first:",
        "if not roll_first:",
    ),
    # ----- V2 -----
    Mutant(
        "v2_cpb_sigmoid",
        "v2",
        "position bias sigmoid(.) instead of 16 * sigmoid(.)",
        "swinref/models/v2.py",
        "return 16.0 / (1.0 + xp.exp(-bias))",
        "return 1.0 / (1.0 + xp.exp(-bias))",
    ),
    Mutant(
        "v2_coords_ln",
        "v2",
        "log-spaced coordinates with ln instead of log2",
        "swinref/models/v2.py",
        "log = _f32(np.log2(_f32(np.abs(t) + 1.0)))",
        "log = _f32(np.log(_f32(np.abs(t) + 1.0)))",
    ),
    Mutant(
        "v2_pretrained_window",
        "v2",
        "coordinates divided by the window, ignoring the pre-training window",
        "swinref/models/v2.py",
        "ref = pretrained_window if pretrained_window[0] > 0 else window",
        "ref = window",
    ),
    Mutant(
        "v2_logit_unclamped",
        "v2",
        "logit scale not clamped at log(100)",
        "swinref/models/v2.py",
        "return xp.exp(xp.minimum(s, xp.asarray(cap, dtype=s.dtype, device=backend.device(s))))",
        "return xp.exp(s)",
    ),
    Mutant(
        "v2_scaled_cosine",
        "v2",
        "cosine logits also scaled by d**-0.5",
        "swinref/models/v2.py",
        "attn = attn * logit_scale(p, cap=logit_cap, xp=xp)",
        "attn = attn * logit_scale(p, cap=logit_cap, xp=xp) * (x.shape[-1] // num_heads) ** -0.5",
    ),
    Mutant(
        "v2_plain_normalize",
        "v2",
        "q / norm(q) without the 1e-12 floor (NaN on padded tokens)",
        "swinref/models/v2.py",
        "return x / xp.maximum(norm, xp.asarray(eps, dtype=x.dtype, device=backend.device(x)))",
        "return x / norm",
    ),
    Mutant(
        "v2_k_bias",
        "v2",
        "k gets the q bias (the fused bias's middle third not zeroed)",
        "swinref/models/v2.py",
        'bias = xp.concat([p["q_bias"], xp.zeros_like(p["q_bias"]), p["v_bias"]])',
        'bias = xp.concat([p["q_bias"], p["q_bias"], p["v_bias"]])',
    ),
    Mutant(
        "v2_norm_after_residual",
        "v2",
        "norm1 after the residual sum (classic post-norm) instead of on the branch",
        "swinref/models/v2.py",
        'x = x + layer_norm(h, p["norm1.weight"], p["norm1.bias"], eps=LN_EPS, xp=xp)',
        'x = layer_norm(x + h, p["norm1.weight"], p["norm1.bias"], eps=LN_EPS, xp=xp)',
    ),
    Mutant(
        "v2_hf_mask_once",
        "v2",
        "transformers semantics adds the shift mask once, not twice",
        "swinref/models/v2.py",
        "return BlockGeometry((m, m), (s, s), roll_first=False, mask_repeats=2)",
        "return BlockGeometry((m, m), (s, s), roll_first=False, mask_repeats=1)",
    ),
    # ----- Video -----
    Mutant(
        "video_shift_spatial_only",
        "video",
        "shifted blocks shift H and W but not time",
        "swinref/models/video.py",
        "(full[0] // 2, full[1] // 2, full[2] // 2)",
        "(0, full[1] // 2, full[2] // 2)",
    ),
    Mutant(
        "video_index_stride",
        "video",
        "3-D index: time offset times (2Mw-1) instead of (2Mh-1)(2Mw-1)",
        "swinref/core/windows.py",
        "stride = math.prod(2 * w - 1 for w in window[a + 1 :])",
        "stride = math.prod(2 * w - 1 for w in window[a + 1 : a + 2])",
    ),
    Mutant(
        "video_time_mask",
        "video",
        "mask regions from H and W only (the 2-D mask on every frame)",
        "swinref/core/windows.py",
        "lab = axis_labels(L, M, s) * 3 ** (k - 1 - a)",
        "lab = axis_labels(L, M, s) * 3 ** (k - 1 - a) * (a > 0 or k < 3)",
    ),
    Mutant(
        "video_roll_then_pad",
        "video",
        "the 3-D block rolls, then pads (timm's 2-D order)",
        "swinref/models/video.py",
        "h, window, shift, attend, roll_first=False, mask_for=mask_for(x, window, shift), xp=xp",
        "h, window, shift, attend, roll_first=True, mask_for=mask_for(x, window, shift), xp=xp",
    ),
    Mutant(
        "video_merge_time",
        "video",
        "patch merging over (T, H) instead of (H, W)",
        "swinref/models/video.py",
        "x = space_to_depth(x, xp=xp)  # (B, D, H/2, W/2, 4C): time untouched",
        "x = xp.permute_dims(space_to_depth(xp.permute_dims(x, (0, 3, 1, 2, 4)), xp=xp), (0, 2, 3, 1, 4))",
    ),
    Mutant(
        "video_clamp_strict",
        "video",
        "per-axis clamp with r < M instead of <=: an axis one window covers is still shifted",
        "swinref/core/windows.py",
        "sh = tuple(0 if r <= m else s for r, m, s in zip(resolution, win, shift, strict=False))",
        "sh = tuple(0 if r < m else s for r, m, s in zip(resolution, win, shift, strict=False))",
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


def run_suite(dest: Path, *, first_only: bool) -> tuple[int, list[str], str]:
    env = dict(os.environ, PYTHONPATH=str(dest), HYPOTHESIS_PROFILE="dev", PYTHONDONTWRITEBYTECODE="1")
    env.pop("CI", None)  # the dev profile and no strict-skip rule: only failures count
    cmd = [sys.executable, "-m", "pytest", "-q", "-rf", "-p", "no:cacheprovider", "-k", SELECT]
    if first_only:
        cmd.append("-x")
    proc = subprocess.run([*cmd, *STANDALONE_SUITE], cwd=dest, env=env, capture_output=True, text=True)
    failed = re.findall(r"^FAILED (\S+?)(?: - .*)?$", proc.stdout, flags=re.M)
    return proc.returncode, list(dict.fromkeys(failed)), proc.stdout + proc.stderr


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "-m",
        "--mutant",
        action="append",
        choices=[m.name for m in MUTANTS],
        help="only these mutants (repeatable)",
    )
    parser.add_argument(
        "-f", "--family", action="append", choices=FAMILIES, help="only these families (repeatable)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="print the failing tests' output")
    parser.add_argument(
        "--all-failures",
        action="store_true",
        help="run the whole suite per mutant and list every failing test",
    )
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown (for the docs)")
    args = parser.parse_args(argv)
    chosen = [
        m
        for m in MUTANTS
        if (not args.mutant or m.name in args.mutant) and (not args.family or m.family in args.family)
    ]

    total_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="swinref-mutation-") as tmp:
        base = Path(tmp) / "clean"
        make_copy(base)
        start = time.perf_counter()
        rc, failed, out = run_suite(base, first_only=False)
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
            rc, failed, out = run_suite(dest, first_only=not args.all_failures)
            if rc not in (0, 1):  # 1: tests failed; anything else is a problem of the run
                print(out)
                raise SystemExit(f"mutant {m.name}: pytest exited {rc}, not a test failure")
            killed = rc == 1 and bool(failed)
            rows.append((m, killed, failed, time.perf_counter() - start))
            if args.verbose and failed:
                print(out[-3000:])

    n_killed = sum(killed for _, killed, _, _ in rows)
    if args.markdown:
        print("| family | mutant | the mistake | first killing test |")
        print("|---|---|---|---|")
        for m, killed, failed, _ in rows:
            first = f"`{failed[0]}`" if failed else "**survived**"
            print(f"| {m.family} | `{m.name}` | {m.mistake} | {first} |")
    else:
        width = max(len(m.name) for m in chosen)
        print(f"{'family':<6} {'mutant':<{width}}  {'result':<8} {'time':>5}  failing tests (the mistake)")
        for m, killed, failed, secs in rows:
            result = "killed" if killed else "SURVIVED"
            print(f"{m.family:<6} {m.name:<{width}}  {result:<8} {secs:4.0f}s  ({m.mistake})")
            for test in failed:
                print(f"{'':<6} {'':<{width}}  {'':<8} {'':>5}  {test}")
    for family in FAMILIES:
        of = [killed for m, killed, _, _ in rows if m.family == family]
        if of:
            print(f"{family}: {sum(of)}/{len(of)} killed")
    print(
        f"\nmutation score: {n_killed}/{len(rows)} killed ({time.perf_counter() - total_start:.0f} s in all)"
    )
    return 0 if n_killed == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
