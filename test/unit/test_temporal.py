"""engine.temporal: per-stream exponential smoothing of class probabilities, and the pipeline
deciding classes from it."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from seg_perception.engine.pipeline import SegmentationOptions, SegmentationPipeline
from seg_perception.engine.temporal import TemporalSmoother, class_probabilities
from seg_perception.model.base import ModelSpec
from seg_perception.model.labels import ClassMap
from seg_perception.model.runtimes.torch_module import TorchModuleRuntime

SIZE = (8, 6)


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def logits(seed: int, channels: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(1, channels, 6, 8)).astype(np.float32)


def test_state_is_the_exponential_average_of_probabilities() -> None:
    smoother = TemporalSmoother()
    a = 0.7
    first, kind = smoother("cam", logits(1), "logits", 3, a, SIZE, "m")
    assert kind == "probabilities"
    np.testing.assert_allclose(first, softmax(logits(1)), atol=1e-6)
    second, _ = smoother("cam", logits(2), "logits", 3, a, SIZE, "m")
    np.testing.assert_allclose(second, a * softmax(logits(1)) + (1 - a) * softmax(logits(2)), atol=1e-6)
    third, _ = smoother("cam", logits(3), "logits", 3, a, SIZE, "m")
    expected = a * (a * softmax(logits(1)) + (1 - a) * softmax(logits(2))) + (1 - a) * softmax(logits(3))
    np.testing.assert_allclose(third, expected, atol=1e-6)
    assert smoother.frames("cam") == 3


def test_off_passes_the_raw_output_and_forgets_the_stream() -> None:
    smoother = TemporalSmoother()
    smoother("cam", logits(1), "logits", 3, 0.5, SIZE, "m")
    raw = logits(2)
    out, kind = smoother("cam", raw, "logits", 3, 0.0, SIZE, "m")
    assert out is raw and kind == "logits" and smoother.frames("cam") == 0
    again, _ = smoother("cam", logits(3), "logits", 3, 0.5, SIZE, "m")
    np.testing.assert_allclose(again, softmax(logits(3)), atol=1e-6)  # a fresh start


@pytest.mark.parametrize("change", ["source size", "model", "output shape"])
def test_state_restarts_when_size_or_model_changes(change: str) -> None:
    smoother = TemporalSmoother()
    smoother("cam", logits(1), "logits", 3, 0.9, SIZE, "m")
    raw, size, model = logits(2), SIZE, "m"
    if change == "source size":
        size = (16, 12)
    elif change == "model":
        model = "other"
    else:
        raw = np.random.default_rng(2).normal(size=(1, 3, 3, 4)).astype(np.float32)
    out, _ = smoother("cam", raw, "logits", 3, 0.9, size, model)
    np.testing.assert_allclose(out, softmax(raw), atol=1e-6)
    assert smoother.frames("cam") == 1


def test_streams_are_independent() -> None:
    smoother = TemporalSmoother()
    smoother("left", logits(1), "logits", 3, 0.5, SIZE, "m")
    right, _ = smoother("right", logits(2), "logits", 3, 0.5, SIZE, "m")
    np.testing.assert_allclose(right, softmax(logits(2)), atol=1e-6)
    assert len(smoother) == 2 and smoother.frames("left") == 1
    smoother.reset("left")
    assert smoother.frames("left") == 0 and smoother.frames("right") == 1


def test_label_outputs_become_votes_and_binary_outputs_probabilities() -> None:
    ids = np.array([[0, 1], [2, 1]], np.int64)
    votes = class_probabilities(ids[None], "labels", 3)
    assert votes.shape == (1, 3, 2, 2) and np.array_equal(votes[0].argmax(axis=0), ids)
    x = np.array([[[[-2.0, 0.0], [1.0, 3.0]]]], np.float32)
    np.testing.assert_allclose(class_probabilities(x, "binary_logits", 2), 1 / (1 + np.exp(-x)), atol=1e-6)
    smoother = TemporalSmoother()
    smoother("cam", ids[None], "labels", 3, 0.6, (2, 2), "m")
    flipped = np.array([[1, 1], [2, 0]], np.int64)
    out, kind = smoother("cam", flipped[None], "labels", 3, 0.6, (2, 2), "m")
    # One new vote of weight 0.4 loses to the history of weight 0.6: the first labels stay.
    assert kind == "probabilities" and np.array_equal(out[0].argmax(axis=0), ids)


def test_torch_and_numpy_agree() -> None:
    for kind in ("logits", "probabilities", "binary_logits", "sigmoid"):
        raw = logits(5, 1 if kind in ("binary_logits", "sigmoid") else 3)
        if kind in ("probabilities", "sigmoid"):
            raw = np.abs(raw) / (1 + np.abs(raw))
        ours = TemporalSmoother()
        theirs = TemporalSmoother()
        for seed in (5, 6):
            step = raw + np.float32(seed - 5) * 0.1
            a, _ = ours("c", step, kind, 3, 0.5, SIZE, "m")
            b, _ = theirs("c", torch.from_numpy(step.copy()), kind, 3, 0.5, SIZE, "m")
        np.testing.assert_allclose(a, b.numpy(), atol=1e-6)
    ids = torch.tensor([[[0, 2], [1, 1]]])
    assert torch.equal(class_probabilities(ids, "labels", 3)[0].argmax(dim=0), ids[0])


class Flicker(torch.nn.Module):
    """Two classes decided by the red channel, with a near-tie: red 128 +- 1 flips the class."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        score = (x[:, 0:1] - 128.0 / 255.0) * 400.0
        return torch.cat([torch.zeros_like(score), score], dim=1)


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("backend,device", [("numpy", "cpu")] + [("torch", d) for d in DEVICES])
def test_pipeline_decides_from_the_smoothed_probabilities(backend: str, device: str) -> None:
    """Both backends (the torch one keeps the state on the model's device)."""
    spec = ModelSpec("flicker", 8, 6, ClassMap.from_names(["a", "b"]), output="logits")
    runtime = TorchModuleRuntime(Flicker().to(device), spec, torch.device(device))
    pipeline = SegmentationPipeline(runtime, backend=backend)
    high = np.full((6, 8, 3), 140, np.uint8)   # class b, confidently
    low = np.full((6, 8, 3), 126, np.uint8)    # class a, less surely (logit -3.1)
    smooth = SegmentationOptions(temporal_smoothing=0.8, stream="front")
    raw = SegmentationOptions(stream="front")
    assert (pipeline(high, smooth).labels == 1).all()
    # One barely-"a" frame after a confident "b": smoothing keeps b, no smoothing flips to a.
    assert (pipeline(low, smooth).labels == 1).all()
    assert (pipeline(low, raw).labels == 0).all()
    # Another camera has its own history: its first frame is its own.
    assert (pipeline(low, SegmentationOptions(temporal_smoothing=0.8, stream="rear")).labels == 0).all()
    # A stream whose input size changes starts again.
    assert (pipeline(high, smooth).labels == 1).all()
    assert (pipeline(np.full((12, 16, 3), 126, np.uint8), smooth).labels == 0).all()
