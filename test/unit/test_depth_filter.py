"""engine.depth_filter and FrameProcessor's depth_filtered: the paired depth registered to the
mask, in its own encoding, with the excluded classes invalid (MoveIt's depth image)."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch

from seg_perception.engine.depth_filter import exclude_lut, filtered_depth
from seg_perception.engine.frame import DepthFrame, DepthStatus, FrameProcessor, FrameRequest
from seg_perception.engine.pipeline import SegmentationPipeline
from seg_perception.engine.projection import nearest_indices
from seg_perception.model.base import ModelSpec
from seg_perception.model.labels import ClassMap
from seg_perception.model.runtimes.torch_module import TorchModuleRuntime
from seg_perception.wire.images import depth_pixels, fill_image

W, H = 40, 30
BOX = (slice(10, 20), slice(8, 24))  # rows, cols of the red box (even edges: they map onto depth pixels)


class RedIsBox(torch.nn.Module):
    """class 1 (box) where red is bright, else class 0 (floor)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        box = (x[:, 0:1] - 0.5) * 40.0
        return torch.cat([torch.zeros_like(box), box], dim=1)


def image(array: np.ndarray, encoding: str, frame_id: str = "color_optical") -> Any:
    header = SimpleNamespace(stamp=SimpleNamespace(sec=7, nanosec=5), frame_id=frame_id)
    msg = SimpleNamespace(header=header, height=0, width=0, encoding="", is_bigendian=0, step=0, data=b"")
    return fill_image(msg, array, encoding)


def color_frame() -> Any:
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[BOX] = (255, 0, 0)
    return image(rgb, "rgb8")


def labels_with_box(h: int = 6, w: int = 8) -> np.ndarray:
    labels = np.zeros((h, w), np.uint8)
    labels[1:4, 2:6] = 1
    labels[5, 0] = 255  # unlabeled: never excluded unless asked
    return labels


def test_16uc1_excluded_pixels_are_zero_and_the_rest_is_the_registered_depth() -> None:
    depth = np.arange(12, dtype=np.uint16).reshape(3, 4) * 100 + 500  # half the mask's size
    labels = labels_with_box()
    before = depth.copy()
    out = filtered_depth(depth, "16UC1", labels, exclude_lut([1]))
    assert out.dtype == np.uint16 and out.shape == labels.shape and out.flags.c_contiguous
    registered = depth[nearest_indices(3, 6)][:, nearest_indices(4, 8)]
    assert np.array_equal(out[labels == 1], np.zeros(int((labels == 1).sum()), np.uint16))
    assert np.array_equal(out[labels != 1], registered[labels != 1])
    assert np.array_equal(depth, before)  # the input is not written


def test_32fc1_excluded_pixels_are_nan_and_invalid_input_stays_as_it_was() -> None:
    depth = np.full((6, 8), 1.25, np.float32)
    depth[0, 0] = np.inf  # REP 117 "too far" is kept: only excluded pixels change
    depth[0, 1] = 0.0
    labels = labels_with_box()
    out = filtered_depth(depth, "32FC1", labels, exclude_lut([1, 255]))
    assert out.dtype == np.float32
    assert np.isnan(out[labels == 1]).all() and np.isnan(out[5, 0])
    keep = (labels != 1) & (labels != 255)
    assert np.array_equal(out[keep], depth[keep])
    assert out[0, 0] == np.inf and out[0, 1] == 0.0


def test_nothing_excluded_is_a_copy_of_the_registered_depth() -> None:
    depth = np.full((6, 8), 700, np.uint16)
    out = filtered_depth(depth, "16UC1", labels_with_box(), exclude_lut([]))
    assert np.array_equal(out, depth) and out is not depth and not np.shares_memory(out, depth)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="encoding"):
        filtered_depth(np.zeros((2, 2), np.uint16), "mono16", np.zeros((2, 2), np.uint8), exclude_lut([]))
    with pytest.raises(ValueError, match="256"):
        filtered_depth(np.zeros((2, 2), np.uint16), "16UC1", np.zeros((2, 2), np.uint8), np.zeros(10, np.uint8))


def test_big_endian_depth_is_read_in_native_order() -> None:
    mm = np.array([[1000, 2000], [3000, 0]], np.uint16)
    msg = SimpleNamespace(height=2, width=2, encoding="16uc1", is_bigendian=1, step=4, data=mm.astype(">u2").tobytes())
    values, encoding = depth_pixels(msg)
    assert encoding == "16UC1" and values.dtype.isnative and np.array_equal(values, mm)


@pytest.fixture()
def processor() -> FrameProcessor:
    classes = ClassMap.from_names(["floor", "box"], obstacles=["box"])
    spec = ModelSpec("red", W, H, classes, output="logits")  # network size = frame size: exact box edges
    return FrameProcessor(SegmentationPipeline(TorchModuleRuntime(RedIsBox(), spec, torch.device("cpu"))))


def depth_msg(array: np.ndarray, encoding: str) -> Any:
    return image(array, encoding, frame_id="depth_optical")


def test_processor_removes_exactly_the_excluded_class(processor: FrameProcessor) -> None:
    processor.depth_exclude_classes = ["box"]
    mm = np.full((H // 2, W // 2), 1500, np.uint16)
    # Only the filtered depth is wanted: no calibration is needed for it (it is the mask's).
    out = processor.process(color_frame(), FrameRequest(depth_filtered=True), DepthFrame(depth_msg(mm, "16UC1"), None))
    assert out.status.depth is DepthStatus.OK and out.depth_encoding == "16UC1"
    assert out.segmentation is not None and out.depth_filtered is not None
    labels = out.segmentation.labels
    assert (labels[BOX] == 1).all()
    assert out.depth_filtered.shape == (H, W)
    assert np.array_equal(out.depth_filtered == 0, labels == 1)
    assert (out.depth_filtered[labels != 1] == 1500).all()
    assert out.labelled_cloud is None and out.obstacle_cloud is None


def test_processor_32fc1_keeps_its_encoding_and_navigation_classes_are_apart(processor: FrameProcessor) -> None:
    processor.depth_exclude_classes = ["floor"]
    meters = np.full((H, W), 0.75, np.float32)
    k = [50.0, 0.0, 19.5, 0.0, 50.0, 14.5, 0.0, 0.0, 1.0]
    out = processor.process(color_frame(), FrameRequest(depth_filtered=True, obstacle_points=True),
                            DepthFrame(depth_msg(meters, "32FC1"), SimpleNamespace(k=k, width=W, height=H)))
    assert out.depth_encoding == "32FC1" and out.depth_filtered is not None and out.segmentation is not None
    labels = out.segmentation.labels
    assert np.array_equal(np.isnan(out.depth_filtered), labels == 0)
    assert (out.depth_filtered[labels == 1] == np.float32(0.75)).all()
    # obstacle_classes (navigation) still name the box: its points are in the obstacle cloud.
    assert out.obstacle_cloud is not None and len(out.obstacle_cloud) == int((labels == 1).sum())


def test_unknown_excluded_class_is_refused(processor: FrameProcessor) -> None:
    with pytest.raises(ValueError, match="depth_exclude_classes.*chair"):
        processor.depth_exclude_classes = ["chair"]
    assert processor.depth_exclude_classes == []


def test_rejected_depth_gives_no_filtered_image(processor: FrameProcessor) -> None:
    bad = depth_msg(np.zeros((4, 4), np.uint8), "mono8")
    out = processor.process(color_frame(), FrameRequest(depth_filtered=True), DepthFrame(bad, None))
    assert out.status.depth is DepthStatus.REJECTED and out.depth_filtered is None
    assert "16UC1" in out.status.depth_error
