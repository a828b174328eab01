"""MoveNet SinglePose Lightning (COCO-17) around its ONNX model, with the crop-around-the-person logic of the MoveNet
tutorial for video.

The model takes one 192x192 RGB image as int32 values 0..255 and returns `[1, 1, 17, 3]`: y, x in [0, 1] of that
input and a score per joint. A frame is fed as a square region resampled to 192x192 (black outside the image): the
whole frame letterboxed when nobody is tracked; with `tracking`, a square around the previous frame's person, sized
from its torso and body extent (TensorFlow's MoveNet tutorial, `determine_crop_region`), so a small person is seen
at a higher resolution.
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np

from cpgait.runtime.backends.ort_runner import OnnxRuntimeRunner
from cpgait.runtime.backends.runner import Runner
from cpgait.runtime.core.layouts import COCO17
from cpgait.runtime.pose.interface import (
    Detection,
    PoseResult,
    Roi,
    RunnerFactory,
    asset,
    check_image,
    keypoint_box,
)

INPUT_SIZE = 192
MIN_CROP_KEYPOINT_SCORE = 0.2  # the tutorial's threshold for joints that steer the crop
TORSO = [COCO17.index(j) for j in ("left_shoulder", "right_shoulder", "left_hip", "right_hip")]
HIPS = [COCO17.index("left_hip"), COCO17.index("right_hip")]
SHOULDERS = [COCO17.index("left_shoulder"), COCO17.index("right_shoulder")]


def whole_frame(width: int, height: int) -> Roi:
    """The square that letterboxes the whole frame."""
    return Roi(width / 2, height / 2, float(max(width, height)))


def crop_region(keypoints: np.ndarray, width: int, height: int) -> Roi:
    """The tutorial's crop for the next frame from this frame's keypoints `[17, 3]` (x, y pixels, score).

    Centred on the hips, half-side = max(1.9 x the torso's extent from there, 1.2 x the confident joints' extent),
    capped by the image; the whole frame when the torso is not seen or the crop would exceed it.
    """
    score = keypoints[:, 2]
    visible = score > MIN_CROP_KEYPOINT_SCORE
    if not (visible[HIPS].any() and visible[SHOULDERS].any()):
        return whole_frame(width, height)
    cx, cy = keypoints[HIPS, :2].mean(axis=0)
    offsets = np.abs(keypoints[:, :2] - (cx, cy))
    torso = offsets[TORSO].max()
    body = offsets[visible].max()
    half = max(torso * 1.9, body * 1.2)
    half = min(half, max(cx, width - cx, cy, height - cy))
    if half > max(width, height) / 2 or half < 1:
        return whole_frame(width, height)
    return Roi(float(cx), float(cy), float(2 * half))


class MoveNet:
    """Callable MoveNet Lightning: `pose(image_bgr) -> PoseResult | None` (17 points, layout coco17, image pixels).

    None when the mean joint score is below `min_pose_score`. `last_timings_ms` holds the last call's stage times
    (the same keys as BlazePose; its "landmarks" is this model's inference, "detector" is always 0).
    """

    name = "movenet"
    layout = "coco17"
    detector_size = None  # one whole-frame pose, no separate person detector

    def __init__(
        self,
        make_runner: RunnerFactory = OnnxRuntimeRunner,
        model: Path | None = None,
        tracking: bool = True,
        min_pose_score: float = 0.25,
    ) -> None:
        self.model = make_runner(model or asset("movenet_lightning"))
        self.tracking = tracking
        self.min_pose_score = min_pose_score
        self.last_timings_ms: dict[str, float] = {}
        self._roi: Roi | None = None

    def runners(self) -> list[Runner]:
        return [self.model]

    def reset(self) -> None:
        """Forget the tracked person: the next call looks at the whole frame."""
        self._roi = None

    def detect(self, image: np.ndarray) -> None:
        """MoveNet has no separate detector: its whole-frame pose is the only candidate."""
        return None

    def __call__(self, image: np.ndarray, detection: Detection | None = None) -> PoseResult | None:
        """The keypoints of the tracked person (MoveNet follows one person and takes no `detection`)."""
        if detection is not None:
            raise TypeError("MoveNet has no detector and takes no detection")
        check_image(image)
        height, width = image.shape[:2]
        t0 = time.perf_counter()
        roi = self._roi if self.tracking and self._roi is not None else whole_frame(width, height)
        crop = roi.crop(image, INPUT_SIZE, border=cv2.BORDER_CONSTANT)
        tensor = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB).astype(np.int32)[None]
        t1 = time.perf_counter()
        spec = self.model.input_specs()[0]
        (out,) = self.model.infer({spec.name: tensor}).values()
        out = out.reshape(17, 3).astype(np.float64)
        t2 = time.perf_counter()
        result = None
        if np.isfinite(out).all() and out[:, 2].mean() >= self.min_pose_score:
            pixels = roi.to_image(out[:, [1, 0]] * INPUT_SIZE, INPUT_SIZE)
            keypoints = np.concatenate([pixels, np.clip(out[:, 2:3], 0, 1)], axis=1).astype(np.float32)
            result = PoseResult(keypoints, self.layout, float(out[:, 2].mean()), keypoint_box(keypoints))
        self._roi = crop_region(result.keypoints, width, height) if result is not None else None
        self.last_timings_ms = {
            "preprocess": (t1 - t0) * 1e3,
            "detector": 0.0,  # no separate detector
            "landmarks": (t2 - t1) * 1e3,
            "postprocess": (time.perf_counter() - t2) * 1e3,
        }
        return result
