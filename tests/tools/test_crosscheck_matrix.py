"""The cross-check matrix: timm, torchvision and transformers against swinref with the matching
semantics, on swin_t at 224, a small config, an input that needs padding and a last stage smaller
than the window, in float64 and float32, on the logits and every stage output; plus the probable
cause search and the command line."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("timm")
pytest.importorskip("torchvision")
pytest.importorskip("transformers")

from swinref.cli import main  # noqa: E402
from swinref.tools.crosscheck import (  # noqa: E402
    IMPLS,
    MATRIX_CASES,
    TOLERANCE,
    crosscheck,
    matrix_case,
    run_matrix_cell,
)

pytestmark = pytest.mark.crosscheck

# swin_t at 224 once per classifier implementation; transformers' backbone shares its code path
# with "hf" and is checked on the small cases only.
CELLS = [
    (impl, case)
    for impl in IMPLS
    for case in MATRIX_CASES
    if not (impl == "hf_backbone" and case == "swin_t_224")
]


@pytest.mark.parametrize("impl,case", CELLS)
def test_matrix_cell(impl, case):
    cfg, _ = matrix_case(case, impl)
    report = run_matrix_cell(impl, case)
    if impl == "hf" and case == "last_lt_window":
        # transformers clamps the 6x10 grid's window to 6 but keeps a 7x7 bias: it raises, and so
        # does swinref with semantics="hf" (the backbone row below runs the same case)
        assert report.both_raised, f"expected both to raise, got: {report.summary()}"
        assert "must match the size" in report.impl_error, report.impl_error
        assert "transformers clamps the window to 6x6" in report.swinref_error, report.swinref_error
        return
    assert report.impl_error is None and report.swinref_error is None, report.summary()
    names = {r.name for r in report.rows}
    stages = {f"layers.{i}" for i in range(cfg.num_stages)}
    final = {f"features.{i}" for i in range(cfg.num_stages)} if impl == "hf_backbone" else {"logits"}
    assert stages | final | {"patch_embed"} <= names, (
        f"compared layers miss {sorted((stages | final) - names)}"
    )
    for dtype, tol in TOLERANCE.items():  # tolerances justified in swinref.tools.crosscheck.TOLERANCE
        rows = [r for r in report.rows if r.dtype == dtype]
        worst = max(rows, key=lambda r: r.max_abs)
        assert worst.max_abs <= tol, (
            f"{impl}/{case} {dtype}: {worst.name} differs by {worst.max_abs:.3e} > {tol}; "
            f"first beyond tolerance {report.first_divergence[dtype]}"
        )
    assert report.passed


@pytest.mark.parametrize("img,size", [(32, (64, 64)), (64, (32, 32))])
def test_timm_dynamic_size(img, size):
    """timm with strict_img_size=False keeps the clamp decided for img_size and rebuilds only the
    mask: built for 32 (stage 2 grid 4 = window: no shift) and run at 64 (grid 8) it still does not
    shift; built for 64 and run at 32 it rolls a 4x4 grid by 2 with a mask."""
    cfg, _ = matrix_case("small", "timm")
    report = crosscheck(
        "timm", dict(cfg.to_dict(), img_size=img), input_size=size, dtypes=("float64",), find_cause=False
    )
    assert report.passed, report.summary()


def test_probable_cause_names_the_matching_semantics():
    """torchvision compared with timm semantics on a grid that needs padding (15x14, window 4)
    diverges at the first shifted block; only the pad/roll order differs, and the search says so."""
    cfg = dict(img_size=(60, 56), embed_dim=8, depths=(2, 2), num_heads=(2, 4), window_size=4, num_classes=5)
    report = crosscheck("torchvision", cfg, semantics="timm", dtypes=("float64",))
    assert not report.passed, report.summary()
    assert report.first_divergence["float64"] == "layers.0.blocks.1", report.first_divergence
    assert report.cause == ("matches with semantics=torchvision: the difference is pad/roll order"), (
        report.cause
    )


def test_cli_exit_codes(capsys):
    cfg = json.dumps(
        dict(img_size=32, embed_dim=8, depths=[2, 2], num_heads=[2, 4], window_size=4, num_classes=5)
    )
    assert main(["crosscheck", "torchvision", cfg, "--input-size", "37x30", "--dtypes", "float64"]) == 0
    out = capsys.readouterr().out
    assert "layers.1" in out and "PASS" in out, out
    # timm semantics rejects a non-multiple of the patch size that torchvision crops: divergence
    code = main(
        [
            "crosscheck",
            "torchvision",
            cfg,
            "--input-size",
            "37x30",
            "--dtypes",
            "float64",
            "--semantics",
            "timm",
        ]
    )
    out = capsys.readouterr().out
    assert code == 1, f"expected exit code 1 on divergence, got {code}"
    assert "swinref raised" in out, out
    assert main(["crosscheck", "torchvision", cfg, "--input-size", "0x5"]) == 2
    assert "--input-size must be H or HxW" in capsys.readouterr().err


def test_checkpoint_weights(tmp_path):
    """weights=path loads a checkpoint in the implementation's own layout into both sides; a file
    of another layout is refused with the missing names."""
    from swinref import save_params
    from swinref.tools.crosscheck import build_impl, randomize_, resolve_config

    cfg = resolve_config(
        dict(
            img_size=32,
            embed_dim=8,
            depths=[2, 2],
            num_heads=[2, 4],
            window_size=4,
            num_classes=5,
            semantics="torchvision",
        )
    )
    module = randomize_(build_impl("torchvision", cfg), seed=7)
    path = tmp_path / "tv.safetensors"
    save_params({k: v.numpy() for k, v in module.state_dict().items()}, path)
    report = crosscheck("torchvision", cfg, weights=str(path), dtypes=("float64",))
    assert report.passed, report.summary()
    seeded = crosscheck("torchvision", cfg, weights=7, dtypes=("float64",))
    assert seeded.rows == report.rows, "the checkpoint of seed 7 must give the seed-7 figures"
    other = {f"x.{k}": v.numpy() for k, v in module.state_dict().items()}
    save_params(other, tmp_path / "other.safetensors")
    with pytest.raises(ValueError, match="not a torchvision checkpoint for this config; missing"):
        crosscheck("torchvision", cfg, weights=str(tmp_path / "other.safetensors"))
