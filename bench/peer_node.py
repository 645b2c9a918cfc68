"""The peer: a plain callback segmentation node written the way the Nav2 semantic segmentation
tutorial's Python node is (navigation2_tutorials, nav2_semantic_segmentation_demo): ONNX Runtime
with default session options, inference in the subscription callback behind a depth-10 queue,
numpy pre/post-processing, mask + confidence published with cv_bridge-style conversions.

Written for bench/peer.py to compare segmentation_node against, with the same ONNX model. Two
deliberate differences from the tutorial: it subscribes best effort (the tutorial's reliable
default hears nothing from a REP 2003 camera, nor from this benchmark's publisher), and it reads
the model's normalization from the description YAML beside it (the tutorial hard-codes
ImageNet's) so both nodes feed the network the same input and publish the same masks.
No cv_bridge exists in this environment; its two conversions are written out as it does them.

    python bench/peer_node.py --model M.onnx [--description M.yaml] --ros-args -r __ns:=/x
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import rclpy
import yaml
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image


def imgmsg_to_bgr8(msg: Image) -> np.ndarray:
    """cv_bridge.imgmsg_to_cv2(msg, desired_encoding='bgr8') for rgb8/bgr8 input."""
    image = np.ndarray(shape=(msg.height, msg.width, 3), dtype=np.uint8, buffer=msg.data)
    return cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if msg.encoding == "rgb8" else image


def mono8_to_imgmsg(array: np.ndarray) -> Image:
    """cv_bridge.cv2_to_imgmsg(array, encoding='mono8')."""
    msg = Image()
    msg.height, msg.width = array.shape
    msg.encoding = "mono8"
    msg.is_bigendian = 0
    msg.step = array.shape[1]
    msg.data.frombytes(array.tobytes())
    return msg


class PeerSegmentationNode(Node):
    def __init__(self, model: Path, description: Path) -> None:
        super().__init__("peer_segmentation_node")
        spec = yaml.safe_load(description.read_text())["input"]
        scale = float(spec.get("scale", 1.0 / 255.0))
        self.mean = np.array(spec.get("mean", [0.0, 0.0, 0.0]), np.float32).reshape(3, 1, 1)
        self.std = np.array(spec.get("std", [1.0, 1.0, 1.0]), np.float32).reshape(3, 1, 1)
        self.scale = np.float32(scale)
        self.session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.subscription = self.create_subscription(
            Image, "image", self.image_callback, QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT))
        self.mask_publisher = self.create_publisher(Image, "segmentation/mask", 10)
        self.confidence_publisher = self.create_publisher(Image, "segmentation/confidence", 10)

    def image_callback(self, msg: Image) -> None:
        cv_image = imgmsg_to_bgr8(msg)
        rgb_image = cv2.cvtColor(cv_image, cv2.COLOR_BGR2RGB)
        input_tensor = rgb_image.transpose(2, 0, 1).astype(np.float32) * self.scale
        input_tensor = (input_tensor - self.mean) / self.std
        input_tensor = np.expand_dims(input_tensor, axis=0)
        output = self.session.run(None, {self.input_name: input_tensor})[0]
        prediction = np.argmax(output, axis=1).squeeze(0).astype(np.uint8)
        exp_output = np.exp(output - np.max(output, axis=1, keepdims=True))
        probabilities = exp_output / np.sum(exp_output, axis=1, keepdims=True)
        confidence = np.max(probabilities, axis=1).squeeze(0)
        confidence_uint8 = (confidence * 255.0).astype(np.uint8)
        mask_msg = mono8_to_imgmsg(prediction)
        mask_msg.header = msg.header
        confidence_msg = mono8_to_imgmsg(confidence_uint8)
        confidence_msg.header = msg.header
        self.mask_publisher.publish(mask_msg)
        self.confidence_publisher.publish(confidence_msg)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    ros_args = argv[argv.index("--ros-args"):] if "--ros-args" in argv else []
    own = argv[1:len(argv) - len(ros_args)]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--description")
    args = parser.parse_args(own)
    model = Path(args.model)
    rclpy.init(args=[argv[0], *ros_args])
    node = PeerSegmentationNode(model, Path(args.description) if args.description else model.with_suffix(".yaml"))
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
