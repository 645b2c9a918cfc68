"""CameraInfo fields checked before they project anything, with no ROS import.

A calibration is a file someone typed or a driver filled: a NaN or 1e30 principal point
makes every projected point NaN (an empty obstacle cloud: "no obstacles"), an infinite focal
length puts every point on the optical axis. Both look like valid clouds downstream. This
module refuses such a calibration with a reason, so the node can say so instead of
publishing the degenerate cloud.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from .text import wire_text


__all__ = ["CalibrationError", "DISTORTION_LENGTHS", "Intrinsics", "check_distortion", "MAX_FOCAL_PER_WIDTH", "intrinsics_from_camera_info", "scale_camera_info"]

MAX_FOCAL_PER_WIDTH: Final = 1000.0
"""fx / width above this is a field of view under 0.06 degrees: no robot camera, a typo."""
_ASPECT_TOLERANCE: Final = 0.02


def _scale_center(c: float, s: float) -> float:
    return (c + 0.5) * s - 0.5


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics of an image of ``width`` x ``height`` pixels."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self) -> None:
        if not all(math.isfinite(v) for v in (self.fx, self.fy, self.cx, self.cy)):
            # NaN makes every point NaN, inf puts every point on the optical axis: both look like
            # a valid, empty or degenerate cloud downstream. See intrinsics_from_camera_info below.
            raise ValueError(f"intrinsics must be finite, got fx={self.fx}, fy={self.fy}, "
                             f"cx={self.cx}, cy={self.cy}")
        if not (self.fx > 0.0 and self.fy > 0.0):
            # An all-zero K is what an uncalibrated driver publishes; projecting with it divides by 0.
            raise ValueError(f"focal lengths must be > 0, got fx={self.fx}, fy={self.fy}")
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"image size must be positive, got {self.width}x{self.height}")

    @classmethod
    def from_camera_info_k(cls, k: Sequence[float], width: int, height: int) -> Intrinsics:
        """From a row-major 3x3 ``CameraInfo.k`` and the image size it belongs to."""
        if len(k) != 9:
            raise ValueError(f"K must have 9 elements, got {len(k)}")
        return cls(
            fx=float(k[0]), fy=float(k[4]), cx=float(k[2]), cy=float(k[5]),
            width=int(width), height=int(height),
        )

    def scaled(self, width: int, height: int) -> Intrinsics:
        """Intrinsics of the same view resized to ``width`` x ``height`` (pixel-center aligned)."""
        if width == self.width and height == self.height:
            return self
        sx = width / self.width
        sy = height / self.height
        return Intrinsics(
            fx=self.fx * sx, fy=self.fy * sy,
            cx=_scale_center(self.cx, sx), cy=_scale_center(self.cy, sy),
            width=int(width), height=int(height),
        )


def scale_camera_info(
    k: Sequence[float],
    p: Sequence[float],
    width: int,
    height: int,
    new_width: int,
    new_height: int,
) -> tuple[list[float], list[float]]:
    """K (9) and P (12) for the image resized from ``width`` x ``height`` to the new size.

    Pixel-center aligned like :meth:`Intrinsics.scaled`. The skew term and P's Tx (``-fx' * B``)
    scale with ``sx``, Ty with ``sy``; the third rows are unchanged.
    """
    if len(k) != 9 or len(p) != 12:
        raise ValueError(f"expected K of 9 and P of 12 elements, got {len(k)} and {len(p)}")
    if min(width, height, new_width, new_height) <= 0:
        raise ValueError("image sizes must be positive")
    sx = new_width / width
    sy = new_height / height
    k_new = [float(v) for v in k]
    k_new[0] *= sx
    k_new[1] *= sx
    k_new[2] = _scale_center(k_new[2], sx)
    k_new[4] *= sy
    k_new[5] = _scale_center(k_new[5], sy)
    p_new = [float(v) for v in p]
    p_new[0] *= sx
    p_new[1] *= sx
    p_new[2] = _scale_center(p_new[2], sx)
    p_new[3] *= sx
    p_new[5] *= sy
    p_new[6] = _scale_center(p_new[6], sy)
    p_new[7] *= sy
    return k_new, p_new


class CalibrationError(ValueError):
    """A CameraInfo that cannot be used to project depth."""


# sensor_msgs/distortion_models.hpp -> coefficients; OpenCV's longest model has 14.
DISTORTION_LENGTHS: Final[dict[str, tuple[int, ...]]] = {
    "plumb_bob": (5,), "rational_polynomial": (8,), "equidistant": (4,), "": (0,),
}
MAX_DISTORTION_COEFFICIENTS: Final = 14


def check_distortion(model: str, length: int) -> None:
    """A D of the length its model has (plumb_bob 5, rational_polynomial 8, equidistant 4; an
    empty model with an empty D), or at most 14 for a model we do not know. Checked before D is
    read: a CameraInfo may carry a million coefficients, which would otherwise be read and
    republished with every frame.

    Raises:
        CalibrationError: the length does not fit the model."""
    name = model.strip().lower() if isinstance(model, str) else ""
    known = DISTORTION_LENGTHS.get(name)
    if known is not None and length in known:
        return
    if (known is None or name == "") and length <= MAX_DISTORTION_COEFFICIENTS:
        return  # a model we do not know, or none named (some drivers fill D anyway)
    expected = str(known[0]) if known is not None and name else f"at most {MAX_DISTORTION_COEFFICIENTS}"
    raise CalibrationError(f"D has {length} coefficients; distortion_model {wire_text(model)} has {expected}")


def _finite(name: str, values: Sequence[float]) -> list[float]:
    out = [float(v) for v in values]
    bad = [i for i, v in enumerate(out) if not math.isfinite(v)]
    if bad:
        raise CalibrationError(f"{name} has non-finite entries at {bad}: {[out[i] for i in bad]}")
    return out


def intrinsics_from_camera_info(
    k: Sequence[float],
    width: int,
    height: int,
    image_width: int,
    image_height: int,
    d: Sequence[float] = (),
    p: Sequence[float] = (),
    distortion_model: str = "",
) -> Intrinsics:
    """Intrinsics of the image (``image_width`` x ``image_height``) a CameraInfo describes.

    ``width``/``height`` are the CameraInfo's own; 0 (unset, as some drivers leave it) means
    the image's size. A calibration made at another resolution of the same view is scaled
    (see :meth:`Intrinsics.scaled`); one of another aspect ratio is refused, since it
    belongs to a different camera mode.

    Raises:
        CalibrationError: D longer than its ``distortion_model`` has (see check_distortion),
            K, D or P not finite, K not 9 / P not 12 entries, focal lengths not
            positive or absurdly long, principal point far outside the image, or sizes that
            do not belong together.
    """
    if len(k) != 9:
        raise CalibrationError(f"K must have 9 entries, got {len(k)}")
    check_distortion(distortion_model, len(d))
    if p and len(p) != 12:
        raise CalibrationError(f"P must have 12 entries, got {len(p)}")
    kk = _finite("K", k)
    _finite("D", d)
    _finite("P", p)
    if image_width <= 0 or image_height <= 0:
        raise CalibrationError(f"image size must be positive, got {image_width}x{image_height}")
    if width < 0 or height < 0:
        raise CalibrationError(f"camera_info size must not be negative, got {width}x{height}")
    if (width == 0) != (height == 0):
        raise CalibrationError(f"camera_info size {width}x{height} is half set")
    w, h = (width, height) if width else (image_width, image_height)
    if abs((w / h) / (image_width / image_height) - 1.0) > _ASPECT_TOLERANCE:
        raise CalibrationError(
            f"camera_info is {w}x{h} but the image is {image_width}x{image_height}: "
            "a different aspect ratio, so another camera mode"
        )
    fx, fy, cx, cy = kk[0], kk[4], kk[2], kk[5]
    if not (fx > 0.0 and fy > 0.0):
        raise CalibrationError(f"focal lengths must be > 0, got fx={fx}, fy={fy} (an uncalibrated camera?)")
    if fx > MAX_FOCAL_PER_WIDTH * w or fy > MAX_FOCAL_PER_WIDTH * h:
        raise CalibrationError(
            f"focal lengths fx={fx:g}, fy={fy:g} exceed {MAX_FOCAL_PER_WIDTH:g} x the image size {w}x{h}"
        )
    if not (-w <= cx <= 2 * w and -h <= cy <= 2 * h):
        raise CalibrationError(
            f"principal point ({cx:g}, {cy:g}) lies more than an image size outside the {w}x{h} image"
        )
    return Intrinsics(fx=fx, fy=fy, cx=cx, cy=cy, width=w, height=h).scaled(image_width, image_height)
