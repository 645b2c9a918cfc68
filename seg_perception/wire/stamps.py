"""builtin_interfaces/Time <-> integer nanoseconds, the one time base every stamp comparison,
pairing and bag record uses."""
from __future__ import annotations

from typing import Any, Final

NS_PER_S: Final = 1_000_000_000


def stamp_to_ns(stamp: Any) -> int:
    """Nanoseconds of a ``builtin_interfaces/Time``-like object (``sec``, ``nanosec``)."""
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


def split_ns(stamp_ns: int) -> tuple[int, int]:
    """(sec, nanosec) of a stamp in nanoseconds."""
    sec, nanosec = divmod(int(stamp_ns), NS_PER_S)
    return sec, nanosec


def stamp_text(stamp_ns: int) -> str:
    """'sec.nanosec', the stamp as `ros2 topic echo` and our index files write it."""
    sec, nanosec = split_ns(stamp_ns)
    return f"{sec}.{nanosec:09d}"
