"""Model inputs for every window of a data set, built with the runtime's own `window_inputs` (train/serve parity).

Training, evaluation and Grad-CAM all read data through `build_windows`, so a model never sees inputs that were
computed differently from what the kiosk computes live.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from cpgait.errors import CpgaitError
from cpgait.runtime.core.contract import ModelContract
from cpgait.runtime.data.dataset import Record, min_frames, windows
from cpgait.runtime.gait.features import window_inputs


@dataclass
class RecordingWindows:
    """Stacked model inputs `[W, ...]` by input name, with each window's label and recording."""

    inputs: dict[str, np.ndarray]
    labels: np.ndarray  # [W] int64 class index
    recording: np.ndarray  # [W] index into `recording_ids`
    recording_ids: tuple[str, ...]
    raw: np.ndarray | None = None  # [W, T, V, 3] raw keypoints at the model fps (kept for augmentation)

    def __post_init__(self) -> None:
        n = len(self.labels)
        bad = {k: v.shape[0] for k, v in self.inputs.items() if v.shape[0] != n}
        if bad or len(self.recording) != n or (self.raw is not None and len(self.raw) != n):
            raise ValueError(f"window set arrays disagree on the number of windows ({n}): {bad}")

    def __len__(self) -> int:
        return len(self.labels)

    def recording_labels(self) -> np.ndarray:
        """Label of each recording (all its windows share it)."""
        out = np.full(len(self.recording_ids), -1, dtype=np.int64)
        out[self.recording] = self.labels
        return out


def inputs_for(keypoints: np.ndarray, contract: ModelContract) -> dict[str, np.ndarray]:
    """The model's inputs for one raw `[T, V, 3]` window, exactly as the runtime computes them."""
    computed = window_inputs(
        keypoints, contract.layout, contract.fps, contract.series_features, contract.scalar_features
    )
    return {name: computed[name] for name in contract.input_names}


def stack_inputs(per_window: list[dict[str, np.ndarray]], names: Iterable[str]) -> dict[str, np.ndarray]:
    return {name: np.stack([w[name] for w in per_window]).astype(np.float32) for name in names}


def usable_records(records: Iterable[Record], contract: ModelContract, where: str) -> tuple[list[Record], str]:
    """Records long enough for one window, and a note on those skipped (empty when none).

    Every record must be labelled and in the contract's layout. When none is long enough the error says how many
    frames the recordings have and how many a window needs.
    """
    records = list(records)
    if not records:
        raise CpgaitError(f"{where}: no recordings")
    for record in records:
        contract.require_source(record.layout, str(record.path))
        if record.label is None:
            raise CpgaitError(f"{record.path}: no label; training and evaluation need GMFCS levels 0-3")
    usable = [r for r in records if r.num_frames >= min_frames(contract.window, contract.fps, r.fps)]
    short = [r for r in records if r not in usable]
    note = ""
    if short:
        frames = sorted(r.num_frames for r in short)
        needed = sorted({min_frames(contract.window, contract.fps, r.fps) for r in short})
        note = (
            f"{where}: {len(short)} of {len(records)} recordings are too short for a {contract.window}-frame window "
            f"at {contract.fps:g} fps (they have {frames[0]}-{frames[-1]} frames; {'/'.join(map(str, needed))} "
            f"needed at their own fps)"
        )
    if not usable:
        raise CpgaitError(note + "; nothing left to use")
    return usable, note


def build_windows(
    records: Iterable[Record],
    contract: ModelContract,
    stride: int,
    keep_raw: bool = False,
    where: str = "data set",
    advance: Callable[[], None] | None = None,
) -> tuple[RecordingWindows, str]:
    """Cut every usable record into windows and compute their inputs; returns the set and a note on what was
    skipped (recordings too short for a window, windows whose features cannot be computed), empty when nothing."""
    usable, note = usable_records(records, contract, where)
    per_window: list[dict[str, np.ndarray]] = []
    raw, labels, recording, ids = [], [], [], []
    unmeasurable: list[str] = []
    for record in usable:
        seq = record.load()
        kept = []
        for w in windows(seq, contract.window, contract.fps, stride)[0]:
            try:
                per_window.append(inputs_for(w, contract))
            except CpgaitError as exc:  # e.g. the child is out of view for the whole window
                unmeasurable.append(f"{record.path.name}: {exc}")
                continue
            kept.append(w)
        if kept:
            raw += kept if keep_raw else []
            labels += [record.label] * len(kept)
            recording += [len(ids)] * len(kept)
            ids.append(record.recording_id)
        if advance is not None:
            advance()
    if unmeasurable:
        note += ("; " if note else f"{where}: ") + (
            f"{len(unmeasurable)} window(s) without a measurable skeleton skipped (first: {unmeasurable[0]})"
        )
    if not per_window:
        raise CpgaitError(f"{where}: no window with a measurable skeleton" + (f" ({note})" if note else ""))
    result = RecordingWindows(
        inputs=stack_inputs(per_window, contract.input_names),
        labels=np.asarray(labels, dtype=np.int64),
        recording=np.asarray(recording, dtype=np.int64),
        recording_ids=tuple(ids),
        raw=np.stack(raw).astype(np.float32) if keep_raw else None,
    )
    return result, note
