"""Ports of swin_t checked against swinref: port x case -> logits max abs, calibrated bound, verdict.

timm's SwinTransformer in float32 (with forward hooks), its ONNX exports (legacy exporter at
opset 17, dynamo exporter at opset 18) run by onnxruntime, and the same model with the tanh GELU
in block layers.2.blocks.3, called as a port that returns logits only. Two weight draws: swinref's
``init_params(scheme="random")`` and the tests' ``randomize_`` (every parameter random in both).
The last columns: bound / max abs, and the first tensor beyond its bound.

    PYTHONPATH=$PWD python benchmarks/port_check_table.py    # about 2 minutes on 2 cores
"""

import os
import sys
import tempfile
import warnings

import numpy as np
import timm
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
warnings.filterwarnings("ignore")
from timm_helpers import randomize_  # noqa: E402

import swinref  # noqa: E402
from swinref.models import registry  # noqa: E402
from swinref.tools.portcheck import check_onnx, check_port, check_torch  # noqa: E402

cfg = swinref.named("swin_t")


def timm_model(init):
    m = timm.create_model("swin_tiny_patch4_window7_224").eval()
    if init == "helpers":
        randomize_(m, seed=0)
        sd = {k: v.double().numpy() for k, v in m.state_dict().items()}
        params = registry.convert_state_dict(sd, cfg, source="timm")
    else:
        params = registry.init_params(cfg, seed=0, scheme="random")
        sd = registry.export_state_dict(params, cfg, layout="timm")
        m.load_state_dict({k: torch.from_numpy(v.astype("float32")) for k, v in sd.items()})
    return m, params


def row(port, case, r):
    lg = [x for x in r.rows if x.name == "logits"][0]
    first = r.first_diverging
    print(
        f"| {port} | {case} | float32 | {lg.max_abs:.3e} | {lg.bound:.3e} | "
        f"{'pass' if lg.passed else 'FAIL'} | {lg.bound / lg.max_abs:.2f} | {first} |",
        flush=True,
    )


tmp = tempfile.mkdtemp()
x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype("float32")
for init in ("random", "helpers"):
    m, params = timm_model(init)
    r = check_torch(m, cfg, params, load_weights=False, require=["logits"])
    row("timm (torch)", f"faithful, {init}", r)
    for fmt in ("legacy17", "dynamo18"):
        path = os.path.join(tmp, f"swin_t_{init}_{fmt}.onnx")
        if fmt == "legacy17":
            torch.onnx.export(
                m,
                (torch.from_numpy(x),),
                path,
                opset_version=17,
                dynamo=False,
                input_names=["x"],
                output_names=["logits"],
            )
        else:
            torch.onnx.export(
                m,
                (torch.from_numpy(x),),
                path,
                opset_version=18,
                dynamo=True,
                external_data=False,
                input_names=["x"],
                output_names=["logits"],
            )
        r = check_onnx(path, cfg, params)
        row(f"ONNX {fmt}", f"faithful, {init}", r)
    m.layers[2].blocks[3].mlp.act = torch.nn.GELU(approximate="tanh")
    r = check_torch(m, cfg, params, load_weights=False, require=["logits"])
    row("timm (torch)", f"tanh GELU layers.2.blocks.3, {init}", r)

    def logits_only(xx, m=m):
        with torch.no_grad():
            return m(torch.from_numpy(xx)).numpy()

    r = check_port(logits_only, cfg, params)
    row("callable (logits only)", f"tanh GELU layers.2.blocks.3, {init}", r)
