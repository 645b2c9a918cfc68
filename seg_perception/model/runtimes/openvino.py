"""ONNX files and OpenVINO IR (.xml + .bin) through OpenVINO on the CPU.

OpenVINO reads the same ONNX file ONNX Runtime does, and the int8 IR that export_model
--int8 writes. Like ONNX Runtime on the CPU it takes and returns numpy arrays (`array_io`) and
never imports torch. `openvino` is an optional dependency: it is imported when this runtime is
built, so the rest of the package loads without it.

Settings fixed here, each for a reason:
- precision f32: OpenVINO's CPU plugin defaults to bfloat16 on CPUs with AVX512-BF16 or AMX,
  which changes the masks; int8 is chosen by exporting an int8 model, never by a hint.
- latency hint, one stream, `cpu_threads` inference threads: one frame at a time, as the node
  runs, on no more threads than torch or ONNX Runtime would get.
- denormals flushed (as flush_denormals() does for torch, and the ONNX Runtime session option).
- no CPU pinning: the node's other threads (executor, DDS) share these cores.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...wire.errors import first_line
from ..base import CPU, DeviceLike, ModelLoadError, ModelSpec, RuntimeHealth, check_image_input, cpu_thread_count

def openvino_available() -> str | None:
    """None when openvino imports, else why not (for messages and test skips)."""
    try:
        import openvino  # noqa: F401
    except ImportError as exc:
        return f"openvino is not installed ({first_line(exc)}); pip install openvino (requirements-openvino.txt)"
    return None


def compile_config(threads: int) -> dict[str, Any]:
    """The CPU plugin's settings for one model (see the module docstring)."""
    return {"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": "f32", "CPU_DENORMALS_OPTIMIZATION": True,
            "ENABLE_CPU_PINNING": False}


class OpenVinoRuntime:
    """One model compiled for OpenVINO's CPU plugin, with one infer request reused per frame."""

    array_io = True

    def __init__(self, path: str | Path, spec: ModelSpec, cpu_threads: int = 0, device: DeviceLike = CPU) -> None:
        self.path = Path(path)
        self.source = str(self.path)
        self.spec = spec
        if device.type != "cpu":
            raise ModelLoadError(self.source, f"the openvino runtime runs on the CPU here, not '{device}'; "
                                              "use runtime onnxruntime or torch for a GPU")
        self.device: DeviceLike = CPU
        self.cpu_threads: int | None = cpu_thread_count(cpu_threads)
        why = openvino_available()
        if why is not None:
            raise ModelLoadError(self.source, why)
        import openvino as ov

        core = ov.Core()
        try:
            model = core.read_model(str(self.path))
        except Exception as exc:  # noqa: BLE001 - OpenVINO raises RuntimeError subclasses of its own
            raise ModelLoadError(self.source, f"OpenVINO cannot read it: {first_line(exc)} (a truncated or "
                                              "corrupt file, an IR without its .bin, or not a model)") from exc
        self._check(model)
        try:
            self._compiled = core.compile_model(model, "CPU", compile_config(self.cpu_threads))
        except Exception as exc:  # noqa: BLE001
            raise ModelLoadError(self.source, f"OpenVINO cannot compile it for the CPU: {first_line(exc)}") from exc
        self._request: Any = self._compiled.create_infer_request()
        element = model.inputs[0].get_element_type()
        self.dtype: Any = np.dtype(np.float16 if element.get_type_name() == "f16" else np.float32)

    def _check(self, model: Any) -> None:
        if len(model.inputs) != 1:
            raise ModelLoadError(self.source, f"it has {len(model.inputs)} inputs "
                                              f"{[i.get_any_name() for i in model.inputs]}; a segmentation "
                                              "model here takes one image tensor")
        model_input = model.inputs[0]
        element = model_input.get_element_type().get_type_name()
        if element not in ("f32", "f16"):
            raise ModelLoadError(self.source, f"its input '{model_input.get_any_name()}' has type {element}; "
                                              "expected float or float16")
        shape = [d.get_length() if d.is_static else None for d in model_input.get_partial_shape()]
        check_image_input(self.source, model_input.get_any_name(), shape, self.spec)

    def __call__(self, batch: Any) -> Any:
        """numpy (N, 3, H, W) in, the first output as a numpy array out (the caller's own copy)."""
        if self._request is None:
            raise RuntimeError(f"model '{self.path}' was closed")
        host = np.ascontiguousarray(batch, dtype=self.dtype)
        self._request.infer({0: host})
        # The request's output tensor is overwritten by the next infer: hand out a copy.
        return np.array(self._request.get_output_tensor(0).data, copy=True)

    def health(self) -> RuntimeHealth | None:
        return None

    def close(self) -> None:
        self._request = None
        self._compiled = None
