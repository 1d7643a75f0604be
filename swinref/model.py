"""The Swin Transformer V1 forward pass, one small pure function per component.

Every function receives its parameters as a mapping keyed by the checkpoint's local names
(``"qkv.weight"``, ``"norm1.bias"``, ...) and the array namespace ``xp``; it uses only the array
API standard. Behaviour follows timm's ``swin_transformer.py`` (roll then pad, per-dimension window
clamp, odd sizes padded in patch merging); where timm reproduces a quirk of the official code the
comment says so. ``SwinConfig.semantics`` switches the size handling (input padding, pad/roll order,
window clamp, odd merges) to torchvision's, transformers', the detection backbones' or the official
classifier's (docs/semantics.md).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from . import backend
from .config import SwinConfig
from .numerics import gelu, layer_norm, linear, softmax
from .windows import (
    clamp_window,
    cyclic_shift,
    pad_bottom_right,
    relative_position_index,
    shift_mask,
    window_partition,
    window_reverse,
)

LN_EPS = 1e-5  # every LayerNorm in Swin V1 (PyTorch default)


class Scope(Mapping):
    """Read-only view of ``params`` under a name prefix: ``Scope(p, "layers.0")["norm.weight"]``."""

    def __init__(self, params: Mapping[str, Any], prefix: str):
        self._params = params
        self._prefix = prefix + "." if prefix else ""

    def __getitem__(self, name: str):
        return self._params[self._prefix + name]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (self._prefix + name) in self._params

    def __iter__(self) -> Iterator[str]:
        n = len(self._prefix)
        return (k[n:] for k in self._params if k.startswith(self._prefix))

    def __len__(self) -> int:
        return sum(1 for _ in self)


# ----- geometry caches -----------------------------------------------------------------------
# Indices and masks depend only on the window, shift, grid size, backend, device and dtype; they
# are rebuilt for every new combination and reused across calls.
_CACHE: dict[tuple, Any] = {}


def _cached(kind: str, key: tuple, build):
    full = (kind,) + key
    value = _CACHE.get(full)
    if value is None:
        value = _CACHE[full] = build()
    return value


def _device_key(dev) -> str:
    return repr(dev)


def clear_caches() -> None:
    """Drop every cached index and mask (they are rebuilt on demand)."""
    _CACHE.clear()


# ----- components ----------------------------------------------------------------------------
def patch_embed(p: Mapping[str, Any], x, *, patch_size: int, patch_norm: bool, xp):
    """Patch embedding: a conv with kernel = stride = P, done as patch reshape + matmul.

    x: (B, Cin, H, W) with H, W multiples of P; p: ``proj.weight`` (C, Cin, P, P), ``proj.bias``
    (C,), and ``norm.weight``/``norm.bias`` (C,) when ``patch_norm``. Returns (B, H/P, W/P, C).
    """
    B, Cin, H, W = x.shape
    P = patch_size
    C = p["proj.weight"].shape[0]
    x = xp.reshape(x, (B, Cin, H // P, P, W // P, P))
    x = xp.permute_dims(x, (0, 2, 4, 1, 3, 5))  # (B, H/P, W/P, Cin, P, P)
    x = xp.reshape(x, (B, H // P, W // P, Cin * P * P))  # patch flattened as (Cin, row, col)
    weight = xp.reshape(p["proj.weight"], (C, Cin * P * P))
    x = linear(x, weight, p["proj.bias"], xp=xp)  # (B, H/P, W/P, C)
    if patch_norm:
        x = layer_norm(x, p["norm.weight"], p["norm.bias"], eps=LN_EPS, xp=xp)
    return x


def relative_position_bias(table, window: tuple[int, int], *, xp):
    """Gather the learned table ((2Mh-1)*(2Mw-1), nH) into a per-head bias (nH, N, N)."""
    N = window[0] * window[1]
    nH = table.shape[1]
    key = (backend.backend_name(xp), _device_key(table.device), tuple(window))
    index = _cached("relpos", key, lambda: relative_position_index(window, xp=xp, device=table.device))
    bias = xp.take(table, xp.reshape(index, (-1,)), axis=0)  # (N*N, nH)
    bias = xp.reshape(bias, (N, N, nH))
    return xp.permute_dims(bias, (2, 0, 1))  # (nH, N, N)


def window_attention(p: Mapping[str, Any], x, *, num_heads: int, window: tuple[int, int],
                     mask=None, xp):
    """Multi-head self-attention inside each window, with relative position bias.

    x: (B*nW, N, C), N = Mh*Mw; mask: None or (nW, N, N), added per window and broadcast over
    batch and heads. p: ``qkv.weight`` (3C, C), ``qkv.bias`` (3C,) or absent,
    ``relative_position_bias_table``, ``proj.weight`` (C, C), ``proj.bias``. Returns (B*nW, N, C).
    """
    B_, N, C = x.shape
    nH = num_heads
    d = C // nH
    qkv = linear(x, p["qkv.weight"], p["qkv.bias"] if "qkv.bias" in p else None, xp=xp)
    qkv = xp.reshape(qkv, (B_, N, 3, nH, d))
    qkv = xp.permute_dims(qkv, (2, 0, 3, 1, 4))  # (3, B_, nH, N, d): q, k, v head-major
    q, k, v = qkv[0, ...], qkv[1, ...], qkv[2, ...]
    q = q * d**-0.5  # the official code scales q, not the logits
    attn = xp.matmul(q, xp.matrix_transpose(k))  # (B_, nH, N, N)
    attn = attn + relative_position_bias(p["relative_position_bias_table"], window, xp=xp)
    if mask is not None:
        nW = mask.shape[0]
        attn = xp.reshape(attn, (B_ // nW, nW, nH, N, N)) + mask[None, :, None, :, :]
        attn = xp.reshape(attn, (B_, nH, N, N))
    attn = softmax(attn, axis=-1, xp=xp)
    out = xp.matmul(attn, v)  # (B_, nH, N, d)
    out = xp.reshape(xp.permute_dims(out, (0, 2, 1, 3)), (B_, N, C))  # heads back to channels
    return linear(out, p["proj.weight"], p["proj.bias"], xp=xp)


def mlp(p: Mapping[str, Any], x, *, xp):
    """fc1 -> exact GELU -> fc2. x: (..., C); returns (..., C)."""
    h = gelu(linear(x, p["fc1.weight"], p["fc1.bias"], xp=xp), xp=xp)  # (..., r*C)
    return linear(h, p["fc2.weight"], p["fc2.bias"], xp=xp)


def config_grid(cfg: SwinConfig, stage: int) -> tuple[int, int]:
    """Token grid of ``stage`` at the configured img_size (what timm and the official code build for).

    timm sizes stage i as ceil(grid / 2**i) (its merges pad odd grids); the official code needs
    even grids, where ceil and floor agree.
    """
    H, W = cfg.image_hw
    P, scale = cfg.patch_size, 2**stage
    return (-(-(H // P) // scale), -(-(W // P) // scale))


def block_geometry(cfg: SwinConfig, stage: int, resolution: tuple[int, int],
                   shifted: bool) -> tuple[tuple[int, int], tuple[int, int]]:
    """Window and shift of a block of ``stage`` whose input grid is ``resolution`` (H, W).

    timm and the official code decide the clamp once, for the configured img_size (timm keeps that
    decision when ``strict_img_size=False`` and only rebuilds the mask); torchvision and
    transformers decide it per call from the actual grid; detection backbones never clamp.
    """
    window = cfg.window
    target_shift = (window[0] // 2, window[1] // 2) if shifted else (0, 0)
    if cfg.semantics in ("timm", "official"):
        resolution = config_grid(cfg, stage)
    return clamp_window(resolution, window, target_shift, rule=cfg.semantics)


def table_window(cfg: SwinConfig, stage: int) -> tuple[int, int]:
    """The window the relative position tables of ``stage`` are sized for.

    timm and the official code build each attention for its clamped window, so a clamped stage has
    a smaller table; torchvision, transformers and detection backbones always use the configured one.
    """
    if cfg.semantics in ("timm", "official"):
        return block_geometry(cfg, stage, config_grid(cfg, stage), shifted=False)[0]
    return cfg.window


def swin_block(p: Mapping[str, Any], x, *, num_heads: int, window: tuple[int, int],
               shift: tuple[int, int], roll_first: bool = True, pad: bool = True, xp):
    """One pre-norm Swin block: x + (S)W-MSA(norm1(x)), then x + MLP(norm2(x)).

    x: (B, H, W, C); window and shift are the already clamped values for this resolution.
    The grid is zero-padded at the bottom/right to a multiple of the window; ``roll_first`` rolls
    the unpadded grid and pads after (timm), otherwise it pads and rolls the padded grid
    (official detection code, torchvision, transformers). ``pad=False`` rejects grids that need
    padding (the official classifier cannot pad). The mask is built for the padded grid.
    Returns (B, H, W, C).
    """
    B, H, W, C = x.shape
    Mh, Mw = window
    pad_h, pad_w = (-H) % Mh, (-W) % Mw
    if (pad_h or pad_w) and not pad:
        raise ValueError(f"grid {H}x{W} is not a multiple of the window {Mh}x{Mw}; the official "
                         "classifier does not pad (use semantics='detection' to pad)")
    Hp, Wp = H + pad_h, W + pad_w
    h = layer_norm(x, p["norm1.weight"], p["norm1.bias"], eps=LN_EPS, xp=xp)
    if roll_first:  # timm rolls first and then pads bottom/right
        h = cyclic_shift(h, (-shift[0], -shift[1]), xp=xp)
        h = pad_bottom_right(h, pad_h, pad_w, xp=xp)  # (B, Hp, Wp, C)
    else:  # the others pad, then roll the padded grid
        h = pad_bottom_right(h, pad_h, pad_w, xp=xp)  # (B, Hp, Wp, C)
        h = cyclic_shift(h, (-shift[0], -shift[1]), xp=xp)
    mask = None
    if any(shift):
        key = (backend.backend_name(xp), _device_key(x.device), str(x.dtype), (Hp, Wp), window, shift)
        mask = _cached("mask", key, lambda: shift_mask((Hp, Wp), window, shift, xp=xp,
                                                       dtype=x.dtype, device=x.device))
    windows = window_partition(h, window, xp=xp)  # (B*nW, N, C)
    windows = window_attention(Scope(p, "attn"), windows, num_heads=num_heads, window=window,
                               mask=mask, xp=xp)
    h = window_reverse(windows, window, Hp, Wp, xp=xp)  # (B, Hp, Wp, C)
    if roll_first:
        h = cyclic_shift(h[:, :H, :W, :], shift, xp=xp)  # (B, H, W, C)
    else:
        h = cyclic_shift(h, shift, xp=xp)[:, :H, :W, :]  # (B, H, W, C)
    x = x + h
    return x + mlp(Scope(p, "mlp"), layer_norm(x, p["norm2.weight"], p["norm2.bias"], eps=LN_EPS, xp=xp), xp=xp)


def patch_merging(p: Mapping[str, Any], x, *, pad_odd: bool = True, xp):
    """2x2 space-to-depth, LayerNorm(4C), Linear(4C -> 2C, no bias).

    x: (B, H, W, C); odd H or W is zero-padded at the bottom/right first (timm, torchvision,
    transformers, detection backbones); ``pad_odd=False`` rejects it (the official classifier).
    Channel order of the 4C: x[0::2, 0::2], x[1::2, 0::2], x[0::2, 1::2], x[1::2, 1::2]
    (the official order; the row offset varies fastest). Returns (B, ceil(H/2), ceil(W/2), 2C).
    """
    B, H, W, C = x.shape
    if (H % 2 or W % 2) and not pad_odd:
        raise ValueError(f"patch merging needs an even grid, got {H}x{W}; the official classifier "
                         "asserts it (use semantics='detection' to pad odd grids)")
    x = pad_bottom_right(x, H % 2, W % 2, xp=xp)
    H2, W2 = (H + 1) // 2, (W + 1) // 2
    x = xp.reshape(x, (B, H2, 2, W2, 2, C))  # (B, H/2, dh, W/2, dw, C)
    x = xp.permute_dims(x, (0, 1, 3, 4, 2, 5))  # (B, H/2, W/2, dw, dh, C)
    x = xp.reshape(x, (B, H2, W2, 4 * C))
    x = layer_norm(x, p["norm.weight"], p["norm.bias"], eps=LN_EPS, xp=xp)
    return linear(x, p["reduction.weight"], None, xp=xp)  # (B, H/2, W/2, 2C)


def head(p: Mapping[str, Any], x, *, xp):
    """Mean over tokens, then the classifier. x: (B, H, W, C) already normed.

    Returns (pre_logits (B, C), logits (B, num_classes) or None when there is no head).
    """
    pooled = xp.mean(x, axis=(1, 2))  # (B, C)
    if "head.fc.weight" not in p:
        return pooled, None
    return pooled, linear(pooled, p["head.fc.weight"], p["head.fc.bias"], xp=xp)


# ----- input checks --------------------------------------------------------------------------
def check_input(x, cfg: SwinConfig) -> None:
    """Raise a clear error unless x is a float (B, in_chans, H, W) image batch of cfg's size."""
    xp = backend.namespace(x)
    shape = tuple(x.shape)
    if len(shape) != 4:
        raise ValueError(f"input must have rank 4, (B, {cfg.in_chans}, H, W); got shape {shape}")
    if shape[1] != cfg.in_chans:
        raise ValueError(
            f"input has {shape[1]} channels, config expects in_chans={cfg.in_chans}: "
            f"shape must be (B, {cfg.in_chans}, H, W), got {shape}"
        )
    if x.dtype not in (xp.float32, xp.float64):
        raise TypeError(f"input dtype must be float32 or float64, got {x.dtype}")
    if shape[0] < 1:
        raise ValueError(f"input batch is empty: shape {shape}")
    H, W = shape[2:]
    P = cfg.patch_size
    strict = cfg.semantics == "official" or (cfg.semantics == "timm" and cfg.strict_img_size)
    if strict and (H, W) != cfg.image_hw:
        Hc, Wc = cfg.image_hw
        hint = (" (or strict_img_size=False for any multiple of the patch size)"
                if cfg.semantics == "timm" else "")
        raise ValueError(
            f"input size {H}x{W} does not match the config's img_size {Hc}x{Wc}; "
            f"expected shape (B, {cfg.in_chans}, {Hc}, {Wc}){hint}"
        )
    if cfg.semantics == "timm" and (H % P or W % P):  # timm's patch embedding does not pad
        raise ValueError(f"input size {H}x{W} is not a multiple of the patch size {P}; timm "
                         f"semantics needs (B, {cfg.in_chans}, k*{P}, l*{P})")
    if min(H, W) < (P if cfg.semantics == "torchvision" else 1):
        raise ValueError(f"input size {H}x{W} is too small to give a single {P}x{P} patch token; "
                         f"expected H, W >= {P if cfg.semantics == 'torchvision' else 1}")


def check_params(params: Mapping[str, Any], x) -> None:
    """Params must live in x's namespace and have x's float dtype (no silent promotion)."""
    xp = backend.namespace(x)
    for name, value in params.items():
        try:
            backend.namespace(x, value)
        except TypeError as e:
            raise TypeError(
                f"parameter {name!r} is not in the input's array namespace ({backend.backend_name(xp)}); "
                "move the params with swinref.to_namespace(params, xp)"
            ) from e
        if value.device != x.device:
            raise ValueError(
                f"parameter {name!r} is on device {value.device} but the input is on {x.device}; "
                "move the params with swinref.to_namespace(params, xp, device=...)"
            )
        if value.dtype != x.dtype:
            raise TypeError(
                f"parameter {name!r} is {value.dtype} but the input is {x.dtype}; swinref never "
                "promotes silently: cast with swinref.to_namespace(params, xp, dtype=...)"
            )


def check_param_shapes(params: Mapping[str, Any], cfg: SwinConfig, *, backbone: bool = False) -> None:
    """Every parameter ``cfg`` needs must be present with its shape; list all that are not.

    ``backbone=True`` leaves out the final norm and the head, which feature extraction never uses.
    """
    from .weights import WeightsError, param_shapes

    expected = param_shapes(cfg)
    if backbone:
        expected = {n: v for n, v in expected.items() if not n.startswith(("norm.", "head."))}
    missing, misshaped = [], []
    for name, shape in expected.items():
        if name not in params:
            missing.append(name)
        elif tuple(params[name].shape) != shape:
            misshaped.append(f"{name}: got {tuple(params[name].shape)}, expected {shape}")
    # a model parameter the config does not use (say qkv.bias with qkv_bias=False) would otherwise
    # be used or ignored silently
    model_prefixes = ("patch_embed.", "layers.", "norm.", "head.")
    unexpected = [n for n in params if n.startswith(model_prefixes) and n not in expected
                  and not (backbone and n.startswith(("norm.", "head.")))]
    if missing or misshaped or unexpected:
        lines = ["params do not match the config (build them with swinref.convert_state_dict):"]
        for title, items in (("missing", missing), ("mis-shaped", misshaped), ("unexpected", unexpected)):
            if items:
                lines.append(f"  {title} ({len(items)}):")
                lines.extend(f"    {item}" for item in items)
        raise WeightsError("\n".join(lines))


# ----- the whole model -----------------------------------------------------------------------
FORWARD_MODES = ("precise", "fast")  # "fast": swinref/fast.py, NumPy only, checked against "precise"


def prepare_image(x, cfg: SwinConfig, *, xp):
    """Bring the image to a multiple of the patch size the way ``cfg.semantics`` does.

    transformers and the detection backbones zero-pad at the bottom/right; torchvision's strided
    conv drops the remainder rows/columns; timm and the official code accept only multiples
    (checked in :func:`check_input`). x: (B, Cin, H, W); returns (B, Cin, H', W').
    """
    B, Cin, H, W = x.shape
    P = cfg.patch_size
    if cfg.semantics in ("hf", "detection"):
        pad_h, pad_w = (-H) % P, (-W) % P
        if pad_h or pad_w:
            x = xp.permute_dims(x, (0, 2, 3, 1))  # (B, H, W, Cin)
            x = pad_bottom_right(x, pad_h, pad_w, xp=xp)
            x = xp.permute_dims(x, (0, 3, 1, 2))  # (B, Cin, H', W')
    elif cfg.semantics == "torchvision":
        x = x[:, :, : H - H % P, : W - W % P]
    return x


def _check_table(table, window: tuple[int, int], cfg: SwinConfig, name: str,
                 resolution: tuple[int, int]) -> None:
    Mh, Mw = window
    rows = (2 * Mh - 1) * (2 * Mw - 1)
    if table.shape[0] == rows:
        return
    if cfg.semantics == "hf":  # transformers sizes tables for the configured window, then clamps
        raise ValueError(
            f"{name}: at a {resolution[0]}x{resolution[1]} grid transformers clamps the window to "
            f"{Mh}x{Mw} but its bias table is for {cfg.window[0]}x{cfg.window[1]}; transformers' "
            "SwinModel fails on this input size too (its backbone, semantics='detection', runs it)")
    raise ValueError(f"{name}: table has {table.shape[0]} rows, the {Mh}x{Mw} window this block "
                     f"uses at a {resolution[0]}x{resolution[1]} grid needs {rows}")


def encode(params: Mapping[str, Any], x, cfg: SwinConfig, *, inter: dict[str, Any],
           last_stage: int | None = None, xp):
    """Patch embedding and stages 0..last_stage; fills ``inter`` and returns the last stage output.

    x: (B, Cin, H, W) already checked. Returns (B, h, w, C_last).
    """
    x = prepare_image(x, cfg, xp=xp)
    h = patch_embed(Scope(params, "patch_embed"), x, patch_size=cfg.patch_size,
                    patch_norm=cfg.patch_norm, xp=xp)  # (B, H/4, W/4, C)
    inter["patch_embed"] = h
    roll_first = cfg.semantics == "timm"  # timm rolls, then pads; the others pad, then roll
    last = cfg.num_stages - 1 if last_stage is None else last_stage
    for i, depth in enumerate(cfg.depths[: last + 1]):
        stage = f"layers.{i}"
        if i > 0:  # timm keeps the merge at the start of the next stage (official: end of stage)
            h = patch_merging(Scope(params, f"{stage}.downsample"), h,
                              pad_odd=cfg.semantics != "official", xp=xp)
            inter[f"{stage}.downsample"] = h
        resolution = (h.shape[1], h.shape[2])
        for j in range(depth):
            block = f"{stage}.blocks.{j}"
            window, shift = block_geometry(cfg, i, resolution, shifted=j % 2 == 1)
            _check_table(params[f"{block}.attn.relative_position_bias_table"], window, cfg, block,
                         resolution)
            h = swin_block(Scope(params, block), h, num_heads=cfg.num_heads[i], window=window,
                           shift=shift, roll_first=roll_first, pad=cfg.semantics != "official",
                           xp=xp)
            inter[block] = h
        inter[stage] = h
    return h


def _check_call(params, x, cfg, *, backbone: bool = False) -> None:
    if not isinstance(cfg, SwinConfig):
        raise TypeError(f"cfg must be a SwinConfig, got {type(cfg).__name__}; "
                        "build one with SwinConfig(**kwargs) or SwinConfig.named(name)")
    check_input(x, cfg)
    check_params(params, x)
    check_param_shapes(params, cfg, backbone=backbone)


def forward(params: Mapping[str, Any], x, cfg: SwinConfig, *, return_intermediates: bool = False,
            mode: str = "precise"):
    """Swin V1 forward pass.

    params: mapping named like timm's state dict, arrays in x's namespace, device and dtype.
    x: (B, in_chans, H, W), float32 or float64; H x W = cfg.img_size unless ``cfg.semantics``
    accepts other sizes (docs/semantics.md).
    Returns logits (B, num_classes) (pooled features (B, num_features) when num_classes == 0);
    with ``return_intermediates`` returns ``(logits, intermediates)`` where intermediates maps
    stable names to arrays: ``patch_embed`` (B, H/4, W/4, C); ``layers.{i}.downsample`` (the patch
    merging at the start of stage i >= 1); ``layers.{i}.blocks.{j}`` (B, h, w, C_i); ``layers.{i}``
    (stage output); ``norm`` (final LayerNorm, B, h, w, C); ``pre_logits`` (B, C); ``logits``.
    Names are timm's module names, so hooks on a timm model give the matching tensors.
    ``mode``: "precise" (this portable code, the definition of correct) or "fast" (NumPy only,
    ``swinref.fast``, semantics "timm" at the configured img_size; raises TypeError for other
    array libraries rather than falling back).
    """
    if getattr(cfg, "version", 1) == 2:  # a SwinV2Config: the V2 forward in swinref/v2.py
        from .v2 import forward as forward_v2
        return forward_v2(params, x, cfg, return_intermediates=return_intermediates)
    if mode not in FORWARD_MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(map(repr, FORWARD_MODES))}")
    _check_call(params, x, cfg)
    if mode == "fast":
        from . import fast

        return fast.forward(params, x, cfg, return_intermediates=return_intermediates)
    xp = backend.namespace(x)
    inter: dict[str, Any] = {}
    h = encode(params, x, cfg, inter=inter, xp=xp)
    h = layer_norm(h, params["norm.weight"], params["norm.bias"], eps=LN_EPS, xp=xp)
    inter["norm"] = h
    pooled, logits = head(params, h, xp=xp)
    inter["pre_logits"] = pooled
    out = pooled if logits is None else logits
    if logits is not None:
        inter["logits"] = logits
    return (out, inter) if return_intermediates else out


def forward_features(params: Mapping[str, Any], x, cfg: SwinConfig, *,
                     out_indices: tuple[int, ...] | None = None, norm: bool = False,
                     fmt: str = "NCHW") -> tuple[Any, ...]:
    """Multi-scale feature maps for dense prediction: one per stage in ``out_indices``.

    Stage i's map is its last block's output, before the next stage's patch merging, so the maps
    have strides 4, 8, 16, 32 and C, 2C, 4C, 8C channels (timm ``features_only=True``,
    transformers ``SwinBackbone``, mmdet ``SwinTransformer``). With ``norm=True`` each map goes
    through its own LayerNorm, params ``norm{i}.weight`` / ``norm{i}.bias`` (mmdet's names; the
    transformers backbone calls them ``hidden_states_norms.stage{i+1}``). ``fmt``: "NCHW" (B, C, h, w)
    or "NHWC" (B, h, w, C). ``out_indices=None`` takes every stage. Returns a tuple in
    ``out_indices`` order.
    """
    if fmt not in ("NCHW", "NHWC"):
        raise ValueError(f"fmt must be 'NCHW' or 'NHWC', got {fmt!r}")
    n = cfg.num_stages if isinstance(cfg, SwinConfig) else 0
    indices = tuple(range(n)) if out_indices is None else tuple(out_indices)
    bad = [i for i in indices if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < n]
    if bad or not indices:
        raise ValueError(f"out_indices must be a non-empty sequence of stage numbers in 0..{n - 1}, "
                         f"got {out_indices!r}")
    _check_call(params, x, cfg, backbone=True)
    if norm:
        missing = [f"norm{i}.{leaf}" for i in indices for leaf in ("weight", "bias")
                   if f"norm{i}.{leaf}" not in params]
        if missing:
            raise ValueError(f"norm=True needs a LayerNorm per output stage; missing params {missing} "
                             f"(shape (C_i,), named norm{{i}}.weight / norm{{i}}.bias)")
    xp = backend.namespace(x)
    inter: dict[str, Any] = {}
    encode(params, x, cfg, inter=inter, last_stage=max(indices), xp=xp)
    maps = []
    for i in indices:
        h = inter[f"layers.{i}"]  # (B, h, w, C_i)
        if norm:
            h = layer_norm(h, params[f"norm{i}.weight"], params[f"norm{i}.bias"], eps=LN_EPS, xp=xp)
        maps.append(xp.permute_dims(h, (0, 3, 1, 2)) if fmt == "NCHW" else h)  # (B, C_i, h, w)
    return tuple(maps)
