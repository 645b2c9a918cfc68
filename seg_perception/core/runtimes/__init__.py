"""Model runtimes behind one interface: `load_model(...)` returns a Runtime whose `spec` says
how to feed it and read its output. The ONNX runtime is imported only when an .onnx is loaded."""
from .base import (DeviceError, ModelLoadError, ModelSpec, Runtime, denormals_flushed, flush_denormals,
                   resolve_device)
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
    "denormals_flushed",
    "find_description",
    "flush_denormals",
    "load_description",
    "load_model",
    "resolve_device",
    "spec_from_dict",
    "warm_up",
]
