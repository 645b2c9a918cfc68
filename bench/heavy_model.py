"""The overload model: a stack of 3x3 convolutions at 256x256 whose depth is calibrated on
this machine so one forward takes about `target_ms` (slower than a 30 Hz camera), saved as
TorchScript with its description YAML so the node loads it like any user model."""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

INPUT_SIZE = 256
CPU_WIDTH, CUDA_WIDTH = 16, 128
"""channels of every hidden layer: a GPU needs wide layers to take ~65 ms in a few hundred"""
DESCRIPTION = """\
# Written by bench/heavy_model.py: a synthetic overload model, not a real segmenter.
name: bench_convstack
input:
  width: {size}
  height: {size}
  color_order: rgb
  scale: 0.00392156862745098
  mean: [0.5, 0.5, 0.5]
  std: [0.25, 0.25, 0.25]
  resize: stretch
output: logits
classes:
  - background
  - {{name: thing, color: [220, 20, 60], obstacle: true}}
"""


class ConvStack(nn.Module):
    def __init__(self, depth: int, width: int, classes: int = 2) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, width, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(width, classes, 1))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _forward_ms(module: nn.Module, device: torch.device, repeats: int = 7) -> float:
    """Fastest of `repeats` forwards: on a shared machine the minimum is what the model costs,
    the rest is other processes."""
    x = torch.rand(1, 3, INPUT_SIZE, INPUT_SIZE, device=device)
    times = []
    with torch.inference_mode():
        module(x)
        for _ in range(repeats):
            start = time.perf_counter()
            module(x)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times.append((time.perf_counter() - start) * 1e3)
    return min(times)


def width_for(device: torch.device) -> int:
    return CUDA_WIDTH if device.type == "cuda" else CPU_WIDTH


def _built(depth: int, device: torch.device, width: int | None = None) -> nn.Module:
    torch.manual_seed(0)
    return ConvStack(depth, width or width_for(device)).eval().to(device)


def calibrate_depth(device: torch.device, target_ms: float = 65.0, max_depth: int = 1000) -> tuple[int, float]:
    """(depth, measured forward ms): fit ms = base + depth * per_layer on two depths, then
    refit through the measurement at the predicted depth until it lands within 15 %."""
    low, high = 4, 16
    t_low, t_high = _forward_ms(_built(low, device), device), _forward_ms(_built(high, device), device)
    per_layer = max((t_high - t_low) / (high - low), 1e-3)
    base = min(max(t_low - low * per_layer, 0.0), 0.5 * target_ms)
    depth, measured = high, t_high
    for _ in range(3):
        depth = int(min(max(round((target_ms - base) / per_layer), 1), max_depth))
        measured = _forward_ms(_built(depth, device), device)
        if 0.85 * target_ms <= measured <= 1.15 * target_ms:
            break
        per_layer = max((measured - base) / depth, 1e-3)
    return depth, measured


@dataclass
class HeavyModel:
    path: Path
    description: Path
    depth: int
    width: int
    forward_ms: float
    """bench-process forward time at calibration (before the node runs)"""


def build_heavy_model(folder: Path, device: torch.device, target_ms: float = 65.0) -> HeavyModel:
    """Calibrate, trace and save `bench_convstack.pt` + `bench_convstack.yaml` into `folder`."""
    depth, measured = calibrate_depth(device, target_ms)
    module = _built(depth, torch.device("cpu"), width_for(device))
    example = torch.rand(1, 3, INPUT_SIZE, INPUT_SIZE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit deprecation notice
        traced = torch.jit.trace(module, example)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "bench_convstack.pt"
    traced.save(str(path))
    description = folder / "bench_convstack.yaml"
    description.write_text(DESCRIPTION.format(size=INPUT_SIZE))
    return HeavyModel(path, description, depth, width_for(device), measured)
