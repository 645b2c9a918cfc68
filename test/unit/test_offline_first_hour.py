"""segment_offline as a new user meets it (issue 22): a line before the model loads, a refused
--resume before loading, a word (or --overwrite) for an output folder that holds an earlier run,
its own --bag-out topics skipped when the bag is read again, hints naming this tool's flags."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from devtools.outputs import read_rows
from seg_perception.apps import segment_offline as offline
from seg_perception.model.base import ModelLoadError
from seg_perception.model.loader import load_model
from seg_perception.offline.sources import sample_photo

SIZE = (64, 64)


def run(capsys: pytest.CaptureFixture[str], *args: Any) -> tuple[int, str, str]:
    code = offline.main(["segment_offline", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("astronaut", "camera"):
        rgb = cv2.resize(sample_photo(name), SIZE, interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(folder / f"{name}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return folder


def test_the_first_line_comes_before_the_model_loads(photos: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, photos, "--out", tmp_path / "out")
    assert code == 0
    lines = out.splitlines()
    loading = next(i for i, line in enumerate(lines) if "loading model 'selfie'" in line)
    loaded = next(i for i, line in enumerate(lines) if line.startswith("[segment_offline] model 'selfie'"))
    assert loading < loaded


def test_a_refused_resume_is_said_before_loading(photos: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, photos, "--out", tmp_path / "out")[0] == 0
    code, out, err = run(capsys, photos, "--out", tmp_path / "out", "--resume", "--confidence-threshold", "0.5")
    assert code == 1
    assert "cannot resume" in err and "options" in err
    assert "loading model" not in out  # refused from the command line alone


def test_an_earlier_run_in_out_is_reported_or_overwritten(photos: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "out"
    assert run(capsys, photos, "--out", out_dir)[0] == 0
    (out_dir / "mine.txt").write_text("not ours")
    one = tmp_path / "one"
    one.mkdir()
    (one / "astronaut.png").write_bytes((photos / "astronaut.png").read_bytes())
    code, out, _ = run(capsys, one, "--out", out_dir)
    assert code == 0
    assert "already holds" in out and "--overwrite" in out and "--resume" in out
    assert (out_dir / "camera_mask.png").is_file()  # kept, and said so above
    code, out, _ = run(capsys, one, "--out", out_dir, "--overwrite")
    assert code == 0 and "--overwrite: removed" in out
    assert not (out_dir / "camera_mask.png").exists()
    assert (out_dir / "astronaut_mask.png").is_file() and (out_dir / "mine.txt").is_file()
    assert [r["name"] for r in read_rows(out_dir / "index.csv")] == ["astronaut"]


def test_a_bag_written_by_bag_out_is_read_again_without_its_own_masks(photos: Path, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("rosbags")
    from devtools.bags import CAMERA_TOPIC, camera_recording

    rgb = [cv2.resize(sample_photo("astronaut"), SIZE, interpolation=cv2.INTER_AREA)]
    bag = camera_recording(rgb).write(tmp_path / "bag", "mcap")
    assert run(capsys, bag, "--out", tmp_path / "first", "--topic", CAMERA_TOPIC,
               "--bag-out", tmp_path / "segmented")[0] == 0
    code, out, _ = run(capsys, tmp_path / "segmented", "--out", tmp_path / "second")
    assert code == 0, out
    assert "segmentation/mask: a segmentation output" in out
    sources = {r["source"] for r in read_rows(tmp_path / "second" / "index.csv")}
    assert sources and not any("/segmentation/" in s for s in sources), sources


def test_no_description_names_the_flag_and_the_parameter(tmp_path: Path) -> None:
    model = tmp_path / "net.onnx"
    model.write_bytes(b"not read")
    with pytest.raises(ModelLoadError) as exc:
        load_model(str(model), "cpu")
    assert "model_description" in str(exc.value) and "--description" in str(exc.value)
    assert "`description`" not in str(exc.value)


def test_hints_name_a_command_that_runs_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not on PATH (the pip environment): the installed path, which runs as printed."""
    import os
    import subprocess

    from seg_perception.apps import command

    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.chdir(tmp_path)
    hint = command("segmentation_node")
    assert hint != "segmentation_node"
    if hint.startswith("ros2 run"):
        pytest.skip("seg_perception is not installed on the ament paths")
    assert os.access(hint, os.X_OK)
    result = subprocess.run([hint, "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "usage:" in result.stdout
