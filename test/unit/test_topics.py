"""wire.topics: one list of output names for the node and the bags segment_offline writes."""
from __future__ import annotations

import pytest

from seg_perception.wire.topics import output_topic


@pytest.mark.parametrize("prefix, key, topic", [
    ("", "mask", "segmentation/mask"),
    ("front/", "confidence", "front/segmentation/confidence"),
    ("front", "class_map", "front/segmentation/class_map"),
    ("/", "mask", "/segmentation/mask"),
    ("/camera", "label_info", "/camera/segmentation/label_info"),
])
def test_output_topic(prefix: str, key: str, topic: str) -> None:
    assert output_topic(prefix, key) == topic


def test_an_unknown_output_is_refused_with_the_list() -> None:
    with pytest.raises(ValueError, match="'masks' is not an output of the node .*mask, confidence"):
        output_topic("", "masks")
