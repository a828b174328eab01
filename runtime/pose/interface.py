"""The pose-model interface: the `PoseModel` protocol, what a model returns, and the rotated square crop both
pipelines feed their networks.

A pose model is a callable object (as in rtmlib): `model(image) -> PoseResult | None`, plain numpy around one or
more `Runner`s, so any backend of the registry (ONNX Runtime CPU/CUDA, TensorRT) can run it. The shipped models
and their loader are in `cpgait.runtime.pose.catalog`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from cpgait.errors import CpgaitError
from cpgait.runtime.backends.runner import Runner
from cpgait.runtime.core.layouts import get_layout

ASSETS = Path(__file__).resolve().parents[1] / "assets"
STAGES = ("preprocess", "detector", "landmarks", "postprocess")  # keys of every model's `last_timings_ms`

# Builds the runner for one model file; `OnnxRuntimeRunner` itself is one, a registry backend is another.
RunnerFactory = Callable[[Path], Runner]


class PoseOutputError(ValueError):
    """The network gave non-finite or out-of-range values: the frame is unusable (a device fault, not user error)."""


class Detection(Protocol):
    """One person a detector found, in image pixels: validated by the model that made it."""

    @property
    def score(self) -> float: ...

    @property
    def box(self) -> tuple[float, float, float, float]:  # x0, y0, x1, y1
        ...

    def shifted(self, dx: float, dy: float, scale: float = 1.0) -> Detection:
        """The same detection in the whole image, when it was found in a crop whose top-left corner is (dx, dy) of
        the whole image, cut from a copy of the image resized by `scale` (whole = crop / scale + (dx, dy))."""
        ...


class PoseModel(Protocol):
    """A pose pipeline (BlazePose, MoveNet): what the live loop, `cpgait pose` and the benchmarks rely on."""

    name: str
    layout: str

    @property
    def detector_size(self) -> int | None:
        """Side of the person detector's square input; None for a model without a separate detector."""
        ...

    last_timings_ms: dict[str, float]  # the last call's time per stage of `STAGES`, in ms

    def runners(self) -> list[Runner]:
        """The model's networks, so a caller can activate them before the first frame."""
        ...

    def reset(self) -> None:
        """Forget the tracked person (e.g. between clips, or when the walker changes)."""
        ...

    def detect(self, image: np.ndarray) -> Sequence[Detection] | None:
        """Every person a separate detector finds, best first; None for a model without a separate detector."""
        ...

    def __call__(self, image: np.ndarray, detection: Detection | None = None) -> PoseResult | None:
        """The keypoints of the tracked person, or of `detection` when given; None when nobody is found."""
        ...


@dataclass(frozen=True)
class PoseResult:
    """One person's keypoints in one image: `[V, 3]` float32 x, y in image pixels and a confidence in [0, 1]."""

    keypoints: np.ndarray
    layout: str
    score: float  # how sure the model is that a person is there, in [0, 1]
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels around the person

    def __post_init__(self) -> None:
        joints = get_layout(self.layout).num_joints
        kp = self.keypoints
        if not isinstance(kp, np.ndarray) or kp.dtype != np.float32 or kp.shape != (joints, 3):
            raise ValueError(
                f"pose keypoints: {getattr(kp, 'dtype', type(kp).__name__)} "
                f"{getattr(kp, 'shape', '')}; expected float32 ({joints}, 3) for layout {self.layout}"
            )
        if not np.isfinite(kp).all():
            raise PoseOutputError("pose keypoints must be finite")
        if kp[:, 2].min() < 0 or kp[:, 2].max() > 1:
            raise PoseOutputError("pose keypoint confidences must lie in [0, 1]")
        if not 0 <= self.score <= 1:
            raise ValueError(f"pose score {self.score}; expected a value in [0, 1]")
        x0, y0, x1, y1 = self.box
        if not (np.isfinite(self.box).all() and x0 <= x1 and y0 <= y1):
            raise ValueError(f"pose box {self.box}; expected finite x0 <= x1, y0 <= y1")


def keypoint_box(keypoints: np.ndarray, min_confidence: float = 0.3) -> tuple[float, float, float, float]:
    """Axis-aligned box around the keypoints the model is confident in (all of them when none is)."""
    confident = keypoints[keypoints[:, 2] >= min_confidence]
    points = confident if len(confident) else keypoints
    x0, y0 = points[:, :2].min(axis=0)
    x1, y1 = points[:, :2].max(axis=0)
    return float(x0), float(y0), float(x1), float(y1)


@dataclass(frozen=True)
class Roi:
    """A square region of an image: centre and side in pixels, rotation in radians (clockwise on screen)."""

    cx: float
    cy: float
    size: float
    rotation: float = 0.0

    def __post_init__(self) -> None:
        if not (np.isfinite([self.cx, self.cy, self.size, self.rotation]).all() and self.size > 0):
            raise ValueError(f"region {self}: expected finite values and a positive size")

    def to_image(self, points: np.ndarray, out_size: int) -> np.ndarray:
        """Map `[N, 2]` pixel positions in the `out_size` crop back to image pixels."""
        c, s = np.cos(self.rotation), np.sin(self.rotation)
        scale = self.size / out_size
        local = (points - out_size / 2) * scale
        return np.stack(
            [self.cx + c * local[:, 0] - s * local[:, 1], self.cy + s * local[:, 0] + c * local[:, 1]], axis=1
        )

    def crop(self, image: np.ndarray, out_size: int, border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
        """The region resampled (bilinear) to `out_size` x `out_size`, rotated upright.

        The region's corners map to the crop's outer pixel edges (0 and `out_size`), as MediaPipe's
        ImageToTensorCalculator does; outside the image the border rule applies (zeros for BORDER_CONSTANT).
        """
        c, s = np.cos(self.rotation), np.sin(self.rotation)
        k = self.size / out_size
        half = out_size / 2
        crop_to_image = np.array(
            [[k * c, -k * s, self.cx - half * k * (c - s)], [k * s, k * c, self.cy - half * k * (s + c)]],
            dtype=np.float64,
        )
        return cv2.warpAffine(
            image,
            crop_to_image,
            (out_size, out_size),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=border,
            borderValue=0,
        )


def check_image(image: np.ndarray) -> None:
    """A pose model takes a BGR uint8 image `[H, W, 3]`, as OpenCV reads and decodes them (a caller's bug
    otherwise, hence ValueError, not a user error)."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"pose input: {getattr(image, 'dtype', type(image).__name__)} "
            f"{getattr(image, 'shape', '')}; expected a BGR uint8 image [H, W, 3]"
        )
    if min(image.shape[:2]) < 2:
        raise ValueError(f"pose input: image of {image.shape[1]}x{image.shape[0]} pixels is too small")


def asset(name: str, folder: Path | None = None) -> Path:
    """Path of the pose network `name` (`<name>.onnx`): the shipped one, or the one in `folder` (e.g. the FP16
    variants `cpgait export-pose` writes), with an error that says how to make it when it is missing."""
    if folder is not None:
        path = Path(folder) / f"{name}.onnx"
        if not path.is_file():
            raise CpgaitError(f"{path}: pose network missing from {folder}; write it with `cpgait export-pose`")
        return path
    path = ASSETS / f"{name}.onnx"
    if not path.is_file():
        raise CpgaitError(f"{path}: pose model missing; run scripts/convert_pose_models.py (see its docstring)")
    return path
