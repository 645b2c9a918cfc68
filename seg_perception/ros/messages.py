"""Builders for the ROS messages we publish from core results (no Node here)."""
from __future__ import annotations

from typing import Any

from sensor_msgs.msg import CameraInfo, PointField

from ..core.labels import ClassMap
from ..core.projection import scale_camera_info


def class_map_msg(class_map: ClassMap, stamp: Any) -> Any:
    from ..msg import ClassInfo as ClassInfoMsg
    from ..msg import ClassMap as ClassMapMsg

    msg = ClassMapMsg()
    msg.header.stamp = stamp
    msg.model_name = class_map.model_name
    msg.classes = [ClassInfoMsg(id=c.id, name=c.name, color=list(c.color), obstacle=c.obstacle)
                   for c in class_map.classes]
    return msg


def label_info_msg(label_info_type: Any, vision_class_type: Any, class_map: ClassMap, stamp: Any,
                   threshold: float) -> Any:
    """vision_msgs/LabelInfo. Types are passed in: vision_msgs is optional at run time."""
    msg = label_info_type()
    msg.header.stamp = stamp
    msg.class_map = [vision_class_type(class_id=c.id, class_name=c.name) for c in class_map.classes]
    msg.threshold = float(threshold)
    return msg


def resized_camera_info(info: CameraInfo, header: Any, width: int, height: int) -> CameraInfo:
    """CameraInfo for an image resized from info's size to width x height, with `header`."""
    out = CameraInfo()
    out.header = header
    out.distortion_model = info.distortion_model
    out.d = info.d
    out.r = info.r
    out.binning_x, out.binning_y = info.binning_x, info.binning_y
    if (info.width, info.height) == (width, height) or info.width == 0 or info.height == 0:
        out.k, out.p = info.k, info.p
    else:
        k, p = scale_camera_info(list(info.k), list(info.p), info.width, info.height, width, height)
        out.k, out.p = k, p
    out.width, out.height = width, height
    return out


def point_field(name: str, offset: int, datatype: int, count: int) -> PointField:
    return PointField(name=name, offset=offset, datatype=datatype, count=count)


__all__ = ["class_map_msg", "label_info_msg", "point_field", "resized_camera_info"]
