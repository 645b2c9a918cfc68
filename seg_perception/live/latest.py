"""Latest-wins slots between the executor thread and the engine thread: per camera, the newest
frame replaces an unprocessed older one (latest frame wins), and the engine takes them all at once."""
from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


K = TypeVar("K")


class LatestPerKey(Generic[K, T]):
    """One latest-wins slot per key (camera) behind one condition, so the worker takes the newest
    item of every key that has one in a single call: each key gets at most one item per batch,
    so a fast key can never starve a slow one."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._items: dict[K, T] = {}
        self._closed = False

    def put(self, key: K, item: T) -> bool:
        """Store `item` for `key`; True if it replaced one of that key nobody had taken."""
        with self._cond:
            dropped = key in self._items
            self._items[key] = item
            self._cond.notify()
            return dropped

    def take_all(self, timeout: float | None = None) -> dict[K, T]:
        """Wait for at least one item (or close / timeout -> {}) and remove every key's item."""
        with self._cond:
            self._cond.wait_for(lambda: bool(self._items) or self._closed, timeout)
            items, self._items = self._items, {}
            return items

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._items = {}
            self._cond.notify_all()

    def reopen(self) -> None:
        with self._cond:
            self._closed = False
            self._items = {}

    @property
    def closed(self) -> bool:
        return self._closed
