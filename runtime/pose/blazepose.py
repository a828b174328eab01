"""MediaPipe BlazePose (detector + full or lite landmark model) re-implemented in numpy/OpenCV around two ONNX models.

The stages follow MediaPipe 0.10's pose graphs (modules/pose_detection, modules/pose_landmark), so the result matches
`mp.solutions.pose` (tests/runtime/test_pose.py checks it on an OpenCV sample still):

1. Detector (only when no person is being tracked): the image letterboxed to 224x224 (black borders, RGB in
   [-1, 1]); 2254 SSD anchors; boxes and 4 keypoints decoded relative to the anchors, scores = sigmoid of the
   clipped logits, kept from 0.5; weighted non-maximum suppression (IoU 0.3: each kept detection is the
   score-weighted mean of the candidates it suppresses, as MediaPipe's WEIGHTED algorithm).
2. Region of interest from the best detection: centre = mid-hip keypoint, side = 2 x its distance to the
   full-body size/rotation keypoint x 1.25, rotated so that this hip -> head direction points up.
3. Landmark model on that square, resampled to 256x256 (RGB in [0, 1], replicated borders): 39 points (33 + 2
   auxiliary for the next region + 4 unused), each refined by the 7x7 heatmap window around it where the heatmap is
   confident, mapped back to image pixels; confidence = sigmoid(visibility).
4. Tracking (video): the next frame's region comes from the auxiliary landmarks (same rule as 2.), and the
   detector runs again only when the landmark model's pose-presence score drops below `min_tracking_score`.
   Unlike MediaPipe, a frame on which tracking is lost goes straight back through the detector instead of
   returning nothing. MediaPipe's landmark smoothing is not done here (the temporal pipeline smooths).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from cpgait.runtime.backends.ort_runner import OnnxRuntimeRunner
from cpgait.runtime.backends.runner import Runner
from cpgait.runtime.pose.interface import (
    STAGES,
    Detection,
    PoseResult,
    Roi,
    RunnerFactory,
    asset,
    check_image,
    keypoint_box,
)

DETECTOR_SIZE = 224
LANDMARK_SIZE = 256
NUM_LANDMARKS = 39  # 33 pose landmarks, then the 2 auxiliary ones that place the next region, then 4 unused
ANCHOR_STRIDES = (8, 16, 32, 32, 32)  # SsdAnchorsCalculator options of pose_detection_cpu.pbtxt
ROI_SCALE = 1.25  # RectTransformationCalculator scale of pose_detection_to_roi / pose_landmarks_to_roi
HEATMAP_KERNEL = 7
HEATMAP_MIN_CONFIDENCE = 0.5
# Output names (tf2onnx keeps TFLite's): detector Identity = box/keypoint regressors [1, 2254, 12], Identity_1 =
# score logits [1, 2254, 1]; landmarks Identity = [1, 39 * 5] (x, y, z, visibility, presence logits; 256-px units),
# Identity_1 = pose presence [1, 1], Identity_3 = heatmap logits [1, 64, 64, 39] (2 = segmentation, 4 = world).


def ssd_anchors(input_size: int = DETECTOR_SIZE, strides: tuple[int, ...] = ANCHOR_STRIDES) -> np.ndarray:
    """Anchor centres `[N, 2]` (x, y in [0, 1]) of MediaPipe's SSD anchor generator with fixed-size anchors.

    Consecutive layers with the same stride share a feature map; each layer puts two anchors (aspect ratio 1 and
    the interpolated scale) on every cell, so the pose detector's config gives 28*28*2 + 14*14*2 + 7*7*6 = 2254.
    """
    centres = []
    layer = 0
    while layer < len(strides):
        stride, same = strides[layer], 0
        while layer < len(strides) and strides[layer] == stride:
            same, layer = same + 1, layer + 1
        cells = -(-input_size // stride)
        ys, xs = np.meshgrid((np.arange(cells) + 0.5) / cells, (np.arange(cells) + 0.5) / cells, indexing="ij")
        centres.append(np.repeat(np.stack([xs.ravel(), ys.ravel()], axis=1), 2 * same, axis=0))
    return np.concatenate(centres).astype(np.float32)


@dataclass(frozen=True)
class PoseDetection:
    """One person found by the detector, in image pixels.

    `keypoints` `[4, 2]`: mid-hip centre, full-body size/rotation point (above the head), mid-shoulder centre,
    upper-body size/rotation point. `box` (x0, y0, x1, y1) is the body square those first two span (centre at the
    hips, half-side their distance); `face_box` is the detector's own box, which MediaPipe trains on the face.
    """

    score: float
    box: tuple[float, float, float, float]
    face_box: tuple[float, float, float, float]
    keypoints: np.ndarray

    def __post_init__(self) -> None:
        if not 0 <= self.score <= 1 or self.keypoints.shape != (4, 2) or not np.isfinite(self.keypoints).all():
            raise ValueError(
                f"pose detection: score {self.score}, keypoints {self.keypoints.shape}; expected a "
                "score in [0, 1] and finite keypoints (4, 2)"
            )

    def roi(self) -> Roi:
        """The landmark model's region for this person."""
        return alignment_roi(self.keypoints[0], self.keypoints[1])

    def shifted(self, dx: float, dy: float, scale: float = 1.0) -> PoseDetection:
        """This detection in the whole image, when it was found in a crop whose top-left corner is at (dx, dy) of
        the whole image, cut from a copy of the image resized by `scale`."""
        if not scale > 0:
            raise ValueError(f"detection scale {scale}; expected > 0")
        x0, y0, x1, y1 = (v / scale for v in self.box)
        f0, g0, f1, g1 = (v / scale for v in self.face_box)
        return PoseDetection(
            self.score,
            (x0 + dx, y0 + dy, x1 + dx, y1 + dy),
            (f0 + dx, g0 + dy, f1 + dx, g1 + dy),
            (self.keypoints / scale + np.array([dx, dy], dtype=np.float32)).astype(np.float32),
        )


def alignment_roi(centre: np.ndarray, scale_point: np.ndarray) -> Roi:
    """MediaPipe's AlignmentPointsRects + RectTransformation: a square around `centre`, rotated so that
    `centre -> scale_point` points up, side 2 x their distance x ROI_SCALE."""
    dx, dy = float(scale_point[0] - centre[0]), float(scale_point[1] - centre[1])
    rotation = np.pi / 2 - np.arctan2(-dy, dx)
    rotation = rotation - 2 * np.pi * np.floor((rotation + np.pi) / (2 * np.pi))
    size = 2.0 * np.hypot(dx, dy) * ROI_SCALE
    return Roi(float(centre[0]), float(centre[1]), float(max(size, 1.0)), float(rotation))


def weighted_nms(
    boxes: np.ndarray, scores: np.ndarray, points: np.ndarray, iou_threshold: float
) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """MediaPipe's WEIGHTED non-maximum suppression on `[N, 4]` (x0, y0, x1, y1) boxes with `[N, K, 2]` points.

    Highest score first; every remaining candidate overlapping it by more than `iou_threshold` (itself included) is
    merged into a score-weighted mean box and points; the merged detection keeps the top score.
    """
    order = np.argsort(-scores, kind="stable")
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    kept = []
    while order.size:
        top = order[0]
        x0 = np.maximum(boxes[order, 0], boxes[top, 0])
        y0 = np.maximum(boxes[order, 1], boxes[top, 1])
        x1 = np.minimum(boxes[order, 2], boxes[top, 2])
        y1 = np.minimum(boxes[order, 3], boxes[top, 3])
        inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
        union = areas[order] + areas[top] - inter
        iou = np.where(union > 0, inter / np.where(union > 0, union, 1), 0)
        cluster = order[iou > iou_threshold]
        if cluster.size == 0:  # a degenerate (empty) top box overlaps nothing, not even itself
            cluster = order[:1]
        w = scores[cluster] / scores[cluster].sum()
        kept.append(
            (float(scores[top]), (boxes[cluster] * w[:, None]).sum(0), (points[cluster] * w[:, None, None]).sum(0))
        )
        order = order[~np.isin(order, cluster)]
    return kept


def refine_from_heatmap(points: np.ndarray, heatmap: np.ndarray) -> np.ndarray:
    """MediaPipe's RefineLandmarksFromHeatmap: `[N, 2]` positions in [0, 1] of the crop replaced by the
    sigmoid-weighted mean position of the 7x7 heatmap window around each, where that window's peak is >= 0.5."""
    height, width, _ = heatmap.shape
    out = points.copy()
    half = (HEATMAP_KERNEL - 1) // 2
    for i, (x, y) in enumerate(points):
        col, row = int(x * width), int(y * height)  # truncation toward zero, as the C++ int conversion
        if not (0 <= col < width and 0 <= row < height):
            continue
        r0, r1 = max(0, row - half), min(height, row + half + 1)
        c0, c1 = max(0, col - half), min(width, col + half + 1)
        conf = 1.0 / (1.0 + np.exp(-heatmap[r0:r1, c0:c1, i].astype(np.float64)))
        total = conf.sum()
        if conf.max() >= HEATMAP_MIN_CONFIDENCE and total > 0:
            rows, cols = np.mgrid[r0:r1, c0:c1]
            out[i] = ((cols * conf).sum() / width / total, (rows * conf).sum() / height / total)
    return out


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class BlazePose:
    """Callable BlazePose: `pose(image_bgr) -> PoseResult | None` (33 points, layout blazepose33, image pixels).

    `make_runner` builds a Runner for each model file (ONNX Runtime on the CPU by default); `landmarks` picks
    another landmark model of the same interface (the lite one: `name` "blazepose-lite"). With `tracking`, the
    next call's region comes from this call's landmarks (for video); `reset()` forgets it (e.g. between clips).
    `last_timings_ms` holds the last call's preprocess / detector / landmarks / postprocess times in ms (detector 0
    when tracking skipped it) and `last_used_detector` whether the detector ran.
    """

    name = "blazepose"
    layout = "blazepose33"
    detector_size = DETECTOR_SIZE

    def __init__(
        self,
        make_runner: RunnerFactory = OnnxRuntimeRunner,
        detector: Path | None = None,
        landmarks: Path | None = None,
        tracking: bool = True,
        min_detection_score: float = 0.5,
        min_tracking_score: float = 0.5,
        nms_iou: float = 0.3,
        name: str = "blazepose",
    ) -> None:
        self.name = name
        self.detector = make_runner(detector or asset("blazepose_detector"))
        self.landmarks = make_runner(landmarks or asset("blazepose_landmarks_full"))
        self.tracking = tracking
        self.min_detection_score = min_detection_score
        self.min_tracking_score = min_tracking_score
        self.nms_iou = nms_iou
        self.anchors = ssd_anchors()
        self.last_timings_ms: dict[str, float] = {}
        self.last_used_detector = False
        self._roi: Roi | None = None

    def runners(self) -> list[Runner]:
        return [self.detector, self.landmarks]

    def reset(self) -> None:
        """Forget the tracked person: the next call runs the detector."""
        self._roi = None

    def detect(self, image: np.ndarray) -> list[PoseDetection]:
        """Every person the detector finds, best first (after non-maximum suppression)."""
        check_image(image)
        self.last_timings_ms = dict.fromkeys(STAGES, 0.0)
        return self._detect(image, self.last_timings_ms)

    def __call__(self, image: np.ndarray, detection: Detection | None = None) -> PoseResult | None:
        """Landmarks of the tracked person, of `detection` when given (e.g. the subject picked from `detect`), or
        of the detector's best person; None when nobody is found."""
        if detection is not None and not isinstance(detection, PoseDetection):
            raise TypeError(f"BlazePose takes its own detections (from detect()), not {type(detection).__name__}")
        check_image(image)
        times = dict.fromkeys(STAGES, 0.0)
        self.last_used_detector = False
        result = None
        if detection is not None:
            result = self._landmarks(image, detection.roi(), times)
        elif self.tracking and self._roi is not None:
            result = self._landmarks(image, self._roi, times)
        if result is None and detection is None:
            self.last_used_detector = True
            found = self._detect(image, times)
            if found:
                result = self._landmarks(image, found[0].roi(), times)
        self.last_timings_ms = times
        if result is None:
            self._roi = None
            return None
        pose, self._roi = result
        return pose

    def _detect(self, image: np.ndarray, times: dict[str, float]) -> list[PoseDetection]:
        t0 = time.perf_counter()
        height, width = image.shape[:2]
        frame = Roi(width / 2, height / 2, float(max(width, height)))
        tensor = frame.crop(image, DETECTOR_SIZE, border=cv2.BORDER_CONSTANT)
        tensor = cv2.cvtColor(tensor, cv2.COLOR_BGR2RGB).astype(np.float32) * (2 / 255.0) - 1.0
        t1 = time.perf_counter()
        spec = self.detector.input_specs()[0]
        out = self.detector.infer({spec.name: tensor[None]})
        t2 = time.perf_counter()
        raw_boxes, raw_scores = out["Identity"][0], out["Identity_1"][0, :, 0]
        scores = _sigmoid(np.clip(raw_scores.astype(np.float64), -100, 100))
        keep = np.flatnonzero((scores >= self.min_detection_score) & np.isfinite(raw_boxes).all(axis=1))
        found = []
        if keep.size:
            raw = raw_boxes[keep].astype(np.float64) / DETECTOR_SIZE  # decoded in [0, 1] of the 224 square
            anchors = self.anchors[keep].astype(np.float64)
            centre = raw[:, 0:2] + anchors
            half = raw[:, 2:4] / 2
            boxes = np.concatenate([centre - half, centre + half], axis=1)
            points = raw[:, 4:12].reshape(-1, 4, 2) + anchors[:, None, :]
            for score, box, pts in weighted_nms(boxes, scores[keep], points, self.nms_iou):
                pts_px = frame.to_image(pts * DETECTOR_SIZE, DETECTOR_SIZE)
                corners = frame.to_image(box.reshape(2, 2) * DETECTOR_SIZE, DETECTOR_SIZE)
                r = float(np.hypot(*(pts_px[1] - pts_px[0])))
                cx, cy = pts_px[0]
                fx0, fy0, fx1, fy1 = (float(v) for v in corners.ravel())
                found.append(
                    PoseDetection(
                        score=score,
                        box=(cx - r, cy - r, cx + r, cy + r),
                        face_box=(fx0, fy0, fx1, fy1),
                        keypoints=pts_px.astype(np.float32),
                    )
                )
        t3 = time.perf_counter()
        times["preprocess"] += (t1 - t0) * 1e3
        times["detector"] += (t2 - t1) * 1e3
        times["postprocess"] += (t3 - t2) * 1e3
        return found

    def _landmarks(self, image: np.ndarray, roi: Roi, times: dict[str, float]) -> tuple[PoseResult, Roi] | None:
        t0 = time.perf_counter()
        crop = roi.crop(image, LANDMARK_SIZE)
        tensor = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB).astype(np.float32) * (1 / 255.0)
        t1 = time.perf_counter()
        spec = self.landmarks.input_specs()[0]
        out = self.landmarks.infer({spec.name: tensor[None]})
        t2 = time.perf_counter()
        raw, presence, heatmap = out["Identity"][0], float(out["Identity_1"].reshape(())), out["Identity_3"][0]
        result = None
        if np.isfinite(presence) and presence >= self.min_tracking_score and np.isfinite(raw).all():
            marks = raw.reshape(NUM_LANDMARKS, 5).astype(np.float64)
            points = refine_from_heatmap(marks[:, :2] / LANDMARK_SIZE, heatmap)
            pixels = roi.to_image(points * LANDMARK_SIZE, LANDMARK_SIZE)
            keypoints = np.concatenate([pixels[:33], _sigmoid(marks[:33, 3:4])], axis=1).astype(np.float32)
            pose = PoseResult(keypoints, self.layout, float(np.clip(presence, 0, 1)), keypoint_box(keypoints))
            result = pose, alignment_roi(pixels[33], pixels[34])
        times["preprocess"] += (t1 - t0) * 1e3
        times["landmarks"] += (t2 - t1) * 1e3
        times["postprocess"] += (time.perf_counter() - t2) * 1e3
        return result
