"""segment_offline: segment recorded data with the node's engine, to pre-label data sets.

Sources: an image folder, one image, a video, 'samples' (photos bundled with scikit-image),
or a recorded bag: ROS 2 (a folder with metadata.yaml, or one .db3/.mcap file) or ROS 1
(.bag), read with `rosbags`, so this runs wherever the pip dependencies do; no rclpy import.

Per segmented frame, in --out:
  <name>_mask.png        class ids, mono8 PNG (lossless); 255 = unlabeled
  <name>_confidence.png  winning class probability * 255, mono8 PNG
  <name>_overlay.png     with --overlay: the frame with the color mask blended in
  <name>_color.png       with --color: the palette color of every pixel
Once: classes.json (model, class ids, names, colors, obstacle flags, options) and index.csv,
one row per written frame, appended as frames finish so an interrupted run leaves a valid
index. Columns: name, source (file or bag topic), stamp (header stamp of a bag frame,
sec.nanosec), width/height (of the written mask), source_width/source_height (of the
decoded frame), inference_ms (the engine's time for the frame: preprocess, forward,
postprocess, colorize; not decoding or PNG writing), then share_<class> per class and
share_unlabeled: each class's fraction of the mask's pixels.

Frame names: a file's stem; `<video stem>_<frame index>`; for bags
`<topic, '/' and other odd characters as '_'>_<header stamp in ns>` (the bag's receive
time where a driver leaves the header stamp zero). A repeated name gets `_1`, `_2`, ...

A frame that cannot be decoded (corrupt payload, unknown encoding, unreadable file) is
reported, counted and skipped; a source that cannot be read at all is an error. Without
--topic every Image/CompressedImage topic of a bag is segmented except depth streams
(16UC1/32FC1, compressedDepth), which are not pictures a segmentation model understands;
naming a topic with --topic segments it whatever it holds.
"""
from __future__ import annotations

import argparse
import csv
import itertools
import json
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

import cv2
import numpy as np

from ..core.conversions import compressed_to_rgb, image_to_rgb
from ..core.geometry import parse_output_size
from ..core.labels import UNLABELED, ClassMap
from ..core.pipeline import SegmentationOptions, SegmentationPipeline, SegmentationResult
from ..core.runtimes.base import DeviceError, ModelLoadError
from ..core.runtimes.builtin import DEFAULT_MODEL
from ..core.runtimes.loader import load_model, warm_up
from ..core.sources import IMAGE_SUFFIXES, VIDEO_SUFFIXES, frames, read_image

PROG = "segment_offline"
IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_TYPE = "sensor_msgs/msg/CompressedImage"
IMAGE_TYPES = (IMAGE_TYPE, COMPRESSED_TYPE)
ROS2_BAG_SUFFIXES = (".db3", ".mcap")
ROS1_BAG_SUFFIX = ".bag"
DEPTH_ENCODINGS = frozenset({"16uc1", "32fc1"})
"""REP 118 depth: decodable as gray by image_to_rgb (16UC1), but not a picture to segment."""


class SourceError(RuntimeError):
    """The source cannot be read at all (missing, unknown type, no image topics...)."""


@dataclass
class FrameRef:
    """One frame of a source, not decoded yet, so --every can skip it for free."""

    name: str
    source: str
    """The file, or the bag topic, the frame came from."""
    decode: Callable[[], np.ndarray]
    """HxWx3 uint8 RGB; raises ValueError (ImageFormatError included) for a bad frame."""
    stamp: str = ""
    stream: str = ""
    """--every counts frames per stream: one per bag topic, one for any other source."""


# file sources ---------------------------------------------------------------------------------

def _ready(rgb: np.ndarray) -> Callable[[], np.ndarray]:
    return lambda: rgb


def _reader(path: Path) -> Callable[[], np.ndarray]:
    return lambda: read_image(path)


def file_frames(source: str) -> Iterator[FrameRef]:
    """'samples', an image folder, an image or a video (the formats of sources.frames).

    Folder images are read one by one so that one unreadable file is a bad frame, not the
    end of the run. Raises SourceError when the source itself is unusable.
    """
    path = Path(source)
    if source != "samples" and path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise SourceError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder '{path}'")
        for file in files:
            yield FrameRef(file.stem, str(file), _reader(file))
        return
    if source != "samples" and path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
        yield FrameRef(path.stem, str(path), _reader(path))
        return
    try:
        for name, rgb in frames(source):
            yield FrameRef(name, source, _ready(rgb))
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
        sec, nanosec = divmod(int(receive_ns), 1_000_000_000)
    return sec * 1_000_000_000 + nanosec, f"{sec}.{nanosec:09d}"


def depth_reason(msg: Any, msgtype: str) -> str:
    """Why a message is a depth image ('' when it is not)."""
    if msgtype == COMPRESSED_TYPE:
        fmt = str(getattr(msg, "format", ""))
        return f"compressedDepth ({fmt!r})" if "compresseddepth" in fmt.lower() else ""
    encoding = str(getattr(msg, "encoding", "")).strip()
    return f"depth images ({encoding})" if encoding.lower() in DEPTH_ENCODINGS else ""


def _message_decoder(msg: Any, msgtype: str) -> Callable[[], np.ndarray]:
    convert = compressed_to_rgb if msgtype == COMPRESSED_TYPE else image_to_rgb
    return lambda: convert(msg)


def _failing(problem: str) -> Callable[[], np.ndarray]:
    def decode() -> np.ndarray:
        raise ValueError(problem)
    return decode


class BagSource:
    """Image frames of a recorded bag, in receive order across the selected topics.

    Opened (and its topics checked) on entering, so that a bag without the wanted topics
    fails before a model is loaded.
    """

    def __init__(self, path: Path, topics: Sequence[str] = (),
                 log: Callable[[str], None] = lambda _: None) -> None:
        self.path = path
        self.wanted = [_normalize_topic(t) for t in topics]
        self.log = log
        self.connections: list[Any] = []
        self._reader: Any = None

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
            chosen = set(image_topics)
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

    def describe(self) -> str:
        counts: Counter[str] = Counter()
        kinds: dict[str, str] = {}
        for conn in self.connections:
            counts[conn.topic] += int(getattr(conn, "msgcount", 0) or 0)
            kinds[conn.topic] = conn.msgtype.rsplit("/", 1)[-1]
        topics = ", ".join(f"{t} ({kinds[t]}, {counts[t]} messages)" for t in sorted(counts))
        return f"bag '{self.path}': {topics}"

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
            messages = reader.messages(connections=self.connections)
            for conn, receive_ns, raw in messages:
                topic, msgtype = conn.topic, conn.msgtype
                if topic in ignored:
                    continue
                try:
                    msg = reader.deserialize(raw, msgtype)
                except Exception as exc:  # noqa: BLE001 - whatever breaks one message, it is one bad frame
                    sec, nsec = divmod(int(receive_ns), 1_000_000_000)
                    yield FrameRef(f"{sanitize_topic(topic)}_{receive_ns}", topic,
                                   _failing(f"cannot deserialize {msgtype}: {exc}"),
                                   f"{sec}.{nsec:09d}", topic)
                    continue
                if not self.wanted and topic not in checked:
                    checked.add(topic)
                    reason = depth_reason(msg, msgtype)
                    if reason:
                        ignored.add(topic)
                        self.log(f"ignoring {topic}: {reason}; name it with --topic to segment it anyway")
                        continue
                stamp_ns, stamp = _stamp(msg, receive_ns)
                yield FrameRef(f"{sanitize_topic(topic)}_{stamp_ns}", topic, _message_decoder(msg, msgtype),
                               stamp, topic)
        except (AnyReaderError, Ros1ReaderError, Ros2ReaderError) as exc:
            # A damaged chunk or a recording cut off mid-write: what came before is kept.
            raise SourceError(f"cannot read bag '{self.path}' past this point: {exc}") from exc


# outputs --------------------------------------------------------------------------------------

def classes_document(class_map: ClassMap, model: str, options: SegmentationOptions) -> dict[str, Any]:
    size = options.output_size
    return {
        "model": model,
        "model_name": class_map.model_name,
        "unlabeled_id": UNLABELED,
        "classes": [{"id": c.id, "name": c.name, "color": list(c.color), "obstacle": c.obstacle}
                    for c in class_map.classes],
        "options": {
            "output_size": size if isinstance(size, str) else f"{size[0]}x{size[1]}",
            "confidence_threshold": options.confidence_threshold,
        },
    }


def index_header(class_map: ClassMap) -> list[str]:
    return ["name", "source", "stamp", "width", "height", "source_width", "source_height", "inference_ms",
            *(f"share_{c.name}" for c in class_map.classes), "share_unlabeled"]


def class_shares(labels: np.ndarray, class_map: ClassMap) -> list[float]:
    """Fraction of pixels per class in class-map order, then unlabeled."""
    counts = np.bincount(labels.ravel(), minlength=256)
    total = max(int(labels.size), 1)
    return [float(counts[c.id]) / total for c in class_map.classes] + [float(counts[UNLABELED]) / total]


def _write_png(path: Path, image: np.ndarray) -> None:
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), image):
        raise OSError(f"cannot write '{path}'")


def write_frame(out: Path, name: str, result: SegmentationResult) -> None:
    _write_png(out / f"{name}_mask.png", result.labels)
    assert result.confidence is not None  # asked for (want_confidence defaults to True)
    _write_png(out / f"{name}_confidence.png", result.confidence)
    if result.overlay is not None:
        _write_png(out / f"{name}_overlay.png", result.overlay)
    if result.color is not None:
        _write_png(out / f"{name}_color.png", result.color)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _unique(name: str, used: set[str]) -> str:
    candidate, n = name, 0
    while candidate in used:
        n += 1
        candidate = f"{name}_{n}"
    used.add(candidate)
    return candidate


# the run --------------------------------------------------------------------------------------

@dataclass
class RunStats:
    segmented: int = 0
    bad: int = 0
    engine_ms: float = 0.0
    wall_s: float = 0.0
    interrupted: bool = False
    error: str = ""
    """Why the source stopped early (a damaged bag); frames before it were written."""

    @property
    def mean_ms(self) -> float:
        return self.engine_ms / self.segmented if self.segmented else 0.0


def segment_frames(refs: Iterator[FrameRef], pipeline: SegmentationPipeline, options: SegmentationOptions,
                   out: Path, index: TextIO, every: int = 1, limit: int | None = None,
                   stdout: TextIO | None = None, stderr: TextIO | None = None) -> RunStats:
    """Segment every `every`-th frame of each stream, at most `limit` in all; write outputs
    and one index row per frame. Progress goes to `stdout`; bad frames are reported on
    `stderr` and counted. A source that fails midway ends the run with `error` set."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    class_map = pipeline.class_map
    share_names = [*class_map.names, "unlabeled"]
    writer = csv.writer(index)
    seen: Counter[str] = Counter()
    used: set[str] = set()
    stats = RunStats()
    start = time.perf_counter()
    try:
        for ref in refs:
            if limit is not None and stats.segmented >= limit:
                break
            position = seen[ref.stream]
            seen[ref.stream] += 1
            if position % every:
                continue
            try:
                rgb = ref.decode()
                result = pipeline(rgb, options)
            except (ValueError, cv2.error) as exc:
                stats.bad += 1
                print(f"[{PROG}] skipped {ref.name} ({ref.source}): {_one_line(exc)}", file=stderr, flush=True)
                continue
            name = _unique(ref.name, used)
            write_frame(out, name, result)
            ms = result.timings_ms["total"]
            shares = class_shares(result.labels, class_map)
            out_w, out_h = result.size
            writer.writerow([name, ref.source, ref.stamp, out_w, out_h, rgb.shape[1], rgb.shape[0], f"{ms:.3f}",
                             *(f"{s:.6f}" for s in shares)])
            index.flush()
            stats.segmented += 1
            stats.engine_ms += ms
            share_text = ", ".join(f"{n} {s * 100:.1f}%" for n, s in zip(share_names, shares) if s > 0)
            print(f"{stats.segmented:>6}  {name}  {out_w}x{out_h}  {ms:.1f} ms  {share_text}", file=stdout,
                  flush=True)
    except KeyboardInterrupt:
        stats.interrupted = True
    except SourceError as exc:
        stats.error = str(exc)
    stats.wall_s = time.perf_counter() - start
    return stats


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def _output_size(text: str) -> str | tuple[int, int]:
    try:
        return parse_output_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _threshold(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be within [0, 1], got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Segment an image folder, an image, a video or a recorded ROS bag offline, with "
                    "the same engine as segmentation_node, and write masks, confidence maps, "
                    "classes.json and index.csv.",
        epilog=__doc__.split("\n\n", 1)[1] if __doc__ else None)
    parser.add_argument("source", help="image folder, image, video, 'samples', ROS 2 bag (folder with "
                                       "metadata.yaml, .db3 or .mcap) or ROS 1 .bag")
    parser.add_argument("--out", required=True, type=Path, help="output folder (created)")
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help="builtin model name or a TorchScript/ONNX file with its description")
    parser.add_argument("--description", default=None,
                        help="model description YAML, when it does not lie beside a model file")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--topic", action="append", default=[], metavar="TOPIC",
                        help="bag topic to segment (repeatable); default: every image topic except depth")
    parser.add_argument("--output-size", type=_output_size, default="input", metavar="input|network|WxH",
                        help="size of the written masks (default: the frame's)")
    parser.add_argument("--confidence-threshold", type=_threshold, default=0.0,
                        help="pixels whose winning probability is below this are 255 (unlabeled)")
    parser.add_argument("--overlay", action="store_true", help="also write <name>_overlay.png")
    parser.add_argument("--color", action="store_true", help="also write <name>_color.png")
    parser.add_argument("--every", type=_positive_int, default=1, metavar="N",
                        help="segment every N-th frame (counted per bag topic)")
    parser.add_argument("--limit", type=_positive_int, default=None, metavar="N",
                        help="stop after N segmented frames")
    return parser


def _checked(refs: Iterator[FrameRef]) -> Iterator[FrameRef]:
    """`refs` with its first frame pulled now, so that an unusable source fails before
    a model is loaded or anything is written."""
    first = next(refs, None)
    return refs if first is None else itertools.chain([first], refs)


def _error(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """`argv` is sys.argv-like: argv[0] is the program name."""
    args_in = list(sys.argv if argv is None else argv)[1:]
    parser = build_parser()
    args = parser.parse_args(args_in)
    source = str(args.source)
    path = Path(source).expanduser()
    if source != "samples" and not path.exists():
        return _error(f"source '{source}' does not exist (expected an image folder, an image, a video, "
                      "'samples' or a bag)")
    try:
        bag = bag_path(path) if source != "samples" else None
    except SourceError as exc:
        return _error(str(exc))
    if bag is None and args.topic:
        parser.error("--topic applies to bags only")
    if bag is None and path.is_file() and path.suffix.lower() not in (*IMAGE_SUFFIXES, *VIDEO_SUFFIXES):
        return _error(f"'{source}': unknown file type '{path.suffix or path.name}' (images: "
                      f"{', '.join(IMAGE_SUFFIXES)}; videos: {', '.join(VIDEO_SUFFIXES)}; bags: "
                      f"{', '.join((*ROS2_BAG_SUFFIXES, ROS1_BAG_SUFFIX))} or a folder with metadata.yaml)")

    def log(text: str) -> None:
        print(f"[{PROG}] {text}", flush=True)

    options = SegmentationOptions(output_size=args.output_size, confidence_threshold=args.confidence_threshold,
                                  want_color=args.color, want_overlay=args.overlay)
    out: Path = args.out
    try:
        with ExitStack() as stack:
            if bag is not None:
                bag_source = stack.enter_context(BagSource(bag, args.topic, log))
                log(bag_source.describe())
                refs = bag_source.frames()
            else:
                refs = _checked(file_frames(source))
            try:
                runtime = load_model(args.model, args.device, description=args.description)
            except (ModelLoadError, DeviceError) as exc:
                return _error(str(exc))
            stack.callback(runtime.close)
            warm_up(runtime, 2)
            pipeline = SegmentationPipeline(runtime)
            log(f"model '{args.model}' ({pipeline.class_map.model_name or runtime.spec.name}) on "
                f"{runtime.device}; classes: {', '.join(pipeline.class_map.names)}")
            out.mkdir(parents=True, exist_ok=True)
            (out / "classes.json").write_text(
                json.dumps(classes_document(pipeline.class_map, args.model, options), indent=2) + "\n")
            with open(out / "index.csv", "w", newline="") as index:
                csv.writer(index).writerow(index_header(pipeline.class_map))
                stats = segment_frames(refs, pipeline, options, out, index, args.every, args.limit)
    except (SourceError, OSError) as exc:
        return _error(str(exc))

    skipped = f", {stats.bad} skipped (undecodable)" if stats.bad else ""
    per_frame = stats.wall_s * 1e3 / stats.segmented if stats.segmented else 0.0
    log(f"{'interrupted: ' if stats.interrupted else ''}{stats.segmented} frames segmented{skipped} in "
        f"{stats.wall_s:.2f} s; mean {stats.mean_ms:.1f} ms per frame in the engine, {per_frame:.1f} ms with "
        f"decoding and writing; outputs in {out}/")
    if stats.error:
        return _error(stats.error)
    if stats.interrupted:
        return 130
    if stats.segmented == 0:
        return _error("no frame could be segmented" if stats.bad else "the source holds no frames to segment")
    return 0


if __name__ == "__main__":
    sys.exit(main())
