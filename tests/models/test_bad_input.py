"""Bad input gives one clear error that names the problem and the expected form, never a crash."""

from __future__ import annotations

import os

import numpy as np
import pytest

import swinref
from swinref import SwinConfig, WeightsError, convert_state_dict, forward, load_state_dict

TINY = SwinConfig(
    img_size=32, patch_size=4, embed_dim=8, depths=(2, 2), num_heads=(1, 2), window_size=4, num_classes=10
)


@pytest.fixture(scope="module")
def params64():
    return swinref.init_params(TINY, seed=0)


def _on(be, params, x):
    return swinref.to_namespace(params, be.xp, device=be.device), be.asarray(x)


# ----- the input image -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape, error, message",
    [
        ((3, 32, 32), ValueError, r"input must have rank 4, \(B, 3, H, W\); got shape \(3, 32, 32\)"),
        (
            (1, 1, 3, 32, 32),
            ValueError,
            r"input must have rank 4, \(B, 3, H, W\); got shape \(1, 1, 3, 32, 32\)",
        ),
        (
            (1, 4, 32, 32),
            ValueError,
            r"input has 4 channels, config expects in_chans=3: shape must be \(B, 3, H, W\)",
        ),
        ((1, 1, 32, 32), ValueError, r"input has 1 channels, config expects in_chans=3"),
        (
            (2, 3, 64, 64),
            ValueError,
            r"input size 64x64 does not match the config's img_size 32x32; "
            r"expected shape \(B, 3, 32, 32\)",
        ),
        ((2, 3, 32, 28), ValueError, r"input size 32x28 does not match the config's img_size 32x32"),
        ((0, 3, 32, 32), ValueError, r"input batch is empty: shape \(0, 3, 32, 32\)"),
    ],
)
def test_input_shape(be, params64, shape, error, message):
    params, x = _on(be, params64, np.zeros(shape))
    with pytest.raises(error, match=message):
        forward(params, x, TINY)


@pytest.mark.parametrize("dtype", ["int32", "int64", "bool"])
def test_input_integer_dtype(be, params64, dtype):
    params, x = _on(be, params64, np.zeros((1, 3, 32, 32), dtype=dtype))
    with pytest.raises(TypeError, match=f"input dtype must be float32 or float64, got ([a-z_]+\\.)?{dtype}$"):
        forward(params, x, TINY)


@pytest.mark.parametrize("library", ["numpy", "torch"])  # the array API standard has no float16
def test_input_float16(params64, library):
    if library == "torch":
        pytest.importorskip("torch")
    moved = swinref.to_namespace(
        {**params64, "x": np.zeros((1, 3, 32, 32), dtype=np.float16)}, swinref.get_namespace(library)
    )
    x = moved.pop("x")
    with pytest.raises(TypeError, match="input dtype must be float32 or float64, got (torch.)?float16"):
        forward(moved, x, TINY)


def test_params_of_another_dtype_or_library(params64):
    x = np.zeros((1, 3, 32, 32))
    with pytest.raises(
        TypeError,
        match=r"parameter 'patch_embed.proj.weight' is float32 but the input is "
        r"float64; swinref never promotes silently: cast with",
    ):
        forward(swinref.init_params(TINY, dtype="float32"), x, TINY)
    torch_xp = swinref.get_namespace("torch")
    with pytest.raises(
        TypeError,
        match=r"is not in the input's array namespace \(numpy\); move the params "
        r"with swinref.to_namespace\(params, xp\)",
    ):
        forward(swinref.to_namespace(params64, torch_xp), x, TINY)


def test_params_missing_and_misshaped_in_forward(params64):
    # found by this module: a hand-built params dict used to fail with a bare KeyError or a
    # broadcast error deep in the model; forward now lists every bad entry at once
    bad = {k: v for k, v in params64.items() if k != "norm.weight"}
    bad["layers.0.blocks.1.mlp.fc1.bias"] = np.zeros(7)
    with pytest.raises(WeightsError) as info:
        forward(bad, np.zeros((1, 3, 32, 32)), TINY)
    message = str(info.value)
    for text in (
        "missing (1):\n    norm.weight",
        "mis-shaped (1):\n    layers.0.blocks.1.mlp.fc1.bias: got (7,), expected (32,)",
        "build them with swinref.convert_state_dict",
    ):
        assert text in message, f"expected {text!r} in:\n{message}"


def test_config_that_is_not_a_swinconfig(params64):
    with pytest.raises(
        TypeError,
        match=r"cfg must be one of SwinConfig, SwinV2Config, VideoSwinConfig, "
        r"got dict; build one with swinref.named\(name\)",
    ):
        forward(params64, np.zeros((1, 3, 32, 32)), TINY.to_dict())


# ----- configs -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            dict(depths=(2, 2, 6), num_heads=(3, 6, 12, 24)),
            "depths has 3 stages but num_heads has 4: give one head count per stage",
        ),
        (
            dict(embed_dim=96, num_heads=(5, 6, 12, 24)),
            r"stage 0 width 96 \(embed_dim \* 2\*\*0\) is not divisible by num_heads\[0\] = 5",
        ),
        (dict(img_size=225), "img_size 225x225 is not a multiple of patch_size 4"),
        (dict(img_size=(224, 230)), "img_size 224x230 is not a multiple of patch_size 4"),
        (dict(window_size=0), "window_size must be >= 1, got 0"),
        (dict(window_size=(7, -1)), r"window_size must be >= 1, got \(7, -1\)"),
        (dict(window_size=7.5), "window_size must be an int or a pair of ints, got 7.5"),
        (dict(depths=4), "depths must be a tuple with one int per stage, got 4"),
        (dict(num_heads=3), "num_heads must be a tuple with one int per stage, got 3"),
        (dict(depths=(2, 0, 6, 2)), r"every depth must be a positive int, got \(2, 0, 6, 2\)"),
        (dict(mlp_ratio="4"), "mlp_ratio must be a number > 0, got '4'"),
        (dict(qkv_bias="no"), "qkv_bias must be True or False, got 'no'"),
        (dict(num_classes=-1), "num_classes must be an int >= 0, got -1"),
    ],
)
def test_invalid_config(overrides, message):
    # found by this module: depths=4 and mlp_ratio="4" used to raise bare TypeErrors, and
    # qkv_bias="no" was accepted as true
    with pytest.raises(ValueError, match=f"invalid SwinConfig:(\n  - | ){message}"):
        SwinConfig(**overrides)


def test_config_lists_every_problem_at_once():
    with pytest.raises(ValueError) as info:
        SwinConfig(img_size=225, window_size=0, depths=(2, 2), num_heads=(3, 6, 12))
    message = str(info.value)
    for text in ("window_size must be >= 1", "is not a multiple of patch_size 4", "depths has 2 stages"):
        assert text in message, f"expected {text!r} in:\n{message}"


def test_unknown_model_name_lists_valid_ones():
    with pytest.raises(ValueError, match="unknown model 'swin_x'; expected one of: ") as info:
        SwinConfig.named("swin_x")
    for name in ("swin_t", "swin_s", "swin_b", "swin_l", "swin_tiny_patch4_window7_224"):
        assert name in str(info.value), f"valid name {name!r} not listed: {info.value}"


# ----- weights -------------------------------------------------------------------------------
def test_missing_unexpected_and_misshaped_in_one_error(params64):
    sd = dict(params64)
    del sd["norm.weight"], sd["layers.1.downsample.reduction.weight"]
    sd["absolute_pos_embed"] = np.zeros((1, 64, 8))  # timm's ape=True, which this config lacks
    sd["layers.0.blocks.0.attn.qkv.weight"] = np.zeros((8, 8))
    with pytest.raises(WeightsError) as info:
        convert_state_dict(sd, TINY)
    message = str(info.value)
    for text in (
        "does not match the config (embed_dim=8, depths=(2, 2), num_heads=(1, 2)",
        "missing (2):\n    layers.1.downsample.reduction.weight\n    norm.weight",
        "unexpected (1):\n    absolute_pos_embed",
        "mis-shaped (1):\n    layers.0.blocks.0.attn.qkv.weight: got (8, 8), expected (24, 8)",
    ):
        assert text in message, f"expected {text!r} in:\n{message}"


@pytest.mark.parametrize("dtype", ["int64", "bool"])
def test_non_float_weights(params64, dtype):
    sd = {**params64, "norm.bias": np.zeros(16, dtype=dtype)}
    with pytest.raises(
        WeightsError, match=f"wrong dtype \\(1\\):\n    norm.bias: dtype {dtype}, expected a float dtype"
    ):
        convert_state_dict(sd, TINY)


def test_state_dict_that_is_not_a_mapping():
    with pytest.raises(TypeError, match="state_dict must be a mapping of names to arrays, got list"):
        convert_state_dict([np.zeros(3)], TINY)


def test_npz_with_object_array_is_refused(tmp_path):
    path = tmp_path / "w.npz"
    np.savez(path, weight=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(
        WeightsError,
        match="cannot read weights file .*w.npz: member 'weight.npy' holds Python objects",
    ):
        load_state_dict(path)


def test_pth_with_pickled_object_is_refused(tmp_path):
    torch = pytest.importorskip("torch")
    marker = tmp_path / "unpickled"

    class Trap:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "w.pth"
    torch.save({"weight": torch.zeros(2), "trap": Trap()}, path)
    with pytest.raises(
        WeightsError,
        match=r"refused weights file .*w.pth: it is not a plain state dict of "
        r"tensors; swinref reads .pth files only with "
        r"torch.load\(weights_only=True\)",
    ):
        load_state_dict(path)
    assert not marker.exists(), "loading a .pth executed a pickled callable"


def test_pth_holding_a_list_is_refused(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "w.pth"
    torch.save([torch.zeros(2)], path)
    with pytest.raises(
        WeightsError,
        match="it holds a list; expected a state dict "
        r"\(a mapping of names to tensors\)",
    ):
        load_state_dict(path)


def test_corrupt_and_unsupported_weight_files(tmp_path):
    junk = tmp_path / "w.safetensors"
    junk.write_bytes(os.urandom(256))
    with pytest.raises(
        WeightsError, match="cannot read weights file: .*w.safetensors is not a safetensors file"
    ):
        load_state_dict(junk)
    other = tmp_path / "w.ckpt"
    other.write_bytes(b"")
    with pytest.raises(ValueError, match=r"unsupported weights file .*w.ckpt.*: use .safetensors, .npz"):
        load_state_dict(other)
    with pytest.raises(FileNotFoundError, match="weights file not found: .*nope.pth"):
        load_state_dict(tmp_path / "nope.pth")
