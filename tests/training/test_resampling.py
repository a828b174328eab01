"""Repeated stratified subject folds, per-subject probabilities, bootstrap intervals, paired differences."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from cpgait.errors import CpgaitError
from cpgait.training.resampling import (
    bootstrap_scores,
    paired_difference,
    stratified_subject_folds,
    subject_probabilities,
    subjects_for_paired_accuracy,
)

LEVELS = {f"s{i:03d}": i % 4 for i in range(60)}


def test_every_subject_is_tested_once_per_repeat_in_stratified_disjoint_folds() -> None:
    folds = stratified_subject_folds(LEVELS, folds=5, repeats=2, seed=0)
    assert len(folds) == 10
    for repeat in (0, 1):
        tests = [s for f in folds if f.repeat == repeat for s in f.test]
        assert sorted(tests) == sorted(LEVELS)  # once each
    for f in folds:
        assert not (set(f.train) | set(f.val)) & set(f.test) and not set(f.train) & set(f.val)
        assert set(f.train) | set(f.val) | set(f.test) == set(LEVELS)
        assert Counter(LEVELS[s] for s in f.test) == Counter({0: 3, 1: 3, 2: 3, 3: 3})  # stratified
        assert {LEVELS[s] for s in f.val} == {0, 1, 2, 3}
    assert folds[0].test != folds[5].test  # the repeats reshuffle
    assert stratified_subject_folds(LEVELS, 5, 2, seed=0) == folds  # deterministic


def test_too_few_subjects_per_level_is_refused() -> None:
    with pytest.raises(CpgaitError, match="only 3 subject"):
        stratified_subject_folds({f"s{i}": i % 4 for i in range(12)}, folds=5)


def test_subject_probabilities_average_the_windows() -> None:
    probs = np.array([[0.9, 0.1], [0.1, 0.9], [0.2, 0.8], [0.6, 0.4]])
    ids, mean, label = subject_probabilities(probs, np.array(["b", "a", "a", "b"]), np.array([0, 1, 1, 0]))
    assert ids == ["a", "b"] and label.tolist() == [1, 0]
    np.testing.assert_allclose(mean, [[0.15, 0.85], [0.75, 0.25]])


def test_bootstrap_interval_brackets_the_value_and_narrows_with_more_subjects() -> None:
    rng = np.random.default_rng(0)
    widths = []
    for n in (40, 640):
        y = rng.integers(0, 4, n)
        pred = np.where(rng.random(n) < 0.8, y, (y + 1) % 4)
        ci = bootstrap_scores(y, pred, 4, n_boot=1000)
        for metric in ("accuracy", "macro_f1", "kappa_linear"):
            assert ci[metric]["lo"] <= ci[metric]["value"] <= ci[metric]["hi"]
        widths.append(ci["accuracy"]["hi"] - ci["accuracy"]["lo"])
    assert widths[1] < 0.5 * widths[0]  # ~ 1 / sqrt(n): 4x fewer points at 16x the subjects


def test_paired_difference_sees_a_gain_that_two_unpaired_intervals_would_not() -> None:
    rng = np.random.default_rng(1)
    n = 600
    y = rng.integers(0, 4, n)
    base_right = rng.random(n) < 0.75
    better_right = base_right | (rng.random(n) < 0.25)  # right wherever the baseline is, and on ~6 % more
    wrong = (y + 1) % 4
    a, b = np.where(better_right, y, wrong), np.where(base_right, y, wrong)
    diff = paired_difference(y, a, b, 4)
    assert diff["value"] == pytest.approx(better_right.mean() - base_right.mean())
    assert 0 < diff["lo"] <= diff["value"] <= diff["hi"]
    same = paired_difference(y, b, b, 4)
    assert same["value"] == same["lo"] == same["hi"] == 0 and same["discordance"] == 0


def test_sample_size_for_a_paired_five_point_gain() -> None:
    # Connor (1987): p_d = 0.15, delta = 0.05, alpha 0.05, power 0.8 -> about 465 subjects
    assert 455 <= subjects_for_paired_accuracy(0.05, 0.15) <= 475
    assert subjects_for_paired_accuracy(0.05, 0.10) < subjects_for_paired_accuracy(0.05, 0.15)
    with pytest.raises(CpgaitError):
        subjects_for_paired_accuracy(0.2, 0.1)


def test_grouped_bootstrap_resamples_whole_subjects() -> None:
    rng = np.random.default_rng(2)
    subjects = np.repeat([f"s{i}" for i in range(50)], 2)  # two CV repeats per subject
    y = np.repeat(rng.integers(0, 4, 50), 2)
    pred = np.where(rng.random(100) < 0.7, y, (y + 1) % 4)
    grouped = bootstrap_scores(y, pred, 4, groups=subjects, n_boot=500)
    flat = bootstrap_scores(y, pred, 4, n_boot=500)
    assert grouped["accuracy"]["value"] == flat["accuracy"]["value"]
    assert grouped["accuracy"]["lo"] <= grouped["accuracy"]["value"] <= grouped["accuracy"]["hi"]
    with pytest.raises(CpgaitError, match="same number of rows"):
        bootstrap_scores(y[:-1], pred[:-1], 4, groups=subjects[:-1])
