"""camera_replay: publish photos, an image folder or a video as a camera stream.

Stands in for a camera driver in the demo, benchmarks and tests, and lets a user feed
recorded frames to the node: sensor_msgs/Image on `image` (sensor-data QoS, as drivers do,
REP 2003) and a matching sensor_msgs/CameraInfo on `camera_info`, same header. Frames are read
one at a time as they are sent (a video is never held in memory), each held to the node's image
size limit before it is decoded, and the source is read again from the start when it ends,
unless --count says when to stop.
"""
from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Callable, Iterator

import cv2
import numpy as np
from rclpy.utilities import remove_ros_args

from ..live.params import StartupParameterError, params_files, read_params_file
from ..offline.sources import frames, pinhole_k
from ..offline.video import DamagedFrame
from ..ros.replay import replay
from ..wire.images import DEFAULT_IMAGE_LIMITS

_FROM_RGB = {"rgb8": None, "bgr8": cv2.COLOR_RGB2BGR, "mono8": cv2.COLOR_RGB2GRAY}


def print_error(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def encode(rgb: np.ndarray, encoding: str) -> np.ndarray:
    code = _FROM_RGB[encoding]
    return np.ascontiguousarray(rgb if code is None else cv2.cvtColor(rgb, code))


MAX_RATE_HZ = 1000.0


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 < value <= MAX_RATE_HZ:  # NaN fails too
        raise argparse.ArgumentTypeError(f"must be above 0 and at most {MAX_RATE_HZ:g} frames per second, got {text}")
    return value


def _size(text: str) -> tuple[int, int] | None:
    if not text:
        return None
    width, sep, height = text.lower().partition("x")
    if not (sep and width.isascii() and width.isdigit() and height.isascii() and height.isdigit()):
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, e.g. 640x480, got {text!r}")
    size = (int(width), int(height))
    if min(size) < 1 or size[0] * size[1] > DEFAULT_IMAGE_LIMITS.max_pixels:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1x1 and at most "
                                         f"{DEFAULT_IMAGE_LIMITS.max_pixels} pixels")
    return size


def _count(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {text!r}")
    return int(text)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Bad values end with argparse's usage line and exit status 2, never a traceback."""
    parser = argparse.ArgumentParser(prog="camera_replay", description=__doc__)
    parser.add_argument("--source", default="samples", help="'samples' (bundled photos), a folder, an image or a video")
    parser.add_argument("--rate", type=_rate, default=10.0, help="frames per second (0 < rate <= 1000)")
    parser.add_argument("--encoding", default="rgb8", choices=sorted(_FROM_RGB))
    parser.add_argument("--size", type=_size, default=None, help="resize every frame to WIDTHxHEIGHT")
    parser.add_argument("--frame-id", default="camera_color_optical_frame")
    parser.add_argument("--count", type=_count, default=0, help="stop after this many frames (0 = loop forever)")
    return parser.parse_args(remove_ros_args(argv)[1:])


DAMAGE_REPORT_EVERY = 100
"""After the first damaged video frame, one line per this many more (a long damaged stretch
cannot flood stderr)."""


def stream(source: str, size: tuple[int, int] | None, encoding: str,
           report: Callable[[str], None] = print_error) -> Iterator[tuple[str, np.ndarray]]:
    """The source's frames, encoded, read one at a time and started again at its end. A damaged
    video frame is skipped, counted and named (the first, then every DAMAGE_REPORT_EVERY-th)."""
    damaged = 0
    while True:
        sent = 0
        for name, rgb in frames(source):
            if isinstance(rgb, DamagedFrame):
                damaged += 1
                if damaged == 1 or damaged % DAMAGE_REPORT_EVERY == 0:
                    report(f"camera_replay: skipped {name}: {rgb.problem} ({damaged} damaged so far)")
                continue
            if size is not None:
                rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            sent += 1
            yield name, encode(rgb, encoding)
        if not sent:
            return


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    try:
        for path in params_files(argv):  # rcl's own message for a broken one is a traceback
            read_params_file(path)
    except StartupParameterError as exc:
        print_error(f"camera_replay: {exc}")
        return 2
    args = parse_args(argv)
    source = stream(args.source, args.size, args.encoding)
    try:
        first = next(source)  # a missing or unreadable source is said before any node starts
    except (ValueError, StopIteration) as exc:
        print(f"camera_replay: {exc or 'the source has no frames'}", file=sys.stderr)
        return 2
    return replay(argv, itertools.chain([first], source), args.encoding, args.rate, args.frame_id, args.count, pinhole_k,
                  f"frames from '{args.source}'")


if __name__ == "__main__":
    sys.exit(main())
