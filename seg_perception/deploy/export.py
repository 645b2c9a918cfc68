"""From a trained segmentation network to a model file + description the runtimes load as is.

Three steps, each replaceable on its own:

1. ``resolve_source``: a SOURCE string becomes an ``ExportSource``: the network as a module
   whose forward returns one score tensor, plus the description it needs (name, input size,
   normalization, output kind, classes). SOURCE is a Hugging Face model id or a local
   ``save_pretrained`` directory of a ``*ForSemanticSegmentation`` model (classes from
   ``id2label``, input from ``preprocessor_config.json``), or ``module:function`` /
   ``file.py:function`` returning ``(nn.Module, class names[, input settings])``.
2. a writer per format (``WRITERS``) turns it into files in an output folder. Another
   deployment format (a Triton model repository, say) is one more writer with the same
   signature.
3. ``check_export``: the written file loads through the project's own loader (which runs the
   description's output checks) and reproduces the eager network on one input.

Nothing from a checkpoint runs as code unless asked: ``trust_remote_code`` stays off unless
the caller sets it, and Hugging Face weights are read from safetensors unless pickled weights
are explicitly allowed (and then only through ``torch.load(weights_only=True)``).
"""
from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import re
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from ..model.labels import ClassMap
from ..model.base import ModelSpec
from ..model.builtin import builtin_module, builtin_spec, canonical_builtin
from ..model.description import FORMAT_VERSION, INPUT_KEYS, spec_from_dict
from ..model.runtimes.torch_module import primary_output
from ..wire.errors import one_line

DEFAULT_OPSET = 17
# Largest |exported - eager| accepted by the check, relative to the eager output's magnitude.
CHECK_TOLERANCE = 1e-3


class ExportError(RuntimeError):
    """A source that cannot be exported, or an export that does not reproduce its network."""


@dataclass
class ExportSource:
    """A network ready to be written: `module(batch)` returns the score tensor described by
    `description` (the YAML format of runtimes/description.py)."""

    name: str
    module: torch.nn.Module
    description: dict[str, Any]
    origin: str
    notes: list[str] = field(default_factory=list)
    """What the exporter decided on the user's behalf, to be shown to them."""

    @property
    def spec(self) -> ModelSpec:
        return spec_from_dict(self.description, self.origin, default_name=self.name)

    def example_input(self) -> torch.Tensor:
        spec = self.spec
        return torch.zeros(1, 3, spec.input_height, spec.input_width)


@dataclass
class ExportResult:
    model: Path
    description: Path
    source: ExportSource
    output_shape: tuple[int, ...]
    max_difference: float


# 1. sources ------------------------------------------------------------------------------------

def resolve_source(source: str, size: tuple[int, int] | None = None, name: str | None = None,
                   obstacles: Sequence[str] = (), trust_remote_code: bool = False,
                   allow_pickle: bool = False) -> ExportSource:
    """SOURCE -> ExportSource. `size` (width, height) overrides the source's input size;
    `obstacles` flags those classes for the obstacle cloud. Raises ExportError."""
    path = Path(source).expanduser()
    if canonical_builtin(source) is not None and not path.exists():
        result = builtin_source(source)
    elif path.is_dir():
        result = hugging_face_source(str(path), size, trust_remote_code, allow_pickle)
    elif ":" in source and not path.exists():
        result = callable_source(source, size)
    elif path.exists():
        raise ExportError(f"'{source}' is a file; give a checkpoint folder (save_pretrained), a Hugging Face "
                          "model id, or module:function / file.py:function")
    else:
        result = hugging_face_source(source, size, trust_remote_code, allow_pickle)
    if name is not None:
        result.name = _safe_name(name)
        result.description["name"] = result.name
    if obstacles:
        result.description["classes"] = _flag_obstacles(result.description["classes"], obstacles, result.origin)
    _ = result.spec  # validate the description now, with the source named in the error
    return result


def description_of(spec: ModelSpec) -> dict[str, Any]:
    """The description YAML (model/description.py) of `spec`, as a dict. Its name is the class
    map's model name (what LabelInfo carries), so the export labels masks as the original does."""
    return {"name": spec.classes.model_name or spec.name,
            "input": {"width": spec.input_width, "height": spec.input_height, "color_order": spec.color_order,
                      "scale": spec.scale, "mean": list(spec.mean), "std": list(spec.std), "resize": spec.resize,
                      "pad_value": spec.pad_value},
            "output": spec.output,
            "classes": [{"name": c.name, "id": c.id, "color": list(c.color), "obstacle": c.obstacle, "free": c.free}
                        for c in spec.classes.classes]}


def builtin_source(name: str) -> ExportSource:
    """A built-in model (selfie, selfie_landscape, drivable) with its own description."""
    spec = builtin_spec(name)
    module = builtin_module(name, torch.device("cpu")).eval()
    return ExportSource(spec.name, module, description_of(spec), f"built-in model '{name}'")


class _Logits(torch.nn.Module):
    """A Hugging Face segmentation model as image -> logits (N, C, h, w)."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.net(pixel_values=pixel_values).logits


class _ScoresOnly(torch.nn.Module):
    """Any segmentation module as image -> its one score tensor (torchvision's {'out', 'aux'}
    dicts and (scores, extras) tuples reduced as the runtimes do)."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return primary_output(self.net(image))


def hugging_face_source(source: str, size: tuple[int, int] | None, trust_remote_code: bool,
                        allow_pickle: bool) -> ExportSource:
    """A model id or a local `save_pretrained` folder of a *ForSemanticSegmentation model."""
    try:
        from transformers import AutoConfig, AutoModelForSemanticSegmentation
        from transformers.image_processing_base import ImageProcessingMixin
    except ImportError as exc:
        raise ExportError(f"exporting a Hugging Face checkpoint needs `transformers` ({exc}); "
                          "pip install transformers") from exc
    try:
        config = AutoConfig.from_pretrained(source, trust_remote_code=trust_remote_code)
    except Exception as exc:  # noqa: BLE001 - hub, file and parsing errors all mean "no model here"
        if "trust_remote_code" in str(exc):
            raise ExportError(f"'{source}' ships its own Python code, which runs only with --trust-remote-code "
                              "(read it first)") from exc
        raise ExportError(f"'{source}' is not a Hugging Face checkpoint folder or model id: {one_line(exc)}") from exc
    try:
        processor, _ = ImageProcessingMixin.get_image_processor_dict(source)
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"'{source}' has no readable preprocessor_config.json ({one_line(exc)}); it says "
                          "the input size and normalization: save the image processor beside the model "
                          "(processor.save_pretrained(folder))") from exc
    try:
        # use_safetensors=True refuses pickled weights; None prefers safetensors and falls back
        # to pytorch_model.bin, which transformers reads with torch.load(weights_only=True).
        net = AutoModelForSemanticSegmentation.from_pretrained(
            source, trust_remote_code=trust_remote_code, use_safetensors=None if allow_pickle else True)
    except ValueError as exc:
        text = one_line(exc)
        if "Unrecognized configuration class" in text:
            raise ExportError(f"'{source}' ({config.model_type}) is not a model transformers can load "
                              "for semantic segmentation (AutoModelForSemanticSegmentation)") from exc
        raise ExportError(f"cannot load the weights of '{source}': {text}") from exc
    except OSError as exc:
        hint = ""
        if "safetensors" in str(exc).lower():
            hint = (" (it has no model.safetensors; --allow-pickle-weights reads pytorch_model.bin "
                    "with torch.load(weights_only=True))")
        raise ExportError(f"cannot load the weights of '{source}': {one_line(exc)}{hint}") from exc

    name = _safe_name(Path(source.rstrip("/")).name)
    classes = _id2label_classes(config, source)
    notes: list[str] = []
    model_input = _input_from_processor(processor, size, source, notes)
    description = {"version": FORMAT_VERSION, "name": name, "input": model_input, "output": "logits",
                   "classes": classes}
    return ExportSource(name, _Logits(net.eval()).eval(), description, source, notes)


def _id2label_classes(config: Any, source: str) -> list[str]:
    labels = getattr(config, "id2label", None) or {}
    count = int(getattr(config, "num_labels", len(labels)))
    by_id = {int(k): str(v) for k, v in labels.items()}
    if sorted(by_id) != list(range(count)):
        raise ExportError(f"'{source}': config.id2label has ids {sorted(by_id)[:10]}... but num_labels is "
                          f"{count}; every output channel needs a name")
    return [by_id[i] for i in range(count)]


def _input_from_processor(processor: Mapping[str, Any], size: tuple[int, int] | None, source: str,
                          notes: list[str]) -> dict[str, Any]:
    """preprocessor_config.json -> the description's `input` mapping. The processors resize
    first, then rescale (x * rescale_factor) and normalize ((x - mean) / std) RGB images."""
    resize = "letterbox" if processor.get("keep_aspect_ratio") else "stretch"
    processor_size = _processor_size(processor.get("size"))
    if size is None:
        if processor_size is None:
            raise ExportError(f"'{source}': its preprocessor config gives no fixed input size "
                              f"(size: {processor.get('size')!r}); pass --size WxH")
        width, height, kind = processor_size
        if kind == "shortest_edge":
            resize = "letterbox"
            notes.append(f"the processor resizes the shorter side to {width}; the export is fixed at "
                         f"{width}x{height} with the aspect ratio kept (letterbox). Use --size to change it")
    else:
        width, height = size
    scale = float(processor.get("rescale_factor", 1.0 / 255.0)) if processor.get("do_rescale", True) else 1.0
    if processor.get("do_normalize", True):
        mean = [float(v) for v in _triple(processor.get("image_mean", (0.0, 0.0, 0.0)))]
        std = [float(v) for v in _triple(processor.get("image_std", (1.0, 1.0, 1.0)))]
    else:
        mean, std = [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]
    return {"width": int(width), "height": int(height), "color_order": "rgb", "scale": scale,
            "mean": mean, "std": std, "resize": resize}


def _processor_size(value: Any) -> tuple[int, int, str] | None:
    """(width, height, 'exact' | 'shortest_edge') of a processor's `size`, None if not fixed."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value, value, "exact"
    if isinstance(value, Mapping):
        if "height" in value and "width" in value:
            return int(value["width"]), int(value["height"]), "exact"
        if "shortest_edge" in value:
            edge = int(value["shortest_edge"])
            return edge, edge, "shortest_edge"
    return None


def _triple(value: Any) -> list[float]:
    return [float(value)] * 3 if isinstance(value, (int, float)) else [float(v) for v in value]


def callable_source(source: str, size: tuple[int, int] | None) -> ExportSource:
    """`module:function` or `path/to/file.py:function`; the function takes no arguments and
    returns (nn.Module, class names) or (nn.Module, class names, input settings), where class
    names may also be description class entries ({name, color, obstacle}) and input settings
    are the description's `input` keys (width, height, mean, std, ...)."""
    target, _, function_name = source.rpartition(":")
    if not target or not function_name.isidentifier():
        raise ExportError(f"'{source}': expected module:function or file.py:function")
    module = _import_target(target, source)
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ExportError(f"'{source}': {target} has no function '{function_name}'")
    try:
        returned = function()
    except Exception as exc:  # noqa: BLE001 - the user's code: report whatever it raised
        raise ExportError(f"'{source}' raised {type(exc).__name__}: {one_line(exc)}") from exc
    if not isinstance(returned, tuple) or len(returned) not in (2, 3):
        raise ExportError(f"'{source}' must return (nn.Module, class names) or (nn.Module, class names, "
                          f"input settings), got {type(returned).__name__}")
    net, classes, settings = returned[0], returned[1], (returned[2] if len(returned) == 3 else {})
    if not isinstance(net, torch.nn.Module):
        raise ExportError(f"'{source}' returned {type(net).__name__} first, not a torch.nn.Module")
    if isinstance(classes, (str, bytes)) or not isinstance(classes, Sequence) or not classes:
        raise ExportError(f"'{source}' must return a non-empty list of class names second, got {classes!r}")
    if not isinstance(settings, Mapping):
        raise ExportError(f"'{source}' returned {type(settings).__name__} third, not a mapping of input settings")
    unknown = sorted(set(settings) - set(INPUT_KEYS))
    if unknown:
        raise ExportError(f"'{source}': unknown input settings {unknown}; allowed: {list(INPUT_KEYS)}")
    model_input = dict(settings)
    if size is not None:
        model_input["width"], model_input["height"] = size
    if "width" not in model_input or "height" not in model_input:
        raise ExportError(f"'{source}' gives no input size: pass --size WxH or return width/height "
                          "in the input settings")
    name = _safe_name(function_name)
    description = {"version": FORMAT_VERSION, "name": name, "input": model_input, "output": "logits",
                   "classes": list(classes)}
    return ExportSource(name, _ScoresOnly(net.eval()).eval(), description, source)


def _import_target(target: str, source: str) -> Any:
    try:
        if target.endswith(".py"):
            path = Path(target).expanduser()
            if not path.is_file():
                raise ExportError(f"'{source}': file {path} not found")
            spec = importlib.util.spec_from_file_location(f"_export_source_{path.stem}", path)
            if spec is None or spec.loader is None:
                raise ExportError(f"'{source}': cannot import {path}")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
        return _import_module(target)
    except ExportError:
        raise
    except Exception as exc:  # noqa: BLE001 - import errors of the user's module
        raise ExportError(f"'{source}': importing {target} failed: {type(exc).__name__}: {one_line(exc)}") from exc


def _import_module(target: str) -> Any:
    """`target` as imported from sys.path, else (like `python -m`) from the current folder, which
    is searched for its top-level package alone: sys.path itself is left as it was."""
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as exc:
        top = target.split(".")[0]
        if exc.name != top:
            raise
        spec = importlib.machinery.PathFinder.find_spec(top, [str(Path.cwd())])
        if spec is None or spec.loader is None:
            raise
        module = importlib.util.module_from_spec(spec)
        sys.modules[top] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[top]
            raise
        return importlib.import_module(target)


def _flag_obstacles(classes: list[Any], obstacles: Sequence[str], origin: str) -> list[Any]:
    names = [entry if isinstance(entry, str) else str(entry.get("name")) for entry in classes]
    unknown = sorted(set(obstacles) - set(names))
    if unknown:
        raise ExportError(f"'{origin}': obstacle classes {unknown} are not among its classes {names}")
    flagged: list[Any] = []
    for entry, class_name in zip(classes, names):
        base: dict[str, Any] = {"name": entry} if isinstance(entry, str) else dict(entry)
        if class_name in obstacles:
            base["obstacle"] = True
        flagged.append(base if len(base) > 1 else entry)
    return flagged


def _safe_name(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._-")
    if not name:
        raise ExportError(f"cannot make a file name from '{text}'; pass --name")
    return name


# 2. writers ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ExportOptions:
    """Settings of the writers (each reads the ones it needs)."""

    opset: int = DEFAULT_OPSET
    """ONNX opset."""


def write_onnx(source: ExportSource, out_dir: Path, options: ExportOptions) -> Path:
    """<out_dir>/<name>.onnx with a static 1x3xHxW input named 'input' and one output."""
    path = out_dir / f"{source.name}.onnx"
    partial = path.with_name(path.name + ".partial")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about Python control flow fixed at this size
        # dynamo=False: the TorchScript-based exporter, which needs no onnxscript.
        torch.onnx.export(source.module, (source.example_input(),), str(partial), opset_version=options.opset,
                          input_names=["input"], output_names=["scores"], dynamo=False)
    partial.replace(path)
    return path


def write_torchscript(source: ExportSource, out_dir: Path, options: ExportOptions) -> Path:
    """<out_dir>/<name>.pt, traced at the description's input size."""
    path = out_dir / f"{source.name}.pt"
    partial = path.with_name(path.name + ".partial")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # torch.jit deprecation and tracer warnings
        # check_trace off: check_export compares the saved file with the eager network anyway.
        traced = torch.jit.trace(source.module, source.example_input(), check_trace=False)
        traced.save(str(partial))
    partial.replace(path)
    return path


Writer = Callable[[ExportSource, Path, ExportOptions], Path]
WRITERS: dict[str, Writer] = {"onnx": write_onnx, "torchscript": write_torchscript}
FORMATS: tuple[str, ...] = tuple(WRITERS)


def write_description(source: ExportSource, out_dir: Path) -> Path:
    """<out_dir>/<name>.yaml, found by the loader beside <name>.onnx / <name>.pt."""
    path = out_dir / f"{source.name}.yaml"
    header = (f"# Written by export_model from {source.origin}. Flag the classes your robot must avoid\n"
              "# with `obstacle: true` (they feed segmentation/obstacle_points); see docs/models.md.\n")
    path.write_text(header + yaml.dump(source.description, Dumper=_DescriptionDumper, sort_keys=False,
                                       allow_unicode=True, width=100))
    return path


class _DescriptionDumper(yaml.SafeDumper):
    """Block style, except number triples (`mean: [0.485, 0.456, 0.406]`) and class entries
    (`- {name: person, obstacle: true}`) on one line each, as the hand-written examples are."""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    flow = bool(data) and all(_is_number(v) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


def _represent_dict(dumper: yaml.SafeDumper, data: dict[Any, Any]) -> yaml.Node:
    flow = "name" in data and all(isinstance(v, (str, bool, int, float)) or
                                  (isinstance(v, list) and all(_is_number(x) for x in v)) for v in data.values())
    return dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=flow)


_DescriptionDumper.add_representer(list, _represent_list)
_DescriptionDumper.add_representer(dict, _represent_dict)


# 3. check --------------------------------------------------------------------------------------

def check_export(source: ExportSource, model_path: Path, seed: int = 0) -> tuple[tuple[int, ...], float]:
    """Load `model_path` with the project's loader (validating its output against the
    description) and run it on one random input; returns (output shape, max |difference|
    to the eager network). Raises ExportError when they disagree."""
    from ..model.base import ModelLoadError
    from ..model.loader import load_model

    try:
        runtime = load_model(str(model_path), device="cpu")
    except ModelLoadError as exc:
        raise ExportError(f"the export does not load: {exc}") from exc
    try:
        spec = runtime.spec
        generator = torch.Generator().manual_seed(seed)
        image = torch.rand(1, 3, spec.input_height, spec.input_width, generator=generator)
        batch = (image - torch.tensor(spec.mean).view(1, 3, 1, 1)) / torch.tensor(spec.std).view(1, 3, 1, 1)
        # An ONNX Runtime session on the CPU takes and returns numpy (array_io): no torch around it.
        array_io = runtime.array_io
        output = runtime(batch.numpy() if array_io else batch)
        exported = (torch.from_numpy(output) if array_io else output).float()
        with torch.inference_mode():
            eager = source.module(batch).float()
    finally:
        runtime.close()
    if exported.shape != eager.shape:
        raise ExportError(f"the export returns shape {list(exported.shape)}, the network {list(eager.shape)}")
    difference = float((exported - eager).abs().max())
    if difference > CHECK_TOLERANCE * max(1.0, float(eager.abs().max())):
        raise ExportError(f"the export differs from the network by up to {difference:.3g} on a test input")
    return tuple(exported.shape), difference


def export_model(source: ExportSource, out_dir: Path, fmt: str = "onnx",
                 options: ExportOptions | None = None) -> ExportResult:
    """Write `source` in `fmt` and its description to `out_dir`, then check the result."""
    if fmt not in WRITERS:
        raise ExportError(f"format '{fmt}' is not one of {list(FORMATS)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = WRITERS[fmt](source, out_dir, options or ExportOptions())
    description_path = write_description(source, out_dir)
    shape, difference = check_export(source, model_path)
    return ExportResult(model_path, description_path, source, shape, difference)


def class_names(source: ExportSource) -> list[str]:
    return ClassMap.from_config(source.description["classes"]).names

