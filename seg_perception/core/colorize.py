"""Palette lookup and alpha overlay, on uint8 maps (numpy/OpenCV) or torch tensors (device).

Classes whose palette color is black, and unlabeled pixels, are left out of the overlay:
they are "background" to a viewer, and blending black over them would only darken the frame.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

from .labels import UNLABELED

if TYPE_CHECKING:
    import torch


def drawn_lut(palette: np.ndarray) -> np.ndarray:
    """(256,) uint8, 255 where a mask value is painted in the overlay."""
    lut = np.where(palette.any(axis=1), 255, 0).astype(np.uint8)
    lut[UNLABELED] = 0
    return lut


def colorize(labels: np.ndarray, palette: np.ndarray, out: np.ndarray | None = None,
             scratch: np.ndarray | None = None) -> np.ndarray:
    """(H, W) uint8 ids -> (H, W, 3) uint8 RGB via a (256, 3) palette.

    `out` (H, W, 3) and `scratch` (H, W, 3, used as three planes) uint8 buffers are written in
    place when given: at 1080p, fresh 6 MB arrays cost more in page faults than the lookup.
    """
    # Three single-channel LUTs then one interleave: ~1.3 ms at 1080p, against ~1.9 ms for a
    # 3-channel LUT over merged labels.
    planes = (None, None, None) if scratch is None else tuple(
        scratch.reshape(3, *labels.shape)[c] for c in range(3))
    channels = [cv2.LUT(labels, np.ascontiguousarray(palette[:, c]), dst=planes[c]) for c in range(3)]
    return cv2.merge(channels, dst=out)


def overlay(image: np.ndarray, color: np.ndarray, labels: np.ndarray, palette: np.ndarray,
            alpha: float, out: np.ndarray | None = None, scratch: np.ndarray | None = None,
            mask: np.ndarray | None = None) -> np.ndarray:
    """Blend `color` over `image` with weight alpha where the class is drawn.

    Optional buffers, written in place: out and scratch (H, W, 3), mask (H, W), all uint8.
    """
    if image.shape != color.shape:
        raise ValueError(f"image {image.shape} and color mask {color.shape} differ in size")
    drawn = cv2.LUT(labels, drawn_lut(palette), dst=mask)
    if out is None:
        out = np.array(image, copy=True, order="C")
    else:
        np.copyto(out, image)
    # Blend only the rows that hold painted pixels (full-width rows stay contiguous views).
    _, top, _, rows = cv2.boundingRect(drawn)
    if rows == 0:
        return out
    band = slice(top, top + rows)
    blended = cv2.addWeighted(image[band], 1.0 - alpha, color[band], alpha, 0.0,
                              dst=None if scratch is None else scratch[band])
    cv2.copyTo(blended, drawn[band], out[band])
    return out


def colorize_torch(labels: torch.Tensor, palette: torch.Tensor) -> torch.Tensor:
    """Device version of colorize: labels (H, W) uint8, palette (256, 3) uint8 on the same device."""
    return palette.index_select(0, labels.reshape(-1).long()).reshape(*labels.shape, 3)


def overlay_torch(image: torch.Tensor, color: torch.Tensor, labels: torch.Tensor,
                  drawn: torch.Tensor, alpha: float) -> torch.Tensor:
    """Device version of overlay: drawn is the (256,) bool 'is painted' table."""
    import torch

    blended = (image.float() * (1.0 - alpha) + color.float() * alpha).round_().to(torch.uint8)
    mask = drawn.index_select(0, labels.reshape(-1).long()).reshape(*labels.shape, 1)
    return torch.where(mask, blended, image)
