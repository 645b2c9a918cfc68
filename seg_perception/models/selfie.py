"""MediaPipe Selfie Segmentation as a plain PyTorch module.

A hand-written port of ``selfie_segmentation.tflite`` and ``selfie_segmentation_landscape.tflite``
from the ``mediapipe==0.10.21`` wheel (Apache-2.0, see ``LICENSE.mediapipe`` next to this file).
The weights are converted once by ``tools/convert_mediapipe_selfie.py``; nothing here reads
TFLite, so the module scripts, traces, and runs on CUDA or in fp16 like any other torch model.

The network is a small MobileNetV3-style encoder (squeeze-excite, hard-swish), an LR-ASPP-like
head, and a three-stage decoder whose skip connections are gated by channel attention, ending in
a 2x2 stride-2 transposed convolution to full resolution and a sigmoid.

Layers are registered in the order in which the TFLite graph executes their weighted ops; the
converter pairs the two lists by that order (and checks kind, shape, stride and groups), so keep
the registration order if you edit this file.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .facts import SELFIE_INPUT_SIZES

__all__ = [
    "SELFIE_INPUT_SIZES",
    "SELFIE_WEIGHT_FILES",
    "SelfieSegmentation",
    "load_selfie",
]

#: SELFIE_INPUT_SIZES: network input size per variant, as (width, height) like OpenCV sizes (facts.py).

#: Converted weight files per variant, package data beside this module.
SELFIE_WEIGHT_FILES: dict[str, str] = {
    "square": "selfie_segmentation.pt",
    "landscape": "selfie_segmentation_landscape.pt",
}


class TFSamePad(nn.Module):
    """Zero padding that reproduces TensorFlow's SAME padding for a strided window.

    TF puts the odd pixel of the total padding at the bottom/right, while PyTorch's symmetric
    ``padding=`` cannot express that; with stride 2 an off-by-one shift of the sampling grid
    changes every output pixel. The amounts are computed from the input size so any input size
    behaves as TFLite would.
    """

    def __init__(self, kernel_size: int, stride: int) -> None:
        super().__init__()
        if kernel_size < stride:
            raise ValueError("TF SAME padding with kernel_size < stride can be negative")
        self.kernel_size = kernel_size
        self.stride = stride

    def _amount(self, size: int) -> int:
        # TF: max((ceil(size / s) - 1) * s + k - size, 0). With k >= s the max is never needed,
        # and plain integer arithmetic keeps torch.jit.trace from freezing the input size.
        return (-size) % self.stride + self.kernel_size - self.stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad_h = self._amount(x.shape[-2])
        pad_w = self._amount(x.shape[-1])
        return F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])


class ConvAct(nn.Module):
    """Convolution with TF SAME padding followed by an activation (or none)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 1,
        stride: int = 1,
        depthwise: bool = False,
        act: str = "none",
    ) -> None:
        super().__init__()
        if stride == 1:
            # Odd kernels at stride 1: TF SAME is symmetric, so the conv's own padding matches
            # and avoids a padded copy of the activation map.
            self.pad: nn.Module = nn.Identity()
            padding = kernel_size // 2
        else:
            self.pad = TFSamePad(kernel_size, stride)
            padding = 0
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            groups=in_channels if depthwise else 1,
        )
        self.act = _activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(self.pad(x)))


def _activation(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU()
    if name == "hswish":
        # TFLite HARD_SWISH is x * relu6(x + 3) / 6, the same formula as torch's.
        return nn.Hardswish()
    if name == "none":
        return nn.Identity()
    raise ValueError(f"unknown activation {name!r}")


class SqueezeExcite(nn.Module):
    """Channel gate: global mean -> 1x1 conv -> ReLU -> 1x1 conv -> sigmoid, times the input."""

    def __init__(self, channels: int, reduced: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, reduced, 1)
        self.expand = nn.Conv2d(reduced, channels, 1)

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3), keepdim=True)
        return torch.sigmoid(self.expand(torch.relu(self.reduce(s))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class InvertedResidual(nn.Module):
    """MobileNetV3 block: 1x1 expand, depthwise, optional squeeze-excite, linear 1x1 project."""

    def __init__(
        self,
        in_channels: int,
        expanded: int,
        out_channels: int,
        kernel_size: int,
        stride: int,
        act: str,
        se_reduced: int = 0,
    ) -> None:
        super().__init__()
        self.expand = ConvAct(in_channels, expanded, act=act)
        self.depthwise = ConvAct(expanded, expanded, kernel_size, stride, depthwise=True, act=act)
        self.se: nn.Module = SqueezeExcite(expanded, se_reduced) if se_reduced else nn.Identity()
        self.project = nn.Conv2d(expanded, out_channels, 1)
        self.use_residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.se(self.depthwise(self.expand(x))))
        return y + x if self.use_residual else y


class ContextHead(nn.Module):
    """LR-ASPP style head: ReLU features scaled by a sigmoid gate from the global mean."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.features = nn.Conv2d(in_channels, out_channels, 1)
        self.context = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.context(x.mean(dim=(2, 3), keepdim=True)))
        return torch.relu(self.features(x)) * gate


class DecoderStage(nn.Module):
    """2x bilinear upsample, fuse with an encoder skip through a channel gate, then refine.

    The gate is computed from ``skip + up`` but applied to the skip only; the refinement is a
    ReLU 1x1 conv plus a residual ReLU depthwise 3x3.
    """

    def __init__(self, in_channels: int, channels: int) -> None:
        super().__init__()
        self.project = nn.Conv2d(in_channels, channels, 1)
        self.gate = SqueezeExcite(channels, channels)
        self.pointwise = ConvAct(channels, channels, act="relu")
        self.depthwise = ConvAct(channels, channels, 3, depthwise=True, act="relu")

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        # TFLite RESIZE_BILINEAR here has align_corners=False, half_pixel_centers=True, which
        # is exactly torch's align_corners=False sampling (both clamp the -0.25 edge sample).
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        up = self.project(x)
        fused = skip * self.gate.gate(skip + up) + up
        y = self.pointwise(fused)
        return y + self.depthwise(y)


class SelfieSegmentation(nn.Module):
    """Person/background segmentation.

    Input: N x 3 x H x W float RGB in [0, 1], H and W even multiples of 16 in practice
    (256 x 256 for the square weights, 144 x 256 for the landscape weights; see
    ``SELFIE_INPUT_SIZES``). Output: N x 1 x H x W probability of "person".
    """

    def __init__(self) -> None:
        super().__init__()
        self.stem = ConvAct(3, 16, 3, 2, act="hswish")
        self.blocks = nn.ModuleList(
            [
                InvertedResidual(16, 16, 16, 3, 2, "relu", se_reduced=8),
                InvertedResidual(16, 72, 24, 3, 2, "relu"),
                InvertedResidual(24, 88, 24, 3, 1, "relu"),
                InvertedResidual(24, 96, 32, 5, 2, "hswish", se_reduced=24),
                InvertedResidual(32, 128, 32, 5, 1, "hswish", se_reduced=32),
                InvertedResidual(32, 128, 32, 5, 1, "hswish", se_reduced=32),
                InvertedResidual(32, 96, 32, 5, 1, "hswish", se_reduced=24),
                InvertedResidual(32, 96, 32, 5, 1, "hswish", se_reduced=24),
            ]
        )
        self.head = ContextHead(32, 128)
        self.decoder = nn.ModuleList(
            [DecoderStage(128, 24), DecoderStage(24, 16), DecoderStage(16, 16)]
        )
        self.segment = nn.ConvTranspose2d(16, 1, 2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        # Decoder skips: the stem (1/2), block 0 (1/4) and block 2 (1/8) outputs.
        skips: list[torch.Tensor] = [x]
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i == 0 or i == 2:
                skips.append(x)
        x = self.head(x)
        for i, stage in enumerate(self.decoder):
            x = stage(x, skips[len(skips) - 1 - i])
        return torch.sigmoid(self.segment(x))


def load_selfie(
    variant: str = "square",
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> SelfieSegmentation:
    """The converted MediaPipe weights for ``variant`` ("square" or "landscape"), in eval mode."""
    if variant not in SELFIE_WEIGHT_FILES:
        raise ValueError(f"unknown variant {variant!r}, expected one of {sorted(SELFIE_WEIGHT_FILES)}")
    path = Path(__file__).with_name(SELFIE_WEIGHT_FILES[variant])
    state = torch.load(path, weights_only=True, map_location=device)
    model = SelfieSegmentation()
    model.load_state_dict(state)
    return model.to(device=device, dtype=dtype).eval()
