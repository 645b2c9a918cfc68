"""Real architectures through the runtimes: SegFormer-B0 (19 Cityscapes classes, built with
`transformers` from its config, random weights) and a CNN encoder-decoder, each exported to
ONNX and TorchScript by the export module, loaded by the project's loader and run by the
pipeline on a real photo. Small input sizes keep this fast; nothing is downloaded."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

from devtools.architectures import (CITYSCAPES_CLASSES, ENCODER_DECODER_CLASSES, IMAGENET_MEAN,  # noqa: E402
                                    IMAGENET_STD, write_segformer_checkpoint)
from seg_perception.deploy.export import ExportSource, export_model, resolve_source  # noqa: E402
from seg_perception.engine.pipeline import SegmentationOptions, SegmentationPipeline  # noqa: E402
from seg_perception.model import load_model  # noqa: E402
from seg_perception.offline.sources import sample_photo  # noqa: E402

SEGFORMER_SIZE = (128, 96)  # width, height: logits 32x24


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ExportSource]:
    folder = write_segformer_checkpoint(tmp_path_factory.mktemp("checkpoint") / "segformer_b0_cityscapes",
                                        *SEGFORMER_SIZE)
    return {"segformer": resolve_source(str(folder)),
            "encoder_decoder": resolve_source("devtools.architectures:encoder_decoder")}


@pytest.fixture(scope="module")
def exports(sources: dict[str, ExportSource], tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    out = tmp_path_factory.mktemp("exports")
    return {(arch, fmt): export_model(source, out / arch, fmt).model
            for arch, source in sources.items() for fmt in ("onnx", "torchscript")}


EXPECTED = {
    # architecture: (class names, network input (w, h), raw output (h, w))
    "segformer": (CITYSCAPES_CLASSES, SEGFORMER_SIZE, (24, 32)),
    "encoder_decoder": (ENCODER_DECODER_CLASSES, (96, 64), (64, 96)),
}


def test_descriptions_come_from_the_checkpoint(sources: dict[str, ExportSource]) -> None:
    spec = sources["segformer"].spec
    assert spec.classes.names == list(CITYSCAPES_CLASSES)
    assert spec.input_size == SEGFORMER_SIZE and spec.resize == "stretch" and spec.output == "logits"
    assert spec.mean == pytest.approx(IMAGENET_MEAN) and spec.std == pytest.approx(IMAGENET_STD)
    assert spec.scale == pytest.approx(1 / 255)
    cnn = sources["encoder_decoder"].spec
    assert cnn.classes.names == list(ENCODER_DECODER_CLASSES) and cnn.resize == "letterbox"


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
@pytest.mark.parametrize("arch", ["segformer", "encoder_decoder"])
def test_export_runs_through_the_runtime_and_pipeline(exports: dict[tuple[str, str], Path], arch: str,
                                                      fmt: str) -> None:
    names, (net_w, net_h), raw_hw = EXPECTED[arch]
    runtime = load_model(str(exports[arch, fmt]), "cpu")
    try:
        assert type(runtime).__name__ == ("OnnxRuntime" if fmt == "onnx" else "TorchScriptRuntime")
        assert runtime.spec.classes.names == list(names)
        raw = runtime(torch.rand(1, 3, net_h, net_w))
        assert tuple(raw.shape) == (1, len(names), *raw_hw)  # SegFormer: 1/4 of the input

        photo = cv2.resize(sample_photo("astronaut"), (200, 150), interpolation=cv2.INTER_AREA)
        pipeline = SegmentationPipeline(runtime)
        result = pipeline(photo, SegmentationOptions(want_color=True))
        assert result.labels.shape == (150, 200) and result.labels.dtype == np.uint8
        assert int(result.labels.max()) < len(names)
        assert result.confidence is not None and result.confidence.shape == (150, 200)
        assert pipeline.class_map.names == list(names)
        assert result.color is not None and result.color.shape == (150, 200, 3)
    finally:
        runtime.close()


@pytest.mark.parametrize("arch", ["segformer", "encoder_decoder"])
def test_onnx_and_torchscript_exports_agree(exports: dict[tuple[str, str], Path], arch: str) -> None:
    photo = sample_photo("coffee")
    labels = []
    for fmt in ("onnx", "torchscript"):
        runtime = load_model(str(exports[arch, fmt]), "cpu")
        labels.append(SegmentationPipeline(runtime)(photo).labels)
        runtime.close()
    assert labels[0].shape == photo.shape[:2]
    assert float((labels[0] == labels[1]).mean()) > 0.999
