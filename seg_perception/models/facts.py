"""What the built-in networks take and give, without their code: read by model.builtin to
describe a built-in that runs from its ONNX export (ONNX Runtime, OpenVINO), where importing
the torch modules beside this file would import torch for nothing."""
from __future__ import annotations

# (width, height) of the MediaPipe selfie model's two variants
SELFIE_INPUT_SIZES: dict[str, tuple[int, int]] = {"square": (256, 256), "landscape": (256, 144)}
# (width, height) TwinLiteNet was trained at, and the classes of its combined 3-class output
TWINLITENET_INPUT_SIZE: tuple[int, int] = (640, 360)
DRIVABLE_CLASSES: tuple[str, ...] = ("background", "drivable_area", "lane_line")
