"""export_model: a checkpoint folder as save_pretrained writes it -> ONNX + description ->
segment_offline with no hand-written YAML; and what it refuses to do."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

pytest.importorskip("transformers")

from devtools.architectures import CITYSCAPES_CLASSES, segformer_b0, write_segformer_checkpoint  # noqa: E402
from seg_perception.apps import export_model as cli  # noqa: E402
from seg_perception.apps import segment_offline as offline  # noqa: E402
from seg_perception.deploy.export import ExportError, _input_from_processor, resolve_source  # noqa: E402
from seg_perception.offline.sources import sample_photo  # noqa: E402

OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_segformer_checkpoint(tmp_path_factory.mktemp("hf") / "segformer_b0_cityscapes", 128, 96)


def _installed(name: str) -> str:
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_prefix
        path = Path(get_package_prefix("seg_perception")) / "lib" / "seg_perception" / name
    except (ImportError, PackageNotFoundError, OSError) as exc:
        pytest.skip(f"seg_perception is not installed on the ament paths ({exc})")
    if not path.exists():
        pytest.skip(f"{path} is missing: build the package (scripts/setup.sh)")
    return str(path)


def test_checkpoint_folder_to_segment_offline_without_a_handwritten_description(
        checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "exported"
    run = subprocess.run([_installed("export_model"), str(checkpoint), "--out", str(out), "--obstacle", "person"],
                         env={**os.environ, **OFFLINE}, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    model = out / "segformer_b0_cityscapes.onnx"
    assert model.is_file() and (out / "segformer_b0_cityscapes.yaml").is_file()
    assert "output [1, 19, 24, 32]" in run.stdout  # logits at 1/4 of the 128x96 input

    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("astronaut", "coffee"):
        cv2.imwrite(str(photos / f"{name}.png"), cv2.cvtColor(sample_photo(name), cv2.COLOR_RGB2BGR))
    labels = tmp_path / "labels"
    assert offline.main(["segment_offline", str(photos), "--out", str(labels), "--model", str(model),
                         "--device", "cpu"]) == 0
    document = json.loads((labels / "classes.json").read_text())
    assert [c["name"] for c in document["classes"]] == list(CITYSCAPES_CLASSES)
    assert [c["name"] for c in document["classes"] if c["obstacle"]] == ["person"]
    for name in ("astronaut", "coffee"):
        mask = cv2.imread(str(labels / f"{name}_mask.png"), cv2.IMREAD_UNCHANGED)
        assert mask.shape == sample_photo(name).shape[:2]  # the input size, from 1/4-size logits
        assert int(mask.max()) < len(CITYSCAPES_CLASSES)


def test_torchscript_size_and_name_options(checkpoint: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["export_model", "devtools.architectures:encoder_decoder", "--out", str(tmp_path),
                     "--format", "torchscript", "--size", "64x32", "--name", "small"]) == 0
    assert "output [1, 6, 32, 64]" in capsys.readouterr().out
    assert (tmp_path / "small.pt").is_file() and (tmp_path / "small.yaml").is_file()
    assert resolve_source(str(checkpoint), size=(64, 48)).spec.input_size == (64, 48)


def test_pickled_weights_need_permission(checkpoint: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    folder = tmp_path / "bin_only"
    folder.mkdir()
    for name in ("config.json", "preprocessor_config.json"):
        (folder / name).write_text((checkpoint / name).read_text())
    torch.save(segformer_b0().state_dict(), folder / "pytorch_model.bin")
    assert cli.main(["export_model", str(folder), "--out", str(tmp_path / "a")]) == 1
    assert "--allow-pickle-weights" in capsys.readouterr().err
    # Allowed, transformers reads it with torch.load(weights_only=True).
    assert resolve_source(str(folder), allow_pickle=True).spec.classes.names == list(CITYSCAPES_CLASSES)


def test_checkpoint_code_does_not_run_without_trust_remote_code(checkpoint: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "custom"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({
        "model_type": "custom_seg", "num_labels": 2, "id2label": {"0": "a", "1": "b"},
        "auto_map": {"AutoConfig": "custom.CustomConfig", "AutoModelForSemanticSegmentation": "custom.CustomModel"}}))
    (folder / "custom.py").write_text("import pathlib\npathlib.Path(__file__).with_name('RAN').write_text('ran')\n")
    (folder / "preprocessor_config.json").write_text((checkpoint / "preprocessor_config.json").read_text())
    assert cli.main(["export_model", str(folder), "--out", str(tmp_path / "out")]) == 1
    assert "--trust-remote-code" in capsys.readouterr().err
    assert not (folder / "RAN").exists()


def test_refusals_name_the_problem(checkpoint: Path, tmp_path: Path) -> None:
    no_processor = tmp_path / "no_processor"
    no_processor.mkdir()
    (no_processor / "config.json").write_text((checkpoint / "config.json").read_text())
    with pytest.raises(ExportError, match="preprocessor_config.json"):
        resolve_source(str(no_processor))
    with pytest.raises(ExportError, match=r"obstacle classes \['lamp'\]"):
        resolve_source(str(checkpoint), obstacles=["lamp"])
    with pytest.raises(ExportError, match="is a file"):
        resolve_source(str(checkpoint / "config.json"))
    with pytest.raises(ExportError, match="has no function 'nope'"):
        resolve_source("devtools.architectures:nope")
    with pytest.raises(ExportError, match="must return"):
        resolve_source("devtools.architectures:segformer_b0")  # returns a model, not (model, classes)
    script = tmp_path / "net.py"
    script.write_text("import torch\ndef build():\n    return torch.nn.Conv2d(3, 2, 1), ['a', 'b']\n")
    with pytest.raises(ExportError, match="--size"):
        resolve_source(f"{script}:build")
    assert resolve_source(f"{script}:build", size=(32, 16)).spec.input_size == (32, 16)


def test_processor_settings_map_to_the_description() -> None:
    notes: list[str] = []
    exact = _input_from_processor({"size": {"height": 512, "width": 1024}, "rescale_factor": 1 / 255,
                                   "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}, None, "x", notes)
    assert exact == {"width": 1024, "height": 512, "color_order": "rgb", "scale": pytest.approx(1 / 255),
                     "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "resize": "stretch"}
    edge = _input_from_processor({"size": {"shortest_edge": 384}, "do_normalize": False, "do_rescale": False},
                                 None, "x", notes)
    assert (edge["width"], edge["height"], edge["resize"]) == (384, 384, "letterbox")
    assert edge["scale"] == 1.0 and edge["mean"] == [0.0] * 3 and edge["std"] == [1.0] * 3
    assert notes and "shorter side" in notes[0]
    assert _input_from_processor({"size": 256}, (320, 240), "x", [])["width"] == 320
    with pytest.raises(ExportError, match="--size"):
        _input_from_processor({"do_resize": False}, None, "x", [])


def test_help_does_not_need_torch() -> None:
    code = ("import sys; from seg_perception.apps import export_model as m\n"
            "try:\n    m.main(['export_model', '--help'])\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip().splitlines()[-1] == "False", result.stderr[-2000:]


def test_a_module_in_the_current_folder_is_found_without_touching_sys_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`export_model mynet:build` from the folder holding mynet.py, like `python -m`, while
    sys.path stays as it was (no process-wide side effect)."""
    import sys

    (tmp_path / "cwd_export_net.py").write_text(
        "import torch\ndef build():\n    return torch.nn.Conv2d(3, 2, 1), ['a', 'b']\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    before = list(sys.path)
    try:
        assert resolve_source("cwd_export_net:build", size=(32, 16)).spec.input_size == (32, 16)
    finally:
        sys.modules.pop("cwd_export_net", None)
    assert sys.path == before
    with pytest.raises(ExportError, match="importing no_such_module_here failed"):
        resolve_source("no_such_module_here:build", size=(32, 16))
