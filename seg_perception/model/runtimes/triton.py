"""Models served by a Triton Inference Server, reached over gRPC: `model: triton://HOST:PORT/NAME`.

Pre- and post-processing stay in the caller; only the network input (N, 3, H, W) and its raw
output travel. Many robots can share one GPU server this way, and Triton's dynamic batcher
merges their requests.

A server that is down or slow must never take the node down with it: every call carries a
timeout, a failed call raises RuntimeUnavailable (a frame skipped, not a crash), and after a
failure the runtime waits out a growing backoff before it tries the server again, so a dead
server costs at most one timeout per backoff period instead of one per frame. The first call
after the server is back reconnects by itself.
"""
from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

from ...wire.errors import first_line, one_line
from ..base import ModelLoadError, ModelSpec, RuntimeHealth, RuntimeUnavailable

SCHEME = "triton://"
DEFAULT_GRPC_PORT = 8001
MAX_BATCH_FRAMES = 16
"""Frames of one request at most (cameras of one node); bounds the gRPC message size."""
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")
# Triton datatype names (model metadata) -> numpy.
_DATATYPES: dict[str, type[np.generic]] = {
    "FP32": np.float32, "FP16": np.float16, "FP64": np.float64, "INT64": np.int64, "INT32": np.int32,
    "INT16": np.int16, "INT8": np.int8, "UINT8": np.uint8, "BOOL": np.bool_,
}
_region_ids = itertools.count()


def is_triton_model(model: str) -> bool:
    return model.strip().lower().startswith(SCHEME)


@dataclass(frozen=True)
class TritonAddress:
    host: str
    port: int
    model: str
    version: str = ""

    @property
    def url(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def is_local(self) -> bool:
        return self.host.lower() in _LOCAL_HOSTS

    def __str__(self) -> str:
        version = f"/{self.version}" if self.version else ""
        return f"{SCHEME}{self.url}/{self.model}{version}"


def parse_address(text: str) -> TritonAddress:
    """`triton://HOST[:PORT]/NAME[/VERSION]` (port 8001, Triton's gRPC default, when absent)."""
    value = text.strip()
    if not value.lower().startswith(SCHEME):
        raise ModelLoadError(text, f"a Triton model is written {SCHEME}HOST:PORT/NAME")
    rest = value[len(SCHEME):]
    location, _, path = rest.partition("/")
    parts = [p for p in path.split("/") if p]
    if not location or not parts or len(parts) > 2:
        raise ModelLoadError(text, f"expected {SCHEME}HOST:PORT/NAME (optionally /VERSION), e.g. "
                                   f"{SCHEME}localhost:8001/selfie")
    host, port = location, DEFAULT_GRPC_PORT
    if location.startswith("["):  # IPv6 literal: [::1]:8001
        end = location.find("]")
        if end < 0:
            raise ModelLoadError(text, "unclosed '[' in an IPv6 host")
        host, tail = location[:end + 1], location[end + 1:]
        if tail:
            port = _parse_port(tail.lstrip(":"), text)
    elif ":" in location:
        host, port_text = location.rsplit(":", 1)
        port = _parse_port(port_text, text)
    if not host:
        raise ModelLoadError(text, "no host before the port")
    version = parts[1] if len(parts) == 2 else ""
    if version and not (version.isascii() and version.isdigit()):
        raise ModelLoadError(text, f"model version '{version}' is not a number")
    return TritonAddress(host, port, parts[0], version)


def _parse_port(text: str, source: str) -> int:
    # str.isdigit() accepts '²' and other digits int() refuses: ASCII only.
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 65536:
        raise ModelLoadError(source, f"port '{text}' is not a number in 1..65535")
    return int(text)


@dataclass(frozen=True)
class TritonOptions:
    """How to reach the server. The TLS fields are file paths, as tritonclient takes them."""

    timeout_s: float = 1.0
    """Limit of every call to the server (connect checks and each inference)."""
    ssl: bool = False
    root_certificates: str = ""
    """PEM of the CA that signed the server's certificate (empty: the system's roots)."""
    private_key: str = ""
    """Client key + chain, for servers that require client certificates (mutual TLS)."""
    certificate_chain: str = ""
    shared_memory: bool = False
    """Pass tensors through POSIX shared memory when the server is on this machine (localhost)."""
    max_backoff_s: float = 8.0

    def __post_init__(self) -> None:
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {self.timeout_s}")
        if bool(self.private_key) != bool(self.certificate_chain):
            raise ValueError("mutual TLS needs both private_key and certificate_chain")


class Backoff:
    """When to try a failed server again: `initial`, doubling up to `maximum`, reset on success."""

    def __init__(self, initial: float = 0.25, maximum: float = 8.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.initial = initial
        self.maximum = maximum
        self._clock = clock
        self._delay = 0.0
        self._next = 0.0

    def ready(self) -> bool:
        return self._clock() >= self._next

    def wait_left(self) -> float:
        return max(0.0, self._next - self._clock())

    def failed(self) -> None:
        self._delay = self.initial if self._delay == 0.0 else min(self._delay * 2, self.maximum)
        self._next = self._clock() + self._delay

    def succeeded(self) -> None:
        self._delay = 0.0
        self._next = 0.0


@dataclass(frozen=True)
class _ModelIO:
    input_name: str
    input_datatype: str
    output_name: str
    output_datatype: str
    max_batch: int
    """0: the model takes exactly the batch its fixed shape says (1 here); else up to this many."""


class TritonRuntime:
    """One model on a Triton server. Tensors come back on `device` (where pre/post-processing run)."""

    array_io: bool = False
    cpu_threads: int | None = None
    remote = True
    """Runs elsewhere: the device of this process only does pre/post-processing."""

    @property
    def label(self) -> str:
        return f"the Triton server {self.address.url} (model '{self.address.model}')"

    def __init__(self, address: TritonAddress, spec: ModelSpec, options: TritonOptions | None = None,
                 device: torch.device | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.address = address
        self.spec = spec
        self.options = options or TritonOptions()
        import torch  # a Triton model is fed from the torch pre-processing; ONNX on the CPU never gets here

        self.device = device or torch.device("cpu")
        self.dtype = torch.float32
        self.source = str(address)
        self._check_tls_files()
        self._backoff = Backoff(maximum=self.options.max_backoff_s, clock=clock)
        self._client: Any = None
        self._io: _ModelIO | None = None
        self._shm: _SharedMemory | None = None
        self._closed = False
        self._lock = threading.Lock()
        self._health = RuntimeHealth(False, f"not connected yet to Triton server {address.url}")
        self.failures = 0

    @property
    def max_message_bytes(self) -> int:
        """The largest gRPC message sent or accepted: a batch of `MAX_BATCH_FRAMES` inputs (or of
        outputs, never larger: each output channel is at most an input's pixels in 8 bytes, and
        the description bounds the channels) plus room for the metadata. gRPC refuses a larger
        answer before it is read, so a server answering 400 MB costs nothing here (its default
        limit is 2 GB)."""
        spec = self.spec
        channels = max(3, spec.expected_channels() or 1)
        return MAX_BATCH_FRAMES * channels * spec.input_width * spec.input_height * 8 + (1 << 20)

    # ------------------------------------------------------------------ state for diagnostics
    def health(self) -> RuntimeHealth | None:
        return self._health

    def _check_tls_files(self) -> None:
        opts = self.options
        for what, path in (("root_certificates", opts.root_certificates), ("private_key", opts.private_key),
                           ("certificate_chain", opts.certificate_chain)):
            if path and not Path(path).expanduser().is_file():
                raise ModelLoadError(self.source, f"TLS {what} file '{path}' not found")

    # ------------------------------------------------------------------ connection
    def connect(self) -> None:
        """Open the channel and read the model's metadata. Raises RuntimeUnavailable when the
        server or model is not reachable/ready, ModelLoadError when it serves something else."""
        try:
            import tritonclient.grpc as grpcclient
            from tritonclient.utils import InferenceServerException
        except ImportError as exc:
            raise ModelLoadError(self.source, f"Triton models need tritonclient[grpc], which cannot be "
                                              f"imported ({exc})") from exc
        self._drop_client()
        opts = self.options
        address = self.address
        timeout = opts.timeout_s
        try:
            client = grpcclient.InferenceServerClient(
                address.url, ssl=opts.ssl, root_certificates=_path_or_none(opts.root_certificates),
                private_key=_path_or_none(opts.private_key),
                certificate_chain=_path_or_none(opts.certificate_chain),
                channel_args=[("grpc.max_send_message_length", self.max_message_bytes),
                              ("grpc.max_receive_message_length", self.max_message_bytes)])
        except Exception as exc:  # noqa: BLE001 - tritonclient raises plain Exception subclasses
            raise RuntimeUnavailable(self._text(f"cannot open a channel: {first_line(exc)}")) from exc
        self._client = client
        try:
            if not client.is_server_ready(client_timeout=timeout):
                raise RuntimeUnavailable(self._text("the server is up but not ready"))
            if not client.is_model_ready(address.model, address.version, client_timeout=timeout):
                served = _served_models(client, timeout)
                raise RuntimeUnavailable(self._text(f"model '{address.model}' is not ready on it "
                                                    f"(ready: {served or 'none'})"))
            metadata = client.get_model_metadata(address.model, address.version, as_json=True,
                                                 client_timeout=timeout)
            config = client.get_model_config(address.model, address.version, as_json=True,
                                             client_timeout=timeout)
        except InferenceServerException as exc:
            self._drop_client()
            raise RuntimeUnavailable(self._text(_server_error(exc))) from exc
        except RuntimeUnavailable:
            self._drop_client()
            raise
        self._io = self._model_io(metadata, config)
        if self.options.shared_memory and address.is_local:
            try:
                self._shm = _SharedMemory(client, self._io, self.spec, timeout)
            except Exception as exc:  # noqa: BLE001 - InferenceServerException or SharedMemoryException
                self._drop_client()
                raise RuntimeUnavailable(self._text(f"shared memory registration failed: "
                                                    f"{first_line(exc)}")) from exc

    def _model_io(self, metadata: dict[str, Any], config: dict[str, Any]) -> _ModelIO:
        inputs, outputs = metadata.get("inputs", []), metadata.get("outputs", [])
        if len(inputs) != 1 or not outputs:
            raise ModelLoadError(self.source, f"the served model has inputs {[i.get('name') for i in inputs]} "
                                              f"and outputs {[o.get('name') for o in outputs]}; a "
                                              "segmentation model here takes one image tensor")
        model_input, output = inputs[0], outputs[0]
        if model_input.get("datatype") not in ("FP32", "FP16"):
            raise ModelLoadError(self.source, f"its input '{model_input.get('name')}' is "
                                              f"{model_input.get('datatype')}; expected FP32 or FP16")
        if output.get("datatype") not in _DATATYPES:
            raise ModelLoadError(self.source, f"its output '{output.get('name')}' is {output.get('datatype')}")
        max_batch = int(served_config(config).get("max_batch_size", 0) or 0)
        shape = [int(d) for d in model_input.get("shape", [])]
        # Metadata shapes include the batch axis (-1) when the model batches.
        chw = shape[1:] if (max_batch > 0 or len(shape) == 4) else shape
        want = [3, self.spec.input_height, self.spec.input_width]
        if len(chw) != 3 or any(d not in (-1, w) for d, w in zip(chw, want)):
            raise ModelLoadError(self.source, f"the served input '{model_input.get('name')}' has shape {shape}; "
                                              f"the description says (N, 3, {want[1]}, {want[2]})")
        return _ModelIO(str(model_input["name"]), str(model_input["datatype"]), str(output["name"]),
                        str(output["datatype"]), max_batch)

    def _drop_client(self) -> None:
        if self._shm is not None:
            self._shm.close()
            self._shm = None
        if self._client is not None:
            try:
                self._client.close()
            except Exception:  # noqa: BLE001 - a channel to a dead server may fail to close cleanly
                pass
            self._client = None
        self._io = None

    # ------------------------------------------------------------------ inference
    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        with self._lock:
            if self._closed:
                raise RuntimeError(f"model '{self.source}' was closed")
            if self._io is None:
                if not self._backoff.ready():
                    raise RuntimeUnavailable(self._health.message
                                             + f" (next try in {self._backoff.wait_left():.1f} s)")
                try:
                    self.connect()
                except RuntimeUnavailable as exc:
                    self._failed(str(exc))
                    raise
                except ModelLoadError as exc:
                    # The server came back serving a different model: as unusable as a dead one.
                    self._drop_client()
                    self._failed(str(exc))
                    raise RuntimeUnavailable(str(exc)) from exc
            try:
                output = self._infer(batch)
            except RuntimeUnavailable as exc:
                self._drop_client()
                self._failed(str(exc))
                raise
            self._backoff.succeeded()
            self._health = RuntimeHealth(True, f"connected to Triton server {self.address.url}, "
                                               f"model '{self.address.model}'")
            return output if self.device.type == "cpu" else output.to(self.device)

    def _failed(self, message: str) -> None:
        self.failures += 1
        self._backoff.failed()
        self._health = RuntimeHealth(False, message)

    def _infer(self, batch: torch.Tensor) -> torch.Tensor:
        io = self._io
        assert io is not None
        host = batch.detach().to("cpu").contiguous().numpy().astype(_DATATYPES[io.input_datatype], copy=False)
        step = min(io.max_batch, MAX_BATCH_FRAMES) if io.max_batch > 0 else 1
        parts = [self._infer_chunk(host[i:i + step], io) for i in range(0, host.shape[0], step)]
        import torch

        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def _infer_chunk(self, chunk: np.ndarray, io: _ModelIO) -> torch.Tensor:
        import tritonclient.grpc as grpcclient
        from tritonclient.utils import InferenceServerException

        client = self._client
        model_input = grpcclient.InferInput(io.input_name, list(chunk.shape), io.input_datatype)
        requested = grpcclient.InferRequestedOutput(io.output_name)
        shm = self._shm
        if shm is not None:
            shm.put(chunk, model_input, requested)
        else:
            model_input.set_data_from_numpy(chunk)
        try:
            result = client.infer(self.address.model, [model_input], model_version=self.address.version,
                                  outputs=[requested], client_timeout=self.options.timeout_s)
        except InferenceServerException as exc:
            raise RuntimeUnavailable(self._text(_server_error(exc))) from exc
        if shm is not None:
            array = shm.get(result, io)
        else:
            array = result.as_numpy(io.output_name)
            if array is None:
                raise RuntimeUnavailable(self._text(f"the response has no output '{io.output_name}'"))
        import torch

        # Responses are read-only views of the message; torch wants memory it may own.
        return torch.from_numpy(np.array(array))

    def _text(self, problem: str) -> str:
        return f"Triton server {self.address.url}, model '{self.address.model}': {problem}"

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._drop_client()


class _SharedMemory:
    """Input and output tensors in POSIX shared memory registered with a local server: the
    request carries only region names, not the tensors."""

    def __init__(self, client: Any, io: _ModelIO, spec: ModelSpec, timeout: float) -> None:
        import tritonclient.utils.shared_memory as shm

        self._shm = shm
        self._client = client
        self._timeout = timeout
        batch = max(io.max_batch, 1)
        in_item = np.dtype(_DATATYPES[io.input_datatype]).itemsize
        out_item = np.dtype(_DATATYPES[io.output_datatype]).itemsize
        channels = spec.expected_channels() or 1
        pixels = spec.input_height * spec.input_width
        self.input_bytes = batch * 3 * pixels * in_item
        # Outputs are never larger than the input (checked at load), so this bounds every batch.
        self.output_bytes = batch * channels * pixels * out_item
        tag = f"seg_perception_{os.getpid()}_{next(_region_ids)}"
        self._names = (f"{tag}_in", f"{tag}_out")
        self._handles: list[Any] = []
        for name, size in zip(self._names, (self.input_bytes, self.output_bytes)):
            handle = shm.create_shared_memory_region(name, f"/{name}", size)
            self._handles.append(handle)
            client.register_system_shared_memory(name, f"/{name}", size, client_timeout=timeout)

    def put(self, chunk: np.ndarray, model_input: Any, requested: Any) -> None:
        self._shm.set_shared_memory_region(self._handles[0], [chunk])
        model_input.set_shared_memory(self._names[0], chunk.nbytes)
        requested.set_shared_memory(self._names[1], self.output_bytes)

    def get(self, result: Any, io: _ModelIO) -> np.ndarray:
        output = result.get_output(io.output_name)
        if output is None:
            raise RuntimeUnavailable(f"the response has no output '{io.output_name}'")
        shape = [int(d) for d in output.shape]
        return self._shm.get_contents_as_numpy(self._handles[1], _DATATYPES[io.output_datatype], shape)

    def close(self) -> None:
        for name in self._names:
            try:
                self._client.unregister_system_shared_memory(name, client_timeout=self._timeout)
            except Exception:  # noqa: BLE001 - the server may be gone; the region is ours to free anyway
                pass
        for handle in self._handles:
            try:
                self._shm.destroy_shared_memory_region(handle)
            except Exception:  # noqa: BLE001
                pass
        self._handles = []


def served_config(response: dict[str, Any]) -> dict[str, Any]:
    """The model configuration in a get_model_config(as_json=True) answer. Over gRPC the answer is
    a ModelConfigResponse, `{"config": {...}}`; over HTTP it is the configuration itself."""
    inner = response.get("config")
    return inner if isinstance(inner, dict) else response


def _served_models(client: Any, timeout: float) -> list[str]:
    try:
        index = client.get_model_repository_index(as_json=True, client_timeout=timeout)
    except Exception:  # noqa: BLE001 - only for the error text
        return []
    return sorted(m["name"] for m in index.get("models", []) if m.get("state") == "READY")


def _server_error(exc: Any) -> str:
    status = exc.status() if hasattr(exc, "status") else None
    text = exc.message() if hasattr(exc, "message") else str(exc)
    # gRPC status texts can run over several lines of context: one line for the log.
    text = one_line(text or exc, 300)
    if status == "StatusCode.UNAVAILABLE":
        return f"unreachable ({text})"
    if status == "StatusCode.DEADLINE_EXCEEDED":
        return "no answer within the timeout (server overloaded or too slow?)"
    return text


def _path_or_none(path: str) -> str | None:
    return str(Path(path).expanduser()) if path else None
