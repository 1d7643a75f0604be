"""Check swinref's official semantics and layouts against microsoft/Swin-Transformer itself.

The official code is not a package, so this script imports its model files from a checkout:

    git clone https://github.com/microsoft/Swin-Transformer /tmp/Swin-Transformer
    python benchmarks/official_check.py /tmp/Swin-Transformer

For each case it builds the official model with every parameter random (V2: logit scales uniform in
[log 2, log 200], so some heads exceed the clamp), converts its state dict with
``swinref.convert_state_dict(source="official")``, exports it back with
``swinref.export_state_dict(layout="official")``, loads that into a fresh official model with
``strict=True``, and prints the max abs difference of the logits against swinref under each
semantics. Exit code 1 when an ``official`` row exceeds its bound (float64 1e-10; float32 1e-4)
or the round trip is not exact (V1). Needs torch and timm (the official files import
``timm.models.layers``).
"""

from __future__ import annotations

import importlib.util
import math
import os
import sys
import warnings

import numpy as np
import torch

import swinref

BOUND = {"float64": 1e-10, "float32": 1e-4}


def load(path: str, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def randomize(model, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("logit_scale"):
                u = torch.rand(p.shape, generator=gen, dtype=torch.float64)
                p.copy_(math.log(2.0) + u * math.log(100.0))
            else:
                p.copy_(0.2 * torch.randn(p.shape, generator=gen, dtype=torch.float64))


def logits(model, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def v1_cases(official) -> bool:
    ok = True
    cases = {
        "16x64 w4": dict(
            img_size=(16, 64), embed_dim=16, depths=(2, 2), num_heads=(2, 4), window_size=4, num_classes=5
        ),
        "swin_t 224x448": dict(img_size=(224, 448)),
    }
    for label, kw in cases.items():
        model = official.SwinTransformer(**kw).double().eval()
        randomize(model, 0)
        sd = {k: v.numpy() for k, v in model.state_dict().items()}
        x = np.random.default_rng(1).standard_normal((2, 3, *kw["img_size"]))
        ref = logits(model, x)
        for semantics in ("official", "timm"):
            cfg = swinref.SwinConfig(**kw, semantics=semantics)  # the defaults are swin_t's, as there
            try:
                params = swinref.convert_state_dict(sd, cfg, source="official")
            except ValueError as e:
                print(f"V1 {label} semantics={semantics}: import refused: {str(e).splitlines()[1].strip()}")
                continue
            back = swinref.export_state_dict(params, cfg, layout="official")
            fresh = official.SwinTransformer(**kw).double().eval()
            fresh.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in back.items()})
            exact = back.keys() == sd.keys() and all(np.array_equal(back[k], sd[k]) for k in sd)
            diff = np.abs(np.asarray(swinref.forward(params, x, cfg)) - ref).max()
            verdict = "PASS" if diff <= BOUND["float64"] else "differs"
            print(
                f"V1 {label} float64 semantics={semantics}: max abs {diff:.2e} (bound 1e-10) {verdict}; "
                f"strict load ok, round trip exact: {exact}"
            )
            if semantics == "official":
                ok &= diff <= BOUND["float64"] and exact
    model = official.SwinTransformer(img_size=112).eval()
    sd = {k: v.numpy() for k, v in model.state_dict().items()}
    try:
        swinref.convert_state_dict(sd, swinref.SwinConfig.named("swin_t", img_size=112), source="official")
        print("V1 swin_t 112: imported (expected a refusal)")
        ok = False
    except ValueError as e:
        print(f"V1 swin_t 112: refused: {str(e).splitlines()[-1].strip()}")
    return ok


def v2_cases(official) -> bool:
    ok = True
    cases = {
        "64x32 w4": dict(
            img_size=(64, 32), embed_dim=16, depths=(2, 2), num_heads=(2, 4), window_size=4, num_classes=5
        ),
        "swinv2_tiny_window8_256": dict(img_size=256, window_size=8),
    }
    for label, kw in cases.items():
        model = official.SwinTransformerV2(**kw).eval()
        randomize(model, 0)
        sd = {k: v.numpy() for k, v in model.state_dict().items()}
        hw = kw["img_size"] if isinstance(kw["img_size"], tuple) else (kw["img_size"],) * 2
        x = np.random.default_rng(1).standard_normal((2, 3, *hw))
        for dtype in ("float64", "float32"):
            ref = logits(model.to(getattr(torch, dtype)), x.astype(dtype))
            cells = []
            for semantics in ("official", "timm", "torchvision", "hf"):
                cfg = swinref.SwinV2Config(**kw, semantics=semantics)
                params = swinref.convert_state_dict(sd, cfg, source="official", dtype=dtype)
                diff = np.abs(np.asarray(swinref.forward(params, x.astype(dtype), cfg)) - ref).max()
                cells.append(f"{semantics} {diff:.2e}")
                if semantics == "official":
                    ok &= diff <= BOUND[dtype]
            print(f"V2 {label} {dtype}: max abs " + ", ".join(cells) + f" (official bound {BOUND[dtype]:g})")
    return ok


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not os.path.isdir(os.path.join(argv[0], "models")):
        print("usage: python benchmarks/official_check.py PATH_TO_Swin-Transformer_CHECKOUT", file=sys.stderr)
        return 2
    models = os.path.join(argv[0], "models")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        v1 = load(os.path.join(models, "swin_transformer.py"), "official_swin_v1")
        v2 = load(os.path.join(models, "swin_transformer_v2.py"), "official_swin_v2")
        ok = v1_cases(v1) & v2_cases(v2)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
