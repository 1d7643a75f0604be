"""swinref: a golden-reference forward pass of the Swin Transformer on the Python array API.

One implementation, written against the array API standard, runs on NumPy, CuPy, PyTorch and
array-api-strict. Every family (Swin V1, Swin V2, Video Swin) is served by the same functions:
params are mappings named as in the family's checkpoint; configs are frozen dataclasses with the
reference implementation's constructor argument names; the forward can return every layer's output.

The package is layered, each layer importing only those before it:
``core`` (backend, numerics, window ops, shared layers, the params contract, the one cache) <-
``models`` (one module per family and its weight layouts; the registry) <- ``artifacts`` (golden
files, weights files, image-set stores) <- ``tools`` (test vectors, verify, conformance,
cross-checks, FLOPs, pictures) <- ``cli`` (the command line).

Symbols used in docstrings and shape comments:

    B   batch                       H, W  token grid height and width (D: time, video)
    C   channels of the stage       nH    attention heads;  d = C / nH head dim
    M   window (Mh, Mw)             N     tokens per window, Mh * Mw
    nW  windows per image           s     shift (sh, sw), M // 2 on shifted blocks
"""

from ._version import __version__
from .artifacts.golden import GoldenFileError, read_golden, write_golden
from .artifacts.ports import compare_port
from .artifacts.weights_io import load_params, load_state_dict, params_digest, save_params
from .core.backend import get_namespace, to_namespace, to_numpy
from .core.cache import clear_caches
from .core.params import WeightsError
from .models import v2, video
from .models.registry import (
    FAMILIES,
    convert_state_dict,
    count_params,
    export_state_dict,
    family_of,
    forward,
    forward_features,
    init_params,
    named,
    param_shapes,
)
from .models.v1 import MODEL_ZOO, SwinConfig
from .models.v2 import SwinV2Config
from .models.video import VideoSwinConfig
from .tools.flops import count_flops
from .tools.portcheck import check_onnx, check_port, check_torch

__all__ = [
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
]
