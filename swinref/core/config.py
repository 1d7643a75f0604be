"""What the configs of every family share: stage widths, (H, W) geometry, validation helpers and
dict/JSON round trips. The configs themselves (frozen dataclasses with timm's constructor argument
names) live with their family in :mod:`swinref.models`.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, ClassVar


def pair(v: Any, name: str) -> tuple[int, int]:
    """An int or a pair of ints as (H, W)."""
    if isinstance(v, int) and not isinstance(v, bool):
        return (v, v)
    if (
        isinstance(v, (tuple, list))
        and len(v) == 2
        and all(isinstance(i, int) and not isinstance(i, bool) for i in v)
    ):
        return (int(v[0]), int(v[1]))
    raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")


def triple(v: Any, name: str) -> tuple[int, int, int]:
    """An int or a triple of ints as (T, H, W)."""
    if isinstance(v, int) and not isinstance(v, bool):
        return (v, v, v)
    if (
        isinstance(v, (tuple, list))
        and len(v) == 3
        and all(isinstance(i, int) and not isinstance(i, bool) for i in v)
    ):
        return (int(v[0]), int(v[1]), int(v[2]))
    raise ValueError(f"{name} must be an int or a triple of ints (T, H, W), got {v!r}")


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


class ConfigBase:
    """Stage bookkeeping, validation and serialisation shared by every family's config.

    Stage i has ``embed_dim * 2**i`` channels. Subclasses are frozen dataclasses that set
    ``family`` and implement ``_problems()``.
    """

    family: ClassVar[str] = ""
    in_chans: int
    num_classes: int
    embed_dim: int
    depths: tuple[int, ...]
    num_heads: tuple[int, ...]
    mlp_ratio: float

    # ----- stages ------------------------------------------------------------------------------
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

    # ----- validation --------------------------------------------------------------------------
    def _normalise(self, *names: str) -> None:
        """Lists become tuples (configs hash and compare by value); ``depths``/``num_heads`` must be
        sequences."""
        for name in ("depths", "num_heads"):
            value = getattr(self, name)
            if not isinstance(value, (tuple, list)):
                raise ValueError(
                    f"invalid {type(self).__name__}: {name} must be a tuple with one int "
                    f"per stage, got {value!r}"
                )
            object.__setattr__(self, name, tuple(value))
        for name in names:
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))

    def _stage_problems(self) -> list[str]:
        """Checks every family shares: channels, classes, depths, heads, mlp_ratio."""
        problems = []
        for name in ("in_chans", "embed_dim"):
            v = getattr(self, name)
            if not is_int(v) or v < 1:
                problems.append(f"{name} must be a positive int, got {v!r}")
        n = self.num_classes
        if not is_int(n) or n < 0:
            problems.append(f"num_classes must be an int >= 0, got {n!r}")
        if not self.depths:
            problems.append("depths must name at least one stage")
        if any(not is_int(d) or d < 1 for d in self.depths):
            problems.append(f"every depth must be a positive int, got {self.depths!r}")
        if len(self.depths) != len(self.num_heads):
            problems.append(
                f"depths has {len(self.depths)} stages but num_heads has "
                f"{len(self.num_heads)}: give one head count per stage"
            )
        elif is_int(self.embed_dim):
            for i, h in enumerate(self.num_heads):
                if not is_int(h) or h < 1:
                    problems.append(f"num_heads[{i}] must be a positive int, got {h!r}")
                elif self.stage_dim(i) % h:
                    problems.append(
                        f"stage {i} width {self.stage_dim(i)} (embed_dim * 2**{i}) is not "
                        f"divisible by num_heads[{i}] = {h}"
                    )
        r = self.mlp_ratio
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not r > 0:
            problems.append(f"mlp_ratio must be a number > 0, got {r!r}")
        return problems

    def _raise_if(self, problems: list[str]) -> None:
        if problems:
            raise ValueError(f"invalid {type(self).__name__}:\n  - " + "\n  - ".join(problems))

    # ----- serialisation -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)  # type: ignore[call-overload]
        return {k: _listify(v) for k, v in d.items()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        if not isinstance(d, dict):
            raise ValueError(f"a {cls.__name__} must be a JSON object, got {type(d).__name__}")
        fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(d) - fields)
        if unknown:
            raise ValueError(
                f"unknown {cls.__name__} fields {unknown}; expected a subset of {sorted(fields)}"
            )
        return cls(**d)


def _listify(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_listify(i) for i in v]
    return v


class ImageGeometry(ConfigBase):
    """``img_size`` and ``window_size`` as (H, W) pairs, for the 2-D configs (V1 and V2)."""

    img_size: Any
    window_size: Any

    @property
    def image_hw(self) -> tuple[int, int]:
        return pair(self.img_size, "img_size")

    @property
    def window(self) -> tuple[int, int]:
        return pair(self.window_size, "window_size")
