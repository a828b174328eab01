"""What every pose model returns, the rotated square crop both pipelines feed their networks, and the model loader.

Two pose pipelines ship (ONNX files in `runtime/assets`, made by `scripts/convert_pose_models.py`, see NOTICE):
`blazepose` (MediaPipe BlazePose full, 33 points with heels and toes; the default) and `movenet` (MoveNet Lightning,
COCO-17; the fast option). Both run through a `Runner`, so any backend of `cpgait.runtime.backends.runners.make_runner`
(ONNX Runtime CPU/CUDA, TensorRT) can run them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from cpgait.errors import CpgaitError
from cpgait.runtime.backends.runners import Runner
from cpgait.runtime.core.layouts import get_layout

if TYPE_CHECKING:
    from cpgait.runtime.pose.blazepose import BlazePose
    from cpgait.runtime.pose.movenet import MoveNet

ASSETS = Path(__file__).resolve().parents[1] / "assets"
POSE_MODELS = ("blazepose", "movenet")

# Builds the runner for one model file; `OnnxRuntimeRunner` itself is one, `make_runner` with a backend is another.
RunnerFactory = Callable[[Path], Runner]


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
            raise ValueError("pose keypoints must be finite")
        if kp[:, 2].min() < 0 or kp[:, 2].max() > 1:
            raise ValueError("pose keypoint confidences must lie in [0, 1]")
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
    """A pose model takes a BGR uint8 image `[H, W, 3]`, as OpenCV reads and decodes them."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise CpgaitError(
            f"pose input: {getattr(image, 'dtype', type(image).__name__)} "
            f"{getattr(image, 'shape', '')}; expected a BGR uint8 image [H, W, 3]"
        )
    if min(image.shape[:2]) < 2:
        raise CpgaitError(f"pose input: image of {image.shape[1]}x{image.shape[0]} pixels is too small")


def asset(name: str) -> Path:
    """Path of a shipped ONNX model, with an error that says how to make it when it is missing."""
    path = ASSETS / f"{name}.onnx"
    if not path.is_file():
        raise CpgaitError(f"{path}: pose model missing; run scripts/convert_pose_models.py (see its docstring)")
    return path


def load_pose_model(
    name: str, backend: str | RunnerFactory = "ort-cpu", **runner_options: object
) -> BlazePose | MoveNet:
    """The pose pipeline `name` ("blazepose" or "movenet") with its models on `backend`.

    `backend` is a name from `cpgait.runtime.backends.runners.BACKENDS`
    (with `runner_options` such as threads=2 passed on)
    or a factory that builds a Runner from a model path.
    """
    if name not in POSE_MODELS:
        raise CpgaitError(f"pose model {name!r}; expected one of: {', '.join(POSE_MODELS)}")
    if isinstance(backend, str):
        from cpgait.runtime.backends.runners import make_runner

        backend_name = backend

        def factory(path: Path) -> Runner:
            return make_runner(path, backend_name, **runner_options)
    else:
        factory = backend
    if name == "blazepose":
        from cpgait.runtime.pose.blazepose import BlazePose

        return BlazePose(factory)
    from cpgait.runtime.pose.movenet import MoveNet

    return MoveNet(factory)
