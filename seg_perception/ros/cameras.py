"""One camera of the node: its topic names, its latest calibration, its depth frames waiting to
be paired, its output publishers and its own counters. The model and the engine thread are the
node's, shared by every camera."""
from __future__ import annotations

from dataclasses import dataclass, field

from sensor_msgs.msg import CameraInfo, Image

from ..core.pairing import StampPairer
from .outputs import Outputs


@dataclass
class CameraCounters:
    """Written by one thread each (frames_in/dropped: executor; the rest: engine)."""

    frames_in: int = 0
    dropped: int = 0
    frames_out: int = 0
    errors: int = 0

    def key_values(self, camera: str) -> list[tuple[str, str]]:
        return [(f"{camera}.frames_in", str(self.frames_in)), (f"{camera}.frames_out", str(self.frames_out)),
                (f"{camera}.dropped_frames", str(self.dropped)), (f"{camera}.errors", str(self.errors))]


@dataclass
class Camera:
    name: str
    """'' = the plain topic names (image, segmentation/mask); else 'C' for C/image, C/segmentation/mask."""
    camera_info: CameraInfo | None = None
    depth_info: CameraInfo | None = None
    depth: StampPairer[Image] = field(default_factory=lambda: StampPairer[Image](capacity=10))
    outputs: Outputs | None = None
    counters: CameraCounters = field(default_factory=CameraCounters)

    @property
    def prefix(self) -> str:
        return f"{self.name}/" if self.name else ""

    def topic(self, relative: str) -> str:
        return self.prefix + relative

    @property
    def label(self) -> str:
        """How diagnostics and logs name it."""
        return self.name or "camera"
