"""Layer-by-layer comparison of swinref with a public Swin implementation on the same weights.

``crosscheck("torchvision", "swin_t", input_size=(230, 197))`` builds torchvision's model with
seeded random weights (or a checkpoint), converts the weights to swinref's params, runs both on
the same input in float64 and float32 and reports, per layer, the largest absolute and relative
differences, the first layer beyond tolerance and, when one diverges, which ``semantics`` of
swinref reproduces the implementation instead. ``swinref crosscheck`` is the command line for it.

Implementations: "timm" (``SwinTransformer``), "torchvision" (``models.SwinTransformer``), "hf"
(transformers ``SwinForImageClassification``) and "hf_backbone" (transformers ``SwinBackbone``,
compared with :func:`swinref.forward_features` and per-stage norms).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from ..artifacts.weights_io import load_state_dict
from ..core import backend
from ..models import v1 as model
from ..models.registry import convert_state_dict
from ..models.v1 import SEMANTICS, SwinConfig

IMPLS = ("timm", "torchvision", "hf", "hf_backbone")

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
    semantics: str
    input_size: tuple[int, int]
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


def build_impl(impl: str, cfg: SwinConfig):
    """The implementation's torch module for ``cfg`` in eval mode (float64), without weights set."""
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
    LayerNorm weights 1 + 0.1 N(0, 1); biases 0.1 N(0, 1). Default initialisations (zero biases,
    unit norms, tiny tables) would hide a mishandled bias or table.
    """
    import torch  # noqa: PLC0415

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            z = torch.randn(p.shape, generator=gen, dtype=torch.float64)
            if name.endswith("relative_position_bias_table"):
                value = 0.5 * z
            elif name.endswith("bias"):
                value = 0.1 * z
            elif p.ndim == 1:
                value = 1.0 + 0.1 * z
            else:
                value = z / float(np.sqrt(p[0].numel()))
            p.copy_(value.to(p.dtype))
    return module


def impl_params(state_dict: dict[str, np.ndarray], cfg: SwinConfig, impl: str) -> dict[str, np.ndarray]:
    """An implementation's state dict as swinref params (timm names), through
    :func:`swinref.convert_state_dict`; transformers' per-stage backbone norms
    ``hidden_states_norms.stage{k}`` become ``norm{k-1}``.
    """

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
        k for k in own if k not in tensors and not k.endswith(("relative_position_index", "attn_mask"))
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
    else:
        swin = module.swin
        hooks["swin.embeddings"] = "patch_embed"
        for i, stage in enumerate(swin.encoder.layers):
            for j in range(len(stage.blocks)):
                hooks[f"swin.encoder.layers.{i}.blocks.{j}"] = f"layers.{i}.blocks.{j}"
            if stage.downsample is not None:
                hooks[f"swin.encoder.layers.{i}.downsample"] = f"layers.{i + 1}.downsample"
        if impl == "hf":
            hooks.update({"swin.layernorm": "norm", "swin.pooler": "pre_logits"})

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
        for i, stage in enumerate(module.swin.encoder.layers):  # the last block's, before merging
            out[f"layers.{i}"] = out[f"layers.{i}.blocks.{len(stage.blocks) - 1}"]
        if "pre_logits" in out:
            out["pre_logits"] = out["pre_logits"].reshape(out["pre_logits"].shape[0], -1)
    return out


def _run_swinref(
    params: dict[str, np.ndarray], x: np.ndarray, cfg: SwinConfig, backbone: bool
) -> dict[str, np.ndarray]:
    xp = backend.get_namespace("numpy")
    p = backend.to_namespace(params, xp)
    xx = xp.asarray(x)
    if backbone:
        maps = model.forward_features(p, xx, cfg, norm=True, fmt="NHWC")
        inter: dict[str, Any] = {}
        model.encode(p, xx, cfg, inter=inter, xp=xp)
        inter.update({f"features.{i}": m for i, m in enumerate(maps)})
    else:
        _, inter = model.forward(p, xx, cfg, return_intermediates=True)
    return {k: np.asarray(backend.to_numpy(v)) for k, v in inter.items()}


def _compare(ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray], dtype: str) -> list[LayerRow]:
    rows = []
    for name, a in ours.items():
        if name not in theirs:
            continue
        b = theirs[name]
        if a.size != b.size:
            rows.append(LayerRow(name, dtype, float("inf"), float("inf"), TOLERANCE[dtype]))
            continue
        b = b.reshape(a.shape)  # transformers' (B, L, C) sequences onto swinref's (B, h, w, C)
        diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
        scale = float(np.max(np.abs(b))) if b.size else 0.0
        m = float(diff.max()) if diff.size else 0.0
        rows.append(LayerRow(name, dtype, m, m / scale if scale else m, TOLERANCE[dtype]))
    return rows


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
        with open(text) as f:
            return SwinConfig.from_dict({**json.load(f), **overrides})
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

    impl: one of :data:`IMPLS`. cfg_or_name: a SwinConfig, a zoo name or a config dict; its
    ``semantics`` is replaced by the implementation's (or by ``semantics``). weights: None or an
    int seed for random weights, or a checkpoint path in the implementation's layout.
    input_size: (H, W), default the config's img_size (under timm semantics another size switches
    to timm's any-size mode, ``strict_img_size=False``). dtypes: both sides run in each. ``progress``: a
    callable ``(description)`` told about each step. Returns a :class:`CrosscheckReport`.
    """
    if impl not in IMPLS:
        raise ValueError(f"unknown implementation {impl!r}; expected one of {', '.join(IMPLS)}")
    for d in dtypes:
        if d not in TOLERANCE:
            raise ValueError(f"dtypes must be drawn from {tuple(TOLERANCE)}, got {d!r}")
    cfg = resolve_config(cfg_or_name)
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
    name = (
        cfg_or_name
        if isinstance(cfg_or_name, str) and not cfg_or_name.lstrip().startswith("{")
        else "custom config"
    )
    report = CrosscheckReport(impl=impl, model=name, semantics=sem, input_size=size)

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
