"""What every model runtime provides: a spec (preprocessing + output kind + classes) and a forward.

A model is its weights plus everything needed to use them correctly: input size, color
order, normalization, resize policy, the meaning of its output, and its class list. Keeping
these together means post-processing and class maps can never disagree with the model.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from ..wire.errors import bounded
from .labels import ClassMap

if TYPE_CHECKING:  # torch is imported only by what runs on it: an ONNX model on the CPU never does
    import torch

ResizePolicy = Literal["stretch", "letterbox"]
OutputKind = Literal["logits", "probabilities", "sigmoid", "binary_logits", "labels"]
ColorOrder = Literal["rgb", "bgr"]

RESIZE_POLICIES: tuple[str, ...] = ("stretch", "letterbox")
OUTPUT_KINDS: tuple[str, ...] = ("logits", "probabilities", "sigmoid", "binary_logits", "labels")
COLOR_ORDERS: tuple[str, ...] = ("rgb", "bgr")
RUNTIMES: tuple[str, ...] = ("auto", "torch", "onnxruntime", "openvino")
"""What runs the model. auto: torch for built-ins and TorchScript, ONNX Runtime for .onnx,
OpenVINO for OpenVINO IR (.xml). onnxruntime / openvino run a built-in from its ONNX export
(builtin_onnx, made once into a cache folder)."""


class ModelLoadError(RuntimeError):
    """A model that cannot be used: names the file and the problem."""

    def __init__(self, source: str, problem: str) -> None:
        # Bounded: the text reaches the log, /diagnostics and CLI messages, and a problem may quote
        # a file's content.
        problem = bounded(problem)
        super().__init__(f"cannot load model '{bounded(str(source), 200)}': {problem}")
        self.source = source
        self.problem = problem


class DeviceError(RuntimeError):
    """The requested compute device does not exist on this machine."""


class RuntimeUnavailable(RuntimeError):
    """The model cannot run right now (a remote server down or too slow); the frame is skipped
    and the runtime retries by itself. Callers report it; they do not stop."""


@dataclass(frozen=True)
class RuntimeHealth:
    ok: bool
    message: str


def runtime_health(runtime: Runtime) -> RuntimeHealth | None:
    """The health of a runtime that can fail at run time (a remote server); None for local
    models, which either loaded or did not."""
    return runtime.health()


@dataclass(frozen=True)
class ModelSpec:
    """How to feed a model and read its output.

    Input: uint8 image -> resized to (input_width, input_height) by `resize` -> channels in
    `color_order` -> float: (pixel * scale - mean) / std, NCHW.
    Output (N, C, h, w) covering the network input (h, w may be smaller, e.g. stride 4):
      logits         C == num classes, softmax taken here
      probabilities  C == num classes, already normalized
      sigmoid        C == 1, probability of class id 1 (class 0 is the rest)
      binary_logits  C == 1, logit of class id 1
      labels         (N, 1, h, w) or (N, h, w) integer class ids (no confidence: 255)
    """

    name: str
    input_width: int
    input_height: int
    classes: ClassMap
    output: OutputKind = "logits"
    color_order: ColorOrder = "rgb"
    scale: float = 1.0 / 255.0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    resize: ResizePolicy = "stretch"
    pad_value: int = 0

    def __post_init__(self) -> None:
        if self.input_width <= 0 or self.input_height <= 0:
            raise ValueError(f"input size must be positive, got {self.input_width}x{self.input_height}")
        if self.output not in OUTPUT_KINDS:
            raise ValueError(f"output kind '{self.output}' is not one of {OUTPUT_KINDS}")
        if self.resize not in RESIZE_POLICIES:
            raise ValueError(f"resize '{self.resize}' is not one of {RESIZE_POLICIES}")
        if self.color_order not in COLOR_ORDERS:
            raise ValueError(f"color_order '{self.color_order}' is not one of {COLOR_ORDERS}")
        if len(self.mean) != 3 or len(self.std) != 3 or any(s == 0 for s in self.std):
            raise ValueError(f"mean and std need 3 values each, std non-zero: {self.mean}, {self.std}")
        if self.output in ("sigmoid", "binary_logits") and {c.id for c in self.classes.classes} != {0, 1}:
            raise ValueError(f"a single-channel '{self.output}' model needs exactly class ids 0 and 1, "
                             f"got {self.classes.names}")
        if not 0 <= self.pad_value <= 255:
            raise ValueError(f"pad_value must be 0..255, got {self.pad_value}")

    @property
    def input_size(self) -> tuple[int, int]:
        """(width, height)"""
        return (self.input_width, self.input_height)

    def expected_channels(self) -> int | None:
        """Output channels the description implies (None for label outputs)."""
        if self.output in ("sigmoid", "binary_logits"):
            return 1
        if self.output == "labels":
            return None
        return self.classes.num_outputs


@dataclass(frozen=True)
class Device:
    """A compute device without importing torch (what an ONNX model on the CPU runs on).
    Has the `type` and `index` of a torch.device, which the pipeline and the node read."""

    type: str
    index: int | None = None

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"


CPU = Device("cpu")


class DeviceLike(Protocol):
    """torch.device or Device."""

    @property
    def type(self) -> str: ...

    @property
    def index(self) -> int | None: ...


class Runtime(Protocol):
    """A loaded model on a device.

    Torch runtimes take and return torch tensors on `device`. A runtime whose `array_io` is
    True (ONNX Runtime on the CPU) takes and returns numpy arrays instead, so nothing around it
    needs torch.
    """

    spec: ModelSpec
    array_io: bool
    """True: numpy arrays in and out (no torch anywhere around it); False: torch tensors."""
    cpu_threads: int | None
    """Its intra-op thread count on the CPU; None where it runs elsewhere (a GPU, a server)."""
    source: str
    """What was loaded (a built-in name, a file path, a triton:// address), for messages."""

    def health(self) -> RuntimeHealth | None:
        """A runtime that can fail at run time (a remote server) says how it is; local models,
        which either loaded or did not, return None."""
        ...

    @property
    def device(self) -> DeviceLike: ...

    @property
    def dtype(self) -> Any:
        """dtype the runtime wants its input in: a torch dtype (float16 for fp16 CUDA models),
        or a numpy dtype for an array_io runtime."""
        ...

    def __call__(self, batch: Any) -> Any:
        """(N, 3, H, W) normalized input -> raw model output as described by spec.output."""
        ...

    def close(self) -> None:
        """Free the model and any device memory it holds."""
        ...


def check_image_input(source: str, name: str, shape: Sequence[Any], spec: ModelSpec) -> None:
    """Raise ModelLoadError unless a model input of `shape` (ints, or anything else for a dynamic
    dimension) can take (N, 3, height, width) batches at the description's input size. One check
    for every runtime that reads a model file's input signature (ONNX Runtime, OpenVINO)."""
    dims = list(shape)
    if len(dims) != 4:
        raise ModelLoadError(source, f"its input '{name}' has shape {dims}; expected "
                                     "4 dimensions (N, 3, height, width)")
    channels, height, width = (d if isinstance(d, int) and d >= 0 else None for d in dims[1:])
    if channels is not None and channels != 3:
        hint = " (it looks channels-last, NHWC; export it NCHW)" if dims[3] == 3 else ""
        raise ModelLoadError(source, f"its input '{name}' has shape {dims}: {channels} "
                                     f"channels at dimension 1, expected 3{hint}")
    want_w, want_h = spec.input_size
    if (height is not None and height != want_h) or (width is not None and width != want_w):
        raise ModelLoadError(
            source, f"its input '{name}' is fixed at {_dim(width)}x{_dim(height)} "
                    f"(width x height) but the description says {want_w}x{want_h}; make "
                    "input.width/height match the export")


def _dim(value: int | None) -> str:
    return "dynamic" if value is None else str(value)


def cpu_thread_count(requested: int = 0) -> int:
    """Intra-op threads for the model on the CPU: `requested`, or with 0 every core this process
    may run on. One number for torch, ONNX Runtime and OpenCV alike, so that two thread pools
    never spin against each other on the same cores."""
    if requested < 0:
        raise ValueError(f"cpu_threads must be >= 0 (0 = one per core), got {requested}")
    if requested:
        return requested
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def torch_device(device: DeviceLike | str) -> torch.device:
    """The torch.device for a Device, a torch.device or a string (imports torch)."""
    import torch

    return torch.device(str(device))


def check_fp16(fp16: bool, device: DeviceLike, source: str) -> None:
    if fp16 and device.type != "cuda":
        raise ModelLoadError(source, f"fp16 was requested on device '{device}', but half precision is "
                                     "CUDA-only here (CPU float16 kernels are slow or missing); "
                                     "set fp16 to false or use a CUDA device")


# Below float32's smallest normal number (1.18e-38): stored as a denormal.
_DENORMAL = 1e-39


@contextlib.contextmanager
def flush_denormals() -> Iterator[None]:
    """Within the block, this thread's CPU float arithmetic treats denormal numbers as zero (FTZ/DAZ).

    Denormals are numbers too small for the normal float format; x86 CPUs compute with them
    through a microcode path ~100x slower. Softmaxes over many positions and PReLU chains
    create them in bulk: TwinLiteNet's forward took ~3.4 s with them and ~0.15 s without on
    one CPU measured for this project (others barely slow down). Values this small are noise for
    segmentation, so every forward runs in this block; the flag is per thread and restored
    afterwards, so the same thread's other arithmetic (projection, voxel grids, numpy) keeps
    IEEE semantics.
    """
    import torch

    was_on = denormals_flushed()
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if not was_on:
            torch.set_flush_denormal(False)


def denormals_flushed() -> bool:
    """Whether denormal floats are flushed to zero on the calling thread."""
    # numpy's float32 arithmetic runs on the same SSE unit whose MXCSR flags FTZ/DAZ set
    return bool(np.float32(_DENORMAL) * np.float32(2.0) == 0.0)


def resolve_device(requested: str) -> torch.device:
    """'auto' | 'cpu' | 'cuda' | 'cuda:N' -> a device that exists here.

    'auto' falls back to CPU when CUDA is absent; an explicit CUDA request does not, because a
    robot silently running a GPU model on its CPU misses every deadline without saying why.
    """
    import torch

    text = requested.strip().lower()
    if text in ("", "auto"):
        return torch.device("cuda:0") if torch.cuda.is_available() else torch.device("cpu")
    if text == "cpu":
        return torch.device("cpu")
    if text == "cuda" or text.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise DeviceError(f"device '{requested}' requested but CUDA is not available "
                              f"(torch {torch.__version__}, built with CUDA: {torch.version.cuda}); "
                              "use device:=auto to fall back to the CPU, or device:=cpu")
        index = 0 if text == "cuda" else _parse_index(text[5:], requested)
        if index >= torch.cuda.device_count():
            raise DeviceError(f"device '{requested}' requested but only {torch.cuda.device_count()} "
                              "CUDA device(s) exist")
        return torch.device("cuda", index)
    raise DeviceError(f"device '{requested}' is not one of auto, cpu, cuda, cuda:N")


def _parse_index(text: str, requested: str) -> int:
    if not text.isdigit():
        raise DeviceError(f"device '{requested}': expected cuda:N with N a number")
    return int(text)


def describe_runtime(runtime: Runtime, device_text: str) -> str:
    """What runs the model, for the start-up log: 'PyTorch on cpu (2 threads)', 'ONNX Runtime
    (CPUExecutionProvider) on cpu (2 threads)', 'the Triton server localhost:8001 (model selfie)'."""
    label = getattr(runtime, "label", type(runtime).__name__)
    return label if getattr(runtime, "remote", False) else f"{label} on {device_text}"


def describe_device(device: DeviceLike, cpu_threads: int | None = None) -> str:
    """'cuda:0 (NVIDIA ...)' or 'cpu (N threads)'; `cpu_threads` defaults to torch's count."""
    if device.type == "cuda":
        import torch

        return f"{device} ({torch.cuda.get_device_name(torch_device(device))})"
    if cpu_threads is None:
        import torch

        cpu_threads = torch.get_num_threads()
    return f"cpu ({cpu_threads} threads)"
