"""Test and tool helpers for messages: build CompressedImage frames the way image_transport does,
and read PointCloud2 fields back. Not part of the runtime package: the node never needs them."""
from __future__ import annotations

import array
from collections.abc import Callable, Sequence
from typing import Any, Final

import cv2
import numpy as np

from seg_perception.wire.pointcloud2 import FieldSpec, cloud_geometry, fields_dtype, has_non_finite_xyz


def unpack_rgb(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 RGB from packed rgb given as float32 (PCL convention) or uint32."""
    bits = np.ascontiguousarray(rgb)
    if bits.dtype.kind == "f":
        if bits.dtype.itemsize != 4:
            raise TypeError(f"packed rgb must be float32 or uint32, got {bits.dtype}")
        # Reinterpret, never convert: the packed value is a bit pattern, not a number.
        bits = bits.astype(bits.dtype.newbyteorder("="), copy=False).view(np.uint32)
    bits = bits.astype(np.uint32, copy=False)
    return np.stack(
        [(bits >> 16) & 0xFF, (bits >> 8) & 0xFF, bits & 0xFF], axis=-1
    ).astype(np.uint8)



def _cloud_records(msg: Any, fields: Sequence[Any]) -> np.ndarray:
    """Flat (height * width,) structured view of ``msg.data`` holding ``fields``."""
    height, width, point_step = int(msg.height), int(msg.width), int(msg.point_step)
    row_step = int(msg.row_step)
    dtype = fields_dtype(fields, point_step, bool(msg.is_bigendian))
    buf = np.frombuffer(msg.data, dtype=np.uint8)
    if buf.size < row_step * height:
        raise ValueError(f"data holds {buf.size} bytes, expected {row_step * height}")
    if row_step == point_step * width:
        return buf[: row_step * height].view(dtype)
    # Padded rows: drop the padding before reinterpreting the points.
    rows = buf[: row_step * height].reshape(height, row_step)[:, : point_step * width]
    return np.ascontiguousarray(rows).reshape(-1).view(dtype)


def _find_fields(msg: Any, names: Sequence[str]) -> list[Any]:
    by_name = {f.name: f for f in msg.fields}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise KeyError(f"cloud has no field(s) {missing}; it has {sorted(by_name)}")
    return [by_name[n] for n in names]


def read_field(msg: Any, name: str) -> np.ndarray:
    """One field of a PointCloud2(-like) message as a flat (height * width,) array."""
    records = _cloud_records(msg, _find_fields(msg, [name]))
    return records[name].astype(records.dtype[name].newbyteorder("="))


def read_xyz(msg: Any) -> np.ndarray:
    """(height * width, 3) float32 x, y, z of a PointCloud2(-like) message, row-major order."""
    records = _cloud_records(msg, _find_fields(msg, ["x", "y", "z"]))
    xyz = np.empty((len(records), 3), dtype=np.float32)
    for axis, name in enumerate(("x", "y", "z")):
        xyz[:, axis] = records[name]
    return xyz


_JPEG_NAMES: Final = frozenset({"jpeg", "jpg"})


def fill_compressed(msg: Any, array: np.ndarray, fmt: str = "png") -> Any:
    """Fill a ``CompressedImage``-like message for an image_transport ``<topic>/compressed``.

    ``array`` is HxW uint8 (mono8, e.g. a label mask) or HxWx3 uint8 RGB.
    Format strings follow compressed_image_transport, so its subscribers and
    ``compressed_to_rgb`` decode the colors right: ``"mono8; png compressed
    mono8"``, ``"rgb8; png compressed bgr8"``, ``"rgb8; jpeg compressed bgr8"``.

    Raises:
        ValueError: unknown ``fmt``, wrong shape/dtype, or JPEG for a mono8 image.
    """
    codec = fmt.strip().lower()
    if codec not in _JPEG_NAMES and codec != "png":
        raise ValueError(f"unsupported compressed format {fmt!r} (supported: png, jpeg)")
    arr = np.asarray(array)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    is_mono = arr.ndim == 2
    encoding = "mono8" if is_mono else "rgb8"
    if arr.dtype != np.uint8 or not (is_mono or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise ValueError(f"expected HxW or HxWx3 of dtype uint8, got {arr.shape} {arr.dtype}")
    pixels = np.ascontiguousarray(arr)
    if is_mono and codec in _JPEG_NAMES:
        raise ValueError(
            "refusing JPEG for a mono8 image: JPEG is lossy and smears values across "
            "block edges, which turns class ids at region boundaries into other, "
            "wrong classes; use png"
        )
    extension = ".jpg" if codec in _JPEG_NAMES else ".png"
    if is_mono:
        stored = "mono8"
    else:
        # cv2.imencode assumes BGR, and image_transport subscribers expect bgr8 payloads.
        pixels = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
        stored = "bgr8"
    ok, encoded = cv2.imencode(extension, pixels)
    if not ok:
        raise ValueError(f"cv2.imencode failed for {encoding} {extension}")
    codec_name = "jpeg" if codec in _JPEG_NAMES else "png"
    msg.format = f"{encoding}; {codec_name} compressed {stored}"
    # rosbags messages hold numpy arrays, rclpy ones bytes-like
    msg.data = encoded.reshape(-1) if isinstance(getattr(msg, "data", None), np.ndarray) else encoded.tobytes()
    return msg


def fill_pointcloud2(
    msg: Any,
    cloud: np.ndarray,
    fields: Sequence[FieldSpec],
    point_field_factory: Callable[..., Any],
    *,
    is_dense: bool | None = None,
) -> Any:
    """Fill a PointCloud2(-like) ``msg`` from a structured array and return it.

    A 2-D array gives an organized cloud (height x width), a 1-D array an unorganized one
    (1 x N). ``fields`` must describe ``cloud.dtype`` exactly. ``is_dense`` (no non-finite
    xyz) is computed unless the caller already knows it, e.g. a range-filtered obstacle cloud.
    The header is left to the caller.
    """
    height, width, point_step = cloud_geometry(cloud, fields)

    msg.height = height
    msg.width = width
    msg.fields = [
        point_field_factory(name=f.name, offset=f.offset, datatype=f.datatype, count=f.count)
        for f in fields
    ]
    msg.is_bigendian = False
    msg.point_step = point_step
    msg.row_step = point_step * width
    msg.is_dense = (not has_non_finite_xyz(cloud)) if is_dense is None else bool(is_dense)

    raw = np.ascontiguousarray(cloud).reshape(-1).view(np.uint8)
    data = msg.data
    if isinstance(data, array.array) and data.typecode == "B":
        if len(data) == raw.size and raw.size > 0:
            # A message reused across frames (rclpy converts it at publish() time): overwrite in
            # place, which skips reallocating and page-faulting tens of MB.
            np.frombuffer(data, dtype=np.uint8)[:] = raw
        else:
            # rclpy's setter takes an array.array('B') as is; any other value (bytes, ndarray)
            # is validated element by element in Python: ~340 ms for a 1080p cloud.
            fresh = array.array("B")
            fresh.frombytes(raw.data)  # any C-contiguous buffer: one memcpy, no bytes object
            msg.data = fresh
    else:
        msg.data = raw.tobytes()
    return msg
