"""Golden set stores under hostile conditions: planted symlinks, manifests pointing elsewhere or
malformed, images changed under a resumed run, corrupt unrecorded shards, two writers, bad options."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PIL")
pytest.importorskip("distributed")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from PIL import Image  # noqa: E402

import swinref  # noqa: E402
from swinref.artifacts import goldenset  # noqa: E402
from swinref.artifacts.goldenset import (  # noqa: E402
    LOCK,
    MANIFEST,
    GoldenSetError,
    compare_stores,
    lock_store,
    open_store,
    run_golden_set,
)
from swinref.cli import main  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
CFG = swinref.SwinConfig(
    img_size=32, patch_size=4, embed_dim=8, depths=(2, 2), num_heads=(1, 2), window_size=4, num_classes=10
)
BATCH = 2
NAMES = ["a.png", "b.png", "c.png", "d.png", "e.png"]  # 3 shards of 2, 2 and 1 images
PRECIOUS = b"must never be written by a store operation\n"


def _write_image(path: Path, seed: int) -> None:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(40, 44, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def make_images(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for i, n in enumerate(NAMES):
        _write_image(d / n, i)
    return d


@pytest.fixture(scope="module")
def client():
    """An in-process Dask cluster (one thread): these tests exercise the store, not the cluster."""
    from distributed import Client

    c = Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=":0")
    yield c
    c.close()


@pytest.fixture(scope="module")
def params():
    return swinref.init_params(CFG, seed=0)


def run(images, out, params, client, **kwargs):
    kwargs.setdefault("batch_size", BATCH)
    return run_golden_set(images, out, cfg=CFG, params=params, client=client, **kwargs)


def digests(store) -> dict[str, str]:
    return {k: r["sha256"] for k, r in open_store(store).shards.items()}


@pytest.fixture(scope="module")
def clean(tmp_path_factory, params, client):
    """(image dir, complete store) made once; tests copy what they change."""
    base = tmp_path_factory.mktemp("clean")
    images = make_images(base / "images")
    run(images, base / "store", params, client)
    return images, base / "store"


def copy_store(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(LOCK))
    return dst


def edit_manifest(store: Path, edit) -> None:
    m = json.loads((store / MANIFEST).read_text())
    edit(m)
    (store / MANIFEST).write_text(json.dumps(m))


# ----- 1. writes never follow planted symlinks --------------------------------------------------
def test_planted_symlinks_are_never_written_through(tmp_path, clean, params, client):
    images, ref = clean
    out = tmp_path / "store"
    run(images, out, params, client, max_shards=1)
    outside = tmp_path / "outside"
    outside.mkdir()
    victims = {}
    for planted in (
        f"{MANIFEST}.tmp-{os.getpid()}",  # the old temporary names: path.tmp-PID
        f"shards/00001.safetensors.tmp-{os.getpid()}",
        f"shards/00002.safetensors.tmp-{os.getpid()}",
        "shards/00002.safetensors",  # a shard the manifest does not know, leading out of the store
    ):
        victim = outside / planted.replace("/", "_")
        victim.write_bytes(PRECIOUS)
        victims[victim] = planted
        os.symlink(victim, out / planted)
    report = run(images, out, params, client)
    assert report.complete and report.shards_computed == 2, report
    changed = [str(v) for v in victims if v.read_bytes() != PRECIOUS]
    assert not changed, f"files outside the store were written through planted symlinks: {changed}"
    assert not (out / MANIFEST).is_symlink() and (out / MANIFEST).is_file(), (
        "manifest.json is not a plain file"
    )
    for k in ("00001", "00002"):
        shard = out / "shards" / f"{k}.safetensors"
        assert not shard.is_symlink() and shard.is_file(), f"shard {k} is not a plain file"
    assert any(
        "shard 00002 on disk cannot be read" in n and "leads out of the store" in n for n in report.notes
    ), report.notes
    assert digests(out) == digests(ref), "the store differs from a clean run"


def test_planted_lock_symlink_is_refused(tmp_path, clean, params, client):
    images, _ = clean
    out = tmp_path / "store"
    out.mkdir()
    victim = tmp_path / "victim"
    victim.write_bytes(PRECIOUS)
    os.symlink(victim, out / LOCK)
    with pytest.raises(GoldenSetError, match="cannot create the lock file"):
        run(images, out, params, client)
    assert victim.read_bytes() == PRECIOUS


# ----- 2. shard paths, symlinks, special files, schema ------------------------------------------
@pytest.mark.parametrize(
    "file",
    [
        "../other/shards/00000.safetensors",
        "/etc/passwd",
        "/dev/zero",
        "shards/00001.safetensors",  # another shard's file
        "./shards/00000.safetensors",
        "shards/../shards/00000.safetensors",
        "00000.safetensors",
        None,
    ],
)
def test_shard_file_must_be_its_plain_name(tmp_path, clean, file):
    """A store whose shards are garbage but whose manifest points at another store's files."""
    other = copy_store(clean[1], tmp_path / "other")
    store = copy_store(clean[1], tmp_path / "store")
    for shard in (store / "shards").iterdir():
        shard.write_bytes(b"garbage")

    def point_elsewhere(m):
        m["shards"]["00000"]["file"] = file

    edit_manifest(store, point_elsewhere)
    pattern = r"manifest\.json: malformed manifest: field 'shards\.00000\.file' is .*expected 'shards/00000"
    with pytest.raises(GoldenSetError, match=pattern):
        open_store(store)
    with pytest.raises(GoldenSetError, match=pattern):
        compare_stores(store, other)
    assert main(["compare", str(store), str(other)]) == 2


def test_symlinks_leading_out_of_the_store_are_refused(tmp_path, clean):
    ref = clean[1]
    # a shard that is a symlink to the identical shard of another store: same bytes, same digest
    store = copy_store(ref, tmp_path / "s1")
    shard = store / "shards" / "00000.safetensors"
    shard.unlink()
    os.symlink(ref / "shards" / "00000.safetensors", shard)
    with pytest.raises(GoldenSetError, match="shard 00000 cannot be read: .*leads out of the store"):
        compare_stores(store, ref)
    # the whole shards directory a symlink to another store's
    store = copy_store(ref, tmp_path / "s2")
    shutil.rmtree(store / "shards")
    os.symlink(ref / "shards", store / "shards")
    with pytest.raises(GoldenSetError, match="leads out of the store"):
        compare_stores(store, ref)
    # the manifest a symlink to another store's
    store = copy_store(ref, tmp_path / "s3")
    (store / MANIFEST).unlink()
    os.symlink(ref / MANIFEST, store / MANIFEST)
    with pytest.raises(GoldenSetError, match="manifest.json leads out of the store"):
        open_store(store)


def _without_hanging(fn, fifos: list[Path]):
    """Run ``fn``; if it blocks (a reader opening a FIFO), release it and fail instead of hanging."""
    out: dict = {}

    def target():
        try:
            out["value"] = fn()
        except BaseException as e:  # handed to the test thread
            out["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(10)
    if t.is_alive():
        for f in fifos:  # a writer end lets a blocked open() return
            try:
                os.close(os.open(f, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass
        t.join(10)
        pytest.fail("reading the store blocked on a FIFO")
    if "error" in out:
        raise out["error"]
    return out.get("value")


def test_special_files_are_refused_without_hanging(tmp_path, clean):
    ref = clean[1]
    store = copy_store(ref, tmp_path / "fifo_shard")
    shard = store / "shards" / "00001.safetensors"
    shard.unlink()
    os.mkfifo(shard)
    with pytest.raises(GoldenSetError, match="shard 00001 cannot be read: .*is a FIFO"):
        _without_hanging(lambda: compare_stores(store, ref), [shard])
    store = copy_store(ref, tmp_path / "fifo_manifest")
    (store / MANIFEST).unlink()
    os.mkfifo(store / MANIFEST)
    with pytest.raises(GoldenSetError, match="cannot read the manifest.*is a FIFO"):
        _without_hanging(lambda: open_store(store), [store / MANIFEST])
    store = copy_store(ref, tmp_path / "dir_shard")
    shard = store / "shards" / "00002.safetensors"
    shard.unlink()
    shard.mkdir()
    with pytest.raises(GoldenSetError, match="shard 00002 cannot be read: .*directory"):
        compare_stores(store, ref)


def test_manifest_and_shard_disagreeing_on_rows_is_refused(tmp_path, clean):
    """A record naming more images than its shard has rows: an error, not an IndexError."""
    store = copy_store(clean[1], tmp_path / "store")

    def move(m):
        m["shards"]["00000"]["images"].append(m["shards"]["00002"]["images"].pop())

    edit_manifest(store, move)
    with pytest.raises(GoldenSetError, match="shard 00000: tensor '.*' has shape .*expected 3 rows"):
        compare_stores(store, clean[1])


def _paths(value, prefix=()):
    """Every path to a value inside a JSON document: tuples of keys and indices."""
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*prefix, i))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 10**20) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_manifests_give_golden_set_error_or_work(clean, params, client, data):
    """Drop, retype or rename any field, or cut the JSON short: opening, comparing and resuming
    either work or raise GoldenSetError; never KeyError, IndexError, TypeError, AttributeError."""
    images, ref = clean
    manifest = json.loads((ref / MANIFEST).read_text())
    kind = data.draw(st.sampled_from(["drop", "retype", "rename", "truncate", "several"]))
    text = None
    if kind == "truncate":
        raw = json.dumps(manifest)
        text = raw[: data.draw(st.integers(0, len(raw) - 1))]
    else:
        for _ in range(data.draw(st.integers(2, 4)) if kind == "several" else 1):
            paths = [p for p in _paths(manifest) if p]
            path = data.draw(st.sampled_from(paths))
            parent = manifest
            for step in path[:-1]:
                parent = parent[step]
            how = data.draw(st.sampled_from(["drop", "retype", "rename"])) if kind == "several" else kind
            if how == "drop" or (how == "rename" and isinstance(parent, list)):
                del parent[path[-1]]
            elif how == "retype":
                parent[path[-1]] = data.draw(json_values)
            else:
                parent[data.draw(st.text(max_size=6))] = parent.pop(path[-1])
        text = json.dumps(manifest)
    with tempfile.TemporaryDirectory() as tmp:
        store = copy_store(ref, Path(tmp) / "store")
        (store / MANIFEST).write_text(text)
        try:
            compare_stores(store, ref)
        except GoldenSetError:
            pass
        try:
            run(images, store, params, client)  # resume: keeps, recomputes or refuses
        except GoldenSetError:
            pass


# ----- 3. images changed under a resumed run ----------------------------------------------------
def test_changed_images_are_recomputed_on_resume(tmp_path, params, client):
    images = make_images(tmp_path / "images")
    (images / "f.png").write_bytes(b"not an image yet\n")  # skipped in the first run
    out = tmp_path / "store"
    first = run(images, out, params, client)
    assert first.complete and [n for n, _ in first.skipped] == ["f.png"], first
    _write_image(images / "c.png", 99)  # same name, other pixels: shard 00001
    _write_image(images / "f.png", 98)  # the bad file fixed: shard 00002
    second = run(images, out, params, client)
    assert (second.shards_kept, second.shards_computed, second.complete) == (1, 2, True), second
    assert second.changed_images == ["c.png", "f.png"], second.changed_images
    notes = " | ".join(second.notes)
    for text in ("shard 00001 was computed from earlier contents", "c.png", "shard 00002", "f.png"):
        assert text in notes, f"expected {text!r} in the notes: {notes}"
    assert second.skipped == [], second.skipped
    fresh = tmp_path / "fresh"
    run(images, fresh, params, client)
    assert digests(out) == digests(fresh), "the resumed store mixes outputs of old and new images"
    third = run(images, out, params, client)
    assert (third.shards_computed, third.changed_images) == (0, []), third


# ----- 4. unrecorded shards are verified before adoption ----------------------------------------
def _flip_last_byte(path: Path, images: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))


def _change_its_image(path: Path, images: Path) -> None:
    _write_image(images / "d.png", 77)


def _truncate(path: Path, images: Path) -> None:
    path.write_bytes(path.read_bytes()[:-9])


def _drop_a_skipped_reason(path: Path, images: Path) -> None:
    """Re-encode the shard with metadata whose skipped entry lacks its reason."""
    from safetensors.numpy import load, save

    from swinref.artifacts.fileio import parse_safetensors_header

    data = path.read_bytes()
    meta = json.loads(parse_safetensors_header(data, "shard")["__metadata__"]["swinref"])
    meta["skipped"] = [{"name": meta["images"].pop()}]
    tensors = {k: v[:-1] for k, v in load(data).items()}
    meta["image_sha256"].pop()
    meta["tensors_sha256"] = goldenset.tensors_digest(tensors)
    path.write_bytes(save(tensors, metadata={"swinref": json.dumps(meta)}))


@pytest.mark.parametrize(
    "corrupt, note",
    [
        (_flip_last_byte, "do not match their recorded digest (corrupt)"),
        (_change_its_image, "changed since: d.png"),
        (_truncate, "is not a whole shard"),
        (_drop_a_skipped_reason, "is not a shard of this store"),
    ],
)
def test_unrecorded_shard_is_verified_before_adoption(tmp_path, clean, params, client, corrupt, note):
    images = tmp_path / "images"
    shutil.copytree(clean[0], images)
    store = copy_store(clean[1], tmp_path / "store")
    edit_manifest(store, lambda m: m["shards"].pop("00001"))  # c.png, d.png
    corrupt(store / "shards" / "00001.safetensors", images)
    report = run(images, store, params, client)
    assert report.shards_computed == 1 and report.complete, report
    assert not any("verified and adopted" in n for n in report.notes), report.notes
    assert any(n.startswith("shard 00001") and note in n for n in report.notes), report.notes
    fresh = tmp_path / "fresh"
    run(images, fresh, params, client)
    assert digests(store) == digests(fresh), "the store differs from a clean run over the same images"


def test_whole_unrecorded_shard_is_adopted(tmp_path, clean, params, client):
    store = copy_store(clean[1], tmp_path / "store")
    edit_manifest(store, lambda m: m["shards"].pop("00001"))
    report = run(clean[0], store, params, client)
    assert (report.shards_computed, report.shards_kept) == (0, 3), report
    assert any("00001" in n and "verified and adopted" in n for n in report.notes), report.notes
    assert (store / MANIFEST).read_bytes() == (clean[1] / MANIFEST).read_bytes()


# ----- 5. one writer at a time ------------------------------------------------------------------
HOLDER = """
import sys, time
from swinref.artifacts.goldenset import lock_store

with lock_store(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_second_writer_is_refused_until_the_first_dies(tmp_path, clean, params, client):
    images, _ = clean
    out = tmp_path / "store"
    out.mkdir()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(out)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        line = holder.stdout.readline()
        assert line == b"locked\n", f"the holder did not take the lock: {line!r} {holder.stderr.read()!r}"
        pattern = (
            rf"store {re.escape(str(out))} is in use by another run \(pid {holder.pid} on .*\); wait for it"
        )
        with pytest.raises(GoldenSetError, match=pattern):
            run(images, out, params, client)
        assert not (out / MANIFEST).exists(), "the refused run wrote the store"
        assert main(["compare", str(clean[1]), str(clean[1])]) == 0, "reading is not locked"
    finally:
        holder.send_signal(signal.SIGKILL)  # a killed holder leaves no stale lock
        holder.wait(timeout=30)
        holder.stdout.close()
        holder.stderr.close()
    report = run(images, out, params, client)
    assert report.complete, report


def test_lock_in_one_process_and_without_fcntl(tmp_path, monkeypatch):
    out = tmp_path / "store"
    out.mkdir()
    with lock_store(out):
        with pytest.raises(GoldenSetError, match=rf"is in use by another run \(pid {os.getpid()} on "):
            with lock_store(out):
                pass
    with lock_store(out):  # released
        pass
    monkeypatch.setattr(goldenset, "fcntl", None)
    (out / LOCK).unlink()
    with lock_store(out):
        with pytest.raises(
            GoldenSetError, match=rf"in use by another run \(pid {os.getpid()} .*remove .*\.lock"
        ):
            with lock_store(out):
                pass
    assert not (out / LOCK).exists(), "the fallback lock file was left behind"


# ----- 6. options ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "option, value", [("atol", "inf"), ("atol", "nan"), ("atol", "-1"), ("rtol", "-inf")]
)
def test_compare_tolerances_must_be_finite_and_not_negative(clean, option, value):
    ref = str(clean[1])
    with pytest.raises(ValueError, match=f"{option} must be a finite number >= 0, got"):
        compare_stores(ref, ref, **{option: float(value)})
    assert main(["compare", ref, ref, f"--{option}", value]) == 2


@pytest.mark.parametrize("value", [-1, 0, 1.5, True, "2"])
def test_max_shards_must_be_a_positive_int(tmp_path, clean, params, value):
    with pytest.raises(ValueError, match=r"max_shards must be a positive int or None, got"):
        run(clean[0], tmp_path / "s", params, None, max_shards=value)
    assert not (tmp_path / "s").exists()


def test_compare_refuses_a_store_object_off_the_schema(tmp_path, clean):
    store = open_store(clean[1])
    store.manifest["shards"]["00000"]["file"] = "../x/shards/00000.safetensors"
    with pytest.raises(GoldenSetError, match=r"field 'shards\.00000\.file'"):
        compare_stores(store, clean[1])
