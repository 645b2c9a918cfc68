"""FrameSegmenter: one frame payload in, every array the writers need out.

The same object runs in this process and inside each Ray actor, so a distributed run computes
exactly what a local one does.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..wire.errors import first_line
from ..engine.pipeline import SegmentationOptions, SegmentationPipeline
from .frames import Payload
from .review import Uncertainty, uncertainty


@dataclass
class FrameResult:
    labels: np.ndarray
    """(H, W) uint8 class ids, 255 = unlabeled."""
    confidence: np.ndarray
    """(H, W) uint8, winning class probability * 255."""
    color: np.ndarray | None
    overlay: np.ndarray | None
    source_size: tuple[int, int]
    """(width, height) of the decoded frame."""
    inference_ms: float
    """The engine's time: preprocess, forward, postprocess, colorize (not decoding or writing)."""
    uncertainty: Uncertainty
    frame: np.ndarray | None = None
    """The decoded RGB frame, kept when a writer needs it (CVAT/COCO images, --bag-out)."""

    @property
    def size(self) -> tuple[int, int]:
        return (int(self.labels.shape[1]), int(self.labels.shape[0]))


@dataclass
class BadFrame:
    problem: str


Outcome = FrameResult | BadFrame


class FrameSegmenter:
    def __init__(self, pipeline: SegmentationPipeline, options: SegmentationOptions, keep_frame: bool = False,
                 review_threshold: float = 0.7) -> None:
        self.pipeline = pipeline
        self.options = options
        self.keep_frame = keep_frame
        self.review_threshold = review_threshold

    def __call__(self, payload: Payload) -> Outcome:
        try:
            rgb = payload.decode()
            result = self.pipeline(rgb, self.options)
        except (ValueError, cv2.error) as exc:
            return BadFrame(first_line(exc))
        confidence = result.confidence
        assert confidence is not None  # asked for: want_confidence is never turned off here
        return FrameResult(result.labels, confidence, result.color, result.overlay, (int(rgb.shape[1]), int(rgb.shape[0])),
                           result.timings_ms["total"], uncertainty(confidence, self.review_threshold),
                           rgb if self.keep_frame else None)
