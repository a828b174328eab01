"""The sequence file format: save/load round trip, and every kind of bad file gives one error naming the file."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from cpgait.errors import CpgaitError
from cpgait.runtime.core.sequence import FORMAT, KeypointSequence


def _fields(num_frames: int = 4, num_joints: int = 17) -> dict[str, np.ndarray]:
    kp = np.full((num_frames, num_joints, 3), 50.0, dtype=np.float32)
    kp[..., 2] = 0.9
    return {
        "format": np.str_(FORMAT),
        "keypoints": kp,
        "fps": np.float64(30),
        "layout": np.str_("coco17"),
        "image_size": np.array([640, 480], dtype=np.int64),
        "label": np.int64(1),
        "subject_id": np.str_("s1"),
        "recording_id": np.str_("r1"),
        "source": np.str_("synthetic test data"),
    }


def test_save_load_round_trip_and_no_silent_overwrite(tmp_path: Path) -> None:
    kp = _fields()["keypoints"]
    kp[2, 5] = (np.nan, np.nan, 0.0)
    seq = KeypointSequence(kp, 25.0, "coco17", (640, 480), label=3, subject_id="a", recording_id="b", source="s")
    path = seq.save(tmp_path / "x.npz")
    back = KeypointSequence.load(path)
    np.testing.assert_array_equal(back.keypoints, seq.keypoints)
    assert (back.fps, back.layout, back.image_size, back.label, back.subject_id, back.recording_id, back.source) == (
        25.0,
        "coco17",
        (640, 480),
        3,
        "a",
        "b",
        "s",
    )
    with pytest.raises(CpgaitError, match="already exists"):
        seq.save(path)
    assert not list(tmp_path.glob("*.part*"))


def _write_bad(path: Path, case: str) -> None:
    if case == "not an npz":
        path.write_text("frame,x\n0,1\n")
        return
    if case == "npy, not npz":
        np.save(path.with_suffix(".npy"), np.zeros(3))
        path.with_suffix(".npy").rename(path)
        return
    fields = _fields()
    if case == "wrong format field":
        fields["format"] = np.str_("something/2")
    elif case == "no format field":
        del fields["format"]
    elif case == "NaN where confident":
        fields["keypoints"][1, 3, 0] = np.nan
    elif case == "wrong joint count":
        fields["keypoints"] = _fields(num_joints=18)["keypoints"]
    elif case == "unknown layout":
        fields["layout"] = np.str_("coco99")
    elif case == "label 7":
        fields["label"] = np.int64(7)
    elif case == "one frame":
        fields["keypoints"] = _fields(num_frames=1)["keypoints"]
    elif case == "confidence above 1":
        fields["keypoints"][0, 0, 2] = 1.5
    elif case == "fps 0":
        fields["fps"] = np.float64(0)
    elif case == "integer keypoints":
        fields["keypoints"] = fields["keypoints"].astype(np.int32)
    elif case == "missing field":
        del fields["subject_id"]
    elif case == "label is text":
        fields["label"] = np.str_("II")
    elif case == "image size of 3 numbers":
        fields["image_size"] = np.array([640, 480, 3])
    elif case == "pickled object":
        fields["source"] = np.array([{"a": 1}], dtype=object)
    np.savez(path, **fields)


BAD_FILES = [
    # case, expected exception, words the message must contain (besides the file name)
    ("not an npz", CpgaitError, "not a cpgait sequence file"),
    ("npy, not npz", CpgaitError, "not a cpgait sequence file"),
    ("wrong format field", CpgaitError, "format is 'something/2'; expected 'cpgait.sequence/1'"),
    ("no format field", CpgaitError, "format is 'missing'"),
    ("NaN where confident", CpgaitError, "frame 1, joint left_ear"),
    ("wrong joint count", CpgaitError, "18 joints; layout coco17 has 17"),
    ("unknown layout", CpgaitError, "unknown skeleton layout 'coco99'"),
    ("label 7", CpgaitError, "label is 7; expected 0-3"),
    ("one frame", CpgaitError, "1 frame(s); at least 2"),
    ("confidence above 1", CpgaitError, "confidences must be finite and in [0, 1]"),
    ("fps 0", CpgaitError, "fps is 0.0; expected a number > 0"),
    ("integer keypoints", CpgaitError, "dtype int32; expected float32"),
    ("missing field", CpgaitError, "missing field 'subject_id'"),
    ("pickled object", CpgaitError, "not a cpgait sequence file"),
    ("label is text", CpgaitError, "field has the wrong type or size"),
    ("image size of 3 numbers", CpgaitError, "field has the wrong type or size"),
]


@pytest.mark.parametrize("case,error,words", BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_load_rejects_bad_files_naming_the_file(tmp_path: Path, case: str, error: type[Exception], words: str) -> None:
    path = tmp_path / "bad.npz"
    _write_bad(path, case)
    with pytest.raises(error, match=re.escape(words)) as info:
        KeypointSequence.load(path)
    assert str(path) in str(info.value) and words in str(info.value)


def test_load_of_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CpgaitError, match="no such sequence file"):
        KeypointSequence.load(tmp_path / "nope.npz")


@pytest.mark.parametrize(
    "change,error",
    [
        ({"keypoints": np.zeros((4, 17))}, r"shape \(4, 17\); expected \[T, V, 3\]"),
        ({"image_size": (0, 480)}, r"image size is \(0, 480\); expected \(width, height\) > 0"),
        ({"label": -1}, "label is -1; expected 0-3"),
        ({"fps": float("inf")}, "fps is inf; expected a number > 0"),
        ({"layout": "openpose"}, "unknown skeleton layout 'openpose'"),
    ],
    ids=["no confidence axis", "zero width", "label -1", "fps inf", "unknown layout"],
)
def test_construction_validates(change: dict, error: str) -> None:
    args = {"keypoints": _fields()["keypoints"], "fps": 30.0, "layout": "coco17", "image_size": (640, 480)}
    with pytest.raises(CpgaitError, match=error):
        KeypointSequence(**{**args, **change})


@pytest.mark.parametrize(
    "field,value",
    [("frame_index", [0, 1, 1]), ("timestamps", [0.0, 0.1]), ("timestamps", [0.0, float("nan"), 0.2])],
    ids=["repeated frame", "too short", "nan time"],
)
def test_frame_indices_and_timestamps_are_one_increasing_value_per_frame(field: str, value: list) -> None:
    kp = np.zeros((3, 17, 3), dtype=np.float32)
    with pytest.raises(CpgaitError, match=f"{field} has shape .*; expected \\[3\\] increasing finite values"):
        KeypointSequence(kp, 30.0, "coco17", (64, 64), **{field: np.array(value)})
