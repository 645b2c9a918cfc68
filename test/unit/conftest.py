"""Unit-test isolation for per-thread CPU float state."""
from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def ieee_floats_after_each_test() -> Iterator[None]:
    """ONNX Runtime sets flush-to-zero on the thread that creates a session (we ask it to treat
    denormals as zero for speed); in a node that is the engine thread and harmless. Here every
    test shares one thread, so give the next test IEEE denormals back."""
    yield
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_flush_denormal(False)
