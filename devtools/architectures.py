"""Real segmentation architectures with random weights, for tests and benchmarks (no download).

- SegFormer-B0 (Hugging Face `transformers`, built from its config) with the 19 Cityscapes
  classes: a transformer encoder and an MLP decoder whose logits are at 1/4 of the input.
  `write_segformer_checkpoint` saves it as `save_pretrained` does, with the image processor's
  `preprocessor_config.json` beside it: what a user downloads or trains.
- `encoder_decoder`: a small U-Net-style CNN (strided conv encoder, transposed-conv decoder with
  skip connections) returning torchvision's `{"out": ...}`; as `devtools.architectures:encoder_decoder`
  it is an `export_model` module:function source.

Random weights give arbitrary but deterministic masks: enough to check shapes, class ids,
names and speed end to end, not accuracy.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

CITYSCAPES_CLASSES: tuple[str, ...] = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle",
    "bicycle",
)
ENCODER_DECODER_CLASSES: tuple[str, ...] = ("floor", "wall", "person", "furniture", "door", "other")
# ImageNet statistics, which both SegFormer's processor and torchvision-style CNNs use.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def segformer_b0(classes: tuple[str, ...] = CITYSCAPES_CLASSES, seed: int = 0) -> Any:
    """SegformerForSemanticSegmentation with the B0 encoder (the config defaults), eval mode."""
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    # num_labels is a PretrainedConfig keyword, which the config's typed signature hides from mypy.
    config = SegformerConfig(num_labels=len(classes), id2label=dict(enumerate(classes)),  # type: ignore[call-arg]
                             label2id={name: i for i, name in enumerate(classes)})
    torch.manual_seed(seed)
    return SegformerForSemanticSegmentation(config).eval()


def write_segformer_checkpoint(folder: Path, width: int, height: int,
                               classes: tuple[str, ...] = CITYSCAPES_CLASSES) -> Path:
    """A checkpoint folder as `save_pretrained` writes it: config.json, model.safetensors and
    preprocessor_config.json (resize to exactly width x height, /255, ImageNet mean/std)."""
    from transformers import SegformerImageProcessor

    folder.mkdir(parents=True, exist_ok=True)
    segformer_b0(classes).save_pretrained(folder)
    SegformerImageProcessor(size={"height": height, "width": width}, image_mean=list(IMAGENET_MEAN),
                            image_std=list(IMAGENET_STD)).save_pretrained(folder)
    return folder


class _Down(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
                         nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class _Up(nn.Module):
    def __init__(self, in_channels: int, skip_channels: int, out_channels: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)
        self.fuse = nn.Sequential(nn.Conv2d(out_channels + skip_channels, out_channels, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.fuse(torch.cat([self.up(x), skip], dim=1))


class EncoderDecoder(nn.Module):
    """U-Net-style CNN: four stride-2 stages (1/16), decoded back to full resolution through
    skip connections. Input sides must be multiples of 16."""

    def __init__(self, num_classes: int, width: int = 16) -> None:
        super().__init__()
        c1, c2, c3, c4 = width, width * 2, width * 4, width * 8
        self.down1, self.down2, self.down3, self.down4 = _Down(3, c1), _Down(c1, c2), _Down(c2, c3), _Down(c3, c4)
        self.up3, self.up2, self.up1 = _Up(c4, c3, c3), _Up(c3, c2, c2), _Up(c2, c1, c1)
        self.head = nn.ConvTranspose2d(c1, num_classes, 2, stride=2)

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        x1 = self.down1(image)
        x2 = self.down2(x1)
        x3 = self.down3(x2)
        x4 = self.down4(x3)
        x = self.up1(self.up2(self.up3(x4, x3), x2), x1)
        return {"out": self.head(x)}  # torchvision's segmentation models return a dict too


def encoder_decoder() -> tuple[nn.Module, list[str], dict[str, Any]]:
    """An `export_model` module:function source: (network, class names, input settings)."""
    torch.manual_seed(0)
    net = EncoderDecoder(len(ENCODER_DECODER_CLASSES)).eval()
    settings = {"width": 96, "height": 64, "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD),
                "resize": "letterbox"}
    return net, list(ENCODER_DECODER_CLASSES), settings
