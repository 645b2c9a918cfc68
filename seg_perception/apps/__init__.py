"""Entry points: one module per installed executable, each with `main(argv) -> int`.

The executables themselves are listed once, in CMakeLists.txt (`SEG_PERCEPTION_EXECUTABLES`);
the launcher CMake writes for `<name>` calls `run("<name>")`, which imports
`seg_perception.apps.<name>`.
"""
from __future__ import annotations

import importlib
import os
import shutil
import sys
from pathlib import Path


def run(name: str, argv: list[str] | None = None) -> int:
    module = importlib.import_module(f"{__name__}.{name}")
    result = module.main(sys.argv if argv is None else argv)
    return int(result or 0)


def command(name: str) -> str:
    """How a user can run executable `name` from where they are, for hints: the bare name when it
    is on PATH, else its installed path (relative when under the current directory)."""
    if shutil.which(name):
        return name
    candidate = Path(sys.argv[0]).resolve().parent / name
    if not candidate.is_file():
        try:
            from ament_index_python.packages import get_package_prefix

            candidate = Path(get_package_prefix("seg_perception")) / "lib" / "seg_perception" / name
        except Exception:  # noqa: BLE001 - not on the ament paths: name the ROS way
            return f"ros2 run seg_perception {name}"
    relative = os.path.relpath(candidate)
    return relative if not relative.startswith("..") else str(candidate)
