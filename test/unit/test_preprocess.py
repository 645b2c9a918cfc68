"""uint8 RGB -> normalized NCHW input: the OpenCV (CPU) and torch preprocessors against values
worked out here, and against each other."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from seg_perception.model.labels import ClassMap
from seg_perception.engine.preprocess import CpuPreprocessor, TorchPreprocessor, normalization
from seg_perception.model.base import ModelSpec

CPU = torch.device("cpu")
DEVICES = [CPU] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
CLASSES = ClassMap.from_names(["a", "b", "c"])
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def _spec(net: tuple[int, int] = (64, 48), resize: str = "stretch", color_order: str = "rgb",
          mean: tuple[float, float, float] = (0.0, 0.0, 0.0), std: tuple[float, float, float] = (1.0, 1.0, 1.0),
          pad_value: int = 0, scale: float = 1 / 255) -> ModelSpec:
    return ModelSpec("t", net[0], net[1], CLASSES, output="logits", color_order=color_order,  # type: ignore[arg-type]
                     scale=scale, mean=mean, std=std, resize=resize, pad_value=pad_value)  # type: ignore[arg-type]


def _image(w: int, h: int, seed: int = 0) -> np.ndarray:
    """Smooth random RGB (a camera frame, not noise): resampling differences stay small."""
    rng = np.random.default_rng(seed)
    coarse = torch.from_numpy(rng.uniform(0, 255, (1, 3, max(h // 16, 2), max(w // 16, 2))).astype(np.float32))
    img = F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)[0].permute(1, 2, 0)
    return img.round().clamp(0, 255).to(torch.uint8).numpy().copy()


def _expected_norm(pixels: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """(..., 3) uint8 RGB -> normalized values in the model's channel order, by the formula."""
    x = pixels.astype(np.float64)
    if spec.color_order == "bgr":
        x = x[..., ::-1]
    return (x * spec.scale - np.asarray(spec.mean)) / np.asarray(spec.std)


def _cpu(spec: ModelSpec) -> object:
    """CpuPreprocessor returning its numpy batch as a torch tensor (shared memory), so the same
    assertions read both paths."""
    pre = CpuPreprocessor(spec)

    def call(rgb: np.ndarray) -> tuple[torch.Tensor, object]:
        batch, place = pre(rgb)
        assert isinstance(batch, np.ndarray) and batch.dtype == np.float32
        return torch.from_numpy(batch), place
    return call


def _both(spec: ModelSpec, device: torch.device = CPU) -> list[object]:
    return [CpuPreprocessor(spec), TorchPreprocessor(spec, device)]


def test_normalization_coefficients() -> None:
    a, b = normalization(_spec(mean=MEAN, std=STD))
    np.testing.assert_allclose(a, [1 / 255 / s for s in STD], rtol=1e-6)
    np.testing.assert_allclose(b, [-m / s for m, s in zip(MEAN, STD)], rtol=1e-6)


@pytest.mark.parametrize("color_order", ["rgb", "bgr"])
@pytest.mark.parametrize("which", ["cpu", "torch"])
def test_same_size_input_is_only_normalized(which: str, color_order: str) -> None:
    spec = _spec((40, 30), mean=MEAN, std=STD, color_order=color_order)
    rgb = _image(40, 30)
    pre = _cpu(spec) if which == "cpu" else TorchPreprocessor(spec, CPU)
    batch, place = pre(rgb)
    assert batch.shape == (1, 3, 30, 40) and batch.dtype == torch.float32
    assert place.is_identity_box
    expected = _expected_norm(rgb, spec).transpose(2, 0, 1)[None]
    np.testing.assert_allclose(batch.numpy(), expected, atol=1e-5)


@pytest.mark.parametrize("which", ["cpu", "torch"])
def test_bgr_puts_blue_first(which: str) -> None:
    spec = _spec((8, 8), color_order="bgr")
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0] = 255  # pure red
    pre = _cpu(spec) if which == "cpu" else TorchPreprocessor(spec, CPU)
    batch, _ = pre(rgb)
    assert batch[0, 0].abs().max() == 0 and batch[0, 1].abs().max() == 0
    assert torch.allclose(batch[0, 2], torch.ones(8, 8))


@pytest.mark.parametrize("which", ["cpu", "torch"])
@pytest.mark.parametrize("src, net, box", [
    # (w, h) source, (w, h) net, content box (x0, y0, w, h) worked out by hand
    ((640, 480), (64, 64), (0, 8, 64, 48)),
    ((480, 640), (64, 64), (8, 0, 48, 64)),
    ((640, 480), (64, 36), (8, 0, 48, 36)),
    ((50, 100), (64, 36), (23, 0, 18, 36)),  # 0.36 * 50 = 18, (64 - 18) // 2 = 23
])
def test_letterbox_content_and_padding(which: str, src: tuple[int, int], net: tuple[int, int],
                                       box: tuple[int, int, int, int]) -> None:
    spec = _spec(net, "letterbox", mean=MEAN, std=STD, pad_value=114)
    color = np.array([200, 30, 90], np.uint8)
    rgb = np.broadcast_to(color, (src[1], src[0], 3)).copy()
    pre = _cpu(spec) if which == "cpu" else TorchPreprocessor(spec, CPU)
    batch, place = pre(rgb)
    assert batch.shape == (1, 3, net[1], net[0])
    x0, y0, w, h = box
    assert (place.pad_left, place.pad_top, place.content_w, place.content_h) == box
    inside = np.zeros((net[1], net[0]), bool)
    inside[y0:y0 + h, x0:x0 + w] = True
    values = batch[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(values[inside], np.broadcast_to(_expected_norm(color, spec), (inside.sum(), 3)),
                               atol=1e-5)
    pad = _expected_norm(np.array([114, 114, 114], np.uint8), spec)
    np.testing.assert_allclose(values[~inside], np.broadcast_to(pad, ((~inside).sum(), 3)), atol=1e-5)


@pytest.mark.parametrize("device", DEVICES, ids=str)
@pytest.mark.parametrize("resize", ["stretch", "letterbox"])
@pytest.mark.parametrize("color_order", ["rgb", "bgr"])
@pytest.mark.parametrize("src, net", [
    ((640, 480), (64, 64)),    # downsample
    ((1920, 1080), (96, 64)),
    ((480, 640), (64, 48)),    # portrait into landscape
    ((31, 23), (64, 48)),      # upsample
])
def test_cpu_and_torch_preprocessing_agree(device: torch.device, resize: str, color_order: str,
                                           src: tuple[int, int], net: tuple[int, int]) -> None:
    spec = _spec(net, resize, color_order, MEAN, STD, pad_value=114)
    rgb = _image(*src, seed=src[0])
    cpu_array, cpu_place = CpuPreprocessor(spec)(rgb)
    cpu_batch = torch.from_numpy(cpu_array)
    dev_batch, dev_place = TorchPreprocessor(spec, device)(rgb)
    assert cpu_place == dev_place
    assert dev_batch.device.type == device.type
    assert cpu_batch.shape == dev_batch.shape == (1, 3, net[1], net[0])
    # One uint8 step after normalization: 1/255 / std.
    step = (1 / 255) / np.asarray(STD, np.float32)
    diff = (cpu_batch - dev_batch.cpu()).abs().amax(dim=(0, 2, 3)).numpy()
    assert (diff <= step * 1.01).all(), f"max difference {diff} exceeds one uint8 step {step}"


def test_dtype_is_honoured() -> None:
    spec = _spec((16, 16))
    rgb = _image(20, 20)
    assert CpuPreprocessor(spec)(rgb)[0].dtype == np.float32
    assert TorchPreprocessor(spec, CPU, torch.float64)(rgb)[0].dtype == torch.float64


def test_torch_preprocessor_keeps_the_uploaded_frame() -> None:
    pre = TorchPreprocessor(_spec((16, 16)), CPU)
    rgb = _image(20, 10)
    pre(rgb)
    assert pre.frame is not None and pre.frame.dtype == torch.uint8
    np.testing.assert_array_equal(pre.frame.cpu().numpy(), rgb)


def test_non_contiguous_input() -> None:
    """A channel-reversed view (BGR -> RGB by slicing) or a crop is accepted as it is."""
    spec = _spec((32, 24), "letterbox")
    bgr = _image(80, 50)
    rgb_view = bgr[5:45, :, ::-1]
    for pre in _both(spec):
        batch, _ = pre(rgb_view)  # type: ignore[operator]
        reference, _ = type(pre)(spec, *([CPU] if isinstance(pre, TorchPreprocessor) else []))(
            np.ascontiguousarray(rgb_view))
        torch.testing.assert_close(batch, reference)
