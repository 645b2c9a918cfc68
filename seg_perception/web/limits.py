"""What one browser, or one hostile client, may cost the node.

Connections are admitted by `ConnectionGate` before a thread is made for them: at most
`max_clients` at once, and per address a connection rate (a token bucket), so a client that
opens connections in a loop is turned away at the door. Each connection carries one request
(`Connection: close`, streams excepted) whose head must arrive whole within `timeout` and fit
`MAX_REQUEST_BYTES`; a stream whose client stops reading is closed once a write waits `timeout`.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

MAX_REQUEST_LINE = 1024
"""Bytes of the request line (method, path, version): every route is a short path."""
MAX_REQUEST_BYTES = 8192
"""Bytes of the request line and headers together; no route takes a body."""
MAX_HEADERS = 32
STREAM_SEND_BUFFER = 64 * 1024
"""Kernel send buffer of a stream's socket: bounds what a stalled client holds, and makes its
stall show within a frame or two instead of megabytes later."""
MAX_ADDRESSES = 256
"""Addresses whose connection rate is remembered (oldest forgotten first)."""


@dataclass(frozen=True)
class WebLimits:
    max_clients: int = 8
    """Connections open at once (streams, page, status polls together)."""
    timeout: float = 10.0
    """s: to send a request head, and for one write to a client to go through."""
    connections_per_s: float = 20.0
    """Sustained new connections per client address."""
    connection_burst: int = 40
    max_fps: float = 10.0
    """Frames per second of one stream."""


class TokenBucket:
    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.updated = now

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class ConnectionGate:
    """Admission of connections; thread-safe. `admit` answers None (come in) or the reason a
    connection is turned away ('busy' or 'rate'); every admitted one must be `release`d."""

    def __init__(self, limits: WebLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self.clock = clock
        self._lock = threading.Lock()
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        self.open = 0
        self.refused_busy = 0
        self.refused_rate = 0
        self.admitted = 0

    def admit(self, address: str) -> str | None:
        now = self.clock()
        with self._lock:
            bucket = self._buckets.pop(address, None)
            if bucket is None:
                bucket = TokenBucket(self.limits.connections_per_s, self.limits.connection_burst, now)
            self._buckets[address] = bucket  # most recent last
            while len(self._buckets) > MAX_ADDRESSES:
                self._buckets.popitem(last=False)
            if not bucket.take(now):
                self.refused_rate += 1
                return "rate"
            if self.open >= self.limits.max_clients:
                self.refused_busy += 1
                return "busy"
            self.open += 1
            self.admitted += 1
            return None

    def release(self) -> None:
        with self._lock:
            self.open -= 1
