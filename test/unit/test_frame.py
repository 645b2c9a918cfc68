"""core.frame.FrameProcessor without DDS: every output of a frame, and each stage's status.

The model is a fixed 1x1 convolution (class 1 = bright red), so the mask of a synthetic frame
is known; depth is REP 118 data built here, so the clouds can be checked point by point."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from devtools import compressed_depth
from seg_perception.wire import pointcloud2 as clouds
from seg_perception.wire.images import fill_image
from seg_perception.engine.frame import DepthFrame, DepthStatus, FrameInput, FrameProcessor, FrameRequest
from seg_perception.model.labels import ClassMap
from seg_perception.engine.pipeline import SegmentationPipeline
from seg_perception.model.base import ModelSpec
from seg_perception.model.runtimes.torch_module import TorchModuleRuntime

W, H = 40, 30
BOX = (slice(10, 20), slice(8, 24))  # rows, cols of the red object
K = [50.0, 0.0, 19.5, 0.0, 50.0, 14.5, 0.0, 0.0, 1.0]


class RedIsObstacle(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[1, 0] = 40.0
            self.conv.bias.copy_(torch.tensor([0.0, -20.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def header(frame_id: str, sec: int = 7) -> Any:
    return SimpleNamespace(stamp=SimpleNamespace(sec=sec, nanosec=5), frame_id=frame_id)


def image(array: np.ndarray, encoding: str, frame_id: str = "color_optical") -> Any:
    msg = SimpleNamespace(header=header(frame_id), height=0, width=0, encoding="", is_bigendian=0, step=0, data=b"")
    return fill_image(msg, array, encoding)


@pytest.fixture(scope="module")
def processor() -> FrameProcessor:
    classes = ClassMap.from_names(["floor", "box"], obstacles=["box"])
    spec = ModelSpec("red", 32, 32, classes, output="logits")
    return FrameProcessor(SegmentationPipeline(TorchModuleRuntime(RedIsObstacle(), spec, torch.device("cpu"))))


def color_frame() -> Any:
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[BOX] = (255, 0, 0)
    return image(rgb, "rgb8")


def depth_frame(meters: float = 2.0, encoding: str = "16UC1", info: Any = "default") -> DepthFrame:
    mm = np.full((H, W), int(meters * 1000), np.uint16)
    msg = image(mm, "16UC1", frame_id="depth_optical")
    msg.encoding = encoding
    cam = SimpleNamespace(k=K, width=W, height=H) if info == "default" else info
    return DepthFrame(msg, cam)


def assert_box_mask(labels: np.ndarray) -> None:
    """The red box is class 1 and the rest class 0, up to one pixel at the box edge: 40 -> 32 ->
    40 px puts some output pixel centers exactly between two network pixels, and OpenCV releases
    break that tie differently (4.6 takes the right one, 5.0 the left); both are nearest."""
    assert (labels[BOX] == 1).all()
    grown = np.zeros_like(labels, dtype=bool)
    grown[BOX[0].start - 1:BOX[0].stop + 1, BOX[1].start - 1:BOX[1].stop + 1] = True
    assert (labels[~grown] == 0).all()


ALL = FrameRequest(confidence=True, color=True, overlay=True, points=True, obstacle_points=True,
                   min_range=0.1, max_range=10.0)


def test_color_outputs_and_clouds_from_one_frame(processor: FrameProcessor) -> None:
    out = processor.process(color_frame(), ALL, depth_frame(2.0))
    assert out.status.image_error == "" and out.status.depth is DepthStatus.OK
    seg = out.segmentation
    assert seg is not None and seg.labels.shape == (H, W)
    assert_box_mask(seg.labels)
    assert seg.confidence is not None and seg.color is not None and seg.overlay is not None
    assert out.cloud_frame_id == "depth_optical"
    cloud = out.labelled_cloud
    assert cloud is not None and cloud.shape == (H, W)
    assert np.array_equal(cloud["label"], seg.labels.astype(np.uint32))
    assert np.allclose(cloud["z"], 2.0)
    # pixel (u, v) -> x = (u - cx) z / fx
    assert cloud["x"][0, 0] == pytest.approx((0 - 19.5) * 2.0 / 50.0)
    obstacles = out.obstacle_cloud
    assert obstacles is not None and obstacles.shape == (int((seg.labels == 1).sum()),)
    assert {"decode", "inference", "clouds", "total"} <= set(out.timings_ms)


@pytest.mark.parametrize("case, status, detail", [
    ("unpaired", DepthStatus.UNPAIRED, ""),
    ("bad encoding", DepthStatus.REJECTED, "unsupported encoding 'mono16'"),
    ("no info", DepthStatus.NO_INTRINSICS, "camera_info"),
    ("zero K", DepthStatus.BAD_INTRINSICS, "focal lengths must be > 0"),
])
def test_a_depth_fault_never_touches_the_color_outputs(processor: FrameProcessor, case: str,
                                                       status: DepthStatus, detail: str) -> None:
    good = processor.process(color_frame(), ALL, depth_frame()).segmentation
    assert good is not None
    depth = {"unpaired": None, "bad encoding": depth_frame(encoding="mono16"),
             "no info": depth_frame(info=None),
             "zero K": depth_frame(info=SimpleNamespace(k=[0.0] * 9, width=W, height=H))}[case]
    out = processor.process(color_frame(), ALL, depth)
    assert out.status.depth is status and status.is_problem
    assert detail in out.status.depth_error
    assert out.status.image_error == ""
    assert out.labelled_cloud is None and out.obstacle_cloud is None
    seg = out.segmentation
    assert seg is not None and np.array_equal(seg.labels, good.labels)
    assert seg.color is not None and seg.overlay is not None and seg.confidence is not None


def test_a_rejected_image_says_why_and_of_what_kind(processor: FrameProcessor) -> None:
    bad = color_frame()
    bad.encoding = "rgb_foo"
    out = processor.process(bad, ALL, depth_frame())
    assert out.segmentation is None
    assert out.status.depth is DepthStatus.NOT_WANTED and out.labelled_cloud is None
    assert "unsupported encoding 'rgb_foo'" in out.status.image_error
    assert out.status.image_error_kind == "encoding"
    short = color_frame()
    short.data = bytes(short.data)[:100]
    assert processor.process(short, ALL).status.image_error_kind == "data_size"


def test_clouds_only_when_asked(processor: FrameProcessor) -> None:
    out = processor.process(color_frame(), FrameRequest(), depth_frame())
    assert out.status.depth is DepthStatus.NOT_WANTED and not out.status.depth.is_problem
    assert out.labelled_cloud is None and out.obstacle_cloud is None and "clouds" not in out.timings_ms
    only_obstacles = FrameRequest(obstacle_points=True)
    out = processor.process(color_frame(), only_obstacles, depth_frame(20.0))
    assert out.labelled_cloud is None
    assert out.obstacle_cloud is not None and out.obstacle_cloud.size == 0  # 20 m is beyond max_range


def test_obstacle_classes_follow_the_class_map(processor: FrameProcessor) -> None:
    original = processor.class_map
    try:
        processor.class_map = original.with_obstacles(["floor"])
        out = processor.process(color_frame(), FrameRequest(obstacle_points=True), depth_frame())
        assert out.segmentation is not None
        floor = int((out.segmentation.labels == 0).sum())
        assert W * H - (BOX[0].stop - BOX[0].start + 2) * (BOX[1].stop - BOX[1].start + 2) <= floor
        assert out.obstacle_cloud is not None and out.obstacle_cloud.size == floor
        assert clouds.XYZ_FIELDS[0].name == "x"
    finally:
        processor.class_map = original


def test_the_color_camera_info_is_checked_once_against_its_image(processor: FrameProcessor) -> None:
    """A usable calibration comes back to be republished; a NaN one is refused with its topic
    named, and the color outputs are untouched either way."""
    good = SimpleNamespace(k=K, width=W, height=H, d=[0.0] * 5, p=[])
    out = processor.process(color_frame(), ALL, None, camera_info=good)
    assert out.camera_info is good and out.status.camera_info_error == ""
    nan = SimpleNamespace(k=[float("nan")] + list(K[1:]), width=W, height=H, d=[], p=[])
    bad = next(processor.process_batch([FrameInput(color_frame(), ALL, nan, "/cam/camera_info")]))
    assert bad.camera_info is None
    assert bad.status.camera_info_error.startswith("/cam/camera_info: ") and "non-finite" in bad.status.camera_info_error
    assert bad.segmentation is not None and bad.segmentation.labels.shape == (H, W)
    assert processor.process(color_frame(), ALL).camera_info is None


@pytest.mark.parametrize("encoding, codec", [("16UC1", "png"), ("16UC1", "rvl"), ("32FC1", "png"), ("32FC1", "rvl")])
def test_compressed_depth_gives_the_clouds_of_its_raw_frame(processor: FrameProcessor, encoding: str,
                                                            codec: str) -> None:
    """image_transport's compressedDepth (encoded as compressed_depth_image_transport does) makes
    the same clouds as the raw depth image a compressedDepth subscriber would hand out."""
    mm = np.full((H, W), 2000, np.uint16)
    mm[:, :5] = 0  # no return
    mm[BOX] = 1500
    depth: np.ndarray = mm if encoding == "16UC1" else mm.astype(np.float32) / 1000
    compressed = compressed_depth.encode(depth, encoding, codec, header=header("depth_optical"))
    if encoding == "32FC1":  # quantized on the way: the raw twin is what the subscriber decodes
        depth = compressed_depth.dequantize(compressed_depth.quantize(depth))
    cam = SimpleNamespace(k=K, width=W, height=H)
    via_compressed = processor.process(color_frame(), ALL, DepthFrame(compressed, cam))
    via_raw = processor.process(color_frame(), ALL, DepthFrame(image(depth, encoding, "depth_optical"), cam))
    assert via_compressed.status.depth is DepthStatus.OK, via_compressed.status.depth_error
    for name in ("labelled_cloud", "obstacle_cloud"):
        got, want = getattr(via_compressed, name), getattr(via_raw, name)
        assert got is not None and want is not None and got.dtype == want.dtype
        assert np.array_equal(got.view(np.uint8), want.view(np.uint8)), name  # NaN rows bit for bit
    assert np.isnan(via_compressed.labelled_cloud["z"][:, :5]).all()
    assert np.allclose(via_compressed.obstacle_cloud["z"], 1.5, atol=1e-3)
