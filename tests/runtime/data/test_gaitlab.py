"""`cpgait import gaitlab` on a miniature of the Gillette CP video data set written from SYNTHETIC walks in its
processed layout (see gaitlab_miniature.py): exact round trip, counted skips, bad tables and split files, the CLI."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from gaitlab_miniature import FPS, Miniature, write_miniature

from cpgait.errors import CpgaitError
from cpgait.runtime.core.sequence import KeypointSequence
from cpgait.runtime.data.dataset import Dataset
from cpgait.runtime.data.gaitlab import GaitlabFiles, import_gaitlab
from cpgait.runtime.data.importers import write_csv


@pytest.fixture(scope="module")
def mini(tmp_path_factory: pytest.TempPathFactory) -> Miniature:
    return write_miniature(tmp_path_factory.mktemp("gaitlab"))


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cpgait.cli", *args], capture_output=True, text=True, timeout=300)


def _manifest_ids(path: Path) -> list[str]:
    return [r.recording_id for r in Dataset.from_path(path)]


def test_round_trip_reproduces_the_synthetic_sequences_and_truths(mini: Miniature, tmp_path: Path) -> None:
    summary = import_gaitlab(GaitlabFiles.locate(mini.root), tmp_path / "data")
    assert sorted(summary.imported) == sorted(mini.sequences)
    assert sorted(_manifest_ids(tmp_path / "data" / "manifest.csv")) == sorted(mini.sequences)
    for videoid, expected in mini.sequences.items():
        seq = KeypointSequence.load(tmp_path / "data" / "sequences" / f"{videoid}.npz")
        assert seq.layout == expected.layout == "coco17_feet"
        assert seq.fps == FPS
        assert np.array_equal(seq.keypoints, expected.keypoints, equal_nan=True), videoid
        assert (seq.label, seq.subject_id, seq.recording_id) == (expected.label, expected.subject_id, videoid)
        assert "CC BY-NC" in seq.source
        found = seq.keypoints[seq.keypoints[..., 2] > 0]
        assert seq.image_size == (int(found[:, 0].max()) + 1, int(found[:, 1].max()) + 1)  # fits the points
        truth = json.loads((tmp_path / "data" / "sequences" / f"{videoid}.truth.json").read_text())
        synthetic = mini.truths[videoid]
        assert truth["cadence_steps_per_min"] == pytest.approx(synthetic["cadence_steps_per_min"], rel=1e-12)
        assert truth["speed_m_per_s"] == synthetic["speed_m_per_s"]
        assert truth["knee_min_deg"] == synthetic["knee_min_deg"]
        assert truth["level"] == expected.label and truth["synthetic"] is False
        assert truth["lab"]["L"]["age"] == 9.5 and truth["lab"]["R"]["side"] == "R"


def test_nan_rows_are_frames_with_nobody_and_zeros_are_points_not_found(mini: Miniature, tmp_path: Path) -> None:
    import_gaitlab(GaitlabFiles.locate(mini.root), tmp_path / "data")
    raw = np.loadtxt(mini.root / "processed" / "video_csvs" / "1000.csv", delimiter=",")
    seq = KeypointSequence.load(tmp_path / "data" / "sequences" / "1000.npz")
    assert np.isnan(raw[10]).all() and (seq.keypoints[10, :, 2] == 0).all()
    zero = (raw.reshape(len(raw), 25, 3) == 0).all(axis=2)  # OpenPose's 0, 0, 0
    assert zero.any()
    assert (seq.keypoints[..., 2] == 0).sum() == np.isnan(raw).all(axis=1).sum() * 21 + zero[:, :].sum() - (
        zero[:, [1, 8, 20, 23]].sum()  # neck, mid-hip and small toes are not kept
    )


def test_skips_and_levels_are_counted_with_their_reasons(mini: Miniature, tmp_path: Path) -> None:
    summary = import_gaitlab(GaitlabFiles.locate(mini.root), tmp_path / "data")
    skipped = {s.videoid: s for s in summary.skipped}
    assert set(skipped) == set(mini.unlabelled) | set(mini.broken)
    for videoid, why in mini.unlabelled.items():
        assert skipped[videoid].kind == "no usable GMFCS level" and why in skipped[videoid].detail, videoid
    for videoid, kind in mini.broken.items():
        assert skipped[videoid].kind == kind, videoid
    assert "columns changed from 75 to 3" in skipped["3000"].detail and "3000.csv" in skipped["3000"].detail
    assert summary.levels == {"I": 2, "II": 2, "III": 2, "IV": 2}
    assert summary.csvs_without_rows == 1
    assert summary.frames == sum(s.num_frames for s in mini.sequences.values())
    text = summary.text()
    for words in ("videos imported                          8", "unreadable video CSV", "no video CSV"):
        assert words in text
    written = json.loads((tmp_path / "data" / "import-summary.json").read_text())
    assert written["videos_imported"] == 8 and len(written["skipped"]) == 7


def test_unlabelled_videos_can_be_kept_apart(mini: Miniature, tmp_path: Path) -> None:
    summary = import_gaitlab(GaitlabFiles.locate(mini.root), tmp_path / "data", keep_unlabelled=True)
    assert sorted(_manifest_ids(tmp_path / "data" / "unlabelled.csv")) == sorted(mini.unlabelled)
    assert sorted(_manifest_ids(tmp_path / "data" / "manifest.csv")) == sorted(mini.sequences)
    assert summary.levels["unlabelled"] == len(mini.unlabelled)
    assert {s.videoid for s in summary.skipped} == set(mini.broken)
    assert all(r.label is None for r in Dataset.from_path(tmp_path / "data" / "unlabelled.csv"))


def test_the_split_file_is_honoured_subject_by_subject(mini: Miniature, tmp_path: Path) -> None:
    summary = import_gaitlab(GaitlabFiles.locate(mini.root), tmp_path / "data")
    names = {"train": "train", "validation": "val", "test": "test"}
    for paper, ours in names.items():
        expected = sorted(v for v, d in mini.split.items() if d == paper and v != "1031")
        assert sorted(_manifest_ids(tmp_path / "data" / f"{ours}.csv")) == expected
    trainval = Dataset.from_path(tmp_path / "data" / "trainval.csv")
    assert {r.subject_id for r in trainval} == {"P0", "P1", "P2"}
    assert summary.splits["not in the split file"] == 1  # 1031 of P3: not listed, so in no split manifest


def test_another_arrangement_of_the_same_files(mini: Miniature, tmp_path: Path) -> None:
    videos = shutil.copytree(mini.root / "processed" / "video_csvs", tmp_path / "csvs")
    table = shutil.copy(mini.root / "processed" / "alldata_processed.csv", tmp_path / "table.csv")
    summary = import_gaitlab(GaitlabFiles.locate(None, videos, table), tmp_path / "data")
    assert sorted(summary.imported) == sorted(mini.sequences) and not summary.splits
    assert not (tmp_path / "data" / "train.csv").exists()


def _table(mini: Miniature, tmp_path: Path, edit) -> GaitlabFiles:
    """A copy of the miniature's table changed by `edit(header, rows)`."""
    with (mini.root / "processed" / "alldata_processed.csv").open() as fh:
        header, *rows = list(csv.reader(fh))
    header, rows = edit(header, rows)
    path = tmp_path / "table.csv"
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows([header, *rows])
    return GaitlabFiles.locate(None, mini.root / "processed" / "video_csvs", path)


@pytest.mark.parametrize(
    "edit,words",
    [
        (lambda h, r: ([c for c in h if c != "gmfcs"], [x[:4] + x[5:] for x in r]), "missing column(s) gmfcs"),
        (lambda h, r: (h, [r[0][:3] + ["X"] + r[0][4:], *r[1:]]), "line 2: side is 'X'; expected L or R"),
        (lambda h, r: (h, [r[0][:-1], *r[1:]]), "line 2: 9 values; expected 10"),
        (lambda h, r: (h, []), "no rows below the header"),
        (lambda h, r: (h, [x for x in r if x[0] == "3001"]), "none of its 1 videos could be imported"),
    ],
    ids=["no gmfcs column", "bad side", "short row", "no rows", "nothing importable"],
)
def test_a_bad_table_is_one_clear_error(mini: Miniature, tmp_path: Path, edit, words: str) -> None:
    with pytest.raises(CpgaitError, match=re.escape(words)) as info:
        import_gaitlab(_table(mini, tmp_path, edit), tmp_path / "data")
    assert words in str(info.value) and "table.csv" in str(info.value)


def test_table_rows_that_disagree_skip_their_video(mini: Miniature, tmp_path: Path) -> None:
    def edit(header: list[str], rows: list[list[str]]) -> tuple[list[str], list[list[str]]]:
        rows[1][1] = "P99"  # video 1000's R row names another patient
        rows.append(list(rows[2]))  # video 1001's L row twice
        return header, rows

    summary = import_gaitlab(_table(mini, tmp_path, edit), tmp_path / "data")
    skipped = {s.videoid: s for s in summary.skipped if s.kind == "table rows unusable"}
    assert "Patient_ID 'P0' and 'P99'" in skipped["1000"].detail
    assert "3 table rows" in skipped["1001"].detail


@pytest.mark.parametrize(
    "rows,words",
    [
        ([["1000", "train"], ["1001", "test"]], "Patient_ID P0 has videos in test and train"),
        ([["1000", "holdout"]], "line 2: dataset is 'holdout'"),
    ],
)
def test_a_bad_split_file_is_one_clear_error(mini: Miniature, tmp_path: Path, rows: list, words: str) -> None:
    path = tmp_path / "split.csv"
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows([["videoid", "dataset"], *rows])
    with pytest.raises(CpgaitError, match="split.csv") as info:
        import_gaitlab(GaitlabFiles.locate(mini.root, split_file=path), tmp_path / "data")
    assert words in str(info.value)


def test_missing_files_are_named(mini: Miniature, tmp_path: Path) -> None:
    for args, words in (
        ((tmp_path / "nowhere",), "nowhere: not a folder"),
        ((tmp_path,), "video_csvs: not a folder"),
        ((None, mini.root / "processed" / "video_csvs"), "expected ROOT, or both --videos DIR and --table CSV"),
        ((mini.root, None, tmp_path / "t.csv"), "t.csv: no such file; expected the lab table"),
    ):
        with pytest.raises(CpgaitError, match=re.escape(words)) as info:
            GaitlabFiles.locate(*args)
        assert words in str(info.value)


def test_cli_imports_prints_the_summary_and_never_overwrites(mini: Miniature, tmp_path: Path) -> None:
    out = tmp_path / "data"
    done = _cli("import", "gaitlab", str(mini.root), "-o", str(out), "--unlabelled", "keep")
    assert done.returncode == 0, done.stderr
    assert "videos imported" in done.stdout and "kept unlabelled" in done.stdout and "CC BY-NC" in done.stdout
    again = _cli("import", "gaitlab", str(mini.root), "-o", str(out))
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "--overwrite" in again.stderr
    forced = _cli("import", "gaitlab", str(mini.root), "-o", str(out), "--overwrite")
    assert forced.returncode == 0, forced.stderr
    assert not (out / "unlabelled.csv").exists()  # the earlier import's manifest is not left behind
    bad = _cli("import", "gaitlab", str(mini.root), "-o", str(out), "--unlabelled", "maybe")
    assert bad.returncode == 2 and bad.stderr.startswith("error: --unlabelled is 'maybe'")


def test_cli_import_without_a_sub_command_still_imports_one_recording(tmp_path: Path) -> None:
    kp = np.full((3, 17, 3), 5.0, dtype=np.float32)
    kp[..., 2] = 0.9
    path = write_csv(KeypointSequence(kp, 30.0, "coco17", (64, 64)), tmp_path / "walk.csv")
    done = _cli("import", str(path), "-o", str(tmp_path / "walk.npz"))
    assert done.returncode == 0, done.stderr
    assert KeypointSequence.load(tmp_path / "walk.npz").num_frames == 3


def test_agreement_on_the_import_matches_the_synthetic_originals(mini: Miniature, tmp_path: Path) -> None:
    """Import -> `cpgait agreement` against the lab truth gives what the same walks give against their synthetic
    truth: the keypoints and the lab values survive the data set's layout."""
    from cpgait.training.agreement import agreement, compare, recording_features

    import_gaitlab(GaitlabFiles.locate(mini.root), tmp_path / "data")
    report = agreement(tmp_path / "data" / "manifest.csv")
    assert report["truth"] == "lab" and report["with_truth"] == len(mini.sequences)
    original = compare([{"truth": mini.truths[v], **recording_features(seq)} for v, seq in mini.sequences.items()])
    expected = {c["name"]: c for c in original}
    got = {c["name"]: c for c in report["comparisons"]}
    assert set(got) == {
        "cadence",
        "speed vs m/s",
        "knee_peak_extension_left",
        "knee_peak_extension_right",
        "knee_peak_extension (both sides)",
    }
    for name, c in got.items():
        assert c["n"] == expected[name]["n"] > 0, name
        assert c["r"] == pytest.approx(expected[name]["r"], abs=1e-9), name
        assert c["mae"] == pytest.approx(expected[name]["mae"], abs=1e-9), name
