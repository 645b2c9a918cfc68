"""The CPU table (section 8 of `make bench`): each built-in model under ONNX Runtime, OpenVINO fp32
and OpenVINO int8 (where it passes export_model's gate), at 1 and 2 threads.

Forward p50/p99: in this process, on the real photo preprocessed to the model's input, every
variant of a model and thread count timed in turn within each iteration, so load from other
processes falls on all of them alike. Node p50/p99: segmentation_node as its own process with
`runtime` and `cpu_threads` set, frames one at a time at 640x480 over DDS, as in section 3.
int8: deploy.quantize on the bundled sample photos (calibration and gate), with the default gate
(IoU >= 0.97 per class painted on >= 0.5 % of the pixels, faster than the fastest fp32).

Run alone: bash scripts/run.sh python bench/cpu_table.py [--models selfie,drivable] [--threads 1,2]
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.append(str(Path(__file__).resolve().parent.parent))  # see run.py

import argparse  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from bench.measures import percentiles  # noqa: E402
from bench.report import fmt, section, table  # noqa: E402

MODELS: tuple[str, ...] = ("selfie", "selfie_landscape", "drivable")
THREADS: tuple[int, ...] = (1, 2)
VARIANTS: tuple[str, ...] = ("onnxruntime", "openvino", "openvino int8")


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo; platform.processor() is often empty on Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> str:
    """The vector extensions that decide int8 and bf16 speed (AVX2, AVX-512 VNNI/BF16, AMX)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16")
    return " ".join(f for f in wanted if f in flags)


def _calibration_folder(folder: Path) -> Path:
    from seg_perception.offline.sources import SAMPLE_NAMES, sample_photo

    folder.mkdir(parents=True, exist_ok=True)
    for name in SAMPLE_NAMES:
        cv2.imwrite(str(folder / f"{name}.png"), cv2.cvtColor(sample_photo(name), cv2.COLOR_RGB2BGR))
    return folder


def _int8(model: str, work: Path, threads: int, log: Callable[[str], None]) -> tuple[Path | None, str]:
    """(int8 IR of the built-in or None, the gate's summary)."""
    from seg_perception.deploy.export import builtin_source, write_description
    from seg_perception.deploy.quantize import QuantizeError, quantize_int8
    from seg_perception.model.builtin import builtin_onnx

    folder = work / model
    folder.mkdir(parents=True, exist_ok=True)
    onnx = folder / f"{model}.onnx"
    onnx.write_bytes(builtin_onnx(model).read_bytes())
    source = builtin_source(model)
    source.name = model
    write_description(source, folder)
    try:
        result = quantize_int8(onnx, _calibration_folder(work / "calibration"), folder / "int8",
                               cpu_threads=threads, log=log)
    except QuantizeError as exc:
        return None, str(exc)
    return result.model, result.report.summary()


def forward_times(model: str, paths: dict[str, str], threads: int, iterations: int) -> dict[str, dict[str, float]]:
    """variant -> forward percentiles (ms), the variants alternating within each iteration."""
    from bench.inprocess import photo_at
    from seg_perception.engine.preprocess import CpuPreprocessor
    from seg_perception.model import load_model

    runtimes = {}
    for variant, path in paths.items():
        engine = "openvino" if variant.startswith("openvino") else "onnxruntime"
        runtimes[variant] = load_model(path, "cpu", cpu_threads=threads, runtime=engine)
    spec = next(iter(runtimes.values())).spec
    batch = CpuPreprocessor(spec)(photo_at(640, 480))[0].copy()
    times: dict[str, list[float]] = {v: [] for v in runtimes}
    for index in range(iterations + 2):
        for variant, runtime in runtimes.items():
            start = time.perf_counter()
            runtime(batch)
            if index >= 2:
                times[variant].append((time.perf_counter() - start) * 1e3)
    for runtime in runtimes.values():
        runtime.close()
    return {v: percentiles(t, (50, 99)) for v, t in times.items()}


def measure(models: list[str], threads: list[int], iterations: int, frames: int, node: bool,
            log: Callable[[str], None], logs: Path, bench: Any = None) -> dict[str, Any]:
    """`bench`: run.py's bench.dds.Bench, or None to start (and close) one here when `node`."""
    from bench.inprocess import photo_at, rgb8_message

    from seg_perception.model.runtimes.openvino import openvino_available

    results: dict[str, Any] = {"cpu": cpu_name(), "flags": cpu_flags(), "loadavg_start": os.getloadavg(),
                               "rows": []}
    missing = openvino_available()
    if missing is not None:
        log(f"cpu table skipped: {missing}")
        results["loadavg_end"] = os.getloadavg()
        results["skipped"] = missing
        return results
    own = node and bench is None
    if own:
        from bench.dds import Bench

        bench = Bench()
    elif not node:
        bench = None
    msg = rgb8_message(photo_at(640, 480))
    try:
        with tempfile.TemporaryDirectory(prefix="seg_cpu_table_") as scratch:
            work = Path(scratch)
            for model in models:
                from seg_perception.model.builtin import builtin_onnx

                log(f"cpu table {model}: int8 with the accuracy gate (calibration: the sample photos)")
                int8_path, gate = _int8(model, work, max(threads), log)
                paths = {"onnxruntime": model, "openvino": model}
                if int8_path is not None:
                    paths["openvino int8"] = str(int8_path)
                builtin_onnx(model)
                for count in threads:
                    log(f"cpu table {model}, {count} thread(s): {iterations} forwards per variant")
                    forwards = forward_times(model, paths, count, iterations)
                    for variant in VARIANTS:
                        row: dict[str, Any] = {"model": model, "variant": variant, "threads": count,
                                               "gate": gate if variant == "openvino int8" else ""}
                        if variant not in paths:
                            results["rows"].append(row)
                            continue
                        row.update({f"forward_{k}": v for k, v in forwards[variant].items()})
                        if bench is not None:
                            from bench.dds import node_run

                            log(f"cpu table {model} {variant} {count} thread(s): node, {frames} frames one at a time")
                            engine = "openvino" if variant.startswith("openvino") else "onnxruntime"
                            run = node_run(bench, msg, paths[variant], "cpu", frames, 0.0, logs, "cpu_table",
                                           extra={"runtime": engine, "cpu_threads": count})
                            row.update({"node_p50": run["p50"], "node_p99": run["p99"],
                                        "node_inference_ms": run["node_inference_ms"], "lost": run["lost"]})
                        results["rows"].append(row)
    finally:
        if own:
            bench.close()
    results["loadavg_end"] = os.getloadavg()
    return results


def render(results: dict[str, Any], iterations: int, frames: int) -> str:
    if "skipped" in results:
        return section("8. CPU runtimes", f"skipped: {results['skipped']}")
    rows = []
    by_key = {(r["model"], r["variant"], r["threads"]): r for r in results["rows"]}
    for r in results["rows"]:
        if r["variant"] == "openvino int8" and "forward_p50" not in r:
            if r["threads"] == min(x["threads"] for x in results["rows"]):
                rows.append([r["model"], r["variant"], "", "failed the gate", "", "", "", ""])
            continue
        ort = by_key.get((r["model"], "onnxruntime", r["threads"]), {})
        speedup = (ort["forward_p50"] / r["forward_p50"]) if ort.get("forward_p50") and r.get("forward_p50") else None
        rows.append([r["model"], r["variant"], str(r["threads"]), fmt(r.get("forward_p50"), 2),
                     fmt(r.get("forward_p99"), 2), (fmt(speedup, 2) + "x") if speedup else "",
                     fmt(r.get("node_p50"), 1), fmt(r.get("node_p99"), 1)])
    gates = sorted({(r["model"], r["gate"]) for r in results["rows"] if r["gate"]})
    notes = "\n".join(f"- int8 gate, {model}: {gate}" for model, gate in gates)
    return section(
        f"8. CPU runtimes: {results['cpu']} ({results['flags']}); load average "
        f"{results['loadavg_start'][0]:.2f} at start / {results['loadavg_end'][0]:.2f} at end",
        table(["model", "runtime", "threads", "forward p50", "p99", "ORT p50 / this", "node p50", "node p99"], rows),
        f"forward: median and p99 of {iterations} forwards per variant, alternating, in process (the photo at the "
        f"model's input). node: segmentation_node with runtime and cpu_threads set, {frames} frames one at a time "
        "at 640x480 (mask only). int8 is written only when it passes the gate (deploy/quantize.py):\n" + notes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--threads", default=",".join(map(str, THREADS)))
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--skip-node", action="store_true")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "out" / "bench"))
    args = parser.parse_args(argv)
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    out = Path(args.out)
    (out / "logs").mkdir(parents=True, exist_ok=True)

    def log(text: str) -> None:
        print(f"[cpu_table {time.strftime('%H:%M:%S')}] {text}", flush=True)

    results = measure([m for m in args.models.split(",") if m], [int(t) for t in args.threads.split(",")],
                      args.iterations, args.frames, not args.skip_node, log, out / "logs")
    text = render(results, args.iterations, args.frames)
    print("\n" + text)
    (out / "cpu_table.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
