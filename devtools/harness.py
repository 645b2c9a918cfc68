"""Drive a real segmentation_node process over DDS: used by the demo, the benchmarks and tests.

The node runs as its own process (as on a robot) from the colcon install; this side publishes
frames and collects outputs, waiting on conditions with timeouts (never fixed sleeps).
"""
from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from builtin_interfaces.msg import Time
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile
from sensor_msgs.msg import Image

from seg_perception.wire.images import fill_image
from seg_perception.offline.sources import sample_photo
from seg_perception.ros import qos
from devtools.waiting import wait_until  # noqa: F401 - re-exported for the node tests


def installed_executable(name: str = "segmentation_node") -> str:
    from ament_index_python.packages import get_package_prefix

    path = Path(get_package_prefix("seg_perception")) / "lib" / "seg_perception" / name
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: build the package first (scripts/setup.sh)")
    return str(path)


def _param_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_param_text(v) if not isinstance(v, str) else f"'{v}'" for v in value) + "]"
    return str(value)


def node_command(params: Mapping[str, Any] | None = None, remaps: Mapping[str, str] | None = None,
                 name: str | None = None, params_file: str | None = None, log_level: str | None = None,
                 executable: str = "segmentation_node", namespace: str | None = None) -> list[str]:
    cmd = [installed_executable(executable), "--ros-args"]
    if name:
        cmd += ["-r", f"__node:={name}"]
    if namespace:
        cmd += ["-r", f"__ns:={namespace}"]
    if params_file:
        cmd += ["--params-file", params_file]
    for key, value in (params or {}).items():
        cmd += ["-p", f"{key}:={_param_text(value)}"]
    for src, dst in (remaps or {}).items():
        cmd += ["-r", f"{src}:={dst}"]
    if log_level:
        cmd += ["--log-level", log_level]
    return cmd


def start_node(params: Mapping[str, Any] | None = None, remaps: Mapping[str, str] | None = None,
               log_path: Path | None = None, env: Mapping[str, str] | None = None, **kwargs: Any) -> subprocess.Popen:
    cmd = node_command(params, remaps, **kwargs)
    out = open(log_path, "w") if log_path else subprocess.DEVNULL  # noqa: SIM115 - owned by the process
    full_env = dict(os.environ)
    full_env.update(env or {})
    full_env.setdefault("PYTHONUNBUFFERED", "1")
    return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=full_env)


def stop_process(proc: subprocess.Popen, timeout: float = 30.0) -> int:
    """SIGINT, then SIGKILL only if the process is still there after `timeout` s (a busy machine
    can take a while to stop torch and DDS; a killed process leaves its shared-memory files)."""
    if proc.poll() is None:
        proc.send_signal(2)  # SIGINT: the node shuts down cleanly
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


class Spinner:
    """Spins a node on a background thread so callbacks run while the caller waits.

    The thread outlives what happens in it: rclpy's executor walks the node's entities after
    its wait, outside the handles' locks, so a subscription or client the caller destroys at
    that moment (every Collector and call_service does) raises InvalidHandle out of spin_once;
    that is skipped. Any other exception (a callback that raised) is kept in `errors` for the
    test that caused it to report (test/conftest.py); spinning goes on either way, so one
    failure can never leave every later test of the run deaf.
    """

    def __init__(self, node: Node) -> None:
        self.node = node
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(node)
        self.errors: list[str] = []
        self.destroyed_while_walked = 0
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._stop = False
        self._thread.start()

    def _spin(self) -> None:
        from rclpy.exceptions import InvalidHandle

        while not self._stop:
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except InvalidHandle:
                self.destroyed_while_walked += 1
            except Exception:  # noqa: BLE001 - reported by the test that caused it, never fatal here
                import traceback

                self.errors.append(traceback.format_exc(limit=8)[-4000:])

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def take_errors(self) -> list[str]:
        errors, self.errors = self.errors, []
        return errors

    def close(self) -> None:
        self._stop = True
        self._thread.join()
        self.executor.remove_node(self.node)


def spin_state(node: Node) -> str:
    """For a timeout's message: what the node's Spinner (if any) went through."""
    spinner = getattr(node, "spinner", None)
    if spinner is None:
        return ""
    return (f" (test node: spinning thread {'alive' if spinner.alive else 'STOPPED'}, {len(spinner.errors)} callback "
            f"errors, {spinner.destroyed_while_walked} entities destroyed while the executor walked them)")


class Collector:
    """Subscribes to topics and keeps every message, indexed by topic, notifying waiters."""

    def __init__(self, node: Node, topics: Iterable[tuple[str, Any]], qos: QoSProfile | None = None) -> None:
        self.node = node
        self.cond = threading.Condition()
        self.messages: dict[str, list[tuple[float, Any]]] = {}
        self.subs = []
        for topic, msg_type in topics:
            self.messages[topic] = []
            self.subs.append(node.create_subscription(msg_type, topic, self._callback(topic),
                                                      qos or QoSProfile(depth=50)))

    def _callback(self, topic: str) -> Callable[[Any], None]:
        def store(msg: Any) -> None:
            with self.cond:
                self.messages[topic].append((time.perf_counter(), msg))
                self.cond.notify_all()
        return store

    def wait_for(self, predicate: Callable[[dict[str, list[tuple[float, Any]]]], bool], timeout: float,
                 what: str = "messages") -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: predicate(self.messages), timeout):
                counts = {k: len(v) for k, v in self.messages.items()}
                raise TimeoutError(f"timed out after {timeout:.1f} s waiting for {what}; received {counts}"
                                   f"{spin_state(self.node)}")

    def with_stamp(self, topic: str, stamp: Any) -> tuple[float, Any] | None:
        with self.cond:
            for received, msg in self.messages[topic]:
                if msg.header.stamp == stamp:
                    return received, msg
        return None

    def clear(self) -> None:
        with self.cond:
            for value in self.messages.values():
                value.clear()


def call_service(node: Node, srv_type: Any, name: str, request: Any, timeout: float = 30.0) -> Any:
    """Call a service of another process from a node spun elsewhere (Spinner); wait with timeouts."""
    client: Any = node.create_client(srv_type, name)
    try:
        if not client.wait_for_service(timeout_sec=timeout):
            raise TimeoutError(f"service {name} did not appear within {timeout:.1f} s{spin_state(node)}")
        future = client.call_async(request)
        done = threading.Event()
        future.add_done_callback(lambda _: done.set())
        if not done.wait(timeout):
            raise TimeoutError(f"no reply from {name} within {timeout:.1f} s{spin_state(node)}")
        return future.result()
    finally:
        node.destroy_client(client)


def lifecycle_state(node: Node, target: str, timeout: float = 30.0) -> int:
    """The lifecycle_msgs/State id of the managed node `target` (fully qualified name)."""
    from lifecycle_msgs.srv import GetState

    return int(call_service(node, GetState, f"{target}/get_state", GetState.Request(), timeout).current_state.id)


def change_state(node: Node, target: str, transition: int, timeout: float = 30.0) -> bool:
    """Request a lifecycle transition (lifecycle_msgs/Transition id) of `target`; its success."""
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState

    request = ChangeState.Request(transition=Transition(id=transition))
    return bool(call_service(node, ChangeState, f"{target}/change_state", request, timeout).success)


SENSOR_QOS = qos.SENSOR


def photo(width: int = 320, height: int = 240) -> np.ndarray:
    """A real photo (scikit-image's astronaut: a person) at the size a test needs, RGB uint8."""
    return cv2.resize(sample_photo("astronaut"), (width, height), interpolation=cv2.INTER_AREA)


def image_msg(rgb: np.ndarray, sec: int, nanosec: int = 0, frame_id: str = "cam_optical") -> Image:
    """An rgb8 Image of `rgb` stamped sec.nanosec in `frame_id`."""
    msg = Image()
    msg.header.stamp = Time(sec=sec, nanosec=nanosec)
    msg.header.frame_id = frame_id
    fill_image(msg, rgb, "rgb8")
    return msg

__all__ = ["Collector", "SENSOR_QOS", "Spinner", "call_service", "change_state", "installed_executable",
           "lifecycle_state", "node_command", "start_node", "stop_process", "wait_until"]
