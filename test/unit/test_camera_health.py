"""Per-camera verdicts (live.health): a camera of several that sends nothing, or only frames that
are refused, is named in a WARN with its reason, and never blamed on the model."""
from __future__ import annotations

from devtools.fakes import FakeClock
from seg_perception.live import health, stats
from seg_perception.live.health import CameraCounters


def _served(now: float) -> CameraCounters:
    return CameraCounters(frames_in=50, frames_out=50, last_input=now - 0.05, last_output=now - 0.05)


def test_a_camera_that_never_sends_is_named() -> None:
    now = 100.0
    problems = health.camera_problems([("front", _served(now)), ("rear", CameraCounters())], now, 2.0)
    assert problems == "camera 'rear': no image received"


def test_a_camera_that_went_quiet_is_named_with_how_long() -> None:
    now = 100.0
    quiet = CameraCounters(frames_in=9, frames_out=9, last_input=now - 7.5, last_output=now - 7.5)
    assert health.camera_problems([("front", _served(now)), ("rear", quiet)], now, 2.0) == \
        "camera 'rear': no image for 7.5 s"


def test_a_camera_sending_only_rejected_frames_is_named_with_the_reason() -> None:
    now = 100.0
    refused = CameraCounters(frames_in=40, rejected=40, last_input=now - 0.03,
                             last_problem="encoding: unsupported encoding 'rgb16'")
    text = health.camera_problems([("front", _served(now)), ("rear", refused)], now, 2.0)
    assert text.startswith("camera 'rear': none of 40 frames segmented (40 rejected, 0 failed)")
    assert "unsupported encoding 'rgb16'" in text
    # Worked once, refused since: named once it has gone without a mask for input_timeout.
    refused.last_output = now - 0.5
    assert health.camera_problems([("rear", refused)], now, 2.0) == ""
    refused.last_output = now - 3.0
    assert "no frame segmented for 3.0 s" in health.camera_problems([("rear", refused)], now, 2.0)


def test_served_cameras_and_cameras_with_a_bad_frame_now_and_then_are_ok() -> None:
    now = 100.0
    occasional = _served(now)
    occasional.rejected = 1
    assert health.camera_problems([("front", _served(now)), ("rear", occasional)], now, 2.0) == ""


def test_names_from_the_wire_are_escaped() -> None:
    assert health.camera_problems([("a\nb" + "x" * 500, CameraCounters())], 0.0, 1.0).count("\n") == 0


def test_node_verdict_names_the_camera_not_the_model() -> None:
    """Two cameras at 10 Hz each; one sends only undecodable frames. The totals alone read as a
    node serving half its input; the verdict must name the camera and its reason."""
    clock = FakeClock()
    s = stats.NodeStats(clock=clock)
    good, bad = CameraCounters(), CameraCounters()
    for _ in range(50):
        clock.advance(0.05)
        s.frame_received(False)
        good.frames_in += 1
        good.last_input = clock()
        s.frame_done(10.0, 200.0, None)  # slow enough that the totals would say "model too slow"
        good.frames_out += 1
        good.last_output = clock()
        clock.advance(0.05)
        s.frame_received(False)
        bad.frames_in += 1
        bad.last_input = clock()
        s.frame_failed()
        bad.errors += 1
        bad.last_problem = "ValueError: model output is not finite"
    snap = s.snapshot()
    cameras = [("front", good), ("rear", bad)]
    level, message = stats.verdict(snap, 2.0, 10.0, "x", health.camera_problems(cameras, clock(), 2.0))
    assert level == stats.WARN
    assert message.startswith("camera 'rear': none of 50 frames segmented (0 rejected, 50 failed)")
    assert "model too slow" not in message


def test_a_refused_color_calibration_does_not_claim_the_clouds_stopped() -> None:
    clock = FakeClock()
    s = stats.NodeStats(clock=clock)
    for _ in range(10):
        clock.advance(0.1)
        s.frame_received(False)
        s.frame_done(5.0, 10.0, None)
        s.depth_result(None)  # clouds are published (from the depth camera's calibration)
    s.camera_info_invalid("/cam/camera_info", "K has non-finite entries")
    snap = s.snapshot()
    level, message = stats.verdict(snap, 2.0, 10.0)
    assert level == stats.WARN and "not republished" in message and "/cam/camera_info" in message
    assert "no cloud" not in message
    assert stats.depth_verdict(snap) == (stats.OK, "10 clouds published")
