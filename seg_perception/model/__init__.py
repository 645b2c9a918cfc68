"""The model: its description (input size, normalization, classes), its runtime and loading.

`load_model(...)` returns a Runtime (`base.Runtime`) whose `spec` says how to feed it and read
its output; `labels` holds the class map that travels with it. The runtimes themselves
(`runtimes/`: torch module, TorchScript, ONNX Runtime, Triton) are imported only when a model of
their kind is loaded, so an ONNX model on the CPU never imports torch.

May import: `wire`, `models` (the built-in networks), numpy, and each runtime's library lazily.
Never rclpy, nor `engine`, `live`, `offline`, `deploy`, `ros` or `apps`.
"""
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
