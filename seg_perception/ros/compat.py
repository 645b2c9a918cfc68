"""The rclpy API differences between the ROS 2 distributions this package runs on, in one place.

Humble (rclpy 3.3, supported to May 2027) lacks two things every later distribution (Iron,
Jazzy, Kilted, Rolling) has:
- `rclpy.event_handler`: Humble has the same `PublisherEventCallbacks`/`SubscriptionEventCallbacks`
  in `rclpy.qos_event` (Iron renamed the module and kept `qos_event` as a deprecated alias);
- `Node.add_post_set_parameters_callback`: on Humble the post-set callback runs at the end of a
  successful on-set callback, with the new values passed in (they are stored just after), so a
  post-set callback must read the changed parameters from its argument, never from the node.
test/unit/test_humble_api.py checks every rclpy call of the package against Humble's API.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter

try:  # Iron and later
    from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
except ImportError:  # Humble
    from rclpy.qos_event import PublisherEventCallbacks, SubscriptionEventCallbacks  # type: ignore[no-redef]

__all__ = ["PublisherEventCallbacks", "SubscriptionEventCallbacks", "add_parameter_callbacks"]


def add_parameter_callbacks(node: Node, on_set: Callable[[list[Parameter]], SetParametersResult],
                            after_set: Callable[[list[Parameter]], None]) -> None:
    """Register `on_set` (may refuse) and `after_set` (side effects of an accepted change).

    `after_set` gets the changed parameters; on Humble it runs before the node stores them."""
    post_set: Any = getattr(node, "add_post_set_parameters_callback", None)
    node.add_on_set_parameters_callback(on_set if post_set is not None else _then(on_set, after_set))
    if post_set is not None:
        post_set(after_set)


def _then(on_set: Callable[[list[Parameter]], SetParametersResult],
          after_set: Callable[[list[Parameter]], None]) -> Callable[[list[Parameter]], SetParametersResult]:
    def both(changed: list[Parameter]) -> SetParametersResult:
        result = on_set(changed)
        if result.successful:
            after_set(changed)
        return result
    return both
