"""TorchScript model files (torch.jit.script / torch.jit.trace exports)."""
from __future__ import annotations

import warnings
import zipfile
from pathlib import Path

import torch

from ...wire.errors import first_line
from ..base import ModelLoadError, ModelSpec, check_fp16
from .torch_module import TorchModuleRuntime


class TorchScriptRuntime(TorchModuleRuntime):
    """A TorchScript archive on one device; fp16 (CUDA only) converts its weights with .half()."""

    label = "PyTorch (TorchScript)"

    def __init__(self, path: str | Path, spec: ModelSpec, device: torch.device, fp16: bool = False,
                 cpu_threads: int = 0) -> None:
        self.path = Path(path)
        # Refuse before reading a possibly large file.
        check_fp16(fp16, device, str(self.path))
        super().__init__(load_torchscript(self.path, device), spec, device, fp16=fp16, source=str(self.path),
                         cpu_threads=cpu_threads)


def load_torchscript(path: Path, device: torch.device) -> torch.jit.ScriptModule:
    """torch.jit.load with errors that say what the file actually is."""
    source = str(path)
    _check_archive(path)
    try:
        with warnings.catch_warnings():
            # torch >= 2.9 marks torch.jit deprecated; TorchScript is still the one self-contained
            # format a user can export without our code, so the warning is only noise here.
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location=device)
    except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError, ValueError, pickle errors...
        raise ModelLoadError(source, f"torch.jit.load failed: {first_line(exc)}") from exc
    return module


def _check_archive(path: Path) -> None:
    """TorchScript files are zip archives holding the model's code. Checking that first turns
    torch's "failed finding central directory" into a sentence a user can act on."""
    source = str(path)
    try:
        if not zipfile.is_zipfile(path):
            raise ModelLoadError(source, "not a TorchScript file: it is not a zip archive, so it is "
                                         "truncated, corrupt, or another format")
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile) as exc:
        raise ModelLoadError(source, f"cannot read the file ({first_line(exc)})") from exc
    has_code = any("/code/" in name or name.startswith("code/") for name in names)
    has_constants = any(name.endswith("constants.pkl") for name in names)
    if not (has_code and has_constants):
        if any(name.endswith("data.pkl") for name in names):
            raise ModelLoadError(source, "this is a torch.save checkpoint (a state dict or pickled "
                                         "module), not TorchScript: export it with torch.jit.trace or "
                                         "torch.jit.script and .save() (see docs/models.md)")
        raise ModelLoadError(source, "not a TorchScript file: the zip archive holds no TorchScript code")

