"""Resampling to the model's fps: the streaming `Resampler` of the live loop and `resample` of recordings."""

from __future__ import annotations

import numpy as np
import pytest

from cpgait.errors import CpgaitError
from cpgait.runtime.gait.resample import Resampler, resample

FPS = 30.0


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


def test_resampling_a_recording_interpolates_and_treats_gaps_as_the_live_resampler_does() -> None:
    kp = np.zeros((5, 2, 3), dtype=np.float32)
    kp[:, 0] = np.stack([np.arange(5) * 10.0, np.arange(5) * 2.0, np.full(5, 0.5)], axis=1)
    kp[:, 1] = kp[:, 0]
    kp[:, 1, 2] = [1.0, 0.0, 1.0, 1.0, 1.0]  # joint 1 missing in frame 1
    kp[1, 1, :2] = np.nan
    up = resample(kp, fps_in=10, fps_out=20)
    assert up.shape == (9, 2, 3)
    np.testing.assert_allclose(up[:, 0, 0], np.arange(9) * 5.0)
    np.testing.assert_allclose(up[:, 0, 2], 0.5)
    # output 2 is the missing input frame 1 itself; frames seen on both sides are interpolated
    assert up[2, 1, 2] == 0 and np.all(np.isnan(up[2, 1, :2]))
    assert np.all(up[[0, 4, 5], 1, 2] == 1)
    # a point seen on one side only is taken from the nearer frame when that one sees it: at 30 fps, output 4
    # (input frame 1.33) is nearest the missing frame, output 5 (frame 1.67) nearest the seen frame 2
    third = resample(kp, fps_in=10, fps_out=30)
    assert third[4, 1, 2] == 0 and np.all(np.isnan(third[4, 1, :2]))
    np.testing.assert_array_equal(third[5, 1], kp[2, 1])
    live = Resampler(20)
    streamed = np.stack([f for k in range(5) for _, f in live.push(k / 10, kp[k])])
    np.testing.assert_array_equal(np.nan_to_num(streamed, nan=-1), np.nan_to_num(up, nan=-1))
    down = resample(kp, fps_in=10, fps_out=4)  # times 0, 0.25 (frame 2.5)
    assert down.shape == (2, 2, 3)
    np.testing.assert_allclose(down[:, 0, 0], [0.0, 25.0])
    np.testing.assert_array_equal(resample(kp, 30, 30)[:, 0], kp[:, 0])


@pytest.mark.parametrize(
    "keypoints,fps_in,fps_out,error",
    [
        (np.zeros((4, 17)), 30, 30, CpgaitError),
        (np.zeros((0, 17, 3)), 30, 30, CpgaitError),
        (np.zeros((4, 17, 3)), 0, 30, CpgaitError),
        (np.zeros((4, 17, 3)), 30, float("nan"), CpgaitError),
    ],
    ids=["no channel axis", "no frames", "fps 0", "fps nan"],
)
def test_resample_refuses_bad_input(keypoints: np.ndarray, fps_in: float, fps_out: float, error: type) -> None:
    with pytest.raises(error, match="expected"):
        resample(keypoints, fps_in, fps_out)
