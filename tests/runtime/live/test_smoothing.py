"""One-Euro smoothing (less jitter, little lag, missing joints) and resampling to the model's fps by timestamp."""

from __future__ import annotations

import numpy as np
import pytest

from cpgait.errors import CpgaitError
from cpgait.runtime.live.smoothing import OneEuroFilter

FPS = 30.0


def _filter(signal: np.ndarray, f: OneEuroFilter, scale: float = 400.0) -> np.ndarray:
    return np.stack([f(k / FPS, signal[k], scale=scale) for k in range(len(signal))])


def test_one_euro_removes_most_jitter_of_a_still_joint() -> None:
    rng = np.random.default_rng(0)
    still = np.array([[300.0, 200.0]] * 300) + rng.normal(0, 3.0, (300, 2))
    out = _filter(still[:, None, :], OneEuroFilter())[:, 0]
    assert out[60:].std(axis=0).max() < 0.6 * still[60:].std(axis=0).min()


def test_one_euro_follows_a_swinging_ankle_with_little_lag() -> None:
    t = np.arange(150) / FPS
    truth = np.stack([400 + 120 * np.sin(2 * np.pi * 1.0 * t), 500 + 0 * t], axis=1)  # 1 Hz stride, +-120 px
    noisy = truth + np.random.default_rng(1).normal(0, 2.0, truth.shape)
    out = _filter(noisy[:, None, :], OneEuroFilter())[:, 0, 0]
    lags = range(0, 6)
    errors = [np.abs(out[30 + lag :] - truth[30 : len(truth) - lag, 0]).mean() for lag in lags]
    assert int(np.argmin(errors)) <= 1  # at most one frame behind
    assert np.abs(out[30:] - truth[30:, 0]).mean() < 0.06 * 120
    assert np.abs(out[30:] - truth[30:, 0]).max() < 0.12 * 120


def test_one_euro_skips_missing_joints_and_restarts_after_a_long_gap() -> None:
    f = OneEuroFilter(max_gap_s=0.2)
    a = np.array([[10.0, 10.0], [50.0, 50.0]])
    f(0.0, a)
    out = f(1 / FPS, np.array([[12.0, 12.0], [np.nan, np.nan]]))
    assert np.isnan(out[1]).all() and np.isfinite(out[0]).all()
    hidden = f(2 / FPS, np.array([[14.0, 14.0], [60.0, 60.0]]), valid=np.array([True, False]))
    assert np.isnan(hidden[1]).all()
    back = f(1.0, np.array([[16.0, 16.0], [300.0, 300.0]]))  # joint 1 unseen for 1 s: starts where it is now
    assert back[1] == pytest.approx([300.0, 300.0])


@pytest.mark.parametrize(
    "kwargs,shown",
    [
        ({"min_cutoff_hz": 0}, "min_cutoff=0,"),
        ({"d_cutoff_hz": -1}, "d_cutoff=-1,"),
        ({"beta": -0.1}, "beta=-0.1,"),
        ({"max_gap_s": 0}, "max_gap=0"),
    ],
)
def test_one_euro_settings_are_checked(kwargs: dict, shown: str) -> None:
    with pytest.raises(CpgaitError, match=f"One-Euro settings .*{shown}.*: expected cutoffs and gap > 0, beta >= 0"):
        OneEuroFilter(**kwargs)
