"""A one-slot buffer: the newest item replaces an unprocessed older one (latest frame wins)."""
from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestSlot(Generic[T]):
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._closed = False

    def put(self, item: T) -> bool:
        """Store `item`; True if it replaced one nobody had taken (a dropped frame)."""
        with self._cond:
            dropped = self._item is not None
            self._item = item
            self._cond.notify()
            return dropped

    def take(self, timeout: float | None = None) -> T | None:
        """Wait for an item (or close / timeout -> None) and remove it."""
        with self._cond:
            self._cond.wait_for(lambda: self._item is not None or self._closed, timeout)
            item, self._item = self._item, None
            return item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._item = None
            self._cond.notify_all()

    def reopen(self) -> None:
        with self._cond:
            self._closed = False
            self._item = None

    @property
    def closed(self) -> bool:
        return self._closed


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
