"""Named uint8 arrays reused across frames.

At 1080p a fresh 6 MB array costs more in page faults than the OpenCV call that fills it, so
the node's pipeline writes full-size results into arrays it keeps. A disabled pool hands out
None, and every OpenCV call given dst=None allocates as usual.
"""
from __future__ import annotations

import numpy as np


class BufferPool:
    def __init__(self, enabled: bool = True) -> None:
        self._arrays: dict[str, np.ndarray] | None = {} if enabled else None

    def get(self, name: str, *shape: int) -> np.ndarray | None:
        """The array called `name` with this shape (reallocated when the shape changes)."""
        if self._arrays is None:
            return None
        array = self._arrays.get(name)
        if array is None or array.shape != shape:
            array = self._arrays[name] = np.empty(shape, np.uint8)
        return array
