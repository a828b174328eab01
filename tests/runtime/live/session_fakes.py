"""Stand-ins shared by the gait-session and pipeline tests: a contract, a classifier that answers scripted logits,
and a stick figure walking at 1 Hz strides."""

from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np

from cpgait.runtime.backends.runner import Runner
from cpgait.runtime.core.contract import ModelContract
from cpgait.runtime.core.tensors import TensorSpec
from cpgait.runtime.gait.features import SCALAR_NAMES, SERIES_NAMES

LEGS = ("left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle")


def contract_for(window: int = 60, layout: str = "coco17") -> ModelContract:
    return ModelContract(
        layout=layout,
        window=window,
        fps=30.0,
        series_features=SERIES_NAMES,
        scalar_features=SCALAR_NAMES,
        feature_joints=LEGS,
        training_data="a test stand-in",
    )


class FakeRunner(Runner):
    """A classifier that answers `logits` (cycling through them) with the contract's inputs."""

    def __init__(self, contract: ModelContract, logits: list[list[float]], names: tuple[str, ...] | None = None):
        super().__init__()
        self.contract, self.logits, self.calls = contract, logits, 0
        self.names = names or contract.input_names

    def _activate(self) -> None:
        t, s, c = self.contract.window, len(self.contract.series_features), len(self.contract.scalar_features)
        shapes = {"skeleton": (None, 3, t, 17), "gait_series": (None, s, t), "gait_scalars": (None, c)}
        self._specs = [TensorSpec(n, np.dtype(np.float32), shapes.get(n, (None,))) for n in self.names]
        self._outputs = [self.contract.output_name]

    def _infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = np.array([self.logits[self.calls % len(self.logits)]], dtype=np.float32)
        self.calls += 1
        return {self.contract.output_name: out}


class SlowRunner(FakeRunner):
    """A `FakeRunner` that takes `seconds` per call (asleep: wall time, almost no CPU time)."""

    def __init__(self, contract: ModelContract, logits: list[list[float]], seconds: float) -> None:
        super().__init__(contract, logits)
        self.seconds = seconds

    def _infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        time.sleep(self.seconds)
        return super()._infer(feed)


def walker(k: int, fps: float = 30.0, x0: float = 900.0) -> np.ndarray:
    """COCO-17 keypoints of a stick figure walking right to left at 1 Hz strides (pixels, confidence 0.9)."""
    t = k / fps
    hip = np.array([x0 - 250 * t, 400.0])
    swing = 0.45 * np.sin(2 * np.pi * 1.0 * t)
    kp = np.zeros((17, 3), dtype=np.float32)
    kp[:, 2] = 0.9
    kp[:, :2] = hip + [0, -150]  # head and arms near the shoulders
    kp[5, :2] = kp[6, :2] = hip + [-10, -150]
    kp[11, :2] = kp[12, :2] = hip
    for side, sign in ((0, 1), (1, -1)):
        a = sign * swing
        knee = hip + 100 * np.array([-np.sin(a), np.cos(a)])
        kp[13 + side, :2] = knee
        kp[15 + side, :2] = knee + 100 * np.array([-np.sin(a - 0.3 * abs(a)), np.cos(a)])
    return kp
