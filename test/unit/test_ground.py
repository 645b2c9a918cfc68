"""Ground projection (engine/ground.py) on rendered scenes with known geometry: camera height,
pitch, roll, lens distortion, obstacles at known places, occlusion. Every checked bin of the scan
must be within 2 % of the true range or one pixel's ground footprint, whichever is larger."""
from __future__ import annotations

import math

import numpy as np
import pytest

from devtools.ground_scenes import FREE, OBSTACLE, SKY, Box, Scene, look, pinhole, scan_errors
from seg_perception.engine.ground import CameraPose, GroundError, GroundScan, Lens, contact_rows, project_ground
from seg_perception.wire.calibration import Intrinsics

INCREMENT = math.radians(0.5)
FREE_LUT = np.zeros(256, bool)
FREE_LUT[FREE] = True


def scan_of(scene: Scene, max_range: float = 10.0, labels: np.ndarray | None = None) -> GroundScan:
    lens = Lens.from_camera_info(scene.camera_info(), scene.width, scene.height, scene.width, scene.height)
    return project_ground(scene.render() if labels is None else labels, FREE_LUT, lens, scene.pose, INCREMENT,
                          max_range)


def check_accuracy(scene: Scene, max_range: float = 10.0, min_checked: int = 20,
                   labels: np.ndarray | None = None) -> None:
    scan = scan_of(scene, max_range, labels)
    checked = scan_errors(scene, scan.ranges, scan.angle_min, scan.angle_increment, max_range).checked
    assert checked >= min_checked, f"only {checked} bins checked"


def wall_scene(**pose_args: float) -> Scene:
    boxes = (Box(4.0, 4.5, -3.0, 0.5, 1.5),   # a wall 4 m ahead, right half
             Box(2.5, 2.8, 0.8, 1.6, 0.8),    # a nearer box to the left
             Box(6.0, 6.5, 0.9, 2.0, 3.0))    # a taller one behind it, partly occluded
    return Scene(320, 240, pinhole(320, 240, 80.0), look(**pose_args), boxes=boxes)


@pytest.mark.parametrize("pose", [dict(height=1.0, pitch_deg=15.0), dict(height=0.4, pitch_deg=5.0),
                                  dict(height=1.5, pitch_deg=25.0, roll_deg=6.0),
                                  dict(height=0.8, pitch_deg=12.0, x=0.3, y=-0.1, yaw_deg=4.0)])
def test_scan_matches_the_truth_for_height_pitch_roll_and_offset(pose: dict[str, float]) -> None:
    check_accuracy(wall_scene(**pose))


@pytest.mark.parametrize("model, d", [("plumb_bob", [-0.28, 0.09, 0.001, -0.0005, -0.012]),
                                      ("rational_polynomial", [1.2, 0.3, 0.0005, -0.0003, 0.01, 1.5, 0.6, 0.05]),
                                      ("equidistant", [-0.02, 0.004, -0.001, 0.0])])
def test_scan_matches_the_truth_through_a_distorted_lens(model: str, d: list[float]) -> None:
    scene = wall_scene(height=1.0, pitch_deg=15.0, roll_deg=-4.0)
    scene.distortion_model, scene.d = model, np.array(d)
    labels = scene.render()
    check_accuracy(scene, labels=labels)
    # The same image read as if undistorted is measurably wrong: the lens model is what makes it right.
    plain = Scene(scene.width, scene.height, scene.k, scene.pose, boxes=scene.boxes)
    wrong = scan_of(plain, labels=labels)
    right = scan_of(scene, labels=labels)
    assert not np.allclose(np.nan_to_num(wrong.ranges, posinf=99.0)[:len(right.ranges)],
                           np.nan_to_num(right.ranges, posinf=99.0)[:len(wrong.ranges)], rtol=0.02)


def test_occluded_obstacle_is_reported_only_where_it_is_seen() -> None:
    scene = wall_scene(height=1.0, pitch_deg=15.0)
    scan = scan_of(scene)
    bearings = scan.angle_min + np.arange(len(scan.ranges)) * scan.angle_increment
    # The far box (x 6-6.5, y 0.9-2.0) peeks out left of the near one (y 0.8-1.6): seen there at 6 m.
    peeking = (bearings > math.atan2(1.75, 6.0)) & (bearings < math.atan2(1.95, 6.0))
    assert peeking.any()
    np.testing.assert_allclose(scan.ranges[peeking], [scene.true_range(b) for b in bearings[peeking]], rtol=0.03)
    hidden = (bearings > math.atan2(0.95, 2.5)) & (bearings < math.atan2(1.5, 2.5))
    assert (scan.ranges[hidden] < 3.0).all()


def test_free_ground_to_the_range_or_horizon_is_infinite_and_points_are_the_contacts() -> None:
    scene = wall_scene(height=1.0, pitch_deg=8.0)
    scan = scan_of(scene, max_range=5.0)
    bearings = scan.angle_min + np.arange(len(scan.ranges)) * scan.angle_increment
    open_left = (bearings > math.radians(34)) & (bearings < math.radians(38))  # left of the near box
    assert open_left.any() and np.isposinf(scan.ranges[open_left]).all()
    assert scan.range_max == 5.0 and scan.angle_increment == INCREMENT
    # A horizon in view: with a 10 km range, the sky above the open ground is what ends it.
    far = scan_of(scene, max_range=10000.0)
    far_bearings = far.angle_min + np.arange(len(far.ranges)) * far.angle_increment
    assert np.isposinf(far.ranges[(far_bearings > math.radians(34)) & (far_bearings < math.radians(38))]).all()
    # Points: on z = 0, each at a contact the scan reports, within range.
    points = scan.points
    assert points.dtype == np.float32 and points.shape[1] == 3 and len(points) > 50
    assert (points[:, 2] == 0).all()
    ranges = np.hypot(points[:, 0], points[:, 1])
    assert ranges.max() <= 5.0
    on_wall = (points[:, 0] > 3.9) & (points[:, 0] < 4.1)
    assert on_wall.sum() > 20


def test_image_that_ends_before_the_range_is_unknown_not_free() -> None:
    # Looking steeply down: the image's top edge meets the ground at ~2.5 m, well inside 10 m.
    scene = Scene(160, 120, pinhole(160, 120, 60.0), look(height=1.0, pitch_deg=45.0))
    scan = scan_of(scene)
    assert np.isnan(scan.ranges).all() and len(scan.points) == 0


def test_contact_rows_walk_up_from_the_bottom() -> None:
    labels = np.array([[SKY, SKY, FREE, OBSTACLE],
                       [OBSTACLE, FREE, FREE, FREE],
                       [FREE, FREE, FREE, FREE],
                       [FREE, OBSTACLE, FREE, FREE]], np.uint8)
    np.testing.assert_array_equal(contact_rows(labels, FREE_LUT), [1, 3, -1, 0])
    unlabeled = np.full((3, 2), 255, np.uint8)
    np.testing.assert_array_equal(contact_rows(unlabeled, FREE_LUT), [2, 2])


def test_bad_pose_and_lens_are_refused_with_the_reason() -> None:
    with pytest.raises(GroundError, match="7 values"):
        CameraPose.from_xyz_quaternion([0, 0, 1])
    with pytest.raises(GroundError, match="no rotation"):
        CameraPose.from_xyz_quaternion([0, 0, 1, 0, 0, 0, 0])
    with pytest.raises(GroundError, match="finite"):
        CameraPose.from_xyz_quaternion([0, 0, float("nan"), 0, 0, 0, 1])
    intrinsics = Intrinsics(100.0, 100.0, 31.5, 23.5, 64, 48)
    with pytest.raises(GroundError, match="not one of"):
        Lens(intrinsics, "kannala_brandt", (0.1, 0.0, 0.0, 0.0))
    with pytest.raises(GroundError, match="4 coefficients"):
        Lens(intrinsics, "equidistant", (0.1, 0.0, 0.0, 0.0, 0.0))
    lens = Lens(intrinsics)
    below = look(height=1.0, pitch_deg=10.0)
    below = CameraPose(below.rotation, (0.0, 0.0, -0.2))
    with pytest.raises(GroundError, match="not above"):
        project_ground(np.zeros((48, 64), np.uint8), FREE_LUT, lens, below, INCREMENT, 10.0)
    with pytest.raises(GroundError, match="mask is 32x24"):
        project_ground(np.zeros((24, 32), np.uint8), FREE_LUT, lens, look(1.0, 10.0), INCREMENT, 10.0)


def test_a_mask_smaller_than_the_calibration_projects_the_same_ground() -> None:
    scene = wall_scene(height=1.0, pitch_deg=15.0)
    full = scene.render()
    # Every other pixel of a 320x240 render is a 160x120 mask of the same view, pixel-center aligned
    # only approximately (nearest): compare the wall's range, which is far from any edge.
    half = full[1::2, 1::2]
    lens = Lens.from_camera_info(scene.camera_info(), 320, 240, 160, 120)
    coarse = project_ground(half, FREE_LUT, lens, scene.pose, INCREMENT, 10.0)
    bearings = coarse.angle_min + np.arange(len(coarse.ranges)) * coarse.angle_increment
    wall = (bearings < math.radians(-5)) & (bearings > math.radians(-25)) & np.isfinite(coarse.ranges)
    assert wall.sum() > 10
    truth = np.array([scene.true_range(b) for b in bearings[wall]])
    footprint = np.array([scene.footprint(b, t) for b, t in zip(bearings[wall], truth)])
    assert (np.abs(coarse.ranges[wall] - truth) <= np.maximum(0.02 * truth, 2 * footprint)).all()
