"""The core pipeline's stages in thread CPU time: what each costs, with other processes' load left out.

    bash scripts/run.sh python bench/cpu_stages.py [--model selfie] [--runtime onnxruntime] [--size 1920x1080]

Model and OpenCV run on one thread, on this thread, so `time.thread_time` counts all their work
and none of the time spent waiting for a core. The pipeline's own stage timers
(`SegmentationPipeline.timings_ms`) are read with its clock swapped for `thread_time`. Prints the
median of `--frames` frames (after 5) for decode (CDR bytes to an RGB view, as the node does),
preprocess, forward, postprocess, colour + overlay, and total / forward, with confidence, colour
mask and overlay at the input size.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.append(str(Path(__file__).resolve().parent.parent))  # see run.py

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import cv2  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="selfie")
    parser.add_argument("--runtime", default="onnxruntime")
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--frames", type=int, default=20)
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    import seg_perception.engine.pipeline as pipeline_module
    from bench.inprocess import photo_at
    from bench.measures import parse_size
    from seg_perception.engine.pipeline import SegmentationOptions, SegmentationPipeline
    from seg_perception.model import load_model
    from seg_perception.wire import cdr
    from seg_perception.wire.images import image_to_rgb

    # The pipeline reads time.perf_counter(); give it a module whose perf_counter is CPU time.
    pipeline_module.time = SimpleNamespace(perf_counter=time.thread_time)  # type: ignore[assignment]
    runtime = load_model(args.model, "cpu", cpu_threads=1, runtime=args.runtime)
    pipeline = SegmentationPipeline(runtime, reuse_buffers=True)
    width, height = parse_size(args.size)
    wire = cdr.image_bytes(cdr.header(0, 0, "camera"), photo_at(width, height), "rgb8")
    options = SegmentationOptions(want_color=True, want_overlay=True)
    stages = ("preprocess", "inference", "postprocess", "colorize", "total")
    times: dict[str, list[float]] = {name: [] for name in ("decode", *stages)}
    for index in range(args.frames + 5):
        start = time.thread_time()
        rgb = image_to_rgb(cdr.read_image(wire))
        decode = (time.thread_time() - start) * 1e3
        result = pipeline(rgb, options)
        if index < 5:
            continue
        times["decode"].append(decode)
        for name in stages:
            times[name].append(result.timings_ms[name])
    medians = {name: statistics.median(values) for name, values in times.items()}
    total = medians["decode"] + medians["total"]
    print(f"{args.model} {args.runtime} {args.size}, CPU ms (median of {args.frames}): "
          + ", ".join(f"{name} {value:.2f}" for name, value in medians.items())
          + f"; (decode + total) / forward {total / medians['inference']:.2f}x")
    pipeline.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
