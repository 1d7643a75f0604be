"""Golden files: exact round trip, metadata, determinism, comparison, and refusal of bad files."""

from __future__ import annotations

import json
import pickle
import struct
import warnings

import numpy as np
import pytest
from hypothesis import Phase, find, given, settings
from safetensors.numpy import save_file
from strategies import golden_tensors, perturbations

import swinref
from swinref import GoldenFileError, SwinConfig, read_golden, write_golden
from swinref.artifacts.golden import (
    FLOAT32_ATOL,
    FLOAT64_ATOL,
    REQUIRED_FIELDS,
    Golden,
    compare_arrays,
    compare_golden,
    default_tolerance,
    golden_input,
)

# Two stages on an 8x8 token grid with window 4: shifted blocks and masks in stage 0, the window
# clamp in stage 1 (4x4 grid = window), one patch merging; a forward takes milliseconds.
TINY = SwinConfig(
    img_size=32, patch_size=4, embed_dim=8, depths=(2, 2), num_heads=(1, 2), window_size=4, num_classes=10
)


# strategy self-checks only need one example each: no shrinking, no example database
QUICK_FIND = settings(phases=[Phase.generate], database=None, max_examples=1000)


def make_golden(path, *, dtype="float64", seed=0, input_seed=0, batch=2, intermediates=True, cfg=TINY):
    """Run the tiny model and write a golden file; returns what went in."""
    params = swinref.init_params(cfg, seed=seed, dtype=dtype)
    x = golden_input(cfg, batch=batch, seed=input_seed, dtype=dtype)
    logits, inter = swinref.forward(params, x, cfg, return_intermediates=True)
    meta = write_golden(
        path,
        cfg=cfg,
        params=params,
        x=x,
        logits=logits,
        intermediates=inter if intermediates else None,
        metadata=dict(
            model="tiny", backend="numpy", weights_source=f"seeded init seed={seed}", input_seed=input_seed
        ),
    )
    return dict(params=params, x=x, logits=logits, inter=inter, meta=meta)


@pytest.fixture(scope="module")
def golden64(tmp_path_factory):
    """A float64 golden file of the tiny model (batch 2), shared read-only by the module."""
    path = tmp_path_factory.mktemp("golden") / "a.safetensors"
    made = make_golden(path)
    return path, made


# ----- round trip ----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_round_trip_is_exact(tmp_path, dtype):
    path = tmp_path / "g.safetensors"
    made = make_golden(path, dtype=dtype)
    g = read_golden(path)
    expected = {"input": made["x"], "logits": made["logits"]}
    expected.update({f"intermediates/{n}": v for n, v in made["inter"].items() if n != "logits"})
    order = ["input"] + [k for k in expected if k.startswith("intermediates/")] + ["logits"]
    assert list(g.tensors) == order, (
        f"tensor order: expected input, intermediates in forward order, logits; got {list(g.tensors)}"
    )
    for name, want in expected.items():
        got = g.tensors[name]
        assert got.dtype == want.dtype and got.shape == want.shape, (
            f"{name}: expected {want.dtype} {want.shape}, got {got.dtype} {got.shape}"
        )
        assert got.tobytes() == np.ascontiguousarray(want).tobytes(), f"{name}: bytes differ after round trip"
    assert list(g.intermediates) == [n for n in made["inter"] if n != "logits"], (
        f"intermediate names: expected forward order, got {list(g.intermediates)}"
    )


def test_metadata_fields(golden64):
    path, made = golden64
    meta = read_golden(path).metadata
    assert set(REQUIRED_FIELDS) <= set(meta), f"missing fields {set(REQUIRED_FIELDS) - set(meta)}"
    expected = {
        "format": "swinref-golden",
        "format_version": 1,
        "config": TINY.to_dict(),
        "model": "tiny",
        "dtype": "float64",
        "backend": "numpy",
        "swinref_version": swinref.__version__,
        "weights_digest": swinref.params_digest(made["params"]),
        "weights_source": "seeded init seed=0",
        "input_seed": 0,
        "batch": 2,
    }
    for field, want in expected.items():
        assert meta[field] == want, f"metadata {field}: expected {want!r}, got {meta[field]!r}"
    assert SwinConfig.from_dict(meta["config"]) == TINY, "stored config does not rebuild the config"


def test_input_recipe_in_metadata_regenerates_the_input(golden64):
    # the recipe is what another language follows; evaluate it literally against the stored input
    path, _ = golden64
    g = read_golden(path)
    recipe = g.metadata["input_recipe"]
    assert recipe.startswith("numpy.random.default_rng(0).standard_normal((2, 3, 32, 32))"), recipe
    regenerated = eval(recipe.split(" in float64")[0], {"numpy": np})  # noqa: S307 - our own string
    assert np.array_equal(regenerated, g.input), "the recipe in the metadata does not give the stored input"


def test_golden_input_is_documented_draw():
    x = golden_input(TINY, batch=3, seed=11, dtype="float32")
    want = np.random.default_rng(11).standard_normal((3, 3, 32, 32)).astype(np.float32)
    assert x.dtype == np.float32 and np.array_equal(x, want), "golden_input differs from the documented draw"


def test_no_intermediates_stores_input_and_logits_only(tmp_path):
    path = tmp_path / "g.safetensors"
    make_golden(path, intermediates=False)
    g = read_golden(path)
    assert list(g.tensors) == ["input", "logits"], f"expected only input and logits, got {list(g.tensors)}"
    assert g.metadata["intermediates"] == [], (
        f"expected no intermediate names, got {g.metadata['intermediates']}"
    )


def test_same_arguments_write_identical_bytes(tmp_path):
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    make_golden(a)
    make_golden(b)
    assert a.read_bytes() == b.read_bytes(), "two writes of the same golden file differ (timestamp? order?)"


@given(arrays=golden_tensors())
def test_round_trip_keeps_every_bit(tmp_path_factory, arrays):
    # NaN payloads, infinities, -0.0 and subnormals must survive: compare the raw bytes
    x, logits = arrays
    path = tmp_path_factory.mktemp("rt") / "g.safetensors"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        write_golden(path, cfg=TINY, params={}, x=x, logits=logits)
    g = read_golden(path)
    bad = [n for n, v in (("input", x), ("logits", logits)) if not np.isfinite(v).all()]
    said = " ".join(g.metadata.get("numerics_warnings", []))
    assert all(n in said for n in bad) and (not bad) == ("NaN or Inf" not in said), (
        f"non-finite tensors {bad} must be named in numerics_warnings, got {said!r}"
    )
    assert bool(bad) <= any(issubclass(w.category, RuntimeWarning) for w in caught)
    assert g.input.tobytes() == x.tobytes(), f"input bytes changed: {x!r} -> {g.input!r}"
    assert g.logits.tobytes() == logits.tobytes(), f"logits bytes changed: {logits!r} -> {g.logits!r}"
    assert g.metadata["input_seed"] is None and "input_recipe" not in g.metadata, (
        f"an input given by the caller must carry no seed; got {g.metadata.get('input_seed')!r}"
    )


def test_write_refuses_bad_arguments(tmp_path):
    x = golden_input(TINY)
    with pytest.raises(ValueError, match=r"unknown golden metadata fields \['when'\]; expected a subset"):
        write_golden(
            tmp_path / "g.safetensors",
            cfg=TINY,
            params={},
            x=x,
            logits=np.zeros((1, 10)),
            metadata={"when": "now"},
        )
    with pytest.raises(TypeError, match="input dtype must be float32 or float64, got int64"):
        write_golden(
            tmp_path / "g.safetensors", cfg=TINY, params={}, x=x.astype(np.int64), logits=np.zeros((1, 10))
        )
    with pytest.raises(TypeError, match="'logits' is float32 but the input is float64"):
        write_golden(
            tmp_path / "g.safetensors", cfg=TINY, params={}, x=x, logits=np.zeros((1, 10), dtype=np.float32)
        )


def test_golden_tensor_strategy_reaches_special_values():
    # the round-trip property is only as good as the values it sees
    def has(kind):
        return lambda xs: any(kind(a).any() for a in xs)

    for what, kind in (
        ("NaN", np.isnan),
        ("infinity", np.isinf),
        ("-0.0", lambda a: (a == 0) & np.signbit(a)),
        ("a float32 array", lambda a: np.array(a.dtype == np.float32)),
        ("a float64 array", lambda a: np.array(a.dtype == np.float64)),
    ):
        # find raises NoSuchExample when no draw satisfies the condition
        found = find(golden_tensors(), has(kind), settings=QUICK_FIND)
        assert any(kind(a).any() for a in found), f"golden_tensors never draws {what}"


def test_perturbation_strategy_reaches_both_sides_of_the_tolerance():
    inside = find(perturbations(), lambda p: 0 < abs(p.delta) <= p.atol, settings=QUICK_FIND)
    outside = find(perturbations(), lambda p: p.atol < abs(p.delta) < 1.01 * p.atol, settings=QUICK_FIND)
    assert abs(inside.delta) <= inside.atol, f"expected a delta within atol, got {inside}"
    assert abs(outside.delta) > outside.atol, f"expected a delta just beyond atol, got {outside}"


# ----- compare -------------------------------------------------------------------------------
def test_compare_with_itself_passes(golden64):
    path, _ = golden64
    result = compare_golden(path, path)
    assert result.passed, f"self-comparison failed: {result.failures}"
    assert (result.atol, result.rtol) == (FLOAT64_ATOL, 0.0), (
        f"default tolerance: expected ({FLOAT64_ATOL}, 0.0), got ({result.atol}, {result.rtol})"
    )
    assert all(r.max_abs == 0.0 for r in result.rows), "self-comparison found a nonzero difference"
    assert len(result.rows) == len(read_golden(path).tensors), "not every tensor was compared"


@given(p=perturbations())
def test_perturbation_fails_exactly_beyond_tolerance(golden64, p):
    path, _ = golden64
    a = read_golden(path)
    names = list(a.tensors)
    name = names[p.tensor % len(names)]
    target = a.tensors[name].copy()
    index = np.unravel_index(p.flat_index % target.size, target.shape)
    target[index] += p.delta
    b = Golden({**a.tensors, name: target}, a.metadata)
    result = compare_golden(a, b, atol=p.atol)
    realised = abs(float(target[index]) - float(a.tensors[name][index]))  # delta after rounding
    rows = {r.name: r for r in result.rows}
    row = rows[name]
    assert row.passed == (realised <= p.atol), (
        f"{name}: |diff| {realised:.3e} vs atol {p.atol:.1e}: "
        f"expected passed={realised <= p.atol}, got {row.passed}"
    )
    assert row.max_abs == realised, f"{name}: max abs expected {realised!r}, got {row.max_abs!r}"
    if realised > 0:
        assert row.worst_index == tuple(int(i) for i in index), (
            f"{name}: worst index expected {index}, got {row.worst_index}"
        )
    others = [r for r in result.rows if r.name != name]
    assert all(r.passed and r.max_abs == 0 for r in others), "an untouched tensor reported a difference"
    assert result.passed == row.passed, "overall verdict disagrees with the one perturbed tensor"


def test_missing_tensor_and_shape_mismatch_are_failures(tmp_path, golden64):
    path, _ = golden64
    without = tmp_path / "without.safetensors"
    make_golden(without, intermediates=False)
    result = compare_golden(path, without)
    missing = [r for r in result.rows if r.problem == "missing in B"]
    n_inter = len(read_golden(path).metadata["intermediates"])
    assert len(missing) == n_inter and all(r.name.startswith("intermediates/") for r in missing), (
        f"expected {n_inter} intermediates missing in B, got {[r.name for r in missing]}"
    )
    assert not result.passed, "missing tensors must fail the comparison"
    passing = {r.name for r in result.rows if r.passed}
    assert passing == {"input", "logits"}, f"expected input and logits to match, got {passing}"
    reverse = compare_golden(without, path)
    problems = {r.problem for r in reverse.failures}
    assert problems == {"missing in A"}, f"expected only 'missing in A', got {problems}"

    wider = tmp_path / "wider.safetensors"
    make_golden(wider, cfg=SwinConfig(**{**TINY.to_dict(), "embed_dim": 16}))
    result = compare_golden(path, wider)
    row = next(r for r in result.rows if r.name == "intermediates/patch_embed")
    assert not row.passed and row.problem == "shape (2, 8, 8, 8) vs (2, 8, 8, 16)", f"got {row}"
    assert any(n.startswith("configs differ") and "embed_dim" in n for n in result.notes), result.notes


def test_default_tolerance_by_dtype():
    assert default_tolerance("float64", "float64") == (1e-10, 0.0)
    assert default_tolerance("float64", "float32") == (1e-4, 0.0)
    assert default_tolerance("float32", "float32") == (1e-4, 0.0)


def test_float32_run_agrees_with_float64_under_default_tolerance(tmp_path):
    # same seeds: the float32 weights and input are the float64 ones rounded; the forward then
    # differs by float32 rounding only, far below the 1e-4 default on activations of order 1
    a, b = tmp_path / "a64.safetensors", tmp_path / "b32.safetensors"
    make_golden(a, dtype="float64")
    make_golden(b, dtype="float32")
    result = compare_golden(a, b)
    assert result.atol == FLOAT32_ATOL, f"expected the float32 default {FLOAT32_ATOL}, got {result.atol}"
    assert result.passed, f"float32 beyond {FLOAT32_ATOL}: {[(r.name, r.max_abs) for r in result.failures]}"
    assert max(r.max_abs for r in result.rows) > 0, "float32 and float64 runs should not be identical"


@pytest.mark.parametrize(
    "a, b, passed, max_abs",
    [
        ([np.nan, 1.0], [np.nan, 1.0], True, 0.0),
        ([np.inf, -np.inf], [np.inf, -np.inf], True, 0.0),
        ([np.nan], [0.0], False, np.inf),
        ([1.0], [np.inf], False, np.inf),
        ([0.0], [-0.0], True, 0.0),
    ],
)
def test_special_values(a, b, passed, max_abs):
    row = compare_arrays("t", np.array(a), np.array(b), atol=1e-10, rtol=0.0)
    assert (row.passed, row.max_abs) == (passed, max_abs), (
        f"{a} vs {b}: expected {(passed, max_abs)}, got {row}"
    )


def test_difference_equal_to_tolerance_passes():
    # 1 + 2**-20 is exact in float64, so the difference is exactly the tolerance: <= passes
    a, b = np.array([1.0]), np.array([1.0 + 2.0**-20])
    assert compare_arrays("t", a, b, atol=2.0**-20, rtol=0.0).passed, "|A - B| == atol must pass"
    assert not compare_arrays("t", a, b, atol=np.nextafter(2.0**-20, 0), rtol=0.0).passed, (
        "|A - B| one ulp above atol must fail"
    )


def test_relative_tolerance_scales_with_reference():
    a, b = np.array([1000.0, 1e-3]), np.array([1000.001, 1e-3])
    assert not compare_arrays("t", a, b, atol=0.0, rtol=0.0).passed, "1e-3 difference passed a zero tolerance"
    row = compare_arrays("t", a, b, atol=0.0, rtol=2e-6)
    assert row.passed and row.max_rel == pytest.approx(1e-6, rel=1e-6), f"got {row}"


def test_compare_refuses_negative_tolerance(golden64):
    path, _ = golden64
    with pytest.raises(ValueError, match="atol must be a finite number >= 0, got -1"):
        compare_golden(path, path, atol=-1)


# ----- files that are not golden files -------------------------------------------------------
def _rewrite_metadata(src, dst, meta_value):
    g = read_golden(src)
    save_file(dict(g.tensors), str(dst), metadata={"swinref": meta_value})


def test_truncated_file(tmp_path, golden64):
    path, _ = golden64
    data = path.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(GoldenFileError, match=r"cut.safetensors is truncated: its tensors need \d+ bytes"):
        read_golden(cut)
    cut.write_bytes(data[:100])  # inside the header
    with pytest.raises(GoldenFileError, match="not a safetensors file or is truncated: its header length"):
        read_golden(cut)
    cut.write_bytes(data[:5])
    with pytest.raises(GoldenFileError, match="has 5 bytes, fewer than the 8-byte header length"):
        read_golden(cut)


def test_random_bytes_and_empty_file(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(GoldenFileError, match="junk.safetensors is not a safetensors file"):
        read_golden(junk)
    # a plausible header length followed by garbage
    junk.write_bytes(struct.pack("<Q", 16) + b"\xff" * 16 + b"rest")
    with pytest.raises(GoldenFileError, match="is not a safetensors file: its header is not JSON"):
        read_golden(junk)
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    with pytest.raises(GoldenFileError, match="has 0 bytes"):
        read_golden(empty)


def test_pickle_file_is_never_unpickled(tmp_path):
    marker = tmp_path / "unpickled"

    class Trap:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "trap.safetensors"
    path.write_bytes(pickle.dumps(Trap()))
    with pytest.raises(GoldenFileError, match="not a safetensors file"):
        read_golden(path)
    assert not marker.exists(), "reading a golden file executed a pickle"


def test_foreign_safetensors_file(tmp_path):
    foreign = tmp_path / "foreign.safetensors"
    save_file({"weight": np.zeros(3)}, str(foreign), metadata={"format": "pt"})
    with pytest.raises(
        GoldenFileError,
        match=r"safetensors file but not a swinref golden file: it has no "
        r"'swinref' metadata entry \(metadata keys: \['format'\]\)",
    ):
        read_golden(foreign)
    save_file({"weight": np.zeros(3)}, str(foreign))
    with pytest.raises(GoldenFileError, match="metadata keys: none"):
        read_golden(foreign)


def test_bad_metadata(tmp_path, golden64):
    path, _ = golden64
    meta = read_golden(path).metadata
    bad = tmp_path / "bad.safetensors"
    cases = [
        ("{not json", "the 'swinref' metadata is not valid JSON"),
        ("[1, 2]", "the 'swinref' metadata must be a JSON object"),
        (json.dumps({**meta, "format": "other"}), "metadata format is 'other', expected 'swinref-golden'"),
        (json.dumps({**meta, "format_version": 99}), "golden format version 99 is not supported"),
        (
            json.dumps({k: v for k, v in meta.items() if k not in ("dtype", "batch")}),
            r"lacks required fields \['dtype', 'batch'\]; expected all of",
        ),
        (
            json.dumps({**meta, "config": {**meta["config"], "window_size": 0}}),
            "invalid model config: invalid SwinConfig:\n  - window_size must be >= 1",
        ),
        (
            json.dumps({**meta, "intermediates": meta["intermediates"] + ["layers.9"]}),
            r"tensors named in the metadata are missing: \['intermediates/layers.9'\]",
        ),
        (json.dumps({**meta, "dtype": "float32"}), "input is float64 but the metadata says float32"),
    ]
    for value, message in cases:
        _rewrite_metadata(path, bad, value)
        with pytest.raises(GoldenFileError, match=message):
            read_golden(bad)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="golden file not found: .*nope.safetensors"):
        read_golden(tmp_path / "nope.safetensors")
    with pytest.raises(GoldenFileError, match="is a directory, expected a regular file"):
        read_golden(tmp_path)


def test_golden_file_error_is_value_error():
    assert issubclass(GoldenFileError, ValueError), "the CLI maps ValueError to exit code 2"
