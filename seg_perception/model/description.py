"""The YAML description that travels beside a user model: preprocessing, output kind, classes.

A model file alone does not say how to feed it or what its channels mean; guessing either
silently gives wrong masks. So the description is validated strictly: an unknown key is
almost always a typo of a known one, and every error names the file and the key.

    name: deeplabv3_mobilenet_voc        # optional, defaults to the file name
    input:
      width: 520
      height: 520
      color_order: rgb                   # rgb | bgr
      scale: 0.00392156862745098         # uint8 * scale, then (x - mean) / std
      mean: [0.485, 0.456, 0.406]
      std: [0.229, 0.224, 0.225]
      resize: letterbox                  # stretch | letterbox
      pad_value: 0                       # letterbox fill (uint8)
    output: logits                       # logits | probabilities | sigmoid | binary_logits | labels
    classes:                             # ids = output channel index unless `id:` given
      - background
      - {name: person, color: [220, 20, 60], obstacle: true}
"""
from __future__ import annotations

import difflib
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn, cast

import yaml

from .labels import UNLABELED, ClassMap, ClassMapError
from .base import (COLOR_ORDERS, OUTPUT_KINDS, RESIZE_POLICIES, ColorOrder, ModelLoadError, ModelSpec,
                   OutputKind, ResizePolicy)
from ..wire.errors import bounded, one_line

TOP_LEVEL_KEYS: tuple[str, ...] = ("version", "name", "input", "output", "classes")
FORMAT_VERSION = 1
"""The description format this package reads; `version` absent means 1 (files written before it)."""
INPUT_KEYS: tuple[str, ...] = ("width", "height", "color_order", "scale", "mean", "std", "resize",
                               "pad_value")
CLASS_KEYS: tuple[str, ...] = ("name", "color", "obstacle", "free", "id")
MAX_DESCRIPTION_BYTES = 1_000_000
"""A description is a few hundred bytes; a thousand classes fit in 100 KB."""
DESCRIPTION_SUFFIXES: tuple[str, ...] = (".yaml", ".yml")
# Stripped from a description's file name to get the default model name ("deeplab.onnx.yaml").
_MODEL_SUFFIXES: tuple[str, ...] = (".onnx", ".pt", ".ts", ".torchscript")


def find_description(model_path: str | Path, explicit: str | None) -> Path | None:
    """The description for `model_path`: `explicit` when given (even if missing, so the caller
    reports that exact path), else `<model>.yaml` or `<stem>.yaml` (or .yml) beside the model."""
    if explicit is not None and explicit.strip():
        return Path(explicit.strip()).expanduser()
    model = Path(model_path).expanduser()
    candidates = [model.with_name(model.name + suffix) for suffix in DESCRIPTION_SUFFIXES]
    candidates += [model.with_suffix(suffix) for suffix in DESCRIPTION_SUFFIXES]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return None


def load_description(path: str | Path) -> ModelSpec:
    """Read and validate a description file. Every problem is a ModelLoadError naming the file."""
    path = Path(path).expanduser()
    source = str(path)
    if not path.is_file():
        raise ModelLoadError(source, "description file not found" if not path.exists()
                             else "description path is not a regular file")
    try:
        size = path.stat().st_size
        if size > MAX_DESCRIPTION_BYTES:
            raise ModelLoadError(source, f"the description file is {size} bytes, more than a description "
                                         f"needs ({MAX_DESCRIPTION_BYTES})")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelLoadError(source, f"cannot read the description file ({exc})") from exc
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ModelLoadError(source, f"not valid YAML: {one_line(exc)}") from exc
    if data is None:
        raise ModelLoadError(source, "the description file is empty")
    if not isinstance(data, Mapping):
        raise ModelLoadError(source, f"the description must be a mapping of keys {list(TOP_LEVEL_KEYS)}, "
                                     f"got a {type(data).__name__}")
    return spec_from_dict(data, source)


def spec_from_dict(data: Mapping[str, Any], source: str, default_name: str | None = None) -> ModelSpec:
    """Validate a parsed description. `source` names the file in errors; the model name defaults
    to `default_name`, else to the file name without its .yaml and model suffixes."""
    checker = _Checker(source)
    # The version first: a newer file's unknown keys are explained by its version, not reported one by one.
    version = data.get("version", FORMAT_VERSION)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        checker.fail("version", f"must be a positive integer (this package reads {FORMAT_VERSION}), got {version!r}")
    if version > FORMAT_VERSION:
        checker.fail("version", f"is {version}, newer than the description format this seg_perception supports "
                                f"({FORMAT_VERSION}): update seg_perception, or write the file for version "
                                f"{FORMAT_VERSION} (docs/models.md)")
    checker.no_unknown_keys(data, TOP_LEVEL_KEYS, "")
    for required in ("input", "classes"):
        if required not in data:
            checker.fail(required, "is missing")

    name = data.get("name", default_name if default_name is not None else _name_from_source(source))
    if not isinstance(name, str) or not name.strip():
        checker.fail("name", f"must be a non-empty string, got {name!r}")
    name = name.strip()

    section = data["input"]
    if not isinstance(section, Mapping):
        checker.fail("input", f"must be a mapping with keys {list(INPUT_KEYS)}, got {section!r}")
    checker.no_unknown_keys(section, INPUT_KEYS, "input")
    for required in ("width", "height"):
        if required not in section:
            checker.fail(f"input.{required}", "is missing")
    width = checker.positive_int(section["width"], "input.width")
    height = checker.positive_int(section["height"], "input.height")
    color_order = cast(ColorOrder, checker.choice(section.get("color_order", "rgb"), COLOR_ORDERS,
                                                  "input.color_order"))
    scale = checker.positive_number(section.get("scale", 1.0 / 255.0), "input.scale")
    mean = checker.triple(section.get("mean", (0.0, 0.0, 0.0)), "input.mean", positive=False)
    std = checker.triple(section.get("std", (1.0, 1.0, 1.0)), "input.std", positive=True)
    resize = cast(ResizePolicy, checker.choice(section.get("resize", "stretch"), RESIZE_POLICIES,
                                               "input.resize"))
    pad_value = checker.integer(section.get("pad_value", 0), "input.pad_value", 0, 255)

    output = cast(OutputKind, checker.choice(data.get("output", "logits"), OUTPUT_KINDS, "output"))
    classes = checker.class_map(data["classes"], name)

    try:
        return ModelSpec(name=name, input_width=width, input_height=height, classes=classes,
                         output=output, color_order=color_order, scale=scale, mean=mean, std=std,
                         resize=resize, pad_value=pad_value)
    except ValueError as exc:
        # The only cross-field rule ModelSpec adds is single-channel outputs needing ids {0, 1}.
        raise ModelLoadError(source, f"description keys 'output' and 'classes' disagree: {exc}") from exc


class _Checker:
    """Type checks that raise ModelLoadError naming the source file and the key path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, problem: str) -> NoReturn:
        raise ModelLoadError(self.source, f"description key '{key}' {problem}")

    def no_unknown_keys(self, data: Mapping[Any, Any], allowed: Sequence[str], where: str) -> None:
        unknown = [str(key) for key in data if key not in allowed]
        if unknown:
            key = f"{where}.{unknown[0]}" if where else unknown[0]
            close = difflib.get_close_matches(unknown[0], allowed, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            self.fail(key, f"is not a known key{hint}; allowed{' in ' + where if where else ''}: "
                           f"{list(allowed)}")

    def integer(self, value: Any, key: str, low: int, high: int) -> int:
        # bool is an int subclass, and YAML turns `yes`/`on` into True: never a valid number here.
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, f"must be an integer {low}..{high}, got {value!r}")
        if not low <= value <= high:
            self.fail(key, f"must be {low}..{high}, got {value}")
        return value

    def positive_int(self, value: Any, key: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            self.fail(key, f"must be a positive integer, got {value!r}")
        return value

    def number(self, value: Any, key: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(key, f"must be a number, got {value!r}")
        if value != value or value in (float("inf"), float("-inf")):
            self.fail(key, f"must be finite, got {value}")
        return float(value)

    def positive_number(self, value: Any, key: str) -> float:
        number = self.number(value, key)
        if number <= 0:
            self.fail(key, f"must be positive, got {number}")
        return number

    def triple(self, value: Any, key: str, positive: bool) -> tuple[float, float, float]:
        """Three per-channel numbers (in `color_order`), or one number for all three channels."""
        if not isinstance(value, (list, tuple)):
            # A scalar is unambiguous ("mean: 0.5"); reject strings and mappings explicitly.
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                self.fail(key, f"must be a list of 3 numbers (one per channel), got {value!r}")
            value = [value, value, value]
        if len(value) != 3:
            self.fail(key, f"must have 3 values (one per channel), got {len(value)}: {list(value)}")
        numbers = [self.number(item, f"{key}[{index}]") for index, item in enumerate(value)]
        if positive and any(n <= 0 for n in numbers):
            self.fail(key, f"values must be positive, got {numbers}")
        return (numbers[0], numbers[1], numbers[2])

    def choice(self, value: Any, allowed: Sequence[str], key: str) -> str:
        if not isinstance(value, str) or value.strip().lower() not in allowed:
            self.fail(key, f"must be one of {list(allowed)}, got {value!r}")
        return value.strip().lower()

    def class_map(self, value: Any, model_name: str) -> ClassMap:
        if not isinstance(value, list) or not value:
            self.fail("classes", f"must be a non-empty list of class names or mappings, got {value!r}")
        for index, entry in enumerate(value):
            where = f"classes[{index}]"
            if isinstance(entry, Mapping):
                self.no_unknown_keys(entry, CLASS_KEYS, where)
                if "name" not in entry:
                    self.fail(f"{where}.name", "is missing")
                self.class_name(entry["name"], f"{where}.name")
                if "color" in entry:
                    self.color(entry["color"], f"{where}.color")
                if "obstacle" in entry and not isinstance(entry["obstacle"], bool):
                    self.fail(f"{where}.obstacle", f"must be true or false, got {entry['obstacle']!r}")
                if "free" in entry and not isinstance(entry["free"], bool):
                    self.fail(f"{where}.free", f"must be true or false, got {entry['free']!r}")
                if "id" in entry:
                    self.integer(entry["id"], f"{where}.id", 0, UNLABELED - 1)
            else:
                self.class_name(entry, where)
        try:
            return ClassMap.from_config(value, model_name)
        except ClassMapError as exc:
            # Left for ClassMap to decide: duplicate names or ids.
            self.fail("classes", str(exc))

    def class_name(self, value: Any, key: str) -> None:
        if not isinstance(value, str) or not value.strip():
            # Unquoted YAML names like `no`, `on` or `1` parse as booleans or numbers.
            self.fail(key, f"must be a non-empty string (quote names YAML reads as numbers or "
                           f"booleans), got {value!r}")

    def color(self, value: Any, key: str) -> None:
        if (not isinstance(value, (list, tuple)) or len(value) != 3
                or any(isinstance(c, bool) or not isinstance(c, int) or not 0 <= c <= 255 for c in value)):
            self.fail(key, f"must be [r, g, b] with 3 integers 0..255, got {value!r}")


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys (PyYAML silently keeps the last one, which hides
    e.g. a second `output:` line that the author believes is in effect) and aliases: `*name`
    repeats a node by reference, so a few hundred bytes of nested aliases stand for a value of
    millions of elements that any walk over it (a check, an error text quoting it) expands. A
    description has nothing worth repeating."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in a model description", event.start_mark)
        return super().compose_node(parent, index)


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if not isinstance(key, Hashable):
            continue  # SafeLoader's own construct_mapping reports unhashable keys
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _name_from_source(source: str) -> str:
    name = Path(source).name
    for suffixes in (DESCRIPTION_SUFFIXES, _MODEL_SUFFIXES):
        for suffix in suffixes:
            if name.lower().endswith(suffix) and len(name) > len(suffix):
                name = name[: -len(suffix)]
                break
    return name

