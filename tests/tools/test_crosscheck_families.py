"""``swinref.tools.crosscheck`` and ``swinref crosscheck`` beyond Swin V1: Swin V2 against timm,
torchvision and transformers, Video Swin against torchvision's SwinTransformer3d, on small configs
with seeded random weights, in float64 (logits and every exposed intermediate within 1e-10) and
float32 (the family's rule, ``swinref.tools.crosscheck.tolerance_rule``); plus the command line's
exit codes."""

from __future__ import annotations

import importlib.util
import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("timm")
pytest.importorskip("torchvision")
pytest.importorskip("transformers")

from swinref.cli import main  # noqa: E402
from swinref.tools.crosscheck import (  # noqa: E402
    FAMILY_IMPLS,
    TOLERANCE,
    crosscheck,
)

pytestmark = pytest.mark.crosscheck

# Grids 10 -> 5 with window 4: both stages pad (10 and 5 are no multiples of 4), and the shifted
# blocks roll, so the pad/roll order of each implementation is exercised.
V2_PADDED = dict(
    family="v2", img_size=40, embed_dim=16, depths=[2, 2], num_heads=[2, 4], window_size=4, num_classes=10
)
# a 6x40x56 clip is 3x10x14 tokens, 3x5x7 after the merge: window (2, 4, 4) pads T, H and W in
# both stages without clamping any axis
VIDEO_SMALL = dict(
    family="video", embed_dim=16, depths=[2, 2], num_heads=[2, 4], window_size=[2, 4, 4], num_classes=10
)
CLIP = (6, 40, 56)


def _stage_names(prefix: str, depths) -> set[str]:
    names = {f"{prefix}layers.{i}" for i in range(len(depths))}
    names |= {f"{prefix}layers.{i}.blocks.{j}" for i, d in enumerate(depths) for j in range(d)}
    return names


@pytest.mark.parametrize("impl", FAMILY_IMPLS["v2"])
def test_v2_matches_each_implementation(impl):
    report = crosscheck(impl, V2_PADDED)
    assert report.family == "v2" and report.semantics == impl, (report.family, report.semantics)
    names = {r.name for r in report.rows if r.dtype == "float64"}
    want = _stage_names("", V2_PADDED["depths"]) | {"patch_embed", "layers.1.downsample", "norm", "logits"}
    assert want <= names, f"{impl}: compared layers miss {sorted(want - names)}"
    worst = max((r for r in report.rows if r.dtype == "float64"), key=lambda r: r.max_abs)
    assert worst.max_abs <= TOLERANCE["float64"], f"{impl}: {worst.name} differs by {worst.max_abs:.3e}"
    assert report.passed, report.summary()  # float32 within 3x the implementation's own error + 1e-5


def test_v2_wrong_semantics_fails_and_names_the_right_one():
    report = crosscheck("torchvision", V2_PADDED, semantics="timm", dtypes=("float64",))
    assert not report.passed, report.summary()
    assert report.cause == "matches with semantics=torchvision", report.cause


# 6x40x56 and 9x36x52 are 3x10x14 and 5x9x13 tokens (T padded from 9 to 10 by the patch
# embedding): longer than the time window 2, and padded in T, H and W by every block
@pytest.mark.parametrize("clip", [CLIP, (9, 36, 52)], ids=lambda c: "x".join(map(str, c)))
@pytest.mark.parametrize("impl", FAMILY_IMPLS["video"])
def test_video_matches_each_implementation_on_padded_clips(impl, clip):
    if impl == "mmaction2" and importlib.util.find_spec("mmaction") is None:
        pytest.skip("mmaction2 is not installed (the video-crosscheck extra)")
    report = crosscheck(impl, VIDEO_SMALL, input_size=clip)
    assert report.family == "video" and report.input_size == clip
    names = {r.name for r in report.rows if r.dtype == "float64"}
    want = _stage_names("backbone.", VIDEO_SMALL["depths"]) | {
        "backbone.patch_embed",
        "backbone.layers.0.downsample",
        "backbone.norm",
        "pre_logits",
    }
    if impl == "torchvision":  # mmaction2's SwinTransformer3D has no head
        want.add("logits")
    assert want <= names, f"compared layers miss {sorted(want - names)}"
    for dtype, tol in TOLERANCE.items():
        worst = max((r for r in report.rows if r.dtype == dtype), key=lambda r: r.max_abs)
        assert worst.max_abs <= tol, f"video {dtype}: {worst.name} differs by {worst.max_abs:.3e} > {tol}"
    assert report.passed, report.summary()


def test_impl_not_available_for_family():
    with pytest.raises(ValueError, match="Video Swin Transformer supports: torchvision, mmaction2"):
        crosscheck("timm", VIDEO_SMALL, input_size=CLIP)
    with pytest.raises(ValueError, match="supports: timm, torchvision, hf$"):
        crosscheck("hf_backbone", V2_PADDED)


def test_cli_exit_codes(capsys):
    v2 = json.dumps(V2_PADDED)
    vid = json.dumps(VIDEO_SMALL)
    assert main(["crosscheck", "hf", v2, "--dtypes", "float64"]) == 0
    out = capsys.readouterr().out
    assert "layers.1.blocks.1" in out and "PASS" in out, out
    assert main(["crosscheck", "torchvision", vid, "--input-size", "6x40x56"]) == 0
    out = capsys.readouterr().out
    assert "backbone.layers.1" in out and "6x40x56" in out and "PASS" in out, out
    assert main(["crosscheck", "torchvision", v2, "--semantics", "timm", "--dtypes", "float64"]) == 1
    capsys.readouterr()
    assert main(["crosscheck", "timm", vid, "--input-size", "6x40x56"]) == 2
    err = capsys.readouterr().err
    assert "supports: torchvision, mmaction2" in err and len(err.strip().splitlines()) == 1, err
    assert main(["crosscheck", "torchvision", vid, "--input-size", "40x56"]) == 2
    assert "TxHxW" in capsys.readouterr().err
