"""ClassMap: construction from names and from a description's class list, the errors a bad list
raises, and the lookup tables every output (color mask, overlay, obstacle cloud) is drawn from."""
from __future__ import annotations

import numpy as np
import pytest

from seg_perception.model.labels import UNLABELED, ClassInfo, ClassMap, ClassMapError


def test_unlabeled_is_the_largest_uint8() -> None:
    assert UNLABELED == 255


# construction -----------------------------------------------------------------------------

def test_from_names_ids_are_list_positions() -> None:
    cm = ClassMap.from_names(["road", "car", "person"], obstacles=["car", "person"], model_name="m")
    assert [c.id for c in cm.classes] == [0, 1, 2]
    assert cm.names == ["road", "car", "person"]
    assert cm.obstacle_names == ["car", "person"]
    assert cm["car"] == cm.classes[1]
    assert cm["road"].obstacle is False
    assert cm.model_name == "m"
    assert len(cm) == 3
    assert cm.num_outputs == 3


def test_from_names_explicit_colors() -> None:
    cm = ClassMap.from_names(["a", "b"], colors=[[1, 2, 3], (250, 251, 252)])
    assert cm["a"].color == (1, 2, 3)
    assert cm["b"].color == (250, 251, 252)


def test_from_names_default_colors_are_distinct() -> None:
    cm = ClassMap.from_names([f"c{i}" for i in range(60)])
    colors = [c.color for c in cm.classes]
    assert len(set(colors)) == 60
    assert all(len(color) == 3 and all(0 <= v <= 255 for v in color) for color in colors)


@pytest.mark.parametrize("names, obstacles, colors", [
    (["a", "a"], (), None),                     # duplicate name
    (["a", "b"], ["c"], None),                  # unknown obstacle
    (["a", "b"], (), [[0, 0, 0]]),              # one color for two classes
    (["a"], (), [[0, 0, 256]]),                 # out of range
    (["a"], (), [[-1, 0, 0]]),
    (["a"], (), [[0, 0]]),                      # two values
    ([], (), None),                             # no classes at all
    ([f"c{i}" for i in range(256)], (), None),  # the 256th class would get id 255
])
def test_from_names_errors(names: list[str], obstacles: list[str], colors: list[list[int]] | None) -> None:
    with pytest.raises(ClassMapError):
        ClassMap.from_names(names, obstacles=obstacles, colors=colors)


def test_class_map_error_is_a_value_error() -> None:
    assert issubclass(ClassMapError, ValueError)


def test_from_config_names_and_mappings() -> None:
    cm = ClassMap.from_config([
        "background",
        {"name": "car", "color": [10, 20, 30], "obstacle": True},
        {"name": "tree", "id": 7},
    ], model_name="cfg")
    assert cm.names == ["background", "car", "tree"]
    assert [c.id for c in cm.classes] == [0, 1, 7]
    assert cm["car"].color == (10, 20, 30)
    assert cm["car"].obstacle is True
    assert cm["tree"].obstacle is False
    assert cm.obstacle_names == ["car"]
    assert cm.num_outputs == 8  # ids are channel indices: channels 0..7
    assert cm.model_name == "cfg"


@pytest.mark.parametrize("entries", [
    ["a", "a"],                                          # duplicate name
    [{"name": "a", "id": 3}, {"name": "b", "id": 3}],    # duplicate id
    ["a", {"name": "b", "id": 0}],                       # explicit id collides with a list position
    [{"name": "void", "id": 255}],                       # 255 means unlabeled
    [{"name": "neg", "id": -1}],
    [{"name": "a", "color": [0, 0, 300]}],
    [{"name": "a", "color": [0, 0]}],
    [{"name": "a", "color": [0, 0, 0, 0]}],
    [{"name": "a", "color": "255"}],                     # a string is not three numbers
    [{"name": "a", "color": "red"}],
    [{"name": "a", "color": 255}],
    [{"name": "a", "color": [0.5, 0, 0]}],               # not an integer
    [{"name": "a", "obstacle": "false"}],                # quoted YAML string, not a bool
    [{"name": "a", "colour": [1, 2, 3]}],                # unknown key (typo)
    [{"color": [1, 2, 3]}],                              # no name
    [42],
    [],
])
def test_from_config_errors(entries: list[object]) -> None:
    with pytest.raises(ClassMapError):
        ClassMap.from_config(entries)


def test_direct_construction_checks() -> None:
    with pytest.raises(ClassMapError):
        ClassMap((ClassInfo(255, "x", (0, 0, 0)),))
    with pytest.raises(ClassMapError):
        ClassMap((ClassInfo(0, "x", (0, 0, 0)), ClassInfo(0, "y", (0, 0, 0))))
    with pytest.raises(ClassMapError):
        ClassMap((ClassInfo(0, "x", (0, 0, 0)), ClassInfo(1, "x", (0, 0, 0))))
    with pytest.raises(ClassMapError):
        ClassMap((ClassInfo(0, "x", (0, 0, 999)),))


def test_with_obstacles_replaces_the_flags() -> None:
    cm = ClassMap.from_names(["road", "car", "person"], obstacles=["car"])
    swapped = cm.with_obstacles(["person", "road"])
    assert swapped.obstacle_names == ["road", "person"]
    assert cm.obstacle_names == ["car"]  # the original is unchanged (frozen)
    assert swapped.with_obstacles([]).obstacle_names == []
    assert [c.color for c in swapped.classes] == [c.color for c in cm.classes]
    assert swapped["person"].obstacle is True
    with pytest.raises(ClassMapError):
        cm.with_obstacles(["bicycle"])


# lookup tables ----------------------------------------------------------------------------

def test_palette_lut() -> None:
    cm = ClassMap.from_config([
        {"name": "bg", "color": [0, 0, 0]},
        {"name": "a", "color": [10, 20, 30]},
        {"name": "b", "id": 5, "color": [200, 100, 50]},
    ])
    lut = cm.palette_lut()
    assert lut.shape == (256, 3) and lut.dtype == np.uint8
    expected = np.zeros((256, 3), np.uint8)
    expected[1] = (10, 20, 30)
    expected[5] = (200, 100, 50)
    np.testing.assert_array_equal(lut, expected)
    assert lut[UNLABELED].tolist() == [0, 0, 0]


def test_obstacle_lut() -> None:
    cm = ClassMap.from_config(["bg", {"name": "wall", "obstacle": True}, {"name": "car", "id": 9, "obstacle": True}])
    lut = cm.obstacle_lut()
    assert lut.shape == (256,) and lut.dtype == np.bool_
    assert sorted(np.flatnonzero(lut).tolist()) == [1, 9]
    assert not lut[UNLABELED]


def test_class_shares() -> None:
    cm = ClassMap.from_names(["bg", "a", "b"])
    labels = np.array([[0, 0, 0, 1],
                       [1, 255, 255, 0],
                       [0, 0, 0, 0]], np.uint8)  # 12 px: bg 8, a 2, b 0, unlabeled 2
    shares = cm.class_shares(labels)
    assert shares == pytest.approx({"bg": 8 / 12, "a": 2 / 12, "b": 0.0, "unlabeled": 2 / 12})
    assert "unlabeled" not in cm.class_shares(np.zeros((3, 3), np.uint8))
    assert cm.class_shares(np.zeros((3, 3), np.uint8))["bg"] == 1.0
