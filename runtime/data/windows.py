"""Model-input windows drawn from sequence files: what calibration, the accuracy gate and export parity run on.

Windows are cut from real sequence files with the runtime's own code (`dataset.windows` + `features.window_inputs`),
so they are exactly what the kiosk feeds the model. Selection is stratified by class: each label (unknown labels
are one more stratum) contributes an equal share where it has enough windows, so a calibration set is not
dominated by the most common GMFCS level.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cpgait.errors import CpgaitError
from cpgait.runtime.core.contract import ModelContract


@dataclass(frozen=True)
class WindowSet:
    """A batch of model inputs (name -> [N, ...] float32), their labels (-1 = unknown) and where they came from."""

    inputs: dict[str, np.ndarray]
    labels: np.ndarray
    origin: str

    def __post_init__(self) -> None:
        sizes = {name: len(a) for name, a in self.inputs.items()}
        if not sizes or len(set(sizes.values())) != 1 or len(self.labels) != next(iter(sizes.values())):
            raise ValueError(f"window set: inputs {sizes} and {len(self.labels)} labels must have one common size")

    def __len__(self) -> int:
        return len(self.labels)

    def batches(self, size: int):
        """Consecutive feeds of at most `size` windows."""
        for start in range(0, len(self), size):
            yield {name: a[start : start + size] for name, a in self.inputs.items()}

    @property
    def labelled(self) -> bool:
        return bool(np.all(self.labels >= 0))


def synthetic_windows(contract: ModelContract, n: int = 32, seed: int = 0) -> WindowSet:
    """Random inputs of the contract's shapes (standard normal): for export parity when no data set is given."""
    rng = np.random.default_rng(seed)
    inputs = {
        spec.name: rng.standard_normal((n, *spec.shape[1:])).astype(np.float32) for spec in contract.input_specs()
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
    from cpgait.runtime.data.dataset import Dataset, SequenceTooShort, windows
    from cpgait.runtime.gait.features import window_inputs

    if count is not None and count < 1:
        raise CpgaitError(f"--windows {count}; expected at least 1")
    dataset = Dataset.from_path(data)
    stride = stride or max(1, contract.window // 4)
    raw: list[np.ndarray] = []
    labels: list[int] = []
    layouts: list[str] = []
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
        layouts.extend([seq.layout] * len(cut))
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
            samples[i] = window_inputs(
                raw[i], layouts[i], contract.fps, contract.series_features, contract.scalar_features
            )
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
    pools, chosen = [iter(p) for p in pools], []
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
