"""Per camera, the newest overlay for the browser: filled by the engine thread, read by viewers.

The engine asks `claim(camera)` before a frame: True only while someone watches that camera and
the stream is due (at most `max_fps`), so nobody watching costs one dict lookup per frame and no
overlay is made for the web. It then `offer`s the overlay, a copy (the pipeline reuses its
buffers), into a one-slot, latest-wins buffer and never waits for a viewer. Viewers take the
newest frame when they are ready for one: a slow viewer skips frames, none is queued. The JPEG of
a frame is encoded once, by the first viewer that needs it, and shared by all.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import simplejpeg


@dataclass(frozen=True)
class Frame:
    seq: int
    """1, 2, ... per camera; a viewer waits for a seq above the last one it sent."""
    rgb: np.ndarray
    stamp_ns: int


class _Camera:
    def __init__(self) -> None:
        self.frame: Frame | None = None
        self.watchers = 0
        self.due = 0.0
        self.jpeg: tuple[int, int, bytes] | None = None
        """(seq, quality, bytes) of the last encoded frame."""
        self.encode_lock = threading.Lock()


class OverlayFeed:
    def __init__(self, cameras: list[str], max_fps: float = 10.0, jpeg_quality: int = 80,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_fps = max_fps
        self.jpeg_quality = jpeg_quality
        self.clock = clock
        self._cond = threading.Condition()
        self._cameras = {name: _Camera() for name in cameras}
        self.offered = 0
        """Overlays the engine copied in (zero while nobody watches)."""
        self.encoded = 0
        self.encode_ms = 0.0
        """Total time spent encoding JPEGs."""

    @property
    def cameras(self) -> list[str]:
        return list(self._cameras)

    # engine side ------------------------------------------------------------------------

    def claim(self, camera: str) -> bool:
        """Whether the next frame of `camera` should bring an overlay for the web. Never blocks
        on a viewer: the lock is held by others only for a counter or a pointer swap."""
        cam = self._cameras.get(camera)
        if cam is None or cam.watchers == 0:  # read without the lock: a stale answer costs one frame
            return False
        now = self.clock()
        with self._cond:
            period = 1.0 / self.max_fps
            if now < cam.due - 0.1 * period:  # a tenth of slack: camera jitter must not halve the rate
                return False
            # Due a period after this one was due, so the stream keeps its rate on a camera a bit
            # faster than it; after a pause, a period from now (no catch-up burst).
            cam.due = cam.due + period if now - cam.due < period else now + period
            return True

    def offer(self, camera: str, overlay: np.ndarray, stamp_ns: int = 0) -> None:
        """A copy of `overlay` ((H, W, 3) uint8 RGB) becomes the camera's newest frame."""
        cam = self._cameras.get(camera)
        if cam is None:
            return
        rgb = np.array(overlay, dtype=np.uint8, copy=True, order="C")
        with self._cond:
            seq = cam.frame.seq + 1 if cam.frame is not None else 1
            cam.frame = Frame(seq, rgb, stamp_ns)
            self.offered += 1
            self._cond.notify_all()

    # viewer side ------------------------------------------------------------------------

    def watching(self, camera: str) -> int:
        return self._cameras[camera].watchers

    @contextmanager
    def watch(self, camera: str) -> Iterator[None]:
        """While inside, the engine makes overlays of `camera` for the web."""
        cam = self._cameras[camera]
        with self._cond:
            cam.watchers += 1
        try:
            yield
        finally:
            with self._cond:
                cam.watchers -= 1

    def wait_newer(self, camera: str, seq: int, timeout: float) -> Frame | None:
        """The camera's newest frame once its seq is above `seq`; None after `timeout` s."""
        cam = self._cameras[camera]
        with self._cond:
            self._cond.wait_for(lambda: cam.frame is not None and cam.frame.seq > seq, timeout)
            frame = cam.frame
        return frame if frame is not None and frame.seq > seq else None

    def latest_seq(self, camera: str) -> int:
        frame = self._cameras[camera].frame
        return frame.seq if frame is not None else 0

    def jpeg(self, camera: str, frame: Frame) -> bytes:
        """The JPEG of `frame`, encoded once per frame and quality whoever asks."""
        cam = self._cameras[camera]
        with cam.encode_lock:
            quality = self.jpeg_quality
            cached = cam.jpeg
            if cached is not None and cached[0] == frame.seq and cached[1] == quality:
                return cached[2]
            start = time.perf_counter()
            data = simplejpeg.encode_jpeg(frame.rgb, quality=quality, colorspace="RGB", fastdct=True)
            self.encode_ms += (time.perf_counter() - start) * 1e3
            self.encoded += 1
            cam.jpeg = (frame.seq, quality, data)
            return data
