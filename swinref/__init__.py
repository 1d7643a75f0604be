"""swinref: a golden-reference forward pass of the Swin Transformer on the Python array API.

One implementation, written against the array API standard, runs on NumPy, CuPy, PyTorch and
array-api-strict. Params are mappings named as in timm's state dict; configs are frozen
dataclasses with timm's constructor argument names; the forward can return every layer's output.

Symbols used in docstrings and shape comments:

    B   batch                       H, W  token grid height and width
    C   channels of the stage       nH    attention heads;  d = C / nH head dim
    M   window (Mh, Mw)             N     tokens per window, Mh * Mw
    nW  windows per image           s     shift (sh, sw), M // 2 on shifted blocks
"""

from .backend import get_namespace, to_namespace, to_numpy
from .config import MODEL_ZOO, SwinConfig
from .flops import count_flops
from .golden import GoldenFileError, read_golden, write_golden
from .model import forward, forward_features
from . import v2  # Swin V2: swinref.v2.SwinV2Config, swinref.v2.forward, ...
from . import video  # Video Swin: swinref.video.VideoSwinConfig, swinref.video.forward, ...
from .weights import (
    WeightsError,
    convert_state_dict,
    count_params,
    init_params,
    load_params,
    load_state_dict,
    param_shapes,
    params_digest,
    save_params,
)

__version__ = "0.1.0"

__all__ = [
    "MODEL_ZOO",
    "GoldenFileError",
    "SwinConfig",
    "WeightsError",
    "__version__",
    "convert_state_dict",
    "count_flops",
    "count_params",
    "forward",
    "forward_features",
    "get_namespace",
    "init_params",
    "load_params",
    "load_state_dict",
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
