"""PointCloud2 layouts: byte offsets, packed rgb, organized/unorganized fill and read-back."""

from __future__ import annotations

import array
import struct
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from seg_perception.wire.pointcloud2 import (
    FLOAT32,
    FLOAT64,
    LABELLED_DTYPE,
    LABELLED_FIELDS,
    UINT32,
    XYZ_DTYPE,
    XYZ_FIELDS,
    FieldSpec,
    fields_dtype,
    labelled_cloud_array,
    pack_rgb,
    xyz_cloud_array,
)
from devtools.msgtools import fill_pointcloud2, read_field, read_xyz, unpack_rgb
from seg_perception.engine.projection import project_organized
from seg_perception.wire.calibration import Intrinsics


def fake_point_field(**kwargs: Any) -> SimpleNamespace:
    return SimpleNamespace(**kwargs)


def fake_msg() -> SimpleNamespace:
    # What a fresh rclpy PointCloud2 holds in data.
    return SimpleNamespace(data=array.array("B"))


def palette() -> np.ndarray:
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[1] = (255, 128, 0)
    lut[2] = (0, 0, 255)
    lut[3] = (12, 34, 56)
    return lut


def scene() -> tuple[np.ndarray, np.ndarray]:
    depth = np.full((6, 8), 2.0, dtype=np.float32)
    depth[0, 0] = np.nan
    intr = Intrinsics(4.0, 4.0, 3.5, 2.5, 8, 6)
    labels = np.zeros((6, 8), dtype=np.uint8)
    labels[2:4, 2:5] = 1
    labels[5, :] = 2
    labels[0, 7] = 255
    return project_organized(depth, intr), labels


def test_labelled_layout() -> None:
    assert [(f.name, f.offset, f.datatype, f.count) for f in LABELLED_FIELDS] == [
        ("x", 0, FLOAT32, 1), ("y", 4, FLOAT32, 1), ("z", 8, FLOAT32, 1),
        ("rgb", 12, FLOAT32, 1), ("label", 16, UINT32, 1),
    ]
    assert LABELLED_DTYPE.itemsize == 20
    assert [(f.name, f.offset, f.datatype) for f in XYZ_FIELDS] == [
        ("x", 0, FLOAT32), ("y", 4, FLOAT32), ("z", 8, FLOAT32),
    ]
    assert XYZ_DTYPE.itemsize == 12


def test_pack_rgb_is_pcl_convention() -> None:
    packed = pack_rgb(palette())
    assert packed.dtype == np.uint32
    assert packed[1] == 0x00FF8000
    assert packed[3] == (12 << 16) | (34 << 8) | 56


def test_labelled_cloud_array_fields() -> None:
    pts, labels = scene()
    cloud = labelled_cloud_array(pts, labels, palette())
    assert cloud.shape == (6, 8) and cloud.dtype == LABELLED_DTYPE
    np.testing.assert_array_equal(cloud["x"], pts[..., 0])
    np.testing.assert_array_equal(cloud["y"], pts[..., 1])
    np.testing.assert_array_equal(cloud["z"], pts[..., 2])
    assert np.isnan(cloud["z"][0, 0])
    np.testing.assert_array_equal(cloud["label"], labels)
    assert cloud["label"].dtype == np.dtype("<u4")
    np.testing.assert_array_equal(unpack_rgb(cloud["rgb"]), palette()[labels])


def test_packed_rgb_bytes_decode_to_palette_color() -> None:
    pts, labels = scene()
    cloud = labelled_cloud_array(pts, labels, palette())
    # Decode the way RViz/PCL do: read the 4 float bytes at offset 12 as a little-endian uint32.
    record = cloud[2, 2].tobytes()
    (packed,) = struct.unpack_from("<I", record, 12)
    assert ((packed >> 16) & 0xFF, (packed >> 8) & 0xFF, packed & 0xFF) == (255, 128, 0)
    (label,) = struct.unpack_from("<I", record, 16)
    assert label == 1


def test_fill_organized_and_read_back() -> None:
    pts, labels = scene()
    msg = fill_pointcloud2(fake_msg(), labelled_cloud_array(pts, labels, palette()),
                           LABELLED_FIELDS, fake_point_field)
    assert (msg.height, msg.width) == (6, 8)
    assert msg.point_step == 20 and msg.row_step == 160
    assert msg.is_bigendian is False
    assert msg.is_dense is False  # pixel (0, 0) has no depth
    assert [(f.name, f.offset, f.datatype, f.count) for f in msg.fields] == [
        (f.name, f.offset, f.datatype, 1) for f in LABELLED_FIELDS
    ]
    assert isinstance(msg.data, array.array) and len(msg.data) == 6 * 8 * 20
    xyz = read_xyz(msg)
    np.testing.assert_array_equal(xyz, pts.reshape(-1, 3))  # NaN positions included
    np.testing.assert_array_equal(read_field(msg, "label"), labels.reshape(-1))
    np.testing.assert_array_equal(
        unpack_rgb(read_field(msg, "rgb")), palette()[labels].reshape(-1, 3)
    )


def test_fill_reused_message_holds_only_the_latest_cloud() -> None:
    pts, labels = scene()
    msg = fill_pointcloud2(fake_msg(), labelled_cloud_array(pts, labels, palette()),
                           LABELLED_FIELDS, fake_point_field)
    # Same size: overwritten in place.
    fill_pointcloud2(msg, labelled_cloud_array(pts * 2, labels, palette()), LABELLED_FIELDS,
                     fake_point_field)
    assert len(msg.data) == 6 * 8 * 20
    np.testing.assert_array_equal(read_xyz(msg), (pts * 2).reshape(-1, 3))
    # Other size: replaced, never appended to.
    small = pts[:2, :3]
    fill_pointcloud2(msg, labelled_cloud_array(small, labels[:2, :3], palette()),
                     LABELLED_FIELDS, fake_point_field)
    assert (msg.height, msg.width, len(msg.data)) == (2, 3, 2 * 3 * 20)
    np.testing.assert_array_equal(read_xyz(msg), small.reshape(-1, 3))


def test_fill_unorganized_dense() -> None:
    pts = np.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 4.0]], dtype=np.float32)
    msg = fill_pointcloud2(fake_msg(), xyz_cloud_array(pts), XYZ_FIELDS, fake_point_field)
    assert (msg.height, msg.width, msg.point_step, msg.row_step) == (1, 2, 12, 24)
    assert msg.is_dense is True
    np.testing.assert_array_equal(read_xyz(msg), pts)


def test_fill_empty_obstacle_cloud() -> None:
    msg = fill_pointcloud2(fake_msg(), xyz_cloud_array(np.empty((0, 3), np.float32)),
                           XYZ_FIELDS, fake_point_field)
    assert (msg.height, msg.width, len(msg.data)) == (1, 0, 0)
    assert read_xyz(msg).shape == (0, 3)


def test_fill_non_array_data_gets_bytes() -> None:
    pts = np.array([[1.0, 2.0, 3.0]], dtype=np.float32)
    msg = fill_pointcloud2(SimpleNamespace(data=b""), xyz_cloud_array(pts), XYZ_FIELDS,
                           fake_point_field)
    assert msg.data == pts.tobytes()


def test_fill_is_dense_override() -> None:
    pts = np.array([[np.nan, np.nan, np.nan]], dtype=np.float32)
    msg = fill_pointcloud2(fake_msg(), xyz_cloud_array(pts), XYZ_FIELDS, fake_point_field)
    assert msg.is_dense is False
    msg = fill_pointcloud2(fake_msg(), xyz_cloud_array(pts[:0]), XYZ_FIELDS, fake_point_field,
                           is_dense=True)
    assert msg.is_dense is True


def test_fill_rejects_mismatched_fields() -> None:
    pts, labels = scene()
    with pytest.raises(ValueError):
        fill_pointcloud2(fake_msg(), labelled_cloud_array(pts, labels, palette()), XYZ_FIELDS,
                         fake_point_field)


def test_read_xyz_padded_rows_float64_and_extra_fields() -> None:
    # A foreign layout: intensity first, float64 xyz, 4 bytes of padding per row.
    fields = [FieldSpec("intensity", 0, FLOAT32), FieldSpec("x", 4, FLOAT64),
              FieldSpec("y", 12, FLOAT64), FieldSpec("z", 20, FLOAT64)]
    dtype = fields_dtype(fields, 28)
    rows = np.zeros((2, 3), dtype=dtype)
    rows["x"] = [[1, 2, 3], [4, 5, 6]]
    rows["y"] = 7.0
    rows["z"] = [[8, 9, 10], [11, 12, 13]]
    padded = b"".join(row.tobytes() + b"\xff" * 4 for row in rows)
    msg = SimpleNamespace(height=2, width=3, point_step=28, row_step=3 * 28 + 4,
                          is_bigendian=False, fields=fields, data=padded)
    xyz = read_xyz(msg)
    assert xyz.dtype == np.float32
    np.testing.assert_array_equal(xyz[:, 0], [1, 2, 3, 4, 5, 6])
    np.testing.assert_array_equal(xyz[:, 2], [8, 9, 10, 11, 12, 13])
    with pytest.raises(KeyError):
        read_field(msg, "rgb")


def test_real_sensor_msgs_pointcloud2_round_trip() -> None:
    sensor_msgs = pytest.importorskip("sensor_msgs.msg")
    pts, labels = scene()
    msg = fill_pointcloud2(sensor_msgs.PointCloud2(), labelled_cloud_array(pts, labels, palette()),
                           LABELLED_FIELDS, sensor_msgs.PointField)
    assert isinstance(msg.fields[0], sensor_msgs.PointField)
    assert msg.fields[3].datatype == sensor_msgs.PointField.FLOAT32
    assert msg.fields[4].datatype == sensor_msgs.PointField.UINT32
    assert (msg.height, msg.width, msg.point_step, msg.row_step) == (6, 8, 20, 160)
    assert msg.is_dense is False
    np.testing.assert_array_equal(read_xyz(msg), pts.reshape(-1, 3))
    np.testing.assert_array_equal(read_field(msg, "label"), labels.reshape(-1))
    np.testing.assert_array_equal(
        unpack_rgb(read_field(msg, "rgb")), palette()[labels].reshape(-1, 3)
    )

    obstacle = pts.reshape(-1, 3)[labels.reshape(-1) == 1]
    out = fill_pointcloud2(sensor_msgs.PointCloud2(), xyz_cloud_array(obstacle), XYZ_FIELDS,
                           sensor_msgs.PointField)
    assert (out.height, out.width) == (1, len(obstacle)) and out.is_dense is True
    np.testing.assert_array_equal(read_xyz(out), obstacle)

    # Reusing the message for the next frame of the same size keeps rclpy's array.array.
    fill_pointcloud2(msg, labelled_cloud_array(pts + 1, labels, palette()), LABELLED_FIELDS,
                     sensor_msgs.PointField)
    assert msg.data.typecode == "B"
    np.testing.assert_array_equal(read_xyz(msg), (pts + 1).reshape(-1, 3))
