"""vision_msgs/LabelInfo on segmentation/label_info, as the Nav2 semantic segmentation layer reads it.

vision_msgs is on every ROS 2 distro but in no registry this suite can install from, so the
test builds an interfaces package with vision_msgs' own LabelInfo/VisionClass definitions
with colcon, runs the node with it on the paths, and reads the topic from a second process
that has it too (transient-local: the listener joins after the node published).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

rclpy = pytest.importorskip("rclpy")

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


@pytest.fixture(scope="module")
def vision_msgs_env(tmp_path_factory: Any) -> dict[str, str]:
    work = tmp_path_factory.mktemp("vision_msgs_ws")
    pkg = work / "src" / "vision_msgs"
    (pkg / "msg").mkdir(parents=True)
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
        capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]

    def prepend(key: str, value: Path) -> str:
        return f"{value}:{env[key]}" if env.get(key) else str(value)
    return {
        "AMENT_PREFIX_PATH": prepend("AMENT_PREFIX_PATH", install),
        "PYTHONPATH": prepend("PYTHONPATH", install / "lib" / "python3.11" / "site-packages"),
        "LD_LIBRARY_PATH": prepend("LD_LIBRARY_PATH", install / "lib"),
    }


def test_label_info_is_published_transient_local_with_the_class_map(seg_node: Any, vision_msgs_env: dict[str, str],
                                                                     ros: Any) -> None:
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    from devtools.harness import Collector
    from seg_perception.msg import ClassMap

    running = seg_node({"use_depth": False, "warmup_iterations": 1, "confidence_threshold": 0.25},
                       env=vision_msgs_env)
    topic = f"{running.namespace}/segmentation/label_info"
    # Wait until the node has published its maps (our ClassMap arrives in the same step).
    from seg_perception.ros.qos import LATCHED as latched
    maps = Collector(ros, [(f"{running.namespace}/segmentation/class_map", ClassMap)], latched)
    maps.wait_for(lambda m: len(next(iter(m.values()))) >= 1, 30.0, "class map")
    ros.destroy_subscription(maps.subs[0])
    listener = subprocess.run([sys.executable, "-c", LISTENER, topic], env={**os.environ, **vision_msgs_env},
                              capture_output=True, text=True, timeout=60)
    assert listener.returncode == 0, listener.stderr[-2000:] + running.log
    received = json.loads(listener.stdout.strip().splitlines()[-1])
    assert received["classes"] == [[0, "background"], [1, "person"]]
    assert received["threshold"] == pytest.approx(0.25)
