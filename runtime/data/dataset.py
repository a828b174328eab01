"""Data-set manifests, the subject-level split, and cutting sequences into model windows (numpy only).

A data set is a list of sequence files (`.npz`, see `cpgait.runtime.core.sequence`) with who walked and their label.
`Dataset.from_path` reads either

* a directory: every `*.npz` under it (recursively, sorted by path); subject, label and recording id come from the
  files themselves; or
* a CSV manifest with a header row and these columns (any order, no others):

  | column         | required | meaning                                                                     |
  |----------------|----------|-----------------------------------------------------------------------------|
  | `path`         | yes      | the sequence file, relative to the CSV's folder (or absolute)                |
  | `subject_id`   | yes      | who walked: the unit of the split; not empty                                |
  | `label`        | yes      | GMFCS level 0-3 (= I-IV); empty or -1 = unknown here (the file's is kept)    |
  | `recording_id` | no       | which recording; empty or absent = the file's own id, else its file name    |

  A CSV value fills in what the file leaves empty; a CSV value that contradicts a non-empty value in the file is
  an error (a manifest that relabels data silently is a bug waiting to happen).

Records are built from the small fields and the `keypoints` array header only (nothing is decompressed beyond that),
so a manifest of thousands of files is cheap; `Record.load()` reads and fully validates one sequence.

Windows: the model sees `T` frames at its own fps. `windows()` resamples a sequence to that fps (`resample`) and
cuts `[W, T, V, 3]` windows of raw keypoints every `stride` frames; `min_frames()` says how many source frames that
needs, so a trainer can skip short recordings from the manifest alone (`SequenceTooShort` is raised otherwise).
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import numpy as np

from cpgait.errors import CpgaitError, atomic_output
from cpgait.runtime.core.files import npz_fields, read_text
from cpgait.runtime.core.layouts import get_layout
from cpgait.runtime.core.sequence import FORMAT, GMFCS_LEVELS, KeypointSequence
from cpgait.runtime.gait.resample import resample

SPLITS = ("train", "val", "test")
MANIFEST_COLUMNS = ("path", "subject_id", "label", "recording_id")
_REQUIRED_COLUMNS = MANIFEST_COLUMNS[:3]


@dataclass(frozen=True)
class Record:
    """One sequence file of a data set, described without loading its keypoints."""

    path: Path
    subject_id: str
    label: int | None
    recording_id: str
    num_frames: int
    fps: float
    layout: str

    def __post_init__(self) -> None:
        if self.label is not None and self.label not in range(len(GMFCS_LEVELS)):
            raise CpgaitError(f"{self.path}: label is {self.label}; expected 0-3 (GMFCS I-IV) or none")
        if not (math.isfinite(self.fps) and self.fps > 0):
            raise CpgaitError(f"{self.path}: fps is {self.fps}; expected a number > 0")
        if self.num_frames < 0:
            raise CpgaitError(f"{self.path}: {self.num_frames} frames; expected a count >= 0")
        get_layout(self.layout)

    def load(self) -> KeypointSequence:
        """Read and validate the sequence; subject, label and recording id are the record's (the manifest's)."""
        seq = KeypointSequence.load(self.path)
        return replace(seq, subject_id=self.subject_id, label=self.label, recording_id=self.recording_id)

    @classmethod
    def read(cls, path: str | Path) -> Record:
        """Describe a sequence file from its small fields and the `keypoints` header (no keypoints decompressed)."""
        path = Path(path)
        small = ("format", "fps", "layout", "label", "subject_id", "recording_id")
        fields, shapes = npz_fields(path, small, ("keypoints",), "sequence file")
        missing = [name for name in (*small, "keypoints") if name not in shapes]
        if missing:
            raise CpgaitError(f"{path}: not a cpgait sequence file (missing field(s) {', '.join(missing)})")
        shape = shapes["keypoints"]
        try:
            label, fps = int(fields["label"]), float(fields["fps"])
        except (TypeError, ValueError, OverflowError) as exc:
            raise CpgaitError(f"{path}: label or fps has the wrong type or size ({exc})") from None
        if str(fields["format"]) != FORMAT:
            raise CpgaitError(f"{path}: format is {str(fields['format'])!r}; expected {FORMAT!r}")
        layout = str(fields["layout"])
        try:
            num_joints = get_layout(layout).num_joints
        except CpgaitError as exc:
            raise CpgaitError(f"{path}: {exc}") from None
        if len(shape) != 3 or shape[2] != 3 or shape[1] != num_joints:
            raise CpgaitError(f"{path}: keypoints have shape {shape}; expected [T, {num_joints}, 3] for {layout}")
        return cls(
            path=path,
            subject_id=str(fields["subject_id"]),
            label=None if label < 0 else label,
            recording_id=str(fields["recording_id"]) or path.stem,
            num_frames=int(shape[0]),
            fps=fps,
            layout=layout,
        )


@dataclass(frozen=True)
class Dataset:
    """An ordered, immutable list of records; `from_path` builds one, `subject_split` divides one."""

    records: tuple[Record, ...]

    def __post_init__(self) -> None:
        seen: set[Path] = set()
        for record in self.records:
            key = record.path.resolve()
            if key in seen:
                raise CpgaitError(f"{record.path}: listed twice in the data set")
            seen.add(key)

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    def __getitem__(self, index: int) -> Record:
        return self.records[index]

    @property
    def subjects(self) -> list[str]:
        """Subject ids, sorted, each once."""
        return sorted({r.subject_id for r in self.records})

    @classmethod
    def from_path(cls, path: str | Path) -> Dataset:
        """A directory of `.npz` sequence files or a CSV manifest (see the module docstring for the columns)."""
        path = Path(path)
        if path.is_dir():
            files = sorted(path.rglob("*.npz"))
            if not files:
                raise CpgaitError(f"{path}: no *.npz sequence files in this directory")
            return cls(tuple(Record.read(f) for f in files))
        if path.is_file() and path.suffix.lower() == ".csv":
            return cls(tuple(_read_manifest(path)))
        raise CpgaitError(f"{path}: expected a directory of .npz sequence files or a .csv manifest")


def _read_manifest(csv_path: Path) -> Iterator[Record]:
    text = read_text(csv_path, "CSV manifest")
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise CpgaitError(f"{csv_path}: cannot read the manifest ({exc})") from None
    if not rows:
        raise CpgaitError(f"{csv_path}: empty manifest; expected a header with columns {', '.join(MANIFEST_COLUMNS)}")
    header = [h.strip() for h in rows[0]]
    unknown = [h for h in header if h not in MANIFEST_COLUMNS]
    missing = [h for h in _REQUIRED_COLUMNS if h not in header]
    if unknown or missing or len(set(header)) != len(header):
        raise CpgaitError(
            f"{csv_path} line 1: header is {', '.join(header) or '(empty)'}; expected columns "
            f"{', '.join(_REQUIRED_COLUMNS)} and optionally recording_id, each once"
        )
    if not any(any(c.strip() for c in row) for row in rows[1:]):
        raise CpgaitError(f"{csv_path}: the manifest lists no sequence files")
    first_line: dict[Path, int] = {}
    for line, row in enumerate(rows[1:], start=2):
        where = f"{csv_path} line {line}"
        if not any(c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise CpgaitError(f"{where}: {len(row)} values; expected {len(header)} ({', '.join(header)})")
        cell = {h: v.strip() for h, v in zip(header, row)}
        if not cell["path"]:
            raise CpgaitError(f"{where}: empty path")
        if not cell["subject_id"]:
            raise CpgaitError(f"{where}: empty subject_id; every recording needs the subject who walked")
        label = _parse_label(cell["label"], where)
        file_path = Path(cell["path"]) if Path(cell["path"]).is_absolute() else csv_path.parent / cell["path"]
        first = first_line.setdefault(file_path.resolve(), line)
        if first != line:
            raise CpgaitError(f"{where}: {cell['path']} is listed twice (first on line {first})")
        try:
            record = Record.read(file_path)
        except CpgaitError as exc:
            raise CpgaitError(f"{where}: {exc}") from None
        yield replace(
            record,
            subject_id=_agree(record.subject_id, cell["subject_id"], "subject_id", where, record.path),
            label=_agree(record.label, label, "label", where, record.path),
            recording_id=_agree(
                record.recording_id,
                cell.get("recording_id") or None,
                "recording_id",
                where,
                record.path,
                file_default=record.path.stem,
            ),
        )


def _parse_label(text: str, where: str) -> int | None:
    if text in ("", "-1"):
        return None
    if text not in {str(i) for i in range(len(GMFCS_LEVELS))}:
        raise CpgaitError(f"{where}: label is {text!r}; expected 0-3 (GMFCS I-IV), or empty/-1 when unknown")
    return int(text)


AgreeT = TypeVar("AgreeT", str, int | None)


def _agree(
    in_file: AgreeT,
    in_csv: AgreeT | None,
    column: str,
    where: str,
    path: Path,
    file_default: str | None = None,
) -> AgreeT:
    """The manifest fills what the file leaves empty; a contradiction is an error naming both values."""
    if in_csv is None:
        return in_file
    if in_file in (None, "", file_default) or in_file == in_csv:
        return in_csv
    raise CpgaitError(f"{where}: {column} is {in_csv!r} but {path} says {in_file!r}; make them agree")


def write_manifest(dataset: Dataset, csv_path: str | Path, overwrite: bool = False) -> Path:
    """Write `dataset` as a CSV manifest (paths relative to the CSV's folder) that `Dataset.from_path` reads back."""
    csv_path = Path(csv_path)
    if csv_path.suffix.lower() != ".csv":
        raise CpgaitError(f"{csv_path}: manifests end in .csv")
    with atomic_output(csv_path, overwrite) as tmp, tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(MANIFEST_COLUMNS)
        for r in dataset:
            rel = Path(os.path.relpath(r.path.resolve(), csv_path.parent.resolve())).as_posix()
            writer.writerow([rel, r.subject_id, "" if r.label is None else r.label, r.recording_id])
    return csv_path


def subject_split(
    dataset: Dataset, fractions: tuple[float, float, float] = (0.7, 0.1, 0.2), seed: int = 0
) -> dict[str, Dataset]:
    """Split by subject into "train", "val", "test", stratified by label; the same seed gives the same split.

    Every recording of a subject lands in the same split. A subject's label is the label of its recordings
    (unknown labels form their own stratum); a subject whose recordings disagree is an error naming it. Within
    each label the subjects are shuffled with `seed` and dealt out by largest remainder, with the remainders
    carried across labels so that the split sizes also match `fractions` overall. Small sets: every split with a
    fraction > 0 gets at least one subject when there are enough subjects for that (one is moved from the split
    most over its target); with fewer subjects than such splits, train is filled first, then the larger of the
    other fractions, and the rest stay empty (an empty `Dataset`).
    """
    fr = np.asarray(fractions, dtype=np.float64)
    if fr.shape != (3,) or not np.all(np.isfinite(fr)) or fr.min() < 0 or abs(fr.sum() - 1) > 1e-6:
        raise CpgaitError(
            f"split fractions are {tuple(fractions)}; expected three numbers >= 0 (train, val, test) that sum to 1"
        )
    label_of: dict[str, int | None] = {}
    for r in dataset:
        if not r.subject_id:
            raise CpgaitError(f"{r.path}: no subject_id; a subject-level split needs to know who walked")
        if r.subject_id in label_of and label_of[r.subject_id] != r.label:
            labels = sorted({str(x.label) for x in dataset if x.subject_id == r.subject_id})
            raise CpgaitError(
                f"subject {r.subject_id!r} has recordings with different labels ({', '.join(labels)}); "
                "expected one label per subject"
            )
        label_of[r.subject_id] = r.label
    rng = np.random.default_rng(seed)
    strata = sorted({lab for lab in label_of.values()}, key=lambda lab: (lab is None, lab or 0))
    # assigned[s][k]: subjects of stratum s in split k, in dealing order
    assigned: list[list[list[str]]] = []
    exact_so_far = np.zeros(3)
    count = np.zeros(3, dtype=int)
    for lab in strata:
        subjects = sorted(s for s, sl in label_of.items() if sl == lab)
        subjects = [subjects[i] for i in rng.permutation(len(subjects))]
        exact = len(subjects) * fr
        exact_so_far += exact
        take = np.floor(exact + 1e-9).astype(int)
        deficit = exact_so_far - (count + take)
        deficit[fr == 0] = -np.inf
        for k in np.argsort(-deficit, kind="stable")[: len(subjects) - take.sum()]:
            take[k] += 1
        count += take
        bounds = np.cumsum(take)[:-1]
        assigned.append([list(part) for part in np.split(np.asarray(subjects, dtype=object), bounds)])
    _fill_empty_splits(assigned, count, fr, len(label_of))
    split_of = {s: k for stratum in assigned for k, part in enumerate(stratum) for s in part}
    return {name: Dataset(tuple(r for r in dataset if split_of[r.subject_id] == k)) for k, name in enumerate(SPLITS)}


def _fill_empty_splits(assigned: list[list[list[str]]], count: np.ndarray, fr: np.ndarray, n_subjects: int) -> None:
    """Move single subjects into empty splits (largest fraction first) from the split most over its target."""
    for k in sorted(np.flatnonzero(fr > 0), key=lambda k: (-fr[k], k)):
        if count[k] > 0:
            continue
        donors = [d for d in range(3) if count[d] >= 2]
        if not donors:
            return
        donor = max(donors, key=lambda d: (count[d] - n_subjects * fr[d], -d))
        stratum = max(range(len(assigned)), key=lambda s: (len(assigned[s][donor]), -s))
        assigned[stratum][k].append(assigned[stratum][donor].pop())
        count[donor] -= 1
        count[k] += 1


# ---- windows ------------------------------------------------------------------------------------------------


class SequenceTooShort(CpgaitError):
    """A recording has fewer frames than one window needs; `frames` and `needed` are at the model fps."""

    def __init__(self, message: str, frames: int, needed: int) -> None:
        super().__init__(message)
        self.frames = frames
        self.needed = needed


def min_frames(window: int, fps_model: float, fps_source: float) -> int:
    """Fewest frames at `fps_source` that give `window` frames at `fps_model` (compare with `Record.num_frames`)."""
    return int(math.ceil((window - 1) * fps_source / fps_model - 1e-9)) + 1


def windows(seq: KeypointSequence, window: int, fps: float, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut `seq`, resampled to the model's `fps`, into windows of `window` frames every `stride` frames.

    Returns `(keypoints [W, window, V, 3] float32, starts [W] int64)`: raw keypoints (no normalisation) and each
    window's first frame at the model fps (seconds = start / fps). A tail shorter than `stride` is not covered.
    Raises `SequenceTooShort` when the resampled recording has fewer than `window` frames.
    """
    if window < 1 or stride < 1:
        raise CpgaitError(f"window is {window} and stride {stride} frames; expected both >= 1")
    kp = resample(seq.keypoints, seq.fps, fps)
    if kp.shape[0] < window:
        raise SequenceTooShort(
            f"recording {seq.recording_id or '(unnamed)'} of subject {seq.subject_id or '(unknown)'}: "
            f"{kp.shape[0]} frames at {fps:g} fps ({seq.num_frames} at {seq.fps:g} fps); a window needs {window} "
            f"frames ({min_frames(window, fps, seq.fps)} at {seq.fps:g} fps)",
            frames=int(kp.shape[0]),
            needed=window,
        )
    starts = np.arange(0, kp.shape[0] - window + 1, stride, dtype=np.int64)
    index = starts[:, None] + np.arange(window)[None, :]
    return kp[index], starts


def require_layout(item: Record | KeypointSequence, accepted: Iterable[str]) -> None:
    """Raise unless `item` (a record or a loaded sequence) has one of the `accepted` layout names."""
    accepted = tuple(accepted)
    for name in accepted:
        get_layout(name)
    if item.layout in accepted:
        return
    where = str(item.path) if isinstance(item, Record) else f"recording {item.recording_id or '(unnamed)'}"
    raise CpgaitError(f"{where}: layout is {item.layout!r}; expected {' or '.join(repr(a) for a in accepted)}")
