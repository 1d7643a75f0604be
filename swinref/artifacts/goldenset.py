"""Golden sets: golden outputs for a whole image set, computed on Dask, resumable, verifiable.

A store is a directory::

    STORE/manifest.json                     provenance, the image list and one record per shard
    STORE/shards/00000.safetensors          batch 0: images [0, batch_size) of the sorted list
    STORE/shards/00001.safetensors          ...

Each shard holds, for the images of its batch that decoded (b of them, in list order):

    input                    (b, 3, H, W)   the preprocessed input (swinref.imageset.EvalTransform)
    logits                   (b, num_classes)
    top5                     (b, k) int64   class indices by decreasing logit, ties by index, k <= 5
    intermediates/<name>     (b, ...)       the chosen forward intermediates (timm module names)

and, under the safetensors metadata key ``swinref``, a JSON object with the store id, the shard
index, the image names, their files' sha256, the skipped files with the reason and their files'
sha256 (null for a file that could not be read), and ``tensors_sha256``, a digest of the tensors
(:func:`tensors_digest`) that lets a shard be verified without the manifest. The manifest records
every shard's file sha256; the store id is the sha256 of the provenance that fixes the contents
(config, dtype, backend, forward mode, weights digest, transform, intermediates, batch size, image
names, package version). Nothing holds a timestamp and batch boundaries follow the sorted name
list, so a shard's bytes do not depend on which worker made it or when.

Safety: shards and the manifest are written to a fresh temporary file and renamed into place
(:func:`swinref.artifacts.fileio.atomic_write`), so a run killed at any point leaves only whole
files and a planted file or symlink is never written through. One run at a time writes a store: a
run holds the lock file ``STORE/.lock`` (``flock``, released by the system when the run ends or is
killed) and a second run is refused. A rerun of the same command checks every shard against the
manifest (digest), its own metadata (store id, index, names) and the image files now on disk
(sha256): it keeps the good shards, recomputes those whose images changed, adopts a shard written
before the manifest caught up only after verifying it whole (tensor digest, metadata, image
digests), and recomputes the rest; a store with another store id is refused.

Reading: the manifest is checked against its schema when a store is opened (a malformed one is a
:class:`GoldenSetError` naming the field), a shard is only ever read from
``STORE/shards/<key>.safetensors`` whatever the manifest says, only regular files inside the store
are read, and every read is bounded in size.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import heapq
import json
import logging
import math
import os
import socket
import stat
import struct
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._version import __version__
from ..core import backend
from ..models import registry
from . import imageset
from .fileio import (
    MAX_FILE_BYTES,
    SAFETENSORS_HEADER_CAP,
    GoldenFileError,
    InputFileError,
    atomic_write,
    inside,
    open_regular,
    parse_safetensors_header,
    read_regular,
)
from .golden import METADATA_KEY, compare_arrays, default_tolerance
from .imageset import BadImageError, EvalTransform, list_images, read_image_file
from .weights_io import params_digest

try:
    import fcntl
except ImportError:  # not on Windows: the lock falls back to an exclusively created file
    fcntl = None  # type: ignore[assignment]

FORMAT = "swinref-goldenset"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SHARD_DIR = "shards"
INTERMEDIATE_PREFIX = "intermediates/"
TOP_K = 5
CONNECT_TIMEOUT_S = 10.0  # how long to wait for an existing scheduler before giving up
# provenance fields that do not change a shard's bytes, so they stay out of the store id
INFORMATIONAL = ("weights_source", "images_root", "model")
LOCK = ".lock"  # STORE/.lock: held by the one run that writes the store
# a manifest holds about 100 bytes per image: 256 MiB is room for over two million images
MANIFEST_MAX_BYTES = 256 << 20
# a shard of 64 swin_l images in float64 with every intermediate is about 20 GiB
SHARD_MAX_BYTES = MAX_FILE_BYTES
_HASH_CHUNK = 1 << 20


class GoldenSetError(ValueError):
    """A store that cannot be used: foreign, written by another config, corrupt, or unreachable."""


# ----- provenance and the store id -----------------------------------------------------------
def intermediate_names(cfg: Any) -> list[str]:
    """The forward's intermediate names in forward order (``logits`` excluded)."""
    names = ["patch_embed"]
    for i, depth in enumerate(cfg.depths):
        if i > 0:
            names.append(f"layers.{i}.downsample")
        names += [f"layers.{i}.blocks.{j}" for j in range(depth)]
        names.append(f"layers.{i}")
    return names + ["norm", "pre_logits"]


def _digest_json(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def store_id(provenance: Mapping[str, Any]) -> str:
    """sha256 of the provenance fields that fix the contents of every shard."""
    return _digest_json({k: v for k, v in provenance.items() if k not in INFORMATIONAL})


def _shard_key(index: int) -> str:
    return f"{index:05d}"


def _shard_file(index: int) -> str:
    """The shard's path relative to the store, as the manifest records it."""
    return f"{SHARD_DIR}/{_shard_key(index)}.safetensors"


def _shard_path(store: str, index: int) -> str:
    return os.path.join(store, SHARD_DIR, _shard_key(index) + ".safetensors")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_atomic(path: str, data: bytes) -> None:
    """Replace ``path`` atomically: a fresh temporary file in its directory (created exclusively,
    so nothing planted is followed), flushed to disk, then renamed over ``path``."""
    atomic_write(path, data, overwrite=True, what="store file")


def _file_sha256(path: str, *, what: str, max_bytes: int) -> str:
    """sha256 of a regular file, read in chunks (raises FileNotFoundError, InputFileError, OSError)."""
    h = hashlib.sha256()
    with open_regular(path, what=what, max_bytes=max_bytes) as f:
        while chunk := f.read(_HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _image_sha256(root: str, name: str) -> str | None:
    """sha256 of an image file as a run reads it; None when it cannot be read (it is skipped)."""
    try:
        path = os.path.join(root, name)
        return _file_sha256(path, what="image file", max_bytes=imageset.MAX_IMAGE_BYTES)
    except (OSError, InputFileError):
        return None


def tensors_digest(tensors: Mapping[str, np.ndarray]) -> str:
    """sha256 over a shard's tensors, independent of the file layout.

    For each tensor by name (sorted): its name in UTF-8, a NUL byte, its NumPy dtype string in
    little-endian form (``<f8``, ``<i8``, ``|b1``), a NUL byte, its shape as a JSON list without
    spaces, a NUL byte, then its elements in C order, little-endian.
    """
    h = hashlib.sha256()
    for name in sorted(tensors):
        a = np.asarray(tensors[name])
        a = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
        h.update(name.encode() + b"\0" + a.dtype.str.encode() + b"\0")
        h.update(json.dumps(list(a.shape), separators=(",", ":")).encode() + b"\0")
        h.update(a.reshape(-1).view(np.uint8).data)
    return h.hexdigest()


# ----- the work of one batch (runs on a Dask worker) -----------------------------------------
_ON_BACKEND: dict[tuple, Any] = {}  # per worker process: params moved to the backend, by digest


def compute_batch(
    params: Mapping[str, Any],
    items: Sequence[tuple[str, bytes]],
    *,
    cfg: Any,
    transform: EvalTransform,
    dtype: str,
    backend_name: str,
    mode: str,
    intermediates: Sequence[str],
    weights_digest: str,
) -> dict[str, Any]:
    """Decode, preprocess and run one batch; returns NumPy tensors and the skipped files.

    items: (name, encoded bytes) in list order. A file that does not decode is left out and
    reported in ``skipped`` as (name, reason); the rest run as one batch of b images.
    """

    xs, names, skipped = [], [], []
    for name, data in items:
        try:
            xs.append(transform(data, name))
            names.append(name)
        except BadImageError as e:
            skipped.append((name, e.reason))
    H, W = transform.img_size
    tensors: dict[str, np.ndarray] = {}
    if not xs:
        tensors["input"] = np.zeros((0, 3, H, W), dtype=dtype)
        return {"names": names, "skipped": skipped, "tensors": tensors}
    x = np.stack(xs).astype(dtype)  # (b, 3, H, W)
    xp = backend.get_namespace(backend_name, float64=dtype == "float64")
    key = (weights_digest, backend_name, dtype)
    if key not in _ON_BACKEND:
        _ON_BACKEND.clear()  # one model per worker at a time
        _ON_BACKEND[key] = backend.to_namespace(params, xp, dtype=dtype)
    on_backend = _ON_BACKEND[key]
    x_b = backend.to_namespace({"x": x}, xp)["x"]
    logits, inter = registry.forward(on_backend, x_b, cfg, return_intermediates=True, mode=mode)
    logits = np.ascontiguousarray(backend.to_numpy(logits))
    tensors["input"] = x
    for name in intermediates:
        tensors[INTERMEDIATE_PREFIX + name] = np.ascontiguousarray(backend.to_numpy(inter[name]))
    tensors["logits"] = logits
    if cfg.num_classes > 0:
        k = min(TOP_K, logits.shape[1])
        tensors["top5"] = np.argsort(-logits, axis=1, kind="stable")[:, :k].astype(np.int64)  # (b, k)
    return {"names": names, "skipped": skipped, "tensors": tensors}


def encode_shard(
    result: Mapping[str, Any],
    *,
    sid: str,
    index: int,
    image_sha256: Sequence[str],
    skipped_sha256: Sequence[str | None] | None = None,
) -> bytes:
    """The shard file's bytes: the batch's tensors plus a JSON metadata entry.

    ``skipped_sha256``: the sha256 of each skipped file (None for one that could not be read), in
    the order of ``result["skipped"]``; a resumed run checks them against the files on disk.
    """
    from safetensors.numpy import save  # noqa: PLC0415

    skipped = [{"name": n, "reason": r} for n, r in result["skipped"]]
    if skipped_sha256 is not None:
        if len(skipped_sha256) != len(skipped):
            raise ValueError(f"{len(skipped_sha256)} skipped_sha256 for {len(skipped)} skipped files")
        for entry, digest in zip(skipped, skipped_sha256, strict=True):
            entry["sha256"] = digest
    meta = {
        "format": FORMAT + "-shard",
        "format_version": FORMAT_VERSION,
        "store_id": sid,
        "shard": index,
        "images": list(result["names"]),
        "image_sha256": list(image_sha256),
        "skipped": skipped,
        "tensors_sha256": tensors_digest(result["tensors"]),
    }
    header = json.dumps(meta, sort_keys=True, separators=(",", ":"))
    return save(dict(result["tensors"]), metadata={METADATA_KEY: header})


def _metadata_of(header: Mapping[str, Any]) -> dict[str, Any] | None:
    """The swinref metadata object of a parsed safetensors header, or None."""
    try:
        meta = json.loads((header.get("__metadata__") or {})[METADATA_KEY])
    except (TypeError, KeyError, ValueError, RecursionError, AttributeError):
        return None
    return meta if isinstance(meta, dict) else None


def _load_tensors(data: bytes, what: str = "shard") -> dict[str, np.ndarray]:
    """Every tensor of a safetensors file's bytes; GoldenSetError when they do not load."""
    from safetensors.numpy import load  # noqa: PLC0415

    try:
        return load(data)
    except Exception as e:  # safetensors' own error type, or a dtype NumPy lacks (bf16)
        raise GoldenSetError(f"{what} is not a readable safetensors file ({type(e).__name__}: {e})") from None


def _read_header(f, size: int, path: str) -> dict[str, Any]:
    """The safetensors header of an open file of ``size`` bytes, read from its start."""
    f.seek(0)
    first8 = f.read(8)
    if len(first8) < 8:
        raise GoldenFileError(f"{path} is not a safetensors file: it has {len(first8)} bytes")
    (n,) = struct.unpack("<Q", first8)
    if n > min(SAFETENSORS_HEADER_CAP, size - 8):
        raise GoldenFileError(f"{path} is not a safetensors file: its header length field says {n} bytes")
    try:
        header = json.loads(f.read(n).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise GoldenFileError(f"{path} is not a safetensors file: its header is not JSON ({e})") from None
    if not isinstance(header, dict):
        raise GoldenFileError(f"{path} is not a safetensors file: its header is not a JSON object")
    return header


class _Unusable(Exception):
    """A shard file that cannot be read as one: not a regular file, outside the store, too large."""


def _check_inside(store: str, path: str, what: str) -> None:
    if os.path.lexists(path) and not inside(store, path):
        raise _Unusable(f"{what} {path} leads out of the store (a symlink?); store files must lie inside it")


def _read_shard_file(store: str, index: int) -> bytes:
    """The whole shard file ``STORE/shards/<key>.safetensors`` (raises FileNotFoundError, _Unusable)."""
    path = _shard_path(store, index)
    _check_inside(store, path, "shard file")
    try:
        return read_regular(path, what=f"shard file {_shard_key(index)}", max_bytes=SHARD_MAX_BYTES)
    except FileNotFoundError:
        raise
    except (InputFileError, OSError) as e:
        raise _Unusable(str(e)) from None


def _digest_and_metadata(store: str, index: int) -> tuple[str, dict[str, Any] | None]:
    """The shard file's sha256 (read in chunks) and its metadata, or None where it has none."""
    path = _shard_path(store, index)
    _check_inside(store, path, "shard file")
    h = hashlib.sha256()
    try:
        with open_regular(path, what=f"shard file {_shard_key(index)}", max_bytes=SHARD_MAX_BYTES) as f:
            while chunk := f.read(_HASH_CHUNK):
                h.update(chunk)
            try:
                meta = _metadata_of(_read_header(f, os.fstat(f.fileno()).st_size, path))
            except GoldenFileError:
                meta = None
    except FileNotFoundError:
        raise
    except (InputFileError, OSError) as e:
        raise _Unusable(str(e)) from None
    return h.hexdigest(), meta


# ----- the manifest's schema -----------------------------------------------------------------
_HEX = frozenset("0123456789abcdef")


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "an array"
    if isinstance(v, dict):
        return "an object"
    return type(v).__name__


def _short(v: Any) -> str:
    """repr of a manifest value, cut to one short line for an error message."""
    text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_sha256(v: Any) -> bool:
    return isinstance(v, str) and len(v) == 64 and set(v) <= _HEX


def _plain_image_name(v: Any) -> bool:
    """A name relative to the image root, '/'-separated, that stays below it."""
    return (
        isinstance(v, str)
        and v != ""
        and "\0" not in v
        and "\\" not in v
        and not v.startswith("/")
        and all(part not in ("", ".", "..") for part in v.split("/"))
    )


def validate_manifest(manifest: Any, where: str) -> None:
    """Check a manifest against the schema every reader relies on; GoldenSetError names the field.

    Checked: format and version; ``store_id`` a string; ``provenance`` an object with a string
    ``dtype``; ``images`` distinct plain relative names; ``batch_size`` a positive int;
    ``num_shards`` an int >= 0; ``shards`` an object whose keys are shard keys below
    ``num_shards`` and whose records hold ``file`` (exactly ``shards/<key>.safetensors``),
    ``sha256`` (64 hex digits), ``images`` and ``skipped`` (``{name, reason}`` objects), naming
    listed images, each image in at most one record.
    """

    def bad(fieldname: str, why: str) -> GoldenSetError:
        return GoldenSetError(f"{where}: malformed manifest: field {fieldname!r} {why}")

    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = _short(manifest.get("format")) if isinstance(manifest, dict) else _json_type(manifest)
        raise GoldenSetError(f"{where}: format is {found}, expected {FORMAT!r}")
    if manifest.get("format_version") != FORMAT_VERSION or not _is_int(manifest.get("format_version")):
        raise GoldenSetError(
            f"{where}: format version {_short(manifest.get('format_version'))} is not supported; "
            f"this swinref reads version {FORMAT_VERSION}"
        )
    missing = [
        k
        for k in ("store_id", "provenance", "images", "batch_size", "num_shards", "shards")
        if k not in manifest
    ]
    if missing:
        raise GoldenSetError(f"{where}: the manifest lacks fields {missing}")
    if not isinstance(manifest["store_id"], str) or not manifest["store_id"]:
        raise bad("store_id", f"is {_json_type(manifest['store_id'])}, expected a non-empty string")
    prov = manifest["provenance"]
    if not isinstance(prov, dict):
        raise bad("provenance", f"is {_json_type(prov)}, expected an object")
    if not isinstance(prov.get("dtype"), str):
        raise bad(
            "provenance.dtype", f"is {_json_type(prov.get('dtype'))}, expected a string such as 'float64'"
        )
    images = manifest["images"]
    if not isinstance(images, list):
        raise bad("images", f"is {_json_type(images)}, expected an array of image names")
    for j, name in enumerate(images):
        if not _plain_image_name(name):
            raise bad(f"images[{j}]", f"is {_short(name)}, expected a relative image name such as 'a/b.png'")
    listed = set(images)
    if len(listed) != len(images):
        raise bad("images", "lists an image more than once")
    for k in ("batch_size", "num_shards"):
        v = manifest[k]
        if not _is_int(v) or v < (1 if k == "batch_size" else 0):
            least = 1 if k == "batch_size" else 0
            raise bad(k, f"is {_short(v)}, expected an int >= {least}")
    num_shards, shards = manifest["num_shards"], manifest["shards"]
    if not isinstance(shards, dict):
        raise bad("shards", f"is {_json_type(shards)}, expected an object of shard records")
    seen: set[str] = set()
    for key, record in shards.items():
        if not (
            len(key) < 19
            and key.isascii()
            and key.isdigit()
            and _shard_key(int(key)) == key
            and int(key) < num_shards
        ):
            raise bad(
                f"shards.{_short(key)[1:-1]}",
                f"is not a shard key: expected 5 digits, from 00000 to below num_shards {num_shards}",
            )
        if not isinstance(record, dict):
            raise bad(f"shards.{key}", f"is {_json_type(record)}, expected an object")
        for k in ("file", "sha256", "images", "skipped"):
            if k not in record:
                raise bad(f"shards.{key}.{k}", "is missing")
        want = _shard_file(int(key))
        if record["file"] != want:
            raise bad(
                f"shards.{key}.file",
                f"is {_short(record['file'])}, expected {want!r}: a shard file is a plain name in the store",
            )
        if not _is_sha256(record["sha256"]):
            raise bad(
                f"shards.{key}.sha256", f"is {_short(record['sha256'])}, expected 64 lower-case hex digits"
            )
        names = record["images"]
        if not isinstance(names, list):
            raise bad(f"shards.{key}.images", f"is {_json_type(names)}, expected an array of image names")
        entries = record["skipped"]
        if not isinstance(entries, list):
            raise bad(f"shards.{key}.skipped", f"is {_json_type(entries)}, expected an array")
        for j, entry in enumerate(entries):
            if not (isinstance(entry, dict) and isinstance(entry.get("reason"), str)):
                raise bad(f"shards.{key}.skipped[{j}]", "is not an object {name, reason} of strings")
        for j, name in enumerate(names + [e.get("name") for e in entries]):
            label = f"images[{j}]" if j < len(names) else f"skipped[{j - len(names)}].name"
            if not isinstance(name, str) or name not in listed:
                raise bad(f"shards.{key}.{label}", f"is {_short(name)}, not an image of the manifest's list")
            if name in seen:
                raise bad(
                    f"shards.{key}.{label}", f"names {_short(name)}, which another shard record holds too"
                )
            seen.add(name)


# ----- the store -----------------------------------------------------------------------------
@dataclass
class Store:
    """An opened store: its directory and manifest (``shards`` maps "00000" -> record)."""

    path: str
    manifest: dict[str, Any]

    @property
    def provenance(self) -> dict[str, Any]:
        return self.manifest["provenance"]

    @property
    def shards(self) -> dict[str, dict[str, Any]]:
        return self.manifest["shards"]

    @property
    def complete(self) -> bool:
        return len(self.shards) == self.manifest["num_shards"]

    def save(self) -> None:
        data = json.dumps(self.manifest, sort_keys=True, indent=1).encode() + b"\n"
        _write_atomic(os.path.join(self.path, MANIFEST), data)

    def read_shard(self, key: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """A shard's tensors and metadata, after checking its sha256 against the manifest.

        The file read is always ``STORE/shards/<key>.safetensors``, a regular file inside the store;
        every tensor must have one row per image of the manifest's record.
        """
        record = self.shards[key]
        try:
            data = _read_shard_file(self.path, int(key))
        except (FileNotFoundError, _Unusable) as e:
            raise GoldenSetError(f"{self.path}: shard {key} cannot be read: {e}") from None
        if _sha256(data) != record["sha256"]:
            raise GoldenSetError(
                f"{self.path}: shard {key} is corrupt: its sha256 {_sha256(data)} "
                f"differs from the manifest's {record['sha256']}"
            )
        tensors = _load_tensors(data, f"{self.path}: shard {key}")
        rows = len(record["images"])
        for name, t in tensors.items():
            if t.ndim == 0 or t.shape[0] != rows:
                raise GoldenSetError(
                    f"{self.path}: shard {key}: tensor {name!r} has shape {tuple(t.shape)}, expected "
                    f"{rows} rows, one per image of the manifest's record"
                )
        logits = tensors.get("logits")
        if logits is not None and rows and (logits.ndim != 2 or logits.shape[1] < 1):
            raise GoldenSetError(
                f"{self.path}: shard {key}: tensor 'logits' has shape {tuple(logits.shape)}, "
                "expected (images, classes)"
            )
        try:
            meta = _metadata_of(parse_safetensors_header(data, f"shard {key}")) or {}
        except GoldenFileError:
            meta = {}
        return tensors, meta


def open_store(path: str | os.PathLike) -> Store:
    """Read a store's manifest; raises :class:`GoldenSetError` for anything but a golden set store.

    The manifest must be a regular file inside the store, at most :data:`MANIFEST_MAX_BYTES`, and
    match the schema of :func:`validate_manifest`.
    """
    path = os.fspath(path)
    mpath = os.path.join(path, MANIFEST)
    if not os.path.lexists(mpath):
        raise GoldenSetError(f"{path} is not a golden set store: it has no {MANIFEST}")
    if not inside(path, mpath):
        raise GoldenSetError(f"{mpath} leads out of the store (a symlink?); the manifest must lie inside it")
    try:
        raw = read_regular(mpath, what="manifest", max_bytes=MANIFEST_MAX_BYTES)
    except (OSError, InputFileError) as e:
        raise GoldenSetError(f"{mpath}: cannot read the manifest ({e})") from None
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        reason = "nested too deeply" if isinstance(e, RecursionError) else str(e).splitlines()[0]
        raise GoldenSetError(f"{mpath}: cannot read the manifest: not JSON ({reason})") from None
    validate_manifest(manifest, mpath)
    return Store(path, manifest)


def _new_manifest(provenance: dict[str, Any], names: list[str], batch_size: int) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "store_id": store_id(provenance),
        "provenance": provenance,
        "images": names,
        "batch_size": batch_size,
        "num_shards": -(-len(names) // batch_size),
        "shards": {},
    }


def _provenance_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    out = []
    for k in sorted(set(a) | set(b)):
        if k in INFORMATIONAL or a.get(k) == b.get(k):
            continue
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            sub = {s: (va.get(s), vb.get(s)) for s in sorted(set(va) | set(vb)) if va.get(s) != vb.get(s)}
            out.append(f"{k}: {sub} (stored, requested)")
        else:
            out.append(f"{k}: stored {va!r}, requested {vb!r}")
    return out


# ----- one writer at a time ------------------------------------------------------------------
def _lock_holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 256).decode("utf-8", "replace").split()
    except OSError:
        text = []
    if len(text) >= 2 and text[0] == "pid":
        return f"pid {text[1]}" + (f" on {text[3]}" if len(text) >= 4 and text[2] == "on" else "")
    return "pid unknown"


@contextlib.contextmanager
def lock_store(path: str | os.PathLike) -> Iterator[None]:
    """Hold the store's lock, ``STORE/.lock``, while the body runs: one writer per store.

    With ``fcntl`` (Linux, macOS) the lock is an exclusive ``flock`` on that file, which the system
    releases when the holder exits or is killed, so a killed run leaves no stale lock; the file
    stays and holds the holder's pid and host. Without ``fcntl`` the lock is the file itself,
    created exclusively and removed at the end. Raises :class:`GoldenSetError` when another run
    holds it.
    """
    path = os.fspath(path)
    lpath = os.path.join(path, LOCK)
    flags = os.O_RDWR | os.O_CREAT
    for name in ("O_NOFOLLOW", "O_CLOEXEC", "O_NONBLOCK"):  # no planted symlink, no hang on a FIFO
        flags |= getattr(os, name, 0)
    if fcntl is None:
        flags |= os.O_EXCL
    try:
        fd = os.open(lpath, flags, 0o644)
    except FileExistsError:  # the fallback's lock file: another run holds it, or one died holding it
        holder = "pid unknown"
        with contextlib.suppress(OSError):
            fd = os.open(lpath, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
            holder = _lock_holder(fd)
            os.close(fd)
        raise GoldenSetError(
            f"store {path} is in use by another run ({holder}); wait for it or stop it, and if no "
            f"run is using the store, remove {lpath}"
        ) from None
    except OSError as e:  # ELOOP: a symlink planted at the lock's name
        raise GoldenSetError(f"cannot create the lock file {lpath}: {e.strerror or e}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise GoldenSetError(f"the lock file {lpath} is not a regular file; remove it")
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise GoldenSetError(f"cannot lock {lpath}: {e.strerror or e}") from None
                raise GoldenSetError(
                    f"store {path} is in use by another run ({_lock_holder(fd)}); wait for it or "
                    "stop it, then rerun"
                ) from None
            os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
    except BaseException:
        os.close(fd)
        if fcntl is None:
            with contextlib.suppress(OSError):
                os.unlink(lpath)
        raise
    try:
        yield
    finally:
        if fcntl is None:
            with contextlib.suppress(OSError):
                os.unlink(lpath)
        os.close(fd)  # releases the flock


# ----- resuming: what on disk can be kept ----------------------------------------------------
def _shard_meta_problem(meta: Any, *, sid: str, index: int, batch: Sequence[str]) -> str | None:
    """Why ``meta`` is not the metadata of shard ``index`` of this store over ``batch``, or None."""
    if not isinstance(meta, dict):
        return "it has no swinref metadata"
    if meta.get("store_id") != sid:
        return "its store id differs"
    if meta.get("shard") != index or not _is_int(meta.get("shard")):
        return f"its metadata says shard {meta.get('shard')!r}"
    names, skipped, digests = meta.get("images"), meta.get("skipped"), meta.get("image_sha256")
    if not (isinstance(names, list) and isinstance(skipped, list) and isinstance(digests, list)):
        return "its metadata lacks the image lists"
    if not all(isinstance(s, dict) and isinstance(s.get("reason"), str) for s in skipped):
        return "its metadata's skipped entries are not {name, reason} objects"
    done = [s.get("name") for s in skipped]
    if not all(isinstance(n, str) for n in names + done):
        return "its metadata's image names are not strings"
    in_batch = set(names) | set(done)
    if len(names) + len(done) != len(batch) or in_batch != set(batch):
        return "its images are not this batch's"
    if names != [n for n in batch if n in set(names)]:
        return "its images are not in list order"
    if len(digests) != len(names) or not all(_is_sha256(d) for d in digests):
        return "its image sha256 list does not match its images"
    for s in skipped:
        if "sha256" in s and s["sha256"] is not None and not _is_sha256(s["sha256"]):
            return "a skipped entry's sha256 is not a digest"
    return None


def _changed_images(meta: Mapping[str, Any], current: Callable[[str], str | None]) -> list[str] | None:
    """The images whose files differ from the digests ``meta`` records, in list order; None when
    the metadata records no digest for a skipped file (an older swinref wrote it)."""
    if any("sha256" not in s for s in meta["skipped"]):
        return None
    recorded = dict(zip(meta["images"], meta["image_sha256"], strict=True))
    recorded.update({s["name"]: s["sha256"] for s in meta["skipped"]})
    return [n for n in recorded if current(n) != recorded[n]]


def _verify_orphan(
    store: str, index: int, *, sid: str, batch: Sequence[str], current: Callable[[str], str | None] | None
) -> tuple[dict[str, Any] | None, str, list[str]]:
    """Verify a shard file the manifest does not record, whole.

    Returns (its manifest record, "", []) when it can be adopted, else (None, the note's tail,
    the images whose files changed).
    """
    key = _shard_key(index)
    try:
        data = _read_shard_file(store, index)
        header = parse_safetensors_header(data, "the file")
        tensors = _load_tensors(data, "the file")
    except _Unusable as e:
        return None, f"shard {key} on disk cannot be read ({e})", []
    except (GoldenFileError, GoldenSetError) as e:
        return None, f"shard {key} on disk is not a whole shard ({str(e).removeprefix('the file ')})", []
    meta = _metadata_of(header)
    problem = _shard_meta_problem(meta, sid=sid, index=index, batch=batch)
    if problem is not None or meta is None:
        return None, f"shard {key} on disk is not a shard of this store ({problem or 'no metadata'})", []
    unverified = f"shard {key} on disk, not in the manifest, cannot be adopted"
    if not _is_sha256(meta.get("tensors_sha256")):
        return None, f"{unverified}: it records no tensor digest (an older swinref wrote it)", []
    rows = len(meta["images"])
    if "input" not in tensors or any(t.ndim == 0 or t.shape[0] != rows for t in tensors.values()):
        return None, f"{unverified}: its tensors do not hold one row for each of its {rows} images", []
    if tensors_digest(tensors) != meta["tensors_sha256"]:
        return None, f"{unverified}: its tensors do not match their recorded digest (corrupt)", []
    if current is not None:
        changed = _changed_images(meta, current)
        if changed is None:
            return None, f"{unverified}: it records no sha256 for its skipped files", []
        if changed:
            return (
                None,
                f"{unverified}: it was computed from earlier contents of image files that changed "
                f"since: {', '.join(changed)}",
                changed,
            )
    skipped = [(s["name"], s["reason"]) for s in meta["skipped"]]
    return _shard_record(index, data, meta["images"], skipped), "", []


def prepare_store(
    out: str, manifest: dict[str, Any], *, root: str | None = None
) -> tuple[Store, list[int], list[str]]:
    """Open or create the store for ``manifest``; returns it, the shards to compute and notes.

    A shard is kept when its file matches the manifest's sha256, its metadata is this shard's and
    (given the image ``root``) every image file still has the sha256 the shard records; a shard
    whose images changed is recomputed. A file the manifest does not know is adopted only when it
    verifies whole: readable, a shard of this store (store id, index, names), its tensors matching
    their digest and its images unchanged; anything else is reported in the notes and recomputed.
    The caller should hold :func:`lock_store`.
    """
    store, todo, notes, _ = _prepare(out, manifest, root)
    return store, todo, notes


def _refuse_foreign_directory(out: str) -> None:
    """GoldenSetError when ``out`` is a file, or a directory with files but no manifest."""
    if os.path.lexists(out) and not os.path.isdir(out):
        raise GoldenSetError(
            f"{out} exists and is not a directory; expected a new or empty directory or an existing store"
        )
    if (
        os.path.isdir(out)
        and not os.path.lexists(os.path.join(out, MANIFEST))
        and [n for n in os.listdir(out) if n != LOCK]
    ):
        raise GoldenSetError(
            f"{out} exists, is not empty and has no {MANIFEST}: not a golden set "
            "store; expected a new or empty directory or an existing store"
        )


def _prepare(
    out: str, manifest: dict[str, Any], root: str | None
) -> tuple[Store, list[int], list[str], list[str]]:
    notes: list[str] = []
    out = os.fspath(out)
    mpath = os.path.join(out, MANIFEST)
    if os.path.lexists(mpath):
        store = open_store(out)
        if store.manifest["store_id"] != manifest["store_id"]:
            diff = _provenance_diff(store.provenance, manifest["provenance"])
            raise GoldenSetError(
                f"{out} holds a golden set written with another configuration; refusing to mix "
                f"shards. Differences: {'; '.join(diff) or 'store id only'}. Use another --out "
                "or remove the store."
            )
        for k in ("images", "batch_size", "num_shards"):
            if store.manifest[k] != manifest[k]:
                raise GoldenSetError(
                    f"{mpath}: its {k} does not match its store id {manifest['store_id']} (the manifest "
                    "was edited?); refusing to resume into it. Use another --out or remove the store."
                )
        store.manifest["provenance"] = manifest["provenance"]  # informational fields may change
    else:
        _refuse_foreign_directory(out)
        store = Store(out, manifest)
    shard_dir = os.path.join(out, SHARD_DIR)
    if os.path.lexists(shard_dir) and not (os.path.isdir(shard_dir) and inside(out, shard_dir)):
        raise GoldenSetError(
            f"{shard_dir} is not a directory inside the store (a symlink leading out of it?); "
            "remove it or use another --out"
        )
    os.makedirs(shard_dir, exist_ok=True)

    current = None
    if root is not None:
        digests: dict[str, str | None] = {}

        def current(name: str) -> str | None:
            if name not in digests:
                digests[name] = _image_sha256(root, name)
            return digests[name]

    sid, names, bs = manifest["store_id"], manifest["images"], manifest["batch_size"]
    todo: list[int] = []
    changed_all: list[str] = []
    for i in range(manifest["num_shards"]):
        key = _shard_key(i)
        batch = names[i * bs : (i + 1) * bs]
        record = store.shards.get(key)
        if record is not None:
            why = _recorded_problem(
                out, i, record, sid=sid, batch=batch, current=current, changed=changed_all
            )
            if why is None:
                continue
            notes.append(f"shard {key} {why}; recomputing it")
            del store.shards[key]
        elif os.path.lexists(_shard_path(out, i)):
            adopted, why, changed = _verify_orphan(out, i, sid=sid, batch=batch, current=current)
            if adopted is not None:
                store.shards[key] = adopted
                notes.append(f"shard {key} was written but not yet in the manifest; verified and adopted")
                continue
            changed_all += changed
            notes.append(f"{why}; recomputing it")
        todo.append(i)
    store.save()
    return store, todo, notes, changed_all


def _recorded_problem(
    out: str,
    index: int,
    record: Mapping[str, Any],
    *,
    sid: str,
    batch: Sequence[str],
    current: Callable[[str], str | None] | None,
    changed: list[str],
) -> str | None:
    """Why a shard the manifest records cannot be kept (a note's tail), or None to keep it."""
    try:
        digest, meta = _digest_and_metadata(out, index)
    except FileNotFoundError:
        return "is missing"
    except _Unusable as e:
        return f"cannot be used ({e})"
    if digest != record["sha256"]:
        return "does not match its manifest sha256 (corrupt)"
    problem = _shard_meta_problem(meta, sid=sid, index=index, batch=batch)
    if problem is None and meta is not None and meta["images"] != record["images"]:
        problem = "its images differ from the manifest's record"
    if problem is not None or meta is None:
        return f"matches its manifest sha256 but is not this store's shard ({problem})"
    if current is None:
        return None
    found = _changed_images(meta, current)
    if found is None:
        return (
            "records no sha256 for its skipped files (an older swinref wrote it), so they cannot be checked"
        )
    if found:
        changed += found
        return f"was computed from earlier contents of image files that changed since: {', '.join(found)}"
    return None


def _shard_record(index: int, data: bytes, names: Sequence[str], skipped) -> dict[str, Any]:
    return {
        "file": _shard_file(index),
        "sha256": _sha256(data),
        "images": list(names),
        "skipped": [{"name": n, "reason": r} for n, r in skipped],
    }


# ----- running on Dask -----------------------------------------------------------------------
@dataclass
class RunReport:
    """What one run did."""

    store: str
    images: int  # in the set
    shards: int  # in the set
    shards_computed: int
    shards_kept: int
    images_computed: int
    skipped: list[tuple[str, str]]  # (name, reason) over the whole store
    notes: list[str]
    seconds: float
    complete: bool
    # images whose files changed since their shard was computed: those shards were recomputed
    changed_images: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Images per second of this run's computed shards (wall time, connection included)."""
        return self.images_computed / self.seconds if self.seconds > 0 else 0.0


def connect(scheduler: str | None = None, *, workers: int = 1, timeout: float = CONNECT_TIMEOUT_S):
    """A Dask client: on the scheduler at ``scheduler``, or on a new LocalCluster of ``workers``
    processes with one thread each. Raises :class:`GoldenSetError` when the scheduler does not
    answer within ``timeout`` seconds."""
    import dask  # noqa: PLC0415
    from distributed import Client, LocalCluster  # noqa: PLC0415

    if scheduler is None:
        if not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be a positive int, got {workers!r}")
        # Dask's nanny sets MALLOC_TRIM_THRESHOLD_ in its workers, which turns off glibc's adaptive
        # mmap threshold: every large temporary is then mmap'd and unmapped, measured 1.45x slower
        # on the precise swin_t forward. The BLAS/OpenMP one-thread settings are kept.
        environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", default={}))
        environ.pop("MALLOC_TRIM_THRESHOLD_", None)
        with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",
                silence_logs=logging.ERROR,
            )
        return Client(cluster)
    try:
        return Client(scheduler, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as e:
        raise GoldenSetError(
            f"cannot reach the Dask scheduler at {scheduler!r} within {timeout:g} s ({type(e).__name__}: "
            f"{e}); expected the address of a running scheduler, e.g. tcp://HOST:8786"
        ) from None


def run_golden_set(
    images: str | os.PathLike,
    out: str | os.PathLike,
    *,
    cfg: Any,
    params: Mapping[str, Any],
    model: str | None = None,
    weights_source: str = "unspecified",
    batch_size: int = 8,
    dtype: str = "float64",
    backend_name: str = "numpy",
    mode: str = "precise",
    intermediates: Sequence[str] = (),
    transform: EvalTransform | None = None,
    on_bad_file: str = "skip",
    client=None,
    scheduler: str | None = None,
    workers: int = 1,
    max_shards: int | None = None,
    max_in_flight: int | None = None,
    connect_timeout: float = CONNECT_TIMEOUT_S,
    console=None,
) -> RunReport:
    """Compute the golden set of ``images`` (a directory or glob) into the store ``out``.

    ``params`` (NumPy arrays, timm names) are sent once to every worker; image files are read by
    this process and sent with their batch, so workers need no shared file system. At most
    ``max_in_flight`` batches (default: two per worker thread) are submitted at a time and each
    shard is written as soon as its batch returns. ``max_shards`` stops after computing that many
    shards (a rerun continues). ``on_bad_file``: "skip" lists undecodable files and goes on;
    "fail" stops at the first one, keeping the shards already written, and raises.
    ``client``: an existing ``distributed.Client``; else one is made by :func:`connect`, which
    gives up on ``scheduler`` after ``connect_timeout`` seconds.

    The run holds the store's lock (:func:`lock_store`) from opening the store to the end, so a
    second run into the same store is refused with :class:`GoldenSetError` while this one lasts.
    Image files are read only when they are regular files of at most
    :data:`swinref.artifacts.imageset.MAX_IMAGE_BYTES`; any other is a bad file (skipped).
    """

    start = time.perf_counter()
    if not _is_int(batch_size) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    for label, v in (("max_shards", max_shards), ("max_in_flight", max_in_flight)):
        if v is not None and (not _is_int(v) or v < 1):
            raise ValueError(f"{label} must be a positive int or None, got {v!r}")
    if on_bad_file not in ("skip", "fail"):
        raise ValueError(f"on_bad_file must be 'skip' or 'fail', got {on_bad_file!r}")
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    known = intermediate_names(cfg)
    unknown = [n for n in intermediates if n not in known]
    if unknown:
        raise ValueError(f"unknown intermediates {unknown}; expected names among: {', '.join(known)}")
    intermediates = [n for n in known if n in set(intermediates)]  # forward order, no repeats
    transform = transform or EvalTransform.for_model(cfg, model)
    if transform.img_size != cfg.image_hw:
        raise ValueError(f"the transform crops {transform.img_size} but the model takes {cfg.image_hw}")
    root, names = list_images(images)
    out = os.fspath(out)
    digest = params_digest(params)
    provenance = {
        "config": cfg.to_dict(),
        "model": model,
        "dtype": dtype,
        "backend": backend_name,
        "mode": mode,
        "swinref_version": __version__,
        "weights_digest": digest,
        "weights_source": weights_source,
        "transform": transform.to_dict(),
        "intermediates": intermediates,
        "batch_size": batch_size,
        "images_sha256": _digest_json(names),
        "images_root": root,
    }
    _refuse_foreign_directory(out)  # before the lock file is made in it
    os.makedirs(out, exist_ok=True)
    with lock_store(out):
        return _run_locked(
            out,
            _new_manifest(provenance, names, batch_size),
            root,
            start=start,
            params=params,
            client=client,
            scheduler=scheduler,
            workers=workers,
            connect_timeout=connect_timeout,
            max_shards=max_shards,
            max_in_flight=max_in_flight,
            on_bad_file=on_bad_file,
            console=console,
            task_kwargs=dict(
                cfg=cfg,
                transform=transform,
                dtype=dtype,
                backend_name=backend_name,
                mode=mode,
                intermediates=intermediates,
                weights_digest=digest,
            ),
        )


def _run_locked(
    out: str,
    manifest: dict[str, Any],
    root: str,
    *,
    start: float,
    params,
    client,
    scheduler,
    workers,
    connect_timeout,
    max_shards,
    max_in_flight,
    on_bad_file,
    console,
    task_kwargs,
) -> RunReport:
    """The part of a run that reads and writes the store; the caller holds its lock."""
    names, batch_size = manifest["images"], manifest["batch_size"]
    store, todo, notes, changed = _prepare(out, manifest, root)
    kept = store.manifest["num_shards"] - len(todo)
    if max_shards is not None:
        todo = todo[:max_shards]
    computed, images_done, bad = 0, 0, []
    if todo:
        own_client = client is None
        client = client or connect(scheduler, workers=workers, timeout=connect_timeout)
        try:
            computed, images_done, bad = _run_batches(
                client,
                store,
                todo,
                root,
                names,
                batch_size,
                params,
                console=console,
                task_kwargs=task_kwargs,
                on_bad_file=on_bad_file,
                max_in_flight=max_in_flight,
            )
        finally:
            if own_client:
                cluster = client.cluster
                client.close()
                if cluster is not None:
                    cluster.close()
    skipped = [(s["name"], s["reason"]) for k in sorted(store.shards) for s in store.shards[k]["skipped"]]
    if bad:
        listed = "; ".join(f"{n}: {r}" for n, r in bad)
        raise GoldenSetError(
            f"unreadable image files (--on-bad-file fail): {listed}. "
            f"{computed} shards written to {out}; fix or remove the files and rerun, "
            "or use --on-bad-file skip"
        )
    return RunReport(
        store=out,
        images=len(names),
        shards=store.manifest["num_shards"],
        shards_computed=computed,
        shards_kept=kept,
        images_computed=images_done,
        skipped=skipped,
        notes=notes,
        seconds=time.perf_counter() - start,
        complete=store.complete,
        changed_images=changed,
    )


def _run_batches(
    client,
    store: Store,
    todo: list[int],
    root: str,
    names: list[str],
    batch_size: int,
    params,
    *,
    console,
    task_kwargs,
    on_bad_file: str,
    max_in_flight: int | None,
):
    from distributed import as_completed  # noqa: PLC0415
    from rich.console import Console  # noqa: PLC0415
    from rich.progress import (  # noqa: PLC0415
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    threads = sum(client.nthreads().values()) or 1
    limit = max_in_flight or 2 * threads
    [params_future] = client.scatter([dict(params)], broadcast=True, hash=False)
    pending = iter(todo)
    # per batch in flight: its index, the sha256 of each file read and the files that could not be
    hashes: dict[Any, tuple[int, dict[str, str], list[tuple[str, str]]]] = {}

    def submit_next(ac) -> bool:
        i = next(pending, None)
        if i is None:
            return False
        batch = names[i * batch_size : (i + 1) * batch_size]
        items: list[tuple[str, bytes]] = []
        unreadable: list[tuple[str, str]] = []
        file_hashes: dict[str, str] = {}
        for n in batch:
            try:
                data = read_image_file(os.path.join(root, n), n)
            except BadImageError as e:  # a FIFO, a device, too large: skipped like an undecodable file
                unreadable.append((n, e.reason))
            else:
                items.append((n, data))
                file_hashes[n] = _sha256(data)
        fut = client.submit(compute_batch, params_future, items, **task_kwargs, pure=False)
        hashes[fut.key] = (i, file_hashes, unreadable)
        ac.add(fut)
        return True

    total = sum(len(names[i * batch_size : (i + 1) * batch_size]) for i in todo)
    err = console or Console(stderr=True)
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("images  {task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=not err.is_terminal,
    )
    computed = images_done = 0
    bad: list[tuple[str, str]] = []
    t0 = time.perf_counter()
    ac = as_completed()
    with progress:
        task = progress.add_task(f"golden set ({threads} worker threads)", total=total, rate="-")
        for _ in range(limit):
            if not submit_next(ac):
                break
        try:
            for fut in ac:
                i, file_hashes, unreadable = hashes.pop(fut.key)
                result = fut.result()
                fut.release()
                if unreadable:  # in list order with the files the worker could not decode
                    order = {n: j for j, n in enumerate(names[i * batch_size : (i + 1) * batch_size])}
                    result["skipped"] = sorted([*result["skipped"], *unreadable], key=lambda s: order[s[0]])
                if result["skipped"] and on_bad_file == "fail":
                    bad += result["skipped"]
                if bad:  # stop: keep what is written, submit nothing more
                    for other in list(ac.futures):
                        other.cancel()
                    break
                data = encode_shard(
                    result,
                    sid=store.manifest["store_id"],
                    index=i,
                    image_sha256=[file_hashes[n] for n in result["names"]],
                    skipped_sha256=[file_hashes.get(n) for n, _ in result["skipped"]],  # None: unreadable
                )
                _write_atomic(_shard_path(store.path, i), data)
                store.shards[_shard_key(i)] = _shard_record(i, data, result["names"], result["skipped"])
                store.save()
                computed += 1
                n_batch = len(result["names"]) + len(result["skipped"])
                images_done += n_batch
                rate = images_done / (time.perf_counter() - t0)
                progress.update(task, advance=n_batch, rate=f"{rate:.2f}/s")
                submit_next(ac)
        except KeyboardInterrupt:
            for other in list(ac.futures):
                other.cancel()
            err.print(
                f"interrupted: {computed} shards written this run; rerun the same command to compute the rest"
            )
            raise
    return computed, images_done, bad


# ----- comparing two stores ------------------------------------------------------------------
@dataclass(frozen=True)
class ImageDiff:
    name: str
    logits_max_abs: float
    input_max_abs: float
    top1_a: int
    top1_b: int
    passed: bool


@dataclass
class StoreComparison:
    """Store B against the reference A, image by image (images matched by name)."""

    atol: float
    rtol: float
    images: int = 0  # compared
    top1_agree: int = 0
    failed_images: int = 0
    tensors: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> max_abs, max_rel, worst image
    worst: list[ImageDiff] = field(default_factory=list)  # by logits max abs, largest first
    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def top1_rate(self) -> float:
        return self.top1_agree / self.images if self.images else float("nan")

    @property
    def passed(self) -> bool:
        return self.images > 0 and self.failed_images == 0 and not self.only_a and not self.only_b


def _iter_rows(store: Store) -> Iterator[tuple[str, dict[str, np.ndarray], int]]:
    for key in sorted(store.shards):
        tensors, _ = store.read_shard(key)
        for row, name in enumerate(store.shards[key]["images"]):
            yield name, tensors, row


def _max_abs(per: Mapping[str, Any], tname: str) -> float:
    """An image's max abs difference of one tensor: inf when shapes differ, nan when absent."""
    c = per.get(tname)
    return float("nan") if c is None else float("inf") if c.max_abs is None else c.max_abs


def _as_store(s: str | os.PathLike | Store) -> Store:
    """An opened store; a Store given as such is checked against the schema as open_store does."""
    if isinstance(s, Store):
        validate_manifest(s.manifest, os.path.join(s.path, MANIFEST))
        return s
    return open_store(s)


def compare_stores(
    a: str | os.PathLike | Store,
    b: str | os.PathLike | Store,
    *,
    atol: float | None = None,
    rtol: float | None = None,
    worst: int = 10,
) -> StoreComparison:
    """Compare every image of store B against the reference A, one shard in memory per store.

    Per image, every tensor both stores hold is checked with ``|A - B| <= atol + rtol * |A|``
    (defaults by dtype, as ``swinref compare``); top-1 is the first maximum of each logits row.
    Images in only one store are listed and fail the comparison; provenance differences are notes.
    ``atol`` and ``rtol`` must be finite numbers >= 0 and ``worst`` an int >= 0 (ValueError);
    a store whose manifest does not match the schema (:func:`validate_manifest`) is a
    :class:`GoldenSetError`.
    """
    for label, v in (("atol", atol), ("rtol", rtol)):
        if v is None:
            continue
        try:
            ok = math.isfinite(float(v)) and float(v) >= 0
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(f"{label} must be a finite number >= 0, got {v!r}")
    if not _is_int(worst) or worst < 0:
        raise ValueError(f"worst must be an int >= 0, got {worst!r}")
    a, b = _as_store(a), _as_store(b)
    d_atol, d_rtol = default_tolerance(a.provenance["dtype"], b.provenance["dtype"])
    result = StoreComparison(
        atol=d_atol if atol is None else float(atol), rtol=d_rtol if rtol is None else float(rtol)
    )
    for k in ("config", "weights_digest", "transform", "dtype", "backend", "mode", "swinref_version"):
        if a.provenance.get(k) != b.provenance.get(k):
            result.notes.append(f"{k} differs: A {a.provenance.get(k)!r}, B {b.provenance.get(k)!r}")
    for label, s in (("A", a), ("B", b)):
        if not s.complete:
            result.notes.append(
                f"store {label} is incomplete: {len(s.shards)} of {s.manifest['num_shards']} shards"
            )
    where_b = {n: k for k in b.shards for n in b.shards[k]["images"]}
    seen: set[str] = set()
    cached_key: str | None = None
    cached: dict[str, np.ndarray] = {}  # loaded on the first image: its key is never None
    heap: list[tuple[float, str, ImageDiff]] = []
    for name, ta, row in _iter_rows(a):
        seen.add(name)
        key = where_b.get(name)
        if key is None:
            result.only_a.append(name)
            continue
        if key != cached_key:  # B's shards are read in turn, one in memory
            cached_key, cached = key, b.read_shard(key)[0]
        row_b = b.shards[key]["images"].index(name)
        if "logits" not in ta or "logits" not in cached:
            raise GoldenSetError(
                f"image {name}: a shard without 'logits' (A shard has {sorted(ta)}, "
                f"B shard {key} has {sorted(cached)}); every shard needs logits"
            )
        passed, per = True, {}
        for tname in [t for t in ta if t in cached and t != "top5"]:
            c = compare_arrays(
                tname, ta[tname][row], cached[tname][row_b], atol=result.atol, rtol=result.rtol
            )
            passed &= c.passed
            per[tname] = c
            agg = result.tensors.setdefault(
                tname, {"max_abs": 0.0, "max_rel": 0.0, "worst_image": None, "passed": True}
            )
            agg["passed"] &= c.passed
            value = float("inf") if c.max_abs is None else c.max_abs  # None: shapes differ
            if agg["worst_image"] is None or value > agg["max_abs"]:
                agg["max_abs"], agg["worst_image"] = value, name
            if c.max_rel is not None:
                agg["max_rel"] = max(agg["max_rel"], c.max_rel)
        diff = ImageDiff(
            name=name,
            logits_max_abs=_max_abs(per, "logits"),
            input_max_abs=_max_abs(per, "input"),
            top1_a=int(np.argmax(ta["logits"][row])),
            top1_b=int(np.argmax(cached["logits"][row_b])),
            passed=passed,
        )
        result.images += 1
        result.top1_agree += diff.top1_a == diff.top1_b
        result.failed_images += not passed
        entry = (diff.logits_max_abs, name, diff)
        if len(heap) < worst:
            heapq.heappush(heap, entry)
        elif worst > 0:
            heapq.heappushpop(heap, entry)
    result.only_b = sorted(set(where_b) - seen)
    result.worst = [d for _, _, d in sorted(heap, key=lambda e: (-e[0], e[1]))]
    return result
