"""Forward times of the models issue #14 brings, through the project's own runtimes:

- `drivable` (TwinLiteNet, built in, PyTorch) at its 640x360 input;
- SegFormer-B0 with 19 Cityscapes classes (random weights, built from its config by
  `transformers`), exported by core/export.py to ONNX and TorchScript;
- the CNN encoder-decoder of devtools/architectures.py, exported the same way.

    bash scripts/run.sh python bench/models.py [--device cpu] [--iterations 10] [--threads N]

Each row: median and fastest wall time of one forward (batch 1, a random input already on the
device), and the process CPU time per forward (all threads). Weights are random, so only speed
means anything here. Prints a markdown table.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.append(str(Path(__file__).resolve().parent.parent))  # see bench/run.py

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402
from collections.abc import Iterator  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from seg_perception.model import Runtime, load_model  # noqa: E402
from seg_perception.model.base import torch_device  # noqa: E402

SEGFORMER_SIZES = ((512, 512), (1024, 512))
ENCODER_DECODER_SIZES = ((512, 512),)


def time_forward(runtime: Runtime, iterations: int) -> tuple[float, float, float]:
    """(median wall ms, fastest wall ms, median CPU ms) of `iterations` forwards after one warm-up."""
    spec = runtime.spec
    shape = (1, 3, spec.input_height, spec.input_width)
    device = torch_device(runtime.device)
    batch: Any
    if getattr(runtime, "array_io", False):  # ONNX Runtime on the CPU takes numpy
        batch = np.random.default_rng(0).random(shape, np.float32).astype(runtime.dtype)
    else:
        batch = torch.rand(*shape, device=device).to(runtime.dtype)
    runtime(batch)
    walls, cpus = [], []
    for _ in range(iterations):
        cpu, wall = time.process_time(), time.perf_counter()
        runtime(batch)
        if runtime.device.type == "cuda":
            torch.cuda.synchronize(device)
        walls.append((time.perf_counter() - wall) * 1e3)
        cpus.append((time.process_time() - cpu) * 1e3)
    return float(np.median(walls)), float(min(walls)), float(np.median(cpus))


def exported_models(folder: Path) -> Iterator[tuple[str, str, Path]]:
    """(label, format, model file) for every export this benchmark times."""
    from devtools.architectures import write_segformer_checkpoint
    from seg_perception.deploy.export import export_model, resolve_source

    for width, height in SEGFORMER_SIZES:
        checkpoint = write_segformer_checkpoint(folder / f"segformer_{width}x{height}", width, height)
        source = resolve_source(str(checkpoint))
        for fmt in ("onnx", "torchscript"):
            yield f"SegFormer-B0, 19 classes, {width}x{height}", fmt, export_model(source, folder, fmt).model
    for width, height in ENCODER_DECODER_SIZES:
        source = resolve_source("devtools.architectures:encoder_decoder", size=(width, height),
                                name=f"encoder_decoder_{width}x{height}")
        for fmt in ("onnx", "torchscript"):
            yield f"CNN encoder-decoder, 6 classes, {width}x{height}", fmt, export_model(source, folder, fmt).model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.models", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    rows = []
    runtime = load_model("drivable", args.device)
    rows.append(("drivable (TwinLiteNet), 3 classes, 640x360", "builtin (torch)", *time_forward(runtime, args.iterations)))
    runtime.close()
    with tempfile.TemporaryDirectory() as tmp:
        for label, fmt, path in exported_models(Path(tmp)):
            runtime = load_model(str(path), args.device)
            rows.append((label, fmt, *time_forward(runtime, args.iterations)))
            runtime.close()
            print(f"[bench.models] {label} {fmt}: {rows[-1][2]:.1f} ms", file=sys.stderr, flush=True)

    print(f"device {runtime.device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{args.iterations} forwards each")
    print("| model | runtime | median ms | fastest ms | CPU ms |")
    print("|---|---|---|---|---|")
    for label, fmt, median_ms, fastest_ms, cpu_ms in rows:
        print(f"| {label} | {fmt} | {median_ms:.1f} | {fastest_ms:.1f} | {cpu_ms:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
