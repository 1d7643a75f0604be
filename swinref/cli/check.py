"""``swinref check onnx|torch``: run a port on swinref's input and compare it layer by layer."""

from __future__ import annotations

import argparse

from ..artifacts.ports import seeded_source
from ..artifacts.weights_io import load_params
from ..models import registry
from ..tools.portcheck import check_onnx, check_torch, load_torch_spec, read_name_map
from .common import add_model_arguments, int_at_least, model_config, parse_names, print_port_comparison

CHECK_HELP = """\
Run a port on swinref's seeded input with the given weights and compare what it exposes (the
logits, and intermediates where available) with swinref's float64 forward pass. A float32 port is
held to per-tensor bounds calibrated by swinref's own float32 run on the same input and weights
(README, tolerance policy); a float64 port to 1e-10; --atol overrides. The report names the first
diverging layer. Exit 0 within bounds, 1 beyond (or a --require tensor absent), 2 usage or input
error."""


def _params(args: argparse.Namespace, cfg):
    if args.weights is None:
        return registry.init_params(cfg, seed=args.seed, scheme="random"), seeded_source(args.seed, "random")
    params = load_params(args.weights, cfg, source=args.source, dtype="float64")
    return params, args.weights


def _cmd_onnx(args: argparse.Namespace) -> int:
    label, cfg, size = model_config(args)
    params, source = _params(args, cfg)
    result = check_onnx(
        args.target,
        cfg,
        params,
        size=size,
        input_seed=args.input_seed,
        batch=args.batch,
        names=read_name_map(args.name_map),
        require=parse_names(args.require),
        atol=args.atol,
    )
    return print_port_comparison(
        result,
        reference=f"swinref float64 forward, {label}, weights {source}",
        port=f"onnxruntime {args.target}",
    )


def _cmd_torch(args: argparse.Namespace) -> int:
    label, cfg, size = model_config(args)
    params, source = _params(args, cfg)
    module, exported = load_torch_spec(args.target)
    result = check_torch(
        module,
        cfg,
        params,
        layout=args.layout,
        load_weights=not exported,
        name_map=read_name_map(args.name_map),
        dtype=args.dtype,
        size=size,
        input_seed=args.input_seed,
        batch=args.batch,
        require=parse_names(args.require),
        atol=args.atol,
    )
    extra = ["exported program: its own weights are used; they must be the ones named"] if exported else []
    return print_port_comparison(
        result,
        reference=f"swinref float64 forward, {label}, weights {source}",
        port=f"torch {args.target}",
        extra=extra,
    )


def _common(p: argparse.ArgumentParser) -> None:
    add_model_arguments(p)
    p.add_argument(
        "--weights",
        metavar="FILE",
        default=None,
        help="the port's weights (.safetensors, .npz, .pth) in any layout of the family; default: "
        "seeded random weights, swinref.init_params(cfg, seed=SEED, scheme='random')",
    )
    p.add_argument("--source", default=None, help="layout of --weights (default: the family's own)")
    p.add_argument("--seed", type=int_at_least(0), default=0, help="seed of the default weights (default 0)")
    p.add_argument("--input-seed", type=int_at_least(0), default=0, help="seed of the input (default 0)")
    p.add_argument("--batch", type=int_at_least(1), default=1, help="inputs in the batch (default 1)")
    p.add_argument(
        "--name-map",
        metavar="JSON",
        default=None,
        help="JSON object or .json file: the port's output or module names -> swinref tensor names",
    )
    p.add_argument(
        "--require",
        metavar="NAMES",
        default="logits",
        help="comma-separated tensors that must be present (default logits)",
    )
    p.add_argument("--atol", type=float, default=None, help="one absolute bound for every tensor")


def register(sub) -> None:
    """Add the ``check`` command (``check onnx``, ``check torch``) to the ``swinref`` command line."""
    p = sub.add_parser(
        "check",
        help="run a port (ONNX, PyTorch) and compare it layer by layer",
        description=CHECK_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    kinds = p.add_subparsers(dest="kind", required=True, metavar="KIND")
    o = kinds.add_parser(
        "onnx",
        help="an ONNX model run by onnxruntime (CPU, float32)",
        description=CHECK_HELP + "\n\nonnxruntime's CPU Conv has no float64: the model runs in float32. "
        "Graph outputs named with swinref's tensor names are compared as those; a single output, "
        "or the first shaped (B, num_classes), is the logits.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    o.add_argument("target", metavar="MODEL.onnx", help="the ONNX model")
    _common(o)
    o.set_defaults(func=_cmd_onnx)
    t = kinds.add_parser(
        "torch",
        help="a PyTorch module (package.module:factory or a torch.export file), with forward hooks",
        description=CHECK_HELP + "\n\nSPEC: package.module:factory (called with no arguments, e.g. "
        "torchvision.models:swin_t), whose module gets the weights in --layout with strict loading, "
        "or a torch.export program file (its own weights). Forward hooks record the modules the "
        "name map names (default: modules named like swinref's intermediates, as in timm; "
        "torchvision's features.* with --layout torchvision).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    t.add_argument("target", metavar="SPEC", help="package.module:factory or a torch.export file")
    _common(t)
    t.add_argument("--layout", default=None, help="layout the module loads (default: the family's own)")
    t.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="the module's dtype")
    t.set_defaults(func=_cmd_torch)
