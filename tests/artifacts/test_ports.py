"""A port's plain outputs against a golden file: subsets, --require, shape adapters, calibrated
float32 bounds, bad files; seeded golden weights and dtype-free digests; --save-input/--save-weights."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from safetensors.numpy import save_file

import swinref
from swinref.artifacts.ports import (
    CALIBRATION_K,
    FLOOR_ULPS,
    adapt_shape,
    calibrated_bounds,
    compare_port,
    read_port_outputs,
)
from swinref.cli import main

V1 = dict(img_size=32, embed_dim=8, depths=[2, 2], num_heads=[1, 2], window_size=4, num_classes=10)
V2 = dict(V1, family="v2")
VIDEO = dict(
    family="video", embed_dim=8, depths=[2, 1], num_heads=[1, 2], window_size=[2, 4, 4], num_classes=5
)
VIDEO_SIZE = "4x32x32"
FAMILIES = {"v1": (V1, None), "v2": (V2, None), "video": (VIDEO, VIDEO_SIZE)}


def _golden(tmp_path, spec=V1, size=None, *extra, name="g.safetensors"):
    out = str(tmp_path / name)
    argv = ["golden", "--model", json.dumps(spec), "--out", out, *extra]
    if size:
        argv += ["--input-size", size]
    assert main(argv) == 0
    return out


def _swinref_f32(golden_path):
    """What a faithful float32 port computes: swinref in float32 on the golden input and weights."""
    g = swinref.read_golden(golden_path)
    cfg = g.config
    params = swinref.init_params(cfg, seed=0, scheme="random", dtype="float32")
    logits, inter = swinref.forward(params, g.input.astype(np.float32), cfg, return_intermediates=True)
    return {n: np.asarray(v) for n, v in inter.items()}


@pytest.fixture(scope="module")
def v1_golden(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ports")
    return _golden(tmp), _swinref_f32(_golden(tmp, name="g2.safetensors"))


def test_subset_passes_and_lists_the_rest(tmp_path, v1_golden, capsys):
    golden, ours = v1_golden
    port = tmp_path / "port.npz"
    np.savez(port, logits=ours["logits"], **{"layers.1.blocks.0": ours["layers.1.blocks.0"]})
    assert main(["compare", golden, str(port)]) == 0
    out = capsys.readouterr().out
    assert "not provided" in out and "calibrated" in out and "PASS: 2 tensors" in out, out
    r = compare_port(golden, str(port))
    assert [x.name for x in r.compared] == ["layers.1.blocks.0", "logits"]
    assert all(x.passed for x in r.compared) and r.passed
    assert len(r.rows) - len(r.compared) == len(swinref.read_golden(golden).metadata["intermediates"]) - 1


def test_require_absent_and_beyond(tmp_path, v1_golden, capsys):
    golden, ours = v1_golden
    port = tmp_path / "port.safetensors"
    save_file({"layers.0": ours["layers.0"]}, str(port))
    assert main(["compare", golden, str(port)]) == 1, "logits are required by default"
    assert "logits (not provided (required))" in capsys.readouterr().out
    assert main(["compare", golden, str(port), "--require", "layers.0"]) == 0
    assert main(["compare", golden, str(port), "--require", "layers.0,layers.1"]) == 1
    # a tensor moved by 10x its calibrated bound fails, and is named as the first diverging layer
    bounds = calibrated_bounds(
        swinref.read_golden(golden),
        swinref.init_params(swinref.read_golden(golden).config, seed=0, scheme="random"),
    )
    bad = ours["layers.0"].copy()
    bad[0, 1, 2, 3] += 10 * bounds["layers.0"]
    save_file({"layers.0": bad, "logits": ours["logits"]}, str(port))
    assert main(["compare", golden, str(port)]) == 1
    assert "first diverging layer: layers.0" in capsys.readouterr().out


def test_calibrated_bound_is_the_stated_rule(v1_golden):
    golden_path, ours = v1_golden
    g = swinref.read_golden(golden_path)
    params = swinref.init_params(g.config, seed=0, scheme="random")
    bounds = calibrated_bounds(g, params)
    eps = float(np.finfo(np.float32).eps)
    for name in ("logits", "layers.1.blocks.0", "patch_embed"):
        ref = g.logits if name == "logits" else g.intermediates[name]
        err = np.abs(ours[name].astype(np.float64) - ref).max()
        want = CALIBRATION_K * err + FLOOR_ULPS * eps * np.abs(ref).max()
        assert bounds[name] == pytest.approx(want, rel=1e-12), name
        assert bounds[name] < 1e-5, f"{name}: a calibrated bound of {bounds[name]:.2e} is not tight"


def test_float64_port_is_held_to_1e_10(tmp_path, v1_golden):
    golden, _ = v1_golden
    g = swinref.read_golden(golden)
    logits = g.logits.copy()
    assert compare_port(g, {"logits": logits}).passed
    logits[0, 0] += 1e-9
    r = compare_port(g, {"logits": logits})
    assert not r.passed and r.rows[-1].bound == 1e-10
    assert compare_port(g, {"logits": logits}, atol=1e-8).passed, "--atol overrides"


@pytest.mark.parametrize("family", ["v1", "v2", "video"])
def test_adapters_tokens_and_channels_first(tmp_path, family):
    spec, size = FAMILIES[family]
    golden = _golden(tmp_path, spec, size)
    g = swinref.read_golden(golden)
    name = next(n for n in g.metadata["intermediates"] if "layers.1.blocks" in n)  # C != grid side
    grid = g.intermediates[name]
    b, c = grid.shape[0], grid.shape[-1]
    tokens = grid.reshape(b, -1, c)
    first = np.moveaxis(grid, -1, 1).copy()
    for form, value in (("tokens (B, L, C)", tokens), ("NCHW" if grid.ndim == 4 else "NCTHW", first)):
        r = compare_port(g, {name: value, "logits": g.logits})
        row = next(x for x in r.rows if x.name == name)
        assert row.adapter == form and row.passed and row.max_abs == 0, (form, row)
    with pytest.raises(ValueError, match=r"has shape .* expected .*tokens.*channels first"):
        compare_port(g, {name: tokens[:, 1:], "logits": g.logits})


def test_adapt_shape_refuses_logits_in_other_shapes():
    with pytest.raises(ValueError, match=r"tensor 'logits' has shape \(10, 1\); expected \(1, 10\)"):
        adapt_shape("logits", np.zeros((10, 1)), (1, 10))


def test_npy_directory_and_intermediates_prefix(tmp_path, v1_golden):
    golden, ours = v1_golden
    d = tmp_path / "outs"
    d.mkdir()
    np.save(d / "logits.npy", ours["logits"])
    np.save(d / "norm.npy", ours["norm"])
    assert set(read_port_outputs(str(d))) == {"logits", "norm"}
    assert compare_port(golden, str(d)).passed
    save_file({"intermediates/norm": ours["norm"], "logits": ours["logits"]}, str(tmp_path / "p.safetensors"))
    assert set(read_port_outputs(str(tmp_path / "p.safetensors"))) == {"norm", "logits"}


def _corrupt_cases(tmp_path, ours):
    trunc = tmp_path / "trunc.safetensors"
    save_file({"logits": ours["logits"]}, str(trunc))
    trunc.write_bytes(trunc.read_bytes()[:-8])
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"PK\x03\x04 not a zip at all")
    empty = tmp_path / "empty"
    empty.mkdir()
    ints = tmp_path / "ints.npz"
    np.savez(ints, logits=np.zeros((1, 10), dtype=np.int64))
    pickled = tmp_path / "obj"
    pickled.mkdir()
    np.save(pickled / "logits.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    unknown = tmp_path / "unknown.npz"
    np.savez(unknown, logits=ours["logits"], **{"layers.9": ours["layers.0"]})
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, logits=ours["logits"], **{"layers.0": ours["layers.0"][:, :3]})
    other = tmp_path / "port.txt"
    other.write_text("logits")
    return {
        "truncated safetensors": (trunc, "truncated"),
        "not a zip": (junk, "cannot read port outputs"),
        "empty directory": (empty, "no NAME.npy"),
        "integer tensor": (ints, "expected floats"),
        "object array (pickle)": (pickled, "cannot read port outputs"),
        "unknown name": (unknown, "not in the golden file"),
        "wrong shape": (wrong, "has shape"),
        "other extension": (other, "expected a .safetensors file"),
        "missing": (tmp_path / "nope.npz", "nope.npz"),
    }


def test_bad_port_files_exit_2(tmp_path, v1_golden, capsys):
    golden, ours = v1_golden
    for case, (path, message) in _corrupt_cases(tmp_path, ours).items():
        rc = main(["compare", golden, str(path)])
        err = capsys.readouterr().err
        assert rc == 2, f"{case}: exit {rc}, expected 2; {err}"
        assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, (case, err)


# ----- golden: seeded weights, digests, files for a port --------------------------------------
def test_default_weights_are_all_non_trivial_and_dropping_biases_fails(tmp_path, v1_golden):
    golden, ours = v1_golden
    g = swinref.read_golden(golden)
    assert g.metadata["weights_source"] == "seeded init seed=0 scheme=random"
    params = swinref.init_params(g.config, seed=0, scheme="random")
    for name, value in params.items():
        assert np.unique(value).size > 1, f"{name} is constant: a port dropping it would match"
    assert swinref.params_digest(params) == g.metadata["weights_digest"]
    for drop in ("bias", "norm"):  # a float32 port without biases, or without LayerNorm affine
        broken = {
            n: (
                np.zeros_like(v)
                if n.endswith(".bias")
                else np.ones_like(v)
                if ".norm" in n or n.startswith("norm")
                else v
            )
            if (drop == "bias" and n.endswith(".bias"))
            or (drop == "norm" and (".norm" in n or n.startswith("norm")))
            else v
            for n, v in params.items()
        }
        logits = swinref.forward(
            {n: v.astype(np.float32) for n, v in broken.items()}, g.input.astype(np.float32), g.config
        )
        assert not compare_port(g, {"logits": logits}).passed, f"dropping every {drop} passed"


def test_timm_init_stays_available(tmp_path):
    g = swinref.read_golden(_golden(tmp_path, V1, None, "--init", "timm"))
    assert g.metadata["weights_source"] == "seeded init seed=0 scheme=timm"
    params = swinref.init_params(g.config, seed=0, scheme="timm")
    assert swinref.params_digest(params) == g.metadata["weights_digest"]
    assert not any(params[n].any() for n in params if n.endswith(".bias")), "timm init: zero biases"


def test_digest_is_independent_of_storage_dtype():
    cfg = swinref.SwinConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in V1.items()})
    p32 = swinref.init_params(cfg, seed=3, dtype="float32", scheme="random")
    p64 = {n: v.astype(np.float64) for n, v in p32.items()}
    assert swinref.params_digest(p32) == swinref.params_digest(p64)
    p64[next(iter(p64))][0] += 1e-12
    assert swinref.params_digest(p32) != swinref.params_digest(p64), "a float64 change is not seen"


LAYOUT_CASES = [("v1", lay) for lay in ("timm", "official", "torchvision", "hf")]
LAYOUT_CASES += [("v2", lay) for lay in ("timm", "official", "torchvision", "hf")] + [("video", "official")]


@pytest.mark.parametrize("family, layout", LAYOUT_CASES, ids=[f"{f}-{lay}" for f, lay in LAYOUT_CASES])
def test_save_input_and_weights_in_a_layout(tmp_path, family, layout):
    spec, size = FAMILIES[family]
    x_path, w_path = str(tmp_path / "x.npy"), str(tmp_path / f"w_{layout}.safetensors")
    golden = _golden(
        tmp_path, spec, size, "--save-input", x_path, "--save-weights", w_path, "--layout", layout
    )
    g = swinref.read_golden(golden)
    assert np.array_equal(np.load(x_path, allow_pickle=False), g.input)
    params = swinref.load_params(w_path, g.config, source=layout)
    assert swinref.params_digest(params) == g.metadata["weights_digest"], "saved weights differ"
    # the saved weights as a --weights file calibrate a comparison like the seeded ones
    r = compare_port(golden, {"logits": g.logits.astype(np.float32)}, weights=w_path, source=layout)
    assert "calibrated" in r.bound_rule


def test_save_weights_unknown_layout_lists_the_family_layouts(tmp_path, capsys):
    out = str(tmp_path / "g.safetensors")
    w = str(tmp_path / "w.safetensors")
    argv = ["golden", "--model", json.dumps(VIDEO), "--input-size", VIDEO_SIZE, "--out", out]
    assert main([*argv, "--save-weights", w, "--layout", "bogus"]) == 2
    err = capsys.readouterr().err
    assert "--layout 'bogus' is not a layout of Video Swin" in err and "official" in err, err
    assert not os.path.exists(out) and not os.path.exists(w), "nothing is written after a usage error"
    assert main([*argv, "--layout", "official"]) == 2
    assert "give --save-weights too" in capsys.readouterr().err
    assert main([*argv, "--save-input", str(tmp_path / "x.txt")]) == 2
    assert "must name a .npy file" in capsys.readouterr().err


def test_square_grid_as_wide_as_channels_says_it_is_taken_channels_last(v1_golden):
    golden, ours = v1_golden
    r = compare_port(golden, {"layers.0.blocks.0": ours["layers.0.blocks.0"], "logits": ours["logits"]})
    row = r.rows[1]
    assert row.shape == (1, 8, 8, 8) and "channels last" in row.adapter and row.passed
