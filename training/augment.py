"""Training augmentation on raw keypoint windows, applied before `window_inputs` so the gait features see it too."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cpgait.errors import CpgaitError


@dataclass(frozen=True)
class Augmentation:
    """Small, plausible changes of one walk: camera roll, distance, detector noise and missed detections."""

    max_rotation_deg: float = 5.0
    max_scale: float = 0.1  # scale drawn from [1 - max_scale, 1 + max_scale]
    jitter: float = 0.005  # noise std as a fraction of the skeleton's height in the window
    dropout: float = 0.02  # probability that a keypoint goes missing in a frame

    def __post_init__(self) -> None:
        if not (
            0 <= self.max_rotation_deg <= 45 and 0 <= self.max_scale < 1 and self.jitter >= 0 and 0 <= self.dropout < 1
        ):
            raise CpgaitError(f"augmentation {self} is out of range")

    def __call__(self, keypoints: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Augment one `[T, V, 3]` window of pixel keypoints; missing points stay missing (NaN, confidence 0)."""
        kp = keypoints.astype(np.float32, copy=True)
        seen = kp[..., 2] > 0
        if not seen.any():
            return kp
        xy = kp[..., :2]
        centre = np.nanmean(xy[seen], axis=0)
        height = float(np.ptp(xy[seen][:, 1])) or 1.0
        angle = np.deg2rad(rng.uniform(-self.max_rotation_deg, self.max_rotation_deg))
        scale = rng.uniform(1 - self.max_scale, 1 + self.max_scale)
        rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]], np.float32)
        xy = (xy - centre) @ rotation.T + centre
        xy = xy + rng.normal(0.0, self.jitter * height, size=xy.shape).astype(np.float32)
        kp[..., :2] = xy
        drop = seen & (rng.random(seen.shape) < self.dropout)
        kp[drop] = (np.nan, np.nan, 0.0)
        kp[~seen] = (np.nan, np.nan, 0.0)
        return kp
