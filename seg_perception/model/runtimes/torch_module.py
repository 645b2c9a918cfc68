"""The nn.Module runtime (eager or TorchScript) shared by the builtin models and TorchScript files."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..base import ModelSpec, RuntimeHealth, check_fp16, cpu_thread_count, flush_denormals


class TorchModuleRuntime:
    """Runs an nn.Module (eager or TorchScript) on one device, optionally in fp16 on CUDA.

    On the CPU, torch's intra-op pool of the thread that runs a forward gets `cpu_threads`
    (0 = one per core) just before that forward: set where the model runs, never as a side
    effect of loading it or of resolving a device."""

    array_io: bool = False
    label = "PyTorch"

    def __init__(self, module: torch.nn.Module, spec: ModelSpec, device: torch.device,
                 fp16: bool = False, source: str = "", cpu_threads: int = 0) -> None:
        check_fp16(fp16, device, source or spec.name)
        self.spec = spec
        self.device = device
        self.dtype = torch.float16 if fp16 else torch.float32
        self.source = source or spec.name
        self.cpu_threads: int | None = cpu_thread_count(cpu_threads) if device.type == "cpu" else None
        module = module.to(device)
        if fp16:
            module = module.half()
        self._module: torch.nn.Module | None = module.eval()

    @property
    def module(self) -> torch.nn.Module | None:
        """The module itself (None once closed), e.g. to trace it for a serving backend."""
        return self._module

    def __call__(self, batch: torch.Tensor | np.ndarray) -> torch.Tensor:
        if self._module is None:
            raise RuntimeError(f"model '{self.source}' was closed")
        if isinstance(batch, np.ndarray):
            batch = torch.from_numpy(batch)  # the CPU preprocessor's array, wrapped without a copy
        # No-op when the caller already prepared the batch as asked (device, dtype).
        batch = batch.to(device=self.device, dtype=self.dtype)
        if self.cpu_threads is not None and torch.get_num_threads() != self.cpu_threads:
            torch.set_num_threads(self.cpu_threads)
        # Per thread, so on whichever thread runs inference (the node's worker, offline, bench).
        with flush_denormals(), torch.inference_mode():
            return primary_output(self._module(batch))

    def health(self) -> RuntimeHealth | None:
        return None

    def close(self) -> None:
        self._module = None
        if self.device.type == "cuda":
            # Hand the cached blocks back so another process (or the next model) can use them.
            torch.cuda.empty_cache()


def primary_output(output: Any) -> torch.Tensor:
    """The segmentation tensor of a forward's result: torchvision models return {'out', 'aux'},
    HuggingFace-style and multi-head models return tuples whose first element is the map."""
    while not isinstance(output, torch.Tensor):
        if isinstance(output, dict):
            if "out" in output:
                output = output["out"]
            elif len(output) == 1:
                output = next(iter(output.values()))
            else:
                raise TypeError(f"the model returned a dict with keys {sorted(output)} and no 'out' key")
        elif isinstance(output, (tuple, list)) and output:
            output = output[0]
        else:
            raise TypeError(f"the model returned {type(output).__name__}, not a tensor")
    return output
