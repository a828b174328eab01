"""Classification metrics against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cpgait.errors import CpgaitError
from cpgait.runtime.core.metrics import (
    accuracy,
    classification_scores,
    confusion_matrix,
    confusion_text,
    macro_f1,
    per_class_f1,
    weighted_kappa,
)

# rows = true class: 0 -> [0, 1], 1 -> [1, 1], 2 -> [3], 3 -> [3]
TRUE = np.array([0, 0, 1, 1, 2, 3])
PRED = np.array([0, 1, 1, 1, 3, 3])


def test_metrics_match_a_hand_worked_example() -> None:
    cm = confusion_matrix(TRUE, PRED, 4)
    assert cm.tolist() == [[1, 1, 0, 0], [0, 2, 0, 0], [0, 0, 0, 1], [0, 0, 0, 1]]
    assert accuracy(TRUE, PRED) == pytest.approx(4 / 6)
    assert per_class_f1(cm) == pytest.approx([2 / 3, 0.8, 0.0, 2 / 3])  # class 2: present, never predicted -> 0
    assert macro_f1(cm) == pytest.approx((2 / 3 + 0.8 + 0 + 2 / 3) / 4)
    # linear weights |i - j| / 3: weighted disagreement observed 2/3, expected by chance 22/9 -> 1 - 12/44
    assert weighted_kappa(cm) == pytest.approx(32 / 44)


def test_a_class_neither_present_nor_predicted_is_left_out_of_macro_f1() -> None:
    cm = confusion_matrix(np.array([0, 1, 1]), np.array([0, 1, 0]), 4)
    assert math.isnan(per_class_f1(cm)[3])
    assert macro_f1(cm) == pytest.approx((2 / 3 + 2 / 3) / 2)


def test_kappa_is_undefined_for_one_class_and_reported_as_none() -> None:
    scores = classification_scores(np.array([2, 2, 2]), np.array([2, 2, 2]), 4)
    assert scores["accuracy"] == 1.0 and scores["kappa_linear"] is None and scores["n"] == 3


def test_perfect_and_opposite_predictions_bound_kappa() -> None:
    y = np.array([0, 1, 2, 3])
    assert weighted_kappa(confusion_matrix(y, y, 4)) == pytest.approx(1.0)
    assert weighted_kappa(confusion_matrix(y, 3 - y, 4)) < 0


@pytest.mark.parametrize(
    "true, pred, match",
    [
        ([0, 1], [0], "shapes"),
        ([0, 4], [0, 1], "integers in 0..3"),
        ([0.5, 1], [0, 1], "integers in 0..3"),
    ],
)
def test_bad_labels_are_refused(true: list, pred: list, match: str) -> None:
    with pytest.raises(CpgaitError, match=match):
        confusion_matrix(np.array(true), np.array(pred), 4)


@pytest.mark.parametrize("true, pred, match", [([0, 9], [0, 1], "true labels"), ([0, 1], [0, 9], "predicted labels")])
def test_a_bad_label_names_its_side(true: list, pred: list, match: str) -> None:
    with pytest.raises(CpgaitError, match=f"^{match} must be integers in 0..3$"):
        confusion_matrix(np.array(true), np.array(pred), 4)


@pytest.mark.parametrize("true, pred", [([0, 1], [0]), ([], [])])
def test_accuracy_needs_two_equal_non_empty_label_sets(true: list, pred: list) -> None:
    with pytest.raises(CpgaitError, match="expected two equal, non-empty shapes"):
        accuracy(np.array(true), np.array(pred))


def test_scores_carry_the_confusion_matrix() -> None:
    assert classification_scores(TRUE, PRED, 4)["confusion"] == confusion_matrix(TRUE, PRED, 4).tolist()


@pytest.mark.filterwarnings("error")  # 0/0 for a class nobody has must not warn (nor a mean of nothing)
def test_undefined_classes_and_empty_matrices_give_nan_without_warnings() -> None:
    cm = confusion_matrix(np.array([0, 1]), np.array([0, 1]), 4)
    assert per_class_f1(cm)[:2].tolist() == [1.0, 1.0] and np.isnan(per_class_f1(cm)[2:]).all()
    empty = np.zeros((4, 4), dtype=np.int64)
    assert math.isnan(macro_f1(empty)) and math.isnan(weighted_kappa(empty))


def test_kappa_of_a_single_wrong_prediction_is_zero_not_undefined() -> None:
    # one window, true I, predicted II: observed disagreement = chance disagreement = 1/3 -> kappa 0
    assert weighted_kappa(confusion_matrix(np.array([0]), np.array([1]), 4)) == 0.0


def test_confusion_text_aligns_names_and_counts() -> None:
    text = confusion_text(np.array([[12, 3], [0, 7]]), ("GMFCS I", "GMFCS II"))
    assert text.splitlines() == [
        "true \\ predicted   GMFCS I GMFCS II",
        "GMFCS I                 12        3",
        "GMFCS II                 0        7",
    ]
