"""Palette lookup and the alpha overlay: numpy/OpenCV and torch versions against values worked
out here and against each other."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from seg_perception.engine.colorize import Painter, colorize, colorize_torch, drawn_lut, overlay, overlay_torch
from seg_perception.model.labels import UNLABELED, ClassMap

DEVICES = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])

# id 0 black (background), 1 red-ish, 2 black too (a class drawn as "nothing"), 3 blue-ish
CLASSES = ClassMap.from_config([
    {"name": "background", "color": [0, 0, 0]},
    {"name": "person", "color": [220, 20, 60]},
    {"name": "shadow", "color": [0, 0, 0]},
    {"name": "sky", "color": [70, 130, 180]},
])
COLORS = {0: (0, 0, 0), 1: (220, 20, 60), 2: (0, 0, 0), 3: (70, 130, 180), UNLABELED: (0, 0, 0)}
PAINTED = {1, 3}


def _labels(h: int = 37, w: int = 53, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.choice(np.array([0, 1, 2, 3, UNLABELED], np.uint8), size=(h, w))


def _image(h: int = 37, w: int = 53, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3)).astype(np.uint8)


def _expected_color(labels: np.ndarray) -> np.ndarray:
    out = np.zeros((*labels.shape, 3), np.uint8)
    for value, color in COLORS.items():
        out[labels == value] = color
    return out


def _expected_overlay(image: np.ndarray, labels: np.ndarray, alpha: float) -> np.ndarray:
    color = _expected_color(labels).astype(np.float64)
    blended = np.rint(image * (1.0 - alpha) + color * alpha)
    painted = np.isin(labels, list(PAINTED))[..., None]
    return np.where(painted, blended, image).astype(np.uint8)


def test_drawn_lut() -> None:
    lut = drawn_lut(CLASSES.palette_lut())
    assert lut.shape == (256,) and lut.dtype == np.uint8
    assert sorted(np.flatnonzero(lut).tolist()) == [1, 3]
    assert lut[1] == 255 and lut[UNLABELED] == 0


def test_drawn_lut_never_paints_unlabeled_even_if_colored() -> None:
    palette = np.zeros((256, 3), np.uint8)
    palette[UNLABELED] = (255, 255, 255)
    palette[7] = (1, 0, 0)
    assert np.flatnonzero(drawn_lut(palette)).tolist() == [7]


def test_colorize_numpy() -> None:
    labels = _labels()
    color = colorize(labels, CLASSES.palette_lut())
    assert color.shape == (*labels.shape, 3) and color.dtype == np.uint8
    np.testing.assert_array_equal(color, _expected_color(labels))


@pytest.mark.parametrize("device", DEVICES, ids=str)
def test_colorize_torch(device: torch.device) -> None:
    labels = _labels()
    palette = torch.from_numpy(CLASSES.palette_lut()).to(device)
    color = colorize_torch(torch.from_numpy(labels).to(device), palette)
    assert color.shape == (*labels.shape, 3) and color.dtype == torch.uint8 and color.device.type == device.type
    np.testing.assert_array_equal(color.cpu().numpy(), _expected_color(labels))


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.5, 0.77, 1.0])
def test_overlay_numpy(alpha: float) -> None:
    labels, image = _labels(), _image()
    palette = CLASSES.palette_lut()
    out = overlay(image, colorize(labels, palette), labels, palette, alpha)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - _expected_overlay(image, labels, alpha).astype(int)).max() <= 1
    unpainted = ~np.isin(labels, list(PAINTED))
    np.testing.assert_array_equal(out[unpainted], image[unpainted])  # black classes and 255: untouched


@pytest.mark.parametrize("device", DEVICES, ids=str)
@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.5, 0.77, 1.0])
def test_overlay_torch_equals_numpy(device: torch.device, alpha: float) -> None:
    labels, image = _labels(), _image()
    palette = CLASSES.palette_lut()
    expected = overlay(image, colorize(labels, palette), labels, palette, alpha)
    palette_t = torch.from_numpy(palette).to(device)
    drawn_t = torch.from_numpy(drawn_lut(palette) > 0).to(device)
    labels_t = torch.from_numpy(labels).to(device)
    out = overlay_torch(torch.from_numpy(image).to(device), colorize_torch(labels_t, palette_t), labels_t,
                        drawn_t, alpha).cpu().numpy()
    assert out.shape == image.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - expected.astype(int)).max() <= 1
    unpainted = ~np.isin(labels, list(PAINTED))
    np.testing.assert_array_equal(out[unpainted], image[unpainted])


def test_overlay_alpha_extremes() -> None:
    labels, image = _labels(), _image()
    palette = CLASSES.palette_lut()
    color = colorize(labels, palette)
    np.testing.assert_array_equal(overlay(image, color, labels, palette, 0.0), image)
    full = overlay(image, color, labels, palette, 1.0)
    painted = np.isin(labels, list(PAINTED))
    np.testing.assert_array_equal(full[painted], color[painted])
    np.testing.assert_array_equal(full[~painted], image[~painted])


def test_overlay_does_not_modify_its_inputs() -> None:
    labels, image = _labels(), _image()
    palette = CLASSES.palette_lut()
    color = colorize(labels, palette)
    image_before, color_before = image.copy(), color.copy()
    overlay(image, color, labels, palette, 0.5)
    np.testing.assert_array_equal(image, image_before)
    np.testing.assert_array_equal(color, color_before)


def test_overlay_size_mismatch() -> None:
    labels = _labels()
    palette = CLASSES.palette_lut()
    with pytest.raises(ValueError):
        overlay(_image(10, 10), colorize(labels, palette), labels, palette, 0.5)


# Painter: only the painted pixels, palette worked out once -------------------------------

def _palette_variants() -> dict[str, np.ndarray]:
    binary = np.zeros((256, 3), np.uint8)
    binary[1] = (220, 20, 60)
    many = np.zeros((256, 3), np.uint8)
    many[:8] = np.random.default_rng(5).integers(1, 256, (8, 3))  # 8 painted: the lookup fallback
    lit_unlabeled = CLASSES.palette_lut().copy()
    lit_unlabeled[UNLABELED] = (255, 255, 255)  # shown in the color mask, never blended
    return {"two_painted": CLASSES.palette_lut(), "binary": binary, "many": many, "lit_unlabeled": lit_unlabeled}


def _expected_with(palette: np.ndarray, image: np.ndarray, labels: np.ndarray,
                   alpha: float) -> tuple[np.ndarray, np.ndarray]:
    color = palette[labels]
    blended = np.rint(image * (1.0 - alpha) + color.astype(np.float64) * alpha)
    painted = (drawn_lut(palette)[labels] > 0)[..., None]
    return color, np.where(painted, blended, image).astype(np.uint8)


@pytest.mark.parametrize("variant", ["two_painted", "binary", "many", "lit_unlabeled"])
@pytest.mark.parametrize("alpha", [0.0, 0.35, 1.0])
@pytest.mark.parametrize("shape", [(37, 53), (1, 1), (64, 7)])
def test_painter_equals_the_palette_formula(variant: str, alpha: float, shape: tuple[int, int]) -> None:
    palette = _palette_variants()[variant]
    painter = Painter(palette)
    assert painter.masked == (variant in ("two_painted", "binary"))
    for seed in range(3):  # buffers reused across calls, as in the node
        labels = np.random.default_rng(seed).choice(np.array([0, 1, 2, 3, 5, 7, UNLABELED], np.uint8), size=shape)
        image = _image(*shape, seed=seed + 10)
        color, over = painter.paint(labels, image, alpha)
        want_color, want_over = _expected_with(palette, image, labels, alpha)
        np.testing.assert_array_equal(color, want_color)
        assert over is not None
        assert np.abs(over.astype(int) - want_over.astype(int)).max() <= 1  # OpenCV rounds the blend


def test_painter_blends_only_the_box_of_painted_pixels() -> None:
    painter = Painter(_palette_variants()["binary"])
    labels = np.zeros((40, 60), np.uint8)
    labels[30:33, 45:50] = 1
    image = _image(40, 60)
    color, over = painter.paint(labels, image, 0.5)
    assert over is not None
    outside = np.ones((40, 60), bool)
    outside[30:33, 45:50] = False
    np.testing.assert_array_equal(over[outside], image[outside])
    np.testing.assert_array_equal(color[30:33, 45:50], np.broadcast_to((220, 20, 60), (3, 5, 3)))
    assert not color[outside].any()
    nothing, untouched = painter.paint(np.zeros((40, 60), np.uint8), image, 0.5)
    assert not nothing.any() and untouched is not None
    np.testing.assert_array_equal(untouched, image)


def test_painter_color_only_and_size_changes() -> None:
    painter = Painter(CLASSES.palette_lut())
    for shape in ((20, 30), (31, 17), (20, 30)):
        labels = _labels(*shape)
        color, over = painter.paint(labels, None)
        assert over is None
        np.testing.assert_array_equal(color, _expected_color(labels))
    with pytest.raises(ValueError, match="differ in size"):
        painter.paint(_labels(5, 5), _image(5, 6))
