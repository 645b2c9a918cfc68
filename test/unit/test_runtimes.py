"""Model runtimes, the description format and load-time validation, on tiny models built here.

Every model is created and exported in a temporary directory (TorchScript and ONNX), so the
tests need no downloads and check the runtimes against the very module that was exported.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from seg_perception.model import BUILTIN_MODELS, DeviceError, ModelLoadError, find_description, load_description, load_model, resolve_device, spec_from_dict, warm_up
from seg_perception.model.builtin import builtin_spec
from seg_perception.model.runtimes.torch_module import TorchModuleRuntime, primary_output
from seg_perception.model.loader import check_output
from seg_perception.model.runtimes.onnx import OnnxRuntime, execution_providers
from seg_perception.model.runtimes.torchscript import TorchScriptRuntime

WIDTH, HEIGHT = 32, 24  # deliberately not square: catches swapped width/height
CPU = torch.device("cpu")


# tiny real models ---------------------------------------------------------------------------

class TinySeg(nn.Module):
    """Two convolutions, logits at half resolution like a strided segmentation net."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.head = nn.Conv2d(8, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.body(x)))


class DictSeg(nn.Module):
    """torchvision segmentation models return {'out': ..., 'aux': ...}. Composition, not
    inheritance: TorchScript cannot script super().forward()."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.net = TinySeg(channels)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = self.net(x)
        return {"aux": logits * 0.5, "out": logits}


class TupleSeg(TinySeg):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        logits = super().forward(x)
        return logits, logits.mean(dim=1, keepdim=True)


class LabelSeg(TinySeg):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x).argmax(dim=1, keepdim=True)


class SoftmaxSeg(TinySeg):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(super().forward(x), dim=1)


class SigmoidSeg(TinySeg):
    def __init__(self) -> None:
        super().__init__(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(super().forward(x))


class Upsampling(TinySeg):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.interpolate(super().forward(x), scale_factor=4.0)


class Biased(TinySeg):
    """Validation runs on zeros, where a tiny net's raw scores are near 0 and so could pass for
    probabilities; a large bias makes them unmistakably logits."""

    def __init__(self, channels: int, bias: float) -> None:
        super().__init__(channels)
        nn.init.constant_(self.head.bias, bias)


class FloatLabels(TinySeg):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x).argmax(dim=1, keepdim=True).float()


THREE_CLASSES = ["background", {"name": "person", "color": [220, 20, 60], "obstacle": True}, "car"]
TWO_CLASSES = ["background", {"name": "person", "obstacle": True}]

# output kind -> (model factory, classes)
KINDS: dict[str, tuple[Callable[[], nn.Module], list[Any]]] = {
    "logits": (lambda: TinySeg(3), THREE_CLASSES),
    "probabilities": (lambda: SoftmaxSeg(3), THREE_CLASSES),
    "labels": (lambda: LabelSeg(3), THREE_CLASSES),
    "sigmoid": (SigmoidSeg, TWO_CLASSES),
    "binary_logits": (lambda: TinySeg(1), TWO_CLASSES),
}


def make(factory: Callable[[], nn.Module], seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return factory().eval()


def description(classes: list[Any], output: str = "logits", width: int = WIDTH, height: int = HEIGHT,
                **input_keys: Any) -> dict[str, Any]:
    return {"input": {"width": width, "height": height, **input_keys}, "output": output,
            "classes": classes}


def write_yaml(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def export_torchscript(module: nn.Module, path: Path, script: bool = False) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit deprecation and tracer warnings
        exported = (torch.jit.script(module) if script
                    else torch.jit.trace(module, torch.zeros(1, 3, HEIGHT, WIDTH)))
        exported.save(str(path))
    return path


def export_onnx(module: nn.Module, path: Path, width: int = WIDTH, height: int = HEIGHT,
                dynamic: bool = False) -> Path:
    pytest.importorskip("onnx", reason="exporting a test ONNX model needs the onnx package (test-only, "
                        "no rosdep key: pip install onnx)")
    axes = {"input": {0: "batch", 2: "height", 3: "width"}} if dynamic else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # legacy (TorchScript-based) exporter deprecation
        # dynamo=False: the torch.export-based exporter needs onnxscript, absent here.
        torch.onnx.export(module, (torch.zeros(1, 3, height, width),), str(path), dynamo=False,
                          opset_version=17, input_names=["input"], dynamic_axes=axes)
    return path


def export(module: nn.Module, fmt: str, directory: Path, stem: str) -> Path:
    if fmt == "torchscript":
        return export_torchscript(module, directory / f"{stem}.pt")
    return export_onnx(module, directory / f"{stem}.onnx")


def sample(seed: int = 1) -> torch.Tensor:
    return torch.randn(1, 3, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(seed))


def run(runtime: object, batch: torch.Tensor) -> torch.Tensor:
    """A runtime's output for a torch batch, as a tensor (an array_io runtime takes numpy)."""
    if getattr(runtime, "array_io", False):
        return torch.from_numpy(runtime(batch.numpy()))  # type: ignore[operator]
    return runtime(batch)  # type: ignore[operator,no-any-return]


def reference(module: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return primary_output(module(batch))


# runtimes reproduce the exported module ---------------------------------------------------------

@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_runtime_output_equals_source_module(tmp_path: Path, fmt: str, kind: str) -> None:
    factory, classes = KINDS[kind]
    module = make(factory)
    path = export(module, fmt, tmp_path, f"tiny_{kind}")
    write_yaml(path.with_suffix(".yaml"), description(classes, kind))

    runtime = load_model(str(path))
    assert runtime.spec.output == kind
    batch = sample()
    if fmt == "onnx":  # numpy in and out on the CPU: no torch around an ONNX model
        assert runtime.device.type == "cpu" and runtime.array_io and runtime.dtype == np.float32
        got = torch.from_numpy(runtime(batch.numpy()))
    else:
        assert runtime.device == CPU and runtime.dtype == torch.float32
        got = runtime(batch)
    want = reference(module, batch)
    assert got.shape == want.shape == (1, 1 if kind in ("labels", "sigmoid", "binary_logits") else 3,
                                       HEIGHT // 2, WIDTH // 2)
    if kind == "labels":
        assert not got.dtype.is_floating_point
        assert torch.equal(got.long(), want.long())
    else:
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    runtime.close()


def test_torchscript_dict_output_takes_out(tmp_path: Path) -> None:
    module = make(lambda: DictSeg(3))
    path = export_torchscript(module, tmp_path / "dict.pt", script=True)
    write_yaml(tmp_path / "dict.yaml", description(THREE_CLASSES))
    runtime = load_model(str(path))
    assert isinstance(runtime, TorchScriptRuntime)
    batch = sample()
    torch.testing.assert_close(runtime(batch), module(batch)["out"].detach())


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_tuple_output_takes_first(tmp_path: Path, fmt: str) -> None:
    module = make(lambda: TupleSeg(3))
    path = export(module, fmt, tmp_path, "tuple")
    write_yaml(tmp_path / "tuple.yaml", description(THREE_CLASSES))
    runtime = load_model(str(path))
    batch = sample()
    torch.testing.assert_close(run(runtime, batch), module(batch)[0].detach(), rtol=1e-4, atol=1e-5)


def test_primary_output_rules() -> None:
    t = torch.zeros(1)
    assert primary_output({"out": t, "aux": torch.ones(1)}) is t
    assert primary_output({"logits": t}) is t
    assert primary_output([(t, 1)]) is t
    with pytest.raises(TypeError, match="no 'out'"):
        primary_output({"a": t, "b": t})
    with pytest.raises(TypeError):
        primary_output(None)


def test_onnx_dynamic_input_accepts_description_size(tmp_path: Path) -> None:
    module = make(lambda: TinySeg(3))
    path = export_onnx(module, tmp_path / "dyn.onnx", dynamic=True)
    write_yaml(tmp_path / "dyn.yaml", description(THREE_CLASSES, width=48, height=40))
    runtime = load_model(str(path))
    batch = torch.randn(2, 3, 40, 48)
    torch.testing.assert_close(run(runtime, batch), reference(module, batch), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("factory, output, channels", [
    (lambda: TinySeg(3), "logits", 3),
    (lambda: TupleSeg(3), "logits", 3),  # only the first of two graph outputs is bound
    (lambda: LabelSeg(3), "labels", 1),  # int64 output buffer
])
def test_onnx_pointer_binding_matches_plain_run(tmp_path: Path, factory: Callable[[], nn.Module],
                                                output: str, channels: int) -> None:
    """The CUDA path (io_binding by data_ptr into a torch-owned output) run on CPU memory: same
    code, same result, including the first call that learns the output shape."""
    module = make(factory)
    path = export_onnx(module, tmp_path / "bind.onnx")
    runtime = OnnxRuntime(path, spec_from_dict(description(THREE_CLASSES, output), "bind.yaml"), CPU,
                          array_io=False)
    assert runtime.provider == "CPUExecutionProvider"
    runtime._binding_device = "cpu"
    for seed in (1, 2, 3):
        batch = sample(seed)
        got, want = runtime(batch), reference(module, batch)
        assert got.dtype == want.dtype
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    assert runtime._output_shapes == {(1, 3, HEIGHT, WIDTH): (1, channels, HEIGHT // 2, WIDTH // 2)}


def test_execution_provider_choice() -> None:
    everything = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider",
                  "AzureExecutionProvider"]
    chosen = execution_providers(torch.device("cuda", 1), everything, fp16=True, trt_cache_dir="/cache")
    assert [name for name, _ in chosen] == everything[:3]
    trt, cuda, _ = (opts for _, opts in chosen)
    assert trt["device_id"] == 1 and trt["trt_fp16_enable"] is True
    assert trt["trt_engine_cache_path"] == "/cache"
    assert cuda == {"device_id": 1}
    no_trt = execution_providers(torch.device("cuda"), everything[1:], trt_cache_dir=None)
    assert [name for name, _ in no_trt] == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert no_trt[0][1]["device_id"] == 0
    cpu_build = execution_providers(torch.device("cuda"), ["CPUExecutionProvider"])
    assert cpu_build == [("CPUExecutionProvider", {})]
    assert execution_providers(CPU, everything) == [("CPUExecutionProvider", {})]


def test_close_frees_the_model(tmp_path: Path) -> None:
    path = export_torchscript(make(lambda: TinySeg(3)), tmp_path / "m.pt")
    write_yaml(tmp_path / "m.yaml", description(THREE_CLASSES))
    runtime = load_model(str(path))
    runtime.close()
    runtime.close()  # idempotent: node cleanup may run twice
    with pytest.raises(RuntimeError, match="closed"):
        runtime(sample())


def test_warm_up_returns_mean_time(tmp_path: Path) -> None:
    path = export_onnx(make(lambda: TinySeg(3)), tmp_path / "w.onnx")
    write_yaml(tmp_path / "w.yaml", description(THREE_CLASSES))
    runtime = load_model(str(path), validate=False)
    assert warm_up(runtime, 3) > 0.0
    assert warm_up(runtime, 1) == 0.0


# load errors ------------------------------------------------------------------------------------

def load_error(model: str, **kwargs: Any) -> str:
    with pytest.raises(ModelLoadError) as info:
        load_model(model, **kwargs)
    return str(info.value)


def test_missing_model_file(tmp_path: Path) -> None:
    message = load_error(str(tmp_path / "nothing.onnx"))
    assert "nothing.onnx" in message and "not found" in message


@pytest.mark.parametrize("suffix", [".pt", ".onnx"])
def test_random_bytes_are_refused(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"noise{suffix}"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    write_yaml(tmp_path / "noise.yaml", description(THREE_CLASSES))
    message = load_error(str(path))
    assert str(path) in message
    assert ("not a TorchScript file" in message) if suffix == ".pt" else ("ONNX Runtime cannot open" in message)


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_truncated_file_is_refused(tmp_path: Path, fmt: str) -> None:
    path = export(make(lambda: TinySeg(3)), fmt, tmp_path, "cut")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    write_yaml(tmp_path / "cut.yaml", description(THREE_CLASSES))
    assert str(path) in load_error(str(path))


def test_empty_file_and_state_dict_are_refused(tmp_path: Path) -> None:
    write_yaml(tmp_path / "empty.yaml", description(THREE_CLASSES))
    (tmp_path / "empty.pt").write_bytes(b"")
    assert "empty" in load_error(str(tmp_path / "empty.pt"))
    torch.save(TinySeg(3).state_dict(), tmp_path / "weights.pt")
    write_yaml(tmp_path / "weights.yaml", description(THREE_CLASSES))
    assert "torch.save checkpoint" in load_error(str(tmp_path / "weights.pt"))


def test_unknown_names_and_file_types(tmp_path: Path) -> None:
    assert "not a builtin model" in load_error("selfy")
    (tmp_path / "m.pth").write_bytes(b"x")
    assert "unsupported model file type '.pth'" in load_error(str(tmp_path / "m.pth"))
    (tmp_path / "dir.onnx").mkdir()
    assert "not a regular file" in load_error(str(tmp_path / "dir.onnx"))
    assert "no model given" in load_error("  ")


def test_missing_description(tmp_path: Path) -> None:
    path = export_onnx(make(lambda: TinySeg(3)), tmp_path / "lonely.onnx")
    message = load_error(str(path))
    assert "lonely.onnx" in message and "no model description" in message
    message = load_error(str(path), description=str(tmp_path / "elsewhere.yaml"))
    assert "elsewhere.yaml" in message and "not found" in message


def test_explicit_description_is_used(tmp_path: Path) -> None:
    path = export_onnx(make(lambda: TinySeg(3)), tmp_path / "m.onnx")
    other = write_yaml(tmp_path / "other.yaml", {"name": "custom", **description(THREE_CLASSES)})
    assert load_model(str(path), description=str(other)).spec.name == "custom"


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_channel_count_mismatch(tmp_path: Path, fmt: str) -> None:
    path = export(make(lambda: TinySeg(3)), fmt, tmp_path, "voc")
    write_yaml(tmp_path / "voc.yaml", description([f"class{i}" for i in range(21)]))
    message = load_error(str(path))
    assert "output has 3 channels but the description lists 21 classes" in message
    assert str(path) in message
    # validate=False trusts the description (for tools that check later themselves)
    assert load_model(str(path), validate=False).spec.classes.num_outputs == 21


def test_static_onnx_input_size_mismatch(tmp_path: Path) -> None:
    path = export_onnx(make(lambda: TinySeg(3)), tmp_path / "fixed.onnx", width=32, height=24)
    write_yaml(tmp_path / "fixed.yaml", description(THREE_CLASSES, width=64, height=48))
    message = load_error(str(path))
    assert "fixed at 32x24" in message and "64x48" in message


@pytest.mark.parametrize("factory, classes, output, expected", [
    (lambda: Biased(3, 5.0), THREE_CLASSES, "probabilities", "within [0, 1]"),
    (lambda: Biased(1, 5.0), TWO_CLASSES, "sigmoid", "binary_logits"),
    (lambda: TinySeg(3), THREE_CLASSES, "labels", "which is (N, 1, h, w) or (N, h, w) class ids"),
    (lambda: FloatLabels(3), THREE_CLASSES, "labels", "dtype float32"),
    (lambda: LabelSeg(3), THREE_CLASSES, "logits", "1 channels but the description lists 3 classes"),
    (lambda: Upsampling(3), THREE_CLASSES, "logits", "no larger than the input"),
])
def test_output_contradicting_description(tmp_path: Path, factory: Callable[[], nn.Module],
                                          classes: list[Any], output: str, expected: str) -> None:
    path = export_torchscript(make(factory), tmp_path / "m.pt")
    write_yaml(tmp_path / "m.yaml", description(classes, output))
    assert expected in load_error(str(path))


def test_check_output_probability_sum() -> None:
    spec = spec_from_dict(description(THREE_CLASSES, "probabilities"), "p.yaml")
    check_output(torch.full((1, 3, 4, 4), 1 / 3), spec, "p")
    with pytest.raises(ModelLoadError, match="sum to"):
        check_output(torch.full((1, 3, 4, 4), 0.9), spec, "p")
    with pytest.raises(ModelLoadError, match="NaN"):
        check_output(torch.full((1, 3, 4, 4), float("nan")), spec, "p")


def test_fp16_on_cpu_is_refused(tmp_path: Path) -> None:
    module = make(lambda: TinySeg(3))
    onnx_path = export_onnx(module, tmp_path / "m.onnx")
    pt_path = export_torchscript(module, tmp_path / "m.pt")
    write_yaml(tmp_path / "m.yaml", description(THREE_CLASSES))
    spec = load_description(tmp_path / "m.yaml")
    for model in (str(onnx_path), str(pt_path), "selfie"):
        assert "CUDA-only" in load_error(model, fp16=True)
    with pytest.raises(ModelLoadError, match="CUDA-only"):
        TorchScriptRuntime(pt_path, spec, CPU, fp16=True)
    with pytest.raises(ModelLoadError, match="CUDA-only"):
        OnnxRuntime(onnx_path, spec, CPU, fp16=True)
    with pytest.raises(ModelLoadError, match="CUDA-only"):
        TorchModuleRuntime(module, spec, CPU, fp16=True)


# devices ----------------------------------------------------------------------------------------

def test_resolve_device_without_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == CPU
    assert resolve_device("") == CPU
    assert resolve_device("CPU") == CPU
    for name in ("cuda", "cuda:0"):
        with pytest.raises(DeviceError, match="CUDA is not available"):
            resolve_device(name)
    with pytest.raises(DeviceError):
        resolve_device("gpu")
    with pytest.raises(DeviceError):
        load_model("selfie", device="cuda")


def test_resolve_device_with_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert resolve_device("cuda") == torch.device("cuda", 0)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(DeviceError, match="only 2"):
        resolve_device("cuda:2")
    with pytest.raises(DeviceError, match="a number"):
        resolve_device("cuda:x")


def test_auto_is_cpu_on_this_machine() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert resolve_device("auto") == CPU


# builtin ----------------------------------------------------------------------------------------

def test_builtin_names_and_spec() -> None:
    assert BUILTIN_MODELS == ("selfie", "mediapipe_selfie", "selfie_landscape", "drivable", "twinlitenet")
    spec = builtin_spec("mediapipe_selfie")
    assert spec.name == "selfie" and spec.input_size == (256, 256)
    assert (spec.output, spec.resize, spec.color_order) == ("sigmoid", "stretch", "rgb")
    assert spec.scale == pytest.approx(1 / 255) and spec.mean == (0, 0, 0) and spec.std == (1, 1, 1)
    assert spec.classes.names == ["background", "person"]
    assert spec.classes["person"].color == (220, 20, 60) and spec.classes["person"].obstacle
    assert spec.classes["background"].color == (0, 0, 0)
    assert spec.classes.model_name == "mediapipe_selfie_segmentation"
    assert builtin_spec("selfie_landscape").input_size == (256, 144)


def test_builtin_selfie_runs() -> None:
    runtime = load_model("selfie")
    output = runtime(torch.rand(1, 3, 256, 256))
    assert output.shape == (1, 1, 256, 256)
    assert float(output.min()) >= 0.0 and float(output.max()) <= 1.0
    landscape = load_model("selfie_landscape")
    assert landscape(torch.rand(1, 3, 144, 256)).shape == (1, 1, 144, 256)
    assert "own description" in load_error("selfie", description="x.yaml")


# description file -------------------------------------------------------------------------------

FULL = {
    "version": 1,
    "name": "deeplabv3_mobilenet_voc",
    "input": {"width": 520, "height": 480, "color_order": "bgr", "scale": 1.0, "mean": [1, 2, 3],
              "std": [4, 5, 6], "resize": "letterbox", "pad_value": 114},
    "output": "probabilities",
    "classes": ["background", {"name": "person", "color": [220, 20, 60], "obstacle": True},
                {"name": "wall", "id": 5, "color": [1, 2, 3]}],
}


def test_description_all_keys(tmp_path: Path) -> None:
    spec = load_description(write_yaml(tmp_path / "d.yaml", FULL))
    assert spec.name == "deeplabv3_mobilenet_voc"
    assert (spec.input_width, spec.input_height) == (520, 480)
    assert spec.color_order == "bgr" and spec.scale == 1.0
    assert spec.mean == (1.0, 2.0, 3.0) and spec.std == (4.0, 5.0, 6.0)
    assert spec.resize == "letterbox" and spec.pad_value == 114 and spec.output == "probabilities"
    assert spec.classes.names == ["background", "person", "wall"]
    assert spec.classes["wall"].id == 5 and spec.classes.num_outputs == 6
    assert spec.classes["person"].obstacle and not spec.classes["background"].obstacle
    assert spec.classes.model_name == "deeplabv3_mobilenet_voc"


def test_description_defaults(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "my_net.onnx.yaml",
                      {"input": {"width": 64, "height": 32}, "classes": ["a", "b"]})
    spec = load_description(path)
    assert spec.name == "my_net"
    assert spec.color_order == "rgb" and spec.scale == pytest.approx(1 / 255)
    assert spec.mean == (0, 0, 0) and spec.std == (1, 1, 1)
    assert spec.resize == "stretch" and spec.pad_value == 0 and spec.output == "logits"
    assert load_description(write_yaml(tmp_path / "plain.yml", {"input": {"width": 8, "height": 8},
                                                               "classes": ["a"]})).name == "plain"
    assert spec_from_dict({"input": {"width": 8, "height": 8}, "classes": ["a"], "output": "LOGITS"},
                          "x.yaml").output == "logits"


def test_description_scalar_mean_std() -> None:
    spec = spec_from_dict({"input": {"width": 8, "height": 8, "mean": 0.5, "std": 0.25}, "classes": ["a"]},
                          "x.yaml")
    assert spec.mean == (0.5, 0.5, 0.5) and spec.std == (0.25, 0.25, 0.25)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(data: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        target: Any = data
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        if value is _DELETE:
            del target[int(leaf) if leaf.isdigit() else leaf]
        else:
            target[int(leaf) if leaf.isdigit() else leaf] = value
    return apply


_DELETE = object()

BAD_DESCRIPTIONS = [
    ("modle", _set("modle", "x"), "'modle' is not a known key"),
    ("outputs", _set("outputs", "logits"), "did you mean 'output'?"),
    ("input.mean_values", _set("input.mean_values", [0, 0, 0]), "'input.mean_values' is not a known key"),
    ("classes[1].colour", _set("classes.1.colour", [1, 2, 3]), "'classes[1].colour' is not a known key"),
    ("classes[1].color 4 values", _set("classes.1.color", [1, 2, 3, 4]), "'classes[1].color'"),
    ("classes[1].color 300", _set("classes.1.color", [300, 0, 0]), "'classes[1].color'"),
    ("classes[1].color string", _set("classes.1.color", "red"), "'classes[1].color'"),
    ("classes[1].color float", _set("classes.1.color", [0.5, 0, 0]), "'classes[1].color'"),
    ("classes[1].obstacle", _set("classes.1.obstacle", "yes please"), "'classes[1].obstacle'"),
    ("classes[1].id", _set("classes.1.id", 255), "'classes[1].id'"),
    ("classes[1].name missing", _set("classes.1.name", _DELETE), "'classes[1].name' is missing"),
    ("classes[0] number", _set("classes.0", 7), "'classes[0]'"),
    ("classes[0] bool", _set("classes.0", False), "quote names"),
    ("classes missing", _set("classes", _DELETE), "'classes' is missing"),
    ("classes empty", _set("classes", []), "'classes' must be a non-empty list"),
    ("classes mapping", _set("classes", {"a": 1}), "'classes' must be a non-empty list"),
    ("classes duplicate", _set("classes", ["a", "a"]), "duplicate class name"),
    ("input missing", _set("input", _DELETE), "'input' is missing"),
    ("input list", _set("input", [520, 520]), "'input' must be a mapping"),
    ("width missing", _set("input.width", _DELETE), "'input.width' is missing"),
    ("width string", _set("input.width", "520"), "'input.width' must be a positive integer"),
    ("width float", _set("input.width", 520.5), "'input.width' must be a positive integer"),
    ("width bool", _set("input.width", True), "'input.width' must be a positive integer"),
    ("height zero", _set("input.height", 0), "'input.height' must be a positive integer"),
    ("scale string", _set("input.scale", "1/255"), "'input.scale' must be a number"),
    ("scale zero", _set("input.scale", 0), "'input.scale' must be positive"),
    ("mean two", _set("input.mean", [0.5, 0.5]), "'input.mean' must have 3 values"),
    ("mean text", _set("input.mean", "imagenet"), "'input.mean' must be a list of 3 numbers"),
    ("mean item", _set("input.mean", [0.5, "x", 0.5]), "'input.mean[1]' must be a number"),
    ("std zero", _set("input.std", [1, 0, 1]), "'input.std' values must be positive"),
    ("color_order", _set("input.color_order", "rgba"), "'input.color_order' must be one of"),
    ("resize", _set("input.resize", "crop"), "'input.resize' must be one of"),
    ("pad_value", _set("input.pad_value", 256), "'input.pad_value' must be 0..255"),
    ("pad_value float", _set("input.pad_value", 0.5), "'input.pad_value' must be an integer"),
    ("output", _set("output", "softmax"), "'output' must be one of"),
    ("name", _set("name", ""), "'name' must be a non-empty string"),
    ("sigmoid with 3 classes", _set("output", "sigmoid"), "single-channel 'sigmoid'"),
    ("version newer", _set("version", 2), "'version' is 2, newer than the description format this seg_perception "
                                          "supports (1)"),
    # A newer file's new keys: the version is named, not the first key this release does not know.
    ("version newer, new key", lambda d: (d.update(version=3, postprocess="crf")), "'version' is 3, newer"),
    ("version zero", _set("version", 0), "'version' must be a positive integer"),
    ("version text", _set("version", "1.0"), "'version' must be a positive integer"),
]


@pytest.mark.parametrize("mutate, expected", [case[1:] for case in BAD_DESCRIPTIONS],
                         ids=[case[0] for case in BAD_DESCRIPTIONS])
def test_description_errors(tmp_path: Path, mutate: Callable[[dict[str, Any]], None], expected: str) -> None:
    data = yaml.safe_load(yaml.safe_dump(FULL))
    mutate(data)
    path = write_yaml(tmp_path / "bad_model.yaml", data)
    with pytest.raises(ModelLoadError) as info:
        load_description(path)
    assert str(path) in str(info.value)
    assert expected in str(info.value)


@pytest.mark.parametrize("text, expected", [
    ("", "empty"),
    ("- a\n- b\n", "must be a mapping"),
    ("input: {width: 8, height: 8\n", "not valid YAML"),
    ("input: {width: 8, height: 8}\noutput: logits\noutput: labels\nclasses: [a]\n", "duplicate key 'output'"),
    ("input: {width: 8, height: 8}\nclasses: [background, no]\n", "'classes[1]'"),
])
def test_description_file_errors(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "raw.yaml"
    path.write_text(text)
    with pytest.raises(ModelLoadError) as info:
        load_description(path)
    assert "raw.yaml" in str(info.value) and expected in str(info.value)


def test_missing_description_file(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="description file not found"):
        load_description(tmp_path / "absent.yaml")


def test_find_description(tmp_path: Path) -> None:
    model = tmp_path / "net.onnx"
    model.write_bytes(b"")
    assert find_description(model, None) is None
    stem = write_yaml(tmp_path / "net.yaml", FULL)
    assert find_description(model, None) == stem
    full = write_yaml(tmp_path / "net.onnx.yaml", FULL)
    assert find_description(model, None) == full  # the more specific name wins
    assert find_description(model, str(tmp_path / "x.yaml")) == tmp_path / "x.yaml"
    assert find_description(model, "  ") == full


def test_shipped_voc_example_is_valid() -> None:
    path = Path(__file__).resolve().parents[2] / "config" / "models" / "deeplabv3_voc.example.yaml"
    spec = load_description(path)
    assert (spec.input_size, spec.output, spec.resize) == ((520, 520), "logits", "letterbox")
    assert len(spec.classes) == spec.classes.num_outputs == 21
    assert spec.classes.names[15] == "person" and spec.classes["person"].obstacle
    assert {"car", "bus", "bicycle", "motorbike", "dog"} <= set(spec.classes.obstacle_names)
    assert not spec.classes["background"].obstacle


def test_trt_cache_dir_follows_model_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from seg_perception.model.runtimes.onnx import default_trt_cache_dir
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    model = tmp_path / "net.onnx"
    model.write_bytes(b"first export")
    first = default_trt_cache_dir(model, fp16=False)
    assert first is not None and Path(first).is_dir() and Path(first).name.startswith("net-")
    assert default_trt_cache_dir(model, fp16=True) != first
    model.write_bytes(b"second export")
    assert default_trt_cache_dir(model, fp16=False) != first
