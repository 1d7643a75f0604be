"""The figures the docs state, recomputed: each one comes from a function here, and the docs must
say what it gives.

Measured maxima are stated rounded up to two significant digits; a figure passes when the
measurement is at most the stated value and at least half of it, so the statement stays an upper
bound that is also tight (another BLAS may move the last digits, not the factor).
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from swinref.tools import vectors as V

ROOT = Path(__file__).resolve().parents[1]


def _doc(name: str) -> str:
    return (ROOT / name).read_text()


def _stated(text: str, label: str) -> float:
    """The number in the docs' ``<!-- figure: label -->NUMBER`` marker."""
    m = re.search(rf"<!-- figure: {re.escape(label)} -->\s*([0-9.]+(?:e-?[0-9]+)?)", text)
    assert m, f"no figure {label!r} in the docs (expected '<!-- figure: {label} -->NUMBER')"
    return float(m.group(1))


def _check(stated: float, measured: float, what: str) -> None:
    assert measured <= stated <= 2 * measured, (
        f"{what}: the docs say {stated:g}, the measurement gives {measured:.3g} "
        f"(state it rounded up to two significant digits)"
    )


# ----- docs/conformance.md: swinref in float32 as a port of the float32 vector cases ------------------
def float32_self_check() -> dict[str, float]:
    """swinref evaluated in float32 on every float32 case with a non-zero tolerance, against the
    case's expected outputs: the largest difference per kind of case and the largest share of the
    per-element bound ``atol + rtol * |expected|`` used by any element."""
    worst = {"component": 0.0, "model": 0.0, "v2": 0.0, "share": 0.0}
    for case in V.CASES:
        tol = case.tolerance("float32")
        if case.int_only or tol["atol"] == 0:
            continue
        inputs, params = V.case_arrays(case, "float32")
        want = V.evaluate(case, inputs, params, dtype="float32", compute_dtype="float64")
        got = V.evaluate(case, inputs, params, dtype="float32", compute_dtype="float32")
        kind = (
            "model"
            if case.component == "model"
            else "v2"
            if case.component in ("v2_window_attention", "v2_block")
            else "component"
        )
        for name, expected in want.items():
            e = expected.astype(np.float64)
            diff = np.abs(got[name].astype(np.float64) - e)
            worst[kind] = max(worst[kind], float(diff.max()))
            share = diff / (tol["atol"] + tol["rtol"] * np.abs(e))
            worst["share"] = max(worst["share"], float(share.max()))
    return worst


def test_conformance_float32_figures():
    text = _doc("docs/conformance.md")
    measured = float32_self_check()
    for key, label in (
        ("component", "f32 component or stage"),
        ("model", "f32 model"),
        ("v2", "f32 v2 attention or block"),
    ):
        _check(_stated(text, label), measured[key], f"docs/conformance.md {label}")
    _check(
        _stated(text, "f32 share of bound %") / 100, measured["share"], "docs/conformance.md share of bound"
    )


def test_conformance_suite_size(tmp_path):
    text = _doc("docs/conformance.md")
    V.write_suite(tmp_path / "suite")
    files = [f for f in (tmp_path / "suite").iterdir() if f.name != V.MANIFEST]
    assert _stated(text, "vector files") == len(files), f"the suite has {len(files)} case files"
    assert _stated(text, "vector cases") == len(V.CASES), f"the suite has {len(V.CASES)} cases"
    megabytes = sum(f.stat().st_size for f in (tmp_path / "suite").iterdir()) / 1e6
    _check(_stated(text, "suite MB"), megabytes, "docs/conformance.md suite size in MB")


# ----- docs/conformance.md: the mutant list is the script's --------------------------------------------
def _mutation_module():
    spec = importlib.util.spec_from_file_location("mutation", ROOT / "benchmarks" / "mutation.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("mutation", module)  # dataclasses look their module up there
    spec.loader.exec_module(sys.modules["mutation"])
    return sys.modules["mutation"]


def test_the_docs_list_every_mutant_of_the_script():
    text = _doc("docs/conformance.md")
    rows = re.findall(r"^\| (v1|v2|video) \| `([a-z0-9_]+)` \| (.+?) \| (.+?) \|$", text, flags=re.M)
    mutation = _mutation_module()
    want = [(m.family, m.name, m.mistake) for m in mutation.MUTANTS]
    assert [r[:3] for r in rows] == want, (
        "docs/conformance.md's mutant table must list benchmarks/mutation.py's MUTANTS in order "
        "(run `python benchmarks/mutation.py --markdown`)"
    )
    for family in mutation.FAMILIES:
        n = sum(m.family == family for m in mutation.MUTANTS)
        assert f"{family}: {n}/{n}" in text or f"{family} {n}/{n}" in text, f"no score line for {family}"
    for module in mutation.STANDALONE_SUITE:
        assert (ROOT / module).is_file(), f"the mutation suite names a missing module {module}"


@pytest.mark.parametrize("module", ["tests/models/test_semantics.py", "tests/models/test_fast.py"])
def test_two_path_modules_are_not_in_the_scored_suite(module):
    assert module not in _mutation_module().STANDALONE_SUITE, f"{module} compares two swinref paths"


# ----- docs/semantics.md: transformers' eager attention against its default (SDPA) ---------------------
def hf_eager_vs_sdpa() -> tuple[str, float]:
    """transformers' default attention implementation for Swin, and the max abs difference between
    its float64 logits under "eager" (softmax in float32) and "sdpa", on the cross-check matrix's
    ``small`` case (seeded random weights, batch 2)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from swinref.tools import crosscheck as C

    cfg, size = C.matrix_case("small", "hf")
    model = C.build_impl("hf", cfg).double().eval()
    C.randomize_(model, seed=0)
    default = model.config._attn_implementation
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((2, 3, *size)))
    logits = {}
    for impl in ("eager", "sdpa"):
        model.set_attn_implementation(impl)
        with torch.inference_mode():
            logits[impl] = model(x).logits.numpy()
    return default, float(np.abs(logits["eager"] - logits["sdpa"]).max())


def test_semantics_hf_eager_vs_sdpa():
    default, measured = hf_eager_vs_sdpa()
    assert default == "sdpa", f"transformers' default attention for Swin is now {default!r}"
    _check(
        _stated(_doc("docs/semantics.md"), "hf eager vs sdpa"), measured, "docs/semantics.md eager vs SDPA"
    )


# ----- docs/v2.md: the coordinate table built in float64 instead of float32 ----------------------------
def v2_float64_coords_effect(monkeypatch) -> float:
    """Max abs change of float64 logits when V2's coordinate table is computed in float64 instead of
    float32 (every port's buffer is float32): the cross-check's ``PADDED`` config (80x80, window 8,
    three stages), ``init_params(scheme="random", seed=0)``, one standard-normal image (seed 0)."""
    import swinref
    from swinref.models import v2

    cfg = v2.SwinV2Config(
        img_size=80, embed_dim=32, depths=(2, 2, 2), num_heads=(2, 4, 8), window_size=8, num_classes=10
    )
    params = v2.init_params(cfg, seed=0, scheme="random")
    x = np.random.default_rng(0).standard_normal((1, 3, 80, 80))
    swinref.clear_caches()
    want = v2.forward(params, x, cfg)

    def table64(window, pretrained_window):
        ref = pretrained_window if pretrained_window[0] > 0 else window
        dh = np.arange(-(window[0] - 1), window[0]) / max(ref[0] - 1, 1)
        dw = np.arange(-(window[1] - 1), window[1]) / max(ref[1] - 1, 1)
        gh, gw = np.meshgrid(dh, dw, indexing="ij")
        t = np.stack([gh.reshape(-1), gw.reshape(-1)], axis=-1) * 8.0
        return np.sign(t) * np.log2(np.abs(t) + 1.0) / 3.0

    monkeypatch.setattr(v2, "host_coords_table", table64)
    try:
        got = v2.forward(params, x, cfg)
    finally:
        swinref.clear_caches()
    return float(np.abs(got - want).max())


def test_v2_coordinate_table_in_float64_moves_logits_as_stated(monkeypatch):
    measured = v2_float64_coords_effect(monkeypatch)
    _check(_stated(_doc("docs/v2.md"), "v2 float64 coords"), measured, "docs/v2.md float64 coordinate table")


def test_every_mutant_still_applies():
    """A mutant whose text the code no longer contains would stop the mutation script; catch that
    drift here, where it is cheap."""
    for m in _mutation_module().MUTANTS:
        text = (ROOT / m.file).read_text()
        assert m.old in text, f"mutant {m.name}: its text is no longer in {m.file}; update MUTANTS"
        assert m.new not in text, f"mutant {m.name}: {m.file} already contains the mutated text"
