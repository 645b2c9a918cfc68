"""uint8 RGB image -> normalized NCHW model input, on the CPU (OpenCV/numpy) or on the device (torch).

The CPU path resizes the uint8 frame with OpenCV before anything becomes float, so a 1080p
frame costs one small resize instead of a full-resolution float conversion, and returns a
numpy array (torch wraps it without a copy when a torch model runs on the CPU). The torch path
uploads the uint8 frame once and does the same arithmetic on the GPU; it also runs on the
CPU so its logic is tested where there is no GPU. torch is imported only by the torch path.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

from .geometry import Placement
from ..model.base import DeviceLike, ModelSpec, torch_device

if TYPE_CHECKING:
    import torch


def normalization(spec: ModelSpec) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (a, b) with model_input = pixel * a + b, in the model's channel order."""
    std = np.asarray(spec.std, np.float32)
    mean = np.asarray(spec.mean, np.float32)
    return (np.float32(spec.scale) / std).astype(np.float32), (-mean / std).astype(np.float32)


class CpuPreprocessor:
    """OpenCV resize (+ letterbox pad) on uint8, then one fused normalize into a reused array."""

    def __init__(self, spec: ModelSpec, dtype: object = None) -> None:
        """`dtype` is ignored: the batch is float32 and a runtime converts it to its own dtype."""
        self.spec = spec
        a, b = normalization(spec)
        self._a = a.reshape(3, 1, 1)
        self._b = b.reshape(3, 1, 1)
        self._canvas = np.full((spec.input_height, spec.input_width, 3), spec.pad_value, np.uint8)
        self._out = np.empty((1, 3, spec.input_height, spec.input_width), np.float32)

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, Placement]:
        """(1, 3, H, W) float32, reused across calls (valid until the next call), and the placement."""
        spec = self.spec
        h, w = rgb.shape[:2]
        place = Placement.for_policy(spec.resize, w, h, spec.input_width, spec.input_height)
        if (w, h) == (place.content_w, place.content_h):
            resized = rgb
        else:
            resized = cv2.resize(rgb, (place.content_w, place.content_h), interpolation=cv2.INTER_LINEAR)
        if place.is_identity_box:
            canvas = resized
        else:
            canvas = self._canvas
            canvas[...] = spec.pad_value
            canvas[place.pad_top:place.pad_top + place.content_h,
                   place.pad_left:place.pad_left + place.content_w] = resized
        chw = canvas.transpose(2, 0, 1)
        if spec.color_order == "bgr":
            chw = chw[::-1]
        out = self._out[0]
        np.multiply(chw, self._a, out=out)
        out += self._b
        return self._out, place


class TorchPreprocessor:
    """The same preprocessing as torch ops on `device` (CUDA in production, CPU in tests).

    The uint8 frame goes up once through a pinned staging buffer; the uploaded frame is kept
    (`frame`) so colorizing and blending can happen on the device too.
    """

    def __init__(self, spec: ModelSpec, device: DeviceLike, dtype: torch.dtype | None = None) -> None:
        import torch

        self.spec = spec
        self.device = torch_device(device)
        self.dtype = torch.float32 if dtype is None else dtype
        a, b = normalization(spec)
        self._a = torch.from_numpy(a).view(1, 3, 1, 1).to(self.device)
        self._b = torch.from_numpy(b).view(1, 3, 1, 1).to(self.device)
        self._staging: torch.Tensor | None = None
        self.frame: torch.Tensor | None = None
        """The last uploaded frame, (H, W, 3) uint8 RGB on the device."""

    def upload(self, rgb: np.ndarray) -> torch.Tensor:
        import torch

        if self.device.type != "cuda":
            # torch refuses to wrap read-only memory (a zero-copy view of a message) without a warning
            self.frame = torch.from_numpy(rgb if rgb.flags.writeable and rgb.flags.c_contiguous else np.array(rgb))
            return self.frame
        if self._staging is None or tuple(self._staging.shape) != rgb.shape:
            self._staging = torch.empty(rgb.shape, dtype=torch.uint8, pin_memory=True)
        np.copyto(self._staging.numpy(), rgb)  # one host copy into pinned memory, then async upload
        self.frame = self._staging.to(self.device, non_blocking=True)
        return self.frame

    def __call__(self, rgb: np.ndarray) -> tuple[torch.Tensor, Placement]:
        import torch
        import torch.nn.functional as F

        spec = self.spec
        frame = self.upload(rgb)
        h, w = frame.shape[:2]
        place = Placement.for_policy(spec.resize, w, h, spec.input_width, spec.input_height)
        x = frame.permute(2, 0, 1).unsqueeze(0).float()
        if (w, h) != (place.content_w, place.content_h):
            # Plain bilinear, half-pixel centers, no antialias: what cv2.INTER_LINEAR and
            # MediaPipe's own graph do, so GPU and CPU feed the model the same input.
            x = F.interpolate(x, size=(place.content_h, place.content_w), mode="bilinear",
                              align_corners=False, antialias=False)
            x = x.round_().clamp_(0, 255)  # cv2 resizes uint8 -> uint8; match its rounding
        if spec.color_order == "bgr":
            x = x.flip(1)
        x = x * self._a + self._b
        if not place.is_identity_box:
            pad_value = [float(spec.pad_value * a + b) for a, b in
                         zip(self._a.flatten().tolist(), self._b.flatten().tolist())]
            canvas = torch.empty((1, 3, spec.input_height, spec.input_width), device=x.device)
            for channel, value in enumerate(pad_value):
                canvas[:, channel].fill_(value)
            canvas[:, :, place.pad_top:place.pad_top + place.content_h,
                   place.pad_left:place.pad_left + place.content_w] = x
            x = canvas
        return x.to(self.dtype), place
