"""The node's output topic names, relative to a camera's namespace: one list for the node's
publishers and for the bags segment_offline writes, so a bag replays into the same graph."""
from __future__ import annotations

from typing import Final

OUTPUT_NAMESPACE: Final = "segmentation"
STREAMS: Final = ("mask", "confidence", "color_mask", "overlay", "camera_info", "points", "obstacle_points",
                  "depth_filtered", "scan", "ground_points")
"""Per-frame outputs, published with the input frame's header."""
LATCHED: Final = ("class_map", "label_info")
"""Published once (transient-local) per configure or change of classes."""


def output_topic(prefix: str, key: str) -> str:
    """`<prefix>/segmentation/<key>` (a trailing '/' of `prefix` is optional); `prefix` '' gives the
    plain relative name, '/' the absolute one."""
    if key not in STREAMS and key not in LATCHED:
        raise ValueError(f"'{key}' is not an output of the node ({', '.join(STREAMS + LATCHED)})")
    return f"{prefix.rstrip('/')}/{OUTPUT_NAMESPACE}/{key}" if prefix else f"{OUTPUT_NAMESPACE}/{key}"
