"""ros/compat on a real node: with the post-set callback registered the Humble way (rclpy 3.3
has no add_post_set_parameters_callback), a parameter change takes effect exactly as on Iron+,
and a refused change has no effect. The Humble API itself is checked in test/unit/test_humble_api.py."""
from __future__ import annotations

import itertools
import os
from typing import Any

import pytest

rclpy = pytest.importorskip("rclpy")

from rclpy.parameter import Parameter  # noqa: E402

from seg_perception.ros.node import SegmentationNode  # noqa: E402


class HumbleStyleNode(SegmentationNode):
    """The real node, on an rclpy Node without post-set callbacks, as on Humble."""

    add_post_set_parameters_callback = None  # type: ignore[assignment]


_names = itertools.count()


@pytest.mark.parametrize("node_class", [SegmentationNode, HumbleStyleNode])
def test_live_parameters_take_effect_and_refusals_do_not(ros: Any, node_class: type[SegmentationNode]) -> None:
    node = node_class(f"compat_{os.getpid()}_{next(_names)}")
    try:
        options = node.worker.options
        assert options is not None and options.request.confidence_threshold == 0.0
        result = node.set_parameters([Parameter("confidence_threshold", Parameter.Type.DOUBLE, 0.25),
                                      Parameter("voxel_size", Parameter.Type.DOUBLE, 0.05)])
        assert all(r.successful for r in result)
        options = node.worker.options
        assert options is not None
        assert options.request.confidence_threshold == 0.25 and options.request.voxel_size == 0.05
        assert node.param("confidence_threshold") == 0.25
        refused = node.set_parameters([Parameter("min_range", Parameter.Type.DOUBLE, 50.0)])  # > max_range
        assert not refused[0].successful and "min_range" in refused[0].reason
        assert node.worker.options is options  # untouched: no side effect of a refused change
        assert node.param("min_range") == 0.1
    finally:
        node.close()
        node.destroy_node()
