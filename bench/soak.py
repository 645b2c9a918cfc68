"""Soak: a camera at full rate for minutes, every output subscribed, memory must stay flat.

    make soak            # 1920x1080 rgb8 at 30 Hz for 120 s, depth + camera_info beside it
    bash scripts/run.sh python bench/soak.py --seconds 300 --size 1280x720 --rate 15

Reports, per window (default 10 s): the node's resident memory (VmRSS from /proc, max in the
window), mask latency p50/p99 (publish here -> mask back here, frames sent in the window),
frames sent, masks received and the node's own counters (frames in/out, dropped by latest-wins,
rejected, errors) from /diagnostics. Exits 1 when memory is not flat: the mean RSS of the last
window more than max(5 %, 64 MiB) above the first window after warm-up. Writes the table to
out/bench/soak.md.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.append(str(Path(__file__).resolve().parent.parent))  # see bench/run.py

import argparse  # noqa: E402
import os  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, PointCloud2  # noqa: E402

from bench.dds import OUTPUT_QOS, Bench, StampLog, stamp_key  # noqa: E402
from bench.measures import parse_size, percentiles  # noqa: E402
from bench.procstat import RssSampler  # noqa: E402
from devtools.harness import SENSOR_QOS, start_node, stop_process, wait_until  # noqa: E402
from seg_perception.wire.images import fill_image  # noqa: E402
from seg_perception.offline.sources import sample_photo  # noqa: E402
from seg_perception.live.stats import FRAME_COUNTERS  # noqa: E402
from seg_perception.wire.topics import STREAMS  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUTPUTS: dict[str, type] = {"mask": Image, "confidence": Image, "color_mask": Image, "overlay": Image,
                            "camera_info": CameraInfo, "points": PointCloud2, "obstacle_points": PointCloud2,
                            "depth_filtered": Image}
"""Every output an RGB-D camera gives (scan and ground_points need ground_projection, off here)."""
assert set(OUTPUTS) <= set(STREAMS) and set(STREAMS) - set(OUTPUTS) == {"scan", "ground_points"}
COUNTERS = FRAME_COUNTERS
FLAT_RELATIVE = 0.05
FLAT_ABSOLUTE_MIB = 64.0


@dataclass
class Window:
    index: int
    start: float
    end: float
    rss_max_mib: float
    rss_mean_mib: float
    sent: int
    masks: int
    p50_ms: float
    p99_ms: float
    node: dict[str, int | None]


class Counter:
    """Counts the messages of one output; drops them at once (a 1080p cloud is 41 MB)."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def __call__(self, _msg: Any) -> None:
        with self._lock:
            self.count += 1


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--rate", type=float, default=30.0, help="camera rate (Hz)")
    parser.add_argument("--size", default="1920x1080", help="color image WIDTHxHEIGHT")
    parser.add_argument("--depth-size", default="960x540", help="registered depth WIDTHxHEIGHT (16UC1)")
    parser.add_argument("--window", type=float, default=10.0, help="seconds per reported window")
    parser.add_argument("--warmup-windows", type=int, default=1, help="windows left out of the flatness test")
    parser.add_argument("--model", default="selfie")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default=str(ROOT / "out" / "bench" / "soak.md"))
    return parser.parse_args(argv)


def camera_messages(size: tuple[int, int], depth_size: tuple[int, int]) -> tuple[Image, Image, CameraInfo]:
    width, height = size
    rgb = cv2.resize(sample_photo("astronaut"), size, interpolation=cv2.INTER_AREA)
    image = Image()
    image.header.frame_id = "soak_camera"
    fill_image(image, rgb, "rgb8")
    dw, dh = depth_size
    # A tilted floor plane 1-5 m away: every pixel valid, so the clouds are full size.
    depth_mm = np.linspace(1000, 5000, dh, dtype=np.float32)[:, None].repeat(dw, axis=1).astype(np.uint16)
    depth = Image()
    depth.header.frame_id = "soak_camera"
    fill_image(depth, depth_mm, "16UC1")
    info = CameraInfo()
    info.header.frame_id = "soak_camera"
    info.width, info.height = width, height
    f = 0.8 * width
    info.k = [f, 0.0, (width - 1) / 2, 0.0, f, (height - 1) / 2, 0.0, 0.0, 1.0]
    info.p = [f, 0.0, (width - 1) / 2, 0.0, 0.0, f, (height - 1) / 2, 0.0, 0.0, 0.0, 1.0, 0.0]
    return image, depth, info


def run(args: argparse.Namespace) -> tuple[list[Window], dict[str, Any]]:
    size, depth_size = parse_size(args.size), parse_size(args.depth_size)
    image, depth, info = camera_messages(size, depth_size)
    bench = Bench()
    ns = f"/soak_{os.getpid()}"
    name = "seg_soak_node"
    log_dir = Path(tempfile.mkdtemp(prefix="seg_soak_"))
    log_path = log_dir / "node.log"
    proc = start_node({"model": args.model, "device": args.device, "use_depth": True, "diagnostics_period": 1.0},
                      {"__ns": ns}, log_path=log_path, name=name)
    # What bench.dds.Diagnostics keys a status by: the node's full name (hardware_id), then its name.
    status_name = f"{ns}/{name} {name}: segmentation"
    node = bench.node
    pubs = {"image": node.create_publisher(Image, f"{ns}/image", SENSOR_QOS),
            "depth": node.create_publisher(Image, f"{ns}/depth", SENSOR_QOS),
            "info": node.create_publisher(CameraInfo, f"{ns}/camera_info", SENSOR_QOS),
            "depth_info": node.create_publisher(CameraInfo, f"{ns}/depth/camera_info", SENSOR_QOS)}
    masks = StampLog()
    counters = {key: Counter() for key in OUTPUTS}
    subs = [node.create_subscription(msg_type, f"{ns}/segmentation/{key}",
                                     masks.on_msg if key == "mask" else counters[key], OUTPUT_QOS)
            for key, msg_type in OUTPUTS.items()]
    depth_info = CameraInfo()
    depth_info.header.frame_id = "soak_camera"
    depth_info.width, depth_info.height = depth_size
    sx = depth_size[0] / size[0]
    depth_info.k = [v * sx if i in (0, 2, 4, 5) else v for i, v in enumerate(info.k)]
    sent: dict[int, float] = {}
    sent_lock = threading.Lock()

    def tick() -> None:
        stamp = node.get_clock().now().to_msg()
        for msg in (image, depth, info, depth_info):
            msg.header.stamp = stamp
        pubs["info"].publish(info)
        pubs["depth_info"].publish(depth_info)
        pubs["depth"].publish(depth)
        when = time.perf_counter()
        pubs["image"].publish(image)
        with sent_lock:
            sent[stamp_key(stamp)] = when

    rss = RssSampler(proc.pid, period=0.5)
    windows: list[Window] = []
    try:
        wait_until(lambda: proc.poll() is not None or (pubs["image"].get_subscription_count() > 0
                                                       and all(s.get_publisher_count() > 0 for s in subs)),
                   120.0, "the node to connect")
        if proc.poll() is not None:
            raise RuntimeError(f"node exited with {proc.returncode}:\n{log_path.read_text()[-2000:]}")
        timer = node.create_timer(1.0 / args.rate, tick)
        start = time.perf_counter()
        previous = bench.diag.newer_than(status_name, start, 10.0)
        for index in range(int(round(args.seconds / args.window))):
            w_start = start + index * args.window
            w_end = w_start + args.window
            time.sleep(max(0.0, w_end - time.perf_counter()))
            current = bench.diag.newer_than(status_name, w_end, 10.0)
            windows.append(_window(index, w_start, w_end, sent, sent_lock, masks, rss, previous, current))
            previous = current
            print(_row(windows[-1]), flush=True)
        timer.cancel()
        node.destroy_timer(timer)
    finally:
        rss.close()
        exit_code = stop_process(proc)
    log_text = log_path.read_text() if log_path.exists() else ""
    error_lines = [line for line in log_text.splitlines() if "[ERROR]" in line or "Traceback" in line]
    extra = {"exit_code": exit_code, "error_lines": error_lines[:5], "error_line_count": len(error_lines),
             "outputs": {key: (len(masks.snapshot()) if key == "mask" else c.count) for key, c in counters.items()},
             "log": str(log_path)}
    for sub in subs:
        node.destroy_subscription(sub)
    bench.close()
    return windows, extra


def _window(index: int, start: float, end: float, sent: dict[int, float], lock: threading.Lock, masks: StampLog,
            rss: RssSampler, before: dict[str, str] | None, after: dict[str, str] | None) -> Window:
    with lock:
        in_window = {k: t for k, t in sent.items() if start <= t < end}
    received = masks.snapshot()
    latencies = [(received[k] - t) * 1e3 for k, t in in_window.items() if k in received]
    stats = percentiles(latencies, (50, 99))
    samples = rss.between(start, end) or [float("nan")]
    node = {key: (int(after[key]) - int(before[key]) if before and after and key in after else None)
            for key in COUNTERS}
    return Window(index, start, end, max(samples), float(np.mean(samples)), len(in_window), len(latencies),
                  stats["p50"], stats["p99"], node)


HEADER = ("| window | RSS max MiB | RSS mean MiB | sent | masks | latency p50 ms | latency p99 ms "
          "| node in | node out | dropped | rejected | errors |")
RULE = "|---" * (HEADER.count("|") - 1) + "|"


def _row(w: Window) -> str:
    def num(value: int | None) -> str:
        return "-" if value is None else str(value)
    span = f"{w.index * (w.end - w.start):.0f}-{(w.index + 1) * (w.end - w.start):.0f} s"
    return (f"| {span} | {w.rss_max_mib:.0f} | {w.rss_mean_mib:.0f} | {w.sent} | {w.masks} | {w.p50_ms:.0f} | "
            f"{w.p99_ms:.0f} | {num(w.node['frames_in'])} | {num(w.node['frames_out'])} | "
            f"{num(w.node['dropped_frames'])} | {num(w.node['rejected_inputs'])} | {num(w.node['errors'])} |")


def flatness(windows: list[Window], warmup: int) -> tuple[bool, str]:
    steady = windows[warmup:] if len(windows) > warmup + 1 else windows
    first, last = steady[0].rss_mean_mib, steady[-1].rss_mean_mib
    allowed = max(FLAT_RELATIVE * first, FLAT_ABSOLUTE_MIB)
    ok = last - first <= allowed
    return ok, (f"RSS mean {first:.0f} MiB (window {steady[0].index}) -> {last:.0f} MiB (window "
                f"{steady[-1].index}): {last - first:+.0f} MiB, allowed {allowed:.0f} MiB: "
                f"{'flat' if ok else 'GROWING'}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"soak: {args.size} rgb8 at {args.rate:g} Hz for {args.seconds:g} s, depth {args.depth_size} 16UC1, "
          f"every output subscribed, model {args.model}", flush=True)
    print(HEADER)
    print(RULE)
    windows, extra = run(args)
    ok, verdict_text = flatness(windows, args.warmup_windows)
    total_sent = sum(w.sent for w in windows)
    total_masks = sum(w.masks for w in windows)
    lines = [f"soak: {args.size} rgb8 at {args.rate:g} Hz, {args.seconds:g} s, depth {args.depth_size}, "
             f"all outputs subscribed", "", HEADER, RULE,
             *(_row(w) for w in windows), "",
             f"- memory: {verdict_text}",
             f"- frames sent {total_sent}, masks back {total_masks}; outputs received: {extra['outputs']}",
             f"- node exit code on SIGINT: {extra['exit_code']}; error lines in its log: {extra['error_line_count']}"]
    print("\n".join(lines[-3:]))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(f"written to {out}")
    if extra["error_lines"]:
        print("first error lines:\n" + "\n".join(extra["error_lines"]))
    return 0 if ok and extra["exit_code"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
