"""The node's cameras: per camera its topic names, its latest calibration, its depth frames
waiting to be paired, its output publishers and its own counters, and the subscriptions that fill
them. The model and the engine thread are the node's, shared by every camera.

Callbacks run on the executor thread and stay cheap: a color frame is dropped serialized into
its camera's latest-wins slot; camera_info and depth are read in place (microseconds) and kept.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rclpy.lifecycle import LifecycleNode
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from ..live.health import CameraCounters, no_input_advice
from ..live.latest import LatestPerKey
from ..live.pairing import CalibrationPairer, StampPairer
from ..live.stats import NodeStats
from ..wire import cdr
from ..wire.images import ImageFormatError
from ..wire.stamps import stamp_to_ns
from . import qos
from .compat import SubscriptionEventCallbacks
from .outputs import CameraPublishers


@dataclass
class Camera:
    name: str
    """'' = the plain topic names (image, segmentation/mask); else 'C' for C/image, C/segmentation/mask."""
    image_relative: str = "image"
    """`image` or `image/compressed` (input_transport)."""
    depth_relative: str = "depth"
    """`depth` or `depth/compressedDepth` (input_transport_depth)."""
    camera_info: CalibrationPairer[Any] = field(default_factory=lambda: CalibrationPairer[Any](capacity=10))
    """The latest color camera_info messages, looked up by the frame's stamp."""
    depth_info: CalibrationPairer[Any] = field(default_factory=lambda: CalibrationPairer[Any](capacity=10))
    depth: StampPairer[Any] = field(default_factory=lambda: StampPairer[Any](capacity=10))
    outputs: CameraPublishers | None = None
    counters: CameraCounters = field(default_factory=CameraCounters)

    @property
    def prefix(self) -> str:
        return f"{self.name}/" if self.name else ""

    def topic(self, relative: str) -> str:
        return self.prefix + relative

    @property
    def image_topic(self) -> str:
        return self.topic(self.image_relative)

    @property
    def label(self) -> str:
        """How diagnostics and logs name it."""
        return self.name or "camera"


class CameraInputs:
    """The subscriptions of every camera, created at activate and destroyed at deactivate."""

    def __init__(self, node: LifecycleNode, slots: LatestPerKey[str, tuple[bytes, float]], node_stats: NodeStats,
                 report: Callable[[str, str], None], incompatible_qos: Callable[..., Callable[[Any], None]]) -> None:
        self._node = node
        self._slots = slots
        self._stats = node_stats
        self._report = report
        self._incompatible_qos = incompatible_qos
        self._subs: list[Any] = []
        self._cameras: list[Camera] = []
        self._since = 0.0
        self._advised = False
        self._compressed = False
        self.advice = ""
        """Why no frame has arrived (who publishes what nearby), once input_timeout has passed."""

    @property
    def active(self) -> bool:
        return bool(self._subs)

    def subscribe(self, cameras: list[Camera], compressed: bool, reliability: str, depth_qos: int,
                  use_depth: bool) -> None:
        node, image_qos = self._node, qos.image_input(reliability, depth_qos)
        self._cameras, self._compressed = list(cameras), compressed
        self._since, self._advised, self.advice = time.monotonic(), False, ""
        image_type = CompressedImage if compressed else Image
        for camera in cameras:
            topic = camera.image_topic
            events = SubscriptionEventCallbacks(incompatible_qos=self._incompatible_qos(topic, publisher=False))
            # raw: the executor only takes the serialized frame; the worker reads the frames it
            # actually takes in place (wire.cdr).
            self._subs.append(node.create_subscription(image_type, topic, self._on_image(camera), image_qos,
                                                       event_callbacks=events, raw=True))
            self._subs.append(node.create_subscription(CameraInfo, camera.topic("camera_info"),
                                                       self._on_camera_info(camera, "camera_info"), qos.SENSOR,
                                                       raw=True))
            if use_depth:
                depth_type = Image if camera.depth_relative == "depth" else CompressedImage
                self._subs.append(node.create_subscription(depth_type, camera.topic(camera.depth_relative),
                                                           self._on_depth(camera), image_qos, raw=True))
                self._subs.append(node.create_subscription(CameraInfo, camera.topic("depth/camera_info"),
                                                           self._on_camera_info(camera, "depth/camera_info"),
                                                           qos.SENSOR, raw=True))

    def unsubscribe(self) -> None:
        for sub in self._subs:
            self._node.destroy_subscription(sub)
        self._subs = []
        self.advice = ""

    def waiting_advice(self, timeout: float) -> str | None:
        """Once per activation, `timeout` s after subscribing: for every camera that has had no
        frame, which topic it waits on and what the ROS graph offers instead (one line each)."""
        if not self._subs or self._advised or time.monotonic() - self._since < timeout:
            return None
        self._advised = True
        waiting = [c for c in self._cameras if c.counters.frames_in == 0]
        if not waiting:
            return None
        node, ours = self._node, self._node.get_fully_qualified_name()
        message_type = "sensor_msgs/msg/CompressedImage" if self._compressed else "sensor_msgs/msg/Image"

        def publishers(topic: str) -> list[str]:
            names = [f"{i.node_namespace.rstrip('/')}/{i.node_name}" for i in node.get_publishers_info_by_topic(topic)]
            return sorted(n for n in set(names) if n != ours)

        others = []
        for name, types in node.get_topic_names_and_types():
            nodes = publishers(name) if message_type in types else []
            if nodes:
                others.append((name, nodes))
        lines = []
        for camera in waiting:
            topic = node.resolve_topic_name(camera.image_topic)
            lines.append(no_input_advice(topic, camera.image_topic, message_type, time.monotonic() - self._since,
                                         publishers(topic), [o for o in others if o[0] != topic]))
        self.advice = " | ".join(lines)
        return self.advice

    def _on_image(self, camera: Camera) -> Callable[[bytes], None]:
        def store(serialized: bytes) -> None:
            dropped = self._slots.put(camera.name, (serialized, time.monotonic()))
            camera.counters.frames_in += 1
            camera.counters.last_input = time.monotonic()
            camera.counters.dropped += int(dropped)
            self._stats.frame_received(dropped)
        return store

    def _read(self, serialized: bytes, reader: Callable[[bytes], Any], topic: str) -> Any:
        """A small message read in place; None and a throttled error when the bytes are not a
        well-formed message."""
        try:
            return reader(serialized)
        except ImageFormatError as exc:
            self._report(f"{topic}:{exc.kind}",
                         f"dropped a message on {self._node.resolve_topic_name(topic)}: {exc}")
            return None

    def _on_camera_info(self, camera: Camera, relative: str) -> Callable[[bytes], None]:
        topic = camera.topic(relative)
        attribute = "depth_info" if relative.startswith("depth") else "camera_info"

        def store(serialized: bytes) -> None:
            info = self._read(serialized, cdr.read_camera_info, topic)
            if info is not None:
                getattr(camera, attribute).add(stamp_to_ns(info.header.stamp), info)
        return store

    def _on_depth(self, camera: Camera) -> Callable[[bytes], None]:
        """Raw or compressedDepth: either is read in place here and decoded only once paired
        (engine.frame.add_clouds -> wire.images.depth_to_meters)."""
        topic = camera.topic(camera.depth_relative)
        reader = cdr.read_image if camera.depth_relative == "depth" else cdr.read_compressed_image

        def store(serialized: bytes) -> None:
            msg = self._read(serialized, reader, topic)
            if msg is not None:
                camera.depth.add(stamp_to_ns(msg.header.stamp), msg)
        return store
