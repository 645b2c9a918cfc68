"""segmentation/depth_filtered through the real node over DDS: MoveIt's depth image. The paired
depth at the mask's size, in the input's encoding, header = the mask's, with the pixels of
depth_exclude_classes invalid exactly where the mask has that class; its camera_info sibling
carries the same stamp; the manipulation class set changes at run time apart from the
navigation one (obstacle_classes). And temporal_smoothing takes effect through the node."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
torch = pytest.importorskip("torch")

from builtin_interfaces.msg import Time  # noqa: E402
from rcl_interfaces.msg import Parameter as ParameterMsg, ParameterType, ParameterValue  # noqa: E402
from rcl_interfaces.srv import SetParameters  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

from devtools.harness import Collector, call_service, wait_until  # noqa: E402
from devtools.red_model import write_red_model  # noqa: E402
from seg_perception.wire.images import fill_image  # noqa: E402

TIMEOUT = 30.0
W, H = 64, 48            # color / mask size
DW, DH = 32, 24          # depth size: registered, half resolution
BOX_U, BOX_V = (20, 36), (12, 36)   # the red "person", even edges: whole depth pixels
HOLE_U, HOLE_V = (4, 8), (2, 6)     # depth 0 on the wall (already invalid in the input)


@pytest.fixture(scope="module")
def red_model(tmp_path_factory: Any) -> Path:
    return write_red_model(tmp_path_factory.mktemp("red_model"), W, H)


def scene() -> tuple[np.ndarray, np.ndarray]:
    rgb = np.full((H, W, 3), (40, 120, 200), np.uint8)
    rgb[BOX_V[0]:BOX_V[1], BOX_U[0]:BOX_U[1]] = (230, 30, 30)
    # Every depth pixel its own value, so a wrong registration (shift, flip, scale) shows.
    mm = (1000 + np.arange(DH * DW).reshape(DH, DW)).astype(np.uint16)
    mm[HOLE_V[0] // 2:HOLE_V[1] // 2, HOLE_U[0] // 2:HOLE_U[1] // 2] = 0
    return rgb, mm


def registered(depth: np.ndarray) -> np.ndarray:
    """The depth at mask size: pixel (u, v) of the mask is depth pixel (u // 2, v // 2)."""
    return depth.repeat(2, axis=0).repeat(2, axis=1)


def set_param(ros: Any, node: str, name: str, names: list[str]) -> Any:
    value = ParameterValue(type=ParameterType.PARAMETER_STRING_ARRAY, string_array_value=names)
    request = SetParameters.Request(parameters=[ParameterMsg(name=name, value=value)])
    return call_service(ros, SetParameters, f"{node}/set_parameters", request, TIMEOUT).results[0]


def set_double(ros: Any, node: str, name: str, value: float) -> Any:
    request = SetParameters.Request(parameters=[ParameterMsg(
        name=name, value=ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value))])
    return call_service(ros, SetParameters, f"{node}/set_parameters", request, TIMEOUT).results[0]


def test_depth_filtered_is_the_registered_depth_without_the_excluded_class(
        ros: Any, seg_node: Any, red_model: Path) -> None:
    running = seg_node({"model": str(red_model), "warmup_iterations": 1, "depth_sync_tolerance": 0.0,
                        "depth_wait": 0.5, "depth_exclude_classes": ["person"]})
    ns = running.namespace
    pubs = {name: ros.create_publisher(kind, f"{ns}/{name}", qos_profile_sensor_data)
            for name, kind in (("image", Image), ("camera_info", CameraInfo), ("depth", Image))}
    out = Collector(ros, [(f"{ns}/segmentation/mask", Image), (f"{ns}/segmentation/depth_filtered", Image),
                          (f"{ns}/segmentation/camera_info", CameraInfo)])
    rgb, depth_mm = scene()
    sent = [0]

    def send(encoding: str, image: np.ndarray) -> Time:
        sent[0] += 1
        stamp = Time(sec=200 + sent[0], nanosec=125)
        info = CameraInfo(width=W, height=H, k=[80.0, 0.0, 31.5, 0.0, 80.0, 23.5, 0.0, 0.0, 1.0])
        info.header.stamp, info.header.frame_id = stamp, "color_optical"
        color, depth = Image(), Image()
        color.header.stamp, color.header.frame_id = stamp, "color_optical"
        depth.header.stamp, depth.header.frame_id = stamp, "depth_optical"
        fill_image(color, image, "rgb8")
        fill_image(depth, depth_mm if encoding == "16UC1" else depth_mm.astype(np.float32) / 1000, encoding)
        pubs["camera_info"].publish(info)
        pubs["depth"].publish(depth)
        pubs["image"].publish(color)
        return stamp

    def frame(encoding: str, image: np.ndarray = rgb) -> tuple[Image, Image, CameraInfo]:
        """Send until one frame comes back whole (best-effort frames sent before matching are lost)."""
        got: list[Any] = []

        def round_trip() -> bool:
            stamp = send(encoding, image)
            try:
                out.wait_for(lambda m: all(any(x.header.stamp == stamp for _, x in m[f"{ns}/segmentation/{t}"])
                                           for t in ("mask", "depth_filtered", "camera_info")), 2.0, "a frame")
            except TimeoutError:
                return False
            got[:] = [out.with_stamp(f"{ns}/segmentation/{t}", stamp)[1]
                      for t in ("mask", "depth_filtered", "camera_info")]
            return True
        wait_until(round_trip, TIMEOUT, f"depth_filtered of a {encoding} frame")
        return got[0], got[1], got[2]

    try:
        wait_until(lambda: running.proc.poll() is not None or all(
            p.get_subscription_count() > 0 for p in pubs.values()), TIMEOUT, "node subscriptions")
        assert running.proc.poll() is None, running.log

        mask, depth, info = frame("16UC1")
        labels = np.frombuffer(mask.data, np.uint8).reshape(H, W)
        person = np.zeros((H, W), bool)
        person[BOX_V[0]:BOX_V[1], BOX_U[0]:BOX_U[1]] = True
        assert np.array_equal(labels == 1, person)
        # Header = the mask's (the color frame's stamp and optical frame), size = the mask's.
        assert depth.header == mask.header and info.header == mask.header
        assert depth.header.frame_id == "color_optical"
        assert (depth.width, depth.height, depth.encoding, depth.step) == (W, H, "16UC1", 2 * W)
        assert (info.width, info.height) == (W, H)
        values = np.frombuffer(depth.data, "<u2" if not depth.is_bigendian else ">u2").reshape(H, W)
        assert np.array_equal(values == 0, person | (registered(depth_mm) == 0))
        assert np.array_equal(values[~person], registered(depth_mm)[~person])

        mask, depth, _ = frame("32FC1")
        assert depth.encoding == "32FC1" and (depth.width, depth.height, depth.step) == (W, H, 4 * W)
        values = np.frombuffer(depth.data, "<f4").reshape(H, W)
        assert np.array_equal(np.isnan(values), person)
        np.testing.assert_array_equal(values[~person], registered(depth_mm.astype(np.float32) / 1000)[~person])

        # The manipulation set changes at run time and is checked against the model's classes.
        node = f"{ns}/{running.name}"
        refused = set_param(ros, node, "depth_exclude_classes", ["chair"])
        assert not refused.successful and "chair" in refused.reason
        assert set_param(ros, node, "depth_exclude_classes", ["background"]).successful
        mask, depth, _ = frame("16UC1")
        values = np.frombuffer(depth.data, "<u2").reshape(H, W)
        assert np.array_equal(values == 0, ~person)
        assert np.array_equal(values[person], registered(depth_mm)[person])

        # temporal_smoothing, per camera: after a person frame, one frame without the person
        # still shows it (0.9 of the history), and without smoothing it does not.
        empty = np.full((H, W, 3), (40, 120, 200), np.uint8)
        assert not set_double(ros, node, "temporal_smoothing", 0.995).successful  # range 0..0.99
        assert set_double(ros, node, "temporal_smoothing", 0.9).successful
        frame("16UC1")
        mask, _, _ = frame("16UC1", empty)
        assert np.array_equal(np.frombuffer(mask.data, np.uint8).reshape(H, W) == 1, person)
        assert set_double(ros, node, "temporal_smoothing", 0.0).successful
        frame("16UC1")
        mask, _, _ = frame("16UC1", empty)
        assert not (np.frombuffer(mask.data, np.uint8) == 1).any()
    finally:
        for pub in pubs.values():
            ros.destroy_publisher(pub)
        for sub in out.subs:
            ros.destroy_subscription(sub)
