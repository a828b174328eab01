"""Test helper: a miniature of the Gillette CP video data set in its processed layout, made from SYNTHETIC walks.

Written the way the paper's code (stanfordnmbl/mobile-gaitlab) writes it: `processed/video_csvs/<videoid>.csv` as
`numpy.savetxt(..., delimiter=",")` with 75 BODY_25 values (x, y, confidence in pixels) per frame at 25 fps, a NaN
row where nobody was found and 0, 0, 0 for a point not found; `processed/alldata_processed.csv` with one row per
exam and side; `processed/train_test_valid_id_split.csv`. Nothing here comes from the real data set.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cpgait.runtime.core.layouts import BODY25, COCO17_FEET
from cpgait.runtime.core.sequence import KeypointSequence
from cpgait.training.synth import synthesize

FPS = 25.0
COLUMNS = [
    "videoid",
    "Patient_ID",
    "examid",
    "side",
    "gmfcs",
    "GDI",
    "speed",
    "cadence",
    "KneeFlex_maxExtension",
    "age",
]
_NECK, _MID_HIP = BODY25.index("neck"), BODY25.index("mid_hip")
# where each coco17_feet joint sits in BODY_25, by name (not the importer's table, which this checks)
_BODY25_OF = [BODY25.index(j.replace("_toe", "_big_toe")) for j in COCO17_FEET.joints]


def to_body25_rows(seq: KeypointSequence) -> np.ndarray:
    """`[T, 75]` OpenPose rows of a `coco17_feet` sequence: neck and mid-hip as the midpoints OpenPose would put
    there, small toes not found (0, 0, 0), a NaN row for a frame with nobody in it."""
    kp = seq.keypoints.astype(np.float64)
    out = np.zeros((len(kp), BODY25.num_joints, 3))
    out[:, _BODY25_OF] = kp
    for target, pair in ((_NECK, (5, 6)), (_MID_HIP, (11, 12))):
        both = (kp[:, pair, 2] > 0).all(axis=1)
        out[both, target, :2] = kp[both][:, pair, :2].mean(axis=1)
        out[both, target, 2] = kp[both][:, pair, 2].min(axis=1)
    out[np.isnan(out)] = 0.0  # points the sequence lacks (NaN, confidence 0) -> OpenPose's 0, 0, 0
    rows = out.reshape(len(kp), -1)
    rows[~(kp[..., 2] > 0).any(axis=1)] = np.nan
    return rows


@dataclass
class Miniature:
    """What was written: the expected sequences and truths of the importable videos, and the deliberate faults."""

    root: Path
    sequences: dict[str, KeypointSequence] = field(default_factory=dict)  # importable, labelled
    truths: dict[str, dict] = field(default_factory=dict)  # synthetic truth of every written walk
    unlabelled: dict[str, str] = field(default_factory=dict)  # videoid -> why it has no usable level
    broken: dict[str, str] = field(default_factory=dict)  # videoid -> kind of skip
    split: dict[str, str] = field(default_factory=dict)  # videoid -> train/validation/test


def write_miniature(root: Path, seed: int = 0) -> Miniature:
    """Eight labelled videos of four patients (two exams each, levels I-IV, some NaN rows), plus: two videos without
    a level (empty, V), a patient whose exams disagree on the level, a broken CSV, a table row without a CSV and a
    CSV without table rows."""
    rng = np.random.default_rng(seed)
    mini = Miniature(root)
    videos = root / "processed" / "video_csvs"
    videos.mkdir(parents=True)
    table: list[list[object]] = []

    def walk(videoid: str, patient: str, level: int, gmfcs: str | list[str]) -> KeypointSequence:
        seq, truth = synthesize(level, rng, fps=FPS, duration_s=6.0, subject_id=patient, recording_id=videoid)
        seq.keypoints[[10, 11, 40]] = (np.nan, np.nan, 0.0)  # nobody found in these frames -> NaN rows
        np.savetxt(videos / f"{videoid}.csv", to_body25_rows(seq), delimiter=",")
        mini.truths[videoid] = truth
        levels = [gmfcs, gmfcs] if isinstance(gmfcs, str) else gmfcs
        for side, name, cell in (("L", "left", levels[0]), ("R", "right", levels[1])):
            table.append(
                [
                    videoid,
                    patient,
                    f"e{videoid}",
                    side,
                    cell,
                    repr(float(rng.uniform(60, 100))),
                    repr(truth["speed_m_per_s"]),
                    repr(truth["cadence_steps_per_min"] / 120),  # the table stores strides/s
                    repr(truth["knee_min_deg"][name]),
                    "9.5",
                ]
            )
        return seq

    splits = ["train", "train", "validation", "test"]
    for p, level in enumerate(range(4)):
        for exam in range(2):
            videoid = f"{1000 + 10 * p + exam}"
            mini.sequences[videoid] = walk(videoid, f"P{p}", level, str(level + 1))
            mini.split[videoid] = splits[p]
    walk("2000", "P10", 1, "")
    mini.unlabelled["2000"] = "no GMFCS level"
    walk("2001", "P11", 3, "5.0")
    mini.unlabelled["2001"] = "GMFCS V"
    walk("2002", "P12", 1, "2")
    walk("2003", "P12", 2, "3")
    mini.unlabelled.update({"2002": "exams give different levels", "2003": "exams give different levels"})
    walk("2004", "P13", 0, ["1", "2"])
    mini.unlabelled["2004"] = "sides give different GMFCS levels"
    walk("3000", "P20", 0, "1")
    with (videos / "3000.csv").open("a") as fh:
        fh.write("1.0,2.0,3.0\n")  # a truncated last row
    mini.broken["3000"] = "unreadable video CSV"
    table += [["3001", "P21", "e3001", side, "2", "70", "1.0", "1.0", "5", "8"] for side in "LR"]
    mini.broken["3001"] = "no video CSV"
    np.savetxt(videos / "4000.csv", np.zeros((5, 75)), delimiter=",")  # a CSV the table does not list
    with (root / "processed" / "alldata_processed.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        writer.writerows(table)
    split_rows = [[v, "0.1", "3", f"P{int(v[2])}", "0.5", d] for v, d in mini.split.items() if v != "1031"]
    with (root / "processed" / "train_test_valid_id_split.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["videoid", "pct_missing", "n_segments", "Patient_ID", "random_num", "dataset"])
        writer.writerows(split_rows)
    return mini
