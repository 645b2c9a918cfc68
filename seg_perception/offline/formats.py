"""Per-frame output formats of segment_offline: png, CVAT "Segmentation mask 1.1", COCO.

Every writer is told the names already done (--resume) when it starts, writes one frame at a
time, and finishes with the names of every written frame in index order.

- png:  <name>_mask.png (class ids, mono8, 255 = unlabeled), <name>_confidence.png (mono8),
        with --overlay / --color <name>_overlay.png / <name>_color.png.
- cvat: CVAT's "Segmentation mask 1.1" import layout, i.e. Pascal VOC segmentation as read by
        Datumaro's `voc` importer (what CVAT runs for it): labelmap.txt (`name:r,g,b:parts:actions`),
        SegmentationClass/<name>.png painted in those colors, SegmentationObject/<name>.png with
        one instance per class present (VOC palette, 0 = background), ImageSets/Segmentation/
        default.txt (one name per line), plus the frames in JPEGImages/<name>.jpg so a task can be
        made from them (CVAT matches masks to task images by file name without extension).
        Without SegmentationObject/ Datumaro takes its class-only path and annotates every color
        present, `background` included; with it, only instances become annotations, so background
        (black: unlabeled pixels, and a class named "background") yields none. Any other class keeps
        its color unless black or already taken, then it gets the first free VOC palette color.
        cvat_labels.json lists the labels the CVAT project needs (every class but background), for
        its Raw label editor. Class names Datumaro's labelmap cannot carry are refused (FormatError).
- coco: annotations/instances_default.json (the layout of CVAT's "COCO 1.0" importer) with
        `images` (file_name = images/<name>.jpg's base name), `categories` (id = class id + 1, COCO
        keeps 0 free) and one `annotations` entry per class present in a frame: compressed RLE
        `segmentation` (pycocotools), or polygons with --coco-polygons (for readers without RLE),
        `area`, `bbox` [x, y, w, h], `iscrowd`; the frames in images/<name>.jpg. Frames are appended
        to coco_frames.jsonl as they finish; the annotation file is rebuilt from it at the end of
        every run (also an interrupted one), in index order.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from ..model.labels import UNLABELED, ClassMap
from .segment import FrameResult

FORMATS = ("png", "cvat", "coco")
JPEG_QUALITY = 95


class FormatError(ValueError):
    """The run cannot be written in the chosen format (a class name the format cannot carry...)."""


class FrameWriter(Protocol):
    def start(self, done: Sequence[str]) -> None:
        """`done`: names of the frames index.csv already holds (a resumed run), in order."""
        ...

    def write(self, name: str, result: FrameResult) -> None:
        ...

    def finish(self, names: Sequence[str]) -> None:
        """`names`: every frame in index.csv, in order."""
        ...


def write_png(path: Path, image: np.ndarray) -> None:
    """Lossless PNG of a mono8 or RGB array."""
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), image):
        raise OSError(f"cannot write '{path}'")


def write_jpeg(path: Path, rgb: np.ndarray) -> None:
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
        raise OSError(f"cannot write '{path}'")


def frame_at_mask_size(result: FrameResult) -> np.ndarray:
    """The decoded frame at the size of its mask: annotation tools want both the same size."""
    assert result.frame is not None, "the segmenter was not asked to keep frames"
    width, height = result.size
    if result.frame.shape[:2] == (height, width):
        return result.frame
    return cv2.resize(result.frame, (width, height), interpolation=cv2.INTER_AREA)


def _rewrite_lines(path: Path, lines: Sequence[str]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(f"{line}\n" for line in lines))
    tmp.replace(path)


class PngWriter:
    def __init__(self, out: Path, color: bool = False) -> None:
        self.out = out
        self.color = color
        """Write <name>_color.png (the result may hold a color mask for --bag-out only)."""

    def start(self, done: Sequence[str]) -> None:
        return None

    def write(self, name: str, result: FrameResult) -> None:
        write_png(self.out / f"{name}_mask.png", result.labels)
        write_png(self.out / f"{name}_confidence.png", result.confidence)
        if result.overlay is not None:
            write_png(self.out / f"{name}_overlay.png", result.overlay)
        if self.color and result.color is not None:
            write_png(self.out / f"{name}_color.png", result.color)

    def finish(self, names: Sequence[str]) -> None:
        return None


# CVAT -----------------------------------------------------------------------------------------

CVAT_BACKGROUND = "background"
BLACK = (0, 0, 0)


def voc_color(index: int) -> tuple[int, int, int]:
    """Pascal VOC's palette: the bits of `index` spread over r, g, b from the high bit down."""
    r = g = b = 0
    for shift in range(7, -1, -1):
        r |= (index & 1) << shift
        g |= ((index >> 1) & 1) << shift
        b |= ((index >> 2) & 1) << shift
        index >>= 3
    return (r, g, b)


def labelmap_problem(name: str) -> str:
    """Why Datumaro's labelmap.txt reader would not read `name` back as written ('' when it would):
    it strips each line, skips lines starting with '#', splits on ':' with no escape."""
    if not name.strip():
        return "it is empty"
    if ":" in name:
        return "it contains ':', the field separator of labelmap.txt (Datumaro has no escape for it)"
    if "\n" in name or "\r" in name:
        return "it contains a line break"
    if name[0].isspace():
        return "it starts with white space, which Datumaro strips"
    if name.startswith("#"):
        return "it starts with '#', which makes its labelmap.txt line a comment"
    return ""


def cvat_labels(class_map: ClassMap) -> tuple[list[tuple[str, tuple[int, int, int]]], np.ndarray]:
    """(labelmap entries in file order, (256, 3) uint8 lut: mask value -> color in the PNG).
    Raises FormatError naming a class whose name labelmap.txt cannot carry."""
    for info in class_map.classes:
        problem = labelmap_problem(info.name)
        if problem:
            raise FormatError(f"--format cvat: class {info.id} {info.name!r} cannot be written to labelmap.txt: "
                              f"{problem}; rename it in the model description (--description)")
    entries = [(CVAT_BACKGROUND, BLACK)]
    used = {BLACK}
    lut = np.zeros((256, 3), np.uint8)  # unlabeled and unused ids stay black: background
    spare = (voc_color(i) for i in range(1, 1 << 24))
    for info in class_map.classes:
        if info.name == CVAT_BACKGROUND:
            continue
        color = info.color
        while color in used:
            color = next(spare)
        used.add(color)
        entries.append((info.name, (int(color[0]), int(color[1]), int(color[2]))))
        lut[info.id] = color
    return entries, lut


def instance_lut(labels: np.ndarray, foreground: np.ndarray) -> np.ndarray:
    """(256, 3) uint8 lut: mask value -> SegmentationObject color. One instance per foreground
    class present, numbered 1, 2, ... in class id order and painted in VOC's palette (Datumaro's
    instance colormap); background, unlabeled and absent ids stay black, instance 0."""
    present = np.zeros(256, bool)
    present[np.unique(labels)] = True
    lut = np.zeros((256, 3), np.uint8)
    for instance, class_id in enumerate(np.flatnonzero(present & foreground).tolist(), 1):
        lut[class_id] = voc_color(instance)
    return lut


class CvatWriter:
    LABELMAP = "labelmap.txt"
    LIST = Path("ImageSets") / "Segmentation" / "default.txt"
    MASKS = "SegmentationClass"
    OBJECTS = "SegmentationObject"
    IMAGES = "JPEGImages"

    def __init__(self, out: Path, class_map: ClassMap) -> None:
        self.out = out
        self.entries, self.lut = cvat_labels(class_map)
        # Classes that become annotations: black in the class PNG is background.
        self.foreground = (self.lut != 0).any(axis=1)

    def start(self, done: Sequence[str]) -> None:
        (self.out / self.MASKS).mkdir(exist_ok=True)
        (self.out / self.OBJECTS).mkdir(exist_ok=True)
        (self.out / self.IMAGES).mkdir(exist_ok=True)
        (self.out / self.LIST).parent.mkdir(parents=True, exist_ok=True)
        lines = ["# label:color_rgb:parts:actions", *(f"{n}:{r},{g},{b}::" for n, (r, g, b) in self.entries)]
        _rewrite_lines(self.out / self.LABELMAP, lines)
        raw = [{"name": n, "color": "#{:02x}{:02x}{:02x}".format(*c), "type": "any", "attributes": []}
               for n, c in self.entries if n != CVAT_BACKGROUND]
        (self.out / "cvat_labels.json").write_text(json.dumps(raw, indent=2) + "\n")
        # A frame listed but not indexed (killed in between) is written again: list only indexed ones.
        _rewrite_lines(self.out / self.LIST, done)
        self._list = open(self.out / self.LIST, "a")

    def write(self, name: str, result: FrameResult) -> None:
        write_png(self.out / self.MASKS / f"{name}.png", self.lut[result.labels])
        write_png(self.out / self.OBJECTS / f"{name}.png", instance_lut(result.labels, self.foreground)[result.labels])
        write_jpeg(self.out / self.IMAGES / f"{name}.jpg", frame_at_mask_size(result))
        self._list.write(f"{name}\n")
        self._list.flush()

    def finish(self, names: Sequence[str]) -> None:
        self._list.close()


# COCO -----------------------------------------------------------------------------------------

def polygons(binary: np.ndarray) -> list[list[float]]:
    """COCO polygons ([x1, y1, x2, y2, ...] in pixel coordinates) of the outer contours of
    `binary`. Polygons cannot hold holes: a hole is filled; a region too thin for three corners is
    left out."""
    contours, _ = cv2.findContours(binary.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [c.reshape(-1).astype(float).tolist() for c in contours if len(c) >= 3]


def coco_annotations(labels: np.ndarray, class_map: ClassMap, as_polygons: bool = False) -> list[dict[str, Any]]:
    """One COCO annotation (without ids) per class present in `labels`: compressed RLE
    (iscrowd 0, as pycocotools writes it for a mask), or polygons. `area` and `bbox` are the
    class's pixels either way."""
    from pycocotools import mask as coco_mask

    present = set(np.unique(labels).tolist()) - {UNLABELED}
    annotations = []
    for info in class_map.classes:
        if info.id not in present:
            continue
        binary = labels == info.id
        rle = coco_mask.encode(np.asfortranarray(binary, dtype=np.uint8))
        segmentation: Any = {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}
        if as_polygons:
            segmentation = polygons(binary)
            if not segmentation:
                continue
        annotations.append({
            "category_id": info.id + 1,
            "segmentation": segmentation,
            "area": int(coco_mask.area(rle)),
            "bbox": [float(v) for v in coco_mask.toBbox(rle)],
            "iscrowd": 0,
        })
    return annotations


class CocoWriter:
    STAGING = "coco_frames.jsonl"
    RESULT = Path("annotations") / "instances_default.json"
    """Where CVAT's COCO 1.0 importer (Datumaro's `coco` format) looks: annotations/instances_<subset>.json."""
    IMAGES = "images"

    def __init__(self, out: Path, class_map: ClassMap, as_polygons: bool = False) -> None:
        self.out = out
        self.class_map = class_map
        self.as_polygons = as_polygons

    def _records(self) -> dict[str, dict[str, Any]]:
        path = self.out / self.STAGING
        records: dict[str, dict[str, Any]] = {}
        if path.is_file():
            for line in path.read_text().splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # the last line of a killed run
                records[record["name"]] = record
        return records

    def start(self, done: Sequence[str]) -> None:
        (self.out / self.IMAGES).mkdir(exist_ok=True)
        records = self._records()
        kept = [json.dumps(records[n]) for n in done if n in records]
        _rewrite_lines(self.out / self.STAGING, kept)
        self._staging = open(self.out / self.STAGING, "a")

    def write(self, name: str, result: FrameResult) -> None:
        write_jpeg(self.out / self.IMAGES / f"{name}.jpg", frame_at_mask_size(result))
        width, height = result.size
        record = {"name": name, "width": width, "height": height,
                  "annotations": coco_annotations(result.labels, self.class_map, self.as_polygons)}
        self._staging.write(json.dumps(record) + "\n")
        self._staging.flush()

    def finish(self, names: Sequence[str]) -> None:
        self._staging.close()
        records = self._records()
        images: list[dict[str, Any]] = []
        annotations: list[dict[str, Any]] = []
        for image_id, name in enumerate((n for n in names if n in records), 1):
            record = records[name]
            images.append({"id": image_id, "file_name": f"{name}.jpg", "width": record["width"],
                           "height": record["height"]})
            for ann in record["annotations"]:
                annotations.append({"id": len(annotations) + 1, "image_id": image_id, **ann})
        document = {
            "info": {"description": "segment_offline pre-labels", "version": "1.0"},
            "images": images,
            "categories": [{"id": c.id + 1, "name": c.name, "supercategory": "", "color": list(c.color)}
                           for c in self.class_map.classes],
            "annotations": annotations,
        }
        result = self.out / self.RESULT
        result.parent.mkdir(exist_ok=True)
        tmp = result.with_name(result.name + ".tmp")
        tmp.write_text(json.dumps(document) + "\n")
        tmp.replace(result)


def make_writer(output_format: str, out: Path, class_map: ClassMap, color: bool = False,
                coco_polygons: bool = False) -> FrameWriter:
    if output_format == "png":
        return PngWriter(out, color)
    if output_format == "cvat":
        return CvatWriter(out, class_map)
    if output_format == "coco":
        return CocoWriter(out, class_map, coco_polygons)
    raise ValueError(f"unknown format '{output_format}'; formats: {', '.join(FORMATS)}")



PNG_SUFFIXES = ("_mask.png", "_confidence.png", "_overlay.png", "_color.png")


def previous_outputs(out: Path) -> list[Path]:
    """Files in `out` that a segment_offline run of any format writes (index and class files, per
    frame outputs): what an earlier run left. Anything else in the folder is not listed."""
    from .index import CLASSES_FILE, INDEX_FILE
    from .review import REVIEW_FILE

    if not out.is_dir():
        return []
    found = [out / name for name in (CLASSES_FILE, INDEX_FILE, REVIEW_FILE, CvatWriter.LABELMAP, "cvat_labels.json",
                                     CocoWriter.STAGING, CocoWriter.RESULT) if (out / name).is_file()]
    found += sorted(p for p in out.iterdir() if p.is_file() and p.name.endswith(PNG_SUFFIXES))
    for folder, suffix in ((CvatWriter.MASKS, ".png"), (CvatWriter.IMAGES, ".jpg"), (CocoWriter.IMAGES, ".jpg"),
                           ("ImageSets/Segmentation", ".txt")):
        if (out / folder).is_dir():
            found += sorted(p for p in (out / folder).iterdir() if p.is_file() and p.suffix == suffix)
    return found


def remove_previous_outputs(out: Path) -> int:
    """--overwrite: delete what previous_outputs lists (and the folders it empties); returns the count."""
    files = previous_outputs(out)
    for path in files:
        path.unlink()
    for folder in (CvatWriter.MASKS, CvatWriter.IMAGES, CocoWriter.IMAGES, "ImageSets/Segmentation", "ImageSets"):
        try:
            (out / folder).rmdir()  # only when empty
        except OSError:
            pass
    return len(files)
