"""One camera frame through the whole engine, with no ROS: the node's per-frame work.

`FrameProcessor.process_batch` takes color image messages (raw or compressed, duck-typed like
`wire.images`) with their color CameraInfo, decodes and segments them and checks each
calibration against its image; `add_clouds` then takes the depth frame the caller paired with a
frame (after inference, so a depth camera slightly behind the color one has that long to catch
up), projects it and builds the labelled and obstacle cloud arrays. Every stage reports its own
outcome in `FrameStatus`, so a caller can count, log and diagnose a depth fault as a depth fault:
a bad depth image or calibration never fails the color outputs.

The node, the benchmarks and the profiler all drive this class; tests drive it without DDS.
"""
from __future__ import annotations

import enum
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..wire import pointcloud2 as clouds
from . import projection
from ..wire.calibration import CalibrationError, intrinsics_from_camera_info
from ..wire.images import (DEFAULT_IMAGE_LIMITS, ImageFormatError, ImageLimits, compressed_to_rgb, depth_to_meters,
                          image_to_rgb)
from ..model.labels import ClassMap
from .pipeline import SegmentationOptions, SegmentationPipeline, SegmentationResult
from ..model.loader import load_model, warm_up
from ..model.runtimes.triton import TritonOptions


class DepthStatus(enum.Enum):
    """What happened to the depth half of a frame. Only the last four are problems."""

    NOT_WANTED = "no cloud wanted"
    OK = "ok"
    UNPAIRED = "no depth image with a matching stamp"
    REJECTED = "depth image rejected"
    NO_INTRINSICS = "no camera_info for the depth image"
    BAD_INTRINSICS = "depth camera_info unusable"

    @property
    def is_problem(self) -> bool:
        return self not in (DepthStatus.NOT_WANTED, DepthStatus.OK)

    @property
    def counter(self) -> str | None:
        """The `NodeStats.depth_result` counter of a problem (calibration covers both kinds)."""
        return {DepthStatus.UNPAIRED: "unpaired", DepthStatus.REJECTED: "rejected",
                DepthStatus.NO_INTRINSICS: "calibration", DepthStatus.BAD_INTRINSICS: "calibration"}.get(self)


@dataclass(frozen=True)
class FrameRequest:
    """What one frame should produce (the node derives it from parameters and subscribers)."""

    output_size: str | tuple[int, int] = "input"
    confidence_threshold: float = 0.0
    overlay_alpha: float = 0.5
    confidence: bool = True
    color: bool = False
    overlay: bool = False
    points: bool = False
    """The organized labelled cloud (x y z rgb label), one point per mask pixel."""
    obstacle_points: bool = False
    min_range: float = 0.1
    max_range: float = 10.0
    voxel_size: float = 0.0
    limits: ImageLimits = DEFAULT_IMAGE_LIMITS
    """The largest color or depth image decoded (parameter max_image_pixels)."""

    @property
    def clouds(self) -> bool:
        return self.points or self.obstacle_points


@dataclass(frozen=True)
class DepthFrame:
    """A REP 118 depth image (16UC1 mm or 32FC1 m) and the CameraInfo-like calibration to project
    it with (``k``, ``width``, ``height``); `info` None means none has arrived."""

    image: Any
    info: Any | None
    info_topic: str = "depth/camera_info"
    """Where `info` came from, to name it when it is refused."""


@dataclass
class FrameStatus:
    image_error: str = ""
    """Why the color image was rejected (then nothing else ran); empty when it was decoded."""
    image_error_kind: str = ""
    """The kind of that problem (ImageFormatError.kind), stable across frames: for log throttling."""
    depth: DepthStatus = DepthStatus.NOT_WANTED
    depth_error: str = ""
    """The detail of a depth problem, for the log."""
    camera_info_error: str = ""
    """Why the color camera_info given with the frame is unusable (then it is not republished)."""


@dataclass
class FrameOutputs:
    status: FrameStatus
    segmentation: SegmentationResult | None = None
    labelled_cloud: np.ndarray | None = None
    """(H, W) structured array of `clouds.LABELLED_FIELDS`, aligned with the mask."""
    obstacle_cloud: np.ndarray | None = None
    """(N,) structured array of `clouds.XYZ_FIELDS`."""
    cloud_frame_id: str = ""
    """Clouds are in the depth camera's frame (its header's frame_id), stamped as the color frame."""
    camera_info: Any | None = None
    """The frame's color camera_info once checked against the image; None when none was given or
    it is unusable (`status.camera_info_error` says why)."""
    timings_ms: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class FrameInput:
    """One camera's frame for `FrameProcessor.process_batch`."""

    image: Any
    request: FrameRequest
    camera_info: Any | None = None
    """The color CameraInfo-like calibration for this frame (``k``, ``d``, ``p``, ``width``,
    ``height``), checked once here; None when none has arrived."""
    camera_info_topic: str = "camera_info"
    """Where `camera_info` came from, to name it when it is refused."""


def _segmentation_options(request: FrameRequest) -> SegmentationOptions:
    return SegmentationOptions(
        output_size=request.output_size, confidence_threshold=request.confidence_threshold,
        want_confidence=request.confidence, want_color=request.color, want_overlay=request.overlay,
        overlay_alpha=request.overlay_alpha)


def checked_camera_info(info: Any, placement: Any, topic: str) -> tuple[Any | None, str]:
    """(info, "") when `info` can project the image `placement` came from, else (None, why)."""
    try:
        intrinsics_from_camera_info(list(info.k), int(info.width), int(info.height), placement.src_w,
                                    placement.src_h, getattr(info, "d", ()), list(getattr(info, "p", ())),
                                    str(getattr(info, "distortion_model", "")))
    except CalibrationError as exc:
        return None, f"{topic}: {exc}"
    return info, ""


def decode_color(image: Any, limits: ImageLimits = DEFAULT_IMAGE_LIMITS) -> np.ndarray:
    """HxWx3 uint8 RGB from a raw or compressed image message (`format` tells them apart)."""
    return compressed_to_rgb(image, limits) if hasattr(image, "format") else image_to_rgb(image, limits)


class FrameProcessor:
    """Segmentation + depth projection + clouds for one camera stream. Not thread-safe: one
    engine thread calls `process`; `class_map` may be swapped between calls."""

    def __init__(self, pipeline: SegmentationPipeline, class_map: ClassMap | None = None) -> None:
        self.pipeline = pipeline
        self.class_map = class_map or pipeline.class_map
        self._rays = projection.RayCache()

    @classmethod
    def load(cls, model: str, device: str = "auto", fp16: bool = False, description: str | None = None,
             warmup_iterations: int = 3, obstacles: list[str] | None = None,
             reuse_buffers: bool = True, triton: TritonOptions | None = None,
             cpu_threads: int = 0) -> FrameProcessor:
        """Load and warm up a model (call on the thread that will run it). `obstacles` None keeps
        the model's own obstacle classes; `cpu_threads` (0 = one per core) is the model's thread
        count on the CPU. Raises ModelLoadError, DeviceError or ValueError."""
        runtime = load_model(model, device, fp16=fp16, description=description, triton=triton,
                             cpu_threads=cpu_threads)
        try:
            class_map = runtime.spec.classes
            if obstacles is not None:
                unknown = [c for c in obstacles if c not in class_map.names]
                if unknown:
                    raise ValueError(f"obstacle_classes {unknown} are not classes of the model {class_map.names}")
                class_map = class_map.with_obstacles(obstacles)
            warm_up(runtime, warmup_iterations)
        except BaseException:
            runtime.close()
            raise
        return cls(SegmentationPipeline(runtime, reuse_buffers=reuse_buffers), class_map)

    def process(self, image: Any, request: FrameRequest, depth: DepthFrame | None = None,
                camera_info: Any | None = None) -> FrameOutputs:
        """One frame: segmented, its calibration checked and, when the request wants clouds, the
        clouds of `depth` (None: no depth frame was paired with it)."""
        out = next(self.process_batch([FrameInput(image, request, camera_info)]))
        self.add_clouds(out, request, depth)
        return out

    def process_batch(self, frames: Sequence[FrameInput]) -> Iterator[FrameOutputs]:
        """Frames of several cameras: decoded one by one, segmented with one forward, each one's
        calibration checked. Outputs come in order, one at a time (with reused buffers a frame's
        arrays are valid until the next is taken: publish before asking for the next)."""
        decoded: list[tuple[int, np.ndarray, float]] = []
        rejected: dict[int, FrameOutputs] = {}
        for index, frame in enumerate(frames):
            t0 = time.perf_counter()
            try:
                decoded.append((index, decode_color(frame.image, frame.request.limits), (time.perf_counter() - t0) * 1e3))
            except ImageFormatError as exc:
                rejected[index] = FrameOutputs(FrameStatus(image_error=str(exc), image_error_kind=exc.kind))
        results = self.pipeline.run_batch(
            [rgb for _, rgb, _ in decoded],
            [_segmentation_options(frames[index].request) for index, _, _ in decoded]) if decoded else iter(())
        next_decoded = iter(decoded)
        for index, frame in enumerate(frames):
            if index in rejected:
                yield rejected[index]
                continue
            _, _, decode_ms = next(next_decoded)
            result = next(results)
            outputs = FrameOutputs(FrameStatus(), result)
            outputs.timings_ms.update(result.timings_ms, decode=decode_ms)
            if frame.camera_info is not None:
                outputs.camera_info, outputs.status.camera_info_error = checked_camera_info(
                    frame.camera_info, result.placement, frame.camera_info_topic)
            yield outputs

    def add_clouds(self, out: FrameOutputs, request: FrameRequest, depth: DepthFrame | None) -> None:
        """The clouds `request` wants for a segmented frame, from the depth frame paired with it
        (None: none was); nothing for a rejected frame or a request without clouds."""
        if out.segmentation is None or not request.clouds:
            return
        t0 = time.perf_counter()
        self._clouds(out, request, depth)
        out.timings_ms["clouds"] = (time.perf_counter() - t0) * 1e3

    def _clouds(self, out: FrameOutputs, request: FrameRequest, frame: DepthFrame | None) -> None:
        status = out.status
        assert out.segmentation is not None
        labels = out.segmentation.labels
        if frame is None:
            status.depth = DepthStatus.UNPAIRED
            return
        try:
            depth_m = depth_to_meters(frame.image, request.limits)
        except ImageFormatError as exc:
            status.depth, status.depth_error = DepthStatus.REJECTED, str(exc)
            return
        if frame.info is None:
            status.depth = DepthStatus.NO_INTRINSICS
            status.depth_error = "neither depth/camera_info nor camera_info has arrived: cannot project"
            return
        h, w = labels.shape
        info = frame.info
        try:
            # Never a cloud from a calibration that makes it empty (NaN principal point) or
            # degenerate (infinite focal length): refused with the reason instead.
            intrinsics = intrinsics_from_camera_info(
                list(info.k), int(info.width), int(info.height), depth_m.shape[1], depth_m.shape[0],
                getattr(info, "d", ()), list(getattr(info, "p", ())),
                str(getattr(info, "distortion_model", ""))).scaled(w, h)
        except CalibrationError as exc:
            status.depth, status.depth_error = DepthStatus.BAD_INTRINSICS, f"{frame.info_topic}: {exc}"
            return
        points = projection.project_organized(projection.resample_depth(depth_m, w, h), intrinsics, self._rays)
        out.cloud_frame_id = str(frame.image.header.frame_id)
        class_map = self.class_map
        if request.points:
            out.labelled_cloud = clouds.labelled_cloud_array(points, labels, class_map.palette_lut())
        if request.obstacle_points:
            out.obstacle_cloud = clouds.xyz_cloud_array(projection.obstacle_points(
                points, labels, class_map.obstacle_lut(), request.min_range, request.max_range,
                request.voxel_size))
        status.depth = DepthStatus.OK

    def close(self) -> None:
        self.pipeline.close()
