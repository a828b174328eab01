"""Keypoint smoothing for the live loop (One-Euro filter); resampling to the model's fps is in `runtime.gait.resample`.

The One-Euro filter (Casiez, Roussel & Vogel, CHI 2012) is a low-pass filter whose cutoff rises with speed: a
standing child's keypoints stop jittering, a swinging foot is not dragged behind. Here it runs on all joints at
once (numpy), with one cutoff per joint from the joint's 2-D speed, measured in body heights per second (`scale`)
so that the same settings fit a child near or far from the camera.
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
            raise ValueError(f"One-Euro filter takes [V, D] points; got shape {x.shape}")
        ok = np.all(np.isfinite(x), axis=1)
        if valid is not None:
            ok &= np.asarray(valid, dtype=bool)
        if self._x is None or self._dx is None or self._t is None or self._x.shape != x.shape:
            self._x, self._dx, self._t = np.full_like(x, np.nan), np.zeros_like(x), np.full(x.shape[0], -np.inf)
        state, rate, when = self._x, self._dx, self._t
        dt = t - when
        fresh = ok & ~(dt <= self.max_gap_s)  # never seen, or gone for too long: restart there
        step = ok & ~fresh & (dt > _EPS_S)
        if fresh.any():
            state[fresh] = x[fresh]
            rate[fresh] = 0.0
            when[fresh] = t
        if step.any():
            d = dt[step][:, None]
            dx = (x[step] - state[step]) / d
            dx_hat = rate[step] + _alpha(self.d_cutoff_hz, d) * (dx - rate[step])
            speed = np.linalg.norm(dx_hat, axis=1, keepdims=True) / max(float(scale), _EPS_S)
            a = _alpha(self.min_cutoff_hz + self.beta * speed, d)
            state[step] = state[step] + a * (x[step] - state[step])
            rate[step] = dx_hat
            when[step] = t
        out = np.full_like(x, np.nan)
        out[ok] = state[ok]
        return out
