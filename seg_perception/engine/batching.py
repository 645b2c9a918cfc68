"""One forward for frames from several cameras: N x 3 x H x W through a runtime, falling back to
one call per frame for models whose batch axis is fixed.

Whether a model batches is learned on its first multi-frame call (an exception, or an output
whose batch size is not N, means fixed) and remembered, so a fixed-batch model pays for the
failed try once. A RuntimeUnavailable (a remote server down) says nothing about the model and
is passed on without changing what was learned.
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ..model.base import Runtime, RuntimeUnavailable
from ..wire.errors import one_line

_LOG = logging.getLogger(__name__)


class BatchRunner:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.batches: bool | None = None
        """None until a batch of more than one frame was tried."""

    def __call__(self, batch: Any) -> Any:
        count = int(batch.shape[0])
        if count == 1 or self.batches is False:
            return self._one_by_one(batch) if count > 1 else self.runtime(batch)
        try:
            output = self.runtime(batch)
        except RuntimeUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - each runtime refuses a fixed batch in its own way
            if self.batches:
                raise  # it batched before: this is a real failure, not a fixed batch axis
            self._learned_fixed(f"{type(exc).__name__}: {exc}")
            return self._one_by_one(batch)
        if int(output.shape[0]) != count:
            if self.batches:
                raise RuntimeError(f"the model returned {output.shape[0]} outputs for a batch of {count}")
            self._learned_fixed(f"{output.shape[0]} outputs for a batch of {count}")
            return self._one_by_one(batch)
        self.batches = True
        return output

    def _learned_fixed(self, why: str) -> None:
        self.batches = False
        _LOG.info("model '%s' does not take batches (%s): running cameras' frames one by one",
                  self.runtime.spec.name, one_line(why, 200))

    def _one_by_one(self, batch: Any) -> Any:
        outputs = [self.runtime(batch[i:i + 1]) for i in range(int(batch.shape[0]))]
        if isinstance(outputs[0], np.ndarray):
            return np.concatenate(outputs)
        import torch

        return torch.cat(outputs)
