"""Atomic writes and bounded reads: a killed writer leaves the old file or the new one, never a
part; two writers cannot both win; special files and oversized files are refused, not read."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from swinref.artifacts.fileio import (
    InputFileError,
    OutputExistsError,
    atomic_write,
    inside,
    read_regular,
    require_regular,
)

REPO = Path(__file__).resolve().parents[2]

SLOW_WRITER = """
import sys, time
from swinref.artifacts.fileio import atomic_write

def slow(f):
    for _ in range(400):
        f.write(b"n" * 65536)
        f.flush()
        time.sleep(0.002)

atomic_write(sys.argv[1], slow, overwrite=True)
print("done", flush=True)
"""


def _spawn(args: list[str], **kw) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


@pytest.mark.parametrize("delay", [0.15, 0.4, 0.8])
def test_sigkill_during_write_keeps_the_old_file(tmp_path, delay):
    dest = tmp_path / "out.bin"
    dest.write_bytes(b"old contents")
    p = _spawn([sys.executable, "-c", SLOW_WRITER, str(dest)])
    time.sleep(delay)
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)
    data = dest.read_bytes()
    assert data == b"old contents" or data == b"n" * 65536 * 400, f"partial file of {len(data)} bytes"
    if p.returncode == -signal.SIGKILL and data == b"old contents":
        # the only trace of the killed writer is its hidden temporary file, never the destination
        others = [q.name for q in tmp_path.iterdir() if q.name != "out.bin"]
        assert all(n.startswith(".out.bin.") and n.endswith(".tmp") for n in others), others


def test_golden_command_killed_at_any_moment_leaves_old_or_new(tmp_path):
    cfg = json.dumps(
        {
            "img_size": 64,
            "embed_dim": 32,
            "depths": [2, 2],
            "num_heads": [2, 4],
            "window_size": 4,
            "num_classes": 10,
        }
    )
    cmd = [sys.executable, "-m", "swinref", "golden", "--model", cfg, "--force", "--out"]
    new = tmp_path / "new.safetensors"
    t0 = time.perf_counter()
    done = _spawn([*cmd, str(new)])
    assert done.wait(timeout=120) == 0, done.stderr.read().decode()
    full = time.perf_counter() - t0
    new_bytes = new.read_bytes()
    dest = tmp_path / "g.safetensors"
    outcomes = set()
    for frac in (0.3, 0.6, 0.8, 0.9, 0.95, 1.0):
        dest.write_bytes(b"the previous golden file")
        p = _spawn([*cmd, str(dest)])
        time.sleep(full * frac)
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=60)
        data = dest.read_bytes()
        assert data in (b"the previous golden file", new_bytes), f"killed at {frac:.0%}: {len(data)} bytes"
        outcomes.add(data == new_bytes)
    assert False in outcomes, "no kill landed before the rename: the test did not test anything"


def test_two_writers_without_overwrite_exactly_one_wins(tmp_path):
    dest = tmp_path / "once.bin"
    results: list[str] = []
    start = threading.Barrier(8)

    def writer(i: int) -> None:
        start.wait()
        try:
            atomic_write(dest, bytes([i]) * 100_000)
            results.append(f"won {i}")
        except OutputExistsError:
            results.append("refused")

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [r for r in results if r.startswith("won")]
    assert len(winners) == 1 and results.count("refused") == 7, results
    i = int(winners[0].split()[1])
    assert dest.read_bytes() == bytes([i]) * 100_000
    assert sorted(q.name for q in tmp_path.iterdir()) == ["once.bin"], "temporary files left behind"


def test_existing_output_is_refused_and_kept(tmp_path):
    dest = tmp_path / "keep.bin"
    dest.write_bytes(b"keep")
    with pytest.raises(OutputExistsError, match="exists"):
        atomic_write(dest, b"new")
    assert dest.read_bytes() == b"keep"
    atomic_write(dest, b"new", overwrite=True)
    assert dest.read_bytes() == b"new"


def test_a_symlink_destination_is_replaced_not_followed(tmp_path):
    target = tmp_path / "outside.txt"
    target.write_bytes(b"must not change")
    link = tmp_path / "link.bin"
    link.symlink_to(target)
    with pytest.raises(OutputExistsError):
        atomic_write(link, b"x")
    atomic_write(link, b"x", overwrite=True)
    assert target.read_bytes() == b"must not change"
    assert not link.is_symlink() and link.read_bytes() == b"x"


def test_write_failure_leaves_nothing(tmp_path):
    dest = tmp_path / "fail.bin"

    def boom(f):
        f.write(b"half")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        atomic_write(dest, boom)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(IsADirectoryError):
        atomic_write(tmp_path, b"x", overwrite=True)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        atomic_write(tmp_path / "no" / "x.bin", b"x")


def test_special_files_are_refused_without_blocking(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    zero = tmp_path / "zero"
    zero.symlink_to("/dev/zero")
    result: dict[str, str] = {}

    def read_fifo() -> None:
        try:
            read_regular(fifo)
        except InputFileError as e:
            result["fifo"] = str(e)

    t = threading.Thread(target=read_fifo, daemon=True)
    t.start()
    t.join(timeout=10)
    assert "FIFO" in result.get("fifo", "blocked"), result
    with pytest.raises(InputFileError, match="character device"):
        read_regular(zero)
    with pytest.raises(InputFileError, match="directory"):
        read_regular(tmp_path)
    with pytest.raises(FileNotFoundError, match="not found"):
        read_regular(tmp_path / "nope")


def test_size_cap_is_checked_before_reading(tmp_path):
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        f.truncate(1 << 40)  # a sparse 1 TiB file: reading it would never end
    with pytest.raises(InputFileError, match="more than the 1,024 allowed"):
        read_regular(big, max_bytes=1024)
    assert require_regular(tmp_path / "big.bin", max_bytes=None) == 1 << 40


def test_inside(tmp_path):
    (tmp_path / "store").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "store" / "ok").write_bytes(b"")
    (tmp_path / "store" / "out").symlink_to(tmp_path / "other")
    assert inside(tmp_path / "store", tmp_path / "store" / "ok")
    assert not inside(tmp_path / "store", tmp_path / "store" / "out" / "x")
    assert not inside(tmp_path / "store", tmp_path / "store" / ".." / "other")
