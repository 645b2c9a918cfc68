"""Round trips over DDS between this process and another: segmentation_node (started with
devtools.harness) or the echo node (the transport floor).

Latency is publish of an rgb8 frame (best effort, stamp = now) -> receipt of the output with
the same stamp here, both on time.perf_counter. Every run gets its own namespace so a
previous run's endpoints, still being torn down, never answer.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.qos import QoSProfile
from sensor_msgs.msg import Image

from devtools.harness import SENSOR_QOS, Spinner, start_node, stop_process, wait_until
from seg_perception.live.stats import FRAME_COUNTERS

from .measures import growth, median, percentiles, quarter_medians
from .procstat import RssSampler, peak_rss_mib

CONNECT_TIMEOUT = 90.0
"""node start: interpreter + torch import + model load + warm-up, on a busy 2-core machine"""
FRAME_TIMEOUT = 3.0
"""a best-effort frame whose output has not come back by then counts as lost"""
WARMUP_FRAMES = 3
DIAG_PERIOD = 0.5
OUTPUT_QOS = QoSProfile(depth=50)
"""reliable: matches the node's reliable outputs (a best-effort reader would match too)"""


def stamp_key(stamp: Any) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


class StampLog:
    """Receipt time (perf_counter) of each output, by header stamp; the message is dropped at
    once so a 1080p flood does not pile up gigabytes here."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.received: dict[int, float] = {}

    def on_msg(self, msg: Image) -> None:
        now = time.perf_counter()
        with self.cond:
            self.received[stamp_key(msg.header.stamp)] = now
            self.cond.notify_all()

    def wait(self, key: int, timeout: float) -> float | None:
        with self.cond:
            self.cond.wait_for(lambda: key in self.received, timeout)
            return self.received.get(key)

    def snapshot(self) -> dict[int, float]:
        with self.cond:
            return dict(self.received)


class DiagLog:
    """The latest key/values of each diagnostics status, with the time they arrived, by
    "<hardware_id> <status name>": the node names its status `<node name>: segmentation` (as
    diagnostic_updater does) and puts its fully qualified name in hardware_id, which tells
    apart equally named nodes in different namespaces."""

    def __init__(self, node: Node) -> None:
        self.cond = threading.Condition()
        self.latest: dict[str, tuple[float, dict[str, str]]] = {}
        self.sub = node.create_subscription(DiagnosticArray, "/diagnostics", self._on_msg, QoSProfile(depth=20))

    def _on_msg(self, msg: DiagnosticArray) -> None:
        now = time.perf_counter()
        with self.cond:
            for status in msg.status:
                self.latest[f"{status.hardware_id} {status.name}"] = (now, {kv.key: kv.value for kv in status.values})
            self.cond.notify_all()

    def newer_than(self, status_name: str, since: float, timeout: float) -> dict[str, str] | None:
        """Key/values of `status_name` from a message that arrived after `since`."""
        def fresh() -> bool:
            entry = self.latest.get(status_name)
            return entry is not None and entry[0] > since
        with self.cond:
            if not self.cond.wait_for(fresh, timeout):
                return None
            return self.latest[status_name][1]


def counters_delta(before: Mapping[str, str] | None, after: Mapping[str, str] | None) -> dict[str, int | None]:
    keys = tuple(k for k in FRAME_COUNTERS if k != "rejected_inputs")
    if before is None or after is None:
        return {key: None for key in keys}
    return {key: int(after[key]) - int(before[key]) for key in keys}


class Session:
    """One peer's image publisher and output subscription on the bench node."""

    def __init__(self, node: Node, image_topic: str, output_topic: str) -> None:
        self.node = node
        self.clock = node.get_clock()
        self.pub = node.create_publisher(Image, image_topic, SENSOR_QOS)
        self.log = StampLog()
        self.sub = node.create_subscription(Image, output_topic, self.log.on_msg, OUTPUT_QOS)

    def wait_connected(self, proc: subprocess.Popen, timeout: float = CONNECT_TIMEOUT) -> float:
        """Seconds until the peer subscribes to our frames and publishes to our output."""
        start = time.perf_counter()
        wait_until(lambda: proc.poll() is not None or (self.pub.get_subscription_count() > 0
                                                      and self.sub.get_publisher_count() > 0),
                   timeout, "the peer process to connect")
        if proc.poll() is not None:
            raise RuntimeError(f"the peer process exited with code {proc.returncode}")
        return time.perf_counter() - start

    def send(self, msg: Image) -> tuple[int, float]:
        msg.header.stamp = self.clock.now().to_msg()
        sent = time.perf_counter()
        self.pub.publish(msg)
        return stamp_key(msg.header.stamp), sent

    def warm(self, msg: Image, wanted: int = WARMUP_FRAMES, attempts: int = 30,
             timeout: float = FRAME_TIMEOUT) -> None:
        """Send until `wanted` outputs came back: the first best-effort frames can be lost while
        the peer's reader is still matching our writer."""
        got = 0
        for _ in range(attempts):
            key, _ = self.send(msg)
            if self.log.wait(key, timeout) is not None:
                got += 1
                if got >= wanted:
                    return
        raise RuntimeError(f"only {got} of {wanted} warm-up frames came back in {attempts} attempts")

    def round_trips(self, msg: Image, frames: int, timeout: float = FRAME_TIMEOUT) -> tuple[list[float], int]:
        """One frame at a time, each after the previous output came back: (latencies ms, lost)."""
        latencies: list[float] = []
        lost = 0
        for _ in range(frames):
            key, sent = self.send(msg)
            received = self.log.wait(key, timeout)
            if received is None:
                lost += 1
            else:
                latencies.append((received - sent) * 1e3)
        return latencies, lost

    def flood(self, msg: Image, seconds: float) -> dict[str, Any]:
        """Publish as fast as this thread can for `seconds`; count the outputs that arrive meanwhile."""
        sent: dict[int, float] = {}
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            key, when = self.send(msg)
            sent[key] = when
            time.sleep(0)  # let the spinner thread take outputs
        end = time.perf_counter()
        received = self.log.snapshot()
        latencies = [(received[k] - t) * 1e3 for k, t in sent.items() if k in received and received[k] <= end]
        seconds_run = end - start
        return {"seconds": seconds_run, "sent": len(sent), "sent_per_s": len(sent) / seconds_run,
                "outputs": len(latencies), "outputs_per_s": len(latencies) / seconds_run,
                "latency_p50_ms": percentiles(latencies, (50,))["p50"], "end": end}

    def paced(self, msg: Image, rate_hz: float, seconds: float) -> dict[int, float]:
        """Publish from a timer on the bench node's executor at `rate_hz` for `seconds`; returns
        send times by stamp."""
        sent: dict[int, float] = {}

        def tick() -> None:
            key, when = self.send(msg)
            sent[key] = when

        timer = self.node.create_timer(1.0 / rate_hz, tick)
        time.sleep(seconds)
        timer.cancel()
        self.node.destroy_timer(timer)
        return dict(sent)

    def close(self) -> None:
        self.node.destroy_subscription(self.sub)
        self.node.destroy_publisher(self.pub)


class Bench:
    """This process's side of the graph: one rclpy node, spun on a background thread."""

    def __init__(self) -> None:
        rclpy.init()
        self.node = rclpy.create_node(f"seg_bench_{os.getpid()}")
        self.diag = DiagLog(self.node)
        self.spinner = Spinner(self.node)

    def session(self, image_topic: str, output_topic: str) -> Session:
        return Session(self.node, image_topic, output_topic)

    def close(self) -> None:
        self.spinner.close()
        self.node.destroy_node()
        rclpy.try_shutdown()


_runs = iter(range(1_000_000))


def _namespace(tag: str) -> str:
    return f"/bench_{os.getpid()}_{next(_runs)}_{tag}"


def _node_params(model: str, device: str, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {"model": model, "device": device, "use_depth": False, "diagnostics_period": DIAG_PERIOD,
            **(extra or {})}


@dataclass
class NodeProcess:
    proc: subprocess.Popen
    namespace: str
    name: str
    log_path: Path
    rss: RssSampler = field(init=False)

    def __post_init__(self) -> None:
        self.rss = RssSampler(self.proc.pid)

    @property
    def status_name(self) -> str:
        return f"{self.namespace}/{self.name} {self.name}: segmentation"

    def stop(self) -> int:
        self.rss.close()
        return stop_process(self.proc)


def _start_segmentation_node(model: str, device: str, log_dir: Path, tag: str,
                             extra: Mapping[str, Any] | None = None) -> NodeProcess:
    namespace = _namespace(tag)
    name = "seg_bench_node"
    log_path = log_dir / f"node{namespace.replace('/', '_')}.log"
    proc = start_node(_node_params(model, device, extra), {"__ns": namespace}, log_path=log_path, name=name)
    return NodeProcess(proc, namespace, name, log_path)


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text().splitlines()[-lines:])
    except OSError:
        return ""


def node_run(bench: Bench, msg: Image, model: str, device: str, frames: int, flood_seconds: float,
             log_dir: Path, tag: str, floor: Callable[[], float] | None = None,
             extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One segmentation_node process: `frames` one-at-a-time round trips, then a flood.
    `floor` times the bare forward here, just before and just after the node's run; `extra`
    are more node parameters (runtime, cpu_threads, ...)."""
    floor_before = floor() if floor is not None else None
    node = _start_segmentation_node(model, device, log_dir, tag, extra)
    session = bench.session(f"{node.namespace}/image", f"{node.namespace}/segmentation/mask")
    try:
        connect_s = session.wait_connected(node.proc)
        session.warm(msg)
        latencies, lost = session.round_trips(msg, frames)
        before = bench.diag.newer_than(node.status_name, time.perf_counter(), 5 * DIAG_PERIOD + 2)
        flood = session.flood(msg, flood_seconds) if flood_seconds > 0 else None
        # Counters once the node has worked off the flood (its slot holds at most one frame).
        time.sleep(0.5)
        after = bench.diag.newer_than(node.status_name, time.perf_counter(), 5 * DIAG_PERIOD + 2)
        peak = peak_rss_mib(node.proc.pid)
    except (RuntimeError, TimeoutError) as exc:
        raise RuntimeError(f"{exc}\n--- node log {node.log_path} ---\n{_log_tail(node.log_path)}") from exc
    finally:
        session.close()
        node.stop()
    floor_after = floor() if floor is not None else None
    delta = counters_delta(before, after)
    result: dict[str, Any] = {"bare_forward_ms": median([floor_before, floor_after]), "connect_s": connect_s,
                              "frames": frames, "lost": lost,
                              **percentiles(latencies),
                              "peak_rss_mib": peak,
                              "node_inference_ms": _float(before, "inference_ms"),
                              "node_pipeline_ms": _float(before, "pipeline_ms"),
                              **{f"node_{key}": float(value) for key, value in (before or {}).items()
                                 if key.startswith("stage_")}}
    if flood is not None:
        result.update({"flood_seconds": flood["seconds"], "flood_sent_per_s": flood["sent_per_s"],
                       "flood_masks_per_s": flood["outputs_per_s"], "flood_latency_p50_ms": flood["latency_p50_ms"],
                       "flood_node_frames_in": delta["frames_in"], "flood_node_frames_out": delta["frames_out"],
                       "flood_dropped": delta["dropped_frames"], "flood_sent": flood["sent"],
                       "flood_errors": delta["errors"],
                       "flood_undelivered": (flood["sent"] - delta["frames_in"]
                                             if delta["frames_in"] is not None else None)})
    return result


def _float(values: Mapping[str, str] | None, key: str) -> float | None:
    return None if values is None or key not in values else float(values[key])


def echo_run(bench: Bench, msg: Image, frames: int, log_dir: Path, tag: str) -> dict[str, Any]:
    """The transport floor: the same round trip through bench/echo_node.py."""
    namespace = _namespace(tag)
    log_path = log_dir / f"echo{namespace.replace('/', '_')}.log"
    script = Path(__file__).with_name("echo_node.py")
    cmd = [sys.executable, str(script), "--ros-args", "-r", f"__ns:={namespace}"]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    session = bench.session(f"{namespace}/image", f"{namespace}/mask")
    try:
        connect_s = session.wait_connected(proc)
        session.warm(msg)
        latencies, lost = session.round_trips(msg, frames)
    except (RuntimeError, TimeoutError) as exc:
        raise RuntimeError(f"{exc}\n--- echo log {log_path} ---\n{_log_tail(log_path)}") from exc
    finally:
        session.close()
        stop_process(proc)
    return {"connect_s": connect_s, "frames": frames, "lost": lost, **percentiles(latencies)}


def overload_run(bench: Bench, msg: Image, model_path: str, device: str, seconds: float, rate_hz: float,
                 single_frames: int, log_dir: Path, tag: str) -> dict[str, Any]:
    """The heavy model fed at `rate_hz` (faster than it can run) for `seconds`."""
    node = _start_segmentation_node(model_path, device, log_dir, tag)
    session = bench.session(f"{node.namespace}/image", f"{node.namespace}/segmentation/mask")
    try:
        session.wait_connected(node.proc)
        session.warm(msg, timeout=10.0)
        single, _ = session.round_trips(msg, single_frames, timeout=10.0)
        before = bench.diag.newer_than(node.status_name, time.perf_counter(), 5 * DIAG_PERIOD + 2)
        start = time.perf_counter()
        sent = session.paced(msg, rate_hz, seconds)
        end = time.perf_counter()
        # Whatever is in flight at the end needs at most ~2 processing times to come back.
        time.sleep(max(1.0, 3 * median(single) / 1e3))
        after = bench.diag.newer_than(node.status_name, time.perf_counter(), 5 * DIAG_PERIOD + 2)
        peak = peak_rss_mib(node.proc.pid)
    except (RuntimeError, TimeoutError) as exc:
        raise RuntimeError(f"{exc}\n--- node log {node.log_path} ---\n{_log_tail(node.log_path)}") from exc
    finally:
        session.close()
        node.stop()
    received = session.log.snapshot()
    pairs = sorted((t, (received[k] - t) * 1e3) for k, t in sent.items() if k in received)
    latencies = [lat for _, lat in pairs]
    first_q, last_q = quarter_medians([t for t, _ in pairs], latencies)
    rss = node.rss.between(start, end)
    delta = counters_delta(before, after)
    single_ms = median(single)
    stats = percentiles(latencies)
    return {"seconds": end - start, "rate_hz": rate_hz, "single_frame_ms": single_ms,
            **stats, "p99_over_single": stats["p99"] / single_ms,
            "sent": len(sent), "masks": len(latencies), "node_frames_in": delta["frames_in"],
            "node_frames_out": delta["frames_out"], "dropped": delta["dropped_frames"],
            "errors": delta["errors"], "first_quarter_p50_ms": first_q, "last_quarter_p50_ms": last_q,
            "latency_growth": growth(first_q, last_q),
            "rss_first_mib": rss[0] if rss else None, "rss_last_mib": rss[-1] if rss else None,
            "rss_growth": growth(rss[0], rss[-1]) if rss else None, "rss_samples": len(rss),
            "peak_rss_mib": peak, "node_inference_ms": _float(after, "inference_ms"),
            "node_pipeline_ms": _float(after, "pipeline_ms")}
