"""int8 with an accuracy gate: an fp32 ONNX model -> an int8 OpenVINO IR, kept only if it earns it.

NNCF's post-training quantization calibrates on the user's own images (no labels needed). The
quantized model is then judged against the fp32 model it replaces, on the same images, through
the same pipeline the node runs (so resize, softmax and argmax are part of the comparison):

- accuracy: for every class, IoU of the int8 mask against the fp32 mask, pooled over the images,
  must be >= `min_iou` (default 0.97). A class the fp32 masks paint on fewer than `min_share` of
  the pixels (default 0.5 %) is reported but not judged: the IoU of a few hundred pixels is
  noise (a road model on photos without roads). Calibrate on the robot's own frames, where every
  class that matters is present.
- speed: the int8 forward must be at least `min_speedup` times faster than the faster fp32
  runtime here (OpenVINO or ONNX Runtime), timed alternately on one image with the same threads.

Only a model that passes both is written (<out>/<name>_int8.xml + .bin + .yaml); otherwise
QuantizeError says which check failed and by how much, and nothing is written. Imports
openvino and nncf (requirements-openvino.txt) when called; never torch.
"""
from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..engine.pipeline import SegmentationPipeline
from ..engine.preprocess import CpuPreprocessor
from ..model.base import ModelLoadError, ModelSpec, Runtime
from ..model.description import find_description, load_description
from ..model.runtimes.openvino import OpenVinoRuntime, openvino_available

DEFAULT_MIN_IOU = 0.97
DEFAULT_MIN_SPEEDUP = 1.0
DEFAULT_MIN_SHARE = 0.005
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
MAX_CALIBRATION_IMAGES = 300
"""NNCF's own default subset size: more images cost time and change little."""


class QuantizeError(RuntimeError):
    """Quantization was impossible, or its result failed the gate (nothing was written)."""


@dataclass
class GateReport:
    """How the int8 model compares with the fp32 one on the calibration images."""

    images: int
    class_iou: dict[str, float]
    """class name -> IoU of the int8 mask against the fp32 mask (classes either painted)"""
    int8_ms: float
    fp32_ms: dict[str, float]
    """runtime name -> median forward ms of the fp32 model"""
    min_iou: float
    min_speedup: float
    pixels_changed: float
    """share of pixels whose class differs"""
    class_share: dict[str, float] = field(default_factory=dict)
    """class name -> share of the pixels the fp32 masks give it"""
    min_share: float = DEFAULT_MIN_SHARE
    failures: list[str] = field(default_factory=list)

    @property
    def judged(self) -> dict[str, float]:
        """IoU of the classes the gate judges (painted on at least min_share of the fp32 pixels)."""
        return {k: v for k, v in self.class_iou.items() if self.class_share.get(k, 0.0) >= self.min_share}

    @property
    def worst_class(self) -> tuple[str, float]:
        judged = self.judged
        return min(judged.items(), key=lambda item: item[1]) if judged else ("", 1.0)

    @property
    def speedup(self) -> float:
        """The fastest fp32 runtime's time over the int8 time (> 1: int8 is faster)."""
        return min(self.fp32_ms.values()) / self.int8_ms if self.int8_ms > 0 else 0.0

    @property
    def passed(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        name, iou = self.worst_class
        fp32 = ", ".join(f"{k} {v:.1f} ms" for k, v in self.fp32_ms.items())
        unjudged = [f"{k} IoU {v:.3f} on {self.class_share.get(k, 0.0):.2%}" for k, v in self.class_iou.items()
                    if k not in self.judged]
        skipped = f"; not judged (under {self.min_share:.1%} of the pixels): {', '.join(unjudged)}" if unjudged else ""
        return (f"{self.images} images: worst class IoU {iou:.4f} ({name}; gate {self.min_iou:g}), "
                f"{self.pixels_changed:.2%} of the pixels changed{skipped}; int8 {self.int8_ms:.1f} ms vs fp32 "
                f"{fp32} = {self.speedup:.2f}x (gate {self.min_speedup:g}x)")


@dataclass
class QuantizeResult:
    model: Path
    description: Path
    report: GateReport


def calibration_images(folder: Path, limit: int = MAX_CALIBRATION_IMAGES) -> list[np.ndarray]:
    """RGB uint8 images of `folder` (sorted by name, at most `limit`). Raises QuantizeError."""
    if not folder.is_dir():
        raise QuantizeError(f"calibration folder '{folder}' does not exist or is not a folder")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    images = []
    for path in paths[:limit]:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise QuantizeError(f"calibration image '{path}' cannot be read")
        images.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    if not images:
        raise QuantizeError(f"calibration folder '{folder}' holds no images ({', '.join(IMAGE_SUFFIXES)}); "
                            "use frames from the robot's own camera")
    return images


def class_ious(reference: Sequence[np.ndarray], candidate: Sequence[np.ndarray],
               names: dict[int, str]) -> tuple[dict[str, float], float, dict[str, float]]:
    """Per-class IoU of `candidate` label maps against `reference`, pooled over the pairs, for
    classes either side paints; the share of pixels that differ; each of those classes' share
    of the reference pixels."""
    confusion = np.zeros((256, 256), np.int64)
    for ref, cand in zip(reference, candidate, strict=True):
        pairs = ref.astype(np.int64).ravel() * 256 + cand.astype(np.int64).ravel()
        confusion += np.bincount(pairs, minlength=256 * 256).reshape(256, 256)
    intersection = np.diag(confusion)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - intersection
    result = {names.get(int(i), str(i)): float(intersection[i] / union[i]) for i in np.flatnonzero(union)}
    total = int(confusion.sum())
    changed = 1.0 - float(intersection.sum()) / total if total else 0.0
    counts = confusion.sum(axis=1)
    shares = {names.get(int(i), str(i)): float(counts[i]) / total for i in np.flatnonzero(union)}
    return result, changed, shares


def median_forward_ms(runtimes: dict[str, Runtime], batch: np.ndarray, iterations: int) -> dict[str, float]:
    """Median ms per forward of each runtime on `batch`, run in turn within each iteration so
    that load from other processes falls on all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in runtimes}
    for runtime in runtimes.values():
        runtime(batch)  # first-run allocations out of the timing
    for _ in range(iterations):
        for name, runtime in runtimes.items():
            start = time.perf_counter()
            runtime(batch)
            times[name].append((time.perf_counter() - start) * 1000.0)
    return {name: statistics.median(values) for name, values in times.items()}


def labels_of(runtime: Runtime, images: Sequence[np.ndarray]) -> list[np.ndarray]:
    pipeline = SegmentationPipeline(runtime)
    return [pipeline(rgb).labels.copy() for rgb in images]


def quantize_int8(model_path: Path, calibration: Path, out_dir: Path, min_iou: float = DEFAULT_MIN_IOU,
                  min_speedup: float = DEFAULT_MIN_SPEEDUP, min_share: float = DEFAULT_MIN_SHARE,
                  cpu_threads: int = 0, description: Path | None = None,
                  iterations: int = 20, log: Callable[[str], None] = lambda _: None) -> QuantizeResult:
    """Quantize the ONNX model at `model_path` (its description beside it, or `description`),
    gate it on the images in `calibration`, and write <out_dir>/<stem>_int8.{xml,bin,yaml} when it
    passes. Raises QuantizeError (gate failed: its message has the report; nothing written)."""
    if not 0.0 < min_iou <= 1.0:
        raise QuantizeError(f"min_iou must be in (0, 1], got {min_iou}")
    if min_speedup < 0:
        raise QuantizeError(f"min_speedup must be >= 0 (0 = no speed check), got {min_speedup}")
    why = openvino_available()
    if why is not None:
        raise QuantizeError(why)
    try:
        import nncf
    except ImportError as exc:
        raise QuantizeError(f"int8 needs nncf ({exc}); pip install -r requirements-openvino.txt") from exc
    import openvino as ov

    description_path = find_description(model_path, str(description) if description else None)
    if description_path is None or not description_path.is_file():
        raise QuantizeError(f"no description found for '{model_path}'")
    spec = load_description(description_path)
    images = calibration_images(calibration)
    log(f"calibrating on {len(images)} images from {calibration}")
    batches = _preprocessed(spec, images)
    try:
        fp32 = OpenVinoRuntime(model_path, spec, cpu_threads)
    except ModelLoadError as exc:
        raise QuantizeError(str(exc)) from exc
    core = ov.Core()
    dataset = nncf.Dataset(batches)
    try:
        quantized = nncf.quantize(core.read_model(str(model_path)), dataset, subset_size=len(batches))
    except Exception as exc:  # noqa: BLE001 - NNCF fails in its own ways on unsupported graphs
        raise QuantizeError(f"NNCF could not quantize '{model_path}': {' '.join(str(exc).split())[:300]}") from exc
    with tempfile.TemporaryDirectory(prefix="seg_int8_") as scratch:
        staged = Path(scratch) / f"{model_path.stem}_int8.xml"
        ov.save_model(quantized, str(staged), compress_to_fp16=False)
        int8 = OpenVinoRuntime(staged, spec, cpu_threads)
        runtimes: dict[str, Runtime] = {"int8": int8, "openvino": fp32}
        try:
            from ..model.runtimes.onnx import OnnxRuntime

            runtimes["onnxruntime"] = OnnxRuntime(model_path, spec, cpu_threads=cpu_threads)
        except (ImportError, ModelLoadError):
            pass  # compared with OpenVINO fp32 alone
        report = _gate(spec, images, batches[0], runtimes, min_iou, min_speedup, min_share, iterations)
        for runtime in runtimes.values():
            runtime.close()
        log(report.summary())
        if not report.passed:
            raise QuantizeError("the int8 model failed the gate and was not written: " + "; ".join(report.failures)
                                + f" ({report.summary()})")
        out_dir.mkdir(parents=True, exist_ok=True)
        target = out_dir / staged.name
        shutil.copyfile(staged.with_suffix(".bin"), target.with_suffix(".bin"))
        shutil.copyfile(staged, target)  # the .xml last: a reader never finds it without its .bin
    yaml_path = target.with_suffix(".yaml")
    yaml_path.write_text(f"# int8 of {model_path.name} (export_model --int8): {report.summary()}\n"
                         + description_path.read_text())
    return QuantizeResult(target, yaml_path, report)


def _preprocessed(spec: ModelSpec, images: Sequence[np.ndarray]) -> list[np.ndarray]:
    pre = CpuPreprocessor(spec)
    return [pre(rgb)[0].copy() for rgb in images]


def _gate(spec: ModelSpec, images: Sequence[np.ndarray], batch: np.ndarray, runtimes: dict[str, Runtime],
          min_iou: float, min_speedup: float, min_share: float, iterations: int) -> GateReport:
    reference = labels_of(runtimes["openvino"], images)
    candidate = labels_of(runtimes["int8"], images)
    names = {c.id: c.name for c in spec.classes.classes}
    ious, changed, shares = class_ious(reference, candidate, names)
    times = median_forward_ms(runtimes, batch, iterations)
    int8_ms = times.pop("int8")
    report = GateReport(len(images), ious, int8_ms, times, min_iou, min_speedup, changed, shares, min_share)
    if not report.judged:
        report.failures.append(f"no class covers {min_share:.1%} of the calibration pixels: nothing to judge")
    short = {name: iou for name, iou in report.judged.items() if iou < min_iou}
    if short:
        report.failures.append("IoU below " + f"{min_iou:g}: " + ", ".join(
            f"{name} {iou:.4f} ({min_iou - iou:.4f} short)" for name, iou in sorted(short.items(), key=lambda x: x[1])))
    if min_speedup > 0 and report.speedup < min_speedup:
        report.failures.append(f"int8 is {report.speedup:.2f}x the speed of fp32, gate {min_speedup:g}x "
                               f"({min_speedup - report.speedup:.2f}x short)")
    return report
