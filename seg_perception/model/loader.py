"""One entry point from a `model` parameter to a ready Runtime: builtin name or model file,
its description, the device, and a warm-up pass that checks the output matches the description.

The check runs once at load: a model whose output disagrees with its description would
otherwise produce plausible-looking but wrong masks, or fail on the first frame at run time.
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..wire.errors import first_line
from .base import (CPU, RUNTIMES, DeviceLike, ModelLoadError, ModelSpec, Runtime, RuntimeUnavailable, check_fp16,
                   cpu_thread_count, resolve_device, torch_device)
from .builtin import BUILTIN_MODELS, builtin_onnx, builtin_spec, canonical_builtin, load_builtin
from .description import find_description, load_description

if TYPE_CHECKING:
    import torch

    from .runtimes.triton import TritonOptions

_LOG = logging.getLogger(__name__)

TORCHSCRIPT_SUFFIXES: tuple[str, ...] = (".pt", ".ts", ".torchscript")
ONNX_SUFFIXES: tuple[str, ...] = (".onnx",)
OPENVINO_SUFFIXES: tuple[str, ...] = (".xml",)
# Probabilities computed in fp16 or by a quantized graph are only close to [0, 1] and to sum 1.
_PROBABILITY_TOLERANCE = 1e-2


def load_model(model: str, device: str | DeviceLike = "auto", fp16: bool = False,
               description: str | None = None, validate: bool = True,
               triton: TritonOptions | None = None, cpu_threads: int = 0, runtime: str = "auto") -> Runtime:
    """`model`: a builtin name (BUILTIN_MODELS), a .pt/.ts/.torchscript/.onnx/.xml file with a
    description beside it (or at `description`), or triton://HOST:PORT/NAME (a model on a Triton
    server; `triton` says how to reach it). Raises ModelLoadError or DeviceError.

    `cpu_threads` (0 = one per core) is the model's intra-op thread count on the CPU, given to
    torch (before each forward, on the thread that runs it), ONNX Runtime (its session) or OpenVINO.
    An ONNX model on the CPU imports no torch at all, nor does a built-in under onnxruntime or
    openvino once its ONNX export is in the cache.

    `runtime` (RUNTIMES) chooses what runs the model; auto keeps the choice by file type."""
    threads = cpu_thread_count(cpu_threads)
    engine = runtime.strip().lower() or "auto"
    if engine not in RUNTIMES:
        raise ModelLoadError(model, f"runtime '{runtime}' is not one of {', '.join(RUNTIMES)}")
    name = model.strip()
    if not name:
        raise ModelLoadError(model, f"no model given; use a builtin ({', '.join(BUILTIN_MODELS)}) or a "
                                    "model file path")
    if description is not None and not description.strip():
        description = None

    loaded: Runtime
    from .runtimes.triton import is_triton_model
    if is_triton_model(name):
        if engine != "auto":
            raise ModelLoadError(name, f"a triton:// model runs on the server; runtime '{engine}' "
                                       "applies to local models only (leave it auto)")
        return _load_triton(name, _torch_target(device), fp16, description, validate, triton)
    if canonical_builtin(name) is not None:
        if description is not None:
            raise ModelLoadError(name, "builtin models carry their own description; `description` "
                                       "is only for model files")
        source = name
        if engine in ("auto", "torch"):
            loaded = load_builtin(name, _torch_target(device), fp16, cpu_threads=threads)
        else:
            path = builtin_onnx(name)
            loaded = _load_exported(path, builtin_spec(name), engine, device, fp16, threads, name)
    else:
        path = _model_file(name)
        source = str(path)
        description_path = find_description(path, description)
        if description_path is None:
            raise ModelLoadError(source, f"no model description found: write {path.name}.yaml or "
                                         f"{path.stem}.yaml beside it, or give its path (node parameter model_description; "
                                         "--description of segment_offline and serve_triton; format: docs/models.md)")
        spec = load_description(description_path)
        suffix = path.suffix.lower()
        if suffix in ONNX_SUFFIXES + OPENVINO_SUFFIXES:
            loaded = _load_exported(path, spec, engine, device, fp16, threads, source)
        else:
            if engine not in ("auto", "torch"):
                raise ModelLoadError(source, f"a TorchScript file runs on torch, not '{engine}'; export the "
                                             "network to ONNX (export_model) to run it there")
            from .runtimes.torchscript import TorchScriptRuntime
            target = _torch_target(device)
            check_fp16(fp16, target, source)
            loaded = TorchScriptRuntime(path, spec, target, fp16=fp16, cpu_threads=threads)
    if validate:
        try:
            validate_runtime(loaded, source)
        except BaseException:
            loaded.close()
            raise
    return loaded


def _load_exported(path: Path, spec: ModelSpec, engine: str, device: str | DeviceLike, fp16: bool,
                   threads: int, source: str) -> Runtime:
    """An ONNX file or OpenVINO IR on ONNX Runtime or OpenVINO (`engine` auto picks by suffix)."""
    ir = path.suffix.lower() in OPENVINO_SUFFIXES
    if engine == "torch":
        raise ModelLoadError(source, f"runtime 'torch' runs built-ins and TorchScript files, not {path.suffix} "
                                     "files; use runtime auto, onnxruntime or openvino")
    if ir and engine == "onnxruntime":
        raise ModelLoadError(source, "an OpenVINO IR (.xml) runs on OpenVINO only; use runtime auto or openvino")
    requested = str(device).strip().lower()
    if engine == "openvino" or ir:
        if requested not in ("", "auto", "cpu"):
            raise ModelLoadError(source, f"the openvino runtime runs on the CPU, not on device '{device}'; "
                                         "set device to auto or cpu, or use runtime onnxruntime")
        check_fp16(fp16, CPU, source)
        from .runtimes.openvino import OpenVinoRuntime
        return OpenVinoRuntime(path, spec, cpu_threads=threads)
    try:
        from .runtimes.onnx import OnnxRuntime, onnx_cuda_available
    except ImportError as exc:
        raise ModelLoadError(source, f"ONNX models need onnxruntime, which cannot be imported "
                                     f"({exc})") from exc
    onnx_target: DeviceLike
    if requested == "cpu" or (requested in ("", "auto") and not onnx_cuda_available()):
        onnx_target = CPU  # torch stays unimported: nothing on this path needs it
    else:
        onnx_target = _torch_target(device)
    check_fp16(fp16, onnx_target, source)
    return OnnxRuntime(path, spec, onnx_target, fp16=fp16, cpu_threads=threads)


def _load_triton(name: str, device: torch.device, fp16: bool, description: str | None, validate: bool,
                 options: TritonOptions | None) -> Runtime:
    """A model on a Triton server. Its description comes from `description`, or is the
    builtin's when the served name is a builtin. A server that is down at load is not an
    error (the robot may boot before it): the runtime connects on its first frame."""
    from .runtimes.triton import TritonRuntime, parse_address

    address = parse_address(name)
    if fp16:
        raise ModelLoadError(name, "fp16 is chosen on the Triton server (its model configuration), not "
                                   "here; set fp16 to false")
    spec: ModelSpec
    if description is not None:
        spec = load_description(Path(description).expanduser())
    elif canonical_builtin(address.model) is not None:
        spec = builtin_spec(address.model)
    else:
        raise ModelLoadError(name, f"'{address.model}' is not a builtin model, so its description YAML "
                                   "must be given (model_description); format: docs/models.md")
    try:
        runtime = TritonRuntime(address, spec, options, device)
    except ValueError as exc:
        raise ModelLoadError(name, str(exc)) from exc
    if not validate:
        return runtime
    try:
        runtime.connect()
    except RuntimeUnavailable as exc:
        _LOG.warning("%s; masks start once it answers", exc)
        return runtime
    try:
        validate_runtime(runtime, name)
    except ModelLoadError:
        runtime.close()
        raise
    return runtime


def _torch_target(device: str | DeviceLike) -> torch.device:
    return resolve_device(str(device))


def zeros_batch(runtime: Runtime) -> Any:
    """A (1, 3, H, W) zero input in the form the runtime takes (numpy for array_io)."""
    spec = runtime.spec
    shape = (1, 3, spec.input_height, spec.input_width)
    if runtime.array_io:
        return np.zeros(shape, runtime.dtype)
    import torch

    return torch.zeros(shape, device=torch_device(runtime.device), dtype=runtime.dtype)


def validate_runtime(runtime: Runtime, source: str) -> None:
    """One forward on zeros of the spec's input size; its output must match the description."""
    spec = runtime.spec
    batch = zeros_batch(runtime)
    try:
        output = runtime(batch)
    except RuntimeUnavailable:
        return  # a remote server that went away in between: checked when it is back
    except Exception as exc:  # noqa: BLE001 - any failure of the forward is a load failure
        raise ModelLoadError(source, f"the test forward pass on a 1x3x{spec.input_height}x{spec.input_width} "
                                     f"input failed: {first_line(exc)}") from exc
    check_output(output, spec, source)


def _host_array(output: Any) -> np.ndarray | None:
    """A model output (numpy array or torch tensor, any device) as a numpy array, or None."""
    if isinstance(output, np.ndarray):
        return output
    if type(output).__module__.startswith("torch") and hasattr(output, "detach"):
        host = output.detach().cpu()
        if str(host.dtype) == "torch.bfloat16":
            host = host.float()
        return np.asarray(host.numpy())
    return None


def check_output(model_output: Any, spec: ModelSpec, source: str) -> None:
    """Raise ModelLoadError when a batch-of-one output (numpy array or torch tensor)
    contradicts the description."""
    output = _host_array(model_output)
    if output is None:
        raise ModelLoadError(source, f"the model returned {type(model_output).__name__}, not a tensor")
    shape = tuple(output.shape)
    n_classes = len(spec.classes)
    if spec.output == "labels":
        if not (output.ndim == 3 or (output.ndim == 4 and shape[1] == 1)):
            raise ModelLoadError(source, f"output has shape {list(shape)} but the description says "
                                         "'labels', which is (N, 1, h, w) or (N, h, w) class ids")
        if output.dtype.kind not in "iu":
            raise ModelLoadError(source, f"output has dtype {output.dtype} but the description says "
                                         "'labels', which are integer class ids; use 'logits' or "
                                         "'probabilities' for score maps")
    else:
        expected = spec.expected_channels()
        assert expected is not None  # only label outputs have no channel count
        if output.ndim != 4:
            raise ModelLoadError(source, f"output has shape {list(shape)}; a '{spec.output}' output is "
                                         "4-D (N, C, h, w)")
        if shape[1] != expected:
            if spec.output in ("logits", "probabilities"):
                what = f"the description lists {n_classes} classes"
                if n_classes != expected:
                    what += f" with ids up to {expected - 1}, so {expected} channels"
            else:
                what = f"a '{spec.output}' output has 1 channel"
            raise ModelLoadError(source, f"output has {shape[1]} channels but {what}")
        if output.dtype.kind != "f":
            raise ModelLoadError(source, f"output has dtype {output.dtype} but the description says "
                                         f"'{spec.output}', a float score map; use 'labels' for class ids")
    if shape[0] != 1:
        raise ModelLoadError(source, f"output has batch size {shape[0]} for an input of batch size 1")
    height, width = shape[-2], shape[-1]
    if not (0 < height <= spec.input_height and 0 < width <= spec.input_width):
        raise ModelLoadError(source, f"output is {width}x{height} (width x height) for a "
                                     f"{spec.input_width}x{spec.input_height} input; it must be no larger "
                                     "than the input (check input.width/height and the axis order)")

    if spec.output == "labels":
        low, high = int(output.min()), int(output.max())
        if low < 0 or high > 255:
            raise ModelLoadError(source, f"label output has values {low}..{high}; class ids must fit 0..255")
        return
    values = output.astype(np.float32, copy=False)
    if not bool(np.isfinite(values).all()):
        hint = " (fp16 overflow? try fp16 false)" if output.dtype == np.float16 else ""
        raise ModelLoadError(source, f"output contains NaN or infinite values{hint}")
    if spec.output in ("probabilities", "sigmoid"):
        lowest, highest = float(values.min()), float(values.max())
        if lowest < -_PROBABILITY_TOLERANCE or highest > 1 + _PROBABILITY_TOLERANCE:
            other = "logits" if spec.output == "probabilities" else "binary_logits"
            raise ModelLoadError(source, f"output has values {lowest:.3g}..{highest:.3g} but the description says "
                                         f"'{spec.output}', which are within [0, 1]; the model probably "
                                         f"returns '{other}'")
    if spec.output == "probabilities":
        sums = values.sum(axis=1)
        worst = float(np.abs(sums - 1).max())
        if worst > _PROBABILITY_TOLERANCE:
            raise ModelLoadError(source, f"output channels sum to up to {1 + worst:.3g} instead of 1 "
                                         "but the description says 'probabilities' (softmax taken); "
                                         "use 'logits' for raw scores")


def load_warm(model: str, device: str | DeviceLike = "auto", warmup_iterations: int = 3, **options: Any) -> Runtime:
    """`load_model(model, device, **options)` then `warm_up`, closing the model if warming fails:
    what the node, segment_offline and each Ray actor do before their first frame."""
    runtime = load_model(model, device, **options)
    try:
        warm_up(runtime, warmup_iterations)
    except BaseException:
        runtime.close()
        raise
    return runtime


def warm_up(runtime: Runtime, iterations: int = 3) -> float:
    """Run `iterations` forwards on zeros so lazy initialisation (cuDNN autotuning, TensorRT
    engine builds, allocator growth) happens before the first real frame. Returns the mean
    seconds of one forward over the iterations after the first (0.0 for fewer than 2)."""
    batch = zeros_batch(runtime)
    times: list[float] = []
    for _ in range(max(iterations, 0)):
        start = time.perf_counter()
        try:
            runtime(batch)
        except RuntimeUnavailable:
            break  # a server that is down: nothing to warm, and no reason to wait for it here
        if runtime.device.type == "cuda":
            import torch

            # Kernels are asynchronous: without this the time is the launch, not the forward.
            torch.cuda.synchronize(torch_device(runtime.device))
        times.append(time.perf_counter() - start)
    timed = times[1:]
    return sum(timed) / len(timed) if timed else 0.0


def _model_file(name: str) -> Path:
    path = Path(name).expanduser()
    source = str(path)
    suffix = path.suffix.lower()
    if suffix not in TORCHSCRIPT_SUFFIXES + ONNX_SUFFIXES + OPENVINO_SUFFIXES:
        if not suffix and not path.exists():
            raise ModelLoadError(name, f"not a builtin model ({', '.join(BUILTIN_MODELS)}) and not a model "
                                       "file (.pt, .ts, .torchscript, .onnx or OpenVINO .xml)")
        hint = " (a .pth is usually a weights checkpoint: export TorchScript or ONNX)" if suffix == ".pth" else ""
        raise ModelLoadError(source, f"unsupported model file type '{suffix or path.name}'; use TorchScript "
                                     f"(.pt, .ts, .torchscript), ONNX (.onnx) or OpenVINO IR (.xml){hint}")
    if not path.exists():
        raise ModelLoadError(source, "model file not found")
    if not path.is_file():
        raise ModelLoadError(source, "model path is not a regular file")
    if not os.access(path, os.R_OK):
        raise ModelLoadError(source, "model file is not readable (check its permissions)")
    if path.stat().st_size == 0:
        raise ModelLoadError(source, "model file is empty (an interrupted copy or export?)")
    return path


