"""camera_replay: publish photos, an image folder or a video as a camera stream.

Stands in for a camera driver in the demo, benchmarks and tests, and lets a user feed
recorded frames to the node: sensor_msgs/Image on `image` (sensor-data QoS, as drivers do,
REP 2003) and a matching sensor_msgs/CameraInfo on `camera_info`, same header.
"""
from __future__ import annotations

import argparse
import sys

import cv2
import numpy as np
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.qos import qos_profile_sensor_data
from rclpy.utilities import remove_ros_args
from sensor_msgs.msg import CameraInfo, Image

from ..core.conversions import fill_image
from ..core.sources import frames, pinhole_k

_FROM_RGB = {"rgb8": None, "bgr8": cv2.COLOR_RGB2BGR, "mono8": cv2.COLOR_RGB2GRAY}


def encode(rgb: np.ndarray, encoding: str) -> np.ndarray:
    code = _FROM_RGB[encoding]
    return np.ascontiguousarray(rgb if code is None else cv2.cvtColor(rgb, code))


def camera_info_for(width: int, height: int) -> CameraInfo:
    info = CameraInfo()
    info.width, info.height = width, height
    info.distortion_model = "plumb_bob"
    info.d = [0.0] * 5
    info.k = pinhole_k(width, height)
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    k = info.k
    info.p = [k[0], 0.0, k[2], 0.0, 0.0, k[4], k[5], 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="camera_replay", description=__doc__)
    parser.add_argument("--source", default="samples", help="'samples' (bundled photos), a folder, an image or a video")
    parser.add_argument("--rate", type=float, default=10.0, help="frames per second")
    parser.add_argument("--encoding", default="rgb8", choices=sorted(_FROM_RGB))
    parser.add_argument("--size", default="", help="resize every frame to WIDTHxHEIGHT")
    parser.add_argument("--frame-id", default="camera_color_optical_frame")
    parser.add_argument("--count", type=int, default=0, help="stop after this many frames (0 = loop forever)")
    return parser.parse_args(remove_ros_args(argv)[1:])


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    args = parse_args(argv)
    size = tuple(int(v) for v in args.size.lower().split("x")) if args.size else None
    loaded = []
    for name, rgb in frames(args.source):
        if size is not None:
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        loaded.append((name, encode(rgb, args.encoding)))
    rclpy.init(args=argv)
    node = rclpy.create_node("camera_replay")
    image_pub = node.create_publisher(Image, "image", qos_profile_sensor_data)
    info_pub = node.create_publisher(CameraInfo, "camera_info", qos_profile_sensor_data)
    infos = {arr.shape[:2]: camera_info_for(arr.shape[1], arr.shape[0]) for _, arr in loaded}
    sent = 0

    def publish() -> None:
        nonlocal sent
        name, array = loaded[sent % len(loaded)]
        msg = Image()
        msg.header.stamp = node.get_clock().now().to_msg()
        msg.header.frame_id = args.frame_id
        fill_image(msg, array, args.encoding)
        info = infos[array.shape[:2]]
        info.header = msg.header
        image_pub.publish(msg)
        info_pub.publish(info)
        sent += 1
        if args.count and sent >= args.count:
            raise SystemExit(0)

    node.create_timer(1.0 / args.rate, publish)
    node.get_logger().info(f"publishing {len(loaded)} frame(s) from '{args.source}' at {args.rate} Hz "
                           f"as {args.encoding} on {node.resolve_topic_name('image')}")
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException, SystemExit):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
