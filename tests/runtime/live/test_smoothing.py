"""One-Euro smoothing (less jitter, little lag, missing joints) and resampling to the model's fps by timestamp."""

from __future__ import annotations

import numpy as np
import pytest

from cpgait.errors import CpgaitError
from cpgait.runtime.live.smoothing import OneEuroFilter, Resampler

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


def _kp(x: float, conf: float = 0.9) -> np.ndarray:
    return np.array([[x, 2 * x, conf], [x + 1, 0.0, conf]], dtype=np.float32)


def test_resampling_at_the_same_fps_is_the_identity() -> None:
    r = Resampler(FPS)
    out = [o for k in range(10) for o in r.push(5 + k / FPS, _kp(float(k)))]
    assert [t for t, _ in out] == pytest.approx([5 + k / FPS for k in range(10)])
    assert all(np.array_equal(kp, _kp(float(k))) for k, (_, kp) in enumerate(out))


def test_resampling_from_60_to_30_fps_keeps_every_other_frame() -> None:
    r = Resampler(FPS)
    out = [o for k in range(20) for o in r.push(k / 60, _kp(float(k)))]
    assert len(out) == 10
    assert [kp[0, 0] for _, kp in out] == pytest.approx([2.0 * k for k in range(10)])


def test_resampling_from_25_fps_interpolates_linear_motion_exactly() -> None:
    r = Resampler(FPS)
    speed = 120.0  # px/s
    out = [o for k in range(25) for o in r.push(k / 25, _kp(speed * k / 25))]
    times = np.array([t for t, _ in out])
    assert np.diff(times) == pytest.approx(1 / FPS)
    assert [kp[0, 0] for _, kp in out] == pytest.approx(speed * times, abs=1e-3)


def test_resampling_leaves_gaps_missing_and_takes_a_one_sided_joint_from_the_nearer_frame() -> None:
    r = Resampler(FPS, max_gap_s=0.2)
    r.push(0.0, _kp(0.0))
    gap = r.push(0.5, _kp(15.0))  # half a second without frames
    assert len(gap) == 15
    assert all(kp[:, 2].max() == 0 and np.isnan(kp[:, :2]).all() for _, kp in gap[:-1])
    assert gap[-1][1][0, 0] == 15.0  # the new sample itself
    half = _kp(16.0)
    half[1] = (np.nan, np.nan, 0.0)
    out = r.push(0.5 + 1 / 60, half)  # next sample half a frame later: no output yet
    assert out == []
    ((t, kp),) = r.push(0.5 + 2 / 60, _kp(17.0))
    assert t == pytest.approx(0.5 + 1 / FPS)
    assert kp[1, 0] == pytest.approx(18.0)  # joint 1 only seen on the later side: taken from it


@pytest.mark.parametrize(
    "make,expected",
    [
        (lambda: Resampler(0), "resampling to 0 fps with a 0.25 s gap limit: expected both > 0"),
        (lambda: Resampler(30, max_gap_s=0), "resampling to 30 fps with a 0 s gap limit"),
        (lambda: Resampler(30).push(0.0, np.zeros((5, 2))), r"takes \[V, 3\] keypoints; got shape \(5, 2\)"),
        (lambda: Resampler(30).push(0.0, np.zeros((5, 3))), None),
    ],
)
def test_resampler_input_is_checked(make, expected: str | None) -> None:
    if expected is None:
        assert len(make()) == 1
        return
    with pytest.raises(CpgaitError, match=expected):
        make()
