"""Where the source image sits inside the network input, and how to map back.

Both resize policies are one axis-aligned affine map between source pixels and network
pixels; keeping that map explicit is what lets post-processing undo a letterbox exactly
(and place the mask at any output size) instead of approximating it with a crop.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Placement:
    """The source image (src_w x src_h) scaled into the network input (net_w x net_h).

    The image occupies the box [pad_left, pad_left + content_w) x [pad_top, pad_top + content_h)
    of the network input; with `stretch` that box is the whole input.
    """

    src_w: int
    src_h: int
    net_w: int
    net_h: int
    content_w: int
    content_h: int
    pad_left: int
    pad_top: int

    @classmethod
    def for_policy(cls, policy: str, src_w: int, src_h: int, net_w: int, net_h: int) -> Placement:
        if src_w <= 0 or src_h <= 0:
            raise ValueError(f"empty source image {src_w}x{src_h}")
        if policy == "stretch":
            return cls(src_w, src_h, net_w, net_h, net_w, net_h, 0, 0)
        if policy == "letterbox":
            scale = min(net_w / src_w, net_h / src_h)
            content_w = max(1, min(net_w, round(src_w * scale)))
            content_h = max(1, min(net_h, round(src_h * scale)))
            return cls(src_w, src_h, net_w, net_h, content_w, content_h,
                       (net_w - content_w) // 2, (net_h - content_h) // 2)
        raise ValueError(f"unknown resize policy '{policy}'")

    @property
    def is_identity_box(self) -> bool:
        return self.pad_left == 0 and self.pad_top == 0 and (self.content_w, self.content_h) == (self.net_w, self.net_h)

    def output_to_grid(self, out_w: int, out_h: int, grid_w: int, grid_h: int) -> np.ndarray:
        """2x3 affine taking output pixel centers (an out_w x out_h image covering the source
        image) to coordinates in a grid_w x grid_h model output that covers the network input.

        Pixel-center convention (as cv2.resize / align_corners=False): a pixel index i covers
        [i, i+1) and its center is i + 0.5.
        """
        # output px -> network input px: the output spans the content box.
        sx_net = self.content_w / out_w
        sy_net = self.content_h / out_h
        # network input px -> model output grid px.
        gx = grid_w / self.net_w
        gy = grid_h / self.net_h
        ax = sx_net * gx
        ay = sy_net * gy
        bx = (0.5 * sx_net + self.pad_left) * gx - 0.5
        by = (0.5 * sy_net + self.pad_top) * gy - 0.5
        return np.array([[ax, 0.0, bx], [0.0, ay, by]], np.float64)


def network_output_size(placement: Placement) -> tuple[int, int]:
    """The mask size for output_size 'network': the image's box at network resolution."""
    return (placement.content_w, placement.content_h)


def parse_output_size(text: str) -> str | tuple[int, int]:
    """'input' | 'network' | 'WIDTHxHEIGHT' -> 'input' | 'network' | (w, h)."""
    value = text.strip().lower()
    if value in ("input", "network"):
        return value
    parts = value.split("x")
    if len(parts) == 2 and all(p.strip().isdecimal() for p in parts):  # not isdigit(): "²" passes it
        w, h = int(parts[0]), int(parts[1])
        if w > 0 and h > 0:
            return (w, h)
    raise ValueError(f"output_size '{text}' must be 'input', 'network' or WIDTHxHEIGHT (e.g. 640x480)")
