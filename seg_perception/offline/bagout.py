"""--bag-out: a rosbag2 (mcap) of the pre-labels over the recording, for ros2 bag play / Foxglove.

Per segmented frame, all with the source frame's header stamp and frame_id (and logged at that
stamp): the source image on its own topic (the same Image / CompressedImage fields as recorded),
and under the camera's namespace, as segmentation_node names them:
  <ns>/segmentation/mask        sensor_msgs/Image mono8 class ids (255 = unlabeled)
  <ns>/segmentation/confidence  sensor_msgs/Image mono8
  <ns>/segmentation/color_mask  sensor_msgs/Image rgb8 class colors
  <ns>/segmentation/class_map   seg_perception/msg/ClassMap   } once per namespace, offered
  <ns>/segmentation/label_info  vision_msgs/msg/LabelInfo     } transient-local (latched)
<ns> is the image topic's parent with a trailing /compressed dropped (/camera/image_raw ->
/camera); when two image topics would share it, the image topic itself. Frames from files have no
header: they go to /camera/image_raw with frame_id 'camera' and stamps 0.1 s apart in run order.

One time base per bag: frames from files are stamped on the recording's clock, 0.1 s apart after
the end of the run's bags (`file_time_base_ns`), so a bag mixing files and recordings spans what
was recorded plus 0.1 s per frame, not the 1.7e9 s since the epoch, and a player shows the
recorded frames in their own timing, then the files (a file frame never lands between two
recorded frames of a topic). A run of files alone starts at 0.

Written with rosbags, so no ROS install is needed; the ClassMap definition is read from this
package's msg/ and registered with the writer's type store. The mcap file carries every message
definition, so readers that decode from the file (Foxglove, the mcap-ros2 and rosbags readers)
need nothing installed. `ros2 bag play` is different: it publishes through the type support
libraries of each type and skips a topic whose type it cannot load, so a player needs
seg_perception's install (ClassMap) and vision_msgs (LabelInfo) sourced. LabelInfo uses
vision_msgs' installed definition when there is one, else the same two-field definition
embedded below.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..model.labels import ClassMap
from ..wire import cdr
from ..wire.stamps import split_ns
from ..wire.topics import output_topic
from .frames import COMPRESSED_TYPE, IMAGE_TYPE, BagSource, CompressedMessage, FrameRef, ImageMessage
from .segment import FrameResult

CLASS_MAP_TYPE = "seg_perception/msg/ClassMap"
CLASS_INFO_TYPE = "seg_perception/msg/ClassInfo"
LABEL_INFO_TYPE = "vision_msgs/msg/LabelInfo"
VISION_CLASS_TYPE = "vision_msgs/msg/VisionClass"
FILE_TOPIC = "/camera/image_raw"
FILE_FRAME_ID = "camera"
FILE_PERIOD_NS = 100_000_000

# vision_msgs (Apache-2.0) msg/VisionClass.msg and msg/LabelInfo.msg, fields only.
_VISION_CLASS_MSG = "uint16 class_id\nstring class_name\n"
_LABEL_INFO_MSG = "std_msgs/Header header\nvision_msgs/VisionClass[] class_map\nfloat32 threshold\n"


class BagOutError(RuntimeError):
    pass


def _prefixes() -> Iterator[Path]:
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        if prefix:
            yield Path(prefix)


def _find_msg(package: str, name: str) -> Path | None:
    candidates = []
    if package == "seg_perception":
        here = Path(__file__)
        candidates.append(here.resolve().parents[2] / "msg" / name)  # the source tree (symlink install)
        candidates += [p / "share" / package / "msg" / name for p in here.parents]  # an install prefix
    candidates += [p / "share" / package / "msg" / name for p in _prefixes()]
    return next((c for c in candidates if c.is_file()), None)


def bag_typestore() -> Any:
    """The latest ROS 2 type store with seg_perception's and vision_msgs' label types added."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.LATEST)
    texts: dict[str, str] = {}
    for msgtype in (CLASS_INFO_TYPE, CLASS_MAP_TYPE):
        path = _find_msg("seg_perception", msgtype.rsplit("/", 1)[-1] + ".msg")
        if path is None:
            raise BagOutError(f"--bag-out needs the {msgtype} definition (msg/*.msg of seg_perception), "
                              "found neither in the source tree nor under AMENT_PREFIX_PATH")
        texts[msgtype] = path.read_text()
    for msgtype, embedded in ((VISION_CLASS_TYPE, _VISION_CLASS_MSG), (LABEL_INFO_TYPE, _LABEL_INFO_MSG)):
        path = _find_msg("vision_msgs", msgtype.rsplit("/", 1)[-1] + ".msg")
        texts[msgtype] = path.read_text() if path is not None else embedded
    for msgtype, text in texts.items():
        store.register(get_types_from_msg(text, msgtype))
    return store


def free_bag_path(path: Path) -> Path:
    """`path`, or `path_2`, `path_3`... when a bag is there already (a resumed run adds a part)."""
    if not path.exists():
        return path
    n = 2
    while path.with_name(f"{path.name}_{n}").exists():
        n += 1
    return path.with_name(f"{path.name}_{n}")


def namespace_for(topic: str, taken: set[str]) -> str:
    base = topic[: -len("/compressed")] if topic.endswith("/compressed") else topic
    for candidate in (base.rsplit("/", 1)[0], base, topic):
        if candidate not in taken:
            return candidate
    return topic


def file_time_base_ns(sources: Iterable[object]) -> int:
    """Where frames from files start on a bag's clock: FILE_PERIOD_NS after the last receive time
    of the entered bags among `sources`; 0 when there is none."""
    ends = [int(s.end_ns) for s in sources if isinstance(s, BagSource) and s.end_ns is not None]
    return max(ends) + FILE_PERIOD_NS if ends else 0


class SegmentedBagWriter:
    def __init__(self, path: Path, class_map: ClassMap, threshold: float, file_time_base_ns: int = 0) -> None:
        from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
        from rosbags.rosbag2 import StoragePlugin, Writer

        self.path = path
        self.class_map = class_map
        self.threshold = threshold
        self.file_time_base_ns = int(file_time_base_ns)
        self.store = bag_typestore()
        self.types = self.store.types
        never = QosTime(0, 0)  # unspecified: the default (infinite) deadline, lifespan and lease
        self._latched = [Qos(QosHistory.KEEP_LAST, 1, QosReliability.RELIABLE, QosDurability.TRANSIENT_LOCAL,
                             never, never, QosLiveliness.AUTOMATIC, never, False)]
        # Metadata version 8, not rosbags' latest 9: rosbag2 reads versions up to its own, and 8 dates from Iron.
        self._writer = Writer(path, version=8, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self._connections: dict[str, Any] = {}
        self._namespaces: dict[str, str] = {}
        self.messages = 0

    # message building --------------------------------------------------------------------

    def _header(self, stamp_ns: int, frame_id: str) -> Any:
        sec, nanosec = split_ns(stamp_ns)
        stamp = self.types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec)
        return self.types["std_msgs/msg/Header"](stamp=stamp, frame_id=frame_id)


    def _source_message(self, ref: FrameRef, result: FrameResult, header: Any) -> tuple[str, Any]:
        payload = ref.payload
        if isinstance(payload, ImageMessage):
            return IMAGE_TYPE, self.types[IMAGE_TYPE](
                header=header, height=payload.height, width=payload.width, encoding=payload.encoding,
                is_bigendian=payload.is_bigendian, step=payload.step, data=payload.data)
        if isinstance(payload, CompressedMessage):
            return COMPRESSED_TYPE, self.types[COMPRESSED_TYPE](header=header, format=payload.format,
                                                                data=payload.data)
        assert result.frame is not None, "the segmenter was not asked to keep frames"
        return IMAGE_TYPE, cdr.image_bytes(header, result.frame, "rgb8")

    def _class_messages(self, header: Any) -> list[tuple[str, Any]]:
        info = self.types[CLASS_INFO_TYPE]
        class_map = self.types[CLASS_MAP_TYPE](
            header=header, model_name=self.class_map.model_name,
            classes=[info(**{**c.message_fields(), "color": np.array(c.color, np.uint8)})
                     for c in self.class_map.classes])
        vision_class = self.types[VISION_CLASS_TYPE]
        label_info = self.types[LABEL_INFO_TYPE](
            header=header, class_map=[vision_class(**c.vision_class_fields()) for c in self.class_map.classes],
            threshold=float(self.threshold))
        return [(CLASS_MAP_TYPE, class_map), (LABEL_INFO_TYPE, label_info)]

    # writing ------------------------------------------------------------------------------

    def _put(self, topic: str, msgtype: str, msg: Any, stamp_ns: int, latched: bool = False) -> None:
        """`msg`: a message of this typestore, or its CDR bytes (the images, built by wire.cdr)."""
        conn = self._connections.get(topic)
        if conn is None:
            conn = self._writer.add_connection(topic, msgtype, typestore=self.store,
                                               offered_qos_profiles=self._latched if latched else ())
            self._connections[topic] = conn
        data = msg if isinstance(msg, bytes) else bytes(self.store.serialize_cdr(msg, msgtype))
        self._writer.write(conn, int(stamp_ns), data)
        self.messages += 1

    def write(self, ref: FrameRef, result: FrameResult, ordinal: int) -> None:
        if ref.topic:
            topic, frame_id, stamp_ns = ref.topic, ref.frame_id, int(ref.stamp_ns or 0)
        else:
            topic, frame_id, stamp_ns = FILE_TOPIC, FILE_FRAME_ID, self.file_time_base_ns + ordinal * FILE_PERIOD_NS
        header = self._header(stamp_ns, frame_id)
        ns = self._namespaces.get(topic)
        if ns is None:
            ns = namespace_for(topic, set(self._namespaces.values()))
            self._namespaces[topic] = ns
            for msgtype, msg in self._class_messages(header):
                self._put(output_topic(ns or "/", "class_map" if msgtype == CLASS_MAP_TYPE else "label_info"),
                          msgtype, msg, stamp_ns, latched=True)
        source_type, source_msg = self._source_message(ref, result, header)
        self._put(topic, source_type, source_msg, stamp_ns)
        assert result.color is not None, "--bag-out asks the pipeline for the color mask"
        for key, array, encoding in (("mask", result.labels, "mono8"), ("confidence", result.confidence, "mono8"),
                                     ("color_mask", result.color, "rgb8")):
            self._put(output_topic(ns or "/", key), IMAGE_TYPE, cdr.image_bytes(header, array, encoding), stamp_ns)

    def close(self) -> None:
        self._writer.close()
