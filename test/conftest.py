"""Shared fixtures: an rclpy context + test node spinning in the background, and the
segmentation node started as its own process from the colcon install."""
from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
_names = itertools.count()
_ROS_TESTS = Path(__file__).resolve().parent / "ros"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under test/ros is marked `ros`, so `-m "not ros"` runs the core suite alone."""
    for item in items:
        if _ROS_TESTS in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.ros)


@pytest.fixture(scope="session")
def ros() -> Iterator[Any]:
    """A test-side rclpy node, spun on a background thread."""
    rclpy = pytest.importorskip("rclpy")
    from devtools.harness import Spinner

    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    rclpy.init()
    node = rclpy.create_node("seg_perception_test")
    spinner = Spinner(node)
    node.spinner = spinner  # type: ignore[attr-defined] - read by _callbacks_did_not_raise
    yield node
    spinner.close()
    node.destroy_node()
    rclpy.try_shutdown()


@pytest.fixture(autouse=True)
def _callbacks_did_not_raise(request: pytest.FixtureRequest) -> Iterator[None]:
    """A callback that raised on the test node's spinning thread fails the test it ran in."""
    yield
    if "ros" not in request.fixturenames:
        return
    spinner = request.getfixturevalue("ros").spinner
    errors = spinner.take_errors()
    assert spinner.alive, "the test node's spinning thread has stopped"
    assert not errors, "a callback on the test node raised:\n" + "\n".join(errors)


class RunningNode:
    def __init__(self, proc: Any, name: str, log_path: Path) -> None:
        self.proc = proc
        self.name = name
        self.log_path = log_path

    @property
    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""


@pytest.fixture
def seg_node(tmp_path: Path) -> Iterator[Callable[..., RunningNode]]:
    """Start segmentation_node processes with unique names and topics; stopped at teardown.

    Each node gets its own namespace so tests never hear each other's outputs.
    """
    from devtools.harness import start_node, stop_process

    started: list[RunningNode] = []

    def start(params: dict[str, Any] | None = None, remaps: dict[str, str] | None = None,
              **kwargs: Any) -> RunningNode:
        index = next(_names)
        name = f"seg_test_{os.getpid()}_{index}"
        log_path = tmp_path / f"{name}.log"
        namespace = f"/t{os.getpid()}_{index}"
        proc = start_node(params, remaps, log_path=log_path, name=name,
                          **{**kwargs, "namespace": kwargs.get("namespace", namespace)})
        running = RunningNode(proc, name, log_path)
        running.namespace = namespace  # type: ignore[attr-defined]
        started.append(running)
        return running

    yield start
    for running in started:
        stop_process(running.proc)
        if os.environ.get("SEG_TEST_SHOW_LOGS"):
            print(running.log)
