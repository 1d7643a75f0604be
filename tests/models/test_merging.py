"""Patch merging against its 2x2 space-to-depth definition and patch embedding against a direct
convolution, on every backend.

Tolerance (float64): both sides compute the same dot products (length 4C <= 16 for merging,
Cin*P*P <= 48 for the embedding) and the same LayerNorm on O(1) values, in different orders;
their rounding errors are a few 1e-15. atol = 1e-12 keeps a wide margin while a wrong channel
order, patch flattening or padding side gives O(0.1) differences.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import assert_close
from hypothesis import given
from strategies import EmbedCase, backend_settings, embed_cases, merge_grids, seeds

from swinref.core.backend import to_namespace
from swinref.models.v1 import LN_EPS, patch_embed, patch_merging

ATOL = 1e-12  # see the module docstring


def _layer_norm(x, weight, bias):
    """LayerNorm over the last axis, biased variance (the definition, in float64)."""
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + LN_EPS) * weight + bias


def _merging_params(rng, C):
    return {
        "norm.weight": 1.0 + 0.1 * rng.standard_normal(4 * C),
        "norm.bias": 0.1 * rng.standard_normal(4 * C),
        "reduction.weight": rng.standard_normal((2 * C, 4 * C)) / math.sqrt(4 * C),
    }


def _merging_by_definition(p, x):
    """Definition: pad odd H/W with zeros at the bottom/right, strided slices, concat, LN(4C), Linear."""
    B, H, W, C = x.shape
    padded = np.zeros((B, H + H % 2, W + W % 2, C))
    padded[:, :H, :W, :] = x
    x0 = padded[:, 0::2, 0::2, :]
    x1 = padded[:, 1::2, 0::2, :]  # the row offset varies first
    x2 = padded[:, 0::2, 1::2, :]
    x3 = padded[:, 1::2, 1::2, :]
    merged = np.concatenate([x0, x1, x2, x3], axis=-1)  # (B, ceil(H/2), ceil(W/2), 4C)
    return _layer_norm(merged, p["norm.weight"], p["norm.bias"]) @ p["reduction.weight"].T


def _check_merging(be, B, H, W, C, seed):
    rng = np.random.default_rng(seed)
    p = _merging_params(rng, C)
    x = rng.standard_normal((B, H, W, C))
    got = patch_merging(to_namespace(p, be.xp, device=be.device), be.asarray(x), xp=be.xp)
    if be.device is not None:
        assert got.device == be.device, f"output on {got.device}, expected {be.device}"
    assert_close(
        got,
        _merging_by_definition(p, x),
        atol=ATOL,
        what=f"patch merging of a ({B}, {H}, {W}, {C}) grid, seed {seed}",
    )


@backend_settings
@given(g=merge_grids(max_side=7, max_channels=4), seed=seeds)
def test_patch_merging_matches_space_to_depth(be, g, seed):
    _check_merging(be, g.B, g.H, g.W, g.C, seed)


@pytest.mark.parametrize("H, W", [(1, 1), (1, 4), (3, 2), (2, 5), (7, 7), (56, 56)])
def test_patch_merging_edge_cases(be, H, W):
    _check_merging(be, 1, H, W, 2, seed=H * 100 + W)


def _embed_params(rng, e, patch_norm):
    fan_in = e.in_chans * e.patch * e.patch
    p = {
        "proj.weight": rng.standard_normal((e.C, e.in_chans, e.patch, e.patch)) / math.sqrt(fan_in),
        "proj.bias": rng.standard_normal(e.C),
    }
    if patch_norm:
        p["norm.weight"] = 1.0 + 0.1 * rng.standard_normal(e.C)
        p["norm.bias"] = 0.1 * rng.standard_normal(e.C)
    return p


def _conv_by_loops(p, x, P):
    """Conv2d with kernel = stride = P, no padding: one output pixel and channel at a time."""
    B, Cin, H, W = x.shape
    weight, bias = p["proj.weight"], p["proj.bias"]
    C = weight.shape[0]
    out = np.empty((B, H // P, W // P, C))  # channels-last tokens
    for b in range(B):
        for i in range(H // P):
            for j in range(W // P):
                patch = x[b, :, i * P : (i + 1) * P, j * P : (j + 1) * P]  # (Cin, P, P)
                for c in range(C):
                    out[b, i, j, c] = np.sum(patch * weight[c]) + bias[c]
    return out


@backend_settings
@given(e=embed_cases(max_patch=4, max_patches=3), seed=seeds)
@pytest.mark.parametrize("patch_norm", [True, False])
def test_patch_embed_matches_direct_convolution(be, patch_norm, e, seed):
    rng = np.random.default_rng(seed)
    p = _embed_params(rng, e, patch_norm)
    x = rng.standard_normal((e.B, e.in_chans, e.H, e.W))
    expected = _conv_by_loops(p, x, e.patch)
    if patch_norm:
        expected = _layer_norm(expected, p["norm.weight"], p["norm.bias"])
    got = patch_embed(
        to_namespace(p, be.xp, device=be.device),
        be.asarray(x),
        patch_size=e.patch,
        patch_norm=patch_norm,
        xp=be.xp,
    )
    assert_close(got, expected, atol=ATOL, what=f"patch embed, {e}, patch_norm {patch_norm}, seed {seed}")


def test_patch_embed_of_a_swin_sized_patch(be):
    # Swin's own geometry: 4x4 patches of 3 channels, one image of 8x12 pixels
    rng = np.random.default_rng(11)
    e = EmbedCase(B=1, in_chans=3, H=8, W=12, patch=4, C=6)
    p = _embed_params(rng, e, patch_norm=False)
    x = rng.standard_normal((1, 3, 8, 12))
    got = patch_embed(
        to_namespace(p, be.xp, device=be.device), be.asarray(x), patch_size=4, patch_norm=False, xp=be.xp
    )
    assert_close(got, _conv_by_loops(p, x, 4), atol=ATOL, what="patch embed, 4x4 patches of 3 channels")
