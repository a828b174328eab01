"""PyTorch eager runner: the baseline every speed and accuracy figure is compared against."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from cpgait.errors import CpgaitError
from cpgait.runtime.backends.runners import Runner, TensorSpec, contract_input_specs
from cpgait.runtime.core.contract import ModelContract


class TorchRunner(Runner):
    """A checkpoint (or an in-memory model with its contract) run eagerly under `torch.inference_mode`."""

    name = "torch"

    def __init__(
        self,
        model: str | Path | object,
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
            self.contract = checkpoint.contract
            self._model = checkpoint.model(self.device)
        else:
            self._model = self.source.to(self.device).eval()
        self._specs = contract_input_specs(self.contract)

    def input_specs(self) -> list[TensorSpec]:
        self.activate()
        return self._specs

    def _infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        with torch.inference_mode():
            inputs = {k: torch.from_numpy(np.ascontiguousarray(v)).to(self.device) for k, v in feed.items()}
            logits = self._model(**inputs)
            return {"logits": logits.float().cpu().numpy()}  # the copy to host waits for CUDA

    def _deactivate(self) -> None:
        self._model = None
