"""Hostile input to the ROS-free core: decompression bombs, oversized raw images, damaged JPEGs,
log-flooding strings, non-finite calibrations, voxel-index overflow and buffers kept for a size
that is no longer served. Each case is one a misbehaving driver or a typo produces."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import pytest
from skimage import data as skdata

from devtools.hostile import BAD_K, corrupt_jpeg, png_bomb
from seg_perception.live import params
from seg_perception.engine.buffers import BufferPool
from seg_perception.wire.calibration import CalibrationError, intrinsics_from_camera_info
from seg_perception.wire.images import (
    DEFAULT_MAX_IMAGE_PIXELS,
    ImageFormatError,
    ImageLimits,
    check_image_geometry,
    compressed_to_rgb,
    depth_to_meters,
    image_to_rgb,
)
from seg_perception.live.health import describe_stamp_problem, stamp_problem, throughput_problem
from seg_perception.wire.image_headers import read_header
from seg_perception.engine.projection import obstacle_points, voxel_centroids
from seg_perception.wire.calibration import Intrinsics
from seg_perception.wire.text import WIRE_TEXT_LIMIT, wire_text


@dataclass
class Compressed:
    format: str = "png"
    data: Any = b""


@dataclass
class Raw:
    height: int = 0
    width: int = 0
    encoding: str = "rgb8"
    is_bigendian: int = 0
    step: int = 0
    data: Any = b""


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return np.ascontiguousarray(skdata.astronaut()[:480, :510])


def _encode(rgb: np.ndarray, ext: str) -> bytes:
    ok, encoded = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if rgb.ndim == 3 else rgb)
    assert ok
    return encoded.tobytes()


# ------------------------------------------------------------------ headers


@pytest.mark.parametrize("ext, codec", [(".png", "png"), (".jpg", "jpeg"), (".tiff", "tiff"), (".bmp", "bmp")])
@pytest.mark.parametrize("gray", [False, True])
def test_header_size_matches_the_decoded_image(photo: np.ndarray, ext: str, codec: str, gray: bool) -> None:
    image = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY) if gray else photo
    header = read_header(_encode(image, ext))
    assert header is not None
    assert (header.codec, header.width, header.height) == (codec, 510, 480)
    assert header.channels >= 1 and header.decoded_bytes >= 510 * 480 * 3


def test_header_of_progressive_jpeg_and_16_bit_png(photo: np.ndarray) -> None:
    ok, progressive = cv2.imencode(".jpg", photo, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    assert ok
    header = read_header(progressive.tobytes())
    assert header is not None and (header.width, header.height) == (510, 480)
    header16 = read_header(_encode(photo.astype(np.uint16) * 257, ".png"))
    assert header16 is not None and header16.bytes_per_sample == 2


@pytest.mark.parametrize("payload", [
    b"", b"\x89PNG\r\n\x1a\n", b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00",  # cut inside the header
    b"\xff\xd8\xff\xda\x00\x08" + bytes(8),  # scan before any frame header
    b"\xff\xd8\x00\x00\x00\x00",  # no marker where a segment must start
    b"GIF89a" + bytes(20), b"RIFF\x00\x00\x00\x00WEBPVP8 ", bytes(100),
    b"II*\x00\xff\xff\xff\xff",  # TIFF whose first IFD lies beyond the data
])
def test_unreadable_headers_are_none(payload: bytes) -> None:
    assert read_header(payload) is None


# ------------------------------------------------------------------ size limits


def test_decompression_bomb_is_refused_from_its_header() -> None:
    bomb = png_bomb(20000, 20000)
    assert len(bomb) < 100_000  # a small message ...
    header = read_header(bomb)
    assert header is not None and header.pixels == 400_000_000  # ... that would decode to 1.2 GB
    start = time.perf_counter()
    with pytest.raises(ImageFormatError, match="20000x20000 pixels .* exceeds the limit") as info:
        compressed_to_rgb(Compressed("png", bomb))
    assert info.value.kind == "too_large"
    # Not a timing test: a decode would take seconds; this bound only shows nothing was decoded.
    assert time.perf_counter() - start < 1.0


def test_an_image_inside_the_limit_still_decodes() -> None:
    small = png_bomb(640, 480)
    assert compressed_to_rgb(Compressed("png", small)).shape == (480, 640, 3)
    with pytest.raises(ImageFormatError, match="exceeds the limit"):
        compressed_to_rgb(Compressed("png", small), ImageLimits(max_pixels=640 * 480 - 1))


def test_default_limit_fits_8k_cameras() -> None:
    assert DEFAULT_MAX_IMAGE_PIXELS == 7680 * 4320
    limits = ImageLimits()
    limits.check(7680, 4320, 7680 * 4320 * 4)
    with pytest.raises(ImageFormatError):
        limits.check(7681, 4320, 0)


def test_raw_image_over_the_limit_is_refused_before_conversion() -> None:
    limits = ImageLimits(max_pixels=100 * 100)
    ok = Raw(100, 100, "mono8", 0, 100, bytes(100 * 100))
    assert image_to_rgb(ok, limits).shape == (100, 100, 3)
    big = Raw(101, 100, "mono8", 0, 100, bytes(101 * 100))
    with pytest.raises(ImageFormatError, match="101 pixels|100x101 pixels") as info:
        image_to_rgb(big, limits)
    assert info.value.kind == "too_large"
    depth = Raw(101, 100, "32FC1", 0, 400, bytes(101 * 400))
    with pytest.raises(ImageFormatError, match="exceeds the limit"):
        depth_to_meters(depth, limits)


def test_huge_declared_geometry_costs_nothing() -> None:
    # Width and height near 2^32 with a tiny payload: refused on the numbers alone.
    with pytest.raises(ImageFormatError, match="exceeds the limit") as info:
        check_image_geometry(2**32 - 1, 2**32 - 1, 3 * (2**32 - 1), 3, 16)
    assert info.value.kind == "too_large"
    with pytest.raises(ImageFormatError, match="exceeds the limit"):
        # Few pixels but a step of gigabytes: the bytes limit catches it.
        check_image_geometry(10, 10, 2**31, 3, 2**31)


# ------------------------------------------------------------------ damaged JPEG


def test_jpeg_corrupted_in_the_middle_is_rejected(photo: np.ndarray) -> None:
    damaged = corrupt_jpeg(photo)
    # OpenCV returns an image for it (libjpeg's warning goes to stderr only): the reason this exists.
    assert cv2.imdecode(np.frombuffer(damaged, np.uint8), cv2.IMREAD_COLOR) is not None
    with pytest.raises(ImageFormatError, match="corrupt JPEG .*Corrupt JPEG data") as info:
        compressed_to_rgb(Compressed("jpeg", damaged))
    assert info.value.kind == "corrupt"


def test_intact_jpeg_decodes_like_opencv(photo: np.ndarray) -> None:
    payload = _encode(photo, ".jpg")
    ours = compressed_to_rgb(Compressed("rgb8; jpeg compressed bgr8", payload))
    reference = cv2.cvtColor(cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(ours, reference)
    # A publisher that handed RGB to the encoder says "compressed rgb8": stored order comes back.
    stored_rgb = cv2.imencode(".jpg", photo)[1].tobytes()
    swapped = compressed_to_rgb(Compressed("rgb8; jpeg compressed rgb8", stored_rgb))
    np.testing.assert_array_equal(swapped, cv2.imdecode(np.frombuffer(stored_rgb, np.uint8), cv2.IMREAD_COLOR))


def test_grayscale_jpeg_becomes_three_equal_channels(photo: np.ndarray) -> None:
    gray = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
    out = compressed_to_rgb(Compressed("mono8; jpeg compressed mono8", _encode(gray, ".jpg")))
    assert out.shape == (480, 510, 3)
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])


def test_truncated_png_is_rejected(photo: np.ndarray) -> None:
    payload = _encode(photo, ".png")
    with pytest.raises(ImageFormatError, match="corrupt") as info:
        compressed_to_rgb(Compressed("png", payload[: len(payload) // 2]))
    assert info.value.kind == "corrupt"


# ------------------------------------------------------------------ strings from the wire


def test_wire_text_bounds_and_escapes() -> None:
    assert wire_text("rgb8") == "'rgb8'"
    huge = wire_text("x" * 1_000_000)
    assert len(huge) < WIRE_TEXT_LIMIT + 40 and huge.endswith("(1000000 chars)")
    nasty = wire_text("a\nb\x1b[31m\u202e'\\")
    assert nasty.isascii() and nasty.isprintable() and "\n" not in nasty
    assert nasty == "'a\\nb\\x1b[31m\\u202e\\'\\\\'"
    assert wire_text("é" * 100).isascii() and len(wire_text("é" * 100)) < WIRE_TEXT_LIMIT + 40

    class Hostile:
        def __str__(self) -> str:
            raise RuntimeError("no")
    assert wire_text(Hostile()) == "<unprintable Hostile>"


@pytest.mark.parametrize("field, make", [
    ("encoding", lambda text: image_to_rgb(Raw(2, 2, text, 0, 6, bytes(12)))),
    ("encoding", lambda text: depth_to_meters(Raw(2, 2, text, 0, 8, bytes(16)))),
    ("format", lambda text: compressed_to_rgb(Compressed(text, b"not an image"))),
    ("format", lambda text: compressed_to_rgb(Compressed(text + "compressedDepth", b"x"))),
])
def test_error_text_never_echoes_a_wire_string_in_full(field: str, make: Any) -> None:
    hostile = "\n\x1b[2J" + "A" * 1_000_000
    with pytest.raises(ImageFormatError) as info:
        make(hostile)
    text = str(info.value)
    assert len(text) < 400, f"{field}: {len(text)} chars"
    assert "\n" not in text and "\x1b" not in text
    assert info.value.kind in ("encoding", "format")


# ------------------------------------------------------------------ calibration

GOOD_K = [500.0, 0.0, 319.5, 0.0, 500.0, 239.5, 0.0, 0.0, 1.0]


def test_good_calibration_gives_intrinsics_scaled_to_the_image() -> None:
    intr = intrinsics_from_camera_info(GOOD_K, 640, 480, 320, 240)
    assert (intr.width, intr.height) == (320, 240)
    assert intr.fx == pytest.approx(250.0) and intr.cx == pytest.approx(159.5)
    # An unset (0x0) size means the image's own.
    assert intrinsics_from_camera_info(GOOD_K, 0, 0, 640, 480).fx == 500.0


@pytest.mark.parametrize("name", sorted(BAD_K))
def test_bad_calibrations_are_refused_with_a_reason(name: str) -> None:
    with pytest.raises(CalibrationError) as info:
        intrinsics_from_camera_info(BAD_K[name], 640, 480, 640, 480)
    assert str(info.value)


@pytest.mark.parametrize("kwargs, fragment", [
    ({"k": GOOD_K[:8]}, "9 entries"),
    ({"d": [0.1, float("nan"), 0.0, 0.0, 0.0]}, "D has non-finite"),
    ({"p": [500.0, 0.0, 319.5, 0.0, 0.0, 500.0, float("inf"), 0.0, 0.0, 0.0, 1.0, 0.0]}, "P has non-finite"),
    ({"width": 640, "height": 360}, "aspect ratio"),
    ({"width": 640, "height": 0}, "half set"),
    ({"k": [5e6, 0.0, 319.5, 0.0, 5e6, 239.5, 0.0, 0.0, 1.0]}, "exceed"),
    ({"k": [500.0, 0.0, 5000.0, 0.0, 500.0, 239.5, 0.0, 0.0, 1.0]}, "principal point"),
])
def test_calibration_checks(kwargs: dict[str, Any], fragment: str) -> None:
    args: dict[str, Any] = {"k": GOOD_K, "width": 640, "height": 480, "image_width": 640, "image_height": 480}
    args.update(kwargs)
    with pytest.raises(CalibrationError, match=fragment):
        intrinsics_from_camera_info(**args)


@pytest.mark.parametrize("field", ["fx", "cx", "cy"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_intrinsics_refuse_non_finite_values(field: str, value: float) -> None:
    values = {"fx": 500.0, "fy": 500.0, "cx": 320.0, "cy": 240.0, "width": 640, "height": 480}
    values[field] = value
    with pytest.raises(ValueError, match="finite"):
        Intrinsics(**values)  # type: ignore[arg-type]


# ------------------------------------------------------------------ voxel overflow


def test_tiny_voxels_never_merge_a_wall_into_one_point() -> None:
    # A 1080p wall 2 m away: with voxel indices cast to int64 after overflow, every point fell
    # into one voxel (INT64_MIN) and the wall became one obstacle point.
    v, u = np.mgrid[0:108, 0:192]
    wall = np.stack([(u - 96) * 0.01, (v - 54) * 0.01, np.full(u.shape, 2.0)], axis=-1).astype(np.float32)
    points = wall.reshape(-1, 3)
    for voxel in (1e-20, 1e-12, 1e-9):
        assert len(voxel_centroids(points, voxel)) == len(points), voxel
    assert len(voxel_centroids(points, 0.05)) < len(points) // 10
    far = points.copy()
    far[0] = (1e30, 0.0, 1e30)  # a float32 point far away: 1e30 / 1e-300 is inf in float64
    with pytest.raises(ValueError, match="overflow"):
        voxel_centroids(far, 1e-300)


def test_obstacle_points_with_tiny_voxels_keep_every_point() -> None:
    points = np.dstack([*np.meshgrid(np.linspace(-1, 1, 40), np.linspace(-1, 1, 30)), np.full((30, 40), 3.0)])
    labels = np.ones((30, 40), np.uint8)
    lut = np.zeros(256, bool)
    lut[1] = True
    kept = obstacle_points(points.astype(np.float32), labels, lut, 0.1, 10.0, voxel_size=1e-15)
    assert len(kept) == 30 * 40


# ------------------------------------------------------------------ buffers


def test_buffer_pool_gives_back_arrays_of_an_old_size() -> None:
    pool = BufferPool()
    for name in ("labels", "color", "overlay"):
        pool.get(name, 2000, 3000, 3)
    assert pool.nbytes == 3 * 2000 * 3000 * 3
    pool.get("labels", 48, 64, 3)  # the output shrank, and overlay is no longer asked for
    assert pool.nbytes == 48 * 64 * 3
    kept = pool.get("labels", 48, 64, 3)
    assert kept is pool.get("labels", 48, 64, 3)
    pool.clear()
    assert pool.nbytes == 0
    assert BufferPool(enabled=False).get("x", 4, 4) is None


# ------------------------------------------------------------------ health judgements


def test_stamp_problems() -> None:
    assert stamp_problem(0.02) is None and stamp_problem(-0.1) is None and stamp_problem(30.0) is None
    assert stamp_problem(-5.0) == "future"
    assert stamp_problem(96026663.889) == "stale"
    assert "future" in describe_stamp_problem("future", -5.0)
    assert "use_sim_time" in describe_stamp_problem("stale", 3600.0)


@pytest.mark.parametrize("rates, fragment", [
    ((30.0, 0.8, 1200.0, 29.0, 0.0, 0.0), "model too slow"),
    ((30.0, 2.0, 0.0, 0.0, 28.0, 0.0), "rejected"),
    ((30.0, 5.0, 10.0, 25.0, 0.0, 0.0), "waits elsewhere"),
])
def test_throughput_problem_says_why(rates: tuple[float, ...], fragment: str) -> None:
    reason = throughput_problem(*rates)
    assert reason is not None and fragment in reason


@pytest.mark.parametrize("rates", [
    (30.0, 29.0, 20.0, 1.0, 0.0, 0.0),  # keeping up
    (0.5, 0.0, 5000.0, 0.0, 0.0, 0.0),  # too few frames to judge
    (30.0, 15.0, 60.0, 15.0, 0.0, 0.0),  # half the frames: thinned, not far behind
])
def test_throughput_without_problem(rates: tuple[float, ...]) -> None:
    assert throughput_problem(*rates) is None


# ------------------------------------------------------------------ parameters


@pytest.mark.parametrize("values, fragment", [
    ({"voxel_size": 1e-20}, "voxel_size"),
    ({"voxel_size": 0.0009}, "voxel_size"),
    ({"output_size": "99999999999999999999x1"}, "max_image_pixels"),
    ({"output_size": "8000x8000"}, "max_image_pixels"),
    ({"output_size": "1920x1080", "max_image_pixels": 640 * 480}, "max_image_pixels"),
])
def test_parameters_beyond_what_the_node_can_serve_are_refused(values: dict[str, Any], fragment: str) -> None:
    reason = params.validate(values)
    assert reason is not None and fragment in reason, reason


@pytest.mark.parametrize("values", [
    {"voxel_size": 0.0}, {"voxel_size": 0.001}, {"output_size": "7680x4320"},
    {"output_size": "1920x1080", "max_image_pixels": 1920 * 1080},
])
def test_parameters_the_node_can_serve_are_accepted(values: dict[str, Any]) -> None:
    assert params.validate(values) is None


def test_every_numeric_parameter_has_a_range() -> None:
    for p in params.PARAMS:
        if isinstance(p.default, (int, float)) and not isinstance(p.default, bool):
            assert p.min is not None and p.max is not None, p.name
