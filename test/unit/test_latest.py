"""live.latest: one latest-wins slot per camera between the executor thread and the engine thread."""
from __future__ import annotations

import threading
from typing import Any

from devtools.fakes import FakeClock
from devtools.waiting import wait_until
from seg_perception.live import stats
from seg_perception.live.latest import LatestPerKey


def _waiting(slots: LatestPerKey[Any, Any]) -> int:
    """How many threads are blocked in take_all(): the Condition's waiter list (CPython)."""
    return len(getattr(slots._cond, "_waiters", ()))


def test_the_newest_of_every_key_wins_and_drops_are_counted() -> None:
    slots: LatestPerKey[str, int] = LatestPerKey()
    assert slots.put("front", 1) is False
    assert slots.put("front", 2) is True  # the older front frame is dropped
    assert slots.put("left", 10) is False
    assert slots.take_all(0) == {"front": 2, "left": 10}
    assert slots.take_all(0) == {}
    slots.put("left", 11)
    assert slots.take_all(0) == {"left": 11}


def test_drop_counting_through_node_stats() -> None:
    slots: LatestPerKey[str, int] = LatestPerKey()
    s = stats.NodeStats(clock=FakeClock())
    for item in range(10):       # a burst while the worker is busy
        s.frame_received(slots.put("cam", item))
    assert slots.take_all(0) == {"cam": 9}
    s.frame_received(slots.put("cam", 10))
    snap = s.snapshot()
    assert (snap.frames_in, snap.dropped) == (11, 9)


def test_take_waits_and_put_wakes_it() -> None:
    slots: LatestPerKey[str, str] = LatestPerKey()
    got: list[dict[str, str]] = []
    worker = threading.Thread(target=lambda: got.append(slots.take_all()), daemon=True)
    worker.start()
    wait_until(lambda: _waiting(slots) == 1 or not worker.is_alive(), 5.0, "the worker to wait", 0.0005)
    assert got == [] and worker.is_alive()
    slots.put("right", "frame")
    worker.join(timeout=5.0)
    assert not worker.is_alive()
    assert got == [{"right": "frame"}]


def test_close_wakes_a_waiting_take_and_reopen_starts_empty() -> None:
    slots: LatestPerKey[str, int] = LatestPerKey()
    got: list[dict[str, int]] = []
    worker = threading.Thread(target=lambda: got.append(slots.take_all()), daemon=True)
    worker.start()
    wait_until(lambda: _waiting(slots) == 1 or not worker.is_alive(), 5.0, "the worker to wait", 0.0005)
    slots.close()
    worker.join(timeout=5.0)
    assert not worker.is_alive()
    assert got == [{}] and slots.closed
    slots.put("cam", 1)
    slots.close()
    assert slots.take_all(0) == {}
    slots.reopen()
    assert not slots.closed and slots.take_all(0) == {}
    slots.put("cam", 2)
    assert slots.take_all(0) == {"cam": 2}


def test_the_worker_sees_only_the_newest_frame_of_each_camera() -> None:
    """Producers much faster than the worker: every frame taken is newer than the last of its camera."""
    slots: LatestPerKey[str, int] = LatestPerKey()
    taken: dict[str, list[int]] = {"a": [], "b": []}
    done = threading.Event()

    def work() -> None:
        while not done.is_set():
            for key, item in slots.take_all(timeout=0.05).items():
                taken[key].append(item)

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    dropped = sum(slots.put(key, i) for i in range(10000) for key in ("a", "b"))
    done.set()
    worker.join(timeout=5.0)
    assert not worker.is_alive()
    last = slots.take_all(0)
    for key in ("a", "b"):
        assert taken[key] == sorted(taken[key]) and len(set(taken[key])) == len(taken[key])
    # every frame was either taken by the worker, taken here, or counted as dropped
    assert sum(len(v) for v in taken.values()) + len(last) + dropped == 20000
