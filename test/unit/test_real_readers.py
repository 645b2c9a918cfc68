"""segment_offline's outputs read by the tools users load them with, not by our own parsing:
Datumaro (the library CVAT's "Segmentation mask 1.1" and "COCO 1.0" importers run) on the CVAT
and COCO exports zipped as the README says, and the `mcap` + `mcap-ros2-support` readers and
rosbags on --bag-out, with its metadata.yaml checked against what rosbag2 (Jazzy) decodes.

Datumaro lives in build/venv-datumaro (scripts/setup_datumaro.sh: its OpenCV pin would change the
shared venv) and runs here as a subprocess (devtools/datumaro_read.py); without that venv, or
without mcap, the tests that need them are skipped with the reason.
"""
from __future__ import annotations

import json
import os
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml

from devtools.bags import CAMERA_TOPIC, COMPRESSED_TOPIC, camera_recording, stamp_ns
from devtools.outputs import read_rows, read_unchanged, segment_offline, small_photo, write_photos
from seg_perception.model.labels import ClassMap
from seg_perception.offline.bagout import FILE_PERIOD_NS, FILE_TOPIC
from seg_perception.offline.formats import CvatWriter, FormatError, cvat_labels

ROOT = Path(__file__).resolve().parents[2]
DATUMARO_PYTHON = ROOT / "build" / "venv-datumaro" / "bin" / "python"
SIZE = (96, 96)
CLASSES = ["background", "person"]  # the selfie model's


def photo(name: str) -> np.ndarray:
    return small_photo(name, SIZE)


segment = segment_offline


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_photos(tmp_path_factory.mktemp("photos"))


@pytest.fixture(scope="module")
def reference(photos: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    """The png masks (class ids, 255 unlabeled: the threshold leaves some) by frame name."""
    out = tmp_path_factory.mktemp("png")
    assert segment(photos, "--out", out, "--confidence-threshold", "0.9") == 0
    masks = {r["name"]: read_unchanged(out / f"{r['name']}_mask.png") for r in read_rows(out / "index.csv")}
    assert any((m == 255).any() for m in masks.values())
    return masks


def zipped_and_extracted(folder: Path, members: list[str], dest: Path) -> Path:
    """`folder`'s `members` zipped as the README tells users to, then extracted as CVAT does."""
    archive = dest.with_suffix(".zip")
    with zipfile.ZipFile(archive, "w") as zf:
        for member in members:
            root = folder / member
            for path in sorted([root] if root.is_file() else root.rglob("*")):
                if path.is_file():
                    zf.write(path, path.relative_to(folder).as_posix())
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(dest)
    return dest


def datumaro(path: Path, fmt: str, out: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    if not DATUMARO_PYTHON.exists():
        pytest.skip(f"Datumaro's venv {DATUMARO_PYTHON.parent.parent} is absent: bash scripts/setup_datumaro.sh")
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "_ROS_WHEELS_BOOTSTRAP_COMPLETE")}
    done = subprocess.run([str(DATUMARO_PYTHON), str(ROOT / "devtools" / "datumaro_read.py"), str(path), fmt, str(out)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    with np.load(out / "masks.npz") as masks:
        return json.loads((out / "dataset.json").read_text()), {k: masks[k] for k in masks.files}


# CVAT "Segmentation mask 1.1" -------------------------------------------------------------------

def test_cvat_export_through_datumaro(photos: Path, reference: dict[str, np.ndarray], tmp_path: Path) -> None:
    out = tmp_path / "cvat"
    assert segment(photos, "--out", out, "--format", "cvat", "--confidence-threshold", "0.9") == 0
    upload = zipped_and_extracted(out, ["labelmap.txt", "ImageSets", "SegmentationClass", "SegmentationObject"],
                                  tmp_path / "prelabels")
    found, masks = datumaro(upload, "voc_segmentation", tmp_path / "read")
    assert "voc_segmentation" in found["detected"]
    assert found["labels"] == CLASSES
    assert not any("only class segmentations" in w for w in found["warnings"]), found["warnings"]
    project_labels = {lab["name"] for lab in json.loads((out / "cvat_labels.json").read_text())}
    assert sorted(item["id"] for item in found["items"]) == sorted(reference)
    for item in found["items"]:
        expected = reference[item["id"]]
        present = {CLASSES[c] for c in np.unique(expected).tolist() if c != 255} - {"background"}
        anns = item["annotations"]
        assert all(a["type"] == "mask" for a in anns)
        # One mask per foreground class present, none for background: CVAT gets no background shape.
        assert sorted(a["label"] for a in anns) == sorted(present)
        assert {a["label"] for a in anns} <= project_labels
        for index, ann in enumerate(anns):
            np.testing.assert_array_equal(masks[f"{item['id']}/{index}"], expected == CLASSES.index(ann["label"]))


def test_cvat_label_names_datumaro_cannot_read_are_refused_the_rest_read_back(tmp_path: Path) -> None:
    for bad in ("road:left", "#sky", " car", "", "a\nb"):
        with pytest.raises(FormatError, match="labelmap.txt"):
            cvat_labels(ClassMap.from_names(["background", bad]))
    odd = ["background", "road, wet", "car#2", "bus stop ", "päd"]
    writer = CvatWriter(tmp_path / "odd", ClassMap.from_names(odd))
    (tmp_path / "odd").mkdir()
    writer.start([])
    writer.finish([])
    found, _ = datumaro(tmp_path / "odd", "voc_segmentation", tmp_path / "read")
    assert found["labels"] == odd


# COCO 1.0 ---------------------------------------------------------------------------------------

def coco_run(photos: Path, out: Path, *extra: str) -> Path:
    assert segment(photos, "--out", out, "--format", "coco", "--confidence-threshold", "0.9", *extra) == 0
    # Datumaro 1.x wants images/ beside annotations/ (CVAT takes the images from its task by file name).
    return zipped_and_extracted(out, ["annotations", "images"], out.with_name(out.name + "_upload"))


def test_coco_export_through_datumaro(photos: Path, reference: dict[str, np.ndarray], tmp_path: Path) -> None:
    upload = coco_run(photos, tmp_path / "coco")
    found, masks = datumaro(upload, "coco_instances", tmp_path / "read")
    assert "coco_instances" in found["detected"]
    assert found["labels"] == CLASSES
    assert sorted(item["id"] for item in found["items"]) == sorted(reference)
    for item in found["items"]:
        expected = reference[item["id"]]
        anns = [(i, a) for i, a in enumerate(item["annotations"]) if a["type"] == "mask"]
        assert sorted(a["label"] for _, a in anns) == sorted(CLASSES[c] for c in np.unique(expected) if c != 255)
        for index, ann in anns:
            np.testing.assert_array_equal(masks[f"{item['id']}/{index}"], expected == CLASSES.index(ann["label"]))


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # inside pycocotools, numpy 2
def test_coco_polygons_through_datumaro(photos: Path, reference: dict[str, np.ndarray], tmp_path: Path) -> None:
    from pycocotools import mask as coco_mask

    upload = coco_run(photos, tmp_path / "coco", "--coco-polygons")
    found, masks = datumaro(upload, "coco_instances", tmp_path / "read")
    assert not masks  # polygons only: readers without RLE take it
    for item in found["items"]:
        expected = reference[item["id"]]
        height, width = expected.shape
        for class_id in (c for c in np.unique(expected).tolist() if c != 255):
            polygons = [a["points"] for a in item["annotations"]
                        if a["type"] == "polygon" and a["label"] == CLASSES[class_id]]
            drawn = coco_mask.decode(coco_mask.merge(coco_mask.frPyObjects(polygons, height, width))).astype(bool)
            truth = expected == class_id
            # Outer contours through pixel centres (96 px frames): all but part of a boundary ring is drawn;
            # holes are filled (the background around a person covers it), so IoU only for person.
            assert (drawn & truth).sum() / truth.sum() > 0.85, (item["id"], CLASSES[class_id])
            if CLASSES[class_id] == "person":
                assert (drawn & truth).sum() / (drawn | truth).sum() > 0.8, item["id"]


# --bag-out: mcap, rosbags, rosbag2 metadata ------------------------------------------------------

ROSBAG2_METADATA_V8: dict[str, Any] = {
    # What rosbag2_storage/yaml.hpp (Jazzy) decodes for a version-8 metadata.yaml: field -> type.
    "version": int, "storage_identifier": str, "duration": {"nanoseconds": int},
    "starting_time": {"nanoseconds_since_epoch": int}, "message_count": int,
    "topics_with_message_count": [{"topic_metadata": {"name": str, "type": str, "serialization_format": str,
                                                      "offered_qos_profiles": str,  # v >= 4: YAML text
                                                      "type_description_hash": str},  # v >= 7
                                   "message_count": int}],
    "relative_file_paths": [str], "compression_format": str, "compression_mode": str,  # v >= 3
    "files": [{"path": str, "starting_time": {"nanoseconds_since_epoch": int}, "duration": {"nanoseconds": int},
               "message_count": int}],  # v >= 5
    "custom_data": dict,  # v >= 6, a string map (null is an empty one)
    "ros_distro": str,  # v >= 8
}


def check_schema(value: Any, schema: Any, where: str) -> None:
    if isinstance(schema, dict):
        assert isinstance(value, dict), f"{where}: {value!r} is not a map"
        for key, sub in schema.items():
            assert key in value, f"{where}.{key} missing"
            check_schema(value[key], sub, f"{where}.{key}")
    elif isinstance(schema, list):
        assert isinstance(value, list), f"{where}: {value!r} is not a sequence"
        for i, item in enumerate(value):
            check_schema(item, schema[0], f"{where}[{i}]")
    elif schema is int:
        assert isinstance(value, int) and not isinstance(value, bool) and value >= 0, f"{where}: {value!r}"
    elif schema is dict:
        assert value is None or (isinstance(value, dict) and all(isinstance(v, str) for v in value.values())), where
    else:
        assert isinstance(value, schema), f"{where}: {value!r} is not {schema.__name__}"


@pytest.fixture(scope="module")
def mixed_bag(photos: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A run of a photo then a recording (file frames first: the hard case for one time base)."""
    tmp = tmp_path_factory.mktemp("bag")
    source = camera_recording([photo("astronaut"), photo("coffee")]).write(tmp / "in", "mcap")
    assert segment(photos / "camera.png", source, "--out", tmp / "out", "--bag-out", tmp / "labels") == 0
    return source, tmp / "labels", tmp / "out"


def source_stamps(source: Path) -> dict[str, list[int]]:
    from rosbags.highlevel import AnyReader

    stamps: dict[str, list[int]] = {}
    with AnyReader([source]) as reader:
        conns = [c for c in reader.connections if c.topic in (CAMERA_TOPIC, COMPRESSED_TOPIC)]
        for conn, _, raw in reader.messages(connections=conns):
            msg = reader.deserialize(raw, conn.msgtype)
            stamps.setdefault(conn.topic, []).append(stamp_ns(msg.header.stamp.sec, msg.header.stamp.nanosec))
    return stamps


def check_stamps(messages: list[tuple[str, int, int]], recorded: dict[str, list[int]]) -> None:
    """(topic, log time, header stamp) in the reader's order: log time = stamp, per topic rising,
    recorded topics at their recorded stamps, the file frame after the recording, the whole bag
    within the recording plus a few file periods."""
    by_topic: dict[str, list[int]] = {}
    for topic, log_time, stamp in messages:
        assert log_time == stamp, topic
        by_topic.setdefault(topic, []).append(stamp)
    for topic, stamps in by_topic.items():
        assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps), topic
    recorded_end = max(max(s) for s in recorded.values())
    recorded_start = min(min(s) for s in recorded.values())
    assert FILE_TOPIC == CAMERA_TOPIC  # the file frame shares the camera's topics, after its frames
    files = by_topic[FILE_TOPIC][len(recorded[CAMERA_TOPIC]):]
    assert by_topic[CAMERA_TOPIC] == recorded[CAMERA_TOPIC] + files
    assert len(files) == 1 and recorded_end < files[0] <= recorded_end + 5 * FILE_PERIOD_NS
    assert by_topic["/camera/segmentation/mask"] == recorded[CAMERA_TOPIC] + files
    assert by_topic["/camera/image_raw/segmentation/mask"] == recorded[COMPRESSED_TOPIC]
    all_stamps = [s for _, _, s in messages]
    assert min(all_stamps) == recorded_start and max(all_stamps) - min(all_stamps) < 10 * 1_000_000_000


def test_bag_out_through_mcap_ros2_reader(mixed_bag: tuple[Path, Path, Path]) -> None:
    pytest.importorskip("mcap_ros2", reason="mcap-ros2-support (pip, test extra) is not installed")
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    source, labels, _ = mixed_bag
    mcap_file, = labels.glob("*.mcap")
    messages = []
    schemas = set()
    with open(mcap_file, "rb") as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        for schema, channel, message, decoded in reader.iter_decoded_messages(log_time_order=True):
            assert schema is not None and schema.encoding == "ros2msg" and channel.message_encoding == "cdr"
            schemas.add(schema.name)
            messages.append((channel.topic, message.log_time,
                             stamp_ns(decoded.header.stamp.sec, decoded.header.stamp.nanosec)))
            if schema.name == "seg_perception/msg/ClassMap":
                assert [(c.id, c.name) for c in decoded.classes] == list(enumerate(CLASSES))
            if schema.name == "vision_msgs/msg/LabelInfo":
                assert [(c.class_id, c.class_name) for c in decoded.class_map] == list(enumerate(CLASSES))
    assert {"sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage", "seg_perception/msg/ClassMap",
            "vision_msgs/msg/LabelInfo"} <= schemas
    check_stamps(messages, source_stamps(source))


def test_bag_out_through_rosbags_and_rosbag2_metadata(mixed_bag: tuple[Path, Path, Path]) -> None:
    from rosbags.highlevel import AnyReader

    source, labels, _ = mixed_bag
    messages = []
    with AnyReader([labels]) as reader:  # definitions from the file: no type store given
        for conn, log_time, raw in reader.messages():
            msg = reader.deserialize(raw, conn.msgtype)
            messages.append((conn.topic, log_time, stamp_ns(msg.header.stamp.sec, msg.header.stamp.nanosec)))
    messages.sort(key=lambda m: m[1])
    check_stamps(messages, source_stamps(source))

    info = yaml.safe_load((labels / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    check_schema(info, ROSBAG2_METADATA_V8, "rosbag2_bagfile_information")
    assert info["version"] == 8 and info["storage_identifier"] == "mcap"
    assert info["message_count"] == len(messages) == sum(t["message_count"] for t in info["topics_with_message_count"])
    assert info["starting_time"]["nanoseconds_since_epoch"] == min(m[1] for m in messages)
    assert info["relative_file_paths"] == [f["path"] for f in info["files"]]
    assert all((labels / path).is_file() for path in info["relative_file_paths"])
