"""Rendered class maps of flat-ground scenes with known geometry, for the ground projection tests.

A scene is a camera (intrinsics, distortion, pose in the base frame) over the plane z = 0 with
upright boxes standing on it. Each pixel's ray is found by inverting OpenCV's forward lens model
(`cv2.projectPoints`, `cv2.fisheye.projectPoints`) with Newton steps, independently of the
undistortion under test, and checked to reproject onto its pixel center; the ray is then cast
against the boxes and the ground. The truth a scan is compared with is plain 2-D geometry: along
a bearing from the base origin, the nearest box footprint.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, NamedTuple

import cv2
import numpy as np

from seg_perception.engine.ground import CameraPose

FREE, OBSTACLE, SKY = 0, 1, 2
"""Class ids of the rendered maps: ground, anything standing on it, nothing (above the horizon)."""


@dataclass(frozen=True)
class Box:
    """An upright box on the ground: x0 <= x <= x1, y0 <= y <= y1, 0 <= z <= height (base frame)."""

    x0: float
    x1: float
    y0: float
    y1: float
    height: float = 1.0


@dataclass
class Scene:
    width: int
    height: int
    k: np.ndarray
    pose: CameraPose
    distortion_model: str = "plumb_bob"
    d: np.ndarray = field(default_factory=lambda: np.zeros(5))
    boxes: tuple[Box, ...] = ()

    def camera_info(self) -> Any:
        """A CameraInfo-like object of this camera (what the node receives)."""
        p = np.zeros((3, 4))
        p[:, :3] = self.k
        return SimpleNamespace(k=list(self.k.ravel()), d=list(self.d), p=list(p.ravel()), width=self.width,
                               height=self.height, distortion_model=self.distortion_model)

    def project(self, normalized: np.ndarray) -> np.ndarray:
        """OpenCV's forward model: (N, 2) undistorted normalized coordinates -> pixels."""
        points = np.concatenate([normalized, np.ones((len(normalized), 1))], axis=1).reshape(-1, 1, 3)
        zero = np.zeros(3)
        if self.distortion_model == "equidistant":
            pixels, _ = cv2.fisheye.projectPoints(points, zero, zero, self.k, self.d)
        else:
            pixels, _ = cv2.projectPoints(points, zero, zero, self.k, self.d)
        return pixels.reshape(-1, 2)

    def pixel_rays(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """(N, 2) normalized coordinates whose forward projection is (u, v): Newton's method with a
        numeric Jacobian, verified to a thousandth of a pixel."""
        target = np.stack([u, v], axis=-1).astype(np.float64).reshape(-1, 2)
        fx, fy, cx, cy = self.k[0, 0], self.k[1, 1], self.k[0, 2], self.k[1, 2]
        x = np.stack([(target[:, 0] - cx) / fx, (target[:, 1] - cy) / fy], axis=-1)
        h = 1e-7
        for _ in range(60):
            f = self.project(x) - target
            if np.abs(f).max() < 1e-6:
                break
            jx = (self.project(x + [h, 0.0]) - f - target) / h
            jy = (self.project(x + [0.0, h]) - f - target) / h
            det = jx[:, 0] * jy[:, 1] - jy[:, 0] * jx[:, 1]
            step = np.stack([(jy[:, 1] * f[:, 0] - jy[:, 0] * f[:, 1]) / det,
                             (-jx[:, 1] * f[:, 0] + jx[:, 0] * f[:, 1]) / det], axis=-1)
            # Damped: a full step from the pinhole guess can overshoot where the polynomial turns.
            x = x - step / np.maximum(1.0, np.hypot(step[:, 0], step[:, 1]) / 0.2)[:, np.newaxis]
        error = np.abs(self.project(x) - target).max()
        assert error < 1e-3, f"the test's ray inversion failed: {error} px"
        return x

    def render(self) -> np.ndarray:
        """HxW uint8 class map: FREE where a pixel's ray meets the ground first, OBSTACLE where it
        meets a box first, SKY where it meets neither."""
        v, u = np.mgrid[0:self.height, 0:self.width].astype(np.float64)
        normalized = self.pixel_rays(u.ravel(), v.ravel())
        rays = np.concatenate([normalized, np.ones((len(normalized), 1))], axis=1) @ self.pose.matrix.T
        origin = np.array(self.pose.translation)
        with np.errstate(divide="ignore", invalid="ignore"):
            ground = np.where(rays[:, 2] < 0, -origin[2] / rays[:, 2], np.inf)
            nearest_box = np.full(len(rays), np.inf)
            for box in self.boxes:
                nearest_box = np.minimum(nearest_box, _slab_hit(origin, rays, box))
        labels = np.full(len(rays), SKY, np.uint8)
        labels[ground < np.inf] = FREE
        labels[nearest_box < ground] = OBSTACLE
        return labels.reshape(self.height, self.width)

    def true_range(self, bearing: float) -> float:
        """Planar distance from the base origin to the nearest box footprint on `bearing` (inf: none)."""
        direction = np.array([[np.cos(bearing), np.sin(bearing), 0.0]])
        best = np.inf
        for box in self.boxes:
            flat = Box(box.x0, box.x1, box.y0, box.y1, 1.0)
            best = min(best, float(_slab_hit(np.array([0.0, 0.0, 0.5]), direction, flat)[0]))
        return best

    def footprint(self, bearing: float, distance: float) -> float:
        """How far along `bearing` one pixel reaches on the ground around `distance`: the ground
        footprint of a pixel there (its image extent along the ray's image curve is measured with
        the forward model)."""
        step = 1e-3 * distance
        points = np.array([[distance * np.cos(bearing), distance * np.sin(bearing), 0.0],
                           [(distance + step) * np.cos(bearing), (distance + step) * np.sin(bearing), 0.0]])
        rotation = self.pose.matrix
        in_camera = (points - np.array(self.pose.translation)) @ rotation  # R^T (p - t)
        if (in_camera[:, 2] <= 0).any():
            return np.inf
        pixels = self.project(in_camera[:, :2] / in_camera[:, 2:3])
        pixel_per_metre = np.linalg.norm(pixels[1] - pixels[0]) / step
        return float(1.0 / pixel_per_metre)


class ScanErrors(NamedTuple):
    checked: int
    """Bins compared with the truth."""
    worst_relative: float
    median_relative: float
    worst_footprints: float
    """The largest error in units of the pixel's ground footprint there."""


def scan_errors(scene: Scene, ranges: np.ndarray, angle_min: float, angle_increment: float,
                max_range: float) -> ScanErrors:
    """Check a scan (any source: the core function, a LaserScan from the node) against the scene:
    every bin whose bearing has a finite true range must be within 2 % of it or one pixel's ground
    footprint, whichever is larger. Bins next to a silhouette edge (where the truth jumps between
    neighbouring bins, so a bin holds both sides) and bins no column fell into (NaN) are left out.
    Raises AssertionError naming the first bad bin."""
    bearings = angle_min + np.arange(len(ranges)) * angle_increment
    truth = np.array([scene.true_range(b) for b in bearings])
    relative: list[float] = []
    footprints: list[float] = []
    for i in range(2, len(truth) - 2):
        near = truth[i - 2:i + 3]
        if not np.isfinite(near).all() or near.max() > 1.05 * near.min() or truth[i] > 0.95 * max_range:
            continue
        got = float(ranges[i])
        if np.isnan(got):
            continue
        footprint = scene.footprint(bearings[i], truth[i])
        tolerance = max(0.02 * truth[i], footprint)
        assert abs(got - truth[i]) <= tolerance, (
            f"bin {i} (bearing {np.degrees(bearings[i]):.2f} deg): {got} m, truth {truth[i]:.4f} m, "
            f"tolerance {tolerance:.4f} m")
        relative.append(abs(got - truth[i]) / truth[i])
        footprints.append(abs(got - truth[i]) / footprint)
    if not relative:
        return ScanErrors(0, 0.0, 0.0, 0.0)
    return ScanErrors(len(relative), max(relative), float(np.median(relative)), max(footprints))


def _slab_hit(origin: np.ndarray, rays: np.ndarray, box: Box) -> np.ndarray:
    """Ray parameter of the first hit of each ray with an axis-aligned box (inf: none)."""
    low = np.array([box.x0, box.y0, 0.0])
    high = np.array([box.x1, box.y1, box.height])
    with np.errstate(divide="ignore", invalid="ignore"):
        t0 = (low - origin) / rays
        t1 = (high - origin) / rays
    near = np.nanmax(np.minimum(t0, t1), axis=1)
    far = np.nanmin(np.maximum(t0, t1), axis=1)
    return np.where((far >= near) & (far > 0), np.maximum(near, 0.0), np.inf)


def look(height: float, pitch_deg: float, roll_deg: float = 0.0, yaw_deg: float = 0.0,
         x: float = 0.0, y: float = 0.0) -> CameraPose:
    """The pose of an optical frame at (x, y, height) looking along the base's +x turned by yaw,
    tilted down by pitch and rolled about its optical axis."""
    # Optical (x right, y down, z forward) -> base (x forward, y left, z up) for a level camera.
    level = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
    p, r, w = np.radians([pitch_deg, roll_deg, yaw_deg])
    yaw = np.array([[np.cos(w), -np.sin(w), 0], [np.sin(w), np.cos(w), 0], [0, 0, 1]])
    pitch = np.array([[np.cos(p), 0, np.sin(p)], [0, 1, 0], [-np.sin(p), 0, np.cos(p)]])  # about base y: +x down
    roll = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])  # about optical z
    rotation = yaw @ pitch @ level @ roll
    quaternion = _quaternion(rotation)
    return CameraPose.from_xyz_quaternion([x, y, height, *quaternion])


def _quaternion(m: np.ndarray) -> list[float]:
    """[qx, qy, qz, qw] of a rotation matrix (Shepperd's method, the largest pivot)."""
    trace = np.trace(m)
    candidates = [trace, m[0, 0], m[1, 1], m[2, 2]]
    i = int(np.argmax(candidates))
    if i == 0:
        s = 2 * np.sqrt(1 + trace)
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, s / 4]
    elif i == 1:
        s = 2 * np.sqrt(1 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [s / 4, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s]
    elif i == 2:
        s = 2 * np.sqrt(1 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 1] + m[1, 0]) / s, s / 4, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s]
    else:
        s = 2 * np.sqrt(1 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, s / 4, (m[1, 0] - m[0, 1]) / s]
    return [float(c) for c in q]


def pinhole(width: int, height: int, hfov_deg: float) -> np.ndarray:
    f = (width / 2) / np.tan(np.radians(hfov_deg) / 2)
    return np.array([[f, 0.0, (width - 1) / 2], [0.0, f, (height - 1) / 2], [0.0, 0.0, 1.0]])
