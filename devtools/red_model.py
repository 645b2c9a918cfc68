"""A model file whose answer is known: red pixels are 'person', everything else background.

The RGB-D node tests (depth clouds, compressed depth, depth_filtered) need a model whose mask they
can predict pixel for pixel; this writes one as TorchScript or ONNX with its description."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


class RedIsPerson(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        person = torch.minimum(x[:, 0:1] - 0.5, 0.5 - x[:, 1:2]) * 100.0
        return torch.cat([torch.zeros_like(person), person], dim=1)


def write_red_model(folder: Path, width: int, height: int, kind: str = "pt") -> Path:
    """`folder`/red_is_person.<kind> (`pt`: TorchScript, `onnx`) and its description YAML, for an
    input of `width` x `height` (stretched)."""
    path = folder / f"red_is_person.{kind}"
    if kind == "pt":
        torch.jit.script(RedIsPerson()).save(str(path))
    else:
        # dynamo=False: the torch.export-based exporter needs onnxscript, absent here.
        torch.onnx.export(RedIsPerson(), (torch.zeros(1, 3, height, width),), str(path), dynamo=False,
                          input_names=["image"], output_names=["logits"], opset_version=17)
    (folder / "red_is_person.yaml").write_text(
        f"name: red_is_person\n"
        f"input: {{width: {width}, height: {height}, color_order: rgb, scale: 0.00392156862745098, resize: stretch}}\n"
        f"output: logits\n"
        f"classes:\n  - background\n  - {{name: person, color: [220, 20, 60], obstacle: true}}\n")
    return path


def sorted_rows(points: np.ndarray, decimals: int = 4) -> np.ndarray:
    """Points rounded and sorted row by row: clouds compared as sets, whatever their order."""
    rounded = np.round(points.astype(np.float64), decimals)
    return rounded[np.lexsort(rounded.T[::-1])]
