"""Image files in, preprocessed model inputs out: listing an image set and timm's eval transform.

The eval transform is the one timm builds for a model's ``pretrained_cfg``
(``timm.data.create_transform(**resolve_data_config(model=m))``), written with Pillow and NumPy:

    1. decode with Pillow and convert to RGB with ``Image.convert("RGB")`` (as timm's datasets do):
       grey (L) is replicated to three channels, palette images are expanded, and an alpha channel
       (RGBA, LA, PA) is dropped: the stored colour values are kept as they are, without
       compositing on any background;
    2. resize so the shorter side is ``floor(img_size / crop_pct)`` (the longer side
       ``int(short * long / short_in)``), Pillow's bicubic filter;
    3. center crop ``img_size``; the offsets are ``int(round((size - crop) / 2))`` (torchvision's);
    4. scale to [0, 1] by 1/255 and normalise with the ImageNet mean and std, per channel;
    5. lay out as (3, H, W) float64.

timm does steps 4-5 in float32; here they are float64, so the two agree to float32 rounding
(|difference| < 1e-6). ``crop_pct`` is 0.9 for the 224 Swin models and 1.0 for the 384 ones
(timm 1.0 ``pretrained_cfg`` of each default tag); interpolation bicubic for all.

Untrusted files: an image file is read only if it is a regular file of at most
:data:`MAX_IMAGE_BYTES`; its size is read from the header and checked against
:data:`MAX_PIXELS` and :data:`MAX_ASPECT_RATIO` before any pixel is decoded, and the resized image
against :data:`MAX_PIXELS` before it is made. Every image within the caps is decoded at full
resolution, exactly as timm decodes it (no reduced JPEG decoding, which changes the pixels), and
every problem with a file, whatever Pillow raises, becomes a :class:`BadImageError`, so one bad
file is skipped with its reason instead of stopping a whole run.
"""

from __future__ import annotations

import glob
import io
import math
import os
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..models.v1 import SHORT_NAMES
from .fileio import InputFileError, read_regular

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# crop_pct of timm's pretrained_cfg for each released Swin V1 model (timm 1.0.31, default tags)
CROP_PCT = {
    "swin_tiny_patch4_window7_224": 0.9,
    "swin_small_patch4_window7_224": 0.9,
    "swin_base_patch4_window7_224": 0.9,
    "swin_large_patch4_window7_224": 0.9,
    "swin_base_patch4_window12_384": 1.0,
    "swin_large_patch4_window12_384": 1.0,
}
DEFAULT_CROP_PCT = 0.9  # models outside the table: the 224 models' value

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")  # what a directory listing picks up
INTERPOLATIONS = ("bicubic", "bilinear", "nearest")
# Pillow modes that Image.convert("RGB") maps without clipping; 16-bit and float modes are refused
RGB_CONVERTIBLE = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "La", "RGBa")

# Limits on untrusted image files. A few bytes of PNG can claim any size, so the size is checked
# from the header before decoding, and the resize's output size before resizing.
MAX_IMAGE_BYTES = 256 << 20  # per file; a 64-megapixel PNG of noise is about 200 MB
# Decoded (and resized) pixels per image: 2**26, about 67 megapixels. The largest camera sensors
# (about 61 MP) fit; Pillow holds RGB and RGBA at 4 bytes a pixel, so one decoded image takes at
# most 256 MiB and the decode, RGB conversion and resize of one image stay near 1 GiB per worker.
# It is below Pillow's own decompression-bomb limit (Image.MAX_IMAGE_PIXELS, 89.5 MP), so Pillow's
# check never fires on an image accepted here.
MAX_PIXELS = 1 << 26
# Longer side over shorter side. The eval transform scales the shorter side to S (248 for the 224
# models, 384 for the 384 ones), so the resized image has S * S * ratio pixels: a 1 x 10000 strip
# would become 248 x 2480000 (615 MP, several GB) to keep a 224 x 224 crop. At 1:100 the
# resized image stays under 15 MP for S <= 384 (a fraction of a second of bicubic resizing), while
# photographs, panoramas included, stay far below the cap (1:4 to 1:10).
MAX_ASPECT_RATIO = 100


class BadImageError(ValueError):
    """A file that cannot be used as an input image; ``path`` and ``reason`` say which and why."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def read_image_file(path: str | os.PathLike, name: str | None = None) -> bytes:
    """The bytes of the image file at ``path``, read only if it is a regular file (not a FIFO, a
    device or a link to one) of at most :data:`MAX_IMAGE_BYTES` bytes.

    Raises :class:`BadImageError` for ``name`` (default: the path) otherwise; the reason names the
    file by ``name``, so it does not depend on where the image set lies.
    """
    path = os.fspath(path)
    name = path if name is None else name
    try:
        return read_regular(path, what="image file", max_bytes=MAX_IMAGE_BYTES)
    except (FileNotFoundError, InputFileError) as e:
        raise BadImageError(name, str(e).replace(path, name)) from None
    except OSError as e:  # a read error after the open: EIO, a file removed from a network share
        raise BadImageError(name, f"cannot read image file {name}: {e.strerror or e}") from None


def check_image_size(width: int, height: int) -> str | None:
    """Why an image of ``width`` x ``height`` pixels is refused (too many pixels, too elongated), or None."""
    if width < 1 or height < 1:
        return f"image size {width}x{height} has no pixels"
    if width * height > MAX_PIXELS:
        return (
            f"image size {width}x{height} is {width * height:,} pixels, more than the "
            f"{MAX_PIXELS:,} (MAX_PIXELS) decoded per image"
        )
    ratio = max(width, height) / min(width, height)
    if ratio > MAX_ASPECT_RATIO:
        return (
            f"image size {width}x{height} has an aspect ratio of {ratio:.0f}:1, more than the "
            f"{MAX_ASPECT_RATIO}:1 (MAX_ASPECT_RATIO) the eval transform's resize allows"
        )
    return None


@dataclass(frozen=True)
class EvalTransform:
    """Resize the shorter side to ``floor(img_size / crop_pct)``, center crop ``img_size``, normalise."""

    img_size: tuple[int, int]  # (H, W) of the crop, the model's input size
    crop_pct: float = DEFAULT_CROP_PCT
    interpolation: str = "bicubic"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self):
        if not (isinstance(self.crop_pct, (int, float)) and 0 < self.crop_pct <= 1):
            raise ValueError(f"crop_pct must be a number in (0, 1], got {self.crop_pct!r}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"interpolation must be one of {', '.join(INTERPOLATIONS)}, got {self.interpolation!r}"
            )
        if len(self.mean) != 3 or len(self.std) != 3 or not all(s > 0 for s in self.std):
            raise ValueError(f"mean and std must be 3 numbers each, std > 0; got {self.mean}, {self.std}")
        object.__setattr__(self, "img_size", tuple(int(v) for v in self.img_size))
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))

    @classmethod
    def for_model(cls, cfg: Any, model: str | None = None, **overrides: Any) -> EvalTransform:
        """timm's eval transform for ``model`` (a timm or short name) at ``cfg.img_size``."""

        key = None if model is None else SHORT_NAMES.get(model, model)
        crop_pct = DEFAULT_CROP_PCT if key is None else CROP_PCT.get(key, DEFAULT_CROP_PCT)
        kwargs = dict(img_size=cfg.image_hw, crop_pct=crop_pct)
        kwargs.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**kwargs)

    @property
    def resize_short(self) -> int:
        """The shorter side after the resize; timm's ``floor(img_size / crop_pct)``."""
        return math.floor(min(self.img_size) / self.crop_pct)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d = {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}
        d["resize_short"] = self.resize_short
        d["convert"] = 'PIL Image.convert("RGB"): grey replicated, alpha dropped without compositing'
        d["layout"] = "(3, H, W) float64, (pixel / 255 - mean) / std"
        return d

    def __call__(self, data: bytes, path: str = "<bytes>") -> np.ndarray:
        """Decode one encoded image (PNG/JPEG bytes) and return it preprocessed, (3, H, W) float64.

        Raises :class:`BadImageError` for bytes Pillow cannot decode, an unsupported mode, a size
        beyond :data:`MAX_PIXELS` or :data:`MAX_ASPECT_RATIO` (checked from the header, before
        decoding), and any error Pillow raises while decoding, memory errors included.
        """
        from PIL import Image, UnidentifiedImageError  # noqa: PLC0415

        try:
            with warnings.catch_warnings():
                # Pillow warns, then fails, on images past its own pixel limit: both are bad files
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(data)) as im:
                    too_big = check_image_size(*im.size)
                    if too_big is not None:
                        raise BadImageError(path, too_big)
                    im.load()  # decode now so a truncated file fails here, not later
                    if im.mode not in RGB_CONVERTIBLE:
                        raise BadImageError(
                            path,
                            f"unsupported image mode {im.mode!r}; expected one of "
                            f"{', '.join(RGB_CONVERTIBLE)} (8 bits per channel)",
                        )
                    rgb = im.convert("RGB")
        except BadImageError:
            raise
        except UnidentifiedImageError:
            raise BadImageError(path, "not an image Pillow can identify (expected PNG or JPEG)") from None
        except MemoryError:
            raise BadImageError(path, "cannot decode: out of memory") from None
        except Exception as e:  # Pillow raises many kinds on hostile files; each means a bad file
            raise BadImageError(path, f"cannot decode: {type(e).__name__}: {e}") from None
        try:
            return self.apply(rgb)
        except BadImageError as e:
            raise BadImageError(path, e.reason) from None
        except MemoryError:
            raise BadImageError(path, "cannot resize: out of memory") from None

    def apply(self, rgb) -> np.ndarray:
        """Resize, crop and normalise an RGB Pillow image; returns (3, H, W) float64."""
        from PIL import Image  # noqa: PLC0415

        # Pillow sets its module-level filter constants dynamically; its stubs do not declare them
        resample = {
            "bicubic": Image.BICUBIC,  # type: ignore[attr-defined]
            "bilinear": Image.BILINEAR,  # type: ignore[attr-defined]
            "nearest": Image.NEAREST,  # type: ignore[attr-defined]
        }
        w, h = rgb.size
        short = self.resize_short
        # torchvision Resize(int): the shorter side becomes `short`, the longer int(short * long / short_in)
        too_big = check_image_size(w, h)
        if too_big is not None:
            raise BadImageError("<image>", too_big)
        if w <= h:
            new_w, new_h = short, int(short * h / w)
        else:
            new_w, new_h = int(short * w / h), short
        if new_w * new_h > MAX_PIXELS:  # only for a crop far larger than the released models'
            raise BadImageError(
                "<image>",
                f"resized to {new_w}x{new_h}, more than the {MAX_PIXELS:,} pixels (MAX_PIXELS) allowed",
            )
        if (new_w, new_h) != (w, h):
            rgb = rgb.resize((new_w, new_h), resample[self.interpolation])
        crop_h, crop_w = self.img_size
        if crop_h > new_h or crop_w > new_w:
            raise BadImageError(
                "<image>", f"resized to {new_w}x{new_h}, smaller than the crop {crop_w}x{crop_h}"
            )
        top = int(round((new_h - crop_h) / 2.0))  # torchvision CenterCrop's rounding
        left = int(round((new_w - crop_w) / 2.0))
        pixels = np.asarray(rgb, dtype=np.uint8)[top : top + crop_h, left : left + crop_w]  # (H, W, 3)
        x = pixels.astype(np.float64) / 255.0
        x = (x - np.asarray(self.mean)) / np.asarray(self.std)
        return np.ascontiguousarray(x.transpose(2, 0, 1))  # (3, H, W)


def list_images(spec: str | os.PathLike) -> tuple[str, list[str]]:
    """The image set named by a directory or a glob pattern: ``(root, sorted relative names)``.

    A directory contributes every file below it (recursively) whose suffix is .png, .jpg or
    .jpeg (any case); a glob pattern (``**`` recurses) contributes every file it matches, image
    or not, so a non-image file named by the pattern is reported as a bad file. Names are
    relative to ``root`` with ``/`` separators and sorted, which fixes the batch boundaries.
    """
    spec = os.fspath(spec)
    if os.path.isdir(spec):
        root = os.path.abspath(spec)
        paths = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            paths += [os.path.join(dirpath, f) for f in filenames if f.lower().endswith(IMAGE_SUFFIXES)]
    elif glob.has_magic(spec):
        paths = [os.path.abspath(p) for p in glob.glob(spec, recursive=True) if os.path.isfile(p)]
        root = os.path.commonpath([os.path.dirname(p) for p in paths]) if paths else os.getcwd()
    else:
        raise FileNotFoundError(
            f"--images {spec!r} is neither a directory nor a glob pattern "
            "(expected DIR or a pattern such as 'images/**/*.jpg')"
        )
    names = sorted(os.path.relpath(p, root).replace(os.sep, "/") for p in paths)
    if not names:
        raise ValueError(
            f"no images found in {spec!r}; expected a directory holding .png/.jpg/.jpeg "
            "files or a glob pattern that matches files"
        )
    return root, names
