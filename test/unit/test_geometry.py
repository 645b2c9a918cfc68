"""Placement of the source image in the network input, and the affine map back from output
pixels to model-output grid coordinates. Expected values are worked out by hand here."""
from __future__ import annotations

import numpy as np
import pytest

from seg_perception.engine.geometry import Placement, network_output_size, parse_output_size


def _apply(affine: np.ndarray, x: float, y: float) -> tuple[float, float]:
    gx, gy = affine @ np.array([x, y, 1.0])
    return float(gx), float(gy)


# placement --------------------------------------------------------------------------------

@pytest.mark.parametrize("src, net, content, pad", [
    # landscape and portrait sources into a square net
    ((640, 480), (256, 256), (256, 192), (0, 32)),
    ((480, 640), (256, 256), (192, 256), (32, 0)),
    # into a landscape net: 640x480 is limited by height (scale 144/480 = 0.3)
    ((640, 480), (256, 144), (192, 144), (32, 0)),
    # portrait into landscape: scale 144/640 = 0.225 -> 108 x 144, (256 - 108) / 2 = 74
    ((480, 640), (256, 144), (108, 144), (74, 0)),
    # landscape into portrait: scale 144/640 = 0.225 -> 144 x 108, (256 - 108) / 2 = 74
    ((640, 480), (144, 256), (144, 108), (0, 74)),
    # 16:9 into 16:9 fills the input exactly
    ((1920, 1080), (256, 144), (256, 144), (0, 0)),
    # odd padding: 100x50 into 64x64 -> 64x32, pad 16 top (32 + 0 remainder)
    ((100, 50), (64, 64), (64, 32), (0, 16)),
    # 3x1 into 8x8: 8 x 2.67 -> 8 x 3, pad (8 - 3) // 2 = 2
    ((3, 1), (8, 8), (8, 3), (0, 2)),
])
def test_letterbox_placement(src: tuple[int, int], net: tuple[int, int], content: tuple[int, int],
                             pad: tuple[int, int]) -> None:
    place = Placement.for_policy("letterbox", *src, *net)
    assert (place.src_w, place.src_h, place.net_w, place.net_h) == (*src, *net)
    assert (place.content_w, place.content_h) == content
    assert (place.pad_left, place.pad_top) == pad
    assert place.is_identity_box == (content == net)
    # the box lies inside the input
    assert place.pad_left + place.content_w <= place.net_w
    assert place.pad_top + place.content_h <= place.net_h


@pytest.mark.parametrize("src", [(640, 480), (480, 640), (1920, 1080), (7, 3000)])
def test_stretch_placement_fills_the_input(src: tuple[int, int]) -> None:
    place = Placement.for_policy("stretch", *src, 256, 144)
    assert (place.content_w, place.content_h, place.pad_left, place.pad_top) == (256, 144, 0, 0)
    assert place.is_identity_box


def test_placement_errors() -> None:
    with pytest.raises(ValueError, match="resize policy"):
        Placement.for_policy("crop", 640, 480, 256, 256)
    with pytest.raises(ValueError):
        Placement.for_policy("letterbox", 0, 480, 256, 256)
    with pytest.raises(ValueError):
        Placement.for_policy("stretch", 640, 0, 256, 256)


def test_network_output_size_is_the_content_box() -> None:
    assert network_output_size(Placement.for_policy("letterbox", 640, 480, 256, 256)) == (256, 192)
    assert network_output_size(Placement.for_policy("letterbox", 480, 640, 256, 144)) == (108, 144)
    assert network_output_size(Placement.for_policy("stretch", 640, 480, 256, 144)) == (256, 144)


# output -> grid affine --------------------------------------------------------------------

def test_affine_is_identity_when_everything_has_one_size() -> None:
    place = Placement.for_policy("stretch", 256, 256, 256, 256)
    np.testing.assert_allclose(place.output_to_grid(256, 256, 256, 256), [[1, 0, 0], [0, 1, 0]], atol=1e-12)


def test_affine_stretch_downsampled_output() -> None:
    # Output 128x64 of a 256x256 grid: each output pixel covers 2x4 grid pixels, so output pixel
    # 0's center lies between grid pixels 0 and 1 (x = 0.5) and between rows 1 and 2 (y = 1.5).
    place = Placement.for_policy("stretch", 640, 480, 256, 256)
    affine = place.output_to_grid(128, 64, 256, 256)
    np.testing.assert_allclose(affine, [[2, 0, 0.5], [0, 4, 1.5]], atol=1e-12)


def test_affine_stretch_upsampled_with_strided_grid() -> None:
    # 640x480 output of a stride-4 grid (64x64) of a 256x256 net: grid px per output px =
    # 64/640 = 0.1 across, 64/480 down; pixel 0's center 0.5 -> 0.05 -> index coordinate -0.45.
    place = Placement.for_policy("stretch", 640, 480, 256, 256)
    affine = place.output_to_grid(640, 480, 64, 64)
    assert _apply(affine, 0, 0) == pytest.approx((0.05 - 0.5, 0.5 * 64 / 480 - 0.5))
    assert _apply(affine, 639, 479) == pytest.approx((639.5 * 0.1 - 0.5, 479.5 * 64 / 480 - 0.5))


def test_affine_letterbox_landscape_square_net_stride_2() -> None:
    # 640x480 into 256x256: content 256x192 at top 32; grid 128x128 (stride 2); output 640x480.
    # Output px (0, 0), center (0.5, 0.5): net x = 0.5 * 0.4 = 0.2, y = 0.2 + 32 = 32.2
    #   -> grid (0.1, 16.1) -> index coordinates (-0.4, 15.6).
    # Output px (639, 479), center (639.5, 479.5): net (255.8, 223.8) -> grid (127.9, 111.9)
    #   -> (127.4, 111.4).
    place = Placement.for_policy("letterbox", 640, 480, 256, 256)
    affine = place.output_to_grid(640, 480, 128, 128)
    assert _apply(affine, 0, 0) == pytest.approx((-0.4, 15.6))
    assert _apply(affine, 639, 479) == pytest.approx((127.4, 111.4))
    # Linear in between: output px (320, 240) center (320.5, 240.5) -> net (128.2, 128.2)
    #   -> grid (64.1, 64.1) -> (63.6, 63.6)
    assert _apply(affine, 320, 240) == pytest.approx((63.6, 63.6))


def test_affine_letterbox_portrait_into_landscape_net() -> None:
    # 480x640 into 256x144: content 108x144 at left 74; grid at full resolution; output 480x640.
    # Output px (0, 0): net x = 0.5 * 108/480 + 74 = 74.1125, y = 0.5 * 144/640 = 0.1125
    #   -> (73.6125, -0.3875).
    # Output px (479, 639): net x = 479.5 * 0.225 + 74 = 181.8875, y = 639.5 * 0.225 = 143.8875
    #   -> (181.3875, 143.3875).
    place = Placement.for_policy("letterbox", 480, 640, 256, 144)
    affine = place.output_to_grid(480, 640, 256, 144)
    assert _apply(affine, 0, 0) == pytest.approx((73.6125, -0.3875))
    assert _apply(affine, 479, 639) == pytest.approx((181.3875, 143.3875))
    assert affine[0, 1] == 0 and affine[1, 0] == 0


def test_affine_letterbox_at_network_output_size_is_a_pure_shift() -> None:
    # Output = the content box at network resolution: output px i is net px i + pad exactly.
    place = Placement.for_policy("letterbox", 640, 480, 256, 256)
    w, h = network_output_size(place)
    affine = place.output_to_grid(w, h, 256, 256)
    np.testing.assert_allclose(affine, [[1, 0, 0], [0, 1, 32]], atol=1e-12)


def test_affine_never_reaches_the_padding() -> None:
    # Every output pixel center maps inside the content box, whatever the output size.
    place = Placement.for_policy("letterbox", 640, 480, 256, 256)
    for out_w, out_h in [(640, 480), (1920, 1080), (33, 17), (256, 192)]:
        affine = place.output_to_grid(out_w, out_h, 256, 256)
        _, y_first = _apply(affine, 0, 0)
        _, y_last = _apply(affine, 0, out_h - 1)
        # index coordinates of the content rows are 32 .. 223
        assert 31.5 <= y_first and y_last <= 223.5


# parse_output_size ------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("input", "input"),
    (" Network ", "network"),
    ("640x480", (640, 480)),
    ("1920X1080", (1920, 1080)),
    (" 320 x 240 ", (320, 240)),
])
def test_parse_output_size(text: str, expected: object) -> None:
    assert parse_output_size(text) == expected


@pytest.mark.parametrize("text", ["", "640", "0x480", "640x0", "640x-1", "axb", "640x480x3", "640*480",
                                  "1.5x2", "inputs", "²x2"])
def test_parse_output_size_errors(text: str) -> None:
    with pytest.raises(ValueError, match="output_size"):
        parse_output_size(text)
