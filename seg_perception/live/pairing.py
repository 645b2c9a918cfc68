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

__all__ = ["StampPairer"]

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

    def _closest(self, stamp_ns: int, tolerance_ns: int) -> tuple[int, T] | None:
        best: tuple[int, T] | None = None
        best_error = tolerance_ns + 1
        # Newest first, so on equal error the most recent arrival wins.
        for stamp, item in reversed(self._items):
            error = abs(stamp - stamp_ns)
            if error < best_error:
                best, best_error = (stamp, item), error
        return best



def _item(found: tuple[int, T] | None) -> T | None:
    return None if found is None else found[1]


def _check_tolerance(tolerance_ns: int) -> None:
    if tolerance_ns < 0:
        raise ValueError(f"tolerance_ns must be >= 0, got {tolerance_ns}")
