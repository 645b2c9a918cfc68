"""The paired depth image at the mask's size with chosen classes removed, for MoveIt. ROS-free.

MoveIt's DepthImageOctomapUpdater reads a depth image (16UC1 mm or 32FC1 m, packed rows) with
the CameraInfo of its sibling topic, and marks every valid pixel. Removing the pixels of some
classes (the object to grasp, people the arm may touch anyway) keeps them out of the occupancy
map while everything else stays an obstacle. The image keeps the input's encoding so its values
are the camera's own; an excluded pixel becomes that encoding's invalid value (REP 118: 0 for
16UC1, NaN for 32FC1), which the updater skips.
"""
from __future__ import annotations

import cv2
import numpy as np

from .projection import resample_depth

INVALID: dict[str, float] = {"16UC1": 0, "32FC1": float("nan")}
"""REP 118's 'no depth' value of each depth encoding."""


def exclude_lut(class_ids: list[int]) -> np.ndarray:
    """(256,) uint8: 1 at each excluded class id (a mask value), 0 elsewhere."""
    lut = np.zeros(256, np.uint8)
    lut[np.asarray(class_ids, dtype=np.intp)] = 1
    return lut


def filtered_depth(depth: np.ndarray, encoding: str, labels: np.ndarray, excluded: np.ndarray) -> np.ndarray:
    """`depth` (HxW, the encoding's own values) registered to `labels` (the mask, any size over the
    same field of view): resized to the mask by pixel-center nearest neighbour (never
    interpolated: a blend of foreground and background depth is a point in mid air), with every
    pixel whose class is flagged in `excluded` (see `exclude_lut`) set to the encoding's invalid
    value. Always a new C-contiguous array; `depth` is left as it was."""
    if encoding not in INVALID:
        raise ValueError(f"depth encoding must be one of {sorted(INVALID)}, got {encoding!r}")
    if excluded.shape != (256,):
        raise ValueError(f"excluded must be a (256,) lookup table, got shape {excluded.shape}")
    height, width = labels.shape
    resized = resample_depth(depth, width, height)
    out = np.array(resized, dtype=depth.dtype, order="C", copy=True)
    if excluded.any():
        # cv2.LUT is ~10x faster than numpy fancy indexing on a uint8 image.
        drop = cv2.LUT(np.ascontiguousarray(labels), excluded.astype(np.uint8)).view(np.bool_)
        out[drop] = INVALID[encoding]
    return out
