"""swinref.tools.conformance for Swin V2 and Video Swin components: timm's V2 modules (float64)
and a Video port written from the paper's definitions (tests/naive.py) pass; ports with the usual
V2 and Video mistakes fail, with the function and the mistake named."""

from __future__ import annotations

import math

import naive
import numpy as np
import pytest

from swinref.tools import conformance
from swinref.tools.conformance import Port, VideoCase, check_example, check_port

torch = pytest.importorskip("torch")

EXAMPLES = 15  # per function; the golden cases run on top of these
V2_FUNCTIONS = {"v2_coords_table", "v2_window_attention", "v2_patch_merging"}


def _t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


# ----- V2: timm's modules ---------------------------------------------------------------------
def _timm_v2_port() -> Port:
    sw2 = pytest.importorskip("timm.models.swin_transformer_v2")

    def coords(window, pretrained):
        attn = sw2.WindowAttention(2, window_size=window, num_heads=1, pretrained_window_size=pretrained)
        return attn.relative_coords_table.reshape(-1, 2).double().numpy()

    def attention(x, params, num_heads, window, pretrained, mask):
        attn = sw2.WindowAttention(
            x.shape[-1], window_size=window, num_heads=num_heads, pretrained_window_size=pretrained
        )
        attn = attn.double().eval()  # the float32 coordinate buffer becomes float64 exactly
        attn.load_state_dict({k: _t(v) for k, v in params.items()}, strict=False)
        with torch.no_grad():
            return attn(_t(x), mask=None if mask is None else _t(mask)).numpy()

    def merging(x, params):
        merge = sw2.PatchMerging(x.shape[-1]).double().eval()
        merge.load_state_dict({k: _t(v) for k, v in params.items()})
        with torch.no_grad():
            return merge(_t(x)).numpy()

    return Port(
        name="timm v2", v2_coords_table=coords, v2_window_attention=attention, v2_patch_merging=merging
    )


def test_timm_v2_modules_conform():
    report = check_port(_timm_v2_port(), max_examples=EXAMPLES, seed=0)
    assert report.passed, report.summary()
    assert {r.function for r in report.results} == V2_FUNCTIONS, report.summary()
    for r in report.results:
        assert r.examples >= EXAMPLES, f"{r.function}: only {r.examples} examples ran"


# ----- V2: broken ports, written out in NumPy ---------------------------------------------------
def _np_coords(window, pretrained, log=math.log2):
    ref = pretrained if pretrained[0] > 0 else window
    axes = [np.arange(-(m - 1), m) / max(r - 1, 1) * 8.0 for m, r in zip(window, ref, strict=True)]
    dh, dw = np.meshgrid(*axes, indexing="ij")
    t = np.stack([dh.ravel(), dw.ravel()], axis=-1)
    return np.sign(t) * np.vectorize(log)(np.abs(t) + 1.0) / 3.0  # log2(8), as the ports write it


def _np_v2_attention(x, p, num_heads, window, pretrained, mask, *, clamp=True, k_bias=False):
    B_, N, C = x.shape
    d = C // num_heads
    bias = np.concatenate([p["q_bias"], p["q_bias"] if k_bias else np.zeros(C), p["v_bias"]])
    q, k, v = (x @ p["qkv.weight"].T + bias).reshape(B_, N, 3, num_heads, d).transpose(2, 0, 3, 1, 4)
    unit = [a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12) for a in (q, k)]
    scale = np.exp(np.minimum(p["logit_scale"], math.log(100.0)) if clamp else p["logit_scale"])
    logits = unit[0] @ unit[1].transpose(0, 1, 3, 2) * scale
    # the table as ports build it: float32 at every step (a float64 table rounded once moves the
    # output by ~1e-9, beyond a float64 port's 1e-10)
    built = naive.v2_coords(window, pretrained)
    table = np.array(
        [built[(dh, dw)] for dh in range(1 - window[0], window[0]) for dw in range(1 - window[1], window[1])]
    )
    hidden = np.maximum(table @ p["cpb_mlp.0.weight"].T + p["cpb_mlp.0.bias"], 0.0)
    index = conformance.naive_index(window)
    logits = logits + 16.0 / (1.0 + np.exp(-(hidden @ p["cpb_mlp.2.weight"].T)[index].transpose(2, 0, 1)))
    if mask is not None:
        nW = mask.shape[0]
        logits = (logits.reshape(B_ // nW, nW, num_heads, N, N) + mask[None, :, None]).reshape(logits.shape)
    attn = np.exp(logits - logits.max(-1, keepdims=True))
    attn = attn / attn.sum(-1, keepdims=True)
    return (attn @ v).transpose(0, 2, 1, 3).reshape(B_, N, C) @ p["proj.weight"].T + p["proj.bias"]


def _np_v2_merging(x, p, *, order=((0, 0), (1, 0), (0, 1), (1, 1))):
    B, H, W, C = x.shape
    x = np.pad(x, ((0, 0), (0, H % 2), (0, W % 2), (0, 0)))
    cat = np.concatenate([x[:, i::2, j::2] for i, j in order], axis=-1) @ p["reduction.weight"].T
    return naive.layer_norm(cat, p["norm.weight"], p["norm.bias"])


def test_a_numpy_v2_port_written_from_the_formulas_conforms():
    port = Port(
        name="numpy v2",
        v2_coords_table=_np_coords,
        v2_window_attention=_np_v2_attention,
        v2_patch_merging=_np_v2_merging,
    )
    report = check_port(port, max_examples=EXAMPLES, seed=2)
    assert report.passed, report.summary()


@pytest.mark.parametrize(
    "function,adapter,message",
    [
        (
            "v2_coords_table",
            lambda window, pretrained: _np_coords(window, pretrained, log=math.log),
            "v2 coords table vs sign(t) log2",
        ),
        (
            "v2_coords_table",
            lambda window, pretrained: _np_coords(window, (0, 0)),  # ignores the pre-training window
            "table range",
        ),
        (
            "v2_window_attention",
            lambda *a: _np_v2_attention(*a, clamp=False),
            "v2_window_attention vs swinref",
        ),
        (
            "v2_window_attention",
            lambda *a: _np_v2_attention(*a, k_bias=True),
            "v2_window_attention vs swinref",
        ),
        (
            "v2_patch_merging",
            lambda x, p: _np_v2_merging(x, p, order=((0, 0), (0, 1), (1, 0), (1, 1))),
            "v2_patch_merging vs swinref",
        ),
    ],
    ids=["ln_coords", "no_pretrained_window", "unclamped_logit_scale", "k_bias", "merge_order"],
)
def test_broken_v2_ports_fail_with_the_mistake_named(function, adapter, message):
    report = check_port(Port(name="broken", **{function: adapter}), max_examples=EXAMPLES, seed=0)
    result = report[function]
    assert not result.passed, f"{function}: the mistake went unnoticed\n{report.summary()}"
    assert message in result.message, f"expected {message!r} in the failure, got {result.message!r}"
    assert "check_example(port" in result.snippet, result.snippet
    with pytest.raises(AssertionError):  # the reported example reproduces the failure
        check_example(Port(**{function: adapter}), function, result.case)


# ----- Video: a port written from the paper's definitions (tests/naive.py) --------------------------
def _video_partition(x, window, *, window_order="dhw"):
    B, *S, C = x.shape
    counts = [s // m for s, m in zip(S, window, strict=True)]
    grid = [(a, b, c) for a in range(counts[0]) for b in range(counts[1]) for c in range(counts[2])]
    if window_order == "whd":  # windows numbered with W outermost
        grid.sort(key=lambda g: (g[2], g[1], g[0]))
    out = []
    for b in range(B):
        for g in grid:
            out.append(
                [x[(b, *(g[a] * window[a] + c[a] for a in range(3)))] for c in naive.coords_in(window)]
            )
    return np.asarray(out)


def _video_mask(D, H, W, window, shift, *, time_regions=True):
    size = (D, H, W)
    labels = np.zeros(size, dtype=np.int64)
    for pos in np.ndindex(*size):
        r = [naive.region(q, L, m, s) for q, L, m, s in zip(pos, size, window, shift, strict=True)]
        labels[pos] = (9 * r[0] if time_regions else 0) + 3 * r[1] + r[2]
    win = _video_partition(labels[None, ..., None], window)[..., 0]  # (nW, N)
    return np.where(win[:, :, None] == win[:, None, :], 0.0, naive.MASK)


def _video_index(window, *, strides=None):
    coords = naive.coords_in(window)
    if strides is None:
        return np.array([[naive.relative_index(ci, cj, window) for cj in coords] for ci in coords])
    return np.array(
        [
            [sum((ci[a] - cj[a] + window[a] - 1) * strides[a] for a in range(3)) for cj in coords]
            for ci in coords
        ]
    )


def _video_merging(x, p, *, over_time=False):
    if over_time:  # merges (D, H) pairs: time halves, W stays
        return np.swapaxes(naive.v1_merge(p, "", np.swapaxes(x, 1, 3)), 1, 3)
    return naive.v1_merge(p, "", x)


def test_a_video_port_written_from_the_definitions_conforms():
    port = Port(
        name="video from the paper",
        video_window_partition=_video_partition,
        video_shift_mask=_video_mask,
        video_relative_position_index=_video_index,
        video_patch_merging=_video_merging,
    )
    report = check_port(port, max_examples=EXAMPLES, seed=3)
    assert report.passed, report.summary()
    assert len(report.results) == 4, report.summary()
    for r in report.results:
        assert r.examples >= EXAMPLES + len(conformance.VIDEO_GOLDEN_CASES), f"{r.function}: {r.examples}"


@pytest.mark.parametrize(
    "function,adapter,message",
    [
        (
            "video_window_partition",
            lambda x, w: _video_partition(x, w, window_order="whd"),
            "video_window_partition vs swinref",
        ),
        (
            "video_shift_mask",
            lambda *a: _video_mask(*a, time_regions=False),
            "video_shift_mask vs brute force",
        ),
        (
            "video_relative_position_index",
            lambda w: _video_index(w, strides=((2 * w[2] - 1), 2 * w[2] - 1, 1)),
            "index",
        ),
        (
            "video_patch_merging",
            lambda x, p: _video_merging(x, p, over_time=True),
            "video_patch_merging(x, params): expected shape",
        ),
    ],
    ids=["window_order", "mask_without_time", "index_stride", "merge_over_time"],
)
def test_broken_video_ports_fail_with_the_mistake_named(function, adapter, message):
    report = check_port(Port(name="broken", **{function: adapter}), max_examples=EXAMPLES, seed=0)
    result = report[function]
    assert not result.passed, f"{function}: the mistake went unnoticed\n{report.summary()}"
    assert message in result.message, f"expected {message!r} in the failure, got {result.message!r}"
    assert isinstance(result.case, VideoCase), f"expected a 3-D case, got {result.case!r}"
    with pytest.raises(AssertionError):
        check_example(Port(**{function: adapter}), function, result.case)
