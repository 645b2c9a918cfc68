"""Tests for seg_perception.wire.images: no rclpy needed except the one guarded test."""

from __future__ import annotations

import array
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import pytest
from skimage import data as skdata

from seg_perception.wire.images import (
    SUPPORTED_COLOR_ENCODINGS,
    SUPPORTED_DEPTH_ENCODINGS,
    ImageFormatError,
    compressed_to_rgb,
    depth_to_meters,
    fill_image,
    image_to_rgb,
)
from devtools.msgtools import fill_compressed


@dataclass
class FakeImage:
    height: int = 0
    width: int = 0
    encoding: str = ""
    is_bigendian: int = 0
    step: int = 0
    data: Any = b""


@dataclass
class FakeCompressed:
    format: str = ""
    data: Any = b""


# Padding bytes are garbage on purpose: if a decoder read them, results would change.
PAD_BYTE = 0xA5


def make_image(
    pixels: np.ndarray,
    encoding: str,
    pad: int = 0,
    bigendian: bool = False,
    container: type = bytes,
) -> FakeImage:
    """Pack (H, W) or (H, W, C) pixels into an Image-like message with `pad` bytes per row."""
    height, width = pixels.shape[:2]
    order = ">" if bigendian else "<"
    typed = pixels.astype(pixels.dtype.newbyteorder(order))
    rows = np.ascontiguousarray(typed).reshape(height, -1).view(np.uint8)
    if pad:
        rows = np.pad(rows, ((0, 0), (0, pad)), constant_values=PAD_BYTE)
    raw = np.ascontiguousarray(rows).tobytes()
    if container is array.array:
        payload: Any = array.array("B", raw)
    elif container is memoryview:
        payload = memoryview(raw)
    else:
        payload = container(raw)
    return FakeImage(
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=int(bigendian),
        step=rows.shape[1],
        data=payload,
    )


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    # Non-square and even-width so every layout (yuv422 included) applies.
    return np.ascontiguousarray(skdata.astronaut()[:480, :510])


@pytest.fixture(scope="module")
def smooth_photo(photo: np.ndarray) -> np.ndarray:
    # Demosaicing and chroma subsampling are only near-lossless on smooth content.
    return cv2.GaussianBlur(photo, (7, 7), 0)


def mean_abs_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


# ---------------------------------------------------------------- packed color


@pytest.mark.parametrize(
    ("encoding", "to_wire"),
    [
        ("rgb8", lambda rgb: rgb),
        ("bgr8", lambda rgb: rgb[..., ::-1]),
        ("8UC3", lambda rgb: rgb[..., ::-1]),
        ("rgba8", lambda rgb: np.dstack([rgb, np.full(rgb.shape[:2], 7, np.uint8)])),
        ("bgra8", lambda rgb: np.dstack([rgb[..., ::-1], np.full(rgb.shape[:2], 7, np.uint8)])),
    ],
)
@pytest.mark.parametrize("pad", [0, 5])
def test_color_encodings_round_trip_exactly(
    photo: np.ndarray, encoding: str, to_wire: Any, pad: int
) -> None:
    msg = make_image(np.ascontiguousarray(to_wire(photo)), encoding, pad=pad)
    out = image_to_rgb(msg)
    assert out.shape == photo.shape and out.dtype == np.uint8
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, photo)


@pytest.mark.parametrize("container", [bytes, bytearray, array.array, memoryview])
def test_rgb8_is_zero_copy_read_only_view(photo: np.ndarray, container: type) -> None:
    msg = make_image(photo, "rgb8", container=container)
    out = image_to_rgb(msg)
    assert np.shares_memory(out, np.frombuffer(msg.data, np.uint8))
    assert not out.flags.writeable
    np.testing.assert_array_equal(out, photo)


def test_rgb8_padded_is_a_contiguous_copy(photo: np.ndarray) -> None:
    msg = make_image(photo, "rgb8", pad=3)
    out = image_to_rgb(msg)
    assert out.flags.c_contiguous
    assert not np.shares_memory(out, np.frombuffer(msg.data, np.uint8))
    np.testing.assert_array_equal(out, photo)


def test_encoding_case_is_normalised(photo: np.ndarray) -> None:
    np.testing.assert_array_equal(image_to_rgb(make_image(photo[..., ::-1].copy(), "BGR8")), photo)


# ---------------------------------------------------------------- mono


@pytest.mark.parametrize("encoding", ["mono8", "8UC1"])
@pytest.mark.parametrize("pad", [0, 3])
def test_mono8_expands_to_three_equal_channels(photo: np.ndarray, encoding: str, pad: int) -> None:
    gray = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
    out = image_to_rgb(make_image(gray, encoding, pad=pad))
    assert out.shape == (*gray.shape, 3)
    for channel in range(3):
        np.testing.assert_array_equal(out[..., channel], gray)


@pytest.mark.parametrize("encoding", ["mono16", "16UC1"])
@pytest.mark.parametrize("bigendian", [False, True])
@pytest.mark.parametrize("pad", [0, 3])
def test_mono16_maps_full_range_to_8_bit(
    photo: np.ndarray, encoding: str, bigendian: bool, pad: int
) -> None:
    gray = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
    wide = gray.astype(np.uint16) * 257
    out = image_to_rgb(make_image(wide, encoding, pad=pad, bigendian=bigendian))
    np.testing.assert_array_equal(out[..., 0], gray)
    np.testing.assert_array_equal(out[..., 2], gray)


def test_mono16_rounds_to_nearest() -> None:
    values = np.array([[0, 128, 129, 257, 385, 386, 65534, 65535]], np.uint16)
    out = image_to_rgb(make_image(values, "mono16"))[..., 0]
    np.testing.assert_array_equal(out[0], [0, 0, 1, 1, 1, 2, 255, 255])


def test_mono16_big_endian_flag_changes_the_reading() -> None:
    # Same bytes, flag flipped: 0x0100 must read as 256 big-endian, 1 little-endian.
    msg = make_image(np.full((2, 2), 0x0100, np.uint16), "mono16", bigendian=True)
    assert image_to_rgb(msg)[0, 0, 0] == 1  # 256 / 257 rounds to 1
    msg.is_bigendian = 0
    assert image_to_rgb(msg)[0, 0, 0] == 0  # 1 / 257 rounds to 0


# ---------------------------------------------------------------- yuv422


def rgb_to_bt601_limited(rgb: np.ndarray) -> np.ndarray:
    """Reference YUV 4:4:4 encoder, BT.601 limited range, independent of OpenCV.

    cv2.COLOR_RGB2YUV is full range and would not match what cameras send.
    """
    matrix = np.array(
        [
            [0.256788, 0.504129, 0.097906],
            [-0.148223, -0.290993, 0.439216],
            [0.439216, -0.367788, -0.071427],
        ]
    )
    return rgb.astype(np.float64) @ matrix.T + np.array([16.0, 128.0, 128.0])


def pack_yuv422(rgb: np.ndarray, order: str) -> np.ndarray:
    """(H, W, 2) packed 4:2:2 in byte `order` 'uyvy' or 'yuyv', chroma averaged per pixel pair."""
    yuv = rgb_to_bt601_limited(rgb)
    luma = yuv[..., 0]
    cb = (yuv[:, 0::2, 1] + yuv[:, 1::2, 1]) / 2
    cr = (yuv[:, 0::2, 2] + yuv[:, 1::2, 2]) / 2
    chroma = np.empty(luma.shape)
    chroma[:, 0::2] = cb
    chroma[:, 1::2] = cr
    planes = [chroma, luma] if order == "uyvy" else [luma, chroma]
    return np.clip(np.rint(np.dstack(planes)), 0, 255).astype(np.uint8)


YUV_ORDERS = {"yuv422": "uyvy", "uyvy": "uyvy", "yuv422_yuy2": "yuyv", "yuyv": "yuyv"}


@pytest.mark.parametrize("encoding", list(YUV_ORDERS))
@pytest.mark.parametrize("pad", [0, 6])
def test_yuv422_decodes_bt601_limited(smooth_photo: np.ndarray, encoding: str, pad: int) -> None:
    packed = pack_yuv422(smooth_photo, YUV_ORDERS[encoding])
    out = image_to_rgb(make_image(packed, encoding, pad=pad))
    assert out.shape == smooth_photo.shape
    assert mean_abs_error(out, smooth_photo) < 2.0


@pytest.mark.parametrize("encoding", list(YUV_ORDERS))
def test_yuv422_byte_order_is_not_swapped(smooth_photo: np.ndarray, encoding: str) -> None:
    wrong_order = "yuyv" if YUV_ORDERS[encoding] == "uyvy" else "uyvy"
    out = image_to_rgb(make_image(pack_yuv422(smooth_photo, wrong_order), encoding))
    assert mean_abs_error(out, smooth_photo) > 20.0


@pytest.mark.parametrize(
    ("encoding", "cv_code_name"),
    [("yuv422", "COLOR_RGB2YUV_UYVY"), ("yuv422_yuy2", "COLOR_RGB2YUV_YUY2")],
)
def test_yuv422_matches_opencv_packed_encoder(
    smooth_photo: np.ndarray, encoding: str, cv_code_name: str
) -> None:
    cv_code = getattr(cv2, cv_code_name, None)
    if cv_code is None:  # the packed YUV encoders arrived in OpenCV 4.7
        pytest.skip(f"OpenCV {cv2.__version__} has no {cv_code_name} to cross-check against")
    packed = cv2.cvtColor(smooth_photo, cv_code)
    assert mean_abs_error(image_to_rgb(make_image(packed, encoding)), smooth_photo) < 2.0


@pytest.mark.parametrize("encoding", list(YUV_ORDERS))
def test_yuv422_odd_width_rejected(encoding: str) -> None:
    msg = FakeImage(height=2, width=3, encoding=encoding, step=6, data=bytes(12))
    with pytest.raises(ImageFormatError, match="even width"):
        image_to_rgb(msg)


# ---------------------------------------------------------------- bayer

BAYER_PATTERNS = ["rggb", "bggr", "gbrg", "grbg"]
CHANNEL_INDEX = {"r": 0, "g": 1, "b": 2}


def bayer_mosaic(rgb: np.ndarray, pattern: str) -> np.ndarray:
    """ROS naming: pattern[0] at (0, 0), [1] at (0, 1), [2] at (1, 0), [3] at (1, 1)."""
    mosaic = np.empty(rgb.shape[:2], np.uint8)
    for index, color in enumerate(pattern):
        dy, dx = divmod(index, 2)
        mosaic[dy::2, dx::2] = rgb[dy::2, dx::2, CHANNEL_INDEX[color]]
    return mosaic


@pytest.mark.parametrize("pattern", BAYER_PATTERNS)
@pytest.mark.parametrize("pad", [0, 5])
def test_bayer_demosaics_each_ros_pattern(
    smooth_photo: np.ndarray, pattern: str, pad: int
) -> None:
    msg = make_image(bayer_mosaic(smooth_photo, pattern), f"bayer_{pattern}8", pad=pad)
    out = image_to_rgb(msg)
    assert out.shape == smooth_photo.shape and out.flags.c_contiguous
    # Borders are extrapolated by the demosaicer; judge the interior.
    assert mean_abs_error(out[2:-2, 2:-2], smooth_photo[2:-2, 2:-2]) < 2.0


@pytest.mark.parametrize(
    ("pattern", "other"), [(p, o) for p in BAYER_PATTERNS for o in BAYER_PATTERNS if o != p]
)
def test_bayer_wrong_pattern_would_fail(
    smooth_photo: np.ndarray, pattern: str, other: str
) -> None:
    # Proves the accuracy test above discriminates: decoding with any other
    # pattern's OpenCV code (the ROS-name-equal code among them) is far off.
    out = image_to_rgb(make_image(bayer_mosaic(smooth_photo, pattern), f"bayer_{other}8"))
    assert mean_abs_error(out[2:-2, 2:-2], smooth_photo[2:-2, 2:-2]) > 15.0


# ---------------------------------------------------------------- validation


def test_every_supported_color_encoding_decodes() -> None:
    # Coverage guard: a new table entry without a decoder path fails here.
    for encoding in SUPPORTED_COLOR_ENCODINGS:
        msg = FakeImage(height=4, width=4, encoding=encoding, step=16, data=bytes(64))
        out = image_to_rgb(msg)
        assert out.shape == (4, 4, 3) and out.dtype == np.uint8, encoding


def test_truncated_data_reports_sizes() -> None:
    msg = FakeImage(height=480, width=640, encoding="rgb8", step=1920, data=bytes(1000))
    expected = r"data is 1000 bytes, expected step\*height = 921600"
    with pytest.raises(ImageFormatError, match=expected):
        image_to_rgb(msg)


def test_truncated_depth_reports_sizes() -> None:
    msg = FakeImage(height=2, width=2, encoding="32FC1", step=8, data=bytes(15))
    with pytest.raises(ImageFormatError, match=r"data is 15 bytes, expected step\*height = 16"):
        depth_to_meters(msg)


def test_longer_data_than_needed_is_accepted(photo: np.ndarray) -> None:
    msg = make_image(photo, "bgr8")
    msg.data = bytes(photo[..., ::-1].tobytes()) + b"\xff" * 10
    np.testing.assert_array_equal(image_to_rgb(msg), photo)


@pytest.mark.parametrize(
    ("encoding", "width", "row_bytes"),
    [("rgb8", 640, 1920), ("mono16", 640, 1280), ("yuv422", 640, 1280), ("bayer_rggb8", 640, 640)],
)
def test_step_too_small(encoding: str, width: int, row_bytes: int) -> None:
    msg = FakeImage(height=480, width=width, encoding=encoding, step=100, data=bytes(2_000_000))
    with pytest.raises(ImageFormatError, match=rf"step 100 < width\*bytes_per_pixel {row_bytes}"):
        image_to_rgb(msg)


@pytest.mark.parametrize(("width", "height"), [(0, 0), (0, 10), (10, 0)])
def test_zero_size_rejected(width: int, height: int) -> None:
    msg = FakeImage(height=height, width=width, encoding="rgb8", step=width * 3, data=b"")
    with pytest.raises(ImageFormatError, match=rf"empty image \({width}x{height}\)"):
        image_to_rgb(msg)
    msg.encoding = "16UC1"
    with pytest.raises(ImageFormatError, match="empty image"):
        depth_to_meters(msg)


def test_unknown_encoding_lists_supported() -> None:
    msg = FakeImage(height=1, width=1, encoding="foo", step=3, data=bytes(3))
    expected = r"unsupported encoding 'foo' \(supported: rgb8, "
    with pytest.raises(ImageFormatError, match=expected) as info:
        image_to_rgb(msg)
    for encoding in SUPPORTED_COLOR_ENCODINGS:
        assert encoding in str(info.value)


def test_depth_encoding_given_to_image_to_rgb_points_to_depth() -> None:
    msg = FakeImage(height=1, width=1, encoding="32FC1", step=4, data=bytes(4))
    with pytest.raises(ImageFormatError, match="depth_to_meters"):
        image_to_rgb(msg)


def test_errors_are_value_errors() -> None:
    assert issubclass(ImageFormatError, ValueError)


# ---------------------------------------------------------------- data containers


@pytest.mark.parametrize("container", [bytes, bytearray, array.array, memoryview])
@pytest.mark.parametrize("encoding", ["bgr8", "yuv422", "bayer_grbg8", "mono16"])
def test_data_containers_give_identical_results(
    smooth_photo: np.ndarray, container: type, encoding: str
) -> None:
    pixels = {
        "bgr8": smooth_photo[..., ::-1].copy(),
        "yuv422": pack_yuv422(smooth_photo, "uyvy"),
        "bayer_grbg8": bayer_mosaic(smooth_photo, "grbg"),
        "mono16": smooth_photo[..., 1].astype(np.uint16) * 257,
    }[encoding]
    reference = image_to_rgb(make_image(pixels, encoding, pad=2))
    np.testing.assert_array_equal(
        image_to_rgb(make_image(pixels, encoding, pad=2, container=container)), reference
    )


def test_wide_memoryview_and_ndarray_and_list_data() -> None:
    pixels = np.arange(2 * 4 * 3, dtype=np.uint8).reshape(2, 4, 3)
    msg = make_image(pixels, "rgb8")
    raw = bytes(msg.data)
    # A memoryview whose items are not bytes is still read byte by byte.
    msg.data = memoryview(array.array("H", raw))
    np.testing.assert_array_equal(image_to_rgb(msg), pixels)
    msg.data = np.frombuffer(raw, np.uint8)  # rosbags hands out uint8 arrays
    np.testing.assert_array_equal(image_to_rgb(msg), pixels)
    msg.data = list(raw)
    np.testing.assert_array_equal(image_to_rgb(msg), pixels)


# ---------------------------------------------------------------- depth


@pytest.mark.parametrize("bigendian", [False, True])
@pytest.mark.parametrize("pad", [0, 3])
def test_depth_16uc1_millimeters(bigendian: bool, pad: int) -> None:
    millimeters = np.array([[0, 1, 1500], [65535, 0, 250]], np.uint16)
    out = depth_to_meters(make_image(millimeters, "16UC1", pad=pad, bigendian=bigendian))
    assert out.dtype == np.float32 and out.shape == (2, 3) and out.flags.c_contiguous
    expected = np.array([[np.nan, 0.001, 1.5], [65.535, np.nan, 0.25]], np.float32)
    np.testing.assert_allclose(out, expected, rtol=1e-6)


@pytest.mark.parametrize("bigendian", [False, True])
@pytest.mark.parametrize("pad", [0, 5])
def test_depth_32fc1_meters_invalid_become_nan(bigendian: bool, pad: int) -> None:
    meters = np.array([[1.25, 0.0, np.nan, np.inf], [-np.inf, -0.5, 3.0, 1e-4]], np.float32)
    out = depth_to_meters(make_image(meters, "32FC1", pad=pad, bigendian=bigendian))
    assert out.dtype == np.float32 and out.dtype.isnative and out.shape == (2, 4)
    expected = np.array([[1.25, np.nan, np.nan, np.nan], [np.nan, np.nan, 3.0, 1e-4]], np.float32)
    np.testing.assert_array_equal(out, expected)


def test_depth_32fc1_does_not_alias_message() -> None:
    meters = np.full((3, 3), 2.0, np.float32)
    msg = make_image(meters, "32FC1", container=bytearray)
    out = depth_to_meters(msg)
    out[0, 0] = 9.0
    assert np.frombuffer(msg.data, np.float32)[0] == 2.0


@pytest.mark.parametrize("encoding", ["mono16", "rgb8", "32FC3", "64FC1"])
def test_depth_other_encodings_name_rep118(encoding: str) -> None:
    msg = FakeImage(height=1, width=1, encoding=encoding, step=8, data=bytes(8))
    with pytest.raises(ImageFormatError, match="REP 118") as info:
        depth_to_meters(msg)
    for supported in SUPPORTED_DEPTH_ENCODINGS:
        assert supported in str(info.value)


# ---------------------------------------------------------------- compressed


@pytest.mark.parametrize(
    "fmt", ["jpeg", "rgb8; jpeg compressed bgr8", "bgr8; jpeg compressed bgr8"]
)
def test_compressed_jpeg_decodes_to_rgb(photo: np.ndarray, fmt: str) -> None:
    bgr = cv2.cvtColor(photo, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    out = compressed_to_rgb(FakeCompressed(format=fmt, data=encoded.tobytes()))
    assert out.shape == photo.shape and out.dtype == np.uint8
    assert mean_abs_error(out, photo) < 3.0


@pytest.mark.parametrize("fmt", ["png", "bgr8; png compressed bgr8"])
@pytest.mark.parametrize("container", [bytes, array.array, memoryview])
def test_compressed_png_is_lossless(photo: np.ndarray, fmt: str, container: type) -> None:
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    assert ok
    raw = encoded.tobytes()
    payload = array.array("B", raw) if container is array.array else container(raw)
    out = compressed_to_rgb(FakeCompressed(format=fmt, data=payload))
    np.testing.assert_array_equal(out, photo)


def test_compressed_grayscale_png(photo: np.ndarray) -> None:
    gray = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
    ok, encoded = cv2.imencode(".png", gray)
    assert ok
    msg = FakeCompressed(format="mono8; png compressed mono8", data=encoded.tobytes())
    out = compressed_to_rgb(msg)
    assert out.shape == (*gray.shape, 3)
    for channel in range(3):
        np.testing.assert_array_equal(out[..., channel], gray)


def test_compressed_payload_stored_as_rgb(photo: np.ndarray) -> None:
    # A publisher that hands RGB straight to the encoder says so after "compressed".
    ok, encoded = cv2.imencode(".png", photo)
    assert ok
    msg = FakeCompressed(format="rgb8; png compressed rgb8", data=encoded.tobytes())
    out = compressed_to_rgb(msg)
    np.testing.assert_array_equal(out, photo)


def test_corrupt_jpeg_rejected(photo: np.ndarray) -> None:
    ok, encoded = cv2.imencode(".jpg", photo)
    assert ok
    garbage = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8  # JPEG magic, nonsense body
    expected = r"corrupt or unsupported compressed image \(format 'jpeg'\)"
    with pytest.raises(ImageFormatError, match=expected):
        compressed_to_rgb(FakeCompressed(format="jpeg", data=garbage))
    with pytest.raises(ImageFormatError, match="corrupt or unsupported"):
        compressed_to_rgb(FakeCompressed(format="jpeg", data=encoded.tobytes()[:40]))


def test_empty_compressed_rejected() -> None:
    with pytest.raises(ImageFormatError, match="empty compressed image"):
        compressed_to_rgb(FakeCompressed(format="jpeg", data=b""))
    with pytest.raises(ImageFormatError, match="empty compressed image"):
        compressed_to_rgb(FakeCompressed(format="png", data=array.array("B")))


def test_unsupported_compressed_rejected() -> None:
    with pytest.raises(ImageFormatError, match="corrupt or unsupported"):
        compressed_to_rgb(FakeCompressed(format="tiff", data=b"not an image at all"))
    with pytest.raises(ImageFormatError, match="compressedDepth"):
        compressed_to_rgb(FakeCompressed(format="16UC1; compressedDepth png", data=bytes(64)))


# ---------------------------------------------------------------- fill_image


FILL_CASES = {
    "mono8": (lambda rgb: cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), 1),
    "rgb8": (lambda rgb: rgb, 3),
    "bgr8": (lambda rgb: rgb[..., ::-1], 3),
    "32FC1": (lambda rgb: rgb[..., 0].astype(np.float32) / 100.0 + 0.5, 4),
    "16UC1": (lambda rgb: rgb[..., 0].astype(np.uint16) * 40 + 1, 2),
}


@pytest.mark.parametrize("encoding", list(FILL_CASES))
@pytest.mark.parametrize("fresh_data", [bytes, array.array])
def test_fill_image_packs_rows_and_round_trips(
    photo: np.ndarray, encoding: str, fresh_data: type
) -> None:
    make, bytes_per_pixel = FILL_CASES[encoding]
    source = make(photo)  # bgr8 case is a non-contiguous view on purpose
    msg = FakeImage(data=array.array("B") if fresh_data is array.array else b"")
    assert fill_image(msg, source, encoding) is msg
    height, width = photo.shape[:2]
    assert (msg.height, msg.width, msg.encoding, msg.is_bigendian) == (height, width, encoding, 0)
    assert msg.step == width * bytes_per_pixel
    assert len(msg.data) == msg.step * msg.height
    if encoding in ("32FC1", "16UC1"):
        expected = source.astype(np.float32) * (1e-3 if encoding == "16UC1" else 1.0)
        np.testing.assert_allclose(depth_to_meters(msg), expected, rtol=1e-6)
    else:
        expected_rgb = photo if encoding != "mono8" else np.dstack([source] * 3)
        np.testing.assert_array_equal(image_to_rgb(msg), expected_rgb)


def test_fill_image_appends_into_fresh_array_array(photo: np.ndarray) -> None:
    data = array.array("B")
    msg = FakeImage(data=data)
    fill_image(msg, photo, "rgb8")
    assert msg.data is data and len(data) == photo.size
    # A second fill on the same (now non-empty) message replaces, never appends.
    fill_image(msg, photo[:10], "rgb8")
    assert len(msg.data) == 10 * photo.shape[1] * 3
    np.testing.assert_array_equal(image_to_rgb(msg), photo[:10])


def test_fill_image_keeps_ndarray_data_for_rosbags(photo: np.ndarray) -> None:
    msg = FakeImage(data=np.zeros(0, np.uint8))
    fill_image(msg, photo, "rgb8")
    assert isinstance(msg.data, np.ndarray) and msg.data.dtype == np.uint8
    np.testing.assert_array_equal(image_to_rgb(msg), photo)


def test_fill_image_writes_little_endian_from_big_endian_input() -> None:
    values = np.array([[1.5, 2.0]], dtype=">f4")
    msg = fill_image(FakeImage(), values, "32FC1")
    assert msg.is_bigendian == 0
    assert bytes(msg.data) == np.array([1.5, 2.0], "<f4").tobytes()


def test_fill_image_accepts_hxwx1_for_single_channel() -> None:
    mask = np.arange(12, dtype=np.uint8).reshape(3, 4, 1)
    msg = fill_image(FakeImage(), mask, "mono8")
    assert (msg.height, msg.width, msg.step) == (3, 4, 4)
    assert bytes(msg.data) == mask.tobytes()


@pytest.mark.parametrize(
    ("array_in", "encoding", "match"),
    [
        (np.zeros((4, 4), np.float32), "mono8", "dtype uint8"),
        (np.zeros((4, 4, 3), np.uint8), "mono8", "HxW array"),
        (np.zeros((4, 4), np.uint8), "rgb8", "HxWx3"),
        (np.zeros((4, 4, 4), np.uint8), "bgr8", "HxWx3"),
        (np.zeros((4, 4), np.float64), "32FC1", "dtype float32"),
        (np.zeros((4, 4), np.int16), "16UC1", "dtype uint16"),
        (np.zeros((0, 4), np.uint8), "mono8", "empty"),
        (np.zeros((4, 4), np.uint8), "yuv422", "cannot fill encoding"),
    ],
)
def test_fill_image_validates(array_in: np.ndarray, encoding: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        fill_image(FakeImage(), array_in, encoding)


# ---------------------------------------------------------------- fill_compressed


def test_fill_compressed_png_mask_is_lossless() -> None:
    rng = np.random.default_rng(0)
    mask = rng.integers(0, 20, size=(120, 160), dtype=np.uint8)
    msg = fill_compressed(FakeCompressed(data=array.array("B")), mask)
    assert msg.format == "mono8; png compressed mono8"
    np.testing.assert_array_equal(compressed_to_rgb(msg)[..., 0], mask)


def test_fill_compressed_refuses_jpeg_masks() -> None:
    with pytest.raises(ValueError, match="class ids"):
        fill_compressed(FakeCompressed(), np.zeros((8, 8), np.uint8), "jpeg")


def test_fill_compressed_rgb_png_and_jpeg(photo: np.ndarray) -> None:
    png = fill_compressed(FakeCompressed(), photo, "png")
    assert png.format == "rgb8; png compressed bgr8"
    np.testing.assert_array_equal(compressed_to_rgb(png), photo)
    # image_transport subscribers decode with cv2.imdecode and get BGR: check the stored order.
    stored = cv2.imdecode(np.frombuffer(png.data, np.uint8), cv2.IMREAD_COLOR)  # = IMREAD_COLOR_BGR
    np.testing.assert_array_equal(stored[..., ::-1], photo)
    jpeg = fill_compressed(FakeCompressed(), photo, "jpeg")
    assert jpeg.format == "rgb8; jpeg compressed bgr8"
    assert mean_abs_error(compressed_to_rgb(jpeg), photo) < 4.0


def test_fill_compressed_validates(photo: np.ndarray) -> None:
    with pytest.raises(ValueError, match="unsupported compressed format"):
        fill_compressed(FakeCompressed(), photo, "webp")
    with pytest.raises(ValueError, match="dtype uint8"):
        fill_compressed(FakeCompressed(), photo.astype(np.float32))
    with pytest.raises(ValueError, match="HxWx3"):
        fill_compressed(FakeCompressed(), np.dstack([photo, photo[..., :1]]))


# ---------------------------------------------------------------- real sensor_msgs


def test_real_sensor_msgs_image_1080p() -> None:
    sensor_msgs = pytest.importorskip("sensor_msgs.msg")
    rgb = cv2.resize(skdata.astronaut(), (1920, 1080), interpolation=cv2.INTER_LINEAR)

    msg = sensor_msgs.Image()
    fresh = msg.data
    assert isinstance(fresh, array.array) and len(fresh) == 0
    fill_image(msg, rgb, "rgb8")
    assert msg.data is fresh, "fresh message should take the frombytes path"
    assert (msg.height, msg.width, msg.step, msg.is_bigendian) == (1080, 1920, 1920 * 3, 0)
    out = image_to_rgb(msg)
    assert np.shares_memory(out, np.frombuffer(msg.data, np.uint8))
    np.testing.assert_array_equal(out, rgb)
    del out  # release the exported buffer so the array can be refilled below

    # Refilling a used message goes through the field setter (bytes), which rclpy copies.
    mask = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    fill_image(msg, mask, "mono8")
    assert isinstance(msg.data, array.array)
    assert (msg.encoding, msg.step, len(msg.data)) == ("mono8", 1920, 1920 * 1080)
    np.testing.assert_array_equal(np.frombuffer(msg.data, np.uint8).reshape(1080, 1920), mask)
    np.testing.assert_array_equal(image_to_rgb(msg)[..., 1], mask)

    depth = sensor_msgs.Image()
    meters = mask.astype(np.float32) / 50.0
    fill_image(depth, meters, "32FC1")
    decoded = depth_to_meters(depth)
    np.testing.assert_array_equal(decoded[mask > 0], meters[mask > 0])
    assert np.isnan(decoded[mask == 0]).all()

    compressed = sensor_msgs.CompressedImage()
    fill_compressed(compressed, mask)
    assert compressed.format == "mono8; png compressed mono8"
    np.testing.assert_array_equal(compressed_to_rgb(compressed)[..., 0], mask)
