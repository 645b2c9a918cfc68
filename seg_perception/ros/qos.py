"""Every QoS profile of the package, and the advice logged when a peer's QoS is incompatible.

One home for them: the node, the tools in devtools/ and the tests import these, so what a test
subscribes with is what a user is told to subscribe with.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rclpy.node import Node
from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSPolicyKind, QoSProfile, ReliabilityPolicy,
                       qos_profile_sensor_data)

RELIABILITY = {"best_effort": ReliabilityPolicy.BEST_EFFORT, "reliable": ReliabilityPolicy.RELIABLE}

SENSOR = qos_profile_sensor_data
"""REP 2003 sensor data (best effort, volatile): camera_info subscriptions, test cameras."""

LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                     history=HistoryPolicy.KEEP_LAST)
"""Class map and LabelInfo: late subscribers get the last one (the semantic layer needs LabelInfo)."""


def stream(reliability: str, depth: int = 2) -> QoSProfile:
    """Per-frame outputs: keep only the newest frames; `reliability` is a parameter value."""
    return QoSProfile(depth=depth, reliability=RELIABILITY[reliability], history=HistoryPolicy.KEEP_LAST,
                      durability=DurabilityPolicy.VOLATILE)


def image_input(reliability: str, depth: int) -> QoSProfile:
    return stream(reliability, depth)


def incompatible_advice(topic: str, policy: QoSPolicyKind, publisher: bool, image_reliability: str,
                        output_reliability: str) -> str:
    """What to change when `topic` cannot match a peer (publisher=True: our publisher)."""
    if not publisher:
        if policy == QoSPolicyKind.RELIABILITY:
            return (f"{topic}: the publisher offers BEST_EFFORT but this node subscribes RELIABLE, so no "
                    f"frame will ever arrive. Camera drivers publish sensor data best-effort (REP 2003): "
                    f"set image_reliability:=best_effort (now '{image_reliability}').")
        return f"{topic}: incompatible QoS with the publisher ({policy.name}); no frames will arrive."
    if policy == QoSPolicyKind.RELIABILITY:
        return (f"{topic}: a subscriber requests RELIABLE but this node publishes BEST_EFFORT; it gets "
                f"nothing. Set output_reliability:=reliable (now '{output_reliability}') or subscribe "
                f"best-effort.")
    if policy == QoSPolicyKind.DURABILITY:
        return (f"{topic}: a subscriber requests TRANSIENT_LOCAL durability that this topic does not "
                f"offer; subscribe VOLATILE.")
    return f"{topic}: incompatible QoS with a subscriber ({policy.name})."


class IncompatibleQosWarner:
    """Event handlers that log `incompatible_advice` once per topic, policy and side."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._warned: set[str] = set()

    def handler(self, topic: str, publisher: bool) -> Callable[[Any], None]:
        def handle(event: Any) -> None:
            policy = QoSPolicyKind(event.last_policy_kind)
            key = f"{topic}:{policy.name}:{publisher}"
            if key not in self._warned:
                self._warned.add(key)
                node = self._node
                node.get_logger().warning(incompatible_advice(
                    node.resolve_topic_name(topic), policy, publisher, node.get_parameter("image_reliability").value,
                    node.get_parameter("output_reliability").value))
        return handle
