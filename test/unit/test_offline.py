"""segment_offline end to end: the builtin model on real photos from scikit-image, a video
written here, and ROS 2 / ROS 1 bags written here with rosbags. Nothing is downloaded."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from rosbags.typesys import Stores

from devtools.bags import CAMERA_TOPIC, COMPRESSED_TOPIC, BagBuilder, camera_recording, stamp_ns
from devtools.outputs import read_rows, read_unchanged
from seg_perception.apps import segment_offline as offline
from seg_perception.offline.frames import FrameRef, RgbFrame, SourceError
from seg_perception.offline.progress import Progress
from seg_perception.offline.runner import LocalExecutor, Outputs, source_frames
from seg_perception.offline.runner import run as run_job
from seg_perception.offline.segment import FrameSegmenter
from seg_perception.engine.pipeline import SegmentationOptions, SegmentationPipeline
from seg_perception.model.loader import load_model
from seg_perception.offline.sources import sample_photo

SIZE = (96, 96)  # small: the model's input is 256x256 anyway, and the selfie net still finds people


class ListSource:
    """A source made of a generator function (for failures no real file produces on cue)."""

    def __init__(self, frames: Any) -> None:
        self._frames = frames

    def frames(self) -> Iterator[FrameRef]:
        return self._frames()

    def expected(self) -> None:
        return None


def photo(name: str) -> np.ndarray:
    return cv2.resize(sample_photo(name), SIZE, interpolation=cv2.INTER_AREA)


def run(capsys: pytest.CaptureFixture[str], *args: Any) -> tuple[int, str, str]:
    code = offline.main(["segment_offline", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def read_index(out: Path) -> list[dict[str, str]]:
    return read_rows(out / "index.csv")


read_mask = read_unchanged


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    for name in ("astronaut", "camera"):
        cv2.imwrite(str(folder / f"{name}.png"), cv2.cvtColor(photo(name), cv2.COLOR_RGB2BGR))
    (folder / "notes.txt").write_text("not an image")
    return folder


# image folders, images, videos ----------------------------------------------------------------

def test_folder_of_photos(photo_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out_text, _ = run(capsys, photo_folder, "--out", tmp_path)
    assert code == 0
    assert "2 frames segmented" in out_text and "ms per frame" in out_text

    masks = {}
    for name in ("astronaut", "camera"):
        mask = read_mask(tmp_path / f"{name}_mask.png")
        assert mask.dtype == np.uint8 and mask.shape == (SIZE[1], SIZE[0])  # mono8, the frame's size
        assert set(np.unique(mask)) <= {0, 1}
        confidence = read_mask(tmp_path / f"{name}_confidence.png")
        assert confidence.dtype == np.uint8 and confidence.shape == mask.shape
        masks[name] = mask
        assert not (tmp_path / f"{name}_overlay.png").exists()
    person = masks["astronaut"] == 1
    assert person.mean() > 0.2
    # One solid region, not scattered speckle: the largest blob holds most person pixels.
    count, blobs = cv2.connectedComponents(person.astype(np.uint8))
    assert count > 1 and np.bincount(blobs[person]).max() > 0.8 * person.sum()

    classes = json.loads((tmp_path / "classes.json").read_text())
    assert classes["model"] == "selfie"
    assert classes["model_name"] == "mediapipe_selfie_segmentation"
    assert classes["unlabeled_id"] == 255
    assert [(c["id"], c["name"], c["obstacle"]) for c in classes["classes"]] == [
        (0, "background", False), (1, "person", True)]
    assert all(len(c["color"]) == 3 for c in classes["classes"])

    rows = read_index(tmp_path)
    assert [r["name"] for r in rows] == ["astronaut", "camera"]
    for row in rows:
        assert row["source"] == str(photo_folder / f"{row['name']}.png")
        assert row["stamp"] == ""
        assert (int(row["width"]), int(row["height"])) == SIZE
        assert (int(row["source_width"]), int(row["source_height"])) == SIZE
        assert float(row["inference_ms"]) > 0
        shares = [float(row[k]) for k in ("share_background", "share_person", "share_unlabeled")]
        assert sum(shares) == pytest.approx(1.0, abs=1e-5)
        assert float(row["share_person"]) == pytest.approx((masks[row["name"]] == 1).mean(), abs=1e-6)


def test_overlay_color_and_output_size(photo_folder: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = run(capsys, photo_folder / "astronaut.png", "--out", tmp_path, "--overlay", "--color",
                     "--output-size", "64x48", "--confidence-threshold", "0.9")
    assert code == 0
    assert read_mask(tmp_path / "astronaut_mask.png").shape == (48, 64)
    assert read_mask(tmp_path / "astronaut_overlay.png").shape == (48, 64, 3)
    color = cv2.cvtColor(read_mask(tmp_path / "astronaut_color.png"), cv2.COLOR_BGR2RGB)
    mask = read_mask(tmp_path / "astronaut_mask.png")
    assert (color[mask == 1] == (220, 20, 60)).all()  # the palette of classes.json, in RGB
    row, = read_index(tmp_path)
    assert (row["width"], row["height"], row["source_width"]) == ("64", "48", str(SIZE[0]))
    options = json.loads((tmp_path / "classes.json").read_text())["options"]
    assert options == {"output_size": "64x48", "confidence_threshold": 0.9}


def test_unreadable_image_is_skipped_and_counted(photo_folder: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "astronaut.png").write_bytes((photo_folder / "astronaut.png").read_bytes())
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    code, out_text, err = run(capsys, folder, "--out", tmp_path / "out")
    assert code == 0
    assert "skipped broken" in err
    assert "1 frames segmented, 1 skipped" in out_text
    assert [r["name"] for r in read_index(tmp_path / "out")] == ["astronaut"]


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("video") / "walk.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10.0, SIZE)
    assert writer.isOpened()
    for name in ("astronaut", "camera", "astronaut"):
        writer.write(cv2.cvtColor(photo(name), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def test_video(video: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = run(capsys, video, "--out", tmp_path)
    assert code == 0
    names = [f"walk_{i:06d}" for i in range(3)]
    assert [r["name"] for r in read_index(tmp_path)] == names
    for name in names:
        assert read_mask(tmp_path / f"{name}_mask.png").shape == (SIZE[1], SIZE[0])
    assert (read_mask(tmp_path / "walk_000000_mask.png") == 1).mean() > 0.2


@pytest.mark.parametrize(("flags", "expected"), [
    (["--every", "2"], ["walk_000000", "walk_000002"]),
    (["--limit", "2"], ["walk_000000", "walk_000001"]),
    (["--every", "2", "--limit", "1"], ["walk_000000"]),
])
def test_every_and_limit(video: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                         flags: list[str], expected: list[str]) -> None:
    code, _, _ = run(capsys, video, "--out", tmp_path, *flags)
    assert code == 0
    assert [r["name"] for r in read_index(tmp_path)] == expected
    assert sorted(p.name for p in tmp_path.glob("*_mask.png")) == [f"{n}_mask.png" for n in expected]


# bags -----------------------------------------------------------------------------------------

def camera_bag(store: Stores = Stores.ROS2_KILTED) -> BagBuilder:
    """Two Image rgb8 frames, two CompressedImage png frames, a depth stream and a chat topic."""
    return camera_recording([photo("astronaut"), photo("camera")], store)


def expected_bag_names() -> list[str]:
    return [f"{topic}_{stamp_ns(1700000000 + i, nsec)}"
            for i in range(2)
            for topic, nsec in (("camera_image_raw", 5_000_000), ("camera_image_raw_compressed", 7_000_000))]


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
def test_ros2_bag(storage: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bag = camera_bag().write(tmp_path / "bag", storage)
    code, out_text, _ = run(capsys, bag, "--out", tmp_path / "out")
    assert code == 0
    assert "ignoring /camera/depth/image_raw: depth images (16UC1)" in out_text
    rows = read_index(tmp_path / "out")
    assert [r["name"] for r in rows] == expected_bag_names()
    assert [r["source"] for r in rows] == [CAMERA_TOPIC, COMPRESSED_TOPIC] * 2
    assert [r["stamp"] for r in rows] == ["1700000000.005000000", "1700000000.007000000",
                                          "1700000001.005000000", "1700000001.007000000"]
    for row in rows:
        assert read_mask(tmp_path / "out" / f"{row['name']}_mask.png").shape == (SIZE[1], SIZE[0])
    # The astronaut frames: raw and PNG-compressed copies of one photo give the same mask.
    raw = read_mask(tmp_path / "out" / f"{rows[0]['name']}_mask.png")
    compressed = read_mask(tmp_path / "out" / f"{rows[1]['name']}_mask.png")
    assert (raw == 1).mean() > 0.2
    np.testing.assert_array_equal(raw, compressed)


def test_bag_storage_file_given_directly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bag = camera_bag().write(tmp_path / "bag", "mcap")
    storage_file, = bag.glob("*.mcap")
    code, _, _ = run(capsys, storage_file, "--out", tmp_path / "out", "--topic", CAMERA_TOPIC)
    assert code == 0
    assert len(read_index(tmp_path / "out")) == 2


def test_ros1_bag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bag = camera_bag(Stores.ROS1_NOETIC).write(tmp_path / "camera.bag")
    code, _, _ = run(capsys, bag, "--out", tmp_path / "out")
    assert code == 0
    assert [r["name"] for r in read_index(tmp_path / "out")] == expected_bag_names()


def test_topic_filter(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bag = camera_bag().write(tmp_path / "bag")
    # Without the leading slash too, as users type it; a named depth topic is segmented.
    code, _, _ = run(capsys, bag, "--out", tmp_path / "out", "--topic", "camera/image_raw/compressed",
                     "--topic", "/camera/depth/image_raw")
    assert code == 0
    rows = read_index(tmp_path / "out")
    assert sorted({r["source"] for r in rows}) == ["/camera/depth/image_raw", COMPRESSED_TOPIC]
    assert len(rows) == 4

    code, _, err = run(capsys, bag, "--out", tmp_path / "o2", "--topic", "/camera/missing")
    assert code != 0 and "'/camera/missing' is not in bag" in err and CAMERA_TOPIC in err
    code, _, err = run(capsys, bag, "--out", tmp_path / "o3", "--topic", "/chatter")
    assert code != 0 and "holds std_msgs/msg/String, not images" in err


def test_every_counts_per_topic(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bag = camera_bag().write(tmp_path / "bag")
    code, _, _ = run(capsys, bag, "--out", tmp_path / "out", "--every", "2")
    assert code == 0
    assert [r["name"] for r in read_index(tmp_path / "out")] == expected_bag_names()[:2]


def test_corrupt_bag_frames_are_skipped_and_counted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bag = camera_bag()
    garbage = bag.compressed_msg(1700000002, 0, photo("astronaut"))
    garbage.data = np.frombuffer(b"\x89PNG\r\n\x1a\n truncated", np.uint8)
    bag.add(COMPRESSED_TOPIC, garbage)
    short = bag.image_msg(1700000003, 0, photo("camera"))
    short.step *= 2  # claims twice the bytes it carries
    bag.add(CAMERA_TOPIC, short)
    code, out_text, err = run(capsys, bag.write(tmp_path / "bag"), "--out", tmp_path / "out")
    assert code == 0
    assert f"skipped camera_image_raw_compressed_{stamp_ns(1700000002, 0)}" in err and "corrupt" in err
    assert f"skipped camera_image_raw_{stamp_ns(1700000003, 0)}" in err and "step" in err
    assert "4 frames segmented, 2 skipped" in out_text
    assert [r["name"] for r in read_index(tmp_path / "out")] == expected_bag_names()


def test_bag_without_image_topics(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bag = BagBuilder(Stores.ROS2_KILTED)
    bag.add("/chatter", bag.types["std_msgs/msg/String"](data="hello"), 1)
    path = bag.write(tmp_path / "bag")
    code, _, err = run(capsys, path, "--out", tmp_path / "out")
    assert code != 0
    assert "no image topics" in err and "/chatter (std_msgs/msg/String)" in err
    assert not (tmp_path / "out").exists()  # failed before loading a model or writing anything


def test_zero_header_stamp_falls_back_to_receive_time(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bag = BagBuilder(Stores.ROS2_KILTED)
    receive_ns = bag.add(CAMERA_TOPIC, bag.image_msg(0, 0, photo("astronaut")), 1234_000_000_042)
    code, _, _ = run(capsys, bag.write(tmp_path / "bag"), "--out", tmp_path / "out")
    assert code == 0
    row, = read_index(tmp_path / "out")
    assert row["name"] == f"camera_image_raw_{receive_ns}"
    assert row["stamp"] == "1234.000000042"


def test_source_failing_midway_keeps_earlier_frames(tmp_path: Path) -> None:
    def refs() -> Iterator[FrameRef]:
        yield FrameRef("first", "bag", RgbFrame(photo("astronaut")))
        raise SourceError("cannot read bag 'bag' past this point: chunk CRC mismatch")

    pipeline = SegmentationPipeline(load_model("selfie", "cpu"))
    outputs = Outputs(tmp_path, pipeline.class_map, "png", resume=False)
    progress = Progress(io.StringIO(), None, tty=False)
    errors: list[str] = []
    stats = run_job(source_frames([ListSource(refs)], errors, progress.note), LocalExecutor(
        FrameSegmenter(pipeline, SegmentationOptions())), outputs, progress, errors=errors)
    outputs.close()
    assert (stats.segmented, stats.bad) == (1, 0)
    assert "CRC mismatch" in stats.error
    assert (tmp_path / "first_mask.png").exists()
    assert (tmp_path / "index.csv").read_text().splitlines()[1].startswith("first,bag,")


# errors ---------------------------------------------------------------------------------------

def unusable_source(kind: str, folder: Path) -> Path:
    path = folder / kind
    if kind == "notes.txt":
        path.write_text("not a frame source")
    elif kind == "empty":
        path.mkdir()
    elif kind == "broken.mcap":
        path.write_bytes(b"not an mcap file")
    elif kind == "cut.mcap":  # a recorder killed before it wrote the footer
        whole, = camera_bag().write(folder / "whole", "mcap").glob("*.mcap")
        path.write_bytes(whole.read_bytes()[:-100])
    return path


@pytest.mark.parametrize(("kind", "message"), [
    ("missing", "does not exist"),
    ("notes.txt", "unknown file type '.txt'"),
    ("empty", "no images"),
    ("broken.mcap", "cannot read bag"),
    ("cut.mcap", "mcap recover"),
])
def test_unusable_sources(tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, message: str) -> None:
    code, _, err = run(capsys, unusable_source(kind, tmp_path), "--out", tmp_path / "out")
    assert code == 1
    assert err.startswith("segment_offline: error:") and message in err
    assert not (tmp_path / "out").exists()  # failed before loading a model or writing anything


def test_topic_needs_a_bag(photo_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run(capsys, photo_folder, "--out", tmp_path, "--topic", CAMERA_TOPIC)
    assert exit_info.value.code == 2
    assert "--topic applies to bags only" in capsys.readouterr().err


def _installed_command() -> list[str]:
    """The launcher CMake installed for `ros2 run seg_perception segment_offline`."""
    if not os.environ.get("AMENT_PREFIX_PATH"):
        pytest.skip("no ROS environment (AMENT_PREFIX_PATH unset): the installed launcher is not here")
    for prefix in os.environ["AMENT_PREFIX_PATH"].split(os.pathsep):
        launcher = Path(prefix) / "lib" / "seg_perception" / "segment_offline"
        if launcher.is_file():
            return [str(launcher)]
    pytest.fail("segment_offline launcher not found under AMENT_PREFIX_PATH; source scripts/env.sh")


def test_installed_command_reports_a_missing_source(tmp_path: Path) -> None:
    result = subprocess.run([*_installed_command(), str(tmp_path / "nope"), "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert f"source '{tmp_path / 'nope'}' does not exist" in result.stderr


def test_runs_without_rclpy(photo_folder: Path, tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="the default model is a torch one (ONNX: test_onnx_model_without_torch)")
    # A None entry in sys.modules makes `import rclpy` fail, as on a machine without ROS.
    script = ("import sys; sys.modules['rclpy'] = None\n"
              "from seg_perception.apps import run\n"
              "sys.exit(run('segment_offline', sys.argv))")
    result = subprocess.run([sys.executable, "-c", script, str(photo_folder), "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert len(read_index(tmp_path)) == 2


def test_onnx_model_without_torch(photo_folder: Path, tmp_path: Path) -> None:
    """segment_offline on an ONNX model where neither rclpy nor torch imports (a stock Humble or
    Jazzy robot without the pytorch pip key): the ONNX Runtime path end to end."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    # "person" where red > green: logits = (0, 40 * (r - g)) per pixel, a 1x1 convolution.
    weight = np.zeros((2, 3, 1, 1), np.float32)
    weight[1, 0], weight[1, 1] = 40.0, -40.0
    graph = helper.make_graph(
        [helper.make_node("Conv", ["image", "w", "b"], ["logits"])], "red_minus_green",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 48, 64])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 2, 48, 64])],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(np.zeros(2, np.float32), "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    path = tmp_path / "model" / "red.onnx"
    path.parent.mkdir()
    onnx.save(model, str(path))
    (path.parent / "red.yaml").write_text(
        "name: red\ninput: {width: 64, height: 48, color_order: rgb, scale: 0.00392156862745098, resize: stretch}\n"
        "output: logits\nclasses:\n  - background\n  - {name: person, color: [220, 20, 60], obstacle: true}\n")
    script = ("import sys; sys.modules['rclpy'] = None; sys.modules['torch'] = None\n"
              "from seg_perception.apps import run\n"
              "sys.exit(run('segment_offline', sys.argv))")
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-c", script, str(photo_folder), "--out", str(out), "--model", str(path)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert len(read_index(out)) == 2
    astronaut = read_mask(out / "astronaut_mask.png")
    assert astronaut.shape == (SIZE[1], SIZE[0])
    rgb = photo("astronaut").astype(np.int32)
    sure = np.abs(rgb[..., 0] - rgb[..., 1]) > 60  # clearly red or clearly green, away from the tie
    assert sure.sum() > 100
    assert ((astronaut == 1) == (rgb[..., 0] > rgb[..., 1]))[sure].mean() > 0.9
    assert not read_mask(out / "camera_mask.png").any()  # a gray photo: red never beats green
