"""Every model output checked on every frame before it becomes a mask, at network resolution.

A model checked once at load, on zeros, can still answer a real frame with NaN or inf (an fp16
overflow, a broken export), more channels than its description has classes (a Triton server
serving another version), or label ids of no class (300 would be published as 300 % 256 = 44).
Each would be published as a plausible mask: NaN logits argmax to class 0 at confidence 255.
Checking costs one reduction over the network-sized output (microseconds on a CPU, one
synchronisation on a GPU); a frame that fails is counted and not published.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..model.base import ModelSpec
from ..model.labels import UNLABELED

__all__ = ["ModelOutputError", "check_output"]


class ModelOutputError(ValueError):
    """A model output that cannot be turned into a mask; the text names the model and the fault."""

    def __init__(self, model: str, problem: str, fault: str) -> None:
        super().__init__(f"model '{model}' {problem}")
        self.fault = fault
        """A fixed word ('not_finite', 'channels', 'shape', 'label_ids'), for counting and throttling."""


def _valid_ids(spec: ModelSpec) -> np.ndarray:
    lut = np.zeros(256, bool)
    lut[[c.id for c in spec.classes.classes]] = True
    lut[UNLABELED] = True
    return lut


def check_output(output: Any, spec: ModelSpec, batch: int) -> None:
    """Raise ModelOutputError unless `output` (numpy or torch, N first) is what `spec` says a
    model of this kind returns for `batch` frames: shape and channels, finite values, and for a
    label-id output only ids of the class list (or 255, unlabeled)."""
    shape = tuple(int(d) for d in output.shape)
    name = spec.name
    if spec.output == "labels":
        if len(shape) not in (3, 4) or shape[0] != batch or (len(shape) == 4 and shape[1] != 1):
            raise ModelOutputError(name, f"returned label ids of shape {shape}; expected ({batch}, [1,] H, W)",
                                   "shape")
        if not _finite(output):
            raise ModelOutputError(name, "returned non-finite label ids (NaN or inf)", "not_finite")
        low, high = _min_max(output)
        valid = _valid_ids(spec)
        if low < 0 or high > 255 or not _all_in(output, valid):
            raise ModelOutputError(name, f"returned label ids outside its classes "
                                         f"{[c.id for c in spec.classes.classes]} (ids seen {low:g}..{high:g})",
                                   "label_ids")
        return
    expected = spec.expected_channels()
    if len(shape) != 4 or shape[0] != batch or shape[1] != expected:
        raise ModelOutputError(name, f"returned shape {shape}; its description ({spec.output}, "
                                     f"{len(spec.classes)} classes) needs ({batch}, {expected}, H, W)", "channels")
    if not _finite(output):
        raise ModelOutputError(name, "returned non-finite values (NaN or inf)", "not_finite")


def _min_max(output: Any) -> tuple[float, float]:
    if isinstance(output, np.ndarray):
        return float(output.min()), float(output.max())
    import torch

    low, high = torch.aminmax(output)
    return float(low.item()), float(high.item())


def _all_in(output: Any, valid: np.ndarray) -> bool:
    """Every id (already known to be within 0..255) is a class id or 255."""
    if valid[:256].all():
        return True
    ids = output if isinstance(output, np.ndarray) else output.cpu().numpy()
    return bool(valid[ids.astype(np.uint8)].all())


def _finite(output: Any) -> bool:
    """No NaN or inf in `output`. A sum is NaN or inf whenever a value is, so one reduction in
    float32 (no boolean array: ~10x cheaper than isfinite().all() on a 2x256x256 output, measured
    with torch on this project's CPU) answers nearly every frame; only a non-finite sum, which
    finite values could also give by overflowing, is checked value by value."""
    if isinstance(output, np.ndarray):
        if output.dtype.kind != "f":
            return True
        with np.errstate(over="ignore", invalid="ignore"):
            if np.isfinite(output.sum(dtype=np.float32 if output.itemsize <= 4 else None)):
                return True
        return bool(np.isfinite(output).all())
    import torch

    if not output.is_floating_point():
        return True
    total = output.sum(dtype=torch.float32 if output.element_size() <= 4 else None)
    if bool(torch.isfinite(total).item()):
        return True
    return bool(torch.isfinite(output).all().item())
