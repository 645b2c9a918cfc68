"""The bond nav2_lifecycle_manager keeps with each node it manages, kept as Nav2's own nodes do.

After activating a node, nav2_lifecycle_manager forms a bond with it (bondcpp / bondpy heartbeats
on the topic `bond`, bond id = the node's name) and fails bring-up when none forms within half of
its `bond_timeout` (4 s by default); later, a bond that breaks tells it the node died. Nav2's
nodes (nav2_util::LifecycleNode) create theirs on activate with a 0.1 s heartbeat and a 4 s
timeout and destroy it on deactivate; so does this one (and on cleanup and shutdown). After
Ctrl-C rclpy has already shut the context down, so then, as with Nav2's nodes, the manager learns
it from the heartbeats stopping.

bondpy is optional: without it the node runs as before and says once why a lifecycle manager
will not accept it.
"""
from __future__ import annotations

from typing import Any

from rclpy.duration import Duration
from rclpy.exceptions import InvalidHandle
from rclpy.node import Node

TOPIC = "bond"
HEARTBEAT_PERIOD = 0.1
HEARTBEAT_TIMEOUT = 4.0
BREAK_WAIT = 0.2  # s, at most, for the manager's acknowledgement when breaking


class LifecycleBond:
    """Create on activate, destroy on deactivate / cleanup / shutdown (idempotent)."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._bond: Any = None
        self._told_missing = False

    @property
    def active(self) -> bool:
        return self._bond is not None

    def create(self) -> bool:
        """Start the bond (id = this node's name); False where bondpy is not installed."""
        if self._bond is not None:
            return True
        try:
            from bondpy.bondpy import Bond
        except ImportError as exc:
            if not self._told_missing:
                self._told_missing = True
                self._node.get_logger().warning(
                    f"no bond to a lifecycle manager: bondpy is not installed ({exc}); "
                    "nav2_lifecycle_manager will time out waiting for this node's bond "
                    "(install ros-$ROS_DISTRO-bondpy, or set bond_timeout: 0.0 in the manager)")
            return False
        # bondpy declares this parameter each time a heartbeat times out and raises if it exists.
        from bond.msg import Constants

        if self._node.has_parameter(Constants.DISABLE_HEARTBEAT_TIMEOUT_PARAM):
            self._node.undeclare_parameter(Constants.DISABLE_HEARTBEAT_TIMEOUT_PARAM)
        bond = Bond(self._node, TOPIC, self._node.get_name())
        bond.heartbeat_period = HEARTBEAT_PERIOD
        bond.heartbeat_timeout = HEARTBEAT_TIMEOUT
        bond.start()
        self._bond = bond
        self._node.get_logger().info(f"bond '{self._node.get_name()}' on {TOPIC} created for a lifecycle manager")
        return True

    def destroy(self) -> None:
        """Break the bond (the manager sees it end at once, not after a heartbeat timeout)."""
        bond, self._bond = self._bond, None
        if bond is None:
            return
        # As bondcpp does on destruction: say DEAD (bondpy repeats it every 50 ms while it awaits
        # the manager's acknowledgement) and give it a moment to arrive.
        try:
            if self._node.context.ok():
                bond.break_bond()
                bond.wait_until_broken(Duration(seconds=BREAK_WAIT))
                bond.pub.wait_for_all_acked(Duration(seconds=BREAK_WAIT))
        except (InvalidHandle, RuntimeError):
            # Ctrl-C: rclpy shut the context down first, so nothing can be sent; the manager
            # sees the heartbeats stop (its bond_timeout), as with Nav2's own nodes.
            pass
        retire(bond, self._node)


def retire(bond: Any, node: Node) -> None:
    """Stop a bondpy Bond and remove its endpoints from `node`.

    Not bondpy's shutdown(): it publishes DEAD once and destroys its endpoints' handles while the
    node still lists them, and an executor spinning that node dies on the destroyed QoS event
    handles (InvalidHandle). This stops bondpy's publishing thread and timers, then removes the
    endpoints the way rclpy expects.
    """
    with bond.lock:
        bond.is_shutdown = True
        bond.condition.notify_all()
    for timer in (bond.connect_timer, bond.heartbeat_timer, bond.disconnect_timer):
        timer.cancel()
    node.destroy_subscription(bond.sub)
    node.destroy_publisher(bond.pub)
