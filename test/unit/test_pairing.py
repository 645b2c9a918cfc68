"""Stamp pairing: closest within tolerance, never outside it; blocking wait without sleeps."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

from seg_perception.live.pairing import StampPairer

MS = 1_000_000


def test_exact_match() -> None:
    pairer: StampPairer[str] = StampPairer()
    pairer.add(100 * MS, "a")
    pairer.add(133 * MS, "b")
    assert pairer.match(133 * MS, 0) == "b"
    assert pairer.match(133 * MS + 1, 0) is None


def test_closest_within_tolerance() -> None:
    pairer: StampPairer[str] = StampPairer()
    for i, name in enumerate("abcd"):
        pairer.add(i * 33 * MS, name)
    assert pairer.match(70 * MS, 10 * MS) == "c"  # 66 ms is closer than 99 ms
    assert pairer.match(48 * MS, 15 * MS) == "b"  # 33 ms, error 15 ms: tolerance inclusive
    assert pairer.match(48 * MS, 15 * MS - 1) is None


def test_outside_tolerance_is_none() -> None:
    pairer: StampPairer[str] = StampPairer()
    pairer.add(0, "stale")
    assert pairer.match(50 * MS, 49 * MS) is None
    assert pairer.match(-50 * MS, 49 * MS) is None


def test_negative_tolerance_rejected() -> None:
    with pytest.raises(ValueError):
        StampPairer[int]().match(0, -1)


def test_capacity_evicts_oldest_arrival() -> None:
    pairer: StampPairer[int] = StampPairer(capacity=3)
    for stamp in range(5):
        pairer.add(stamp * MS, stamp)
    assert pairer.match(0, 0) is None
    assert pairer.match(1 * MS, 0) is None
    assert pairer.match(2 * MS, 0) == 2
    # Arrival order, not stamp order: after a clock jump back the new timeline is kept.
    pairer.add(0, 100)
    assert pairer.match(2 * MS, 0) is None
    assert pairer.match(0, 0) == 100


def test_default_capacity_is_ten() -> None:
    pairer: StampPairer[int] = StampPairer()
    for stamp in range(25):
        pairer.add(stamp, stamp)
    assert pairer.match(14, 0) is None and pairer.match(15, 0) == 15 and pairer.match(24, 0) == 24


def test_wait_match_returns_immediately_when_present() -> None:
    pairer: StampPairer[str] = StampPairer()
    pairer.add(5 * MS, "x")
    assert pairer.wait_match(5 * MS, 0, timeout_s=0.0) == "x"


def test_wait_match_woken_by_add_from_another_thread() -> None:
    pairer: StampPairer[str] = StampPairer()
    waiting = threading.Event()
    result: list[str | None] = []

    def waiter() -> None:
        waiting.set()
        result.append(pairer.wait_match(40 * MS, 5 * MS, timeout_s=30.0))

    thread = threading.Thread(target=waiter)
    thread.start()
    assert waiting.wait(timeout=30.0)
    pairer.add(0, "too old")  # wakes the waiter, which must keep waiting
    pairer.add(42 * MS, "depth")
    thread.join(timeout=30.0)
    assert not thread.is_alive()
    assert result == ["depth"]


def test_wait_match_times_out_with_none() -> None:
    pairer: StampPairer[str] = StampPairer()
    pairer.add(0, "stale")
    start = time.monotonic()
    assert pairer.wait_match(1000 * MS, 10 * MS, timeout_s=0.05) is None
    assert time.monotonic() - start >= 0.05


def test_concurrent_adds_and_matches_are_consistent() -> None:
    pairer: StampPairer[int] = StampPairer(capacity=5)
    errors: list[BaseException] = []

    def producer() -> None:
        for i in range(2000):
            pairer.add(i, i)

    def consumer() -> None:
        try:
            for i in range(2000):
                got = pairer.match(i, 2)
                assert got is None or abs(got - i) <= 2
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=producer), threading.Thread(target=consumer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    # only the last five arrivals are kept
    assert pairer.match(1994, 0) is None and [pairer.match(i, 0) for i in range(1995, 2000)] == list(range(1995, 2000))


def test_at_or_before_takes_the_exact_stamp_else_the_newest_not_newer() -> None:
    pairer: StampPairer[str] = StampPairer()
    pairer.add(100 * MS, "a")
    pairer.add(200 * MS, "b")
    pairer.add(300 * MS, "c")
    assert pairer.at_or_before(200 * MS, 0) == "b"
    assert pairer.at_or_before(250 * MS, 60 * MS) == "b"  # newest not newer, within tolerance
    assert pairer.at_or_before(250 * MS, 40 * MS) is None  # b is 50 ms older: too old
    assert pairer.at_or_before(50 * MS, 1000 * MS) is None  # only newer ones: never taken
    assert pairer.at_or_before(290 * MS, 1000 * MS) == "b"  # c is newer: it belongs to a later frame
    assert pairer.newest_stamp() == 300 * MS
    assert StampPairer[int]().newest_stamp() is None


def test_calibration_waits_for_its_own_frame_once_the_stream_stamps_exactly() -> None:
    """Drivers publish the image, then its camera_info: a frame taken in between must not get the
    previous frame's camera_info (a camera that changed size would be refused)."""
    from seg_perception.live.pairing import CalibrationPairer

    infos: CalibrationPairer[str] = CalibrationPairer()
    infos.add(100 * MS, "640x480")
    assert infos.for_frame(100 * MS, 200 * MS, 5.0) == "640x480"  # exact: learns the stream stamps exactly
    late = threading.Timer(0.05, infos.add, args=(200 * MS, "512x512"))
    late.start()
    assert infos.for_frame(200 * MS, 200 * MS, 5.0) == "512x512"  # waited for it, not the 640x480 one
    late.join()
    # A stream that never stamps like the frames: the newest not newer, without waiting.
    other: CalibrationPairer[str] = CalibrationPairer()
    other.add(90 * MS, "calibration")
    start = time.monotonic()
    assert other.for_frame(100 * MS, 20 * MS, 5.0) == "calibration"
    assert time.monotonic() - start < 1.0
    assert other.for_frame(100 * MS, 5 * MS, 5.0) is None
