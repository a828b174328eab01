"""A kiosk session: the live loop (`run_live`) in a thread of its own, every window written to the database as it
comes, quality counts kept, and a `LiveView` that the web pages read (state, live numbers, the overlay picture).

The pipeline's thread only stores a reference to each overlay picture (it is the frame's own image, drawn on and
read by nobody after the report); JPEG encoding for the stream happens in the web server's threads, at most
`STREAM_MAX_FPS` times a second and once per picture however many pages watch, so the web layer cannot slow the
loop down by more than that.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

import cv2
import numpy as np

from cpgait.errors import CpgaitError
from cpgait.kiosk.store import FAILED, FINISHED, STOPPED, Store
from cpgait.runtime.core.layouts import get_layout
from cpgait.runtime.live.gait_session import ESTIMATE
from cpgait.runtime.live.overlay import fit_width
from cpgait.runtime.live.pipeline import FrameReport
from cpgait.runtime.live.subject import OCCLUDED, TRACKING

STREAM_MAX_FPS = 20.0  # the live stream's cap: smooth on a tablet, and bounded work for the web layer
STREAM_WIDTH = 640  # pixels; the overlay is scaled down to this before JPEG encoding
JPEG_QUALITY = 75
SEARCHING, TRACKING_STATE, NOT_ENOUGH, ENOUGH = ("searching", "tracking", "not enough walking yet", "enough walking")
LIVE_NUMBERS = ("cadence", "speed", "step_length", "knee_rom_left", "knee_rom_right")
DIRECTION_S = 0.5  # the walking direction is judged from the hip's displacement over this long
DIRECTION_MIN = 0.03  # image widths per second: slower is standing, not walking either way
QUALITY_EVERY_S = 2.0  # how often the running session's quality counts are written
KEYPOINT_FRAMES = 1800  # with --keep-keypoints: at most this many frames (a minute at 30 fps) per stored window


class Quality:
    """Frames tracked / occluded / searching, walkers seen and walking direction changes of the tracked subject."""

    def __init__(self) -> None:
        self.frames = 0
        self.tracked = 0
        self.occluded = 0
        self.subjects: set[int] = set()
        self.direction_changes = 0
        self._anchor: tuple[float, float] | None = None
        self._direction = 0
        self._subject: int | None = None

    def push(self, report: FrameReport) -> None:
        sf = report.subject
        self.frames += 1
        self.tracked += sf.status == TRACKING
        self.occluded += sf.status == OCCLUDED
        sid = None if sf.subject is None else sf.subject.track_id
        if sid is not None:
            self.subjects.add(sid)
        if sid != self._subject:
            self._subject, self._anchor, self._direction = sid, None, 0
        if sf.status != TRACKING or sf.keypoints is None:
            return
        layout = get_layout(sf.layout)
        hips = sf.keypoints[[layout.index("left_hip"), layout.index("right_hip")]]
        if not (np.all(np.isfinite(hips[:, :2])) and np.all(hips[:, 2] > 0)):
            return
        x = float(hips[:, 0].mean()) / sf.frame.image.shape[1]
        t = sf.frame.timestamp
        if self._anchor is None:
            self._anchor = (t, x)
            return
        t0, x0 = self._anchor
        if t - t0 < DIRECTION_S:
            return
        self._anchor = (t, x)
        velocity = (x - x0) / (t - t0)
        if abs(velocity) < DIRECTION_MIN:
            return
        direction = 1 if velocity > 0 else -1
        if self._direction and direction != self._direction:
            self.direction_changes += 1
        self._direction = direction

    def to_json(self) -> dict:
        return {
            "frames": self.frames,
            "tracked": self.tracked,
            "occluded": self.occluded,
            "walkers": len(self.subjects),
            "direction_changes": self.direction_changes,
        }


@dataclass
class LiveState:
    """What the live page shows, as plain data (a snapshot; `LiveView.state()` copies it)."""

    state: str = SEARCHING
    status: str = "starting"
    frames: int = 0
    fps: float = 0.0
    time_s: float = 0.0
    windows: int = 0
    target_windows: int = 1
    valid_frames: int = 0
    frames_needed: int = 0
    numbers: dict[str, float | None] = field(default_factory=dict)
    estimate: dict | None = None
    ended: bool = False
    outcome: str | None = None
    error: str | None = None


class LiveView:
    """The latest picture and live state of one running session, shared between its loop and the web pages."""

    def __init__(self, target_windows: int) -> None:
        self._cond = threading.Condition()
        self._state = LiveState(target_windows=target_windows)
        self._picture: np.ndarray | None = None
        self._seq = 0
        self._jpeg: tuple[int, bytes] | None = None
        self._encode_lock = threading.Lock()
        self._last_encode = 0.0
        self._started = time.perf_counter()

    def publish(self, report: FrameReport, picture: np.ndarray | None, windows: int) -> None:
        """From the loop's thread: one frame's report and overlay picture."""
        est = report.estimate
        with self._cond:
            s = self._state
            s.frames += 1
            s.fps = s.frames / max(time.perf_counter() - self._started, 1e-6)
            s.time_s = report.subject.frame.timestamp
            s.status = report.subject.status
            s.windows = windows
            if report.window is not None:
                s.numbers = {k: report.window.features.get(k) for k in LIVE_NUMBERS}
            if est is not None:
                s.valid_frames, s.frames_needed = est.valid_frames, est.frames_needed
                s.estimate = est.to_json() if est.state == ESTIMATE else None
            tracked = report.subject.subject is not None
            s.state = (
                SEARCHING
                if not tracked and windows == 0
                else TRACKING_STATE
                if windows == 0
                else NOT_ENOUGH
                if windows < s.target_windows
                else ENOUGH
            )
            if picture is not None:
                self._picture = picture
                self._seq += 1
            self._cond.notify_all()

    def end(self, outcome: str, error: str | None = None) -> None:
        """The session is over: the pages move on to the result; the last picture is let go."""
        with self._cond:
            self._state.ended, self._state.outcome, self._state.error = True, outcome, error
            self._picture = None
            self._cond.notify_all()
        with self._encode_lock:
            self._jpeg = None

    def state(self) -> LiveState:
        with self._cond:
            s = self._state
            return LiveState(**{**s.__dict__, "numbers": dict(s.numbers)})

    def next_jpeg(self, after: int, timeout: float = 1.0) -> tuple[int, bytes | None]:
        """The newest picture after number `after` as JPEG, waiting up to `timeout` s; (after, None) when none came.

        Called from the web server's threads; pictures come at most `STREAM_MAX_FPS` times a second.
        """
        wait = self._last_encode + 1.0 / STREAM_MAX_FPS - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        with self._cond:
            if not self._cond.wait_for(lambda: self._seq > after or self._state.ended, timeout):
                return after, None
            if self._seq <= after or self._picture is None:
                return after, None
            seq, picture = self._seq, self._picture
        with self._encode_lock:  # one encoding per picture, however many pages watch
            if self._jpeg is None or self._jpeg[0] != seq:
                ok, buf = cv2.imencode(
                    ".jpg", fit_width(picture, STREAM_WIDTH), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
                )
                if not ok:
                    raise CpgaitError("OpenCV could not encode the overlay as JPEG")
                self._jpeg = (seq, buf.tobytes())
            self._last_encode = time.perf_counter()
            return self._jpeg


class SessionRunner:
    """One session: `run_live` on the camera in a thread, windows into the store, a `LiveView` for the pages."""

    def __init__(
        self,
        store: Store,
        session_id: int,
        options: object,
        target_windows: int,
        keep_keypoints: bool = False,
    ) -> None:
        from cpgait.runtime.app.run import RunOptions

        if not isinstance(options, RunOptions) or options.stop is None:
            raise ValueError("a kiosk session runs with RunOptions that carry a stop event")
        self.stop_event: threading.Event = options.stop
        self.store = store
        self.session_id = session_id
        self.options = options
        self.keep_keypoints = keep_keypoints
        self.view = LiveView(target_windows)
        self.quality = Quality()
        self.windows = 0
        # the walker's keypoints since the last window (bounded: a long stretch without a window keeps its end)
        self._frames_kp: deque[tuple[float, np.ndarray]] = deque(maxlen=KEYPOINT_FRAMES)
        self._last_quality = time.perf_counter()
        self._thread = threading.Thread(target=self._run, name=f"cpgait-kiosk-session-{session_id}", daemon=True)

    def start(self) -> SessionRunner:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the loop to end after its current frame (the session is then "stopped")."""
        self.stop_event.set()

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _on_report(self, report: FrameReport, picture: np.ndarray | None) -> None:
        self.quality.push(report)
        sf = report.subject
        if self.keep_keypoints and sf.keypoints is not None and sf.status in (TRACKING, OCCLUDED):
            self._frames_kp.append((sf.frame.timestamp, sf.keypoints.copy()))
        w = report.window
        if w is not None:
            kp: dict[str, np.ndarray] | None = None
            if self.keep_keypoints and self._frames_kp:
                kp = {
                    "time_s": np.array([t for t, _ in self._frames_kp], dtype=np.float64),
                    "keypoints": np.stack([k for _, k in self._frames_kp]).astype(np.float32),
                }
                self._frames_kp.clear()
            self.store.add_window(
                self.session_id,
                time_s=w.time_s,
                frame=sf.frame.index,
                subject=None if sf.subject is None else sf.subject.track_id,
                probabilities=dict(zip(w.class_names, (float(p) for p in w.probabilities))),
                valid_fraction=w.valid_fraction,
                features=w.features,
                timings_ms={k: round(v / 1e6, 3) for k, v in report.timings_ns.items() if k != "latency"},
                keypoints=kp,
            )
            self.windows += 1
        now = time.perf_counter()
        if now - self._last_quality >= QUALITY_EVERY_S:
            self._last_quality = now
            self.store.update_quality(self.session_id, self.quality.to_json())
        self.view.publish(report, picture, self.windows)

    def _run(self) -> None:
        from cpgait.runtime.app.run import run_live, summary_json

        try:
            summary, contract = run_live(self.options, on_report=self._on_report)
        except Exception as exc:  # the camera failed, the model could not load: the session says why
            message = str(exc) if isinstance(exc, CpgaitError) else f"{type(exc).__name__}: {exc}"
            self.store.finish_session(self.session_id, FAILED, None, self.quality.to_json(), message)
            self.view.end(FAILED, message)
            return
        outcome = STOPPED if self.stop_event.is_set() else FINISHED
        self.store.finish_session(self.session_id, outcome, summary_json(summary, contract), self.quality.to_json())
        self.view.end(outcome)
