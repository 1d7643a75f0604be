"""Check a port directly: any callable, an ONNX model (onnxruntime), or a PyTorch module.

Each check runs the port on swinref's seeded input for the given weights, takes the tensors the
port exposes (logits, and intermediates where it has them), maps them onto swinref's names and
shapes (:func:`swinref.artifacts.ports.adapt_shape`) and compares them with swinref's float64
forward pass, per tensor, under the bounds of :func:`swinref.artifacts.ports.compare_port`: 1e-10
for a float64 port, calibrated bounds from swinref's own float32 run for a float32 port. The
result names the first diverging layer in forward order.

* :func:`check_port`: ``port(x) -> logits`` or a mapping of swinref names to arrays.
* :func:`check_onnx`: an ``.onnx`` file run by onnxruntime on the CPU. Its Conv kernel has no
  float64, so a model exported in float32 runs in float32 (and the report says so). Graph
  outputs named with swinref's names are compared as those tensors; a single unnamed output, or
  the first output shaped (B, num_classes), is the logits.
* :func:`check_torch`: a ``torch.nn.Module`` (or ``package.module:factory`` building one, or a
  ``torch.export`` program file). Weights are loaded in ``layout`` with ``strict=True``; forward
  hooks record every module whose name the name map gives a swinref name (by default: the
  modules named like swinref's intermediates, as in timm, or torchvision's ``features.*``).
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..artifacts.fileio import read_regular, require_regular
from ..artifacts.golden import Golden, golden_input
from ..artifacts.ports import PortComparison, compare_port
from ..artifacts.weights_io import params_digest
from ..core import backend
from ..models import registry

__all__ = [
    "ONNX_NOTE",
    "check_onnx",
    "check_port",
    "check_torch",
    "golden_in_memory",
    "load_torch_spec",
    "read_name_map",
    "torchvision_name_map",
]

ONNX_NOTE = "onnxruntime's CPU Conv has no float64 kernel: the ONNX model runs in float32"


def golden_in_memory(cfg: Any, params: Mapping[str, Any], x: np.ndarray) -> Golden:
    """swinref's float64 forward pass on ``x`` as a :class:`Golden` (nothing is written)."""
    p64 = {n: np.asarray(backend.to_numpy(v), dtype=np.float64) for n, v in params.items()}
    x64 = np.asarray(x, dtype=np.float64)
    logits, inter = registry.forward(p64, x64, cfg, return_intermediates=True)
    tensors = {"input": x64}
    names = [n for n in inter if n != "logits"]
    tensors.update({f"intermediates/{n}": backend.to_numpy(inter[n]) for n in names})
    tensors["logits"] = backend.to_numpy(logits)
    meta = {
        "config": registry.config_dict(cfg),
        "dtype": "float64",
        "weights_digest": params_digest(p64),
        "weights_source": "given",
        "intermediates": names,
    }
    return Golden(tensors, meta)


def _inputs(cfg: Any, params: Mapping[str, Any] | None, *, size, input_seed: int, batch: int):
    if params is None:
        params = registry.init_params(cfg, seed=0, scheme="random")
    x = golden_input(cfg, batch=batch, seed=input_seed, size=size)
    return {n: np.asarray(backend.to_numpy(v), dtype=np.float64) for n, v in params.items()}, x


def check_port(
    port: Callable[[np.ndarray], Any],
    cfg: Any,
    params: Mapping[str, Any] | None = None,
    *,
    dtype: str = "float32",
    size: tuple[int, ...] | None = None,
    input_seed: int = 0,
    batch: int = 1,
    require: tuple[str, ...] | list[str] = ("logits",),
    atol: float | None = None,
) -> PortComparison:
    """Run ``port`` on swinref's seeded input (cast to ``dtype``) and compare what it returns.

    ``port(x)`` returns the logits, or a mapping of swinref tensor names (``logits``,
    ``layers.2.blocks.3``, ...) to arrays of any library with ``__array__`` or DLPack. ``params``
    are the weights the port holds (default: ``init_params(cfg, seed=0, scheme="random")``).
    """
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    p64, x = _inputs(cfg, params, size=size, input_seed=input_seed, batch=batch)
    golden = golden_in_memory(cfg, p64, x)
    out = port(x.astype(dtype))
    tensors = dict(out) if isinstance(out, Mapping) else {"logits": out}
    tensors = {n: _host(v) for n, v in tensors.items()}
    return compare_port(golden, tensors, require=require, atol=atol, params=p64)


def _host(v: Any) -> np.ndarray:
    if hasattr(v, "detach"):  # a torch tensor
        v = v.detach().cpu().numpy()
    return np.asarray(backend.to_numpy(v) if not isinstance(v, np.ndarray) else v)


# ----- ONNX ----------------------------------------------------------------------------------
def check_onnx(
    model: str | os.PathLike,
    cfg: Any,
    params: Mapping[str, Any] | None = None,
    *,
    size: tuple[int, ...] | None = None,
    input_seed: int = 0,
    batch: int = 1,
    names: Mapping[str, str] | None = None,
    require: tuple[str, ...] | list[str] = ("logits",),
    atol: float | None = None,
) -> PortComparison:
    """Run an ONNX model with onnxruntime (CPU) and compare its outputs.

    ``names`` maps graph output names to swinref names; unmapped outputs named like swinref's
    tensors are taken as those, and the logits are found as the module docstring says. Outputs
    that map to nothing are listed in the result's notes.
    """
    import onnxruntime as ort  # noqa: PLC0415

    path = os.fspath(model)
    require_regular(path, what="ONNX model", max_bytes=4 << 30)
    try:  # from the path, so that weights stored beside it as external data are found
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own error types for invalid models
        raise ValueError(f"cannot load ONNX model {path}: {' '.join(str(e).split())[:300]}") from e
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise ValueError(f"ONNX model {path} has {len(inputs)} inputs; expected one, the image or clip batch")
    dtype = "float64" if inputs[0].type == "tensor(double)" else "float32"
    p64, x = _inputs(cfg, params, size=size, input_seed=input_seed, batch=batch)
    golden = golden_in_memory(cfg, p64, x)
    known = {n[len("intermediates/") :] if n.startswith("intermediates/") else n for n in golden.tensors}
    out_names = [o.name for o in session.get_outputs()]
    try:
        values = session.run(None, {inputs[0].name: x.astype(dtype)})
    except Exception as e:
        raise ValueError(
            f"onnxruntime could not run {path} on input {x.shape}: {' '.join(str(e).split())[:300]}"
        ) from e
    given = dict(names or {})
    tensors: dict[str, np.ndarray] = {}
    unmapped = []
    n_classes = golden.logits.shape[-1]
    for name, value in zip(out_names, values, strict=True):
        target = given.get(name, name if name in known else None)
        if target is None and "logits" not in tensors and "logits" not in given.values():
            if len(out_names) == 1 or tuple(np.shape(value)) == (x.shape[0], n_classes):
                target = "logits"
        if target is None:
            unmapped.append(name)
            continue
        tensors[target] = np.asarray(value)
    result = compare_port(golden, tensors, require=require, atol=atol, params=p64)
    notes = [ONNX_NOTE] if dtype == "float32" else []
    if unmapped:
        notes.append(f"graph outputs not mapped to a swinref tensor: {', '.join(unmapped)}")
    return PortComparison(
        rows=result.rows,
        port_dtype=result.port_dtype,
        golden_dtype=result.golden_dtype,
        bound_rule=result.bound_rule,
        notes=notes + result.notes,
    )


# ----- PyTorch -------------------------------------------------------------------------------
def load_torch_spec(spec: str):
    """A module from ``package.module:factory`` (called with no arguments) or a torch.export file.

    Returns ``(module, exported)``: ``exported`` is True for a ``torch.export`` program (its weights
    are its own; no hooks, its outputs only).
    """
    if ":" in spec and not os.path.exists(spec):
        mod_name, _, attr = spec.partition(":")
        try:
            module = importlib.import_module(mod_name)
        except ImportError as e:
            raise ValueError(f"cannot import {mod_name!r} from {spec!r}: {e}") from e
        factory = module
        for part in attr.split("."):
            if not hasattr(factory, part):
                raise ValueError(f"{mod_name!r} has no {attr!r} (from {spec!r})")
            factory = getattr(factory, part)
        if not callable(factory):
            raise ValueError(f"{spec!r} is not callable; expected a factory that returns a torch.nn.Module")
        return factory(), False
    if not os.path.exists(spec):
        raise FileNotFoundError(
            f"{spec}: neither a file nor package.module:factory (e.g. torchvision.models:swin_t)"
        )
    import torch  # noqa: PLC0415

    try:
        program = torch.export.load(spec)
    except Exception as e:  # a file torch.export cannot read
        raise ValueError(f"cannot load {spec} as a torch.export program: {type(e).__name__}: {e}") from e
    return program.module(), True


def torchvision_name_map(cfg: Any) -> dict[str, str]:
    """torchvision's module names -> swinref's: stem, blocks, merges, final norm (V1, V2, Video).

    Video Swin merges at the end of a stage (``backbone.layers.{s}.downsample``, whose output is
    the stage's); V1 and V2 at the start of the next (``layers.{s}.downsample``).
    """
    if registry.family_of(cfg).name == "video":
        out = {"features.0": "backbone.patch_embed", "norm": "backbone.norm"}
        for s, depth in enumerate(cfg.depths):
            for j in range(depth):
                out[f"features.{2 * s + 1}.{j}"] = f"backbone.layers.{s}.blocks.{j}"
            if s > 0:
                out[f"features.{2 * s}"] = f"backbone.layers.{s - 1}.downsample"
        return out
    out = {"features.0": "patch_embed", "norm": "norm"}
    for s, depth in enumerate(cfg.depths):
        out[f"features.{2 * s + 1}"] = f"layers.{s}"
        for j in range(depth):
            out[f"features.{2 * s + 1}.{j}"] = f"layers.{s}.blocks.{j}"
        if s > 0:
            out[f"features.{2 * s}"] = f"layers.{s}.downsample"
    return out


def read_name_map(text: str | None) -> dict[str, str]:
    """A name map from inline JSON (``{"features.0": "patch_embed"}``) or a ``.json`` file."""
    if not text:
        return {}
    raw = read_regular(text, what="name map", max_bytes=1 << 20).decode() if text.endswith(".json") else text
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ValueError(f"--name-map must be a JSON object of module name -> swinref name: {e}") from e
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValueError("--name-map must be a JSON object mapping module names to swinref tensor names")
    return value


def check_torch(
    module: Any,
    cfg: Any,
    params: Mapping[str, Any] | None = None,
    *,
    layout: str | None = None,
    load_weights: bool = True,
    name_map: Mapping[str, str] | None = None,
    dtype: str = "float32",
    size: tuple[int, ...] | None = None,
    input_seed: int = 0,
    batch: int = 1,
    require: tuple[str, ...] | list[str] = ("logits",),
    atol: float | None = None,
) -> PortComparison:
    """Run a PyTorch module with forward hooks and compare its outputs and hooked intermediates.

    ``params`` (default: seeded random) are exported in ``layout`` (default: the family's own;
    ``torchvision`` also picks torchvision's name map) and loaded with ``strict=True`` after the
    module is cast to ``dtype`` and put in eval mode, unless ``load_weights`` is False: then the
    module holds ``params`` already and runs as it is (an exported program, a prepared module).
    ``name_map``: module name -> swinref name; by default every module named like a swinref
    intermediate. A hooked output that is a tuple contributes its first element.
    """
    import torch  # noqa: PLC0415

    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    p64, x = _inputs(cfg, params, size=size, input_seed=input_seed, batch=batch)
    golden = golden_in_memory(cfg, p64, x)
    family = registry.family_of(cfg)
    layout = layout or family.default_layout
    if load_weights:  # cast before loading, so that float64 weights are not rounded to float32
        module = module.to(torch.float64 if dtype == "float64" else torch.float32).eval()
    if load_weights:
        if layout not in family.layouts:
            raise ValueError(
                f"--layout {layout!r} is not a layout of {family.title}; "
                f"its layouts: {', '.join(family.layouts)}"
            )
        state = registry.export_state_dict(p64, cfg, layout=layout)
        try:
            module.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()})
        except RuntimeError as e:
            raise ValueError(
                f"the module does not load swinref's weights in the {layout!r} layout: "
                f"{' '.join(str(e).split())[:400]}"
            ) from e
    known = [n[len("intermediates/") :] for n in golden.tensors if n.startswith("intermediates/")]
    if name_map:
        mapping = dict(name_map)
    else:
        mapping = torchvision_name_map(cfg) if layout == "torchvision" else {}
        mapping.update({n: n for n in known if n not in mapping.values()})
    records: dict[str, np.ndarray] = {}
    handles = []
    submodules = dict(module.named_modules()) if hasattr(module, "named_modules") else {}
    for mod_name, target in mapping.items():
        sub = submodules.get(mod_name)
        if sub is None:
            continue

        def hook(_m, _inp, out, target=target):
            value = out[0] if isinstance(out, tuple) else out
            records[target] = (
                value.detach().to(torch.float64 if dtype == "float64" else torch.float32).numpy()
            )

        handles.append(sub.register_forward_hook(hook))
    try:
        with torch.no_grad():
            out = module(torch.from_numpy(x.astype(dtype)))
    except (RuntimeError, TypeError, ValueError) as e:  # the module refused swinref's input
        raise ValueError(
            f"the module failed on swinref's {dtype} input {x.shape}: {' '.join(str(e).split())[:300]}"
        ) from e
    finally:
        for h in handles:
            h.remove()
    logits = out[0] if isinstance(out, tuple) else out
    records["logits"] = logits.detach().numpy()
    return compare_port(golden, records, require=require, atol=atol, params=p64)
