"""/diagnostics for the node, named as diagnostic_updater names them (`<node name>: <task>`).

Two statuses: `segmentation` (the color frames: rates, latency, failures) and, with use_depth,
`depth` (pairing, depth image and calibration problems, clouds), so a depth fault is reported
as a depth fault and never changes the segmentation verdict.
"""
from __future__ import annotations

from dataclasses import dataclass

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from ..core import stats


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
    else:
        level, message = stats.verdict(snap, state.input_timeout, state.max_latency, state.last_error)
    array = DiagnosticArray()
    array.header.stamp = stamp
    array.status = [_status(f"{state.node_name}: segmentation", state.hardware_id, level, message,
                            stats.key_values(snap, state.device, state.model))]
    if state.use_depth and state.active:
        depth_level, depth_message = stats.depth_verdict(snap)
        array.status.append(_status(f"{state.node_name}: depth", state.hardware_id, depth_level, depth_message, [
            ("clouds_out", str(snap.clouds_out)), ("depth_unpaired", str(snap.depth_unpaired)),
            ("depth_rejected", str(snap.depth_rejected)),
            ("depth_calibration_errors", str(snap.depth_calibration))]))
    return array
