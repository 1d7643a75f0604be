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
index, the image names, their files' sha256 and the skipped files with the reason. The manifest
records every shard's file sha256; the store id is the sha256 of the provenance that fixes the
contents (config, dtype, backend, forward mode, weights digest, transform, intermediates, batch
size, image names, package version). Nothing holds a timestamp and batch boundaries follow the
sorted name list, so a shard's bytes do not depend on which worker made it or when.

Safety: shards and the manifest are written to a temporary file and renamed into place, so a
run killed at any point leaves only whole files. A rerun of the same command checks every shard
against the manifest (digest) and its own metadata (store id, index, names), keeps the good ones,
adopts a whole shard written before the manifest caught up, and recomputes the rest; a store with
another store id is refused.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import logging
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._version import __version__
from ..core import backend
from ..models import registry
from .golden import METADATA_KEY, compare_arrays, default_tolerance, parse_safetensors_header
from .imageset import BadImageError, EvalTransform, list_images
from .weights_io import params_digest

FORMAT = "swinref-goldenset"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SHARD_DIR = "shards"
INTERMEDIATE_PREFIX = "intermediates/"
TOP_K = 5
CONNECT_TIMEOUT_S = 10.0  # how long to wait for an existing scheduler before giving up
# provenance fields that do not change a shard's bytes, so they stay out of the store id
INFORMATIONAL = ("weights_source", "images_root", "model")


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


def _shard_path(store: str, index: int) -> str:
    return os.path.join(store, SHARD_DIR, _shard_key(index) + ".safetensors")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_atomic(path: str, data: bytes) -> None:
    """Write to a temporary file next to ``path``, flush it to disk, then rename over ``path``."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


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
    xp = backend.get_namespace(backend_name)
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


def encode_shard(result: Mapping[str, Any], *, sid: str, index: int, image_sha256: Sequence[str]) -> bytes:
    """The shard file's bytes: the batch's tensors plus a JSON metadata entry."""
    from safetensors.numpy import save  # noqa: PLC0415

    meta = {
        "format": FORMAT + "-shard",
        "format_version": FORMAT_VERSION,
        "store_id": sid,
        "shard": index,
        "images": list(result["names"]),
        "image_sha256": list(image_sha256),
        "skipped": [{"name": n, "reason": r} for n, r in result["skipped"]],
    }
    header = json.dumps(meta, sort_keys=True, separators=(",", ":"))
    return save(dict(result["tensors"]), metadata={METADATA_KEY: header})


def _shard_metadata(data: bytes) -> dict[str, Any] | None:
    """The shard's metadata if ``data`` is a whole, readable shard file, else None."""
    from safetensors.numpy import load  # noqa: PLC0415

    try:
        header = parse_safetensors_header(data, "shard")
        meta = json.loads((header.get("__metadata__") or {})[METADATA_KEY])
        load(data)
    except Exception:  # GoldenFileError, no metadata, bad JSON, or safetensors' own error type
        return None
    return meta if isinstance(meta, dict) else None


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
        """A shard's tensors and metadata, after checking its sha256 against the manifest."""
        from safetensors.numpy import load  # noqa: PLC0415

        record = self.shards[key]
        path = os.path.join(self.path, record["file"])
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise GoldenSetError(f"{self.path}: shard {key} cannot be read: {e}") from e
        if _sha256(data) != record["sha256"]:
            raise GoldenSetError(
                f"{self.path}: shard {key} is corrupt: its sha256 {_sha256(data)} "
                f"differs from the manifest's {record['sha256']}"
            )
        return load(data), _shard_metadata(data) or {}


def open_store(path: str | os.PathLike) -> Store:
    """Read a store's manifest; raises :class:`GoldenSetError` for anything but a golden set store."""
    path = os.fspath(path)
    mpath = os.path.join(path, MANIFEST)
    if not os.path.isfile(mpath):
        raise GoldenSetError(f"{path} is not a golden set store: it has no {MANIFEST}")
    try:
        with open(mpath, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise GoldenSetError(f"{mpath}: cannot read the manifest ({e})") from e
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise GoldenSetError(f"{mpath}: format is {found!r}, expected {FORMAT!r}")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise GoldenSetError(
            f"{mpath}: format version {manifest.get('format_version')!r} is not supported; "
            f"this swinref reads version {FORMAT_VERSION}"
        )
    missing = [k for k in ("store_id", "provenance", "images", "num_shards", "shards") if k not in manifest]
    if missing:
        raise GoldenSetError(f"{mpath}: the manifest lacks fields {missing}")
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


def prepare_store(out: str, manifest: dict[str, Any]) -> tuple[Store, list[int], list[str]]:
    """Open or create the store for ``manifest``; returns it, the shards to compute and notes.

    A shard is kept when its file matches the manifest's sha256; a file the manifest does not
    know is adopted when it is a whole shard of this store (store id, index and names agree);
    anything else is reported in the notes and recomputed.
    """
    notes: list[str] = []
    if os.path.exists(os.path.join(out, MANIFEST)):
        store = open_store(out)
        if store.manifest["store_id"] != manifest["store_id"]:
            diff = _provenance_diff(store.provenance, manifest["provenance"])
            raise GoldenSetError(
                f"{out} holds a golden set written with another configuration; refusing to mix "
                f"shards. Differences: {'; '.join(diff) or 'store id only'}. Use another --out "
                "or remove the store."
            )
        store.manifest["provenance"] = manifest["provenance"]  # informational fields may change
    elif os.path.isdir(out) and os.listdir(out):
        raise GoldenSetError(
            f"{out} exists, is not empty and has no {MANIFEST}: not a golden set "
            "store; expected a new or empty directory or an existing store"
        )
    else:
        store = Store(out, manifest)
    os.makedirs(os.path.join(out, SHARD_DIR), exist_ok=True)

    sid, names, bs = manifest["store_id"], manifest["images"], manifest["batch_size"]
    todo = []
    for i in range(manifest["num_shards"]):
        key, path = _shard_key(i), _shard_path(out, i)
        record = store.shards.get(key)
        data = None
        if os.path.isfile(path):
            with open(path, "rb") as f:
                data = f.read()
        if record is not None:
            if data is not None and _sha256(data) == record["sha256"]:
                continue
            why = "is missing" if data is None else "does not match its manifest sha256 (corrupt)"
            notes.append(f"shard {key} {why}; recomputing it")
            del store.shards[key]
        elif data is not None:
            meta = _shard_metadata(data)
            batch = names[i * bs : (i + 1) * bs]
            if (
                meta
                and meta.get("store_id") == sid
                and meta.get("shard") == i
                and sorted(meta.get("images", []) + [s["name"] for s in meta.get("skipped", [])]) == batch
            ):
                store.shards[key] = _shard_record(
                    i, data, meta["images"], [(s["name"], s["reason"]) for s in meta["skipped"]]
                )
                notes.append(f"shard {key} was written but not yet in the manifest; adopted")
                continue
            notes.append(
                f"shard {key} on disk is not a shard of this store (foreign or corrupt); recomputing it"
            )
        todo.append(i)
    store.save()
    return store, todo, notes


def _shard_record(index: int, data: bytes, names: Sequence[str], skipped) -> dict[str, Any]:
    return {
        "file": f"{SHARD_DIR}/{_shard_key(index)}.safetensors",
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
    """

    start = time.perf_counter()
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
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
    store, todo, notes = prepare_store(out, _new_manifest(provenance, names, batch_size))
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
                task_kwargs=dict(
                    cfg=cfg,
                    transform=transform,
                    dtype=dtype,
                    backend_name=backend_name,
                    mode=mode,
                    intermediates=intermediates,
                    weights_digest=digest,
                ),
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
    hashes: dict[Any, tuple[int, list[str]]] = {}

    def submit_next(ac) -> bool:
        i = next(pending, None)
        if i is None:
            return False
        batch = names[i * batch_size : (i + 1) * batch_size]
        items = []
        for n in batch:
            with open(os.path.join(root, n), "rb") as f:
                items.append((n, f.read()))
        fut = client.submit(compute_batch, params_future, items, **task_kwargs, pure=False)
        hashes[fut.key] = (i, [_sha256(d) for _, d in items])
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
                i, file_hashes = hashes.pop(fut.key)
                result = fut.result()
                fut.release()
                if result["skipped"] and on_bad_file == "fail":
                    bad += result["skipped"]
                if bad:  # stop: keep what is written, submit nothing more
                    for other in list(ac.futures):
                        other.cancel()
                    break
                by_name = dict(zip(names[i * batch_size : (i + 1) * batch_size], file_hashes, strict=False))
                data = encode_shard(
                    result,
                    sid=store.manifest["store_id"],
                    index=i,
                    image_sha256=[by_name[n] for n in result["names"]],
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
    """
    a = a if isinstance(a, Store) else open_store(a)
    b = b if isinstance(b, Store) else open_store(b)
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
