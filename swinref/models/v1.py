"""Swin Transformer V1 (Liu et al. 2021, arXiv:2103.14030): config, params and forward pass.

Every function receives its parameters as a mapping keyed by the checkpoint's local names
(``"qkv.weight"``, ``"norm1.bias"``, ...) and the array namespace ``xp``; it uses only the array
API standard. Behaviour follows timm's ``swin_transformer.py`` (roll then pad, per-dimension window
clamp, odd sizes padded in patch merging); where timm reproduces a quirk of the official code the
comment says so. ``SwinConfig.semantics`` switches the size handling (input padding, pad/roll order,
window clamp, odd merges) to torchvision's, transformers', the detection backbones' or the official
classifier's (docs/semantics.md). Other layouts of the weights: :mod:`swinref.models.v1_layouts`;
the NumPy fast path: :mod:`swinref.models.v1_fast`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..core import backend
from ..core.config import ImageGeometry, is_int
from ..core.layers import (
    gather_bias,
    index_like,
    mask_for,
    mlp,
    patch_embed,
    pool_head,
    space_to_depth,
)
from ..core.layers import window_attention as window_attention_bias
from ..core.numerics import LN_EPS, layer_norm, linear
from ..core.params import (
    INIT_SCHEMES,
    Scope,
    check_arrays_like,
    check_image_batch,
    check_param_shapes,
    count,
    random_value,
    seeded_params,
    trunc_normal,
)
from ..core.windows import (
    clamp_window,
    pad_bottom_right,
    shifted_window_apply,
)

# Implementations whose size handling a config can reproduce (docs/semantics.md has the table).
SEMANTICS = ("official", "timm", "torchvision", "hf", "detection")
FAMILY = "v1"


# ----- config --------------------------------------------------------------------------------
@dataclass(frozen=True)
class SwinConfig(ImageGeometry):
    """A Swin Transformer V1 classifier (or backbone with ``num_classes=0``).

    Field names and defaults are those of timm's ``SwinTransformer`` constructor, so a config can
    be written as ``SwinConfig(**timm_kwargs)``. Defaults describe Swin-T at 224 (the paper's table).
    """

    family: ClassVar[str] = FAMILY

    img_size: int | tuple[int, int] = 224  # input H, W; the forward checks the input against it
    patch_size: int = 4  # patch embedding kernel = stride
    in_chans: int = 3
    num_classes: int = 1000  # 0: no head, the forward returns pooled features
    embed_dim: int = 96  # C of stage 1; stage i has C * 2**i
    depths: tuple[int, ...] = (2, 2, 6, 2)
    num_heads: tuple[int, ...] = (3, 6, 12, 24)
    window_size: int | tuple[int, int] = 7  # M, or (Mh, Mw)
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    patch_norm: bool = True  # LayerNorm after the patch embedding
    # whose behaviour on sizes that are not multiples of the patch/window to reproduce (SEMANTICS;
    # docs/semantics.md): padding, pad/roll order, window clamp, odd merges
    semantics: str = "timm"
    strict_img_size: bool = True  # timm: the input must be img_size; False accepts any multiple of P

    def __post_init__(self):
        self._normalise("img_size", "window_size")
        self.validate()

    def validate(self) -> None:
        problems = []
        H = W = None
        try:
            H, W = self.image_hw
        except ValueError as e:
            problems.append(str(e))
        try:
            if min(self.window) < 1:
                problems.append(f"window_size must be >= 1, got {self.window_size!r}")
        except ValueError as e:
            problems.append(str(e))
        P = self.patch_size
        if not is_int(P) or P < 1:
            problems.append(f"patch_size must be a positive int, got {P!r}")
        elif H is not None and W is not None and (H % P or W % P):
            problems.append(f"img_size {H}x{W} is not a multiple of patch_size {P}")
        elif H is not None and W is not None and (H < P or W < P):
            problems.append(f"img_size {H}x{W} is smaller than one patch ({P})")
        problems += self._stage_problems()
        for name in ("qkv_bias", "patch_norm", "strict_img_size"):
            if not isinstance(getattr(self, name), bool):
                problems.append(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.semantics not in SEMANTICS:
            problems.append(f"semantics must be one of {', '.join(SEMANTICS)}; got {self.semantics!r}")
        self._raise_if(problems)

    @classmethod
    def named(cls, name: str, **overrides: Any) -> SwinConfig:
        """A released model's config by short name (``swin_t``) or timm name.

        Overrides replace fields, e.g. ``SwinConfig.named("swin_t", num_classes=10)``.
        """
        key = SHORT_NAMES.get(name, name)
        if key not in MODEL_ZOO:
            valid = sorted(set(MODEL_ZOO) | set(SHORT_NAMES))
            raise ValueError(f"unknown model {name!r}; expected one of: {', '.join(valid)}")
        return cls(**{**MODEL_ZOO[key], **overrides})


# Released ImageNet models (Liu et al. 2021, Table 1; timm's registrations of the same names).
MODEL_ZOO: dict[str, dict[str, Any]] = {
    "swin_tiny_patch4_window7_224": dict(
        img_size=224, embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), window_size=7
    ),
    "swin_small_patch4_window7_224": dict(
        img_size=224, embed_dim=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24), window_size=7
    ),
    "swin_base_patch4_window7_224": dict(
        img_size=224, embed_dim=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32), window_size=7
    ),
    "swin_base_patch4_window12_384": dict(
        img_size=384, embed_dim=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32), window_size=12
    ),
    "swin_large_patch4_window7_224": dict(
        img_size=224, embed_dim=192, depths=(2, 2, 18, 2), num_heads=(6, 12, 24, 48), window_size=7
    ),
    "swin_large_patch4_window12_384": dict(
        img_size=384, embed_dim=192, depths=(2, 2, 18, 2), num_heads=(6, 12, 24, 48), window_size=12
    ),
}

SHORT_NAMES = {
    "swin_t": "swin_tiny_patch4_window7_224",
    "swin_s": "swin_small_patch4_window7_224",
    "swin_b": "swin_base_patch4_window7_224",
    "swin_l": "swin_large_patch4_window7_224",
    "swin_b_384": "swin_base_patch4_window12_384",
    "swin_l_384": "swin_large_patch4_window12_384",
}


# ----- geometry ------------------------------------------------------------------------------
def config_grid(cfg: SwinConfig, stage: int) -> tuple[int, int]:
    """Token grid of ``stage`` at the configured img_size (what timm and the official code build for).

    timm sizes stage i as ceil(grid / 2**i) (its merges pad odd grids); the official code needs
    even grids, where ceil and floor agree.
    """
    H, W = cfg.image_hw
    P, scale = cfg.patch_size, 2**stage
    return (-(-(H // P) // scale), -(-(W // P) // scale))


def block_geometry(
    cfg: SwinConfig, stage: int, resolution: tuple[int, int], shifted: bool
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Window and shift of a block of ``stage`` whose input grid is ``resolution`` (H, W).

    timm and the official code decide the clamp once, for the configured img_size (timm keeps that
    decision when ``strict_img_size=False`` and only rebuilds the mask); torchvision and
    transformers decide it per call from the actual grid; detection backbones never clamp.
    """
    window = cfg.window
    target_shift = (window[0] // 2, window[1] // 2) if shifted else (0, 0)
    if cfg.semantics in ("timm", "official"):
        resolution = config_grid(cfg, stage)
    win, shift = clamp_window(resolution, window, target_shift, rule=cfg.semantics)
    return (win[0], win[1]), (shift[0], shift[1])


def table_window(cfg: SwinConfig, stage: int) -> tuple[int, int]:
    """The window the relative position tables of ``stage`` are sized for.

    timm and the official code build each attention for its clamped window, so a clamped stage has
    a smaller table; torchvision, transformers and detection backbones always use the configured one.
    """
    if cfg.semantics in ("timm", "official"):
        return block_geometry(cfg, stage, config_grid(cfg, stage), shifted=False)[0]
    return cfg.window


# ----- components ----------------------------------------------------------------------------
def relative_position_bias(table, window: tuple[int, int], *, xp):
    """Gather the learned table ((2Mh-1)*(2Mw-1), nH) into a per-head bias (nH, N, N)."""
    return gather_bias(table, index_like(window, table), xp=xp)


def window_attention(p: Mapping[str, Any], x, *, num_heads: int, window: tuple[int, int], mask=None, xp):
    """Multi-head self-attention inside each window, with the relative position bias of ``window``.

    x: (B*nW, N, C), N = Mh*Mw; mask: None or (nW, N, N), added per window and broadcast over
    batch and heads. p: ``qkv.weight`` (3C, C), ``qkv.bias`` (3C,) or absent,
    ``relative_position_bias_table``, ``proj.weight`` (C, C), ``proj.bias``. Returns (B*nW, N, C).
    """
    bias = relative_position_bias(p["relative_position_bias_table"], window, xp=xp)  # (nH, N, N)
    return window_attention_bias(p, x, num_heads=num_heads, bias=bias, mask=mask, xp=xp)


def swin_block(
    p: Mapping[str, Any],
    x,
    *,
    num_heads: int,
    window: tuple[int, int],
    shift: tuple[int, int],
    roll_first: bool = True,
    pad: bool = True,
    xp,
):
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
    if (H % Mh or W % Mw) and not pad:
        raise ValueError(
            f"grid {H}x{W} is not a multiple of the window {Mh}x{Mw}; the official "
            "classifier does not pad (use semantics='detection' to pad)"
        )

    def attend(windows, mask):  # (B*nW, N, C)
        return window_attention(
            Scope(p, "attn"), windows, num_heads=num_heads, window=window, mask=mask, xp=xp
        )

    h = shifted_window_apply(
        layer_norm(x, p["norm1.weight"], p["norm1.bias"], eps=LN_EPS, xp=xp),  # freed once rolled
        window,
        shift,
        attend,
        roll_first=roll_first,
        mask_for=mask_for(x, window, shift),
        xp=xp,
    )  # (B, H, W, C), a fresh array
    h += x  # x + h in place (libraries without in-place operators rebind): one array fewer
    x = h
    out = mlp(Scope(p, "mlp"), layer_norm(x, p["norm2.weight"], p["norm2.bias"], eps=LN_EPS, xp=xp), xp=xp)
    out += x  # x + mlp(...), in place on the fresh MLP output
    return out


def patch_merging(p: Mapping[str, Any], x, *, pad_odd: bool = True, xp):
    """2x2 space-to-depth, LayerNorm(4C), Linear(4C -> 2C, no bias).

    x: (B, H, W, C); odd H or W is zero-padded at the bottom/right first (timm, torchvision,
    transformers, detection backbones); ``pad_odd=False`` rejects it (the official classifier).
    Channel order of the 4C: x[0::2, 0::2], x[1::2, 0::2], x[0::2, 1::2], x[1::2, 1::2]
    (the official order; the row offset varies fastest). Returns (B, ceil(H/2), ceil(W/2), 2C).
    """
    B, H, W, C = x.shape
    if (H % 2 or W % 2) and not pad_odd:
        raise ValueError(
            f"patch merging needs an even grid, got {H}x{W}; the official classifier "
            "asserts it (use semantics='detection' to pad odd grids)"
        )
    x = space_to_depth(x, xp=xp)  # (B, H/2, W/2, 4C)
    x = layer_norm(x, p["norm.weight"], p["norm.bias"], eps=LN_EPS, xp=xp)
    return linear(x, p["reduction.weight"], None, xp=xp)  # (B, H/2, W/2, 2C)


def head(p: Mapping[str, Any], x, *, xp):
    """Mean over tokens, then the classifier ``head.fc``. x: (B, H, W, C) already normed.

    Returns (pre_logits (B, C), logits (B, num_classes) or None when there is no head).
    """
    return pool_head(p, x, head="head.fc", xp=xp)


# ----- input checks --------------------------------------------------------------------------
def check_input(x, cfg: SwinConfig) -> None:
    """Raise a clear error unless x is a float (B, in_chans, H, W) image batch of cfg's size."""
    if not isinstance(cfg, SwinConfig):
        raise TypeError(
            f"swinref.models.v1 needs a SwinConfig, got {type(cfg).__name__}; swinref.forward "
            "takes a config of any family"
        )
    check_image_batch(x, cfg.in_chans)
    H, W = x.shape[2:]
    P = cfg.patch_size
    strict = cfg.semantics == "official" or (cfg.semantics == "timm" and cfg.strict_img_size)
    if strict and (H, W) != cfg.image_hw:
        Hc, Wc = cfg.image_hw
        hint = (
            " (or strict_img_size=False for any multiple of the patch size)"
            if cfg.semantics == "timm"
            else ""
        )
        raise ValueError(
            f"input size {H}x{W} does not match the config's img_size {Hc}x{Wc}; "
            f"expected shape (B, {cfg.in_chans}, {Hc}, {Wc}){hint}"
        )
    if cfg.semantics == "timm" and (H % P or W % P):  # timm's patch embedding does not pad
        raise ValueError(
            f"input size {H}x{W} is not a multiple of the patch size {P}; timm "
            f"semantics needs (B, {cfg.in_chans}, k*{P}, l*{P})"
        )
    if min(H, W) < (P if cfg.semantics == "torchvision" else 1):
        raise ValueError(
            f"input size {H}x{W} is too small to give a single {P}x{P} patch token; "
            f"expected H, W >= {P if cfg.semantics == 'torchvision' else 1}"
        )


MODEL_PREFIXES = ("patch_embed.", "layers.", "norm.", "head.")


def check_params(params: Mapping[str, Any], x, cfg: SwinConfig, *, backbone: bool = False) -> None:
    """The params contract: names and shapes against cfg, arrays in x's namespace, device, dtype.

    ``backbone=True`` leaves out the final norm and the head, which feature extraction never uses.
    """
    check_param_shapes(
        params,
        param_shapes(cfg),
        model_prefixes=MODEL_PREFIXES,
        ignore_prefixes=("norm.", "head.") if backbone else (),
    )
    check_arrays_like(params, x)


# ----- the whole model -----------------------------------------------------------------------
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


def _check_table(
    table, window: tuple[int, int], cfg: SwinConfig, name: str, resolution: tuple[int, int]
) -> None:
    Mh, Mw = window
    rows = (2 * Mh - 1) * (2 * Mw - 1)
    if table.shape[0] == rows:
        return
    if cfg.semantics == "hf":  # transformers sizes tables for the configured window, then clamps
        raise ValueError(
            f"{name}: at a {resolution[0]}x{resolution[1]} grid transformers clamps the window to "
            f"{Mh}x{Mw} but its bias table is for {cfg.window[0]}x{cfg.window[1]}; transformers' "
            "SwinModel fails on this input size too (its backbone, semantics='detection', runs it)"
        )
    raise ValueError(
        f"{name}: table has {table.shape[0]} rows, the {Mh}x{Mw} window this block "
        f"uses at a {resolution[0]}x{resolution[1]} grid needs {rows}"
    )


def encode(
    params: Mapping[str, Any],
    x,
    cfg: SwinConfig,
    *,
    inter: dict[str, Any] | None,
    last_stage: int | None = None,
    xp,
):
    """Patch embedding and stages 0..last_stage; fills ``inter`` and returns the last stage output.

    x: (B, Cin, H, W) already checked. ``inter=None`` keeps no intermediates (each block's input is
    then freed as soon as the next block has run). Returns (B, h, w, C_last).
    """
    x = prepare_image(x, cfg, xp=xp)
    P = cfg.patch_size
    h = patch_embed(
        Scope(params, "patch_embed"), x, patch_size=(P, P), patch_norm=cfg.patch_norm, xp=xp
    )  # (B, H/4, W/4, C)
    if inter is not None:
        inter["patch_embed"] = h
    last = cfg.num_stages - 1 if last_stage is None else last_stage
    for i in range(last + 1):
        h = run_stage(params, h, cfg, i, inter=inter, xp=xp)
    return h


def run_stage(
    params: Mapping[str, Any], x, cfg: SwinConfig, stage: int, *, inter: dict[str, Any] | None = None, xp
):
    """Stage ``stage`` alone: the merge (stage >= 1), then its blocks, as the forward runs it.

    params: names as in the whole model (``layers.{stage}.*``); x: (B, h, w, C) the previous stage's
    output (for stage 0, the patch embedding's). Fills ``inter`` when given. Returns (B, h', w', C').
    """
    keep = (lambda name, value: inter.__setitem__(name, value)) if inter is not None else (lambda *_: None)
    name = f"layers.{stage}"
    if stage > 0:  # timm keeps the merge at the start of the next stage (official: end of stage)
        x = patch_merging(Scope(params, f"{name}.downsample"), x, pad_odd=cfg.semantics != "official", xp=xp)
        keep(f"{name}.downsample", x)
    resolution = (x.shape[1], x.shape[2])
    for j in range(cfg.depths[stage]):
        block = f"{name}.blocks.{j}"
        window, shift = block_geometry(cfg, stage, resolution, shifted=j % 2 == 1)
        _check_table(params[f"{block}.attn.relative_position_bias_table"], window, cfg, block, resolution)
        x = swin_block(
            Scope(params, block),
            x,
            num_heads=cfg.num_heads[stage],
            window=window,
            shift=shift,
            roll_first=cfg.semantics == "timm",  # timm rolls, then pads; the others pad first
            pad=cfg.semantics != "official",
            xp=xp,
        )
        keep(block, x)
    keep(name, x)
    return x


def forward(params: Mapping[str, Any], x, cfg: SwinConfig, *, return_intermediates: bool = False):
    """Swin V1 forward pass (the precise, portable path).

    params: mapping named like timm's state dict, arrays in x's namespace, device and dtype.
    x: (B, in_chans, H, W), float32 or float64; H x W = cfg.img_size unless ``cfg.semantics``
    accepts other sizes (docs/semantics.md).
    Returns logits (B, num_classes) (pooled features (B, num_features) when num_classes == 0);
    with ``return_intermediates`` returns ``(logits, intermediates)`` where intermediates maps
    stable names to arrays: ``patch_embed`` (B, H/4, W/4, C); ``layers.{i}.downsample`` (the patch
    merging at the start of stage i >= 1); ``layers.{i}.blocks.{j}`` (B, h, w, C_i); ``layers.{i}``
    (stage output); ``norm`` (final LayerNorm, B, h, w, C); ``pre_logits`` (B, C); ``logits``.
    Names are timm's module names, so hooks on a timm model give the matching tensors.
    """
    check_input(x, cfg)
    check_params(params, x, cfg)
    xp = backend.namespace(x)
    inter: dict[str, Any] = {}
    h = encode(params, x, cfg, inter=inter if return_intermediates else None, xp=xp)
    h = layer_norm(h, params["norm.weight"], params["norm.bias"], eps=LN_EPS, xp=xp)
    inter["norm"] = h
    pooled, logits = head(params, h, xp=xp)
    inter["pre_logits"] = pooled
    out = pooled if logits is None else logits
    if logits is not None:
        inter["logits"] = logits
    return (out, inter) if return_intermediates else out


def forward_features(
    params: Mapping[str, Any],
    x,
    cfg: SwinConfig,
    *,
    out_indices: tuple[int, ...] | None = None,
    norm: bool = False,
    fmt: str = "NCHW",
) -> tuple[Any, ...]:
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
    n = cfg.num_stages
    indices = tuple(range(n)) if out_indices is None else tuple(out_indices)
    bad = [i for i in indices if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < n]
    if bad or not indices:
        raise ValueError(
            f"out_indices must be a non-empty sequence of stage numbers in 0..{n - 1}, got {out_indices!r}"
        )
    check_input(x, cfg)
    check_params(params, x, cfg, backbone=True)
    if norm:
        missing = [
            f"norm{i}.{leaf}"
            for i in indices
            for leaf in ("weight", "bias")
            if f"norm{i}.{leaf}" not in params
        ]
        if missing:
            raise ValueError(
                f"norm=True needs a LayerNorm per output stage; missing params {missing} "
                f"(shape (C_i,), named norm{{i}}.weight / norm{{i}}.bias)"
            )
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


# ----- parameters ----------------------------------------------------------------------------
def param_shapes(cfg: SwinConfig) -> dict[str, tuple[int, ...]]:
    """Every parameter name (timm layout) and its shape, in checkpoint order."""
    C0, P = cfg.embed_dim, cfg.patch_size
    shapes: dict[str, tuple[int, ...]] = {
        "patch_embed.proj.weight": (C0, cfg.in_chans, P, P),
        "patch_embed.proj.bias": (C0,),
    }
    if cfg.patch_norm:
        shapes["patch_embed.norm.weight"] = (C0,)
        shapes["patch_embed.norm.bias"] = (C0,)
    for i, depth in enumerate(cfg.depths):
        C, nH, hidden = cfg.stage_dim(i), cfg.num_heads[i], cfg.mlp_hidden(i)
        Mh, Mw = table_window(cfg, i)  # a clamped stage has a smaller table (timm, official)
        if i > 0:
            shapes[f"layers.{i}.downsample.norm.weight"] = (2 * C,)
            shapes[f"layers.{i}.downsample.norm.bias"] = (2 * C,)
            shapes[f"layers.{i}.downsample.reduction.weight"] = (C, 2 * C)
        for j in range(depth):
            b = f"layers.{i}.blocks.{j}"
            shapes[f"{b}.norm1.weight"] = (C,)
            shapes[f"{b}.norm1.bias"] = (C,)
            shapes[f"{b}.attn.relative_position_bias_table"] = ((2 * Mh - 1) * (2 * Mw - 1), nH)
            shapes[f"{b}.attn.qkv.weight"] = (3 * C, C)
            if cfg.qkv_bias:
                shapes[f"{b}.attn.qkv.bias"] = (3 * C,)
            shapes[f"{b}.attn.proj.weight"] = (C, C)
            shapes[f"{b}.attn.proj.bias"] = (C,)
            shapes[f"{b}.norm2.weight"] = (C,)
            shapes[f"{b}.norm2.bias"] = (C,)
            shapes[f"{b}.mlp.fc1.weight"] = (hidden, C)
            shapes[f"{b}.mlp.fc1.bias"] = (hidden,)
            shapes[f"{b}.mlp.fc2.weight"] = (C, hidden)
            shapes[f"{b}.mlp.fc2.bias"] = (C,)
    shapes["norm.weight"] = (cfg.num_features,)
    shapes["norm.bias"] = (cfg.num_features,)
    if cfg.num_classes:
        shapes["head.fc.weight"] = (cfg.num_classes, cfg.num_features)
        shapes["head.fc.bias"] = (cfg.num_classes,)
    return shapes


def count_params(cfg: SwinConfig) -> int:
    """Number of learned parameters (timm's ``sum(p.numel() for p in model.parameters())``)."""
    return count(param_shapes(cfg))


def _timm_value(rng: np.random.Generator, name: str, shape: tuple[int, ...]) -> np.ndarray:
    leaf = name.rsplit(".", 1)[-1]
    is_norm = ".norm" in name or name.startswith("norm.")
    if is_norm and leaf == "weight":
        return np.ones(shape)
    if leaf == "bias":
        return np.zeros(shape)
    return trunc_normal(rng, shape, 0.02)


def init_params(
    cfg: SwinConfig, *, seed: int = 0, dtype: str = "float64", scheme: str = "timm"
) -> dict[str, np.ndarray]:
    """Seeded weights as NumPy arrays; the same seed gives the same bits.

    scheme "timm": timm's initialisation: truncated normal (std 0.02) for every linear and conv
    weight and for the relative position tables; zero biases; LayerNorm weight 1 and bias 0.
    scheme "random": every entry non-trivial (:func:`swinref.core.params.random_value`), so a port
    that drops a bias or a LayerNorm affine is caught.
    """
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"scheme must be one of {', '.join(INIT_SCHEMES)}, got {scheme!r}")
    return seeded_params(
        param_shapes(cfg), seed=seed, dtype=dtype, value=_timm_value if scheme == "timm" else random_value
    )


def describe(cfg: SwinConfig) -> str:
    """The config fields that decide the params, for messages."""
    return (
        f"embed_dim={cfg.embed_dim}, depths={cfg.depths}, num_heads={cfg.num_heads}, "
        f"window_size={cfg.window_size}, num_classes={cfg.num_classes}"
    )


def input_shape(cfg: SwinConfig, *, batch: int, size: tuple[int, ...] | None = None) -> tuple[int, ...]:
    """Shape of an input batch: (B, in_chans, H, W), (H, W) = size or the configured img_size."""
    H, W = cfg.image_hw if size is None else size
    return (batch, cfg.in_chans, H, W)
