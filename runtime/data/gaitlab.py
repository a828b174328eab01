"""Import the Gillette CP video data set (Kidziński et al. 2020) in the processed layout of the paper's code.

The data set (doi:10.18735/j0rz-0k12, CC BY-NC 2.0; https://simtk.org/frs/?group_id=1918) holds OpenPose keypoints
of videos of children with cerebral palsy walking, and per exam and side the gait lab's 3-D measurements and the
GMFCS level. cpgait does not ship it; `cpgait import gaitlab ROOT -o DATA/` turns a downloaded copy into cpgait
sequence files, lab-truth files and manifests. The layout is the one the paper's public code (repository
`stanfordnmbl/mobile-gaitlab`, `training/*.ipynb`, `training/video_process_utils.py`) reads under its data folder:

    ROOT/processed/video_csvs/<videoid>.csv           one video's keypoints
    ROOT/processed/alldata_processed.csv              one row per exam and side: the lab table
    ROOT/processed/train_test_valid_id_split.csv      optional: the paper's subject-level split

`--videos DIR --table CSV [--split-file CSV]` name the same files in another arrangement.

Video CSV (as `numpy.savetxt(..., delimiter=",")` writes it and `numpy.loadtxt` reads it): no header, one row per
frame at 25 fps, 75 numbers per row = x, y, confidence of the 25 OpenPose BODY_25 keypoints in pixels. A row of NaN
= nobody found in that frame; x = y = confidence = 0 = that point not found (OpenPose's marker). Each video becomes
one COCO-17 + feet sequence (`cpgait.runtime.data.importers`; neck, mid-hip and small toes are dropped).

Lab table (comma-separated, header row). Used columns: `videoid`, `Patient_ID`, `side` (L or R), `gmfcs` (1-5)
and, where present, `examid`, `speed` (m/s), `cadence` (strides/s), `KneeFlex_maxExtension` (degrees, least knee
flexion in stance; negative = hyperextension) and `GDI`. Every column of a video's rows is kept in its truth file.

Per video: subject = `Patient_ID` (so every split stays subject-level), recording = `videoid`, label = GMFCS level
1-4 as 0-3. A video has no usable level when its rows leave it empty or not a whole number, give level V (cpgait
models I-IV), disagree between sides, or when the patient's exams give different levels (a subject-level split needs
one level per subject). Such videos are skipped and counted, or kept unlabelled (`keep_unlabelled`). Any other
problem with a video (no CSV, an unreadable one, nobody in it, rows that disagree on the patient) skips it with the
reason counted; a problem with the table or the split file as a whole is an error.

Output in DATA/: `sequences/<videoid>.npz` and `sequences/<videoid>.truth.json` (lab truth, keys shared with the
synthetic generator's truth where the quantity is the same: `cadence_steps_per_min` = cadence x 120,
`speed_m_per_s`, `knee_min_deg` {left, right} = KneeFlex_maxExtension; the table's own values under `lab`),
`manifest.csv` (labelled recordings), `unlabelled.csv` (kept unlabelled ones), with a split file `train.csv`,
`val.csv`, `test.csv` and `trainval.csv` (train + validation, for `cpgait train`, which draws its own validation
subjects), and `import-summary.json`.
"""

from __future__ import annotations

import csv
import json
import math
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cpgait.errors import CpgaitError, refuse_overwrite
from cpgait.runtime.core.layouts import BODY25
from cpgait.runtime.core.sequence import GMFCS_LEVELS, MIN_FRAMES, KeypointSequence
from cpgait.runtime.data.dataset import Dataset, Record, write_manifest
from cpgait.runtime.data.importers import found_points, make_sequence

FPS = 25.0  # the paper's code: FPS = 25.0 in video_process_utils.py
VIDEOS = Path("processed/video_csvs")
TABLE = Path("processed/alldata_processed.csv")
SPLIT_FILE = Path("processed/train_test_valid_id_split.csv")
REQUIRED_COLUMNS = ("videoid", "Patient_ID", "side", "gmfcs")
SIDES = {"L": "left", "R": "right"}
SPLIT_NAMES = {"train": "train", "validation": "val", "test": "test"}  # the paper's name -> cpgait's
MANIFESTS = ("manifest.csv", "unlabelled.csv", "train.csv", "val.csv", "test.csv", "trainval.csv")
OUTPUT_FILES = (*MANIFESTS, "import-summary.json")
CITATION = (
    "Gillette Children's Specialty Healthcare CP gait videos processed with OpenPose (Kidzinski et al., Nature "
    "Communications 11, 4054, 2020; doi:10.18735/j0rz-0k12), licence CC BY-NC 2.0: non-commercial use only"
)
TRUTH_DEFINITIONS = {
    "cadence_steps_per_min": "the table's cadence (strides/s) x 120, mean of the sides given",
    "speed_m_per_s": "the table's walking speed, m/s, mean of the sides given",
    "knee_min_deg": "KneeFlex_maxExtension per side: least knee flexion in stance, degrees (3-D motion capture)",
    "gdi": "Gait Deviation Index per side (100 = typical)",
    "lab": "every column of the table's rows for this video, per side (L, R), as stored",
}


@dataclass(frozen=True)
class GaitlabFiles:
    """Where the data set's files are: the folder of video CSVs, the lab table and the optional split file."""

    videos: Path
    table: Path
    split_file: Path | None = None

    def __post_init__(self) -> None:
        if not self.videos.is_dir():
            raise CpgaitError(f"{self.videos}: not a folder; expected the folder of <videoid>.csv keypoint files")
        for what, path in (("lab table", self.table), ("split file", self.split_file)):
            if path is not None and not path.is_file():
                raise CpgaitError(f"{path}: no such file; expected the {what} (a CSV)")

    @classmethod
    def locate(
        cls,
        root: str | Path | None,
        videos: str | Path | None = None,
        table: str | Path | None = None,
        split_file: str | Path | None = None,
    ) -> GaitlabFiles:
        """ROOT's `processed/` layout, with `videos`, `table` and `split_file` overriding its parts."""
        base = None if root is None else Path(root)
        if base is not None and not base.is_dir():
            raise CpgaitError(f"{base}: not a folder; expected the data set's root (holding {VIDEOS} and {TABLE})")
        if base is None and (videos is None or table is None):
            raise CpgaitError("no data set given; expected ROOT, or both --videos DIR and --table CSV")
        split = Path(split_file) if split_file is not None else None
        if split is None and base is not None and (base / SPLIT_FILE).is_file():
            split = base / SPLIT_FILE
        if base is None:
            return cls(Path(str(videos)), Path(str(table)), split)
        return cls(
            base / VIDEOS if videos is None else Path(videos), base / TABLE if table is None else Path(table), split
        )


@dataclass(frozen=True)
class Skip:
    """A video left out, with the kind of problem (for counting) and the details."""

    videoid: str
    kind: str
    detail: str


@dataclass
class ImportSummary:
    """What an import read, wrote and left out (`text()` is the table the CLI prints)."""

    videos_in_table: int = 0
    csvs_without_rows: int = 0
    imported: list[str] = field(default_factory=list)
    frames: int = 0
    empty_frames: int = 0
    missing_points: int = 0
    points: int = 0
    levels: Counter = field(default_factory=Counter)
    splits: Counter = field(default_factory=Counter)
    subjects: set[str] = field(default_factory=set)
    truth_counts: Counter = field(default_factory=Counter)
    skipped: list[Skip] = field(default_factory=list)
    unlabelled_reasons: list[Skip] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "videos_in_table": self.videos_in_table,
            "video_csvs_without_table_rows": self.csvs_without_rows,
            "videos_imported": len(self.imported),
            "subjects": len(self.subjects),
            "frames": self.frames,
            "frames_with_nobody": self.empty_frames,
            "missing_point_share": self.missing_points / self.points if self.points else None,
            "levels": {name: self.levels[name] for name in (*GMFCS_LEVELS, "unlabelled")},
            "splits": dict(self.splits),
            "truth_values": dict(self.truth_counts),
            "skipped": [vars(s) for s in self.skipped],
            "kept_unlabelled": [vars(s) for s in self.unlabelled_reasons],
        }

    def text(self) -> str:
        """A plain-text summary table: videos, frames, missing data, levels, splits, skips by reason."""
        rows = [
            ("videos in the lab table", str(self.videos_in_table)),
            ("video CSVs with no table rows (ignored)", str(self.csvs_without_rows)),
            ("videos imported", str(len(self.imported))),
            ("subjects (Patient_ID)", str(len(self.subjects))),
            ("frames (25 fps)", f"{self.frames} ({self.frames / FPS / 3600:.1f} h)"),
            ("frames with nobody found", _share(self.empty_frames, self.frames)),
            ("keypoints missing (all frames)", _share(self.missing_points, self.points)),
            ("GMFCS levels", ", ".join(f"{n} {self.levels[n]}" for n in (*GMFCS_LEVELS, "unlabelled"))),
        ]
        if self.splits:
            rows.append(("split (the split file)", ", ".join(f"{k} {v}" for k, v in sorted(self.splits.items()))))
        rows.append(("lab values attached", ", ".join(f"{k} {v}" for k, v in sorted(self.truth_counts.items()))))
        for title, items in (("skipped", self.skipped), ("kept unlabelled", self.unlabelled_reasons)):
            rows.append((title, str(len(items))))
            for kind, count in Counter(s.kind for s in items).most_common():
                examples = [s for s in items if s.kind == kind][:2]
                shown = "; ".join(f"{s.videoid}: {s.detail}" for s in examples)
                rows.append((f"  {kind}", f"{count} (e.g. {shown})"))
        width = max(len(r[0]) for r in rows)
        return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)


def _share(part: int, whole: int) -> str:
    return f"{part} ({part / whole:.1%})" if whole else "0"


# ---- the lab table -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Exam:
    """One video's rows of the lab table, by side ("L", "R"), each a dict of column -> cell text."""

    videoid: str
    rows: dict[str, dict[str, str]]
    lines: tuple[int, ...]


def read_table(path: Path) -> dict[str, Exam]:
    """The lab table's rows grouped by video (in file order); a malformed table is an error naming the line."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = [h.strip() for h in next(reader, [])]
            body = [(reader.line_num, row) for row in reader if any(c.strip() for c in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CpgaitError(f"{path}: cannot read the lab table as CSV ({exc})") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing or len(set(header)) != len(header):
        raise CpgaitError(
            f"{path} line 1: {'missing column(s) ' + ', '.join(missing) if missing else 'repeated column names'}; "
            f"expected a header with {', '.join(REQUIRED_COLUMNS)} (alldata_processed.csv of the paper's code)"
        )
    grouped: dict[str, list[tuple[int, dict[str, str]]]] = {}
    for line, row in body:
        if len(row) != len(header):
            raise CpgaitError(f"{path} line {line}: {len(row)} values; expected {len(header)} as in the header")
        cell = {h: v.strip() for h, v in zip(header, row)}
        videoid = video_key(cell["videoid"])
        if not videoid:
            raise CpgaitError(f"{path} line {line}: empty videoid; expected the video's id (its CSV's name)")
        if cell["side"].upper() not in SIDES:
            raise CpgaitError(f"{path} line {line}: side is {cell['side']!r}; expected L or R")
        cell["side"] = cell["side"].upper()
        grouped.setdefault(videoid, []).append((line, cell))
    if not grouped:
        raise CpgaitError(f"{path}: no rows below the header; expected one row per exam and side")
    exams = {}
    for videoid, items in grouped.items():
        rows: dict[str, dict[str, str]] = {}
        for _, cell in items:
            rows.setdefault(cell["side"], cell)  # a repeated side is reported by `exam_problem`
        exams[videoid] = Exam(videoid, rows, tuple(line for line, _ in items))
    return exams


def video_key(text: str) -> str:
    """A videoid as the CSV's file name has it: pandas may have written an integer id as "1234.0"."""
    text = text.strip()
    if text.endswith(".0") and text[:-2].isdigit():
        return text[:-2]
    return text


def exam_problem(exam: Exam) -> str:
    """Why a video's table rows cannot be used (empty string when they can)."""
    if len(exam.lines) != len(exam.rows):
        return f"{len(exam.lines)} table rows (lines {', '.join(map(str, exam.lines))}) for {len(exam.rows)} side(s)"
    patients = {row["Patient_ID"] for row in exam.rows.values()}
    if len(patients) != 1 or "" in patients:
        return f"the sides' rows give Patient_ID {' and '.join(sorted(map(repr, patients)))}; expected one"
    return ""


def parse_level(text: str) -> tuple[int | None, str]:
    """GMFCS cell -> (label 0-3, "") or (None, why it is not usable)."""
    if text.strip().lower() in ("", "nan", "na", "none"):
        return None, "no GMFCS level"
    try:
        value = float(text)
    except ValueError:
        return None, f"GMFCS is {text!r}; expected 1-4"
    if value != int(value) or not 1 <= value <= 5:
        return None, f"GMFCS is {text!r}; expected a whole number 1-4"
    if value == 5:
        return None, "GMFCS V (cpgait models I-IV)"
    return int(value) - 1, ""


def exam_level(exam: Exam) -> tuple[int | None, str]:
    """The video's label from its sides' gmfcs cells, or None and why not."""
    parsed = {side: parse_level(row["gmfcs"]) for side, row in sorted(exam.rows.items())}
    labels = {label for label, _ in parsed.values()}
    if len(labels) > 1:
        cells = ", ".join(f"{side} {exam.rows[side]['gmfcs']!r}" for side in parsed)
        return None, f"the sides give different GMFCS levels ({cells})"
    label, why = next(iter(parsed.values()))
    return label, why


def subject_levels(exams: dict[str, Exam]) -> dict[str, tuple[int | None, str]]:
    """Each video's label after the subject rule: a patient whose exams disagree on the level has none."""
    per_video = {v: exam_level(e) for v, e in exams.items() if not exam_problem(e)}
    by_patient: dict[str, set[int]] = {}
    for videoid, (label, _) in per_video.items():
        if label is not None:
            by_patient.setdefault(_patient(exams[videoid]), set()).add(label)
    result = {}
    for videoid, (label, why) in per_video.items():
        levels = by_patient.get(_patient(exams[videoid]), set())
        if label is not None and len(levels) > 1:
            names = ", ".join(GMFCS_LEVELS[lvl] for lvl in sorted(levels))
            label, why = None, f"Patient_ID {_patient(exams[videoid])}'s exams give different levels ({names})"
        result[videoid] = (label, why)
    return result


def _patient(exam: Exam) -> str:
    return next(iter(exam.rows.values()))["Patient_ID"]


def read_split(path: Path, exams: dict[str, Exam]) -> dict[str, str]:
    """videoid -> train/val/test from the paper's split file; a patient in two splits is an error."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CpgaitError(f"{path}: cannot read the split file as CSV ({exc})") from None
    if not rows or not {"videoid", "dataset"} <= set(rows[0]):
        raise CpgaitError(f"{path}: expected a CSV with columns videoid and dataset (train, validation or test)")
    split = {}
    for line, row in enumerate(rows, start=2):
        name = SPLIT_NAMES.get((row["dataset"] or "").strip())
        if name is None:
            raise CpgaitError(f"{path} line {line}: dataset is {row['dataset']!r}; expected {', '.join(SPLIT_NAMES)}")
        split[video_key(row["videoid"] or "")] = name
    where: dict[str, set[str]] = {}
    for videoid, name in split.items():
        if videoid in exams and not exam_problem(exams[videoid]):
            where.setdefault(_patient(exams[videoid]), set()).add(name)
    mixed = sorted(p for p, names in where.items() if len(names) > 1)
    if mixed:
        raise CpgaitError(
            f"{path}: Patient_ID {mixed[0]} has videos in {' and '.join(sorted(where[mixed[0]]))} "
            f"({len(mixed)} patient(s) in more than one split); expected a subject-level split"
        )
    return split


# ---- videos ----------------------------------------------------------------------------------------------------


def read_video(
    path: Path, fps: float, image_size: tuple[int, int] | None, label: int | None, subject: str, videoid: str
) -> KeypointSequence:
    """One video CSV as a COCO-17 + feet sequence; any problem is a `CpgaitError` naming the file."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numpy warns on an empty file; the shape check below says it better
            values = np.loadtxt(path, delimiter=",", dtype=np.float64, ndmin=2)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        reason = str(exc).split("; use `usecols`")[0]  # numpy's advice to pick columns does not apply here
        raise CpgaitError(f"{path}: not a keypoint CSV ({reason})") from None
    expected = 3 * BODY25.num_joints
    if values.shape[0] < MIN_FRAMES or values.shape[1] != expected:
        raise CpgaitError(
            f"{path}: {values.shape[0]} row(s) of {values.shape[1]} values; expected at least {MIN_FRAMES} rows of "
            f"{expected} (x, y, confidence of the 25 BODY_25 keypoints)"
        )
    points = found_points(values.reshape(len(values), BODY25.num_joints, 3), str(path), BODY25)
    if not (points[..., 2] > 0).any():
        raise CpgaitError(f"{path}: nobody was detected in any of its {len(points)} frames")
    source = f"{CITATION}; video {videoid} imported by cpgait import gaitlab"
    return make_sequence(points, "body25", fps, image_size, label, subject, videoid, source, where=str(path))


def lab_truth(exam: Exam, label: int | None) -> dict:
    """The truth file of one video: the shared-key lab values and every column of its table rows."""
    lab = {side: {k: _cell_value(v) for k, v in row.items()} for side, row in sorted(exam.rows.items())}

    def per_side(column: str) -> dict[str, float | None]:
        return {SIDES[s]: _number(lab[s].get(column)) if s in lab else None for s in SIDES}

    def both(column: str, scale: float = 1.0) -> float | None:
        values = [v for v in per_side(column).values() if v is not None]
        return float(np.mean(values)) * scale if values else None

    first = next(iter(exam.rows.values()))
    return {
        "synthetic": False,
        "note": CITATION,
        "recording_id": exam.videoid,
        "subject_id": first["Patient_ID"],
        "examid": first.get("examid"),
        "level": label,
        "gmfcs": None if label is None else GMFCS_LEVELS[label],
        "fps": FPS,
        "cadence_steps_per_min": both("cadence", 120.0),
        "speed_m_per_s": both("speed"),
        "knee_min_deg": per_side("KneeFlex_maxExtension"),
        "gdi": per_side("GDI"),
        "lab": lab,
        "definitions": TRUTH_DEFINITIONS,
    }


def _cell_value(text: str) -> int | float | str | None:
    """A table cell as a whole number or a number where it is one (NaN and empty -> None), else the text."""
    try:
        return int(text)
    except ValueError:
        pass
    number = _number(text)
    if number is not None or text.strip().lower() in ("", "nan", "na"):
        return number
    return text


def _number(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


# ---- the import ------------------------------------------------------------------------------------------------


def import_gaitlab(
    files: GaitlabFiles,
    out: str | Path,
    keep_unlabelled: bool = False,
    fps: float = FPS,
    image_size: tuple[int, int] | None = None,
    overwrite: bool = False,
) -> ImportSummary:
    """Import every video of the lab table into `out` (see the module docstring); returns the summary."""
    out = Path(out)
    if not (math.isfinite(fps) and fps > 0):
        raise CpgaitError(f"fps is {fps}; expected a number > 0 (the data set's videos are {FPS:g} fps)")
    if out.exists() and not out.is_dir():
        raise CpgaitError(f"{out}: exists and is not a folder; expected an output folder")
    existing = sorted((out / "sequences").glob("*.npz")) if out.is_dir() else []
    if existing and not overwrite:
        raise CpgaitError(f"{out}: already holds {len(existing)} sequence file(s); pass --overwrite to write there")
    for name in OUTPUT_FILES:
        refuse_overwrite(out / name, overwrite)
    exams = read_table(files.table)
    split = read_split(files.split_file, exams) if files.split_file is not None else {}
    levels = subject_levels(exams)
    summary = ImportSummary(videos_in_table=len(exams))
    summary.csvs_without_rows = sum(1 for p in files.videos.glob("*.csv") if video_key(p.stem) not in exams)
    labelled: list[Record] = []
    unlabelled: list[Record] = []
    for videoid, exam in exams.items():
        problem = exam_problem(exam)
        if problem:
            summary.skipped.append(Skip(videoid, "table rows unusable", problem))
            continue
        label, why = levels[videoid]
        if label is None and not keep_unlabelled:
            summary.skipped.append(Skip(videoid, "no usable GMFCS level", why))
            continue
        path = files.videos / f"{videoid}.csv"
        if not path.is_file():
            summary.skipped.append(Skip(videoid, "no video CSV", f"{path} does not exist"))
            continue
        try:
            seq = read_video(path, fps, image_size, label, _patient(exam), videoid)
        except CpgaitError as exc:
            kind = "nobody detected" if "nobody was detected" in str(exc) else "unreadable video CSV"
            summary.skipped.append(Skip(videoid, kind, str(exc)))
            continue
        if label is None:
            summary.unlabelled_reasons.append(Skip(videoid, "no usable GMFCS level", why))
        stem = out / "sequences" / videoid
        record = Record.read(seq.save(stem.with_suffix(".npz"), overwrite=overwrite))
        truth = lab_truth(exam, label)
        stem.with_suffix(".truth.json").write_text(json.dumps(truth, indent=1) + "\n", encoding="utf-8")
        (labelled if label is not None else unlabelled).append(record)
        in_split = (split.get(videoid, "not in the split file") if split else None) if label is not None else None
        _count(summary, seq, truth, in_split)
    if not summary.imported:
        reasons = Counter(s.kind for s in summary.skipped).most_common()
        raise CpgaitError(
            f"{files.table}: none of its {len(exams)} videos could be imported "
            f"({', '.join(f'{k}: {n}' for k, n in reasons)}); first: {summary.skipped[0].detail}"
        )
    _write_manifests(out, labelled, unlabelled, split)
    (out / "import-summary.json").write_text(json.dumps(summary.as_dict(), indent=1) + "\n", encoding="utf-8")
    return summary


def _count(summary: ImportSummary, seq: KeypointSequence, truth: dict, split: str | None) -> None:
    found = seq.keypoints[..., 2] > 0
    summary.imported.append(seq.recording_id)
    summary.subjects.add(seq.subject_id)
    summary.frames += seq.num_frames
    summary.empty_frames += int((~found.any(axis=1)).sum())
    summary.missing_points += int((~found).sum())
    summary.points += found.size
    summary.levels["unlabelled" if seq.label is None else GMFCS_LEVELS[seq.label]] += 1
    if split is not None:
        summary.splits[split] += 1
    for key in ("cadence_steps_per_min", "speed_m_per_s"):
        summary.truth_counts[key] += truth[key] is not None
    for side in ("left", "right"):
        summary.truth_counts[f"knee_min_deg.{side}"] += truth["knee_min_deg"][side] is not None


def _write_manifests(out: Path, labelled: list[Record], unlabelled: list[Record], split: dict[str, str]) -> None:
    """manifest.csv and unlabelled.csv, and with a split file the recordings of each of its splits; an earlier
    import's manifests that this one has no recordings for are removed (they would list stale files)."""
    out.mkdir(parents=True, exist_ok=True)
    for name in OUTPUT_FILES:
        (out / name).unlink(missing_ok=True)
    if labelled:
        write_manifest(Dataset(tuple(labelled)), out / "manifest.csv", overwrite=True)
    if unlabelled:
        write_manifest(Dataset(tuple(unlabelled)), out / "unlabelled.csv", overwrite=True)
    if not split:
        return
    parts = {name: [r for r in labelled if split.get(r.recording_id) == name] for name in SPLIT_NAMES.values()}
    parts["trainval"] = parts["train"] + parts["val"]
    for name, records in parts.items():
        if records:
            write_manifest(Dataset(tuple(records)), out / f"{name}.csv", overwrite=True)
