"""Model runtimes behind one interface: `load_model(...)` returns a Runtime whose `spec` says
how to feed it and read its output. The ONNX runtime is imported only when an .onnx is loaded."""
from .base import DeviceError, ModelLoadError, ModelSpec, Runtime, resolve_device
from .builtin import BUILTIN_MODELS, DEFAULT_MODEL
from .description import find_description, load_description, spec_from_dict
from .loader import load_model, warm_up

__all__ = [
    "BUILTIN_MODELS",
    "DEFAULT_MODEL",
    "DeviceError",
    "ModelLoadError",
    "ModelSpec",
    "Runtime",
    "find_description",
    "load_description",
    "load_model",
    "resolve_device",
    "spec_from_dict",
    "warm_up",
]
