"""image_transport's ``compressedDepth`` payloads (compressed_depth_image_transport) to depth
arrays, with no ROS import.

The wire format, as compressed_depth_image_transport writes it (ROS 1 and ROS 2 alike):

* ``format`` is ``"<encoding>; compressedDepth <codec>"`` with codec ``png`` or ``rvl``; an older
  publisher writes ``"<encoding>; compressedDepth"`` (PNG), a very old one the encoding alone.
* ``data`` is a 12-byte ``ConfigHeader`` (int32 compression format, float32 depthParam[2], the
  publisher's byte order: little-endian on every machine a robot runs on), then the image.
* ``16UC1``: the millimeter image itself, as a 16-bit grayscale PNG or RVL.
* ``32FC1``: an inverse-depth quantization to uint16, ``q = A / depth + B`` (0 = no depth), stored as
  PNG or RVL, with ``A, B = depthParam``; decoded as ``depth = A / (q - B)``, exactly as the C++
  subscriber does (float32 arithmetic).
* RVL (Wilson 2017, "Fast lossless depth image compression"): uint32 cols, uint32 rows, then
  little-endian 32-bit words of 4-bit nibbles, most significant first. A nibble holds 3 value bits,
  low bits first, and a continuation bit (0x8). The values alternate: a run of zeros' length, a run
  of nonzeros' length, then that many zigzag-coded deltas from the previous nonzero pixel.

Decoding stays within the same limits as colour images: the declared size (PNG IHDR or the RVL
cols/rows) is checked against ``ImageLimits`` before anything is allocated, and an RVL stream longer
than any real encoding of that many pixels is refused before its nibbles are expanded.
"""
from __future__ import annotations

import struct
from typing import Any, Final

import cv2
import numpy as np

from .image_headers import read_header
from .images import ImageFormatError, ImageLimits, data_bytes, canonical_encoding
from .text import wire_text

__all__ = ["HEADER_BYTES", "decode_compressed_depth", "is_compressed_depth", "parse_format"]

_CONFIG_HEADER: Final = struct.Struct("<iff")
HEADER_BYTES: Final = _CONFIG_HEADER.size
"""ConfigHeader: compression format (int32 enum), depthParam[2] (float32)."""
_RVL_SIZE: Final = struct.Struct("<II")
# Per pixel at most one 17-bit zigzag delta (6 nibbles) and, for a run of one, two run lengths of
# at most 11 nibbles each: 28 nibbles = 14 bytes. Real streams are 4-10x smaller than the image.
_RVL_MAX_BYTES_PER_PIXEL: Final = 14
_MAX_VLE_NIBBLES: Final = 11  # 33 bits: every int32 count the C++ encoder can write


def is_compressed_depth(fmt: str) -> bool:
    """Whether a ``CompressedImage.format`` names a compressedDepth stream."""
    return "compresseddepth" in str(fmt).lower()


def parse_format(fmt: str) -> tuple[str, str]:
    """(depth encoding ``16UC1``/``32FC1``, codec ``png``/``rvl``) of a compressedDepth format string.

    Raises:
        ImageFormatError: another codec ("format") or a depth encoding REP 118 does not define
            ("encoding").
    """
    text = str(fmt)
    encoding, sep, rest = text.partition(";")
    codec = "png"  # what a publisher that predates the codec name wrote
    if sep:
        if "compressedDepth png" in rest:
            codec = "png"
        elif "compressedDepth rvl" in rest:
            codec = "rvl"
        elif "compressedDepth" not in rest or "compressedDepth " in rest:
            raise ImageFormatError(f"unsupported compressedDepth format {wire_text(text)} (codecs: png, rvl)",
                                   "format")
    canonical = canonical_encoding(encoding)
    if canonical not in ("16UC1", "32FC1"):
        raise ImageFormatError(
            f"unsupported compressedDepth encoding {wire_text(encoding.strip())} (format {wire_text(text)}); "
            "REP 118 depth is 16UC1 millimeters or 32FC1 meters", "encoding")
    return canonical, codec


def decode_compressed_depth(msg: Any, limits: ImageLimits) -> tuple[str, np.ndarray]:
    """A ``sensor_msgs/CompressedImage``-like compressedDepth message as (encoding, HxW array): uint16
    millimeters for ``16UC1``, float32 meters for ``32FC1`` (NaN where the quantized value was 0).

    Raises:
        ImageFormatError: bad format string, short or corrupt payload, or a size above ``limits``.
    """
    fmt = str(getattr(msg, "format", "") or "")
    encoding, codec = parse_format(fmt)
    payload = data_bytes(msg.data)
    if payload.size <= HEADER_BYTES:
        raise ImageFormatError(f"compressedDepth payload of {payload.size} bytes has no image after its "
                               f"{HEADER_BYTES}-byte header (format {wire_text(fmt)})", "empty")
    _, quant_a, quant_b = _CONFIG_HEADER.unpack(payload[:HEADER_BYTES].tobytes())
    image = payload[HEADER_BYTES:]
    out_bytes = 4 if encoding == "32FC1" else 2
    stored = _decode_png(image, limits, out_bytes, fmt) if codec == "png" else _decode_rvl(image, limits, out_bytes)
    if encoding == "16UC1":
        return encoding, stored
    quantized = stored.astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        meters = np.float32(quant_a) / (quantized - np.float32(quant_b))
    meters[stored == 0] = np.nan
    return encoding, meters.astype(np.float32, copy=False)


def _decode_png(image: np.ndarray, limits: ImageLimits, out_bytes: int, fmt: str) -> np.ndarray:
    header = read_header(image.data)
    if header is None or header.codec != "png":
        raise ImageFormatError(f"compressedDepth png payload (format {wire_text(fmt)}) does not start with a "
                               "readable PNG header", "format")
    if header.width <= 0 or header.height <= 0:
        raise ImageFormatError(f"empty compressedDepth image ({header.width}x{header.height})", "empty")
    if header.channels != 1 or header.bytes_per_sample != 2:
        raise ImageFormatError(
            f"compressedDepth png holds {header.channels} channel(s) of {8 * header.bytes_per_sample} bits; "
            "the transport writes one 16-bit channel", "format")
    limits.check(header.width, header.height, header.pixels * out_bytes, "compressedDepth png image")
    try:
        decoded = cv2.imdecode(image, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise ImageFormatError(f"corrupt compressedDepth png: {wire_text(str(exc), 80)}", "corrupt") from exc
    if decoded is None or decoded.dtype != np.uint16 or decoded.shape != (header.height, header.width):
        raise ImageFormatError("corrupt compressedDepth png: it does not decode to its header's "
                               f"{header.width}x{header.height} 16-bit image", "corrupt")
    return decoded


def _decode_rvl(image: np.ndarray, limits: ImageLimits, out_bytes: int) -> np.ndarray:
    if image.size < _RVL_SIZE.size:
        raise ImageFormatError(f"compressedDepth rvl payload of {image.size} bytes has no size", "corrupt")
    cols, rows = _RVL_SIZE.unpack(image[:_RVL_SIZE.size].tobytes())
    if cols == 0 or rows == 0:
        raise ImageFormatError(f"empty compressedDepth rvl image ({cols}x{rows})", "empty")
    pixels = cols * rows
    limits.check(cols, rows, pixels * out_bytes, "compressedDepth rvl image")
    stream = image[_RVL_SIZE.size:]
    if stream.size > _RVL_MAX_BYTES_PER_PIXEL * pixels + 4:
        raise ImageFormatError(f"corrupt compressedDepth rvl: {stream.size} bytes for {cols}x{rows} pixels is "
                               "more than any encoding of them takes", "corrupt")
    return rvl_decode(stream, pixels).reshape(rows, cols)


def rvl_decode(stream: np.ndarray, pixels: int) -> np.ndarray:
    """The ``pixels`` uint16 values of an RVL stream (the bytes after cols/rows), vectorized.

    Raises:
        ImageFormatError: the stream ends early, or its runs do not add up to ``pixels``.
    """
    words = stream[: stream.size // 4 * 4].view("<u4")
    nibbles = ((words[:, None] >> np.arange(28, -4, -4, dtype=np.uint32)) & 0xF).astype(np.uint8).ravel()
    ends = np.flatnonzero((nibbles & 0x8) == 0)  # a value ends at a nibble without continuation
    if ends.size == 0:
        raise _rvl_corrupt("no complete value")
    starts = np.concatenate(([0], ends[:-1] + 1))
    lengths = ends - starts + 1
    if int(lengths.max()) > _MAX_VLE_NIBBLES:
        raise _rvl_corrupt(f"a value of {int(lengths.max())} nibbles")
    nibble_value_of = np.repeat(np.arange(ends.size), lengths)
    position = np.arange(nibble_value_of.size) - starts[nibble_value_of]
    bits = (nibbles[: ends[-1] + 1] & 0x7).astype(np.int64) << (3 * position)
    values = np.add.reduceat(bits, starts)
    zeros_at, ones_at, deltas_at = _runs(values, pixels)
    zeros, nonzeros = values[zeros_at], values[ones_at]
    # Deltas of run k sit right after its two lengths; they chain across runs (zeros do not reset).
    first = np.repeat(deltas_at - np.concatenate(([0], np.cumsum(nonzeros)[:-1])), nonzeros)
    delta_index = first + np.arange(first.size)
    if delta_index.size and int(delta_index[-1]) >= values.size:
        raise _rvl_corrupt("the stream ends inside a run of values")
    zigzag = values[delta_index]
    deltas = (zigzag >> 1) ^ -(zigzag & 1)
    out = np.zeros(pixels, dtype=np.uint16)
    is_value = np.repeat(np.tile(np.array([False, True]), zeros.size), np.column_stack((zeros, nonzeros)).ravel())
    out[is_value] = (np.cumsum(deltas) & 0xFFFF).astype(np.uint16)
    return out


def _runs(values: np.ndarray, pixels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of each run's zero count, nonzero count and first delta, up to ``pixels`` pixels.

    Run k+1 starts at ``start_k + 2 + nonzeros_k``: a chain through the values, followed by pointer
    doubling (log2(runs) vectorized steps) instead of a Python loop over runs.
    """
    count = values.size
    index = np.arange(count)
    step = np.full(count + 1, count, dtype=np.int64)  # index `count`: past the end, a fixed point
    has_length = index + 1 < count
    step[:count][has_length] = np.minimum(index[has_length] + 2 + values[index[has_length] + 1], count)
    chain = np.array([0], dtype=np.int64)
    jump = step
    while True:
        reached = jump[chain]
        if int(reached[0]) >= count:
            break
        chain = np.concatenate((chain, reached[reached < count]))
        jump = jump[jump]
    chain = chain[chain + 1 < count]
    covered = np.cumsum(values[chain] + values[chain + 1])
    last = int(np.searchsorted(covered, pixels))
    if last == covered.size or int(covered[last]) != pixels:
        got = int(covered[min(last, covered.size - 1)]) if covered.size else 0
        raise _rvl_corrupt(f"its runs cover {got} pixels, not {pixels}")
    chain = chain[: last + 1]
    return chain, chain + 1, chain + 2


def _rvl_corrupt(why: str) -> ImageFormatError:
    return ImageFormatError(f"corrupt compressedDepth rvl stream: {why}", "corrupt")
