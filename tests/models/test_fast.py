"""The NumPy fast path (swinref/fast.py) against the precise forward and against exact GELU."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
from hypothesis import given
from strategies import gelu_inputs

import swinref
from swinref.models import v1_fast as fast
from swinref.models.v1 import SwinConfig

# Small configs that reach every branch of the fast path:
# "pad": grids 10x12 -> 5x6 -> 3x3 with window 4: roll-then-pad in stages 0 and 1, an odd merge,
#        a clamped last stage (window 3, no shift); "rect": a non-square window (4, 2) with shift
#        (2, 1), no qkv bias, no patch norm, no head (pooled features out).
SMALL = {
    "pad": SwinConfig(
        img_size=(40, 48), embed_dim=16, depths=(2, 2, 2), num_heads=(2, 2, 4), window_size=4, num_classes=10
    ),
    "rect": SwinConfig(
        img_size=32,
        embed_dim=12,
        depths=(2, 2),
        num_heads=(3, 3),
        window_size=(4, 2),
        qkv_bias=False,
        patch_norm=False,
        num_classes=0,
    ),
}

# Tolerances, relative to each tensor's scale max(1, max |precise|): the fast path reassociates sums
# (2-D GEMMs instead of batched ones, LayerNorm variance by einsum) and has its own GELU (<= 2 eps *
# max(1, |x|), tested below), so the paths differ by rounding only. Measured worst over all
# intermediates of swin_t with perturbed params (values up to 17): 2.6e-15 in float64, 1.3e-6 in
# float32. float64 gets 1e-12 (400x that), float32 1e-4 (77x; the float32 bound asked of the path).
TOL = {"float64": 1e-12, "float32": 1e-4}


def random_params(cfg: SwinConfig, dtype: str, seed: int = 0) -> dict[str, np.ndarray]:
    """timm-style init with every bias, norm and table perturbed, so no parameter is trivially 0 or 1."""
    rng = np.random.default_rng(seed)
    params = swinref.init_params(cfg, seed=seed)
    return {k: (v + rng.normal(0.0, 0.05, v.shape)).astype(dtype) for k, v in params.items()}


def compare(cfg: SwinConfig, dtype: str, batch: int) -> None:
    params = random_params(cfg, dtype)
    x = np.random.default_rng(1).standard_normal((batch, cfg.in_chans, *cfg.image_hw)).astype(dtype)
    ref, ref_inter = swinref.forward(params, x, cfg, return_intermediates=True)
    got, got_inter = swinref.forward(params, x, cfg, return_intermediates=True, mode="fast")
    assert sorted(got_inter) == sorted(ref_inter), (
        f"intermediate names: expected {sorted(ref_inter)}, got {sorted(got_inter)}"
    )
    items = [("output", ref, got)] + [(k, ref_inter[k], got_inter[k]) for k in ref_inter]
    for name, r, g in items:
        r = np.asarray(r)
        assert g.dtype == r.dtype and g.shape == r.shape, (
            f"{name}: expected {r.dtype}{r.shape}, got {g.dtype}{g.shape}"
        )
        diff = np.abs(g.astype(np.float64) - r.astype(np.float64)).max()
        bound = TOL[dtype] * max(1.0, float(np.abs(r).max()))
        assert diff <= bound, (
            f"{name} ({dtype}): expected max |fast - precise| <= {bound:.3e}, got {diff:.3e}"
        )


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", sorted(SMALL))
def test_small_configs_match_precise(name, dtype):
    compare(SMALL[name], dtype, batch=2)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_swin_t_matches_precise(dtype):
    compare(SwinConfig.named("swin_t"), dtype, batch=1)


def test_fast_leaves_inputs_and_params_untouched():
    cfg = SMALL["pad"]
    params = random_params(cfg, "float64")
    before = {k: v.copy() for k, v in params.items()}
    x = np.random.default_rng(2).standard_normal((1, 3, 40, 48))
    x0 = x.copy()
    swinref.forward(params, x, cfg, mode="fast")
    assert np.array_equal(x, x0), "the fast path changed its input"
    changed = [k for k in params if not np.array_equal(params[k], before[k])]
    assert not changed, f"the fast path changed params {changed}"


def test_repeated_calls_and_param_edits_are_seen():
    # only geometry is cached: a second call gives the same bits, an edited table a new result
    cfg = SMALL["pad"]
    params = random_params(cfg, "float64")
    x = np.random.default_rng(3).standard_normal((1, 3, 40, 48))
    a = swinref.forward(params, x, cfg, mode="fast")
    b = swinref.forward(params, x, cfg, mode="fast")
    assert np.array_equal(a, b), f"repeated call differs by {np.abs(a - b).max():.3e}"
    table = params["layers.0.blocks.1.attn.relative_position_bias_table"]
    # in place, and not a constant (softmax ignores a constant added to every logit)
    table += np.random.default_rng(4).normal(0.0, 1.0, table.shape)
    c = swinref.forward(params, x, cfg, mode="fast")
    ref = swinref.forward(params, x, cfg)
    assert np.abs(c - ref).max() <= TOL["float64"], "an in-place edit of params was not seen"
    assert np.abs(c - a).max() > 1e-6, "editing a bias table should change the output"


# ----- GELU -------------------------------------------------------------------------------------
def exact_gelu(x: np.ndarray) -> np.ndarray:
    """x * Phi(x) at 40 digits. Beyond |x| = 40, Phi is 1 or below 1e-349 (under every float), so
    the value is x or -0.0 (mpmath's erfc also overflows an int there)."""
    out = []
    with mpmath.workdps(40):
        for v in map(float, x):
            if abs(v) > 40.0:
                out.append(v if v > 0 else -0.0)
            else:
                out.append(float(mpmath.mpf(v) * mpmath.ncdf(mpmath.mpf(v))))
    return np.array(out)


def assert_gelu_accurate(x: np.ndarray) -> None:
    # bound: 2 eps * max(1, |x|) absolute (measured <= 1.13 eps on a 4801-point grid over [-12, 12]);
    # relative accuracy is not promised in the far left tail, where |GELU| < 1e-5
    got = fast.gelu_(x.copy()).astype(np.float64)
    expected = exact_gelu(x)
    eps = np.finfo(x.dtype).eps
    bound = 2 * eps * np.maximum(1.0, np.abs(x.astype(np.float64)))
    err = np.abs(got - expected)
    worst = int(np.argmax(err / bound))
    assert np.all(err <= bound), (
        f"{x.dtype} GELU({x[worst]!r}): expected {expected[worst]!r}, got {got[worst]!r} "
        f"(error {err[worst]:.3e} > bound {bound[worst]:.3e})"
    )


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gelu_on_a_grid_and_at_the_table_edges(dtype):
    grid = np.linspace(-12.0, 12.0, 1201)
    edges = np.array([-9.0, -9.001, -8.999, 9.0, 9.001, 8.999, 0.0, -0.0, 1 / 256, -1 / 256, 1e-30, -1e-30])
    assert_gelu_accurate(np.concatenate([grid, edges]).astype(dtype))


@given(gelu_inputs())
def test_gelu_property(case):
    _, x = case
    assert_gelu_accurate(x)


def test_gelu_keeps_nan_and_shape():
    x = np.array([[np.nan, 1.0], [np.inf, -2.0]], dtype=np.float32)
    with np.errstate(invalid="ignore"):
        got = fast.gelu_(x.copy())
    assert got.shape == (2, 2) and got.dtype == np.float32, (
        f"expected float32 (2, 2), got {got.dtype}{got.shape}"
    )
    assert np.isnan(got[0, 0]), f"GELU(nan): expected nan, got {got[0, 0]}"
    assert got[1, 0] == np.inf, f"GELU(inf): expected inf, got {got[1, 0]}"


# ----- dispatch and limits ----------------------------------------------------------------------
def test_unknown_mode_is_a_clear_error():
    cfg = SMALL["rect"]
    params = random_params(cfg, "float64")
    x = np.zeros((1, 3, 32, 32))
    with pytest.raises(ValueError, match=r"unknown mode 'turbo'; expected one of 'precise', 'fast'"):
        swinref.forward(params, x, cfg, mode="turbo")


@pytest.mark.parametrize("backend_name", ["array_api_strict", "torch"])
def test_fast_on_another_library_raises(backend_name):
    xp = swinref.get_namespace(backend_name)
    cfg = SMALL["rect"]
    params = swinref.to_namespace(random_params(cfg, "float64"), xp)
    x = swinref.to_namespace({"x": np.zeros((1, 3, 32, 32))}, xp)["x"]
    with pytest.raises(TypeError, match="mode='fast' runs on NumPy arrays only.*mode='precise'"):
        swinref.forward(params, x, cfg, mode="fast")


def test_fast_rejects_other_semantics():
    cfg = SwinConfig(**{**SMALL["rect"].to_dict(), "semantics": "torchvision"})
    params = random_params(cfg, "float64")
    with pytest.raises(ValueError, match="semantics='timm' only"):
        swinref.forward(params, np.zeros((1, 3, 32, 32)), cfg, mode="fast")
