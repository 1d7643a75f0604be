"""Hostile image files: tiny files that claim huge or extreme sizes, Pillow failures of every kind,
and files that are not regular files. Each is one skipped bad file with its reason, quickly; normal
images decode exactly as before."""

from __future__ import annotations

import io
import os
import struct
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PIL")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from PIL import Image  # noqa: E402

from swinref.artifacts import imageset  # noqa: E402
from swinref.artifacts.imageset import (  # noqa: E402
    MAX_ASPECT_RATIO,
    MAX_PIXELS,
    BadImageError,
    EvalTransform,
    read_image_file,
)

T = EvalTransform(img_size=(32, 32))


def png_bytes(w: int, h: int, mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (w, h), 7).save(buf, format="PNG")
    return buf.getvalue()


def png_claiming(w: int, h: int) -> bytes:
    """A PNG whose header says w x h RGB but which holds a few bytes of pixel data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


# ----- sizes checked from the header, before decoding -------------------------------------------
@pytest.mark.parametrize("w, h", [(1, 2000), (1, 10000), (100000, 1), (3, 301 * 3)])
def test_extreme_aspect_ratio_is_refused_quickly(w, h):
    data = png_bytes(w, h)
    assert len(data) < 1000, f"the {w}x{h} PNG should be tiny, got {len(data)} bytes"
    start = time.monotonic()
    with pytest.raises(
        BadImageError, match=rf"strip.png: image size {w}x{h} has an aspect ratio of .*MAX_ASPECT_RATIO"
    ):
        T(data, "strip.png")
    assert time.monotonic() - start < 1, "refusing an elongated image should not decode or resize it"


def test_aspect_ratio_at_the_cap_is_accepted():
    assert T(png_bytes(2, 2 * MAX_ASPECT_RATIO)).shape == (3, 32, 32)


@pytest.mark.parametrize(
    "w, h", [(50000, 50000), (9000, 9000), (12000, 12000), (MAX_PIXELS // 1000 + 1, 1000)]
)
def test_header_claiming_too_many_pixels_is_refused(w, h):
    """50000^2 is past Pillow's bomb error, 12000^2 past its warning, 9000^2 only past ours."""
    data = png_claiming(w, h)
    start = time.monotonic()
    with pytest.raises(
        BadImageError, match=r"bomb.png: (image size .*MAX_PIXELS|cannot decode: DecompressionBomb)"
    ):
        T(data, "bomb.png")
    assert time.monotonic() - start < 1, "the size should be refused from the header, before decoding"


def test_resized_image_bounded_for_large_crops():
    t = EvalTransform(img_size=(4096, 4096), crop_pct=0.25)  # resize_short 16384: 16384^2 > MAX_PIXELS
    with pytest.raises(BadImageError, match=r"big.png: resized to 16384x16384, more than"):
        t(png_bytes(8, 8), "big.png")


# ----- every Pillow failure is a bad file ---------------------------------------------------------
@pytest.mark.parametrize(
    "error",
    [
        MemoryError(),
        OSError("broken data stream"),
        ValueError("Decompressed data too large"),
        SyntaxError("not a PNG file"),
        struct.error("unpack requires a buffer"),
        IndexError("list index out of range"),
        EOFError(),
    ],
    ids=lambda e: type(e).__name__,
)
def test_decoder_errors_become_bad_image_errors(monkeypatch, error):
    def fail(self, *args, **kwargs):
        raise error

    monkeypatch.setattr(Image.Image, "convert", fail)
    with pytest.raises(BadImageError, match=r"x.png: cannot decode: "):
        T(png_bytes(40, 40), "x.png")


def test_decompression_bomb_from_pillow_is_a_bad_file(monkeypatch):
    """Pillow's own limit, lowered below ours: its error and its warning are bad files too."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(BadImageError, match="cannot decode: DecompressionBombError"):
        T(png_bytes(50, 50), "x.png")  # 2500 > 2 * 1000: Pillow raises
    with pytest.raises(BadImageError, match="cannot decode: DecompressionBombWarning"):
        T(png_bytes(40, 40), "x.png")  # 1600 > 1000: Pillow warns


def test_memory_error_while_resizing_is_a_bad_file(monkeypatch):
    def fail(self, *args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(Image.Image, "resize", fail)
    with pytest.raises(BadImageError, match="x.png: cannot resize: out of memory"):
        T(png_bytes(40, 50), "x.png")


# ----- reading files: regular files only, bounded -------------------------------------------------
def _fifo_guard(fifos: list[Path]):
    """If a reader blocks on one of ``fifos``, open its write end after a while so the test fails
    instead of hanging; returns an event that stops the guard."""
    stop = threading.Event()

    def guard():
        if stop.wait(15):
            return
        for f in fifos:
            try:
                os.close(os.open(f, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass

    threading.Thread(target=guard, daemon=True).start()
    return stop


def test_read_image_file_refuses_special_and_oversized_files(tmp_path, monkeypatch):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.png"
    os.symlink("/dev/zero", zero)
    big = tmp_path / "big.png"
    big.write_bytes(png_bytes(64, 64))
    monkeypatch.setattr(imageset, "MAX_IMAGE_BYTES", 100)
    stop = _fifo_guard([fifo])
    try:
        with pytest.raises(BadImageError, match=r"^pipe.png: image file pipe.png is a FIFO"):
            read_image_file(fifo, "pipe.png")
    finally:
        stop.set()
    with pytest.raises(BadImageError, match=r"^zero.png: image file zero.png is a character device"):
        read_image_file(zero, "zero.png")
    with pytest.raises(BadImageError, match=r"big.png has [0-9,]+ bytes, more than the 100 allowed"):
        read_image_file(big, "big.png")
    with pytest.raises(BadImageError, match=r"^gone.png: image file not found: gone.png"):
        read_image_file(tmp_path / "gone.png", "gone.png")


def test_a_run_skips_hostile_files_and_finishes(tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    from distributed import Client

    import swinref
    from swinref.artifacts.goldenset import GoldenSetError, run_golden_set

    d = tmp_path / "images"
    d.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(
        d / "a_good.png"
    )
    (d / "b_strip.png").write_bytes(png_bytes(1, 100000))
    (d / "c_bomb.png").write_bytes(png_claiming(50000, 50000))
    os.mkfifo(d / "d_pipe.png")
    os.symlink("/dev/zero", d / "e_zero.png")
    (d / "f_big.png").write_bytes(png_bytes(64, 64) + b"\0" * 5000)
    monkeypatch.setattr(imageset, "MAX_IMAGE_BYTES", 4000)
    cfg = swinref.SwinConfig(
        img_size=32, patch_size=4, embed_dim=8, depths=(2, 2), num_heads=(1, 2), window_size=4, num_classes=10
    )
    params = swinref.init_params(cfg, seed=0)
    stop = _fifo_guard([d / "d_pipe.png"])
    client = Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=":0")
    try:
        report = run_golden_set(d, tmp_path / "store", cfg=cfg, params=params, client=client, batch_size=3)
        assert report.complete and report.shards_computed == 2, report
        reasons = dict(report.skipped)
        assert sorted(reasons) == ["b_strip.png", "c_bomb.png", "d_pipe.png", "e_zero.png", "f_big.png"], (
            reasons
        )
        for name, text in (
            ("b_strip.png", "aspect ratio of 100000:1"),
            ("c_bomb.png", "cannot decode: DecompressionBombError"),
            ("d_pipe.png", "image file d_pipe.png is a FIFO"),
            ("e_zero.png", "image file e_zero.png is a character device"),
            ("f_big.png", "more than the 4,000 allowed"),
        ):
            assert text in reasons[name], f"{name}: expected {text!r} in {reasons[name]!r}"
        assert str(d) not in "".join(reasons.values()), "reasons should not depend on where the images lie"
        again = run_golden_set(d, tmp_path / "store", cfg=cfg, params=params, client=client, batch_size=3)
        assert again.shards_computed == 0 and again.changed_images == [], again
        with pytest.raises(GoldenSetError, match=r"b_strip.png: image size 1x100000.*d_pipe.png: image file"):
            run_golden_set(
                d,
                tmp_path / "store2",
                cfg=cfg,
                params=params,
                client=client,
                batch_size=6,
                on_bad_file="fail",
            )
    finally:
        stop.set()
        client.close()


# ----- normal images: exactly as before -----------------------------------------------------------
def _reference(data: bytes, t: EvalTransform) -> np.ndarray:
    """The eval transform spelled out with plain Pillow and NumPy, no caps."""
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        rgb = im.convert("RGB")
    w, h = rgb.size
    short = t.resize_short
    new_w, new_h = (short, int(short * h / w)) if w <= h else (int(short * w / h), short)
    if (new_w, new_h) != (w, h):
        rgb = rgb.resize((new_w, new_h), Image.BICUBIC)
    top, left = int(round((new_h - 32) / 2.0)), int(round((new_w - 32) / 2.0))
    x = np.asarray(rgb, dtype=np.uint8)[top : top + 32, left : left + 32].astype(np.float64) / 255.0
    return ((x - np.asarray(t.mean)) / np.asarray(t.std)).transpose(2, 0, 1)


@settings(max_examples=30, deadline=None)
@given(
    w=st.integers(1, 90),
    h=st.integers(1, 90),
    mode=st.sampled_from(["RGB", "L", "RGBA", "P"]),
    fmt=st.sampled_from(["PNG", "JPEG"]),
    seed=st.integers(0, 2**16),
)
def test_normal_images_decode_exactly_as_before(w, h, mode, fmt, seed):
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).convert(mode)
    if fmt == "JPEG" and mode in ("RGBA", "P"):
        img = img.convert("RGB")
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    data = buf.getvalue()
    got = T(data)
    assert np.array_equal(got, _reference(data, T)), f"{w}x{h} {mode} {fmt}: the transform changed its output"
