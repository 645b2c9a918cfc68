"""Where a frame's time goes: cProfile of the core pipeline and of segmentation_node's
per-frame path, at one frame size (`python bench/run.py --profile`).

The node part runs SegmentationNode in this process, configured but not activated, and calls
its worker's per-frame method on a message shaped exactly as rclpy delivers it (deserialized
from CDR bytes: data is an array.array), with a subscriber on segmentation/mask so the mask
is published for real. The executor thread's own share (taking and converting each incoming
message) is timed separately as deserialization. cProfile only sees the thread it runs in and
adds overhead per Python call, so the absolute numbers read high; the ranking is the point.
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
        with torch.inference_mode():
            self._output = runtime(batch)

    def __call__(self, batch):  # noqa: ANN001, ANN204 - the Runtime protocol
        return self._output

    def close(self) -> None:
        pass


def main(size: tuple[int, int], model: str, device: str, out: Path, iterations: int = 40) -> int:
    from rclpy.serialization import deserialize_message, serialize_message
    from sensor_msgs.msg import Image

    from seg_perception.core.conversions import fill_image, image_to_rgb
    from seg_perception.core.frame import FrameProcessor, FrameRequest
    from seg_perception.core.pipeline import SegmentationOptions
    from seg_perception.core.runtimes.loader import load_model, warm_up
    from seg_perception.ros.messages import image_msg

    from .inprocess import model_input, node_like_pipeline, photo_at, rgb8_message

    tag = size_text(size)
    rgb = photo_at(*size)
    sent = rgb8_message(rgb)
    wire = serialize_message(sent)
    received = deserialize_message(wire, Image)  # data: array.array, as a subscription callback sees it
    labels = np.zeros(size[::-1], np.uint8)

    def publish_side() -> None:
        mask = Image()
        fill_image(mask, labels, "mono8")
        serialize_message(mask)

    print(f"== message costs at {tag} (median of {iterations}) ==\n"
          f"deserialize rgb8 input (engine thread, per processed frame): "
          f"{_timed_ms(lambda: deserialize_message(wire, Image), iterations):.2f} ms\n"
          f"serialize rgb8 input (publisher side): {_timed_ms(lambda: serialize_message(sent), iterations):.2f} ms\n"
          f"fill + serialize mono8 mask: {_timed_ms(publish_side, iterations):.2f} ms\n")

    runtime = load_model(model, device)
    warm_up(runtime, 5)
    cached = CachedOutput(runtime, model_input(runtime, rgb))
    options = SegmentationOptions(want_color=True, want_overlay=True)
    request = FrameRequest(confidence=False, color=True, overlay=True)
    for label, rt in (("", runtime), (" without the model (cached output)", cached)):
        pipeline = node_like_pipeline(rt)
        suffix = "_nomodel" if rt is cached else ""
        print(_profile(f"core pipeline {tag}{label}: decode + segment + color + overlay",
                       lambda: pipeline(image_to_rgb(received), options), iterations,
                       out / f"profile_core_{tag}{suffix}.txt"))
        # The node's per-frame path without DDS: deserialize -> FrameProcessor -> output messages.
        processor = FrameProcessor(pipeline)

        def node_frame() -> None:
            msg = deserialize_message(wire, Image)
            result = processor.process(msg, request).segmentation
            assert result is not None and result.color is not None and result.overlay is not None
            for array, encoding in ((result.labels, "mono8"), (result.color, "rgb8"), (result.overlay, "rgb8")):
                serialize_message(image_msg(msg.header, array, encoding))

        print(_profile(f"node per-frame path {tag}{label}: deserialize, FrameProcessor, build + serialize "
                       f"mask, color and overlay", node_frame, iterations, out / f"profile_node_{tag}{suffix}.txt"))
    runtime.close()
    return 0
