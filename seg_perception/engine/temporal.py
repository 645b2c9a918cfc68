"""Temporal smoothing of class probabilities, per camera stream. ROS-free.

A mask decided frame by frame flickers: pixels near a class boundary, or where two classes score
alike, change class from one frame to the next with sensor noise and camera shake, and every
consumer (a costmap, an octomap, a person) sees obstacles blink. Smoothing the model's class
probabilities over frames with an exponential moving average,

    s_t = a * s_(t-1) + (1 - a) * p_t,        a = temporal_smoothing in [0, 1)

and deciding each pixel's class from s_t removes most flips for a lag of about a / (1 - a)
frames. It runs at the network's output resolution (before upsampling), where it is cheapest,
on every output kind:

- logits -> softmax probabilities; probabilities as they are;
- sigmoid / binary logits -> the probability of class 1;
- label outputs -> one-hot votes (an exponentially weighted majority vote).

The state is per stream (camera) and starts again when the stream's input size, the network
output's shape or the model changes: averaging probabilities of different pixels or classes
is meaningless. a = 0 is off and drops the stream's state, so turning it on again starts fresh.
Works on numpy arrays and torch tensors alike (on the tensor's device).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

SMOOTHED_KIND = {"logits": "probabilities", "probabilities": "probabilities", "labels": "probabilities",
                 "sigmoid": "sigmoid", "binary_logits": "sigmoid"}
"""The output kind that describes the smoothed array, per model output kind."""


@dataclass
class _Stream:
    key: tuple[Any, ...]
    state: Any
    frames: int = 1


def class_probabilities(raw: Any, kind: str, num_classes: int) -> Any:
    """A (1, C, H, W) raw output (labels: (1, H, W), (1, 1, H, W) or (H, W)) as float32
    probabilities of the kind `SMOOTHED_KIND[kind]` names, numpy or torch like `raw`."""
    if isinstance(raw, np.ndarray):
        return _probabilities_numpy(raw, kind, num_classes)
    import torch

    if kind == "labels":
        ids = raw.reshape(raw.shape[-2:]).long()
        classes = torch.arange(num_classes, device=raw.device).view(-1, 1, 1)
        return (ids[None] == classes).float()[None]
    out = raw.float()
    if kind == "logits":
        return torch.softmax(out, dim=1)
    if kind == "binary_logits":
        return torch.sigmoid(out)
    return out.clone() if out is raw else out


def _probabilities_numpy(raw: np.ndarray, kind: str, num_classes: int) -> np.ndarray:
    if kind == "labels":
        ids = raw.reshape(raw.shape[-2:])
        classes = np.arange(num_classes, dtype=ids.dtype).reshape(-1, 1, 1)
        return (ids[None] == classes).astype(np.float32)[None]
    out = np.asarray(raw, np.float32)
    if kind == "logits":
        top = out.max(axis=1, keepdims=True)
        exp = cv2.exp(np.ascontiguousarray(out - top).reshape(1, -1)).reshape(out.shape)
        return exp / exp.sum(axis=1, keepdims=True)
    if kind == "binary_logits":
        return 1.0 / (1.0 + cv2.exp(np.ascontiguousarray(-out).reshape(1, -1)).reshape(out.shape))
    return out.copy() if out is raw else out


class TemporalSmoother:
    """Exponential smoothing of class probabilities, one state per stream. Not thread-safe: the
    engine thread owns it."""

    def __init__(self) -> None:
        self._streams: dict[str, _Stream] = {}

    def __len__(self) -> int:
        return len(self._streams)

    def frames(self, stream: str) -> int:
        """How many frames the stream's current state has averaged (0: none)."""
        entry = self._streams.get(stream)
        return 0 if entry is None else entry.frames

    def reset(self, stream: str | None = None) -> None:
        """Forget one stream's history, or every stream's (None)."""
        if stream is None:
            self._streams.clear()
        else:
            self._streams.pop(stream, None)

    def __call__(self, stream: str, raw: Any, kind: str, num_classes: int, alpha: float,
                 source_size: tuple[int, int], model: Any) -> tuple[Any, str]:
        """(output, kind) to decide classes from: `raw` itself when `alpha` is 0, else the
        smoothed probabilities of `stream` including this frame. `source_size` (the input
        image's width, height) and `model` (any value naming the model) restart the state when
        they change. The returned array is the state: read it before the stream's next call."""
        if not 0.0 <= alpha < 1.0:
            raise ValueError(f"temporal smoothing must be in [0, 1), got {alpha}")
        if alpha == 0.0:
            self._streams.pop(stream, None)
            return raw, kind
        probs = class_probabilities(raw, kind, num_classes)
        key = (model, kind, tuple(source_size), tuple(probs.shape), str(getattr(probs, "device", "cpu")))
        entry = self._streams.get(stream)
        if entry is None or entry.key != key:
            self._streams[stream] = _Stream(key, probs)
            return probs, SMOOTHED_KIND[kind]
        state = entry.state
        # In place: state = a * state + (1 - a) * probs, no full-size temporaries kept.
        state *= alpha
        probs *= 1.0 - alpha
        state += probs
        entry.frames += 1
        return state, SMOOTHED_KIND[kind]
