"""index.csv (one row per written frame, appended as frames finish) and classes.json.

index.csv is also the record --resume reads: a frame is done when its row is there, so an
interrupted run leaves a valid index, and a row is written only after the frame's files.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..model.labels import UNLABELED, ClassMap, label_shares
from ..engine.pipeline import SegmentationOptions
from .frames import FrameRef
from .segment import FrameResult

INDEX_FILE = "index.csv"
CLASSES_FILE = "classes.json"


class ResumeError(ValueError):
    """The output folder cannot be resumed with these settings."""


def settings_document(model: str, options: SegmentationOptions, output_format: str = "png") -> dict[str, Any]:
    """The part of classes.json known from the command line alone (checked before loading)."""
    size = options.output_size
    return {
        "model": model,
        "options": {
            "output_size": size if isinstance(size, str) else f"{size[0]}x{size[1]}",
            "confidence_threshold": options.confidence_threshold,
        },
        "format": output_format,
    }


def classes_document(class_map: ClassMap, model: str, options: SegmentationOptions,
                     output_format: str = "png") -> dict[str, Any]:
    settings = settings_document(model, options, output_format)
    return {
        "model": model,
        "model_name": class_map.model_name,
        "unlabeled_id": UNLABELED,
        "classes": [{"id": c.id, "name": c.name, "color": list(c.color), "obstacle": c.obstacle}
                    for c in class_map.classes],
        "options": settings["options"],
        "format": output_format,
    }


def check_resume(out: Path, document: dict[str, Any]) -> None:
    """--resume refused before the model is loaded: `document` (settings_document) holds the
    settings known from the command line alone; the class list is checked once loaded."""
    path = out / CLASSES_FILE
    if not path.is_file():
        return
    try:
        before = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ResumeError(f"cannot resume '{out}': {path} is unreadable ({exc}); use a new --out") from None
    changed = sorted(k for k in document if before.get(k) != document[k])
    if changed:
        raise ResumeError(f"cannot resume '{out}': it was written with other settings ({', '.join(changed)} "
                          f"differ in {CLASSES_FILE}); use a new --out or the same settings")


def write_classes(out: Path, document: dict[str, Any], resume: bool) -> None:
    path = out / CLASSES_FILE
    if resume and path.is_file():
        before = json.loads(path.read_text())
        changed = sorted(k for k in set(before) | set(document) if before.get(k) != document.get(k))
        if changed:
            raise ResumeError(f"cannot resume '{out}': it was written with other settings ({', '.join(changed)} "
                              f"differ in {CLASSES_FILE}); use a new --out or the same settings")
    path.write_text(json.dumps(document, indent=2) + "\n")


def index_header(class_map: ClassMap) -> list[str]:
    return ["name", "source", "stamp", "width", "height", "source_width", "source_height", "inference_ms",
            *(f"share_{c.name}" for c in class_map.classes), "share_unlabeled",
            "mean_confidence", "low_confidence_share", "origin"]


def class_shares(labels: np.ndarray, class_map: ClassMap) -> list[float]:
    """Fraction of pixels per class in class-map order, then unlabeled."""
    shares = label_shares(labels)
    return [float(shares[c.id]) for c in class_map.classes] + [float(shares[UNLABELED])]


class IndexFile:
    """index.csv, opened for appending; on resume its rows are what was done before."""

    def __init__(self, out: Path, class_map: ClassMap, resume: bool) -> None:
        self.path = out / INDEX_FILE
        self.class_map = class_map
        self.header = index_header(class_map)
        self.rows: list[dict[str, str]] = self._read() if resume and self.path.is_file() else []
        if not self.rows:
            with open(self.path, "w", newline="") as f:
                csv.writer(f).writerow(self.header)
        self._file = open(self.path, "a", newline="")
        self._writer = csv.writer(self._file)

    def _read(self) -> list[dict[str, str]]:
        text = self.path.read_text()
        if text and not text.endswith("\n"):
            # Killed in the middle of a row: that frame was not finished, so it is done again.
            text = text[:text.rfind("\n") + 1]
            self.path.write_text(text)
        lines = text.splitlines()
        if not lines:
            return []
        found = next(csv.reader([lines[0]]))
        if found != self.header:
            raise ResumeError(f"cannot resume: {self.path} has other columns than this model's "
                              f"({', '.join(found[:12])}...); use a new --out")
        return list(csv.DictReader(lines))

    @property
    def names(self) -> list[str]:
        return [r["name"] for r in self.rows]

    def add(self, name: str, ref: FrameRef, result: FrameResult) -> dict[str, str]:
        out_w, out_h = result.size
        src_w, src_h = result.source_size
        shares = class_shares(result.labels, self.class_map)
        values = [name, ref.source, ref.stamp, str(out_w), str(out_h), str(src_w), str(src_h),
                  f"{result.inference_ms:.3f}", *(f"{s:.6f}" for s in shares),
                  f"{result.uncertainty.mean_confidence:.6f}", f"{result.uncertainty.low_confidence_share:.6f}",
                  ref.origin]
        self._writer.writerow(values)
        self._file.flush()
        row = dict(zip(self.header, values))
        self.rows.append(row)
        return row

    def close(self) -> None:
        self._file.close()
