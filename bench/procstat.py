"""Memory of another process from /proc/<pid>/status (Linux): peak (VmHWM) and samples of
the resident set (VmRSS) on a background thread."""
from __future__ import annotations

import threading
import time
from pathlib import Path


def status_kib(pid: int, key: str) -> int | None:
    """A kB field of /proc/<pid>/status (VmHWM, VmRSS, ...); None when the process is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return None


def peak_rss_mib(pid: int) -> float | None:
    kib = status_kib(pid, "VmHWM")
    return None if kib is None else kib / 1024.0


class RssSampler:
    """VmRSS every `period` seconds as (time.perf_counter(), MiB), until close()."""

    def __init__(self, pid: int, period: float = 0.5) -> None:
        self.pid = pid
        self.period = period
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss_sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            kib = status_kib(self.pid, "VmRSS")
            if kib is None:
                return
            self.samples.append((time.perf_counter(), kib / 1024.0))
            self._stop.wait(self.period)

    def between(self, start: float, end: float) -> list[float]:
        """MiB samples taken in [start, end] (perf_counter times)."""
        return [mib for t, mib in self.samples if start <= t <= end]

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
