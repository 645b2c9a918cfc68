"""One camera frame through the whole engine, with no ROS: the node's per-frame work.

`FrameProcessor.process_batch` takes color image messages (raw or compressed, duck-typed like
`wire.images`) with their color CameraInfo, decodes and segments them and checks each
calibration against its image; `add_depth_outputs` then takes the depth frame the caller paired
with a frame (after inference, so a depth camera slightly behind the color one has that long to
catch up), registers it to the mask with the excluded classes removed (MoveIt's depth image),
projects it and builds the labelled and obstacle cloud arrays. Every stage reports its own
outcome in `FrameStatus`, so a caller can count, log and diagnose a depth fault as a depth fault:
a bad depth image or calibration never fails the color outputs.

The node, the benchmarks and the profiler all drive this class; tests drive it without DDS.
"""
from __future__ import annotations

import enum
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..wire import pointcloud2 as clouds
from . import depth_filter, projection
from .ground import CameraPose, GroundError, GroundScan, Lens, project_ground
from ..wire.calibration import CalibrationError, intrinsics_from_camera_info
from ..wire.images import (DEFAULT_IMAGE_LIMITS, ImageFormatError, ImageLimits, compressed_to_rgb, depth_meters,
                          depth_pixels, image_to_rgb)
from ..model.labels import ClassMap
from .pipeline import SegmentationOptions, SegmentationPipeline, SegmentationResult
from ..model.loader import load_warm
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
    depth_filtered: bool = False
    """The paired depth image at the mask's size without the excluded classes (MoveIt)."""
    temporal_smoothing: float = 0.0
    """Weight of the past in the per-camera average of class probabilities; 0 = off."""
    limits: ImageLimits = DEFAULT_IMAGE_LIMITS
    """The largest color or depth image decoded (parameter max_image_pixels)."""
    ground: bool = False
    """Ground projection (the scan and the ground points), from the color camera_info and a pose."""
    ground_max_range: float = 10.0
    scan_angle_increment: float = math.radians(0.5)

    @property
    def clouds(self) -> bool:
        return self.points or self.obstacle_points

    @property
    def wants_depth(self) -> bool:
        """Whether any output needs the depth frame paired with this one."""
        return self.clouds or self.depth_filtered


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
    ground_error: str = ""
    """Why ground projection was wanted but made nothing for this frame."""


@dataclass
class FrameOutputs:
    status: FrameStatus
    segmentation: SegmentationResult | None = None
    labelled_cloud: np.ndarray | None = None
    """(H, W) structured array of `clouds.LABELLED_FIELDS`, aligned with the mask."""
    obstacle_cloud: np.ndarray | None = None
    """(N,) structured array of `clouds.XYZ_FIELDS`."""
    depth_filtered: np.ndarray | None = None
    """The paired depth at the mask's size, excluded classes invalid, in `depth_encoding`."""
    depth_encoding: str = ""
    """The input depth's encoding (16UC1 or 32FC1), which `depth_filtered` keeps."""
    cloud_frame_id: str = ""
    """Clouds are in the depth camera's frame (its header's frame_id), stamped as the color frame."""
    camera_info: Any | None = None
    """The frame's color camera_info once checked against the image; None when none was given or
    it is unusable (`status.camera_info_error` says why)."""
    ground: GroundScan | None = None
    """Ground contacts (scan + points) in `ground_frame_id`, stamped as the color frame."""
    ground_frame_id: str = ""
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
    stream: str = ""
    """The camera's name: temporal smoothing keeps one history per camera."""


def _segmentation_options(request: FrameRequest, stream: str = "") -> SegmentationOptions:
    return SegmentationOptions(
        output_size=request.output_size, confidence_threshold=request.confidence_threshold,
        want_confidence=request.confidence, want_color=request.color, want_overlay=request.overlay,
        overlay_alpha=request.overlay_alpha, temporal_smoothing=request.temporal_smoothing, stream=stream)


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
        self._depth_excluded = depth_filter.exclude_lut([])
        self._depth_exclude_names: list[str] = []

    @property
    def depth_exclude_classes(self) -> list[str]:
        """Classes removed from `depth_filtered` (the manipulation set, apart from the obstacle
        classes of navigation)."""
        return list(self._depth_exclude_names)

    @depth_exclude_classes.setter
    def depth_exclude_classes(self, names: Sequence[str]) -> None:
        unknown = [n for n in names if n not in self.class_map.names]
        if unknown:
            raise ValueError(f"depth_exclude_classes {unknown} are not classes of the model {self.class_map.names}")
        self._depth_excluded = depth_filter.exclude_lut([self.class_map[n].id for n in names])
        self._depth_exclude_names = list(names)

    @classmethod
    def load(cls, model: str, device: str = "auto", fp16: bool = False, description: str | None = None,
             warmup_iterations: int = 3, obstacles: list[str] | None = None,
             free: list[str] | None = None, reuse_buffers: bool = True, triton: TritonOptions | None = None,
             cpu_threads: int = 0, runtime: str = "auto") -> FrameProcessor:
        """Load and warm up a model (call on the thread that will run it). `obstacles` (`free`)
        None keeps the model's own obstacle (free ground) classes; `cpu_threads` (0 = one per core)
        is the model's thread count on the CPU; `runtime` (model.base.RUNTIMES) what runs it.
        Raises ModelLoadError, DeviceError or ValueError."""
        loaded = load_warm(model, device, warmup_iterations, fp16=fp16, description=description, triton=triton,
                           cpu_threads=cpu_threads, runtime=runtime)
        try:
            class_map = loaded.spec.classes
            if obstacles is not None:
                unknown = [c for c in obstacles if c not in class_map.names]
                if unknown:
                    raise ValueError(f"obstacle_classes {unknown} are not classes of the model {class_map.names}")
                class_map = class_map.with_obstacles(obstacles)
            if free is not None:
                unknown = [c for c in free if c not in class_map.names]
                if unknown:
                    raise ValueError(f"free_classes {unknown} are not classes of the model {class_map.names}")
                class_map = class_map.with_free(free)
        except BaseException:
            loaded.close()
            raise
        return cls(SegmentationPipeline(loaded, reuse_buffers=reuse_buffers), class_map)

    def process(self, image: Any, request: FrameRequest, depth: DepthFrame | None = None,
                camera_info: Any | None = None) -> FrameOutputs:
        """One frame: segmented, its calibration checked and, when the request wants clouds, the
        clouds of `depth` (None: no depth frame was paired with it)."""
        out = next(self.process_batch([FrameInput(image, request, camera_info)]))
        self.add_depth_outputs(out, request, depth)
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
            [_segmentation_options(frames[i].request, frames[i].stream) for i, _, _ in decoded]
        ) if decoded else iter(())
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

    def add_depth_outputs(self, out: FrameOutputs, request: FrameRequest, depth: DepthFrame | None) -> None:
        """The depth outputs (filtered depth image, clouds) `request` wants for a segmented frame,
        from the depth frame paired with it (None: none was); nothing for a rejected frame or a
        request without depth outputs."""
        if out.segmentation is None or not request.wants_depth:
            return
        t0 = time.perf_counter()
        self._depth_outputs(out, request, depth)
        out.timings_ms["clouds"] = (time.perf_counter() - t0) * 1e3

    def add_ground(self, out: FrameOutputs, request: FrameRequest, pose: CameraPose | None, base_frame: str,
                   pose_error: str = "") -> None:
        """The ground contacts of a segmented frame, through its checked color camera_info, with
        `pose` the pose of its optical frame in `base_frame` (None: `pose_error` says why there is
        none). A problem leaves `out.ground` None and says why in `status.ground_error`."""
        if out.segmentation is None or not request.ground:
            return
        t0 = time.perf_counter()
        try:
            out.ground = self._ground(out, request, pose, pose_error)
            out.ground_frame_id = base_frame
        except GroundError as exc:
            out.status.ground_error = str(exc)
        out.timings_ms["ground"] = (time.perf_counter() - t0) * 1e3

    def _ground(self, out: FrameOutputs, request: FrameRequest, pose: CameraPose | None,
                pose_error: str) -> GroundScan:
        result = out.segmentation
        assert result is not None
        if out.camera_info is None:
            raise GroundError(out.status.camera_info_error or "no camera_info has arrived: cannot project the ground")
        if pose is None:
            raise GroundError(pose_error or "no camera pose")
        free = self.class_map.free_lut()
        if not free.any():
            raise GroundError(f"no free (drivable) classes: set free_classes to some of {self.class_map.names}")
        labels = result.labels
        placement = result.placement
        lens = Lens.from_camera_info(out.camera_info, placement.src_w, placement.src_h, labels.shape[1],
                                     labels.shape[0])
        return project_ground(labels, free, lens, pose, request.scan_angle_increment, request.ground_max_range)

    def _depth_outputs(self, out: FrameOutputs, request: FrameRequest, frame: DepthFrame | None) -> None:
        status = out.status
        assert out.segmentation is not None
        labels = out.segmentation.labels
        if frame is None:
            status.depth = DepthStatus.UNPAIRED
            return
        try:
            raw, encoding = depth_pixels(frame.image, request.limits)
        except ImageFormatError as exc:
            status.depth, status.depth_error = DepthStatus.REJECTED, str(exc)
            return
        if request.depth_filtered:
            # Needs no calibration of its own: its camera_info is the mask's (segmentation/camera_info).
            out.depth_filtered = depth_filter.filtered_depth(raw, encoding, labels, self._depth_excluded)
            out.depth_encoding = encoding
        if not request.clouds:
            status.depth = DepthStatus.OK
            return
        depth_m = depth_meters(raw, encoding)
        if frame.info is None:
            status.depth = DepthStatus.NO_INTRINSICS
            status.depth_error = ("no depth/camera_info (nor camera_info) with the depth image's stamp or shortly "
                                  "before it (camera_info_sync_tolerance): cannot project")
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

