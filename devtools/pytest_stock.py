"""pytest plugin for the second run of the ROS-free suite in .venv-stock (scripts/test_stock.sh).

That environment holds only what a stock Ubuntu 24.04 + Jazzy robot gets from rosdep, at those
versions (requirements-stock.txt): no rclpy, no generated `seg_perception.msg`, no test-only
extras such as the TFLite reference runtime. A test that needs one of those is skipped here with
the missing module named (it runs in the main environment); everything else must pass. A missing
*attribute* (an API that OpenCV 4.6 or numpy 1.26 lacks) still fails: that is what this run is for,
and so does a missing module of our own package other than the generated messages.

Loaded with `-p devtools.pytest_stock`; never active in the main run.
"""
from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

# Built by colcon (rosidl), absent from a source tree: tests that need it run in the main run.
_GENERATED = ("seg_perception.msg",)


def _absent_dependency(exc: BaseException | None) -> str | None:
    """The name of a module that is not installed here and not part of our source, else None."""
    while exc is not None:
        if isinstance(exc, ModuleNotFoundError) and exc.name:
            name = exc.name
            if name.split(".")[0] != "seg_perception" or name.startswith(_GENERATED):
                return name
            return None
        exc = exc.__cause__ or exc.__context__
    return None


def _reason(name: str, where: str) -> str:
    env = os.environ.get("SEG_PERCEPTION_ROSFREE_ENV", "stock")
    return f"{where} needs {name}, which the {env} environment (requirements-{env}.txt) does not have"


class _StockModule(pytest.Module):
    def _getobj(self) -> Any:
        try:
            return super()._getobj()
        except pytest.Collector.CollectError as exc:
            name = _absent_dependency(exc.__cause__)
            if name is None:
                raise
            raise pytest.skip.Exception(_reason(name, self.path.name), allow_module_level=True) from exc


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makemodule(module_path: Path, parent: Any) -> pytest.Module | None:
    if module_path.name == "__init__.py":
        return None
    return _StockModule.from_parent(parent, path=module_path)  # type: ignore[no-any-return]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if call.excinfo is None or not report.failed:
        return
    name = _absent_dependency(call.excinfo.value)
    if name is not None:
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: {_reason(name, item.name)}")
