"""`ros2 run seg_perception segmentation_node`: the lifecycle node in its own process.

rclpy's own SIGINT/SIGTERM handlers invalidate the context at once, while the engine thread may
be publishing a frame ("publisher's context is invalid"). Ours only ask the spin loop to stop;
close() then joins the engine thread while the context is still valid. A signal during an
autostart configure that waits on a model server ends that wait; a process whose engine thread
is still held by a server that does not answer exits without waiting for it.

A start that cannot work ends at once with one line and exit code 2: a parameter of the wrong
type or out of range, a params file rcl cannot read. Names that are no parameter, and a params
file with no section for this node, are warned about (with the closest name) and the node runs.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.signals import SignalHandlerOptions
from rclpy.utilities import remove_ros_args

from ..live import params
from ..wire.errors import one_line

PROG = "segmentation_node"


def build_parser() -> argparse.ArgumentParser:
    rows = []
    for pdef in params.PARAMS:
        default = "the model's" if pdef.model_default else repr(pdef.default)
        rows.append(f"  {pdef.name} ({params.expected_text(pdef)[2:].lstrip('n ')}; default {default}; "
                    f"{pdef.stage})")
    return argparse.ArgumentParser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
        usage=f"{PROG} [--ros-args [--params-file FILE] [-p NAME:=VALUE]... [-r FROM:=TO]...]",
        description="Segment camera images: a lifecycle node (configures and activates itself unless "
                    "autostart is false). Subscribes image (or image/compressed), camera_info, depth, "
                    "depth/camera_info; publishes segmentation/* (README: Topics).",
        epilog="parameters (README: Parameters; stage = when a new value takes effect):\n" + "\n".join(rows)
               + f"\n\nexample:\n  {PROG} --ros-args -r image:=/camera/image_raw -p confidence_threshold:=0.5")


def _error(text: str) -> int:
    print(f"{PROG}: error: {text}", file=sys.stderr, flush=True)
    return 2


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    files = params.params_files(argv)
    try:
        for path in files:  # rcl's own message for these is a traceback
            params.read_params_file(path)
        own_args = remove_ros_args(argv)[1:]
    except params.StartupParameterError as exc:
        return _error(str(exc))
    except Exception as exc:  # noqa: BLE001 - rcl's argument errors (RCLInvalidROSArgsError, ...)
        return _error(f"cannot start: {one_line(exc)}")
    build_parser().parse_args(own_args)  # --help, and no stray arguments
    try:
        rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    except Exception as exc:  # noqa: BLE001 - as above
        return _error(f"cannot start: {one_line(exc)}")
    from ..ros.node import SegmentationNode  # after the argument checks: --help stays fast

    stop = threading.Event()
    node: SegmentationNode | None = None

    def on_signal(_signum: int, _frame: object) -> None:
        stop.set()
        if node is not None:
            node.worker.interrupted.set()  # a configure waiting for a model load gives up
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        node = SegmentationNode()
    except params.StartupParameterError as exc:
        rclpy.try_shutdown()
        return _error(str(exc))
    for path in files:
        for problem in params.params_file_problems(path, node.get_fully_qualified_name()):
            node.get_logger().warning(problem)
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
