"""camera_replay: publish photos, an image folder or a video as a camera stream.

Stands in for a camera driver in the demo, benchmarks and tests, and lets a user feed
recorded frames to the node: sensor_msgs/Image on `image` (sensor-data QoS, as drivers do,
REP 2003) and a matching sensor_msgs/CameraInfo on `camera_info`, same header. Frames are read
one at a time as they are sent (a video is never held in memory), and the source is read again
from the start when it ends, unless --count says when to stop.
"""
from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Iterator

import cv2
import numpy as np
from rclpy.utilities import remove_ros_args

from ..offline.sources import frames, pinhole_k
from ..ros.replay import replay

_FROM_RGB = {"rgb8": None, "bgr8": cv2.COLOR_RGB2BGR, "mono8": cv2.COLOR_RGB2GRAY}


def encode(rgb: np.ndarray, encoding: str) -> np.ndarray:
    code = _FROM_RGB[encoding]
    return np.ascontiguousarray(rgb if code is None else cv2.cvtColor(rgb, code))


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="camera_replay", description=__doc__)
    parser.add_argument("--source", default="samples", help="'samples' (bundled photos), a folder, an image or a video")
    parser.add_argument("--rate", type=float, default=10.0, help="frames per second")
    parser.add_argument("--encoding", default="rgb8", choices=sorted(_FROM_RGB))
    parser.add_argument("--size", default="", help="resize every frame to WIDTHxHEIGHT")
    parser.add_argument("--frame-id", default="camera_color_optical_frame")
    parser.add_argument("--count", type=int, default=0, help="stop after this many frames (0 = loop forever)")
    return parser.parse_args(remove_ros_args(argv)[1:])


def stream(source: str, size: tuple[int, int] | None, encoding: str) -> Iterator[tuple[str, np.ndarray]]:
    """The source's frames, encoded, read one at a time and started again at its end."""
    while True:
        sent = 0
        for name, rgb in frames(source):
            if size is not None:
                rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            sent += 1
            yield name, encode(rgb, encoding)
        if not sent:
            return


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    args = parse_args(argv)
    size = tuple(int(v) for v in args.size.lower().split("x")) if args.size else None
    source = stream(args.source, size, args.encoding)  # type: ignore[arg-type]
    try:
        first = next(source)  # a missing or unreadable source is said before any node starts
    except (ValueError, StopIteration) as exc:
        print(f"camera_replay: {exc or 'the source has no frames'}", file=sys.stderr)
        return 2
    return replay(argv, itertools.chain([first], source), args.encoding, args.rate, args.frame_id, args.count, pinhole_k,
                  f"frames from '{args.source}'")


if __name__ == "__main__":
    sys.exit(main())
