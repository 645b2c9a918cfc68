"""The Nav2 costmap examples in config/ are complete and consistent with what the node publishes
(their behaviour in Nav2 itself is described in the README; Nav2 is not installed here)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = {"/segmentation/mask", "/segmentation/confidence", "/segmentation/points",
             "/segmentation/obstacle_points", "/segmentation/label_info"}
DEFAULT_MODEL_CLASSES = {"background", "person"}


def costmap(name: str) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "config" / name).read_text())
    params: dict[str, Any] = data["local_costmap"]["local_costmap"]["ros__parameters"]
    return params


def test_every_listed_layer_is_defined() -> None:
    for name in ("nav2_obstacle_layer.yaml", "nav2_semantic_segmentation_layer.yaml"):
        params = costmap(name)
        for layer in params["plugins"]:
            assert "plugin" in params.get(layer, {}), f"{name}: layer {layer} is listed but not defined"


def test_obstacle_layer_clears_what_it_marks() -> None:
    layer = costmap("nav2_obstacle_layer.yaml")["segmentation_obstacle_layer"]
    assert layer["plugin"] == "nav2_costmap_2d::ObstacleLayer"
    sources = {name: layer[name] for name in layer["observation_sources"].split()}
    marking = [s for s in sources.values() if s["marking"]]
    clearing = [s for s in sources.values() if s["clearing"]]
    assert [s["topic"] for s in marking] == ["/segmentation/obstacle_points"]
    assert [s["topic"] for s in clearing] == ["/segmentation/points"]
    for source in sources.values():
        assert source["data_type"] == "PointCloud2" and source["topic"] in PUBLISHED
        # Nav2's per-source max_obstacle_height defaults to 0.0: unset, every point is filtered out.
        assert source["max_obstacle_height"] > source["min_obstacle_height"]
    # A mark can only be cleared by a ray that reaches past it.
    assert clearing[0]["raytrace_max_range"] >= marking[0]["obstacle_max_range"]


def test_semantic_layer_wiring() -> None:
    layer = costmap("nav2_semantic_segmentation_layer.yaml")["semantic_segmentation_layer"]
    for source in layer["observation_sources"].split():
        config = layer[source]
        topics = [config[k] for k in ("segmentation_topic", "confidence_topic", "labels_topic", "pointcloud_topic")]
        assert set(topics) <= PUBLISHED
        assert config["pointcloud_topic"] == "/segmentation/points"  # organized, mask-sized
        named = {c for kind in config["class_types"] for c in config[kind]["classes"]}
        assert named <= DEFAULT_MODEL_CLASSES
