"""/diagnostics for the node, named as diagnostic_updater names them (`<node name>: <task>`).

Two statuses: `segmentation` (the color frames: rates, latency, failures) and, with use_depth,
`depth` (pairing, depth image and calibration problems, clouds), so a depth fault is reported
as a depth fault and never changes the segmentation verdict.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from ..live import health, stats
from ..live.health import CameraCounters
from ..model.base import RuntimeHealth, runtime_health

if TYPE_CHECKING:
    from .node import SegmentationNode


@dataclass
class NodeState:
    """What the node knows besides its counters."""

    node_name: str
    hardware_id: str
    """Stable for the node's life (diagnostic aggregators group by it): the fully qualified name."""
    configured: bool
    active: bool
    last_error: str
    device: str
    model: str
    use_depth: bool
    input_timeout: float
    max_latency: float
    inference_server: RuntimeHealth | None = None
    """The remote model's connection (triton://); None for a local model."""
    cameras: list[tuple[str, CameraCounters]] = field(default_factory=list)
    """Per-camera counters when the node serves named cameras."""
    ground_projection: bool = False
    input_advice: str = ""
    """Which topic the node waits on and who publishes what nearby, once input_timeout passed."""


def node_state(node: SegmentationNode) -> NodeState:
    """What the node's parts know now, for one diagnostics message."""
    worker, processor = node.worker, node.worker.processor
    model = (processor.class_map.model_name or processor.pipeline.spec.name) if processor else node.param("model")
    cameras = worker.cameras
    return NodeState(
        node_name=node.get_name(), hardware_id=node.get_fully_qualified_name(),
        configured=processor is not None, active=node.inputs.active,
        last_error=node.load_error or worker.last_error,
        device=node.device_text, model=model, use_depth=node.param("use_depth"),
        input_timeout=node.param("input_timeout"), max_latency=node.param("max_latency"),
        inference_server=runtime_health(processor.pipeline.runtime) if processor else None,
        cameras=[(c.label, c.counters) for c in cameras.values()] if len(cameras) > 1 or "" not in cameras else [],
        ground_projection=node.param("ground_projection"),
        input_advice=node.inputs.advice)


def _status(name: str, hardware_id: str, level: int, message: str,
            values: list[tuple[str, str]] | None = None) -> DiagnosticStatus:
    status = DiagnosticStatus(name=name, hardware_id=hardware_id, message=message, level=bytes([level]))
    status.values = [KeyValue(key=k, value=v) for k, v in values or []]
    return status


def build(snap: stats.Snapshot, state: NodeState, stamp: object) -> DiagnosticArray:
    if not state.configured:
        level, message = (stats.ERROR, state.last_error) if state.last_error else (stats.WARN, "not configured")
    elif not state.active:
        level, message = stats.OK, "inactive"
    elif state.inference_server is not None and not state.inference_server.ok and snap.frames_in:
        # The server is down or failing while frames arrive: that, not the frame counters, is the news.
        level, message = stats.ERROR, state.inference_server.message
    else:
        level, message = stats.verdict(snap, state.input_timeout, state.max_latency, state.last_error,
                                       health.camera_problems(state.cameras, time.monotonic(), state.input_timeout))
        if snap.seconds_since_input is None and state.input_advice:
            message = state.input_advice  # the same words as the node's log
    values = stats.key_values(snap, state.device, state.model)
    if state.inference_server is not None:
        values.append(("inference_server", state.inference_server.message))
    for name, counters in state.cameras:
        values += counters.key_values(name)
    array = DiagnosticArray()
    array.header.stamp = stamp
    array.status = [_status(f"{state.node_name}: segmentation", state.hardware_id, level, message, values)]
    if state.use_depth and state.active:
        depth_level, depth_message = stats.depth_verdict(snap)
        array.status.append(_status(f"{state.node_name}: depth", state.hardware_id, depth_level, depth_message, [
            ("clouds_out", str(snap.clouds_out)), ("depth_unpaired", str(snap.depth_unpaired)),
            ("depth_rejected", str(snap.depth_rejected)),
            ("depth_calibration_errors", str(snap.depth_calibration))]))
    if state.ground_projection and state.active:
        ground_level, ground_message = stats.ground_verdict(snap)
        array.status.append(_status(f"{state.node_name}: ground", state.hardware_id, ground_level, ground_message, [
            ("scans_out", str(snap.scans_out)), ("ground_failed", str(snap.ground_failed))]))
    return array


def as_plain(array: DiagnosticArray) -> dict[str, object]:
    """A published DiagnosticArray as JSON-ready values (the live view's /status.json)."""
    stamp = array.header.stamp
    return {"stamp": stamp.sec + stamp.nanosec * 1e-9, "status": [
        {"name": s.name, "hardware_id": s.hardware_id, "level": s.level[0] if isinstance(s.level, bytes) else int(s.level),
         "message": s.message, "values": {kv.key: kv.value for kv in s.values}} for s in array.status]}
