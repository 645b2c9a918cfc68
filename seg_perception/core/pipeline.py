"""The segmentation engine: RGB frame in, label map / confidence / color mask / overlay out.

Used identically by the ROS node, the demo, the offline tool and the benchmarks. Two
backends share one pipeline shape:
- numpy: OpenCV resize on uint8, model, uint8 resampling and palette lookup with OpenCV.
  Fastest on a CPU, where full-resolution float work is what costs.
- torch: upload the uint8 frame once, everything on the device, only uint8 results come
  back. Chosen on CUDA; it also runs on the CPU, which is how its logic is tested in CI.
"""
from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from . import colorize as colorize_mod
from .batching import BatchRunner
from .buffers import BufferPool
from .geometry import Placement, network_output_size
from .labels import ClassMap
from .postprocess import finish_numpy, finish_torch, network_maps
from .preprocess import CpuPreprocessor, TorchPreprocessor
from .runtimes.base import ModelSpec, Runtime


@dataclass
class SegmentationOptions:
    output_size: str | tuple[int, int] = "input"
    """'input' (the frame's size), 'network' (the image's box at network resolution) or (w, h)."""
    confidence_threshold: float = 0.0
    want_confidence: bool = True
    """False lets a binary model skip its full-size confidence map (result.confidence is None)."""
    want_color: bool = False
    want_overlay: bool = False
    overlay_alpha: float = 0.5


@dataclass
class SegmentationResult:
    labels: np.ndarray
    """(H, W) uint8 class ids, 255 = unlabeled."""
    confidence: np.ndarray | None
    """(H, W) uint8, winning class probability * 255 (None when not wanted and not needed)."""
    color: np.ndarray | None
    overlay: np.ndarray | None
    placement: Placement
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        return (int(self.labels.shape[1]), int(self.labels.shape[0]))


class SegmentationPipeline:
    """`reuse_buffers=True` writes full-size results into arrays reused across calls (the node
    copies them into messages at once): at 1080p this saves more time than colorizing takes.
    The arrays of a result are then only valid until the next call."""

    def __init__(self, runtime: Runtime, backend: str = "auto", reuse_buffers: bool = False) -> None:
        self.runtime = runtime
        self._buffers = BufferPool(reuse_buffers)
        self.device = runtime.device
        if backend == "auto":
            backend = "torch" if self.device.type == "cuda" else "numpy"
        if backend not in ("numpy", "torch"):
            raise ValueError(f"backend must be auto, numpy or torch, got '{backend}'")
        self.backend = backend
        self._runner = BatchRunner(runtime)
        spec = runtime.spec
        self._palette = spec.classes.palette_lut()
        if backend == "numpy":
            self._pre: CpuPreprocessor | TorchPreprocessor = CpuPreprocessor(spec, runtime.dtype)
        else:
            self._pre = TorchPreprocessor(spec, self.device, runtime.dtype)
            self._palette_t = torch.from_numpy(self._palette).to(self.device)
            self._drawn_t = torch.from_numpy(colorize_mod.drawn_lut(self._palette) > 0).to(self.device)

    @property
    def spec(self) -> ModelSpec:
        return self.runtime.spec

    @property
    def class_map(self) -> ClassMap:
        return self.runtime.spec.classes

    def output_size_for(self, src_w: int, src_h: int, request: str | tuple[int, int]) -> tuple[int, int]:
        if request == "input":
            return (src_w, src_h)
        if request == "network":
            spec = self.spec
            return network_output_size(Placement.for_policy(spec.resize, src_w, src_h,
                                                            spec.input_width, spec.input_height))
        assert isinstance(request, tuple)
        return request

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def __call__(self, rgb: np.ndarray, options: SegmentationOptions | None = None) -> SegmentationResult:
        return next(self.run_batch([rgb], [options or SegmentationOptions()]))

    def run_batch(self, frames: Sequence[np.ndarray],
                  options: Sequence[SegmentationOptions]) -> Iterator[SegmentationResult]:
        """Frames of several cameras through one forward (N x 3 x H x W); a model whose batch
        axis is fixed runs them one by one (learned once, BatchRunner). Results come one at a
        time, in order: with reuse_buffers a result's arrays are valid until the next is taken."""
        if len(frames) != len(options) or not frames:
            raise ValueError(f"need one options per frame, got {len(frames)} frames, {len(options)} options")
        for rgb in frames:
            if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8 or rgb.size == 0:
                raise ValueError(f"expected a non-empty HxWx3 uint8 RGB image, got {rgb.shape} {rgb.dtype}")
        many = len(frames) > 1
        t0 = time.perf_counter()
        inputs: list[torch.Tensor] = []
        places: list[Placement] = []
        uploaded: list[torch.Tensor | None] = []
        with torch.inference_mode():
            for rgb in frames:
                batch, place = self._pre(rgb)
                # The CPU preprocessor writes into one reused tensor, and the CUDA one stages
                # every frame through one pinned buffer: each frame must be done before the next.
                inputs.append(batch.clone() if many and batch.device.type == "cpu" else batch)
                places.append(place)
                uploaded.append(self._pre.frame if isinstance(self._pre, TorchPreprocessor) else None)
                if many:
                    self._sync()
            self._sync()
            t1 = time.perf_counter()
            raw = self._runner(torch.cat(inputs) if many else inputs[0])
            self._sync()
            t2 = time.perf_counter()
        shared = dict(preprocess=(t1 - t0) * 1e3, inference=(t2 - t1) * 1e3, batch=float(len(frames)))
        for index, (rgb, opts) in enumerate(zip(frames, options)):
            yield self._finish(rgb, raw[index:index + 1] if many else raw, places[index], opts,
                               uploaded[index], shared)

    def _finish(self, rgb: np.ndarray, raw: torch.Tensor, place: Placement, opts: SegmentationOptions,
                uploaded: torch.Tensor | None, shared: dict[str, float]) -> SegmentationResult:
        src_h, src_w = rgb.shape[:2]
        out_w, out_h = self.output_size_for(src_w, src_h, opts.output_size)
        t2 = time.perf_counter()
        with torch.inference_mode():
            maps = network_maps(raw, self.spec)
            if self.backend == "numpy":
                labels, confidence = finish_numpy(maps, place, out_w, out_h, opts.confidence_threshold,
                                                  self._buffers, opts.want_confidence)
                t3 = time.perf_counter()
                color, over = self._paint_numpy(rgb, labels, out_w, out_h, opts)
            else:
                labels_t, conf_t = finish_torch(maps, place, out_w, out_h, opts.confidence_threshold)
                self._sync()
                t3 = time.perf_counter()
                color, over = self._paint_torch(labels_t, uploaded, out_w, out_h, opts)
                labels = labels_t.cpu().numpy()
                confidence = conf_t.cpu().numpy() if opts.want_confidence else None
        t4 = time.perf_counter()
        timings = dict(shared, postprocess=(t3 - t2) * 1e3, colorize=(t4 - t3) * 1e3)
        timings["total"] = timings["preprocess"] + timings["inference"] + (t4 - t2) * 1e3
        return SegmentationResult(labels, confidence, color, over, place, timings)

    def _paint_numpy(self, rgb: np.ndarray, labels: np.ndarray, out_w: int, out_h: int,
                     opts: SegmentationOptions) -> tuple[np.ndarray | None, np.ndarray | None]:
        if not (opts.want_color or opts.want_overlay):
            return None, None
        buf = self._buffers.get
        color = colorize_mod.colorize(labels, self._palette, buf("color", out_h, out_w, 3),
                                      buf("scratch3", out_h, out_w, 3))
        over = None
        if opts.want_overlay:
            base = rgb if rgb.shape[:2] == (out_h, out_w) else cv2.resize(
                rgb, (out_w, out_h), dst=buf("base", out_h, out_w, 3), interpolation=cv2.INTER_AREA)
            over = colorize_mod.overlay(base, color, labels, self._palette, opts.overlay_alpha,
                                        buf("overlay", out_h, out_w, 3), buf("scratch3", out_h, out_w, 3),
                                        buf("drawn", out_h, out_w))
        return (color if opts.want_color else None), over

    def _paint_torch(self, labels: torch.Tensor, uploaded: torch.Tensor | None, out_w: int, out_h: int,
                     opts: SegmentationOptions) -> tuple[np.ndarray | None, np.ndarray | None]:
        if not (opts.want_color or opts.want_overlay):
            return None, None
        color = colorize_mod.colorize_torch(labels, self._palette_t)
        over = None
        if opts.want_overlay:
            assert uploaded is not None
            frame = uploaded.to(self.device)
            if frame.shape[:2] != (out_h, out_w):
                frame = torch.nn.functional.interpolate(
                    frame.permute(2, 0, 1)[None].float(), size=(out_h, out_w), mode="bilinear",
                    align_corners=False, antialias=True)[0].permute(1, 2, 0).round_().clamp_(0, 255).to(torch.uint8)
            over = colorize_mod.overlay_torch(frame, color, labels, self._drawn_t, opts.overlay_alpha).cpu().numpy()
        return (color.cpu().numpy() if opts.want_color else None), over

    def release_cache(self) -> None:
        """Hand cached device memory back (deactivate): other processes may need the GPU meanwhile."""
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def close(self) -> None:
        self.runtime.close()
        self.release_cache()
