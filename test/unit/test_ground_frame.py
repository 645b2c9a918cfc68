"""Ground projection in engine.frame.FrameProcessor (no DDS): a rendered scene segmented by a real
model, the scan made at another mask size than the image (the lens follows), each problem said
in the frame's status; and the ground counters behind /diagnostics."""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from devtools.fakes import FakeClock
from devtools.ground_scenes import FREE, OBSTACLE, SKY, Box, Scene, look, pinhole, scan_errors
from seg_perception.engine.frame import FrameProcessor, FrameRequest
from seg_perception.engine.pipeline import SegmentationPipeline
from seg_perception.live import stats
from seg_perception.model.base import ModelSpec
from seg_perception.model.labels import ClassMap
from seg_perception.model.runtimes.torch_module import TorchModuleRuntime
from seg_perception.wire.images import fill_image

W, H = 200, 150
COLORS = {FREE: (100, 100, 100), OBSTACLE: (230, 30, 30), SKY: (30, 30, 230)}
SCENE = Scene(W, H, pinhole(W, H, 80.0), look(height=1.0, pitch_deg=15.0, roll_deg=2.0),
              d=np.array([-0.2, 0.05, 0.0, 0.0, 0.0]),
              boxes=(Box(4.0, 4.5, -3.0, 0.5, 1.5), Box(2.5, 2.8, 0.8, 1.6, 0.8)))


class ColorClasses(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r, b = x[:, 0:1], x[:, 2:3]
        return torch.cat([torch.minimum(0.5 - r, 0.5 - b), r - 0.5, b - 0.5], dim=1) * 100.0


@pytest.fixture(scope="module")
def processor() -> FrameProcessor:
    classes = ClassMap.from_config([{"name": "floor", "free": True}, {"name": "box", "obstacle": True}, "sky"])
    spec = ModelSpec("floor_boxes", W, H, classes, output="logits", scale=1 / 255, mean=(0.0, 0.0, 0.0),
                     std=(1.0, 1.0, 1.0))
    return FrameProcessor(SegmentationPipeline(TorchModuleRuntime(ColorClasses(), spec, torch.device("cpu"))))


@pytest.fixture(scope="module")
def frame() -> Any:
    lut = np.zeros((256, 3), np.uint8)
    for label, color in COLORS.items():
        lut[label] = color
    msg = SimpleNamespace(header=SimpleNamespace(stamp=SimpleNamespace(sec=3, nanosec=4), frame_id="cam"),
                          height=0, width=0, encoding="", is_bigendian=0, step=0, data=b"")
    return fill_image(msg, lut[SCENE.render()], "rgb8")


def request(**kwargs: Any) -> FrameRequest:
    return dataclasses.replace(FrameRequest(ground=True), **kwargs)


def test_a_smaller_mask_projects_through_the_scaled_lens(processor: FrameProcessor, frame: Any) -> None:
    """The mask is 100x75 (output_size) of a 200x150 image: K is scaled, D kept, and the ranges still
    match the scene within one (mask) pixel's footprint."""
    req = request(output_size=(100, 75))
    out = processor.process(frame, req, camera_info=SCENE.camera_info())
    processor.add_ground(out, req, SCENE.pose, "base_link")
    assert out.status.ground_error == "" and out.ground is not None and out.ground_frame_id == "base_link"
    assert out.segmentation is not None and out.segmentation.labels.shape == (75, 100)
    coarse = Scene(100, 75, SCENE.k, SCENE.pose, d=SCENE.d, boxes=SCENE.boxes)
    coarse.k = np.array([[SCENE.k[0, 0] / 2, 0, (SCENE.k[0, 2] + 0.5) / 2 - 0.5],
                         [0, SCENE.k[1, 1] / 2, (SCENE.k[1, 2] + 0.5) / 2 - 0.5], [0, 0, 1]])
    scan = out.ground
    assert scan_errors(coarse, scan.ranges, scan.angle_min, scan.angle_increment, 10.0).checked >= 20
    assert "ground" in out.timings_ms


def test_each_missing_part_is_named(processor: FrameProcessor, frame: Any) -> None:
    req = request()
    out = processor.process(frame, req)
    processor.add_ground(out, req, SCENE.pose, "base_link")
    assert out.ground is None and "no camera_info" in out.status.ground_error

    out = processor.process(frame, req, camera_info=SCENE.camera_info())
    processor.add_ground(out, req, None, "base_link", "no transform base_link <- cam")
    assert out.ground is None and out.status.ground_error == "no transform base_link <- cam"

    bad = SCENE.camera_info()
    bad.distortion_model = "kannala_brandt"
    out = processor.process(frame, req, camera_info=bad)
    processor.add_ground(out, req, SCENE.pose, "base_link")
    assert out.ground is None and "kannala_brandt" in out.status.ground_error

    saved = processor.class_map
    processor.class_map = saved.with_free([])
    try:
        out = processor.process(frame, req, camera_info=SCENE.camera_info())
        processor.add_ground(out, req, SCENE.pose, "base_link")
        assert out.ground is None and "free_classes" in out.status.ground_error
    finally:
        processor.class_map = saved

    off = FrameRequest()  # ground projection not asked for: nothing done, nothing said
    out = processor.process(frame, off, camera_info=SCENE.camera_info())
    processor.add_ground(out, off, SCENE.pose, "base_link")
    assert out.ground is None and out.status.ground_error == ""


def test_ground_counters_and_verdict() -> None:
    node_stats = stats.NodeStats(clock=FakeClock())
    assert stats.ground_verdict(node_stats.snapshot()) == (stats.OK, "no scan requested yet")
    node_stats.ground_result(None)
    node_stats.ground_result("image: no transform")
    node_stats.ground_result("image: no transform")
    snap = node_stats.snapshot()
    assert (snap.scans_out, snap.ground_failed) == (1, 2)
    assert stats.ground_verdict(snap) == (stats.WARN, "no scan for the last 2 frames: image: no transform")
    node_stats.ground_result(None)
    assert stats.ground_verdict(node_stats.snapshot()) == (stats.OK, "2 scans published")
