"""The launch file where the `ros2` command is absent: seg_perception_launch runs it through the
launch library; `use_rviz:=true` without RViz starts the node alone with a warning and Ctrl-C
leaves nothing behind (before: "package 'rviz2' not found" and an orphaned node)."""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("rclpy")
_WHY = "needs the upstream launch / launch_ros (a ROS install, or scripts/setup_upstream.sh)"
pytest.importorskip("launch", reason=_WHY)
pytest.importorskip("launch_ros", reason=_WHY)

from devtools.harness import installed_executable, lifecycle_state, wait_until  # noqa: E402

TIMEOUT = 60.0


def _rviz_installed() -> bool:
    from ament_index_python.packages import PackageNotFoundError, get_package_prefix

    try:
        get_package_prefix("rviz2")
    except PackageNotFoundError:
        return False
    return True


def test_launch_executable_runs_the_launch_file_and_use_rviz_without_rviz_warns(ros: Any, tmp_path: Path) -> None:
    if _rviz_installed():
        pytest.skip("RViz is installed here: use_rviz:=true would open it")
    from lifecycle_msgs.msg import State

    namespace = f"fhlaunch{os.getpid()}"
    log_path = tmp_path / "launch.log"
    with open(log_path, "w") as out:
        proc = subprocess.Popen([installed_executable("seg_perception_launch"), f"namespace:={namespace}",
                                 "use_rviz:=true", "use_depth:=false"],
                                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    node = f"/{namespace}/segmentation_node"
    mask = f"/{namespace}/segmentation/mask"
    try:
        def active() -> bool:
            assert proc.poll() is None, "launch exited:\n" + log_path.read_text()[-3000:]
            return lifecycle_state(ros, node, TIMEOUT) == State.PRIMARY_STATE_ACTIVE
        wait_until(active, TIMEOUT * 2, f"{node} active")
        log = log_path.read_text()
        assert "use_rviz:=true but RViz (package rviz2) is not installed here" in log, log[-3000:]
        assert "not found" not in log, log[-3000:]
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert code == 0, log_path.read_text()[-3000:]
    wait_until(lambda: ros.count_publishers(mask) == 0, TIMEOUT, f"{mask} gone: no node left behind")
