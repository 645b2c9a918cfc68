"""TwinLiteNet (drivable area + lane lines, trained on BDD100K) as a plain PyTorch module.

A re-implementation of the network of Che et al., "TwinLiteNet: An Efficient and Lightweight
Model for Driveable Area and Lane Segmentation in Self-Driving Cars" (MAPR 2023), written for
this package from the paper and the layout of the authors' released weights (MIT, see
``LICENSE.twinlitenet`` next to this file). ``tools/convert_twinlitenet.py`` renames the
authors' state dict onto this module's layers; nothing here reads their file format.

Shape of the network (input RGB in 0..1, height and width multiples of 8):
- an ESPNet-C encoder to 1/8 resolution: strided conv, then two stages of ESP blocks (a 1x1
  or strided 3x3 reduction split into five dilated 3x3 branches, d = 1, 2, 4, 8, 16, whose
  outputs are summed hierarchically before concatenation, which removes gridding artifacts),
  each stage fed the input image average-pooled to its resolution;
- a dual attention block at 1/8 resolution (position attention over all pixel pairs and
  channel attention over all channel pairs, as in DANet), each refined by a conv, then summed;
- two decoders, one per task, of three stride-2 transposed convolutions back to full size.
Every conv is followed by batch norm (eps 1e-3) and a per-channel PReLU, the last layers too,
so the two heads' "logits" are PReLU outputs; argmax over their 2 channels gives the mask.

The attention's softmax over 3600 positions and the PReLU chains produce denormal floats, which
made the whole forward ~20x slower on one CPU measured for this project (not on every CPU); the
runtimes turn on flush-to-zero (model/base.py, flush_denormals).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .facts import DRIVABLE_CLASSES, TWINLITENET_INPUT_SIZE

__all__ = [
    "DRIVABLE_CLASSES",
    "TWINLITENET_INPUT_SIZE",
    "TWINLITENET_WEIGHTS",
    "DrivableScores",
    "TwinLiteNet",
    "combine_heads",
    "load_twinlitenet",
]

#: Network input (width, height): BDD100K frames at half resolution, as trained (in facts.py).
#: Converted weights, package data beside this module.
TWINLITENET_WEIGHTS = "twinlitenet_bdd100k.pt"
#: DRIVABLE_CLASSES, label ids of the combined mask: channel order of DrivableScores' output.

_BN_EPS = 1e-3
_ESP_DILATIONS: tuple[int, ...] = (1, 2, 4, 8, 16)


class ConvBNPReLU(nn.Module):
    """k x k convolution ("same" padding, no bias), batch norm, PReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                              padding=kernel_size // 2, bias=False)
        self.norm = nn.BatchNorm2d(out_channels, eps=_BN_EPS)
        self.act = nn.PReLU(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))


class ESPBlock(nn.Module):
    """Efficient spatial pyramid block: reduce, split into dilated branches, fuse, merge.

    ``downsample``: the reduction is a stride-2 3x3 conv and there is no residual;
    otherwise a 1x1 reduction and the input is added before the norm (needs in == out).
    The first branch (d=1) takes the channels that do not divide by 5.
    """

    def __init__(self, in_channels: int, out_channels: int, downsample: bool) -> None:
        super().__init__()
        width = out_channels // len(_ESP_DILATIONS)
        first = out_channels - width * (len(_ESP_DILATIONS) - 1)
        if downsample:
            self.reduce = nn.Conv2d(in_channels, width, 3, stride=2, padding=1, bias=False)
        else:
            if in_channels != out_channels:
                raise ValueError(f"a residual ESP block needs in == out channels, got {in_channels}, {out_channels}")
            self.reduce = nn.Conv2d(in_channels, width, 1, bias=False)
        self.branches = nn.ModuleList(
            nn.Conv2d(width, first if i == 0 else width, 3, padding=d, dilation=d, bias=False)
            for i, d in enumerate(_ESP_DILATIONS))
        self.residual = not downsample
        self.norm = nn.BatchNorm2d(out_channels, eps=_BN_EPS)
        self.act = nn.PReLU(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        reduced = self.reduce(x)
        outputs = [branch(reduced) for branch in self.branches]
        # Hierarchical feature fusion: each dilated branch adds the sum of the narrower ones.
        fused = [outputs[0], outputs[1]]
        for out in outputs[2:]:
            fused.append(fused[-1] + out)
        merged = torch.cat(fused, dim=1)
        if self.residual:
            merged = merged + x
        return self.act(self.norm(merged))


class PositionAttention(nn.Module):
    """Every pixel attends to every pixel (query/key at C/8 channels); out = gamma*attn + x."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.query = nn.Conv2d(channels, channels // 8, 1)
        self.key = nn.Conv2d(channels, channels // 8, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        query = self.query(x).flatten(2).transpose(1, 2)        # n, hw, c/8
        key = self.key(x).flatten(2)                             # n, c/8, hw
        weights = torch.softmax(torch.bmm(query, key), dim=-1)   # n, hw (query), hw (key)
        value = self.value(x).flatten(2)                         # n, c, hw
        attended = torch.bmm(value, weights.transpose(1, 2)).reshape(n, c, h, w)
        return self.gamma * attended + x


class ChannelAttention(nn.Module):
    """Every channel attends to every channel by Gram-matrix similarity; out = gamma*attn + x.

    As in DANet, the softmax is taken over (row max - similarity), which favours the channels
    least similar to each one."""

    def __init__(self) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        flat = x.flatten(2)                                       # n, c, hw
        gram = torch.bmm(flat, flat.transpose(1, 2))              # n, c, c
        weights = torch.softmax(gram.amax(dim=-1, keepdim=True) - gram, dim=-1)
        attended = torch.bmm(weights, flat).reshape(n, c, h, w)
        return self.gamma * attended + x


class Encoder(nn.Module):
    """ESPNet-C to 1/8 resolution with 32 output channels, then dual attention."""

    def __init__(self, stage2_blocks: int = 2, stage3_blocks: int = 3) -> None:
        super().__init__()
        self.stem = ConvBNPReLU(3, 16, 3, stride=2)                        # 1/2
        self.fuse1 = ConvBNPReLU(16 + 3, 19, 3)
        self.down2 = ESPBlock(19, 64, downsample=True)                     # 1/4
        self.stage2 = nn.ModuleList(ESPBlock(64, 64, downsample=False) for _ in range(stage2_blocks))
        self.fuse2 = ConvBNPReLU(64 + 64 + 3, 131, 3)
        self.down3 = ESPBlock(131, 128, downsample=True)                   # 1/8
        self.stage3 = nn.ModuleList(ESPBlock(128, 128, downsample=False) for _ in range(stage3_blocks))
        self.fuse3 = ConvBNPReLU(128 + 128, 32, 3)
        self.position_attention = PositionAttention(32)
        self.channel_attention = ChannelAttention()
        self.position_conv = ConvBNPReLU(32, 32, 3)
        self.channel_conv = ConvBNPReLU(32, 32, 3)
        self.project = ConvBNPReLU(32, 32, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        # The image itself, average-pooled to 1/2 and 1/4, is re-injected into each stage.
        half = F.avg_pool2d(image, 3, stride=2, padding=1)
        quarter = F.avg_pool2d(half, 3, stride=2, padding=1)

        x1 = self.fuse1(torch.cat([self.stem(image), half], dim=1))
        down2 = self.down2(x1)
        x2 = down2
        for block in self.stage2:
            x2 = block(x2)
        x2 = self.fuse2(torch.cat([x2, down2, quarter], dim=1))
        down3 = self.down3(x2)
        x3 = down3
        for block in self.stage3:
            x3 = block(x3)
        x3 = self.fuse3(torch.cat([down3, x3], dim=1))

        attended = (self.position_conv(self.position_attention(x3))
                    + self.channel_conv(self.channel_attention(x3)))
        return self.project(attended)


class UpBNPReLU(nn.Module):
    """2x2 stride-2 transposed convolution (no bias), batch norm, PReLU: exactly 2x upsampling."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.deconv = nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2, bias=False)
        self.norm = nn.BatchNorm2d(out_channels, eps=_BN_EPS)
        self.act = nn.PReLU(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.deconv(x)))


class Decoder(nn.Sequential):
    """1/8 resolution, 32 channels -> full resolution, 2 channels (other, this class)."""

    def __init__(self) -> None:
        super().__init__(UpBNPReLU(32, 16), UpBNPReLU(16, 8), UpBNPReLU(8, 2))


class TwinLiteNet(nn.Module):
    """(N, 3, H, W) RGB in 0..1 -> (drivable area, lane lines), each (N, 2, H, W) raw scores."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = Encoder()
        self.drivable_head = Decoder()
        self.lane_head = Decoder()

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.encoder(image)
        return self.drivable_head(features), self.lane_head(features)


def combine_heads(drivable: torch.Tensor, lanes: torch.Tensor) -> torch.Tensor:
    """The two heads' scores -> (N, 3, H, W) per-class scores for ids (background,
    drivable_area, lane_line) whose argmax is the authors' mask and whose max is the winning
    head's confidence.

    The mask: lane line where the lane head says so (a lane wins over drivable area), else
    drivable area where the drivable head says so, else background. The confidence is the
    deciding head's softmax probability: the lane head's for a lane pixel, the drivable head's
    for a drivable pixel, and for background the lower of the two heads' "no" probabilities
    (both had to decide). It is always >= 0.5; the two losing channels share the remainder
    equally, so the channels sum to 1 and the winner is a strict maximum. Those two values
    carry no information of their own.
    """
    lane_prob = torch.softmax(lanes.float(), dim=1)
    drivable_prob = torch.softmax(drivable.float(), dim=1)
    # Decided on the raw scores, as the authors' argmax does (softmax can round a near-tie).
    is_lane = lanes[:, 1] > lanes[:, 0]
    is_drivable = (drivable[:, 1] > drivable[:, 0]) & ~is_lane
    labels = torch.where(is_lane, 2, is_drivable.long())
    background = torch.minimum(lane_prob[:, 0], drivable_prob[:, 0])
    confidence = torch.where(is_lane, lane_prob[:, 1], torch.where(is_drivable, drivable_prob[:, 1], background))
    rest = (1.0 - confidence) * 0.5
    ids = torch.arange(len(DRIVABLE_CLASSES), device=labels.device).view(1, -1, 1, 1)
    scores = torch.where(labels.unsqueeze(1) == ids, confidence.unsqueeze(1), rest.unsqueeze(1))
    return scores.to(drivable.dtype)


class DrivableScores(nn.Module):
    """TwinLiteNet with its two heads combined into one 3-class map (see combine_heads):
    the form the segmentation pipeline, TorchScript and ONNX exports take."""

    def __init__(self, net: TwinLiteNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        drivable, lanes = self.net(image)
        return combine_heads(drivable, lanes)


def load_twinlitenet(device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> TwinLiteNet:
    """The converted BDD100K weights, in eval mode."""
    state = torch.load(Path(__file__).with_name(TWINLITENET_WEIGHTS), weights_only=True, map_location=device)
    model = TwinLiteNet()
    model.load_state_dict(state)
    return model.to(device=device, dtype=dtype).eval()
