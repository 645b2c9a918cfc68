"""Video files read frame by frame, with damaged frames named instead of passed on. ROS-free.

PyAV (the `av` package, FFmpeg's decoders) is used where it is installed: it decodes past a
damaged stretch and marks each frame the decoder had to conceal errors in, so every frame of
the file is either yielded or named as damaged. FFmpeg's own messages stay off stderr (PyAV
keeps FFmpeg's log quiet by default), so a damaged file cannot flood the log.

Without PyAV (a ROS install has no rosdep key for it: `pip install av`), OpenCV reads the file:
it hands concealed frames over as good ones and stops at the first packet it cannot decode, so
only what it stops short of (the frames the container lists but OpenCV never returned) can be
named, as one range; its FFmpeg messages are silenced (they are one unbounded line per damaged
block, and say nothing a caller could act on).
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..wire.errors import one_line
from ..wire.images import DEFAULT_IMAGE_LIMITS, ImageLimits

MAX_LISTED_FRAMES = 10_000_000
"""A frame count above this from a container header is not believed (a hostile file can say 2^63)."""


@dataclass(frozen=True)
class DamagedFrame:
    """A frame of a video that did not decode whole: `problem` says what happened to it."""

    problem: str


def frame_name(path: Path, index: int) -> str:
    return f"{path.stem}_{index:06d}"


def _missing_tail(path: Path, seen: int, listed: int) -> tuple[str, DamagedFrame] | None:
    """Frames the container lists past the last one decoded (a cut-off file, or a decoder that
    stopped): one entry naming the range, however long it is."""
    if not 0 < listed <= MAX_LISTED_FRAMES or seen >= listed:
        return None
    last = listed - 1
    name = frame_name(path, seen) if seen == last else f"{frame_name(path, seen)}..{frame_name(path, last)}"
    count = listed - seen
    return name, DamagedFrame(f"video '{path}' lists {listed} frames but {'frame' if count == 1 else 'frames'} "
                              f"{seen}{'' if seen == last else f' to {last}'} could not be read "
                              "(the file is cut short or damaged there)")


def have_pyav() -> bool:
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


def video_frames(path: Path, limits: ImageLimits = DEFAULT_IMAGE_LIMITS,
                 decoder: str = "auto") -> Iterator[tuple[str, np.ndarray | DamagedFrame]]:
    """(name, RGB uint8 frame or DamagedFrame) for every frame, in order, one decoded at a time.

    The frame size is held to `limits` from the container before any frame is decoded.
    decoder: 'auto' (PyAV where installed, else OpenCV), 'pyav' or 'opencv'.
    Raises ValueError when the file cannot be opened as a video at all.
    """
    if decoder == "auto":
        decoder = "pyav" if have_pyav() else "opencv"
    if decoder == "pyav":
        yield from _pyav_frames(path, limits)
    elif decoder == "opencv":
        yield from _opencv_frames(path, limits)
    else:
        raise ValueError(f"unknown video decoder {decoder!r} (expected 'auto', 'pyav' or 'opencv')")


def check_size(width: int, height: int, path: Path, limits: ImageLimits) -> None:
    limits.check(width, height, width * height * 3, f"video '{path}' frames")


def _pyav_frames(path: Path, limits: ImageLimits) -> Iterator[tuple[str, np.ndarray | DamagedFrame]]:
    import av

    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as exc:
        raise ValueError(f"cannot open video '{path}': {one_line(str(exc))}") from exc
    with container:
        if not container.streams.video:
            raise ValueError(f"cannot open video '{path}': it holds no video stream")
        stream = container.streams.video[0]
        check_size(int(stream.codec_context.width), int(stream.codec_context.height), path, limits)
        index = 0
        packets = container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.FFmpegError as exc:  # the container itself is unreadable past here
                tail = _missing_tail(path, index, int(stream.frames or 0))
                if tail is None:
                    tail = (frame_name(path, index), DamagedFrame(
                        f"video '{path}' cannot be read past frame {index}: {one_line(str(exc))}"))
                yield tail
                return
            try:
                decoded = packet.decode()
            except av.FFmpegError as exc:
                # The packet's frame is lost; the next key frame brings the picture back.
                yield frame_name(path, index), DamagedFrame(
                    f"frame {index} of video '{path}' does not decode: {one_line(str(exc))}")
                index += 1
                continue
            for frame in decoded:
                if frame.is_corrupt:
                    yield frame_name(path, index), DamagedFrame(
                        f"frame {index} of video '{path}' is damaged: the decoder concealed errors in it")
                else:
                    check_size(frame.width, frame.height, path, limits)  # a size change mid-stream
                    yield frame_name(path, index), frame.to_ndarray(format="rgb24")
                index += 1
        tail = _missing_tail(path, index, int(stream.frames or 0))
        if tail is not None:
            yield tail


def quiet_opencv_ffmpeg() -> None:
    """OpenCV prints every FFmpeg error of a damaged video on stderr, unbounded (one line per
    damaged block). OpenCV 4.6 and newer read these two variables when their FFmpeg backend
    first starts: FFmpeg's log level 'quiet' (-8). Older ones (Humble's 4.5.4) know only the
    first, which turns FFmpeg's log up to 'verbose': left alone there. A user's own setting is kept."""
    major, minor = (int(part) for part in re.findall(r"\d+", cv2.__version__)[:2])
    if (major, minor) < (4, 6):
        return
    os.environ.setdefault("OPENCV_FFMPEG_DEBUG", "1")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")


def _opencv_frames(path: Path, limits: ImageLimits) -> Iterator[tuple[str, np.ndarray | DamagedFrame]]:
    quiet_opencv_ffmpeg()
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise ValueError(f"cannot open video '{path}'")
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        check_size(width, height, path, limits)
        listed = capture.get(cv2.CAP_PROP_FRAME_COUNT)
        index = 0
        while True:
            ok, bgr = capture.read()
            if not ok:
                break
            yield frame_name(path, index), cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            index += 1
        tail = _missing_tail(path, index, int(listed) if np.isfinite(listed) else 0)
        if tail is not None:
            yield tail
    finally:
        capture.release()


def listed_frames(path: Path) -> int:
    """The frame count the container states (0 when it does not say, or says something absurd)."""
    if have_pyav():
        import av

        try:
            with av.open(str(path)) as container:
                count = int(container.streams.video[0].frames) if container.streams.video else 0
        except (av.FFmpegError, OSError):
            return 0
    else:
        quiet_opencv_ffmpeg()
        capture = cv2.VideoCapture(str(path))
        try:
            value = capture.get(cv2.CAP_PROP_FRAME_COUNT) if capture.isOpened() else 0.0
        finally:
            capture.release()
        count = int(value) if np.isfinite(value) else 0
    return count if 0 < count <= MAX_LISTED_FRAMES else 0
