"""Model-input windows cut from sequence files: the one path from recordings to what a model is fed.

Training, evaluation, Grad-CAM, calibration, the accuracy gate and export parity all read data through this module:
recordings are resampled to the model's fps and cut with `dataset.windows`, and every window's inputs come from the
runtime's own `features.window_inputs` (`inputs_for`), so a model never sees inputs computed differently from what
the kiosk computes live. `build_windows` takes every window of labelled recordings (training and evaluation);
`load_windows` draws a class-stratified selection from any sequence files (calibration and the gate): each label
(unknown labels are one more stratum) contributes an equal share where it has enough windows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cpgait.errors import CpgaitError
from cpgait.runtime.core.contract import ModelContract
from cpgait.runtime.data.dataset import Dataset, Record, SequenceTooShort, min_frames, windows
from cpgait.runtime.gait.features import window_inputs


@dataclass(frozen=True)
class WindowSet:
    """Stacked model inputs (name -> `[W, ...]` float32) with each window's label (-1 = unknown) and origin.

    Built from recordings it also says which recording each window came from (`recording`, an index into
    `recording_ids`) and may keep the raw keypoints `[W, T, V, 3]` at the model fps (for augmentation).
    """

    inputs: dict[str, np.ndarray]
    labels: np.ndarray
    origin: str
    recording: np.ndarray | None = None
    recording_ids: tuple[str, ...] = ()
    raw: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.labels)
        sizes = {name: len(a) for name, a in self.inputs.items()}
        extra = {"recording": self.recording, "raw": self.raw}
        sizes.update({k: len(v) for k, v in extra.items() if v is not None})
        if not self.inputs or any(size != n for size in sizes.values()):
            raise ValueError(f"window set: arrays {sizes} and {n} labels must have one common size")

    def __len__(self) -> int:
        return len(self.labels)

    def batches(self, size: int) -> Iterator[dict[str, np.ndarray]]:
        """Consecutive feeds of at most `size` windows."""
        for start in range(0, len(self), size):
            yield {name: a[start : start + size] for name, a in self.inputs.items()}

    @property
    def labelled(self) -> bool:
        return bool(np.all(self.labels >= 0))

    def recording_labels(self) -> np.ndarray:
        """Label of each recording (all its windows share it); needs the recording index."""
        if self.recording is None:
            raise ValueError("window set: no recording index (not built from recordings)")
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
    stride: int | None = None,
    keep_raw: bool = False,
    where: str = "data set",
    advance: Callable[[], None] | None = None,
) -> tuple[WindowSet, str]:
    """Cut every usable record into windows and compute their inputs; returns the set and a note on what was
    skipped (recordings too short for a window, windows whose features cannot be computed), empty when nothing."""
    usable, note = usable_records(records, contract, where)
    stride = stride or contract.default_stride
    per_window: list[dict[str, np.ndarray]] = []
    raw: list[np.ndarray] = []
    labels: list[int] = []
    recording: list[int] = []
    ids: list[str] = []
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
            labels += [-1 if record.label is None else record.label] * len(kept)  # labelled: usable_records
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
    result = WindowSet(
        inputs=stack_inputs(per_window, contract.input_names),
        labels=np.asarray(labels, dtype=np.int64),
        origin=f"{len(labels)} windows of {len(ids)} recordings in {where} (stride {stride})",
        recording=np.asarray(recording, dtype=np.int64),
        recording_ids=tuple(ids),
        raw=np.stack(raw).astype(np.float32) if keep_raw else None,
    )
    return result, note


def synthetic_windows(contract: ModelContract, n: int = 32, seed: int = 0) -> WindowSet:
    """Random inputs of the contract's shapes (standard normal): for export parity when no data set is given."""
    rng = np.random.default_rng(seed)
    inputs = {
        spec.name: rng.standard_normal((n, *(d or 1 for d in spec.shape[1:]))).astype(np.float32)
        for spec in contract.input_specs()  # only the batch axis is dynamic
    }
    return WindowSet(inputs, np.full(n, -1, dtype=np.int64), f"{n} synthetic random windows (seed {seed})")


def load_windows(
    data: str | Path,
    contract: ModelContract,
    count: int | None = None,
    minimum: int = 1,
    stride: int | None = None,
    seed: int = 0,
) -> WindowSet:
    """Up to `count` windows (all when None) from the sequence files in `data`, stratified by class.

    Every file must be in the contract's layout (an error names the first that is not). Recordings shorter than one
    window are skipped. Fewer than `minimum` windows in total is an error that says how many were found.
    """
    if count is not None and count < 1:
        raise CpgaitError(f"--windows {count}; expected at least 1")
    dataset = Dataset.from_path(data)
    stride = stride or contract.default_stride
    raw: list[np.ndarray] = []
    labels: list[int] = []
    short = 0
    for record in dataset:
        contract.require_source(record.layout, str(record.path))
        seq = record.load()
        try:
            cut, _ = windows(seq, contract.window, contract.fps, stride)
        except SequenceTooShort:
            short += 1
            continue
        raw.extend(cut)
        labels.extend([-1 if record.label is None else record.label] * len(cut))
    found = len(raw)
    if found < minimum:
        raise CpgaitError(
            f"{data}: found {found} window(s) of {contract.window} frames at {contract.fps:g} fps in "
            f"{len(dataset)} file(s) ({short} too short); at least {minimum} are needed"
        )
    samples: dict[int, dict[str, np.ndarray]] = {}
    skipped = []

    def measurable(i: int) -> bool:
        try:
            samples[i] = inputs_for(raw[i], contract)
        except CpgaitError:  # nobody measurable in this window (walked out of view): the kiosk skips it too
            skipped.append(i)
            return False
        return True

    rng = np.random.default_rng(seed)
    label_array = np.asarray(labels)
    pools = [
        (i for i in rng.permutation(np.flatnonzero(label_array == lab)) if measurable(int(i)))
        for lab in np.unique(label_array)
    ]
    chosen = _round_robin(pools, count)
    if len(chosen) < minimum:
        raise CpgaitError(
            f"{data}: only {len(chosen)} of {found} windows show a measurable person "
            f"({len(skipped)} without one); at least {minimum} are needed"
        )
    inputs = {name: np.stack([samples[i][name] for i in chosen]).astype(np.float32) for name in contract.input_names}
    origin = (
        f"{len(chosen)} of {found} windows from {len(dataset)} file(s) in {data} (stride {stride}"
        + (f", {len(skipped)} without a measurable person skipped" if skipped else "")
        + ")"
    )
    return WindowSet(inputs, label_array[chosen], origin)


def _round_robin(pools: list, count: int | None) -> list[int]:
    """Take one index from each pool in turn until `count` are taken or all pools are empty: every label gets an
    equal share while it has windows left, and the others fill in for one that runs out."""
    pools = [iter(p) for p in pools]
    chosen: list[int] = []
    while pools and (count is None or len(chosen) < count):
        for pool in list(pools):
            index = next(pool, None)
            if index is None:
                pools.remove(pool)
                continue
            chosen.append(int(index))
            if count is not None and len(chosen) == count:
                break
    return chosen
