"""The package's type hints are checked, not just written (py.typed is shipped)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_mypy_passes_on_the_package_bench_and_devtools() -> None:
    pytest.importorskip("mypy")
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "mypy.ini"),
         "--cache-dir", str(ROOT / "build" / "mypy_cache"), str(ROOT / "seg_perception"), str(ROOT / "bench"), str(ROOT / "devtools")],
        capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
