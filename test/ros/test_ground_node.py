"""Camera-only obstacles through the real node over DDS: a rendered scene with known geometry
(camera height, pitch, roll, lens distortion, boxes, occlusion) is segmented by a real model, and
segmentation/scan + segmentation/ground_points must match the scene's truth, in base_frame, with
the image's stamp; with the pose from `camera_pose` and from TF, and with the class filter."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
torch = pytest.importorskip("torch")

from builtin_interfaces.msg import Time  # noqa: E402
from rcl_interfaces.srv import SetParameters  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, LaserScan, PointCloud2  # noqa: E402

from devtools.ground_scenes import FREE, OBSTACLE, SKY, Box, Scene, look, pinhole, scan_errors  # noqa: E402
from devtools.harness import Collector, call_service, wait_until  # noqa: E402
from devtools.msgtools import read_xyz  # noqa: E402
from seg_perception.wire.images import fill_image  # noqa: E402

TIMEOUT = 30.0
W, H = 160, 120
COLORS = {FREE: (100, 100, 100), OBSTACLE: (230, 30, 30), SKY: (30, 30, 230)}
BOXES = (Box(4.0, 4.5, -3.0, 0.5, 1.5), Box(2.5, 2.8, 0.8, 1.6, 0.8), Box(6.0, 6.5, 0.9, 2.0, 3.0))
PLUMB_BOB = np.array([-0.25, 0.07, 0.001, -0.0005, -0.01])


class ColorClasses(torch.nn.Module):
    """A real (if simple) segmentation model: obstacle where red is high, sky where blue is, floor
    elsewhere (gray)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r, b = x[:, 0:1], x[:, 2:3]
        return torch.cat([torch.minimum(0.5 - r, 0.5 - b), r - 0.5, b - 0.5], dim=1) * 100.0


@pytest.fixture(scope="module")
def ground_model(tmp_path_factory: Any) -> Path:
    folder = tmp_path_factory.mktemp("ground_model")
    path = folder / "floor_boxes.pt"
    torch.jit.script(ColorClasses()).save(str(path))
    # The description declares the free class: no free_classes parameter needed.
    (folder / "floor_boxes.yaml").write_text(
        f"name: floor_boxes\n"
        f"input: {{width: {W}, height: {H}, color_order: rgb, scale: 0.00392156862745098, resize: stretch}}\n"
        f"output: logits\n"
        f"classes:\n  - {{name: floor, free: true}}\n  - {{name: box, obstacle: true}}\n  - sky\n")
    return path


def pose_values(scene: Scene) -> list[float]:
    from devtools.ground_scenes import _quaternion

    return [*scene.pose.translation, *_quaternion(scene.pose.matrix)]


class Camera:
    """Publishes a scene's rendered image with its CameraInfo; collects the node's ground outputs."""

    def __init__(self, ros: Any, ns: str, scene: Scene, frame_id: str) -> None:
        self.ros, self.ns, self.scene, self.frame_id = ros, ns, scene, frame_id
        self.image_pub = ros.create_publisher(Image, f"{ns}/image", qos_profile_sensor_data)
        self.info_pub = ros.create_publisher(CameraInfo, f"{ns}/camera_info", qos_profile_sensor_data)
        self.out = Collector(ros, [(f"{ns}/segmentation/scan", LaserScan),
                                   (f"{ns}/segmentation/ground_points", PointCloud2),
                                   (f"{ns}/segmentation/mask", Image)])
        lut = np.zeros((256, 3), np.uint8)
        for label, color in COLORS.items():
            lut[label] = color
        self.rgb = lut[scene.render()]
        self.sent = 0

    def send(self) -> Time:
        self.sent += 1
        stamp = Time(sec=1000 + self.sent, nanosec=123)
        info = self.scene.camera_info()
        msg_info = CameraInfo(width=W, height=H, k=[float(v) for v in info.k], d=[float(v) for v in info.d],
                              p=[float(v) for v in info.p], distortion_model=info.distortion_model,
                              r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0])
        msg_info.header.stamp, msg_info.header.frame_id = stamp, self.frame_id
        image = Image()
        image.header.stamp, image.header.frame_id = stamp, self.frame_id
        fill_image(image, self.rgb, "rgb8")
        self.info_pub.publish(msg_info)
        self.image_pub.publish(image)
        return stamp

    def has(self, topic: str, stamp: Time) -> bool:
        return self.out.with_stamp(f"{self.ns}/segmentation/{topic}", stamp) is not None

    def next_scan(self, what: str) -> tuple[Time, Any, Any]:
        """Send frames until one's scan comes back (best-effort frames sent before the node matched
        are lost); its scan and ground points."""
        stamp: list[Time] = []

        def round_trip() -> bool:
            stamp[:] = [self.send()]
            try:
                self.out.wait_for(lambda _: self.has("scan", stamp[0]) and self.has("ground_points", stamp[0]),
                                  2.0, what)
                return True
            except TimeoutError:
                return False
        wait_until(round_trip, TIMEOUT, what)
        scan = self.out.with_stamp(f"{self.ns}/segmentation/scan", stamp[0])
        points = self.out.with_stamp(f"{self.ns}/segmentation/ground_points", stamp[0])
        assert scan is not None and points is not None
        return stamp[0], scan[1], points[1]

    def wait_ready(self, running: Any) -> None:
        wait_until(lambda: running.proc.poll() is not None or self.image_pub.get_subscription_count() > 0,
                   TIMEOUT, "node subscriptions")
        assert running.proc.poll() is None, running.log
        wait_until(lambda: all(s.get_publisher_count() > 0 for s in self.out.subs), TIMEOUT, "node publishers")


def check_scan(scene: Scene, scan: Any, stamp: Time, base_frame: str) -> None:
    assert scan.header.stamp == stamp and scan.header.frame_id == base_frame
    assert scan.angle_increment == pytest.approx(math.radians(0.5))
    assert scan.range_max == pytest.approx(10.0)
    ranges = np.array(scan.ranges, np.float32)
    assert scan.angle_max == pytest.approx(scan.angle_min + (len(ranges) - 1) * scan.angle_increment, abs=1e-5)
    checked = scan_errors(scene, ranges, scan.angle_min, scan.angle_increment, 10.0).checked
    assert checked >= 20, f"only {checked} bins checked"
    bearings = scan.angle_min + np.arange(len(ranges)) * scan.angle_increment
    # Open ground left of the near box, to the range: +inf (REP 117), so Nav2 clears along it (NaN in
    # a bin no column falls into: 160 columns over ~80 degrees leave some 0.5 degree bins empty).
    open_left = ranges[(bearings > math.radians(34)) & (bearings < math.radians(37))]
    assert np.isposinf(open_left).sum() >= 3 and not np.isfinite(open_left).any()


def check_points(scene: Scene, points_msg: Any, stamp: Time, base_frame: str) -> None:
    assert points_msg.header.stamp == stamp and points_msg.header.frame_id == base_frame
    points = read_xyz(points_msg)
    assert len(points) > 40 and (points[:, 2] == 0).all()
    bearing = np.arctan2(points[:, 1], points[:, 0])
    distance = np.hypot(points[:, 0], points[:, 1])
    truth = np.array([scene.true_range(b) for b in bearing])
    tolerance = np.array([max(0.02 * t, 1.5 * scene.footprint(b, t)) if np.isfinite(t) else 0.0
                          for b, t in zip(bearing, truth)])
    # Points are per column; a few sit on silhouette edges, where the truth on their exact bearing jumps.
    assert np.mean(np.abs(distance - truth) <= tolerance) > 0.9


def set_parameters(ros: Any, running: Any, **values: Any) -> None:
    request = SetParameters.Request(parameters=[Parameter(k, value=v).to_parameter_msg() for k, v in values.items()])
    reply = call_service(ros, SetParameters, f"{running.namespace}/{running.name}/set_parameters", request, TIMEOUT)
    assert all(r.successful for r in reply.results), [r.reason for r in reply.results]


def test_scan_from_camera_pose_matches_the_scene_and_follows_the_class_filter(
        ros: Any, seg_node: Any, ground_model: Path) -> None:
    scene = Scene(W, H, pinhole(W, H, 80.0), look(height=1.0, pitch_deg=15.0, roll_deg=3.0, x=0.2, y=0.05),
                  d=PLUMB_BOB, boxes=BOXES)
    running = seg_node({"model": str(ground_model), "use_depth": False, "warmup_iterations": 1,
                        "ground_projection": True, "base_frame": "base_footprint",
                        "camera_pose": pose_values(scene)})
    camera = Camera(ros, running.namespace, scene, "front_camera_optical")
    camera.wait_ready(running)
    stamp, scan, points = camera.next_scan("a first scan")
    check_scan(scene, scan, stamp, "base_footprint")
    check_points(scene, points, stamp, "base_footprint")

    # The class filter: boxes named free ground are walked over like the floor, so nothing stands.
    set_parameters(ros, running, free_classes=["floor", "box"])
    stamp, scan, points = camera.next_scan("a scan with boxes as free ground")
    assert not np.isfinite(np.array(scan.ranges)).any() and read_xyz(points).shape[0] == 0
    # A class the model does not have is refused with the reason.
    request = SetParameters.Request(parameters=[Parameter("free_classes", value=["road"]).to_parameter_msg()])
    reply = call_service(ros, SetParameters, f"{running.namespace}/{running.name}/set_parameters", request, TIMEOUT)
    assert not reply.results[0].successful and "road" in reply.results[0].reason


def test_scan_from_tf_at_the_frame_stamp(ros: Any, seg_node: Any, ground_model: Path) -> None:
    tf2_ros = pytest.importorskip("tf2_ros", reason="tf2_ros is not installed: scripts/setup_upstream.sh builds it")
    from geometry_msgs.msg import TransformStamped

    scene = Scene(W, H, pinhole(W, H, 80.0), look(height=0.6, pitch_deg=9.0, roll_deg=-2.0, x=0.1),
                  d=PLUMB_BOB, boxes=BOXES)
    running = seg_node({"model": str(ground_model), "use_depth": False, "warmup_iterations": 1,
                        "ground_projection": True})
    camera = Camera(ros, running.namespace, scene, f"cam_optical_{running.name}")
    camera.wait_ready(running)
    # No transform yet: the frame is segmented, its scan is not made, and the log says why.
    def segmented_without_transform() -> bool:
        stamp = camera.send()
        try:
            camera.out.wait_for(lambda _: camera.has("mask", stamp), 2.0, "a mask")
        except TimeoutError:
            return False
        return "no transform" in running.log
    wait_until(segmented_without_transform, TIMEOUT, "a frame without a transform to be reported")
    assert not camera.out.messages[f"{running.namespace}/segmentation/scan"]

    broadcaster = tf2_ros.StaticTransformBroadcaster(ros)
    transform = TransformStamped()
    transform.header.frame_id, transform.child_frame_id = "base_link", camera.frame_id
    x, y, z, qx, qy, qz, qw = pose_values(scene)
    transform.transform.translation.x, transform.transform.translation.y = x, y
    transform.transform.translation.z = z
    transform.transform.rotation.x, transform.transform.rotation.y = qx, qy
    transform.transform.rotation.z, transform.transform.rotation.w = qz, qw
    broadcaster.sendTransform(transform)
    stamp, scan, points = camera.next_scan("a scan once the transform is known")
    check_scan(scene, scan, stamp, "base_link")
    check_points(scene, points, stamp, "base_link")


def test_tf_listening_toggles_without_leaking(ros: Any) -> None:
    """Ground projection switched on and off at run time: TF is subscribed only while on, and the
    Buffer's tf2_frames service never stacks up."""
    pytest.importorskip("tf2_ros", reason="tf2_ros is not installed: scripts/setup_upstream.sh builds it")
    from seg_perception.ros.tf import CameraPoses

    node = rclpy.create_node(f"tf_toggle_{id(ros)}")
    try:
        poses = CameraPoses(node)
        for _ in range(3):
            poses.listen(True)
            poses.listen(True)  # idempotent
            assert {s.topic_name for s in node.subscriptions} == {"/tf", "/tf_static"}
            poses.listen(False)
            assert not list(node.subscriptions)
        poses.listen(True)
        assert sum("tf2_frames" in s.srv_name for s in node.services) == 1
    finally:
        node.destroy_node()
