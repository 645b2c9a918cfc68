"""The Triton runtime without a server (addresses, backoff, a server that is down) and the
model-repository writer for NVIDIA's Triton server. A real server: test/ros/test_triton_node.py."""
from __future__ import annotations

import socket
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from google.protobuf import text_format
from torch import nn
from tritonclient.grpc import model_config_pb2

from seg_perception.model import ModelLoadError, load_model, warm_up
from seg_perception.model.base import RuntimeUnavailable, runtime_health
from seg_perception.model.builtin import builtin_spec
from seg_perception.model.runtimes.triton import (Backoff, TritonAddress, TritonOptions, TritonRuntime,
                                                 parse_address)
from seg_perception.deploy.triton_repo import save_torchscript, write_repository
from seg_perception.model.runtimes.torch_module import TorchModuleRuntime

WIDTH, HEIGHT = 32, 24


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("text, expected", [
    ("triton://gpu-server:8001/selfie", TritonAddress("gpu-server", 8001, "selfie")),
    ("triton://10.0.0.5/deeplab", TritonAddress("10.0.0.5", 8001, "deeplab")),
    ("TRITON://h:9000/m/3", TritonAddress("h", 9000, "m", "3")),
    ("triton://[::1]:8101/selfie", TritonAddress("[::1]", 8101, "selfie")),
])
def test_parse_address(text: str, expected: TritonAddress) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["triton://host:8001", "triton:///m", "triton://h:port/m", "triton://h:\u00b2/m",
                                  "triton://h:1/m/\u00b9",
                                  "triton://h:70000/m", "triton://h:1/m/v2", "triton://h/a/1/b"])
def test_parse_address_rejects(text: str) -> None:
    with pytest.raises(ModelLoadError, match="triton://"):
        parse_address(text)


def test_backoff_doubles_to_its_limit_and_resets() -> None:
    now = [100.0]
    backoff = Backoff(initial=0.5, maximum=2.0, clock=lambda: now[0])
    assert backoff.ready()
    waits = []
    for _ in range(4):
        backoff.failed()
        assert not backoff.ready()
        waits.append(backoff.wait_left())
        now[0] += waits[-1]
        assert backoff.ready()
    assert waits == [0.5, 1.0, 2.0, 2.0]
    backoff.failed()
    backoff.succeeded()
    assert backoff.ready()


@pytest.mark.parametrize("config", [
    {"config": {"name": "selfie", "max_batch_size": 4}},  # gRPC: a ModelConfigResponse
    {"name": "selfie", "max_batch_size": 4},  # HTTP: the configuration itself
])
def test_max_batch_is_read_from_the_config_as_the_server_returns_it(config: dict[str, object]) -> None:
    spec = builtin_spec("selfie")
    runtime = TritonRuntime(parse_address("triton://127.0.0.1:1/selfie"), spec)
    metadata = {"inputs": [{"name": "input", "datatype": "FP32",
                            "shape": ["-1", "3", str(spec.input_height), str(spec.input_width)]}],
                "outputs": [{"name": "output", "datatype": "FP32", "shape": ["-1", "2", "1", "1"]}]}
    assert runtime._model_io(metadata, config).max_batch == 4


def test_server_down_at_load_is_not_an_error_and_frames_fail_fast() -> None:
    port = free_port()  # nothing listens there
    runtime = load_model(f"triton://127.0.0.1:{port}/selfie", "cpu", triton=TritonOptions(timeout_s=2.0))
    assert runtime.spec == builtin_spec("selfie")  # the builtin's description, no server needed
    health = runtime_health(runtime)
    assert health is not None and not health.ok
    assert warm_up(runtime, 3) == 0.0  # nothing to warm, and no waiting for the server
    batch = torch.zeros(1, 3, runtime.spec.input_height, runtime.spec.input_width)
    with pytest.raises(RuntimeUnavailable, match=f"127.0.0.1:{port}"):
        runtime(batch)
    health = runtime_health(runtime)
    assert health is not None and not health.ok and f"127.0.0.1:{port}" in health.message
    runtime.close()


def test_backoff_skips_the_server_between_tries() -> None:
    now = [0.0]
    port = free_port()
    runtime = TritonRuntime(parse_address(f"triton://127.0.0.1:{port}/selfie"), builtin_spec("selfie"),
                            TritonOptions(timeout_s=2.0, max_backoff_s=4.0), clock=lambda: now[0])
    batch = torch.zeros(1, 3, runtime.spec.input_height, runtime.spec.input_width)
    with pytest.raises(RuntimeUnavailable):
        runtime(batch)
    assert runtime.failures == 1
    with pytest.raises(RuntimeUnavailable, match="next try in"):
        runtime(batch)  # inside the backoff: not even tried
    assert runtime.failures == 1
    now[0] += 10.0
    with pytest.raises(RuntimeUnavailable):
        runtime(batch)
    assert runtime.failures == 2
    assert runtime_health(load_model("selfie", "cpu")) is None  # local models have no run-time health
    runtime.close()


def test_triton_model_needs_a_description_unless_builtin(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="model_description"):
        load_model("triton://localhost:8001/deeplab", "cpu")
    with pytest.raises(ModelLoadError, match="fp16"):
        load_model("triton://localhost:8001/selfie", "cpu", fp16=True)
    with pytest.raises(ModelLoadError, match="root_certificates"):
        load_model("triton://localhost:8001/selfie", "cpu",
                   triton=TritonOptions(ssl=True, root_certificates=str(tmp_path / "ca.pem")))
    with pytest.raises(ValueError, match="mutual TLS"):
        TritonOptions(ssl=True, private_key="key.pem")
    description = tmp_path / "deeplab.yaml"
    description.write_text(yaml.safe_dump({"input": {"width": WIDTH, "height": HEIGHT}, "output": "logits",
                                           "classes": ["road", "car", "person"]}))
    runtime = load_model("triton://127.0.0.1:1/deeplab", "cpu", description=str(description), validate=False)
    assert list(runtime.spec.classes.names) == ["road", "car", "person"]


# model repository for NVIDIA's server ------------------------------------------------------

class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def _onnx(tmp_path: Path, dynamic: bool) -> Path:
    torch.manual_seed(0)
    path = tmp_path / ("dyn.onnx" if dynamic else "fixed.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Tiny().eval(), (torch.zeros(1, 3, HEIGHT, WIDTH),), str(path), dynamo=False,
                          opset_version=17, input_names=["image"], output_names=["scores"],
                          dynamic_axes={"image": {0: "n"}, "scores": {0: "n"}} if dynamic else None)
    path.with_suffix(".yaml").write_text(yaml.safe_dump(
        {"input": {"width": WIDTH, "height": HEIGHT}, "output": "logits", "classes": ["a", "b", "c"]}))
    return path


def _config(model_dir: Path) -> model_config_pb2.ModelConfig:
    return text_format.Parse((model_dir / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())


def test_repository_for_onnx_dynamic_and_fixed_batch(tmp_path: Path) -> None:
    target = write_repository(str(_onnx(tmp_path, True)), tmp_path / "repo", max_batch=4, gpu=False)
    config = _config(target)
    assert (config.name, config.platform, config.max_batch_size) == ("dyn", "onnxruntime_onnx", 4)
    assert config.input[0].name == "image" and list(config.input[0].dims) == [3, HEIGHT, WIDTH]
    assert config.output[0].name == "scores" and list(config.output[0].dims) == [3, HEIGHT // 2, WIDTH // 2]
    assert config.input[0].data_type == model_config_pb2.TYPE_FP32
    assert config.dynamic_batching.max_queue_delay_microseconds > 0
    assert config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_CPU
    assert (target / "1" / "model.onnx").read_bytes() == (tmp_path / "dyn.onnx").read_bytes()
    assert yaml.safe_load((target / "seg_perception.yaml").read_text())["classes"] == ["a", "b", "c"]

    fixed = _config(write_repository(str(_onnx(tmp_path, False)), tmp_path / "repo", backend="tensorrt", fp16=True))
    assert fixed.max_batch_size == 0 and list(fixed.input[0].dims) == [1, 3, HEIGHT, WIDTH]
    assert not fixed.HasField("dynamic_batching")
    accelerator = fixed.optimization.execution_accelerators.gpu_execution_accelerator[0]
    assert accelerator.name == "tensorrt" and accelerator.parameters["precision_mode"] == "FP16"
    with pytest.raises(ModelLoadError, match="onnxruntime or tensorrt"):
        write_repository(str(tmp_path / "dyn.onnx"), tmp_path / "repo", backend="pytorch")


def test_repository_for_builtin_is_a_libtorch_model_equal_to_it(tmp_path: Path) -> None:
    target = write_repository("selfie", tmp_path / "repo", max_batch=8)
    config = _config(target)
    spec = builtin_spec("selfie")
    assert (config.platform, config.max_batch_size) == ("pytorch_libtorch", 8)
    assert list(config.input[0].dims) == [3, spec.input_height, spec.input_width]
    assert list(config.output[0].dims) == [1, spec.input_height, spec.input_width]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        served = torch.jit.load(str(target / "1" / "model.pt"))
    local = load_model("selfie", "cpu")
    batch = torch.rand(2, 3, spec.input_height, spec.input_width, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        assert torch.allclose(served(batch), local(batch), atol=1e-5)
    with pytest.raises(ModelLoadError, match="export_model"):
        write_repository("selfie", tmp_path / "repo", backend="onnxruntime")


class _FrozenBatch(nn.Module):
    """Batches in eager mode; its trace freezes the batch size (int() of a traced shape)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return y.reshape(int(x.shape[0]), 2, x.shape[2], x.shape[3])


def test_libtorch_batching_is_decided_on_the_traced_file_with_tracer_warnings_shown(tmp_path: Path) -> None:
    spec = builtin_spec("selfie")
    runtime = TorchModuleRuntime(_FrozenBatch(), spec, torch.device("cpu"))
    batch = torch.rand(2, 3, spec.input_height, spec.input_width)
    with torch.inference_mode():
        assert runtime(batch).shape[0] == 2  # the module itself batches
    with pytest.warns(torch.jit.TracerWarning):
        assert save_torchscript(runtime, tmp_path / "model.pt") is False
    selfie = load_model("selfie", "cpu")
    assert save_torchscript(selfie, tmp_path / "selfie.pt") is True


class _LyingServer:
    """A real gRPC server speaking Triton's protocol for the builtin selfie model's shapes: its
    inference answers 1 x 256 x 256 float32 until `lie` is set to (channels, side), then that."""

    def __init__(self) -> None:
        from concurrent import futures

        import grpc
        from tritonclient.grpc import model_config_pb2 as config_pb2
        from tritonclient.grpc import service_pb2 as pb
        from tritonclient.grpc import service_pb2_grpc as pb_grpc

        spec = builtin_spec("selfie")
        outer = self

        class Servicer(pb_grpc.GRPCInferenceServiceServicer):
            def ServerReady(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC's names
                return pb.ServerReadyResponse(ready=True)

            def ModelReady(self, request: Any, context: Any) -> Any:  # noqa: N802
                return pb.ModelReadyResponse(ready=True)

            def ModelMetadata(self, request: Any, context: Any) -> Any:  # noqa: N802
                tensor = pb.ModelMetadataResponse.TensorMetadata
                return pb.ModelMetadataResponse(
                    name="selfie", versions=["1"], platform="onnxruntime_onnx",
                    inputs=[tensor(name="x", datatype="FP32", shape=[1, 3, spec.input_height, spec.input_width])],
                    outputs=[tensor(name="y", datatype="FP32", shape=[1, 1, 256, 256])])

            def ModelConfig(self, request: Any, context: Any) -> Any:  # noqa: N802
                return pb.ModelConfigResponse(config=config_pb2.ModelConfig(name="selfie", max_batch_size=0))

            def ModelInfer(self, request: Any, context: Any) -> Any:  # noqa: N802
                outer.infers += 1
                channels, side = outer.lie
                out = pb.ModelInferResponse.InferOutputTensor(name="y", datatype="FP32", shape=[1, channels, side, side])
                return pb.ModelInferResponse(model_name="selfie", outputs=[out],
                                             raw_output_contents=[bytes(4 * channels * side * side)])

        self.infers = 0
        self.lie = (1, 256)
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2),
                                  options=[("grpc.max_send_message_length", -1)])
        pb_grpc.add_GRPCInferenceServiceServicer_to_server(Servicer(), self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def close(self) -> None:
        self.server.stop(None)


@pytest.mark.parametrize("channels, side, fragment", [
    (1, 5000, "RESOURCE_EXHAUSTED|larger than max|exceeds"),  # 100 MB answer: refused unread
    (4, 256, "needs \\(1, 1, H, W\\)"),                          # more channels than the classes
])
def test_a_lying_server_is_refused_per_frame(channels: int, side: int, fragment: str) -> None:
    import re

    from seg_perception.engine.output_check import ModelOutputError, check_output

    server = _LyingServer()
    runtime = load_model(f"triton://127.0.0.1:{server.port}/selfie", "cpu", triton=TritonOptions(timeout_s=10.0))
    try:
        batch = torch.zeros(1, 3, runtime.spec.input_height, runtime.spec.input_width)
        check_output(runtime(batch), runtime.spec, 1)  # honest at first
        server.lie = (channels, side)
        try:
            output = runtime(batch)
        except RuntimeUnavailable as exc:
            assert re.search(fragment, str(exc)), exc
        else:
            with pytest.raises(ModelOutputError, match=fragment):
                check_output(output, runtime.spec, 1)
        assert server.infers >= 1
        assert runtime.max_message_bytes < 100_000_000
    finally:
        runtime.close()
        server.close()
def test_serve_triton_sets_up_its_environment_on_first_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`make demo` no longer builds .venv-triton: in a checkout, serve_triton's first run runs the
    checkout's scripts/setup_triton.sh and re-runs in the interpreter it made; outside one (no
    SEG_PERCEPTION_ROOT) it does nothing and the error says what to install."""
    from seg_perception.apps import serve_triton

    monkeypatch.delenv("SEG_PERCEPTION_ROOT", raising=False)
    assert serve_triton._set_up_on_first_use() is None
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    # The checkout's own setup step (here: one that makes the interpreter path and logs the call).
    (checkout / "scripts" / "setup_triton.sh").write_text(
        'root=$(cd "$(dirname "$0")/.." && pwd)\nmkdir -p "$root/.venv-triton/bin"\n'
        'ln -sf "$(command -v bash)" "$root/.venv-triton/bin/python"\necho ran >> "$root/calls"\n')
    monkeypatch.setenv("SEG_PERCEPTION_ROOT", str(checkout))
    assert serve_triton._set_up_on_first_use() == str(checkout / ".venv-triton" / "bin" / "python")
    assert (checkout / "calls").read_text() == "ran\n"
    (checkout / "scripts" / "setup_triton.sh").write_text("exit 3\n")
    assert serve_triton._set_up_on_first_use() is None  # a failed setup is no interpreter
