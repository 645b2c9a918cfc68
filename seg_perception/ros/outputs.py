"""The node's publishers and how one frame's outputs become messages on them.

Streams are lifecycle publishers (they publish only while the node is active); the class map
and LabelInfo are latched (transient-local) and published at configure, so a costmap or a
manager can read the classes before activation. Outputs nobody subscribes to are not built.

Per-frame outputs are published as CDR bytes built in one pass from the arrays (wire.cdr):
no Python message object holds megabytes of pixels or points on the way out.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from rclpy.lifecycle import LifecycleNode
from sensor_msgs.msg import CameraInfo, Image, LaserScan, PointCloud2

from . import qos
from .compat import PublisherEventCallbacks
from ..wire import cdr, pointcloud2 as clouds, topics
from ..engine.frame import FrameOutputs, FrameRequest
from ..model.labels import ClassMap
from ..msg import ClassMap as ClassMapMsg
from .messages import class_map_msg, label_info_msg

try:  # vision_msgs is on every ROS 2 distro but not in our pip environment.
    from vision_msgs.msg import LabelInfo, VisionClass
except ImportError:  # pragma: no cover - depends on the installation
    LabelInfo = VisionClass = None

STREAMS = {"mask": Image, "confidence": Image, "color_mask": Image, "overlay": Image, "camera_info": CameraInfo,
           "points": PointCloud2, "obstacle_points": PointCloud2, "depth_filtered": Image, "scan": LaserScan,
           "ground_points": PointCloud2}
"""segmentation/<key>. depth_filtered sits beside camera_info: the pair an image_transport camera
subscriber (MoveIt's DepthImageOctomapUpdater) takes."""
assert tuple(STREAMS) == topics.STREAMS


class CameraPublishers:
    def __init__(self, node: LifecycleNode, reliability: str,
                 on_incompatible: Callable[[str], Callable[[Any], None]], prefix: str = "") -> None:
        """`prefix`: the camera's namespace with its trailing '/' ('' for the plain names)."""
        self._node = node
        self.pubs: dict[str, Any] = {}
        stream = qos.stream(reliability)
        for key, msg_type in STREAMS.items():
            topic = topics.output_topic(prefix, key)
            events = PublisherEventCallbacks(incompatible_qos=on_incompatible(topic))
            self.pubs[key] = node.create_lifecycle_publisher(msg_type, topic, stream, event_callbacks=events)
        self.pubs["class_map"] = node.create_publisher(ClassMapMsg, topics.output_topic(prefix, "class_map"), qos.LATCHED)
        if LabelInfo is not None:
            self.pubs["label_info"] = node.create_publisher(LabelInfo, topics.output_topic(prefix, "label_info"),
                                                            qos.LATCHED)

    def wanted(self, key: str, enabled: bool = True) -> bool:
        return enabled and self.pubs[key].get_subscription_count() > 0

    def narrow(self, request: FrameRequest, use_depth: bool) -> FrameRequest:
        """`request` (what parameters enable) limited to the outputs someone subscribes to."""
        w = self.wanted
        return dataclasses.replace(
            request, confidence=w("confidence", request.confidence),
            color=w("color_mask", request.color), overlay=w("overlay", request.overlay),
            points=use_depth and w("points", request.points),
            obstacle_points=use_depth and w("obstacle_points", request.obstacle_points),
            depth_filtered=use_depth and w("depth_filtered", request.depth_filtered),
            ground=request.ground and (w("scan") or w("ground_points")))

    def publish_frame(self, header: Any, out: FrameOutputs, overlay: bool = True) -> None:
        """Every output of one frame, each with the input's header (clouds: the depth frame_id; scan
        and ground points: base_frame). `header` is header-like (wire.cdr's or rclpy's). `overlay`:
        False when the overlay was made only for the live view (nobody subscribes to it, or
        publish_overlay is off)."""
        result, pubs = out.segmentation, self.pubs
        assert result is not None
        header = cdr.as_header(header)
        for key, array, encoding in (("mask", result.labels, "mono8"), ("confidence", result.confidence, "mono8"),
                                     ("color_mask", result.color, "rgb8"), ("overlay", result.overlay, "rgb8")):
            if array is not None and (key != "confidence" or self.wanted(key)) and (key != "overlay" or overlay):
                pubs[key].publish(cdr.image_bytes(header, array, encoding))
        if out.depth_filtered is not None:  # registered to the mask: the mask's header and camera_info
            pubs["depth_filtered"].publish(cdr.image_bytes(header, out.depth_filtered, out.depth_encoding))
        if out.camera_info is not None:
            pubs["camera_info"].publish(cdr.camera_info_bytes(out.camera_info, header, *result.size))
        ground = out.ground
        if ground is not None:
            ground_header = cdr.header(header.stamp.sec, header.stamp.nanosec, out.ground_frame_id)
            pubs["scan"].publish(cdr.laser_scan_bytes(ground_header, ground.ranges, ground.angle_min,
                                                      ground.angle_increment, ground.range_min, ground.range_max))
            pubs["ground_points"].publish(cdr.pointcloud2_bytes(ground_header, clouds.xyz_cloud_array(ground.points),
                                                                clouds.XYZ_FIELDS))
        cloud_header = cdr.header(header.stamp.sec, header.stamp.nanosec, out.cloud_frame_id)
        for key, cloud, fields in (("points", out.labelled_cloud, clouds.LABELLED_FIELDS),
                                   ("obstacle_points", out.obstacle_cloud, clouds.XYZ_FIELDS)):
            if cloud is not None:
                pubs[key].publish(cdr.pointcloud2_bytes(cloud_header, cloud, fields))

    def publish_class_map(self, class_map: ClassMap, stamp: Any, confidence_threshold: float) -> None:
        self.pubs["class_map"].publish(class_map_msg(class_map, stamp))
        if "label_info" in self.pubs:
            self.pubs["label_info"].publish(label_info_msg(LabelInfo, VisionClass, class_map, stamp,
                                                           confidence_threshold))

    def destroy(self) -> None:
        for pub in self.pubs.values():
            self._node.destroy_publisher(pub)
        self.pubs = {}
