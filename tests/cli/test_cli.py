"""The ``swinref golden`` and ``swinref compare`` commands, in process and once as a subprocess."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from safetensors.numpy import save_file

import swinref
from swinref import read_golden
from swinref.artifacts.golden import METADATA_KEY, golden_input
from swinref.cli import main
from swinref.models import v1 as config

# A tiny model registered under a test-only name so the commands (which take --model names) run
# in milliseconds; the default swin_t path runs once, in the subprocess test.
TINY_NAME = "swin_test_tiny"
TINY = dict(
    img_size=32, patch_size=4, embed_dim=8, depths=(2, 2), num_heads=(1, 2), window_size=4, num_classes=10
)


@pytest.fixture(autouse=True)
def tiny_model(monkeypatch):
    monkeypatch.setitem(config.MODEL_ZOO, TINY_NAME, TINY)
    return config.SwinConfig.named(TINY_NAME)


def golden(tmp_path, name, *extra) -> tuple[int, str]:
    out = str(tmp_path / name)
    return main(["golden", "--model", TINY_NAME, "--out", out, *extra]), out


# ----- swinref golden ------------------------------------------------------------------------
def test_golden_defaults(tmp_path, capsys, tiny_model):
    rc, out = golden(tmp_path, "g.safetensors")
    assert rc == 0, f"expected exit 0, got {rc}: {capsys.readouterr()}"
    g = read_golden(out)
    params = swinref.init_params(tiny_model, seed=0, scheme="random")
    x = golden_input(tiny_model, batch=1, seed=0, dtype="float64")
    logits = swinref.forward(params, x, tiny_model)
    assert np.array_equal(g.input, x), "stored input is not default_rng(0).standard_normal"
    assert np.array_equal(g.logits, logits), "stored logits differ from a direct forward"
    meta = g.metadata
    want = {
        "model": TINY_NAME,
        "dtype": "float64",
        "backend": "numpy",
        "input_seed": 0,
        "batch": 1,
        "weights_source": "seeded init seed=0 scheme=random",
        "weights_digest": swinref.params_digest(params),
    }
    for field, value in want.items():
        assert meta[field] == value, f"metadata {field}: expected {value!r}, got {meta[field]!r}"
    # patch_embed, 2 blocks + stage output per stage, the one merge, norm, pre_logits
    assert len(g.intermediates) == 10, f"expected 10 intermediates, got {list(g.intermediates)}"
    shown = capsys.readouterr().out
    top5 = np.argsort(-logits[0], kind="stable")[:5]
    for text in (out, "logits shape (1, 10)", "top-5 classes of image 0: " + f"{top5[0]} (", "wall time"):
        assert text in shown, f"summary lacks {text!r}:\n{shown}"


def test_golden_twice_gives_identical_bytes(tmp_path):
    _, a = golden(tmp_path, "a.safetensors")
    _, b = golden(tmp_path, "b.safetensors")
    with open(a, "rb") as fa, open(b, "rb") as fb:
        assert fa.read() == fb.read(), "two identical golden commands wrote different bytes"


def test_golden_options(tmp_path, tiny_model):
    rc, out = golden(
        tmp_path,
        "g.safetensors",
        "--dtype",
        "float32",
        "--batch",
        "2",
        "--input-seed",
        "3",
        "--seed",
        "5",
        "--no-intermediates",
    )
    assert rc == 0, f"exit {rc}"
    g = read_golden(out)
    assert list(g.tensors) == ["input", "logits"], f"--no-intermediates stored {list(g.tensors)}"
    assert g.input.dtype == np.float32 and g.input.shape == (2, 3, 32, 32), f"{g.input.dtype} {g.input.shape}"
    want_x = golden_input(tiny_model, batch=2, seed=3, dtype="float32")
    assert np.array_equal(g.input, want_x), "input differs from default_rng(3).standard_normal in float32"
    meta = g.metadata
    got = (meta["dtype"], meta["batch"], meta["input_seed"], meta["weights_source"])
    assert got == ("float32", 2, 3, "seeded init seed=5 scheme=random"), f"metadata: got {got}"
    want_digest = swinref.params_digest(
        swinref.init_params(tiny_model, seed=5, dtype="float32", scheme="random")
    )
    assert meta["weights_digest"] == want_digest, (
        f"digest: expected {want_digest}, got {meta['weights_digest']}"
    )


def test_weights_file_matches_seeded_init(tmp_path, tiny_model):
    weights = tmp_path / "w.safetensors"
    swinref.save_params(swinref.init_params(tiny_model, seed=7, scheme="random"), weights)
    rc, from_file = golden(tmp_path, "file.safetensors", "--weights", str(weights))
    assert rc == 0, f"exit {rc}"
    _, seeded = golden(tmp_path, "seeded.safetensors", "--seed", "7")
    a, b = read_golden(from_file), read_golden(seeded)
    assert np.array_equal(a.logits, b.logits), "the same weights from a file gave different logits"
    sha = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert a.metadata["weights_source"] == f"{weights} sha256={sha}", a.metadata["weights_source"]
    assert a.metadata["weights_digest"] == b.metadata["weights_digest"], (
        "the same weights from a file and from seeded init gave different digests"
    )


@pytest.mark.parametrize("backend_name", ["array_api_strict", "torch"])
def test_other_backend_agrees_with_numpy(tmp_path, capsys, backend_name):
    pytest.importorskip(backend_name)
    _, ref = golden(tmp_path, "numpy.safetensors")
    rc, other = golden(tmp_path, f"{backend_name}.safetensors", "--backend", backend_name)
    assert rc == 0, f"exit {rc}"
    assert read_golden(other).metadata["backend"] == backend_name
    capsys.readouterr()
    # float64 backends differ by summation order only; compare applies its float64 default 1e-10
    assert main(["compare", ref, other]) == 0, capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--model", "swin_x"], "unknown model 'swin_x'; expected one of: swin_tiny_patch4_window7_224, "),
        (
            ["--seed", "1", "--weights", "w.safetensors"],
            "--seed picks seeded init weights; it cannot be combined",
        ),
        (["--weights", "nope.safetensors"], "weights file not found: nope.safetensors"),
        (["--batch", "0"], "argument --batch: expected an int >= 1, got '0'"),
    ],
)
def test_golden_bad_arguments_exit_2(tmp_path, capsys, argv, message):
    assert main(["golden", "--model", TINY_NAME, "--out", str(tmp_path / "g.safetensors"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("swinref golden: error: ") and message in err, f"expected {message!r}, got {err!r}"
    assert not (tmp_path / "g.safetensors").exists(), "a failed command left an output file"


def test_golden_on_a_missing_backend_exit_2(tmp_path, capsys):
    try:
        import cupy  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("cupy is installed; this checks the message when it is not")
    rc, out = golden(tmp_path, "g.safetensors", "--backend", "cupy")
    err = capsys.readouterr().err
    assert rc == 2, f"expected exit 2, got {rc}"
    assert "backend 'cupy' is not available" in err and "pip install 'swinref[gpu]'" in err, err
    assert not os.path.exists(out), "a failed command left an output file"


def test_golden_with_mismatched_weights_exit_2(tmp_path, capsys):
    weights = tmp_path / "w.safetensors"
    save_file({"norm.weight": np.ones(3)}, str(weights))
    rc, _ = golden(tmp_path, "g.safetensors", "--weights", str(weights))
    err = capsys.readouterr().err
    assert rc == 2, f"expected exit 2, got {rc}"
    for text in ("does not match the config", "norm.weight: got (3,), expected (16,)"):
        assert text in err, f"expected {text!r} in {err!r}"


def test_golden_help_documents_the_input(capsys):
    assert main(["golden", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "numpy.random.default_rng(INPUT_SEED).standard_normal((BATCH, in_chans, H, W))" in text, text
    assert "swinref.init_params(cfg, seed=SEED)" in text, text


# ----- swinref compare -----------------------------------------------------------------------
@pytest.fixture
def pair(tmp_path):
    _, a = golden(tmp_path, "a.safetensors", "--batch", "2")
    return a, read_golden(a)


def _write_variant(path, g, tensors):
    """A golden file with g's metadata and other tensors (what a buggy port might write)."""
    save_file(tensors, path, metadata={METADATA_KEY: json.dumps(g.metadata, sort_keys=True)})
    return path


def test_compare_self_passes(pair, capsys):
    a, _ = pair
    assert main(["compare", a, a]) == 0
    out = capsys.readouterr().out
    assert "atol=1e-10, rtol=0 (default for float64 vs float64)" in out, out
    assert "PASS: all 12 tensors within tolerance" in out, out
    assert "intermediates/layers.1.blocks.1" in out, f"table does not list every tensor:\n{out}"


def test_compare_perturbed_copy_fails_and_names_the_tensor(tmp_path, pair, capsys):
    a, g = pair
    tensors = dict(g.tensors)
    name = "intermediates/layers.1.blocks.0"
    t = tensors[name].copy()
    t[1, 2, 3, 4] += 1e-6
    tensors[name] = t
    b = _write_variant(str(tmp_path / "b.safetensors"), g, tensors)
    assert main(["compare", a, b]) == 1
    out = capsys.readouterr().out
    assert "FAIL: 1 of 12 tensors" in out and f"first in forward order: {name}" in out, out
    assert "(1, 2, 3, 4)" in out, f"worst index not shown:\n{out}"
    # the given tolerance is stated and applied
    assert main(["compare", a, b, "--atol", "1e-5"]) == 0
    out = capsys.readouterr().out
    assert "atol=1e-05, rtol=0 (given)" in out and "PASS" in out, out


def test_compare_missing_and_misshaped_are_failures(tmp_path, pair, capsys):
    a, g = pair
    tensors = {k: v for k, v in g.tensors.items() if k != "intermediates/norm"}
    tensors["intermediates/pre_logits"] = g.tensors["intermediates/pre_logits"][:, :8]
    meta = dict(g.metadata, intermediates=[n for n in g.metadata["intermediates"] if n != "norm"])
    b = _write_variant(str(tmp_path / "b.safetensors"), g._replace(metadata=meta), tensors)
    assert main(["compare", a, b]) == 1
    out = capsys.readouterr().out
    assert "FAIL: 2 of 12 tensors" in out, out
    assert "intermediates/norm (missing in B)" in out, out
    assert "intermediates/pre_logits (shape (2, 16) vs (2, 8))" in out, out


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\x00" * 3, "is not a safetensors file: it has 3 bytes"),
        (os.urandom(64), "is not a safetensors file"),
    ],
)
def test_compare_corrupt_file_exit_2(tmp_path, pair, capsys, content, message):
    a, _ = pair
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(content)
    assert main(["compare", a, str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("swinref compare: error: ") and message in err, f"expected {message!r} in {err!r}"
    assert err.count("\n") == 1, f"expected one line, got {err!r}"


def test_compare_truncated_and_foreign_exit_2(tmp_path, pair, capsys):
    a, _ = pair
    cut = tmp_path / "cut.safetensors"
    with open(a, "rb") as f:
        cut.write_bytes(f.read()[:-100])
    assert main(["compare", a, str(cut)]) == 2
    assert "cut.safetensors is truncated" in capsys.readouterr().err
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": np.zeros(2)}, str(foreign))
    assert main(["compare", str(foreign), a]) == 2
    assert "not a swinref golden file" in capsys.readouterr().err
    assert main(["compare", a, str(tmp_path / "missing.safetensors")]) == 2
    assert "golden file not found" in capsys.readouterr().err


def test_compare_negative_tolerance_exit_2(pair, capsys):
    a, _ = pair
    assert main(["compare", a, a, "--atol", "-1"]) == 2
    assert "atol must be a finite number >= 0" in capsys.readouterr().err


# ----- the installed entry point -------------------------------------------------------------
def test_python_m_swinref_golden_swin_t(tmp_path):
    """The default command end to end: swin_t, seeded init, float64, numpy (about 2 s)."""
    out = tmp_path / "golden_swin_t.safetensors"
    run = subprocess.run(
        [sys.executable, "-m", "swinref", "golden", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, f"exit {run.returncode}: {run.stderr}"
    g = read_golden(out)
    assert g.metadata["config"] == config.SwinConfig.named("swin_t").to_dict()
    shapes = (g.input.shape, g.logits.shape)
    assert shapes == ((1, 3, 224, 224), (1, 1000)), (
        f"expected input (1, 3, 224, 224) and logits (1, 1000), got {shapes}"
    )
    # patch_embed; 2+2+6+2 blocks; 4 stage outputs; 3 merges; norm; pre_logits
    assert len(g.intermediates) == 22, f"expected 22 intermediates besides logits, got {len(g.intermediates)}"
    assert np.all(np.isfinite(g.logits)), "non-finite logits"
    assert "top-5 classes of image 0" in run.stdout, run.stdout
