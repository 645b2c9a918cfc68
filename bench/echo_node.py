"""The transport floor: a plain rclpy process that answers every `image` with a mono8 image of
the same size and header on `mask`. No model, no worker thread, no conversion: what is left of
a round trip through it is DDS, rclpy (de)serialization and the two executors.

Run by bench.dds as `python bench/echo_node.py --ros-args -r image:=... -r mask:=...`; it
imports only rclpy and messages, so it needs nothing on sys.path from this repository.
"""
from __future__ import annotations

import sys

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

# The same output QoS as segmentation_node's segmentation/mask, so only the node's work differs.
MASK_QOS = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST,
                      durability=DurabilityPolicy.VOLATILE)
# segmentation_node's default image subscription: best effort, depth 1.
IMAGE_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT, history=HistoryPolicy.KEEP_LAST,
                       durability=DurabilityPolicy.VOLATILE)


class EchoNode(Node):
    def __init__(self) -> None:
        super().__init__("bench_echo")
        self._zeros: dict[tuple[int, int], bytes] = {}
        self._pub = self.create_publisher(Image, "mask", MASK_QOS)
        self.create_subscription(Image, "image", self._on_image, IMAGE_QOS)

    def _on_image(self, msg: Image) -> None:
        size = (msg.width, msg.height)
        payload = self._zeros.get(size)
        if payload is None:
            payload = self._zeros[size] = bytes(msg.width * msg.height)
        out = Image()
        out.header = msg.header
        out.height, out.width = msg.height, msg.width
        out.encoding, out.step = "mono8", msg.width
        out.data.frombytes(payload)  # the fast fill (see conversions.fill_image)
        self._pub.publish(out)


def main() -> int:
    rclpy.init(args=sys.argv)
    node = EchoNode()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
