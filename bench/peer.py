"""segmentation_node against the peer (bench/peer_node.py, a plain callback node written like
the Nav2 tutorial's), with the same ONNX model, alternating in one run.

Two ONNX models are exported here at run time (torch is only needed by this benchmark process):
- the default selfie network at 256x256 with a two-channel logits head (background 0, person
  logit(p)), so the peer's argmax/softmax and our post-processing read the same output;
- the overload conv stack of bench/heavy_model.py, exported to ONNX (~65 ms a forward here).

Per repeat and node: frames one at a time at 256x256 (the model's own size: the peer cannot
resize), then peak RSS; per overload repeat: 30 Hz for `seconds`, latencies of the last 5 s
and masks per second. Both nodes are subscribed on mask and confidence, so both compute both.
"""
from __future__ import annotations

import subprocess
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import Image

from devtools.harness import start_node, stop_process

from .dds import DIAG_PERIOD, OUTPUT_QOS, Bench, _log_tail, _namespace, stamp_key
from .measures import median_of_dicts, percentiles
from .procstat import peak_rss_mib

SIZE = 256
SELFIE_DESCRIPTION = """\
# Written by bench/peer.py: the builtin selfie network with a two-channel logits head.
name: selfie_logits
input: {{width: {size}, height: {size}, color_order: rgb, scale: 0.00392156862745098,
        mean: [0.0, 0.0, 0.0], std: [1.0, 1.0, 1.0], resize: stretch}}
output: logits
classes:
  - background
  - {{name: person, color: [220, 20, 60], obstacle: true}}
"""
LAST_SECONDS = 5.0
"""overload latencies are taken from the last seconds of the run: the steady state"""


def _export_onnx(module: Any, path: Path, size: int = SIZE) -> Path:
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # dynamo=False: the torch.export-based exporter needs onnxscript, absent here.
        torch.onnx.export(module.eval(), (torch.zeros(1, 3, size, size),), str(path), dynamo=False,
                          input_names=["input"], output_names=["logits"], opset_version=17)
    return path


def export_selfie_logits(folder: Path) -> Path:
    import torch

    from seg_perception.models.selfie import load_selfie

    class Logits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = load_selfie("square")

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            person = torch.logit(self.net(x), eps=1e-6)
            return torch.cat([torch.zeros_like(person), person], dim=1)

    (folder / "selfie_logits.yaml").write_text(SELFIE_DESCRIPTION.format(size=SIZE))
    return _export_onnx(Logits(), folder / "selfie_logits.onnx")


def _ort_forward_ms(path: Path, size: int, repeats: int = 7) -> float:
    """Fastest of `repeats` ONNX Runtime forwards (default session, as the peer runs it)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = {session.get_inputs()[0].name: np.random.default_rng(0).random((1, 3, size, size), np.float32)}
    session.run(None, x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        session.run(None, x)
        times.append((time.perf_counter() - start) * 1e3)
    return min(times)


def export_heavy(folder: Path, target_ms: float) -> tuple[Path, int, float]:
    """The conv stack as ONNX, its depth calibrated with ONNX Runtime itself (it runs a conv
    stack at a different speed than torch): (path, depth, forward ms here)."""
    import torch

    from .heavy_model import DESCRIPTION, INPUT_SIZE, _built

    cpu = torch.device("cpu")
    path = folder / "convstack.onnx"
    (folder / "convstack.yaml").write_text(DESCRIPTION.format(size=INPUT_SIZE))

    def timed(depth: int) -> float:
        _export_onnx(_built(depth, cpu), path, INPUT_SIZE)
        return _ort_forward_ms(path, INPUT_SIZE)

    low, high = 4, 16
    t_low, t_high = timed(low), timed(high)
    per_layer = max((t_high - t_low) / (high - low), 1e-3)
    base = min(max(t_low - low * per_layer, 0.0), 0.5 * target_ms)
    depth, measured = high, t_high
    for _ in range(3):
        depth = int(min(max(round((target_ms - base) / per_layer), 1), 1000))
        measured = timed(depth)
        if 0.85 * target_ms <= measured <= 1.15 * target_ms:
            break
        per_layer = max((measured - base) / depth, 1e-3)
    return path, depth, measured


class LastMask:
    """The latest mask's bytes (to check that both nodes publish the same masks)."""

    def __init__(self, node: Node, topic: str) -> None:
        self.lock = threading.Lock()
        self.data: bytes | None = None
        self.node = node
        self.sub = node.create_subscription(Image, topic, self._on_msg, OUTPUT_QOS)
        self.confidence = node.create_subscription(Image, topic.replace("/mask", "/confidence"),
                                                   lambda _msg: None, OUTPUT_QOS)

    def _on_msg(self, msg: Image) -> None:
        with self.lock:
            self.data = bytes(msg.data)

    def close(self) -> bytes | None:
        self.node.destroy_subscription(self.sub)
        self.node.destroy_subscription(self.confidence)
        return self.data


@dataclass
class Peer:
    proc: subprocess.Popen
    namespace: str
    log_path: Path

    def stop(self) -> int:
        return stop_process(self.proc)


def _start(who: str, model: Path, log_dir: Path) -> Peer:
    namespace = _namespace(who)
    log_path = log_dir / f"{who}{namespace.replace('/', '_')}.log"
    if who == "ours":
        params = {"model": str(model), "device": "cpu", "use_depth": False, "diagnostics_period": DIAG_PERIOD}
        proc = start_node(params, {"__ns": namespace}, log_path=log_path, name="seg_bench_node")
    else:
        script = Path(__file__).with_name("peer_node.py")
        cmd = [sys.executable, str(script), "--model", str(model), "--ros-args", "-r", f"__ns:={namespace}"]
        with open(log_path, "w") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    return Peer(proc, namespace, log_path)


def one_at_a_time(bench: Bench, who: str, model: Path, msg: Image, frames: int, log_dir: Path) -> dict[str, Any]:
    peer = _start(who, model, log_dir)
    session = bench.session(f"{peer.namespace}/image", f"{peer.namespace}/segmentation/mask")
    masks = LastMask(bench.node, f"{peer.namespace}/segmentation/mask")
    try:
        session.wait_connected(peer.proc)
        session.warm(msg)
        latencies, lost = session.round_trips(msg, frames)
        peak = peak_rss_mib(peer.proc.pid)
    except (RuntimeError, TimeoutError) as exc:
        raise RuntimeError(f"{exc}\n--- {who} log {peer.log_path} ---\n{_log_tail(peer.log_path)}") from exc
    finally:
        mask = masks.close()
        session.close()
        peer.stop()
    return {"lost": lost, **percentiles(latencies), "peak_rss_mib": peak, "mask": mask}


def overload(bench: Bench, who: str, model: Path, msg: Image, seconds: float, rate_hz: float,
             log_dir: Path) -> dict[str, Any]:
    peer = _start(who, model, log_dir)
    session = bench.session(f"{peer.namespace}/image", f"{peer.namespace}/segmentation/mask")
    masks = LastMask(bench.node, f"{peer.namespace}/segmentation/mask")
    try:
        session.wait_connected(peer.proc)
        session.warm(msg, timeout=10.0)
        sent = session.paced(msg, rate_hz, seconds)
        end = time.perf_counter()
        # A queue of up to 10 frames drains before the process is stopped; its masks are counted.
        time.sleep(2.0)
        peak = peak_rss_mib(peer.proc.pid)
    except (RuntimeError, TimeoutError) as exc:
        raise RuntimeError(f"{exc}\n--- {who} log {peer.log_path} ---\n{_log_tail(peer.log_path)}") from exc
    finally:
        masks.close()
        session.close()
        peer.stop()
    received = session.log.snapshot()
    tail_start = end - LAST_SECONDS
    last = [(received[k] - t) * 1e3 for k, t in sent.items() if k in received and t >= tail_start]
    in_run = sum(1 for k in sent if k in received and received[k] <= end)
    stats = percentiles(last)
    return {"p50": stats["p50"], "p99": stats["p99"], "masks_per_s": in_run / seconds,
            "sent": len(sent), "peak_rss_mib": peak}


def compare(bench: Bench, folder: Path, frames: int, repeats: int, overload_seconds: float, rate_hz: float,
            target_ms: float, log_dir: Path, log: Any) -> dict[str, Any]:
    """Both nodes, alternating which goes first, `repeats` times; medians over repeats."""
    from .inprocess import photo_at, rgb8_message

    model = export_selfie_logits(folder)
    msg = rgb8_message(photo_at(SIZE, SIZE))
    runs: dict[str, list[dict[str, Any]]] = {"ours": [], "peer": []}
    masks: dict[str, bytes | None] = {}
    for repeat in range(repeats):
        for who in (("ours", "peer") if repeat % 2 == 0 else ("peer", "ours")):
            log(f"peer comparison {repeat + 1}/{repeats}: {who}, {frames} frames one at a time at {SIZE}x{SIZE}")
            result = one_at_a_time(bench, who, model, msg, frames, log_dir)
            masks[who] = result.pop("mask")
            runs[who].append(result)
    same = None
    if masks.get("ours") is not None and masks.get("peer") is not None:
        ours_mask = np.frombuffer(masks["ours"] or b"", np.uint8)
        peer_mask = np.frombuffer(masks["peer"] or b"", np.uint8)
        same = float((ours_mask == peer_mask).mean()) if ours_mask.size == peer_mask.size else 0.0
    out: dict[str, Any] = {"single": {who: median_of_dicts(r) for who, r in runs.items()}, "single_runs": runs,
                           "mask_agreement": same}
    if overload_seconds > 0:
        log(f"peer comparison: exporting the overload conv stack to ONNX (~{target_ms:.0f} ms a forward)")
        heavy, depth, forward_ms = export_heavy(folder, target_ms)
        over_runs: dict[str, list[dict[str, Any]]] = {"ours": [], "peer": []}
        for repeat in range(repeats):
            for who in (("ours", "peer") if repeat % 2 == 0 else ("peer", "ours")):
                log(f"peer overload {repeat + 1}/{repeats}: {who}, {rate_hz:.0f} Hz for {overload_seconds:.0f} s")
                over_runs[who].append(overload(bench, who, heavy, msg, overload_seconds, rate_hz, log_dir))
        out.update(overload={who: median_of_dicts(r) for who, r in over_runs.items()}, overload_runs=over_runs,
                   overload_depth=depth, overload_forward_ms=forward_ms)
    return out
