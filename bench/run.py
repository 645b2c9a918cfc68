"""The benchmark suite in one command: `make bench`, or from the repository root

    bash scripts/run.sh python bench/run.py [--device cuda] [--quick] [--skip-node] ...

prints the tables and writes them to out/bench/bench.md and out/bench/bench.json.
What each number means: bench/README.md.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    # `python bench/run.py` under PYTHONSAFEPATH=1 (scripts/run.sh) puts neither the current
    # directory nor bench/ on sys.path. Appended, not prepended: `seg_perception` must stay the
    # installed package (with its generated msg/), not the source tree beside bench/.
    sys.path.append(str(Path(__file__).resolve().parent.parent))

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

from bench.measures import (NODE_MARGIN_MS_TARGET, OVERLOAD_P99_RATIO_TARGET,  # noqa: E402
                            PEER_P50_RATIO_TARGET, PEER_P99_RATIO_TARGET, PEER_RSS_RATIO_TARGET,
                            PIPELINE_MASK_RATIO_TARGET, PIPELINE_RATIO_TARGET, RSS_GROWTH_TARGET, at_most,
                            median, median_of_dicts, parse_size, size_text, target_for, verdict)
from bench.cpu_table import cpu_name  # noqa: E402
from bench.report import fmt, percent, section, table  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@dataclasses.dataclass(frozen=True)
class Plan:
    iterations: int
    """in-process timings per size"""
    frames: int
    """one-at-a-time round trips per node / echo run"""
    repeats: int
    flood_seconds: float
    overload_seconds: float
    single_frames: int
    peer_seconds: float
    """overload per run in the peer comparison (0: one frame at a time only)"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default auto)")
    parser.add_argument("--model", default="selfie", help="model under test (builtin name or file)")
    parser.add_argument("--sizes", default="640x480,1920x1080", help="comma-separated WIDTHxHEIGHT")
    parser.add_argument("--quick", action="store_true", help="fewer frames and one repeat (~1 min)")
    parser.add_argument("--skip-node", action="store_true", help="in-process timings only (no DDS)")
    parser.add_argument("--repeats", type=int, help="node/echo/overload runs per size (default 3, quick 1)")
    parser.add_argument("--iterations", type=int, help="in-process timings per size (default 50, quick 15)")
    parser.add_argument("--frames", type=int, help="one-at-a-time round trips per run (default 50, quick 15)")
    parser.add_argument("--flood-seconds", type=float, help="unthrottled publisher per run (default 5, quick 2)")
    parser.add_argument("--overload-seconds", type=float, help="30 Hz overload per run (default 20, quick 6); "
                                                                "0 skips it")
    parser.add_argument("--overload-size", default="640x480", help="input size of the overload run")
    parser.add_argument("--overload-target-ms", type=float, default=65.0,
                        help="forward time the overload model is calibrated to")
    parser.add_argument("--rate", type=float, default=30.0, help="overload input rate (Hz)")
    parser.add_argument("--skip-peer", action="store_true",
                        help="skip the comparison with the Nav2-tutorial-style node (bench/peer.py)")
    parser.add_argument("--peer-seconds", type=float,
                        help="30 Hz overload per run in the peer comparison (default 10, quick 6)")
    parser.add_argument("--skip-cpu-table", action="store_true",
                        help="skip section 8, each built-in under ONNX Runtime / OpenVINO fp32 / int8 at 1 and "
                             "2 threads (bench/cpu_table.py; needs requirements-openvino.txt)")
    parser.add_argument("--cpu-table-frames", type=int,
                        help="one-at-a-time node frames per CPU-table row (default 20, quick 5)")
    parser.add_argument("--domain-id", type=int, help="ROS_DOMAIN_ID for this run (default: inherited)")
    parser.add_argument("--out", default=str(ROOT / "out" / "bench"), help="folder for bench.md/.json and logs")
    parser.add_argument("--profile", action="store_true",
                        help="instead of the benchmark: cProfile the core pipeline and the node's "
                             "per-frame path at the largest size (bench/hotspots.py)")
    return parser.parse_args(argv)


def make_plan(args: argparse.Namespace) -> Plan:
    quick = args.quick
    return Plan(iterations=args.iterations or (15 if quick else 50),
                frames=args.frames or (15 if quick else 50),
                repeats=args.repeats or (1 if quick else 3),
                flood_seconds=args.flood_seconds if args.flood_seconds is not None else (2.0 if quick else 5.0),
                overload_seconds=(args.overload_seconds if args.overload_seconds is not None
                                  else (6.0 if quick else 20.0)),
                single_frames=5 if quick else 10,
                peer_seconds=args.peer_seconds if args.peer_seconds is not None else (6.0 if quick else 10.0))


def log(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", flush=True)


def environment(device_text: str) -> dict[str, Any]:
    import torch

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, timeout=5).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True,
                                    text=True, timeout=5).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "", False
    return {"device": device_text, "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "cpus": os.cpu_count(), "cpu": cpu_name(),
            "python": platform.python_version(), "commit": commit + ("+dirty" if dirty else ""),
            "ros_domain_id": os.environ.get("ROS_DOMAIN_ID", "0"),
            "fastdds_profile": os.environ.get("FASTDDS_DEFAULT_PROFILES_FILE", "")}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Before rclpy or any child reads them: keep the benchmark's traffic on this machine.
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    if args.domain_id is not None:
        os.environ["ROS_DOMAIN_ID"] = str(args.domain_id)
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    if not sizes:
        raise SystemExit("--sizes: give at least one WIDTHxHEIGHT")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.profile:
        from bench.hotspots import main as profile_main
        return profile_main(max(sizes, key=lambda s: s[0] * s[1]), args.model, args.device, out)
    return run(args, make_plan(args), sizes, out)


def run(args: argparse.Namespace, plan: Plan, sizes: list[tuple[int, int]], out: Path) -> int:
    import torch

    from bench.inprocess import BareForward, measure_core, node_like_pipeline, photo_at, rgb8_message
    from seg_perception.model.base import describe_device, torch_device
    from seg_perception.model.loader import load_model, warm_up

    started = time.perf_counter()
    load_start = os.getloadavg()
    results: dict[str, Any] = {"plan": dataclasses.asdict(plan), "model": args.model,
                               "sizes": [size_text(s) for s in sizes], "loadavg_start": load_start}
    if load_start[0] > 0.5 * (os.cpu_count() or 1):
        log(f"warning: load average {load_start[0]:.2f} on {os.cpu_count()} CPUs: other processes "
            "will show up in the numbers")

    # 1 + 2: in process ------------------------------------------------------------------------
    runtime = load_model(args.model, args.device)
    warm_up(runtime, 5)
    pipeline = node_like_pipeline(runtime)
    device = runtime.device
    results["environment"] = environment(describe_device(device))
    log(f"model '{runtime.spec.name}' ({runtime.spec.input_width}x{runtime.spec.input_height}) on "
        f"{results['environment']['device']}, backend {pipeline.backend}")
    core: dict[str, Any] = {}
    for size in sizes:
        log(f"core pipeline {size_text(size)}: {plan.iterations} iterations")
        core[size_text(size)] = dataclasses.asdict(measure_core(runtime, pipeline, size, plan.iterations))
    results["core"] = core
    overload_size = parse_size(args.overload_size)

    # 3 - 6: over DDS ----------------------------------------------------------------------------
    if not args.skip_node:
        from bench.dds import Bench, echo_run, node_run, overload_run

        logs = out / "logs"
        logs.mkdir(exist_ok=True)
        bench = Bench()
        try:
            node_runs: dict[str, list[dict[str, Any]]] = {}
            echo_runs: dict[str, list[dict[str, Any]]] = {}
            for size in sizes:
                key = size_text(size)
                rgb = photo_at(*size)
                msg = rgb8_message(rgb)
                floor = BareForward(runtime, rgb)
                for repeat in range(plan.repeats):
                    log(f"node {key} run {repeat + 1}/{plan.repeats}: {plan.frames} frames one at a time, "
                        f"then {plan.flood_seconds:.0f} s unthrottled")
                    node_runs.setdefault(key, []).append(node_run(
                        bench, msg, args.model, args.device, plan.frames, plan.flood_seconds, logs, "node",
                        floor))
                    log(f"echo {key} run {repeat + 1}/{plan.repeats}")
                    echo_runs.setdefault(key, []).append(echo_run(bench, msg, plan.frames, logs, "echo"))
            results["node_runs"], results["echo_runs"] = node_runs, echo_runs
            results["node"] = {k: median_of_dicts(v) for k, v in node_runs.items()}
            results["echo"] = {k: median_of_dicts(v) for k, v in echo_runs.items()}
            # The overload node gets the machine (and the GPU memory) to itself.
            pipeline.close()
            if device.type == "cuda":
                torch.cuda.empty_cache()
            if plan.overload_seconds > 0:
                # Calibrated right before use: this machine's speed drifts between minutes.
                from bench.heavy_model import build_heavy_model
                log(f"calibrating the overload model to ~{args.overload_target_ms:.0f} ms per forward")
                heavy_dir = tempfile.TemporaryDirectory(prefix="seg_bench_")
                heavy = build_heavy_model(Path(heavy_dir.name), torch_device(device), args.overload_target_ms)
                log(f"overload model: {heavy.depth} conv layers x {heavy.width} channels at 256x256, "
                    f"{heavy.forward_ms:.1f} ms per forward here; {heavy.path}")
                results["overload_model"] = {"depth": heavy.depth, "width": heavy.width,
                                             "forward_ms": heavy.forward_ms, "path": str(heavy.path)}
                msg = rgb8_message(photo_at(*overload_size))
                runs = []
                for repeat in range(plan.repeats):
                    log(f"overload {size_text(overload_size)} run {repeat + 1}/{plan.repeats}: "
                        f"{args.rate:.0f} Hz for {plan.overload_seconds:.0f} s")
                    runs.append(overload_run(bench, msg, str(heavy.path), args.device, plan.overload_seconds,
                                             args.rate, plan.single_frames, logs, "overload"))
                heavy_dir.cleanup()
                results["overload_runs"] = runs
                results["overload"] = median_of_dicts(runs)
            if not args.skip_cpu_table and device.type == "cpu":
                from bench import cpu_table
                results["cpu_table_frames"] = args.cpu_table_frames or (5 if args.quick else 20)
                results["cpu_table"] = cpu_table.measure(
                    list(cpu_table.MODELS), list(cpu_table.THREADS), plan.iterations,
                    results["cpu_table_frames"], True, log, logs, bench)
            if not args.skip_peer:
                from bench.peer import compare
                with tempfile.TemporaryDirectory(prefix="seg_bench_peer_") as folder:
                    results["peer"] = compare(bench, Path(folder), plan.frames, plan.repeats, plan.peer_seconds,
                                              args.rate, args.overload_target_ms, logs, log)
        finally:
            bench.close()
    pipeline.close()  # idempotent
    results["loadavg_end"] = os.getloadavg()
    results["wall_s"] = time.perf_counter() - started
    text = render(results, sizes, overload_size, args.rate)
    print("\n" + text)
    (out / "bench.md").write_text(text)
    (out / "bench.json").write_text(json.dumps(results, indent=2, default=_json_default) + "\n")
    log(f"done in {results['wall_s']:.0f} s; wrote {out / 'bench.md'} and {out / 'bench.json'}")
    return 0


def _json_default(value: Any) -> Any:
    if isinstance(value, (tuple, set)):
        return list(value)
    return str(value)


def render(results: dict[str, Any], sizes: list[tuple[int, int]], overload_size: tuple[int, int],
           rate: float) -> str:
    env = results["environment"]
    plan = results["plan"]
    parts = [f"## seg_perception benchmark: model '{results['model']}' on {env['device']}\n\n"
             f"torch {env['torch']} ({env['torch_threads']} threads), {env['cpus']} CPUs, commit {env['commit']}, "
             f"load average {results['loadavg_start'][0]:.2f} at start / {results['loadavg_end'][0]:.2f} at end, "
             f"{results['wall_s']:.0f} s. Times in ms.\n"]

    rows = []
    for size in sizes:
        c = results["core"][size_text(size)]
        target, exact = target_for(PIPELINE_RATIO_TARGET, size)
        st = c["stages_ms"]
        mask_target, mask_exact = target_for(PIPELINE_MASK_RATIO_TARGET, size)
        rows.append([size_text(size), fmt(c["bare_forward_ms"], 2), fmt(st["decode"], 2), fmt(st["preprocess"], 2),
                     fmt(st["inference"], 2), fmt(st["postprocess"], 2), fmt(st["colorize"], 2),
                     fmt(st["total"], 2), fmt(c["total_p95_ms"], 2), fmt(c["ratio"], 2) + "x",
                     f"<= {target:.2f}x" + ("" if exact else "*"), verdict(at_most(c["ratio"], target)),
                     fmt(c["mask_only_ms"], 2), fmt(c["mask_only_ratio"], 2) + "x",
                     f"<= {mask_target:.2f}x" + ("" if mask_exact else "*"),
                     verdict(at_most(c["mask_only_ratio"], mask_target))])
    backend = results["core"][size_text(sizes[0])]["backend"]
    parts.append(section(
        f"1-2. Bare forward vs core pipeline (in process, backend {backend}, median of {plan['iterations']})",
        table(["size", "bare fwd", "decode", "preprocess", "inference", "postprocess", "colorize", "total",
               "total p95", "total/bare", "target", "", "mask only", "mask/bare", "target", ""], rows),
        "bare fwd: the model alone at its input size (the floor). total: decode (core.cdr.read_image of the "
        "frame's CDR bytes + image_to_rgb, as the node does) + SegmentationPipeline (buffers reused across "
        "frames, as in the node) with confidence, color mask and overlay at the input size. mask only: the "
        "same with the mask alone (what Nav2 subscribes). Stages are each their own median. "
        "* interpolated target."))

    if "node" in results:
        rows = []
        for size in sizes:
            key = size_text(size)
            n, e = results["node"][key], results["echo"][key]
            margin, exact = target_for(NODE_MARGIN_MS_TARGET, size)
            bare = n["bare_forward_ms"]
            limit = e["p50"] + bare + margin
            rows.append([key, fmt(bare), fmt(n["p50"]), fmt(n["p95"]), fmt(n["p99"]),
                         f"<= {limit:.1f} (echo+fwd+{margin:.0f})" + ("" if exact else "*"),
                         verdict(at_most(n["p50"], limit)),
                         fmt(n["p50"] - bare), fmt(n["p50"] - (n["node_inference_ms"] or float("nan"))),
                         fmt(e["p50"]), fmt(e["p95"]), fmt(e["p99"]),
                         fmt(n["p50"] - e["p50"]), fmt(n["node_pipeline_ms"]), fmt(n["lost"], 0),
                         fmt(n["peak_rss_mib"], 0), fmt(n["connect_s"])])
        parts.append(section(
            f"3-4. Node end to end vs transport floor (one frame at a time, {plan['frames']} frames, "
            f"median of {plan['repeats']} runs)",
            table(["size", "bare fwd (same run)", "node p50", "p95", "p99", "target p50", "", "p50-bare", "p50-node inf",
                   "echo p50", "echo p95", "echo p99", "node-echo p50", "node pipeline", "lost",
                   "node peak RSS MiB", "start s"], rows),
            "bare fwd (same run): the model alone in this process, timed just before and just after each "
            "node run. node: publish rgb8 (best effort, stamp = now) -> segmentation/mask with that stamp received "
            "here; segmentation_node in its own process, only the mask subscribed. echo: the same round "
            "trip through bench/echo_node.py (plain rclpy, answers a mono8 image): the DDS + rclpy floor. "
            "node pipeline / node inf: the node's own mean pipeline / inference time over these frames "
            "(/diagnostics), so p50-node inf is the overhead measured in the same process and run."))

        stages = ("wait", "read", "decode", "preprocess", "inference", "postprocess", "colorize", "publish")
        rows = []
        for size in sizes:
            key = size_text(size)
            n, e = results["node"][key], results["echo"][key]
            values = [n.get(f"node_stage_{stage}_ms") for stage in stages]
            known = [v for v in values if v is not None and v == v]
            inside = sum(known) if known else float("nan")
            rows.append([key, *(fmt(v, 2) for v in values), fmt(inside, 2), fmt(n["p50"]), fmt(e["p50"]),
                         fmt(n["p50"] - inside - e["p50"])])
        parts.append(section(
            "3c. Where the node's time goes (the node's own stage means over the one-at-a-time frames, "
            "/diagnostics)",
            table(["size", *stages, "sum", "node p50", "echo p50", "p50 - sum - echo"], rows),
            "wait: from the subscription callback (frame taken off DDS) to the engine thread taking it; read: "
            "the frame's CDR bytes read in place; decode: to RGB; preprocess .. colorize: the pipeline; "
            "publish: building every output's CDR bytes and handing them to rclpy. p50 - sum - echo: what is "
            "left outside the node's stages beyond the transport floor (executor wake-up and take, GIL, "
            "the echo's own callback work that the node does not do)."))

        rows = []
        for size in sizes:
            n = results["node"][size_text(size)]
            frames_in, dropped = n.get("flood_node_frames_in"), n.get("flood_dropped")
            undelivered = n.get("flood_undelivered")
            rows.append([size_text(size), fmt(n.get("flood_sent_per_s")),
                         fmt(frames_in / n["flood_seconds"] if frames_in is not None else None),
                         fmt(n.get("flood_masks_per_s")), fmt(1e3 / n["p50"]), fmt(dropped, 0),
                         fmt(undelivered, 0), fmt(n.get("flood_latency_p50_ms"))])
        parts.append(section(
            f"3b. Sustained throughput (unthrottled publisher for {plan['flood_seconds']:.0f} s, median of "
            f"{plan['repeats']} runs)",
            table(["size", "published/s", "node received/s", "masks/s", "1/p50 (serial) /s", "dropped (slot)",
                   "not delivered (DDS)", "latency p50"], rows),
            "dropped: frames the node's latest-wins slot replaced before the worker took them "
            "(/diagnostics dropped_frames); not delivered: published but never seen by the node "
            "(best effort, depth 1)."))

    if "peer" in results:
        parts.append(render_peer(results["peer"], plan, rate))
    if "cpu_table" in results:
        from bench import cpu_table
        parts.append(cpu_table.render(results["cpu_table"], plan["iterations"], results["cpu_table_frames"]))

    if "overload" in results:
        o, m = results["overload"], results["overload_model"]
        rss_ok = at_most(o["rss_growth"], RSS_GROWTH_TARGET) if o["rss_growth"] is not None else None
        rows = [
            ["model forward (bench process, calibration)", fmt(m["forward_ms"]), f"> {1e3 / rate:.0f}",
             verdict(m["forward_ms"] > 1e3 / rate)],
            ["node inference (diagnostics, under load)", fmt(o["node_inference_ms"]), f"> {1e3 / rate:.0f}",
             verdict(o["node_inference_ms"] > 1e3 / rate)],
            ["single-frame node latency (unloaded)", fmt(o["single_frame_ms"]), "", ""],
            ["latency p50 / p95 / p99", f"{fmt(o['p50'])} / {fmt(o['p95'])} / {fmt(o['p99'])}", "", ""],
            ["p99 / single-frame", fmt(o["p99_over_single"], 2) + "x", f"<= {OVERLOAD_P99_RATIO_TARGET}x",
             verdict(at_most(o["p99_over_single"], OVERLOAD_P99_RATIO_TARGET))],
            ["input rate achieved (Hz)", fmt(o["sent"] / o["seconds"]), f"{rate:.0f}", ""],
            ["frames sent / node received / masks", f"{fmt(o['sent'], 0)} / {fmt(o['node_frames_in'], 0)} / "
                                                     f"{fmt(o['masks'], 0)}", "", ""],
            ["dropped (slot, diagnostics)", fmt(o["dropped"], 0), "", ""],
            ["latency p50 first / last quarter", f"{fmt(o['first_quarter_p50_ms'])} / {fmt(o['last_quarter_p50_ms'])}"
                                                  f" ({percent(o['latency_growth'])})", "no growth",
             verdict(at_most(o["latency_growth"], 0.10))],
            ["RSS first / last sample MiB", f"{fmt(o['rss_first_mib'])} / {fmt(o['rss_last_mib'])} "
                                            f"({percent(o['rss_growth'])})", f"<= +{RSS_GROWTH_TARGET * 100:.0f} %",
             verdict(rss_ok)],
            ["node peak RSS (VmHWM) MiB", fmt(o["peak_rss_mib"]), "", ""],
        ]
        parts.append(section(
            f"5-6. Overload: {m['depth']}x{m['width']}-channel conv stack at 256x256, "
            f"{size_text(overload_size)} input at {rate:.0f} Hz for {plan['overload_seconds']:.0f} s "
            f"(median of {plan['repeats']} runs)",
            table(["", "value", "target", ""], rows),
            "Latencies are of the frames that got a mask. 'no growth': last-quarter median at most 10 % "
            "above the first. RSS sampled every 0.5 s (VmRSS) during the 30 Hz phase."))
    return "\n".join(parts)


def render_peer(peer: dict[str, Any], plan: dict[str, Any], rate: float) -> str:
    ours, theirs = peer["single"]["ours"], peer["single"]["peer"]

    def ratio(key: str, source: tuple[dict[str, Any], dict[str, Any]] = (ours, theirs)) -> float:
        a, b = source[0].get(key), source[1].get(key)
        return float("nan") if a is None or b is None or not b else a / b

    rows = [
        ["one frame at a time, 256x256: p50", fmt(ours["p50"]), fmt(theirs["p50"]), fmt(ratio("p50"), 2) + "x",
         f"<= {PEER_P50_RATIO_TARGET}x", verdict(at_most(ratio("p50"), PEER_P50_RATIO_TARGET))],
        ["p95", fmt(ours["p95"]), fmt(theirs["p95"]), fmt(ratio("p95"), 2) + "x", "", ""],
        ["p99", fmt(ours["p99"]), fmt(theirs["p99"]), fmt(ratio("p99"), 2) + "x",
         f"<= {PEER_P99_RATIO_TARGET}x", verdict(at_most(ratio("p99"), PEER_P99_RATIO_TARGET))],
        ["peak RSS MiB", fmt(ours["peak_rss_mib"], 0), fmt(theirs["peak_rss_mib"], 0),
         fmt(ratio("peak_rss_mib"), 2) + "x", f"<= {PEER_RSS_RATIO_TARGET}x",
         verdict(at_most(ratio("peak_rss_mib"), PEER_RSS_RATIO_TARGET))],
    ]
    if "overload" in peer:
        o_ours, o_peer = peer["overload"]["ours"], peer["overload"]["peer"]
        over = (o_ours, o_peer)
        rows += [
            [f"overload {rate:.0f} Hz, ~{fmt(peer['overload_forward_ms'], 0)} ms model: p50 (last 5 s)",
             fmt(o_ours["p50"]), fmt(o_peer["p50"]), fmt(ratio("p50", over), 2) + "x", "< 1x",
             verdict(at_most(ratio("p50", over), 1.0))],
            ["overload p99 (last 5 s)", fmt(o_ours["p99"]), fmt(o_peer["p99"]), fmt(ratio("p99", over), 2) + "x",
             "< 1x", verdict(at_most(ratio("p99", over), 1.0))],
            ["overload masks/s", fmt(o_ours["masks_per_s"]), fmt(o_peer["masks_per_s"]),
             fmt(ratio("masks_per_s", over), 2) + "x", "", ""],
            ["overload peak RSS MiB", fmt(o_ours["peak_rss_mib"], 0), fmt(o_peer["peak_rss_mib"], 0),
             fmt(ratio("peak_rss_mib", over), 2) + "x", "", ""],
        ]
    agreement = peer.get("mask_agreement")
    return section(
        f"7. Against a plain callback node (bench/peer_node.py, written like the Nav2 tutorial's), same ONNX "
        f"model, alternating, median of {plan['repeats']} runs",
        table(["", "ours", "peer", "ours/peer", "target", ""], rows),
        "Model: the default selfie network exported to ONNX with a two-channel logits head, 256x256 frames "
        "(the peer cannot resize); both nodes subscribed on mask and confidence. Overload: the conv stack "
        "exported to ONNX, its depth calibrated with ONNX Runtime. Masks identical on "
        f"{'-' if agreement is None else f'{agreement * 100:.1f} %'} of the pixels of the last frame.")


if __name__ == "__main__":
    sys.exit(main())
