"""vision_msgs for tests: built with colcon from vision_msgs' own LabelInfo/VisionClass definitions.

vision_msgs is on every ROS 2 distro but in no registry the test suite can install from. A node
started with `build_vision_msgs(...)`'s environment publishes segmentation/label_info, and
`read_label_info` reads it from a second process that has the package too (transient-local: the
listener may join after the node published).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

PACKAGE_XML = """<?xml version="1.0"?>
<package format="3">
  <name>vision_msgs</name>
  <version>4.1.1</version>
  <description>LabelInfo and VisionClass with the definitions of ros-perception/vision_msgs (test build)</description>
  <maintainer email="test@example.org">test</maintainer>
  <license>Apache-2.0</license>
  <buildtool_depend>ament_cmake</buildtool_depend>
  <buildtool_depend>rosidl_default_generators</buildtool_depend>
  <depend>std_msgs</depend>
  <member_of_group>rosidl_interface_packages</member_of_group>
  <export><build_type>ament_cmake</build_type></export>
</package>
"""
CMAKELISTS = """cmake_minimum_required(VERSION 3.16)
project(vision_msgs C CXX)
find_package(ament_cmake REQUIRED)
find_package(rosidl_default_generators REQUIRED)
find_package(std_msgs REQUIRED)
rosidl_generate_interfaces(${PROJECT_NAME} "msg/VisionClass.msg" "msg/LabelInfo.msg" DEPENDENCIES std_msgs)
ament_package()
"""
VISION_CLASS = "uint16 class_id\nstring class_name\n"
LABEL_INFO = "std_msgs/Header header\nVisionClass[] class_map\nfloat32 threshold\n"

LISTENER = r"""
import json, sys, threading
import rclpy
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from vision_msgs.msg import LabelInfo
rclpy.init()
node = rclpy.create_node("label_info_listener")
got = threading.Event()
result = {}
def on_msg(msg):
    result["classes"] = [[c.class_id, c.class_name] for c in msg.class_map]
    result["threshold"] = msg.threshold
    got.set()
qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
node.create_subscription(LabelInfo, sys.argv[1], on_msg, qos)
while not got.is_set():
    rclpy.spin_once(node, timeout_sec=0.1)
print(json.dumps(result))
"""


def build_vision_msgs(work: Path, timeout: float = 300.0) -> dict[str, str]:
    """colcon-build vision_msgs in `work`; returns the environment variables that put it on the
    paths (merge them into a node's and a listener's environment)."""
    pkg = work / "src" / "vision_msgs"
    (pkg / "msg").mkdir(parents=True, exist_ok=True)
    (pkg / "package.xml").write_text(PACKAGE_XML)
    (pkg / "CMakeLists.txt").write_text(CMAKELISTS)
    (pkg / "msg" / "VisionClass.msg").write_text(VISION_CLASS)
    (pkg / "msg" / "LabelInfo.msg").write_text(LABEL_INFO)
    venv = Path(sys.prefix)
    env = dict(os.environ)
    install = work / "install"
    build = subprocess.run(
        [str(venv / "bin" / "colcon"), "--log-base", str(work / "log"), "build", "--base-paths", str(work / "src"),
         "--build-base", str(work / "build"), "--install-base", str(install), "--merge-install",
         "--cmake-args", f"-DPython3_EXECUTABLE={sys.executable}", "-DBUILD_TESTING=OFF"],
        env={**env, "AMENT_PREFIX_PATH": str(venv), "CMAKE_PREFIX_PATH": str(venv)},
        capture_output=True, text=True, timeout=timeout)
    if build.returncode != 0:
        raise RuntimeError("building vision_msgs failed:\n" + build.stdout[-3000:] + build.stderr[-3000:])

    def prepend(key: str, value: Path) -> str:
        return f"{value}:{env[key]}" if env.get(key) else str(value)
    return {
        "AMENT_PREFIX_PATH": prepend("AMENT_PREFIX_PATH", install),
        "PYTHONPATH": prepend("PYTHONPATH", install / "lib" / "python3.11" / "site-packages"),
        "LD_LIBRARY_PATH": prepend("LD_LIBRARY_PATH", install / "lib"),
    }


def read_label_info(topic: str, env: dict[str, str], timeout: float = 60.0) -> dict[str, Any]:
    """The first LabelInfo on `topic`, received by a separate process with `env`:
    {"classes": [[id, name], ...], "threshold": float}."""
    listener = subprocess.run([sys.executable, "-c", LISTENER, topic], env={**os.environ, **env},
                              capture_output=True, text=True, timeout=timeout)
    if listener.returncode != 0:
        raise RuntimeError("the LabelInfo listener failed:\n" + listener.stderr[-2000:])
    result: dict[str, Any] = json.loads(listener.stdout.strip().splitlines()[-1])
    return result
