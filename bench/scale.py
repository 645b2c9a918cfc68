"""Scaling benchmark: N cameras in one node against N separate nodes, and N nodes sharing one
Triton server (serve_triton) against N nodes with local inference.

    bash scripts/run.sh python bench/scale.py [--counts 1,2,4] [--rate 10] [--seconds 10] ...

Every camera is fed the same real photo (scikit-image's astronaut) at --rate Hz, best effort,
stamped with the send time; latency is send -> mask received here (per camera, all cameras
pooled for the percentiles). Throughput is masks received per second over the run, all cameras
together, and the slowest camera's share shows whether one camera starves another. RSS is the
resident memory of every process that serves the cameras (nodes, and the server with its
tritonserver and Python backend stub), summed at the end of the run. Results go to
out/bench/scale.md and out/bench/scale.json.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    # See bench/run.py: appended so that seg_perception stays the installed package.
    sys.path.append(str(Path(__file__).resolve().parent.parent))

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Setup:
    kind: str
    """'cameras' (one node, N cameras), 'nodes' (N local nodes), 'triton' (N nodes, one server)"""
    count: int


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/scale.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", default="1,2,4", help="numbers of cameras / nodes (default 1,2,4)")
    parser.add_argument("--kinds", default="cameras,nodes,triton",
                        help="cameras (one node), nodes (separate nodes), triton (nodes on one server)")
    parser.add_argument("--rate", type=float, default=10.0, help="frames per second per camera (default 10)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per setup (default 10)")
    parser.add_argument("--size", default="640x480", help="frame size WIDTHxHEIGHT (default 640x480)")
    parser.add_argument("--model", default="selfie", help="builtin model (served by serve_triton for 'triton')")
    parser.add_argument("--max-batch", type=int, default=4, help="serve_triton --max-batch (default 4)")
    parser.add_argument("--out", default=str(ROOT / "out" / "bench"), help="output folder")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    import cv2
    from sensor_msgs.msg import Image

    from bench.dds import Bench
    from bench.measures import parse_size, size_text
    from devtools.triton import TritonServer
    from seg_perception.wire.images import fill_image
    from seg_perception.offline.sources import sample_photo

    size = parse_size(args.size)
    counts = [int(c) for c in args.counts.split(",") if c.strip()]
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    out_dir = Path(args.out)
    log_dir = out_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    rgb = cv2.resize(sample_photo("astronaut"), size, interpolation=cv2.INTER_AREA)

    def frame() -> Image:
        msg = Image()
        msg.header.frame_id = "camera_optical"
        fill_image(msg, rgb, "rgb8")
        return msg

    bench = Bench()
    server: TritonServer | None = None
    results: list[dict[str, Any]] = []
    load_start = os.getloadavg()
    try:
        if "triton" in kinds:
            server = TritonServer(args.model, log_path=log_dir / "serve_triton.log",
                                  extra=["--max-batch", str(args.max_batch)]).start()
            ready_s = server.wait_ready()
            print(f"[scale] serve_triton ready in {ready_s:.1f} s", flush=True)
        for kind in kinds:
            for count in counts:
                setup = Setup(kind, count)
                row = run_setup(bench, setup, frame, args, log_dir, server)
                results.append(row)
                print(f"[scale] {kind} x{count}: {row['masks_per_s']:.1f} masks/s, p50 {row['p50']:.0f} ms, "
                      f"p99 {row['p99']:.0f} ms, RSS {row['rss_mib']:.0f} MiB", flush=True)
    finally:
        if server is not None:
            server.stop()
        bench.close()
    report = render(results, args, size_text(size), load_start, os.getloadavg())
    print(report)
    (out_dir / "scale.md").write_text(report)
    (out_dir / "scale.json").write_text(json.dumps({
        "args": vars(args), "results": results, "load_start": load_start, "load_end": os.getloadavg(),
        "cpus": os.cpu_count(), "machine": platform.platform()}, indent=2))
    return 0


def run_setup(bench: Any, setup: Setup, frame: Any, args: argparse.Namespace, log_dir: Path,
              server: Any) -> dict[str, Any]:
    from bench.dds import DIAG_PERIOD, _namespace
    from bench.measures import percentiles
    from bench.procstat import status_kib
    from devtools.harness import start_node, stop_process

    params: dict[str, Any] = {"use_depth": False, "diagnostics_period": DIAG_PERIOD,
                              "model": server.model_uri if setup.kind == "triton" else args.model}
    procs: list[Any] = []
    prefixes: list[str] = []
    if setup.kind == "cameras":
        namespace = _namespace(f"cams{setup.count}")
        cameras = [f"cam{i}" for i in range(setup.count)]
        procs.append(start_node({**params, "cameras": cameras}, {"__ns": namespace}, name="seg_scale",
                                log_path=log_dir / f"node{namespace.replace('/', '_')}.log"))
        prefixes = [f"{namespace}/{c}" for c in cameras]
    else:
        for i in range(setup.count):
            namespace = _namespace(f"{setup.kind}{setup.count}_{i}")
            procs.append(start_node(params, {"__ns": namespace}, name="seg_scale",
                                    log_path=log_dir / f"node{namespace.replace('/', '_')}.log"))
            prefixes.append(namespace)
    sessions = [bench.session(f"{p}/image", f"{p}/segmentation/mask") for p in prefixes]
    msgs = [frame() for _ in sessions]
    try:
        for index, session in enumerate(sessions):
            session.wait_connected(procs[0] if setup.kind == "cameras" else procs[index])
            session.warm(msgs[index], timeout=10.0)
        sent = paced_all(bench, sessions, msgs, args.rate, args.seconds)
        time.sleep(1.0)  # the last frames' masks
        latencies: list[float] = []
        per_camera: list[int] = []
        for session, sent_times in zip(sessions, sent):
            received = session.log.snapshot()
            got = [(received[k] - t) * 1e3 for k, t in sent_times.items() if k in received]
            latencies += got
            per_camera.append(len(got))
        pids = [p.pid for p in procs] + (server.pids() if setup.kind == "triton" and server is not None else [])
        rss = sum((status_kib(pid, "VmRSS") or 0) for pid in pids) / 1024.0
    finally:
        for session in sessions:
            session.close()
        for proc in procs:
            stop_process(proc)
    total_sent = sum(len(s) for s in sent)
    return {"kind": setup.kind, "count": setup.count, "sent": total_sent, "masks": len(latencies),
            "masks_per_s": len(latencies) / args.seconds,
            "slowest_camera_share": (min(per_camera) / max(max(per_camera), 1)) if per_camera else 0.0,
            **percentiles(latencies, (50, 99)), "rss_mib": rss, "processes": len(pids)}


def paced_all(bench: Any, sessions: Sequence[Any], msgs: Sequence[Any], rate_hz: float,
              seconds: float) -> list[dict[int, float]]:
    """Every camera publishes at `rate_hz` from one timer for `seconds`; send times by stamp."""
    sent: list[dict[int, float]] = [{} for _ in sessions]

    def tick() -> None:
        for index, session in enumerate(sessions):
            key, when = session.send(msgs[index])
            sent[index][key] = when

    timer = bench.node.create_timer(1.0 / rate_hz, tick)
    time.sleep(seconds)
    timer.cancel()
    bench.node.destroy_timer(timer)
    return [dict(s) for s in sent]


_TITLES = {"cameras": "N cameras, one node", "nodes": "N nodes, local inference",
           "triton": "N nodes, one Triton server"}


def render(results: Sequence[dict[str, Any]], args: argparse.Namespace, size: str,
           load_start: Sequence[float], load_end: Sequence[float]) -> str:
    from bench.report import fmt, table

    rows = [[_TITLES[r["kind"]], str(r["count"]), f"{r['count'] * args.rate:g}", fmt(r["masks_per_s"]),
             fmt(r["p50"], 0), fmt(r["p99"], 0), f"{r['slowest_camera_share']:.2f}", fmt(r["rss_mib"], 0),
             str(r["processes"])] for r in results]
    head = (f"{size} rgb8 frames at {args.rate:g} Hz per camera for {args.seconds:g} s, model {args.model}, "
            f"serve_triton --max-batch {args.max_batch}; {os.cpu_count()} CPUs, load average "
            f"{load_start[0]:.1f} at start, {load_end[0]:.1f} at end; OMP_NUM_THREADS="
            f"{os.environ.get('OMP_NUM_THREADS', 'unset')}.\n\n")
    return head + table(["setup", "N", "offered/s", "masks/s", "p50 ms", "p99 ms", "slowest cam", "RSS MiB",
                         "procs"], rows) + "\n"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
