"""vision_msgs/LabelInfo on segmentation/label_info, as the Nav2 semantic segmentation layer reads
it (reliable, transient-local: a subscriber that joins late still gets the current one).

Uses the real vision_msgs: a ROS install's, or the one scripts/setup_upstream.sh builds from
../shared/upstream; skipped, saying so, where neither exists.
"""
from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("rclpy")
pytest.importorskip("vision_msgs.msg", reason="needs vision_msgs (a ROS install, or scripts/setup_upstream.sh)")

TIMEOUT = 30.0


def _latest_label_info(ros: Any, topic: str) -> Any:
    """A new transient-local subscriber: what a costmap layer started now would read."""
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from vision_msgs.msg import LabelInfo

    from devtools.harness import Collector

    qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    listener = Collector(ros, [(topic, LabelInfo)], qos)
    try:
        listener.wait_for(lambda m: len(m[topic]) >= 1, TIMEOUT, f"LabelInfo on {topic}")
        return listener.messages[topic][-1][1]
    finally:
        ros.destroy_subscription(listener.subs[0])


def test_label_info_is_published_transient_local_with_the_class_map(seg_node: Any, ros: Any) -> None:
    running = seg_node({"use_depth": False, "warmup_iterations": 1, "confidence_threshold": 0.25})
    msg = _latest_label_info(ros, f"{running.namespace}/segmentation/label_info")
    assert [(c.class_id, c.class_name) for c in msg.class_map] == [(0, "background"), (1, "person")]
    assert msg.threshold == pytest.approx(0.25)


def test_label_info_follows_what_it_carries(seg_node: Any, ros: Any) -> None:
    """A changed confidence_threshold is republished, so a late subscriber never reads a stale one."""
    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter

    from devtools.harness import call_service, wait_until

    running = seg_node({"use_depth": False, "warmup_iterations": 1})
    topic = f"{running.namespace}/segmentation/label_info"
    assert _latest_label_info(ros, topic).threshold == pytest.approx(0.0)
    request = SetParameters.Request(parameters=[Parameter("confidence_threshold", value=0.6).to_parameter_msg()])
    reply = call_service(ros, SetParameters, f"{running.namespace}/{running.name}/set_parameters", request, TIMEOUT)
    assert reply.results[0].successful, reply.results[0].reason
    wait_until(lambda: _latest_label_info(ros, topic).threshold == pytest.approx(0.6), TIMEOUT,
               "LabelInfo with the new threshold")
