"""Keypoint smoothing (One-Euro filter) and resampling to the model's frame rate by timestamp.

The One-Euro filter (Casiez, Roussel & Vogel, CHI 2012) is a low-pass filter whose cutoff rises with speed: a
standing child's keypoints stop jittering, a swinging foot is not dragged behind. Here it runs on all joints at
once (numpy), with one cutoff per joint from the joint's 2-D speed, measured in body heights per second (`scale`)
so that the same settings fit a child near or far from the camera.

The classifier was trained at the contract's fps; a camera delivers whatever it delivers (25, 30, 60 fps, with
jitter and skipped frames). `Resampler` turns timestamped keypoints into frames exactly 1 / fps apart by linear
interpolation, and leaves a gap as missing frames (confidence 0) rather than inventing motion across it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cpgait.errors import CpgaitError

_EPS_S = 1e-6


def _alpha(cutoff_hz: np.ndarray | float, dt: np.ndarray | float) -> np.ndarray:
    """Smoothing factor of a first-order low-pass filter with this cutoff at this sampling interval."""
    tau = 1.0 / (2.0 * np.pi * np.asarray(cutoff_hz))
    return 1.0 / (1.0 + tau / np.asarray(dt))


@dataclass
class OneEuroFilter:
    """One-Euro filter over `[V, D]` points (V joints, D coordinates); missing joints are skipped, not filled.

    min_cutoff_hz: cutoff when still (lower = less jitter, more lag). beta: how fast the cutoff rises with speed,
    in Hz per (scale units per second). d_cutoff_hz: cutoff of the speed estimate. A joint missing for longer
    than `max_gap_s` restarts from its new position instead of being pulled from the old one. The defaults halve
    the jitter of a still joint and follow a 1 Hz, +-0.3 body-height swing within a frame's lag (the gait
    features smooth again, so this filter stays light: it must not blunt the gait cycle).
    """

    min_cutoff_hz: float = 0.5
    beta: float = 12.0
    d_cutoff_hz: float = 2.0
    max_gap_s: float = 0.5

    def __post_init__(self) -> None:
        if self.min_cutoff_hz <= 0 or self.d_cutoff_hz <= 0 or self.beta < 0 or self.max_gap_s <= 0:
            raise CpgaitError(
                f"One-Euro settings min_cutoff={self.min_cutoff_hz}, beta={self.beta}, d_cutoff={self.d_cutoff_hz}, "
                f"max_gap={self.max_gap_s}: expected cutoffs and gap > 0, beta >= 0"
            )
        self.reset()

    def reset(self) -> None:
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: np.ndarray | None = None

    def __call__(self, t: float, points: np.ndarray, valid: np.ndarray | None = None, scale: float = 1.0) -> np.ndarray:
        """Filter the points observed at time `t` (seconds); rows where `valid` is False come back as NaN."""
        x = np.asarray(points, dtype=np.float64)
        if x.ndim != 2:
            raise CpgaitError(f"One-Euro filter takes [V, D] points; got shape {x.shape}")
        ok = np.all(np.isfinite(x), axis=1)
        if valid is not None:
            ok &= np.asarray(valid, dtype=bool)
        if self._x is None or self._x.shape != x.shape:
            self._x = np.full_like(x, np.nan)
            self._dx = np.zeros_like(x)
            self._t = np.full(x.shape[0], -np.inf)
        dt = t - self._t
        fresh = ok & ~(dt <= self.max_gap_s)  # never seen, or gone for too long: restart there
        step = ok & ~fresh & (dt > _EPS_S)
        if fresh.any():
            self._x[fresh] = x[fresh]
            self._dx[fresh] = 0.0
            self._t[fresh] = t
        if step.any():
            d = dt[step][:, None]
            dx = (x[step] - self._x[step]) / d
            dx_hat = self._dx[step] + _alpha(self.d_cutoff_hz, d) * (dx - self._dx[step])
            speed = np.linalg.norm(dx_hat, axis=1, keepdims=True) / max(float(scale), _EPS_S)
            a = _alpha(self.min_cutoff_hz + self.beta * speed, d)
            self._x[step] = self._x[step] + a * (x[step] - self._x[step])
            self._dx[step] = dx_hat
            self._t[step] = t
        out = np.full_like(x, np.nan)
        out[ok] = self._x[ok]
        return out


class Resampler:
    """Timestamped `[V, 3]` keypoints in, frames at exactly `fps` out (linear interpolation, gaps left missing).

    The first pushed sample starts the output clock. A joint is interpolated where both neighbouring samples see it
    and taken from the nearer one where only that one does; across a source gap longer than `max_gap_s` the output
    frames are missing (confidence 0, x and y NaN).
    """

    def __init__(self, fps: float, max_gap_s: float = 0.25) -> None:
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
        seen0, seen1 = kp0[:, 2] > 0, kp1[:, 2] > 0
        out = _missing(kp1.shape[0])
        both = seen0 & seen1
        out[both] = kp0[both] + np.float32(w) * (kp1[both] - kp0[both])
        near = kp0 if w < 0.5 else kp1
        only = (seen0 ^ seen1) & (near[:, 2] > 0)
        out[only] = near[only]
        return out


def _missing(num_joints: int) -> np.ndarray:
    out = np.full((num_joints, 3), np.nan, dtype=np.float32)
    out[:, 2] = 0.0
    return out
