"""Readers for what segment_offline writes, shared by its tests."""
from __future__ import annotations

import csv
from pathlib import Path

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
