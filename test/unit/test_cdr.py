"""core.cdr: sensor_msgs read from and written to CDR bytes without rclpy.

rosbags' full serializer is the reference here (test/ros/test_cdr_rclpy.py checks the same
bytes against rclpy's own serialization)."""
from __future__ import annotations

import numpy as np
import pytest

from seg_perception.wire import cdr
from seg_perception.wire.pointcloud2 import LABELLED_FIELDS, XYZ_FIELDS, labelled_cloud_array, xyz_cloud_array
from seg_perception.wire.images import ImageFormatError, image_to_rgb
from seg_perception.wire.stamps import stamp_to_ns

T = cdr.STORE.types
FRAME_IDS = ["cam", "", "a" * 1000, "kamera_ü_相机", "x" * 3]


def _image(width: int, height: int, encoding: str, data: np.ndarray, frame_id: str = "cam",
           is_bigendian: int = 0, step: int | None = None) -> object:
    step = data.nbytes // height if step is None else step
    return T[cdr.IMAGE](header=cdr.header(12, 345, frame_id), height=height, width=width, encoding=encoding,
                        is_bigendian=is_bigendian, step=step, data=data.reshape(-1).view(np.uint8))


def test_read_image_is_a_zero_copy_view_of_the_received_bytes() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (48, 64, 3), np.uint8)
    raw = bytes(cdr.STORE.serialize_cdr(_image(64, 48, "rgb8", rgb), cdr.IMAGE))
    msg = cdr.read_image(raw)
    assert (msg.width, msg.height, msg.encoding, msg.header.frame_id) == (64, 48, "rgb8", "cam")
    assert np.shares_memory(msg.data, np.frombuffer(raw, np.uint8))
    assert not msg.data.flags.writeable
    decoded = image_to_rgb(msg)
    assert np.shares_memory(decoded, np.frombuffer(raw, np.uint8))  # rgb8 stays a view to the model
    np.testing.assert_array_equal(decoded, rgb)


def test_read_big_endian_cdr() -> None:
    depth = np.arange(12, dtype=">u2").reshape(3, 4)
    raw = bytes(cdr.STORE.serialize_cdr(_image(4, 3, "16UC1", depth, is_bigendian=1), cdr.IMAGE,
                                        little_endian=False))
    assert raw[:2] == b"\0\0"
    msg = cdr.read_image(raw)
    assert (msg.width, msg.height, msg.step, msg.is_bigendian) == (4, 3, 8, 1)
    np.testing.assert_array_equal(np.frombuffer(msg.data, ">u2").reshape(3, 4), depth)


def test_read_compressed_image_and_camera_info() -> None:
    payload = np.frombuffer(b"\xff\xd8 not really a jpeg", np.uint8)
    raw = bytes(cdr.STORE.serialize_cdr(T[cdr.COMPRESSED_IMAGE](header=cdr.header(1, 2, "c"), format="jpeg",
                                                                data=payload), cdr.COMPRESSED_IMAGE))
    msg = cdr.read_compressed_image(raw)
    assert msg.format == "jpeg" and bytes(msg.data) == payload.tobytes()
    assert np.shares_memory(msg.data, np.frombuffer(raw, np.uint8))
    info = cdr.read_camera_info(cdr.camera_info_bytes(_info(), cdr.header(1, 2, "c"), 640, 480))
    assert info.k[0] == 500.0 and info.distortion_model == "plumb_bob"


@pytest.mark.parametrize("cut", [0, 3, 10, 30, -1])
def test_truncated_bytes_raise_a_format_error(cut: int) -> None:
    raw = bytes(cdr.STORE.serialize_cdr(_image(4, 2, "mono8", np.zeros(8, np.uint8)), cdr.IMAGE))
    with pytest.raises(ImageFormatError, match="not a well-formed sensor_msgs/Image"):
        cdr.read_image(raw[:cut])


def test_lying_lengths_raise_a_format_error() -> None:
    raw = bytearray(cdr.STORE.serialize_cdr(_image(4, 2, "mono8", np.zeros(8, np.uint8)), cdr.IMAGE))
    raw[-12:-8] = (10 ** 9).to_bytes(4, "little")  # data length far beyond the buffer
    with pytest.raises(cdr.CdrError) as error:
        cdr.read_image(bytes(raw))
    assert error.value.kind == "corrupt"
    with pytest.raises(cdr.CdrError):
        cdr.read_image(b"\0\1\0\0" + b"\xff" * 40)


@pytest.mark.parametrize("ident, name, hint", [
    (0x0007, "CDR2_LE", "DataRepresentationQosPolicy"), (0x0006, "CDR2_BE", "XCDR2"),
    (0x0009, "D_CDR2_LE", "XCDR2"), (0x000B, "PL_CDR2_LE", "XCDR2"),
    (0x0003, "PL_CDR_LE", "@mutable"), (0x0002, "PL_CDR_BE", "@mutable")])
def test_other_encapsulations_are_named_with_the_setting_to_change(ident: int, name: str, hint: str) -> None:
    raw = bytearray(cdr.STORE.serialize_cdr(_image(4, 2, "mono8", np.zeros(8, np.uint8)), cdr.IMAGE))
    raw[0:2] = ident.to_bytes(2, "big")
    with pytest.raises(cdr.EncapsulationError) as error:
        cdr.read_image(bytes(raw))
    assert error.value.kind == "encapsulation"
    assert f"encapsulation {name}, not CDR_LE/CDR_BE" in str(error.value) and hint in str(error.value)
    raw[0:2] = (0x0042).to_bytes(2, "big")
    with pytest.raises(cdr.EncapsulationError, match="unknown CDR encapsulation 0x0042"):
        cdr.read_image(bytes(raw))


def test_big_endian_cdr_still_reads() -> None:
    msg = _image(4, 2, "mono8", np.arange(8, dtype=np.uint8))
    big = bytes(cdr.STORE.serialize_cdr(msg, cdr.IMAGE, little_endian=False))
    assert big[:2] == b"\0\0"
    assert bytes(cdr.read_image(big).data) == bytes(range(8))


@pytest.mark.parametrize("frame_id", FRAME_IDS)
@pytest.mark.parametrize("encoding,shape,dtype", [
    ("mono8", (3, 5), np.uint8), ("mono8", (1, 1), np.uint8), ("rgb8", (7, 3, 3), np.uint8),
    ("bgr8", (2, 9, 3), np.uint8), ("16UC1", (5, 3), np.uint16), ("32FC1", (3, 7), np.float32)])
def test_image_bytes_equal_the_full_serializer(frame_id: str, encoding: str, shape: tuple[int, ...],
                                               dtype: type) -> None:
    array = (np.arange(np.prod(shape)) % 251).astype(dtype).reshape(shape)
    ours = cdr.image_bytes(cdr.header(12, 345, frame_id), array, encoding)
    reference = _image(shape[1], shape[0], encoding, np.ascontiguousarray(array), frame_id)
    assert isinstance(ours, bytes)
    assert ours == bytes(cdr.STORE.serialize_cdr(reference, cdr.IMAGE, little_endian=True))
    back = cdr.read_image(ours)
    assert (back.header.frame_id, back.header.stamp.sec, back.header.stamp.nanosec) == (frame_id, 12, 345)
    np.testing.assert_array_equal(np.frombuffer(back.data, dtype).reshape(shape), array)


def test_image_bytes_packs_views_and_swaps_big_endian_arrays() -> None:
    big = np.arange(12, dtype=">u2").reshape(3, 4)
    msg = cdr.read_image(cdr.image_bytes(cdr.header(0, 0, "d"), big, "16UC1"))
    assert msg.is_bigendian == 0 and msg.step == 8
    np.testing.assert_array_equal(np.frombuffer(msg.data, "<u2").reshape(3, 4), big)
    strided = np.arange(60, dtype=np.uint8).reshape(6, 10)[::2, 1::3]
    msg = cdr.read_image(cdr.image_bytes(cdr.header(0, 0, "m"), strided, "mono8"))
    np.testing.assert_array_equal(np.asarray(msg.data).reshape(strided.shape), strided)


def test_image_bytes_refuses_what_fill_image_refuses() -> None:
    with pytest.raises(ValueError, match="cannot fill encoding"):
        cdr.image_bytes(cdr.header(0, 0, ""), np.zeros((2, 2), np.uint8), "yuv422")
    with pytest.raises(ValueError, match="empty"):
        cdr.image_bytes(cdr.header(0, 0, ""), np.zeros((0, 2), np.uint8), "mono8")


def test_header_like_objects_are_copied_exactly() -> None:
    class Stamp:
        sec, nanosec = 7, 999_999_999

    class Hdr:
        stamp, frame_id = Stamp(), "other_frame"

    msg = cdr.read_image(cdr.image_bytes(Hdr(), np.zeros((1, 1), np.uint8), "mono8"))
    assert stamp_to_ns(msg.header.stamp) == 7_999_999_999 and msg.header.frame_id == "other_frame"


def _info(width: int = 640, height: int = 480) -> object:
    return T[cdr.CAMERA_INFO](
        header=cdr.header(0, 0, "old"), height=height, width=width, distortion_model="plumb_bob",
        d=np.array([0.1, -0.2, 0.0, 0.0, 0.01]), k=np.array([500.0, 0, 319.5, 0, 510.0, 239.5, 0, 0, 1]),
        r=np.eye(3).reshape(-1), p=np.array([500.0, 0, 319.5, -25.0, 0, 510.0, 239.5, 0, 0, 0, 1, 0]),
        binning_x=0, binning_y=0,
        roi=T["sensor_msgs/msg/RegionOfInterest"](x_offset=1, y_offset=2, height=3, width=4, do_rectify=True))


def test_camera_info_bytes_scales_k_and_p_and_takes_the_header() -> None:
    same = cdr.read_camera_info(cdr.camera_info_bytes(_info(), cdr.header(5, 6, "cam"), 640, 480))
    assert (same.header.frame_id, same.header.stamp.sec, same.roi.width) == ("cam", 5, 4)
    np.testing.assert_array_equal(same.k, _info().k)
    half = cdr.read_camera_info(cdr.camera_info_bytes(_info(), cdr.header(5, 6, "cam"), 320, 240))
    assert (half.width, half.height, half.roi.width) == (320, 240, 0)
    assert half.k[0] == 250.0 and half.k[4] == 255.0 and half.k[2] == pytest.approx(159.5)
    assert half.p[3] == -12.5
    np.testing.assert_array_equal(half.d, _info().d)


@pytest.mark.parametrize("frame_id", FRAME_IDS[:3])
def test_pointcloud2_bytes_equal_the_full_serializer(frame_id: str) -> None:
    rng = np.random.default_rng(1)
    points = rng.normal(size=(3, 5, 3)).astype(np.float32)
    points[0, 0] = np.nan
    labels = rng.integers(0, 3, (3, 5)).astype(np.uint8)
    palette = np.zeros((256, 3), np.uint8)
    palette[1] = (255, 0, 0)
    for cloud, fields, dense in ((labelled_cloud_array(points, labels, palette), LABELLED_FIELDS, False),
                                 (xyz_cloud_array(points[1:].reshape(-1, 3)), XYZ_FIELDS, True),
                                 (xyz_cloud_array(np.zeros((0, 3), np.float32)), XYZ_FIELDS, True)):
        ours = cdr.pointcloud2_bytes(cdr.header(3, 4, frame_id), cloud, fields)
        height, width = cloud.shape if cloud.ndim == 2 else (1, cloud.shape[0])
        reference = T[cdr.POINT_CLOUD2](
            header=cdr.header(3, 4, frame_id), height=height, width=width,
            fields=[T["sensor_msgs/msg/PointField"](name=f.name, offset=f.offset, datatype=f.datatype,
                                                    count=f.count) for f in fields],
            is_bigendian=False, point_step=cloud.dtype.itemsize, row_step=cloud.dtype.itemsize * width,
            data=np.ascontiguousarray(cloud).reshape(-1).view(np.uint8), is_dense=dense)
        assert ours == bytes(cdr.STORE.serialize_cdr(reference, cdr.POINT_CLOUD2, little_endian=True))
        assert cdr.read(ours, cdr.POINT_CLOUD2).is_dense == dense


def test_pointcloud2_bytes_checks_the_fields() -> None:
    with pytest.raises(ValueError, match="does not match fields"):
        cdr.pointcloud2_bytes(cdr.header(0, 0, ""), xyz_cloud_array(np.zeros((2, 3), np.float32)), LABELLED_FIELDS)
    with pytest.raises(TypeError):
        cdr.pointcloud2_bytes(cdr.header(0, 0, ""), np.zeros((2, 3), np.float32), XYZ_FIELDS)
