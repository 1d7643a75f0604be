"""The NumPy block paths of the precise forward against the portable definitions they replace.

On NumPy, erfc, GELU, LayerNorm and softmax run block by block (in a thread pool) and the MLP and
window attention run on blocks of whole images. The elementwise and row-wise ones must give the
portable definition's bits whatever the block size and thread count; the image blocks change only
how many rows share a GEMM, so a batch of one image gives the same bits and larger batches agree
to a few float64 rounding errors.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from swinref.core import backend, layers, numerics

XP = backend.get_namespace("numpy")


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Same dtype, shape and bits, NaN payloads aside (a NaN's sign bit depends on the SIMD lane)."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    nan = np.isnan(a)
    if not np.array_equal(nan, np.isnan(b)):
        return False
    return np.array_equal(a[~nan].view(np.uint8), b[~nan].view(np.uint8))


def _erfc_points(dtype: str) -> np.ndarray:
    """Every region of erfc (small below and above 1/4, tail below and above 2, negative tail,
    clipped tail), their boundaries and neighbours, and the special values."""
    rng = np.random.default_rng(0)
    edges = np.array([0.25, 0.84375, 2.0, 28.0, 30.0])
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-300, -1e-300, 1e300, -1e300])
    with np.errstate(over="ignore"):
        return np.concatenate(
            [
                rng.standard_normal(30_000),
                rng.uniform(-8.0, 32.0, 30_000),
                edges,
                -edges,
                np.nextafter(edges, 0.0),
                np.nextafter(-edges, 0.0),
                special,
            ]
        ).astype(dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("block", "threads"), [(65536, "1"), (1000, "3"), (7, "2")])
def test_erfc_and_gelu_blocks_give_the_portable_bits(dtype, block, threads, monkeypatch):
    monkeypatch.setattr(backend, "BLOCK_ELEMENTS", block)
    monkeypatch.setenv("SWINREF_NUM_THREADS", threads)
    x = _erfc_points(dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        want_erfc = numerics.erfc_portable(x, xp=XP)
        want_gelu = 0.5 * x * numerics.erfc_portable(-x * numerics._INV_SQRT2, xp=XP)
        got_erfc = numerics.erfc(x, xp=XP)
        got_gelu = numerics.gelu(x.copy(), xp=XP, overwrite=True)
    assert _same_bits(got_erfc, want_erfc), "erfc on blocks differs from erfc_portable"
    assert _same_bits(got_gelu, want_gelu), "gelu on blocks differs from 0.5 * x * erfc_portable(-x / sqrt 2)"


def test_gelu_leaves_its_input_alone_unless_told():
    x = np.linspace(-5.0, 5.0, 200_001)
    keep = x.copy()
    y = numerics.gelu(x, xp=XP)
    assert _same_bits(x, keep), "gelu(x) changed x"
    z = numerics.gelu(x, xp=XP, overwrite=True)
    assert z is not None and _same_bits(z, y), "overwrite=True must give the same values"


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_row_blocks_give_the_portable_bits(dtype, monkeypatch):
    monkeypatch.setattr(backend, "BLOCK_ELEMENTS", 500)  # several rows per block, many blocks
    monkeypatch.setenv("SWINREF_NUM_THREADS", "2")
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((3, 37, 96)) * 4).astype(dtype)
    w, b = rng.standard_normal(96).astype(dtype), rng.standard_normal(96).astype(dtype)
    assert _same_bits(numerics.layer_norm(x, w, b, xp=XP), numerics._layer_norm(x, w, b, eps=1e-5, xp=XP))
    logits = (rng.standard_normal((4, 3, 49, 49)) * 10).astype(dtype)
    want = numerics._softmax(logits, axis=-1, xp=XP)
    assert _same_bits(numerics.softmax(logits, xp=XP), want)
    assert _same_bits(numerics.softmax(logits.copy(), xp=XP, overwrite=True), want)
    # rows of one element stay rows (softmax of one logit is 1)
    ones = numerics.softmax(logits[..., :1], xp=XP)
    assert _same_bits(ones, numerics._softmax(logits[..., :1], axis=-1, xp=XP)) and np.all(ones == 1)
    # another axis takes the whole-array form
    assert _same_bits(numerics.softmax(logits, axis=1, xp=XP), numerics._softmax(logits, axis=1, xp=XP))


def test_map_blocks_checks_rows_and_passes_errors_on(monkeypatch):
    monkeypatch.setattr(backend, "BLOCK_ELEMENTS", 10)
    monkeypatch.setenv("SWINREF_NUM_THREADS", "2")
    with pytest.raises(ValueError, match="last axis is 5"):
        backend.map_blocks(lambda r: r, np.zeros((4, 6)), row=5)

    def fail_on_negative(block):
        if (block < 0).any():
            raise ArithmeticError("negative block")
        return block

    with pytest.raises(ArithmeticError, match="negative block"):
        backend.map_blocks(fail_on_negative, np.concatenate([np.ones(100), -np.ones(5)]))


def _attention_params(rng, C: int, nH: int, N: int) -> dict[str, np.ndarray]:
    return {
        "qkv.weight": rng.standard_normal((3 * C, C)) * C**-0.5,
        "qkv.bias": rng.standard_normal(3 * C),
        "proj.weight": rng.standard_normal((C, C)) * C**-0.5,
        "proj.bias": rng.standard_normal(C),
        "fc1.weight": rng.standard_normal((4 * C, C)) * C**-0.5,
        "fc1.bias": rng.standard_normal(4 * C),
        "fc2.weight": rng.standard_normal((C, 4 * C)) * (4 * C) ** -0.5,
        "fc2.bias": rng.standard_normal(C),
    }


def test_image_blocks_match_the_whole_batch(monkeypatch):
    """MLP and masked window attention on blocks of whole images against one call on the batch:
    each image alone gives the whole-array bits; a batch in blocks agrees to 1e-14 of the scale
    (GEMMs over fewer rows may round differently, ~1e-16 per product; a mask or bias applied to
    the wrong image would be off by O(1))."""
    rng = np.random.default_rng(2)
    B, nW, N, C, nH = 5, 4, 9, 12, 3
    p = _attention_params(rng, C, nH, N)
    bias = rng.standard_normal((nH, N, N))
    mask = np.where(rng.random((nW, N, N)) < 0.3, -100.0, 0.0)
    windows = rng.standard_normal((B * nW, N, C))
    tokens = rng.standard_normal((B, 6, 6, C))

    def whole_attention(x):
        out = layers._attend(p, x, num_heads=nH, bias=bias, mask=mask, xp=XP)
        return numerics.linear(out, p["proj.weight"], p["proj.bias"], xp=XP)

    monkeypatch.setattr(layers, "BLOCK_TOKENS", 2 * nW * N)  # two images per block, one left over
    got = layers.window_attention(p, windows, num_heads=nH, bias=bias, mask=mask, xp=XP)
    np.testing.assert_allclose(got, whole_attention(windows), rtol=0, atol=1e-14 * np.abs(got).max())
    one = windows[:nW]
    assert _same_bits(
        layers.window_attention(p, one, num_heads=nH, bias=bias, mask=mask, xp=XP), whole_attention(one)
    )

    monkeypatch.setattr(layers, "BLOCK_TOKENS", 2 * 36)
    got = layers.mlp(p, tokens, xp=XP)
    want = layers._mlp(p, tokens, xp=XP)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-14 * np.abs(want).max())
    assert _same_bits(layers.mlp(p, tokens[:1], xp=XP), layers._mlp(p, tokens[:1], xp=XP))


def test_a_forked_child_gets_its_own_pool(monkeypatch):
    """A pool made before a fork has no threads in the child: the child must start its own."""
    monkeypatch.setattr(backend, "BLOCK_ELEMENTS", 10)
    monkeypatch.setenv("SWINREF_NUM_THREADS", "2")
    x = np.arange(100.0)
    backend.map_blocks(lambda b: b * 2.0, x)  # the parent's pool exists now
    pid = os.fork()
    if pid == 0:  # child: exit 0 only if the blocks run (a dead pool would hang until the timeout)
        ok = np.array_equal(backend.map_blocks(lambda b: b * 2.0, x), x * 2.0)
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "map_blocks in a forked child failed"
