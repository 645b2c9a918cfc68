"""Recorded bags for tests and demos, written with rosbags (no ROS install): BagBuilder holds
rosbags message objects filled by seg_perception's own conversions and writes them as a ROS 2
(sqlite3 / mcap) or ROS 1 bag."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.typesys import Stores, get_typestore

from devtools.msgtools import fill_compressed
from seg_perception.wire.images import fill_image

CAMERA_TOPIC = "/camera/image_raw"
COMPRESSED_TOPIC = "/camera/image_raw/compressed"
DEPTH_TOPIC = "/camera/depth/image_raw"
FIRST_SEC = 1700000000


def stamp_ns(sec: int, nanosec: int) -> int:
    return sec * 1_000_000_000 + nanosec


class BagBuilder:
    """Writes rosbags message objects, filled by our own conversions, into a ROS 2 or ROS 1 bag."""

    def __init__(self, store: Stores) -> None:
        self.ts = get_typestore(store)
        self.ros1 = store == Stores.ROS1_NOETIC
        self.types = self.ts.types
        self.messages: list[tuple[str, str, int, bytes]] = []

    def header(self, sec: int, nanosec: int) -> Any:
        stamp = self.types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec)
        header = self.types["std_msgs/msg/Header"]
        return header(seq=0, stamp=stamp, frame_id="camera") if self.ros1 else header(stamp=stamp, frame_id="camera")

    def image_msg(self, sec: int, nanosec: int, array: np.ndarray, encoding: str = "rgb8") -> Any:
        msg = self.types["sensor_msgs/msg/Image"](header=self.header(sec, nanosec), height=0, width=0, encoding="",
                                                  is_bigendian=0, step=0, data=np.empty(0, np.uint8))
        return fill_image(msg, array, encoding)

    def compressed_msg(self, sec: int, nanosec: int, rgb: np.ndarray) -> Any:
        msg = self.types["sensor_msgs/msg/CompressedImage"](header=self.header(sec, nanosec), format="",
                                                            data=np.empty(0, np.uint8))
        return fill_compressed(msg, rgb, "png")

    def add(self, topic: str, msg: Any, receive_ns: int | None = None) -> int:
        """Record `msg` (received 1 us after its header stamp unless told); returns the receive time."""
        if receive_ns is None:
            receive_ns = stamp_ns(msg.header.stamp.sec, msg.header.stamp.nanosec) + 1000
        msgtype = msg.__msgtype__
        raw = self.ts.serialize_ros1(msg, msgtype) if self.ros1 else self.ts.serialize_cdr(msg, msgtype)
        self.messages.append((topic, msgtype, receive_ns, bytes(raw)))
        return receive_ns

    def write(self, path: Path, storage: str = "sqlite3") -> Path:
        if self.ros1:
            from rosbags.rosbag1 import Writer as Writer1
            writer1 = Writer1(path)
            with writer1:
                self._write_all(writer1)
            return path
        from rosbags.rosbag2 import StoragePlugin
        from rosbags.rosbag2 import Writer as Writer2
        plugin = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}[storage]
        writer2 = Writer2(path, version=9, storage_plugin=plugin)
        with writer2:
            self._write_all(writer2)
        return path

    def _write_all(self, writer: Any) -> None:
        connections: dict[str, Any] = {}
        for topic, msgtype, receive_ns, raw in sorted(self.messages, key=lambda m: m[2]):
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, msgtype, typestore=self.ts)
            writer.write(connections[topic], receive_ns, raw)


def camera_recording(photos: Sequence[np.ndarray], store: Stores = Stores.ROS2_KILTED) -> BagBuilder:
    """Per photo (one second apart): an Image rgb8 frame, the same photo as a CompressedImage png
    2 ms later, a 16UC1 depth frame and a chat message."""
    bag = BagBuilder(store)
    for i, rgb in enumerate(photos):
        sec = FIRST_SEC + i
        bag.add(CAMERA_TOPIC, bag.image_msg(sec, 5_000_000, rgb))
        bag.add(COMPRESSED_TOPIC, bag.compressed_msg(sec, 7_000_000, rgb))
        depth_mm = np.full(rgb.shape[:2], 1500, np.uint16)
        bag.add(DEPTH_TOPIC, bag.image_msg(sec, 5_000_000, depth_mm, "16UC1"))
        bag.add("/chatter", bag.types["std_msgs/msg/String"](data="hello"), stamp_ns(sec, 0))
    return bag
