"""The paper table's pooling and paired comparisons on hand-made fold results (no training: seconds)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[2] / "scripts"))
from paper_table import pooled, summarise, table  # noqa: E402


def _fold(subjects: list[str], labels: list[int], right: dict[str, float], rng: np.random.Generator) -> dict:
    """Predictions per row: each subject right with the row's probability."""
    out = {}
    for row, p in right.items():
        pred = {s: (lab if rng.random() < p else (lab + 1) % 4) for s, lab in zip(subjects, labels)}
        out[row] = {"predicted": pred, "label": dict(zip(subjects, labels)), "joints": [], "features": 5}
    out["ranking"] = {"joints": ["left_ankle", "right_ankle", "left_knee"], "layer": 3, "model_sha256": "0" * 64}
    return out


def test_rows_are_pooled_over_folds_and_repeats_and_compared_pairwise() -> None:
    rng = np.random.default_rng(0)
    subjects = [f"s{i:03d}" for i in range(200)]
    labels = [i % 4 for i in range(200)]
    right = {"skeleton": 0.6, "gait": 0.5, "fused": 0.9, "gradcam-2": 0.9, "random-2-0": 0.6, "random-2-1": 0.6}
    folds = {}
    for repeat in range(2):
        for fold in range(2):
            part = slice(fold * 100, (fold + 1) * 100)
            folds[f"r{repeat}f{fold}"] = _fold(subjects[part], labels[part], right, rng)
    y, p, g = pooled(folds, "skeleton")
    assert len(y) == 400 and sorted(set(g.tolist())) == subjects  # each subject once per repeat
    assert len(pooled(folds, "random-2")[0]) == 800  # both draws
    args = argparse.Namespace(
        k=[2],
        draws=2,
        seed=0,
        data="d",
        repeats=2,
        folds=2,
        epochs=1,
        patience=1,
        stride=62,
        width=0.125,
        no_augment=True,
        motion=False,
        bones=False,
        layer=3,
    )
    summary = summarise(folds, args)
    fused_gain = summary["paired"]["fused - skeleton"]
    assert 0 < fused_gain["lo"] < fused_gain["value"] < fused_gain["hi"]  # a 30-point gain on 200 subjects x 2
    assert summary["paired"]["Grad-CAM 2 - random 2"]["value"] > 0.05
    assert summary["scores"]["gait"]["accuracy"]["value"] < summary["scores"]["fused"]["accuracy"]["value"]
    text = table(summary, folds, args, 200, 60.0)
    assert "fused, Grad-CAM top 2 joints" in text and "SYNTHETIC" in text and "469 subjects" in text
