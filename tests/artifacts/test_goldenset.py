"""Golden sets: the eval transform, runs on a 2-worker LocalCluster, resume, corruption, compare."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("PIL")
pytest.importorskip("distributed")

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st
from PIL import Image  # noqa: E402
from strategies import image_sizes  # noqa: E402

import swinref  # noqa: E402
from swinref.artifacts.goldenset import (  # noqa: E402
    MANIFEST,
    GoldenSetError,
    compare_stores,
    connect,
    encode_shard,
    open_store,
    run_golden_set,
)
from swinref.artifacts.imageset import EvalTransform, list_images  # noqa: E402
from swinref.cli import main  # noqa: E402
from swinref.models import v1 as config  # noqa: E402

TINY_NAME = "swin_test_tiny"
TINY = dict(
    img_size=32, patch_size=4, embed_dim=8, depths=(2, 2), num_heads=(1, 2), window_size=4, num_classes=10
)
CFG = swinref.SwinConfig(**TINY)
BATCH = 3
GOOD = ["a_rgb.png", "b_rgba.png", "c_grey.png", "d_rgb.jpg", "e_grey.jpg", "f_palette.png"]
BROKEN = "broken.png"


def _rgb(w: int, h: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    """Six decodable images (PNG and JPEG; RGB, RGBA, grey, palette) and one corrupt file."""
    d = tmp_path_factory.mktemp("images")
    Image.fromarray(_rgb(48, 40, 0)).save(d / "a_rgb.png")
    rgba = np.concatenate([_rgb(40, 44, 1), np.full((44, 40, 1), 77, np.uint8)], axis=2)
    Image.fromarray(rgba, "RGBA").save(d / "b_rgba.png")
    Image.fromarray(_rgb(36, 50, 2)[:, :, 0], "L").save(d / "c_grey.png")
    Image.fromarray(_rgb(64, 48, 3)).save(d / "d_rgb.jpg", quality=90)
    Image.fromarray(_rgb(40, 40, 4)[:, :, 1], "L").save(d / "e_grey.jpg", quality=90)
    Image.fromarray(_rgb(50, 38, 5)).convert("P").save(d / "f_palette.png")
    (d / BROKEN).write_bytes(b"a text file named like a PNG\n" * 4)
    (d / "notes.txt").write_text("ignored: not an image suffix")
    return d


@pytest.fixture(scope="module")
def client():
    """One LocalCluster of 2 worker processes, 1 thread each, shared by the module's runs."""
    c = connect(workers=2)
    yield c
    cluster = c.cluster
    c.close()
    cluster.close()


@pytest.fixture(scope="module")
def params():
    return swinref.init_params(CFG, seed=0)


def run(image_dir, out, params, client, **kwargs):
    kwargs.setdefault("batch_size", BATCH)
    return run_golden_set(
        image_dir,
        out,
        cfg=CFG,
        params=params,
        model=TINY_NAME,
        client=client,
        weights_source="seeded init seed=0",
        **kwargs,
    )


def digests(store) -> dict[str, str]:
    return {k: r["sha256"] for k, r in open_store(store).shards.items()}


@pytest.fixture(scope="module")
def clean_store(tmp_path_factory, image_dir, params, client):
    out = tmp_path_factory.mktemp("clean") / "store"
    report = run(image_dir, out, params, client)
    return out, report


# ----- the eval transform --------------------------------------------------------------------
def test_transform_matches_timm_eval_transform():
    timm_data = pytest.importorskip("timm.data")
    import timm

    cfg = swinref.SwinConfig.named("swin_t")
    ours = EvalTransform.for_model(cfg, "swin_t")
    model = timm.create_model("swin_tiny_patch4_window7_224", pretrained=False, num_classes=0)
    theirs = timm_data.create_transform(**timm_data.resolve_data_config(model=model))
    img = Image.fromarray(_rgb(300, 260, 7))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    got = ours(buf.getvalue())
    want = theirs(img).numpy()
    assert (ours.crop_pct, ours.resize_short) == (0.9, 248), f"got {ours.crop_pct}, {ours.resize_short}"
    assert got.shape == want.shape == (3, 224, 224), f"shapes {got.shape} vs {want.shape}"
    # timm normalises in float32: values of magnitude <= 2.7 carry rounding below 2.7 * 2**-23 ~ 3e-7
    err = np.abs(got - want).max()
    assert err < 1e-6, f"expected timm's eval transform within float32 rounding, max abs diff {err:.3e}"


def test_grey_and_alpha_conversion(image_dir):
    t = EvalTransform.for_model(CFG, TINY_NAME)
    grey = t((image_dir / "c_grey.png").read_bytes())
    pixels = grey * np.asarray(t.std)[:, None, None] + np.asarray(t.mean)[:, None, None]
    # exact up to the float64 round trip of (p / 255 - mean) / std, |p| <= 1: 1e-15 is ~5 ulp
    assert np.abs(pixels[0] - pixels[1]).max() < 1e-15 and np.abs(pixels[0] - pixels[2]).max() < 1e-15, (
        "expected a grey image replicated to three equal channels"
    )
    rgba = Image.open(image_dir / "b_rgba.png")
    rgb_only = io.BytesIO()
    rgba.convert("RGB").save(rgb_only, format="PNG")
    assert np.array_equal(t((image_dir / "b_rgba.png").read_bytes()), t(rgb_only.getvalue())), (
        "expected RGBA to equal its RGB channels (alpha dropped, no compositing)"
    )


@given(size=image_sizes(), colour=st.tuples(*[st.integers(0, 255)] * 3).map(tuple))
def test_constant_image_stays_constant(size, colour):
    w, h = size
    t = EvalTransform(img_size=(32, 32))
    buf = io.BytesIO()
    Image.new("RGB", (w, h), colour).save(buf, format="PNG")
    got = t(buf.getvalue())
    want = (np.asarray(colour) / 255.0 - np.asarray(t.mean)) / np.asarray(t.std)
    assert got.shape == (3, 32, 32), f"expected (3, 32, 32), got {got.shape}"
    # bicubic weights sum to one, so a constant image resizes to itself (Pillow rounds to uint8)
    assert np.array_equal(got, np.broadcast_to(want[:, None, None], got.shape)), (
        f"expected every pixel {want}, got range {got.min(axis=(1, 2))}..{got.max(axis=(1, 2))}"
    )


def test_bad_bytes_raise_bad_image_error(image_dir):
    from swinref.artifacts.imageset import BadImageError

    t = EvalTransform(img_size=(32, 32))
    whole = (image_dir / "d_rgb.jpg").read_bytes()
    with pytest.raises(BadImageError, match="cut.jpg: cannot decode: OSError"):
        t(whole[: len(whole) // 2], "cut.jpg")
    with pytest.raises(BadImageError, match="x.png: not an image Pillow can identify"):
        t(b"plain text", "x.png")
    with pytest.raises(BadImageError, match="unsupported image mode 'I;16'"):
        buf = io.BytesIO()
        Image.fromarray(np.zeros((40, 40), np.uint16)).save(buf, format="PNG")
        t(buf.getvalue(), "deep.png")


def test_list_images(image_dir):
    root, names = list_images(image_dir)
    assert names == sorted(GOOD + [BROKEN]), f"expected the image-suffixed files sorted, got {names}"
    root, names = list_images(str(image_dir / "*.jpg"))
    assert names == ["d_rgb.jpg", "e_grey.jpg"], f"glob: got {names}"
    with pytest.raises(FileNotFoundError, match="neither a directory nor a glob pattern"):
        list_images(str(image_dir / "missing"))


# ----- a run on 2 workers --------------------------------------------------------------------
def test_run_on_two_workers(clean_store, image_dir, params, client):
    out, report = clean_store
    threads = list(client.nthreads().values())
    assert threads == [1, 1], f"expected 2 workers of 1 thread, got {client.nthreads()}"
    env = client.run(
        lambda: (os.environ.get("OPENBLAS_NUM_THREADS"), os.environ.get("MALLOC_TRIM_THRESHOLD_"))
    )
    # one BLAS thread per worker; no MALLOC_TRIM_THRESHOLD_, which slows the forward (goldenset.connect)
    assert set(env.values()) == {("1", None)}, f"expected ('1', None) in every worker, got {env}"
    assert (report.shards, report.shards_computed, report.complete) == (3, 3, True), report
    assert [n for n, _ in report.skipped] == [BROKEN], f"expected only {BROKEN} skipped, got {report.skipped}"
    assert "not an image Pillow can identify" in report.skipped[0][1], report.skipped[0][1]
    store = open_store(out)
    t = EvalTransform.for_model(CFG, TINY_NAME)
    assert store.provenance["transform"] == t.to_dict(), store.provenance["transform"]
    assert store.provenance["weights_digest"] == swinref.params_digest(params)
    seen = []
    for key in sorted(store.shards):
        tensors, meta = store.read_shard(key)
        names = store.shards[key]["images"]
        seen += names
        x = np.stack([t((image_dir / n).read_bytes()) for n in names])
        assert np.array_equal(tensors["input"], x), f"shard {key}: stored input is not the transform's"
        want = swinref.forward(params, x, CFG)
        # the same float64 operations; only BLAS blocking may differ between processes: 1e-12
        err = np.abs(tensors["logits"] - want).max()
        assert err < 1e-12, f"shard {key}: logits differ from a direct forward by {err:.3e}"
        top = np.argsort(-tensors["logits"], axis=1, kind="stable")[:, :5]
        assert np.array_equal(tensors["top5"], top), f"shard {key}: top5 {tensors['top5']} vs {top}"
        assert meta["store_id"] == store.manifest["store_id"] and meta["images"] == names, meta
    assert seen == GOOD, f"expected every decodable image once in order, got {seen}"


def test_cli_images_with_intermediates(tmp_path, image_dir, clean_store, monkeypatch, capsys):
    monkeypatch.setitem(config.MODEL_ZOO, TINY_NAME, TINY)
    out = tmp_path / "cli"
    rc = main(
        [
            "golden",
            "--images",
            str(image_dir),
            "--model",
            TINY_NAME,
            "--out",
            str(out),
            "--workers",
            "2",
            "--batch-size",
            str(BATCH),
            "--intermediates",
            "patch_embed,layers.1",
            "--init",  # the API run's params: init_params(CFG, seed=0), timm's scheme
            "timm",
        ]
    )
    shown = capsys.readouterr().out
    assert rc == 0, f"expected exit 0, got {rc}:\n{shown}"
    for text in ("7 images in 3 shards", "skipped 1 unreadable", BROKEN):
        assert text in shown, f"summary lacks {text!r}:\n{shown}"
    store, ref = open_store(out), open_store(clean_store[0])
    for key in sorted(store.shards):
        tensors, _ = store.read_shard(key)
        assert {"intermediates/patch_embed", "intermediates/layers.1"} <= set(tensors), sorted(tensors)
        stage = tensors["intermediates/layers.1"]
        assert stage.shape[1:] == (4, 4, 16), f"expected (b, 4, 4, 16), got {stage.shape}"
        assert np.array_equal(tensors["logits"], ref.read_shard(key)[0]["logits"]), (
            f"shard {key}: the CLI's logits differ from the API run's"
        )


# ----- resume --------------------------------------------------------------------------------
def test_interrupted_run_resumes_to_the_same_store(tmp_path, clean_store, image_dir, params, client):
    out = tmp_path / "store"
    first = run(image_dir, out, params, client, max_shards=1)
    assert (first.shards_computed, first.complete) == (1, False), first
    second = run(image_dir, out, params, client)
    assert (second.shards_kept, second.shards_computed, second.complete) == (1, 2, True), second
    assert digests(out) == digests(clean_store[0]), "resumed store differs from an uninterrupted run"
    assert (out / MANIFEST).read_bytes() == (clean_store[0] / MANIFEST).read_bytes(), "manifests differ"
    third = run(image_dir, out, params, client)
    assert third.shards_computed == 0, f"a complete store recomputed {third.shards_computed} shards"


def test_killed_client_loses_nothing(tmp_path, image_dir, params, client):
    """SIGKILL of the client right after its 3rd shard file is renamed into place, before the
    manifest records it: the worst moment. The rerun keeps 2 shards, adopts the 3rd, computes 4."""
    out = tmp_path / "store"
    script = f"""
import os, signal, sys
import swinref.artifacts.goldenset as g
from swinref.models import v1 as config
from swinref.cli import main

config.MODEL_ZOO[{TINY_NAME!r}] = {TINY!r}
write, shard_files = g._write_atomic, []

def write_then_die(path, data):
    write(path, data)
    if path.endswith(".safetensors"):
        shard_files.append(path)
        if len(shard_files) == 3:
            os.kill(os.getpid(), signal.SIGKILL)

g._write_atomic = write_then_die
sys.exit(main(["golden", "--images", {str(image_dir)!r}, "--model", {TINY_NAME!r}, "--out", {str(out)!r},
               "--workers", "1", "--batch-size", "1", "--init", "timm"]))
"""
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the LocalCluster processes the killed client left
        except ProcessLookupError:
            pass
    assert proc.returncode == -signal.SIGKILL, f"expected SIGKILL, got exit {proc.returncode}: {err[-2000:]}"
    on_disk = sorted(p.name for p in (out / "shards").glob("*.safetensors"))
    recorded = sorted(open_store(out).shards)
    assert (len(on_disk), recorded) == (3, ["00000", "00001"]), f"on disk {on_disk}, in manifest {recorded}"
    leftovers = [p.name for p in (out / "shards").iterdir() if p.name.endswith(".tmp") or ".tmp-" in p.name]
    assert not leftovers, f"temporary files were left behind: {leftovers}"
    resumed = run(image_dir, out, params, client, batch_size=1)
    assert (resumed.shards_kept, resumed.shards_computed, resumed.complete) == (3, 4, True), resumed
    assert any("adopted" in n for n in resumed.notes), f"expected shard 00002 adopted, notes {resumed.notes}"
    clean = tmp_path / "clean1"
    run(image_dir, clean, params, client, batch_size=1)
    assert digests(out) == digests(clean), "store resumed after a kill differs from an uninterrupted run"
    assert (out / MANIFEST).read_bytes() == (clean / MANIFEST).read_bytes(), "manifests differ"


# ----- corruption and refusal ----------------------------------------------------------------
def test_corrupt_and_foreign_shards_are_redone(tmp_path, clean_store, image_dir, params, client):
    out = tmp_path / "store"
    shutil.copytree(clean_store[0], out)
    with pytest.raises(GoldenSetError, match="shard 00001 is corrupt"):
        shard = out / "shards" / "00001.safetensors"
        data = bytearray(shard.read_bytes())
        data[-1] ^= 1
        shard.write_bytes(bytes(data))
        compare_stores(out, clean_store[0])
    # shard 2 replaced by a whole shard of another store, unknown to the manifest
    foreign = encode_shard(
        {"names": ["f_palette.png"], "skipped": [], "tensors": {"logits": np.zeros((1, 10))}},
        sid="0" * 64,
        index=2,
        image_sha256=["0" * 64],
    )
    (out / "shards" / "00002.safetensors").write_bytes(foreign)
    manifest = json.loads((out / MANIFEST).read_text())
    del manifest["shards"]["00002"]
    (out / MANIFEST).write_text(json.dumps(manifest))
    report = run(image_dir, out, params, client)
    assert report.shards_computed == 2, report
    notes = " | ".join(report.notes)
    for text in (
        "shard 00001 does not match its manifest sha256 (corrupt)",
        "shard 00002 on disk is not a shard of this store",
    ):
        assert text in notes, f"expected note {text!r}, got {notes}"
    assert digests(out) == digests(clean_store[0]), "redone shards differ from the clean run"


def test_store_of_another_config_is_refused(tmp_path, clean_store, image_dir):
    other = swinref.init_params(CFG, seed=1)
    with pytest.raises(GoldenSetError, match="another configuration.*weights_digest"):
        run(image_dir, clean_store[0], other, None)
    with pytest.raises(GoldenSetError, match="batch_size: stored 3, requested 2"):
        run(image_dir, clean_store[0], swinref.init_params(CFG, seed=0), None, batch_size=2)
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "file").write_text("")
    with pytest.raises(GoldenSetError, match="not a golden set store"):
        run(image_dir, tmp_path / "x", other, None)
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == ["file"], "the refused directory was written"


def test_unreachable_scheduler(tmp_path, image_dir, params):
    start = time.monotonic()
    with pytest.raises(GoldenSetError, match=r"cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'"):
        run_golden_set(
            image_dir,
            tmp_path / "s",
            cfg=CFG,
            params=params,
            batch_size=BATCH,
            scheduler="tcp://127.0.0.1:9",
            connect_timeout=2,
        )
    elapsed = time.monotonic() - start
    # 2 s of connection attempts plus the listing, the params digest and the store set-up
    assert elapsed < 8, f"expected the error soon after the 2 s connect timeout, took {elapsed:.1f} s"


def test_bad_file_fatal_by_flag(tmp_path, image_dir, params, client):
    with pytest.raises(GoldenSetError, match=f"{BROKEN}: not an image.*--on-bad-file skip"):
        run(image_dir, tmp_path / "s", params, client, on_bad_file="fail")


def test_bad_arguments(tmp_path, image_dir, params):
    with pytest.raises(ValueError, match="unknown intermediates \\['layers.7'\\]; expected names among"):
        run(image_dir, tmp_path / "s", params, None, intermediates=["layers.7"])
    with pytest.raises(ValueError, match="no images found"):
        (tmp_path / "empty").mkdir()
        run(tmp_path / "empty", tmp_path / "s", params, None)


# ----- compare -------------------------------------------------------------------------------
def test_store_compared_with_itself(clean_store, capsys):
    out = str(clean_store[0])
    r = compare_stores(out, out)
    assert r.passed and r.images == 6 and r.top1_agree == 6, r
    assert all(t["max_abs"] == 0 for t in r.tensors.values()), r.tensors
    assert main(["compare", out, out]) == 0
    shown = capsys.readouterr().out
    assert "top-1 agreement 6/6 (100.00%)" in shown and "PASS" in shown, shown


def test_store_compared_with_perturbed_copy(tmp_path, clean_store, capsys):
    from safetensors.numpy import load

    b = tmp_path / "b"
    shutil.copytree(clean_store[0], b)
    store = open_store(b)
    tensors, meta = store.read_shard("00001")
    row = store.shards["00001"]["images"].index("d_rgb.jpg")
    tensors = dict(tensors)
    tensors["logits"] = tensors["logits"].copy()
    tensors["logits"][row, 3] += 1e-6
    skipped = [(s["name"], s["reason"]) for s in meta["skipped"]]
    data = encode_shard(
        {"names": meta["images"], "skipped": skipped, "tensors": tensors},
        sid=meta["store_id"],
        index=1,
        image_sha256=meta["image_sha256"],
    )
    assert np.array_equal(load(data)["input"], tensors["input"])
    (b / "shards" / "00001.safetensors").write_bytes(data)
    import hashlib

    store.shards["00001"]["sha256"] = hashlib.sha256(data).hexdigest()
    store.save()
    r = compare_stores(clean_store[0], b)
    assert not r.passed and r.failed_images == 1, f"expected one failing image, got {r.failed_images}"
    assert r.worst[0].name == "d_rgb.jpg" and r.worst[0].logits_max_abs == pytest.approx(1e-6, rel=1e-6), (
        f"expected d_rgb.jpg worst by 1e-6, got {r.worst[0]}"
    )
    assert r.tensors["logits"]["worst_image"] == "d_rgb.jpg" and r.tensors["input"]["max_abs"] == 0
    assert main(["compare", str(clean_store[0]), str(b)]) == 1
    shown = capsys.readouterr().out
    assert "d_rgb.jpg" in shown and "FAIL" in shown, shown
