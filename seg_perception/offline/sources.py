"""Frame sources for the demo, the camera replay and offline segmentation. ROS-free.

Each source yields (name, RGB uint8 image). `samples` are real photos bundled with
scikit-image (no download): they give the demo and the tests people to find.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from ..wire.images import DEFAULT_IMAGE_LIMITS, ImageLimits, decode_image_file
from .video import DamagedFrame, video_frames

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v")
SAMPLE_NAMES = ("astronaut", "camera", "coffee", "chelsea", "rocket")
"""astronaut: a person (color); camera: the cameraman (grayscale); the rest: no person."""


def sample_photo(name: str) -> np.ndarray:
    import skimage.data  # only needed for the bundled sample photos

    image = getattr(skimage.data, name)()
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    return np.ascontiguousarray(image[..., :3])


def read_image(path: Path, limits: ImageLimits = DEFAULT_IMAGE_LIMITS) -> np.ndarray:
    """An image file as RGB, through the node's decode path and size limit (wire.images).
    Raises ImageFormatError (a ValueError)."""
    return decode_image_file(path, limits)


def frames(source: str, limits: ImageLimits = DEFAULT_IMAGE_LIMITS
           ) -> Iterator[tuple[str, np.ndarray | DamagedFrame]]:
    """'samples', a directory of images, one image file, or a video file (read frame by frame).
    Every image is held to `limits` before it is decoded. A video frame that did not decode
    whole comes as a DamagedFrame naming its problem (offline.video), never as a picture."""
    if source == "samples":
        for name in SAMPLE_NAMES:
            yield name, sample_photo(name)
        return
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in '{path}'")
        for file in files:
            yield file.stem, read_image(file, limits)
        return
    if not path.exists():
        raise ValueError(f"source '{source}' does not exist (expected 'samples', a folder, an image or a video)")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        yield path.stem, read_image(path, limits)
        return
    if path.suffix.lower() in VIDEO_SUFFIXES:
        yield from video_frames(path, limits)
        return
    raise ValueError(f"'{source}': unknown file type {path.suffix!r}")


def pinhole_k(width: int, height: int, horizontal_fov_deg: float = 69.0) -> list[float]:
    """A plausible camera matrix for sources that come without calibration."""
    fx = (width / 2.0) / np.tan(np.radians(horizontal_fov_deg) / 2.0)
    return [float(fx), 0.0, (width - 1) / 2.0, 0.0, float(fx), (height - 1) / 2.0, 0.0, 0.0, 1.0]
