"""export_model --int8: NNCF int8 written only when its masks agree with fp32 and it is faster.

The IoU arithmetic is checked alone; the gate itself runs on tiny networks exported here (seconds),
calibrated on the bundled sample photos. openvino and nncf are optional (requirements-openvino.txt):
those tests skip, saying why, where they are absent."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from seg_perception.apps import export_model
from seg_perception.deploy.quantize import QuantizeError, class_ious, quantize_int8
from seg_perception.model import load_model
from seg_perception.model.runtimes.openvino import openvino_available
from seg_perception.offline.sources import SAMPLE_NAMES, sample_photo

try:
    import nncf  # noqa: F401
    NO_INT8 = openvino_available()
except ImportError as exc:
    NO_INT8 = f"nncf is not installed ({exc}); pip install -r requirements-openvino.txt"
needs_int8 = pytest.mark.skipif(NO_INT8 is not None, reason=str(NO_INT8))

DESCRIPTION = """\
input: {width: 64, height: 48}
output: logits
classes: [background, road, {name: car, color: [255, 0, 0], obstacle: true}]
"""


def test_class_iou_is_pooled_per_class_over_images() -> None:
    ref = [np.array([[0, 0, 1, 1]], np.uint8), np.array([[2, 2, 2, 2]], np.uint8)]
    cand = [np.array([[0, 1, 1, 1]], np.uint8), np.array([[2, 2, 2, 0]], np.uint8)]
    ious, changed, shares = class_ious(ref, cand, {0: "bg", 1: "road", 2: "car"})
    # bg: 1 shared of {0,1 | 7}; road: 2 of 3; car: 3 of 4
    assert ious == pytest.approx({"bg": 1 / 3, "road": 2 / 3, "car": 3 / 4})
    assert changed == pytest.approx(2 / 8)
    assert shares == pytest.approx({"bg": 2 / 8, "road": 2 / 8, "car": 4 / 8})
    ious, changed, _ = class_ious(ref, ref, {0: "bg"})
    assert set(ious.values()) == {1.0} and changed == 0.0 and "1" in ious  # unnamed ids by number


class Clear(nn.Module):
    """Three classes with wide margins: int8 keeps (almost) every label."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.bias.zero_()
            for c in range(3):
                self.conv.weight[c, c, 1, 1] = 8.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Ties(nn.Module):
    """Two classes whose scores differ by 1e-4 of their size: any rounding flips labels."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base = self.conv(x)
        return torch.cat([base, base + 1e-4 * (x[:, :1] - 0.5), base - 1.0], dim=1)


def _export(module: nn.Module, folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.onnx"
    torch.manual_seed(0)
    torch.onnx.export(module.eval(), (torch.zeros(1, 3, 48, 64),), str(path), dynamo=False,
                      input_names=["input"], output_names=["scores"])
    (folder / f"{name}.yaml").write_text(DESCRIPTION)
    return path


@pytest.fixture(scope="module")
def calibration(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("calibration")
    for name in SAMPLE_NAMES:
        cv2.imwrite(str(folder / f"{name}.png"), cv2.cvtColor(sample_photo(name), cv2.COLOR_RGB2BGR))
    return folder


@needs_int8
def test_a_model_that_passes_is_written_and_loads(tmp_path: Path, calibration: Path) -> None:
    model = _export(Clear(), tmp_path / "fp32", "clear")
    result = quantize_int8(model, calibration, tmp_path / "out", min_iou=0.9, min_speedup=0.0, cpu_threads=1,
                           iterations=3)
    assert result.model == tmp_path / "out" / "clear_int8.xml"
    assert result.model.with_suffix(".bin").is_file() and result.description.is_file()
    report = result.report
    assert report.passed and report.images == len(SAMPLE_NAMES)
    assert min(report.judged.values()) >= 0.9 and set(report.fp32_ms) >= {"openvino"}
    assert all(report.class_share[k] < 0.005 for k in report.class_iou if k not in report.judged)
    runtime = load_model(str(result.model), "auto", cpu_threads=1)  # .xml: OpenVINO by default
    assert type(runtime).__name__ == "OpenVinoRuntime" and runtime.spec.classes.names == ["background", "road", "car"]
    runtime.close()


@needs_int8
def test_masks_that_disagree_fail_the_gate_and_nothing_is_written(tmp_path: Path, calibration: Path) -> None:
    model = _export(Ties(), tmp_path / "fp32", "ties")
    with pytest.raises(QuantizeError, match=r"IoU below 0\.97: .*\(0\.\d+ short\)") as failure:
        quantize_int8(model, calibration, tmp_path / "out", min_speedup=0.0, cpu_threads=1, iterations=3)
    assert "of the pixels changed" in str(failure.value)
    assert not (tmp_path / "out").exists()


@needs_int8
def test_the_cli_refuses_an_int8_model_that_is_not_faster(tmp_path: Path, calibration: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    model = _export(Clear(), tmp_path / "fp32", "clear")
    out = tmp_path / "out"
    code = export_model.main(["export_model", str(model), "--out", str(out), "--int8", "--calibration",
                              str(calibration), "--min-iou", "0.9", "--min-speedup", "1000", "--threads", "1"])
    assert code == 2
    assert "x short)" in capsys.readouterr().err
    assert not list(out.glob("*int8*")) if out.exists() else True


def test_int8_needs_calibration_images(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        export_model.main(["export_model", "selfie", "--out", "/nonexistent", "--int8"])
    assert "--int8 needs --calibration" in capsys.readouterr().err


def test_a_builtin_is_an_export_source_with_its_own_description() -> None:
    from seg_perception.deploy.export import resolve_source
    from seg_perception.model.builtin import builtin_spec

    source = resolve_source("twinlitenet")
    spec, builtin = source.spec, builtin_spec("drivable")
    assert source.name == "drivable" and spec.classes == builtin.classes  # same classes, same model name
    assert (spec.input_size, spec.output, spec.scale, spec.mean, spec.std, spec.resize) == \
        (builtin.input_size, builtin.output, builtin.scale, builtin.mean, builtin.std, builtin.resize)
    assert source.module(source.example_input()).shape == (1, 3, 360, 640)
