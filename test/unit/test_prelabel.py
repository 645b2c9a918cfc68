"""Pre-labeling with segment_offline: CVAT and COCO outputs checked against their formats and
the png masks, the segmented bag read back with rosbags, review.csv, progress, --resume after an
interruption, a source failing midway, and a --ray run against the local one byte for byte."""
from __future__ import annotations

import filecmp
import io
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from devtools.bags import CAMERA_TOPIC, COMPRESSED_TOPIC, FIRST_SEC, camera_recording, stamp_ns
from devtools.outputs import read_rows, read_unchanged, segment_offline, small_photo, write_photos
from seg_perception.model.labels import ClassMap
from seg_perception.offline.formats import cvat_labels, voc_color
from seg_perception.offline.frames import FileSource
from seg_perception.offline.progress import Progress

SIZE = (96, 96)


def photo(name: str) -> np.ndarray:
    return small_photo(name, SIZE)


segment = segment_offline


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_photos(tmp_path_factory.mktemp("photos"))


@pytest.fixture(scope="module")
def png_run(photos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference: png masks with unlabeled pixels (a threshold above the selfie net's minimum)."""
    out = tmp_path_factory.mktemp("png")
    assert segment(photos, "--out", out, "--confidence-threshold", "0.9") == 0
    return out


# CVAT -----------------------------------------------------------------------------------------

def parse_labelmap(path: Path) -> dict[str, tuple[int, int, int]]:
    """labelmap.txt as Datumaro's VocLabelMap.parse_from_file reads it (CVAT's Segmentation mask
    1.1 importer): '#' comments, 4 ':'-separated fields, an 'r,g,b' color, unique names."""
    labels: dict[str, tuple[int, int, int]] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(":")
        assert len(fields) == 4, line
        name, color, parts, actions = fields
        assert name not in labels and not parts and not actions
        rgb = tuple(int(c) for c in color.split(","))
        assert len(rgb) == 3 and all(0 <= c <= 255 for c in rgb)
        labels[name] = (rgb[0], rgb[1], rgb[2])
    return labels


def test_cvat_layout(photos: Path, png_run: Path, tmp_path: Path) -> None:
    assert segment(photos, "--out", tmp_path, "--format", "cvat", "--confidence-threshold", "0.9") == 0
    labels = parse_labelmap(tmp_path / "labelmap.txt")
    # Black is VOC's background: unlabeled pixels and the model's 'background' class; person keeps its color.
    assert labels == {"background": (0, 0, 0), "person": (220, 20, 60)}
    names = [r["name"] for r in read_rows(tmp_path / "index.csv")]
    assert (tmp_path / "ImageSets" / "Segmentation" / "default.txt").read_text().split() == names
    raw_labels = json.loads((tmp_path / "cvat_labels.json").read_text())
    # The CVAT project's labels: background is never an annotation (SegmentationObject leaves it out).
    assert [(lab["name"], lab["color"]) for lab in raw_labels] == [("person", "#dc143c")]
    color_to_id = {labels["person"]: 1}
    for name in names:
        painted = cv2.cvtColor(read_unchanged(tmp_path / "SegmentationClass" / f"{name}.png"), cv2.COLOR_BGR2RGB)
        colors = {tuple(c) for c in painted.reshape(-1, 3).tolist()}
        assert colors <= set(labels.values()), colors  # an undeclared color fails CVAT's import
        reference = read_unchanged(png_run / f"{name}_mask.png")
        decoded = np.full(reference.shape, 0, np.uint8)  # background and unlabeled are one label in CVAT
        for color, class_id in color_to_id.items():
            decoded[(painted == color).all(axis=2)] = class_id
        np.testing.assert_array_equal(decoded, np.where(reference == 1, 1, 0))
        assert read_unchanged(tmp_path / "JPEGImages" / f"{name}.jpg").shape == (*reference.shape, 3)
    assert (read_unchanged(png_run / "astronaut_mask.png") == 255).any()  # the threshold did leave unlabeled pixels


def test_cvat_colors_stay_distinct_and_off_black() -> None:
    classes = ClassMap.from_names(["road", "car", "background", "bus"],
                                  colors=[(0, 0, 0), (10, 20, 30), (7, 7, 7), (10, 20, 30)])
    entries, lut = cvat_labels(classes)
    assert entries[0] == ("background", (0, 0, 0))
    colors = dict(entries)
    assert colors["car"] == (10, 20, 30)
    assert colors["road"] == voc_color(1) and colors["bus"] == voc_color(2)  # black and a repeat replaced
    assert len(set(colors.values())) == len(colors) == 4
    assert [tuple(lut[i]) for i in (0, 1, 2, 3, 255)] == [voc_color(1), (10, 20, 30), (0, 0, 0), voc_color(2), (0, 0, 0)]


# COCO -----------------------------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # inside pycocotools, numpy 2
def test_coco_decodes_to_the_png_masks(photos: Path, png_run: Path, tmp_path: Path) -> None:
    pytest.importorskip("pycocotools", reason="COCO output needs pycocotools (pip, no rosdep key)")
    from pycocotools import mask as coco_mask
    from pycocotools.coco import COCO

    assert segment(photos, "--out", tmp_path, "--format", "coco", "--confidence-threshold", "0.9") == 0
    coco = COCO(str(tmp_path / "annotations" / "instances_default.json"))
    assert {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())} == {1: "background", 2: "person"}
    images = coco.loadImgs(coco.getImgIds())
    assert [i["file_name"] for i in images] == [f"{r['name']}.jpg" for r in read_rows(png_run / "index.csv")]
    for image in images:
        reference = read_unchanged(png_run / image["file_name"].replace(".jpg", "_mask.png"))
        assert (image["height"], image["width"]) == reference.shape
        decoded = np.full(reference.shape, 255, np.uint8)
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]]))
        assert sorted(a["category_id"] for a in anns) == sorted(int(c) + 1 for c in set(np.unique(reference)) - {255})
        for ann in anns:
            binary = coco.annToMask(ann)
            assert not (decoded[binary == 1] != 255).any()  # one class per pixel
            decoded[binary == 1] = ann["category_id"] - 1
            assert ann["area"] == int(binary.sum())
            rle = coco.annToRLE(ann)
            assert ann["bbox"] == pytest.approx(coco_mask.toBbox(rle).tolist())
        np.testing.assert_array_equal(decoded, reference)
        assert read_unchanged(tmp_path / "images" / image["file_name"]).shape == (*reference.shape, 3)


# review.csv, progress ---------------------------------------------------------------------------

def test_review_ranks_the_most_uncertain_frames_first(png_run: Path) -> None:
    index = {r["name"]: r for r in read_rows(png_run / "index.csv")}
    review = read_rows(png_run / "review.csv")
    assert [r["rank"] for r in review] == ["1", "2", "3"] and {r["name"] for r in review} == set(index)
    shares = [float(r["low_confidence_share"]) for r in review]
    assert shares == sorted(shares, reverse=True) and shares[0] > shares[-1]
    for row in review:
        confidence = read_unchanged(png_run / f"{row['name']}_confidence.png")
        assert float(row["mean_confidence"]) == pytest.approx(confidence.mean() / 255, abs=1e-6)
        assert float(row["low_confidence_share"]) == pytest.approx((confidence < 0.7 * 255).mean(), abs=1e-6)
        assert row["low_confidence_share"] == index[row["name"]]["low_confidence_share"]


def test_progress_lines_have_rate_and_eta() -> None:
    now = [0.0]
    stream = io.StringIO()
    progress = Progress(stream, total=10, interval_s=5.0, prefix="[p] ", tty=False, clock=lambda: now[0])
    for _ in range(4):
        now[0] += 2.0
        progress.update()
    progress.close()
    # One line after 6 s (3 frames at 0.5 frames/s, 7 to go), none before the interval.
    assert stream.getvalue().splitlines() == ["[p] 3/10 frames (30%), 0.50 frames/s, ETA 14s"]


def test_progress_bar_on_a_terminal() -> None:
    stream = io.StringIO()
    progress = Progress(stream, total=5, tty=True)
    progress.update(3)
    progress.close()
    assert "3/5" in stream.getvalue() and "frame/s" in stream.getvalue()


# --bag-out --------------------------------------------------------------------------------------

def read_bag(path: Path) -> tuple[dict[str, Any], list[tuple[str, int, Any]]]:
    from rosbags.highlevel import AnyReader

    with AnyReader([path]) as reader:
        connections = {c.topic: c for c in reader.connections}
        messages = [(c.topic, t, reader.deserialize(raw, c.msgtype)) for c, t, raw in reader.messages()]
    return connections, messages


def test_bag_out_holds_source_frames_and_labels_with_source_stamps(tmp_path: Path) -> None:
    recording = camera_recording([photo("astronaut"), photo("camera")])
    source = recording.write(tmp_path / "in", "mcap")
    assert segment(source, "--out", tmp_path / "out", "--bag-out", tmp_path / "labels") == 0
    connections, messages = read_bag(tmp_path / "labels")
    ns = {CAMERA_TOPIC: "/camera/segmentation", COMPRESSED_TOPIC: "/camera/image_raw/segmentation"}
    assert connections[CAMERA_TOPIC].msgtype == "sensor_msgs/msg/Image"
    assert connections[COMPRESSED_TOPIC].msgtype == "sensor_msgs/msg/CompressedImage"
    for base in ns.values():
        assert connections[f"{base}/class_map"].msgtype == "seg_perception/msg/ClassMap"
        assert connections[f"{base}/label_info"].msgtype == "vision_msgs/msg/LabelInfo"
        durability = connections[f"{base}/class_map"].ext.offered_qos_profiles[0].durability
        assert durability.name == "TRANSIENT_LOCAL"  # latched, as the node publishes it
    by_topic: dict[str, list[Any]] = {}
    for topic, log_time, msg in messages:
        stamp = stamp_ns(msg.header.stamp.sec, msg.header.stamp.nanosec)
        assert log_time == stamp and msg.header.frame_id == "camera"
        by_topic.setdefault(topic, []).append(msg)

    # The source messages as recorded, each frame's outputs with its stamp, masks as the png run wrote them.
    recorded = {(t, stamp_ns(m.header.stamp.sec, m.header.stamp.nanosec)): m
                for t, _, m in (read_bag(source)[1]) if t in ns}
    for topic, base in ns.items():
        sources = by_topic[topic]
        stamps = [stamp_ns(m.header.stamp.sec, m.header.stamp.nanosec) for m in sources]
        nsec = 5_000_000 if topic == CAMERA_TOPIC else 7_000_000
        assert stamps == [stamp_ns(FIRST_SEC + i, nsec) for i in range(2)]
        for msg, stamp in zip(sources, stamps):
            np.testing.assert_array_equal(msg.data, recorded[(topic, stamp)].data)
        for output, encoding in (("mask", "mono8"), ("confidence", "mono8"), ("color_mask", "rgb8")):
            outs = by_topic[f"{base}/{output}"]
            assert [stamp_ns(m.header.stamp.sec, m.header.stamp.nanosec) for m in outs] == stamps
            assert all(m.encoding == encoding and (m.width, m.height) == SIZE for m in outs)
        for msg, stamp in zip(by_topic[f"{base}/mask"], stamps):
            name = f"{topic.strip('/').replace('/', '_')}_{stamp}"
            np.testing.assert_array_equal(msg.data.reshape(SIZE[1], SIZE[0]), read_unchanged(tmp_path / "out" / f"{name}_mask.png"))
        class_map, = by_topic[f"{base}/class_map"]
        assert [(c.id, c.name, c.color.tolist(), c.obstacle) for c in class_map.classes] == [
            (0, "background", [0, 0, 0], False), (1, "person", [220, 20, 60], True)]
        label_info, = by_topic[f"{base}/label_info"]
        assert [(c.class_id, c.class_name) for c in label_info.class_map] == [(0, "background"), (1, "person")]
    assert not list((tmp_path / "out").glob("*_color.png"))  # the color mask went to the bag only


def test_embedded_label_info_definition_is_vision_msgs() -> None:
    """Without vision_msgs installed, --bag-out writes LabelInfo with an embedded definition: the
    same fields as upstream vision_msgs (comments aside), so readers decode it alike."""
    from seg_perception.offline import bagout

    upstream = Path(__file__).resolve().parents[2].parent / "shared" / "upstream" / "vision_msgs" / "vision_msgs" / "msg"
    if not upstream.is_dir():
        pytest.skip(f"no upstream vision_msgs at {upstream}")

    def fields(text: str) -> list[str]:
        return [" ".join(line.split("#", 1)[0].split()) for line in text.splitlines() if line.split("#", 1)[0].strip()]

    assert fields(bagout._LABEL_INFO_MSG) == fields((upstream / "LabelInfo.msg").read_text())
    assert fields(bagout._VISION_CLASS_MSG) == fields((upstream / "VisionClass.msg").read_text())


# --resume, failing sources ----------------------------------------------------------------------

def outputs_equal(a: Path, b: Path, ignore: tuple[str, ...] = ()) -> None:
    """Every file under `a` and `b` byte for byte, index.csv without its timing column."""
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files_a == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for rel in files_a:
        if rel.name == "index.csv":
            strip = [{k: v for k, v in r.items() if k != "inference_ms"} for r in read_rows(a / rel)]
            assert strip == [{k: v for k, v in r.items() if k != "inference_ms"} for r in read_rows(b / rel)]
        elif rel.name not in ignore:
            assert filecmp.cmp(a / rel, b / rel, shallow=False), rel


def test_resume_an_interrupted_run(photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--format", "coco", "--confidence-threshold", "0.9"]
    assert segment(photos, "--out", tmp_path / "whole", *args) == 0

    whole_frames = FileSource.frames

    def interrupted(self: FileSource) -> Iterator[Any]:
        frames = whole_frames(self)
        yield next(frames)
        yield next(frames)
        raise KeyboardInterrupt  # Ctrl-C (or SIGTERM) while the third frame is read

    monkeypatch.setattr(FileSource, "frames", interrupted)
    out = tmp_path / "resumed"
    assert segment(photos, "--out", out, *args, "--bag-out", tmp_path / "labels") == 130
    assert [r["name"] for r in read_rows(out / "index.csv")] == ["astronaut", "camera"]
    assert json.loads((out / "annotations" / "instances_default.json").read_text())["images"][1]["file_name"] == "camera.jpg"
    # A hard kill can leave half a row and half a staging record; the frame is then done again.
    with open(out / "index.csv", "a") as f:
        f.write("coffee,/some/where,,96")
    with open(out / "coco_frames.jsonl", "a") as f:
        f.write('{"name": "coffee", "wid')
    monkeypatch.setattr(FileSource, "frames", whole_frames)
    capsys.readouterr()
    assert segment(photos, "--out", out, "--resume", *args, "--bag-out", tmp_path / "labels") == 0
    assert "1 frames segmented, 2 already done (--resume)" in capsys.readouterr().out
    outputs_equal(tmp_path / "whole", out)
    # The interrupted run's bag was closed properly; the resumed frame went to a second bag.
    masks = [[m for t, _, m in read_bag(tmp_path / name)[1] if t == "/camera/segmentation/mask"]
             for name in ("labels", "labels_2")]
    assert [len(m) for m in masks] == [2, 1]
    # Frames from files are 0.1 s apart in run order, resumed runs included: coffee is the third.
    assert [[stamp_ns(m.header.stamp.sec, m.header.stamp.nanosec) for m in part] for part in masks] == [
        [0, 100_000_000], [200_000_000]]

    capsys.readouterr()
    assert segment(photos, "--out", out, "--resume", "--format", "cvat") == 1
    assert "other settings" in capsys.readouterr().err


def test_source_failing_midway_is_named_and_the_rest_is_kept(photos: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.avi"
    broken.write_bytes(b"RIFF not really a video")
    code = segment(photos, broken, photos / "coffee.png", "--out", tmp_path / "out")
    err = capsys.readouterr().err
    assert code == 1
    assert f"cannot open video '{broken}'" in err
    # Frames before the broken source and after it are written and listed.
    assert [r["name"] for r in read_rows(tmp_path / "out" / "index.csv")] == ["astronaut", "camera", "coffee",
                                                                             "coffee_1"]
    assert len(read_rows(tmp_path / "out" / "review.csv")) == 4


# --ray -------------------------------------------------------------------------------------------

def test_ray_run_matches_the_local_run_byte_for_byte(photos: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("ray")
    # `--ray auto` finds no cluster in a Ray temp dir of its own (a short path: Ray's unix sockets
    # live there), so it starts a local Ray, whatever other jobs on this machine run.
    ray_tmp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))
    monkeypatch.setenv("RAY_TMPDIR", str(ray_tmp))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    bag = camera_recording([photo("astronaut"), photo("coffee")]).write(tmp_path / "in", "mcap")
    common = [photos / "astronaut.png", bag, "--format", "coco", "--every", "1"]
    assert segment(*common, "--out", tmp_path / "local", "--bag-out", tmp_path / "local_bag" / "bag") == 0
    assert segment(*common, "--out", tmp_path / "ray", "--bag-out", tmp_path / "ray_bag" / "bag",
                   "--ray", "auto", "--ray-actors", "2") == 0
    outputs_equal(tmp_path / "local", tmp_path / "ray")
    outputs_equal(tmp_path / "local_bag", tmp_path / "ray_bag")
    assert [r["name"] for r in read_rows(tmp_path / "ray" / "index.csv")][:2] == [
        "astronaut", f"camera_image_raw_{stamp_ns(FIRST_SEC, 5_000_000)}"]
    shutil.rmtree(ray_tmp, ignore_errors=True)


def test_file_names_with_line_breaks_give_safe_frame_names_in_index_and_cvat_lists(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A frame name is a line of index.csv, of CVAT's ImageSets list and of review.csv: names with
    newlines or U+2028 are made safe (the same way on --resume), never split into two lines."""
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a\nb", "c\u2028d", "e\u202ef"):
        cv2.imwrite(str(folder / f"{name}.png"), cv2.cvtColor(photo("astronaut")[:64, :64], cv2.COLOR_RGB2BGR))
    out = tmp_path / "out"
    assert segment(folder, "--out", out, "--format", "cvat") == 0
    names = [r["name"] for r in read_rows(out / "index.csv")]
    assert sorted(names) == ["a_b", "c_d", "e_f"]
    listed = (out / "ImageSets" / "Segmentation" / "default.txt").read_text(encoding="utf-8").split("\n")
    assert sorted(n for n in listed if n) == ["a_b", "c_d", "e_f"]
    capsys.readouterr()
    assert segment(folder, "--out", out, "--format", "cvat", "--resume") == 0
    assert "3 already done" in capsys.readouterr().out


@pytest.mark.parametrize("damage", ["a,b,c\n", "astronaut,x,,1,1,1,1,nan" + ",0" * 5 + ",o\n",
                                    "\u2028,x,,1,1,1,1,1" + ",0" * 5 + ",o\n"])
def test_resume_refuses_a_damaged_index_before_segmenting(photos: Path, tmp_path: Path, damage: str,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert segment(photos, "--out", out, "--limit", "1") == 0
    with open(out / "index.csv", "a", encoding="utf-8") as f:
        f.write(damage)
    before = sorted(p.name for p in out.rglob("*"))
    capsys.readouterr()
    assert segment(photos, "--out", out, "--resume") != 0
    err = capsys.readouterr().err
    assert "cannot resume" in err and "line 3 is damaged" in err and "Traceback" not in err, err
    assert sorted(p.name for p in out.rglob("*")) == before, "files were written before the refusal"


def test_a_source_that_fails_before_any_frame_leaves_no_files(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """A truncated video (its container says frames, none decodes): an error, and no classes.json,
    index.csv or review.csv left in --out as if a run had happened."""
    video = tmp_path / "cut.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (64, 48))
    for _ in range(5):
        writer.write(np.full((48, 64, 3), 128, np.uint8))
    writer.release()
    data = video.read_bytes()
    video.write_bytes(data[:300])  # the header survives, the frames do not
    out = tmp_path / "out"
    assert segment(video, "--out", out) != 0
    left = sorted(p.name for p in out.rglob("*")) if out.exists() else []
    assert not ({"classes.json", "index.csv", "review.csv"} & set(left)), left
