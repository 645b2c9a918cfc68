"""sensor_msgs straight from and to their CDR bytes, with no rclpy: the node's wire format.

rclpy hands a raw subscription the serialized message (`bytes`) and `Publisher.publish`
accepts serialized `bytes`; everything between is ours. Building rclpy message objects costs
more than the model at 1080p: deserializing a 6 MB rgb8 Image into an rclpy message takes
~13 ms on this project's machine, because rclpy copies the pixels into a Python array.

Reading uses rosbags' typestore (its CDR equals rclpy's): `read_image` returns a rosbags
message whose `data` is a read-only numpy view of the received bytes, in microseconds, with
the message's sizes checked against the buffer (a truncated or garbled message raises
`CdrError`, an `ImageFormatError`). Writing serializes the small fields with rosbags and joins
the pixel/point payload in the same pass (`bytes.join`: one copy of the payload, the only one
between the result array and the middleware).

Messages are little-endian CDR (what rclpy writes on every platform ROS 2 supports); a
big-endian CDR message from another machine is read as well.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from rosbags.serde import SerdeError
from rosbags.typesys import Stores, get_typestore

from .pointcloud2 import FieldSpec, cloud_geometry, has_non_finite_xyz
from .images import ImageFormatError, pack_image
from .calibration import scale_camera_info

__all__ = [
    "CAMERA_INFO",
    "COMPRESSED_IMAGE",
    "CdrError",
    "IMAGE",
    "POINT_CLOUD2",
    "STORE",
    "camera_info_bytes",
    "header",
    "image_bytes",
    "laser_scan_bytes",
    "pointcloud2_bytes",
    "read",
    "read_camera_info",
    "read_compressed_image",
    "read_image",
]

# Kilted's definitions; these sensor_msgs types are unchanged since Foxy.
STORE = get_typestore(Stores.ROS2_KILTED)
IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
POINT_CLOUD2 = "sensor_msgs/msg/PointCloud2"
LASER_SCAN = "sensor_msgs/msg/LaserScan"
_T = STORE.types
_Time, _Header = _T["builtin_interfaces/msg/Time"], _T["std_msgs/msg/Header"]
_Image, _CameraInfo, _PointCloud2 = _T[IMAGE], _T[CAMERA_INFO], _T[POINT_CLOUD2]
_PointField, _RegionOfInterest = _T["sensor_msgs/msg/PointField"], _T["sensor_msgs/msg/RegionOfInterest"]
_LaserScan = _T[LASER_SCAN]
_EMPTY = np.zeros(0, np.uint8)


class CdrError(ImageFormatError):
    """Bytes that are not a well-formed CDR message of the expected type (kind 'corrupt')."""

    def __init__(self, message: str) -> None:
        super().__init__(message, kind="corrupt")


class EncapsulationError(ImageFormatError):
    """A serialized message in an encapsulation other than plain CDR (kind 'encapsulation')."""

    def __init__(self, message: str) -> None:
        super().__init__(message, kind="encapsulation")


# The RTPS encapsulation identifiers (DDS-XTypes 1.3, 7.6.3.1.2) of the first two bytes.
_ENCAPSULATIONS = {0x0000: "CDR_BE", 0x0001: "CDR_LE", 0x0002: "PL_CDR_BE", 0x0003: "PL_CDR_LE",
                   0x0006: "CDR2_BE", 0x0007: "CDR2_LE", 0x0008: "D_CDR2_BE", 0x0009: "D_CDR2_LE",
                   0x000A: "PL_CDR2_BE", 0x000B: "PL_CDR2_LE"}
_XCDR2_HINT = ("XCDR2 (DDS-XTypes encoding version 2), while ROS 2 middlewares exchange XCDR1 (CDR_LE/CDR_BE): "
               "the publisher asks for DDS data representation XCDR2; set its DataRepresentationQosPolicy to "
               "XCDR (XCDR1) in that middleware's QoS profile, or publish through a ROS 2 rmw")
_PL_HINT = ("parameter-list CDR, a DDS @mutable type: the publisher is a DDS application with its own type, not "
            "a ROS 2 message; publish through a ROS 2 rmw, or declare the type @final with XCDR1")


def check_encapsulation(raw: bytes | memoryview) -> None:
    """Raise EncapsulationError, naming it, when `raw` is not CDR_LE/CDR_BE: rosbags would read any
    other encapsulation with CDR rules and report a 'corrupt' message, or misread it."""
    if len(raw) < 4:
        return  # too short for any message: the deserializer says so
    ident = (raw[0] << 8) | raw[1]
    if ident in (0x0000, 0x0001):
        return
    name = _ENCAPSULATIONS.get(ident)
    if name is None:
        raise EncapsulationError(f"unknown CDR encapsulation 0x{ident:04x} (ROS 2 messages are CDR_LE or CDR_BE)")
    hint = _PL_HINT if name.startswith("PL_CDR_") else _XCDR2_HINT
    raise EncapsulationError(f"encapsulation {name}, not CDR_LE/CDR_BE: {hint}")


def read(raw: bytes | memoryview, typename: str) -> Any:
    """Any message of the typestore from its CDR bytes; uint8[] fields are views of `raw`."""
    check_encapsulation(raw)
    try:
        # A memoryview: rosbags slices off the encapsulation header, which would copy a bytes.
        return STORE.deserialize_cdr(memoryview(raw), typename)
    except (SerdeError, KeyError) as exc:
        name = typename.replace("/msg/", "/")
        raise CdrError(f"not a well-formed {name} message ({len(raw)} bytes): {exc}") from exc


def read_image(raw: bytes | memoryview) -> Any:
    """sensor_msgs/Image; `data` is a read-only uint8 view of `raw` (no copy)."""
    return read(raw, IMAGE)


def read_compressed_image(raw: bytes | memoryview) -> Any:
    """sensor_msgs/CompressedImage; `data` is a read-only uint8 view of `raw` (no copy)."""
    return read(raw, COMPRESSED_IMAGE)


def read_camera_info(raw: bytes | memoryview) -> Any:
    return read(raw, CAMERA_INFO)


def header(sec: int, nanosec: int, frame_id: str) -> Any:
    """A std_msgs/Header of this typestore."""
    return _Header(stamp=_Time(sec=int(sec), nanosec=int(nanosec)), frame_id=str(frame_id))


def as_header(source: Any) -> Any:
    """A std_msgs/Header of this typestore with the stamp and frame_id of any header-like object
    (an rclpy Header, or one of ours, returned as is)."""
    if isinstance(source, _Header):
        return source
    return header(source.stamp.sec, source.stamp.nanosec, source.frame_id)


def _join(msg: Any, typename: str, payload: np.ndarray, suffix: int) -> bytes:
    """Serialize `msg`, whose last uint8[] field is empty and followed by `suffix` bytes of
    fixed fields, with `payload` (C-contiguous) as that field: one copy of the payload."""
    head = STORE.serialize_cdr(msg, typename, little_endian=True)
    cut = len(head) - suffix
    # The empty sequence serialized as its uint32 length (0) right before the suffix; its
    # alignment does not depend on the length, so the prefix stays valid for any payload.
    assert bytes(head[cut - 4:cut]) == b"\0\0\0\0"
    data = memoryview(payload.reshape(-1).view(np.uint8))  # type: ignore[arg-type]  # numpy's buffer protocol
    return b"".join((head[:cut - 4], len(data).to_bytes(4, "little"), data, head[cut:]))


def image_bytes(hdr: Any, array: np.ndarray, encoding: str) -> bytes:
    """CDR of a sensor_msgs/Image holding `array` (packed rows, little-endian), as `fill_image`
    would fill it. `hdr`: any header-like object, copied exactly.

    Raises:
        ValueError: an encoding `fill_image` does not write, or an array that does not fit it.
    """
    packed, canonical, step = pack_image(array, encoding)
    height, width = packed.shape[:2]
    msg = _Image(header=as_header(hdr), height=height, width=width, encoding=canonical,
                 is_bigendian=0, step=step, data=_EMPTY)
    return _join(msg, IMAGE, packed, 0)


def camera_info_bytes(info: Any, hdr: Any, width: int, height: int) -> bytes:
    """CDR of `info` (any CameraInfo-like object) for its image resized to width x height, with
    `hdr`: K and P scaled, D, R, binning and the distortion model kept; the ROI is cleared
    when the size changes (it is in the old pixels)."""
    same = (int(info.width), int(info.height)) == (width, height) or int(info.width) == 0 \
        or int(info.height) == 0
    if same:
        k, p = list(info.k), list(info.p)
    else:
        k, p = scale_camera_info(list(info.k), list(info.p), int(info.width), int(info.height), width, height)
    roi: Any = info.roi if same else _RegionOfInterest(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    if not isinstance(roi, _RegionOfInterest):
        roi = _RegionOfInterest(x_offset=int(roi.x_offset), y_offset=int(roi.y_offset), height=int(roi.height),
                                width=int(roi.width), do_rectify=bool(roi.do_rectify))
    msg = _CameraInfo(header=as_header(hdr), height=int(height), width=int(width),
                      distortion_model=str(info.distortion_model), d=np.asarray(info.d, np.float64),
                      k=np.asarray(k, np.float64), r=np.asarray(info.r, np.float64),
                      p=np.asarray(p, np.float64), binning_x=int(info.binning_x),
                      binning_y=int(info.binning_y), roi=roi)
    return bytes(STORE.serialize_cdr(msg, CAMERA_INFO, little_endian=True))


def pointcloud2_bytes(hdr: Any, cloud: np.ndarray, fields: Sequence[FieldSpec], *,
                      is_dense: bool | None = None) -> bytes:
    """CDR of a sensor_msgs/PointCloud2 holding the structured array `cloud`, as
    `clouds.fill_pointcloud2` fills it (2-D: organized, 1-D: 1 x N)."""
    height, width, point_step = cloud_geometry(cloud, fields)
    dense = (not has_non_finite_xyz(cloud)) if is_dense is None else bool(is_dense)
    msg = _PointCloud2(
        header=as_header(hdr), height=height, width=width,
        fields=[_PointField(name=f.name, offset=f.offset, datatype=f.datatype, count=f.count) for f in fields],
        is_bigendian=False, point_step=point_step, row_step=point_step * width, data=_EMPTY,
        is_dense=dense)
    return _join(msg, POINT_CLOUD2, np.ascontiguousarray(cloud), 1)


def laser_scan_bytes(hdr: Any, ranges: np.ndarray, angle_min: float, angle_increment: float, range_min: float,
                     range_max: float) -> bytes:
    """CDR of a sensor_msgs/LaserScan of `ranges` (float32; +inf and NaN kept as REP 117 readings)
    at bearings angle_min + i * angle_increment, taken all at once (no time or intensities)."""
    values = np.ascontiguousarray(ranges, dtype=np.float32).reshape(-1)
    msg = _LaserScan(header=as_header(hdr), angle_min=float(angle_min),
                     angle_max=float(angle_min + (len(values) - 1) * angle_increment),
                     angle_increment=float(angle_increment), time_increment=0.0, scan_time=0.0,
                     range_min=float(range_min), range_max=float(range_max), ranges=values,
                     intensities=np.zeros(0, np.float32))
    return bytes(STORE.serialize_cdr(msg, LASER_SCAN, little_endian=True))
