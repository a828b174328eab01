"""Classification metrics for GMFCS levels (numpy only): shared by `cpgait evaluate` and the accuracy gate.

Labels are class indices 0..C-1 (GMFCS I-IV = 0-3). The levels are ordinal, hence the linearly weighted kappa.
"""

from __future__ import annotations

import math

import numpy as np

from cpgait.errors import CpgaitError


def _labels(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    t, p = np.asarray(y_true), np.asarray(y_pred)
    if t.shape != p.shape or t.ndim != 1:
        raise CpgaitError(f"labels have shapes {t.shape} and {p.shape}; expected two equal 1-D shapes")
    for name, v in (("true", t), ("predicted", p)):
        if v.size and (not np.issubdtype(v.dtype, np.integer) or v.min() < 0 or v.max() >= num_classes):
            raise CpgaitError(f"{name} labels must be integers in 0..{num_classes - 1}")
    return t.astype(np.int64), p.astype(np.int64)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """`[C, C]` counts; row = true class, column = predicted class."""
    t, p = _labels(y_true, y_pred, num_classes)
    return np.bincount(t * num_classes + p, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    t, p = np.asarray(y_true), np.asarray(y_pred)
    if t.shape != p.shape or t.size == 0:
        raise CpgaitError(f"labels have shapes {t.shape} and {p.shape}; expected two equal, non-empty shapes")
    return float(np.mean(t == p))


def per_class_f1(confusion: np.ndarray) -> np.ndarray:
    """F1 of each class from a confusion matrix; NaN for a class that is neither present nor predicted."""
    cm = np.asarray(confusion, dtype=np.float64)
    tp = np.diag(cm)
    denominator = cm.sum(axis=0) + cm.sum(axis=1)  # = 2 tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, 2 * tp / denominator, np.nan)


def macro_f1(confusion: np.ndarray) -> float:
    """Mean F1 over the classes that are present or predicted (undefined classes are left out, not counted as 0)."""
    f1 = per_class_f1(confusion)
    return float(np.nanmean(f1)) if np.isfinite(f1).any() else math.nan


def weighted_kappa(confusion: np.ndarray) -> float:
    """Cohen's kappa with linear weights |i - j| / (C - 1); NaN when chance disagreement is zero (one class only)."""
    cm = np.asarray(confusion, dtype=np.float64)
    c = cm.shape[0]
    total = cm.sum()
    if total == 0:
        return math.nan
    idx = np.arange(c)
    weights = np.abs(idx[:, None] - idx[None, :]) / max(c - 1, 1)
    expected = np.outer(cm.sum(axis=1), cm.sum(axis=0)) / total
    chance = float((weights * expected).sum())
    return math.nan if chance == 0 else 1.0 - float((weights * cm).sum()) / chance


def classification_scores(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> dict:
    """Accuracy, macro-F1, linearly weighted kappa, per-class F1 and the confusion matrix, as plain JSON types.

    Undefined values (NaN above) become None, so the result is valid JSON."""
    cm = confusion_matrix(y_true, y_pred, num_classes)
    return {
        "n": int(cm.sum()),
        "accuracy": accuracy(y_true, y_pred),
        "macro_f1": _or_none(macro_f1(cm)),
        "kappa_linear": _or_none(weighted_kappa(cm)),
        "per_class_f1": [_or_none(float(f)) for f in per_class_f1(cm)],
        "confusion": cm.tolist(),
    }


def _or_none(value: float) -> float | None:
    return None if math.isnan(value) else value


def confusion_text(confusion: np.ndarray, class_names: tuple[str, ...] | list[str]) -> str:
    """A confusion matrix as aligned text: rows = true class, columns = predicted class."""
    cm = np.asarray(confusion)
    corner = "true \\ predicted"
    first = max(len(corner), *(len(n) for n in class_names)) + 2
    width = max(*(len(n) for n in class_names), len(str(int(cm.max(initial=0)))))
    lines = [corner.ljust(first) + " ".join(n.rjust(width) for n in class_names)]
    for name, row in zip(class_names, cm):
        lines.append(name.ljust(first) + " ".join(str(int(v)).rjust(width) for v in row))
    return "\n".join(lines)
