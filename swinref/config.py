"""Model configuration: a frozen dataclass whose field names are timm's ``SwinTransformer`` arguments."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any


def _pair(v: Any, name: str) -> tuple[int, int]:
    if isinstance(v, int) and not isinstance(v, bool):
        return (v, v)
    if isinstance(v, (tuple, list)) and len(v) == 2 and all(isinstance(i, int) for i in v):
        return (int(v[0]), int(v[1]))
    raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")


# Implementations whose size handling a config can reproduce (docs/semantics.md has the table).
SEMANTICS = ("official", "timm", "torchvision", "hf", "detection")


class StageWidths:
    """Stage bookkeeping shared by the image and video configs: stage i has embed_dim * 2**i channels."""

    @property
    def num_stages(self) -> int:
        return len(self.depths)

    def stage_dim(self, i: int) -> int:
        """Channels C of stage i."""
        return self.embed_dim * 2**i

    @property
    def num_features(self) -> int:
        """Channels of the last stage (the pre-logits width)."""
        return self.stage_dim(self.num_stages - 1)

    def mlp_hidden(self, i: int) -> int:
        """Hidden width of the MLPs of stage i."""
        return int(self.stage_dim(i) * self.mlp_ratio)


class ImageGeometry(StageWidths):
    """``img_size`` and ``window_size`` as (H, W) pairs, for the 2D configs (V1 and V2)."""

    @property
    def image_hw(self) -> tuple[int, int]:
        return _pair(self.img_size, "img_size")

    @property
    def window(self) -> tuple[int, int]:
        return _pair(self.window_size, "window_size")


@dataclass(frozen=True)
class SwinConfig(ImageGeometry):
    """A Swin Transformer V1 classifier (or backbone with ``num_classes=0``).

    Field names and defaults are those of timm's ``SwinTransformer`` constructor, so a config can
    be written as ``SwinConfig(**timm_kwargs)``. Defaults describe Swin-T at 224 (the paper's table).
    """

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
        # normalise sequences to tuples so configs hash and compare by value
        for name in ("depths", "num_heads"):
            value = getattr(self, name)
            if not isinstance(value, (tuple, list)):
                raise ValueError(f"invalid SwinConfig: {name} must be a tuple with one int per stage, "
                                 f"got {value!r}")
            object.__setattr__(self, name, tuple(value))
        if isinstance(self.img_size, list):
            object.__setattr__(self, "img_size", tuple(self.img_size))
        if isinstance(self.window_size, list):
            object.__setattr__(self, "window_size", tuple(self.window_size))
        self.validate()

    # ----- validation -------------------------------------------------------------------------
    def validate(self) -> None:
        problems = []
        try:
            H, W = self.image_hw
        except ValueError as e:
            problems.append(str(e))
            H = W = None
        try:
            Mh, Mw = self.window
            if Mh < 1 or Mw < 1:
                problems.append(f"window_size must be >= 1, got {self.window_size!r}")
        except ValueError as e:
            problems.append(str(e))
        if not isinstance(self.patch_size, int) or self.patch_size < 1:
            problems.append(f"patch_size must be a positive int, got {self.patch_size!r}")
        elif H is not None and (H % self.patch_size or W % self.patch_size):
            problems.append(
                f"img_size {H}x{W} is not a multiple of patch_size {self.patch_size}"
            )
        elif H is not None and (H < self.patch_size or W < self.patch_size):
            problems.append(f"img_size {H}x{W} is smaller than one patch ({self.patch_size})")
        for name in ("in_chans", "embed_dim"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                problems.append(f"{name} must be a positive int, got {v!r}")
        if not isinstance(self.num_classes, int) or self.num_classes < 0:
            problems.append(f"num_classes must be an int >= 0, got {self.num_classes!r}")
        if len(self.depths) != len(self.num_heads):
            problems.append(
                f"depths has {len(self.depths)} stages but num_heads has {len(self.num_heads)}: "
                "give one head count per stage"
            )
        if not self.depths:
            problems.append("depths must name at least one stage")
        if any((not isinstance(d, int)) or d < 1 for d in self.depths):
            problems.append(f"every depth must be a positive int, got {self.depths!r}")
        if isinstance(self.embed_dim, int):
            for i, h in enumerate(self.num_heads):
                if not isinstance(h, int) or h < 1:
                    problems.append(f"num_heads[{i}] must be a positive int, got {h!r}")
                elif self.stage_dim(i) % h:
                    problems.append(
                        f"stage {i} width {self.stage_dim(i)} (embed_dim * 2**{i}) is not "
                        f"divisible by num_heads[{i}] = {h}"
                    )
        if isinstance(self.mlp_ratio, bool) or not isinstance(self.mlp_ratio, (int, float)) \
                or not self.mlp_ratio > 0:
            problems.append(f"mlp_ratio must be a number > 0, got {self.mlp_ratio!r}")
        for name in ("qkv_bias", "patch_norm"):
            if not isinstance(getattr(self, name), bool):
                problems.append(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.semantics not in SEMANTICS:
            problems.append(f"semantics must be one of {', '.join(SEMANTICS)}; got {self.semantics!r}")
        if not isinstance(self.strict_img_size, bool):
            problems.append(f"strict_img_size must be True or False, got {self.strict_img_size!r}")
        if problems:
            raise ValueError("invalid SwinConfig:\n  - " + "\n  - ".join(problems))

    # ----- naming and serialisation -----------------------------------------------------------
    @classmethod
    def named(cls, name: str, **overrides: Any) -> "SwinConfig":
        """A released model's config by short name (``swin_t``) or timm name.

        Overrides replace fields, e.g. ``SwinConfig.named("swin_t", num_classes=10)``.
        """
        key = _ALIASES.get(name, name)
        if key not in MODEL_ZOO:
            valid = sorted(set(MODEL_ZOO) | set(_ALIASES))
            raise ValueError(f"unknown model {name!r}; expected one of: {', '.join(valid)}")
        return cls(**{**MODEL_ZOO[key], **overrides})

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SwinConfig":
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - fields)
        if unknown:
            raise ValueError(f"unknown SwinConfig fields {unknown}; expected a subset of {sorted(fields)}")
        return cls(**d)


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

_ALIASES = {
    "swin_t": "swin_tiny_patch4_window7_224",
    "swin_s": "swin_small_patch4_window7_224",
    "swin_b": "swin_base_patch4_window7_224",
    "swin_l": "swin_large_patch4_window7_224",
    "swin_b_384": "swin_base_patch4_window12_384",
    "swin_l_384": "swin_large_patch4_window12_384",
}

SHORT_NAMES = dict(_ALIASES)
