"""OpenPose JSON and per-frame CSV importers, and `cpgait import`, on files written in tmp_path."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cpgait.errors import CpgaitError
from cpgait.runtime.core.layouts import BODY25, COCO17, COCO18, to_coco17
from cpgait.runtime.core.sequence import KeypointSequence
from cpgait.runtime.data.importers import import_csv, import_openpose, write_csv


def _person(num_joints: int, centre: tuple[float, float], scale: float = 100.0, seed: int = 0) -> np.ndarray:
    """A person as `[V, 3]` around `centre`, spread over `scale` pixels, all points found."""
    rng = np.random.default_rng(seed)
    kp = np.empty((num_joints, 3))
    kp[:, :2] = np.asarray(centre) + rng.uniform(-scale / 2, scale / 2, (num_joints, 2))
    kp[:, 2] = rng.uniform(0.5, 1.0, num_joints)
    return kp


def _write_openpose(folder: Path, frames: list[list[np.ndarray]], name: str = "walk") -> Path:
    """Write frames in OpenPose's --write_json schema (flat x, y, c triples per person)."""
    folder.mkdir(parents=True, exist_ok=True)
    for t, people in enumerate(frames):
        doc = {
            "version": 1.3,
            "people": [
                {
                    "person_id": [-1],
                    "pose_keypoints_2d": [round(float(v), 3) for v in p.reshape(-1)],
                    "face_keypoints_2d": [],
                    "hand_left_keypoints_2d": [],
                    "hand_right_keypoints_2d": [],
                    "pose_keypoints_3d": [],
                    "face_keypoints_3d": [],
                    "hand_left_keypoints_3d": [],
                    "hand_right_keypoints_3d": [],
                }
                for p in people
            ],
        }
        (folder / f"{name}_{t:012d}_keypoints.json").write_text(json.dumps(doc))
    return folder


def _expected_coco(person: np.ndarray, layout: str) -> np.ndarray:
    rounded = person.round(3)
    rounded[rounded[:, 2] == 0] = (np.nan, np.nan, 0.0)
    kp, _ = to_coco17(rounded.astype(np.float32), layout)
    return kp


def test_openpose_body25_follows_one_person_through_swaps_and_empty_frames(tmp_path: Path) -> None:
    # the child walks right (large, confident); an adult stands still at x = 1500; list order swaps every frame
    children = [_person(25, (300 + 20 * t, 500), scale=200, seed=t) for t in range(8)]
    adult = [_person(25, (1500, 500), scale=60, seed=100 + t) for t in range(8)]
    frames: list[list[np.ndarray]] = []
    for t in range(8):
        if t == 3:
            frames.append([])  # nobody detected
        elif t == 5:
            frames.append([adult[t]])  # only the adult, far away: the child is missing in this frame
        else:
            frames.append([children[t], adult[t]] if t % 2 == 0 else [adult[t], children[t]])
    children[6][[9, 12], :] = 0.0  # both hips lost: follow by centroid
    children[6][4] = 0.0  # OpenPose's (0, 0, 0) = not found
    seq = import_openpose(_write_openpose(tmp_path / "op", frames), fps=25, subject_id="c1", label=1)
    assert seq.layout == "coco17_feet" and seq.keypoints.shape == (8, 21, 3)
    assert seq.fps == 25 and seq.label == 1 and seq.subject_id == "c1" and seq.recording_id == "op"
    for t in (0, 1, 2, 4, 6, 7):
        np.testing.assert_allclose(seq.keypoints[t], _expected_coco(children[t], "body25"), rtol=0, atol=1e-3)
    for t in (3, 5):
        assert np.all(seq.keypoints[t, :, 2] == 0) and np.all(np.isnan(seq.keypoints[t, :, :2]))
    right_wrist = COCO17.index("right_wrist")
    assert seq.keypoints[6, right_wrist, 2] == 0 and np.isnan(seq.keypoints[6, right_wrist, 0])


def test_openpose_takes_someone_far_away_only_after_a_long_enough_gap(tmp_path: Path) -> None:
    child = [_person(25, (300, 500), scale=100, seed=t) for t in range(2)]
    far_one = _person(25, (1300, 500), scale=100, seed=9)  # ~7 box diagonals away
    frames = [[child[0]], [child[1]], [far_one]] + [[] for _ in range(8)] + [[far_one]]
    seq = import_openpose(_write_openpose(tmp_path / "op", frames), fps=25)
    assert np.all(seq.keypoints[2, :, 2] == 0)  # one frame later: too far to be the same child
    np.testing.assert_allclose(seq.keypoints[11], _expected_coco(far_one, "body25"), atol=1e-3)  # 10 frames later


def test_openpose_first_frame_takes_the_largest_person(tmp_path: Path) -> None:
    small, large = _person(25, (200, 200), scale=40), _person(25, (900, 500), scale=300, seed=1)
    seq = import_openpose(_write_openpose(tmp_path / "op", [[small, large], [large, small]]), fps=30)
    np.testing.assert_allclose(seq.keypoints[0], _expected_coco(large, "body25"), atol=1e-3)


def test_openpose_coco18_becomes_coco17_and_frame_gaps_stay_missing(tmp_path: Path) -> None:
    folder = tmp_path / "op"
    people = [_person(18, (400, 300), seed=t) for t in range(3)]
    _write_openpose(folder, [[p] for p in people])
    # renumber the last file to frame 4: frames 2 and 3 were never written
    (folder / "walk_000000000002_keypoints.json").rename(folder / "walk_000000000004_keypoints.json")
    seq = import_openpose(folder, fps=30, image_size=(640, 480))
    assert seq.layout == "coco17" and seq.num_frames == 5 and seq.image_size == (640, 480)
    np.testing.assert_allclose(seq.keypoints[4], _expected_coco(people[2], "coco18"), atol=1e-3)
    assert np.all(seq.keypoints[2:4, :, 2] == 0)
    assert COCO18.num_joints == 18


def test_openpose_sorts_by_frame_number_not_by_name(tmp_path: Path) -> None:
    folder = tmp_path / "op"
    folder.mkdir()
    people = {n: _person(25, (500, 500), seed=n) for n in (2, 10)}
    for n, p in people.items():  # "..._10_..." sorts before "..._2_..." as text
        doc = {"version": 1.3, "people": [{"person_id": [-1], "pose_keypoints_2d": p.round(3).reshape(-1).tolist()}]}
        (folder / f"clip_{n}_keypoints.json").write_text(json.dumps(doc))
    seq = import_openpose(folder, fps=25)
    np.testing.assert_allclose(seq.keypoints[0], _expected_coco(people[2], "body25"), atol=1e-3)
    np.testing.assert_allclose(seq.keypoints[-1], _expected_coco(people[10], "body25"), atol=1e-3)


def _sequence(num_frames: int = 6, layout: str = "coco17", seed: int = 0) -> KeypointSequence:
    rng = np.random.default_rng(seed)
    v = {"coco17": 17, "coco17_feet": 21, "body25": 25}[layout]
    kp = rng.uniform(0, 500, (num_frames, v, 3)).astype(np.float32)
    kp[..., 2] = rng.uniform(0.1, 1.0, (num_frames, v))
    kp[1, 3] = (np.nan, np.nan, 0.0)
    return KeypointSequence(kp, fps=30, layout=layout, image_size=(640, 480))


def test_csv_round_trip_keeps_every_value(tmp_path: Path) -> None:
    seq = _sequence(layout="coco17_feet")
    back = import_csv(write_csv(seq, tmp_path / "k.csv"), image_size=(640, 480), label=3, subject_id="s")
    assert back.layout == "coco17_feet" and back.fps == 30 and back.label == 3
    np.testing.assert_array_equal(back.keypoints, seq.keypoints)


def test_csv_body25_is_converted_and_fps_given_when_no_time(tmp_path: Path) -> None:
    seq = _sequence(layout="body25")
    path = write_csv(seq, tmp_path / "k.csv")
    lines = path.read_text().splitlines()
    rows = [",".join(c for i, c in enumerate(line.split(",")) if i != 1) for line in lines]  # drop time_s
    path.write_text("\n".join(rows) + "\n")
    back = import_csv(path, fps=50)
    assert back.layout == "coco17_feet" and back.fps == 50
    np.testing.assert_array_equal(back.keypoints, to_coco17(seq.keypoints, "body25")[0])
    assert BODY25.num_joints == 25


def test_write_csv_refuses_to_overwrite(tmp_path: Path) -> None:
    path = write_csv(_sequence(), tmp_path / "k.csv")
    with pytest.raises(CpgaitError, match="already exists"):
        write_csv(_sequence(), path)


def _csv_text(tmp_path: Path) -> str:
    return write_csv(_sequence(num_frames=3), tmp_path / "good.csv").read_text()


def _openpose_doc(values: list) -> str:
    return json.dumps({"version": 1.3, "people": [{"person_id": [-1], "pose_keypoints_2d": values}]})


def _bad_input(tmp_path: Path, case: str) -> tuple[str, Path]:
    """Write one kind of bad input; returns the importer to use and its path."""
    op = tmp_path / "op"
    op.mkdir()
    good25 = _person(25, (300, 300)).round(3).reshape(-1).tolist()
    if case == "empty folder":
        return "openpose", op
    if case == "malformed json":
        (op / "a_000000000000_keypoints.json").write_text('{"version": 1.3, "people": [')
        return "openpose", op
    if case == "json without people":
        (op / "a_000000000000_keypoints.json").write_text('{"version": 1.3}')
        return "openpose", op
    if case == "wrong number of values":
        (op / "a_000000000000_keypoints.json").write_text(_openpose_doc(good25[:-3]))
        return "openpose", op
    if case == "layouts differ between frames":
        (op / "a_000000000000_keypoints.json").write_text(_openpose_doc(good25))
        (op / "a_000000000001_keypoints.json").write_text(_openpose_doc(_person(18, (3, 3)).reshape(-1).tolist()))
        return "openpose", op
    if case == "string among values":
        (op / "a_000000000000_keypoints.json").write_text(_openpose_doc(["1", *good25[1:]]))
        return "openpose", op
    if case == "nobody in any frame":
        for t in range(2):
            (op / f"a_{t:012d}_keypoints.json").write_text('{"version": 1.3, "people": []}')
        return "openpose", op
    if case == "one frame":
        (op / "a_000000000000_keypoints.json").write_text(_openpose_doc(good25))
        return "openpose", op
    if case == "negative confidence":
        (op / "a_000000000000_keypoints.json").write_text(_openpose_doc(good25[:2] + [-0.5] + good25[3:]))
        return "openpose", op
    text = _csv_text(tmp_path)
    header, *rows = text.splitlines()
    path = tmp_path / "bad.csv"
    if case == "unknown joint column":
        text = text.replace("nose_x", "snout_x", 1)
    elif case == "missing joint column":
        text = "\n".join(",".join(line.split(",")[:-3]) for line in text.splitlines())
    elif case == "no frame column":
        text = text.replace("frame,", "index,", 1)
    elif case == "not a number":
        text = "\n".join([header, rows[0], rows[1].replace(rows[1].split(",")[2], "abc", 1), rows[2]])
    elif case == "short row":
        text = "\n".join([header, rows[0], ",".join(rows[1].split(",")[:-1]), rows[2]])
    elif case == "frames go back":
        text = "\n".join([header, rows[1], rows[0], rows[2]])
    elif case == "header only":
        text = header + "\n"
    elif case == "confident but no x":
        cells = rows[1].split(",")
        cells[2] = ""
        text = "\n".join([header, rows[0], ",".join(cells), rows[2]])
    elif case == "fps contradicts time_s":
        path.write_text(text)
        return "csv fps 10", path
    path.write_text(text)
    return "csv", path


BAD_INPUT = [
    # case, expected exception, words the message must contain
    ("empty folder", CpgaitError, "no *_keypoints.json"),
    ("malformed json", CpgaitError, "malformed JSON (line 1"),
    ("json without people", CpgaitError, "no 'people' list"),
    ("wrong number of values", CpgaitError, "72 pose values; expected 75 (BODY_25) or 54 (COCO-18)"),
    ("layouts differ between frames", CpgaitError, "54 pose values; expected 75 (body25)"),
    ("string among values", CpgaitError, "list of numbers"),
    ("nobody in any frame", CpgaitError, "nobody was detected"),
    ("one frame", CpgaitError, "1 frame(s); at least 2"),
    ("negative confidence", CpgaitError, "confidence of nose is -0.5"),
    ("unknown joint column", CpgaitError, "unknown column(s) snout_x"),
    ("missing joint column", CpgaitError, "missing column(s) right_ankle_x"),
    ("no frame column", CpgaitError, "no 'frame' column"),
    ("not a number", CpgaitError, "line 3: nose_x is 'abc'"),
    ("short row", CpgaitError, "line 3: 52 values; expected 53"),
    ("frames go back", CpgaitError, "line 3: frame is 0"),
    ("header only", CpgaitError, "no frames below the header"),
    ("confident but no x", CpgaitError, "line 3: nose has confidence"),
    ("fps contradicts time_s", CpgaitError, "time_s implies 30 fps but fps 10"),
]


@pytest.mark.parametrize("case,error,words", BAD_INPUT, ids=[c[0] for c in BAD_INPUT])
def test_bad_input_is_one_clear_error_naming_the_file(
    tmp_path: Path, case: str, error: type[Exception], words: str
) -> None:
    kind, path = _bad_input(tmp_path, case)
    with pytest.raises(error, match=re.escape(words)) as info:
        if kind == "openpose":
            import_openpose(path, fps=25)
        else:
            import_csv(path, fps=10 if kind == "csv fps 10" else None)
    message = str(info.value)
    assert words in message
    assert path.name in message


def _cli(*args: str) -> subprocess.CompletedProcess:
    code = f"import sys; sys.argv = ['cpgait', *{list(args)!r}]; from cpgait.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_cli_imports_openpose_and_refuses_to_overwrite(tmp_path: Path) -> None:
    folder = _write_openpose(tmp_path / "op", [[_person(25, (300, 300), seed=t)] for t in range(4)])
    out = tmp_path / "seq.npz"
    done = _cli("import", str(folder), "-o", str(out), "--fps", "25", "--label", "2", "--subject", "s9")
    assert done.returncode == 0, done.stderr
    assert "4 frames, layout coco17_feet, 25 fps, 0.0% points missing" in done.stdout
    seq = KeypointSequence.load(out)
    assert seq.label == 2 and seq.subject_id == "s9" and seq.num_frames == 4
    before = out.read_bytes()
    again = _cli("import", str(folder), "-o", str(out), "--fps", "30")
    assert again.returncode == 2 and "already exists" in again.stderr and "Traceback" not in again.stderr
    assert out.read_bytes() == before
    forced = _cli("import", str(folder), "-o", str(out), "--fps", "30", "--overwrite")
    assert forced.returncode == 0 and KeypointSequence.load(out).fps == 30


@pytest.mark.parametrize(
    "args,words",
    [
        (["--fps", "25", "--format", "csv"], "is a folder; expected a keypoint CSV"),
        (["--fps", "25", "--image-size", "640by480"], "expected WIDTHxHEIGHT"),
        (["--fps", "25", "--layout", "coco17"], "OpenPose layout is 'coco17'"),
        ([], "OpenPose JSON has no timing"),
        (["--fps", "25", "--format", "yaml"], "--format is 'yaml'"),
    ],
)
def test_cli_bad_input_exits_2_without_traceback(tmp_path: Path, args: list[str], words: str) -> None:
    folder = _write_openpose(tmp_path / "op", [[_person(25, (300, 300), seed=t)] for t in range(3)])
    out = tmp_path / "seq.npz"
    done = _cli("import", str(folder), "-o", str(out), *args)
    assert done.returncode == 2, done.stderr
    assert words in done.stderr and "Traceback" not in done.stderr
    assert not out.exists()


def test_cli_imports_csv_with_time_column(tmp_path: Path) -> None:
    path = write_csv(_sequence(num_frames=5), tmp_path / "k.csv")
    out = tmp_path / "k.npz"
    done = _cli("import", str(path), "-o", str(out), "--image-size", "640x480")
    assert done.returncode == 0, done.stderr
    seq = KeypointSequence.load(out)
    assert seq.fps == 30 and seq.image_size == (640, 480) and seq.recording_id == "k"
    assert f"{1 / (5 * 17):.1%} points missing" in done.stdout
