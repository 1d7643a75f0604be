"""Measure: port x case -> logits max abs, bound, pass/fail (float32 ports vs swinref float64)."""
import sys, warnings, numpy as np, torch, timm
sys.path.insert(0, "/work/wt-11a/tests")
warnings.filterwarnings("ignore")
import swinref
from swinref.models import registry
from swinref.tools.portcheck import check_torch, check_onnx, check_port
from timm_helpers import randomize_

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
    print(f"| {port} | {case} | float32 | {lg.max_abs:.3e} | {lg.bound:.3e} | {'pass' if lg.passed else 'FAIL'} | {lg.bound/lg.max_abs:.2f} | {first} |", flush=True)

x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype("float32")
for init in ("random", "helpers"):
    m, params = timm_model(init)
    r = check_torch(m, cfg, params, load_weights=False, require=["logits"])
    row("timm (torch)", f"faithful, {init}", r)
    for fmt in ("legacy17", "dynamo18"):
        path = f"/tmp/w11/swin_t_{init}_{fmt}.onnx"
        if fmt == "legacy17":
            torch.onnx.export(m, (torch.from_numpy(x),), path, opset_version=17, dynamo=False, input_names=["x"], output_names=["logits"])
        else:
            torch.onnx.export(m, (torch.from_numpy(x),), path, opset_version=18, dynamo=True, input_names=["x"], output_names=["logits"])
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
