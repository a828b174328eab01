"""Data-set manifests, the subject-level stratified split, resampling and windows, on small hand-made sequences."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from cpgait.errors import CpgaitError
from cpgait.runtime.core.sequence import KeypointSequence
from cpgait.runtime.data.dataset import (
    Dataset,
    Record,
    SequenceTooShort,
    min_frames,
    require_layout,
    subject_split,
    windows,
    write_manifest,
)


def _seq(
    num_frames: int = 10,
    fps: float = 30.0,
    label: int | None = 0,
    subject: str = "s0",
    recording: str = "r0",
    layout: str = "coco17",
    seed: int = 0,
) -> KeypointSequence:
    rng = np.random.default_rng(seed)
    v = {"coco17": 17, "coco17_feet": 21, "body25": 25}[layout]
    kp = rng.uniform(0, 100, (num_frames, v, 3)).astype(np.float32)
    kp[..., 2] = rng.uniform(0.2, 1.0, (num_frames, v))
    return KeypointSequence(kp, fps, layout, (640, 480), label=label, subject_id=subject, recording_id=recording)


def _make_set(root: Path, per_label: tuple[int, ...] = (5, 5, 5, 5), recordings: int = 2) -> Path:
    """`per_label[k]` subjects of label k, each with `recordings` files (in a nested folder for some)."""
    for label, n in enumerate(per_label):
        for s in range(n):
            for r in range(recordings):
                sub = root / ("deep" if s % 2 else "") / f"l{label}_s{s}_r{r}.npz"
                _seq(8 + r, label=label, subject=f"L{label}S{s}", recording=f"L{label}S{s}R{r}", seed=s).save(sub)
    return root


def test_directory_lists_every_file_sorted_with_its_fields(tmp_path: Path) -> None:
    ds = Dataset.from_path(_make_set(tmp_path, per_label=(2, 1), recordings=2))
    assert len(ds) == 6
    assert [r.path for r in ds] == sorted(tmp_path.rglob("*.npz"))
    rec = next(r for r in ds if r.recording_id == "L0S1R1")
    assert (rec.subject_id, rec.label, rec.num_frames, rec.fps, rec.layout) == ("L0S1", 0, 9, 30.0, "coco17")
    loaded = rec.load()
    assert loaded.num_frames == 9 and loaded.subject_id == "L0S1"
    assert ds.subjects == ["L0S0", "L0S1", "L1S0"]


def test_manifest_round_trip_and_csv_fills_what_files_leave_empty(tmp_path: Path) -> None:
    _seq(label=None, subject="", recording="").save(tmp_path / "data" / "a.npz")
    _seq(label=2, subject="kid", recording="walk1").save(tmp_path / "data" / "b.npz")
    manifest = tmp_path / "lists" / "m.csv"
    manifest.parent.mkdir()
    manifest.write_text("path,subject_id,label\n../data/a.npz,kid2,1\n\n../data/b.npz,kid,\n\n")  # blank lines
    ds = Dataset.from_path(manifest)
    assert [(r.subject_id, r.label, r.recording_id) for r in ds] == [("kid2", 1, "a"), ("kid", 2, "walk1")]
    assert ds[0].load().label == 1 and ds[0].load().subject_id == "kid2"
    out = write_manifest(ds, tmp_path / "out" / "all.csv")
    assert out.read_text().splitlines()[1] == "../data/a.npz,kid2,1,a"
    again = Dataset.from_path(out)
    assert [(r.path.resolve(), r.subject_id, r.label, r.recording_id, r.num_frames) for r in again] == [
        (r.path.resolve(), r.subject_id, r.label, r.recording_id, r.num_frames) for r in ds
    ]
    with pytest.raises(CpgaitError, match="already exists"):
        write_manifest(ds, out)
    write_manifest(ds, out, overwrite=True)


def _bad_manifest(tmp_path: Path, case: str) -> Path:
    _seq(label=2, subject="kid").save(tmp_path / "a.npz")
    (tmp_path / "junk.npz").write_text("not a zip")
    path = tmp_path / "m.csv"
    text = {
        "missing column": "path,label\na.npz,2\n",
        "unknown column": "path,subject_id,label,gmfcs\na.npz,kid,2,II\n",
        "label 7": "path,subject_id,label\na.npz,kid,7\n",
        "label contradicts file": "path,subject_id,label\na.npz,kid,1\n",
        "subject contradicts file": "path,subject_id,label\na.npz,other,2\n",
        "empty subject": "path,subject_id,label\na.npz,,2\n",
        "missing file": "path,subject_id,label\nb.npz,kid,2\n",
        "not a sequence": "path,subject_id,label\njunk.npz,kid,2\n",
        "listed twice": "path,subject_id,label\na.npz,kid,2\n./a.npz,kid,2\n",
        "short row": "path,subject_id,label\n\na.npz,kid\n",
        "no rows": "path,subject_id,label\n",
        "empty file": "",
    }[case]
    path.write_text(text)
    return path


MANIFEST_CASES = [
    ("missing column", CpgaitError, "line 1: header is path, label"),
    ("unknown column", CpgaitError, "line 1: header is path, subject_id, label, gmfcs"),
    ("label 7", CpgaitError, "line 2: label is '7'; expected 0-3"),
    ("label contradicts file", CpgaitError, "line 2: label is 1 but"),
    ("subject contradicts file", CpgaitError, "line 2: subject_id is 'other' but"),
    ("empty subject", CpgaitError, "line 2: empty subject_id"),
    ("missing file", CpgaitError, "b.npz: no such sequence file"),
    ("not a sequence", CpgaitError, "junk.npz: not a cpgait sequence file"),
    ("listed twice", CpgaitError, "listed twice"),
    ("short row", CpgaitError, "line 3: 2 values; expected 3"),
    ("no rows", CpgaitError, "lists no sequence files"),
    ("empty file", CpgaitError, "empty manifest"),
]


@pytest.mark.parametrize("case,error,words", MANIFEST_CASES, ids=[c[0] for c in MANIFEST_CASES])
def test_bad_manifest_is_one_clear_error(tmp_path: Path, case: str, error: type[Exception], words: str) -> None:
    path = _bad_manifest(tmp_path, case)
    with pytest.raises(error, match=re.escape(words)) as info:
        Dataset.from_path(path)
    assert words in str(info.value) and str(path) in str(info.value)


@pytest.mark.parametrize(
    "make,error,words",
    [
        (lambda p: p, CpgaitError, "no *.npz sequence files"),
        (lambda p: p / "nothing-here", CpgaitError, "expected a directory of .npz sequence files or a .csv"),
        (lambda p: (p / "x.txt").write_text("x") and p / "x.txt", CpgaitError, "expected a directory"),
    ],
    ids=["empty directory", "missing path", "not csv"],
)
def test_bad_dataset_path(tmp_path: Path, make, error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words.replace("*", r"\*").replace(".", r"\.")):
        Dataset.from_path(make(tmp_path))


def _split_subjects(splits: dict[str, Dataset]) -> dict[str, set[str]]:
    return {name: {r.subject_id for r in ds} for name, ds in splits.items()}


def test_split_keeps_subjects_whole_stratifies_and_is_deterministic(tmp_path: Path) -> None:
    ds = Dataset.from_path(_make_set(tmp_path, per_label=(10, 10, 10, 10), recordings=2))
    splits = subject_split(ds, (0.7, 0.1, 0.2), seed=3)
    subjects = _split_subjects(splits)
    assert set(splits) == {"train", "val", "test"}
    assert sum(len(s) for s in splits.values()) == len(ds)
    assert not (
        subjects["train"] & subjects["val"]
        or subjects["train"] & subjects["test"]
        or subjects["val"] & subjects["test"]
    )
    # ten subjects per label: exactly 7 / 1 / 2 of each label
    for name, per_label in (("train", 7), ("val", 1), ("test", 2)):
        counts = Counter(r.label for r in splits[name] if r.recording_id.endswith("R0"))
        assert counts == {0: per_label, 1: per_label, 2: per_label, 3: per_label}, name
    again = subject_split(ds, (0.7, 0.1, 0.2), seed=3)
    assert _split_subjects(again) == subjects
    others = [_split_subjects(subject_split(ds, (0.7, 0.1, 0.2), seed=s)) for s in range(4, 8)]
    assert any(o != subjects for o in others)


@pytest.mark.parametrize("per_label", [(3, 3, 3, 3), (4, 7, 2, 5), (12, 1, 6, 9)])
def test_split_counts_round_the_fractions_per_label_and_overall(tmp_path: Path, per_label: tuple[int, ...]) -> None:
    ds = Dataset.from_path(_make_set(tmp_path, per_label=per_label, recordings=1))
    fractions = (0.7, 0.1, 0.2)
    splits = subject_split(ds, fractions, seed=0)
    total = sum(per_label)
    for f, (name, split) in zip(fractions, splits.items()):
        assert abs(len(split) - total * f) < 1 + 1e-9 or len(split) == 1, name  # 1 = moved into an empty split
        counts = Counter(r.label for r in split)
        for label, n in enumerate(per_label):
            assert abs(counts.get(label, 0) - n * f) < 2, (name, label)


@pytest.mark.parametrize(
    "subjects,expected",
    [
        (1, {"train": 1, "val": 0, "test": 0}),
        (2, {"train": 1, "val": 0, "test": 1}),
        (3, {"train": 1, "val": 1, "test": 1}),
        (4, {"train": 2, "val": 1, "test": 1}),
    ],
)
def test_split_of_a_tiny_set_fills_every_split_it_can(tmp_path: Path, subjects: int, expected: dict[str, int]) -> None:
    ds = Dataset.from_path(_make_set(tmp_path, per_label=(subjects,), recordings=2))
    assert {k: len(_split_subjects({k: v})[k]) for k, v in subject_split(ds, seed=1).items()} == expected


def test_split_with_one_subject_per_label_still_fills_val_and_test(tmp_path: Path) -> None:
    ds = Dataset.from_path(_make_set(tmp_path, per_label=(1, 1, 1, 1), recordings=1))
    sizes = {k: len(v) for k, v in subject_split(ds, seed=0).items()}
    assert sizes["val"] >= 1 and sizes["test"] >= 1 and sum(sizes.values()) == 4


@pytest.mark.parametrize(
    "problem,error,words",
    [
        ("mixed labels", CpgaitError, "subject 'kid' has recordings with different labels (1, 2)"),
        ("no subject", CpgaitError, "no subject_id"),
        ("fractions", CpgaitError, "split fractions are (0.5, 0.5, 0.5)"),
    ],
)
def test_split_refuses_bad_input(tmp_path: Path, problem: str, error: type[Exception], words: str) -> None:
    _seq(label=1, subject="kid", recording="a").save(tmp_path / "a.npz")
    _seq(
        label=2 if problem == "mixed labels" else 1, subject="" if problem == "no subject" else "kid", recording="b"
    ).save(tmp_path / "b.npz")
    fractions = (0.5, 0.5, 0.5) if problem == "fractions" else (0.7, 0.1, 0.2)
    with pytest.raises(error, match=re.escape(words)) as info:
        subject_split(Dataset.from_path(tmp_path), fractions, seed=0)
    assert words in str(info.value)


def test_windows_shapes_offsets_and_content() -> None:
    seq = _seq(num_frames=60, fps=60)  # 1 s; at 30 fps: 30 frames
    wins, starts = windows(seq, window=10, fps=30, stride=5)
    assert wins.shape == (5, 10, 17, 3) and wins.dtype == np.float32
    np.testing.assert_array_equal(starts, [0, 5, 10, 15, 20])
    np.testing.assert_array_equal(wins[1], seq.keypoints[10:30:2])  # 60 -> 30 fps takes every other frame


def test_windows_of_a_short_recording_say_how_many_frames_it_has_and_needs() -> None:
    seq = _seq(num_frames=50, fps=25, recording="short")
    needed = min_frames(124, 30, 25)
    assert needed == 104  # 103 frames at 25 fps last 4.08 s; 124 frames at 30 fps span 4.1 s
    with pytest.raises(SequenceTooShort, match="recording short") as info:
        windows(seq, window=124, fps=30, stride=12)
    assert (info.value.frames, info.value.needed) == (59, 124)
    assert "recording short" in str(info.value) and "59 frames at 30 fps" in str(info.value)
    assert "needs 124" in str(info.value) and "104 at 25 fps" in str(info.value)
    assert isinstance(info.value, CpgaitError)
    exact = _seq(num_frames=needed, fps=25)
    assert windows(exact, window=124, fps=30, stride=12)[0].shape[:2] == (1, 124)
    with pytest.raises(SequenceTooShort, match=f"needs 124 .*{needed} at 25 fps"):
        windows(_seq(num_frames=needed - 1, fps=25), window=124, fps=30, stride=12)


def test_require_layout_names_file_found_and_expected(tmp_path: Path) -> None:
    path = _seq(layout="body25").save(tmp_path / "b.npz")
    record = Record.read(path)
    require_layout(_seq(), ["coco17", "coco17_feet"])
    with pytest.raises(CpgaitError, match="'body25'") as info:
        require_layout(record, ["coco17", "coco17_feet"])
    assert (
        str(path) in str(info.value)
        and "'body25'" in str(info.value)
        and "'coco17' or 'coco17_feet'" in str(info.value)
    )
    with pytest.raises(CpgaitError, match="unknown skeleton layout 'coco71'"):
        require_layout(record, ["coco71"])
