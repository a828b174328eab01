"""`cpgait train`: fit the severity model on labelled sequence files.

Windows of T frames at the model fps, a subject-level split, class-balanced sampling, augmentation of the raw
keypoints (so the gait features see it too), AdamW with a cosine schedule and early stopping on validation
macro-F1. Every epoch is seeded from (seed, epoch) and the checkpoint is rewritten after each epoch, so a run that
is stopped and resumed with `--resume` ends exactly where the uninterrupted run would have.
"""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from cpgait.errors import CpgaitError, refuse_overwrite
from cpgait.export.checkpoint import Checkpoint, load_checkpoint
from cpgait.export.model import ModelConfig, SeverityModel
from cpgait.runtime.core.contract import STREAMS, ModelContract
from cpgait.runtime.core.files import npz_fields
from cpgait.runtime.core.layouts import COCO17
from cpgait.runtime.core.metrics import confusion_matrix, macro_f1
from cpgait.runtime.data.dataset import Dataset, subject_split
from cpgait.runtime.data.windows import (
    WindowSet,
    build_windows,
    inputs_for,
    stack_inputs,
    usable_records,
)
from cpgait.runtime.gait.feature_bank import REGISTRY, feature_spec, select_features
from cpgait.runtime.gait.features import with_masks
from cpgait.training.augment import Augmentation


@dataclass(frozen=True)
class TrainConfig:
    """Every setting that changes the trained weights (a resumed run must use the same ones)."""

    streams: str = "fused"
    window: int = 124
    fps: float = 30.0
    stride: int = 31
    epochs: int = 40
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.05
    width: float = 0.25
    embed_dim: int = 64
    dropout: float = 0.2
    seed: int = 0
    patience: int = 10
    split: tuple[float, float, float] = (0.7, 0.1, 0.2)
    joints: tuple[str, ...] = ()  # joints the gait features may use; () = every feature
    augment: bool = True
    motion: bool = False  # ST-GCN input: add joint motion channels
    bones: bool = False  # ST-GCN input: add bone-vector channels
    init_skeleton: str = ""  # a checkpoint whose ST-GCN (skeleton stream) initialises this model's; "" = random

    def __post_init__(self) -> None:
        object.__setattr__(self, "split", tuple(self.split))
        object.__setattr__(self, "joints", tuple(self.joints))
        if self.streams not in STREAMS:
            raise CpgaitError(f"--streams is {self.streams!r}; expected one of {', '.join(STREAMS)}")
        for name in ("window", "stride", "epochs", "batch_size", "patience"):
            if getattr(self, name) < 1:
                raise CpgaitError(f"--{name.replace('_', '-')} is {getattr(self, name)}; expected >= 1")
        if self.batch_size < 2:
            raise CpgaitError(f"--batch-size is {self.batch_size}; batch norm needs at least 2")
        if not (self.fps > 0 and self.lr > 0 and self.weight_decay >= 0):
            raise CpgaitError(f"--fps {self.fps} and --lr {self.lr} must be > 0, weight decay >= 0")

    def model_config(self, num_series: int, num_scalars: int, num_classes: int) -> ModelConfig:
        return ModelConfig(
            streams=self.streams,
            window=self.window,
            num_series=num_series,
            num_scalars=num_scalars,
            num_classes=num_classes,
            width=self.width,
            embed_dim=self.embed_dim,
            dropout=self.dropout,
            motion=self.motion,
            bones=self.bones,
        )


def pick_device(device: str) -> torch.device:
    """`auto` = CUDA when this torch has a GPU, else CPU. On CUDA, cuBLAS is made deterministic (its workspace
    setting must precede the first CUDA call), so that seeded and resumed runs repeat there too."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise CpgaitError(f"--device is {device!r}; expected auto, cpu or cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise CpgaitError("--device cuda: this torch build sees no CUDA GPU")
    if device == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
    return torch.device(device)


def make_contract(config: TrainConfig, dataset: Dataset, data: Path) -> ModelContract:
    """The preprocessing contract of a model trained with `config` on `dataset`."""
    layouts = sorted({r.layout for r in dataset})
    if len(layouts) != 1:
        raise CpgaitError(f"{data}: recordings are in several layouts ({', '.join(layouts)}); expected one")
    if config.streams == "skeleton":
        chosen: list[str] = []
    else:
        chosen = select_features(config.joints) if config.joints else [f.name for f in REGISTRY]
    series = tuple(n for n in chosen if feature_spec(n).kind == "series")
    scalars = tuple(n for n in chosen if feature_spec(n).kind == "scalar")
    if config.streams != "skeleton" and not (series and scalars):
        raise CpgaitError(
            f"joints {', '.join(config.joints)} give {len(series)} gait series and {len(scalars)} scalars "
            f"({', '.join(chosen) or 'none'}); the gait stream needs at least one of each (every feature needs "
            "the joints it measures: raise --top-k)"
        )
    used = {j for n in chosen for j in feature_spec(n).joints}
    sources = sorted({_source_note(r.path) for r in dataset})
    synthetic = all("synthetic" in s.lower() for s in sources)
    description = (
        f"{'SYNTHETIC ' if synthetic else ''}data: {len(dataset)} recordings of {len(dataset.subjects)} subjects "
        f"from {data.name}; source note: {sources[0][:200]}"
        + (f" (and {len(sources) - 1} other notes)" if len(sources) > 1 else "")
    )
    return ModelContract(
        layout=layouts[0],
        window=config.window,
        fps=config.fps,
        series_features=tuple(series),
        scalar_features=with_masks(scalars),  # the model sees which window scalars were missing
        feature_joints=tuple(j for j in COCO17.joints if j in used),
        streams=config.streams,
        training_data=description,
        synthetic=synthetic,
    )


def _source_note(path: Path) -> str:
    """A sequence file's free-form source note (only that small member of the .npz is read)."""
    fields, _ = npz_fields(path, ("source",), (), "sequence file")
    if "source" not in fields:
        raise CpgaitError(f"{path}: not a cpgait sequence file (no source field)")
    return str(fields["source"])


def predict(model: SeverityModel, inputs: dict[str, np.ndarray], batch_size: int, device: torch.device) -> np.ndarray:
    """Class probabilities `[W, C]` for stacked inputs, in eval mode, batch by batch."""
    model.eval()
    n = len(next(iter(inputs.values())))
    out = []
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            batch = {k: torch.from_numpy(v[start : start + batch_size]).to(device) for k, v in inputs.items()}
            out.append(torch.softmax(model(**batch), dim=1).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, model.config.num_classes), np.float32)


def file_sha256(path: str | Path) -> str:
    """The hex SHA-256 of a file (ties a Grad-CAM ranking, and a model initialised from it, to one checkpoint)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def init_skeleton_stream(model: SeverityModel, path: str | Path) -> str:
    """Copy the ST-GCN of checkpoint `path` into `model` (the study's order: the fused model starts from the skeleton
    baseline that Grad-CAM explained). Only the ten blocks and the input norm are taken: the projection into the
    fusion embedding and the head are new to the fused model. Returns the checkpoint's SHA-256."""
    source = load_checkpoint(path)
    if not (source.config.uses_skeleton and model.config.uses_skeleton):
        raise CpgaitError(
            f"--init-skeleton {path}: a {source.config.streams} checkpoint cannot initialise a "
            f"{model.config.streams} model's ST-GCN (both need a skeleton stream)"
        )
    fields = ("window", "width", "temporal_kernel", "motion", "bones")
    diffs = [
        f"{f}: {getattr(source.config, f)!r} vs {getattr(model.config, f)!r}"
        for f in fields
        if getattr(source.config, f) != getattr(model.config, f)
    ]
    if diffs:
        raise CpgaitError(f"--init-skeleton {path}: its ST-GCN has another shape ({'; '.join(diffs)})")
    own = model.state_dict()
    taken = {k: v for k, v in source.state_dict.items() if k.startswith("skeleton.")}
    own.update(taken)
    model.load_state_dict(own)
    return file_sha256(path)


def _epoch_inputs(
    train: WindowSet, contract: ModelContract, augment: Augmentation | None, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """This epoch's training inputs: the augmented raw windows put through the runtime's feature code."""
    if augment is None or train.raw is None:
        return train.inputs
    per_window = []
    for i, w in enumerate(train.raw):
        try:
            per_window.append(inputs_for(augment(w, rng), contract))
        except CpgaitError:  # augmentation hid the last measurable leg: use the window as it was
            per_window.append({k: v[i] for k, v in train.inputs.items()})
    return stack_inputs(per_window, contract.input_names)


def _balanced_order(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Window indices drawn with replacement so that every class is equally likely per draw."""
    counts = np.bincount(labels)
    p = 1.0 / counts[labels]
    return rng.choice(len(labels), size=len(labels), replace=True, p=p / p.sum())


def fit_epoch(
    model: SeverityModel,
    optimizer: torch.optim.Optimizer,
    inputs: dict[str, np.ndarray],
    labels: np.ndarray,
    order: np.ndarray,
    batch_size: int,
    device: torch.device,
) -> float:
    """One pass over `order` (window indices) in mini-batches; returns the mean cross-entropy."""
    model.train()
    losses = []
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        if len(idx) < 2:  # batch norm cannot train on a single window
            break
        batch = {k: torch.from_numpy(v[idx]).to(device) for k, v in inputs.items()}
        loss = F.cross_entropy(model(**batch), torch.from_numpy(labels[idx]).to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return float(np.mean(losses)) if losses else float("nan")


def _epoch_seed(seed: int, epoch: int) -> int:
    return seed * 100_003 + epoch


@dataclass
class EpochLog:
    """The epoch loop's bookkeeping: epochs run, the best validation macro-F1 and its epoch, epochs since it last
    improved (early stopping) and one record per epoch; kept in an unfinished checkpoint to resume from."""

    epoch: int = 0
    best_score: float = -1.0
    best_epoch: int = -1
    stale: int = 0
    history: list[dict] = field(default_factory=list)

    def running(self, epochs: int, patience: int) -> bool:
        """Another epoch is due: fewer than `epochs` run and fewer than `patience` in a row without improvement."""
        return self.epoch < epochs and self.stale < patience

    def add(self, record: dict) -> bool:
        """Log the next epoch's `record` (with its `val_macro_f1`); True when it is the best so far (an equal score
        is no improvement), whose weights the final checkpoint keeps."""
        self.history.append(record)
        self.epoch += 1
        if record["val_macro_f1"] > self.best_score:
            self.best_score, self.best_epoch, self.stale = record["val_macro_f1"], self.epoch, 0
            return True
        self.stale += 1
        return False


def _settings_mismatch(stored: dict, config: TrainConfig) -> list[str]:
    ours = asdict(config)
    return [
        f"{k}: checkpoint {stored.get(k)!r} vs now {ours[k]!r}"
        for k in ours
        if _plain(stored.get(k)) != _plain(ours[k])
    ]


def _plain(value: object) -> object:
    return list(value) if isinstance(value, (tuple, list)) else value


def train(
    data: str | Path,
    out: str | Path,
    config: TrainConfig,
    device: str = "auto",
    resume: bool = False,
    overwrite: bool = False,
    on_epoch: Callable[[dict], None] | None = None,
    show_progress: bool = True,
    splits_override: dict[str, tuple[str, ...]] | None = None,
    feature_ranking: dict | None = None,
) -> Checkpoint:
    """Train and write the checkpoint `out` after every epoch; returns the final (best-epoch) checkpoint.

    `splits_override`: train/val/test subject ids (e.g. one cross-validation fold) instead of the seeded split;
    `feature_ranking`: where `config.joints` came from (ranking file, its checkpoint's SHA-256, k), kept in the
    checkpoint."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    data, out = Path(data), Path(out)
    dev = pick_device(device)
    previous: Checkpoint | None = None
    if resume:
        previous = load_checkpoint(out)
        diffs = _settings_mismatch(previous.training.get("settings", {}), config)
        if diffs:
            raise CpgaitError(f"{out}: cannot resume with other settings ({'; '.join(diffs)})")
        if "resume" not in previous.training:
            raise CpgaitError(
                f"{out}: training already finished (epoch {previous.training.get('epochs_run')}); nothing to resume"
            )
    else:
        refuse_overwrite(out, overwrite)

    dataset = Dataset.from_path(data)
    contract = make_contract(config, dataset, data)
    if previous is not None:
        previous.contract.require_same(contract, str(out))
    console = Console(stderr=True, quiet=not show_progress)
    usable, note = usable_records(dataset, contract, str(data))
    if note:
        console.print(f"note: {note}")
    if splits_override is None:
        splits = subject_split(Dataset(tuple(usable)), config.split, config.seed)
    else:
        splits = {
            name: Dataset(tuple(r for r in usable if r.subject_id in set(ids))) for name, ids in splits_override.items()
        }
    for name in ("train", "val"):
        if len(splits[name]) == 0:
            raise CpgaitError(f"{data}: {len(dataset.subjects)} subjects leave the {name} split empty; add subjects")

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[info]}"),
        console=console,
        disable=not show_progress,
    )
    with progress:
        sets: dict[str, WindowSet] = {}
        for name in ("train", "val"):
            task = progress.add_task(f"windows ({name})", total=len(splits[name]), info="")
            sets[name], note = build_windows(
                splits[name],
                contract,
                config.stride,
                keep_raw=name == "train",
                where=f"{data} ({name} split)",
                advance=functools.partial(progress.advance, task),
            )
            if note:
                console.print(f"note: {note}")
        train_set, val_set = sets["train"], sets["val"]
        if set(np.unique(train_set.labels)) != set(range(len(contract.class_names))):
            missing = sorted(set(range(len(contract.class_names))) - set(np.unique(train_set.labels)))
            console.print(f"note: the train split has no windows of class(es) {missing}")

        model_config = config.model_config(
            len(contract.series_features), len(contract.scalar_features), len(contract.class_names)
        )
        torch.manual_seed(config.seed)
        model = SeverityModel(model_config)
        init_hash = init_skeleton_stream(model, config.init_skeleton) if config.init_skeleton else None
        model = model.to(dev)
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
        log = EpochLog()
        best_weights = copy.deepcopy(model.state_dict())
        if previous is not None:
            saved = previous.training["resume"]
            model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            scheduler.load_state_dict(saved["scheduler"])
            log = EpochLog(**{k: saved[k] for k in asdict(log)})
            best_weights = previous.state_dict
        augment = Augmentation() if config.augment else None
        split_subjects = {name: part.subjects for name, part in splits.items()}

        def checkpoint(finished: bool) -> Checkpoint:
            training = {
                "settings": asdict(config),
                "split": split_subjects,
                "epochs_run": log.epoch,
                "best_epoch": log.best_epoch,
                "best_val_macro_f1": log.best_score,
                "history": log.history,
                "windows": {"train": len(train_set), "val": len(val_set)},
                **({"init_skeleton_sha256": init_hash} if init_hash else {}),
                **({"feature_ranking": feature_ranking} if feature_ranking else {}),
            }
            if not finished:
                training["resume"] = {
                    "model": copy.deepcopy(model.state_dict()),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    **asdict(log),
                }
            return Checkpoint(model_config, contract, best_weights, training)

        deterministic = torch.are_deterministic_algorithms_enabled()
        torch.use_deterministic_algorithms(True, warn_only=True)
        task = progress.add_task("epochs", total=config.epochs, completed=log.epoch, info="")
        try:
            while log.running(config.epochs, config.patience):
                epoch = log.epoch
                rng = np.random.default_rng([config.seed, epoch])
                torch.manual_seed(_epoch_seed(config.seed, epoch))
                inputs = _epoch_inputs(train_set, contract, augment, rng)
                order = _balanced_order(train_set.labels, rng)
                lr = optimizer.param_groups[0]["lr"]  # this epoch's rate, before the schedule moves on
                loss = fit_epoch(model, optimizer, inputs, train_set.labels, order, config.batch_size, dev)
                scheduler.step()
                probs = predict(model, val_set.inputs, 4 * config.batch_size, dev)
                score = macro_f1(confusion_matrix(val_set.labels, probs.argmax(1), len(contract.class_names)))
                record = {"epoch": epoch + 1, "loss": loss, "val_macro_f1": score, "lr": lr}
                if log.add(record):
                    best_weights = copy.deepcopy(model.state_dict())
                checkpoint(finished=False).save(out, overwrite=True)
                progress.update(
                    task,
                    completed=log.epoch,
                    info=f"loss {record['loss']:.3f}  val macro-F1 {score:.3f}  "
                    f"best {log.best_score:.3f} @ {log.best_epoch}",
                )
                if not console.is_terminal:  # a log file gets one line per epoch instead of the live bar
                    console.print(
                        f"epoch {log.epoch}/{config.epochs}: loss {record['loss']:.4f}, val macro-F1 {score:.4f}"
                    )
                if on_epoch is not None:
                    on_epoch(record)
        finally:
            torch.use_deterministic_algorithms(deterministic)
    final = checkpoint(finished=True)
    final.save(out, overwrite=True)
    console.print(
        f"{out}: best val macro-F1 {log.best_score:.3f} at epoch {log.best_epoch} of {log.epoch} "
        f"({len(train_set)} train / {len(val_set)} val windows; trained on "
        f"{'SYNTHETIC ' if contract.synthetic else ''}data)"
    )
    return final


def joints_from_ranking(path: str | Path, top_k: int) -> tuple[tuple[str, ...], dict]:
    """The `top_k` joints of a `cpgait explain` ranking file (ordered by importance), and its provenance: the file,
    k, and the explained checkpoint's path and SHA-256 (which `--init-skeleton` checks)."""
    import json

    path = Path(path)
    try:
        ranking = json.loads(path.read_text(encoding="utf-8"))
        names = [str(j["name"]) for j in ranking["joints"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CpgaitError(
            f"{path}: not a joint ranking from `cpgait explain` ({exc.__class__.__name__}: {exc})"
        ) from None
    if not 1 <= top_k <= len(names):
        raise CpgaitError(f"--top-k is {top_k}; {path} ranks {len(names)} joints (expected 1..{len(names)})")
    provenance = {
        "ranking": str(path),
        "top_k": top_k,
        "model": ranking.get("model"),
        "model_sha256": ranking.get("model_sha256"),
        "layer": ranking.get("layer"),
    }
    return tuple(names[:top_k]), provenance


def baseline_of(provenance: dict) -> str:
    """The explained checkpoint of a ranking, verified by its SHA-256 (the study initialises from it)."""
    model, expected = provenance.get("model"), provenance.get("model_sha256")
    if not model or not expected:
        raise CpgaitError(
            f"{provenance['ranking']}: names no explained checkpoint with its SHA-256 (made by an "
            "older cpgait?); give --init-skeleton PATH or --no-init"
        )
    if not Path(model).is_file():
        raise CpgaitError(
            f"{provenance['ranking']}: its checkpoint {model} is not there (run from the folder "
            "`cpgait explain` ran in); give --init-skeleton PATH or --no-init"
        )
    actual = file_sha256(model)
    if actual != expected:
        raise CpgaitError(
            f"{model}: SHA-256 {actual[:12]}... is not the explained checkpoint's "
            f"{expected[:12]}... (retrained since?); rerun `cpgait explain` or give --no-init"
        )
    return str(model)
