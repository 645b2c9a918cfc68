"""config/moveit_sensors_3d.yaml gives each MoveIt 2 occupancy map updater every parameter it
reads, with the type it reads it as, on topics the node publishes (MoveIt is not installed here).

The keys are those of setParams() in moveit2 moveit_ros/perception:
depth_image_octomap_updater.cpp and pointcloud_octomap_updater.cpp. The depth updater chains its
get_parameter calls with &&: the first missing key silently leaves the rest at their defaults,
so a missing key is a wrong configuration even where the plugin still starts."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = {"/segmentation/depth_filtered", "/segmentation/camera_info", "/segmentation/points",
             "/segmentation/obstacle_points"}
DEPTH_IMAGE = {"image_topic": str, "queue_size": int, "near_clipping_plane_distance": float,
               "far_clipping_plane_distance": float, "shadow_threshold": float, "padding_scale": float,
               "padding_offset": float, "max_update_rate": float, "skip_vertical_pixels": int,
               "skip_horizontal_pixels": int, "filtered_cloud_topic": str, "ns": str}
POINT_CLOUD = {"point_cloud_topic": str, "max_range": float, "padding_offset": float, "padding_scale": float,
               "point_subsample": int, "max_update_rate": float, "filtered_cloud_topic": str, "ns": str}
PLUGINS = {"occupancy_map_monitor/DepthImageOctomapUpdater": DEPTH_IMAGE,
           "occupancy_map_monitor/PointCloudOctomapUpdater": POINT_CLOUD}


def config() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "config" / "moveit_sensors_3d.yaml").read_text())
    return data


def typed(value: Any, kind: type) -> bool:
    # rclcpp refuses an integer for a double parameter and a bool for an integer one.
    return type(value) is kind


def test_every_sensor_has_every_key_its_plugin_reads() -> None:
    data = config()
    assert typed(data["octomap_resolution"], float) and typed(data["max_range"], float)
    assert typed(data["octomap_frame"], str) and data["octomap_frame"]
    plugins = []
    for sensor in data["sensors"]:
        params = data[sensor]
        plugin = params["sensor_plugin"]
        plugins.append(plugin)
        wanted = PLUGINS[plugin]
        keys = set(params) - {"sensor_plugin"}
        assert keys == set(wanted), f"{sensor}: missing {set(wanted) - keys}, unknown {keys - set(wanted)}"
        for key, kind in wanted.items():
            assert typed(params[key], kind), f"{sensor}.{key} = {params[key]!r} is not a {kind.__name__}"
    assert sorted(plugins) == sorted(PLUGINS)  # one of each


def test_updaters_listen_to_what_the_node_publishes() -> None:
    data = config()
    for sensor in data["sensors"]:
        params = data[sensor]
        if params["sensor_plugin"].endswith("DepthImageOctomapUpdater"):
            topic = params["image_topic"]
            assert topic == "/segmentation/depth_filtered"
            # image_transport's camera subscriber takes the CameraInfo beside the image.
            assert topic.rsplit("/", 1)[0] + "/camera_info" in PUBLISHED
            assert params["near_clipping_plane_distance"] < params["far_clipping_plane_distance"]
        else:
            assert params["point_cloud_topic"] in PUBLISHED
            assert params["point_subsample"] >= 1 and params["max_range"] > 0
