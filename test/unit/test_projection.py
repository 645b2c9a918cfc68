"""Depth projection against hand-computed points.

Reference camera: fx = fy = 500, cx = 319.5, cy = 239.5 at 640x480, so pixel (u, v) with depth Z
is X = (u - 319.5) Z / 500, Y = (v - 239.5) Z / 500.
"""

from __future__ import annotations

import numpy as np
import pytest

from seg_perception.engine.projection import (
    RayCache,
    nearest_indices,
    obstacle_points,
    project_organized,
    resample_depth,
    voxel_centroids,
)
from seg_perception.wire.calibration import Intrinsics, scale_camera_info

K_640 = [500.0, 0.0, 319.5, 0.0, 500.0, 239.5, 0.0, 0.0, 1.0]
INTR_640 = Intrinsics.from_camera_info_k(K_640, 640, 480)
PERSON, CAR, WALL, FLOOR = 1, 2, 3, 0
UNLABELED = 255


def obstacle_lut(*classes: int) -> np.ndarray:
    lut = np.zeros(256, dtype=bool)
    lut[list(classes)] = True
    return lut


def sorted_rows(points: np.ndarray) -> np.ndarray:
    return points[np.lexsort(points.T[::-1])]


def assert_same_point_set(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.shape == expected.shape
    np.testing.assert_allclose(sorted_rows(actual), sorted_rows(expected), rtol=0, atol=1e-5)


def hand_points(us: np.ndarray, vs: np.ndarray, z: np.ndarray | float) -> np.ndarray:
    z = np.broadcast_to(np.asarray(z, dtype=np.float64), np.shape(us))
    return np.stack([(us - 319.5) * z / 500.0, (vs - 239.5) * z / 500.0, z], axis=-1)


# ---------------------------------------------------------------- intrinsics and camera info


def test_from_camera_info_k() -> None:
    assert INTR_640 == Intrinsics(500.0, 500.0, 319.5, 239.5, 640, 480)


def test_intrinsics_reject_uncalibrated_k() -> None:
    with pytest.raises(ValueError):
        Intrinsics.from_camera_info_k([0.0] * 9, 640, 480)
    with pytest.raises(ValueError):
        Intrinsics.from_camera_info_k([1.0] * 8, 640, 480)


def test_scaled_is_pixel_center_aligned() -> None:
    assert INTR_640.scaled(640, 480) is INTR_640
    assert INTR_640.scaled(320, 240) == Intrinsics(250.0, 250.0, 159.5, 119.5, 320, 240)
    # sx = 3, sy = 2.25: cx' = (319.5 + 0.5) * 3 - 0.5, cy' = (239.5 + 0.5) * 2.25 - 0.5
    assert INTR_640.scaled(1920, 1080) == Intrinsics(1500.0, 1125.0, 959.5, 539.5, 1920, 1080)


def test_scale_camera_info_numbers() -> None:
    p = [500.0, 0.0, 319.5, -25.0, 0.0, 500.0, 239.5, 5.0, 0.0, 0.0, 1.0, 0.0]
    k_half, p_half = scale_camera_info(K_640, p, 640, 480, 320, 240)
    assert k_half == [250.0, 0.0, 159.5, 0.0, 250.0, 119.5, 0.0, 0.0, 1.0]
    assert p_half == [250.0, 0.0, 159.5, -12.5, 0.0, 250.0, 119.5, 2.5, 0.0, 0.0, 1.0, 0.0]
    k_hd, p_hd = scale_camera_info(K_640, p, 640, 480, 1920, 1080)
    assert k_hd == [1500.0, 0.0, 959.5, 0.0, 1125.0, 539.5, 0.0, 0.0, 1.0]
    assert p_hd == [1500.0, 0.0, 959.5, -75.0, 0.0, 1125.0, 539.5, 11.25, 0.0, 0.0, 1.0, 0.0]


def test_scale_camera_info_round_trip() -> None:
    p = K_640[:3] + [0.0] + K_640[3:6] + [0.0] + K_640[6:] + [0.0]
    k2, p2 = scale_camera_info(K_640, p, 640, 480, 1000, 700)
    k3, p3 = scale_camera_info(k2, p2, 1000, 700, 640, 480)
    np.testing.assert_allclose(k3, K_640, atol=1e-9)
    np.testing.assert_allclose(p3, p, atol=1e-9)


# ---------------------------------------------------------------- resampling


def test_nearest_indices_center_aligned() -> None:
    np.testing.assert_array_equal(nearest_indices(320, 640)[:6], [0, 0, 1, 1, 2, 2])
    # Downsampling by 2 samples the second pixel of each pair (center 2u + 0.5 rounds to 2u + 1).
    np.testing.assert_array_equal(nearest_indices(640, 320)[:3], [1, 3, 5])
    # Scale 2.5: output center 2.5 lands exactly on the source boundary 1.0; ties go right (floor).
    np.testing.assert_array_equal(nearest_indices(192, 480)[:6], [0, 0, 1, 1, 1, 2])
    assert nearest_indices(480, 1080).max() == 479


def test_resample_depth_identity_is_no_copy() -> None:
    depth = np.ones((480, 640), dtype=np.float32)
    assert resample_depth(depth, 640, 480) is depth


def test_resample_depth_never_interpolates() -> None:
    depth = np.full((240, 320), 3.0, dtype=np.float32)
    depth[:, :161] = 1.0
    depth[10, 10] = np.nan
    out = resample_depth(depth, 1000, 700)
    assert out.shape == (700, 1000)
    assert set(np.unique(out[np.isfinite(out)]).tolist()) == {1.0, 3.0}
    assert np.isnan(out).any()


# ---------------------------------------------------------------- organized projection


def test_project_32fc1_hand_points() -> None:
    depth = np.full((480, 640), np.nan, dtype=np.float32)
    depth[139, 419] = 2.0
    depth[0, 0] = 1.0
    depth[479, 639] = 4.0
    pts = project_organized(depth, INTR_640)
    assert pts.shape == (480, 640, 3) and pts.dtype == np.float32
    # (419 - 319.5) * 2 / 500 = 0.398, (139 - 239.5) * 2 / 500 = -0.402
    np.testing.assert_allclose(pts[139, 419], [0.398, -0.402, 2.0], atol=1e-6)
    # -319.5 / 500, -239.5 / 500
    np.testing.assert_allclose(pts[0, 0], [-0.639, -0.479, 1.0], atol=1e-6)
    # 319.5 * 4 / 500 = 2.556, 239.5 * 4 / 500 = 1.916
    np.testing.assert_allclose(pts[479, 639], [2.556, 1.916, 4.0], atol=1e-6)


def test_project_16uc1_millimetres_hand_points() -> None:
    depth_mm = np.zeros((480, 640), dtype=np.uint16)
    depth_mm[50, 100] = 1234
    # What the conversion module hands over: metres, 0 -> NaN (REP 118 invalid).
    depth_m = depth_mm.astype(np.float32) * np.float32(0.001)
    depth_m[depth_mm == 0] = np.nan
    pts = project_organized(depth_m, INTR_640)
    # (100 - 319.5) * 1.234 / 500 = -0.541726, (50 - 239.5) * 1.234 / 500 = -0.467686
    np.testing.assert_allclose(pts[50, 100], [-0.541726, -0.467686, 1.234], atol=1e-6)
    assert np.isnan(pts[0, 0]).all()
    assert np.isfinite(pts).all(axis=2).sum() == 1


def test_invalid_depth_gives_all_nan_points() -> None:
    depth = np.full((480, 640), 2.0, dtype=np.float32)
    invalid = [(0, 0, np.nan), (1, 1, 0.0), (2, 2, -1.0), (3, 3, np.inf), (4, 4, -np.inf)]
    for v, u, value in invalid:
        depth[v, u] = value
    pts = project_organized(depth, INTR_640)
    for v, u, _ in invalid:
        assert np.isnan(pts[v, u]).all(), (v, u)
    assert np.isfinite(pts).all(axis=2).sum() == 640 * 480 - len(invalid)
    # The input is not modified by masking.
    assert depth[1, 1] == 0.0


def test_project_rejects_size_mismatch() -> None:
    with pytest.raises(ValueError):
        project_organized(np.ones((240, 320), np.float32), INTR_640)


def test_ray_cache_reuses_and_matches_uncached() -> None:
    cache = RayCache(max_entries=2)
    depth = np.random.default_rng(0).uniform(0.5, 5.0, (480, 640)).astype(np.float32)
    a = project_organized(depth, INTR_640, cache)
    rays = cache.get(INTR_640)
    assert cache.get(INTR_640) is rays
    np.testing.assert_array_equal(a, project_organized(depth, INTR_640))
    cache.get(INTR_640.scaled(320, 240))
    cache.get(INTR_640.scaled(1280, 960))
    assert len(cache) == 2


def test_depth_lower_resolution_than_labels() -> None:
    # 320x240 depth with its own K, label map 640x480.
    k_320 = [250.0, 0.0, 159.5, 0.0, 250.0, 119.5, 0.0, 0.0, 1.0]
    depth = np.full((240, 320), 2.0, dtype=np.float32)
    depth[60, 200] = 3.0
    intr = Intrinsics.from_camera_info_k(k_320, 320, 240).scaled(640, 480)
    assert intr == INTR_640
    pts = project_organized(resample_depth(depth, 640, 480), intr)
    assert pts.shape == (480, 640, 3)
    # Depth pixel (200, 60) covers label pixels u in {400, 401}, v in {120, 121}.
    assert set(zip(*np.nonzero(pts[..., 2] == 3.0))) == {(120, 400), (120, 401), (121, 400), (121, 401)}
    # (401 - 319.5) * 3 / 500 = 0.489, (121 - 239.5) * 3 / 500 = -0.711
    np.testing.assert_allclose(pts[121, 401], [0.489, -0.711, 3.0], atol=1e-6)
    # (399 - 319.5) * 2 / 500 = 0.318
    np.testing.assert_allclose(pts[121, 399], [0.318, -0.474, 2.0], atol=1e-6)


def test_depth_higher_resolution_than_labels() -> None:
    # 640x480 depth, label map 320x240: label pixel (u, v) reads depth pixel (2u + 1, 2v + 1).
    depth = np.full((480, 640), 2.0, dtype=np.float32)
    depth[121, 401] = 3.0
    depth[120, 400] = 5.0  # never sampled
    intr = INTR_640.scaled(320, 240)
    pts = project_organized(resample_depth(depth, 320, 240), intr)
    assert pts.shape == (240, 320, 3)
    # (200 - 159.5) * 3 / 250 = 0.486, (60 - 119.5) * 3 / 250 = -0.714
    np.testing.assert_allclose(pts[60, 200], [0.486, -0.714, 3.0], atol=1e-6)
    assert not (pts[..., 2] == 5.0).any()
    assert (pts[..., 2] == 3.0).sum() == 1


# ---------------------------------------------------------------- obstacle cloud


def test_range_filter_inclusive_and_nan_excluded() -> None:
    pts = np.array(
        [[[0.0, 0.0, 1.0], [3.0, 4.0, 0.0], [0.0, 0.0, 0.5]],
         [[0.0, 0.0, 10.0], [np.nan, np.nan, np.nan], [0.0, 2.0, 2.0]]],
        dtype=np.float32,
    )
    labels = np.full((2, 3), PERSON, dtype=np.uint8)
    out = obstacle_points(pts, labels, obstacle_lut(PERSON), min_range=1.0, max_range=5.0)
    assert out.dtype == np.float32
    # Ranges 1, 5, 0.5, 10, NaN, 2.83: keep 1, 5 and 2.83 in row-major order.
    np.testing.assert_array_equal(out, [[0, 0, 1], [3, 4, 0], [0, 2, 2]])


def test_range_arguments_validated() -> None:
    pts = np.zeros((1, 1, 3), np.float32)
    labels = np.zeros((1, 1), np.uint8)
    with pytest.raises(ValueError):
        obstacle_points(pts, labels, obstacle_lut(0), min_range=2.0, max_range=1.0)
    with pytest.raises(TypeError):
        obstacle_points(pts, labels.astype(np.int32), obstacle_lut(0), 0.0, 1.0)


def test_voxel_downsampling_count_and_centroid() -> None:
    raw = np.array(
        [
            [0.01, 0.02, 1.03],
            [0.03, 0.04, 1.05],  # same 0.1 m voxel as the first
            [0.15, 0.00, 1.00],
            [-0.01, 0.00, 1.00],  # x < 0: its own voxel (voxels anchored at the origin)
            [0.19, 0.09, 1.09],  # same voxel as the third
        ],
        dtype=np.float32,
    )
    expected = np.array(
        [[0.02, 0.03, 1.04], [0.17, 0.045, 1.045], [-0.01, 0.0, 1.0]], dtype=np.float32
    )
    labels = np.full((1, len(raw)), CAR, dtype=np.uint8)
    out = obstacle_points(raw[np.newaxis], labels, obstacle_lut(CAR), 0.0, 10.0, voxel_size=0.1)
    assert out.dtype == np.float32
    assert_same_point_set(out, expected)
    assert_same_point_set(voxel_centroids(raw, 0.1), expected)
    assert voxel_centroids(np.empty((0, 3), np.float32), 0.1).shape == (0, 3)


def test_voxel_keys_too_wide_for_one_int64() -> None:
    # 1000 m / 2^-12 m = 4.1e6 voxels per axis: 6.9e19 cells do not fit the packed-sort key.
    # Binary-fraction coordinates keep every value and centroid exact in float32.
    q = 2.0**-14  # a quarter voxel, and float32's spacing at 1000 m
    raw = np.array(
        [[0.0, 0.0, 0.0], [1000.0, 1000.0, 1000.0], [q, 2 * q, 3 * q],
         [1000.0, 1000.0, 1000.0 + 2 * q], [np.nan, 0.0, 1.0]],
        dtype=np.float32,
    )
    out = voxel_centroids(raw, 2.0**-12)
    expected = np.array([[q / 2, q, 1.5 * q], [1000.0, 1000.0, 1000.0 + q]], dtype=np.float32)
    assert out.shape == (2, 3)
    np.testing.assert_array_equal(sorted_rows(out), expected)


def test_voxel_downsampling_dense_plane() -> None:
    # 1 cm grid in x, y on a plane; 10 cm voxels hold exactly 10 x 10 points each.
    g = (np.arange(100, dtype=np.float64) + 0.5) * 0.01
    x, y = np.meshgrid(g, g)
    raw = np.stack([x, y, np.full_like(x, 2.05)], axis=-1).reshape(-1, 3).astype(np.float32)
    out = voxel_centroids(raw, 0.1)
    assert len(out) == 100
    centers = (np.arange(10) + 0.5) * 0.1
    cx, cy = np.meshgrid(centers, centers)
    expected = np.stack([cx, cy, np.full_like(cx, 2.05)], axis=-1).reshape(-1, 3)
    assert_same_point_set(out, expected)


def test_obstacle_lut_several_classes() -> None:
    depth = np.full((480, 640), 3.0, dtype=np.float32)
    labels = np.full((480, 640), WALL, dtype=np.uint8)
    labels[400:, :] = FLOOR
    labels[100:110, 100:120] = PERSON
    labels[200:205, 500:530] = CAR
    labels[300:302, 300:302] = UNLABELED
    pts = project_organized(depth, INTR_640)
    out = obstacle_points(pts, labels, obstacle_lut(PERSON, CAR), 0.0, 10.0)
    vs, us = np.nonzero((labels == PERSON) | (labels == CAR))
    assert len(out) == 10 * 20 + 5 * 30
    assert_same_point_set(out, hand_points(us, vs, 3.0))


def _person_scene(label_map: np.ndarray, person_box: tuple[slice, slice]) -> None:
    depth = np.full((480, 640), 3.0, dtype=np.float32)  # wall at 3 m
    depth[person_box] = 1.5  # person in front of it
    depth[0:5, 0:5] = np.nan  # some invalid depth on the wall
    depth[person_box[0].start, person_box[1].start] = np.nan  # and one on the person

    pts = project_organized(depth, INTR_640)
    out = obstacle_points(pts, label_map, obstacle_lut(PERSON), 0.5, 8.0)

    vs, us = np.nonzero(label_map == PERSON)
    valid = ~((vs == person_box[0].start) & (us == person_box[1].start))
    expected = hand_points(us[valid], vs[valid], 1.5)
    assert np.isfinite(out).all()
    assert_same_point_set(out, expected)
    # Nothing from the wall plane made it in.
    assert (out[:, 2] == np.float32(1.5)).all()


def test_person_scene_obstacle_cloud_is_exactly_the_person() -> None:
    box = (slice(200, 275), slice(250, 300))
    labels = np.full((480, 640), WALL, dtype=np.uint8)
    labels[box] = PERSON
    _person_scene(labels, box)


def test_label_map_upsampled_from_network_size_stays_aligned() -> None:
    # Network output 256x192; person at network cols [100, 120), rows [80, 110). Scale 2.5, so in
    # the 640x480 label map it covers cols [250, 300), rows [200, 275), where the depth has it too.
    net = np.full((192, 256), WALL, dtype=np.uint8)
    net[80:110, 100:120] = PERSON
    labels = net[nearest_indices(192, 480)[:, None], nearest_indices(256, 640)[None, :]]
    assert labels.shape == (480, 640)
    box = (slice(200, 275), slice(250, 300))
    assert (labels[box] == PERSON).all() and (labels == PERSON).sum() == 75 * 50
    _person_scene(labels, box)


def test_obstacle_cloud_with_low_res_depth_and_voxels() -> None:
    # 320x240 depth under a 640x480 label map, then voxels: everything stays on the person.
    depth = np.full((240, 320), 3.0, dtype=np.float32)
    depth[100:137, 125:150] = 1.5
    labels = np.full((480, 640), WALL, dtype=np.uint8)
    labels[200:274, 250:300] = PERSON
    intr = Intrinsics(250.0, 250.0, 159.5, 119.5, 320, 240).scaled(640, 480)
    pts = project_organized(resample_depth(depth, 640, 480), intr)
    full = obstacle_points(pts, labels, obstacle_lut(PERSON), 0.0, 8.0)
    vs, us = np.nonzero(labels == PERSON)
    assert_same_point_set(full, hand_points(us, vs, 1.5))
    voxels = obstacle_points(pts, labels, obstacle_lut(PERSON), 0.0, 8.0, voxel_size=0.05)
    assert 0 < len(voxels) < len(full)
    np.testing.assert_allclose(voxels[:, 2], 1.5, atol=1e-6)
    lo, hi = full.min(axis=0), full.max(axis=0)
    assert (voxels >= lo - 1e-6).all() and (voxels <= hi + 1e-6).all()
