"""Judgements behind a truthful diagnostics status, with no ROS import.

Two ways a status can lie while every counter looks fine: it says OK "segmenting at 0.8 Hz"
while 30 Hz come in (the robot sees one frame in forty), and it folds a camera clock that is
off by hours into the latency statistics (a negative or 96026663889 ms latency). These
functions name both problems so the node can say them instead.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from ..wire.text import wire_text

__all__ = ["CameraCounters", "FUTURE_TOLERANCE_S", "MIN_INPUT_RATE_HZ", "SLOW_OUTPUT_RATIO", "STALE_AFTER_S", "StampProblem",
           "HealthWatch", "camera_problems", "describe_stamp_problem", "no_input_advice", "stamp_problem",
           "throughput_problem"]

FUTURE_TOLERANCE_S: Final = 0.5
"""A stamp later than now by more than this is a clock problem (NTP keeps machines within ms)."""
STALE_AFTER_S: Final = 60.0
"""A stamp older than this on arrival of its result is a clock problem, not a slow frame: the
node holds one frame at a time (latest wins), so processing never ages a frame by a minute."""
SLOW_OUTPUT_RATIO: Final = 0.5
"""The output rate is "far below" the input rate under this fraction of it."""
MIN_INPUT_RATE_HZ: Final = 1.0
"""Below this, rates over a 5 s window are too coarse to compare."""

StampProblem = Literal["future", "stale"]


def stamp_problem(latency_s: float) -> StampProblem | None:
    """'future' / 'stale' when now - stamp shows a clock problem, None for a usable latency."""
    if latency_s < -FUTURE_TOLERANCE_S:
        return "future"
    if latency_s > STALE_AFTER_S:
        return "stale"
    return None


def describe_stamp_problem(problem: StampProblem, latency_s: float) -> str:
    if problem == "future":
        return (f"frame stamped {-latency_s:.3g} s in the future: the camera's clock is ahead of this "
                "node's (unsynchronized machines, or use_sim_time differing between nodes)")
    return (f"frame stamped {latency_s:.3g} s in the past: the camera's clock is behind this node's "
            "(a replayed bag without use_sim_time, or unsynchronized machines)")


def throughput_problem(input_rate: float, output_rate: float, pipeline_ms: float, dropped_rate: float,
                       rejected_rate: float, failed_rate: float) -> str | None:
    """Why the output rate is far below the input rate, or None when it is not.

    Rates are per second over the same window; ``pipeline_ms`` is the mean processing time of a
    frame. The reasons are checked in the order a user can act on them.
    """
    if input_rate < MIN_INPUT_RATE_HZ or output_rate >= SLOW_OUTPUT_RATIO * input_rate:
        return None
    head = f"output {output_rate:.1f} Hz of {input_rate:.1f} Hz in"
    if rejected_rate + failed_rate >= 0.5 * (input_rate - output_rate):
        return f"{head}: {rejected_rate:.1f} Hz rejected, {failed_rate:.1f} Hz failed (see the errors)"
    capacity = 1e3 / pipeline_ms if pipeline_ms > 0 else float("inf")
    if capacity < SLOW_OUTPUT_RATIO * input_rate or capacity < 1.5 * output_rate:
        return (f"{head}: model too slow, {pipeline_ms:.0f} ms per frame serves at most {capacity:.1f} Hz; "
                f"{dropped_rate:.1f} Hz dropped (latest frame wins). Use a smaller output_size, a "
                f"lighter model or a GPU")
    return (f"{head}: {dropped_rate:.1f} Hz dropped although a frame takes {pipeline_ms:.0f} ms; the worker "
            f"waits elsewhere (depth_wait for depth partners, or a starved CPU)")


def no_input_advice(topic: str, remap_from: str, message_type: str, waited_s: float, publishers: list[str],
                    others: list[tuple[str, list[str]]]) -> str:
    """One line for a node that has heard nothing on `topic` for `waited_s` seconds: who
    publishes it, else which topics of that type are published nearby (with their nodes) and the
    remapping (of `remap_from`, the name the node subscribes) that would connect one. `others`: (topic, publishing nodes) of `message_type`."""
    head = f"no image on {topic} ({message_type}) for {waited_s:.1f} s"
    if publishers:
        return (f"{head}, although {', '.join(publishers)} publish{'es' if len(publishers) == 1 else ''} "
                "it: is it sending frames (a publisher with incompatible QoS is reported separately)?")
    if not others:
        return (f"{head}: nothing publishes it, and no {message_type} topic is published on this ROS domain "
                "(same ROS_DOMAIN_ID and ROS_AUTOMATIC_DISCOVERY_RANGE on both sides?)")
    listed = "; ".join(f"{name} (by {', '.join(nodes) or 'an unnamed node'})" for name, nodes in others[:5])
    more = f" and {len(others) - 5} more" if len(others) > 5 else ""
    return (f"{head}: nothing publishes it. {message_type} is published on {listed}{more}: remap with "
            f"--ros-args -r {remap_from}:={others[0][0]} (or image:=... in the launch file)")


class HealthWatch:
    """A remote model's health, sampled now and then, told in the log on changes only: when it
    first connects, when it starts failing, and when it comes back (with how long it was gone)."""

    def __init__(self) -> None:
        self._ok: bool | None = None
        self._down_since: float | None = None

    def update(self, ok: bool, message: str, now: float) -> tuple[str, str] | None:
        """(level 'info' | 'error', line) when the state changed, else None. The first sample
        says nothing when it is not ok: the server has simply not been asked yet."""
        previous, self._ok = self._ok, ok
        if ok == previous or (previous is None and not ok):
            return None
        if not ok:
            self._down_since = now
            return "error", f"inference server failing: {message}"
        if self._down_since is None:
            return "info", message
        gone, self._down_since = now - self._down_since, None
        return "info", f"inference server back after {gone:.1f} s: {message}"


@dataclass
class CameraCounters:
    """One camera's own counts, for a node that serves several: written by one thread each
    (frames_in, dropped, last_input: the executor; the rest: the engine thread). Times are
    the node's monotonic clock."""

    frames_in: int = 0
    dropped: int = 0
    frames_out: int = 0
    rejected: int = 0
    errors: int = 0
    last_input: float | None = None
    last_output: float | None = None
    last_problem: str = ""
    """Why this camera's newest refused or failed frame was (bounded text)."""

    def key_values(self, camera: str) -> list[tuple[str, str]]:
        return [(f"{camera}.frames_in", str(self.frames_in)), (f"{camera}.frames_out", str(self.frames_out)),
                (f"{camera}.dropped_frames", str(self.dropped)), (f"{camera}.rejected_frames", str(self.rejected)),
                (f"{camera}.errors", str(self.errors))]


def camera_problem(name: str, counters: CameraCounters, now: float, input_timeout: float) -> str | None:
    """Why one of several cameras yields no masks, or None while it does (or may soon).

    The node's own counters add every camera up: a camera that never sends, or sends only frames
    that are refused, hides behind the others' good frames, and its refusals would be read as
    the node's (a model too slow). Named here, camera by camera.
    """
    label = wire_text(name)
    if counters.last_input is None:
        return f"camera {label}: no image received"
    quiet = now - counters.last_input
    if quiet > input_timeout:
        return f"camera {label}: no image for {quiet:.1f} s"
    bad = counters.rejected + counters.errors
    if not bad:
        return None
    if counters.last_output is None:
        head = f"camera {label}: none of {counters.frames_in} frames segmented"
    elif now - counters.last_output > input_timeout:
        head = f"camera {label}: no frame segmented for {now - counters.last_output:.1f} s"
    else:
        return None
    return (f"{head} ({counters.rejected} rejected, {counters.errors} failed)"
            + (f": {counters.last_problem}" if counters.last_problem else ""))


def camera_problems(cameras: Sequence[tuple[str, CameraCounters]], now: float, input_timeout: float) -> str:
    """Every camera's problem, '; '-joined; '' when all of them are served."""
    found = (camera_problem(name, counters, now, input_timeout) for name, counters in cameras)
    return "; ".join(problem for problem in found if problem)
