"""The parameter table and its cross-field checks, the statistics behind /diagnostics (driven by
a fake clock)."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from devtools.fakes import FakeClock
from seg_perception.live import params, stats

# params -----------------------------------------------------------------------------------


def _defaults() -> dict[str, Any]:
    return {p.name: p.default for p in params.PARAMS if not p.declared_unset}


def test_parameter_table_is_consistent() -> None:
    names = [p.name for p in params.PARAMS]
    assert len(names) == len(set(names))
    assert set(params.BY_NAME) == set(names)
    for p in params.PARAMS:
        assert p.description.strip(), p.name
        if p.choices:
            assert p.default in p.choices, p.name
        if p.min is not None:
            assert p.min <= p.default, p.name
        if p.max is not None:
            assert p.default <= p.max, p.name
        assert p.stage in params.STAGES, p.name
    assert params.BY_NAME["model"].stage == "configure"
    assert params.BY_NAME["autostart"].stage == "startup"
    assert params.BY_NAME["confidence_threshold"].stage == "live"


def test_configure_time_parameters_are_refused_only_while_configured() -> None:
    assert params.refused_while_configured(["model"], "unconfigured") is None
    assert params.refused_while_configured(["confidence_threshold"], "active") is None
    for state in ("inactive", "active"):
        reason = params.refused_while_configured(["model", "confidence_threshold", "device"], state)
        assert reason is not None and "model, device" in reason and state in reason
        assert "clean up" in reason


def test_defaults_are_valid() -> None:
    assert params.validate(_defaults()) is None
    assert params.validate(_defaults(), ["background", "person"]) is None


@pytest.mark.parametrize("values, fragment", [
    ({"input_transport": "zmq"}, "input_transport"),
    ({"image_reliability": "reliable", "output_reliability": "sometimes"}, "output_reliability"),
    ({"output_size": "big"}, "output_size"),
    ({"output_size": "0x480"}, "output_size"),
    ({"min_range": 5.0, "max_range": 5.0}, "min_range"),
    ({"min_range": 6.0, "max_range": 5.0}, "max_range"),
])
def test_validate_refuses(values: dict[str, Any], fragment: str) -> None:
    reason = params.validate(values)
    assert reason is not None and fragment in reason


@pytest.mark.parametrize("values", [
    {"output_size": "network"},
    {"output_size": "1280x720"},
    {"min_range": 0.5, "max_range": 5.0},
    {"min_range": 50.0},            # alone: the node merges the current max_range before checking
    {"not_a_parameter": object()},  # names it does not know are left to rclpy
])
def test_validate_accepts(values: dict[str, Any]) -> None:
    assert params.validate(values) is None


def test_validate_obstacle_classes() -> None:
    names = ["background", "person", "car"]
    assert params.validate({"obstacle_classes": ["person", "car"]}, names) is None
    assert params.validate({"obstacle_classes": []}, names) is None
    reason = params.validate({"obstacle_classes": ["person", "tree"]}, names)
    assert reason is not None and "tree" in reason
    # Before a model is loaded the names are unknown: nothing to check against.
    assert params.validate({"obstacle_classes": ["tree"]}) is None


# stats ------------------------------------------------------------------------------------

def test_rate_window() -> None:
    clock = FakeClock()
    rate = stats.RateWindow(window=2.0, clock=clock)
    assert rate.rate() == 0.0 and rate.last is None
    rate.tick()
    assert rate.rate() == 0.0  # one event is no rate
    for _ in range(20):        # 10 Hz for 2 s
        clock.advance(0.1)
        rate.tick()
    assert rate.rate() == pytest.approx(10.0, rel=0.06)
    assert rate.last == clock.now
    clock.advance(5.0)         # silence longer than the window
    assert rate.rate() == 0.0


def test_rate_window_decays_when_events_stop() -> None:
    clock = FakeClock()
    rate = stats.RateWindow(window=5.0, clock=clock)
    for _ in range(11):        # 10 events 0.5 s apart: 2 Hz
        rate.tick()
        clock.advance(0.5)
    clock.advance(0.5)         # and then a pause
    assert 0.0 < rate.rate() < 2.0


def _feed(node_stats: stats.NodeStats, clock: FakeClock, frames: int, period: float,
          latency_ms: float = 40.0, fail: bool = False) -> None:
    for _ in range(frames):
        node_stats.frame_received(dropped_previous=False)
        if fail:
            node_stats.frame_failed()
        else:
            node_stats.frame_done(inference_ms=10.0, pipeline_ms=15.0, latency_ms=latency_ms)
        clock.advance(period)


def test_node_stats_snapshot() -> None:
    clock = FakeClock()
    s = stats.NodeStats(window=5.0, clock=clock)
    snap = s.snapshot()
    assert snap.frames_in == 0 and snap.seconds_since_input is None and snap.latency_p50_ms == 0.0
    s.frame_received(dropped_previous=False)
    s.frame_received(dropped_previous=True)
    s.frame_received(dropped_previous=True)
    s.frame_rejected()
    s.depth_result("unpaired")
    s.frame_failed()
    s.frame_done(inference_ms=10.0, pipeline_ms=20.0, latency_ms=30.0)
    s.frame_done(inference_ms=20.0, pipeline_ms=40.0, latency_ms=None)  # latency unknown (no stamp)
    s.frame_done(inference_ms=30.0, pipeline_ms=60.0, latency_ms=90.0)
    clock.advance(0.25)
    snap = s.snapshot()
    assert (snap.frames_in, snap.frames_out, snap.dropped) == (3, 3, 2)
    assert (snap.rejected, snap.depth_unpaired, snap.errors) == (1, 1, 1)
    assert snap.inference_ms == pytest.approx(20.0)
    assert snap.pipeline_ms == pytest.approx(40.0)
    assert snap.latency_p50_ms == pytest.approx(60.0)  # median of 30 and 90
    assert snap.latency_max_ms == pytest.approx(90.0)
    assert snap.seconds_since_input == pytest.approx(0.25)


def test_key_values() -> None:
    clock = FakeClock()
    s = stats.NodeStats(clock=clock)
    _feed(s, clock, 3, 0.1)
    kv = dict(stats.key_values(s.snapshot(), "cpu (4 threads)", "selfie"))
    assert kv["frames_in"] == "3" and kv["frames_out"] == "3" and kv["dropped_frames"] == "0"
    assert kv["device"] == "cpu (4 threads)" and kv["model"] == "selfie"
    assert kv["inference_ms"] == "10.00"
    assert all(isinstance(v, str) for v in kv.values())


def test_stage_times_are_means_per_stage_in_key_values() -> None:
    s = stats.NodeStats(clock=FakeClock())
    s.frame_done(10.0, 20.0, 30.0, {"wait": 0.5, "read": 0.01, "publish": 1.0})
    s.frame_done(10.0, 20.0, 30.0, {"wait": 1.5, "read": 0.03})
    snap = s.snapshot()
    assert snap.stages_ms == pytest.approx({"wait": 1.0, "read": 0.02, "publish": 1.0})
    kv = dict(stats.key_values(snap, "cpu (2 threads)", "m"))
    assert kv["stage_wait_ms"] == "1.00" and kv["stage_read_ms"] == "0.02" and kv["stage_publish_ms"] == "1.00"
    assert not any(k.startswith("stage_") for k, _ in stats.key_values(stats.NodeStats().snapshot(), "", ""))


def test_verdict_no_input_yet() -> None:
    level, message = stats.verdict(stats.NodeStats(clock=FakeClock()).snapshot(), 2.0, 0.5)
    assert level == stats.WARN and "no image" in message


def test_verdict_ok_then_input_timeout() -> None:
    clock = FakeClock()
    s = stats.NodeStats(clock=clock)
    _feed(s, clock, 30, 0.1)  # 10 Hz for 3 s
    level, message = stats.verdict(s.snapshot(), input_timeout=2.0, max_latency=0.5)
    assert level == stats.OK and message.startswith("segmenting at ")
    # 29 intervals over the 3.0 s since the first frame: the rate reads slightly low between
    # frames, which is what lets it decay to 0 once frames stop.
    assert float(message.split()[2]) == pytest.approx(10.0, rel=0.05)
    clock.advance(2.5)
    level, message = stats.verdict(s.snapshot(), input_timeout=2.0, max_latency=0.5)
    assert level == stats.WARN and "no image for 2.6 s" in message


def test_verdict_latency() -> None:
    clock = FakeClock()
    s = stats.NodeStats(clock=clock)
    _feed(s, clock, 20, 0.1, latency_ms=700.0)
    level, message = stats.verdict(s.snapshot(), input_timeout=2.0, max_latency=0.5)
    assert level == stats.WARN and "latency" in message
    assert stats.verdict(s.snapshot(), input_timeout=2.0, max_latency=1.0)[0] == stats.OK


def test_verdict_every_frame_failed() -> None:
    clock = FakeClock()
    s = stats.NodeStats(clock=clock)
    _feed(s, clock, 5, 0.1, fail=True)
    level, message = stats.verdict(s.snapshot(), 2.0, 0.5, last_error="RuntimeError: CUDA out of memory")
    assert level == stats.ERROR and "CUDA out of memory" in message


def test_verdict_frames_start_failing_after_working() -> None:
    """A model that worked and now fails on every frame must not be reported OK."""
    clock = FakeClock()
    s = stats.NodeStats(window=5.0, clock=clock)
    _feed(s, clock, 30, 0.1)
    _feed(s, clock, 60, 0.1, fail=True)  # 6 s of failures: no output left in the window
    level, message = stats.verdict(s.snapshot(), 2.0, 0.5, last_error="ValueError: bad frame")
    assert level == stats.ERROR and "bad frame" in message
    # A single failure among working frames is not an error state.
    _feed(s, clock, 30, 0.1)
    s.frame_received(dropped_previous=False)
    s.frame_failed()
    assert stats.verdict(s.snapshot(), 2.0, 0.5, last_error="ValueError: bad frame")[0] == stats.OK


def test_depth_problems_have_their_own_counters_and_verdict() -> None:
    clock = FakeClock()
    s = stats.NodeStats(clock=clock)
    _feed(s, clock, 20, 0.1)
    color_before = stats.verdict(s.snapshot(), input_timeout=2.0, max_latency=0.5)
    s.depth_result("rejected", "depth encoding 'rgb8' is not REP 118 depth")
    s.depth_result("calibration", "focal lengths must be > 0")
    snap = s.snapshot()
    assert (snap.depth_rejected, snap.depth_calibration, snap.errors, snap.rejected) == (1, 1, 0, 0)
    assert stats.verdict(snap, input_timeout=2.0, max_latency=0.5) == color_before
    level, message = stats.depth_verdict(snap)
    assert level == stats.WARN and "last 2 frames" in message and "focal lengths" in message
    s.depth_result(None)
    level, message = stats.depth_verdict(s.snapshot())
    assert level == stats.OK and s.snapshot().clouds_out == 1
    with pytest.raises(ValueError):
        s.depth_result("tired")
