"""The segmentation engine end to end, on small real models built here (fixed convolutions and
position-coded label maps whose output can be worked out by hand) and on the built-in selfie
model with a bundled photo."""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from torch import nn

from seg_perception.model.labels import UNLABELED, ClassMap
from seg_perception.engine.pipeline import SegmentationOptions, SegmentationPipeline
from seg_perception.model import load_model
from seg_perception.model.base import ModelSpec
from seg_perception.model.runtimes.torch_module import TorchModuleRuntime
from seg_perception.offline.sources import sample_photo

CPU = torch.device("cpu")
BACKENDS = ["numpy", "torch"]
TIMING_KEYS = {"batch", "preprocess", "inference", "postprocess", "colorize", "total"}


# tiny real models -------------------------------------------------------------------------

class PositionBands(nn.Module):
    """Ignores the pixels: class id = (row band) * cols + (column band) of the network input,
    bands `band` network pixels wide, output at `stride`. Lets a test predict every id."""

    def __init__(self, band: int, stride: int = 1, cols: int = 8) -> None:
        super().__init__()
        self.band, self.stride, self.cols = band, stride, cols

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2] // self.stride, x.shape[-1] // self.stride
        # network-pixel coordinate of each output cell's center
        cx = (torch.arange(w, device=x.device) + 0.5) * self.stride
        cy = (torch.arange(h, device=x.device) + 0.5) * self.stride
        col = torch.div(cx, self.band, rounding_mode="floor").long()
        row = torch.div(cy, self.band, rounding_mode="floor").long()
        return (row[:, None] * self.cols + col[None, :])[None, None]


class RedBluePixels(nn.Module):
    """A fixed 1x1 convolution (RGB input in 0..1): class 1 where red is bright, class 2 where
    blue is dark (the letterbox padding in the tests), class 0 otherwise."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.bias.zero_()
            self.conv.weight[1, 0] = 40.0   # class 1: 40 * (R - 0.5)
            self.conv.bias[1] = -20.0
            self.conv.weight[2, 2] = -40.0  # class 2: 40 * (0.5 - B)
            self.conv.bias[2] = 20.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def _band_runtime(net: tuple[int, int], resize: str, band: int, stride: int = 1) -> TorchModuleRuntime:
    classes = ClassMap.from_names([f"b{i}" for i in range(64)])
    spec = ModelSpec("bands", net[0], net[1], classes, output="labels", resize=resize)  # type: ignore[arg-type]
    return TorchModuleRuntime(PositionBands(band, stride), spec, CPU)


def _pixel_runtime(net: tuple[int, int] = (256, 256), resize: str = "letterbox") -> TorchModuleRuntime:
    classes = ClassMap.from_config(["background", {"name": "red", "color": [255, 0, 0]},
                                    {"name": "padding", "color": [0, 255, 0]}])
    spec = ModelSpec("pixels", net[0], net[1], classes, output="logits", resize=resize,  # type: ignore[arg-type]
                     pad_value=0)
    return TorchModuleRuntime(RedBluePixels(), spec, CPU)


def _band_expected(content: tuple[int, int], pad: tuple[int, int], out: tuple[int, int], band: int,
                   cols: int = 8) -> np.ndarray:
    """The id every output pixel must get, from the geometry alone (done by hand here)."""
    u = (np.arange(out[0]) + 0.5) * content[0] / out[0] + pad[0]
    v = (np.arange(out[1]) + 0.5) * content[1] / out[1] + pad[1]
    return (np.floor(v / band)[:, None] * cols + np.floor(u / band)[None, :]).astype(np.uint8)


# letterbox is undone exactly ------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_letterbox_undone_position_bands(backend: str) -> None:
    """640x480 letterboxed into 256x256 (content rows 32..223). Bands are 32 px, so row bands 0
    and 7 lie entirely in the padding and must never appear; every other id is predictable."""
    pipeline = SegmentationPipeline(_band_runtime((256, 256), "letterbox", band=32, stride=2), backend)
    labels = pipeline(np.zeros((480, 640, 3), np.uint8)).labels
    assert labels.shape == (480, 640)
    rows = labels // 8
    assert not np.isin(rows, [0, 7]).any(), "the letterbox padding leaked into the output"
    assert set(np.unique(rows).tolist()) == {1, 2, 3, 4, 5, 6}
    # content 256x192 at top 32; no output pixel center falls on a band edge in this geometry
    expected = _band_expected((256, 192), (0, 32), (640, 480), band=32)
    np.testing.assert_array_equal(labels, expected)


@pytest.mark.parametrize("backend", BACKENDS)
def test_letterbox_undone_portrait_into_landscape_net(backend: str) -> None:
    """480x640 into 256x144: content 108x144 at left 74. Column bands 16 px wide: bands 0-3
    (x < 64) and 12-15 (x >= 192) are padding only."""
    classes = ClassMap.from_names([f"b{i}" for i in range(160)])  # 9 row bands x 16 column bands
    spec = ModelSpec("bands", 256, 144, classes, output="labels", resize="letterbox")
    pipeline = SegmentationPipeline(TorchModuleRuntime(PositionBands(16, 1, cols=16), spec, CPU), backend)
    labels = pipeline(np.zeros((640, 480, 3), np.uint8)).labels
    cols = labels % 16
    assert cols.min() >= 4 and cols.max() <= 11
    u = (np.arange(480) + 0.5) * 108 / 480 + 74
    v = (np.arange(640) + 0.5) * 144 / 640
    expected = (np.floor(v / 16)[:, None] * 16 + np.floor(u / 16)[None, :]).astype(np.uint8)
    ties = np.zeros_like(expected, bool)
    ties[:, np.abs(u / 16 - np.round(u / 16)) < 1e-6] = True
    ties[np.abs(v / 16 - np.round(v / 16)) < 1e-6, :] = True
    np.testing.assert_array_equal(labels[~ties], expected[~ties])


def _stripes(w: int, h: int, col_period: int, row_period: int) -> np.ndarray:
    """R: bright in alternate column bands XOR row bands (a checkerboard with uneven cells);
    B: 255 everywhere, so only the letterbox padding (pad_value 0) is dark blue."""
    x = (np.arange(w) // col_period) % 2
    y = (np.arange(h) // row_period) % 2
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = 255 * (y[:, None] ^ x[None, :])
    img[..., 2] = 255
    return img


def _near_edge(w: int, h: int, col_period: int, row_period: int, margin: int) -> np.ndarray:
    dx = np.arange(w) % col_period
    dy = np.arange(h) % row_period
    near_x = (np.minimum(dx, col_period - dx) < margin) & (np.arange(w) >= margin)
    near_y = (np.minimum(dy, row_period - dy) < margin) & (np.arange(h) >= margin)
    return near_y[:, None] | near_x[None, :]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("src", [(640, 480), (480, 640)])
def test_letterbox_undone_image_content(backend: str, src: tuple[int, int]) -> None:
    """A stripe pattern in the source comes back at the same columns and rows (within 2 px of
    an edge), and the padding class never appears."""
    w, h = src
    image = _stripes(w, h, 53, 37)
    pipeline = SegmentationPipeline(_pixel_runtime((256, 256), "letterbox"), backend)
    labels = pipeline(image).labels
    assert labels.shape == (h, w)
    assert not (labels == 2).any(), "the letterbox padding leaked into the output"
    truth = (image[..., 0] > 127).astype(np.uint8)
    wrong = labels != truth
    assert not (wrong & ~_near_edge(w, h, 53, 37, margin=2)).any()
    # 1 network px = 2.5 source px here, so edges are quantized, but not shifted: on average
    # the transitions sit where the source's do.
    for profile, truth_profile in ((labels[h // 2 + 18], truth[h // 2 + 18]),        # a row
                                   (labels[:, w // 2 + 26], truth[:, w // 2 + 26])):  # a column
        found = np.flatnonzero(np.diff(profile.astype(int)))
        expected = np.flatnonzero(np.diff(truth_profile.astype(int)))
        assert len(found) == len(expected)
        assert np.abs(found - expected).max() <= 2
        assert abs(np.mean(found - expected)) <= 0.75


def test_padding_class_is_seen_at_network_size_only_inside_the_padding() -> None:
    """Sanity check of the model above: it does label the padding when it sees it."""
    runtime = _pixel_runtime((256, 256), "letterbox")
    batch = torch.zeros(1, 3, 256, 256)
    batch[:, 2, 32:224] = 1.0
    ids = runtime(batch)[0].argmax(0)
    assert (ids[:32] == 2).all() and (ids[224:] == 2).all() and not (ids[32:224] == 2).any()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("out", [(320, 240), (160, 90), (1000, 700)])
def test_stretch_position_bands_any_output_size(backend: str, out: tuple[int, int]) -> None:
    """Stretch into a non-square net (64x48, stride 2): every output pixel lands in the band its
    center maps to."""
    pipeline = SegmentationPipeline(_band_runtime((64, 48), "stretch", band=8, stride=2), backend)
    result = pipeline(np.zeros((300, 400, 3), np.uint8), SegmentationOptions(output_size=out))
    assert result.size == out
    u = (np.arange(out[0]) + 0.5) * 64 / out[0]
    v = (np.arange(out[1]) + 0.5) * 48 / out[1]
    expected = (np.floor(v / 8)[:, None] * 8 + np.floor(u / 8)[None, :]).astype(np.uint8)
    # the stride-2 grid resolves only even network pixels: a band edge at 8k is a cell edge, so
    # ties are where a center hits 8k exactly
    ties = np.zeros_like(expected, bool)
    ties[:, np.abs(u / 8 - np.round(u / 8)) < 1e-6] = True
    ties[np.abs(v / 8 - np.round(v / 8)) < 1e-6, :] = True
    np.testing.assert_array_equal(result.labels[~ties], expected[~ties])
    assert (result.confidence == 255).all()  # label models carry no confidence


# options ----------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_output_sizes(backend: str) -> None:
    pipeline = SegmentationPipeline(_pixel_runtime((256, 256), "letterbox"), backend)
    image = _stripes(640, 480, 53, 37)
    sizes = {
        "input": (640, 480),
        "network": (256, 192),  # the image's box at network resolution
        (100, 50): (100, 50),
        (1280, 960): (1280, 960),
    }
    for request, size in sizes.items():
        result = pipeline(image, SegmentationOptions(output_size=request, want_color=True, want_overlay=True))
        assert result.size == size
        assert result.labels.shape == result.confidence.shape == (size[1], size[0])
        assert result.labels.dtype == result.confidence.dtype == np.uint8
        assert result.color is not None and result.color.shape == (size[1], size[0], 3)
        assert result.overlay is not None and result.overlay.shape == (size[1], size[0], 3)
        assert result.labels.flags.c_contiguous  # published as mono8 with step == width
    assert pipeline.output_size_for(640, 480, "network") == (256, 192)
    assert pipeline.output_size_for(480, 640, "network") == (192, 256)


@pytest.mark.parametrize("backend", BACKENDS)
def test_color_and_overlay_only_when_asked(backend: str) -> None:
    pipeline = SegmentationPipeline(_pixel_runtime(), backend)
    image = _stripes(320, 240, 53, 37)
    plain = pipeline(image)
    assert plain.color is None and plain.overlay is None
    color_only = pipeline(image, SegmentationOptions(want_color=True))
    assert color_only.color is not None and color_only.overlay is None
    overlay_only = pipeline(image, SegmentationOptions(want_overlay=True))
    assert overlay_only.color is None and overlay_only.overlay is not None
    both = pipeline(image, SegmentationOptions(want_color=True, want_overlay=True, overlay_alpha=1.0))
    assert both.color is not None and both.overlay is not None
    red = both.labels == 1
    # palette: class 1 pure red; class 0 black is never painted
    assert (both.color[red] == (255, 0, 0)).all() and (both.color[~red] == 0).all()
    assert (both.overlay[red] == (255, 0, 0)).all()
    np.testing.assert_array_equal(both.overlay[~red], image[~red])
    for result in (plain, color_only, overlay_only, both):
        assert set(result.timings_ms) == TIMING_KEYS
        assert all(v >= 0.0 for v in result.timings_ms.values())
        parts = sum(v for k, v in result.timings_ms.items() if k not in ("total", "batch"))  # batch: a count
        assert result.timings_ms["total"] == pytest.approx(parts, rel=0.05, abs=0.05)


@pytest.mark.parametrize("backend", BACKENDS)
def test_confidence_threshold(backend: str) -> None:
    pipeline = SegmentationPipeline(_pixel_runtime(), backend)
    # Mid-grey red (R = 0.5 -> class 1 logit 0 = class 0 logit): confidence 0.5, so any
    # threshold above 0.5 leaves it unlabeled; bright red stays (confidence ~1).
    image = np.zeros((40, 80, 3), np.uint8)
    image[..., 2] = 255
    image[:, :40, 0] = 128
    image[:, 40:, 0] = 255
    result = pipeline(image, SegmentationOptions(confidence_threshold=0.9))
    assert (result.labels[:, :38] == UNLABELED).all()
    assert (result.labels[:, 42:] == 1).all()
    assert (pipeline(image).labels != UNLABELED).all()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bad", [
    np.zeros((48, 64, 3), np.float32),
    np.zeros((48, 64, 3), np.uint16),
    np.zeros((48, 64), np.uint8),
    np.zeros((48, 64, 4), np.uint8),
    np.zeros((48, 64, 1), np.uint8),
    np.zeros((0, 64, 3), np.uint8),
    np.zeros((48, 0, 3), np.uint8),
    np.zeros((2, 48, 64, 3), np.uint8),
], ids=["float32", "uint16", "gray", "rgba", "one-channel", "no-rows", "no-cols", "batch"])
def test_rejects_bad_input(backend: str, bad: np.ndarray) -> None:
    pipeline = SegmentationPipeline(_pixel_runtime(), backend)
    with pytest.raises(ValueError):
        pipeline(bad)


def test_unknown_backend() -> None:
    with pytest.raises(ValueError, match="backend"):
        SegmentationPipeline(_pixel_runtime(), "opencl")


def test_auto_backend_on_cpu_is_numpy() -> None:
    assert SegmentationPipeline(_pixel_runtime(), "auto").backend == "numpy"


def test_non_contiguous_frames() -> None:
    """A BGR frame turned RGB by slicing, and a crop, are valid input."""
    pipeline = SegmentationPipeline(_pixel_runtime(), "numpy")
    image = _stripes(330, 250, 53, 37)
    view = image[5:245, 5:325]
    np.testing.assert_array_equal(pipeline(view).labels, pipeline(np.ascontiguousarray(view)).labels)
    bgr = np.ascontiguousarray(image[..., ::-1])
    np.testing.assert_array_equal(pipeline(bgr[..., ::-1]).labels, pipeline(image).labels)


def test_close_closes_the_runtime() -> None:
    pipeline = SegmentationPipeline(_pixel_runtime())
    pipeline.close()
    with pytest.raises(RuntimeError):
        pipeline(np.zeros((10, 10, 3), np.uint8))


# the real default model -------------------------------------------------------------------

@pytest.fixture(scope="module")
def selfie() -> Iterator[object]:
    runtime = load_model("selfie", "cpu")
    yield runtime
    runtime.close()


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return sample_photo("astronaut")


def test_selfie_finds_the_astronaut(selfie: object, astronaut: np.ndarray) -> None:
    result = SegmentationPipeline(selfie, "numpy")(astronaut)  # type: ignore[arg-type]
    labels = result.labels
    assert labels.shape == astronaut.shape[:2]
    assert set(np.unique(labels).tolist()) <= {0, 1}
    share = (labels == 1).mean()
    assert 0.3 < share < 0.8, f"person covers {share:.0%} of the photo"
    # her face (rows 60..170, columns 180..270) is person; the shuttle (rows 50..250, columns
    # 380..460) and the sky above it are not
    assert (labels[60:170, 180:270] == 1).mean() > 0.95
    assert (labels[50:250, 380:460] == 1).mean() < 0.05
    assert (labels[0:40, 300:512] == 1).mean() < 0.05
    # the confidence is high away from the outline
    assert np.median(result.confidence) > 240


def test_selfie_numpy_and_torch_backends_agree(selfie: object, astronaut: np.ndarray) -> None:
    options = SegmentationOptions(want_color=True, want_overlay=True)
    a = SegmentationPipeline(selfie, "numpy")(astronaut, options)  # type: ignore[arg-type]
    b = SegmentationPipeline(selfie, "torch")(astronaut, options)  # type: ignore[arg-type]
    same = a.labels == b.labels
    assert same.mean() >= 0.995
    assert a.color is not None and b.color is not None and a.overlay is not None and b.overlay is not None
    np.testing.assert_array_equal(a.color[same], b.color[same])
    assert np.abs(a.overlay[same].astype(int) - b.overlay[same].astype(int)).max() <= 1


@pytest.mark.parametrize("size", ["network", (640, 300), (1920, 1080), (100, 100)])
def test_selfie_numpy_and_torch_agree_at_other_sizes(selfie: object, astronaut: np.ndarray,
                                                     size: str | tuple[int, int]) -> None:
    options = SegmentationOptions(output_size=size, want_color=True)
    a = SegmentationPipeline(selfie, "numpy")(astronaut, options)  # type: ignore[arg-type]
    b = SegmentationPipeline(selfie, "torch")(astronaut, options)  # type: ignore[arg-type]
    assert a.size == b.size == (size if isinstance(size, tuple) else (256, 256))
    assert (a.labels == b.labels).mean() >= 0.995


@pytest.mark.parametrize("threshold", [0.0, 0.9])
def test_reused_buffers_give_the_same_results_across_sizes(selfie: object, astronaut: np.ndarray,
                                                          threshold: float) -> None:
    fresh = SegmentationPipeline(selfie, backend="numpy")  # type: ignore[arg-type]
    reused = SegmentationPipeline(selfie, backend="numpy", reuse_buffers=True)  # type: ignore[arg-type]
    for size in ["input", (320, 240), "input", (640, 360)]:
        opts = SegmentationOptions(output_size=size, want_color=True, want_overlay=True,
                                   confidence_threshold=threshold)
        a, b = fresh(astronaut, opts), reused(astronaut, opts)
        for name in ("labels", "confidence", "color", "overlay"):
            assert np.array_equal(getattr(a, name), getattr(b, name)), (name, size)
    # The reused arrays are overwritten by the next call; fresh results are independent.
    first = reused(astronaut, SegmentationOptions(want_color=True)).color
    kept = first.copy()
    reused(np.zeros_like(astronaut), SegmentationOptions(want_color=True))
    assert not np.array_equal(first, kept) or not kept.any()
