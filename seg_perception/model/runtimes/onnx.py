"""ONNX models through ONNX Runtime: TensorRT, CUDA or CPU execution providers.

On CUDA the input tensor is handed to ONNX Runtime by pointer (io_binding) and the output is
written straight into a torch tensor on the same device, so a frame never leaves the GPU.
On the CPU the runtime takes and returns numpy arrays (`array_io`) and never imports torch:
an ONNX deployment then costs what ONNX Runtime costs, in memory and in threads.
"""
from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from typing import TYPE_CHECKING

import numpy as np
import onnxruntime as ort

from ...wire.errors import first_line
from ..base import (CPU, DeviceLike, ModelLoadError, ModelSpec, RuntimeHealth, check_fp16, check_image_input,
                    cpu_thread_count, torch_device)

if TYPE_CHECKING:
    import torch

_LOG = logging.getLogger(__name__)

CUDA_PROVIDERS: tuple[str, ...] = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
_DEVICE_PROVIDERS: tuple[str, ...] = CUDA_PROVIDERS + ("CPUExecutionProvider",)

# ONNX tensor type -> numpy type (torch's is torch_dtype(numpy)). Inputs may be float or
# float16; outputs any of these.
_TYPES: dict[str, type[np.generic]] = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int16)": np.int16,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
}


def torch_dtype(numpy_type: type[np.generic]) -> torch.dtype:
    import torch

    return torch.from_numpy(np.zeros(0, numpy_type)).dtype


def onnx_cuda_available() -> bool:
    """Whether this onnxruntime build has a GPU provider (torch is needed only then)."""
    return any(name in ort.get_available_providers() for name in CUDA_PROVIDERS)
_INPUT_TYPES = ("tensor(float)", "tensor(float16)")


def execution_providers(device: DeviceLike, available: Sequence[str], fp16: bool = False,
                        trt_cache_dir: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    """Providers to ask ONNX Runtime for, best first, limited to those this build has.

    TensorRT first (fastest, can run fp16 from an fp32 graph), then CUDA, then CPU for the
    operators neither GPU provider supports."""
    if device.type != "cuda":
        return [("CPUExecutionProvider", {})]
    index = device.index or 0
    options: dict[str, dict[str, Any]] = {
        "TensorrtExecutionProvider": {"device_id": index, "trt_fp16_enable": fp16},
        "CUDAExecutionProvider": {"device_id": index},
        "CPUExecutionProvider": {},
    }
    if trt_cache_dir is not None:
        # Building a TensorRT engine takes minutes; the cache makes every later start fast.
        options["TensorrtExecutionProvider"].update(trt_engine_cache_enable=True,
                                                    trt_engine_cache_path=trt_cache_dir)
    return [(name, options[name]) for name in _DEVICE_PROVIDERS if name in available]


def default_trt_cache_dir(model_path: Path, fp16: bool) -> str | None:
    """A TensorRT engine cache directory for exactly this model file and precision.

    ONNX Runtime does not notice when a model file is replaced by a re-export with the same
    name and graph shape, and would reuse the stale engine; keying the directory on the file's
    content makes a new export build a new engine."""
    digest = hashlib.sha256()
    try:
        with model_path.open("rb") as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
    except OSError:
        return None
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    path = (base / "seg_perception" / "tensorrt"
            / f"{model_path.stem}-{digest.hexdigest()[:16]}-{'fp16' if fp16 else 'fp32'}")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # read-only home: TensorRT still works, it just rebuilds engines at start
    return str(path)


class OnnxRuntime:
    """One ONNX model in an InferenceSession. `provider` is the provider actually in use.

    `cpu_threads` (0 = one per core) is ONNX Runtime's intra-op thread count; inter-op
    parallelism is off, so the session never runs more threads than that."""

    def __init__(self, path: str | Path, spec: ModelSpec, device: DeviceLike = CPU, fp16: bool = False,
                 cpu_threads: int = 0, array_io: bool | None = None) -> None:
        self.path = Path(path)
        self.source = str(self.path)
        self.spec = spec
        self.device = device
        # numpy in, numpy out on the CPU (default there): no torch anywhere near the model.
        self.array_io = device.type != "cuda" if array_io is None else array_io
        self.cpu_threads: int | None = cpu_thread_count(cpu_threads)
        source = str(self.path)
        check_fp16(fp16, device, source)

        available = ort.get_available_providers()
        wants_trt = device.type == "cuda" and "TensorrtExecutionProvider" in available
        trt_cache = default_trt_cache_dir(self.path, fp16) if wants_trt else None
        providers = execution_providers(device, available, fp16, trt_cache)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: ORT's warnings about fallbacks are per node
        options.intra_op_num_threads = self.cpu_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # ORT's own CPU threads: denormals as zero, as flush_denormals() does for torch's.
        options.add_session_config_entry("session.set_denormal_as_zero", "1")
        try:
            session = ort.InferenceSession(str(self.path), sess_options=options,
                                           providers=[name for name, _ in providers],
                                           provider_options=[opts for _, opts in providers])
        except Exception as exc:  # noqa: BLE001 - ORT raises its own Fail/InvalidProtobuf/... types
            raise ModelLoadError(source, f"ONNX Runtime cannot open it: {first_line(exc)} "
                                         "(a truncated or corrupt file, or not an ONNX model)") from exc
        self._session: ort.InferenceSession | None = session
        self.provider: str = session.get_providers()[0]

        model_input = self._check_input(session, source)
        self._input_name: str = model_input.name
        self._input_np = _TYPES[model_input.type]
        self.dtype: Any = np.dtype(self._input_np) if self.array_io else torch_dtype(self._input_np)
        output = session.get_outputs()[0]
        if output.type not in _TYPES:
            raise ModelLoadError(source, f"its first output '{output.name}' has type {output.type}; "
                                         f"supported: {sorted(_TYPES)}")
        self._output_name: str = output.name
        self._output_np = _TYPES[output.type]
        # Output shape per input shape, learned on the first run of each (outputs may be dynamic).
        self._output_shapes: dict[tuple[int, ...], tuple[int, ...]] = {}

        self._binding_device: str | None = None
        if device.type == "cuda":
            if self.provider in CUDA_PROVIDERS:
                self._binding_device = "cuda"
                if fp16 and self.provider != "TensorrtExecutionProvider" and self._input_np != np.float16:
                    _LOG.warning("%s: fp16 needs TensorRT or an fp16 ONNX graph; running fp32 on %s",
                                 source, self.provider)
            else:
                _LOG.warning("%s: this onnxruntime build has no CUDA provider (available: %s); "
                             "running on the CPU and copying each frame from and to %s",
                             source, available, device)

    def _check_input(self, session: ort.InferenceSession, source: str) -> Any:
        inputs = session.get_inputs()
        if len(inputs) != 1:
            raise ModelLoadError(source, f"it has {len(inputs)} inputs {[i.name for i in inputs]}; "
                                         "a segmentation model here takes one image tensor")
        model_input = inputs[0]
        if model_input.type not in _INPUT_TYPES:
            raise ModelLoadError(source, f"its input '{model_input.name}' has type {model_input.type}; "
                                         "expected float or float16")
        check_image_input(source, model_input.name, model_input.shape, self.spec)
        return model_input

    def __call__(self, batch: Any) -> Any:
        """array_io: numpy in, numpy out. Otherwise torch tensors on `device`."""
        if self._session is None:
            raise RuntimeError(f"model '{self.path}' was closed")
        if self.array_io:
            host = np.ascontiguousarray(batch, dtype=self._input_np)
            return self._session.run([self._output_name], {self._input_name: host})[0]
        if self._binding_device is not None:
            return self._run_bound(batch)
        import torch

        host = batch.detach().to(device="cpu", dtype=self.dtype).contiguous().numpy()
        result = self._session.run([self._output_name], {self._input_name: host})[0]
        return torch.from_numpy(np.ascontiguousarray(result)).to(torch_device(self.device))

    def _run_bound(self, batch: torch.Tensor) -> torch.Tensor:
        """Run with the input and output bound by pointer on `_binding_device` (no host copy)."""
        import torch

        assert self._session is not None
        device_type = self._binding_device or "cpu"
        device_id = (self.device.index or 0) if device_type == "cuda" else 0
        # `batch` must stay referenced until run returns: ORT reads its memory by pointer.
        device = torch_device(self.device)
        batch = batch.detach().to(device=device, dtype=self.dtype).contiguous()
        if device_type == "cuda":
            # ORT runs on its own CUDA stream; the producer of `batch` ran on torch's stream.
            torch.cuda.current_stream(device).synchronize()
        input_shape = tuple(batch.shape)
        binding = self._session.io_binding()
        binding.bind_input(self._input_name, device_type, device_id, self._input_np, list(input_shape),
                           batch.data_ptr())
        output_shape = self._output_shapes.get(input_shape)
        if output_shape is None:
            # First frame of this shape: let ORT allocate, then remember the shape so later
            # frames run straight into a torch-owned buffer.
            binding.bind_output(self._output_name, device_type, device_id)
            self._session.run_with_iobinding(binding)
            value = binding.get_outputs()[0]
            self._output_shapes[input_shape] = tuple(value.shape())
            if device_type == "cpu":
                return torch.from_numpy(np.array(value.numpy()))
            # Once per input shape only; every later frame takes the zero-copy path below.
            return torch.from_numpy(binding.copy_outputs_to_cpu()[0]).to(device)
        output = torch.empty(output_shape, dtype=torch_dtype(self._output_np), device=device)
        binding.bind_output(self._output_name, device_type, device_id, self._output_np, list(output_shape),
                            output.data_ptr())
        self._session.run_with_iobinding(binding)
        # Run() synchronizes the provider's stream before returning, so `output` is complete.
        return output

    @property
    def label(self) -> str:
        return f"ONNX Runtime ({self.provider})"

    def health(self) -> RuntimeHealth | None:
        return None

    def close(self) -> None:
        self._session = None
        self._output_shapes.clear()
        if self.device.type == "cuda":
            import torch

            torch.cuda.empty_cache()

