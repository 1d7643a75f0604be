"""Bad input over every command: the exit-code contract, one-line errors, nothing lost, no false pass.

Each case runs ``swinref.cli.main`` in process on files made to be wrong in one way. Exit codes:
0 ok, 1 compared and beyond tolerance, 2 usage or input error (one line, no traceback), 3 internal
error. For every case the test checks the exit code, that stderr holds no traceback, that an
exit 2 says one line, and that the files the case must not touch keep their bytes.

Run as a script to print the outcome table::

    python tests/cli/test_bad_inputs.py
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pickle
import shutil
import struct
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save, save_file

import swinref
from swinref.artifacts.golden import golden_input, write_golden
from swinref.cli import main

TINY = {
    "img_size": 32,
    "patch_size": 4,
    "embed_dim": 8,
    "depths": [2, 2],
    "num_heads": [1, 2],
    "window_size": 4,
    "num_classes": 10,
}
TINY_JSON = json.dumps(TINY)
TINY_CFG = swinref.SwinConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in TINY.items()})


# ----- the files the cases use -----------------------------------------------------------------
class Files:
    """Every prepared file, by name; ``self.p(name)`` is its path as a string."""

    def __init__(self, root: Path):
        self.root = root

    def p(self, name: str) -> str:
        return str(self.root / name)


def _golden(path: str, *, input_seed: int = 0, seed: int = 0) -> None:
    params = swinref.init_params(TINY_CFG, seed=seed, scheme="random")
    x = golden_input(TINY_CFG, seed=input_seed)
    logits, inter = swinref.forward(params, x, TINY_CFG, return_intermediates=True)
    write_golden(path, cfg=TINY_CFG, params=params, x=x, logits=logits, intermediates=inter, overwrite=True)


def _st_with_header(path: str, header: bytes) -> None:
    Path(path).write_bytes(struct.pack("<Q", len(header)) + header)


def _npz_member(z: zipfile.ZipFile, name: str, header_shape: tuple[int, ...], payload: bytes) -> None:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": header_shape})
    z.writestr(name, buf.getvalue() + payload)


def make_files(root: Path) -> Files:
    f = Files(root)
    _golden(f.p("good.safetensors"))
    shutil.copy(f.p("good.safetensors"), f.p("same.safetensors"))
    _golden(f.p("other.safetensors"), input_seed=1)
    data = Path(f.p("good.safetensors")).read_bytes()
    Path(f.p("trunc.safetensors")).write_bytes(data[: len(data) // 2])
    Path(f.p("junk.safetensors")).write_bytes(np.random.default_rng(0).bytes(256))
    Path(f.p("empty.safetensors")).write_bytes(b"")
    Path(f.p("hugehdr.safetensors")).write_bytes(struct.pack("<Q", 1 << 60) + b"{}")
    save_file({"logits": np.zeros((1, 10))}, f.p("plain.safetensors"))
    Path(f.p("notobj.safetensors")).write_bytes(save({"a": np.zeros(1)}, metadata={"swinref": "[1, 2]"}))
    _st_with_header(f.p("badoffsets.safetensors"), b'{"a": {"dtype": "F64", "shape": [4]}}')
    os.mkfifo(f.p("fifo.safetensors"))
    os.symlink("/dev/zero", f.p("zero.safetensors"))
    os.mkdir(f.p("adir"))
    Path(f.p("existing.safetensors")).write_bytes(b"precious bytes")

    params = swinref.init_params(TINY_CFG, seed=3, scheme="random")
    swinref.save_params(params, f.p("w.safetensors"))
    wrong = dict(params)
    name = next(n for n in wrong if n.endswith("norm.weight"))
    wrong[name] = np.ones(3)
    swinref.save_params(wrong, f.p("w_shape.safetensors"))
    swinref.save_params({k: v for k, v in params.items() if k != name}, f.p("w_missing.safetensors"))
    swinref.save_params({**params, "extra.weight": np.ones(2)}, f.p("w_extra.safetensors"))
    nan = dict(params)
    nan[name] = np.full_like(params[name], np.nan)
    swinref.save_params(nan, f.p("w_nan.safetensors"))
    np.savez(f.p("w_obj.npz"), weight=np.array([{"a": 1}, None], dtype=object))
    with zipfile.ZipFile(f.p("w_bomb.npz"), "w", zipfile.ZIP_DEFLATED) as z:
        # a header claiming 2 GiB of float64 behind 8 bytes: refused from the header alone
        _npz_member(z, "patch_embed.proj.weight.npy", (1 << 28,), b"\0" * 8)
    with zipfile.ZipFile(f.p("w_notnpy.npz"), "w") as z:
        z.writestr("evil.pkl", pickle.dumps({"a": 1}))
    marker = root / "unpickled_marker"
    Path(f.p("w_pickle.pth")).write_bytes(
        pickle.dumps(_Marker(str(marker)), protocol=2)
    )  # not a torch zip archive; torch.load(weights_only=True) must refuse it either way
    Path(f.p("w.ckpt")).write_bytes(b"x")
    os.symlink("/dev/zero", f.p("w_zero.safetensors"))

    # test-vector suites
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["vectors", "--out", f.p("suite"), "--dtype", "float64"]) == 0
    shutil.copytree(f.p("suite"), f.p("actual_ok"))
    os.remove(os.path.join(f.p("actual_ok"), "manifest.json"))
    manifest = json.loads(Path(f.p("suite"), "manifest.json").read_text())
    first = manifest["cases"][0]["file"]

    def variant(name: str, edit: Callable[[dict], None] | None = None, text: str | None = None) -> None:
        shutil.copytree(f.p("suite"), f.p(name))
        if text is not None:
            Path(f.p(name), "manifest.json").write_text(text)
        elif edit is not None:
            m = json.loads(json.dumps(manifest))
            edit(m)
            Path(f.p(name), "manifest.json").write_text(json.dumps(m))

    variant("suite_junkjson", text="{not json")
    variant("suite_numname", lambda m: m["cases"][0].__setitem__("name", 12))
    variant("suite_nantol", lambda m: m["cases"][0]["tolerance"].__setitem__("atol", float("nan")))
    variant("suite_loose", lambda m: [c["tolerance"].__setitem__("atol", 1e9) for c in m["cases"]])
    variant("suite_escape", lambda m: m["cases"][0].__setitem__("file", "../w.safetensors"))
    variant("suite_nocases", lambda m: m.pop("cases"))
    variant("suite_version", lambda m: m.__setitem__("suite_version", 99))
    variant("suite_link")
    os.remove(os.path.join(f.p("suite_link"), first))
    os.symlink(f.p(os.path.join("suite", first)), os.path.join(f.p("suite_link"), first))
    os.mkdir(f.p("nomanifest"))
    # actual outputs: garbage values (a port that is wrong everywhere)
    shutil.copytree(f.p("actual_ok"), f.p("actual_bad"))
    for c in manifest["cases"]:
        path = os.path.join(f.p("actual_bad"), c["file"])
        tensors = _load(path)
        tensors = {
            k: (v + 1.0 if v.dtype.kind == "f" and k.startswith("outputs/") else v)
            for k, v in tensors.items()
        }
        save_file(tensors, path)
    shutil.copytree(f.p("actual_ok"), f.p("actual_fifo"))
    os.remove(os.path.join(f.p("actual_fifo"), first))
    os.mkfifo(os.path.join(f.p("actual_fifo"), first))
    shutil.copytree(f.p("actual_ok"), f.p("actual_zero"))
    os.remove(os.path.join(f.p("actual_zero"), first))
    os.symlink("/dev/zero", os.path.join(f.p("actual_zero"), first))
    Path(f.p("report.json")).write_text("keep me")
    os.mkdir(f.p("pics"))
    for n in ("cyclic_shift", "window_regrouping", "masks", "attention"):
        Path(f.p("pics"), f"{n}.png").write_bytes(b"old picture")
    return f


def _load(path: str) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(path)


class _Marker:
    """Pickles to a call that would create a file: proof that something was unpickled."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


# ----- the cases -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    name: str
    argv: Callable[[Files], list[str]]
    expect: int
    keep: tuple[str, ...] = ()  # files (or directories) whose bytes must not change
    stderr_has: str = ""  # a phrase the one-line error or warning must contain
    absent: tuple[str, ...] = ()  # files that must not exist afterwards
    after: Callable[[Files], str | None] | None = field(default=None, compare=False)  # extra check


def g(*extra: str) -> Callable[[Files], list[str]]:
    """``swinref golden`` on the tiny model, writing into the case's directory."""
    return lambda f: [
        "golden",
        "--model",
        TINY_JSON,
        *[f.p(a[1:]) if a.startswith("@") else a for a in extra],
    ]


def cmd(*argv: str) -> Callable[[Files], list[str]]:
    """Any command; an argument ``@name`` is the prepared file ``name``."""
    return lambda f: [f.p(a[1:]) if a.startswith("@") else a for a in argv]


def _nan_recorded(f: Files) -> str | None:
    meta = swinref.read_golden(f.p("out_nan.safetensors")).metadata
    return None if "weights hold NaN" in " ".join(meta.get("numerics_warnings", [])) else "not recorded"


def _replaced(f: Files) -> str | None:
    data = Path(f.p("force.safetensors")).read_bytes()
    return None if data != b"precious bytes" else "--force did not replace the file"


CASES: list[Case] = [
    # --- golden: outputs
    Case("golden: --out exists", g("--out", "@existing.safetensors"), 2, ("existing.safetensors",), "exists"),
    Case("golden: --out is a directory", g("--out", "@adir"), 2, ("adir",), "is a directory"),
    Case("golden: --out in a missing directory", g("--out", "@nodir/x.safetensors"), 2, (), "does not exist"),
    Case("golden: --out name too long", g("--out", "@" + "n" * 300 + ".safetensors"), 2, (), "too long"),
    Case("golden: --out is a FIFO", g("--out", "@fifo.safetensors"), 2, (), "exists"),
    # --- golden: model and sizes
    Case(
        "golden: unknown model", cmd("golden", "--model", "swin_nope", "--out", "@o1.st"), 2, (), "swin_nope"
    ),
    Case("golden: model JSON does not parse", cmd("golden", "--model", "{bad", "--out", "@o2.st"), 2),
    Case(
        "golden: depths and heads differ in length",
        cmd("golden", "--model", json.dumps({**TINY, "num_heads": [1]}), "--out", "@o3.st"),
        2,
        (),
        "num_heads",
    ),
    Case("golden: JSON config file missing", cmd("golden", "--model", "@nope.json", "--out", "@o4.st"), 2),
    Case("golden: --semantics unknown", g("--semantics", "bogus", "--out", "@o5.st"), 2, (), "--semantics"),
    Case("golden: --input-size 0", g("--input-size", "0", "--out", "@o6.st"), 2, (), "--input-size"),
    Case("golden: --input-size words", g("--input-size", "big", "--out", "@o7.st"), 2, (), "--input-size"),
    Case("golden: --input-size not a window multiple", g("--input-size", "30", "--out", "@o8.st"), 2),
    Case("golden: --batch 0", g("--batch", "0", "--out", "@o9.st"), 2, (), "--batch"),
    Case("golden: --batch -3", g("--batch", "-3", "--out", "@o10.st"), 2, (), "--batch"),
    Case("golden: --batch huge", g("--batch", str(10**12), "--out", "@o11.st"), 2, (), "memory"),
    Case("golden: --dtype float16", g("--dtype", "float16", "--out", "@o12.st"), 2, (), "--dtype"),
    Case("golden: --backend unknown", g("--backend", "tpu", "--out", "@o13.st"), 2, (), "--backend"),
    Case("golden: --seed -1", g("--seed", "-1", "--out", "@o14.st"), 2, (), "--seed"),
    Case("golden: --input-seed x", g("--input-seed", "x", "--out", "@o15.st"), 2, (), "--input-seed"),
    Case(
        "golden: --seed with --weights",
        g("--seed", "1", "--weights", "@w.safetensors", "--out", "@o16.st"),
        2,
    ),
    Case(
        "golden: --source unknown", g("--weights", "@w.safetensors", "--source", "x", "--out", "@o17.st"), 2
    ),
    Case(
        "golden: video model with --images",
        cmd(
            "golden",
            "--model",
            "swin_tiny_patch244_window877_kinetics400_1k",
            "--images",
            "@adir",
            "--out",
            "@store_v",
        ),
        2,
    ),
    # --- golden: weights files
    Case(
        "golden: weights missing", g("--weights", "@nope.safetensors", "--out", "@o20.st"), 2, (), "not found"
    ),
    Case(
        "golden: weights junk bytes",
        g("--weights", "@junk.safetensors", "--out", "@o21.st"),
        2,
        (),
        "weights",
    ),
    Case("golden: weights empty", g("--weights", "@empty.safetensors", "--out", "@o22.st"), 2),
    Case("golden: weights a directory", g("--weights", "@adir", "--out", "@o23.st"), 2),
    Case("golden: weights a FIFO", g("--weights", "@fifo.safetensors", "--out", "@o24.st"), 2, (), "FIFO"),
    Case(
        "golden: weights -> /dev/zero",
        g("--weights", "@w_zero.safetensors", "--out", "@o25.st"),
        2,
        (),
        "device",
    ),
    Case("golden: weights header 2^60", g("--weights", "@hugehdr.safetensors", "--out", "@o26.st"), 2),
    Case(
        "golden: weights mis-shaped",
        g("--weights", "@w_shape.safetensors", "--out", "@o27.st"),
        2,
        (),
        "shape",
    ),
    Case(
        "golden: weights missing a key",
        g("--weights", "@w_missing.safetensors", "--out", "@o28.st"),
        2,
        (),
        "missing",
    ),
    Case(
        "golden: weights with an extra key",
        g("--weights", "@w_extra.safetensors", "--out", "@o29.st"),
        2,
        (),
        "extra.weight",
    ),
    Case(
        "golden: npz object array", g("--weights", "@w_obj.npz", "--out", "@o30.st"), 2, (), "Python objects"
    ),
    Case(
        "golden: npz header claims 2 GiB",
        g("--weights", "@w_bomb.npz", "--out", "@o31.st"),
        2,
        (),
        "declares",
    ),
    Case("golden: npz member not .npy", g("--weights", "@w_notnpy.npz", "--out", "@o32.st"), 2, (), ".npy"),
    Case(
        "golden: .pth holding a pickle",
        g("--weights", "@w_pickle.pth", "--out", "@o33.st"),
        2,
        (),
        "",
        ("unpickled_marker",),
    ),
    Case("golden: weights .ckpt", g("--weights", "@w.ckpt", "--out", "@o34.st"), 2, (), "unsupported"),
    Case(
        "golden: NaN weights",
        g("--weights", "@w_nan.safetensors", "--out", "@out_nan.safetensors"),
        0,
        (),
        "warning: weights hold NaN",
        after=_nan_recorded,
    ),
    Case("golden: --force replaces", g("--out", "@force.safetensors", "--force"), 0, (), after=_replaced),
    # --- compare
    Case("compare: identical", cmd("compare", "@good.safetensors", "@same.safetensors"), 0),
    Case("compare: different inputs", cmd("compare", "@good.safetensors", "@other.safetensors"), 1),
    Case("compare: A missing", cmd("compare", "@nope.safetensors", "@good.safetensors"), 2, (), "not found"),
    Case(
        "compare: B truncated", cmd("compare", "@good.safetensors", "@trunc.safetensors"), 2, (), "truncated"
    ),
    Case(
        "compare: B junk",
        cmd("compare", "@good.safetensors", "@junk.safetensors"),
        2,
        (),
        "not a safetensors",
    ),
    Case("compare: B empty", cmd("compare", "@good.safetensors", "@empty.safetensors"), 2),
    Case(
        "compare: B header 2^60", cmd("compare", "@good.safetensors", "@hugehdr.safetensors"), 2, (), "header"
    ),
    Case("compare: B a FIFO", cmd("compare", "@good.safetensors", "@fifo.safetensors"), 2, (), "FIFO"),
    Case(
        "compare: B -> /dev/zero", cmd("compare", "@good.safetensors", "@zero.safetensors"), 2, (), "device"
    ),
    Case("compare: B a directory", cmd("compare", "@good.safetensors", "@adir"), 2, (), "directory"),
    # a plain safetensors B is a port's outputs: its zero logits are compared and beyond bound
    Case(
        "compare: B plain port outputs, wrong", cmd("compare", "@good.safetensors", "@plain.safetensors"), 1
    ),
    Case(
        "compare: A no swinref metadata",
        cmd("compare", "@plain.safetensors", "@good.safetensors"),
        2,
        (),
        "metadata",
    ),
    Case("compare: B metadata not an object", cmd("compare", "@good.safetensors", "@notobj.safetensors"), 2),
    Case(
        "compare: B header without offsets", cmd("compare", "@good.safetensors", "@badoffsets.safetensors"), 2
    ),
    Case(
        "compare: --atol nan",
        cmd("compare", "@good.safetensors", "@other.safetensors", "--atol", "nan"),
        2,
        (),
        "atol",
    ),
    Case(
        "compare: --atol inf",
        cmd("compare", "@good.safetensors", "@other.safetensors", "--atol", "inf"),
        2,
        (),
        "atol",
    ),
    Case(
        "compare: --atol -1",
        cmd("compare", "@good.safetensors", "@other.safetensors", "--atol", "-1"),
        2,
        (),
        "atol",
    ),
    Case(
        "compare: --rtol words", cmd("compare", "@good.safetensors", "@other.safetensors", "--rtol", "x"), 2
    ),
    # --- info, crosscheck
    Case("info: unknown model", cmd("info", "swin_nope"), 2, (), "swin_nope"),
    Case("info: --input-size 3x", cmd("info", "swin_t", "--input-size", "3x"), 2, (), "--input-size"),
    Case("crosscheck: unknown implementation", cmd("crosscheck", "jax", "swin_t"), 2),
    Case(
        "crosscheck: hf for video", cmd("crosscheck", "hf", "swin_tiny_patch244_window877_kinetics400_1k"), 2
    ),
    # --- vectors, verify
    Case("vectors: --out holds a suite", cmd("vectors", "--out", "@suite"), 2, ("suite",), "--force"),
    Case(
        "vectors: --out is a file",
        cmd("vectors", "--out", "@existing.safetensors"),
        2,
        ("existing.safetensors",),
    ),
    Case("verify: faithful outputs", cmd("verify", "@suite", "@actual_ok"), 0),
    Case("verify: wrong outputs", cmd("verify", "@suite", "@actual_bad"), 1),
    Case("verify: tolerances loosened in the manifest", cmd("verify", "@suite_loose", "@actual_bad"), 1),
    Case("verify: expected not a directory", cmd("verify", "@good.safetensors", "@actual_ok"), 2),
    Case("verify: no manifest", cmd("verify", "@nomanifest", "@actual_ok"), 2, (), "not found"),
    Case("verify: manifest not JSON", cmd("verify", "@suite_junkjson", "@actual_ok"), 2, (), "JSON"),
    Case("verify: case named by a number", cmd("verify", "@suite_numname", "@actual_ok"), 2, (), "'name'"),
    Case("verify: NaN tolerance", cmd("verify", "@suite_nantol", "@actual_ok"), 2, (), "atol"),
    Case(
        "verify: file name leaves the suite",
        cmd("verify", "@suite_escape", "@actual_ok"),
        2,
        (),
        "plain names",
    ),
    Case("verify: manifest without cases", cmd("verify", "@suite_nocases", "@actual_ok"), 2, (), "cases"),
    Case("verify: unknown suite version", cmd("verify", "@suite_version", "@actual_ok"), 2, (), "version"),
    Case("verify: case file links out of the suite", cmd("verify", "@suite_link", "@actual_ok"), 1),
    Case("verify: actual file a FIFO", cmd("verify", "@suite", "@actual_fifo"), 1),
    Case("verify: actual file -> /dev/zero", cmd("verify", "@suite", "@actual_zero"), 1),
    Case("verify: actual directory missing", cmd("verify", "@suite", "@nope_dir"), 2, (), "not found"),
    Case(
        "verify: --report-json exists",
        cmd("verify", "@suite", "@actual_ok", "--report-json", "@report.json"),
        2,
        ("report.json",),
        "exists",
    ),
    Case("verify: --junit is a directory", cmd("verify", "@suite", "@actual_ok", "--junit", "@adir"), 2),
    Case("verify: --select matches nothing", cmd("verify", "@suite", "@actual_ok", "--select", "zzz*"), 2),
    # --- show
    Case("show: PNGs exist", cmd("show", "--out", "@pics"), 2, ("pics",), "--force"),
    Case(
        "show: --size 100000 100000",
        cmd("show", "--out", "@pics2", "--size", "100000", "100000"),
        2,
        (),
        "tokens",
    ),
    Case("show: --window 0", cmd("show", "--out", "@pics3", "--window", "0"), 2, (), "--window"),
    Case("show: shift not below the window", cmd("show", "--out", "@pics4", "--shift", "4"), 2, (), "shift"),
    # --- usage
    Case("no command", cmd(), 2),
    Case("unknown command", cmd("frobnicate"), 2),
]


# ----- running a case --------------------------------------------------------------------------
def _digest(path: Path) -> str:
    if path.is_dir():
        h = hashlib.sha256()
        for p in sorted(path.rglob("*")):
            h.update(str(p.relative_to(path)).encode())
            if p.is_file() and not p.is_symlink():
                h.update(p.read_bytes())
        return h.hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "absent"


@dataclass
class Outcome:
    rc: int | None
    stderr: str
    traceback: bool
    lost: list[str]
    problems: list[str]


def run_case(case: Case, f: Files) -> Outcome:
    before = {k: _digest(f.root / k) for k in case.keep}
    out, err = io.StringIO(), io.StringIO()
    rc: int | None = None
    escaped = False
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(case.argv(f))
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else 2
        except BaseException:  # an exception that escaped main is a traceback for the user
            escaped = True
    text = err.getvalue()
    lost = [k for k in case.keep if _digest(f.root / k) != before[k]]
    problems = []
    if rc != case.expect:
        problems.append(f"exit {rc}, expected {case.expect}")
    tb = escaped or "Traceback" in text
    if tb:
        problems.append("traceback")
    errors = [ln for ln in text.splitlines() if ln.strip() and "warning:" not in ln]
    if rc == 2 and len(errors) != 1:
        problems.append(f"expected one error line, got {len(errors)}: {text!r}")
    if case.stderr_has and case.stderr_has not in text:
        problems.append(f"stderr lacks {case.stderr_has!r}: {text!r}")
    if lost:
        problems.append(f"changed: {lost}")
    problems += [f"{a} exists" for a in case.absent if (f.root / a).exists()]
    if case.after is not None and rc == case.expect:
        extra = case.after(f)
        if extra:
            problems.append(extra)
    return Outcome(rc, text, tb, lost, problems)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Files:
    return make_files(tmp_path_factory.mktemp("bad_inputs"))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case, files):
    outcome = run_case(case, files)
    assert not outcome.problems, f"{case.name}: {'; '.join(outcome.problems)}\nstderr: {outcome.stderr}"


def test_enough_cases():
    assert len(CASES) >= 60 and len({c.name for c in CASES}) == len(CASES)


def print_table() -> int:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        f = make_files(Path(tmp))
        counts = {
            "tried": 0,
            "one-line errors": 0,
            "handled": 0,
            "tracebacks": 0,
            "data lost": 0,
            "false passes": 0,
        }
        print("| case | exit | outcome |\n|---|---|---|")
        for case in CASES:
            o = run_case(case, f)
            counts["tried"] += 1
            counts["tracebacks"] += o.traceback
            counts["data lost"] += bool(o.lost)
            counts["false passes"] += o.rc == 0 and case.expect != 0
            if o.rc == 2 and not o.problems:
                counts["one-line errors"] += 1
                line = next((ln for ln in o.stderr.splitlines() if "error:" in ln), "")
                what = line.split("error: ", 1)[-1][:110]
            elif not o.problems:
                counts["handled"] += 1
                what = f"handled (exit {o.rc})"
            else:
                what = "PROBLEM: " + "; ".join(o.problems)[:150]
            print(f"| {case.name} | {o.rc} | {what.replace('|', '/')} |")
        print()
        print(", ".join(f"{k}: {v}" for k, v in counts.items()))
        return 0 if counts["tried"] == counts["one-line errors"] + counts["handled"] else 1


if __name__ == "__main__":
    sys.exit(print_table())
