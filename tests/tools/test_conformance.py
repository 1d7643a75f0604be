"""swinref.tools.conformance on real ports (timm's and torchvision's own window functions, in float64)
and on deliberately broken ones, which must fail with a report that names the mistake and
reproduces it."""

from __future__ import annotations

import numpy as np
import pytest

from swinref.core.windows import relative_position_index, shift_mask, window_partition, window_reverse
from swinref.tools import conformance
from swinref.tools.conformance import Case, Port, check_example, check_port

torch = pytest.importorskip("torch")

EXAMPLES = 15  # per function; the golden cases run on top of these


def _t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


# ----- timm ---------------------------------------------------------------------------------
def _timm_port() -> Port:
    sw = pytest.importorskip("timm.models.swin_transformer")

    def mask(H, W, window, shift):
        # always_partition keeps the window and shift as given (no clamp to the grid)
        block = sw.SwinTransformerBlock(
            dim=4,
            input_resolution=(H, W),
            num_heads=1,
            window_size=window,
            shift_size=shift,
            always_partition=True,
        )
        if block.attn_mask is None:  # timm builds no mask without a shift: nothing is masked
            N = window[0] * window[1]
            return np.zeros(((H // window[0]) * (W // window[1]), N, N))
        return block.attn_mask.double().numpy()

    def attention(x, params, num_heads, window, mask):
        C = x.shape[-1]
        attn = sw.WindowAttention(C, num_heads=num_heads, window_size=window).double().eval()
        attn.load_state_dict({k: _t(v) for k, v in params.items()}, strict=False)
        with torch.no_grad():
            return attn(_t(x), mask=None if mask is None else _t(mask)).numpy()

    return Port(
        name="timm",
        # timm keeps windows as (B*nW, Mh, Mw, C); the adapter flattens them to (B*nW, N, C)
        window_partition=lambda x, window: sw.window_partition(_t(x), window).flatten(1, 2).numpy(),
        window_reverse=lambda w, window, H, W: sw.window_reverse(
            _t(w).unflatten(1, window), window, H, W
        ).numpy(),
        relative_position_index=lambda window: sw.get_relative_position_index(*window).numpy(),
        shift_mask=mask,
        window_attention=attention,
    )


def test_timm_window_functions_conform():
    report = check_port(_timm_port(), max_examples=EXAMPLES, seed=0)
    assert report.passed, report.summary()
    assert {r.function for r in report.results} == {
        "window_partition",
        "window_reverse",
        "relative_position_index",
        "shift_mask",
        "window_attention",
    }, f"expected five functions checked, got {[r.function for r in report.results]}"
    for r in report.results:  # golden cases + drawn ones actually ran
        assert r.examples >= len(conformance.GOLDEN_CASES), f"{r.function}: only {r.examples} examples ran"


# ----- torchvision -------------------------------------------------------------------------
def _torchvision_port() -> Port:
    tv = pytest.importorskip("torchvision.models.swin_transformer")

    def index(window):
        module = tv.ShiftedWindowAttention(dim=1, window_size=list(window), shift_size=[0, 0], num_heads=1)
        N = window[0] * window[1]
        return module.relative_position_index.reshape(N, N).numpy()

    def bias(table, window):
        module = tv.ShiftedWindowAttention(dim=1, window_size=list(window), shift_size=[0, 0], num_heads=1)
        index = module.relative_position_index
        return tv._get_relative_position_bias(_t(table), index, list(window))[0].numpy()  # (nH, N, N)

    def shifted(x, params, num_heads, window, shift):
        rel = bias(params["relative_position_bias_table"], window)
        with torch.no_grad():
            return tv.shifted_window_attention(
                _t(x),
                _t(params["qkv.weight"]),
                _t(params["proj.weight"]),
                _t(rel)[None],
                list(window),
                num_heads,
                list(shift),
                qkv_bias=_t(params["qkv.bias"]),
                proj_bias=_t(params["proj.bias"]),
                training=False,
            ).numpy()

    return Port(
        name="torchvision",
        relative_position_index=index,
        relative_position_bias=bias,
        shifted_window_attention=shifted,
    )


def test_torchvision_window_functions_conform():
    report = check_port(_torchvision_port(), max_examples=EXAMPLES, seed=0)
    assert report.passed, report.summary()
    assert len(report.results) == 3, f"expected three functions checked, got {report.summary()}"


# ----- swinref itself, through the same adapters a port would write --------------------------
def _swinref_port() -> Port:
    import array_api_compat.numpy as xp

    return Port(
        name="swinref",
        window_partition=lambda x, window: window_partition(x, window, xp=xp),
        window_reverse=lambda w, window, H, W: window_reverse(w, window, H, W, xp=xp),
        shift_mask=lambda H, W, window, shift: shift_mask((H, W), window, shift, xp=xp),
        relative_position_index=lambda window: relative_position_index(window, xp=xp),
    )


def test_swinref_conforms_to_itself():
    report = check_port(_swinref_port(), max_examples=EXAMPLES, seed=1)
    assert report.passed, report.summary()


# ----- broken ports ---------------------------------------------------------------------------
def _transposed_index(window):
    return np.ascontiguousarray(conformance.naive_index(window).T)


def _index_off_by_one(window):
    return conformance.naive_index(window) + 1


def _mask_rolled_the_wrong_way(H, W, window, shift):
    # labels the original grid by where each token will go, then rolls by +shift instead of -shift
    Mh, Mw = window
    sh, sw = shift
    i, j = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    labels = 2 * (((i - sh) % H) >= H - sh) + (((j - sw) % W) >= W - sw)
    win = labels.reshape(H // Mh, Mh, W // Mw, Mw).transpose(0, 2, 1, 3).reshape(-1, Mh * Mw)
    return np.where(win[:, :, None] == win[:, None, :], 0.0, -100.0)


def _mask_with_minus_inf(H, W, window, shift):
    m = conformance.brute_force_mask((H, W), window, shift)
    return np.where(m < 0, -np.inf, 0.0)


def _partition_column_major(x, window):
    B, H, W, C = x.shape
    Mh, Mw = window
    x = x.reshape(B, H // Mh, Mh, W // Mw, Mw, C).transpose(0, 3, 1, 2, 4, 5)  # window columns outer
    return x.reshape(-1, Mh * Mw, C)


@pytest.mark.parametrize(
    "function, broken, expected_words",
    [
        ("relative_position_index", _transposed_index, "index == (hi-hj+Mh-1)"),  # symmetry holds for .T
        ("relative_position_index", _index_off_by_one, "index range"),
        ("shift_mask", _mask_rolled_the_wrong_way, "brute force"),
        ("shift_mask", _mask_with_minus_inf, "only 0 and -100"),
        ("window_partition", _partition_column_major, "window_partition vs swinref"),
    ],
)
def test_a_broken_port_fails_with_a_useful_report(function, broken, expected_words):
    report = check_port(Port(name="broken", **{function: broken}), max_examples=EXAMPLES, seed=0)
    assert not report.passed, f"expected {function} = {broken.__name__} to fail, report:\n{report}"
    r = report[function]
    assert expected_words in r.message, f"expected the message to name {expected_words!r}, got {r.message!r}"
    assert r.case is not None and f"case = {r.case!r}" in r.snippet, f"snippet lacks the case: {r.snippet}"
    assert "FAIL" in report.summary() and r.snippet in report.summary(), "summary should carry the snippet"
    # the snippet reproduces the failure: run it with `port` bound to the broken port
    with pytest.raises(AssertionError, match="expected|differ|exceeds"):
        exec(r.snippet, {"port": Port(name="broken", **{function: broken})})


def test_a_wrong_roll_sign_in_shifted_attention_fails():
    tv = _torchvision_port()

    def rolled_the_wrong_way(x, params, num_heads, window, shift):
        # rolling by +s, attending, rolling back by -s: the mirror image of the real shift
        return tv.shifted_window_attention(x[:, ::-1, ::-1], params, num_heads, window, shift)[:, ::-1, ::-1]

    report = check_port(
        Port(name="mirror", shifted_window_attention=rolled_the_wrong_way), max_examples=EXAMPLES, seed=0
    )
    assert not report.passed, f"expected a wrong roll sign to fail:\n{report}"
    assert "exceeds atol" in report.failures[0].message, report.failures[0].message


def test_a_crashing_port_is_a_failure_not_an_error():
    def crashes(window):
        raise RuntimeError("not implemented for non-square windows")

    report = check_port(Port(relative_position_index=crashes), max_examples=3, seed=0)
    assert not report.passed and "RuntimeError" in report.failures[0].message, report.summary()


def test_check_example_reproduces_one_case():
    port = _swinref_port()
    check_example(port, "shift_mask", Case(B=1, H=6, W=8, C=1, window=(3, 4), shift=(1, 2)))
    with pytest.raises(AssertionError, match="brute force"):
        check_example(
            Port(shift_mask=_mask_rolled_the_wrong_way),
            "shift_mask",
            Case(B=1, H=6, W=8, C=1, window=(3, 4), shift=(1, 2)),
        )


def test_bad_use_gives_clear_errors():
    with pytest.raises(ValueError, match="provides no function"):
        check_port(Port())
    with pytest.raises(ValueError, match="unknown function 'window_partitions'"):
        check_port(_swinref_port(), functions=["window_partitions"])
    with pytest.raises(TypeError, match="expected a swinref.tools.conformance.Port"):
        check_port({"window_partition": None})


# ----- mutation guard kept in CI (benchmarks/mutation.py runs the full list) -------------------
def _swinref_port_late_bound() -> Port:
    """swinref through the module attributes, looked up at call time so monkeypatching reaches them."""
    import array_api_compat.numpy as xp

    from swinref.core import windows

    return Port(
        name="swinref (mutated)",
        shift_mask=lambda H, W, window, shift: windows.shift_mask((H, W), window, shift, xp=xp),
        relative_position_index=lambda window: windows.relative_position_index(window, xp=xp),
    )


def _region_ids_off_by_one(size, window, shift, *, xp, device=None):
    """region_ids whose middle slice starts one token late, [L-M+1, L-s): a region-slicing mistake."""

    def axis(L, M, s):
        i = np.arange(L)
        return np.zeros(L, dtype=np.int64) if s == 0 else (i >= L - M + 1) + (i >= L - s).astype(np.int64)

    (H, W), (Mh, Mw), (sh, sw) = size, window, shift
    return xp.asarray(3 * axis(H, Mh, sh)[:, None] + axis(W, Mw, sw)[None, :])


@pytest.mark.parametrize(
    "attribute, mutant, function",
    [
        ("MASK_VALUE", float("-inf"), "shift_mask"),
        ("region_ids", _region_ids_off_by_one, "shift_mask"),
        (
            "relative_position_index",
            lambda window, *, xp, device=None: xp.asarray(_transposed_index(window)),
            "relative_position_index",
        ),
    ],
)
def test_the_properties_kill_mutants_of_swinref(monkeypatch, attribute, mutant, function):
    from swinref.core import windows

    before = check_port(_swinref_port_late_bound(), max_examples=EXAMPLES, seed=0, functions=[function])
    assert before.passed, f"swinref itself should pass before mutation:\n{before}"
    monkeypatch.setattr(windows, attribute, mutant)
    report = check_port(_swinref_port_late_bound(), max_examples=EXAMPLES, seed=0, functions=[function])
    assert not report.passed, f"mutant {attribute} survived the {function} properties:\n{report}"
