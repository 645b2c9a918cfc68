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
        """The array called `name` with this shape (reallocated when the shape changes).

        Every array of one frame has the same image size (the first two dimensions), so
        allocating for a new size drops every array kept for another: shrinking the output
        after a huge one gives all the huge arrays back at once, including those of outputs
        nobody asks for any more.
        """
        if self._arrays is None:
            return None
        array = self._arrays.get(name)
        if array is None or array.shape != shape:
            self._arrays = {key: kept for key, kept in self._arrays.items() if kept.shape[:2] == shape[:2]}
            array = self._arrays[name] = np.empty(shape, np.uint8)
        return array

    @property
    def nbytes(self) -> int:
        """Bytes held by the pool."""
        return sum(a.nbytes for a in self._arrays.values()) if self._arrays else 0

    def clear(self) -> None:
        if self._arrays is not None:
            self._arrays = {}
