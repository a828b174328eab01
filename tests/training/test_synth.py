"""Synthetic gait data (`cpgait synth`): balance, determinism, truth consistent with the keypoints, presets, level
trends, and bad input through the CLI. All of it is synthetic data, not patient data."""

from __future__ import annotations

import functools
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from cpgait.errors import CpgaitError
from cpgait.runtime.core.layouts import COCO17_FEET
from cpgait.runtime.core.sequence import KeypointSequence
from cpgait.training.gait_levels import draw_subject
from cpgait.training.kinematics import Body, SubjectParams, Walk
from cpgait.training.synth import Camera, pose_artefacts, synthesize, write_dataset


def _truths(out: Path) -> dict[str, dict]:
    return {p.name.removesuffix(".truth.json"): json.loads(p.read_text()) for p in sorted(out.glob("*.truth.json"))}


def test_dataset_is_balanced_labelled_and_says_synthetic(tmp_path: Path) -> None:
    paths = write_dataset(tmp_path, 8, seed=3)
    assert len(paths) == 8 and sorted(paths) == sorted(tmp_path.glob("*.npz"))
    truths = _truths(tmp_path)
    assert sorted(truths) == sorted(p.stem for p in paths)
    labels = []
    for path in paths:
        seq = KeypointSequence.load(path)
        truth = truths[path.stem]
        labels.append(seq.label)
        assert truth["synthetic"] is True and "not patient data" in truth["note"]
        assert "SYNTHETIC" in seq.source and "seed 3" in seq.source
        assert truth["level"] == seq.label
        assert (
            (truth["subject_id"], truth["recording_id"])
            == (seq.subject_id, seq.recording_id)
            == (truth["subject_id"], path.stem)
        )
        t = seq.num_frames
        assert truth["num_frames"] == t and truth["fps"] == seq.fps == 30.0
        for key in ("knee_flexion_deg", "hip_flexion_deg", "ankle_deg"):
            assert len(truth[key]["left"]) == len(truth[key]["right"]) == t
        assert len(truth["trunk_lean_deg"]) == len(truth["in_frame"]) == t
        strikes = truth["heel_strikes"]["left"] + truth["heel_strikes"]["right"]
        assert len(strikes) >= 4 and all(0 <= f < t for f in strikes)
        assert 5.0 <= t / seq.fps <= 10.0
        assert seq.layout == "coco17_feet" and seq.keypoints.shape[1] == 21
    assert sorted(labels) == [0, 0, 1, 1, 2, 2, 3, 3]
    # walks of one subject share its level; several walks per subject
    subjects = {tr["subject_id"]: tr["level"] for tr in truths.values()}
    assert len(subjects) < 8
    assert "SYNTHETIC" in (tmp_path / "README.txt").read_text()


def test_counts_differ_by_at_most_one_when_n_is_not_a_multiple_of_four(tmp_path: Path) -> None:
    paths = write_dataset(tmp_path, 6, seed=0, layout="coco17")
    labels = sorted(KeypointSequence.load(p).label for p in paths)
    assert labels == [0, 0, 1, 1, 2, 3]
    assert KeypointSequence.load(paths[0]).keypoints.shape[1] == 17


def test_same_seed_same_data_other_seed_other_data(tmp_path: Path) -> None:
    a, b, c = (write_dataset(tmp_path / name, 4, seed=s) for name, s in (("a", 7), ("b", 7), ("c", 8)))
    for pa, pb in zip(a, b):
        assert pa.name == pb.name
        np.testing.assert_array_equal(KeypointSequence.load(pa).keypoints, KeypointSequence.load(pb).keypoints)
    assert _truths(tmp_path / "a") == _truths(tmp_path / "b")
    assert all(len(tr["spawn_key"]) == 3 for tr in _truths(tmp_path / "a").values())
    assert [p.name for p in a] != [p.name for p in c]
    # a smaller n writes a prefix of the subjects of a larger one
    more = write_dataset(tmp_path / "d", 8, seed=7)
    np.testing.assert_array_equal(
        KeypointSequence.load(a[0]).keypoints, KeypointSequence.load(tmp_path / "d" / a[0].name).keypoints
    )
    assert len(more) == 8


def _measured_knee(seq: KeypointSequence, hip: int, knee: int, ankle: int) -> np.ndarray:
    kp = seq.keypoints[..., :2].astype(np.float64)
    thigh, shank = kp[:, hip] - kp[:, knee], kp[:, ankle] - kp[:, knee]
    cos = (thigh * shank).sum(-1) / np.linalg.norm(thigh, axis=-1) / np.linalg.norm(shank, axis=-1)
    return 180 - np.degrees(np.arccos(np.clip(cos, -1, 1)))


@pytest.mark.parametrize("level", range(4))
def test_clean_preset_is_exact_complete_and_matches_the_truth(level: int) -> None:
    """With the legs in the sagittal plane (no hip rotation, no asymmetry) the image shows the true knee angles."""
    rng = np.random.default_rng(level)
    child = replace(draw_subject(level, rng), hip_rotation_deg=0.0, foot_progression_deg=0.0, asymmetry=0.0)
    seq, truth = synthesize(level, rng, clean=True, subject=child)
    kp = seq.keypoints
    assert np.isfinite(kp).all() and (kp[..., 2] == 1).all()
    w, h = seq.image_size
    assert (kp[..., 0] >= 0).all() and (kp[..., 0] < w).all() and (kp[..., 1] >= 0).all() and (kp[..., 1] < h).all()
    assert all(truth["in_frame"]) and truth["camera"]["yaw_deg"] == 0
    for side, joints in (("left", (11, 13, 15)), ("right", (12, 14, 16))):
        np.testing.assert_allclose(_measured_knee(seq, *joints), truth["knee_flexion_deg"][side], atol=0.01)
    # step length from the ankles at the heel strikes, in leg lengths measured in the image
    xy = kp[..., :2].astype(np.float64)
    leg = np.mean(np.linalg.norm(xy[:, 11] - xy[:, 13], axis=-1) + np.linalg.norm(xy[:, 13] - xy[:, 15], axis=-1))
    steps = [
        truth["direction"] * (xy[f, a, 0] - xy[f, b, 0]) / leg
        for side, a, b in (("left", 15, 16), ("right", 16, 15))
        for f in truth["heel_strikes"][side]
    ]
    assert np.mean(steps) == pytest.approx(truth["step_length_leg"], rel=0.03)
    assert truth["leg_length_px"] == pytest.approx(leg, rel=1e-3)
    # cadence from the heel strikes
    strikes = np.sort(truth["heel_strikes"]["left"] + truth["heel_strikes"]["right"])
    assert 60 * seq.fps / np.mean(np.diff(strikes)) == pytest.approx(truth["cadence_steps_per_min"], rel=0.03)


def test_noisy_preset_drops_points_and_walks_both_ways() -> None:
    directions, dropped, visible = set(), [], []
    for i in range(8):
        seq, truth = synthesize(i % 4, np.random.default_rng(i))
        kp = seq.keypoints
        conf = kp[..., 2]
        assert np.isnan(kp[conf == 0][:, :2]).all() and np.isfinite(kp[conf > 0]).all()
        assert ((conf > 0) & (conf < 1)).any()
        directions.add(truth["direction"])
        dropped.append((conf == 0).mean())
        visible.append(np.mean(truth["in_frame"]))
    assert directions == {-1, 1}
    assert min(dropped) > 0
    assert min(visible) < 1  # some children enter or leave the frame


KNEE = COCO17_FEET.index("left_knee")


def _still_walk(point: tuple[float, float, float], segment: list[tuple[float, float, float]]) -> Walk:
    """A one-frame walk: the nose and the left knee at `point`, the others far away, one walking-aid segment."""
    points = np.full((1, 21, 3), 5.0)
    points[0, [0, KNEE]] = point
    return Walk(
        times=np.zeros(1),
        points=points,
        angles={},
        trunk_lean_deg=np.zeros(1),
        contacts={},
        toe_offs={},
        pelvis=np.zeros((1, 3)),
        device=np.array(segment, dtype=float)[None, None],
    )


@pytest.mark.parametrize(
    "point,segment_z,segment_x,hidden",
    [
        ((0.0, 0.5, 0.1), -0.3, 0.0, True),  # the aid passes in front of the point
        ((0.0, 0.5, 0.1), 0.3, 0.0, False),  # ... behind it
        ((0.0, 0.5, 0.1), -0.3, 0.2, False),  # ... in front, but 20 cm beside it in the image
        ((0.0, 0.5, -0.2), -0.3, 0.03, True),  # near-side point, the aid nearer still and 3 cm away
    ],
)
def test_a_walking_aid_hides_what_lies_behind_it_in_the_image(
    point: tuple[float, float, float], segment_z: float, segment_x: float, hidden: bool
) -> None:
    cam = Camera((1280, 720), 1000.0, 4.0, 0.5, 0.0, 0.0)
    w = _still_walk(point, [(segment_x, 0.0, segment_z), (segment_x, 1.0, segment_z)])
    uv, depth = cam.project(w, 1)
    assert depth[0, KNEE] == pytest.approx(point[2])
    shadow = cam.hidden_by_aid(w, 1, uv, depth)
    assert shadow[0, KNEE] == hidden
    assert not shadow[0, 0]  # only legs are hidden: the face and the hands on the handles stay in view


def test_walkers_hide_legs_in_the_image_and_the_pose_stage_loses_them() -> None:
    legs_lost, upper_lost, shares = [], [], []
    legs = [COCO17_FEET.index(f"{side}_{j}") for side in ("left", "right") for j in ("knee", "ankle")]
    for i in range(6):
        rng = np.random.default_rng([7, i])
        child = replace(draw_subject(3, rng), device="walker")
        seq, truth = synthesize(3, rng, subject=child, duration_s=4.0)
        shares.append(truth["hidden_by_aid_share"])
        conf = seq.keypoints[np.array(truth["in_frame"]), :, 2]  # frames where the whole child is in view
        legs_lost.append(float(np.mean(conf[:, legs] == 0)))
        upper_lost.append(float(np.mean(conf[:, : COCO17_FEET.index("left_hip")] == 0)))
    assert min(shares) > 0.01 and max(shares) < 0.5  # every walker hides something, never most of the child
    assert np.mean(legs_lost) > 2 * np.mean(upper_lost)  # knees and ankles are lost more often than the face/arms
    rng = np.random.default_rng(0)
    _, truth = synthesize(0, rng, subject=replace(draw_subject(0, rng), device="none"), duration_s=4.0)
    assert truth["hidden_by_aid_share"] == 0.0


def test_hidden_points_are_noisier_less_confident_and_lost_more_often() -> None:
    t = 4000
    uv = np.zeros((t, 21, 2))
    uv[:, :, 0] = np.arange(21) * 50.0 + 100
    uv[:, :, 1] = 300.0
    hidden = np.zeros((t, 21), bool)
    hidden[:, 13] = True  # the left knee behind a walker's rail
    kp = pose_artefacts(uv, np.zeros((t, 21), bool), 100.0, (1280, 720), np.random.default_rng(0), hidden)
    conf = kp[..., 2]
    lost = (conf == 0).mean(axis=0)
    assert lost[13] > 0.2 and lost[14] < 0.05  # the right knee is in plain view
    assert np.median(conf[conf[:, 13] > 0, 13]) < 0.5 * np.median(conf[conf[:, 14] > 0, 14])
    err = np.linalg.norm(kp[..., :2] - uv, axis=-1)
    assert np.nanmedian(err[:, 13]) > 2 * np.nanmedian(err[:, 14])


def test_pose_model_swaps_left_and_right_now_and_then() -> None:
    t = 3000
    uv = np.zeros((t, 21, 2))
    uv[:, :, 0] = np.arange(21) * 50.0 + 100  # every joint in its own place
    uv[:, :, 1] = 300.0
    kp = pose_artefacts(uv, np.zeros((t, 21), bool), leg_px=100.0, image_size=(1280, 720), rng=np.random.default_rng(0))
    knee_l, knee_r = COCO17_FEET.index("left_knee"), COCO17_FEET.index("right_knee")
    swapped = np.abs(kp[:, knee_l, 0] - uv[0, knee_r, 0]) < 20
    assert 0 < swapped.sum() < 0.05 * t


@functools.cache
def _truths_at(level: int, draws: int = 60) -> tuple[dict, ...]:
    return tuple(
        synthesize(level, np.random.default_rng([level, i]), clean=True, duration_s=4.0)[1] for i in range(draws)
    )


def _mean_truth(level: int, key: str) -> float:
    values = [tr[key] for tr in _truths_at(level)]
    return float(np.mean([np.mean(list(v.values())) if isinstance(v, dict) else np.mean(v) for v in values]))


@pytest.mark.parametrize(
    "key,falls",
    [
        ("cadence_steps_per_min", True),
        ("knee_rom_deg", True),
        ("step_length_leg", True),
        ("speed_m_per_s", True),
        ("knee_min_deg", False),
        ("trunk_lean_deg", False),
        ("foot_angle_at_contact_deg", True),
        ("pelvis_vertical_excursion_leg", False),
    ],
)
def test_parameters_change_with_level_on_average(key: str, falls: bool) -> None:
    means = [_mean_truth(level, key) for level in range(4)]
    steps = np.diff(means)
    assert (steps < 0).all() if falls else (steps > 0).all(), means


def _subject(**changes) -> SubjectParams:
    return replace(draw_subject(1, np.random.default_rng(0)), **changes)


@pytest.mark.parametrize(
    "make,error",
    [
        (lambda: _subject(), None),
        (lambda: _subject(level=4), (ValueError, r"level is 4; expected 0-3")),
        (lambda: _subject(affected_side="both"), (ValueError, "affected_side is 'both'")),
        (lambda: _subject(cadence_steps_per_min=0.0), (ValueError, "cadence_steps_per_min is 0.0; expected 20-250")),
        (lambda: _subject(stance_fraction=0.3), (ValueError, r"stance_fraction is 0\.3; expected 0\.5-0\.85")),
        (lambda: replace(_subject().body, thigh=0.0), (ValueError, "body thigh is 0.0; expected a length > 0")),
        (
            lambda: synthesize(2, np.random.default_rng(0), subject=_subject()),
            (CpgaitError, "drawn at level 1 but level 2 was asked for"),
        ),
        (lambda: synthesize(1, np.random.default_rng(0), layout="body25"), (CpgaitError, "layout is 'body25'")),
        (lambda: synthesize(1, np.random.default_rng(0), fps=0.0), (CpgaitError, "fps is 0.0; expected a number")),
        (lambda: draw_subject(5, np.random.default_rng(0)), (CpgaitError, "level is 5; expected 0-3")),
    ],
)
def test_bad_parameters_are_refused(make, error) -> None:
    if error is None:
        assert isinstance(make(), SubjectParams) and isinstance(make().body, Body)
    else:
        with pytest.raises(error[0], match=error[1]):
            make()


def _cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    from cpgait.cli import main

    monkeypatch.setattr(sys, "argv", ["cpgait", "synth", *args])
    with pytest.raises(SystemExit, match=r"^\d*$") as exit_info:  # an exit status, the message on stderr
        main()
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out + captured.err


@pytest.mark.parametrize(
    "args,code,message",
    [
        (["--n", "4"], 0, "wrote 4 synthetic sequences (I: 1, II: 1, III: 1, IV: 1)"),
        (["--n", "0"], 2, "--n is 0; expected at least 1"),
        (["--n", "4", "--layout", "body25"], 2, "--layout is 'body25'"),
        (["--n", "4", "--fps", "0"], 2, "--fps is 0.0"),
        (["--n", "4", "--seed", "-1"], 2, "--seed is -1"),
    ],
)
def test_cli(monkeypatch, capsys, tmp_path: Path, args: list[str], code: int, message: str) -> None:
    status, output = _cli(monkeypatch, capsys, str(tmp_path / "out"), *args)
    assert (status or 0) == code and message in output and "Traceback" not in output


def test_cli_refuses_to_write_over_sequences_unless_asked(monkeypatch, capsys, tmp_path: Path) -> None:
    assert _cli(monkeypatch, capsys, str(tmp_path), "--n", "4", "--clean")[0] in (0, None)
    before = sorted(p.name for p in tmp_path.iterdir())
    status, output = _cli(monkeypatch, capsys, str(tmp_path), "--n", "4")
    assert status == 2 and "already holds 4 sequence file(s); pass --overwrite" in output
    assert "Traceback" not in output and sorted(p.name for p in tmp_path.iterdir()) == before
    assert _cli(monkeypatch, capsys, str(tmp_path), "--n", "4", "--overwrite")[0] in (0, None)
    assert json.loads(next(tmp_path.glob("*.truth.json")).read_text())["clean"] is False
    file = tmp_path / "file"
    file.write_text("x")
    status, output = _cli(monkeypatch, capsys, str(file), "--n", "4")
    assert status == 2 and "is not a directory" in output
