"""One contract for every Swin family: the registry from config type to family, and the public
functions that dispatch through it.

A family is a config type plus the functions that serve it (forward, params, layouts). To add one,
write its module beside the others and add one :class:`Family` entry to :data:`FAMILIES`
(CONTRIBUTING.md). Everything above this module (golden files, tools, the command line) reaches the
models only through these functions, so a new family is served everywhere at once.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.config import ConfigBase
from . import v1, v1_fast, v1_layouts, v2, video, video_layouts

FORWARD_MODES = ("precise", "fast")


@dataclass(frozen=True)
class Family:
    """Everything swinref knows how to do with one family of configs."""

    name: str  # stable id, recorded in files: "v1", "v2", "video"
    title: str
    config: type[ConfigBase]
    zoo: Mapping[str, Mapping[str, Any]]  # released names -> config fields
    aliases: Mapping[str, str]  # short names -> released names (resolved only where unambiguous)
    forward: Callable[..., Any]  # the precise, portable definition
    param_shapes: Callable[[Any], dict[str, tuple[int, ...]]]
    init_params: Callable[..., dict[str, np.ndarray]]
    convert_state_dict: Callable[..., dict[str, np.ndarray]]
    export_state_dict: Callable[..., dict[str, np.ndarray]]
    layouts: tuple[str, ...]  # weight layouts convert/export understand ("auto" detects on import)
    default_layout: str
    input_shape: Callable[..., tuple[int, ...]]
    input_form: str  # "(B, C, H, W)" or "(B, C, T, H, W)"
    semantics: tuple[str, ...]  # implementations whose size handling the config reproduces
    forward_features: Callable[..., tuple[Any, ...]] | None = None
    fast: Callable[..., Any] | None = None  # mode="fast", checked against forward in the tests
    modes: tuple[str, ...] = field(default=("precise",))


def _v2_input_shape(cfg: v2.SwinV2Config, *, batch: int, size: tuple[int, ...] | None = None):
    H, W = cfg.image_hw if size is None else size
    return (batch, cfg.in_chans, H, W)


FAMILIES: tuple[Family, ...] = (
    Family(
        name="v1",
        title="Swin Transformer V1",
        config=v1.SwinConfig,
        zoo=v1.MODEL_ZOO,
        aliases=v1.SHORT_NAMES,
        forward=v1.forward,
        param_shapes=v1.param_shapes,
        init_params=v1.init_params,
        convert_state_dict=v1_layouts.convert_state_dict,
        export_state_dict=v1_layouts.export_state_dict,
        layouts=v1_layouts.LAYOUTS,
        default_layout="timm",
        input_shape=v1.input_shape,
        input_form="(B, C, H, W)",
        semantics=v1.SEMANTICS,
        forward_features=v1.forward_features,
        fast=v1_fast.forward,
        modes=("precise", "fast"),
    ),
    Family(
        name="v2",
        title="Swin Transformer V2",
        config=v2.SwinV2Config,
        zoo=v2.MODEL_ZOO_V2,
        aliases={},
        forward=v2.forward,
        param_shapes=v2.param_shapes,
        init_params=v2.init_params,
        convert_state_dict=v2.convert_state_dict,
        export_state_dict=v2.export_state_dict,
        layouts=v2.LAYOUTS,
        default_layout="timm",
        input_shape=_v2_input_shape,
        input_form="(B, C, H, W)",
        semantics=v2.SEMANTICS,
    ),
    Family(
        name="video",
        title="Video Swin Transformer",
        config=video.VideoSwinConfig,
        zoo=video.VIDEO_MODEL_ZOO,
        aliases=video.VIDEO_ALIASES,
        forward=video.forward,
        param_shapes=video.param_shapes,
        init_params=video.init_params,
        convert_state_dict=video_layouts.convert_state_dict,
        export_state_dict=video_layouts.export_state_dict,
        layouts=video_layouts.LAYOUTS,
        default_layout="official",
        input_shape=video.input_shape,
        input_form="(B, C, T, H, W)",
        semantics=(),
    ),
)

_BY_CONFIG = {f.config: f for f in FAMILIES}
_BY_NAME = {f.name: f for f in FAMILIES}


def family_of(cfg: Any) -> Family:
    """The family of a config object; TypeError naming the config types for anything else."""
    family = _BY_CONFIG.get(type(cfg))
    if family is None:
        types = ", ".join(f.config.__name__ for f in FAMILIES)
        raise TypeError(
            f"cfg must be one of {types}, got {type(cfg).__name__}; build one with "
            "swinref.named(name) or the config class"
        )
    return family


def family_named(name: str) -> Family:
    """A family by its stable id ("v1", "v2", "video")."""
    if name not in _BY_NAME:
        raise ValueError(f"unknown family {name!r}; expected one of {', '.join(_BY_NAME)}")
    return _BY_NAME[name]


def released_names() -> dict[str, Family]:
    """Every released model name swinref knows, and its family (full names, then short ones)."""
    names: dict[str, Family] = {}
    for f in FAMILIES:
        for n in f.zoo:
            names[n] = f
    for f in FAMILIES:  # a short name used by two families means the first (V1's "swin_t")
        for alias in f.aliases:
            names.setdefault(alias, f)
    return names


def named(name: str, **overrides: Any):
    """The config of any released model of any family, by full name or short name.

    V1: ``swin_t`` ... or timm's names; V2: timm's ``swinv2_*`` names; Video: the released config
    names (``swin_tiny_patch244_window877_kinetics400_1k``). Short names shared by two families
    (``swin_t``) mean V1; Video's short names are ``VideoSwinConfig.named``'s. Overrides replace
    fields.
    """
    family = released_names().get(name)
    if family is None:
        known = ", ".join(released_names())
        raise ValueError(f"unknown model {name!r}; expected one of: {known}")
    key = family.aliases.get(name, name) if name not in family.zoo else name
    return family.config(**{**family.zoo[key], **overrides})


def config_from(spec: Any, **overrides: Any):
    """A config from a config object, a released name, a JSON object string, a .json file or a dict.

    A JSON config may name its family with ``"family": "v1" | "v2" | "video"`` (default v1).
    """
    if type(spec) in _BY_CONFIG:
        return dataclasses.replace(spec, **overrides) if overrides else spec
    if isinstance(spec, Mapping):
        d = dict(spec)
        family = family_named(d.pop("family", "v1"))
        return family.config.from_dict({**d, **overrides})
    text = str(spec)
    if text.lstrip().startswith("{"):
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"the model config is not valid JSON: {e}") from e
        if not isinstance(loaded, dict):
            raise ValueError("a JSON model config must be an object")
        return config_from(loaded, **overrides)
    if text.endswith(".json"):
        if not os.path.isfile(text):
            raise ValueError(f"model config file not found: {text}")
        with open(text, encoding="utf-8") as f:
            try:
                loaded = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(f"{text}: not valid JSON: {e}") from e
        if not isinstance(loaded, dict):
            raise ValueError(f"{text}: a JSON model config must be an object")
        return config_from(loaded, **overrides)
    return named(text, **overrides)


def config_dict(cfg: Any) -> dict[str, Any]:
    """``cfg.to_dict()`` plus its ``family``, except for V1 (whose files predate the field)."""
    d = cfg.to_dict()
    family = family_of(cfg)
    return d if family.name == "v1" else {"family": family.name, **d}


# ----- the public contract --------------------------------------------------------------------
def forward(
    params: Mapping[str, Any], x, cfg: Any, *, return_intermediates: bool = False, mode: str = "precise"
):
    """The forward pass of any family: logits, or ``(logits, intermediates)``.

    params: mapping named as the family's checkpoint (:func:`param_shapes`), arrays in x's
    namespace, device and dtype; x: the family's input (:attr:`Family.input_form`), float32 or
    float64. ``mode``: "precise" (the portable definition of correct) or "fast" (V1 only, NumPy,
    ``swinref.models.v1_fast``; raises for other array libraries rather than falling back).
    Intermediates map stable names (the reference implementation's module names) to arrays.
    """
    if mode not in FORWARD_MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(map(repr, FORWARD_MODES))}")
    family = family_of(cfg)
    if mode == "fast":
        if family.fast is None:
            raise ValueError(
                f"{family.title} has no fast path; modes for it: {', '.join(map(repr, family.modes))}"
            )
        return family.fast(params, x, cfg, return_intermediates=return_intermediates)
    return family.forward(params, x, cfg, return_intermediates=return_intermediates)


def forward_features(params: Mapping[str, Any], x, cfg: Any, **kwargs: Any) -> tuple[Any, ...]:
    """Multi-scale feature maps (see :func:`swinref.models.v1.forward_features`)."""
    family = family_of(cfg)
    if family.forward_features is None:
        raise ValueError(
            f"forward_features is not available for {family.title}: only "
            f"{', '.join(f.title for f in FAMILIES if f.forward_features)} has it"
        )
    return family.forward_features(params, x, cfg, **kwargs)


def param_shapes(cfg: Any) -> dict[str, tuple[int, ...]]:
    """Every parameter name (the family's checkpoint names) and its shape, in checkpoint order."""
    return family_of(cfg).param_shapes(cfg)


def count_params(cfg: Any) -> int:
    """Number of learned parameters (``sum(p.numel() for p in model.parameters())``)."""
    return int(sum(int(np.prod(s)) for s in param_shapes(cfg).values()))


def init_params(
    cfg: Any, *, seed: int = 0, dtype: str = "float64", scheme: str = "timm"
) -> dict[str, np.ndarray]:
    """Seeded params as NumPy arrays for any family (scheme "timm": the family's own
    initialisation; "random": every entry non-trivial). The same seed gives the same bits."""
    return family_of(cfg).init_params(cfg, seed=seed, dtype=dtype, scheme=scheme)


def convert_state_dict(
    state_dict: Mapping[str, Any], cfg: Any, *, source: str | None = None, dtype: str | None = None
) -> dict[str, np.ndarray]:
    """Check a state dict of any family and layout against ``cfg``; return params (NumPy).

    source: the layout of the names (the family's :attr:`Family.layouts`, or "auto"); None means
    the family's default. Raises :class:`swinref.WeightsError` listing every missing, unexpected
    and mis-shaped entry at once.
    """
    family = family_of(cfg)
    return family.convert_state_dict(state_dict, cfg, source=source or family.default_layout, dtype=dtype)


def export_state_dict(
    params: Mapping[str, Any], cfg: Any, *, layout: str | None = None
) -> dict[str, np.ndarray]:
    """Params in another implementation's names (the inverse of :func:`convert_state_dict`).

    The params are checked against ``cfg`` first; derived buffers the layout's model saves are
    included so that the result loads there with ``strict=True``.
    """
    family = family_of(cfg)
    return family.export_state_dict(params, cfg, layout=layout or family.default_layout)
