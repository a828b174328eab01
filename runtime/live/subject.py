"""The subject stage: pose of the tracked walker only, tracking, clean-up and smoothing, one source frame at a time.

While no walker is chosen (or the chosen one is lost), the pose model's person detector looks at the whole frame and
the tracker (`tracker.py`) watches every candidate until one walks. A wide frame (a corridor camera) is looked at in
overlapping square tiles: letterboxed whole into the detector's small input, a person a few hundred pixels tall
would shrink to a few dozen and go unseen (on the Sports2D clip the detector finds the walker 30 frames earlier this
way). The frame is resized once (bilinear) so that a tile is the detector's input size, and the tiles are
slices of that copy. The landmark model then starts on that person's own detection (not on whichever person the
detector likes best). From then on the pose model follows them by itself (its next region comes from the current
landmarks) and the detector rests; a pose that is not where the walker was (the pose model jumped to someone else)
counts as losing them. A model without a separate detector (MoveNet) offers its single whole-frame pose as the only
candidate. After `forget_after_s` without the walker the tracker chooses anew. While no walker is chosen at all, the
search runs on every `search_every`-th frame only (default 2: 15 searches/s at 30 fps find a walker as surely, and
the tiled search is the loop's costliest idle work); a walker lost a moment ago is searched for on every frame.

Bad input never stops the stage; it is counted in `counts` (see `STATUSES`) and said in each frame's `status`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from cpgait.errors import CpgaitError
from cpgait.runtime.core.layouts import get_layout
from cpgait.runtime.gait.keypoints import CONFIDENCE_MIN, seen
from cpgait.runtime.live.capture import Frame
from cpgait.runtime.live.smoothing import OneEuroFilter
from cpgait.runtime.live.tracker import Subject, SubjectTracker, TrackerConfig
from cpgait.runtime.pose.interface import Detection, PoseModel, PoseOutputError, PoseResult, keypoint_box

TRACKING = "tracking"
SEARCHING = "searching for a walking subject"
NOBODY = "nobody in view"
LOST = "subject lost"
TOO_SMALL = "subject too small"
OCCLUDED = "subject occluded"
BAD_OUTPUT = "pose model output not finite"
STATUSES = (TRACKING, SEARCHING, NOBODY, LOST, TOO_SMALL, OCCLUDED, BAD_OUTPUT)

MIN_HEIGHT_PX = 48  # a smaller person has too few pixels per joint for gait angles
TILE_ASPECT = 1.5  # a frame longer than this times its short side (16:9, not 4:3) is searched in square tiles
TILE_OVERLAP = 0.2  # of a tile's side shared with the next, so anyone narrower than that is whole in one tile
DUPLICATE_IOU = 0.5  # detections of the same person from two tiles
MIN_JOINTS_SEEN = 0.5  # of the layout's joints; fewer and the frame says "occluded"


@dataclass(frozen=True)
class SubjectFrame:
    """The stage's answer for one source frame.

    keypoints: `[V, 3]` float32 smoothed image pixels + confidence in the pose model's layout (x, y NaN and
    confidence 0 where not seen), or None when no subject was measured in this frame. candidates: person boxes
    `[N, 4]` the detector saw in this frame (empty when it did not run). timings_ns: stage times of this frame.
    """

    frame: Frame
    status: str
    subject: Subject | None
    keypoints: np.ndarray | None
    layout: str
    candidates: np.ndarray
    timings_ns: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"subject status {self.status!r}; expected one of {STATUSES}")


def tiles(width: int, height: int) -> list[tuple[int, int, int]]:
    """Square tiles (x0, y0, side) that cover the image with `TILE_OVERLAP`, or the whole image if near square."""
    short, long = min(width, height), max(width, height)
    if long <= TILE_ASPECT * short:
        return [(0, 0, long)]
    count = int(np.ceil((long - short) / ((1 - TILE_OVERLAP) * short))) + 1
    starts = np.linspace(0, long - short, count).round().astype(int)
    return [(int(p), 0, short) if width >= height else (0, int(p), short) for p in starts]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union if union > 0 else 0.0


class SubjectPose:
    """Callable stage: `stage(frame) -> SubjectFrame` (see the module docstring)."""

    def __init__(
        self,
        pose: PoseModel,
        image_size: tuple[int, int],
        layout: str,
        tracker: TrackerConfig = TrackerConfig(),
        smoothing: OneEuroFilter | None = None,
        search_every: int = 2,
    ) -> None:
        if search_every < 1:
            raise CpgaitError(f"search_every is {search_every}; expected >= 1 (search every n-th frame)")
        self.pose = pose
        self.search_every = search_every
        self._idle_frames = 0  # frames since the last search while no walker is chosen
        self._idle_status = NOBODY
        self.layout = get_layout(layout).name
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.tracker = SubjectTracker(self.image_size, tracker)
        self.smoothing = smoothing if smoothing is not None else OneEuroFilter()
        self.counts: Counter[str] = Counter()
        self._subject_id: int | None = None
        self._bad_output = False

    def _search(self, frame: Frame, timings: dict[str, int]) -> tuple[np.ndarray, PoseResult | None]:
        """Find every person, update the tracker, and measure the subject if it is among them.

        Returns the candidate boxes and the subject's pose (None when there is no subject or it was not found).
        """
        t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        found = self._detect_tiled(frame.image)
        whole = None
        if found is None:  # one-person model: its whole-frame pose is the only candidate
            self.pose.reset()
            whole = self._pose(frame.image, timings)
            boxes = np.array([] if whole is None else [whole.box], dtype=np.float64).reshape(-1, 4)
        else:
            timings["detector"] = time.perf_counter_ns() - t0
            timings["detector_cpu"] = time.thread_time_ns() - c0
            boxes = np.array([d.box for d in found], dtype=np.float64).reshape(-1, 4)
        subject = self.tracker.update(frame.timestamp, boxes)
        if subject is None or not subject.seen or subject.detection is None:
            return boxes, None
        if subject.track_id != self._subject_id:
            self._new_subject(subject.track_id)
        if found is None:
            return boxes, whole
        return boxes, self._pose(frame.image, timings, found[subject.detection])

    def _detect_tiled(self, image: np.ndarray) -> Sequence[Detection] | None:
        """Every person the detector finds in the tiles, in image pixels, duplicates from overlaps dropped; None
        for a pose model without a separate detector."""
        height, width = image.shape[:2]
        layout = tiles(width, height)
        if len(layout) == 1:
            return self.pose.detect(image)
        # The frame is scaled once (bilinear, as the per-tile letterboxing sampled it before) so that a tile is the
        # detector's input size, and each tile is a slice of that copy. Measured on the 1768x994 demo clip (1 thread,
        # p50): 0.40 ms for the one resize vs 0.98 ms for two full-resolution tile crops; area averaging would cost
        # 56 ms. The search's real cost is the detector network, run once per tile.
        size = self.pose.detector_size
        scale = min(1.0, size / layout[0][2]) if size else 1.0
        small = image
        if scale < 1.0:
            small = cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_LINEAR)
        found: list[Detection] = []
        for x0, y0, side in layout:
            sx, sy, sside = round(x0 * scale), round(y0 * scale), round(side * scale)
            in_tile = self.pose.detect(small[sy : sy + sside, sx : sx + sside])
            if in_tile is None:
                return None
            found += [d.shifted(sx / scale, sy / scale, scale) for d in in_tile]
        found.sort(key=lambda d: -d.score)
        kept: list[Detection] = []
        for d in found:
            if all(_iou(np.asarray(d.box), np.asarray(k.box)) <= DUPLICATE_IOU for k in kept):
                kept.append(d)
        return kept

    def _pose(
        self, image: np.ndarray, timings: dict[str, int], detection: Detection | None = None
    ) -> PoseResult | None:
        t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        try:
            result = self.pose(image, detection=detection)
        except PoseOutputError:  # the pose model produced NaN/inf: this frame is unusable, the loop goes on
            self._bad_output = True
            result = None
        timings["pose"] = timings.get("pose", 0) + time.perf_counter_ns() - t0
        timings["pose_cpu"] = timings.get("pose_cpu", 0) + time.thread_time_ns() - c0
        for key, ms in self.pose.last_timings_ms.items():
            timings[f"pose_{key}"] = timings.get(f"pose_{key}", 0) + int(ms * 1e6)
        return result

    def _new_subject(self, track_id: int) -> None:
        self._subject_id = track_id
        self.pose.reset()
        self.smoothing.reset()

    def __call__(self, frame: Frame) -> SubjectFrame:
        timings: dict[str, int] = {}
        start = time.perf_counter_ns()
        self._bad_output = False
        subject = self.tracker.subject
        candidates = np.zeros((0, 4))
        if subject is None and self._idle_frames % self.search_every:
            self._idle_frames += 1  # no walker chosen and not this frame's turn to search
            return self._out(frame, self._idle_status, None, None, candidates, timings, start)
        if subject is None or not subject.seen:
            candidates, result = self._search(frame, timings)
            subject = self.tracker.subject
            if subject is None:
                self._idle_frames += 1
                self._idle_status = NOBODY if len(candidates) == 0 else SEARCHING
                return self._out(frame, self._idle_status, None, None, candidates, timings, start)
        else:
            result = self._pose(frame.image, timings)
        self._idle_frames = 0
        if result is not None and not self._same_person(subject, result.box):
            result = None  # the pose model locked onto someone else
        if result is None:
            self.pose.reset()
            if subject.seen:  # seen a moment ago, or matched by this frame's search: not measured now
                self.tracker.miss(frame.timestamp)
            status = BAD_OUTPUT if self._bad_output else LOST
            return self._out(frame, status, self.tracker.subject, None, candidates, timings, start)
        kp = result.keypoints
        visible = seen(kp)
        box = keypoint_box(kp, CONFIDENCE_MIN)
        subject = self.tracker.follow(frame.timestamp, box)
        height = box[3] - box[1]
        status = TRACKING
        if visible.mean() < MIN_JOINTS_SEEN:  # first: the box of a few visible joints is small too
            status = OCCLUDED
        elif height < MIN_HEIGHT_PX:
            status = TOO_SMALL
        smooth = self.smoothing(frame.timestamp, kp[:, :2], visible, scale=max(height, 1.0))
        out = np.concatenate([smooth, np.where(visible, kp[:, 2], 0.0)[:, None]], axis=1).astype(np.float32)
        out[~visible, :2] = np.nan
        return self._out(frame, status, subject, out, candidates, timings, start)

    def _same_person(self, subject: Subject, box: tuple[float, float, float, float]) -> bool:
        """The pose result is the subject when its centre is within the tracker's match distance of theirs."""
        sx, sy = (subject.box[0] + subject.box[2]) / 2, (subject.box[1] + subject.box[3]) / 2
        bx, by = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        scale = max(subject.box[3] - subject.box[1], box[3] - box[1], 1.0)
        return float(np.hypot(bx - sx, by - sy)) / scale <= self.tracker.config.max_match_distance

    def _out(
        self,
        frame: Frame,
        status: str,
        subject: Subject | None,
        keypoints: np.ndarray | None,
        candidates: np.ndarray,
        timings: dict[str, int],
        start: int,
    ) -> SubjectFrame:
        self.counts[status] += 1
        spent = time.perf_counter_ns() - start - timings.get("detector", 0) - timings.get("pose", 0)
        timings["tracking"] = max(int(spent), 0)  # tracker, clean-up and smoothing
        return SubjectFrame(frame, status, subject, keypoints, self.layout, candidates, timings)
