"""input_transport_depth: compressedDepth through the real node. The depth camera publishes
image_transport's compressedDepth (encoded as compressed_depth_image_transport does, from
devtools/compressed_depth.py) on depth/compressedDepth; the obstacle cloud must be the raw-depth
scene's (16UC1: exactly; 32FC1: within its inverse-depth quantization), and a corrupt payload is a
depth fault that leaves the colour outputs alone."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
torch = pytest.importorskip("torch")

from builtin_interfaces.msg import Time  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2  # noqa: E402

from devtools import compressed_depth  # noqa: E402
from devtools.harness import Collector, wait_until  # noqa: E402
from devtools.red_model import sorted_rows, write_red_model  # noqa: E402
from devtools.msgtools import read_xyz  # noqa: E402
from seg_perception.wire.images import fill_image  # noqa: E402

TIMEOUT = 30.0
START_TIMEOUT = 120.0  # node start (torch import, model load) takes 30 s on this shared machine under load
W, H = 64, 48
DW, DH = 32, 24
K_DEPTH = [40.0, 0.0, 15.5, 0.0, 40.0, 11.5, 0.0, 0.0, 1.0]
FX, CX, FY, CY = 80.0, 31.5, 80.0, 23.5
BOX_U, BOX_V = (20, 36), (12, 36)


@pytest.fixture(scope="module")
def red_model(tmp_path_factory: Any) -> Path:
    return write_red_model(tmp_path_factory.mktemp("red_model"), W, H)


def scene() -> tuple[np.ndarray, np.ndarray]:
    rgb = np.full((H, W, 3), (40, 120, 200), np.uint8)
    rgb[BOX_V[0]:BOX_V[1], BOX_U[0]:BOX_U[1]] = (230, 30, 30)
    depth_mm = np.full((DH, DW), 3000, np.uint16)
    depth_mm[BOX_V[0] // 2:BOX_V[1] // 2, BOX_U[0] // 2:BOX_U[1] // 2] = 1500
    depth_mm[6:9, 17:18] = 0  # no return inside the person
    return rgb, depth_mm


def expected_person_points(z: float) -> np.ndarray:
    u, v = np.meshgrid(np.arange(*BOX_U), np.arange(*BOX_V))
    hole = (v >= 12) & (v < 18) & (u >= 34) & (u < 36)
    u, v = u[~hole], v[~hole]
    zs = np.full(u.shape, z)
    return np.stack([(u - CX) * zs / FX, (v - CY) * zs / FY, zs], axis=1)


def test_compressed_depth_gives_the_raw_depth_clouds(ros: Any, seg_node: Any, red_model: Path) -> None:
    running = seg_node({"model": str(red_model), "warmup_iterations": 1, "depth_sync_tolerance": 0.0,
                        "depth_wait": 0.5, "input_transport_depth": "compressedDepth"})
    ns = running.namespace
    image_pub = ros.create_publisher(Image, f"{ns}/image", qos_profile_sensor_data)
    depth_pub = ros.create_publisher(CompressedImage, f"{ns}/depth/compressedDepth", qos_profile_sensor_data)
    info_pub = ros.create_publisher(CameraInfo, f"{ns}/depth/camera_info", qos_profile_sensor_data)
    out = Collector(ros, [(f"{ns}/segmentation/mask", Image), (f"{ns}/segmentation/obstacle_points", PointCloud2)])
    rgb, depth_mm = scene()

    def send(sec: int, encoding: str = "16UC1", codec: str = "rvl", corrupt: bool = False) -> Time:
        stamp = Time(sec=sec, nanosec=250)
        info = CameraInfo(width=DW, height=DH, k=K_DEPTH)
        info.header.stamp, info.header.frame_id = stamp, "depth_optical"
        depth = depth_mm if encoding == "16UC1" else depth_mm.astype(np.float32) / 1000
        encoded = compressed_depth.encode(depth, encoding, codec)
        msg = CompressedImage(format=encoded.format)
        msg.header.stamp, msg.header.frame_id = stamp, "depth_optical"
        msg.data = encoded.data[: len(encoded.data) // 2] if corrupt else encoded.data
        color = Image()
        color.header.stamp, color.header.frame_id = stamp, "color_optical"
        fill_image(color, rgb, "rgb8")
        info_pub.publish(info)
        depth_pub.publish(msg)
        image_pub.publish(color)
        return stamp

    def has(topic: str, stamp: Time) -> Any:
        return lambda m: any(x.header.stamp == stamp for _, x in m[f"{ns}/segmentation/{topic}"])

    wait_until(lambda: running.proc.poll() is not None or (
        image_pub.get_subscription_count() > 0 and depth_pub.get_subscription_count() > 0), START_TIMEOUT,
        "node subscriptions")
    assert running.proc.poll() is None, running.log
    wait_until(lambda: all(s.get_publisher_count() > 0 for s in out.subs), TIMEOUT, "node publishers")
    attempt = [0]

    def round_trip(encoding: str, codec: str) -> Any:
        def once() -> bool:
            attempt[0] += 1
            stamp = send(100 + attempt[0], encoding, codec)
            try:
                out.wait_for(has("obstacle_points", stamp), 2.0, "obstacle cloud")
                return True
            except TimeoutError:
                return False
        return once

    for encoding, codec, atol in (("16UC1", "rvl", 1e-4), ("16UC1", "png", 1e-4), ("32FC1", "png", 1e-3),
                                  ("32FC1", "rvl", 1e-3)):
        wait_until(round_trip(encoding, codec), TIMEOUT, f"an obstacle cloud from {encoding} {codec}")
        stamp = Time(sec=100 + attempt[0], nanosec=250)
        cloud = out.with_stamp(f"{ns}/segmentation/obstacle_points", stamp)[1]
        assert cloud.header.frame_id == "depth_optical"
        got = read_xyz(cloud)
        want = expected_person_points(1.5)
        assert got.shape == want.shape, (encoding, codec)
        np.testing.assert_allclose(sorted_rows(got), sorted_rows(want), atol=atol)

    bad = send(900, corrupt=True)
    out.wait_for(has("mask", bad), TIMEOUT, "mask of the frame whose depth payload is cut")
    fresh = send(901)
    out.wait_for(has("obstacle_points", fresh), TIMEOUT, "clouds of the next good frame")
    assert not has("obstacle_points", bad)(out.messages)
    assert "corrupt compressedDepth rvl" in running.log
