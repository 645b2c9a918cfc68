"""export_model: a trained segmentation network -> a model file + description segmentation_node runs.

    export_model SOURCE --out DIR [--format onnx|torchscript] [--size WxH]

SOURCE is one of
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
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
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
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="allow a Hugging Face checkpoint to run its own Python code")
    parser.add_argument("--allow-pickle-weights", action="store_true",
                        help="read pytorch_model.bin (torch.load, weights only) when a checkpoint has "
                             "no safetensors")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """`argv` is sys.argv-like: argv[0] is the program name."""
    args = build_parser().parse_args(list(sys.argv if argv is None else argv)[1:])
    from ..deploy import export  # torch and friends: only after the arguments are valid

    def log(text: str) -> None:
        print(f"[{PROG}] {text}", flush=True)

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
    return 0


if __name__ == "__main__":
    sys.exit(main())
