"""Console entry points shared by the CMake-installed launchers and `python -m`."""
from __future__ import annotations

import importlib
import sys

ENTRY_POINTS = {
    "segmentation_node": "seg_perception.node:main",
    "camera_replay": "seg_perception.camera_replay:main",
    "segment_offline": "seg_perception.offline:main",
}


def run(name: str, argv: list[str] | None = None) -> int:
    module_name, func_name = ENTRY_POINTS[name].split(":")
    func = getattr(importlib.import_module(module_name), func_name)
    result = func(sys.argv if argv is None else argv)
    return int(result or 0)
