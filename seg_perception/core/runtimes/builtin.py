"""The embedded models (MediaPipe selfie segmentation, TwinLiteNet drivable area) and the
nn.Module runtime they share with TorchScript files."""
from __future__ import annotations

from typing import Any

import torch

from ..labels import ClassInfo, ClassMap
from .base import ModelLoadError, ModelSpec, flush_denormals

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
        from ...models.twinlitenet import DRIVABLE_CLASSES, TWINLITENET_INPUT_SIZE
    except ImportError as exc:
        raise ModelLoadError(name, f"the builtin model code is missing from this install ({exc})") from exc
    classes = ClassMap(tuple(ClassInfo(i, label, *_DRIVABLE_COLORS[label])
                             for i, label in enumerate(DRIVABLE_CLASSES)), DRIVABLE_MODEL_NAME)
    width, height = TWINLITENET_INPUT_SIZE
    # As trained and as the authors run it: the frame stretched to 640x360, RGB / 255, no
    # mean/std. DrivableScores combines the two heads into 3-class scores (see its docstring).
    return ModelSpec(name="drivable", input_width=width, input_height=height, classes=classes,
                     output="probabilities", color_order="rgb", scale=1.0 / 255.0, mean=(0.0, 0.0, 0.0),
                     std=(1.0, 1.0, 1.0), resize="stretch", pad_value=0)


def load_builtin(name: str, device: torch.device, fp16: bool = False) -> TorchModuleRuntime:
    spec = builtin_spec(name)
    check_fp16(fp16, device, name)
    try:
        module = _builtin_module(spec.name, device)
    except ImportError as exc:
        raise ModelLoadError(name, f"the builtin model code is missing from this install ({exc})") from exc
    except Exception as exc:  # noqa: BLE001 - any failure here means the same thing to the user
        # A missing or damaged weights file inside the package: an install problem, not user error.
        raise ModelLoadError(name, f"the embedded weights could not be loaded ({_one_line(exc)}); "
                                   "reinstall seg_perception") from exc
    return TorchModuleRuntime(module, spec, device, fp16=fp16, source=name)


def _builtin_module(canonical: str, device: torch.device) -> torch.nn.Module:
    if canonical == "drivable":
        from ...models.twinlitenet import DrivableScores, load_twinlitenet
        return DrivableScores(load_twinlitenet(device=device, dtype=torch.float32))
    from ...models.selfie import load_selfie
    variant, _ = _SELFIE_VARIANTS[canonical]
    return load_selfie(variant, device=device, dtype=torch.float32)


def check_fp16(fp16: bool, device: torch.device, source: str) -> None:
    if fp16 and device.type != "cuda":
        raise ModelLoadError(source, f"fp16 was requested on device '{device}', but half precision is "
                                     "CUDA-only here (CPU float16 kernels are slow or missing); "
                                     "set fp16 to false or use a CUDA device")


class TorchModuleRuntime:
    """Runs an nn.Module (eager or TorchScript) on one device, optionally in fp16 on CUDA."""

    def __init__(self, module: torch.nn.Module, spec: ModelSpec, device: torch.device,
                 fp16: bool = False, source: str = "") -> None:
        check_fp16(fp16, device, source or spec.name)
        self.spec = spec
        self.device = device
        self.dtype = torch.float16 if fp16 else torch.float32
        self.source = source or spec.name
        module = module.to(device)
        if fp16:
            module = module.half()
        self._module: torch.nn.Module | None = module.eval()

    @property
    def module(self) -> torch.nn.Module | None:
        """The module itself (None once closed), e.g. to trace it for a serving backend."""
        return self._module

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        if self._module is None:
            raise RuntimeError(f"model '{self.source}' was closed")
        # No-op when the caller already prepared the batch as asked (device, dtype).
        batch = batch.to(device=self.device, dtype=self.dtype)
        # Per thread, so on whichever thread runs inference (the node's worker, offline, bench).
        with flush_denormals(), torch.inference_mode():
            return primary_output(self._module(batch))

    def close(self) -> None:
        self._module = None
        if self.device.type == "cuda":
            # Hand the cached blocks back so another process (or the next model) can use them.
            torch.cuda.empty_cache()


def primary_output(output: Any) -> torch.Tensor:
    """The segmentation tensor of a forward's result: torchvision models return {'out', 'aux'},
    HuggingFace-style and multi-head models return tuples whose first element is the map."""
    while not isinstance(output, torch.Tensor):
        if isinstance(output, dict):
            if "out" in output:
                output = output["out"]
            elif len(output) == 1:
                output = next(iter(output.values()))
            else:
                raise TypeError(f"the model returned a dict with keys {sorted(output)} and no 'out' key")
        elif isinstance(output, (tuple, list)) and output:
            output = output[0]
        else:
            raise TypeError(f"the model returned {type(output).__name__}, not a tensor")
    return output


def _selfie_input_sizes(name: str) -> dict[str, tuple[int, int]]:
    try:
        from ...models.selfie import SELFIE_INPUT_SIZES
    except ImportError as exc:
        raise ModelLoadError(name, f"the builtin model code is missing from this install ({exc})") from exc
    return SELFIE_INPUT_SIZES


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
