"""core.cdr against rclpy's own serialization: every message type and encoding the node reads
or publishes as bytes, with odd sizes, long and unicode frame ids, big-endian pixel flags and
empty data. No node or DDS here; it lives in test/ros because it imports rclpy."""
from __future__ import annotations

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2, RegionOfInterest
from std_msgs.msg import Header

from seg_perception.wire import cdr
from devtools.msgtools import read_field
from seg_perception.wire.pointcloud2 import LABELLED_FIELDS, XYZ_FIELDS, labelled_cloud_array, xyz_cloud_array

FRAME_IDS = ["camera_color_optical_frame", "", "f" * 4097, "kamera_ü_相机_🤖", "abc"]
SIZES = [(1, 1), (3, 5), (641, 479), (17, 2)]


def _header(frame_id: str) -> Header:
    return Header(stamp=Time(sec=1_700_000_123, nanosec=999_999_999), frame_id=frame_id)


def _same_header(ours: object, theirs: Header) -> None:
    assert ours.stamp.sec == theirs.stamp.sec and ours.stamp.nanosec == theirs.stamp.nanosec  # type: ignore[attr-defined]
    assert ours.frame_id == theirs.frame_id  # type: ignore[attr-defined]


@pytest.mark.parametrize("frame_id", FRAME_IDS)
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("encoding,channels,dtype", [("mono8", 1, np.uint8), ("rgb8", 3, np.uint8),
                                                     ("16UC1", 1, np.uint16), ("32FC1", 1, np.float32)])
def test_image_bytes_are_what_rclpy_reads(frame_id: str, size: tuple[int, int], encoding: str, channels: int,
                                          dtype: type) -> None:
    width, height = size
    shape = (height, width) if channels == 1 else (height, width, channels)
    array = (np.random.default_rng(width * height).random(shape) * 250).astype(dtype)
    msg = deserialize_message(cdr.image_bytes(_header(frame_id), array, encoding), Image)
    _same_header(msg.header, _header(frame_id))
    assert (msg.width, msg.height, msg.encoding, msg.is_bigendian) == (width, height, encoding, 0)
    assert msg.step == width * channels * np.dtype(dtype).itemsize
    np.testing.assert_array_equal(np.frombuffer(msg.data, dtype).reshape(shape), array)
    # and rclpy writes back what we read
    again = cdr.read_image(serialize_message(msg))
    np.testing.assert_array_equal(np.frombuffer(again.data, dtype).reshape(shape), array)


@pytest.mark.parametrize("frame_id", FRAME_IDS)
@pytest.mark.parametrize("is_bigendian", [0, 1])
@pytest.mark.parametrize("data_len", [0, 1, 7, 64])
def test_read_image_reads_what_rclpy_writes(frame_id: str, is_bigendian: int, data_len: int) -> None:
    data = bytes(range(data_len))
    sent = Image(header=_header(frame_id), height=1, width=max(data_len // 2, 0), encoding="16UC1",
                 is_bigendian=is_bigendian, step=data_len, data=data)
    msg = cdr.read_image(serialize_message(sent))
    _same_header(msg.header, sent.header)
    assert (msg.height, msg.width, msg.encoding, msg.is_bigendian, msg.step) == (
        sent.height, sent.width, "16UC1", is_bigendian, data_len)
    assert bytes(msg.data) == data


@pytest.mark.parametrize("frame_id", FRAME_IDS)
def test_read_compressed_image_reads_what_rclpy_writes(frame_id: str) -> None:
    sent = CompressedImage(header=_header(frame_id), format="rgb8; jpeg compressed bgr8", data=b"\xff\xd8\x01\x02\x03")
    msg = cdr.read_compressed_image(serialize_message(sent))
    _same_header(msg.header, sent.header)
    assert msg.format == sent.format and bytes(msg.data) == b"\xff\xd8\x01\x02\x03"


def _camera_info(frame_id: str, width: int = 640, height: int = 480, d: int = 5) -> CameraInfo:
    return CameraInfo(header=_header(frame_id), width=width, height=height, distortion_model="rational_polynomial",
                      d=[0.01 * i for i in range(d)], k=[500.0, 0.0, 319.5, 0.0, 505.0, 239.5, 0.0, 0.0, 1.0],
                      r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
                      p=[500.0, 0.0, 319.5, -30.0, 0.0, 505.0, 239.5, 0.0, 0.0, 0.0, 1.0, 0.0],
                      binning_x=2, binning_y=3,
                      roi=RegionOfInterest(x_offset=1, y_offset=2, height=3, width=4, do_rectify=True))


@pytest.mark.parametrize("frame_id", FRAME_IDS)
@pytest.mark.parametrize("d", [0, 5, 8])
def test_camera_info_bytes_are_what_rclpy_reads(frame_id: str, d: int) -> None:
    info = cdr.read_camera_info(serialize_message(_camera_info("in", d=d)))  # as the node receives it
    out_header = _header(frame_id)
    same = deserialize_message(cdr.camera_info_bytes(info, out_header, 640, 480), CameraInfo)
    reference = _camera_info(frame_id, d=d)
    _same_header(same.header, out_header)
    for field in ("width", "height", "distortion_model", "binning_x", "binning_y"):
        assert getattr(same, field) == getattr(reference, field)
    for field in ("d", "k", "r", "p"):
        np.testing.assert_array_equal(getattr(same, field), getattr(reference, field))
    assert (same.roi.x_offset, same.roi.width, same.roi.do_rectify) == (1, 4, True)
    # from an rclpy message too, resized
    small = deserialize_message(cdr.camera_info_bytes(_camera_info("in", d=d), out_header, 321, 241), CameraInfo)
    assert (small.width, small.height, small.roi.width) == (321, 241, 0)
    assert small.k[0] == pytest.approx(500.0 * 321 / 640) and small.k[4] == pytest.approx(505.0 * 241 / 480)


@pytest.mark.parametrize("frame_id", FRAME_IDS)
@pytest.mark.parametrize("size", [(1, 1), (7, 3), (0, 0)])
def test_pointcloud2_bytes_are_what_rclpy_reads(frame_id: str, size: tuple[int, int]) -> None:
    width, height = size
    rng = np.random.default_rng(3)
    points = rng.normal(size=(height, width, 3)).astype(np.float32)
    if points.size:
        points[0, 0, 2] = np.nan
    labels = rng.integers(0, 2, (height, width)).astype(np.uint8)
    palette = np.zeros((256, 3), np.uint8)
    palette[1] = (220, 20, 60)
    cases = [(xyz_cloud_array(points.reshape(-1, 3)), XYZ_FIELDS)]
    if points.size:
        cases.append((labelled_cloud_array(points, labels, palette), LABELLED_FIELDS))
    for cloud, fields in cases:
        msg = deserialize_message(cdr.pointcloud2_bytes(_header(frame_id), cloud, fields), PointCloud2)
        _same_header(msg.header, _header(frame_id))
        rows, cols = cloud.shape if cloud.ndim == 2 else (1, cloud.shape[0])
        assert (msg.height, msg.width, msg.point_step, msg.row_step) == (
            rows, cols, cloud.dtype.itemsize, cloud.dtype.itemsize * cols)
        assert [(f.name, f.offset, f.datatype, f.count) for f in msg.fields] == [tuple(f) for f in fields]
        assert msg.is_dense == (not bool(np.isnan(points).any())) and not msg.is_bigendian
        np.testing.assert_array_equal(read_field(msg, "x").reshape(-1), cloud["x"].reshape(-1))
        if "label" in cloud.dtype.names:
            np.testing.assert_array_equal(read_field(msg, "label").reshape(height, width), labels)
