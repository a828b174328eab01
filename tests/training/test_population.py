"""The synthetic population against the real figures of children with CP (training/real_gait.py), the new generator
features (heights, size-dependent cadence, walking aids, leg rotations, arms, no foot sliding), and the report.
SYNTHETIC data throughout; the real figures are published summary statistics (Kidzinski et al. 2020)."""

from __future__ import annotations

import functools
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from cpgait.training.gait_levels import LEVEL_MIX, draw_subject
from cpgait.training.kinematics import contact_points, walk
from cpgait.training.population import draw_population, level_counts, report_markdown
from cpgait.training.real_gait import CORRELATIONS, HYPEREXTENSION_SHARE, REAL
from cpgait.training.synth import synthesize

GAIT = ("speed", "cadence", "stride_length", "knee_max_extension")


@functools.cache
def _population():
    return draw_population(600, seed=11)


@pytest.mark.parametrize("name", GAIT + ("hip_rotation", "foot_progression"))
def test_pooled_measure_lies_in_the_real_range_with_a_similar_spread(name: str) -> None:
    """Synthetic p5 and p95 within 10 % of the real p5-p95 width of the real p5 and p95; mean within 10 % of that
    width of the real mean; sd within 25 % of the real sd."""
    real, values = REAL[name], _population().values[name]
    width = real.p95 - real.p5
    p5, p95 = np.percentile(values, [5, 95])
    assert abs(p5 - real.p5) <= 0.1 * width and abs(p95 - real.p95) <= 0.1 * width, (p5, p95)
    assert abs(values.mean() - real.mean) <= 0.1 * width, values.mean()
    assert values.std(ddof=1) == pytest.approx(real.sd, rel=0.25)


@pytest.mark.parametrize("pair", list(CORRELATIONS))
def test_pooled_correlations_within_0_2_of_the_real_ones(pair: tuple[str, str]) -> None:
    assert _population().correlation(*pair) == pytest.approx(CORRELATIONS[pair], abs=0.2)


def test_about_the_real_share_of_children_hyperextend_the_knee() -> None:
    assert _population().hyperextension_share == pytest.approx(HYPEREXTENSION_SHARE, abs=0.05)


def test_level_mix_counts_sum_and_follow_the_mix() -> None:
    counts = level_counts(101)
    assert sum(counts) == 101 and all(abs(c - 101 * m) < 1 for c, m in zip(counts, LEVEL_MIX))


def test_taller_children_walk_with_lower_cadence_and_longer_steps() -> None:
    subjects = [draw_subject(1, np.random.default_rng([7, i])) for i in range(300)]
    leg = np.array([s.body.leg for s in subjects])
    heights = np.array([s.body.height for s in subjects])
    cadence = np.array([s.cadence_steps_per_min for s in subjects])
    step_m = np.array([s.step_length_leg * s.body.leg for s in subjects])
    assert heights.max() > 1.7 and heights.min() < 1.1
    assert np.corrcoef(leg, cadence)[0, 1] < -0.2 and np.corrcoef(leg, step_m)[0, 1] > 0.3


def test_walking_aids_at_gmfcs_iii_and_iv_only_and_they_occlude() -> None:
    devices = {
        level: [draw_subject(level, np.random.default_rng([level, i])).device for i in range(200)] for level in range(4)
    }
    assert set(devices[0]) == set(devices[1]) == {"none"}
    assert {"walker", "crutches"} <= set(devices[2]) and devices[3].count("walker") > 100
    child = replace(draw_subject(3, np.random.default_rng(0)), device="walker")
    seq, truth = synthesize(3, np.random.default_rng(1), subject=child)
    assert truth["device"] == "walker"
    # the hands rest on the handles: the wrists move with the body, their swing is small
    wrist = seq.keypoints[:, 9, 0] - 0.5 * (seq.keypoints[:, 11, 0] + seq.keypoints[:, 12, 0])
    assert np.nanstd(wrist) < 0.1 * truth["leg_length_px"]


def test_arm_swing_varies_within_a_level_more_than_between_levels() -> None:
    swing = np.array(
        [[draw_subject(lv, np.random.default_rng([lv, i])).arm_swing_deg for i in range(200)] for lv in (0, 1)]
    )
    offset = np.array(
        [[draw_subject(lv, np.random.default_rng([lv, i])).arm_offset_deg for i in range(200)] for lv in (0, 1)]
    )
    for values in (swing, offset):
        assert abs(values[0].mean() - values[1].mean()) < 0.5 * values.std(axis=1).mean()


@pytest.mark.parametrize("level", range(4))
def test_the_stance_foot_does_not_slide(level: int) -> None:
    """From initial contact to toe-off the foot point on the floor (heel or toe) stays put: in 99 % of stance frames it
    moves less than 0.2 % of the leg length, and never more than 2 %."""
    moves = []
    for i in range(6):
        s = draw_subject(level, np.random.default_rng([level, i, 5]))
        w = walk(s, 6.0, 30.0, np.random.default_rng(i))
        points = contact_points(w.angles)
        for side in ("left", "right"):
            for contact in w.contacts[side]:
                toe_off = w.toe_offs[side][w.toe_offs[side] > contact]
                if len(toe_off):
                    f = np.arange(int(np.ceil(contact * 30)) + 1, int(np.floor(toe_off[0] * 30)))
                    p = points[side][f]
                    moves.append(np.abs(w.points[f, p, 0] - w.points[f - 1, p, 0]) / s.body.leg)
    moves = np.concatenate(moves)
    assert np.percentile(moves, 99) < 0.002 and moves.max() < 0.02


def test_truth_has_the_stance_truths_and_rotations() -> None:
    seq, truth = synthesize(2, np.random.default_rng(4), clean=True, duration_s=6.0)
    for side in ("left", "right"):
        contacts, toe_offs = np.array(truth["contact_times_s"][side]), np.array(truth["toe_off_times_s"][side])
        assert len(contacts) >= 2 and len(toe_offs) >= 2
        stance = truth["subject"]["stance_fraction"] * truth["stride_time_s"]
        assert truth["stance_time_s"][side] == pytest.approx(stance, rel=0.15)
        assert truth["knee_flexion_stance_min_deg"][side] <= truth["knee_flexion_at_contact_deg"][side] + 1e-6
        assert truth["toe_offs"][side] == sorted(set(np.round(toe_offs * 30).astype(int).tolist()))
        assert -45 < truth["hip_rotation_deg"][side] < 45
    assert truth["device"] in ("none", "walker", "crutches")
    assert truth["speed_hof"] == pytest.approx(truth["speed_m_per_s"] / np.sqrt(9.81 * truth["leg_length_m"]))


def test_report_table_and_cli(monkeypatch, capsys, tmp_path: Path) -> None:
    text = report_markdown(draw_population(40, seed=1), seed=1)
    assert (
        "| speed, m/s | real | 0.96 |" in text and "speed - cadence | +0.64 |" in text and "Known differences" in text
    )
    from cpgait.cli import main

    monkeypatch.setattr(sys, "argv", ["cpgait", "synth", str(tmp_path), "--report", "--n", "40"])
    with pytest.raises(SystemExit, match="^0?$") as exit_info:
        main()
    out = capsys.readouterr().out
    assert (exit_info.value.code or 0) == 0 and "synthetic" in out and "hyperextension" in out
    assert (tmp_path / "population.md").is_file() and (tmp_path / "population.png").stat().st_size > 1000
    monkeypatch.setattr(sys, "argv", ["cpgait", "synth", str(tmp_path), "--report", "--n", "40"])
    with pytest.raises(SystemExit, match="^2$") as exit_info:
        main()
    assert exit_info.value.code == 2 and "pass --overwrite" in capsys.readouterr().err
