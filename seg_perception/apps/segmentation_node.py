"""`ros2 run seg_perception segmentation_node`: the lifecycle node in its own process.

rclpy's own SIGINT/SIGTERM handlers invalidate the context at once, while the engine thread may
be publishing a frame ("publisher's context is invalid"). Ours only ask the spin loop to stop;
close() then joins the engine thread while the context is still valid.
"""
from __future__ import annotations

import signal
import sys
import threading

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.signals import SignalHandlerOptions

from ..ros.node import SegmentationNode


def main(argv: list[str] | None = None) -> int:
    rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda _signum, _frame: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    node = SegmentationNode()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        if node.param("autostart"):
            if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                node.get_logger().fatal(f"configure failed; exiting: {node.load_error or 'see the message above'}")
                return 1
            node.trigger_activate()
        while not stop.is_set() and rclpy.ok():
            executor.spin_once(timeout_sec=0.1)  # a signal is seen within 0.1 s
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.close()
        node.destroy_node()
        rclpy.try_shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
