"""The Nav2 costmap examples in config/ are complete and consistent with what the node publishes
(their behaviour in Nav2 itself is described in the README; Nav2 is not installed here).

Rules every shipped config/nav2_*.yaml must keep, from nav2_costmap_2d's sources:
- layered_costmap.cpp: each layer rewrites only its own cells, so an ObstacleLayer's marks are
  cleared only by clearing sources of the same layer; a ray clears only up to its
  raytrace_max_range, so it must reach as far as the marks (obstacle_max_range);
- obstacle_layer.cpp: the layer-wide min_obstacle_height (default 0.0) filters marking points on
  top of each source's own (ObservationBuffer), so it must be at or below every source's; a
  source's max_obstacle_height defaults to 0.0 (every point dropped);
- a LaserScan source clears along +inf ranges (REP 117 "nothing up to max range") only with
  inf_is_valid: true;
- the semantic segmentation layer drops observations older than tile_map_decay_time (now - stamp):
  the decay must exceed the node's latency for the model the file is for (README, make demo)."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from seg_perception.model.builtin import builtin_spec

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = {"/segmentation/mask", "/segmentation/confidence", "/segmentation/points",
             "/segmentation/obstacle_points", "/segmentation/label_info",
             # ground projection outputs (issue 19, camera-only obstacles)
             "/segmentation/scan", "/segmentation/ground_points"}
DEFAULT_MODEL_CLASSES = {"background", "person"}
NAV2_FILES = sorted(p.name for p in (ROOT / "config").glob("nav2_*.yaml"))
OBSTACLE_PLUGINS = ("nav2_costmap_2d::ObstacleLayer", "nav2_costmap_2d::VoxelLayer")
SEMANTIC_PLUGIN = "semantic_segmentation_layer::SemanticSegmentationLayer"


def costmap(name: str) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "config" / name).read_text())
    params: dict[str, Any] = data["local_costmap"]["local_costmap"]["ros__parameters"]
    return params


def layers(name: str, plugins: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    params = costmap(name)
    return {layer: params[layer] for layer in params["plugins"] if params[layer]["plugin"] in plugins}


def readme_latency_ms() -> dict[str, float]:
    """The worst warm latency `make demo` measured per built-in model, from the README's demo
    outputs (a block whose class shares name drivable_area is the drivable model's)."""
    readme = (ROOT / "README.md").read_text()
    found: dict[str, float] = {}
    for block in re.findall(r"```\n(frame .*?)```", readme, re.S):
        worst = re.search(r"\[demo\] latency over warm rounds: median [\d.]+ ms, max ([\d.]+) ms", block)
        if worst:
            found["drivable" if "drivable_area" in block else "selfie"] = float(worst.group(1))
    return found


def model_of(class_names: set[str]) -> str:
    for model in ("selfie", "drivable"):
        if class_names == set(builtin_spec(model).classes.names):
            return model
    raise AssertionError(f"classes {sorted(class_names)} are not a built-in model's: name its latency")


def test_there_are_nav2_examples() -> None:
    assert {"nav2_obstacle_layer.yaml", "nav2_semantic_segmentation_layer.yaml",
            "nav2_drivable_obstacle_layer.yaml", "nav2_drivable_semantic_layer.yaml"} <= set(NAV2_FILES)


@pytest.mark.parametrize("name", NAV2_FILES)
def test_every_listed_layer_is_defined(name: str) -> None:
    params = costmap(name)
    for layer in params["plugins"]:
        assert "plugin" in params.get(layer, {}), f"{name}: layer {layer} is listed but not defined"


@pytest.mark.parametrize("name", NAV2_FILES)
def test_obstacle_layers_clear_what_they_mark_and_keep_their_points(name: str) -> None:
    for layer_name, layer in layers(name, OBSTACLE_PLUGINS).items():
        where = f"{name}: {layer_name}"
        sources = {s: layer[s] for s in layer["observation_sources"].split()}
        assert sources, f"{where} has no observation sources"
        marking = [s for s in sources.values() if s["marking"]]
        clearing = [s for s in sources.values() if s["clearing"]]
        assert clearing or not marking, f"{where} marks but never clears: its marks would stay forever"
        assert "min_obstacle_height" in layer, f"{where}: the layer-wide min_obstacle_height defaults to 0.0"
        for source_name, source in sources.items():
            assert source["data_type"] in ("PointCloud2", "LaserScan")
            assert source["topic"] in PUBLISHED, f"{where}.{source_name}: {source['topic']} is not published"
            assert source["max_obstacle_height"] > source["min_obstacle_height"], f"{where}.{source_name}"
            assert layer["min_obstacle_height"] <= source["min_obstacle_height"], (
                f"{where}: layer-wide min_obstacle_height {layer['min_obstacle_height']} drops points "
                f"{source_name} keeps (from {source['min_obstacle_height']})")
            if source["data_type"] == "LaserScan" and source["clearing"]:
                assert source.get("inf_is_valid") is True, f"{where}.{source_name}: +inf ranges would not clear"
        for mark in marking:
            reach = max(c.get("raytrace_max_range", 3.0) for c in clearing)  # 3.0: Nav2's default
            assert reach >= mark.get("obstacle_max_range", 2.5), f"{where}: marks beyond where rays clear"


@pytest.mark.parametrize("name", NAV2_FILES)
def test_semantic_layers_decay_after_the_measured_latency(name: str) -> None:
    latency = readme_latency_ms()
    for layer_name, layer in layers(name, (SEMANTIC_PLUGIN,)).items():
        for source in layer["observation_sources"].split():
            config = layer[source]
            named = {c for kind in config["class_types"] for c in config[kind]["classes"]}
            model = model_of(named)
            assert model in latency, f"the README measures no latency for {model}"
            decay_ms = config["tile_map_decay_time"] * 1e3
            assert decay_ms > latency[model], (
                f"{name}: {layer_name}.{source} decays after {decay_ms:.0f} ms but the README measures "
                f"{latency[model]:.0f} ms for {model}: every observation would be dropped as too old")


def test_the_latency_figures_are_read_from_the_readme() -> None:
    assert readme_latency_ms().keys() == {"selfie", "drivable"}


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
