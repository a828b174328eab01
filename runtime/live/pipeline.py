"""The threaded live loop: capture -> pose + subject tracking -> resampling, gait features, classifier -> results.

Frames in, `FrameReport`s out; the application around it (outputs, events, display) is `cpgait.runtime.app`.

Three stages run at once in threads, joined by bounded queues (ONNX Runtime and OpenCV release the GIL while they
work, so the stages really overlap on a multi-core CPU):

    source thread (decode / live reader) -> [pose thread: SubjectPose] -> [temporal thread: Resampler, GaitSession]
        -> the caller's thread: FrameReport per source frame (overlay, video, events)

Nothing grows with the session's length: the queues hold `queue_size` items, a live source keeps one frame, the
session keeps a T-frame ring buffer, and `TimingLog` keeps the newest `capacity` frames' stage times.

Per-frame stage times (nanoseconds, `TimingLog.STAGES`): decode (reading the frame), detector (full-frame person
detection while searching), pose_preprocess / pose_detector / pose_landmarks / pose_postprocess (inside the pose
model), pose (the whole pose call), tracking (tracker, crop, clean-up and smoothing), features (resampling, ring
buffer, incremental gait features), classifier (runner.infer, 0 on frames without a window), drawing (overlay and
output, filled in by the caller), latency (from the frame's capture to its report reaching the caller).
Next to those wall times, decode_cpu / detector_cpu / pose_cpu / classifier_cpu are the CPU time of the thread that
ran the stage meanwhile (`time.thread_time_ns`; ONNX Runtime's other intra-op threads not included): with one
intra-op thread, wall time well above CPU time means the stage waited for a core (contention).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from cpgait.runtime.core.contract import ModelContract
from cpgait.runtime.core.layouts import get_layout, to_coco17
from cpgait.runtime.gait.resample import Resampler
from cpgait.runtime.live.capture import CaptureStats, VideoSource
from cpgait.runtime.live.gait_session import GaitSession, SessionEstimate, WindowResult
from cpgait.runtime.live.subject import OCCLUDED, TRACKING, SubjectFrame, SubjectPose

if TYPE_CHECKING:
    pass

QUEUE_SIZE = 4
TIMING_CAPACITY = 30_000  # frames of stage times kept (17 min at 30 fps; 3 MB)
MEASURED = (TRACKING, OCCLUDED)  # statuses whose keypoints go to the session (it judges each frame's joints)


def layout_converter(pose_layout: str, contract: ModelContract, where: str) -> Callable[[np.ndarray], np.ndarray]:
    """How the pose model's keypoints become the model's layout; a pose model that cannot feed it is an error."""
    if pose_layout == contract.layout:
        return lambda kp: kp
    probe = np.zeros((get_layout(pose_layout).num_joints, 3), dtype=np.float32)
    keep_feet = contract.layout.endswith("_feet")
    _, converted = to_coco17(probe, pose_layout, keep_feet=keep_feet)
    contract.require_source(converted, where)
    return lambda kp: to_coco17(kp, pose_layout, keep_feet=keep_feet)[0]


class TimingLog:
    """Per-frame stage times in ns for the newest `capacity` frames (a ring: memory is fixed)."""

    STAGES = (
        "decode",
        "detector",
        "pose_preprocess",
        "pose_detector",
        "pose_landmarks",
        "pose_postprocess",
        "pose",
        "tracking",
        "features",
        "classifier",
        "drawing",
        "latency",
        "decode_cpu",
        "detector_cpu",
        "pose_cpu",
        "classifier_cpu",
    )

    def __init__(self, capacity: int = TIMING_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"timing log capacity {capacity}; expected >= 1")
        self.capacity = capacity
        self._data = np.zeros((capacity, len(self.STAGES)), dtype=np.int64)
        self._col = {s: i for i, s in enumerate(self.STAGES)}
        self.count = 0

    def add(self, timings: dict[str, int]) -> None:
        """Record one frame; unknown stage names are an error (a typo would silently vanish otherwise)."""
        row = self._data[self.count % self.capacity]
        row[:] = 0
        for name, ns in timings.items():
            if name not in self._col:
                raise KeyError(f"unknown stage {name!r}; expected one of {self.STAGES}")
            row[self._col[name]] = int(ns)
        self.count += 1

    def arrays(self) -> dict[str, np.ndarray]:
        """Each stage's times (ns) over the kept frames, oldest first."""
        n = min(self.count, self.capacity)
        rows = (
            np.roll(self._data, -(self.count % self.capacity), axis=0)[-n:]
            if self.count > self.capacity
            else self._data[:n]
        )
        return {s: rows[:, i].copy() for s, i in self._col.items()}

    def summary_ms(self) -> dict[str, dict[str, float]]:
        """mean / p50 / p95 in ms per stage, over the frames where the stage ran (time > 0)."""
        out = {}
        for stage, values in self.arrays().items():
            ran = values[values > 0] / 1e6
            if len(ran):
                out[stage] = {
                    "mean": float(ran.mean()),
                    "p50": float(np.percentile(ran, 50)),
                    "p95": float(np.percentile(ran, 95)),
                    "frames": int(len(ran)),
                }
        return out


@dataclass(frozen=True)
class FrameReport:
    """Everything known after one source frame: the subject stage's answer, a window result if one completed
    during this frame, the session estimate (None without a classifier), and the final estimate of the previous
    subject's session when it ended at this frame (the subject left, or another one was chosen)."""

    subject: SubjectFrame
    window: WindowResult | None
    estimate: SessionEstimate | None
    timings_ns: dict[str, int] = field(default_factory=dict)
    ended: SessionEstimate | None = None
    window_failure: str | None = None  # "cause: message" of a window that could not be classified at this frame


@dataclass
class RunSummary:
    """What a run did: frames, wall time and throughput, subject statuses, capture stats, session, timings."""

    frames: int
    wall_s: float
    statuses: dict[str, int]
    capture: CaptureStats
    estimate: SessionEstimate | None
    windows: int
    subjects: int
    timings_ms: dict[str, dict[str, float]]
    live: bool
    source_fps: float
    window_failures: dict[str, int] = field(default_factory=dict)  # windows not classified, by cause
    stopped_by: str | None = None  # "SIGINT" / "SIGTERM" when a signal ended the run (set by the application)

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s if self.wall_s > 0 else 0.0


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_END = object()


class Pipeline:
    """Capture, pose + tracking and the temporal stage in threads; iterate `reports()` or call `run()`.

    The pipeline closes its source when it ends (however it ends).
    """

    def __init__(
        self,
        source: VideoSource,
        stage: SubjectPose,
        session: GaitSession | None = None,
        queue_size: int = QUEUE_SIZE,
        timing_capacity: int = TIMING_CAPACITY,
        recorder: Callable[[np.ndarray], object] | None = None,
    ) -> None:
        self.source = source
        self.recorder = recorder  # sees the raw keypoints [T, V, 3] of every classified window
        self.stage = stage
        self.session = session
        self.convert = (
            layout_converter(stage.layout, session.contract, f"pose layout {stage.layout}")
            if session is not None
            else None
        )
        self.resampler = Resampler(session.contract.fps) if session is not None else None
        self.timings = TimingLog(timing_capacity)
        self.windows = 0
        self.subjects = 0
        self.last_estimate: SessionEstimate | None = None  # of the last subject's session that had windows
        self._q_pose: queue.Queue = queue.Queue(maxsize=queue_size)
        self._q_out: queue.Queue = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._subject_id: int | None = None
        self._started = False

    def stop(self) -> None:
        """Ask every stage to finish (e.g. the user closed the window); `reports()` then ends."""
        self._stop.set()

    def queue_depths(self) -> dict[str, int]:
        """Items waiting between the stages now (each queue holds at most `queue_size`)."""
        return {"pose": self._q_pose.qsize(), "results": self._q_out.qsize()}

    def _put(self, q: queue.Queue, item: object) -> bool:
        while not self._stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _end(self, q: queue.Queue, item: object) -> None:
        """Deliver the end marker (or a failure): after all queued work at a normal end, and by dropping queued work
        when stopping (nobody will consume it)."""
        while True:
            try:
                q.put(item, timeout=0.1)
                return
            except queue.Full:
                if self._stop.is_set():
                    try:
                        q.get_nowait()
                    except queue.Empty:
                        pass

    def _pose_worker(self) -> None:
        end: object = _END
        try:
            for frame in self.source:
                if self._stop.is_set() or not self._put(self._q_pose, self.stage(frame)):
                    break
        except BaseException as exc:  # handed to the caller's thread, which re-raises it
            end = _Failure(exc)
        self._end(self._q_pose, end)

    def _temporal_worker(self) -> None:
        end: object = _END
        try:
            while True:
                item = self._q_pose.get()
                if item is _END or isinstance(item, _Failure):
                    end = item
                    break
                if not self._put(self._q_out, self._temporal(item)):
                    break
        except BaseException as exc:
            end = _Failure(exc)
        self._end(self._q_out, end)

    def _temporal(self, sf: SubjectFrame) -> FrameReport:
        timings = {"decode": sf.frame.decode_ns, "decode_cpu": sf.frame.decode_cpu_ns, **sf.timings_ns}
        subject_id = None if sf.subject is None else sf.subject.track_id
        ended = None
        if subject_id != self._subject_id:
            if subject_id is not None:
                self.subjects += 1
            self._subject_id = subject_id
            if self.session is not None and self.resampler is not None:
                if self.session.window_count:
                    ended = self.last_estimate = self.session.estimate()
                self.session.reset()
                self.resampler.reset()
        if self.session is None or self.resampler is None or self.convert is None:  # all three or none
            return FrameReport(sf, None, None, timings)
        window = failure = None
        if subject_id is not None:
            t0 = time.perf_counter_ns()
            failed_before = sum(self.session.failures_total.values())
            classifier = classifier_cpu = 0
            kp = sf.keypoints if sf.keypoints is not None and sf.status in MEASURED else _missing_like(sf)
            for t, model_kp in self.resampler.push(sf.frame.timestamp, self.convert(kp)):
                result = self.session.push(t, model_kp)
                classifier += self.session.last_timings_ns.get("classifier", 0)
                classifier_cpu += self.session.last_timings_ns.get("classifier_cpu", 0)
                if result is not None:
                    window = result
                    self.windows += 1
                    if self.recorder is not None:
                        self.recorder(self.session.window_keypoints())
            timings["features"] = time.perf_counter_ns() - t0 - classifier
            timings["classifier"] = classifier
            timings["classifier_cpu"] = classifier_cpu
            if sum(self.session.failures_total.values()) != failed_before:
                failure = self.session.last_failure
        return FrameReport(sf, window, self.session.estimate(), timings, ended, failure)

    def reports(self) -> Generator[FrameReport, None, None]:
        """Run the stages and yield one report per processed source frame, in order."""
        if self._started:
            raise RuntimeError("a pipeline runs once; build a new one for another run")
        self._started = True
        workers = [
            threading.Thread(target=self._pose_worker, name="cpgait-pose", daemon=True),
            threading.Thread(target=self._temporal_worker, name="cpgait-temporal", daemon=True),
        ]
        for w in workers:
            w.start()
        failure: _Failure | None = None
        try:
            while True:
                item = self._q_out.get()
                if item is _END:
                    break
                if isinstance(item, _Failure):
                    failure = item
                    break
                item.timings_ns["latency"] = time.perf_counter_ns() - item.subject.frame.captured_ns
                yield item
                self.timings.add(item.timings_ns)
        finally:
            self.stop()
            self.source.close()  # ends the pose thread's wait for a frame, even from a stalled camera
            while any(w.is_alive() for w in workers):  # drain so that a blocked temporal stage sees the stop
                try:
                    self._q_out.get(timeout=0.05)
                except queue.Empty:
                    pass
            for w in workers:
                w.join()
        if failure is not None:
            raise failure.exc

    def estimate(self) -> SessionEstimate | None:
        """The current subject's estimate, or the last finished session's when the current one has no window yet."""
        if self.session is None:
            return None
        current = self.session.estimate()
        return current if current.windows or self.last_estimate is None else self.last_estimate

    def run(self, on_report: Callable[[FrameReport], None] | None = None) -> RunSummary:
        """Process the whole source, or until `stop()` or Ctrl-C (a camera never ends: the summary still comes);
        `on_report` sees every report (and may add "drawing")."""
        start = time.perf_counter()
        frames = 0
        reports = self.reports()
        try:
            for report in reports:
                if on_report is not None:
                    on_report(report)
                frames += 1
        except KeyboardInterrupt:
            reports.close()  # stops the stages and closes the source
        return RunSummary(
            frames=frames,
            wall_s=time.perf_counter() - start,
            statuses=dict(self.stage.counts),
            capture=self.source.stats,
            estimate=self.estimate(),
            windows=self.windows,
            subjects=self.subjects,
            timings_ms=self.timings.summary_ms(),
            live=self.source.is_live,
            source_fps=self.source.fps,
            window_failures={} if self.session is None else dict(self.session.failures_total),
        )


def _missing_like(sf: SubjectFrame) -> np.ndarray:
    """A frame in which the subject was not measured: every joint unseen (the resampler leaves it a gap)."""
    kp = np.full((get_layout(sf.layout).num_joints, 3), np.nan, dtype=np.float32)
    kp[:, 2] = 0.0
    return kp
