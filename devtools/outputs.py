"""Test data for segment_offline (small sample photos, a photo folder, a run) and readers for what it writes, shared by its tests."""
from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np


def read_rows(path: Path) -> list[dict[str, str]]:
    """A CSV file (index.csv, review.csv) as one dict per row."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def read_unchanged(path: Path) -> np.ndarray:
    """An image file as stored: mono8 masks stay 2-D, color images are BGR."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None, path
    return image


PHOTO_SIZE = (96, 96)
"""The sample photos shrunk for segment_offline tests: seconds per run on a CPU."""


def small_photo(name: str, size: tuple[int, int] = PHOTO_SIZE) -> np.ndarray:
    """A bundled sample photo (RGB) resized to `size`."""
    from seg_perception.offline.sources import sample_photo

    return cv2.resize(sample_photo(name), size, interpolation=cv2.INTER_AREA)


def write_photos(folder: Path, names: Sequence[str] = ("astronaut", "coffee", "camera")) -> Path:
    """`folder`/<name>.png for each sample photo (small_photo), for segment_offline to read."""
    for name in names:
        cv2.imwrite(str(folder / f"{name}.png"), cv2.cvtColor(small_photo(name), cv2.COLOR_RGB2BGR))
    return folder


def segment_offline(*args: Any) -> int:
    """segment_offline's main() with `args` (any values, turned into text), its exit code."""
    from seg_perception.apps import segment_offline as app

    return app.main(["segment_offline", *map(str, args)])
