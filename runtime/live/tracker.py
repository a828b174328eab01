"""Which person is the walking subject: candidate tracks over time, the walker chosen among them, kept, forgotten.

A kiosk assesses one walking child, but a corridor (or the Sports2D demo clip, with a man jumping on a roof) has
others in view. Every observed person box joins a track (nearest centre, normalised by body height, with a size
gate). A track's walking speed is the Theil-Sen slope (median of pairwise slopes, robust to a bad box) of its box
centre's x over the last `history_s` seconds, in body heights per second: walking moves a person sideways across a
side-view camera, standing, waving or jumping on the spot does not. The subject is the eligible track (tall
enough, walking) with the best score: its speed plus smaller bonuses for its size and for being near the image
centre. Once chosen it is kept while it is seen;
after `forget_after_s` without it the tracker resets and chooses again.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from cpgait.errors import CpgaitError

HISTORY_SAMPLES = 128  # sightings kept per track: over a second at any camera rate this runs at


@dataclass(frozen=True)
class TrackerConfig:
    """Subject selection settings (times in seconds, speeds in body heights per second)."""

    history_s: float = 1.0
    min_history_s: float = 0.4
    min_samples: int = 8  # sightings within the history before a track can count as walking
    min_walk_speed: float = 0.2
    min_walk_distance: float = 0.2  # body heights travelled within the history
    min_height_frac: float = 0.08  # of the image height: smaller people are too far away to assess
    max_match_distance: float = 0.6  # box-centre distance / body height for the same person one frame later
    forget_after_s: float = 2.0

    def __post_init__(self) -> None:
        if not (0 < self.min_history_s <= self.history_s) or self.forget_after_s <= 0:
            raise CpgaitError(
                f"tracker history {self.min_history_s}..{self.history_s} s, forget after {self.forget_after_s} s: "
                "expected 0 < min <= history and forget > 0"
            )
        if self.min_walk_speed < 0 or self.min_walk_distance < 0 or not 0 <= self.min_height_frac < 1:
            raise CpgaitError("tracker walk speed/distance must be >= 0 and min height a fraction in [0, 1)")
        if self.min_samples < 3:
            raise CpgaitError(f"tracker min samples {self.min_samples}; expected >= 3 (a slope needs points)")
        if self.max_match_distance <= 0:
            raise CpgaitError(f"tracker match distance {self.max_match_distance}; expected > 0")


@dataclass
class Track:
    """One person seen over time: `history` holds (t, centre x, centre y, height) samples."""

    id: int
    box: np.ndarray
    first_seen: float
    last_seen: float
    history: deque = field(default_factory=lambda: deque(maxlen=HISTORY_SAMPLES))
    _motion: tuple | None = field(default=None, repr=False)  # (key, value) of the last motion() call

    @property
    def height(self) -> float:
        return float(max(self.box[3] - self.box[1], 1.0))

    @property
    def centre(self) -> np.ndarray:
        return np.array([(self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2])

    def add(self, t: float, box: np.ndarray) -> None:
        self.box = box
        self.last_seen = t
        self.history.append((t, (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, max(box[3] - box[1], 1.0)))

    def motion(self, now: float, window_s: float) -> tuple[float, float, float, int]:
        """(signed speed, distance travelled, time span, samples) of the centre's x over the last `window_s`.

        Speed is the Theil-Sen slope (median of pairwise slopes: a few wrong matches do not make a person walk),
        speed and distance in body heights (per second).
        """
        key = (now, window_s, self.last_seen, len(self.history))
        if self._motion is not None and self._motion[0] == key:
            return self._motion[1]
        value = self._measure(now, window_s)
        self._motion = (key, value)
        return value

    def _measure(self, now: float, window_s: float) -> tuple[float, float, float, int]:
        recent = np.array([h for h in self.history if now - h[0] <= window_s])
        if len(recent) < 2:
            return 0.0, 0.0, 0.0, len(recent)
        t, x, height = recent[:, 0], recent[:, 1], float(np.median(recent[:, 3]))
        span = float(t[-1] - t[0])
        i, j = np.triu_indices(len(t), k=1)
        dt = t[j] - t[i]
        ok = dt > 0
        if span <= 0 or not ok.any():
            return 0.0, 0.0, 0.0, len(recent)
        slope = float(np.median((x[j] - x[i])[ok] / dt[ok]))
        return slope / height, abs(slope) * span / height, span, len(recent)


@dataclass(frozen=True)
class Subject:
    """The tracked walker now: its box (x0, y0, x1, y1), whether it was seen in the latest update, its speed, and
    which of the latest update's boxes was theirs (None when none was, or after `follow`)."""

    track_id: int
    box: tuple[float, float, float, float]
    seen: bool
    speed: float  # body heights per second, signed (+ = towards +x)
    detection: int | None = None

    def __post_init__(self) -> None:
        x0, y0, x1, y1 = self.box
        if not (np.isfinite(self.box).all() and x0 < x1 and y0 < y1):
            raise ValueError(f"subject box {self.box}; expected finite x0 < x1, y0 < y1")


def _as_boxes(boxes: np.ndarray | Sequence[float] | Sequence[Sequence[float]]) -> tuple[np.ndarray, np.ndarray]:
    """`[N, 4]` float boxes and which of them are usable (finite, non-empty)."""
    arr = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    ok = np.all(np.isfinite(arr), axis=1) & (arr[:, 2] > arr[:, 0]) & (arr[:, 3] > arr[:, 1])
    return arr, ok


class SubjectTracker:
    """Tracks every person box it is given and picks the walking subject; see the module docstring."""

    def __init__(self, image_size: tuple[int, int], config: TrackerConfig = TrackerConfig()) -> None:
        w, h = image_size
        if w <= 0 or h <= 0:
            raise CpgaitError(f"tracker image size {image_size}; expected (width, height) > 0")
        self.image_size = (int(w), int(h))
        self.config = config
        self.reset()

    def reset(self) -> None:
        """Forget every track and the subject (e.g. when the child has left)."""
        self.tracks: list[Track] = []
        self._next_id = 0
        self._subject_id: int | None = None
        self._last_t = -np.inf
        self._matched: dict[int, int] = {}  # track id -> index of its box in the last update's boxes

    @property
    def subject(self) -> Subject | None:
        track = self._track(self._subject_id)
        if track is None:
            return None
        speed = track.motion(self._last_t, self.config.history_s)[0]
        seen = track.last_seen == self._last_t
        detection = self._matched.get(track.id) if seen else None
        x0, y0, x1, y1 = (float(v) for v in track.box)
        return Subject(track.id, (x0, y0, x1, y1), seen, speed, detection)

    def _track(self, track_id: int | None) -> Track | None:
        return next((tr for tr in self.tracks if tr.id == track_id), None)

    def update(self, t: float, boxes: np.ndarray | Sequence[float] | Sequence[Sequence[float]]) -> Subject | None:
        """Add the person boxes `[N, 4]` (x0, y0, x1, y1 pixels) seen at time `t`; return the subject, if any, with
        the index of its box among `boxes` (`Subject.detection`).

        Boxes that are not finite or empty are ignored. Pass only the subject's box while it is being followed
        (the other tracks then age and are forgotten), every detection while it is not.
        """
        self._last_t = float(t)
        self._associate(float(t), *_as_boxes(boxes))
        cfg = self.config
        self.tracks = [tr for tr in self.tracks if t - tr.last_seen <= cfg.forget_after_s]
        if self._subject_id is not None and self._track(self._subject_id) is None:
            self._subject_id = None  # gone for too long: choose again
        if self._subject_id is None:
            self._choose(float(t))
        return self.subject

    def follow(self, t: float, box: np.ndarray | Sequence[float] | Sequence[Sequence[float]]) -> Subject | None:
        """Update the subject's own track with its box from the pose model (no association; it is the subject)."""
        track = self._track(self._subject_id)
        arr, ok = _as_boxes(box)
        if track is None or not ok.any():
            return self.update(t, arr[ok])
        self._last_t = float(t)
        self._matched = {}
        track.add(float(t), arr[ok][0])
        return self.subject

    def miss(self, t: float) -> Subject | None:
        """The subject's pose could not be measured at `t`: they count as not seen then (a box the last update
        matched to them is withdrawn from their track), so the next frame searches for them again."""
        self._last_t = float(t)
        track = self._track(self._subject_id)
        if track is not None and track.last_seen == self._last_t:
            if track.history and track.history[-1][0] == self._last_t:
                track.history.pop()
            track.last_seen = track.history[-1][0] if track.history else -np.inf
        self._matched = {}
        return self.subject

    def _associate(self, t: float, boxes: np.ndarray, usable: np.ndarray) -> None:
        cfg = self.config
        pairs = []
        for i, tr in enumerate(self.tracks):
            gap = max(t - tr.last_seen, 0.0)
            speed = tr.motion(tr.last_seen, cfg.history_s)[0]
            predicted = tr.centre + np.array([speed * tr.height * gap, 0.0])
            # the gate widens while a track is unseen (people keep moving), by half a body height per second
            gate = cfg.max_match_distance + 0.5 * gap
            for j, box in enumerate(boxes):
                if not usable[j]:
                    continue
                h = max(box[3] - box[1], 1.0)
                ratio = h / tr.height
                if not 0.5 <= ratio <= 2.0:
                    continue
                centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
                d = float(np.linalg.norm(centre - predicted)) / max(h, tr.height)
                if d <= gate:
                    pairs.append((d, i, j))
        used_t, used_b = set(), set()
        self._matched = {}
        for _, i, j in sorted(pairs):
            if i in used_t or j in used_b:
                continue
            used_t.add(i)
            used_b.add(j)
            self.tracks[i].add(t, boxes[j])
            self._matched[self.tracks[i].id] = j
        for j, box in enumerate(boxes):
            if usable[j] and j not in used_b:
                track = Track(self._next_id, box, t, t)
                track.add(t, box)
                self.tracks.append(track)
                self._matched[track.id] = j
                self._next_id += 1

    def _choose(self, t: float) -> None:
        cfg = self.config
        w, h = self.image_size
        best, best_score = None, -np.inf
        for tr in self.tracks:
            if tr.last_seen != t or tr.height < cfg.min_height_frac * h:
                continue
            speed, distance, span, samples = tr.motion(t, cfg.history_s)
            if (
                span < cfg.min_history_s
                or samples < cfg.min_samples
                or abs(speed) < cfg.min_walk_speed
                or distance < cfg.min_walk_distance
            ):
                continue
            centrality = 1.0 - min(abs(float(tr.centre[0]) - w / 2) / (w / 2), 1.0)
            score = min(abs(speed), 2.0) + 0.5 * tr.height / h + 0.25 * centrality
            if score > best_score:
                best, best_score = tr, score
        if best is not None:
            self._subject_id = best.id
