"""PointCloud2 byte layouts, with no ROS import (wire.cdr writes the messages).

The labelled cloud is organized (height x width equal to the label map, row-major pixel order),
which the Nav2 semantic segmentation layer requires; the obstacle cloud is unorganized xyz for
the stock Nav2 obstacle/voxel layers.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import cv2
import numpy as np


__all__ = [
    "FLOAT32",
    "FLOAT64",
    "INT8",
    "INT16",
    "INT32",
    "LABELLED_DTYPE",
    "LABELLED_FIELDS",
    "LABELLED_POINT_STEP",
    "UINT8",
    "UINT16",
    "UINT32",
    "XYZ_DTYPE",
    "XYZ_FIELDS",
    "XYZ_POINT_STEP",
    "FieldSpec",
    "cloud_geometry",
    "fields_dtype",
    "has_non_finite_xyz",
    "labelled_cloud_array",
    "pack_rgb",
    "xyz_cloud_array",
]

# sensor_msgs/PointField datatype constants.
INT8 = 1
UINT8 = 2
INT16 = 3
UINT16 = 4
INT32 = 5
UINT32 = 6
FLOAT32 = 7
FLOAT64 = 8

_NUMPY_TYPES: dict[int, str] = {
    INT8: "i1", UINT8: "u1", INT16: "i2", UINT16: "u2",
    INT32: "i4", UINT32: "u4", FLOAT32: "f4", FLOAT64: "f8",
}


def check_points_labels(points_hw3: np.ndarray, labels_hw: np.ndarray) -> None:
    """An organized HxWx3 cloud and the uint8 label map it belongs to, pixel for pixel."""
    if points_hw3.ndim != 3 or points_hw3.shape[2] != 3:
        raise ValueError(f"points must be HxWx3, got shape {points_hw3.shape}")
    if labels_hw.shape != points_hw3.shape[:2]:
        raise ValueError(
            f"labels shape {labels_hw.shape} does not match points {points_hw3.shape[:2]}"
        )
    if labels_hw.dtype != np.uint8:
        raise TypeError(f"labels must be uint8 class ids, got {labels_hw.dtype}")


class FieldSpec(NamedTuple):
    """One PointField, ROS-free. ``count`` is always 1 in the layouts we publish."""

    name: str
    offset: int
    datatype: int
    count: int = 1  # type: ignore[assignment]  # PointField's name; shadows tuple.count


# rgb is FLOAT32 holding the bits of uint32 0x00RRGGBB: the PCL/RViz convention, which RViz's
# "RGB8" color transformer and pcl::PointXYZRGB expect; a UINT32 rgb field is not decoded by them.
LABELLED_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("x", 0, FLOAT32),
    FieldSpec("y", 4, FLOAT32),
    FieldSpec("z", 8, FLOAT32),
    FieldSpec("rgb", 12, FLOAT32),
    FieldSpec("label", 16, UINT32),
)
LABELLED_POINT_STEP = 20

# xyz only: stock Nav2 obstacle/voxel layers read nothing else, and the class of each point is
# already in the labelled cloud. 12 bytes a point keeps this high-rate topic small.
XYZ_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("x", 0, FLOAT32),
    FieldSpec("y", 4, FLOAT32),
    FieldSpec("z", 8, FLOAT32),
)
XYZ_POINT_STEP = 12


def fields_dtype(
    fields: Sequence[Any], point_step: int, is_bigendian: bool = False
) -> np.dtype:
    """Numpy structured dtype of one point described by PointField-like ``fields``."""
    order = ">" if is_bigendian else "<"
    names: list[str] = []
    formats: list[str] = []
    offsets: list[int] = []
    for field in fields:
        if field.datatype not in _NUMPY_TYPES:
            raise ValueError(f"field {field.name!r} has unknown datatype {field.datatype}")
        base = order + _NUMPY_TYPES[field.datatype]
        names.append(field.name)
        formats.append(base if field.count == 1 else f"({field.count},){base}")
        offsets.append(field.offset)
    return np.dtype(
        {"names": names, "formats": formats, "offsets": offsets, "itemsize": point_step}
    )


LABELLED_DTYPE = fields_dtype(LABELLED_FIELDS, LABELLED_POINT_STEP)
XYZ_DTYPE = fields_dtype(XYZ_FIELDS, XYZ_POINT_STEP)


def pack_rgb(palette_lut: np.ndarray) -> np.ndarray:
    """(256,) uint32 0x00RRGGBB from a (256, 3) uint8 RGB palette."""
    if palette_lut.shape != (256, 3):
        raise ValueError(f"palette must have shape (256, 3), got {palette_lut.shape}")
    rgb = palette_lut.astype(np.uint32)
    return (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]


def labelled_cloud_array(
    points_hw3: np.ndarray, labels_hw: np.ndarray, palette_lut: np.ndarray
) -> np.ndarray:
    """(H, W) array of :data:`LABELLED_DTYPE`: xyz, the palette color of each label, the label."""
    check_points_labels(points_hw3, labels_hw)
    height, width = labels_hw.shape
    if labels_hw.size == 0:
        return np.empty((height, width), dtype=LABELLED_DTYPE)
    # Every field is 4 bytes, so a record is five 32-bit words. cv2.merge interleaves them ~2x
    # faster than numpy strided assignment, and copies words as raw bits, so packed rgb and the
    # integer label (tiny or denormal when read as float32) reach the buffer unchanged.
    rgb = pack_rgb(palette_lut).take(labels_hw)
    label = labels_hw.astype(np.uint32)
    words = cv2.merge([
        np.ascontiguousarray(points_hw3, dtype=np.float32),
        rgb.view(np.float32),
        label.view(np.float32),
    ])
    return words.view(LABELLED_DTYPE).reshape(height, width)


def xyz_cloud_array(points_n3: np.ndarray) -> np.ndarray:
    """(N,) array of :data:`XYZ_DTYPE` from Nx3 points; a view, no copy, when they are float32."""
    if points_n3.ndim != 2 or points_n3.shape[1] != 3:
        raise ValueError(f"points must be Nx3, got shape {points_n3.shape}")
    return np.ascontiguousarray(points_n3, dtype=np.float32).view(XYZ_DTYPE).reshape(-1)


def has_non_finite_xyz(cloud: np.ndarray) -> bool:
    # z first: an invalid point of ours is NaN in all three, so one field usually decides.
    for name in ("z", "x", "y"):
        if name in (cloud.dtype.names or ()) and not np.isfinite(cloud[name]).all():
            return True
    return False


def cloud_geometry(cloud: np.ndarray, fields: Sequence[FieldSpec]) -> tuple[int, int, int]:
    """(height, width, point_step) of the PointCloud2 holding the structured array `cloud`: 2-D
    organized, 1-D unorganized (1 x N). Raises unless `fields` describe `cloud.dtype` exactly."""
    if cloud.dtype.names is None:
        raise TypeError("cloud must be a structured array (see labelled_cloud_array)")
    if cloud.ndim == 2:
        height, width = cloud.shape
    elif cloud.ndim == 1:
        height, width = 1, cloud.shape[0]
    else:
        raise ValueError(f"cloud must be 1-D or 2-D, got shape {cloud.shape}")
    point_step = cloud.dtype.itemsize
    try:
        expected = fields_dtype(fields, point_step)
    except ValueError as exc:  # fields that do not even fit in one point of this array
        raise ValueError(f"cloud dtype {cloud.dtype} does not match fields {list(fields)}: {exc}") from exc
    if cloud.dtype != expected:
        raise ValueError(f"cloud dtype {cloud.dtype} does not match fields {expected}")
    return int(height), int(width), point_step
