"""swinref against timm's SwinTransformer: logits, every named intermediate, parameter layouts, files.

timm's weights are seeded random values in every float parameter (see ``timm_helpers``); they go
through ``swinref.convert_state_dict`` and ``swinref.forward`` on NumPy and are compared with timm's
own outputs, collected by forward hooks under the same names.
"""

from __future__ import annotations

import copy
import functools

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the timm cross-checks need torch (pip install torch)")
timm = pytest.importorskip("timm", reason="the timm cross-checks need timm (pip install timm)")

from timm_helpers import (  # noqa: E402
    CROSSCHECK_MODELS,
    build_timm,
    intermediate_names,
    max_abs_diff,
    random_input,
    random_timm,
    swinref_config,
    timm_intermediates,
)

import swinref  # noqa: E402
from swinref.core import backend  # noqa: E402

pytestmark = pytest.mark.crosscheck

# One absolute bound per dtype fits every intermediate: with the random weights of timm_helpers
# the activations are O(1) throughout (rms 0.35..1.0 per tensor, largest |value| 19 in swin_s's
# 18-block stage, patch embedding to logits). The two implementations differ only in rounding:
# summation order inside BLAS and libm. float64: unit roundoff 1.1e-16 times |v| <= 20 times
# a few hundred roundings along the deepest path is ~1e-13 (measured <= 4e-14); 1e-10 keeps a
# 1000x margin and is still 1e9 times smaller than what a wrong bias, mask, index or order costs
# (the random params shift values by 0.1..1). float32: unit roundoff 6e-8, measured <= 1.8e-5 on
# swin_s; 1e-4 leaves 5x for other BLAS builds and is 1e3 below a semantic error. Subtle constants
# (a LayerNorm eps of 1e-6 instead of 1e-5 moves values by ~4e-5) are caught by the float64 run.
ATOL = {"float64": 1e-10, "float32": 1e-4}
DTYPES = tuple(ATOL)
MODELS = tuple(CROSSCHECK_MODELS)

# Paper / timm 1.0.31 parameter counts of the released ImageNet-1k classifiers.
PUBLISHED_PARAMS = {"swin_t": 28_288_354, "swin_s": 49_606_258, "swin_b": 87_768_224, "swin_l": 196_532_476}
RELEASED = ("swin_t", "swin_s", "swin_b", "swin_l", "swin_b_384", "swin_l_384")


def _timm_model(key: str, dtype: str):
    model = random_timm(key)
    return copy.deepcopy(model).double() if dtype == "float64" else model


@functools.cache
def _run(key: str, dtype: str):
    """(timm outputs by name, swinref logits, swinref intermediates) for one model and dtype."""
    cfg = swinref_config(CROSSCHECK_MODELS[key])
    model = _timm_model(key, dtype)
    x = random_input(cfg).astype(dtype)
    expected = timm_intermediates(model, torch.from_numpy(x))
    params = swinref.convert_state_dict(model.state_dict(), cfg)
    xp = backend.get_namespace("numpy")
    logits, inter = swinref.forward(params, xp.asarray(x), cfg, return_intermediates=True)
    return expected, logits, inter


@pytest.mark.parametrize("key", MODELS)
def test_intermediate_names_are_timm_module_names(key):
    expected, _, inter = _run(key, "float64")
    names = intermediate_names(random_timm(key))
    assert list(inter) == names, f"swinref intermediates {list(inter)}, expected timm's {names}"
    assert list(expected) == names, f"timm hooks fired in order {list(expected)}, expected {names}"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("key", MODELS)
def test_logits_match_timm(key, dtype):
    expected, logits, _ = _run(key, dtype)
    assert str(logits.dtype) == dtype, f"logits dtype {logits.dtype}, expected {dtype}"
    diff = max_abs_diff(logits, expected["logits"])
    assert diff <= ATOL[dtype], f"{key} {dtype}: logits max abs diff {diff:.3e}, expected <= {ATOL[dtype]}"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("key", MODELS)
def test_every_intermediate_matches_timm(key, dtype):
    expected, _, inter = _run(key, dtype)
    missing = sorted(set(expected) - set(inter))
    assert not missing, f"{key}: swinref lacks intermediates {missing}"
    diffs = {name: max_abs_diff(inter[name], ref) for name, ref in expected.items()}
    bad = {n: f"{d:.3e}" for n, d in diffs.items() if not d <= ATOL[dtype]}  # in computation order
    assert not bad, (
        f"{key} {dtype}: max abs diff above {ATOL[dtype]} at {bad} (first divergence: {next(iter(bad))})"
    )


@pytest.mark.parametrize("key", MODELS + RELEASED[2:])
def test_param_shapes_equal_timm_state_dict(key):
    model = CROSSCHECK_MODELS.get(key, key)
    sd = build_timm(model, device="meta").state_dict()  # shapes only: no memory for 197M floats
    shapes = swinref.param_shapes(swinref_config(model))
    got = {n: tuple(v.shape) for n, v in sd.items()}
    assert list(shapes) == list(got), (
        f"{key}: names differ; only swinref: {sorted(set(shapes) - set(got))}, "
        f"only timm: {sorted(set(got) - set(shapes))} (or the order differs)"
    )
    wrong = {n: (shapes[n], got[n]) for n in shapes if shapes[n] != got[n]}
    assert not wrong, f"{key}: shapes (swinref, timm) differ at {wrong}"


@pytest.mark.parametrize("name", RELEASED)
def test_count_params_equals_timm(name):
    model = build_timm(name, device="meta")
    expected = sum(p.numel() for p in model.parameters())
    got = swinref.count_params(swinref.SwinConfig.named(name))
    assert got == expected, f"{name}: count_params {got:,}, timm has {expected:,}"
    if name in PUBLISHED_PARAMS:
        assert got == PUBLISHED_PARAMS[name], f"{name}: {got:,}, published {PUBLISHED_PARAMS[name]:,}"


@pytest.mark.parametrize("dtype", DTYPES)
def test_timm_state_dict_files_load_identically(tmp_path, dtype):
    from safetensors.torch import save_file

    key = "small"
    cfg = swinref_config(CROSSCHECK_MODELS[key])
    sd = _timm_model(key, dtype).state_dict()
    direct = swinref.convert_state_dict(sd, cfg)
    save_file(sd, tmp_path / "w.safetensors")
    torch.save(sd, tmp_path / "w.pth")
    torch.save({"model": sd, "epoch": 3}, tmp_path / "nested.pth")  # training checkpoint layout

    def same(params, what):
        assert list(params) == list(direct), (
            f"{what}: names {list(params)[:3]}..., expected {list(direct)[:3]}..."
        )
        for n, v in direct.items():
            assert params[n].dtype == v.dtype == np.dtype(dtype), (
                f"{what} {n}: dtype {params[n].dtype}, expected {dtype}"
            )
            assert np.array_equal(params[n], v), f"{what} {n}: values differ from the in-memory state dict"

    for file in ("w.safetensors", "w.pth", "nested.pth"):
        raw = swinref.load_state_dict(tmp_path / file)
        assert set(raw) == set(sd), f"{file}: keys {sorted(set(raw) ^ set(sd))} differ from timm's"
        same(swinref.load_params(tmp_path / file, cfg), file)

    for file in ("round.npz", "round.safetensors"):
        swinref.save_params(direct, tmp_path / file)
        same(swinref.load_params(tmp_path / file, cfg), file)
        digest = swinref.params_digest(swinref.load_params(tmp_path / file, cfg))
        assert digest == swinref.params_digest(direct), f"{file}: params_digest changed in the round trip"
