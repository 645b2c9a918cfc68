"""The benchmark's own arithmetic (percentiles, targets, growth), run with the suite."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

# Appended, not prepended: seg_perception must stay the installed package (with msg/).
sys.path.append(str(Path(__file__).resolve().parents[2]))

from bench.measures import (NODE_MARGIN_MS_TARGET, PIPELINE_RATIO_TARGET, at_most, growth, median,
                            median_of_dicts, parse_size, percentiles, quarter_medians, target_for)


def test_parse_size() -> None:
    assert parse_size(" 1920x1080 ") == (1920, 1080)
    for bad in ("1920", "0x10", "axb", "10x10x3"):
        with pytest.raises(ValueError):
            parse_size(bad)


def test_targets_exact_and_interpolated() -> None:
    assert target_for(PIPELINE_RATIO_TARGET, (640, 480)) == (1.3, True)
    assert target_for(NODE_MARGIN_MS_TARGET, (1920, 1080)) == (4.0, True)
    middle, exact = target_for(PIPELINE_RATIO_TARGET, (1280, 720))
    assert not exact and 1.3 < middle < 1.5
    assert target_for(PIPELINE_RATIO_TARGET, (320, 240))[0] == 1.3  # clamped below
    assert target_for(PIPELINE_RATIO_TARGET, (3840, 2160))[0] == 1.5  # clamped above


def test_percentiles_and_medians_skip_missing() -> None:
    p = percentiles(list(range(1, 101)))
    assert p["p50"] == pytest.approx(50.5) and p["p99"] == pytest.approx(99.01)
    assert math.isnan(percentiles([])["p95"])
    assert median([3.0, None, float("nan"), 1.0]) == 2.0
    assert median_of_dicts([{"a": 1.0, "b": None}, {"a": 3.0, "b": 4.0}]) == {"a": 2.0, "b": 4.0}


def test_quarter_medians_show_growth() -> None:
    times = [float(t) for t in range(100)]
    flat = [10.0] * 100
    rising = [10.0 + t for t in times]
    assert quarter_medians(times, flat) == (10.0, 10.0)
    first, last = quarter_medians(times, rising)
    assert last > first
    assert growth(first, last) > 1.0
    assert math.isnan(growth(0.0, 1.0))


def test_at_most_is_unknown_for_missing_values() -> None:
    assert at_most(1.0, 2.0) is True
    assert at_most(3.0, 2.0) is False
    assert at_most(float("nan"), 2.0) is None


def test_spy_summary_shares_per_function() -> None:
    from bench.spy import summarize

    raw = ("thread (1): worker;run (a.py:1);model (b.py:2) 6\n"
           "thread (1): worker;run (a.py:1);deserialize (c.py:3) 3\n"
           "thread (2): main;spin (d.py:4) 1\n")
    text = summarize(raw)
    assert text.startswith("10 samples; by thread: thread (1): worker 90%, thread (2): main 10%")
    inclusive, own = text.split("-- self")
    assert " 90.0%  thread (1): worker" in inclusive and "run" in inclusive
    assert " 60.0%  thread (1): worker                        model" in own
    assert " 30.0%" in own and "deserialize" in own
