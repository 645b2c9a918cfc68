"""In-process timings: the bare model forward (the floor) and the core pipeline per stage.

Both run in one loop, alternating, so drift of a shared machine (other processes, clocks,
thermal state) hits both alike and their ratio is taken from the same run.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import torch
from sensor_msgs.msg import Image

from seg_perception.wire import cdr
from seg_perception.wire.images import fill_image, image_to_rgb
from seg_perception.model.labels import label_shares
from seg_perception.engine.pipeline import SegmentationOptions, SegmentationPipeline
from seg_perception.engine.preprocess import CpuPreprocessor
from seg_perception.model.base import DeviceLike, Runtime, torch_device
from seg_perception.offline.sources import sample_photo

from .measures import median, percentiles

STAGES: tuple[str, ...] = ("decode", "preprocess", "inference", "postprocess", "colorize", "total")
"""Core pipeline stages; `total` is decode + SegmentationPipeline's own total."""


def photo_at(width: int, height: int) -> np.ndarray:
    """The astronaut photo (a person, so the selfie mask is not trivial) at width x height."""
    photo = sample_photo("astronaut")
    interpolation = cv2.INTER_AREA if width * height < photo.shape[0] * photo.shape[1] else cv2.INTER_LINEAR
    return cv2.resize(photo, (width, height), interpolation=interpolation)


def rgb8_message(rgb: np.ndarray) -> Image:
    """A real sensor_msgs Image, filled the way a driver (and rclpy's deserializer) leaves it:
    data is an array.array of bytes."""
    msg = Image()
    msg.header.frame_id = "camera_color_optical_frame"
    fill_image(msg, rgb, "rgb8")
    return msg


def sync(device: DeviceLike) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(torch_device(device))


def model_input(runtime: Runtime, rgb: np.ndarray) -> Any:
    """The real photo preprocessed to the model's input size, in the form, device and dtype
    the runtime takes (numpy for an array_io runtime)."""
    batch, _ = CpuPreprocessor(runtime.spec)(rgb)
    if getattr(runtime, "array_io", False):
        return batch.astype(runtime.dtype, copy=True)
    import torch

    return torch.from_numpy(batch.copy()).to(device=torch_device(runtime.device), dtype=runtime.dtype)


class BareForward:
    """Times the model alone on one prepared input: the floor, re-measurable around each node
    run because this machine's speed drifts between minutes."""

    def __init__(self, runtime: Runtime, rgb: np.ndarray) -> None:
        self.runtime = runtime
        self.batch = model_input(runtime, rgb)

    def once(self) -> float:
        with torch.inference_mode():
            start = time.perf_counter()
            self.runtime(self.batch)
            sync(self.runtime.device)
            return (time.perf_counter() - start) * 1e3

    def __call__(self, iterations: int = 20, warmup: int = 3) -> float:
        """Median ms over `iterations` forwards."""
        times = [self.once() for _ in range(warmup + iterations)]
        return median(times[warmup:])


def node_like_pipeline(runtime: Runtime) -> SegmentationPipeline:
    """The pipeline as segmentation_node builds it: full-size buffers reused across frames."""
    return SegmentationPipeline(runtime, reuse_buffers=True)


@dataclass
class CoreResult:
    size: tuple[int, int]
    iterations: int
    backend: str
    bare_forward_ms: float
    """median of the bare forwards"""
    stages_ms: dict[str, float]
    """median of each stage (each its own median: the stages need not add up to total)"""
    total_p95_ms: float
    ratio: float
    """median total / median bare forward, both from this loop"""
    mask_only_ms: float
    """decode + pipeline with the mask only (no confidence, color or overlay): what Nav2 takes"""
    mask_only_ratio: float
    label_share: dict[int, float] = field(default_factory=dict)
    """fraction of pixels per class id in the last mask: shows the mask is not trivial"""


def measure_core(runtime: Runtime, pipeline: SegmentationPipeline, size: tuple[int, int],
                 iterations: int, warmup: int = 5) -> CoreResult:
    rgb = photo_at(*size)
    # What the node's raw subscription receives: the CDR bytes, read in place (wire.cdr).
    wire = cdr.image_bytes(cdr.header(0, 0, "camera_color_optical_frame"), rgb, "rgb8")
    bare_forward = BareForward(runtime, rgb)
    options = SegmentationOptions(want_color=True, want_overlay=True)
    mask_only = SegmentationOptions(want_confidence=False)
    bare: list[float] = []
    masks: list[float] = []
    stages: dict[str, list[float]] = {name: [] for name in STAGES}
    result = None
    for index in range(warmup + iterations):
        forward_ms = bare_forward.once()
        start = time.perf_counter()
        pipeline(image_to_rgb(cdr.read_image(wire)), mask_only)
        mask_ms = (time.perf_counter() - start) * 1e3
        start = time.perf_counter()
        decoded = image_to_rgb(cdr.read_image(wire))
        decode_ms = (time.perf_counter() - start) * 1e3
        result = pipeline(decoded, options)
        total_ms = (time.perf_counter() - start) * 1e3
        if index < warmup:
            continue
        bare.append(forward_ms)
        masks.append(mask_ms)
        stages["decode"].append(decode_ms)
        for name in ("preprocess", "inference", "postprocess", "colorize"):
            stages[name].append(result.timings_ms[name])
        stages["total"].append(total_ms)
    assert result is not None
    counts = label_shares(result.labels)
    bare_ms = median(bare)
    medians = {name: median(values) for name, values in stages.items()}
    return CoreResult(size=size, iterations=iterations, backend=pipeline.backend, bare_forward_ms=bare_ms,
                      stages_ms=medians, total_p95_ms=percentiles(stages["total"], (95,))["p95"],
                      ratio=medians["total"] / bare_ms, mask_only_ms=median(masks),
                      mask_only_ratio=median(masks) / bare_ms,
                      label_share={int(i): float(counts[i]) for i in np.flatnonzero(counts)})
