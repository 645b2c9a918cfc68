"""wire.stamps: the one conversion between builtin_interfaces/Time and nanoseconds."""
from __future__ import annotations

from types import SimpleNamespace

from seg_perception.wire.stamps import split_ns, stamp_text, stamp_to_ns


def test_stamp_to_ns_and_back() -> None:
    assert stamp_to_ns(SimpleNamespace(sec=12, nanosec=345)) == 12_000_000_345
    assert stamp_to_ns(SimpleNamespace(sec=0, nanosec=0)) == 0
    assert split_ns(12_000_000_345) == (12, 345)
    assert split_ns(stamp_to_ns(SimpleNamespace(sec=1_700_000_000, nanosec=999_999_999))) == (1_700_000_000, 999_999_999)


def test_stamp_text_pads_the_nanoseconds() -> None:
    assert stamp_text(12_000_000_345) == "12.000000345"
    assert stamp_text(0) == "0.000000000"
