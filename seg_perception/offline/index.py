"""index.csv (one row per written frame, appended as frames finish) and classes.json.

index.csv is also the record --resume reads: a frame is done when its row is there, so an
interrupted run leaves a valid index, and a row is written only after the frame's files.
"""
from __future__ import annotations

import csv
import io
import json
import math
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np

from ..model.labels import UNLABELED, ClassMap, label_shares
from ..wire.text import wire_text
from ..engine.pipeline import SegmentationOptions
from .frames import FrameRef
from .segment import FrameResult

INDEX_FILE = "index.csv"
CLASSES_FILE = "classes.json"


class ResumeError(ValueError):
    """The output folder cannot be resumed with these settings."""


# Characters a frame name must not carry: it becomes a file name and a line of index.csv, of
# CVAT's ImageSets list and of review.csv, read back by tools that split at any line break.
_LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


def safe_frame_name(name: str) -> str:
    """`name` with every control character, line or paragraph separator, path separator and
    invisible format character replaced by '_' (deterministic, so a resumed run names each
    frame as before); '' becomes 'frame'."""
    safe = "".join("_" if (c in _LINE_BREAKS or c in "/\\" or unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp"))
                   else c for c in name)
    return safe.strip() or "frame"


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
    check_classes(out, document, resume)
    (out / CLASSES_FILE).write_text(json.dumps(document, indent=2) + "\n")


def check_classes(out: Path, document: dict[str, Any], resume: bool) -> None:
    """Raise ResumeError when a resumed folder was written with other settings."""
    path = out / CLASSES_FILE
    if resume and path.is_file():
        before = json.loads(path.read_text())
        changed = sorted(k for k in set(before) | set(document) if before.get(k) != document.get(k))
        if changed:
            raise ResumeError(f"cannot resume '{out}': it was written with other settings ({', '.join(changed)} "
                              f"differ in {CLASSES_FILE}); use a new --out or the same settings")


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
        self._file: Any = None
        self._writer: Any = None

    def _open(self) -> None:
        """Created (or appended to) with the first row: a run that segments nothing writes nothing."""
        if not self.rows:
            with open(self.path, "w", newline="", encoding="utf-8") as f:
                csv.writer(f).writerow(self.header)
        self._file = open(self.path, "a", newline="", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._writer = csv.writer(self._file)

    def _read(self) -> list[dict[str, str]]:
        """The rows of a previous run, every one checked now: a damaged index is refused before
        any frame is segmented, not found by the review after all of them were."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ResumeError(f"cannot resume: {self.path} cannot be read ({exc}); use a new --out") from exc
        if text and not text.endswith("\n"):
            # Killed in the middle of a row: that frame was not finished, so it is done again.
            text = text[:text.rfind("\n") + 1]
            self.path.write_text(text, encoding="utf-8")
        # csv's own reader: str.splitlines() would also split at U+2028 and inside quoted fields.
        try:
            table = list(csv.reader(io.StringIO(text, newline="")))
        except csv.Error as exc:
            raise ResumeError(f"cannot resume: {self.path} is not valid CSV ({exc}); use a new --out") from exc
        if not table:
            return []
        found = table[0]
        if found != self.header:
            raise ResumeError(f"cannot resume: {self.path} has other columns than this model's "
                              f"({', '.join(found[:12])}...); use a new --out")
        rows = []
        for number, values in enumerate(table[1:], 2):
            problem = self._row_problem(values)
            if problem:
                raise ResumeError(f"cannot resume: {self.path} line {number} is damaged ({problem}); "
                                  "use a new --out, or delete that row and the rows after it")
            rows.append(dict(zip(self.header, values)))
        return rows

    def _row_problem(self, values: list[str]) -> str:
        if len(values) != len(self.header):
            return f"{len(values)} fields, expected {len(self.header)}"
        row = dict(zip(self.header, values))
        if not row["name"] or safe_frame_name(row["name"]) != row["name"]:
            return f"frame name {wire_text(row['name'])} is empty or not a safe name"
        for key in ("width", "height", "source_width", "source_height"):
            if not (row[key].isascii() and row[key].isdigit()):
                return f"{key} {wire_text(row[key])} is not a whole number"
        for key in ("inference_ms", "mean_confidence", "low_confidence_share",
                    *(k for k in self.header if k.startswith("share_"))):
            try:
                if not math.isfinite(float(row[key])):
                    raise ValueError
            except ValueError:
                return f"{key} {wire_text(row[key])} is not a finite number"
        return ""

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
        if self._writer is None:
            self._open()
        self._writer.writerow(values)
        self._file.flush()
        row = dict(zip(self.header, values))
        self.rows.append(row)
        return row

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
