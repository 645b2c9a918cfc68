"""Which frames need a human most: per-frame uncertainty and review.csv, worst first.

Two numbers per frame, both from the confidence map (winning class probability * 255):
the mean confidence, and the share of pixels whose confidence is below a threshold. Frames are
ranked by the low-confidence share (how much of the frame to fix), then by mean confidence.
"""
from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REVIEW_FILE = "review.csv"
REVIEW_HEADER = ["rank", "name", "low_confidence_share", "mean_confidence", "share_unlabeled", "source", "stamp",
                 "origin"]


@dataclass(frozen=True)
class Uncertainty:
    mean_confidence: float
    """0..1"""
    low_confidence_share: float
    """Fraction of pixels whose winning probability is below the review threshold."""


def uncertainty(confidence: np.ndarray, threshold: float) -> Uncertainty:
    total = max(int(confidence.size), 1)
    # Integer compare on the uint8 map: probability < threshold  <=>  conf < threshold*255.
    low = int(np.count_nonzero(confidence < np.float32(threshold * 255.0)))
    return Uncertainty(float(confidence.mean(dtype=np.float64)) / 255.0, low / total)


def ranked(rows: Sequence[dict[str, str]]) -> list[dict[str, str]]:
    """Index rows, worst first: most low-confidence pixels, then lowest mean confidence, then name."""
    return sorted(rows, key=lambda r: (-float(r["low_confidence_share"]), float(r["mean_confidence"]), r["name"]))


def write_review(out: Path, rows: Sequence[dict[str, str]]) -> Path:
    path = out / REVIEW_FILE
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(REVIEW_HEADER)
        for rank, row in enumerate(ranked(rows), 1):
            writer.writerow([rank, *(row.get(k, "") for k in REVIEW_HEADER[1:])])
    tmp.replace(path)
    return path
