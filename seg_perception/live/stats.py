"""Runtime statistics and the diagnostics verdict, without ROS.

The node feeds events in from its threads; the diagnostics timer takes a snapshot and turns
it into (level, message, key/values). Keeping this ROS-free lets tests check levels and
values with a fake clock.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from . import health

OK, WARN, ERROR = 0, 1, 2


class RateWindow:
    """Events per second over the last `window` seconds."""

    def __init__(self, window: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self.clock = clock
        self._times: deque[float] = deque()

    def tick(self) -> None:
        self._times.append(self.clock())

    def _trim(self) -> float:
        now = self.clock()
        while self._times and now - self._times[0] > self.window:
            self._times.popleft()
        return now

    def count(self) -> int:
        """Events in the last `window` seconds."""
        self._trim()
        return len(self._times)

    def rate(self) -> float:
        now = self._trim()
        if len(self._times) < 2:
            return 0.0
        span = max(now - self._times[0], self._times[-1] - self._times[0])
        return (len(self._times) - 1) / span if span > 0 else 0.0

    @property
    def last(self) -> float | None:
        return self._times[-1] if self._times else None


@dataclass
class Snapshot:
    input_rate: float
    output_rate: float
    inference_ms: float
    pipeline_ms: float
    latency_p50_ms: float
    latency_max_ms: float
    frames_in: int
    frames_out: int
    dropped: int
    rejected: int
    depth_unpaired: int
    errors: int
    seconds_since_input: float | None
    errors_since_output: int = 0
    """Frames failed since the last frame that was segmented (0 when the last one worked)."""
    clouds_out: int = 0
    depth_rejected: int = 0
    depth_calibration: int = 0
    """Frames whose depth could not be projected: no or unusable depth camera_info."""
    depth_problems_since_cloud: int = 0
    depth_error: str = ""
    """The last depth problem (unpaired, rejected image, calibration), for the depth verdict."""
    rejected_recent: int = 0
    """Inputs rejected within the rate window."""
    rejected_rate: float = 0.0
    failed_rate: float = 0.0
    dropped_rate: float = 0.0
    last_rejection: str = ""
    clock_problems: int = 0
    """Frames whose stamp was in the future or far past (kept out of the latency statistics)."""
    clock_problem: str = ""
    """Set while the newest processed frame's stamp shows a clock problem."""
    camera_info_rejected: int = 0
    camera_info_problem: str = ""
    """Set while the newest CameraInfo of some topic is unusable (names the topic)."""
    scans_out: int = 0
    """Frames whose ground projection was published (segmentation/scan)."""
    ground_failed: int = 0
    ground_problems_since_scan: int = 0
    ground_error: str = ""
    """The last reason a frame had no ground projection (no calibration, no pose, ...)."""
    stages_ms: dict[str, float] = field(default_factory=dict)
    """Mean ms of each stage of a frame's way through the node (wait, read, decode, ..., publish)."""


class NodeStats:
    """Thread-safe counters + windows; one instance per node."""

    def __init__(self, window: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._in = RateWindow(window, clock)
        self._out = RateWindow(window, clock)
        self._rejected = RateWindow(window, clock)
        self._failed = RateWindow(window, clock)
        self._dropped = RateWindow(window, clock)
        self._inference: deque[float] = deque(maxlen=100)
        self._pipeline: deque[float] = deque(maxlen=100)
        self._latency: deque[float] = deque(maxlen=100)
        self._stages: dict[str, deque[float]] = {}
        self.frames_in = self.frames_out = self.dropped = self.rejected = 0
        self.depth_unpaired = self.errors = self.clock_problems = self.camera_info_rejected = 0
        self._errors_since_output = 0
        self.clouds_out = self.depth_rejected = self.depth_calibration = 0
        self._depth_problems_since_cloud = 0
        self._depth_error = ""
        self._last_input: float | None = None
        self._last_rejection = ""
        self._clock_problem = ""
        self._camera_info_problems: dict[str, str] = {}
        self.scans_out = self.ground_failed = self._ground_problems_since_scan = 0
        self._ground_error = ""

    def frame_received(self, dropped_previous: bool) -> None:
        with self._lock:
            self.frames_in += 1
            self.dropped += int(dropped_previous)
            self._in.tick()
            if dropped_previous:
                self._dropped.tick()
            self._last_input = self.clock()

    def frame_rejected(self, reason: str = "") -> None:
        """An input refused before segmentation; `reason` is already safe to show (bounded)."""
        with self._lock:
            self.rejected += 1
            self._rejected.tick()
            self._last_rejection = reason

    def frame_failed(self) -> None:
        with self._lock:
            self.errors += 1
            self._errors_since_output += 1
            self._failed.tick()

    def camera_info_invalid(self, topic: str, reason: str) -> None:
        """The newest CameraInfo on `topic` cannot be used; the status says so until a good one comes."""
        with self._lock:
            self.camera_info_rejected += 1
            self._camera_info_problems[topic] = reason

    def camera_info_valid(self, topic: str) -> None:
        with self._lock:
            self._camera_info_problems.pop(topic, None)

    def depth_result(self, problem: str | None, detail: str = "") -> None:
        """One frame's depth outcome: None (clouds built), 'unpaired', 'rejected' or 'calibration'.
        Counted apart from the color frame's outcome, which a depth problem never changes."""
        with self._lock:
            if problem is None:
                self.clouds_out += 1
                self._depth_problems_since_cloud = 0
                return
            if problem == "unpaired":
                self.depth_unpaired += 1
            elif problem == "rejected":
                self.depth_rejected += 1
            elif problem == "calibration":
                self.depth_calibration += 1
            else:
                raise ValueError(f"unknown depth problem '{problem}'")
            self._depth_problems_since_cloud += 1
            self._depth_error = detail or problem

    def ground_result(self, problem: str | None) -> None:
        """One frame's ground projection: None (published) or why there is none (bounded text)."""
        with self._lock:
            if problem is None:
                self.scans_out += 1
                self._ground_problems_since_scan = 0
                return
            self.ground_failed += 1
            self._ground_problems_since_scan += 1
            self._ground_error = problem

    def frame_done(self, inference_ms: float, pipeline_ms: float, latency_ms: float | None,
                   stages_ms: Mapping[str, float] | None = None) -> None:
        """A frame was segmented; `latency_ms` is now - stamp (None for an unstamped frame);
        `stages_ms` times its stages (keys are free-form stage names).

        A latency that shows a clock problem (stamp in the future or far past) is counted
        and reported, never averaged with real latencies.
        """
        with self._lock:
            self.frames_out += 1
            self._errors_since_output = 0
            self._out.tick()
            self._inference.append(inference_ms)
            self._pipeline.append(pipeline_ms)
            problem = None if latency_ms is None else health.stamp_problem(latency_ms / 1e3)
            if problem is not None and latency_ms is not None:
                self.clock_problems += 1
                self._clock_problem = health.describe_stamp_problem(problem, latency_ms / 1e3)
            else:
                self._clock_problem = ""
                if latency_ms is not None:
                    self._latency.append(latency_ms)
            for name, ms in (stages_ms or {}).items():
                self._stages.setdefault(name, deque(maxlen=100)).append(ms)

    def snapshot(self) -> Snapshot:
        with self._lock:
            lat = np.asarray(self._latency, np.float64)
            last_in = self._last_input
            camera = "; ".join(f"{topic}: {reason}" for topic, reason in sorted(self._camera_info_problems.items()))
            return Snapshot(
                input_rate=self._in.rate(), output_rate=self._out.rate(),
                inference_ms=float(np.mean(self._inference)) if self._inference else 0.0,
                pipeline_ms=float(np.mean(self._pipeline)) if self._pipeline else 0.0,
                latency_p50_ms=float(np.median(lat)) if lat.size else 0.0,
                latency_max_ms=float(lat.max()) if lat.size else 0.0,
                frames_in=self.frames_in, frames_out=self.frames_out, dropped=self.dropped,
                rejected=self.rejected, depth_unpaired=self.depth_unpaired, errors=self.errors,
                seconds_since_input=None if last_in is None else self.clock() - last_in,
                errors_since_output=self._errors_since_output, clouds_out=self.clouds_out,
                depth_rejected=self.depth_rejected, depth_calibration=self.depth_calibration,
                depth_problems_since_cloud=self._depth_problems_since_cloud, depth_error=self._depth_error,
                rejected_recent=self._rejected.count(), rejected_rate=self._rejected.rate(),
                failed_rate=self._failed.rate(), dropped_rate=self._dropped.rate(),
                last_rejection=self._last_rejection, clock_problems=self.clock_problems,
                clock_problem=self._clock_problem, camera_info_rejected=self.camera_info_rejected,
                camera_info_problem=camera, scans_out=self.scans_out, ground_failed=self.ground_failed,
                ground_problems_since_scan=self._ground_problems_since_scan, ground_error=self._ground_error,
                stages_ms={name: float(np.mean(values)) for name, values in self._stages.items()})


def verdict(snap: Snapshot, input_timeout: float, max_latency: float, last_error: str = "",
            camera_problems: str = "") -> tuple[int, str]:
    """Diagnostic level and one-line message for a snapshot; `camera_problems` names the cameras of
    several that yield nothing (health.camera_problems), before any verdict on the node's totals."""
    if snap.errors and last_error and snap.frames_out == 0:
        return ERROR, f"every frame failed: {last_error}"
    # Worked before, fails now: with no output left in the rate window this is not an
    # occasional bad frame, and "segmenting at 0.0 Hz" must not be reported as OK.
    if snap.errors_since_output and last_error and snap.output_rate == 0.0:
        return ERROR, f"the last {snap.errors_since_output} frames failed: {last_error}"
    if snap.seconds_since_input is None:
        return WARN, "no image received yet (check the 'image' remapping and QoS)"
    if snap.seconds_since_input > input_timeout:
        return WARN, f"no image for {snap.seconds_since_input:.1f} s"
    if camera_problems:
        return WARN, camera_problems
    if snap.camera_info_problem:
        # The color calibration only: it is not republished, while clouds (projected with the
        # depth calibration when there is one) may well go on; the depth status says if not.
        return WARN, f"calibration refused, not republished on segmentation/camera_info: {snap.camera_info_problem}"
    if snap.clock_problem:
        return WARN, f"clock problem ({snap.clock_problems} frames so far): {snap.clock_problem}"
    slow = health.throughput_problem(snap.input_rate, snap.output_rate, snap.pipeline_ms, snap.dropped_rate,
                                     snap.rejected_rate, snap.failed_rate)
    if slow:
        return WARN, slow
    if snap.rejected_recent:
        return WARN, f"{snap.rejected_recent} inputs rejected in the last seconds: {snap.last_rejection}"
    if snap.latency_p50_ms > max_latency * 1e3:
        return WARN, f"latency {snap.latency_p50_ms:.0f} ms above max_latency {max_latency * 1e3:.0f} ms"
    return OK, f"segmenting at {snap.output_rate:.1f} Hz"


def depth_verdict(snap: Snapshot) -> tuple[int, str]:
    """Level and message of the depth half (clouds): WARN while the latest frames' depth failed."""
    if snap.depth_problems_since_cloud:
        return WARN, (f"no cloud for the last {snap.depth_problems_since_cloud} frames: {snap.depth_error}")
    if snap.clouds_out == 0:
        return OK, "no cloud requested yet"
    return OK, f"{snap.clouds_out} clouds published"


FRAME_COUNTERS = ("frames_in", "frames_out", "dropped_frames", "rejected_inputs", "errors")
"""The frame counters of the segmentation status (diagnostics key = counter), for its readers."""


def ground_verdict(snap: Snapshot) -> tuple[int, str]:
    """Level and message of ground projection: WARN while the latest frames had none."""
    if snap.ground_problems_since_scan:
        return WARN, f"no scan for the last {snap.ground_problems_since_scan} frames: {snap.ground_error}"
    if snap.scans_out == 0:
        return OK, "no scan requested yet"
    return OK, f"{snap.scans_out} scans published"


def key_values(snap: Snapshot, device: str, model: str) -> list[tuple[str, str]]:
    counters = dict(zip(FRAME_COUNTERS, (snap.frames_in, snap.frames_out, snap.dropped, snap.rejected, snap.errors)))
    return [
        ("input_rate_hz", f"{snap.input_rate:.2f}"),
        ("output_rate_hz", f"{snap.output_rate:.2f}"),
        ("inference_ms", f"{snap.inference_ms:.2f}"),
        ("pipeline_ms", f"{snap.pipeline_ms:.2f}"),
        ("latency_p50_ms", f"{snap.latency_p50_ms:.2f}"),
        ("latency_max_ms", f"{snap.latency_max_ms:.2f}"),
        *((key, str(value)) for key, value in counters.items() if key != "errors"),
        ("depth_unpaired", str(snap.depth_unpaired)),
        ("depth_rejected", str(snap.depth_rejected)),
        ("depth_calibration_errors", str(snap.depth_calibration)),
        ("clouds_out", str(snap.clouds_out)),
        ("errors", str(counters["errors"])),
        ("clock_problems", str(snap.clock_problems)),
        ("camera_info_rejected", str(snap.camera_info_rejected)),
        ("device", device),
        ("model", model),
        *((f"stage_{name}_ms", f"{ms:.2f}") for name, ms in snap.stages_ms.items()),
    ]


class ReasonThrottle:
    """Report each kind of problem at once, then at most every `period` seconds.

    Keys are kinds of problem ("rejected:too_large", "camera_info:depth/camera_info"), never
    message texts: texts quote what came over the wire, so keying on them would let every
    distinct hostile string open its own line. With a fixed set of kinds the log grows by at
    most `max_keys` lines per period whatever arrives. A per-call-site throttle (rclpy's)
    would instead hide a second, different problem behind the first for the whole period.
    """

    def __init__(self, period: float, clock: Callable[[], float] = time.monotonic, max_keys: int = 64) -> None:
        self.period = period
        self.clock = clock
        self.max_keys = max_keys
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def should_report(self, kind: str) -> bool:
        now = self.clock()
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < self.period:
                return False
            if last is None and len(self._last) >= self.max_keys:
                # Full: forget only kinds quiet for a whole period; evicting a live one would let
                # a caller that (wrongly) keys on text re-open the flood.
                self._last = {key: t for key, t in self._last.items() if now - t < self.period}
                if len(self._last) >= self.max_keys:
                    return False
            self._last[kind] = now
            return True
