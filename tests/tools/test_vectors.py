"""Test vectors and verify: determinism, self-consistency, tolerances, and every failure kind."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import swinref
from swinref.cli import main
from swinref.tools import vectors as V


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    """The full suite (both dtypes), written once and shared read-only by the module."""
    out = tmp_path_factory.mktemp("vectors") / "suite"
    V.write_suite(out)
    return out


def _digests(folder) -> dict[str, str]:
    return {
        name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in sorted(os.listdir(folder))
    }


def _manifest(folder) -> dict:
    return json.loads((folder / V.MANIFEST).read_text())


def _outputs_only(src, dst, name, **replace):
    """Write a port's file for case ``name``: only outputs/ tensors, some replaced."""
    from safetensors.numpy import save_file

    tensors, _ = V.read_case_file(src / name)
    out = {k: v for k, v in tensors.items() if k.startswith("outputs/")}
    for k, v in replace.items():
        if v is None:
            del out[f"outputs/{k}"]
        else:
            out[f"outputs/{k}"] = v
    save_file(out, str(dst / name))


# ----- the suite -------------------------------------------------------------------------------
def test_two_runs_are_byte_identical(suite, tmp_path):
    again = tmp_path / "again"
    V.write_suite(again)
    first, second = _digests(suite), _digests(again)
    assert first == second, (
        f"expected identical files; differing: {sorted(k for k in first if first[k] != second.get(k))}"
    )


def test_manifest_lists_every_file_with_its_digest(suite):
    manifest = _manifest(suite)
    files = sorted(e["file"] for e in manifest["cases"])
    on_disk = sorted(n for n in os.listdir(suite) if n != V.MANIFEST)
    assert files == on_disk, f"expected the manifest to list the files on disk; got {files} vs {on_disk}"
    for e in manifest["cases"]:
        digest = hashlib.sha256((suite / e["file"]).read_bytes()).hexdigest()
        assert digest == e["sha256"], f"{e['file']}: manifest sha256 {e['sha256']}, file {digest}"
    assert manifest["suite_version"] == V.SUITE_VERSION and manifest["swinref_version"] == swinref.__version__


def test_suite_covers_components_dtypes_and_stays_small(suite):
    manifest = _manifest(suite)
    components = {e["component"] for e in manifest["cases"]}
    missing = set(V.COMPONENTS) - components
    assert not missing, f"expected every component in the suite, missing {missing}"
    for comp in components - {"relative_position_index", "video_relative_position_index"}:
        dtypes = {e["dtype"] for e in manifest["cases"] if e["component"] == comp}
        assert dtypes == {"float64", "float32"}, f"{comp}: expected both dtypes, got {dtypes}"
    size = sum(os.path.getsize(suite / n) for n in os.listdir(suite))
    assert size < 4_000_000, f"expected a suite of a few MB at most, got {size} bytes"


def test_case_metadata_describes_the_case(suite):
    tensors, meta = V.read_case_file(suite / "block_pad_pad_then_roll.float32.safetensors")
    assert meta["component"] == "block" and meta["dtype"] == "float32", f"got {meta}"
    assert meta["args"]["window"] == [4, 4] and meta["args"]["roll_first"] is False, f"got {meta['args']}"
    assert meta["tolerance"]["atol"] == 1e-5 and meta["tolerance"]["why"], f"got {meta['tolerance']}"
    names = meta["tensors"]
    assert names["outputs"] == ["y"] and "attn.qkv.weight" in names["params"], f"got {names}"
    assert all(v.dtype == np.float32 for v in tensors.values()), "expected float32 tensors only"


@pytest.mark.parametrize("dtype, atol", [("float64", 1e-10), ("float32", 1e-5)])
def test_tolerances_by_dtype_and_exactness(suite, dtype, atol):
    by_name = {e["name"]: e["tolerance"] for e in _manifest(suite)["cases"]}
    assert by_name[f"gelu.{dtype}"]["atol"] == atol, f"gelu {dtype}: got {by_name[f'gelu.{dtype}']}"
    for exact in ("window_partition_6x9_w3", "shift_mask_8x8_w4_s2", "video_shift_mask"):
        tol = by_name[f"{exact}.{dtype}"]
        assert (tol["atol"], tol["rtol"]) == (0.0, 0.0), f"{exact}: expected exact, got {tol}"
    assert by_name["relative_position_index_2x3"]["atol"] == 0.0


def test_every_file_is_self_consistent(suite):
    """Recomputing each case from the file's own inputs, params and args gives the stored bits."""
    for e in _manifest(suite)["cases"]:
        tensors, _ = V.read_case_file(suite / e["file"])
        got = V.recompute(suite / e["file"])
        stored = sorted(k.split("/", 1)[1] for k in tensors if k.startswith("outputs/"))
        assert sorted(got) == stored, f"{e['file']}: outputs {stored}, recomputed {sorted(got)}"
        for k, v in got.items():
            same = np.array_equal(v, tensors[f"outputs/{k}"])
            assert same, f"{e['file']}: outputs/{k} differs when recomputed from the file"


def test_vectors_agree_with_direct_computation(suite):
    """A few outputs written out by hand, independent of the suite's plumbing."""
    t, _ = V.read_case_file(suite / "relative_position_index_2x3.safetensors")
    idx = t["outputs/index"]
    h, w = np.divmod(np.arange(6), 3)  # (row, col) of the 6 tokens of a 2x3 window, row-major
    want = (h[:, None] - h[None, :] + 1) * 5 + (w[:, None] - w[None, :] + 2)
    assert np.array_equal(idx, want), f"expected\n{want}\ngot\n{idx}"

    t, _ = V.read_case_file(suite / "window_partition_4x9_w2x3.float64.safetensors")
    x, win = t["inputs/x"], t["outputs/windows"]  # x (1, 4, 9, 2), windows (6, 6, 2)
    assert np.array_equal(win[4], x[0, 2:4, 3:6].reshape(6, 2)), "window 4 should be rows 2:4, cols 3:6"

    t, _ = V.read_case_file(suite / "shift_mask_8x8_w4_s2.float64.safetensors")
    mask = t["outputs/mask"]  # (4, 16, 16)
    assert not mask[0].any(), "the top-left window holds one region: expected an all-zero mask"
    values = set(np.unique(mask[3]))
    assert values == {0.0, -100.0}, f"expected 0 and -100 in the last window, got {values}"

    t, _ = V.read_case_file(suite / "gelu.float64.safetensors")
    from math import erf, sqrt

    want = np.array([0.5 * v * (1 + erf(v / sqrt(2))) for v in t["inputs/x"].ravel()]).reshape(4, 64)
    # 1e-15 abs: math.erf and swinref's erfc form are both within a few ulp on |x| <= 10
    assert np.abs(t["outputs/y"] - want).max() < 1e-14, "gelu vectors differ from the erf formula"


def test_verify_suite_against_itself_passes(suite, tmp_path, capsys):
    report, junit = tmp_path / "r.json", tmp_path / "j.xml"
    rc = main(["verify", str(suite), str(suite), "--report-json", str(report), "--junit", str(junit)])
    out = capsys.readouterr().out
    assert rc == 0, f"expected exit 0 against itself, got {rc}:\n{out[-2000:]}"
    assert "PASS: all 96 cases" in out, f"expected the summary line, got {out[-500:]}"
    data = json.loads(report.read_text())
    assert data["passed"] and all(c["passed"] for c in data["cases"]), "expected every case to pass in JSON"
    assert data["summary"]["cases"] == len(_manifest(suite)["cases"])
    root = ET.parse(junit).getroot()
    suite_el = root.find("testsuite")
    assert suite_el.get("failures") == "0" and len(suite_el.findall("testcase")) == data["summary"]["cases"]
    assert not list(root.iter("failure")), "expected no failure elements in the JUnit XML"


def test_float32_port_passes_within_the_stated_tolerances(suite, tmp_path):
    """swinref evaluated in float32 is a float32 port: it must pass every float32 case."""
    from safetensors.numpy import save_file

    port = tmp_path / "port"
    port.mkdir()
    entries = [e for e in _manifest(suite)["cases"] if e["dtype"] == "float32"]
    for e in entries:
        got = V.recompute(suite / e["file"], compute_dtype="float32")
        save_file({f"outputs/{k}": v for k, v in got.items()}, str(port / e["file"]))
    results = V.verify(suite, port, select="*.float32")
    failed = [(r.name, r.failures()) for r in results if not r.passed]
    assert len(results) == len(entries), f"expected {len(entries)} float32 cases, got {len(results)}"
    assert not failed, f"expected every float32 case to pass, failed: {failed}"
    nonzero = [t.max_abs for r in results for t in r.tensors if t.max_abs]
    assert nonzero, "a float32 evaluation should differ from the rounded float64 result somewhere"


def make_broken_port(suite, port):
    """Copy the suite to ``port`` as a port with one mistake per case listed in BROKEN."""
    shutil.copytree(suite, port)
    os.remove(port / V.MANIFEST)  # a port writes outputs only, no manifest
    t = lambda name: V.read_case_file(suite / name)[0]  # noqa: E731
    mask = t("shift_mask_8x8_w4_s2.float64.safetensors")["outputs/mask"]
    _outputs_only(suite, port, "shift_mask_8x8_w4_s2.float64.safetensors", mask=-mask)
    block = t("block_shift2_b2.float32.safetensors")["outputs/y"]
    _outputs_only(suite, port, "block_shift2_b2.float32.safetensors", y=block + np.float32(1e-3))
    y = t("window_attention.float64.safetensors")["outputs/y"]
    _outputs_only(suite, port, "window_attention.float64.safetensors", y=y.astype(np.float32))
    os.remove(port / "gelu.float64.safetensors")
    data = (port / "layer_norm.float32.safetensors").read_bytes()
    (port / "layer_norm.float32.safetensors").write_bytes(data[: len(data) // 2])
    y = t("patch_merging_b2.float64.safetensors")["outputs/y"]
    _outputs_only(
        suite, port, "patch_merging_b2.float64.safetensors", y=y.reshape(y.shape[0], -1, y.shape[-1])
    )  # (B, h, w, C) flattened to (B, h*w, C)
    _outputs_only(suite, port, "model_v1_small_b2.float64.safetensors", logits=None)
    return port


@pytest.fixture
def broken_port(suite, tmp_path):
    return make_broken_port(suite, tmp_path / "broken")


BROKEN = {
    "shift_mask_8x8_w4_s2.float64": ("mismatch", "mask"),
    "block_shift2_b2.float32": ("mismatch", "y"),
    "window_attention.float64": ("wrong-dtype", "y"),
    "gelu.float64": ("missing-file", "gelu.float64.safetensors"),
    "layer_norm.float32": ("corrupt-file", "truncated"),
    "patch_merging_b2.float64": ("wrong-shape", "y"),
    "model_v1_small_b2.float64": ("missing-tensor", "logits"),
}


def test_verify_names_every_failure_of_a_broken_port(suite, broken_port, tmp_path, capsys):
    report, junit = tmp_path / "r.json", tmp_path / "j.xml"
    rc = main(["verify", str(suite), str(broken_port), "--report-json", str(report), "--junit", str(junit)])
    out = capsys.readouterr().out
    assert rc == 1, f"expected exit 1 for a broken port, got {rc}"
    assert f"FAIL: {len(BROKEN)} of 96 cases failed" in out, f"summary line: {out[-800:]}"
    cases = {c["name"]: c for c in json.loads(report.read_text())["cases"]}
    failed = {n for n, c in cases.items() if not c["passed"]}
    assert failed == set(BROKEN), f"expected failures {sorted(BROKEN)}, got {sorted(failed)}"
    for name, (kind, word) in BROKEN.items():
        kinds = [f["kind"] for f in cases[name]["failures"]]
        text = " ".join(f["message"] for f in cases[name]["failures"])
        assert kinds == [kind], f"{name}: expected failure kind {kind}, got {kinds}"
        assert word in text, f"{name}: expected the message to name {word!r}, got {text!r}"
    mask = next(t for t in cases["shift_mask_8x8_w4_s2.float64"]["tensors"] if t["name"] == "mask")
    assert mask["max_abs"] == 200.0, f"a flipped -100 mask differs by 200, got {mask['max_abs']}"
    block = cases["block_shift2_b2.float32"]["tensors"][0]
    assert block["max_ulp"] > 1000 and 9e-4 < block["max_abs"] < 1.1e-3, f"got {block}"

    testcases = {tc.get("name"): tc for tc in ET.parse(junit).getroot().iter("testcase")}
    assert len(testcases) == 96, f"expected one testcase per case, got {len(testcases)}"
    for name, (kind, word) in BROKEN.items():
        failure = testcases[name].find("failure")
        assert failure is not None and failure.get("type") == kind and word in failure.get("message"), (
            f"{name}: JUnit failure should be {kind} naming {word!r}, "
            f"got {None if failure is None else failure.attrib}"
        )
    assert sum(tc.find("failure") is not None for tc in testcases.values()) == len(BROKEN)


def test_damaged_expected_suite(suite, tmp_path, capsys):
    bad = tmp_path / "bad"
    shutil.copytree(suite, bad)
    path = bad / "gelu.float32.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 1  # one bit of one expected value
    path.write_bytes(bytes(data))
    rc = main(["verify", str(bad), str(suite), "--select", "gelu*"])
    out = capsys.readouterr().out
    assert rc == 1 and "expected-corrupt" in out, f"expected a digest failure, got rc {rc}:\n{out}"

    (bad / V.MANIFEST).write_text("{not json")
    assert main(["verify", str(bad), str(suite)]) == 2
    assert "manifest" in capsys.readouterr().err
    os.remove(bad / V.MANIFEST)
    assert main(["verify", str(bad), str(suite)]) == 2
    assert "manifest.json not found" in capsys.readouterr().err


def test_verify_refuses_a_missing_actual_directory(suite, tmp_path, capsys):
    assert main(["verify", str(suite), str(tmp_path / "nope")]) == 2
    assert "actual directory not found" in capsys.readouterr().err


@pytest.mark.parametrize(
    "a, b, ulps",
    [
        (1.0, np.nextafter(np.float32(1.0), np.float32(2.0)), 1),
        (1.0, 2.0, 2**23),  # one binade of float32
        (0.0, -0.0, 0),
        (1.4e-45, -1.4e-45, 2),  # smallest subnormals either side of zero
        (-1.0, 1.0, 2 * 0x3F800000),
        (3.4028235e38, np.inf, 1),
    ],
)
def test_ulp_distance_on_known_pairs(a, b, ulps):
    got = V.ulp_distance(np.array([a], dtype=np.float32), np.array([b], dtype=np.float32))
    assert int(got[0]) == ulps, f"ulp({a}, {b}): expected {ulps}, got {int(got[0])}"


def test_vectors_command_writes_one_dtype(tmp_path, capsys):
    out = tmp_path / "f32"
    assert main(["vectors", "--out", str(out), "--dtype", "float32"]) == 0
    text = capsys.readouterr().out
    dtypes = {e["dtype"] for e in _manifest(out)["cases"]}
    assert dtypes == {"float32", "int64"}, f"expected float32 cases and the integer-only ones, got {dtypes}"
    assert "wrote" in text and str(out) in text, f"expected a summary of what was written, got {text!r}"


def test_manifest_with_a_path_outside_the_suite_is_refused(suite, tmp_path, capsys):
    bad = tmp_path / "bad"
    shutil.copytree(suite, bad)
    manifest = _manifest(bad)
    manifest["cases"][0]["file"] = "../elsewhere.safetensors"
    (bad / V.MANIFEST).write_text(json.dumps(manifest))
    assert main(["verify", str(bad), str(suite)]) == 2
    assert "plain names" in capsys.readouterr().err
