"""A model repository for NVIDIA's production Triton Inference Server (the NGC container).

    DIR/NAME/config.pbtxt
    DIR/NAME/1/model.onnx          ONNX file   -> ONNX Runtime backend (TensorRT as its accelerator)
    DIR/NAME/1/model.pt            builtin or TorchScript -> PyTorch (libtorch) backend
    DIR/NAME/seg_perception.yaml   the description the node needs (model files only)

The configuration is derived from the model itself: one probe forward gives the output's
shape and type, and a batch-of-two probe tells whether the batch axis is dynamic (then dynamic
batching is on) or fixed (max_batch_size 0, the batch dimension spelled out).
"""
from __future__ import annotations

import logging
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..model.base import ModelLoadError, Runtime
from ..model.builtin import canonical_builtin
from ..model.runtimes.torch_module import TorchModuleRuntime, primary_output
from ..model.loader import ONNX_SUFFIXES, load_model, zeros_batch

_LOG = logging.getLogger(__name__)

BACKENDS: tuple[str, ...] = ("auto", "onnxruntime", "tensorrt", "pytorch")
_TYPE_NAMES: dict[type[np.generic], str] = {
    np.float32: "TYPE_FP32", np.float16: "TYPE_FP16", np.float64: "TYPE_FP64", np.int64: "TYPE_INT64",
    np.int32: "TYPE_INT32", np.int16: "TYPE_INT16", np.int8: "TYPE_INT8", np.uint8: "TYPE_UINT8",
    np.bool_: "TYPE_BOOL",
}


@dataclass(frozen=True)
class TensorConfig:
    name: str
    data_type: str
    dims: tuple[int, ...]


@dataclass(frozen=True)
class RepositoryConfig:
    name: str
    platform: str
    """onnxruntime_onnx or pytorch_libtorch."""
    input: TensorConfig
    output: TensorConfig
    max_batch: int
    """0: no batch axis handled by Triton (the dims include the fixed batch)."""
    instances: int = 1
    kind: str = "KIND_GPU"
    tensorrt: bool = False
    fp16: bool = False
    max_queue_delay_us: int = 2000

    def text(self) -> str:
        """config.pbtxt in protobuf text format."""
        lines = [f'name: "{self.name}"', f'platform: "{self.platform}"', f"max_batch_size: {self.max_batch}"]
        for section, tensor in (("input", self.input), ("output", self.output)):
            dims = ", ".join(str(d) for d in tensor.dims)
            lines += [f"{section} [", "  {", f'    name: "{tensor.name}"', f"    data_type: {tensor.data_type}",
                      f"    dims: [ {dims} ]", "  }", "]"]
        if self.max_batch > 0:
            lines += ["dynamic_batching {", f"  max_queue_delay_microseconds: {self.max_queue_delay_us}", "}"]
        lines += ["instance_group [", "  {", f"    count: {self.instances}", f"    kind: {self.kind}", "  }", "]"]
        if self.tensorrt:
            precision = "FP16" if self.fp16 else "FP32"
            lines += ["optimization {", "  execution_accelerators {", "    gpu_execution_accelerator: [", "      {",
                      '        name: "tensorrt"',
                      f'        parameters {{ key: "precision_mode" value: "{precision}" }}',
                      '        parameters { key: "max_workspace_size_bytes" value: "1073741824" }',
                      '        parameters { key: "trt_engine_cache_enable" value: "1" }',
                      "      }", "    ]", "  }", "}"]
        return "\n".join(lines) + "\n"


def default_name(model: str) -> str:
    """The served name of a model: the builtin's canonical name or the file's stem."""
    builtin = canonical_builtin(model)
    if builtin is not None:
        return builtin
    return Path(model).name.split(".")[0] or "model"


def write_repository(model: str, directory: str | Path, name: str | None = None, description: str | None = None,
                     backend: str = "auto", max_batch: int = 8, instances: int = 1, gpu: bool = True,
                     fp16: bool = False) -> Path:
    """Write DIR/NAME/{config.pbtxt, 1/model.*} (+ the description) and return DIR/NAME."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got '{backend}'")
    if max_batch < 1 or instances < 1:
        raise ValueError("max_batch and instances must be at least 1")
    name = name or default_name(model)
    is_onnx = Path(model).suffix.lower() in ONNX_SUFFIXES
    if backend == "auto":
        backend = "onnxruntime" if is_onnx else "pytorch"
    if backend in ("onnxruntime", "tensorrt") and not is_onnx:
        raise ModelLoadError(model, f"the {backend} backend serves ONNX files; export this model to ONNX "
                                    "first (export_model), or use --backend pytorch")
    if backend == "pytorch" and is_onnx:
        raise ModelLoadError(model, "an ONNX file is served by the onnxruntime or tensorrt backend")
    if fp16 and backend != "tensorrt":
        raise ValueError("fp16 here is TensorRT's precision mode: use --backend tensorrt")

    # A libtorch model is traced and checked where it will run: a trace made on the CPU can carry
    # CPU tensors that fail on a GPU instance.
    device = serving_device(gpu) if backend == "pytorch" else torch.device("cpu")
    runtime = load_model(model, str(device), description=description)
    try:
        target = Path(directory).expanduser() / name
        version = target / "1"
        version.mkdir(parents=True, exist_ok=True)
        probe = _probe(runtime)
        if backend == "pytorch":
            input_name, output_name = "INPUT__0", "OUTPUT__0"
            batched = save_torchscript(runtime, version / "model.pt")
            platform = "pytorch_libtorch"
        else:
            batched = _accepts_batch(runtime, probe)  # the ONNX runtime runs the served file itself
            input_name, output_name = _onnx_io_names(Path(model))
            shutil.copyfile(model, version / "model.onnx")
            platform = "onnxruntime_onnx"
        spec = runtime.spec
        chw: tuple[int, ...] = (3, spec.input_height, spec.input_width)
        out_dims = tuple(int(d) for d in probe.shape[1:])
        if batched:
            in_dims, max_b = chw, max_batch
        else:
            in_dims, out_dims, max_b = (1, *chw), (1, *out_dims), 0
        config = RepositoryConfig(
            name=name, platform=platform,
            input=TensorConfig(input_name, _type_name(runtime.dtype), in_dims),
            output=TensorConfig(output_name, _type_name(probe.dtype), out_dims),
            max_batch=max_b, instances=instances, kind="KIND_GPU" if gpu else "KIND_CPU",
            tensorrt=backend == "tensorrt", fp16=fp16)
        (target / "config.pbtxt").write_text(config.text())
        if canonical_builtin(model) is None:
            from ..model.description import find_description
            found = find_description(Path(model), description)
            if found is not None:
                shutil.copyfile(found, target / "seg_perception.yaml")
        return target
    finally:
        runtime.close()


def _probe(runtime: Runtime) -> Any:
    with torch.inference_mode():
        return runtime(zeros_batch(runtime))


def _accepts_batch(runtime: Runtime, probe: Any) -> bool:
    """True when a batch of two runs and gives two outputs of the batch-of-one's shape."""
    one = zeros_batch(runtime)
    two = np.concatenate([one, one]) if isinstance(one, np.ndarray) else torch.cat([one, one])
    try:
        with torch.inference_mode():
            out = runtime(two)
    except Exception:  # noqa: BLE001 - a fixed-batch model fails in its own way per runtime
        return False
    return tuple(out.shape) == (2, *probe.shape[1:])


def serving_device(gpu: bool) -> torch.device:
    """The device a libtorch repository's instances run on, where this machine has it."""
    if gpu and torch.cuda.is_available():
        return torch.device("cuda")
    if gpu:
        _LOG.warning("the repository is for GPU instances but this machine has no CUDA: the traced model "
                     "is made and verified on the CPU only")
    return torch.device("cpu")


def save_torchscript(runtime: Runtime, path: Path) -> bool:
    """Trace the module, with its output reduced to the one segmentation tensor (libtorch serves
    tensors, not the dicts/tuples many models return), on the runtime's device, save it, and
    verify the saved file as the server will load it. Returns whether that file takes batches.
    The tracer's warnings (a Python value frozen into the graph...) are left visible."""
    if not isinstance(runtime, TorchModuleRuntime) or runtime.module is None:
        raise ModelLoadError(str(path), "only torch models can be written for the PyTorch backend")
    inner = runtime.module

    class _Primary(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return primary_output(self.inner(x))

    spec = runtime.spec
    example = torch.zeros(1, 3, spec.input_height, spec.input_width, device=runtime.device, dtype=runtime.dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit's own deprecation notice only
        traced = torch.jit.trace(_Primary().eval(), example, check_trace=False)
    traced.save(str(path))
    return traced_batches(runtime, path)


def traced_batches(runtime: Runtime, path: Path) -> bool:
    """Run the saved TorchScript file, loaded back on the runtime's device, on one frame and on a
    batch of two different frames, against the module. One frame must match (else ModelLoadError);
    the batch of two either matches (True) or fails or differs (False: a trace that froze the
    batch size, to be served with batch 1)."""
    spec = runtime.spec
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        served = torch.jit.load(str(path), map_location=runtime.device)
    frames = torch.rand(2, 3, spec.input_height, spec.input_width, generator=torch.Generator().manual_seed(21))
    frames = frames.to(device=torch.device(str(runtime.device)), dtype=runtime.dtype)
    rtol, atol = 1e-3, (1e-3 if runtime.dtype == torch.float16 else 1e-4)
    with torch.inference_mode():
        expected = torch.cat([runtime(frames[i:i + 1]) for i in range(2)])
        one = served(frames[:1])
        if tuple(one.shape) != tuple(expected[:1].shape) or not torch.allclose(one, expected[:1], rtol=rtol, atol=atol):
            raise ModelLoadError(str(path), "the traced model's output differs from the module's on one frame: "
                                            "the model does not trace (data-dependent control flow?)")
        try:
            two = served(frames)
        except Exception as exc:  # noqa: BLE001 - whatever a frozen batch size raises
            _LOG.warning("the traced model fails on a batch of two (%s): served with batch 1", (str(exc).splitlines() or [type(exc).__name__])[0])
            return False
    if tuple(two.shape) != tuple(expected.shape) or not torch.allclose(two, expected, rtol=rtol, atol=atol):
        _LOG.warning("the traced model gives other outputs on a batch of two than frame by frame: "
                     "served with batch 1")
        return False
    return True


def _onnx_io_names(path: Path) -> tuple[str, str]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.get_inputs()[0].name, session.get_outputs()[0].name


def _type_name(dtype: Any) -> str:
    """Triton's name for a runtime's input dtype: torch's, or numpy's for an array_io runtime."""
    numpy_type = (np.dtype(dtype).type if not isinstance(dtype, torch.dtype)
                  else torch.empty(0, dtype=dtype).numpy().dtype.type)
    if numpy_type not in _TYPE_NAMES:
        raise ModelLoadError(str(dtype), f"no Triton type for {dtype}")
    return _TYPE_NAMES[numpy_type]
