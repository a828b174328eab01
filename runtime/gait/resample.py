"""Keypoints to the model's frame rate: one resampler for training data and the live loop alike.

The classifier was trained at the contract's fps; a camera delivers whatever it delivers (25, 30, 60 fps, with
jitter and skipped frames), and recordings come at their own fps. `Resampler` turns timestamped keypoints into
frames exactly 1 / fps apart by linear interpolation and leaves a gap as missing frames (confidence 0) rather than
inventing motion across it. `resample` runs a whole recording through the same `Resampler`, so training windows and
the kiosk's windows treat gaps identically by construction.
"""

from __future__ import annotations

import math

import numpy as np

from cpgait.errors import CpgaitError
from cpgait.runtime.gait.keypoints import seen

_EPS_S = 1e-6
MAX_GAP_S = 0.25  # a longer source gap leaves the frames inside it missing


class Resampler:
    """Timestamped `[V, 3]` keypoints in, frames at exactly `fps` out (linear interpolation, gaps left missing).

    The first pushed sample starts the output clock. A joint is interpolated where both neighbouring samples see it
    (`keypoints.seen`) and taken from the nearer one where only that one does; across a source gap longer than
    `max_gap_s` the output frames are missing (confidence 0, x and y NaN).
    """

    def __init__(self, fps: float, max_gap_s: float = MAX_GAP_S) -> None:
        if not fps > 0 or not max_gap_s > 0:
            raise CpgaitError(f"resampling to {fps} fps with a {max_gap_s} s gap limit: expected both > 0")
        self.fps = float(fps)
        self.max_gap_s = float(max_gap_s)
        self.reset()

    def reset(self) -> None:
        self._start: float | None = None
        self._k = 0
        self._prev: tuple[float, np.ndarray] | None = None

    def push(self, t: float, keypoints: np.ndarray) -> list[tuple[float, np.ndarray]]:
        """Add one sample; return the output frames (time, `[V, 3]` float32) that are now due, oldest first."""
        kp = np.asarray(keypoints, dtype=np.float32)
        if kp.ndim != 2 or kp.shape[1] != 3:
            raise CpgaitError(f"resampler takes [V, 3] keypoints; got shape {kp.shape}")
        if self._prev is not None and t <= self._prev[0]:
            return []  # a repeated or out-of-order timestamp adds nothing
        if self._start is None:
            self._start = float(t)
        out: list[tuple[float, np.ndarray]] = []
        while (due := self._start + self._k / self.fps) <= t + _EPS_S:
            out.append((due, self._at(due, t, kp)))
            self._k += 1
        self._prev = (float(t), kp)
        return out

    def _at(self, due: float, t1: float, kp1: np.ndarray) -> np.ndarray:
        if abs(due - t1) <= _EPS_S or self._prev is None:
            return kp1.copy()
        t0, kp0 = self._prev
        if t1 - t0 > self.max_gap_s:
            return _missing(kp1.shape[0])
        w = (due - t0) / (t1 - t0)
        seen0, seen1 = seen(kp0), seen(kp1)
        out = _missing(kp1.shape[0])
        both = seen0 & seen1
        out[both] = kp0[both] + np.float32(w) * (kp1[both] - kp0[both])
        near = kp0 if w < 0.5 else kp1
        only = (seen0 ^ seen1) & seen(near)
        out[only] = near[only]
        return out


def resample(keypoints: np.ndarray, fps_in: float, fps_out: float) -> np.ndarray:
    """A whole `[T, V, 3]` recording at `fps_in` (frame k at k / fps_in s) as frames at `fps_out`, through `Resampler`.

    Non-finite points become missing (x, y NaN, confidence 0) first. Output frame k is at k / fps_out, up to the last
    input frame.
    """
    kp = np.asarray(keypoints)
    if kp.ndim != 3 or kp.shape[2] != 3 or kp.shape[0] < 1:
        raise CpgaitError(f"keypoints have shape {kp.shape}; expected [T >= 1, V, 3] (x, y, confidence)")
    for name, value in (("fps_in", fps_in), ("fps_out", fps_out)):
        if not (math.isfinite(value) and value > 0):
            raise CpgaitError(f"{name} is {value}; expected a number > 0")
    kp = kp.astype(np.float32, copy=True)
    missing = (kp[..., 2] <= 0) | ~np.all(np.isfinite(kp[..., :2]), axis=-1)
    kp[missing] = (np.nan, np.nan, 0.0)
    resampler = Resampler(fps_out)
    frames = [frame for k in range(kp.shape[0]) for _, frame in resampler.push(k / fps_in, kp[k])]
    return np.stack(frames).astype(np.float32)


def _missing(num_joints: int) -> np.ndarray:
    out = np.full((num_joints, 3), np.nan, dtype=np.float32)
    out[:, 2] = 0.0
    return out
