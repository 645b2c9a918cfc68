"""Ground projection for a monocular camera (flat ground, inverse perspective), with no ROS import.

A robot with one camera and no depth still sees where obstacles stand: walking up an image
column from the bottom, the first pixel that is not free ground is where something meets the
ground (or where the ground ends, at the horizon). On flat ground that pixel's ray meets the
plane z = 0 of the robot's base frame at one point, so each column gives one range, like a laser
scanner lying on the floor. Only the contact is trusted: how tall an obstacle is, or what lies
behind it, the image alone does not say.

Conventions:

* Pixel centers are at integer coordinates (OpenCV, CameraInfo K); pixel row ``r`` covers
  ``[r - 0.5, r + 0.5)``. The contact is the edge between the obstacle pixel and the free pixel
  under it, ``v = r + 0.5``, so the error is at most half a pixel either way.
* The image is the one CameraInfo describes (K and D, ``image_raw``): pixel coordinates are
  undistorted with D for ``plumb_bob``, ``rational_polynomial`` and ``equidistant``. A rectified
  image comes with D all zero (then undistortion is the identity).
* `CameraPose` is the pose of the optical frame (x right, y down, z forward) in the base frame
  (z up): ``p_base = R @ p_optical + t``.
* Scan bearings are about +z from +x of the base frame; a range is the planar distance from the
  base frame's origin. +inf (REP 117) where the free ground reaches `max_range` or the horizon;
  NaN where the image ends before the free ground reaches either (nothing is known beyond).
"""
from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ..wire.calibration import CalibrationError, Intrinsics, intrinsics_from_camera_info

__all__ = ["DISTORTION_MODELS", "CameraPose", "GroundError", "GroundScan", "Lens", "contact_rows",
           "project_ground"]

DISTORTION_MODELS = ("plumb_bob", "rational_polynomial", "equidistant")
"""The CameraInfo distortion models undistorted here (the three image_geometry supports)."""
_OPENCV_D_LENGTHS = (4, 5, 8, 12, 14)
# Undistortion is a fixed-point iteration: OpenCV's default of 5 steps leaves pixels of error at
# the corners of a wide lens. These stop once the point reprojects within 1e-6 px.
_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-6)
_MIN_DOWN = 1e-9
"""A ray whose downward component is below this is at the horizon: it never meets the ground."""


class GroundError(ValueError):
    """A calibration or pose ground projection cannot use (the text names the problem)."""


@dataclass(frozen=True)
class CameraPose:
    """Pose of the camera's optical frame in the base frame: ``p_base = rotation @ p + translation``."""

    rotation: tuple[float, ...]
    """Row-major 3x3."""
    translation: tuple[float, float, float]

    @classmethod
    def from_xyz_quaternion(cls, values: Sequence[float]) -> CameraPose:
        """From ``[x, y, z, qx, qy, qz, qw]`` (the `camera_pose` parameter, a TF transform).
        The quaternion is normalized; a zero or non-finite one is refused."""
        if len(values) != 7:
            raise GroundError(f"a pose is [x, y, z, qx, qy, qz, qw] (7 values), got {len(values)}")
        v = [float(x) for x in values]
        if not all(math.isfinite(x) for x in v):
            raise GroundError(f"a pose must be finite, got {v}")
        x, y, z, w = v[3:]
        norm = math.sqrt(x * x + y * y + z * z + w * w)
        if norm < 1e-6:
            raise GroundError(f"the pose's quaternion {v[3:]} has no rotation (norm {norm:g})")
        x, y, z, w = x / norm, y / norm, z / norm, w / norm
        rotation = (1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
                    2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
                    2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y))
        return cls(rotation, (v[0], v[1], v[2]))

    @property
    def matrix(self) -> np.ndarray:
        return np.array(self.rotation, np.float64).reshape(3, 3)


@dataclass(frozen=True)
class Lens:
    """Intrinsics and distortion of the image a mask was made from, at the mask's size."""

    intrinsics: Intrinsics
    distortion_model: str = "plumb_bob"
    d: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if not any(self.d):
            return  # no distortion: the model does not matter
        if self.distortion_model not in DISTORTION_MODELS:
            raise GroundError(f"distortion model '{self.distortion_model}' is not one of {list(DISTORTION_MODELS)}")
        if self.distortion_model == "equidistant" and len(self.d) != 4:
            raise GroundError(f"equidistant distortion has 4 coefficients, got {len(self.d)}")
        if self.distortion_model != "equidistant" and len(self.d) not in _OPENCV_D_LENGTHS:
            raise GroundError(f"{self.distortion_model} distortion with {len(self.d)} coefficients: "
                              f"expected one of {list(_OPENCV_D_LENGTHS)}")

    @classmethod
    def from_camera_info(cls, info: Any, image_width: int, image_height: int, width: int, height: int) -> Lens:
        """The lens of a CameraInfo-like `info` for its image (image_width x image_height)
        resized to the mask's width x height. Distortion coefficients act on normalized
        coordinates, so they do not change with the size."""
        d = [float(x) for x in getattr(info, "d", ())]
        try:
            intrinsics = intrinsics_from_camera_info(list(info.k), int(info.width), int(info.height), image_width,
                                                     image_height, d, list(getattr(info, "p", ())))
        except CalibrationError as exc:
            raise GroundError(str(exc)) from exc
        return cls(intrinsics.scaled(width, height), str(getattr(info, "distortion_model", "")), tuple(d))

    @property
    def k(self) -> np.ndarray:
        i = self.intrinsics
        return np.array([[i.fx, 0.0, i.cx], [0.0, i.fy, i.cy], [0.0, 0.0, 1.0]], np.float64)

    def normalized(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """(N, 2) undistorted normalized coordinates (x/z, y/z) of pixel coordinates u, v."""
        i = self.intrinsics
        if not any(self.d):
            return np.stack([(np.asarray(u, np.float64) - i.cx) / i.fx, (np.asarray(v, np.float64) - i.cy) / i.fy],
                            axis=-1)
        points = np.stack([u, v], axis=-1).astype(np.float64).reshape(-1, 1, 2)
        d = np.array(self.d, np.float64)
        if self.distortion_model == "equidistant":
            try:
                out = cv2.fisheye.undistortPoints(points, self.k, d, criteria=_CRITERIA)
            except (TypeError, cv2.error):  # OpenCV < 4.7 (Humble's 4.5.4) has no criteria argument here
                out = cv2.fisheye.undistortPoints(points, self.k, d)
        elif hasattr(cv2, "undistortPointsIter"):  # OpenCV 4: the iteration criteria have their own call
            out = cv2.undistortPointsIter(points, self.k, d, None, None, _CRITERIA)
        else:  # OpenCV 5 folded them into undistortPoints
            out = cv2.undistortPoints(points, self.k, d, criteria=_CRITERIA)
        return np.asarray(out, np.float64).reshape(-1, 2)


@dataclass
class GroundScan:
    """One frame's ground contacts as a LaserScan and as points, in the base frame."""

    ranges: np.ndarray
    """(count,) float32: bin i at bearing angle_min + i * angle_increment; +inf clear to range_max
    or the horizon, NaN unknown."""
    angle_min: float
    angle_increment: float
    range_max: float
    points: np.ndarray
    """(M, 3) float32 contact points on z = 0, one per image column that has one in range."""
    range_min: float = 0.0

    @property
    def angle_max(self) -> float:
        return self.angle_min + (len(self.ranges) - 1) * self.angle_increment


def contact_rows(labels: np.ndarray, free_lut: np.ndarray) -> np.ndarray:
    """(W,) int: per column, the row of the first pixel from the bottom whose class is not free;
    -1 where the whole column is free."""
    if labels.ndim != 2 or labels.dtype != np.uint8:
        raise ValueError(f"labels must be an HxW uint8 class map, got {labels.dtype} {labels.shape}")
    if free_lut.shape != (256,):
        raise ValueError(f"free_lut must have shape (256,), got {free_lut.shape}")
    height = labels.shape[0]
    blocked = cv2.LUT(np.ascontiguousarray(labels), (~free_lut.astype(bool)).astype(np.uint8))
    from_bottom = blocked[::-1].view(np.bool_)
    first = from_bottom.argmax(axis=0)  # the first True from the bottom; 0 when there is none
    found = from_bottom[first, np.arange(labels.shape[1])]
    return np.where(found, height - 1 - first, -1).astype(np.int64)


def _ground_hits(lens: Lens, pose: CameraPose, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rays of pixel coordinates u, v in the base frame ((N, 3), not normalized) and where each
    meets z = 0 ((N, 2) x, y; NaN for rays at or above the horizon)."""
    normalized = lens.normalized(u, v)
    rays = np.concatenate([normalized, np.ones((len(normalized), 1))], axis=1) @ pose.matrix.T
    t = np.array(pose.translation, np.float64)
    down = rays[:, 2] < -_MIN_DOWN
    scale = np.where(down, -t[2] / np.where(down, rays[:, 2], -1.0), np.nan)
    return rays, t[:2] + scale[:, np.newaxis] * rays[:, :2]


def _reach(lens: Lens, pose: CameraPose, u: np.ndarray, v: np.ndarray,
           max_range: float) -> tuple[np.ndarray, np.ndarray]:
    """Per ray: its planar range (inf at or above the horizon) and the point that gives its
    bearing: the ground hit, or for a ray beyond `max_range` or the horizon the point at
    `max_range` along its horizontal direction (where a +inf reading would clear to)."""
    rays, hits = _ground_hits(lens, pose, u, v)
    ranges = np.hypot(hits[:, 0], hits[:, 1])
    ranges = np.where(np.isnan(ranges), np.inf, ranges)
    horizontal = rays[:, :2] / np.maximum(np.hypot(rays[:, 0], rays[:, 1]), 1e-12)[:, np.newaxis]
    far = np.array(pose.translation[:2]) + max_range * horizontal
    return ranges, np.where((ranges <= max_range)[:, np.newaxis], hits, far)


@functools.lru_cache(maxsize=8)
def _bearing_window(lens: Lens, pose: CameraPose, max_range: float) -> tuple[float, float]:
    """The bearings (rad, unwrapped around the optical axis) the image can report on: those of
    its border pixels, whose ground footprint bounds every other pixel's. Cached: the lens and the
    pose rarely change between frames."""
    w, h = lens.intrinsics.width, lens.intrinsics.height
    us = np.arange(-0.5, w, 1.0)
    vs = np.arange(-0.5, h, 1.0)
    u = np.concatenate([us, us, np.full(len(vs), -0.5), np.full(len(vs), w - 0.5)])
    v = np.concatenate([np.full(len(us), -0.5), np.full(len(us), h - 0.5), vs, vs])
    _, points = _reach(lens, pose, u, v, max_range)
    axis = pose.matrix[:, 2]
    center = math.atan2(axis[1], axis[0])
    relative = _wrap(np.arctan2(points[:, 1], points[:, 0]) - center)
    return center + float(relative.min()), center + float(relative.max())


def _wrap(angle: np.ndarray) -> np.ndarray:
    return (angle + np.pi) % (2 * np.pi) - np.pi


def project_ground(labels: np.ndarray, free_lut: np.ndarray, lens: Lens, pose: CameraPose,
                   angle_increment: float, max_range: float) -> GroundScan:
    """The ground contacts of a class map (see the module docstring) as a scan and points.

    Raises:
        GroundError: the camera is not above the ground plane, or the lens does not fit `labels`.
    """
    height, width = labels.shape[:2]
    if (lens.intrinsics.width, lens.intrinsics.height) != (width, height):
        raise GroundError(f"lens is for {lens.intrinsics.width}x{lens.intrinsics.height} but the mask is "
                          f"{width}x{height}")
    if not pose.translation[2] > 0.0:
        raise GroundError(f"the camera is at z = {pose.translation[2]:g} m in the base frame: not above its "
                          "ground plane z = 0")
    if not (angle_increment > 0.0 and max_range > 0.0):
        raise ValueError(f"need angle_increment > 0 and max_range > 0, got {angle_increment}, {max_range}")
    rows = contact_rows(labels, free_lut)
    u = np.arange(width, dtype=np.float64)
    v = rows + 0.5  # the edge under the blocked pixel; -0.5 (the image's top edge) for a free column
    ranges, points = _reach(lens, pose, u, v, max_range)
    in_range = ranges <= max_range
    contact = in_range & (rows >= 0)
    values = np.where(contact, ranges, np.where(in_range, np.nan, np.inf))

    low, high = _bearing_window(lens, pose, max_range)
    count = int(math.floor((high - low) / angle_increment + 1e-9)) + 1
    relative = _wrap(np.arctan2(points[:, 1], points[:, 0]) - low)
    relative = np.where(relative < -0.5 * angle_increment, relative + 2 * np.pi, relative)
    bins = np.clip(np.rint(relative / angle_increment).astype(np.int64), 0, count - 1)
    scan = np.full(count, np.nan)
    np.fmin.at(scan, bins, values)  # fmin: a NaN (unknown) column never hides a range or +inf
    ground = np.zeros((int(contact.sum()), 3), np.float32)
    ground[:, :2] = points[contact]
    return GroundScan(scan.astype(np.float32), float(low), float(angle_increment), float(max_range), ground)
