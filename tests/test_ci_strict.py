"""Under CI a skip fails the run unless it is a GPU skip: a missing cross-check dependency must
not turn evidence of agreement into a green run of skips."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

SAMPLE = """
import pytest

def test_plain_skip():
    pytest.skip("some optional package is missing")

def test_gpu_skip():
    pytest.skip("cupy unavailable: no CUDA device")
"""


def _run(tmp_path: Path, ci: str) -> subprocess.CompletedProcess:
    shutil.copy(HERE / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    env = dict(os.environ, CI=ci, PYTHONPATH=str(HERE.parent))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", "test_sample.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("ci", ["true", ""])
def test_skips_fail_under_ci_except_gpu(tmp_path, ci):
    r = _run(tmp_path, ci)
    if ci:
        assert r.returncode == 1, r.stdout + r.stderr
        assert "1 failed, 1 skipped" in r.stdout and "allows only GPU skips" in r.stdout, r.stdout
    else:
        assert r.returncode == 0, r.stdout + r.stderr
        assert "2 skipped" in r.stdout, r.stdout
