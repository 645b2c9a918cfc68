"""Progress of a long job: a tqdm bar (rate, ETA) on a terminal, a plain line every few
seconds otherwise (logs of batch jobs, CI), so neither floods a log with one line per frame."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TextIO


def duration(seconds: float) -> str:
    seconds = max(int(round(seconds)), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class Progress:
    """update() after each finished frame; note() for a message that must not break the bar."""

    def __init__(self, stream: TextIO, total: int | None, done: int = 0, interval_s: float = 10.0,
                 prefix: str = "", tty: bool | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream
        self.total = total
        self.done = done
        self.start_done = done
        self.bad = 0
        self.interval_s = interval_s
        self.prefix = prefix
        self.clock = clock
        self.start = clock()
        self._last = self.start
        self._bar: Any = None
        if tty if tty is not None else stream.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=done, unit="frame", file=stream, dynamic_ncols=True,
                             desc=prefix.strip("[] ") or None, smoothing=0.1)

    def rate(self) -> float:
        elapsed = self.clock() - self.start
        return (self.done - self.start_done) / elapsed if elapsed > 0 else 0.0

    def line(self) -> str:
        rate = self.rate()
        count = f"{self.done}/{self.total} frames ({100.0 * self.done / self.total:.0f}%)" if self.total else \
            f"{self.done} frames"
        parts = [count, f"{rate:.2f} frames/s"]
        if self.total and rate > 0:
            parts.append(f"ETA {duration(max(self.total - self.done, 0) / rate)}")
        if self.bad:
            parts.append(f"{self.bad} skipped")
        return f"{self.prefix}{', '.join(parts)}"

    def update(self, frames: int = 1, bad: int = 0) -> None:
        self.done += frames
        self.bad += bad
        if self._bar is not None:
            self._bar.update(frames)
            if bad:
                self._bar.set_postfix(skipped=self.bad)
            return
        now = self.clock()
        if now - self._last >= self.interval_s:
            self._last = now
            print(self.line(), file=self.stream, flush=True)

    def note(self, text: str) -> None:
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
