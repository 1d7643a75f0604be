"""``swinref check``: ONNX exports run by onnxruntime and PyTorch modules with forward hooks,
every parameter random, against swinref's float64 forward under calibrated float32 bounds.

The broken port is the one-block mistake the calibrated bounds exist for: the exact GELU replaced
by its tanh approximation in a single block. It must fail, and where the port exposes the blocks'
outputs the first diverging tensor must be that block.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")
pytest.importorskip("torchvision")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from timm.models.swin_transformer import SwinTransformer  # noqa: E402

import swinref  # noqa: E402
from swinref.cli import main  # noqa: E402
from swinref.tools.portcheck import check_onnx, check_port, check_torch  # noqa: E402

# two stages, 16x16 then 8x8 token grids, window 4: shifted windows, masks, one merge
SMALL = dict(img_size=64, embed_dim=32, depths=(2, 2), num_heads=(2, 4), window_size=4, num_classes=10)
CFG = swinref.SwinConfig(**SMALL)
SMALL_JSON = json.dumps(SMALL)
BROKEN = "layers.1.blocks.0"  # the block whose GELU is replaced by the tanh approximation


def small_timm() -> torch.nn.Module:
    """timm's SwinTransformer for SMALL (a factory for ``swinref check torch``)."""
    return SwinTransformer(**SMALL).eval()


def small_torchvision() -> torch.nn.Module:
    """torchvision's SwinTransformer for SMALL (a factory for ``swinref check torch``)."""
    from torchvision.models.swin_transformer import SwinTransformer as TV

    return TV(
        patch_size=[4, 4], embed_dim=32, depths=[2, 2], num_heads=[2, 4], window_size=[4, 4], num_classes=10
    )


def _loaded(params) -> torch.nn.Module:
    m = small_timm()
    sd = swinref.export_state_dict(params, CFG, layout="timm")
    m.load_state_dict({k: torch.from_numpy(v.astype(np.float32)) for k, v in sd.items()})
    return m


def _break(m: torch.nn.Module) -> torch.nn.Module:
    s, j = int(BROKEN.split(".")[1]), int(BROKEN.split(".")[3])
    m.layers[s].blocks[j].mlp.act = torch.nn.GELU(approximate="tanh")
    return m


class WithIntermediates(torch.nn.Module):
    """timm's model returning the logits and every block's output, in swinref's names."""

    def __init__(self, m):
        super().__init__()
        self.m = m
        self.names = ["logits"] + [
            f"layers.{s}.blocks.{j}" for s, d in enumerate(SMALL["depths"]) for j in range(d)
        ]

    def forward(self, x):
        x = self.m.patch_embed(x)
        outs = []
        for stage in self.m.layers:
            x = stage.downsample(x)
            for block in stage.blocks:
                x = block(x)
                outs.append(x)
        return (self.m.forward_head(self.m.norm(x)), *outs)


@pytest.fixture(scope="module")
def params():
    return swinref.init_params(CFG, seed=0, scheme="random")


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).standard_normal((1, 3, 64, 64)).astype(np.float32)


def _export(module, x, path, *, names, dynamo=False):
    kwargs = (
        dict(opset_version=18, dynamo=True, external_data=False)
        if dynamo
        else dict(opset_version=17, dynamo=False)
    )
    torch.onnx.export(
        module, (torch.from_numpy(x),), str(path), input_names=["x"], output_names=names, **kwargs
    )


@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy-opset17", "dynamo-opset18"])
def test_faithful_onnx_export_passes(tmp_path, params, x, dynamo, capsys):
    path = tmp_path / "small.onnx"
    _export(_loaded(params), x, path, names=["logits"], dynamo=dynamo)
    r = check_onnx(path, CFG, params)
    assert r.passed, [(row.name, row.max_abs, row.bound) for row in r.compared]
    assert any("no float64" in n for n in r.notes)
    weights = tmp_path / "w.safetensors"
    swinref.save_params(params, weights)
    rc = main(["check", "onnx", str(path), "--model", SMALL_JSON, "--weights", str(weights)])
    out = capsys.readouterr().out
    assert rc == 0 and "PASS" in out and "runs in float32" in out, out


def test_broken_onnx_export_fails_at_the_broken_block(tmp_path, params, x, capsys):
    m = WithIntermediates(_break(_loaded(params)))
    path = tmp_path / "broken.onnx"
    _export(m, x, path, names=m.names)
    r = check_onnx(path, CFG, params)
    assert not r.passed and r.first_diverging == BROKEN, [(row.name, row.passed) for row in r.compared]
    before = [row for row in r.compared if row.name.startswith("layers.0")]
    assert before and all(row.passed for row in before), "blocks before the broken one must pass"
    logits_only = tmp_path / "broken_logits.onnx"
    _export(_break(_loaded(params)), x, logits_only, names=["logits"])
    assert main(["check", "onnx", str(logits_only), "--model", SMALL_JSON]) == 1, "seeded weights by default"
    assert "first diverging layer: logits" in capsys.readouterr().out


def test_check_torch_timm_passes_and_broken_fails_at_its_block(params):
    r = check_torch(small_timm(), CFG, params)
    hooked = {row.name for row in r.compared}
    assert r.passed and {"patch_embed", "layers.0.blocks.1", "layers.1.downsample", "norm"} <= hooked, hooked
    broken = check_torch(_break(_loaded(params)), CFG, params, load_weights=False)
    assert not broken.passed and broken.first_diverging == BROKEN
    r64 = check_torch(small_timm(), CFG, params, dtype="float64")
    assert r64.passed and all(row.bound == 1e-10 for row in r64.compared) and len(r64.compared) >= 10


def test_check_torch_torchvision_by_factory(capsys):
    argv = [
        "check",
        "torch",
        "test_portcheck:small_torchvision",
        "--model",
        SMALL_JSON,
        "--layout",
        "torchvision",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "PASS" in out and "layers.1.blocks.1" in out and "layers.1.downsample" in out, out
    assert main([*argv, "--dtype", "float64", "--require", "logits,layers.0.blocks.0"]) == 0
    assert (
        main(
            ["check", "torch", "test_portcheck:small_timm", "--model", SMALL_JSON, "--layout", "torchvision"]
        )
        == 2
    )
    assert "does not load swinref's weights in the 'torchvision' layout" in capsys.readouterr().err
    assert main(["check", "torch", "no_such_module_xyz:f", "--model", SMALL_JSON]) == 2
    assert "cannot import 'no_such_module_xyz'" in capsys.readouterr().err


def test_check_port_callable_logits_only(params):
    m = _break(_loaded(params))

    def port(x):
        with torch.no_grad():
            return m(torch.from_numpy(x))

    r = check_port(port, CFG, params)
    assert not r.passed and r.first_diverging == "logits" and len(r.compared) == 1
    faithful = _loaded(params)
    assert check_port(lambda x: faithful(torch.from_numpy(x)), CFG, params).passed


def test_check_onnx_bad_file_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx model")
    assert main(["check", "onnx", str(bad), "--model", SMALL_JSON]) == 2
    err = capsys.readouterr().err
    assert "cannot load ONNX model" in err and len(err.strip().splitlines()) == 1, err


def test_check_torch_exported_program_file(tmp_path, params, x, capsys):
    path = tmp_path / "small.pt2"
    program = torch.export.export(_loaded(params), (torch.from_numpy(x),))
    torch.export.save(program, str(path))
    rc = main(["check", "torch", str(path), "--model", SMALL_JSON])
    out = capsys.readouterr().out
    assert rc == 0 and "exported program" in out and "PASS" in out, out
    assert main(["check", "torch", str(path), "--model", SMALL_JSON, "--dtype", "float64"]) == 2
    assert "the module failed on swinref's float64 input" in capsys.readouterr().err


TINY_FAMILIES = {
    "v1": swinref.SwinConfig(
        img_size=32, embed_dim=8, depths=(2, 1), num_heads=(1, 2), window_size=4, num_classes=5
    ),
    "v2": swinref.SwinV2Config(
        img_size=32, embed_dim=8, depths=(2, 1), num_heads=(1, 2), window_size=4, num_classes=5
    ),
    "video": swinref.VideoSwinConfig(
        embed_dim=8, depths=(2, 1), num_heads=(1, 2), window_size=(2, 4, 4), num_classes=5
    ),
}


@pytest.mark.parametrize("family", list(TINY_FAMILIES))
def test_check_port_serves_every_family(family):
    cfg = TINY_FAMILIES[family]
    size = (4, 32, 32) if family == "video" else None
    params = swinref.init_params(cfg, seed=1, scheme="random")
    p32 = {n: v.astype(np.float32) for n, v in params.items()}

    def port(x):  # swinref itself in float32, every intermediate
        logits, inter = swinref.forward(p32, x, cfg, return_intermediates=True)
        return inter

    r = check_port(port, cfg, params, size=size)
    assert r.passed and len(r.compared) == len(r.rows), [(x.name, x.max_abs, x.bound) for x in r.rows]

    def shifted(x):
        out = dict(port(x))
        last_block = [n for n in out if ".blocks." in n][-1]
        out[last_block] = out[last_block] + 1e-3
        return out

    last_block = [row.name for row in r.rows if ".blocks." in row.name][-1]
    assert check_port(shifted, cfg, params, size=size).first_diverging == last_block
