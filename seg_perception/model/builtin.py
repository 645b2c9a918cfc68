"""The embedded models (MediaPipe selfie segmentation, TwinLiteNet drivable area). Their
networks run in torch_module.TorchModuleRuntime, imported (with torch) only when one is loaded,
or, for ONNX Runtime and OpenVINO, from an ONNX file exported once into a cache folder
(`builtin_onnx`): later loads read the file and never import torch."""
from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from .labels import ClassInfo, ClassMap
from .base import ModelLoadError, ModelSpec, check_fp16
from ..wire.errors import one_line

if TYPE_CHECKING:
    import torch

    from .runtimes.torch_module import TorchModuleRuntime

DEFAULT_MODEL = "selfie"
BUILTIN_MODELS: tuple[str, ...] = ("selfie", "mediapipe_selfie", "selfie_landscape", "drivable", "twinlitenet")
_ALIASES = {"mediapipe_selfie": "selfie", "twinlitenet": "drivable"}
# builtin name -> (load_selfie variant, ClassMap.model_name)
_SELFIE_VARIANTS = {
    "selfie": ("square", "mediapipe_selfie_segmentation"),
    "selfie_landscape": ("landscape", "mediapipe_selfie_segmentation_landscape"),
}
DRIVABLE_MODEL_NAME = "twinlitenet_bdd100k"
# For a ground robot: everything that is not road is something to keep off (so its points go
# into the obstacle cloud); lane markings are painted on drivable road.
_DRIVABLE_COLORS: dict[str, tuple[tuple[int, int, int], bool]] = {
    "background": ((0, 0, 0), True),
    "drivable_area": ((0, 200, 80), False),
    "lane_line": ((255, 200, 0), False),
}
_DRIVABLE_FREE = ("drivable_area", "lane_line")


def canonical_builtin(name: str) -> str | None:
    """The builtin a model name refers to (aliases resolved), or None for a file path."""
    key = name.strip().lower()
    if key not in BUILTIN_MODELS:
        return None
    return _ALIASES.get(key, key)


def builtin_spec(name: str) -> ModelSpec:
    canonical = canonical_builtin(name)
    if canonical is None:
        raise ModelLoadError(name, f"not a builtin model; builtins are {list(BUILTIN_MODELS)}")
    if canonical == "drivable":
        return _drivable_spec(name)
    variant, model_name = _SELFIE_VARIANTS[canonical]
    width, height = _selfie_input_sizes(name)[variant]
    classes = ClassMap((ClassInfo(0, "background", (0, 0, 0)),
                        ClassInfo(1, "person", (220, 20, 60), obstacle=True)), model_name)
    # MediaPipe's own graph stretches the frame to the network input; letterboxing was measured
    # to hurt the mask, so stretch it is. The network takes RGB in 0..1 and applies the sigmoid.
    return ModelSpec(name=canonical, input_width=width, input_height=height, classes=classes,
                     output="sigmoid", color_order="rgb", scale=1.0 / 255.0, mean=(0.0, 0.0, 0.0),
                     std=(1.0, 1.0, 1.0), resize="stretch", pad_value=0)


def _drivable_spec(name: str) -> ModelSpec:
    try:
        from ..models.facts import DRIVABLE_CLASSES, TWINLITENET_INPUT_SIZE
    except ImportError as exc:
        raise ModelLoadError(name, f"the builtin model code is missing from this install ({exc})") from exc
    # Free ground for ground projection: the drivable area and the lane lines painted on it (flat
    # paint at z = 0; were they not free, every lane line would read as the foot of an obstacle).
    classes = ClassMap(tuple(ClassInfo(i, label, *_DRIVABLE_COLORS[label], free=label in _DRIVABLE_FREE)
                             for i, label in enumerate(DRIVABLE_CLASSES)), DRIVABLE_MODEL_NAME)
    width, height = TWINLITENET_INPUT_SIZE
    # As trained and as the authors run it: the frame stretched to 640x360, RGB / 255, no
    # mean/std. DrivableScores combines the two heads into 3-class scores (see its docstring).
    return ModelSpec(name="drivable", input_width=width, input_height=height, classes=classes,
                     output="probabilities", color_order="rgb", scale=1.0 / 255.0, mean=(0.0, 0.0, 0.0),
                     std=(1.0, 1.0, 1.0), resize="stretch", pad_value=0)


def load_builtin(name: str, device: torch.device, fp16: bool = False, cpu_threads: int = 0) -> TorchModuleRuntime:
    from .runtimes.torch_module import TorchModuleRuntime

    spec = builtin_spec(name)
    check_fp16(fp16, device, name)
    try:
        module = _builtin_module(spec.name, device)
    except ImportError as exc:
        raise ModelLoadError(name, f"the builtin model code is missing from this install ({exc})") from exc
    except Exception as exc:  # noqa: BLE001 - any failure here means the same thing to the user
        # A missing or damaged weights file inside the package: an install problem, not user error.
        raise ModelLoadError(name, f"the embedded weights could not be loaded ({one_line(exc)}); "
                                   "reinstall seg_perception") from exc
    return TorchModuleRuntime(module, spec, device, fp16=fp16, source=name, cpu_threads=cpu_threads)


def builtin_module(name: str, device: torch.device) -> torch.nn.Module:
    """The torch network of a built-in (imports torch)."""
    canonical = canonical_builtin(name)
    if canonical is None:
        raise ModelLoadError(name, f"not a builtin model; builtins are {list(BUILTIN_MODELS)}")
    return _builtin_module(canonical, device)


def _builtin_module(canonical: str, device: torch.device) -> torch.nn.Module:
    import torch

    if canonical == "drivable":
        from ..models.twinlitenet import DrivableScores, load_twinlitenet
        return DrivableScores(load_twinlitenet(device=device, dtype=torch.float32))
    from ..models.selfie import load_selfie
    variant, _ = _SELFIE_VARIANTS[canonical]
    return load_selfie(variant, device=device, dtype=torch.float32)


BUILTIN_ONNX_OPSET = 17
# What a built-in's exported graph depends on: the network code and its weights (all of them:
# three small files, and a stale cache is worse than one re-export).
_NETWORK_FILES = {"selfie": ("selfie.py", "selfie_segmentation.pt", "selfie_segmentation_landscape.pt"),
                  "selfie_landscape": ("selfie.py", "selfie_segmentation.pt", "selfie_segmentation_landscape.pt"),
                  "drivable": ("twinlitenet.py", "twinlitenet_bdd100k.pt")}


def builtin_cache_dir() -> Path:
    """$SEG_PERCEPTION_CACHE, else $XDG_CACHE_HOME/seg_perception, else ~/.cache/seg_perception."""
    explicit = os.environ.get("SEG_PERCEPTION_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "seg_perception"


def builtin_onnx(name: str, cache_dir: Path | None = None) -> Path:
    """The built-in model `name` as an ONNX file (static 1x3xHxW input, the same output as its
    torch runtime), exported on first use into `cache_dir` (default builtin_cache_dir()/builtin)
    under a name keyed on the network's code and weights, so an update re-exports. Exporting
    imports torch; finding the file does not. Raises ModelLoadError."""
    canonical = canonical_builtin(name)
    if canonical is None:
        raise ModelLoadError(name, f"not a builtin model; builtins are {list(BUILTIN_MODELS)}")
    folder = (cache_dir or builtin_cache_dir() / "builtin").expanduser()
    digest = hashlib.sha256(f"opset{BUILTIN_ONNX_OPSET}".encode())
    package = Path(__file__).resolve().parent.parent / "models"
    try:
        for file_name in _NETWORK_FILES[canonical]:
            digest.update((package / file_name).read_bytes())
    except OSError as exc:
        raise ModelLoadError(name, f"the embedded weights could not be read ({one_line(exc)}); "
                                   "reinstall seg_perception") from exc
    path = folder / f"{canonical}-{digest.hexdigest()[:16]}.onnx"
    if path.is_file() and path.stat().st_size > 0:
        return path
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelLoadError(name, f"cannot create the cache folder {folder} for its ONNX export "
                                   f"({one_line(exc)}); set SEG_PERCEPTION_CACHE to a writable folder") from exc
    _export_builtin_onnx(name, canonical, path)
    return path


def _export_builtin_onnx(name: str, canonical: str, path: Path) -> None:
    import torch

    spec = builtin_spec(canonical)
    try:
        module = _builtin_module(canonical, torch.device("cpu")).eval()
    except Exception as exc:  # noqa: BLE001
        raise ModelLoadError(name, f"the embedded weights could not be loaded ({one_line(exc)}); "
                                   "reinstall seg_perception") from exc
    # Unique per process: two nodes starting together each write their own, the rename is atomic.
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer warnings about shapes fixed at this size
            # dynamo=False: the TorchScript-based exporter, which needs no onnxscript.
            torch.onnx.export(module, (torch.zeros(1, 3, spec.input_height, spec.input_width),), str(partial),
                              opset_version=BUILTIN_ONNX_OPSET, input_names=["input"], output_names=["scores"],
                              dynamo=False)
        partial.replace(path)
    except Exception as exc:  # noqa: BLE001 - the exporter and the file system fail in many ways
        partial.unlink(missing_ok=True)
        raise ModelLoadError(name, f"exporting it to ONNX at {path} failed: {one_line(exc)}") from exc


def _selfie_input_sizes(name: str) -> dict[str, tuple[int, int]]:
    try:
        from ..models.facts import SELFIE_INPUT_SIZES
    except ImportError as exc:
        raise ModelLoadError(name, f"the builtin model code is missing from this install ({exc})") from exc
    return SELFIE_INPUT_SIZES
