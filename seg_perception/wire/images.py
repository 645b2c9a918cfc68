"""sensor_msgs image messages <-> numpy arrays, with no ROS import.

Messages are duck-typed: anything carrying the ``sensor_msgs/Image`` fields
(``height, width, encoding, is_bigendian, step, data``) or the
``sensor_msgs/CompressedImage`` fields (``format, data``) works, so rclpy
messages, rosbags messages and plain test objects all go through the same code
and this module stays testable without a ROS installation.

``data`` may be ``bytes``, ``bytearray``, ``array.array('B')`` (what rclpy
hands out), a ``memoryview`` or a uint8 ndarray (what rosbags hands out); it is
read zero-copy with ``np.frombuffer``.

Conventions follow cv_bridge where ROS leaves a choice open, so images decode
the same way here as in the C++ tools a user compares against:

* ``8UC1`` is read as ``mono8`` and ``8UC3`` as ``bgr8``.
* ``mono16``/``16UC1`` become 8 bit by ``round(v / 257)``: a full-range mapping
  (0 -> 0, 65535 -> 255) rather than keeping the high byte or auto-scaling, so
  that one frame's brightness never depends on another pixel's value.
* ``yuv422``/``uyvy`` is U Y0 V Y1 byte order, ``yuv422_yuy2``/``yuyv`` is
  Y0 U Y1 V, both decoded as BT.601 limited ("studio") range, which is what
  V4L2 cameras deliver.
"""

from __future__ import annotations

from array import array as _PyArray
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal

import cv2
import numpy as np
import simplejpeg

from .image_headers import HeaderRefused, PngDamaged, png_pixel_chunks, read_header
from .text import wire_text

__all__ = [
    "DEFAULT_IMAGE_LIMITS",
    "DEFAULT_MAX_IMAGE_PIXELS",
    "ImageFormatError",
    "ImageLimits",
    "SUPPORTED_COLOR_ENCODINGS",
    "SUPPORTED_DEPTH_ENCODINGS",
    "canonical_encoding",
    "compressed_to_rgb",
    "check_image_geometry",
    "data_bytes",
    "decode_image_file",
    "depth_meters",
    "depth_pixels",
    "depth_to_meters",
    "fill_compressed",
    "fill_image",
    "image_to_rgb",
    "pack_image",
]


ProblemKind = Literal["encoding", "empty", "step", "data_size", "layout", "too_large", "corrupt", "format",
                      "encapsulation"]
"""encoding: unknown encoding; empty: no pixels; step: rows shorter than a row of pixels;
data_size: data shorter than step * height or not bytes; layout: a size the encoding cannot have
(odd width for yuv422); too_large: above ImageLimits; corrupt: the codec failed or warned;
format: a compressed payload that is no image format we read."""


class ImageFormatError(ValueError):
    """A message cannot be decoded: unknown encoding, bad geometry or corrupt data.

    ``kind`` names the class of problem with a fixed word, so a caller can count and throttle
    per kind: the text quotes the message and differs from one bad message to the next.
    """

    def __init__(self, text: str, kind: ProblemKind) -> None:
        super().__init__(text)
        self.kind: ProblemKind = kind


DEFAULT_MAX_IMAGE_PIXELS: Final = 7680 * 4320
"""8K UHD: above every camera a robot carries, ~100 MB as rgb8."""


@dataclass(frozen=True)
class ImageLimits:
    """The largest image decoded; anything bigger is refused before allocation.

    ``max_bytes`` bounds the bytes a decoder or a raw message's rows may take (``step * height``
    for raw images, the decoded size for compressed ones): 8 per pixel leaves room for 4-byte
    pixels (rgba8, 32FC1) in rows padded to twice their width.
    """

    max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS

    def __post_init__(self) -> None:
        if self.max_pixels < 1:
            raise ValueError(f"max_pixels must be >= 1, got {self.max_pixels}")

    @property
    def max_bytes(self) -> int:
        return 8 * self.max_pixels

    def check(self, width: int, height: int, decoded_bytes: int, what: str = "image") -> None:
        if width * height > self.max_pixels or decoded_bytes > self.max_bytes:
            raise ImageFormatError(
                f"{what} of {width}x{height} pixels ({decoded_bytes / 1e6:.0f} MB) exceeds the limit of "
                f"{self.max_pixels} pixels / {self.max_bytes / 1e6:.0f} MB (parameter max_image_pixels)",
                "too_large",
            )


DEFAULT_IMAGE_LIMITS: Final = ImageLimits()


def check_image_geometry(
    width: int, height: int, step: int, bytes_per_pixel: int, data_size: int,
    limits: ImageLimits = DEFAULT_IMAGE_LIMITS,
) -> None:
    """A raw image's declared geometry, checked before any pixel is touched.

    Plain integers in, so any reader of the message (a deserialized object or a view into
    serialized bytes) can call it.

    Raises:
        ImageFormatError: empty, too large, ``step`` shorter than a row or ``data`` shorter
            than ``step * height``.
    """
    if height <= 0 or width <= 0:
        raise ImageFormatError(f"empty image ({width}x{height})", "empty")
    limits.check(width, height, step * height, "raw image")
    row_bytes = width * bytes_per_pixel
    if step < row_bytes:
        raise ImageFormatError(
            f"step {step} < width*bytes_per_pixel {row_bytes} "
            f"(width {width}, {bytes_per_pixel} bytes per pixel)",
            "step",
        )
    expected = step * height
    if data_size < expected:
        raise ImageFormatError(
            f"data is {data_size} bytes, expected step*height = {expected} "
            f"(step {step}, height {height})",
            "data_size",
        )


_Converter = Callable[[np.ndarray], np.ndarray]


def _cvt(code: int) -> _Converter:
    return lambda pixels: cv2.cvtColor(pixels, code)


def _rgb_passthrough(pixels: np.ndarray) -> np.ndarray:
    if pixels.flags.c_contiguous:
        # Zero-copy: a 1080p copy costs more than many consumers' whole work.
        # Read-only so a consumer cannot silently scribble into the message.
        view = pixels.view()
        view.flags.writeable = False
        return view
    return np.ascontiguousarray(pixels)


def _mono16_to_rgb(pixels: np.ndarray) -> np.ndarray:
    # convertScaleAbs rounds and saturates in one pass; it needs native byte order.
    native = pixels.astype(np.uint16, copy=False)
    if native.strides[0] % native.itemsize or not native.flags.aligned:
        # OpenCV silently misreads rows whose step is not a whole number of
        # pixels (an odd step with 16-bit data): repack first.
        native = np.ascontiguousarray(native)
    return cv2.cvtColor(cv2.convertScaleAbs(native, alpha=1.0 / 257.0), cv2.COLOR_GRAY2RGB)


# OpenCV names a Bayer pattern after the 2x2 block starting at row 1, column 1,
# ROS after the block at row 0, column 0, so every ROS pattern maps to the
# OpenCV code of its diagonal mirror (rggb -> BG). Verified by demosaicing
# synthetic mosaics in test_images.py, not taken on trust.
_BAYER_TO_CV2: Final[dict[str, int]] = {
    "bayer_rggb8": cv2.COLOR_BayerBG2RGB,
    "bayer_bggr8": cv2.COLOR_BayerRG2RGB,
    "bayer_gbrg8": cv2.COLOR_BayerGR2RGB,
    "bayer_grbg8": cv2.COLOR_BayerGB2RGB,
}

# encoding -> (channels, bytes per channel, converter to HxWx3 uint8 RGB).
# yuv422 is 2 "channels" per pixel: one chroma byte and one luma byte.
_COLOR_LAYOUTS: Final[dict[str, tuple[int, int, _Converter]]] = {
    "rgb8": (3, 1, _rgb_passthrough),
    "bgr8": (3, 1, _cvt(cv2.COLOR_BGR2RGB)),
    "rgba8": (4, 1, _cvt(cv2.COLOR_RGBA2RGB)),
    "bgra8": (4, 1, _cvt(cv2.COLOR_BGRA2RGB)),
    "mono8": (1, 1, _cvt(cv2.COLOR_GRAY2RGB)),
    "8UC1": (1, 1, _cvt(cv2.COLOR_GRAY2RGB)),
    "8UC3": (3, 1, _cvt(cv2.COLOR_BGR2RGB)),
    "mono16": (1, 2, _mono16_to_rgb),
    "16UC1": (1, 2, _mono16_to_rgb),
    "yuv422": (2, 1, _cvt(cv2.COLOR_YUV2RGB_UYVY)),
    "uyvy": (2, 1, _cvt(cv2.COLOR_YUV2RGB_UYVY)),
    "yuv422_yuy2": (2, 1, _cvt(cv2.COLOR_YUV2RGB_YUY2)),
    "yuyv": (2, 1, _cvt(cv2.COLOR_YUV2RGB_YUY2)),
    **{name: (1, 1, _cvt(code)) for name, code in _BAYER_TO_CV2.items()},
}
_YUV422_ENCODINGS: Final = frozenset({"yuv422", "uyvy", "yuv422_yuy2", "yuyv"})

SUPPORTED_COLOR_ENCODINGS: Final[tuple[str, ...]] = tuple(_COLOR_LAYOUTS)
SUPPORTED_DEPTH_ENCODINGS: Final[tuple[str, ...]] = ("16UC1", "32FC1")

# Drivers disagree on case ("RGB8", "8uc1"); the canonical spelling is the table's.
_CANONICAL_ENCODING: Final[dict[str, str]] = {
    name.lower(): name for name in (*SUPPORTED_COLOR_ENCODINGS, *SUPPORTED_DEPTH_ENCODINGS)
}


def canonical_encoding(encoding: Any) -> str:
    text = str(encoding).strip()
    return _CANONICAL_ENCODING.get(text.lower(), text)


def data_bytes(data: Any) -> np.ndarray:
    """``data`` as a flat uint8 array, without copying whenever the buffer allows it."""
    if data is None:
        raise ImageFormatError("message has no data", "data_size")
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except (TypeError, ValueError, BufferError):
        pass
    # Hand-built messages may hold a list of ints; non-contiguous buffers need a copy.
    if isinstance(data, (list, tuple)):
        try:
            return np.asarray(data, dtype=np.uint8)
        except (OverflowError, ValueError, TypeError) as exc:
            raise ImageFormatError(f"data is not a sequence of bytes: {exc}", "data_size") from exc
    try:
        return np.ascontiguousarray(np.asarray(data)).reshape(-1).view(np.uint8)
    except (TypeError, ValueError) as exc:
        raise ImageFormatError(
            f"data of type {type(data).__name__} is not a byte buffer", "data_size"
        ) from exc


def _pixels(msg: Any, channels: int, itemsize: int, kind: str, limits: ImageLimits) -> np.ndarray:
    """View of the message's pixels as (H, W) or (H, W, C), honoring step and endianness.

    Padding bytes at the end of each row are sliced away, so the view is
    non-contiguous when ``step`` exceeds the packed row size.
    """
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    flat = data_bytes(msg.data)
    check_image_geometry(width, height, step, channels * itemsize, flat.size, limits)
    row_bytes = width * channels * itemsize
    expected = step * height
    rows = flat[:expected].reshape(height, step)
    if itemsize > 1:
        dtype = np.dtype(f"{'>' if msg.is_bigendian else '<'}{kind}{itemsize}")
        if step % itemsize == 0:
            # Whole rows first, then the padding sliced off: numpy < 1.23 (Humble's 1.21) refuses
            # to view a row-sliced (non-contiguous) array as wider items.
            rows = rows.view(dtype)[:, : row_bytes // itemsize]
        else:  # an odd step with 16-bit data: no view can honor it, repack the rows
            rows = np.ascontiguousarray(rows[:, :row_bytes]).view(dtype)
    else:
        rows = rows[:, :row_bytes]
    if channels == 1:
        return rows
    return rows.reshape(height, width, channels)


def _unsupported(encoding: str, supported: tuple[str, ...], hint: str = "") -> ImageFormatError:
    return ImageFormatError(
        f"unsupported encoding {wire_text(encoding)} (supported: {', '.join(supported)}){hint}",
        "encoding",
    )


def image_to_rgb(msg: Any, limits: ImageLimits = DEFAULT_IMAGE_LIMITS) -> np.ndarray:
    """Decode a ``sensor_msgs/Image``-like message to an HxWx3 uint8 RGB array.

    For packed ``rgb8`` the result is a read-only view of ``msg.data`` (no
    copy): it stays valid as long as the message does, and an
    ``array.array`` data field cannot be resized while the view exists. Every
    other case returns a fresh C-contiguous array.

    Raises:
        ImageFormatError: unknown encoding, empty or too large image (``limits``),
            ``step`` shorter than a row, ``data`` shorter than ``step * height``
            or odd width for yuv422.
    """
    encoding = canonical_encoding(msg.encoding)
    layout = _COLOR_LAYOUTS.get(encoding)
    if layout is None:
        hint = "; depth images go through depth_to_meters" if encoding == "32FC1" else ""
        raise _unsupported(encoding, SUPPORTED_COLOR_ENCODINGS, hint)
    channels, itemsize, convert = layout
    if encoding in _YUV422_ENCODINGS and int(msg.width) % 2:
        # Two pixels share one chroma pair, so an odd width has no valid layout.
        raise ImageFormatError(f"{encoding} needs an even width, got width {int(msg.width)}", "layout")
    pixels = _pixels(msg, channels, itemsize, "u", limits)
    try:
        return convert(pixels)
    except cv2.error as exc:
        # Demosaicing rejects images too small to hold a 2x2 pattern, for instance.
        raise ImageFormatError(f"cannot convert {encoding} image: {exc}", "corrupt") from exc


def _compressed_payload_is_rgb(fmt: str) -> bool:
    # image_transport writes "<original>; <codec> compressed <stored order>",
    # e.g. "rgb8; jpeg compressed bgr8". The stored order, not the original
    # encoding, says how the codec's channels are laid out.
    _, sep, stored = fmt.rpartition("compressed")
    return bool(sep) and stored.strip().lower().startswith("rgb")


def compressed_to_rgb(msg: Any, limits: ImageLimits = DEFAULT_IMAGE_LIMITS) -> np.ndarray:
    """Decode a ``sensor_msgs/CompressedImage``-like message to HxWx3 uint8 RGB.

    The payload's own header names the codec (the ``format`` string only says how channels
    are stored) and its size, which is checked against ``limits`` before any decoding, so a
    decompression bomb costs microseconds. JPEG, PNG, TIFF and BMP payloads are accepted:
    image_transport's formats plus the two trivial ones.

    JPEG goes through libjpeg-turbo in strict mode (simplejpeg): the warnings libjpeg gives
    for a damaged entropy-coded stream ("Corrupt JPEG data: premature end of data segment",
    "extraneous bytes before marker", "bad Huffman code"), which cv2.imdecode only prints to
    stderr while returning a half-garbage image, reject the frame. JPEG has no checksum, so
    damage that still decodes to a valid stream (a flipped bit, most often) cannot be seen.

    PNG is decoded from its pixel chunks alone (IHDR, PLTE, tRNS, IDAT, IEND, each CRC-checked:
    a damaged one rejects the frame): libpng prints a warning on stderr for every damaged or odd
    ancillary chunk (text, ICC profile, ...) of every frame, chunks OpenCV does not apply.

    Grayscale payloads are expanded to three equal channels.

    Raises:
        ImageFormatError: empty, too large, corrupt or unsupported payload (``compressedDepth``
            streams included); ``kind`` says which.
    """
    fmt = str(getattr(msg, "format", "") or "")
    if "compresseddepth" in fmt.lower():
        raise ImageFormatError(
            f"unsupported compressed image (format {wire_text(fmt)}): compressedDepth streams "
            "carry a depth header, not a plain image",
            "format",
        )
    buffer = data_bytes(msg.data)
    if buffer.size == 0:
        raise ImageFormatError(f"empty compressed image (format {wire_text(fmt)})", "empty")
    try:
        header = read_header(buffer.data)
    except HeaderRefused as exc:
        raise ImageFormatError(f"refused compressed image (format {wire_text(fmt)}): {exc}", "format") from exc
    if header is None:
        raise ImageFormatError(
            f"corrupt or unsupported compressed image (format {wire_text(fmt)}): the payload does "
            "not start with a readable JPEG, PNG, TIFF or BMP header",
            "format",
        )
    if header.width <= 0 or header.height <= 0:
        raise ImageFormatError(f"empty compressed image ({header.width}x{header.height} {header.codec})", "empty")
    limits.check(header.width, header.height, header.decoded_bytes, f"compressed {header.codec} image")
    stored_rgb = _compressed_payload_is_rgb(fmt)
    if header.codec == "png":
        try:
            buffer = np.frombuffer(png_pixel_chunks(buffer.data), np.uint8)
        except PngDamaged as exc:
            raise ImageFormatError(f"corrupt PNG (format {wire_text(fmt)}): {exc}", "corrupt") from exc
    if header.codec == "jpeg" and header.channels in (1, 3):
        decoded = _decode_jpeg(buffer, stored_rgb, fmt)
    else:  # PNG, TIFF, BMP, and 4-channel (CMYK) JPEG, which libjpeg-turbo cannot turn into RGB
        decoded = _decode_opencv(buffer, stored_rgb, fmt)
    if decoded.shape[:2] != (header.height, header.width):
        raise ImageFormatError(
            f"compressed {header.codec} image decoded to {decoded.shape[1]}x{decoded.shape[0]}, its "
            f"header said {header.width}x{header.height}",
            "corrupt",
        )
    return decoded


class _Payload:
    """A file's bytes as a CompressedImage-like object (stored as the codec's usual BGR)."""

    format = ""

    def __init__(self, data: bytes) -> None:
        self.data = data


def decode_image_file(path: Any, limits: ImageLimits = DEFAULT_IMAGE_LIMITS,
                      max_file_bytes: int = 1 << 30) -> np.ndarray:
    """An image file (PNG, JPEG, TIFF, BMP, WebP) to HxWx3 uint8 RGB through the same checks as
    a CompressedImage: the size is read from the header the decoder uses and held to `limits`
    before anything is decoded (cv2.imread takes a 48 KB PNG to gigabytes).

    Raises:
        ImageFormatError: unreadable, unsupported, too large or corrupt (``kind`` says which).
    """
    from pathlib import Path

    file = Path(path)
    try:
        size = file.stat().st_size
        if size > max_file_bytes:
            raise ImageFormatError(f"image file '{file}' is {size} bytes (at most {max_file_bytes})", "too_large")
        data = file.read_bytes()
    except OSError as exc:
        raise ImageFormatError(f"cannot read image '{file}': {exc.strerror or exc}", "format") from exc
    try:
        return compressed_to_rgb(_Payload(data), limits)
    except ImageFormatError as exc:
        raise ImageFormatError(f"image '{file}': {exc}", exc.kind) from exc


def _decode_jpeg(buffer: np.ndarray, stored_rgb: bool, fmt: str) -> np.ndarray:
    try:
        # A payload stored as RGB went through an encoder that assumed BGR: decoding it "as
        # BGR" gives the stored channel order back.
        decoded = simplejpeg.decode_jpeg(buffer, colorspace="BGR" if stored_rgb else "RGB", strict=True)
    except ValueError as exc:
        raise ImageFormatError(
            f"corrupt JPEG (format {wire_text(fmt)}): {wire_text(str(exc), 80)}", "corrupt"
        ) from exc
    return np.asarray(decoded)


# OpenCV 4.11 added RGB decoding; before that (Jazzy's 4.6) decode BGR and swap.
_IMREAD_RGB: Final[int | None] = getattr(cv2, "IMREAD_COLOR_RGB", None)


def _decode_opencv(buffer: np.ndarray, stored_rgb: bool, fmt: str) -> np.ndarray:
    try:
        if stored_rgb or _IMREAD_RGB is None:
            decoded = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
            if decoded is not None and not stored_rgb:
                decoded = cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
        else:
            decoded = cv2.imdecode(buffer, _IMREAD_RGB)
    except cv2.error as exc:
        raise ImageFormatError(
            f"corrupt or unsupported compressed image (format {wire_text(fmt)})", "corrupt"
        ) from exc
    if decoded is None or decoded.ndim != 3 or decoded.shape[2] != 3:
        raise ImageFormatError(
            f"corrupt or unsupported compressed image (format {wire_text(fmt)})", "corrupt"
        )
    return decoded


def depth_to_meters(msg: Any, limits: ImageLimits = DEFAULT_IMAGE_LIMITS) -> np.ndarray:
    """Decode a REP 118 depth image to an HxW float32 array in meters, NaN where invalid.

    ``16UC1`` is millimeters with 0 = no return; ``32FC1`` is meters where 0,
    NaN, +-inf and negative values are all no usable range. REP 117's
    distinction between too near (-inf) and too far (+inf) is dropped on
    purpose: downstream projection treats every such pixel alike.

    A ``sensor_msgs/CompressedImage``-like message (``format`` instead of ``encoding``) is read as
    image_transport's compressedDepth (wire.compressed_depth) and then converted the same way, so
    a compressed frame gives the clouds its raw frame would.

    Raises:
        ImageFormatError: an encoding other than REP 118's, bad geometry/data or too large.
    """
    return depth_meters(*depth_pixels(msg, limits))


def depth_meters(raw: np.ndarray, encoding: str) -> np.ndarray:
    """`depth_pixels`' (values, encoding) as HxW float32 meters, NaN where invalid."""
    if encoding == "16UC1":
        meters = np.multiply(raw, np.float32(1e-3), dtype=np.float32)
        meters[raw == 0] = np.nan
        return meters
    # NaN compares False, so it falls into the invalid branch with the rest.
    valid = (raw > 0) & (raw < np.inf)
    return np.where(valid, raw, np.float32(np.nan)).astype(np.float32, copy=False)


def depth_pixels(msg: Any, limits: ImageLimits = DEFAULT_IMAGE_LIMITS) -> tuple[np.ndarray, str]:
    """A REP 118 depth image's own values and canonical encoding: (HxW uint16 mm, "16UC1") or
    (HxW float32 m, "32FC1"), in native byte order, unchanged otherwise (0, NaN, inf kept).
    A view of the message's data when the layout allows it: copy before writing.

    Raises:
        ImageFormatError: an encoding other than REP 118's, bad geometry/data or too large.
    """
    if not hasattr(msg, "encoding") and hasattr(msg, "format"):
        from .compressed_depth import decode_compressed_depth  # it builds on this module

        encoding, stored = decode_compressed_depth(msg, limits)
        return _native(stored), encoding
    encoding = canonical_encoding(msg.encoding)
    if encoding == "16UC1":
        return _native(_pixels(msg, 1, 2, "u", limits)), encoding
    if encoding == "32FC1":
        return _native(_pixels(msg, 1, 4, "f", limits)), encoding
    raise _unsupported(
        encoding,
        SUPPORTED_DEPTH_ENCODINGS,
        "; REP 118 depth is 16UC1 millimeters or 32FC1 meters",
    )


def _native(pixels: np.ndarray) -> np.ndarray:
    """`pixels` in the machine's byte order (a big-endian image is converted, once)."""
    return pixels if pixels.dtype.isnative else pixels.astype(pixels.dtype.newbyteorder("="))


# encoding -> (channels, dtype) of the array fill_image accepts for it.
_FILL_LAYOUTS: Final[dict[str, tuple[int, np.dtype[Any]]]] = {
    "mono8": (1, np.dtype(np.uint8)),
    "rgb8": (3, np.dtype(np.uint8)),
    "bgr8": (3, np.dtype(np.uint8)),
    "32FC1": (1, np.dtype(np.float32)),
    "16UC1": (1, np.dtype(np.uint16)),
}


def _checked_array(
    array_in: np.ndarray, encoding: str, channels: int, dtype: np.dtype[Any]
) -> np.ndarray:
    arr = np.asarray(array_in)
    if channels == 1 and arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    expected_shape = "HxW" if channels == 1 else f"HxWx{channels}"
    if arr.ndim != (2 if channels == 1 else 3) or (channels > 1 and arr.shape[2] != channels):
        raise ValueError(f"{encoding} needs an {expected_shape} array, got shape {arr.shape}")
    # Byte order is fixed below; kind and size must match or values would be reinterpreted.
    if arr.dtype.kind != dtype.kind or arr.dtype.itemsize != dtype.itemsize:
        raise ValueError(f"{encoding} needs dtype {dtype}, got {arr.dtype}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"cannot fill an empty image ({arr.shape[1]}x{arr.shape[0]})")
    # Messages say is_bigendian = 0, so the bytes must be little-endian and packed.
    return np.ascontiguousarray(arr, dtype=dtype.newbyteorder("<"))


def _set_data(msg: Any, packed: np.ndarray) -> None:
    raw = packed.reshape(-1).view(np.uint8)
    current = getattr(msg, "data", None)
    if isinstance(current, _PyArray) and current.typecode == "B" and len(current) == 0:
        # A fresh rclpy message: appending into its own array skips the setter's
        # array.array(bytes) copy (~0.16 ms vs ~0.5 ms at 1080p rgb8). Assigning
        # an ndarray would go element by element (~340 ms): never do that.
        current.frombytes(raw.data)
    elif isinstance(current, np.ndarray):
        # rosbags messages hold uint8 arrays and serialize them as such.
        msg.data = raw.copy()
    else:
        msg.data = raw.tobytes()


def fill_image(msg: Any, array: np.ndarray, encoding: str) -> Any:
    """Fill an ``Image``-like message from an array and return the message.

    Rows are packed (``step == width * channels * itemsize``) and little-endian
    (``is_bigendian = 0``): the Nav2 semantic segmentation layer reads a mask
    pixel at ``data[v * width + u]`` and would misread padded rows.

    Accepted: ``mono8`` (HxW uint8), ``rgb8``/``bgr8`` (HxWx3 uint8),
    ``32FC1`` (HxW float32), ``16UC1`` (HxW uint16); HxWx1 is taken as HxW.

    Raises:
        ValueError: unknown encoding, or an array whose shape or dtype does not
            match it.
    """
    packed, canonical, step = pack_image(array, encoding)
    msg.height, msg.width = packed.shape[:2]
    msg.encoding = canonical
    msg.is_bigendian = 0
    msg.step = step
    _set_data(msg, packed)
    return msg


def pack_image(array: np.ndarray, encoding: str) -> tuple[np.ndarray, str, int]:
    """The array as ``fill_image`` publishes it: (packed little-endian C-contiguous array,
    canonical encoding, step). No copy when the array already is so.

    Raises:
        ValueError: as ``fill_image``.
    """
    canonical = canonical_encoding(encoding)
    layout = _FILL_LAYOUTS.get(canonical)
    if layout is None:
        raise ValueError(
            f"cannot fill encoding {encoding!r} (supported: {', '.join(_FILL_LAYOUTS)})"
        )
    channels, dtype = layout
    packed = _checked_array(array, canonical, channels, dtype)
    return packed, canonical, int(packed.shape[1]) * channels * dtype.itemsize
