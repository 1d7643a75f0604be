"""The public API: what ``swinref`` exports, that every export is documented, that the package's
layers import one way only, and that every top-level function serves every family."""

from __future__ import annotations

import ast
import pathlib

import numpy as np
import pytest

import swinref
from swinref.core.params import WeightsError

PACKAGE = pathlib.Path(swinref.__file__).parent
LAYERS = ("core", "models", "artifacts", "tools", "cli")  # each may import only those before it

EXPECTED_ALL = {
    "FAMILIES",
    "MODEL_ZOO",
    "GoldenFileError",
    "SwinConfig",
    "SwinV2Config",
    "VideoSwinConfig",
    "WeightsError",
    "__version__",
    "check_onnx",
    "check_port",
    "check_torch",
    "clear_caches",
    "compare_port",
    "convert_state_dict",
    "count_flops",
    "count_params",
    "export_state_dict",
    "family_of",
    "forward",
    "forward_features",
    "get_namespace",
    "init_params",
    "load_params",
    "load_state_dict",
    "named",
    "param_shapes",
    "params_digest",
    "read_golden",
    "save_params",
    "to_namespace",
    "to_numpy",
    "v2",
    "video",
    "write_golden",
}


def test_all_is_pinned():
    assert set(swinref.__all__) == EXPECTED_ALL, (
        f"added: {sorted(set(swinref.__all__) - EXPECTED_ALL)}, "
        f"removed: {sorted(EXPECTED_ALL - set(swinref.__all__))}"
    )
    for name in swinref.__all__:
        assert hasattr(swinref, name), f"swinref.__all__ names {name!r} but the package lacks it"


@pytest.mark.parametrize(
    "name", sorted(n for n in EXPECTED_ALL if n not in ("__version__", "FAMILIES", "MODEL_ZOO"))
)
def test_every_export_has_a_docstring(name):
    obj = getattr(swinref, name)
    assert (obj.__doc__ or "").strip(), f"swinref.{name} has no docstring"


def _own_imports(path: pathlib.Path) -> list[tuple[str, list[str], bool]]:
    """(absolute module, imported names, inside a function) for every import of swinref itself."""
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
        base = parts
    else:
        base = parts[:-1]
    tree = ast.parse(path.read_text())
    in_func = {
        id(n)
        for f in ast.walk(tree)
        if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
        for n in ast.walk(f)
    }
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                mod = ".".join(base[: len(base) - node.level + 1] + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] == "swinref":
                out.append((mod, [a.name for a in node.names], id(node) in in_func))
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "swinref":
                    out.append((a.name, [], id(node) in in_func))
    return out


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_layers_import_one_way_at_the_top(path):
    here = _layer(".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts))
    for module, names, inside in _own_imports(path):
        assert not inside, f"{path.name} imports {module} inside a function; import it at the top"
        there = _layer(module)
        if here is not None and there is not None:
            assert there <= here, (
                f"{path.relative_to(PACKAGE)} ({LAYERS[here]}) imports {module} "
                f"({LAYERS[there]}): layers import only the ones before them"
            )
        if there is not None and there != here:
            private = [n for n in names if n.startswith("_") and n != "__version__"]
            assert not private, f"{path.relative_to(PACKAGE)} imports private names {private} from {module}"


# ----- one contract for every family ------------------------------------------------------------
V1 = swinref.SwinConfig(
    img_size=32, embed_dim=8, depths=(2, 1), num_heads=(1, 2), window_size=4, num_classes=5
)
V2 = swinref.SwinV2Config(
    img_size=32, embed_dim=8, depths=(2, 1), num_heads=(1, 2), window_size=4, num_classes=5
)
VIDEO = swinref.VideoSwinConfig(
    embed_dim=8, depths=(2, 1), num_heads=(1, 2), window_size=(2, 4, 4), num_classes=5
)
FAMILY_CASES = [(V1, (2, 3, 32, 32)), (V2, (2, 3, 32, 32)), (VIDEO, (2, 3, 4, 32, 32))]
IDS = ["v1", "v2", "video"]


@pytest.mark.parametrize("cfg, shape", FAMILY_CASES, ids=IDS)
def test_top_level_functions_serve_every_family(cfg, shape):
    params = swinref.init_params(cfg, seed=1, scheme="random")
    shapes = swinref.param_shapes(cfg)
    assert list(params) == list(shapes)
    assert swinref.count_params(cfg) == sum(int(np.prod(s)) for s in shapes.values())
    assert swinref.count_flops(cfg, input_size=shape[2:]).total > 0
    x = np.random.default_rng(0).standard_normal(shape)
    logits, inter = swinref.forward(params, x, cfg, return_intermediates=True)
    assert logits.shape == (2, 5) and inter["logits"] is logits
    again = swinref.convert_state_dict(swinref.export_state_dict(params, cfg), cfg)
    assert all(np.array_equal(again[k], params[k]) for k in params)
    with pytest.raises(ValueError, match="unknown mode 'bogus'"):
        swinref.forward(params, x, cfg, mode="bogus")


@pytest.mark.parametrize("cfg, shape", FAMILY_CASES, ids=IDS)
def test_params_contract_is_one_weights_error_per_family(cfg, shape):
    params = swinref.init_params(cfg, seed=1)
    first = next(n for n in params if n.endswith("norm.weight") or ".norm" in n)
    bad = dict(params)
    bad[first] = np.ones((1,))  # mis-shaped
    del bad[next(n for n in params if n.endswith("qkv.weight"))]  # missing
    bad["layers.9.blocks.0.norm1.weight" if cfg is not VIDEO else "backbone.layers.9.norm1.weight"] = np.ones(
        3
    )
    x = np.zeros(shape)
    with pytest.raises(WeightsError) as err:
        swinref.forward(bad, x, cfg)
    text = str(err.value)
    assert "missing (1)" in text and "mis-shaped (1)" in text and "unexpected (1)" in text, text
    with pytest.raises(WeightsError) as err:
        swinref.convert_state_dict(bad, cfg)
    text = str(err.value)
    assert "missing (1)" in text and "mis-shaped (1)" in text and "unexpected (1)" in text, text


def test_fast_mode_is_v1_only():
    params = swinref.init_params(V2, seed=0)
    with pytest.raises(ValueError, match="Swin Transformer V2 has no fast path"):
        swinref.forward(params, np.zeros((1, 3, 32, 32)), V2, mode="fast")


@pytest.mark.parametrize(
    "name, family",
    [
        ("swin_t", "v1"),
        ("swin_tiny_patch4_window7_224", "v1"),
        ("swinv2_tiny_window8_256", "v2"),
        ("swin_tiny_patch244_window877_kinetics400_1k", "video"),
        ("swin_b_sthv2", "video"),
    ],
)
def test_named_serves_every_family(name, family):
    cfg = swinref.named(name)
    assert swinref.family_of(cfg).name == family


def test_forward_features_says_which_families_have_it():
    with pytest.raises(ValueError, match="forward_features is not available for Video Swin"):
        swinref.forward_features({}, np.zeros((1, 3, 4, 32, 32)), VIDEO)


def test_one_cache_cleared_by_one_call():
    from swinref.core.cache import cache_size

    swinref.forward(swinref.init_params(V1), np.zeros((1, 3, 32, 32)), V1, mode="fast")
    swinref.forward(swinref.init_params(V1), np.zeros((1, 3, 32, 32)), V1)
    assert cache_size() > 0
    swinref.clear_caches()
    assert cache_size() == 0
