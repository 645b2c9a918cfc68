"""Entry points: one module per installed executable, each with `main(argv) -> int`.

The executables themselves are listed once, in CMakeLists.txt (`SEG_PERCEPTION_EXECUTABLES`);
the launcher CMake writes for `<name>` calls `run("<name>")`, which imports
`seg_perception.apps.<name>`.
"""
from __future__ import annotations

import importlib
import sys


def run(name: str, argv: list[str] | None = None) -> int:
    module = importlib.import_module(f"{__name__}.{name}")
    result = module.main(sys.argv if argv is None else argv)
    return int(result or 0)
