"""Frames of several cameras: one forward per batch (or per frame for models with a fixed batch
axis). The per-camera slots are test_latest.py's."""
from __future__ import annotations

import socket
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from seg_perception.engine.batching import BatchRunner
from seg_perception.model import load_model
from seg_perception.model.base import RuntimeUnavailable

WIDTH, HEIGHT = 32, 24


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def _onnx(tmp_path: Path, dynamic: bool) -> Path:
    torch.manual_seed(0)
    path = tmp_path / ("dynamic.onnx" if dynamic else "fixed.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Tiny().eval(), (torch.zeros(1, 3, HEIGHT, WIDTH),), str(path), dynamo=False,
                          opset_version=17, input_names=["x"],
                          dynamic_axes={"x": {0: "n"}} if dynamic else None)
    path.with_suffix(".yaml").write_text(yaml.safe_dump(
        {"input": {"width": WIDTH, "height": HEIGHT}, "output": "logits", "classes": ["a", "b"]}))
    return path


@pytest.mark.parametrize("dynamic", [True, False])
def test_batch_runner_batches_or_falls_back_to_frames(tmp_path: Path, dynamic: bool) -> None:
    runtime = load_model(str(_onnx(tmp_path, dynamic)), "cpu")
    runner = BatchRunner(runtime)
    # ONNX Runtime on the CPU takes and returns numpy (array_io): no torch on that path
    batch = np.random.default_rng(1).random((3, 3, HEIGHT, WIDTH), dtype=np.float32)
    expected = np.concatenate([runtime(batch[i:i + 1]) for i in range(3)])
    assert runner.batches is None
    assert np.allclose(runner(batch), expected, atol=1e-5)
    assert runner.batches is dynamic
    assert np.allclose(runner(batch[:2]), expected[:2], atol=1e-5)  # what was learned holds


def test_batch_runner_passes_a_dead_server_on_without_learning(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    runtime = load_model(f"triton://127.0.0.1:{port}/selfie", "cpu")
    runner = BatchRunner(runtime)
    with pytest.raises(RuntimeUnavailable):
        runner(torch.zeros(2, 3, runtime.spec.input_height, runtime.spec.input_width))
    assert runner.batches is None
    runtime.close()


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_pipeline_batch_equals_frame_by_frame(backend: str) -> None:
    from seg_perception.engine.pipeline import SegmentationOptions, SegmentationPipeline
    from seg_perception.offline.sources import sample_photo
    import cv2

    photos = [cv2.resize(sample_photo(name), size, interpolation=cv2.INTER_AREA)
              for name, size in (("astronaut", (320, 240)), ("coffee", (200, 150)), ("chelsea", (160, 160)))]
    options = [SegmentationOptions(want_color=True, want_overlay=True), SegmentationOptions(output_size="network"),
               SegmentationOptions(output_size=(64, 48), want_confidence=False)]
    runtime = load_model("selfie", "cpu")
    single = SegmentationPipeline(runtime, backend=backend)
    expected = [single(rgb, opts) for rgb, opts in zip(photos, options)]
    batched = SegmentationPipeline(runtime, backend=backend, reuse_buffers=True)
    for want, got in zip(expected, batched.run_batch(photos, options)):
        assert got.timings_ms["batch"] == 3.0
        assert got.size == want.size
        assert np.array_equal(got.labels, want.labels)  # taken before the next result reuses buffers
        for name in ("confidence", "color", "overlay"):
            a, b = getattr(want, name), getattr(got, name)
            assert (a is None) == (b is None)
            if a is not None:
                assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    assert batched._runner.batches is True


def test_frame_processor_batch_keeps_order_and_rejects_one_frame_alone() -> None:
    from types import SimpleNamespace

    from seg_perception.engine.frame import FrameInput, FrameProcessor, FrameRequest

    processor = FrameProcessor.load("selfie", "cpu", warmup_iterations=0)

    def image(width: int, height: int, encoding: str = "rgb8") -> SimpleNamespace:
        data = np.full((height, width, 3), 90, np.uint8).tobytes()
        return SimpleNamespace(height=height, width=width, encoding=encoding, is_bigendian=0, step=width * 3,
                               data=data, header=SimpleNamespace(frame_id="cam"))

    frames = [FrameInput(image(64, 48), FrameRequest()), FrameInput(image(32, 24, "nonsense"), FrameRequest()),
              FrameInput(image(40, 30), FrameRequest(output_size=(20, 10)))]
    outputs = []
    for out in processor.process_batch(frames):
        outputs.append((out.status.image_error, None if out.segmentation is None else out.segmentation.size))
    assert outputs[0] == ("", (64, 48))
    assert "nonsense" in outputs[1][0] and outputs[1][1] is None
    assert outputs[2] == ("", (20, 10))
    processor.close()


@pytest.mark.parametrize("names, problem", [
    ([""], None), (["front", "rear/left"], None), (["", "aux"], None),
    ([], "at least one"), (["front", "front"], "repeated"), (["/front"], "relative"),
    (["front/"], "relative"), (["~cam"], "relative"), (["3d"], "relative"), (["a b"], "relative"),
])
def test_camera_names(names: list[str], problem: str | None) -> None:
    from seg_perception.live.params import camera_names_problem, validate

    reason = camera_names_problem(names)
    assert (reason is None) if problem is None else (reason is not None and problem in reason)
    assert validate({"cameras": names}) == reason
