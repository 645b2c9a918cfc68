"""camera_replay's node: frames published as a camera driver would (sensor_msgs/Image on
`image` with sensor-data QoS, REP 2003, and a matching CameraInfo on `camera_info`, same header)."""
from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image

from ..wire.errors import bounded
from ..wire.images import fill_image


def camera_info_for(width: int, height: int, k: list[float]) -> CameraInfo:
    info = CameraInfo()
    info.width, info.height = width, height
    info.distortion_model = "plumb_bob"
    info.d = [0.0] * 5
    info.k = k
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [k[0], 0.0, k[2], 0.0, 0.0, k[4], k[5], 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


def replay(argv: list[str], frames: Iterator[tuple[str, np.ndarray]], encoding: str, rate: float, frame_id: str,
           count: int, k_for: Callable[[int, int], list[float]], describe: str) -> int:
    """Publish `frames` (name, array already in `encoding`) at `rate` Hz until `count` (0 = until
    the iterator ends or Ctrl-C); `k_for(width, height)` is the K of the CameraInfo sent beside."""
    rclpy.init(args=argv)
    node = rclpy.create_node("camera_replay")
    image_pub = node.create_publisher(Image, "image", qos_profile_sensor_data)
    info_pub = node.create_publisher(CameraInfo, "camera_info", qos_profile_sensor_data)
    infos: dict[tuple[int, int], CameraInfo] = {}
    sent = 0

    def publish() -> None:
        nonlocal sent
        try:
            _, array = next(frames)
        except StopIteration:
            raise SystemExit(0) from None
        except ValueError as exc:  # a file of the source that cannot be read (ImageFormatError)
            node.get_logger().error(f"stopping: {bounded(str(exc))}")
            raise SystemExit(2) from None
        msg = Image()
        msg.header.stamp = node.get_clock().now().to_msg()
        msg.header.frame_id = frame_id
        fill_image(msg, array, encoding)
        shape = array.shape[:2]
        if shape not in infos:
            infos[shape] = camera_info_for(shape[1], shape[0], k_for(shape[1], shape[0]))
        info = infos[shape]
        info.header = msg.header
        image_pub.publish(msg)
        info_pub.publish(info)
        sent += 1
        if count and sent >= count:
            raise SystemExit(0)

    node.create_timer(1.0 / rate, publish)
    node.get_logger().info(f"publishing {describe} at {rate} Hz as {encoding} on {node.resolve_topic_name('image')}")
    status = 0
    try:
        rclpy.spin(node)
    except SystemExit as exc:
        status = int(exc.code or 0)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return status
