"""The publisher side of image_transport's compressedDepth, for tests and tools: what
compressed_depth_image_transport's encoder puts on the wire, written here from its format
(``<encoding>; compressedDepth <png|rvl>``, a 12-byte ConfigHeader, then a 16-bit PNG or an RVL
stream; see seg_perception/wire/compressed_depth.py for the layout). The node only decodes;
this is the other half, kept apart from the decoder so a test of one is not a copy of the other.

The RVL writer follows the reference encoder step by step (a loop over runs and values): it is
test tooling for small images, not a fast path.
"""
from __future__ import annotations

import struct
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np

DEPTH_MAX = 10.0
"""compressed_depth_image_transport's default depth_max (m)."""
DEPTH_QUANTIZATION = 100.0
"""Its default depth_quantization."""


def quantization(depth_max: float = DEPTH_MAX, depth_quantization: float = DEPTH_QUANTIZATION) -> tuple[float, float]:
    """(A, B) of the inverse-depth quantization q = A / depth + B, in float32 as the encoder has them."""
    z0, top = np.float32(depth_quantization), np.float32(depth_max)
    a = np.float32(z0 * (z0 + np.float32(1.0)))
    b = np.float32(np.float32(1.0) - a / top)
    return float(a), float(b)


def quantize(depth_m: np.ndarray, depth_max: float = DEPTH_MAX,
             depth_quantization: float = DEPTH_QUANTIZATION) -> np.ndarray:
    """32FC1 meters -> the uint16 inverse depth the encoder stores (0: NaN or beyond depth_max)."""
    a, b = (np.float32(v) for v in quantization(depth_max, depth_quantization))
    depth = depth_m.astype(np.float32)
    # NaN compares False. Depth <= 0 makes the reference encoder convert inf or a negative float to
    # unsigned short (undefined in C++); stored as 0 ("no depth") here.
    keep = (depth < np.float32(depth_max)) & (depth > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        inverse = a / np.where(keep, depth, np.float32(1.0)) + b
    return np.where(keep, np.trunc(inverse), 0).astype(np.uint16)  # C++ float -> unsigned short truncates


def dequantize(quantized: np.ndarray, depth_max: float = DEPTH_MAX,
               depth_quantization: float = DEPTH_QUANTIZATION) -> np.ndarray:
    """What a compressedDepth subscriber turns the stored inverse depth back into (NaN for 0)."""
    a, b = (np.float32(v) for v in quantization(depth_max, depth_quantization))
    with np.errstate(divide="ignore"):
        depth = a / (quantized.astype(np.float32) - b)
    return np.where(quantized == 0, np.float32(np.nan), depth).astype(np.float32)


def rvl_encode(values: np.ndarray) -> bytes:
    """RVL of a uint16 array in row-major order (the stream after cols/rows)."""
    flat = [int(v) for v in np.asarray(values, np.uint16).ravel()]
    words: list[int] = []
    state = {"word": 0, "nibbles": 0}

    def vle(value: int) -> None:
        while True:
            nibble = value & 0x7
            value >>= 3
            if value:
                nibble |= 0x8
            state["word"] = ((state["word"] << 4) | nibble) & 0xFFFFFFFF
            state["nibbles"] += 1
            if state["nibbles"] == 8:
                words.append(state["word"])
                state["word"], state["nibbles"] = 0, 0
            if not value:
                return

    i, previous = 0, 0
    while i < len(flat):
        zeros = 0
        while i < len(flat) and flat[i] == 0:
            zeros, i = zeros + 1, i + 1
        vle(zeros)
        nonzeros = 0
        while i + nonzeros < len(flat) and flat[i + nonzeros] != 0:
            nonzeros += 1
        vle(nonzeros)
        for current in flat[i:i + nonzeros]:
            delta = current - previous
            vle((delta << 1) ^ (delta >> 31))  # zigzag: 0, -1, 1, -2 -> 0, 1, 2, 3
            previous = current
        i += nonzeros
    if state["nibbles"]:
        words.append((state["word"] << 4 * (8 - state["nibbles"])) & 0xFFFFFFFF)
    return struct.pack(f"<{len(words)}I", *words)


def encode(depth: np.ndarray, encoding: str, codec: str = "png", depth_max: float = DEPTH_MAX,
           depth_quantization: float = DEPTH_QUANTIZATION, header: Any = None) -> Any:
    """A sensor_msgs/CompressedImage-like message of ``depth`` (``16UC1`` uint16 mm or ``32FC1``
    float32 m) as compressed_depth_image_transport publishes it on ``<depth>/compressedDepth``."""
    if encoding == "32FC1":
        stored = quantize(depth, depth_max, depth_quantization)
        params = quantization(depth_max, depth_quantization)
    elif encoding == "16UC1":
        stored = np.where(depth > np.uint16(depth_max * 1000.0), 0, depth).astype(np.uint16)
        params = (0.0, 0.0)
    else:
        raise ValueError(f"compressedDepth takes 16UC1 or 32FC1, not {encoding}")
    if codec == "png":
        ok, png = cv2.imencode(".png", stored, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        assert ok
        payload = png.tobytes()
    elif codec == "rvl":
        payload = struct.pack("<II", stored.shape[1], stored.shape[0]) + rvl_encode(stored)
    else:
        raise ValueError(f"codec png or rvl, not {codec}")
    config = struct.pack("<iff", 0, *params)  # format INV_DEPTH, depthParam[2]
    return SimpleNamespace(header=header, format=f"{encoding}; compressedDepth {codec}", data=config + payload)
