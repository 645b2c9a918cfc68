"""export_model: a trained segmentation network -> a model file + description segmentation_node runs.

    export_model SOURCE --out DIR [--format onnx|torchscript] [--size WxH]
    export_model SOURCE --out DIR --int8 --calibration IMAGES [--min-iou 0.97] [--min-speedup 1]

SOURCE is one of
  a built-in model name (selfie, selfie_landscape, drivable);
  with --int8, an ONNX file with its description beside it (quantized as is);
  a Hugging Face model id (nvidia/segformer-b0-finetuned-cityscapes-1024-1024) or a local
    folder written by save_pretrained, of a *ForSemanticSegmentation model (SegFormer, UperNet,
    DPT, BEiT, MobileViT, ...): class names from config.id2label, input size and normalization
    from preprocessor_config.json;
  module:function or path/to/file.py:function: a function without arguments returning
    (nn.Module, class names) or (nn.Module, class names, input settings) where the input
    settings are description `input` keys (width, height, mean, std, scale, resize, ...).

Writes DIR/<name>.onnx (or DIR/<name>.pt) and DIR/<name>.yaml, its description, then loads the
export through the same loader as the node and checks it reproduces the network on one input.
`segmentation_node --ros-args -p model:=DIR/<name>.onnx` and `segment_offline ... --model
DIR/<name>.onnx` use it as is. Checkpoint code runs only with --trust-remote-code; Hugging Face
weights are read from safetensors only, unless --allow-pickle-weights.

--int8 also quantizes the ONNX model to int8 with NNCF, calibrated on the images in IMAGES
(frames of the robot's own camera), and writes DIR/<name>_int8.xml/.bin/.yaml (OpenVINO IR;
runs with runtime auto or openvino) only if, on those images, every class's IoU against the
fp32 masks is >= --min-iou (classes on under --min-class-share of the pixels are
reported, not judged) and the int8 forward is --min-speedup times faster than the fastest
fp32 runtime here; otherwise it says which check failed and by how much, writes no int8 model
and exits 2. Needs requirements-openvino.txt.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ..engine.geometry import parse_output_size

PROG = "export_model"


def _size(text: str) -> tuple[int, int]:
    try:
        value = parse_output_size(text)
    except ValueError:
        value = "invalid"
    if isinstance(value, str):
        raise argparse.ArgumentTypeError(f"'{text}' is not WIDTHxHEIGHT (e.g. 512x512)")
    return value


def build_parser() -> argparse.ArgumentParser:
    # The format list is static here so that --help does not import torch.
    parser = argparse.ArgumentParser(prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     description=__doc__.split("\n\n", 1)[0] if __doc__ else None,
                                     epilog=__doc__.split("\n\n", 1)[1] if __doc__ else None)
    parser.add_argument("source", help="Hugging Face model id, save_pretrained folder, module:function "
                                       "or file.py:function")
    parser.add_argument("--out", required=True, type=Path, help="output folder (created)")
    parser.add_argument("--format", default="onnx", choices=("onnx", "torchscript"),
                        help="onnx (ONNX Runtime, TensorRT) or torchscript (default: onnx)")
    parser.add_argument("--size", type=_size, default=None, metavar="WxH",
                        help="network input size; default: the checkpoint's preprocessor size")
    parser.add_argument("--name", default=None, help="file and model name (default: from the source)")
    parser.add_argument("--obstacle", action="append", default=[], metavar="CLASS",
                        help="flag CLASS as an obstacle (repeatable); editable later in the YAML")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default: 17)")
    parser.add_argument("--int8", action="store_true",
                        help="also write an int8 OpenVINO model, if it passes the accuracy and speed gate")
    parser.add_argument("--calibration", type=Path, default=None, metavar="IMAGES",
                        help="--int8: folder of images to calibrate and judge on")
    parser.add_argument("--min-iou", type=float, default=0.97,
                        help="--int8: lowest IoU per class of int8 masks vs fp32 masks (default 0.97)")
    parser.add_argument("--min-speedup", type=float, default=1.0,
                        help="--int8: how many times faster than fp32 int8 must be (default 1; 0 = no check)")
    parser.add_argument("--min-class-share", type=float, default=0.005,
                        help="--int8: classes on fewer of the fp32 mask's pixels are reported, not judged "
                             "(default 0.005)")
    parser.add_argument("--threads", type=int, default=0,
                        help="--int8: CPU threads of the timed forwards (default 0: one per core)")
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="allow a Hugging Face checkpoint to run its own Python code")
    parser.add_argument("--allow-pickle-weights", action="store_true",
                        help="read pytorch_model.bin (torch.load, weights only) when a checkpoint has "
                             "no safetensors")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """`argv` is sys.argv-like: argv[0] is the program name."""
    parser = build_parser()
    args = parser.parse_args(list(sys.argv if argv is None else argv)[1:])
    if args.int8 and args.calibration is None:
        parser.error("--int8 needs --calibration IMAGES (a folder of the robot's own frames)")
    if args.int8 and args.format != "onnx":
        parser.error("--int8 quantizes the ONNX export; leave --format onnx")

    def log(text: str) -> None:
        print(f"[{PROG}] {text}", flush=True)

    given = Path(args.source).expanduser()
    if args.int8 and given.suffix.lower() == ".onnx" and given.is_file():
        return _int8(args, given, log)  # an existing export: nothing to re-export, no torch
    from ..deploy import export  # torch and friends: only after the arguments are valid

    try:
        source = export.resolve_source(args.source, size=args.size, name=args.name, obstacles=args.obstacle,
                                       trust_remote_code=args.trust_remote_code,
                                       allow_pickle=args.allow_pickle_weights)
        spec = source.spec
        log(f"{source.origin}: {len(spec.classes)} classes, input {spec.input_width}x{spec.input_height} "
            f"({spec.resize}), scale {spec.scale:.6g}, mean {list(spec.mean)}, std {list(spec.std)}")
        for note in source.notes:
            log(f"note: {note}")
        result = export.export_model(source, args.out, args.format, export.ExportOptions(opset=args.opset))
    except export.ExportError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr, flush=True)
        return 1
    log(f"wrote {result.model} and {result.description}")
    log(f"checked: loads with the description, output {list(result.output_shape)}, max difference to the "
        f"network {result.max_difference:.2e}")
    log(f"classes: {', '.join(export.class_names(result.source))}")
    from . import command

    log(f"run it: {command('segmentation_node')} --ros-args -p model:={result.model}")
    return _int8(args, result.model, log) if args.int8 else 0


def _int8(args: argparse.Namespace, onnx_path: Path, log: Callable[[str], None]) -> int:
    from ..deploy.quantize import QuantizeError, quantize_int8

    try:
        result = quantize_int8(onnx_path, args.calibration, args.out, min_iou=args.min_iou,
                               min_speedup=args.min_speedup, min_share=args.min_class_share,
                               cpu_threads=args.threads, log=log)
    except QuantizeError as exc:
        print(f"{PROG}: int8: {exc}", file=sys.stderr, flush=True)
        return 2
    from . import command

    log(f"int8 passed the gate: wrote {result.model} (+ .bin) and {result.description}")
    log(f"run it: {command('segmentation_node')} --ros-args -p model:={result.model}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
