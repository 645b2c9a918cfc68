"""Class maps: names, ids, colors and obstacle flags of a model's classes.

One ClassMap travels with each model, so the mask ids, the palette of the color mask, the
labelled cloud colors, the obstacle filter and the published ClassMap/LabelInfo messages all
come from one source.
"""
from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

UNLABELED = 255
"""Mask value for pixels with no class (below the confidence threshold, outside the image).
vision_msgs reserves the largest id for "unlabeled"; the Nav2 semantic layer reads ids as uint8."""

# Distinct colors for classes without an explicit one (Cityscapes/PASCAL-like hues first).
_DEFAULT_COLORS: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0), (220, 20, 60), (0, 0, 142), (119, 11, 32), (250, 170, 30), (107, 142, 35),
    (70, 130, 180), (153, 153, 153), (244, 35, 232), (128, 64, 128), (190, 153, 153),
    (102, 102, 156), (0, 60, 100), (0, 80, 100), (255, 0, 0), (152, 251, 152), (220, 220, 0),
    (70, 70, 70), (0, 0, 230), (0, 0, 70),
)


class ClassMapError(ValueError):
    """A class list or palette that cannot be used (duplicate names, bad colors, too many classes)."""


def default_color(index: int) -> tuple[int, int, int]:
    if index < len(_DEFAULT_COLORS):
        return _DEFAULT_COLORS[index]
    # Golden-ratio hue walk: deterministic, well separated for any number of classes.
    hue = (index * 0.618033988749895) % 1.0
    h6 = hue * 6.0
    sector = int(h6)
    frac = h6 - sector
    v, s = 230, 0.75
    p, q, t = v * (1 - s), v * (1 - s * frac), v * (1 - s * (1 - frac))
    rgb = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][sector % 6]
    return (int(rgb[0]), int(rgb[1]), int(rgb[2]))


@dataclass(frozen=True)
class ClassInfo:
    id: int
    name: str
    color: tuple[int, int, int]
    obstacle: bool = False
    free: bool = False
    """Drivable ground: ground projection walks up each image column over these pixels."""

    def message_fields(self) -> dict[str, Any]:
        """The fields of a seg_perception/msg/ClassInfo holding this class."""
        return {"id": self.id, "name": self.name, "color": list(self.color), "obstacle": self.obstacle}

    def vision_class_fields(self) -> dict[str, Any]:
        """The fields of a vision_msgs/msg/VisionClass naming this class (LabelInfo.class_map)."""
        return {"class_id": self.id, "class_name": self.name}


@dataclass(frozen=True)
class ClassMap:
    """The classes of one model. Class ids are the model's output channel indices."""

    classes: tuple[ClassInfo, ...]
    model_name: str = ""
    _by_name: Mapping[str, ClassInfo] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.classes:
            raise ClassMapError("a class map needs at least one class")
        by_name: dict[str, ClassInfo] = {}
        ids: set[int] = set()
        for info in self.classes:
            if not 0 <= info.id < UNLABELED:
                raise ClassMapError(
                    f"class '{info.name}' has id {info.id}; ids must be 0..{UNLABELED - 1} "
                    f"({UNLABELED} means unlabeled)")
            if info.name in by_name:
                raise ClassMapError(f"duplicate class name '{info.name}'")
            if info.id in ids:
                raise ClassMapError(f"duplicate class id {info.id}")
            if len(info.color) != 3 or not all(0 <= c <= 255 for c in info.color):
                raise ClassMapError(f"class '{info.name}': color must be 3 values 0..255, got {info.color}")
            by_name[info.name] = info
            ids.add(info.id)
        object.__setattr__(self, "_by_name", by_name)

    # construction -------------------------------------------------------------------------

    @classmethod
    def from_names(cls, names: Sequence[str], obstacles: Iterable[str] = (),
                   colors: Sequence[Sequence[int]] | None = None, model_name: str = "") -> ClassMap:
        obstacle_set = set(obstacles)
        unknown = obstacle_set - set(names)
        if unknown:
            raise ClassMapError(f"obstacle classes {sorted(unknown)} are not among the classes {list(names)}")
        if colors is not None and len(colors) != len(names):
            raise ClassMapError(f"{len(colors)} colors for {len(names)} classes")
        return cls(tuple(
            ClassInfo(i, str(name), _color_tuple(colors[i]) if colors is not None else default_color(i),
                      name in obstacle_set)
            for i, name in enumerate(names)), model_name)

    @classmethod
    def from_config(cls, entries: Sequence[Any], model_name: str = "") -> ClassMap:
        """From a model description's `classes:` list: plain names or mappings
        `{name, color: [r, g, b], obstacle: bool, id: int}` (id defaults to the list index)."""
        infos = []
        for index, entry in enumerate(entries):
            if isinstance(entry, str):
                infos.append(ClassInfo(index, entry, default_color(index)))
                continue
            if not isinstance(entry, Mapping) or "name" not in entry:
                raise ClassMapError(f"class entry {index} must be a name or a mapping with 'name', got {entry!r}")
            unknown = set(entry) - {"name", "color", "obstacle", "free", "id"}
            if unknown:
                raise ClassMapError(f"class '{entry['name']}': unknown keys {sorted(unknown)}")
            class_id = int(entry.get("id", index))
            color = _color_tuple(entry["color"]) if "color" in entry else default_color(class_id)
            obstacle = entry.get("obstacle", False)
            if not isinstance(obstacle, (bool, np.bool_)):
                # bool("false") is True: a quoted YAML value would silently mark an obstacle.
                raise ClassMapError(f"class '{entry['name']}': obstacle must be true or false, got {obstacle!r}")
            free = entry.get("free", False)
            if not isinstance(free, (bool, np.bool_)):
                raise ClassMapError(f"class '{entry['name']}': free must be true or false, got {free!r}")
            infos.append(ClassInfo(class_id, str(entry["name"]), color, bool(obstacle), bool(free)))
        return cls(tuple(infos), model_name)

    def with_obstacles(self, names: Iterable[str]) -> ClassMap:
        """The same classes with exactly `names` flagged as obstacles."""
        wanted = set(names)
        unknown = wanted - set(self._by_name)
        if unknown:
            raise ClassMapError(f"unknown obstacle classes {sorted(unknown)}; classes are {self.names}")
        return replace(self, classes=tuple(replace(c, obstacle=c.name in wanted) for c in self.classes))

    def with_free(self, names: Iterable[str]) -> ClassMap:
        """The same classes with exactly `names` flagged as free (drivable) ground."""
        wanted = set(names)
        unknown = wanted - set(self._by_name)
        if unknown:
            raise ClassMapError(f"unknown free classes {sorted(unknown)}; classes are {self.names}")
        return replace(self, classes=tuple(replace(c, free=c.name in wanted) for c in self.classes))

    # queries --------------------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.classes]

    @property
    def obstacle_names(self) -> list[str]:
        return [c.name for c in self.classes if c.obstacle]

    @property
    def free_names(self) -> list[str]:
        return [c.name for c in self.classes if c.free]

    @property
    def num_outputs(self) -> int:
        """How many output channels a logits/probabilities model with these classes has."""
        return max(c.id for c in self.classes) + 1

    def __len__(self) -> int:
        return len(self.classes)

    def __getitem__(self, name: str) -> ClassInfo:
        return self._by_name[name]

    def palette_lut(self) -> np.ndarray:
        """(256, 3) uint8: mask value -> RGB. Unlabeled and unused ids are black."""
        lut = np.zeros((256, 3), np.uint8)
        for c in self.classes:
            lut[c.id] = c.color
        return lut

    def obstacle_lut(self) -> np.ndarray:
        """(256,) bool: mask value -> is an obstacle class."""
        lut = np.zeros(256, bool)
        for c in self.classes:
            lut[c.id] = c.obstacle
        return lut

    def free_lut(self) -> np.ndarray:
        """(256,) bool: mask value -> is free ground. Unlabeled (255) never is."""
        lut = np.zeros(256, bool)
        for c in self.classes:
            lut[c.id] = c.free
        return lut

    def class_shares(self, labels: np.ndarray) -> dict[str, float]:
        """Fraction of pixels per class name (plus 'unlabeled' when present)."""
        shares = label_shares(labels)
        named = {c.name: shares[c.id] for c in self.classes}
        if shares[UNLABELED]:
            named["unlabeled"] = shares[UNLABELED]
        return named


def label_shares(labels: np.ndarray) -> np.ndarray:
    """(256,) float64: the fraction of `labels`' pixels holding each id (all zero when empty)."""
    counts = np.bincount(np.asarray(labels, np.uint8).ravel(), minlength=256)
    return counts / max(int(labels.size), 1)


def _color_tuple(value: Sequence[int]) -> tuple[int, int, int]:
    # A string has a length too: "255" would otherwise become (2, 5, 5).
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 3:
        raise ClassMapError(f"a color is 3 values [r, g, b], got {value!r}")
    if not all(isinstance(c, numbers.Integral) and not isinstance(c, bool) for c in value):
        raise ClassMapError(f"color values must be integers 0..255, got {list(value)}")
    color = (int(value[0]), int(value[1]), int(value[2]))
    if not all(0 <= c <= 255 for c in color):
        raise ClassMapError(f"color values must be 0..255, got {list(value)}")
    return color
