"""PyTorch eager runner: the baseline every speed and accuracy figure is compared against."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cpgait.errors import CpgaitError
from cpgait.runtime.backends.cuda import cuda_unavailable
from cpgait.runtime.backends.registry import Backend, module_missing
from cpgait.runtime.backends.runner import Runner
from cpgait.runtime.core.contract import ModelContract

if TYPE_CHECKING:
    from torch import nn


class TorchRunner(Runner):
    """A checkpoint (or an in-memory model with its contract) run eagerly under `torch.inference_mode`."""

    name = "torch"

    def __init__(
        self,
        model: str | Path | nn.Module,
        device: str = "cpu",
        threads: int | None = None,
        contract: ModelContract | None = None,
    ) -> None:
        super().__init__()
        if device not in ("cpu", "cuda"):
            raise CpgaitError(f"device {device!r}; expected 'cpu' or 'cuda'")
        if not isinstance(model, (str, Path)) and contract is None:
            raise CpgaitError("an in-memory model needs its contract (TorchRunner(model, contract=...))")
        self.source = model
        self.device = device
        self.threads = threads
        self.contract = contract
        self.name = "torch" if device == "cpu" else "torch-cuda"

    def _activate(self) -> None:
        import torch

        if self.device == "cuda" and not torch.cuda.is_available():
            raise CpgaitError("backend torch-cuda: this torch has no CUDA device")
        if self.threads:
            torch.set_num_threads(self.threads)
        if isinstance(self.source, (str, Path)):
            from cpgait.export.checkpoint import load_checkpoint

            checkpoint = load_checkpoint(self.source, expect=self.contract)
            contract = checkpoint.contract
            self._model: nn.Module | None = checkpoint.model(self.device)
        else:
            assert self.contract is not None  # checked in __init__
            contract = self.contract
            self._model = self.source.to(self.device).eval()
        self.contract = contract
        self._specs = contract.input_specs()
        self._outputs = [contract.output_name]

    def _infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        assert self._model is not None and self.contract is not None  # set by _activate
        with torch.inference_mode():
            inputs = {k: torch.from_numpy(np.ascontiguousarray(v)).to(self.device) for k, v in feed.items()}
            logits = self._model(**inputs)
            return {self.contract.output_name: logits.float().cpu().numpy()}  # the copy to host waits for CUDA

    def _deactivate(self) -> None:
        self._model = None


def _torch_cuda_unavailable() -> str | None:
    import torch

    return None if torch.cuda.is_available() else f"torch {torch.__version__} has no CUDA device or build"


_TORCH = module_missing("torch", "the PyTorch baseline needs the export extra")
TORCH_BACKENDS = (
    Backend(
        "torch", TorchRunner, "cpu", ("checkpoint",), "PyTorch eager on the CPU", requires=(_TORCH,), threaded=True
    ),
    Backend(
        "torch-cuda",
        TorchRunner,
        "cuda",
        ("checkpoint",),
        "PyTorch eager on CUDA",
        options={"device": "cuda"},
        requires=(cuda_unavailable, _TORCH, _torch_cuda_unavailable),
    ),
)
