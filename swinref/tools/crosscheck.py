"""Layer-by-layer comparison of swinref with a public Swin implementation on the same weights.

``crosscheck("torchvision", "swin_t", input_size=(230, 197))`` builds torchvision's model with
seeded random weights (or a checkpoint), converts the weights to swinref's params, runs both on
the same input in float64 and float32 and reports, per layer, the largest absolute and relative
differences, the first layer beyond tolerance and, when one diverges, which ``semantics`` of
swinref reproduces the implementation instead. ``swinref crosscheck`` is the command line for it.

Implementations per family (:data:`FAMILY_IMPLS`):

* Swin V1: "timm" (``SwinTransformer``), "torchvision" (``models.SwinTransformer``), "hf"
  (transformers ``SwinForImageClassification``) and "hf_backbone" (transformers ``SwinBackbone``,
  compared with :func:`swinref.forward_features` and per-stage norms).
* Swin V2 (a ``swinv2_*`` name or ``"family": "v2"``): "timm" (``SwinTransformerV2``),
  "torchvision" (``models.SwinTransformer`` with ``SwinTransformerBlockV2`` / ``PatchMergingV2``)
  and "hf" (transformers ``Swinv2ForImageClassification``).
* Video Swin (``"family": "video"``): "torchvision" (``models.video.SwinTransformer3d``) and
  "mmaction2" (mmaction2 1.2's ``SwinTransformer3D`` backbone, compared with a head-less config:
  it has no head), their state dicts read through ``swinref.convert_state_dict`` in their layouts
  (:mod:`swinref.models.video_layouts`). mmaction2's package ``__init__`` does not import (it
  needs a localizer module the wheel lacks), so ``models/backbones/swin.py`` is loaded on its own
  with a stand-in for ``mmaction.registry.MODELS``.

Tolerances (:func:`tolerance_rule`): float64 is one absolute bound, 1e-10, for every family.
float32 is 1e-4 absolute for V1 and Video Swin (both sides' float32 outputs compared). Swin V2 is
far worse conditioned in float32 (logit scales up to 100 times the cosines' rounding, post-norm
LayerNorms dividing each branch by a std of ~0.3), so no absolute float32 bound holds for any
implementation: a V2 float32 row reports swinref's float32 error against the implementation's
float64 output and accepts it up to ``3 x`` the implementation's own float32 error against its
float64 output ``+ 1e-5`` (:data:`V2_F32_FACTOR`, :data:`V2_F32_FLOOR`), per compared layer.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import os
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from ..artifacts.fileio import read_regular
from ..artifacts.weights_io import load_state_dict
from ..core import backend
from ..models import registry, v2, video
from ..models import v1 as model
from ..models.registry import convert_state_dict
from ..models.v1 import SEMANTICS, SwinConfig

IMPLS = ("timm", "torchvision", "hf", "hf_backbone")

# The implementations each family can be compared with (family id -> impls).
FAMILY_IMPLS: dict[str, tuple[str, ...]] = {
    "v1": IMPLS,
    "v2": ("timm", "torchvision", "hf"),
    "video": ("torchvision", "mmaction2"),
}
ALL_IMPLS = tuple(dict.fromkeys(i for impls in FAMILY_IMPLS.values() for i in impls))

# Swin V2 float32: swinref's error against the implementation's float64 output may be at most
# V2_F32_FACTOR times the implementation's own float32 error plus V2_F32_FLOOR (per layer); the
# policy and its measurements are those of tests/tools/test_crosscheck_v2.py (ratio <= 2.2 seen).
V2_F32_FACTOR, V2_F32_FLOOR = 3.0, 1e-5

# The semantics that reproduces each implementation (docs/semantics.md).
IMPL_SEMANTICS = {"timm": "timm", "torchvision": "torchvision", "hf": "hf", "hf_backbone": "detection"}

# Largest max-abs difference accepted per dtype. float64: both sides compute the same sums in a
# different order, so differences are a few ULP of O(1) activations grown over the blocks (6e-15
# measured on swin_t); 1e-10 leaves room for depth and still catches any semantic difference,
# which moves outputs by >= 1e-3. float32: eps 1.2e-7 times the same growth, ~1e-5 measured.
TOLERANCE = {"float64": 1e-10, "float32": 1e-4}

# What differs between two semantics, for the probable-cause line.
_ASPECTS = {
    "input padding": {
        "official": "none (exact size)",
        "timm": "none (multiples of the patch)",
        "torchvision": "crop to a multiple of the patch",
        "hf": "zero-pad",
        "detection": "zero-pad",
    },
    "pad/roll order": {
        "official": "no padding",
        "timm": "roll, then pad",
        "torchvision": "pad, then roll",
        "hf": "pad, then roll",
        "detection": "pad, then roll",
    },
    "window clamp": {
        "official": "min(H, W) <= M, at img_size",
        "timm": "per dimension, at img_size",
        "torchvision": "never; shift dropped per dimension",
        "hf": "min(H, W) <= M, per call",
        "detection": "never",
    },
    "odd merges": {
        "official": "rejected",
        "timm": "padded",
        "torchvision": "padded",
        "hf": "padded",
        "detection": "padded",
    },
}


def active_aspects(cfg: SwinConfig, size: tuple[int, int]) -> set[str]:
    """The size-handling behaviours an input of ``size`` actually exercises under ``cfg``."""
    P, (Mh, Mw) = cfg.patch_size, cfg.window
    active = set()
    if size[0] % P or size[1] % P:
        active.add("input padding")
    h, w = -(-size[0] // P), -(-size[1] // P)
    for i in range(cfg.num_stages):
        if i > 0:
            if h % 2 or w % 2:
                active.add("odd merges")
            h, w = -(-h // 2), -(-w // 2)
        if h % Mh or w % Mw:
            active.add("pad/roll order")
        if h <= Mh or w <= Mw:
            active.add("window clamp")
    return active


def explain_difference(a: str, b: str, active: set[str] | None = None) -> str:
    """The behaviours in which semantics ``a`` and ``b`` differ (those in ``active``), as a phrase."""
    diffs = [aspect for aspect, v in _ASPECTS.items() if v[a] != v[b]]
    if active is not None and any(d in active for d in diffs):
        diffs = [d for d in diffs if d in active]
    return " and ".join(diffs) if diffs else "nothing in the size handling"


@dataclass
class LayerRow:
    """One compared output: swinref's ``name`` against the implementation's, in ``dtype``."""

    name: str
    dtype: str
    max_abs: float
    max_rel: float  # max |a - b| / max |b| over the layer: the error relative to the layer's scale
    tol: float

    @property
    def ok(self) -> bool:
        return bool(self.max_abs <= self.tol)


@dataclass
class CrosscheckReport:
    """Result of :func:`crosscheck`; ``passed`` is the verdict, ``rows`` the per-layer figures."""

    impl: str
    model: str
    semantics: str  # "" for Video Swin, which has one behaviour
    input_size: tuple[int, ...]  # (H, W); (T, H, W) for Video Swin
    family: str = "v1"
    rows: list[LayerRow] = field(default_factory=list)
    first_divergence: dict[str, str | None] = field(default_factory=dict)
    impl_error: str | None = None
    swinref_error: str | None = None
    cause: str | None = None

    @property
    def both_raised(self) -> bool:
        return self.impl_error is not None and self.swinref_error is not None

    @property
    def passed(self) -> bool:
        if self.impl_error is not None or self.swinref_error is not None:
            return self.both_raised  # reproducing a failure is agreement
        return bool(self.rows) and all(r.ok for r in self.rows)

    def max_abs(self, dtype: str, name: str | None = None) -> float:
        """Largest difference over the layers of ``dtype`` (or of one layer)."""
        vals = [r.max_abs for r in self.rows if r.dtype == dtype and (name is None or r.name == name)]
        return max(vals) if vals else float("nan")

    def summary(self) -> str:
        if self.both_raised:
            return f"both raise: {self.impl_error}"
        if self.impl_error:
            return f"{self.impl} raised but swinref ran: {self.impl_error}"
        if self.swinref_error:
            return f"swinref raised but {self.impl} ran: {self.swinref_error}"
        figures = ", ".join(f"{d} max abs {self.max_abs(d):.2e}" for d in self.first_divergence)
        first = [f"{d}: first beyond tolerance {n}" for d, n in self.first_divergence.items() if n]
        return "; ".join(
            [("PASS" if self.passed else "FAIL") + f" ({figures})"]
            + first
            + ([self.cause] if self.cause else [])
        )


# ----- building the implementation -----------------------------------------------------------
def _require_square(cfg: SwinConfig, impl: str) -> None:
    if cfg.window[0] != cfg.window[1]:
        raise ValueError(f"{impl} takes one int window_size; got {cfg.window}")


def _check_impl(impl: str, family: str) -> None:
    """ValueError (one line) unless ``impl`` can be compared with a config of ``family``."""
    impls = FAMILY_IMPLS[family]
    if impl not in impls:
        title = registry.family_named(family).title
        raise ValueError(
            f"no {impl!r} implementation to compare {title} with; {title} supports: {', '.join(impls)}"
        )


def build_impl(impl: str, cfg: Any):
    """The implementation's torch module for ``cfg`` (a config of any family) in eval mode
    (float64), without weights set."""
    if isinstance(cfg, v2.SwinV2Config):
        _check_impl(impl, "v2")
        return _build_v2(impl, cfg)
    if isinstance(cfg, video.VideoSwinConfig):
        _check_impl(impl, "video")
        return _build_video(impl, cfg)
    return _build_v1(impl, cfg)


def _build_v2(impl: str, cfg: v2.SwinV2Config):
    import torch  # noqa: PLC0415

    windows = [cfg.pretrained_window(i) for i in range(cfg.num_stages)]
    if cfg.num_classes == 0 and impl == "torchvision":
        raise ValueError("torchvision's SwinTransformer always has a head: use num_classes >= 1")
    m: torch.nn.Module
    if impl == "timm":
        from timm.models.swin_transformer_v2 import SwinTransformerV2  # noqa: PLC0415

        m = SwinTransformerV2(
            img_size=cfg.image_hw,
            patch_size=cfg.patch_size,
            in_chans=cfg.in_chans,
            num_classes=cfg.num_classes,
            embed_dim=cfg.embed_dim,
            depths=tuple(cfg.depths),
            num_heads=tuple(cfg.num_heads),
            window_size=cfg.window,
            mlp_ratio=cfg.mlp_ratio,
            qkv_bias=cfg.qkv_bias,
            pretrained_window_sizes=tuple(windows),  # type: ignore[arg-type]  # pairs are accepted
            drop_path_rate=0.0,
        )
    elif impl == "torchvision":
        from torchvision.models.swin_transformer import (  # noqa: PLC0415
            PatchMergingV2,
            SwinTransformerBlockV2,
        )
        from torchvision.models.swin_transformer import (  # noqa: PLC0415
            SwinTransformer as TorchvisionSwinTransformer,
        )

        if any(w not in ((0, 0), cfg.window) for w in windows) or not cfg.qkv_bias or cfg.in_chans != 3:
            raise ValueError(
                "torchvision's Swin V2 cannot express pretrained_window_sizes, qkv_bias=False or "
                f"in_chans != 3; got {cfg.pretrained_window_sizes}, {cfg.qkv_bias}, {cfg.in_chans}"
            )
        m = TorchvisionSwinTransformer(
            patch_size=[cfg.patch_size] * 2,
            embed_dim=cfg.embed_dim,
            depths=list(cfg.depths),
            num_heads=list(cfg.num_heads),
            window_size=list(cfg.window),
            mlp_ratio=cfg.mlp_ratio,
            stochastic_depth_prob=0.0,
            num_classes=cfg.num_classes,
            block=SwinTransformerBlockV2,
            downsample_layer=PatchMergingV2,
        )
    elif impl == "hf":
        import transformers  # noqa: PLC0415

        if cfg.window[0] != cfg.window[1] or any(w[0] != w[1] for w in windows):
            raise ValueError(f"hf takes square windows only; got {cfg.window}, pretrained {windows}")
        # num_labels goes through transformers' **kwargs; its stub signature lacks it
        hc = transformers.Swinv2Config(  # type: ignore[call-arg]
            image_size=list(cfg.image_hw),
            patch_size=cfg.patch_size,
            num_channels=cfg.in_chans,
            embed_dim=cfg.embed_dim,
            depths=list(cfg.depths),
            num_heads=list(cfg.num_heads),
            window_size=cfg.window[0],
            pretrained_window_sizes=[w[0] for w in windows],
            mlp_ratio=cfg.mlp_ratio,
            qkv_bias=cfg.qkv_bias,
            hidden_act="gelu",
            layer_norm_eps=1e-5,
            drop_path_rate=0.0,
            num_labels=max(cfg.num_classes, 1),
        )
        m = transformers.Swinv2ForImageClassification(hc)
        if cfg.num_classes == 0:
            m.classifier = torch.nn.Identity()
    else:  # pragma: no cover - _check_impl rejected it
        raise ValueError(impl)
    return m.double().eval()


@functools.lru_cache(maxsize=1)
def _mmaction2_swin3d():
    """mmaction2's ``SwinTransformer3D`` class, from its ``models/backbones/swin.py`` alone."""
    import importlib.util  # noqa: PLC0415
    import sys  # noqa: PLC0415
    import types  # noqa: PLC0415

    spec = importlib.util.find_spec("mmaction")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("mmaction2 is not installed (pip install mmaction2 mmengine mmcv-lite)")
    path = os.path.join(list(spec.submodule_search_locations)[0], "models", "backbones", "swin.py")

    class _Registry:  # stands in for mmaction.registry.MODELS, whose package does not import
        @staticmethod
        def register_module(*_args, **_kwargs):
            return lambda cls: cls

    package, registry_module = types.ModuleType("mmaction"), types.ModuleType("mmaction.registry")
    package.__path__ = []
    registry_module.MODELS = _Registry()  # type: ignore[attr-defined]
    names = ("mmaction", "mmaction.registry")
    saved = {n: sys.modules.get(n) for n in names}
    sys.modules.update({"mmaction": package, "mmaction.registry": registry_module})
    try:
        file_spec = importlib.util.spec_from_file_location("_mmaction2_swin", path)
        assert file_spec is not None and file_spec.loader is not None
        module = importlib.util.module_from_spec(file_spec)
        file_spec.loader.exec_module(module)
    finally:
        for n, old in saved.items():
            if old is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = old
    return module.SwinTransformer3D


def _build_video(impl: str, cfg: video.VideoSwinConfig):
    import torch  # noqa: PLC0415

    if impl == "mmaction2":
        if cfg.num_classes:
            raise ValueError("mmaction2's SwinTransformer3D is a backbone: compare with num_classes=0")
        backbone = _mmaction2_swin3d()(
            arch=dict(embed_dims=cfg.embed_dim, depths=list(cfg.depths), num_heads=list(cfg.num_heads)),
            pretrained=None,
            pretrained2d=False,
            patch_size=tuple(cfg.patch_size),
            in_channels=cfg.in_chans,
            window_size=tuple(cfg.window_size),
            mlp_ratio=cfg.mlp_ratio,
            qkv_bias=cfg.qkv_bias,
            drop_path_rate=0.0,
            patch_norm=cfg.patch_norm,
            out_indices=(cfg.num_stages - 1,),
        )
        return torch.nn.ModuleDict({"backbone": backbone}).double().eval()  # recognizer names

    from torchvision.models.video.swin_transformer import PatchEmbed3d, SwinTransformer3d  # noqa: PLC0415

    if not cfg.patch_norm or not cfg.qkv_bias or cfg.num_classes == 0:
        raise ValueError(
            "torchvision's SwinTransformer3d always has a patch norm, a qkv bias and a head; got "
            f"patch_norm={cfg.patch_norm}, qkv_bias={cfg.qkv_bias}, num_classes={cfg.num_classes}"
        )
    m = SwinTransformer3d(
        patch_size=list(cfg.patch_size),
        embed_dim=cfg.embed_dim,
        depths=list(cfg.depths),
        num_heads=list(cfg.num_heads),
        window_size=list(cfg.window_size),
        mlp_ratio=cfg.mlp_ratio,
        stochastic_depth_prob=0.0,
        num_classes=cfg.num_classes,
        patch_embed=functools.partial(PatchEmbed3d, in_channels=cfg.in_chans),
    )
    return m.double().eval()


def _build_v1(impl: str, cfg: SwinConfig):
    import torch  # noqa: PLC0415

    if not cfg.patch_norm or (impl == "torchvision" and not cfg.qkv_bias):
        raise ValueError(f"{impl} cannot express patch_norm={cfg.patch_norm}, qkv_bias={cfg.qkv_bias}")
    m: torch.nn.Module
    if impl == "timm":
        from timm.models.swin_transformer import SwinTransformer  # noqa: PLC0415

        m = SwinTransformer(
            img_size=cfg.img_size,
            patch_size=cfg.patch_size,
            in_chans=cfg.in_chans,
            num_classes=cfg.num_classes,
            embed_dim=cfg.embed_dim,
            depths=cfg.depths,
            num_heads=cfg.num_heads,
            window_size=cfg.window_size,
            mlp_ratio=cfg.mlp_ratio,
            qkv_bias=cfg.qkv_bias,
            strict_img_size=cfg.strict_img_size,
            drop_path_rate=0.0,
        )
    elif impl == "torchvision":
        from torchvision.models.swin_transformer import (  # noqa: PLC0415
            SwinTransformer as TorchvisionSwinTransformer,
        )

        if cfg.num_classes == 0:
            raise ValueError("torchvision's SwinTransformer always has a head: use num_classes >= 1")
        m = TorchvisionSwinTransformer(
            patch_size=[cfg.patch_size] * 2,
            embed_dim=cfg.embed_dim,
            depths=list(cfg.depths),
            num_heads=list(cfg.num_heads),
            window_size=list(cfg.window),
            mlp_ratio=cfg.mlp_ratio,
            stochastic_depth_prob=0.0,
            num_classes=cfg.num_classes,
        )
    elif impl in ("hf", "hf_backbone"):
        import transformers  # noqa: PLC0415

        _require_square(cfg, impl)
        # num_labels and out_features go through transformers' **kwargs; its stub signature lacks them
        hc = transformers.SwinConfig(  # type: ignore[call-arg]
            image_size=list(cfg.image_hw),
            patch_size=cfg.patch_size,
            num_channels=cfg.in_chans,
            embed_dim=cfg.embed_dim,
            depths=list(cfg.depths),
            num_heads=list(cfg.num_heads),
            window_size=cfg.window[0],
            mlp_ratio=cfg.mlp_ratio,
            qkv_bias=cfg.qkv_bias,
            hidden_act="gelu",
            layer_norm_eps=1e-5,
            drop_path_rate=0.0,
            num_labels=max(cfg.num_classes, 1),
            out_features=[f"stage{i + 1}" for i in range(cfg.num_stages)],
        )
        if impl == "hf":
            m = transformers.SwinForImageClassification(hc)
            if cfg.num_classes == 0:
                m.classifier = torch.nn.Identity()
        else:
            m = transformers.SwinBackbone(hc)
    else:
        raise ValueError(f"unknown implementation {impl!r}; expected one of {', '.join(IMPLS)}")
    return m.double().eval()


def randomize_(module, *, seed: int):
    """Seeded random values for every float parameter, keeping activations O(1).

    Weights ~ N(0, 1/fan_in); relative position tables ~ N(0, 0.5), the size of the q.k logits;
    LayerNorm weights 1 + 0.1 N(0, 1); biases 0.1 N(0, 1); Swin V2's ``logit_scale`` uniform in
    [log 2, log 200], so about one head in eight is above the log(100) clamp. Default
    initialisations (zero biases, unit norms, tiny tables) would hide a mishandled bias or table.
    """
    import torch  # noqa: PLC0415

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            z = torch.randn(p.shape, generator=gen, dtype=torch.float64)
            if name.endswith("logit_scale"):
                u = torch.rand(p.shape, generator=gen, dtype=torch.float64)
                value = float(np.log(2.0)) + u * float(np.log(100.0))  # log 2 .. log 200
            elif name.endswith("relative_position_bias_table"):
                value = 0.5 * z
            elif name.endswith("bias"):
                value = 0.1 * z
            elif p.ndim == 1:
                value = 1.0 + 0.1 * z
            else:
                value = z / float(np.sqrt(p[0].numel()))
            p.copy_(value.to(p.dtype))
    return module


def impl_params(state_dict: dict[str, np.ndarray], cfg: Any, impl: str) -> dict[str, np.ndarray]:
    """An implementation's state dict as swinref params, through
    :func:`swinref.convert_state_dict`. V1: timm names; transformers' per-stage backbone norms
    ``hidden_states_norms.stage{k}`` become ``norm{k-1}``. V2: the layout named ``impl``. Video
    Swin: torchvision's layout (:mod:`swinref.models.video_layouts`).
    """

    if isinstance(cfg, v2.SwinV2Config):
        return registry.convert_state_dict(state_dict, cfg, source=impl)
    if isinstance(cfg, video.VideoSwinConfig):
        return registry.convert_state_dict(state_dict, cfg, source=impl)
    sd = dict(state_dict)
    norms = {}
    for k in [k for k in sd if k.startswith("hidden_states_norms.")]:
        _, stage, leaf = k.split(".")
        norms[f"norm{int(stage.removeprefix('stage')) - 1}.{leaf}"] = np.asarray(sd.pop(k))
    source = "hf" if impl.startswith("hf") else impl
    return {**convert_state_dict(sd, cfg, source=source), **norms}


def _state_dict_numpy(module) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()}


def _load_weights(module, weights, impl: str) -> None:
    """Seed (int) -> random weights; path -> a checkpoint in the implementation's own layout."""
    import torch  # noqa: PLC0415

    if weights is None or isinstance(weights, int):
        randomize_(module, seed=0 if weights is None else weights)
        return

    sd = load_state_dict(weights)
    own = module.state_dict()
    tensors = {k: torch.from_numpy(np.asarray(v)) for k, v in sd.items() if k in own}
    missing = [
        k
        for k in own
        if k not in tensors
        and not k.endswith(("relative_position_index", "attn_mask", "relative_coords_table"))
    ]
    if missing:
        raise ValueError(
            f"{weights}: not a {impl} checkpoint for this config; missing {missing[:5]}"
            f"{' ...' if len(missing) > 5 else ''}"
        )
    module.load_state_dict(tensors, strict=False)


# ----- running both sides --------------------------------------------------------------------
def _run_impl(impl: str, module, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every output the implementation exposes, under swinref's intermediate names (channels last)."""
    import torch  # noqa: PLC0415

    out: dict[str, np.ndarray] = {}
    hooks: dict[str, str] = {}
    if impl == "timm":
        hooks["patch_embed"] = "patch_embed"
        for i, stage in enumerate(module.layers):
            if i > 0:
                hooks[f"layers.{i}.downsample"] = f"layers.{i}.downsample"
            for j in range(len(stage.blocks)):
                hooks[f"layers.{i}.blocks.{j}"] = f"layers.{i}.blocks.{j}"
            hooks[f"layers.{i}"] = f"layers.{i}"
        hooks["norm"] = "norm"
    elif impl == "torchvision":
        hooks["features.0"] = "patch_embed"
        for f in range(1, len(module.features)):
            if f % 2 == 0:
                hooks[f"features.{f}"] = f"layers.{f // 2}.downsample"
            else:
                blocks = module.features[f]
                for j in range(len(blocks)):
                    hooks[f"features.{f}.{j}"] = f"layers.{f // 2}.blocks.{j}"
                hooks[f"features.{f}"] = f"layers.{f // 2}"
        hooks.update({"norm": "norm", "flatten": "pre_logits", "head": "logits"})
    else:  # transformers: Swin V1 under ``swin``, Swin V2 under ``swinv2``, the same layout
        base = "swinv2" if hasattr(module, "swinv2") else "swin"
        swin = getattr(module, base)
        hooks[f"{base}.embeddings"] = "patch_embed"
        for i, stage in enumerate(swin.encoder.layers):
            for j in range(len(stage.blocks)):
                hooks[f"{base}.encoder.layers.{i}.blocks.{j}"] = f"layers.{i}.blocks.{j}"
            if stage.downsample is not None:
                hooks[f"{base}.encoder.layers.{i}.downsample"] = f"layers.{i + 1}.downsample"
        if impl == "hf":
            hooks.update({f"{base}.layernorm": "norm", f"{base}.pooler": "pre_logits"})

    def save(name):
        def hook(_m, _inputs, output):
            if isinstance(output, (tuple, list)):
                output = output[0]
            out[name] = output.detach().cpu().numpy().copy()

        return hook

    handles = [module.get_submodule(k).register_forward_hook(save(v)) for k, v in hooks.items()]
    try:
        with torch.no_grad():
            t = torch.from_numpy(x)
            if impl == "timm":
                feats = module.forward_features(t)
                out["pre_logits"] = module.forward_head(feats, pre_logits=True).numpy()
                if module.num_classes:
                    out["logits"] = module.forward_head(feats).numpy()
            elif impl == "torchvision":
                module(t)
            elif impl == "hf":
                res = module(pixel_values=t)
                out["logits"] = res.logits.numpy()
            else:
                res = module(pixel_values=t)
                for i, fm in enumerate(res.feature_maps):
                    out[f"features.{i}"] = fm.permute(0, 2, 3, 1).numpy()  # (B, h, w, C)
    finally:
        for h in handles:
            h.remove()
    if impl in ("hf", "hf_backbone"):  # transformers keeps (B, L, C) sequences; stage outputs are
        swin = module.swinv2 if hasattr(module, "swinv2") else module.swin
        for i, stage in enumerate(swin.encoder.layers):  # the last block's, before merging
            out[f"layers.{i}"] = out[f"layers.{i}.blocks.{len(stage.blocks) - 1}"]
        if "pre_logits" in out:
            out["pre_logits"] = out["pre_logits"].reshape(out["pre_logits"].shape[0], -1)
    return out


def _run_video_impl(module, x: np.ndarray) -> dict[str, np.ndarray]:
    """torchvision ``SwinTransformer3d``'s outputs under swinref's Video names, channels last."""
    import torch  # noqa: PLC0415

    out: dict[str, np.ndarray] = {}
    hooks = {"patch_embed": "backbone.patch_embed"}
    stages = (len(module.features) + 1) // 2
    for i in range(stages):
        blocks = module.features[2 * i]
        for j in range(len(blocks)):
            hooks[f"features.{2 * i}.{j}"] = f"backbone.layers.{i}.blocks.{j}"
        if i < stages - 1:
            hooks[f"features.{2 * i + 1}"] = f"backbone.layers.{i}.downsample"
        else:
            hooks[f"features.{2 * i}"] = f"backbone.layers.{i}"
    hooks.update({"norm": "backbone.norm", "avgpool": "pre_logits", "head": "logits"})

    def save(name):
        def hook(_m, _inputs, output):
            out[name] = output.detach().cpu().numpy().copy()

        return hook

    handles = [module.get_submodule(k).register_forward_hook(save(v)) for k, v in hooks.items()]
    try:
        with torch.no_grad():
            module(torch.from_numpy(x))
    finally:
        for h in handles:
            h.remove()
    for i in range(stages - 1):  # a stage's output is its merge's (the merge ends the stage)
        out[f"backbone.layers.{i}"] = out[f"backbone.layers.{i}.downsample"]
    out["pre_logits"] = out["pre_logits"].reshape(out["pre_logits"].shape[0], -1)
    return out


def _run_mmaction2(module, x: np.ndarray) -> dict[str, np.ndarray]:
    """mmaction2 ``SwinTransformer3D``'s outputs under swinref's Video names, channels last."""
    import torch  # noqa: PLC0415

    backbone = module["backbone"]
    out: dict[str, np.ndarray] = {}
    hooks = {"patch_embed": "backbone.patch_embed"}
    for i, layer in enumerate(backbone.layers):
        for j in range(len(layer.blocks)):
            hooks[f"layers.{i}.blocks.{j}"] = f"backbone.layers.{i}.blocks.{j}"
        if layer.downsample is not None:
            hooks[f"layers.{i}.downsample"] = f"backbone.layers.{i}.downsample"
    last = len(backbone.layers) - 1

    def save(name):
        def hook(_m, _inputs, output):
            out[name] = output.detach().cpu().numpy().copy()

        return hook

    handles = [backbone.get_submodule(k).register_forward_hook(save(v)) for k, v in hooks.items()]
    try:
        with torch.no_grad():
            feats = backbone(torch.from_numpy(x)).numpy()  # (B, C, D, H, W), after norm{S-1}
    finally:
        for h in handles:
            h.remove()
    out["backbone.patch_embed"] = np.moveaxis(out["backbone.patch_embed"], 1, -1)  # (B, D, H, W, C)
    for i in range(last):  # a stage's output is its merge's (the merge ends the stage)
        out[f"backbone.layers.{i}"] = out[f"backbone.layers.{i}.downsample"]
    out[f"backbone.layers.{last}"] = out[
        f"backbone.layers.{last}.blocks.{len(backbone.layers[last].blocks) - 1}"
    ]
    out["backbone.norm"] = np.moveaxis(feats, 1, -1)
    out["pre_logits"] = feats.mean(axis=(2, 3, 4))  # what an I3D head pools before its fc
    return out


def _run_swinref(
    params: dict[str, np.ndarray], x: np.ndarray, cfg: Any, backbone: bool
) -> dict[str, np.ndarray]:
    xp = backend.get_namespace("numpy")
    p = backend.to_namespace(params, xp)
    xx = xp.asarray(x)
    inter: dict[str, Any]
    if not isinstance(cfg, SwinConfig):  # Swin V2, Video Swin: the family-generic forward
        _, inter = registry.forward(p, xx, cfg, return_intermediates=True)
    elif backbone:
        maps = model.forward_features(p, xx, cfg, norm=True, fmt="NHWC")
        inter = {}
        model.encode(p, xx, cfg, inter=inter, xp=xp)
        inter.update({f"features.{i}": m for i, m in enumerate(maps)})
    else:
        _, inter = model.forward(p, xx, cfg, return_intermediates=True)
    return {k: np.asarray(backend.to_numpy(v)) for k, v in inter.items()}


def _max_abs(a: np.ndarray, b: np.ndarray) -> float:
    diff = np.abs(a.astype(np.float64) - b.reshape(a.shape).astype(np.float64))
    return float(diff.max()) if diff.size else 0.0


def _compare(
    ours: dict[str, np.ndarray],
    theirs: dict[str, np.ndarray],
    dtype: str,
    truth: dict[str, np.ndarray] | None = None,
) -> list[LayerRow]:
    """One row per layer both sides have. Without ``truth``: ours against theirs, the absolute
    :data:`TOLERANCE` of ``dtype``. With ``truth`` (the implementation's float64 outputs; the Swin V2
    float32 rule): ours against truth, bound ``V2_F32_FACTOR * |theirs - truth| + V2_F32_FLOOR``."""
    rows = []
    for name, a in ours.items():
        if name not in theirs or (truth is not None and name not in truth):
            continue
        b = theirs[name] if truth is None else truth[name]
        if a.size != b.size or a.size != theirs[name].size:
            rows.append(LayerRow(name, dtype, float("inf"), float("inf"), TOLERANCE[dtype]))
            continue
        # reshape: transformers' (B, L, C) sequences onto swinref's (B, h, w, C)
        m = _max_abs(a, b)
        scale = float(np.max(np.abs(b))) if b.size else 0.0
        tol = TOLERANCE[dtype]
        if truth is not None:
            own = _max_abs(theirs[name].reshape(a.shape), b)
            tol = V2_F32_FACTOR * own + V2_F32_FLOOR
        rows.append(LayerRow(name, dtype, m, m / scale if scale else m, tol))
    return rows


def tolerance_rule(family: str, dtype: str) -> str:
    """The acceptance rule of one family and dtype, in words (the CLI prints it)."""
    if family == "v2" and dtype == "float32":
        return f"|swinref32 - impl64| <= {V2_F32_FACTOR:g} x |impl32 - impl64| + {V2_F32_FLOOR:g} per layer"
    return f"|swinref - impl| <= {TOLERANCE[dtype]:g}"


# ----- the check ------------------------------------------------------------------------------
def resolve_config(cfg_or_name: SwinConfig | str | dict, **overrides) -> SwinConfig:
    """A config from a SwinConfig, a zoo name, a JSON object string, a JSON file or a dict."""
    if isinstance(cfg_or_name, SwinConfig):
        return dataclasses.replace(cfg_or_name, **overrides) if overrides else cfg_or_name
    if isinstance(cfg_or_name, dict):
        return SwinConfig.from_dict({**cfg_or_name, **overrides})
    text = str(cfg_or_name)
    if text.lstrip().startswith("{"):
        return SwinConfig.from_dict({**json.loads(text), **overrides})
    if text.endswith(".json") and os.path.exists(text):
        data = read_regular(text, what="model config file", max_bytes=1 << 20)  # configs are ~300 bytes
        return SwinConfig.from_dict({**json.loads(data), **overrides})
    return SwinConfig.named(text, **overrides)


def crosscheck(
    impl: str,
    cfg_or_name: SwinConfig | str | dict,
    *,
    weights: int | str | None = None,
    input_size: tuple[int, ...] | None = None,
    dtypes=("float64", "float32"),
    semantics: str | None = None,
    batch: int = 2,
    seed: int = 1,
    find_cause: bool = True,
    progress=None,
) -> CrosscheckReport:
    """Compare swinref with ``impl`` on the same weights and input, layer by layer.

    cfg_or_name: a config of any family (SwinConfig, SwinV2Config, VideoSwinConfig), a released
    name of any family (``swin_t``, ``swinv2_tiny_window8_256``, ...), a JSON object string, a
    .json file or a dict (``"family": "v1" | "v2" | "video"``, default v1). impl: one of the
    family's :data:`FAMILY_IMPLS` (ValueError naming them otherwise). The config's ``semantics``
    (V1, V2) is replaced by the implementation's (or by ``semantics``); Video Swin has none.
    weights: None or an int seed for random weights, or a checkpoint path in the implementation's
    layout. input_size: V1 / V2 (H, W), default the config's img_size (V1 under timm semantics:
    another size switches to timm's any-size mode, ``strict_img_size=False``; V2: the size becomes
    the config's img_size); Video (T, H, W), default the family's clip (32, 224, 224).
    dtypes: both sides run in each; tolerances per family and dtype as in the module docstring
    (:func:`tolerance_rule`). ``progress``: a callable ``(description)`` told about each step.
    Returns a :class:`CrosscheckReport`.
    """
    for d in dtypes:
        if d not in TOLERANCE:
            raise ValueError(f"dtypes must be drawn from {tuple(TOLERANCE)}, got {d!r}")
    resolved: Any = None
    if not isinstance(cfg_or_name, SwinConfig):
        try:
            resolved = registry.config_from(cfg_or_name)
        except (ValueError, TypeError):
            resolved = None  # V1's own resolution below says what is wrong
    name = (
        cfg_or_name
        if isinstance(cfg_or_name, str) and not cfg_or_name.lstrip().startswith("{")
        else "custom config"
    )
    if resolved is not None and not isinstance(resolved, SwinConfig):
        family = registry.family_of(resolved).name
        _check_impl(impl, family)
        return _crosscheck_family(
            impl,
            resolved,
            family,
            str(name),
            weights=weights,
            input_size=input_size,
            dtypes=dtypes,
            semantics=semantics,
            batch=batch,
            seed=seed,
            find_cause=find_cause,
            tell=progress or (lambda _msg: None),
        )
    if impl not in IMPLS:
        raise ValueError(f"unknown implementation {impl!r}; expected one of {', '.join(IMPLS)}")
    cfg = resolved if isinstance(resolved, SwinConfig) else resolve_config(cfg_or_name)
    sem = semantics or IMPL_SEMANTICS[impl]
    if sem not in SEMANTICS:
        raise ValueError(f"semantics must be one of {', '.join(SEMANTICS)}; got {sem!r}")
    size = tuple(input_size) if input_size is not None else cfg.image_hw
    if len(size) != 2 or not all(isinstance(v, int) and v > 0 for v in size):
        raise ValueError(f"input_size must be (H, W) with positive ints, got {input_size!r}")
    over: dict[str, Any] = {"semantics": sem}
    if sem == "timm" and size != cfg.image_hw:  # timm's any-size mode
        over["strict_img_size"] = False
    if impl == "hf_backbone":
        over["num_classes"] = 0
    cfg = dataclasses.replace(cfg, **over)
    tell = progress or (lambda _msg: None)
    report = CrosscheckReport(impl=impl, model=str(name), semantics=sem, input_size=size)

    tell(f"building {impl}")
    module = build_impl(impl, cfg)
    _load_weights(module, weights, impl)
    params64 = impl_params(_state_dict_numpy(module), cfg, impl)
    x64 = np.random.default_rng(seed).standard_normal((batch, cfg.in_chans) + size)
    theirs64 = None
    for dtype in dtypes:
        x = x64.astype(dtype)
        tell(f"{impl} {dtype}")
        try:
            theirs = _run_impl(impl, module.to(getattr(__import__("torch"), dtype)), x)
        except Exception as e:  # the implementation cannot run this input
            report.impl_error = f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"
            theirs = None
        tell(f"swinref {dtype}")
        try:
            ours = _run_swinref(
                {k: v.astype(dtype) for k, v in params64.items()}, x, cfg, backbone=impl == "hf_backbone"
            )
        except (ValueError, TypeError) as e:
            report.swinref_error = str(e).splitlines()[0][:200]
            ours = None
        if theirs is None or ours is None:
            break
        rows = _compare(ours, theirs, dtype)
        report.rows.extend(rows)
        report.first_divergence[dtype] = next((r.name for r in rows if not r.ok), None)
        if dtype == "float64":
            theirs64 = theirs
    if find_cause and not report.passed and report.impl_error is None:
        report.cause = _probable_cause(report, cfg, params64, x64, theirs64, module, impl, tell)
    return report


def _crosscheck_family(
    impl: str,
    cfg: Any,
    family: str,
    name: str,
    *,
    weights: int | str | None,
    input_size: tuple[int, ...] | None,
    dtypes,
    semantics: str | None,
    batch: int,
    seed: int,
    find_cause: bool,
    tell,
) -> CrosscheckReport:
    """:func:`crosscheck` for Swin V2 and Video Swin (``cfg`` resolved, ``impl`` checked)."""
    import torch  # noqa: PLC0415

    fam = registry.family_of(cfg)
    if family == "v2":
        sem = semantics or impl
        if sem not in v2.SEMANTICS:
            raise ValueError(
                f"semantics for {fam.title} must be one of {', '.join(v2.SEMANTICS)}; got {sem!r}"
            )
        size = tuple(input_size) if input_size is not None else cfg.image_hw
        form = "(H, W)"
    else:
        if semantics is not None:
            raise ValueError(f"semantics does not apply to {fam.title}: it has one behaviour")
        sem = ""
        size = tuple(input_size) if input_size is not None else video.DEFAULT_CLIP
        form = "(T, H, W)"
    axes = 2 if family == "v2" else 3
    if len(size) != axes or not all(isinstance(v, int) and v > 0 for v in size):
        raise ValueError(f"input_size of {fam.title} must be {form} with positive ints, got {input_size!r}")
    if family == "v2":
        cfg = dataclasses.replace(cfg, semantics=sem, img_size=size)  # V2 checks x against img_size
    if impl == "mmaction2":
        cfg = dataclasses.replace(cfg, num_classes=0)  # its SwinTransformer3D has no head
    report = CrosscheckReport(impl=impl, model=name, semantics=sem, input_size=size, family=family)

    tell(f"building {impl}")
    module = build_impl(impl, cfg)
    _load_weights(module, weights, impl)
    params64 = impl_params(_state_dict_numpy(module), cfg, impl)
    x64 = np.random.default_rng(seed).standard_normal(fam.input_shape(cfg, batch=batch, size=size))

    def run_impl(dtype: str) -> dict[str, np.ndarray]:
        m = module if dtype == "float64" else copy.deepcopy(module).to(getattr(torch, dtype))
        x = x64.astype(dtype)
        if family == "video":
            return _run_mmaction2(m, x) if impl == "mmaction2" else _run_video_impl(m, x)
        return _run_impl(impl, m, x)

    # the V2 float32 rule measures both sides against the implementation's float64 outputs
    need64 = "float64" in dtypes or (family == "v2" and "float32" in dtypes)
    theirs64: dict[str, np.ndarray] | None = None
    for dtype in (["float64"] if need64 else []) + [d for d in dtypes if d != "float64"]:
        tell(f"{impl} {dtype}")
        try:
            theirs = run_impl(dtype)
        except Exception as e:  # the implementation cannot run this input
            report.impl_error = f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"
            theirs = None
        if dtype == "float64":
            theirs64 = theirs
            if "float64" not in dtypes:
                if theirs is None:
                    break
                continue
        tell(f"swinref {dtype}")
        try:
            ours = _run_swinref(
                {k: v.astype(dtype) for k, v in params64.items()}, x64.astype(dtype), cfg, False
            )
        except (ValueError, TypeError) as e:
            report.swinref_error = str(e).splitlines()[0][:200]
            ours = None
        if theirs is None or ours is None:
            break
        truth = theirs64 if family == "v2" and dtype == "float32" else None
        rows = _compare(ours, theirs, dtype, truth)
        report.rows.extend(rows)
        report.first_divergence[dtype] = next((r.name for r in rows if not r.ok), None)
    if find_cause and not report.passed and report.impl_error is None and report.swinref_error is None:
        report.cause = _family_cause(report, cfg, family, params64, x64, theirs64, tell)
    return report


def _family_cause(report, cfg, family, params64, x64, theirs64, tell) -> str:
    """V2: the other semantics that reproduces the implementation, if one does; else where it
    first diverges (both families)."""
    if family == "v2" and theirs64 is not None:
        for other in v2.SEMANTICS:
            if other == cfg.semantics:
                continue
            tell(f"trying semantics={other}")
            try:
                ours = _run_swinref(params64, x64, dataclasses.replace(cfg, semantics=other), False)
            except (ValueError, TypeError):
                continue
            rows = _compare(ours, theirs64, "float64")
            if rows and all(r.ok for r in rows):
                return f"matches with semantics={other}"
    first = next((n for n in report.first_divergence.values() if n), "?")
    return f"first divergence at {first}"


def _probable_cause(report, cfg, params64, x64, theirs64, module, impl, tell) -> str:
    """Rerun swinref with every other semantics; name the one that matches the implementation."""
    if theirs64 is None:
        import torch  # noqa: PLC0415

        theirs64 = _run_impl(impl, module.to(torch.float64), x64)
    for other in SEMANTICS:
        if other == cfg.semantics:
            continue
        tell(f"trying semantics={other}")
        alt = dataclasses.replace(cfg, semantics=other, strict_img_size=False)
        try:
            ours = _run_swinref(params64, x64, alt, backbone=impl == "hf_backbone")
        except (ValueError, TypeError):
            continue
        rows = _compare(ours, theirs64, "float64")
        if rows and all(r.ok for r in rows):
            return (
                f"matches with semantics={other}: the difference is "
                f"{explain_difference(cfg.semantics, other, active_aspects(cfg, x64.shape[2:]))}"
            )
    first = report.first_divergence.get("float64") or next(
        (n for n in report.first_divergence.values() if n), "?"
    )
    kind = (
        "the input handling or the patch embedding"
        if first == "patch_embed"
        else "patch merging"
        if first.endswith("downsample")
        else "window attention (window, shift, mask or bias)"
        if ".blocks." in first
        else "the final norm or the head"
    )
    return f"no semantics reproduces it; first divergence at {first}: look at {kind}"


# ----- the matrix -----------------------------------------------------------------------------
_SMALL = dict(img_size=64, embed_dim=16, depths=(2, 2), num_heads=(2, 4), window_size=4, num_classes=10)


class MatrixCase(NamedTuple):
    """One column of the matrix: a config, the input size, per-implementation sizes, the batch."""

    model: str | dict
    size: tuple[int, int]
    per_impl: dict[str, tuple[int, int]]
    batch: int = 2


# "padded": 230x197 is no multiple of the patch (hf/detection pad it, torchvision crops it); timm
# accepts only multiples of 4, so it gets 228x196, which still needs window padding (57x49 and
# 29x25 grids, window 5). "last_lt_window": the last stage's 6x10 grid is smaller than the 7x7
# window in height only. swin_t runs one image to keep the matrix quick.
MATRIX_CASES: dict[str, MatrixCase] = {
    "swin_t_224": MatrixCase("swin_t", (224, 224), {}, batch=1),
    "small": MatrixCase(_SMALL, (64, 64), {}),
    "padded": MatrixCase(
        {**_SMALL, "window_size": 5, "img_size": (228, 196)}, (230, 197), {"timm": (228, 196)}
    ),
    "last_lt_window": MatrixCase(
        dict(
            img_size=(96, 160),
            embed_dim=16,
            depths=(2, 2, 2),
            num_heads=(2, 4, 8),
            window_size=7,
            num_classes=10,
        ),
        (96, 160),
        {},
    ),
}


def matrix_case(case: str, impl: str) -> tuple[SwinConfig, tuple[int, int]]:
    """Config and input size of one matrix case for one implementation."""
    c = MATRIX_CASES[case]
    cfg = resolve_config(c.model)
    size = c.per_impl.get(impl, c.size)
    if impl == "timm":
        cfg = dataclasses.replace(cfg, img_size=size)
    return cfg, size


def run_matrix_cell(impl: str, case: str, dtypes=("float64", "float32")) -> CrosscheckReport:
    """One cell of the matrix (no cause search: the matrix reports, it does not diagnose)."""
    cfg, size = matrix_case(case, impl)
    report = crosscheck(
        impl, cfg, input_size=size, dtypes=dtypes, batch=MATRIX_CASES[case].batch, find_cause=False
    )
    report.model = case
    return report


def run_matrix(
    impls=IMPLS, cases=tuple(MATRIX_CASES), dtypes=("float64", "float32"), progress=None
) -> dict[tuple[str, str], CrosscheckReport]:
    """Every implementation on every case; ``{(impl, case): report}``."""
    out = {}
    for impl in impls:
        for case in cases:
            if progress:
                progress(f"{impl} / {case}")
            out[(impl, case)] = run_matrix_cell(impl, case, dtypes)
    return out
