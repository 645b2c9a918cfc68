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
import os
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
    import rclpy
    from rclpy.parameter import Parameter
    from rclpy.qos import QoSProfile
    from rclpy.serialization import deserialize_message, serialize_message
    from sensor_msgs.msg import Image

    from seg_perception.core.conversions import fill_image, image_to_rgb
    from devtools.harness import wait_until
    from seg_perception.ros.node import Frame, SegmentationNode
    from seg_perception.core.pipeline import SegmentationOptions
    from seg_perception.core.runtimes.loader import load_model, warm_up

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
          f"deserialize rgb8 input (executor thread, per received frame): "
          f"{_timed_ms(lambda: deserialize_message(wire, Image), iterations):.2f} ms\n"
          f"serialize rgb8 input (publisher side): {_timed_ms(lambda: serialize_message(sent), iterations):.2f} ms\n"
          f"fill + serialize mono8 mask: {_timed_ms(publish_side, iterations):.2f} ms\n")

    runtime = load_model(model, device)
    warm_up(runtime, 5)
    cached = CachedOutput(runtime, model_input(runtime, rgb))
    options = SegmentationOptions(want_color=True, want_overlay=True)
    for label, rt in (("", runtime), (" without the model (cached output)", cached)):
        pipeline = node_like_pipeline(rt)
        suffix = "_nomodel" if rt is cached else ""
        print(_profile(f"core pipeline {tag}{label}: decode + segment + color + overlay",
                       lambda: pipeline(image_to_rgb(received), options), iterations,
                       out / f"profile_core_{tag}{suffix}.txt"))

    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    rclpy.init()
    namespace = f"/bench_profile_{os.getpid()}"
    node = SegmentationNode("seg_bench_profile", namespace=namespace, parameter_overrides=[
        Parameter("model", value=model), Parameter("device", value=device), Parameter("use_depth", value=False)])
    listener = rclpy.create_node("seg_bench_listener", namespace=namespace)
    try:
        node.trigger_configure()
        sub = listener.create_subscription(Image, "segmentation/mask", lambda _msg: None, QoSProfile(depth=2))
        wait_until(lambda: sub.get_publisher_count() > 0, 10.0, "the mask publisher to match")
        print(_profile(f"node per-frame path {tag}: SegmentationNode._process (decode, segment, publish mask)",
                       lambda: node._process(Frame(received, time.monotonic())), iterations,
                       out / f"profile_node_{tag}.txt"))
        # Bench-side only: swap the node's model for the cached output to rank the rest.
        node._pipeline = node_like_pipeline(cached)
        print(_profile(f"node per-frame path {tag} without the model (cached output)",
                       lambda: node._process(Frame(received, time.monotonic())), iterations,
                       out / f"profile_node_{tag}_nomodel.txt"))
    finally:
        node._stop_work()
        node._release()
        listener.destroy_node()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
