#!/usr/bin/env python3
"""Convert MediaPipe Selfie Segmentation (.tflite) to state_dicts for seg_perception's port.

Reads the flatbuffer with the ``tflite`` parser package (no TensorFlow), checks that the graph
uses only the ops and options that ``seg_perception/models/selfie.py`` reproduces, pairs the
graph's weighted ops, in execution order, with the module's layers, and writes

    <out-dir>/selfie_segmentation.pt            (from selfie_segmentation.tflite, 256x256)
    <out-dir>/selfie_segmentation_landscape.pt  (from selfie_segmentation_landscape.tflite, 144x256)
    <out-dir>/LICENSE.mediapipe                 (the license the weights are distributed under)

Outputs are byte-for-byte reproducible. When ``ai_edge_litert`` is importable, each converted
model is also run against the TFLite reference on a few inputs.

    python tools/convert_mediapipe_selfie.py [--src-dir DIR] [--out-dir DIR] [--no-verify]
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import tflite
import torch
from torch import nn

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT_DIR = REPO_ROOT / "seg_perception" / "models"
OUTPUT_FILES = {"square": "selfie_segmentation.pt", "landscape": "selfie_segmentation_landscape.pt"}
LICENSE_OUT = "LICENSE.mediapipe"

_TRANSPOSE_CONV_OP = "Convolution2DTransposeBias"
# Ops that carry no weights and whose semantics the module hard-codes; anything else in the
# graph means the file is not the model selfie.py was written for.
_PLAIN_OPS = {
    tflite.BuiltinOperator.DEQUANTIZE,
    tflite.BuiltinOperator.HARD_SWISH,
    tflite.BuiltinOperator.RELU,
    tflite.BuiltinOperator.LOGISTIC,
    tflite.BuiltinOperator.ADD,
    tflite.BuiltinOperator.MUL,
    tflite.BuiltinOperator.AVERAGE_POOL_2D,
    tflite.BuiltinOperator.MEAN,
    tflite.BuiltinOperator.RESIZE_BILINEAR,
}
# TFLite's own enums: schema Padding (builtin ops) vs TfLitePadding (the custom op's raw struct).
_SCHEMA_SAME = tflite.Padding.SAME
_CUSTOM_PADDING_SAME = 1


def _load_module(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _selfie_module() -> ModuleType:
    # By path, so the converter runs from a source checkout without the package installed.
    return _load_module("_seg_perception_selfie", REPO_ROOT / "seg_perception" / "models" / "selfie.py")


@dataclass
class WeightedOp:
    """One weighted TFLite op, weights already in PyTorch layout."""

    kind: str  # "conv", "depthwise" or "transpose"
    name: str  # output tensor name, for error messages
    weight: np.ndarray
    bias: np.ndarray
    stride: tuple[int, int]
    same_padding: bool


class TFLiteGraph:
    """Just enough of a TFLite flatbuffer reader for this model."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.model = tflite.Model.GetRootAsModel(path.read_bytes(), 0)
        if self.model.SubgraphsLength() != 1:
            raise ValueError(f"{path}: expected one subgraph")
        self.graph = self.model.Subgraphs(0)
        self._producer: dict[int, tflite.Operator] = {}
        for op in self.ops():
            for t in op.OutputsAsNumpy():
                self._producer[int(t)] = op

    def ops(self) -> list[tflite.Operator]:
        return [self.graph.Operators(i) for i in range(self.graph.OperatorsLength())]

    def opcode(self, op: tflite.Operator) -> tuple[int, str]:
        code = self.model.OperatorCodes(op.OpcodeIndex())
        # Newer files keep codes > 127 in BuiltinCode only; older ones only in the deprecated
        # byte. The larger of the two is the real one.
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        custom = code.CustomCode().decode() if builtin == tflite.BuiltinOperator.CUSTOM else ""
        return builtin, custom

    def tensor_name(self, index: int) -> str:
        return self.graph.Tensors(index).Name().decode()

    def shape(self, index: int) -> tuple[int, ...]:
        return tuple(int(d) for d in self.graph.Tensors(index).ShapeAsNumpy())

    def constant(self, index: int) -> np.ndarray:
        """A constant tensor as float32, looking through fp16 DEQUANTIZE ops."""
        op = self._producer.get(index)
        if op is not None:
            if self.opcode(op)[0] != tflite.BuiltinOperator.DEQUANTIZE:
                raise ValueError(f"{self.tensor_name(index)} is computed, not a constant")
            index = int(op.InputsAsNumpy()[0])
        tensor = self.graph.Tensors(index)
        dtypes = {tflite.TensorType.FLOAT16: "<f2", tflite.TensorType.FLOAT32: "<f4", tflite.TensorType.INT32: "<i4"}
        if tensor.Type() not in dtypes:
            raise ValueError(f"{tensor.Name().decode()}: unsupported tensor type {tensor.Type()}")
        raw = self.model.Buffers(tensor.Buffer()).DataAsNumpy()
        data = np.frombuffer(raw.tobytes(), dtype=dtypes[tensor.Type()]).reshape(self.shape(index))
        return data.astype(np.float32) if data.dtype.kind == "f" else data

    def _options(self, op: tflite.Operator, cls: type) -> object:
        table = op.BuiltinOptions()
        options = cls()
        options.Init(table.Bytes, table.Pos)
        return options

    def weighted_ops(self) -> list[WeightedOp]:
        """Conv-like ops in execution order, after checking every op is one selfie.py models."""
        found: list[WeightedOp] = []
        for op in self.ops():
            code, custom = self.opcode(op)
            ins = [int(i) for i in op.InputsAsNumpy()]
            out = self.tensor_name(int(op.OutputsAsNumpy()[0]))
            if code == tflite.BuiltinOperator.CONV_2D:
                o = self._options(op, tflite.Conv2DOptions)
                self._check_plain_conv(o, out)
                # TFLite conv kernels are OHWI; torch wants OIHW.
                weight = self.constant(ins[1]).transpose(0, 3, 1, 2)
                found.append(WeightedOp("conv", out, weight, self.constant(ins[2]),
                                        (o.StrideH(), o.StrideW()), o.Padding() == _SCHEMA_SAME))
            elif code == tflite.BuiltinOperator.DEPTHWISE_CONV_2D:
                o = self._options(op, tflite.DepthwiseConv2DOptions)
                self._check_plain_conv(o, out)
                if o.DepthMultiplier() != 1:
                    raise ValueError(f"{out}: depth multiplier {o.DepthMultiplier()}")
                # Depthwise kernels are 1 x H x W x (C*M); with M == 1 that is C x 1 x H x W.
                weight = self.constant(ins[1]).transpose(3, 0, 1, 2)
                found.append(WeightedOp("depthwise", out, weight, self.constant(ins[2]),
                                        (o.StrideH(), o.StrideW()), o.Padding() == _SCHEMA_SAME))
            elif code == tflite.BuiltinOperator.CUSTOM and custom == _TRANSPOSE_CONV_OP:
                # MediaPipe's op reads its options as a raw TfLiteTransposeConvParams:
                # int32 padding (TfLitePadding), stride_width, stride_height.
                padding, stride_w, stride_h = np.frombuffer(
                    op.CustomOptionsAsNumpy().tobytes()[:12], dtype="<i4"
                ).tolist()
                # Kernel is O x H x W x I like TRANSPOSE_CONV; torch's ConvTranspose2d wants
                # I x O x H x W. Taps are not flipped (checked against the interpreter).
                weight = self.constant(ins[1]).transpose(3, 0, 1, 2)
                found.append(WeightedOp("transpose", out, weight, self.constant(ins[2]),
                                        (stride_h, stride_w), padding == _CUSTOM_PADDING_SAME))
            elif code in _PLAIN_OPS:
                self._check_plain_op(op, code, ins, out)
            else:
                raise ValueError(f"{self.path.name}: op {code} {custom!r} ({out}) is not modelled")
        return found

    @staticmethod
    def _check_plain_conv(o: tflite.Conv2DOptions | tflite.DepthwiseConv2DOptions, out: str) -> None:
        if o.FusedActivationFunction() != tflite.ActivationFunctionType.NONE:
            raise ValueError(f"{out}: fused activation {o.FusedActivationFunction()}")
        if (o.DilationHFactor(), o.DilationWFactor()) != (1, 1):
            raise ValueError(f"{out}: dilated convolution")

    def _check_plain_op(self, op: tflite.Operator, code: int, ins: list[int], out: str) -> None:
        if code in (tflite.BuiltinOperator.ADD, tflite.BuiltinOperator.MUL):
            cls = tflite.AddOptions if code == tflite.BuiltinOperator.ADD else tflite.MulOptions
            if self._options(op, cls).FusedActivationFunction() != tflite.ActivationFunctionType.NONE:
                raise ValueError(f"{out}: fused activation")
        elif code == tflite.BuiltinOperator.AVERAGE_POOL_2D:
            # selfie.py uses a global mean; a window smaller than the map would be a real pool.
            o = self._options(op, tflite.Pool2DOptions)
            _, h, w, _ = self.shape(ins[0])
            if (o.FilterHeight(), o.FilterWidth()) != (h, w) or o.FusedActivationFunction() != 0:
                raise ValueError(f"{out}: average pool is not a global mean")
        elif code == tflite.BuiltinOperator.MEAN:
            if sorted(self.constant(ins[1]).tolist()) != [1, 2]:
                raise ValueError(f"{out}: mean is not over height and width")
        elif code == tflite.BuiltinOperator.RESIZE_BILINEAR:
            o = self._options(op, tflite.ResizeBilinearOptions)
            if o.AlignCorners() or not o.HalfPixelCenters():
                raise ValueError(f"{out}: resize is not align_corners=False, half_pixel_centers=True")
            _, h, w, _ = self.shape(ins[0])
            if self.constant(ins[1]).tolist() != [2 * h, 2 * w]:
                raise ValueError(f"{out}: resize is not a 2x upsample")


def _torch_layers(model: nn.Module) -> list[tuple[str, nn.Conv2d | nn.ConvTranspose2d]]:
    return [(name, m) for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]


def convert(tflite_path: Path) -> dict[str, torch.Tensor]:
    """The state_dict of ``SelfieSegmentation`` holding the weights of ``tflite_path``."""
    selfie = _selfie_module()
    model = selfie.SelfieSegmentation()
    ops = TFLiteGraph(tflite_path).weighted_ops()
    layers = _torch_layers(model)
    if len(ops) != len(layers):
        raise ValueError(f"{tflite_path.name}: {len(ops)} weighted ops, module has {len(layers)} layers")
    state: dict[str, torch.Tensor] = {}
    for op, (name, layer) in zip(ops, layers):
        if isinstance(layer, nn.ConvTranspose2d):
            kind = "transpose"
        else:
            kind = "depthwise" if layer.groups > 1 and layer.groups == layer.in_channels else "conv"
        problems = []
        if kind != op.kind:
            problems.append(f"kind {op.kind} vs {kind}")
        if tuple(layer.weight.shape) != op.weight.shape:
            problems.append(f"weight {op.weight.shape} vs {tuple(layer.weight.shape)}")
        if tuple(layer.stride) != op.stride:
            problems.append(f"stride {op.stride} vs {tuple(layer.stride)}")
        if layer.kernel_size != (1, 1) and not op.same_padding:
            problems.append("VALID padding where the module pads SAME")
        if problems:
            raise ValueError(f"{tflite_path.name}: {op.name} -> {name}: " + "; ".join(problems))
        state[f"{name}.weight"] = torch.from_numpy(np.ascontiguousarray(op.weight))
        state[f"{name}.bias"] = torch.from_numpy(np.ascontiguousarray(op.bias))
    model.load_state_dict(state, strict=True)  # also proves every parameter got a value
    return {key: state[key] for key in sorted(state)}


def save_state_dict(state: dict[str, torch.Tensor], path: Path) -> None:
    # Serialize to memory first so a failed run never leaves a half-written file behind; the
    # bytes only depend on the tensors, the key order and the file name (torch.save records no
    # time), which keeps reruns identical.
    buffer = io.BytesIO()
    torch.save({k: v.clone().contiguous() for k, v in state.items()}, buffer)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_bytes(buffer.getvalue())
    tmp.replace(path)


def _verification_images(height: int, width: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    # Noise alone drives the model to "no person" everywhere, where a wrong port could hide in
    # saturated sigmoids; a real portrait exercises the whole probability range.
    images = [rng.random((height, width, 3), dtype=np.float32)]
    coarse = rng.random((height // 16, width // 16, 3), dtype=np.float32)
    images.append(np.clip(cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC), 0, 1))
    if importlib.util.find_spec("skimage") is not None:
        import skimage.data

        portrait = cv2.resize(skimage.data.astronaut(), (width, height), interpolation=cv2.INTER_LINEAR)
        images.append(portrait.astype(np.float32) / 255.0)
    return images


def verify_against_tflite(tflite_path: Path, state: dict[str, torch.Tensor]) -> tuple[float, float]:
    """Max abs difference between the port and the TFLite interpreter on a few inputs, and the
    fraction of compared pixels whose probability is not saturated (how telling the test was)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(tflite_path))
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    _, h, w, _ = (int(d) for d in inp["shape"])
    model = _selfie_module().SelfieSegmentation()
    model.load_state_dict(state)
    model.eval()
    worst = 0.0
    informative = []
    for image in _verification_images(h, w):
        interpreter.set_tensor(inp["index"], image[None].astype(np.float32))
        interpreter.invoke()
        reference = interpreter.get_tensor(out["index"])[0, :, :, 0]
        with torch.inference_mode():
            ported = model(torch.from_numpy(image).permute(2, 0, 1)[None])[0, 0].numpy()
        worst = max(worst, float(np.abs(ported - reference).max()))
        informative.append(float(np.mean((reference > 0.01) & (reference < 0.99))))
    return worst, float(np.mean(informative))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src-dir", type=Path, default=None,
                        help="directory with the two .tflite files and LICENSE "
                             "(default: fetch them with tools/fetch_mediapipe_selfie.py)")
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR,
                        help=f"where to write the .pt files (default: {DEFAULT_OUT_DIR})")
    parser.add_argument("--no-verify", action="store_true",
                        help="skip the comparison with the TFLite interpreter")
    parser.add_argument("--tolerance", type=float, default=1e-3,
                        help="max abs probability difference accepted by the verification")
    args = parser.parse_args(argv)

    fetcher = _load_module("_fetch_mediapipe_selfie", Path(__file__).with_name("fetch_mediapipe_selfie.py"))
    if args.src_dir is None:
        sources = fetcher.fetch()
    else:
        sources = {variant: args.src_dir / name for variant, (name, _) in fetcher.MODEL_FILES.items()}
        sources["license"] = args.src_dir / fetcher.LICENSE_FILE
        for variant, (name, sha) in fetcher.MODEL_FILES.items():
            actual = fetcher.sha256_of(sources[variant])
            if actual != sha:
                # Still convertible, but the NOTICE would no longer describe the weights.
                print(f"warning: {name} sha256 {actual} differs from the recorded {sha}", file=sys.stderr)

    verify = not args.no_verify and importlib.util.find_spec("ai_edge_litert") is not None
    if not args.no_verify and not verify:
        print("ai_edge_litert not installed: skipping the comparison with TFLite", file=sys.stderr)
    for variant, out_name in OUTPUT_FILES.items():
        state = convert(sources[variant])
        if verify:
            diff, informative = verify_against_tflite(sources[variant], state)
            print(f"{variant}: max abs difference to TFLite {diff:.2e} "
                  f"({informative:.1%} of pixels between 0.01 and 0.99)")
            if diff > args.tolerance:
                raise SystemExit(f"{variant}: port differs from TFLite by {diff} > {args.tolerance}")
        save_state_dict(state, args.out_dir / out_name)
        print(f"wrote {args.out_dir / out_name} ({sum(t.numel() for t in state.values())} parameters)")
    shutil.copyfile(sources["license"], args.out_dir / LICENSE_OUT)
    print(f"wrote {args.out_dir / LICENSE_OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
