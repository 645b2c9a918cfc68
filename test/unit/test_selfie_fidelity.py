"""The PyTorch port of MediaPipe Selfie Segmentation reproduces the TFLite reference.

The reference .tflite files are read from $SEG_PERCEPTION_MEDIAPIPE_DIR (default
<repo>/build/mediapipe_selfie); when absent they are fetched from PyPI with
tools/fetch_mediapipe_selfie.py, the same pinned wheel the committed weights came from.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
import torch

from seg_perception.models.selfie import SELFIE_INPUT_SIZES, SelfieSegmentation, load_selfie

REPO_ROOT = Path(__file__).resolve().parents[2]
MAX_ABS_DIFF = 1e-3
MIN_AGREEMENT = 0.995


def _gray_as_rgb(image: np.ndarray) -> np.ndarray:
    return np.repeat(image[..., None], 3, axis=2)


# Real photos bundled with scikit-image (no download): people, and scenes without anyone.
PHOTOS: dict[str, Callable[[], np.ndarray]] = {
    "astronaut": skimage.data.astronaut,
    "camera": lambda: _gray_as_rgb(skimage.data.camera()),
    "coffee": skimage.data.coffee,
    "chelsea": skimage.data.chelsea,
    "rocket": skimage.data.rocket,
    "immunohistochemistry": skimage.data.immunohistochemistry,
    "hubble_deep_field": skimage.data.hubble_deep_field,
}


def _load_fetch_module():
    path = REPO_ROOT / "tools" / "fetch_mediapipe_selfie.py"
    spec = importlib.util.spec_from_file_location("_fetch_mediapipe_selfie", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def reference_paths() -> dict[str, Path]:
    fetcher = _load_fetch_module()
    directory = Path(os.environ.get("SEG_PERCEPTION_MEDIAPIPE_DIR", REPO_ROOT / "build" / "mediapipe_selfie"))
    paths = {variant: directory / name for variant, (name, _) in fetcher.MODEL_FILES.items()}
    if not all(p.is_file() for p in paths.values()):
        fetched = fetcher.fetch(directory)
        paths = {variant: fetched[variant] for variant in fetcher.MODEL_FILES}
    return paths


def _model_input(photo: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Stretch to the network's (width, height) and scale to 0..1, as MediaPipe feeds it."""
    resized = cv2.resize(photo, size, interpolation=cv2.INTER_LINEAR)
    return resized.astype(np.float32) / 255.0


def _run_reference(path: Path, images: np.ndarray) -> np.ndarray:
    Interpreter = pytest.importorskip(  # noqa: N806 - a class
        "ai_edge_litert.interpreter", reason="the TFLite reference runtime (ai-edge-litert, a test-only pip "
        "package without a rosdep key) is not installed").Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    results = []
    for image in images:
        interpreter.set_tensor(inp["index"], image[None])
        interpreter.invoke()
        results.append(interpreter.get_tensor(out["index"])[0, :, :, 0].copy())
    return np.stack(results)


def _run_port(model: SelfieSegmentation, images: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        batch = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
        return model(batch)[:, 0].float().numpy()


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    return {name: load() for name, load in PHOTOS.items()}


@pytest.mark.parametrize("variant", sorted(SELFIE_INPUT_SIZES))
def test_port_matches_tflite_on_photos(
    variant: str, reference_paths: dict[str, Path], photos: dict[str, np.ndarray]
) -> None:
    size = SELFIE_INPUT_SIZES[variant]
    names = list(photos)
    images = np.stack([_model_input(photos[name], size) for name in names])
    reference = _run_reference(reference_paths[variant], images)
    ported = _run_port(load_selfie(variant), images)
    assert ported.shape == reference.shape == (len(names), size[1], size[0])

    failures = []
    for name, ref, out in zip(names, reference, ported):
        max_diff = float(np.abs(out - ref).max())
        agreement = float(np.mean((out > 0.5) == (ref > 0.5)))
        print(f"{variant:9s} {name:22s} max|diff|={max_diff:.2e} agreement={agreement:.6f}")
        if max_diff > MAX_ABS_DIFF or agreement < MIN_AGREEMENT:
            failures.append(f"{name}: max|diff| {max_diff:.2e}, agreement {agreement:.4%}")
    assert not failures, "; ".join(failures)

    # A port that outputs nothing would agree with TFLite on empty scenes; the astronaut
    # portrait must actually be found.
    person = float(np.mean(ported[names.index("astronaut")] > 0.5))
    assert person > 0.10, f"only {person:.1%} of the astronaut photo is segmented as person"


# torch 2.13 deprecates TorchScript in favour of torch.export, but deployed runtimes still load
# scripted files, so the module has to keep scripting.
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_scripted_model_matches_eager() -> None:
    model = load_selfie("landscape")
    scripted = torch.jit.script(model)
    w, h = SELFIE_INPUT_SIZES["landscape"]
    x = torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        torch.testing.assert_close(scripted(x), model(x), rtol=0, atol=1e-6)


_DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")),
]


@pytest.mark.parametrize("device", _DEVICES)
def test_fp16_close_to_fp32(device: str) -> None:
    w, h = SELFIE_INPUT_SIZES["square"]
    photo = _model_input(skimage.data.astronaut(), (w, h))[None]
    expected = _run_port(load_selfie("square"), photo)
    half = load_selfie("square", device=device, dtype=torch.float16)
    with torch.inference_mode():
        x = torch.from_numpy(photo).permute(0, 3, 1, 2).to(device, torch.float16)
        got = half(x)[:, 0].float().cpu().numpy()
    # fp16 keeps ~3 significant digits and the network amplifies rounding (fp32 vs fp64 alone
    # moves single pixels by ~1e-4), so only the mask, not the probabilities, must hold.
    assert np.abs(got - expected).max() < 0.1
    assert np.mean((got > 0.5) == (expected > 0.5)) > 0.995
