"""The diagnostics verdict must not say OK while the node is failing its camera: output far below
input, clocks that are off, refused calibrations, rejected inputs. And no stream of distinct bad
messages may grow the log faster than the throttle's fixed rate. Driven by a fake clock."""
from __future__ import annotations

from devtools.fakes import FakeClock
from seg_perception.live import stats


def _camera(s: stats.NodeStats, clock: FakeClock, seconds: float, rate: float, every: int,
            pipeline_ms: float, latency_ms: float = 40.0) -> None:
    """`rate` Hz in, one of `every` frames segmented, the others dropped by latest-wins."""
    for i in range(int(seconds * rate)):
        s.frame_received(dropped_previous=i % every != 0 and i > 0)
        if i % every == 0:
            s.frame_done(inference_ms=pipeline_ms * 0.9, pipeline_ms=pipeline_ms, latency_ms=latency_ms)
        clock.advance(1.0 / rate)


def verdict(s: stats.NodeStats) -> tuple[int, str]:
    return stats.verdict(s.snapshot(), input_timeout=2.0, max_latency=60.0)


def test_output_far_below_input_is_a_warning_that_says_why() -> None:
    clock = FakeClock()
    s = stats.NodeStats(clock=clock)
    _camera(s, clock, 10.0, 30.0, 36, pipeline_ms=1200.0)  # the soak of the issue: 0.8 Hz of 30
    level, message = verdict(s)
    assert level == stats.WARN and "model too slow" in message and "1200 ms" in message, message


def test_a_node_that_keeps_up_is_ok() -> None:
    clock = FakeClock()
    s = stats.NodeStats(clock=clock)
    _camera(s, clock, 10.0, 30.0, 1, pipeline_ms=12.0)
    assert verdict(s)[0] == stats.OK


def test_future_stamps_are_a_clock_problem_not_a_latency() -> None:
    clock = FakeClock()
    s = stats.NodeStats(clock=clock)
    _camera(s, clock, 2.0, 10.0, 1, pipeline_ms=12.0, latency_ms=30.0)
    s.frame_received(False)
    s.frame_done(10.0, 12.0, latency_ms=-96026663889.0)
    snap = s.snapshot()
    assert snap.clock_problems == 1 and snap.latency_max_ms == 30.0
    level, message = verdict(s)
    assert level == stats.WARN and "clock problem" in message and "future" in message
    s.frame_received(False)
    s.frame_done(10.0, 12.0, latency_ms=1e9)  # a replayed bag: 11 days old
    assert "past" in verdict(s)[1] and s.snapshot().latency_max_ms == 30.0
    s.frame_received(False)
    s.frame_done(10.0, 12.0, latency_ms=35.0)
    assert verdict(s)[0] == stats.OK and s.snapshot().clock_problems == 2


def test_refused_calibration_is_a_warning_naming_the_topic_until_a_good_one() -> None:
    clock = FakeClock()
    s = stats.NodeStats(clock=clock)
    _camera(s, clock, 2.0, 10.0, 1, pipeline_ms=12.0)
    s.camera_info_invalid("/cam/depth/camera_info", "K has non-finite entries at [2]: [nan]")
    level, message = verdict(s)
    assert level == stats.WARN and "/cam/depth/camera_info" in message and "nan" in message
    assert s.snapshot().camera_info_rejected == 1
    s.camera_info_valid("/cam/depth/camera_info")
    assert verdict(s)[0] == stats.OK


def test_recent_rejections_are_a_warning_with_the_reason() -> None:
    clock = FakeClock()
    s = stats.NodeStats(clock=clock)
    _camera(s, clock, 2.0, 10.0, 1, pipeline_ms=12.0)
    s.frame_received(False)
    s.frame_rejected("compressed png image of 20000x20000 pixels exceeds the limit")
    level, message = verdict(s)
    assert level == stats.WARN and "20000x20000" in message
    _camera(s, clock, 6.0, 10.0, 1, pipeline_ms=12.0)  # the window forgets it
    assert verdict(s)[0] == stats.OK and s.snapshot().rejected == 1


def test_all_frames_rejected_says_so_instead_of_ok() -> None:
    clock = FakeClock()
    s = stats.NodeStats(clock=clock)
    _camera(s, clock, 2.0, 10.0, 1, pipeline_ms=12.0)
    for _ in range(50):
        s.frame_received(False)
        s.frame_rejected("unsupported encoding 'rgb_foo'")
        clock.advance(0.1)
    level, message = verdict(s)
    assert level == stats.WARN and "rejected" in message


def test_silence_after_frames_is_not_reported_as_never_received() -> None:
    clock = FakeClock()
    s = stats.NodeStats(clock=clock)
    _camera(s, clock, 1.0, 10.0, 1, pipeline_ms=12.0)
    clock.advance(30.0)
    level, message = verdict(s)
    assert level == stats.WARN and message.startswith("no image for 30"), message


def test_throttle_by_kind_bounds_lines_whatever_the_texts() -> None:
    clock = FakeClock()
    throttle = stats.ReasonThrottle(5.0, clock=clock, max_keys=8)
    reported = 0
    for i in range(1000):  # 1000 distinct bad encodings, 100 per second, one kind
        reported += throttle.should_report("rejected:encoding")
        clock.advance(0.01)
    assert reported == 2  # at 0 s and at 5 s
    assert throttle.should_report("rejected:too_large")  # another kind is not hidden behind it


def test_throttle_refuses_new_keys_when_full_of_live_ones() -> None:
    clock = FakeClock()
    throttle = stats.ReasonThrottle(5.0, clock=clock, max_keys=4)
    assert [throttle.should_report(f"k{i}") for i in range(6)] == [True] * 4 + [False] * 2
    clock.advance(5.0)
    assert throttle.should_report("k5")  # quiet kinds are forgotten after a period
