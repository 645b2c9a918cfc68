"""Camera poses for ground projection: the `camera_pose` parameter, or TF at the frame's stamp.

The TF listener's subscriptions (/tf, /tf_static) run on the node's executor and only fill the
buffer; lookups happen on the engine thread, which may wait up to `LOOKUP_TIMEOUT_S` for a
transform that is late (the executor never waits). tf2_ros is optional: a ROS install has it; where
it is missing, a fixed `camera_pose` still works and a TF lookup says what is absent.
"""
from __future__ import annotations

from typing import Any

from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.time import Time

from ..engine.ground import CameraPose, GroundError

try:
    import tf2_ros
except ImportError:  # pragma: no cover - depends on the installation
    tf2_ros = None

LOOKUP_TIMEOUT_S = 0.1
"""How long a frame waits for its transform (a TF publisher a little behind the camera)."""


class CameraPoses:
    """Created with the node; listens to TF only while `listen(True)` (ground projection from TF)."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._buffer: Any = None
        self._listener: Any = None

    @property
    def listening(self) -> bool:
        return self._listener is not None

    def listen(self, on: bool) -> None:
        """Subscribe to TF (on) or stop (off). Call from the executor thread (parameter callbacks,
        transitions)."""
        if on and self._listener is None and tf2_ros is not None:
            self._buffer = tf2_ros.Buffer(node=self._node)
            self._listener = tf2_ros.TransformListener(self._buffer, self._node, spin_thread=False)
        elif not on and self._listener is not None:
            self._listener.unregister()
            # The Buffer made a tf2_frames service on the node and a clock jump callback: both go
            # with it, so listening again (a parameter toggled) never stacks a second service.
            self._node.destroy_service(self._buffer.srv)
            self._buffer.jump_handle.unregister()
            self._listener = None
            self._buffer = None

    def lookup(self, fixed: CameraPose | None, base_frame: str, frame_id: str, stamp: Any) -> tuple[CameraPose | None, str]:
        """(pose of `frame_id` in `base_frame` at `stamp`, "") or (None, why). `fixed` (the
        camera_pose parameter) wins when given."""
        if fixed is not None:
            return fixed, ""
        if tf2_ros is None:
            return None, "tf2_ros is not installed: set camera_pose, or install tf2_ros"
        buffer = self._buffer
        if buffer is None:
            return None, "not listening to TF yet"
        if not frame_id:
            return None, "the image has no header.frame_id to look up in TF"
        try:
            transform = buffer.lookup_transform(base_frame, frame_id, Time.from_msg(_time_msg(stamp)),
                                                timeout=Duration(seconds=LOOKUP_TIMEOUT_S))
        except (tf2_ros.LookupException, tf2_ros.ConnectivityException, tf2_ros.ExtrapolationException,
                tf2_ros.InvalidArgumentException) as exc:
            return None, f"no transform {base_frame} <- {frame_id} at the frame's stamp: {str(exc).strip()[:200]}"
        t, q = transform.transform.translation, transform.transform.rotation
        try:
            return CameraPose.from_xyz_quaternion([t.x, t.y, t.z, q.x, q.y, q.z, q.w]), ""
        except GroundError as exc:
            return None, f"transform {base_frame} <- {frame_id}: {exc}"


def _time_msg(stamp: Any) -> Any:
    from builtin_interfaces.msg import Time as TimeMsg

    return TimeMsg(sec=int(stamp.sec), nanosec=int(stamp.nanosec))
