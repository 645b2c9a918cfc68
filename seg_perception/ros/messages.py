"""Builders for the latched ROS messages (class map, LabelInfo); per-frame outputs go out as
CDR bytes built by wire.cdr. No Node here."""
from __future__ import annotations

from typing import Any

from ..model.labels import ClassMap


def class_map_msg(class_map: ClassMap, stamp: Any) -> Any:
    from ..msg import ClassInfo as ClassInfoMsg
    from ..msg import ClassMap as ClassMapMsg

    msg = ClassMapMsg()
    msg.header.stamp = stamp
    msg.model_name = class_map.model_name
    msg.classes = [ClassInfoMsg(**c.message_fields()) for c in class_map.classes]
    return msg


def label_info_msg(label_info_type: Any, vision_class_type: Any, class_map: ClassMap, stamp: Any,
                   threshold: float) -> Any:
    """vision_msgs/LabelInfo. Types are passed in: vision_msgs is optional at run time."""
    msg = label_info_type()
    msg.header.stamp = stamp
    msg.class_map = [vision_class_type(**c.vision_class_fields()) for c in class_map.classes]
    msg.threshold = float(threshold)
    return msg


__all__ = ["class_map_msg", "label_info_msg"]
