"""vision_msgs/LabelInfo on segmentation/label_info, as the Nav2 semantic segmentation layer reads it.

vision_msgs is on every ROS 2 distro but in no registry this suite can install from, so the
test builds an interfaces package with vision_msgs' own LabelInfo/VisionClass definitions
with colcon (devtools/vision_msgs.py; the `vision_msgs_env` fixture of test/ros/conftest.py),
runs the node with it on the paths, and reads the topic from a second process that has it too
(transient-local: the listener joins after the node published).
"""
from __future__ import annotations

from typing import Any

import pytest

rclpy = pytest.importorskip("rclpy")


def test_label_info_is_published_transient_local_with_the_class_map(seg_node: Any, vision_msgs_env: dict[str, str],
                                                                     ros: Any) -> None:
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    from devtools.harness import Collector
    from devtools.vision_msgs import read_label_info
    from seg_perception.msg import ClassMap

    running = seg_node({"use_depth": False, "warmup_iterations": 1, "confidence_threshold": 0.25},
                       env=vision_msgs_env)
    topic = f"{running.namespace}/segmentation/label_info"
    # Wait until the node has published its maps (our ClassMap arrives in the same step).
    from seg_perception.ros.qos import LATCHED as latched
    maps = Collector(ros, [(f"{running.namespace}/segmentation/class_map", ClassMap)], latched)
    maps.wait_for(lambda m: len(next(iter(m.values()))) >= 1, 30.0, "class map")
    ros.destroy_subscription(maps.subs[0])
    received = read_label_info(topic, vision_msgs_env)
    assert received["classes"] == [[0, "background"], [1, "person"]]
    assert received["threshold"] == pytest.approx(0.25)
