"""image_transport's compressedDepth decoded by wire.compressed_depth: every codec and encoding
round-trips against the encoder side written from the format (devtools/compressed_depth.py) to
the depth, and so the clouds, of the raw image; bad payloads are refused within the limits."""
from __future__ import annotations

import struct
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from devtools import compressed_depth as publisher
from seg_perception.wire.compressed_depth import decode_compressed_depth, parse_format, rvl_decode
from seg_perception.wire.images import ImageFormatError, ImageLimits, depth_to_meters, fill_image

H, W = 30, 40


def millimeters(seed: int = 0) -> np.ndarray:
    """A depth camera's frame: a slanted floor, a box, holes (0) in runs and alone."""
    rng = np.random.default_rng(seed)
    v = np.arange(H, dtype=np.float32)[:, None]
    mm = (800 + 200 * v + np.zeros((1, W), np.float32)).astype(np.uint16)
    mm[8:20, 10:25] = 1234
    mm[rng.random((H, W)) < 0.1] = 0
    mm[0, :7] = 0
    mm[-1, -3:] = 0
    return mm


def raw(array: np.ndarray, encoding: str) -> SimpleNamespace:
    msg = SimpleNamespace(height=0, width=0, encoding="", is_bigendian=0, step=0, data=b"")
    return fill_image(msg, array, encoding)


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=True))


@pytest.mark.parametrize("codec", ["png", "rvl"])
def test_16uc1_is_lossless_and_gives_the_raw_frames_meters(codec: str) -> None:
    mm = millimeters()
    msg = publisher.encode(mm, "16UC1", codec)
    encoding, stored = decode_compressed_depth(msg, ImageLimits())
    assert encoding == "16UC1" and stored.dtype == np.uint16 and np.array_equal(stored, mm)
    assert same(depth_to_meters(msg), depth_to_meters(raw(mm, "16UC1")))


@pytest.mark.parametrize("codec", ["png", "rvl"])
def test_32fc1_dequantizes_as_the_subscriber_does(codec: str) -> None:
    meters = millimeters().astype(np.float32) / 1000
    meters[meters == 0] = np.nan
    meters[2, 2] = 12.0  # beyond depth_max: the encoder stores "no depth"
    msg = publisher.encode(meters, "32FC1", codec)
    got = depth_to_meters(msg)
    # The raw frame a compressedDepth subscriber republishes: A / (q - B), NaN for q == 0.
    expected = depth_to_meters(raw(publisher.dequantize(publisher.quantize(meters)), "32FC1"))
    assert same(got, expected)
    assert np.isnan(got[2, 2])
    valid = np.isfinite(meters) & (meters < publisher.DEPTH_MAX)
    assert np.isfinite(got[valid]).all() and np.isnan(got[~valid]).all()
    # Quantization error: one inverse-depth step is depth^2 / A, under 1 mm at 3.7 m.
    a, _ = publisher.quantization()
    assert np.all(np.abs(got[valid] - meters[valid]) <= meters[valid] ** 2 / a + 1e-6)


def test_quantization_parameters_travel_in_the_header() -> None:
    meters = np.full((H, W), 2.5, np.float32)
    msg = publisher.encode(meters, "32FC1", "png", depth_max=5.0, depth_quantization=50.0)
    a, b = publisher.quantization(5.0, 50.0)
    assert struct.unpack("<iff", msg.data[:12]) == (0, pytest.approx(a), pytest.approx(b))
    assert np.allclose(depth_to_meters(msg), 2.5, atol=2.5**2 / a)


@pytest.mark.parametrize("seed", range(5))
def test_rvl_decoder_inverts_the_reference_encoder(seed: int) -> None:
    """Random runs, big jumps both ways (16-bit wrap of the deltas), a frame that ends in zeros."""
    rng = np.random.default_rng(seed)
    values = rng.integers(1, 65536, size=997, dtype=np.int64)
    values[rng.random(values.size) < 0.3] = 0
    values[:5] = [0, 65535, 1, 0, 65535]
    if seed % 2:
        values[-4:] = 0
    stream = np.frombuffer(publisher.rvl_encode(values.astype(np.uint16)), np.uint8)
    assert np.array_equal(rvl_decode(stream, values.size), values)


def test_all_zero_frame() -> None:
    zeros = np.zeros((H, W), np.uint16)
    for codec in ("png", "rvl"):
        assert np.isnan(depth_to_meters(publisher.encode(zeros, "16UC1", codec))).all()


@pytest.mark.parametrize("fmt, expected", [
    ("16UC1; compressedDepth png", ("16UC1", "png")),
    ("32FC1; compressedDepth rvl", ("32FC1", "rvl")),
    ("16UC1; compressedDepth", ("16UC1", "png")),  # publishers before the codec name
    ("32fc1", ("32FC1", "png")),  # before the format string had a transport part
])
def test_format_strings(fmt: str, expected: tuple[str, str]) -> None:
    assert parse_format(fmt) == expected


@pytest.mark.parametrize("fmt, kind", [
    ("16UC1; compressedDepth zstd", "format"),
    ("rgb8; compressedDepth png", "encoding"),
    ("16UC1; jpeg compressed mono16", "format"),
])
def test_unknown_format_strings_are_refused(fmt: str, kind: str) -> None:
    with pytest.raises(ImageFormatError) as err:
        parse_format(fmt)
    assert err.value.kind == kind


def payload(msg: SimpleNamespace, data: bytes) -> SimpleNamespace:
    return SimpleNamespace(format=msg.format, data=data)


def test_bad_payloads_are_refused_with_a_kind() -> None:
    msg = publisher.encode(millimeters(), "16UC1", "rvl")
    data = bytes(msg.data)
    cases = {
        "header only": (data[:12], "empty"),
        "rvl size cut": (data[:16], "corrupt"),
        "stream cut": (data[: len(data) // 2], "corrupt"),
        "zero width": (data[:12] + struct.pack("<II", 0, H) + data[20:], "empty"),
        "wrong height": (data[:12] + struct.pack("<II", W, H + 5) + data[20:], "corrupt"),
    }
    for name, (bad, kind) in cases.items():
        with pytest.raises(ImageFormatError) as err:
            decode_compressed_depth(payload(msg, bad), ImageLimits())
        assert err.value.kind == kind, name
    png = publisher.encode(millimeters(), "16UC1", "png")
    eight_bit = bytes(png.data[:12]) + cv2.imencode(".png", np.zeros((H, W), np.uint8))[1].tobytes()
    with pytest.raises(ImageFormatError, match="one 16-bit channel"):
        decode_compressed_depth(payload(png, eight_bit), ImageLimits())
    with pytest.raises(ImageFormatError) as err:
        decode_compressed_depth(payload(png, bytes(png.data[:12]) + b"not a png at all"), ImageLimits())
    assert err.value.kind == "format"


def test_declared_sizes_are_checked_before_decoding() -> None:
    """Same limits as colour: an RVL or PNG that declares more pixels than max_image_pixels is
    refused from its header, and an RVL stream longer than any encoding of its size likewise."""
    small = ImageLimits(max_pixels=H * W - 1)
    for codec in ("png", "rvl"):
        with pytest.raises(ImageFormatError) as err:
            decode_compressed_depth(publisher.encode(millimeters(), "16UC1", codec), small)
        assert err.value.kind == "too_large"
    bomb = struct.pack("<iff", 0, 0, 0) + struct.pack("<II", 50000, 50000) + b"\0" * 16
    with pytest.raises(ImageFormatError) as err:
        decode_compressed_depth(SimpleNamespace(format="16UC1; compressedDepth rvl", data=bomb), ImageLimits())
    assert err.value.kind == "too_large"
    padded = struct.pack("<iff", 0, 0, 0) + struct.pack("<II", 2, 2) + b"\0" * 4096
    with pytest.raises(ImageFormatError, match="more than any encoding"):
        decode_compressed_depth(SimpleNamespace(format="16UC1; compressedDepth rvl", data=padded), ImageLimits())
