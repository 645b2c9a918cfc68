"""Pair frames of two streams by header stamp (e.g. a color image with its depth image).

The consumers of our clouds sync mask and cloud by exact stamp, so the depth used for a frame must
be the one taken with it: a pairer returns the closest stamp within a tolerance and nothing
otherwise. A stale depth frame would put obstacles where they were, not where they are.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any, Generic, TypeVar

__all__ = ["CalibrationPairer", "StampPairer"]

T = TypeVar("T")

class StampPairer(Generic[T]):
    """Thread-safe buffer of the ``capacity`` most recently added items, looked up by stamp.

    Eviction is by arrival order, not by stamp, so a clock that jumps back (bag replayed in a
    loop, simulator reset) flushes the old timeline instead of pinning it in the buffer.
    Lookups do not consume items: a slower stream may legitimately pair with several frames.
    """

    def __init__(self, capacity: int = 10) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self._items: deque[tuple[int, T]] = deque(maxlen=capacity)
        self._cond = threading.Condition()

    def add(self, stamp_ns: int, item: T) -> None:
        """Store ``item``, evicting the oldest arrival when full, and wake waiting matchers."""
        with self._cond:
            self._items.append((int(stamp_ns), item))
            self._cond.notify_all()

    def match(self, stamp_ns: int, tolerance_ns: int) -> T | None:
        """The item whose stamp is closest to ``stamp_ns`` within ``tolerance_ns``, else None."""
        _check_tolerance(tolerance_ns)
        with self._cond:
            return _item(self._closest(stamp_ns, tolerance_ns))

    def wait_match(self, stamp_ns: int, tolerance_ns: int, timeout_s: float) -> T | None:
        """Like :meth:`match`, but wait up to ``timeout_s`` for a matching item to be added.

        Returns as soon as any item within tolerance is present; it does not hold out for a
        closer one that might still arrive.
        """
        _check_tolerance(tolerance_ns)
        deadline = time.monotonic() + max(0.0, timeout_s)
        with self._cond:
            while True:
                found = self._closest(stamp_ns, tolerance_ns)
                remaining = deadline - time.monotonic()
                if found is not None or remaining <= 0.0:
                    return _item(found)
                self._cond.wait(remaining)

    def at_or_before(self, stamp_ns: int, tolerance_ns: int) -> T | None:
        """The item with exactly this stamp, else the newest one not newer than it by at most
        ``tolerance_ns`` (a calibration published at its own rate), else None. A later item is
        never taken: it belongs to a later frame (a camera that changed resolution since)."""
        _check_tolerance(tolerance_ns)
        with self._cond:
            best: tuple[int, T] | None = None
            for stamp, item in reversed(self._items):
                if stamp == stamp_ns:
                    return item
                if stamp_ns - tolerance_ns <= stamp < stamp_ns and (best is None or stamp > best[0]):
                    best = (stamp, item)
            return _item(best)

    def newest_stamp(self) -> int | None:
        """The stamp of the last item added; None when empty."""
        with self._cond:
            return self._items[-1][0] if self._items else None

    def _closest(self, stamp_ns: int, tolerance_ns: int) -> tuple[int, T] | None:
        best: tuple[int, T] | None = None
        best_error = tolerance_ns + 1
        # Newest first, so on equal error the most recent arrival wins.
        for stamp, item in reversed(self._items):
            error = abs(stamp - stamp_ns)
            if error < best_error:
                best, best_error = (stamp, item), error
        return best


class CalibrationPairer(StampPairer[T]):
    """camera_info beside an image stream: the one with the frame's stamp, else the newest not
    newer than the frame within a tolerance (never a later one, never merely the last arrival:
    a camera that changes resolution sends the new size with its next frame).

    Drivers publish the image first and its camera_info right after. Once a stream has shown it
    stamps camera_info like the images, a frame whose camera_info has not arrived yet waits for
    it (bounded), rather than take the previous frame's.
    """

    def __init__(self, capacity: int = 10) -> None:
        super().__init__(capacity)
        self._stamps_exactly = False

    def for_frame(self, stamp_ns: int, tolerance_ns: int, wait_s: float) -> T | None:
        found = self.match(stamp_ns, 0)
        if found is None and self._stamps_exactly and wait_s > 0.0:
            newest = self.newest_stamp()
            if newest is None or newest < stamp_ns:  # this frame's camera_info may still be on its way
                found = self.wait_match(stamp_ns, 0, wait_s)
        if found is not None:
            self._stamps_exactly = True
            return found
        return self.at_or_before(stamp_ns, tolerance_ns)


def _item(found: tuple[int, T] | None) -> T | None:
    return None if found is None else found[1]


def _check_tolerance(tolerance_ns: int) -> None:
    if tolerance_ns < 0:
        raise ValueError(f"tolerance_ns must be >= 0, got {tolerance_ns}")
