"""Pure statistics and the targets the numbers are judged against. No ROS, no torch."""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

# Targets, keyed by frame size. Other sizes interpolate linearly in pixel count between them.
PIPELINE_RATIO_TARGET: dict[tuple[int, int], float] = {(640, 480): 1.3, (1920, 1080): 1.5}
"""core pipeline (decode + segment + color + overlay) / bare forward"""
PIPELINE_MASK_RATIO_TARGET: dict[tuple[int, int], float] = {(640, 480): 1.25, (1920, 1080): 1.25}
"""core pipeline with the mask only (what Nav2 subscribes) / bare forward"""
NODE_MARGIN_MS_TARGET: dict[tuple[int, int], float] = {(640, 480): 3.0, (1920, 1080): 4.0}
"""node end-to-end p50 may exceed echo p50 (the transport floor) + bare forward by this much"""
PEER_P50_RATIO_TARGET = 0.8
PEER_P99_RATIO_TARGET = 1.0
PEER_RSS_RATIO_TARGET = 1.2
"""ours / the Nav2-tutorial-style peer, same ONNX model, one frame at a time"""
OVERLOAD_P99_RATIO_TARGET = 2.5
"""overload p99 / single-frame node latency"""
RSS_GROWTH_TARGET = 0.05
"""RSS counts as flat when the last sample is at most 5 % above the first"""


def parse_size(text: str) -> tuple[int, int]:
    """'640x480' -> (640, 480)."""
    parts = text.lower().strip().split("x")
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"size must be WIDTHxHEIGHT with positive integers, got '{text}'")
    return int(parts[0]), int(parts[1])


def size_text(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def target_for(table: Mapping[tuple[int, int], float], size: tuple[int, int]) -> tuple[float, bool]:
    """(target, exact): the table's value for `size`, else interpolated in pixel count
    (clamped to the table's ends) and exact=False."""
    if size in table:
        return table[size], True
    points = sorted((w * h, value) for (w, h), value in table.items())
    pixels = [p for p, _ in points]
    values = [v for _, v in points]
    return float(np.interp(size[0] * size[1], pixels, values)), False


def percentiles(values: Sequence[float], qs: Iterable[float] = (50, 95, 99)) -> dict[str, float]:
    """{'p50': .., 'p95': .., 'p99': ..}; NaN for an empty sequence."""
    arr = np.asarray(values, np.float64)
    return {f"p{q:g}": (float(np.percentile(arr, q)) if arr.size else float("nan")) for q in qs}


def median(values: Iterable[float | None]) -> float:
    """Median of the finite values; NaN when there are none."""
    arr = np.asarray([v for v in values if v is not None], np.float64)
    arr = arr[np.isfinite(arr)]
    return float(np.median(arr)) if arr.size else float("nan")


def median_of_dicts(runs: Sequence[Mapping[str, float | None]]) -> dict[str, float]:
    """Key-wise median over repeated runs (keys of the first run)."""
    if not runs:
        return {}
    return {key: median(run.get(key) for run in runs) for key in runs[0]}


def quarter_medians(times: Sequence[float], values: Sequence[float]) -> tuple[float, float]:
    """Medians of `values` whose `times` fall in the first and in the last quarter of the span
    of `times`: a latency that grows over a run shows as last > first."""
    t = np.asarray(times, np.float64)
    v = np.asarray(values, np.float64)
    if t.size < 4:
        return float("nan"), float("nan")
    start, end = float(t.min()), float(t.max())
    quarter = (end - start) / 4.0
    first = v[t <= start + quarter]
    last = v[t >= end - quarter]
    return (float(np.median(first)) if first.size else float("nan"),
            float(np.median(last)) if last.size else float("nan"))


def growth(first: float, last: float) -> float:
    """Relative change last vs first (0.1 = 10 % up); NaN when undefined."""
    if not (np.isfinite(first) and np.isfinite(last)) or first <= 0:
        return float("nan")
    return last / first - 1.0


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


def at_most(value: float, limit: float) -> bool | None:
    """value <= limit, or None when the value could not be measured."""
    return None if not np.isfinite(value) else bool(value <= limit)
