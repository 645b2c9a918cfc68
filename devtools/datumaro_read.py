"""Read a data set with Datumaro, the library CVAT's importers run, and dump what it found.

Runs in build/venv-datumaro (scripts/setup_datumaro.sh), not the node's venv: it imports only
Datumaro and numpy. Usage: python datumaro_read.py DATASET_DIR FORMAT OUT_DIR, where FORMAT is a
Datumaro format name ('voc', 'voc_segmentation', 'coco', 'coco_instances'). Writes OUT_DIR/
dataset.json (the formats Datumaro detects there, label names in order, and per item its
annotations: type, label name, group, polygon points) and OUT_DIR/masks.npz (each mask
annotation's binary image, keyed '<item id>/<annotation index>').
"""
from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np


def main(argv: list[str]) -> int:
    from datumaro.components.annotation import AnnotationType
    from datumaro.components.dataset import Dataset
    from datumaro.components.environment import Environment

    path, fmt, out = argv[1], argv[2], Path(argv[3])
    detected = Environment().detect_dataset(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = Dataset.import_from(path, fmt)
        labels = [label.name for label in dataset.categories()[AnnotationType.label]]
        items: list[dict[str, Any]] = []
        masks: dict[str, np.ndarray] = {}
        for item in dataset:
            annotations = []
            for index, ann in enumerate(item.annotations):
                entry: dict[str, Any] = {"type": ann.type.name, "group": int(ann.group),
                                         "label": labels[ann.label] if ann.label is not None else None}
                if ann.type == AnnotationType.mask:
                    masks[f"{item.id}/{index}"] = np.asarray(ann.image, dtype=bool)
                elif ann.type == AnnotationType.polygon:
                    entry["points"] = [float(p) for p in ann.points]
                annotations.append(entry)
            media = getattr(item.media, "path", None)
            items.append({"id": item.id, "subset": item.subset, "media": media, "annotations": annotations})
    out.mkdir(parents=True, exist_ok=True)
    (out / "dataset.json").write_text(json.dumps({
        "detected": detected, "labels": labels, "items": items,
        "warnings": [str(w.message) for w in caught]}, indent=1))
    np.savez_compressed(out / "masks.npz", **masks)  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
