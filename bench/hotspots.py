"""Where a frame's time goes: cProfile of the core pipeline and of segmentation_node's
per-frame path, at one frame size (`python bench/run.py --profile`).

The node part is the node's per-frame path without DDS: the frame's CDR bytes read in place
(wire.cdr, as the node's worker does), FrameProcessor, and the outputs built as CDR bytes. The
message costs compare that with what rclpy message objects cost for the same frame. cProfile
only sees the thread it runs in and adds overhead per Python call, so the absolute numbers read
high; the ranking is the point. For the running node with every thread, use bench/spy.py.
"""
from __future__ import annotations

import cProfile
import io
import pstats
import time
from pathlib import Path

import numpy as np

from .measures import size_text

TOP = 15


def _profile(label: str, call, iterations: int, out: Path) -> str:  # noqa: ANN001 - any callable
    for _ in range(3):
        call()
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    for _ in range(iterations):
        call()
    profiler.disable()
    per_frame = (time.perf_counter() - start) / iterations * 1e3
    buffer = io.StringIO()
    stats = pstats.Stats(profiler, stream=buffer)
    stats.sort_stats("tottime").print_stats(TOP)
    stats.sort_stats("cumulative").print_stats(TOP)
    text = f"== {label}: {iterations} frames, {per_frame:.2f} ms per frame under cProfile ==\n{buffer.getvalue()}"
    out.write_text(text)
    return text


def _timed_ms(call, iterations: int) -> float:  # noqa: ANN001 - any callable
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1e3)
    return float(np.median(times))


class CachedOutput:
    """Stands in for a runtime and returns one precomputed output: profiles everything a frame
    costs besides the model's forward, which otherwise fills the top of every listing."""

    def __init__(self, runtime, batch) -> None:  # noqa: ANN001 - a Runtime and its input
        import torch

        self.spec, self.device, self.dtype = runtime.spec, runtime.device, runtime.dtype
        self.array_io: bool = runtime.array_io
        self.cpu_threads: int | None = runtime.cpu_threads
        self.source = f"{runtime.source} (cached output)"
        with torch.inference_mode():
            self._output = runtime(batch)

    def __call__(self, batch):  # noqa: ANN001, ANN204 - the Runtime protocol
        return self._output

    def health(self) -> None:
        return None

    def close(self) -> None:
        pass


def main(size: tuple[int, int], model: str, device: str, out: Path, iterations: int = 40) -> int:
    from rclpy.serialization import deserialize_message, serialize_message
    from sensor_msgs.msg import Image

    from seg_perception.wire import cdr
    from seg_perception.wire.images import fill_image, image_to_rgb
    from seg_perception.engine.frame import FrameProcessor, FrameRequest
    from seg_perception.engine.pipeline import SegmentationOptions
    from seg_perception.model.loader import load_model, warm_up

    from .inprocess import model_input, node_like_pipeline, photo_at, rgb8_message

    tag = size_text(size)
    rgb = photo_at(*size)
    sent = rgb8_message(rgb)
    wire = serialize_message(sent)
    labels = np.zeros(size[::-1], np.uint8)

    def publish_side() -> None:
        mask = Image()
        fill_image(mask, labels, "mono8")
        serialize_message(mask)

    header = cdr.header(0, 0, "camera_color_optical_frame")
    print(f"== message costs at {tag} (median of {iterations}) ==\n"
          f"rclpy deserialize rgb8 input: {_timed_ms(lambda: deserialize_message(wire, Image), iterations):.2f} ms"
          f"  vs wire.cdr.read_image (the node's): {_timed_ms(lambda: cdr.read_image(wire), iterations):.3f} ms\n"
          f"rclpy fill + serialize mono8 mask: {_timed_ms(publish_side, iterations):.2f} ms"
          f"  vs wire.cdr.image_bytes (the node's): "
          f"{_timed_ms(lambda: cdr.image_bytes(header, labels, 'mono8'), iterations):.3f} ms\n"
          f"serialize rgb8 input (publisher side, rclpy): "
          f"{_timed_ms(lambda: serialize_message(sent), iterations):.2f} ms\n")

    runtime = load_model(model, device)
    warm_up(runtime, 5)
    cached = CachedOutput(runtime, model_input(runtime, rgb))
    options = SegmentationOptions(want_color=True, want_overlay=True)
    request = FrameRequest(confidence=False, color=True, overlay=True)
    for label, rt in (("", runtime), (" without the model (cached output)", cached)):
        pipeline = node_like_pipeline(rt)
        suffix = "_nomodel" if rt is cached else ""
        print(_profile(f"core pipeline {tag}{label}: decode + segment + color + overlay",
                       lambda: pipeline(image_to_rgb(cdr.read_image(wire)), options), iterations,
                       out / f"profile_core_{tag}{suffix}.txt"))
        # The node's per-frame path without DDS: read in place -> FrameProcessor -> output bytes.
        processor = FrameProcessor(pipeline)

        def node_frame() -> None:
            msg = cdr.read_image(wire)
            result = processor.process(msg, request).segmentation
            assert result is not None and result.color is not None and result.overlay is not None
            for array, encoding in ((result.labels, "mono8"), (result.color, "rgb8"), (result.overlay, "rgb8")):
                cdr.image_bytes(msg.header, array, encoding)

        print(_profile(f"node per-frame path {tag}{label}: read, FrameProcessor, mask, color and overlay as "
                       f"CDR bytes", node_frame, iterations, out / f"profile_node_{tag}{suffix}.txt"))
    runtime.close()
    return 0
