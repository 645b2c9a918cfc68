"""Waiting on a condition with a deadline, never a fixed sleep. ROS-free, so the unit tests
(which also run where rclpy is absent) share it with the node harness."""
from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(predicate: Callable[[], bool], timeout: float, what: str = "condition",
               interval: float = 0.01) -> None:
    """Check `predicate` (cheap) every `interval` s until true; raise TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.1f} s waiting for {what}")
        time.sleep(interval)
