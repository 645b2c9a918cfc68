"""Frame sources of segment_offline: image folders, images, videos, 'samples' and recorded bags.

Bags are ROS 2 (a folder with metadata.yaml, or one .db3/.mcap file) or ROS 1 (.bag), read
with `rosbags`, so no ROS install is needed. Every frame is a FrameRef whose payload is a small
picklable object decoded where the frame is segmented (this process or a Ray actor): the
bytes of an image file, the fields of a sensor_msgs Image/CompressedImage, or a video frame.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import numpy as np

from ..wire import cdr
from ..wire.images import ImageFormatError, compressed_to_rgb, image_to_rgb
from ..wire.stamps import NS_PER_S, split_ns, stamp_text
from .sources import IMAGE_SUFFIXES, VIDEO_SUFFIXES, frames, read_image
from .video import DamagedFrame, listed_frames

IMAGE_TYPE = cdr.IMAGE
COMPRESSED_TYPE = cdr.COMPRESSED_IMAGE
IMAGE_TYPES = (IMAGE_TYPE, COMPRESSED_TYPE)
ROS2_BAG_SUFFIXES = (".db3", ".mcap")
ROS1_BAG_SUFFIX = ".bag"
DEPTH_ENCODINGS = frozenset({"16uc1", "32fc1"})
"""REP 118 depth: decodable as gray by image_to_rgb (16UC1), but not a picture to segment."""


class SourceError(RuntimeError):
    """The source cannot be read at all (missing, unknown type, no image topics...)."""


# payloads: picklable, decoded where the frame is segmented -------------------------------------

class Payload(Protocol):
    def decode(self) -> np.ndarray:
        """HxWx3 uint8 RGB; raises ValueError (ImageFormatError included) for a bad frame."""
        ...


@dataclass(frozen=True)
class _FileBytes:
    """A file's bytes, CompressedImage-like (no format: the bytes' header names the codec)."""

    data: bytes
    format: str = ""


@dataclass(frozen=True)
class ImageFile:
    path: str
    data: bytes | None = None
    """The file's bytes once `portable()` read them (for a worker that cannot see the file)."""

    def decode(self) -> np.ndarray:
        if self.data is None:
            return read_image(Path(self.path))
        try:
            return compressed_to_rgb(_FileBytes(self.data))
        except ImageFormatError as exc:
            raise ImageFormatError(f"image '{self.path}': {exc}", exc.kind) from exc

    def portable(self) -> Payload:
        try:
            return ImageFile(self.path, Path(self.path).read_bytes())
        except OSError as exc:
            return Undecodable(f"cannot read image '{self.path}': {exc.strerror or exc}")


@dataclass(frozen=True)
class RgbFrame:
    rgb: np.ndarray

    def decode(self) -> np.ndarray:
        return self.rgb


@dataclass(frozen=True)
class ImageMessage:
    """The fields of a sensor_msgs/Image (what image_to_rgb reads)."""

    encoding: str
    height: int
    width: int
    step: int
    is_bigendian: int
    data: np.ndarray

    def decode(self) -> np.ndarray:
        return image_to_rgb(self)


@dataclass(frozen=True)
class CompressedMessage:
    format: str
    data: np.ndarray

    def decode(self) -> np.ndarray:
        return compressed_to_rgb(self)


@dataclass(frozen=True)
class Undecodable:
    problem: str

    def decode(self) -> np.ndarray:
        raise ValueError(self.problem)


def portable(payload: Payload) -> Payload:
    """The payload with everything it needs inside it (file bytes read), for another machine."""
    return payload.portable() if isinstance(payload, ImageFile) else payload


@dataclass
class FrameRef:
    """One frame of a source, not decoded yet, so --every and --resume skip it for free."""

    name: str
    source: str
    """The file, or the bag topic, the frame came from."""
    payload: Payload
    stamp: str = ""
    """Header stamp 'sec.nanosec' of a bag frame ('' for files)."""
    stream: str = ""
    """--every counts frames per stream: one per bag topic, one per other source."""
    origin: str = ""
    """The source argument (folder, video, bag) the frame belongs to."""
    stamp_ns: int | None = None
    frame_id: str = ""
    topic: str = ""
    """The bag topic ('' for files)."""
    ordinal: int = 0
    """Position among the frames a run considers (after --every), resumed ones included."""


# file sources ---------------------------------------------------------------------------------

class FileSource:
    """'samples', an image folder, an image or a video (the formats of sources.frames).

    Folder images are read one by one so that one unreadable file is a bad frame, not the
    end of the run.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.path = Path(source)

    def __enter__(self) -> FileSource:
        if self.source != "samples" and self.path.is_dir() and not self._files():
            raise SourceError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder '{self.path}'")
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        return None

    def _files(self) -> list[Path]:
        return sorted(p for p in self.path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)

    def describe(self) -> str:
        return f"'{self.source}'"

    def expected(self) -> dict[str, int] | None:
        """Frames per stream, where that is cheap to know."""
        if self.source == "samples":
            return None
        if self.path.is_dir():
            return {self.source: len(self._files())}
        if self.path.suffix.lower() in IMAGE_SUFFIXES:
            return {self.source: 1}
        count = listed_frames(self.path)
        return {self.source: count} if count > 0 else None

    def frames(self) -> Iterator[FrameRef]:
        stream = self.source
        if self.source != "samples" and self.path.is_dir():
            for file in self._files():
                yield FrameRef(file.stem, str(file), ImageFile(str(file)), stream=stream, origin=self.source)
            return
        if self.source != "samples" and self.path.is_file() and self.path.suffix.lower() in IMAGE_SUFFIXES:
            yield FrameRef(self.path.stem, str(self.path), ImageFile(str(self.path)), stream=stream,
                           origin=self.source)
            return
        try:
            for name, rgb in frames(self.source):
                payload = Undecodable(rgb.problem) if isinstance(rgb, DamagedFrame) else RgbFrame(rgb)
                yield FrameRef(name, self.source, payload, stream=stream, origin=self.source)
        except ValueError as exc:
            raise SourceError(str(exc)) from exc


# bags -----------------------------------------------------------------------------------------

def sanitize_topic(topic: str) -> str:
    """'/camera/image_raw' -> 'camera_image_raw': safe in a file name on any file system."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", topic).strip("_") or "topic"


def _normalize_topic(topic: str) -> str:
    return topic if topic.startswith("/") else "/" + topic


def bag_path(path: Path) -> Path | None:
    """The path AnyReader opens for `path` when it is a recorded bag, else None.

    A ROS 2 bag is a folder with metadata.yaml, or one storage file; a folder holding a
    storage file but no metadata.yaml and no images (a copied or interrupted recording)
    is opened through its single storage file.
    """
    if path.is_file():
        return path if path.suffix.lower() in (*ROS2_BAG_SUFFIXES, ROS1_BAG_SUFFIX) else None
    if not path.is_dir():
        return None
    if (path / "metadata.yaml").is_file():
        return path
    storage = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in ROS2_BAG_SUFFIXES)
    has_images = any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.iterdir())
    if not storage or has_images:
        return None
    if len(storage) > 1:
        raise SourceError(f"'{path}' holds {len(storage)} bag files ({', '.join(p.name for p in storage)}) "
                          "but no metadata.yaml, so their order is unknown; run `ros2 bag reindex` on it, "
                          "or pass one of the files")
    return storage[0]


def _stamp(msg: Any, receive_ns: int) -> tuple[int, str]:
    """(ns, 'sec.nanosec') of the header stamp, or of the receive time where it is zero."""
    try:
        sec, nanosec = int(msg.header.stamp.sec), int(msg.header.stamp.nanosec)
    except (AttributeError, TypeError, ValueError):
        sec = nanosec = 0
    if sec == 0 and nanosec == 0:
        sec, nanosec = split_ns(receive_ns)
    stamp_ns = sec * NS_PER_S + nanosec
    return stamp_ns, stamp_text(stamp_ns)


SEGMENTATION_OUTPUTS = ("mask", "confidence", "color_mask", "overlay")


def is_segmentation_output(topic: str) -> bool:
    """`<ns>/segmentation/mask` and its siblings: what segment_offline --bag-out and the node publish."""
    parts = topic.strip("/").split("/")
    return len(parts) >= 2 and parts[-2] == "segmentation" and parts[-1] in SEGMENTATION_OUTPUTS


def depth_reason(msg: Any, msgtype: str) -> str:
    """Why a message is a depth image ('' when it is not)."""
    if msgtype == COMPRESSED_TYPE:
        fmt = str(getattr(msg, "format", ""))
        return f"compressedDepth ({fmt!r})" if "compresseddepth" in fmt.lower() else ""
    encoding = str(getattr(msg, "encoding", "")).strip()
    return f"depth images ({encoding})" if encoding.lower() in DEPTH_ENCODINGS else ""


def message_payload(msg: Any, msgtype: str) -> Payload:
    data = np.asarray(msg.data, np.uint8)
    if msgtype == COMPRESSED_TYPE:
        return CompressedMessage(str(msg.format), data)
    return ImageMessage(str(msg.encoding), int(msg.height), int(msg.width), int(msg.step),
                        int(msg.is_bigendian), data)


@dataclass
class BagSource:
    """Image frames of a recorded bag, in receive order across the selected topics.

    Opened (and its topics checked) on entering, so that a bag without the wanted topics
    fails before a model is loaded.
    """

    path: Path
    topics: Sequence[str] = ()
    log: Callable[[str], None] = lambda _: None
    origin: str = ""
    connections: list[Any] = field(default_factory=list)
    _reader: Any = None

    def __post_init__(self) -> None:
        self.wanted = [_normalize_topic(t) for t in self.topics]
        self.origin = self.origin or str(self.path)

    def __enter__(self) -> BagSource:
        try:
            from rosbags.highlevel import AnyReader, AnyReaderError
            from rosbags.typesys import Stores, get_typestore
        except ImportError as exc:
            raise SourceError(f"reading bags needs the 'rosbags' package ({exc}); "
                              "pip install rosbags") from exc
        is_ros1 = self.path.suffix.lower() == ROS1_BAG_SUFFIX
        # Bags recorded before Iron carry no message definitions; the image types have not changed.
        store = get_typestore(Stores.ROS1_NOETIC if is_ros1 else Stores.LATEST)
        reader = AnyReader([self.path], default_typestore=store)
        try:
            reader.open()
        except (AnyReaderError, OSError, ValueError) as exc:
            hint = ""
            if "end magic" in str(exc):
                # rosbags needs the MCAP footer, which a recorder killed mid-write never wrote.
                hint = " (a recording that was not closed? `mcap recover` can rebuild its footer)"
            raise SourceError(f"cannot read bag '{self.path}': {exc}{hint}") from exc
        self._reader = reader
        try:
            self.connections = self._select(reader.connections)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._reader is not None:
            reader, self._reader = self._reader, None
            reader.close()

    def _select(self, connections: Sequence[Any]) -> list[Any]:
        types: dict[str, str] = {}
        for conn in connections:
            types.setdefault(conn.topic, conn.msgtype)
        image_topics = sorted(t for t, m in types.items() if m in IMAGE_TYPES)
        listing = ", ".join(f"{t} ({m})" for t, m in sorted(types.items())) or "none"
        if not image_topics:
            raise SourceError(f"no image topics (sensor_msgs/msg/Image or CompressedImage) in bag "
                              f"'{self.path}'; its topics: {listing}")
        if not self.wanted:
            # segment_offline --bag-out (and the node) write segmentation/{mask,confidence,color_mask}:
            # labels, not pictures. Segmenting them again is never what re-reading such a bag meant.
            own = [t for t in image_topics if is_segmentation_output(t)]
            for topic in own:
                self.log(f"ignoring {topic}: a segmentation output (segment_offline --bag-out, segmentation_node); "
                         "name it with --topic to segment it anyway")
            chosen = set(image_topics) - set(own)
            if not chosen:
                raise SourceError(f"bag '{self.path}' holds only segmentation outputs ({', '.join(own)}); name "
                                  "one with --topic to segment it anyway")
        else:
            for topic in self.wanted:
                if topic not in types:
                    raise SourceError(f"topic '{topic}' is not in bag '{self.path}'; image topics: "
                                      f"{', '.join(image_topics)}")
                if types[topic] not in IMAGE_TYPES:
                    raise SourceError(f"topic '{topic}' holds {types[topic]}, not images; image topics: "
                                      f"{', '.join(image_topics)}")
            chosen = set(self.wanted)
        return [c for c in connections if c.topic in chosen and c.msgtype in IMAGE_TYPES]

    def _counts(self) -> tuple[Counter[str], dict[str, str]]:
        counts: Counter[str] = Counter()
        kinds: dict[str, str] = {}
        for conn in self.connections:
            counts[conn.topic] += int(getattr(conn, "msgcount", 0) or 0)
            kinds[conn.topic] = conn.msgtype.rsplit("/", 1)[-1]
        return counts, kinds

    @property
    def end_ns(self) -> int | None:
        """The recording's last receive time (ns), while entered."""
        return int(self._reader.end_time) if self._reader is not None else None

    def describe(self) -> str:
        counts, kinds = self._counts()
        topics = ", ".join(f"{t} ({kinds[t]}, {counts[t]} messages)" for t in sorted(counts))
        return f"bag '{self.path}': {topics}"

    def expected(self) -> dict[str, int] | None:
        counts, _ = self._counts()
        return {self._stream(t): n for t, n in counts.items()}

    def _stream(self, topic: str) -> str:
        return f"{self.origin}:{topic}"

    def frames(self) -> Iterator[FrameRef]:
        from rosbags.highlevel import AnyReaderError
        from rosbags.rosbag1 import ReaderError as Ros1ReaderError
        from rosbags.rosbag2 import ReaderError as Ros2ReaderError

        reader = self._reader
        if reader is None:
            raise RuntimeError("BagSource.frames() outside `with`")
        ignored: set[str] = set()
        checked: set[str] = set()
        try:
            for conn, receive_ns, raw in reader.messages(connections=self.connections):
                topic, msgtype = conn.topic, conn.msgtype
                if topic in ignored:
                    continue
                try:
                    msg = reader.deserialize(raw, msgtype)
                except Exception as exc:  # noqa: BLE001 - whatever breaks one message, it is one bad frame
                    yield FrameRef(f"{sanitize_topic(topic)}_{receive_ns}", topic,
                                   Undecodable(f"cannot deserialize {msgtype}: {exc}"),
                                   stamp_text(receive_ns), self._stream(topic), self.origin, int(receive_ns), "",
                                   topic)
                    continue
                if not self.wanted and topic not in checked:
                    checked.add(topic)
                    reason = depth_reason(msg, msgtype)
                    if reason:
                        ignored.add(topic)
                        self.log(f"ignoring {topic}: {reason}; name it with --topic to segment it anyway")
                        continue
                stamp_ns, stamp = _stamp(msg, receive_ns)
                frame_id = str(getattr(getattr(msg, "header", None), "frame_id", "") or "")
                yield FrameRef(f"{sanitize_topic(topic)}_{stamp_ns}", topic, message_payload(msg, msgtype),
                               stamp, self._stream(topic), self.origin, stamp_ns, frame_id, topic)
        except (AnyReaderError, Ros1ReaderError, Ros2ReaderError) as exc:
            # A damaged chunk or a recording cut off mid-write: what came before is kept.
            raise SourceError(f"cannot read bag '{self.path}' past this point: {exc}") from exc


class FrameSource(Protocol):
    """What the runner needs of an (entered) source."""

    def frames(self) -> Iterator[FrameRef]:
        ...

    def expected(self) -> dict[str, int] | None:
        """Frames per stream where that is cheap to know, else None."""
        ...


Source = FileSource | BagSource


def check_source(source: str) -> Path | None:
    """Fail early, naming `source`, when it cannot be a frame source; its bag path if it is a bag."""
    path = Path(source).expanduser()
    if source == "samples":
        return None
    if not path.exists():
        raise SourceError(f"source '{source}' does not exist (expected an image folder, an image, a video, "
                          "'samples' or a bag)")
    bag = bag_path(path)
    if bag is None and path.is_file() and path.suffix.lower() not in (*IMAGE_SUFFIXES, *VIDEO_SUFFIXES):
        raise SourceError(f"'{source}': unknown file type '{path.suffix or path.name}' (images: "
                          f"{', '.join(IMAGE_SUFFIXES)}; videos: {', '.join(VIDEO_SUFFIXES)}; bags: "
                          f"{', '.join((*ROS2_BAG_SUFFIXES, ROS1_BAG_SUFFIX))} or a folder with metadata.yaml)")
    return bag


def open_source(source: str, topics: Sequence[str], log: Callable[[str], None]) -> Source:
    """The Source for one command-line argument (not entered yet)."""
    bag = check_source(source)
    if bag is None:
        return FileSource(source)
    return BagSource(bag, topics, log, origin=source)
