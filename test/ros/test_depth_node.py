"""Issue: obstacle outputs. A synthetic RGB-D pair with known intrinsics, depth planes and a
known 'person' region goes through the real node; the obstacle cloud must hold exactly the
expected 3-D points, and mask, confidence and organized cloud share stamp and size."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
torch = pytest.importorskip("torch")

from builtin_interfaces.msg import Time  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, PointCloud2  # noqa: E402

from devtools.msgtools import read_field, read_xyz  # noqa: E402
from seg_perception.wire.images import fill_image  # noqa: E402
from devtools.harness import Collector, wait_until  # noqa: E402
from devtools.red_model import sorted_rows, write_red_model  # noqa: E402

TIMEOUT = 30.0
W, H = 64, 48            # color / mask size
DW, DH = 32, 24          # depth size (registered, half resolution)
K_DEPTH = [40.0, 0.0, 15.5, 0.0, 40.0, 11.5, 0.0, 0.0, 1.0]
# The same camera at mask size, pixel-center convention: f*2, (c + 0.5)*2 - 0.5.
FX, CX, FY, CY = 80.0, 31.5, 80.0, 23.5
BOX_U, BOX_V = (20, 36), (12, 36)        # person region in color pixels (even: maps onto depth pixels)
INVALID_U, INVALID_V = (34, 36), (12, 18)  # inside the box, depth 0 = invalid (REP 118)


@pytest.fixture(scope="module", params=["pt", "onnx"])
def red_model(request: Any, tmp_path_factory: Any) -> Path:
    """The model as a TorchScript file and as an ONNX file: both run through the same node."""
    return write_red_model(tmp_path_factory.mktemp("red_model"), W, H, request.param)


def scene() -> tuple[np.ndarray, np.ndarray]:
    rgb = np.full((H, W, 3), (40, 120, 200), np.uint8)  # blue-ish wall
    rgb[BOX_V[0]:BOX_V[1], BOX_U[0]:BOX_U[1]] = (230, 30, 30)  # red person
    depth_mm = np.full((DH, DW), 3000, np.uint16)  # wall at 3 m
    depth_mm[BOX_V[0] // 2:BOX_V[1] // 2, BOX_U[0] // 2:BOX_U[1] // 2] = 1500  # person at 1.5 m
    depth_mm[INVALID_V[0] // 2:INVALID_V[1] // 2, INVALID_U[0] // 2:INVALID_U[1] // 2] = 0
    return rgb, depth_mm


def expected_obstacle_points() -> np.ndarray:
    u, v = np.meshgrid(np.arange(*BOX_U), np.arange(*BOX_V))
    valid = ~((u >= INVALID_U[0]) & (u < INVALID_U[1]) & (v >= INVALID_V[0]) & (v < INVALID_V[1]))
    u, v = u[valid], v[valid]
    z = np.full(u.shape, 1.5)
    return np.stack([(u - CX) * z / FX, (v - CY) * z / FY, z], axis=1)


def sorted_rows5(points: np.ndarray) -> np.ndarray:
    return sorted_rows(points, 5)


def test_rgbd_pair_gives_exact_obstacle_points_and_aligned_outputs(ros: Any, seg_node: Any, red_model: Path) -> None:
    running = seg_node({"model": str(red_model), "warmup_iterations": 1, "depth_sync_tolerance": 0.0,
                        "depth_wait": 0.5})
    ns = running.namespace
    image_pub = ros.create_publisher(Image, f"{ns}/image", qos_profile_sensor_data)
    depth_pub = ros.create_publisher(Image, f"{ns}/depth", qos_profile_sensor_data)
    info_pub = ros.create_publisher(CameraInfo, f"{ns}/depth/camera_info", qos_profile_sensor_data)
    out = Collector(ros, [(f"{ns}/segmentation/mask", Image), (f"{ns}/segmentation/confidence", Image),
                          (f"{ns}/segmentation/points", PointCloud2),
                          (f"{ns}/segmentation/obstacle_points", PointCloud2)])
    rgb, depth_mm = scene()

    def send(sec: int, depth_sec: int | None = None, depth_encoding: str = "16UC1") -> Time:
        stamp = Time(sec=sec, nanosec=250)
        info = CameraInfo(width=DW, height=DH, k=K_DEPTH)
        info.header.stamp, info.header.frame_id = stamp, "depth_optical"
        depth = Image()
        depth.header.stamp, depth.header.frame_id = Time(sec=depth_sec if depth_sec is not None else sec,
                                                         nanosec=250), "depth_optical"
        fill_image(depth, depth_mm, "16UC1")
        depth.encoding = depth_encoding
        color = Image()
        color.header.stamp, color.header.frame_id = stamp, "color_optical"
        fill_image(color, rgb, "rgb8")
        info_pub.publish(info)
        depth_pub.publish(depth)
        image_pub.publish(color)
        return stamp

    def has(topic: str, stamp: Time) -> Any:
        return lambda m: any(x.header.stamp == stamp for _, x in m[f"{ns}/segmentation/{topic}"])

    try:
        wait_until(lambda: running.proc.poll() is not None or (
            image_pub.get_subscription_count() > 0 and depth_pub.get_subscription_count() > 0), TIMEOUT,
            "node subscriptions")
        assert running.proc.poll() is None, running.log
        wait_until(lambda: all(s.get_publisher_count() > 0 for s in out.subs), TIMEOUT, "node publishers")
        # Best-effort frames sent before the node matched us are lost: resend until one comes back.
        attempt = [0]

        def round_trip() -> bool:
            attempt[0] += 1
            stamp = send(100 + attempt[0])
            try:
                out.wait_for(has("obstacle_points", stamp), 1.0, "obstacle cloud")
                return True
            except TimeoutError:
                return False
        wait_until(round_trip, TIMEOUT, "a first obstacle cloud")
        stamp = Time(sec=100 + attempt[0], nanosec=250)

        mask = out.with_stamp(f"{ns}/segmentation/mask", stamp)[1]
        out.wait_for(lambda m: has("confidence", stamp)(m) and has("points", stamp)(m), TIMEOUT, "all outputs")
        conf_entry = out.with_stamp(f"{ns}/segmentation/confidence", stamp)[1]
        cloud = out.with_stamp(f"{ns}/segmentation/points", stamp)[1]
        obstacles = out.with_stamp(f"{ns}/segmentation/obstacle_points", stamp)[1]

        # One frame: same stamp and size everywhere (Nav2 semantic layer exact sync).
        for msg in (mask, conf_entry, cloud):
            assert (msg.width, msg.height) == (W, H)
        assert mask.header.frame_id == "color_optical"
        assert cloud.header.frame_id == "depth_optical" and obstacles.header.frame_id == "depth_optical"
        assert obstacles.header.stamp == stamp

        labels = np.frombuffer(mask.data, np.uint8).reshape(H, W)
        truth = np.zeros((H, W), np.uint8)
        truth[BOX_V[0]:BOX_V[1], BOX_U[0]:BOX_U[1]] = 1
        assert np.array_equal(labels, truth)

        # Obstacle cloud: exactly the person points with valid depth.
        got = read_xyz(obstacles)
        assert got.shape[0] == expected_obstacle_points().shape[0]
        np.testing.assert_allclose(sorted_rows5(got), sorted_rows5(expected_obstacle_points()), atol=1e-4)

        # Organized cloud: row-major in mask order, label field = mask, wall at 3 m.
        xyz = read_xyz(cloud).reshape(H, W, 3)
        np.testing.assert_allclose(xyz[0, 0], [(0 - CX) * 3 / FX, (0 - CY) * 3 / FY, 3.0], atol=1e-4)
        np.testing.assert_allclose(xyz[20, 25], [(25 - CX) * 1.5 / FX, (20 - CY) * 1.5 / FY, 1.5], atol=1e-4)
        assert np.isnan(xyz[INVALID_V[0], INVALID_U[0]]).all()
        assert np.array_equal(read_field(cloud, "label").reshape(H, W), labels.astype(np.uint32))

        # A frame whose depth is 1 s off is never paired with it: no clouds for that frame.
        stale = send(500, depth_sec=499)
        out.wait_for(has("mask", stale), TIMEOUT, "mask of the unpaired frame")
        fresh = send(600)
        out.wait_for(has("obstacle_points", fresh), TIMEOUT, "clouds of the next paired frame")
        assert not has("obstacle_points", stale)(out.messages)
        assert not has("points", stale)(out.messages)

        # A depth fault is a depth problem: the color outputs, their counters and the segmentation
        # verdict stay as they were; the depth status says what is wrong.
        diags = Collector(ros, [("/diagnostics", DiagnosticArray)])
        bad = send(700, depth_encoding="bgr8")
        out.wait_for(has("mask", bad), TIMEOUT, "mask of the frame with a bad depth image")
        out.wait_for(has("confidence", bad), TIMEOUT, "confidence of the frame with a bad depth image")
        assert not has("points", bad)(out.messages)

        def statuses(m: dict[str, Any]) -> dict[str, Any]:
            latest: dict[str, Any] = {}
            for _, arr in m["/diagnostics"]:
                for st in arr.status:
                    latest[st.name] = st
            return latest

        depth_name, seg_name = f"{running.name}: depth", f"{running.name}: segmentation"
        diags.wait_for(lambda m: depth_name in statuses(m) and statuses(m)[depth_name].level == b"\x01",
                       TIMEOUT, "a depth WARN")
        depth_status, seg_status = statuses(diags.messages)[depth_name], statuses(diags.messages)[seg_name]
        assert "depth image rejected" in depth_status.message and "bgr8" in depth_status.message
        assert {kv.key: kv.value for kv in depth_status.values}["depth_rejected"] == "1"
        seg_values = {kv.key: kv.value for kv in seg_status.values}
        assert seg_values["errors"] == "0" and seg_values["rejected_inputs"] == "0", seg_values
        assert "failed" not in seg_status.message
        ros.destroy_subscription(diags.subs[0])
        log = running.log
        assert "no cloud: depth image rejected" in log and "bgr8" in log and "rejected frame" not in log
    finally:
        for pub in (image_pub, depth_pub, info_pub):
            ros.destroy_publisher(pub)
        for sub in out.subs:
            ros.destroy_subscription(sub)
