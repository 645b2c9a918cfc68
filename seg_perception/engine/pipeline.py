"""The segmentation engine: RGB frame in, label map / confidence / color mask / overlay out.

Used identically by the ROS node, the demo, the offline tool and the benchmarks. Two
backends share one pipeline shape:
- numpy: OpenCV resize on uint8, model, uint8 resampling and painting with OpenCV.
  Fastest on a CPU, where full-resolution float work is what costs. With an ONNX model
  (numpy in and out) nothing on this path imports torch.
- torch: upload the uint8 frame once, everything on the device, only uint8 results come
  back. Chosen on CUDA; it also runs on the CPU, which is how its logic is tested in CI.
"""
from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from . import colorize as colorize_mod
from .batching import BatchRunner
from .buffers import BufferPool
from .geometry import Placement, network_output_size
from ..model.labels import ClassMap
from .output_check import check_output
from .postprocess import finish_numpy, finish_torch, network_maps
from .preprocess import CpuPreprocessor, TorchPreprocessor
from .temporal import TemporalSmoother
from ..model.base import ModelSpec, Runtime, torch_device

if TYPE_CHECKING:
    import torch


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
    temporal_smoothing: float = 0.0
    """Weight of the past in the per-stream moving average of class probabilities (temporal.py)."""
    stream: str = ""
    """Which camera the frame is from: smoothing keeps one history per stream."""


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
        self.smoother = TemporalSmoother()
        # numpy in and out (ONNX Runtime on the CPU): no torch on the numpy backend at all.
        self._array_io = runtime.array_io
        spec = runtime.spec
        self._palette = spec.classes.palette_lut()
        self._painter = colorize_mod.Painter(self._palette, BufferPool(reuse_buffers))
        if backend == "numpy":
            self._pre: CpuPreprocessor | TorchPreprocessor = CpuPreprocessor(spec)
        else:
            import torch

            device = torch_device(self.device)
            # An array_io runtime names its input dtype in numpy terms.
            dtype = torch.from_numpy(np.zeros(0, runtime.dtype)).dtype if self._array_io else runtime.dtype
            self._pre = TorchPreprocessor(spec, device, dtype)
            self._palette_t = torch.from_numpy(self._palette).to(device)
            self._drawn_t = torch.from_numpy(colorize_mod.drawn_lut(self._palette) > 0).to(device)

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
            import torch

            torch.cuda.synchronize(torch_device(self.device))

    def _model_input(self, batch: Any) -> Any:
        """The pre-processed batch as the runtime takes it: numpy for an array_io runtime, else a
        tensor (the CPU pre-processor's array wrapped without a copy)."""
        if self._array_io:
            if self.backend == "numpy":
                return batch
            return batch.detach().cpu().numpy()
        if isinstance(batch, np.ndarray):
            import torch

            return torch.from_numpy(batch)
        return batch

    def _inference_mode(self) -> contextlib.AbstractContextManager[Any]:
        if self._array_io and self.backend == "numpy":
            return contextlib.nullcontext()
        import torch

        return torch.inference_mode()

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
        inputs: list[Any] = []
        places: list[Placement] = []
        uploaded: list[Any] = []
        with self._inference_mode():
            for rgb in frames:
                batch, place = self._pre(rgb)
                # The CPU preprocessor writes into one reused array, and the CUDA one stages
                # every frame through one pinned buffer: each frame must be done before the next.
                if many:
                    batch = batch.copy() if isinstance(batch, np.ndarray) else (
                        batch.clone() if batch.device.type == "cpu" else batch)
                inputs.append(batch)
                places.append(place)
                uploaded.append(self._pre.frame if isinstance(self._pre, TorchPreprocessor) else None)
                if many:
                    self._sync()
            self._sync()
            t1 = time.perf_counter()
            joined = inputs[0] if not many else (
                np.concatenate(inputs) if isinstance(inputs[0], np.ndarray) else _torch_cat(inputs))
            raw = self._runner(self._model_input(joined))
            check_output(raw, self.spec, len(frames))
            self._sync()
            t2 = time.perf_counter()
            if self.backend == "torch" and isinstance(raw, np.ndarray):
                import torch

                raw = torch.from_numpy(raw).to(torch_device(self.device))
        shared = dict(preprocess=(t1 - t0) * 1e3, inference=(t2 - t1) * 1e3, batch=float(len(frames)))
        for index, (rgb, opts) in enumerate(zip(frames, options)):
            yield self._finish(rgb, raw[index:index + 1] if many else raw, places[index], opts,
                               uploaded[index], shared)

    def _finish(self, rgb: np.ndarray, raw: Any, place: Placement, opts: SegmentationOptions,
                uploaded: Any, shared: dict[str, float]) -> SegmentationResult:
        src_h, src_w = rgb.shape[:2]
        out_w, out_h = self.output_size_for(src_w, src_h, opts.output_size)
        t2 = time.perf_counter()
        with self._inference_mode():
            spec = self.spec
            raw, kind = self.smoother(opts.stream, raw, spec.output, spec.classes.num_outputs,
                                      opts.temporal_smoothing, (src_w, src_h), (spec.name, id(self.runtime)))
            maps = network_maps(raw, spec, kind)
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
        base = None
        if opts.want_overlay:
            base = rgb if rgb.shape[:2] == (out_h, out_w) else cv2.resize(
                rgb, (out_w, out_h), dst=self._buffers.get("base", out_h, out_w, 3), interpolation=cv2.INTER_AREA)
        color, over = self._painter.paint(labels, base, opts.overlay_alpha)
        return (color if opts.want_color else None), over

    def _paint_torch(self, labels: torch.Tensor, uploaded: torch.Tensor | None, out_w: int, out_h: int,
                     opts: SegmentationOptions) -> tuple[np.ndarray | None, np.ndarray | None]:
        if not (opts.want_color or opts.want_overlay):
            return None, None
        color = colorize_mod.colorize_torch(labels, self._palette_t)
        over = None
        if opts.want_overlay:
            assert uploaded is not None
            import torch

            frame = uploaded.to(torch_device(self.device))
            if frame.shape[:2] != (out_h, out_w):
                frame = torch.nn.functional.interpolate(
                    frame.permute(2, 0, 1)[None].float(), size=(out_h, out_w), mode="bilinear",
                    align_corners=False, antialias=True)[0].permute(1, 2, 0).round_().clamp_(0, 255).to(torch.uint8)
            over = colorize_mod.overlay_torch(frame, color, labels, self._drawn_t, opts.overlay_alpha).cpu().numpy()
        return (color.cpu().numpy() if opts.want_color else None), over

    def release_cache(self) -> None:
        """Hand cached device memory back (deactivate): other processes may need the GPU meanwhile."""
        if self.device.type == "cuda":
            import torch

            torch.cuda.empty_cache()

    def close(self) -> None:
        self.runtime.close()
        self.release_cache()


def _torch_cat(tensors: list[Any]) -> Any:
    import torch

    return torch.cat(tensors)
