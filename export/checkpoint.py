"""Checkpoint files: weights + model config + model contract (+ the training state that `--resume` needs).

A checkpoint is a `torch.save`d dict of plain types and tensors only, so it loads with `weights_only=True` (no
pickled code runs):

| key          | content                                                                                   |
|--------------|-------------------------------------------------------------------------------------------|
| `format`     | `cpgait.checkpoint/1`                                                                      |
| `config`     | `ModelConfig` as a dict                                                                   |
| `contract`   | `ModelContract` as a dict (layout, T, fps, features and joints, classes, training data)   |
| `state_dict` | the model weights to use (the best epoch's)                                               |
| `training`   | dict: training settings, split subjects, history, and `resume` = last epoch's weights,    |
|              | optimizer and scheduler state (absent once training has finished)                         |
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from cpgait.errors import CpgaitError, atomic_output
from cpgait.export.model import ModelConfig, SeverityModel
from cpgait.runtime.core.contract import ModelContract

CHECKPOINT_FORMAT = "cpgait.checkpoint/1"


@dataclass
class Checkpoint:
    """A model's config, contract and weights, plus whatever training state came with them."""

    config: ModelConfig
    contract: ModelContract
    state_dict: dict[str, torch.Tensor]
    training: dict = field(default_factory=dict)
    path: Path | None = None

    def __post_init__(self) -> None:
        where = str(self.path) if self.path else "checkpoint"
        diffs = config_contract_mismatches(self.config, self.contract)
        if diffs:
            raise CpgaitError(f"{where}: model config and contract disagree: " + "; ".join(diffs))

    def model(self, device: str | torch.device = "cpu") -> SeverityModel:
        """The model in eval mode with these weights; a state dict of another shape is an error naming the keys."""
        model = SeverityModel(self.config)
        load_weights(model, self.state_dict, str(self.path) if self.path else "checkpoint")
        return model.to(device).eval()

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write atomically (a temporary file, then rename) so an interrupted write never leaves half a file."""
        path = Path(path)
        with atomic_output(path, overwrite) as tmp:
            torch.save(
                {
                    "format": CHECKPOINT_FORMAT,
                    "config": self.config.to_dict(),
                    "contract": asdict(self.contract),
                    "state_dict": {k: v.detach().cpu() for k, v in self.state_dict.items()},
                    "training": self.training,
                },
                tmp,
            )
        self.path = path
        return path


def config_contract_mismatches(config: ModelConfig, contract: ModelContract) -> list[str]:
    """Where the network's shape and the preprocessing contract contradict each other."""
    pairs: tuple[tuple[str, object, object], ...] = (
        ("streams", config.streams, contract.streams),
        ("window", config.window, contract.window),
        ("number of classes", config.num_classes, len(contract.class_names)),
    )
    if config.uses_gait:
        pairs += (
            ("number of gait series", config.num_series, len(contract.series_features)),
            ("number of gait scalars", config.num_scalars, len(contract.scalar_features)),
        )
    return [f"{name}: config {a!r} vs contract {b!r}" for name, a, b in pairs if a != b]


def load_weights(model: torch.nn.Module, state_dict: dict[str, torch.Tensor], where: str) -> None:
    """Load weights strictly; missing, unexpected or mis-shaped tensors are one error listing them."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    shapes = [
        f"{k} {tuple(state_dict[k].shape)} vs {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(state_dict))
        if tuple(state_dict[k].shape) != tuple(own[k].shape)
    ]
    problems = [
        f"{label}: {', '.join(items[:5])}{' ...' if len(items) > 5 else ''}"
        for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes))
        if items
    ]
    if problems:
        raise CpgaitError(f"{where}: weights do not fit the model config ({'; '.join(problems)})")
    model.load_state_dict(state_dict)


def load_checkpoint(path: str | Path, expect: ModelContract | None = None) -> Checkpoint:
    """Read and validate a checkpoint; with `expect`, also require that its contract is that one."""
    path = Path(path)
    if not path.is_file():
        raise CpgaitError(f"{path}: no such checkpoint file")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # zip, unpickling and torch errors all mean "not a readable checkpoint"
        # torch's weights-only message advises loading with weights_only=False: wrong advice for a user's file
        reason = exc.__class__.__name__ if "weights_only" in str(exc) else str(exc).strip().split("\n")[0]
        raise CpgaitError(
            f"{path}: not a readable cpgait checkpoint (corrupt or not a torch file: "
            f"{reason or exc.__class__.__name__})"
        ) from None
    if not isinstance(data, dict) or "format" not in data:
        raise CpgaitError(f"{path}: not a cpgait checkpoint (no 'format' entry; expected {CHECKPOINT_FORMAT!r})")
    if data["format"] != CHECKPOINT_FORMAT:
        raise CpgaitError(f"{path}: checkpoint format is {data['format']!r}; this cpgait reads {CHECKPOINT_FORMAT!r}")
    missing = [k for k in ("config", "contract", "state_dict") if not isinstance(data.get(k), dict)]
    if missing:
        raise CpgaitError(f"{path}: checkpoint lacks {', '.join(missing)}")
    config = ModelConfig.from_dict(data["config"], f"{path}: model config")
    contract = ModelContract.from_dict(data["contract"], f"{path}: model contract")
    training = data.get("training") or {}
    checkpoint = Checkpoint(config, contract, data["state_dict"], training if isinstance(training, dict) else {}, path)
    load_weights(SeverityModel(config), checkpoint.state_dict, str(path))
    if expect is not None:
        expect.require_same(contract, str(path))
    return checkpoint
