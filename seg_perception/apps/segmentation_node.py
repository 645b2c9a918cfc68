"""`ros2 run seg_perception segmentation_node`: the lifecycle node in its own process.

rclpy's own SIGINT/SIGTERM handlers invalidate the context at once, while the engine thread may
be publishing a frame ("publisher's context is invalid"). Ours only ask the spin loop to stop;
close() then joins the engine thread while the context is still valid. A signal during an
autostart configure that waits on a model server ends that wait; a process whose engine thread
is still held by a server that does not answer exits without waiting for it.
"""
from __future__ import annotations

import os
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
    node: SegmentationNode | None = None

    def on_signal(_signum: int, _frame: object) -> None:
        stop.set()
        if node is not None:
            node.worker.interrupted.set()  # a configure waiting for a model load gives up
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    node = SegmentationNode()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        if node.param("autostart"):
            if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                if stop.is_set():
                    return 0
                node.get_logger().fatal(f"configure failed; exiting: {node.load_error or 'no reason given'}")
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
        if node is not None and node.worker.stuck_since is not None:
            # The engine thread is still inside a call to a server that does not answer; the
            # interpreter's exit would wait for that call (gRPC's cleanup) for up to triton_timeout.
            # Everything of ours is closed: leave now.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
