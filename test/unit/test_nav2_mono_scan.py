"""config/nav2_mono_scan_layer.yaml: an ObstacleLayer on segmentation/scan that marks and clears,
with every key one nav2_costmap_2d's ObstacleLayer reads (plugins/obstacle_layer.cpp, onInitialize)
and limits that keep the scan's ground contacts (z = 0) and its +inf readings doing what they should.
Nav2 is not installed here; the facts below are from its source."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from seg_perception.live.params import BY_NAME

ROOT = Path(__file__).resolve().parents[2]
LAYER_KEYS = {"plugin", "enabled", "footprint_clearing_enabled", "min_obstacle_height", "max_obstacle_height",
              "combination_method", "observation_sources", "tf_filter_tolerance"}
SOURCE_KEYS = {"topic", "sensor_frame", "observation_persistence", "expected_update_rate", "data_type",
               "min_obstacle_height", "max_obstacle_height", "inf_is_valid", "marking", "clearing",
               "obstacle_max_range", "obstacle_min_range", "raytrace_max_range", "raytrace_min_range"}
INF_EPSILON = 0.0001
"""laserScanValidInfCallback turns +inf into range_max - this."""


def layer() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "config" / "nav2_mono_scan_layer.yaml").read_text())
    params: dict[str, Any] = data["local_costmap"]["local_costmap"]["ros__parameters"]
    for name in params["plugins"]:
        assert "plugin" in params[name], f"layer {name} is listed but not defined"
    layers = [params[n] for n in params["plugins"] if params[n]["plugin"] == "nav2_costmap_2d::ObstacleLayer"]
    assert len(layers) == 1
    return layers[0]


def test_one_scan_source_marks_and_clears_with_keys_the_layer_reads() -> None:
    config = layer()
    sources = config["observation_sources"].split()
    assert set(config) - set(sources) <= LAYER_KEYS
    assert len(sources) == 1
    source = config[sources[0]]
    assert set(source) <= SOURCE_KEYS, set(source) - SOURCE_KEYS
    assert source["topic"] == "/segmentation/scan" and source["data_type"] == "LaserScan"
    assert source["marking"] is True and source["clearing"] is True
    assert source["inf_is_valid"] is True  # +inf = free ground to the range: clear along it


def test_limits_keep_ground_contacts_and_never_mark_a_clear_reading() -> None:
    config = layer()
    source = config[config["observation_sources"].split()[0]]
    # The contacts lie on z = 0: both height filters (the source's, then the layer-wide one, whose
    # default min is 0.0) must keep a point a rounding error below or above it.
    assert source["min_obstacle_height"] < 0.0 < source["max_obstacle_height"]
    assert config["min_obstacle_height"] <= source["min_obstacle_height"]
    assert config["max_obstacle_height"] >= source["max_obstacle_height"]
    # +inf becomes a point at range_max (the node's ground_max_range) - 0.1 mm: it must not mark, and
    # clearing must reach as far as the scan sees free ground.
    scan_range = BY_NAME["ground_max_range"].default
    assert source["obstacle_max_range"] < scan_range - INF_EPSILON
    assert source["raytrace_max_range"] >= scan_range - INF_EPSILON
    assert source["raytrace_max_range"] >= source["obstacle_max_range"]
