"""The live loop: capture -> pose + subject tracking -> resampling, gait features, classifier -> results.

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
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cpgait.errors import CpgaitError, refuse_overwrite
from cpgait.runtime.core.contract import ModelContract
from cpgait.runtime.core.layouts import get_layout, to_coco17
from cpgait.runtime.live.capture import CaptureStats, VideoSource
from cpgait.runtime.live.gait_session import GaitSession, SessionEstimate, WindowResult
from cpgait.runtime.live.smoothing import Resampler
from cpgait.runtime.live.subject import OCCLUDED, TRACKING, PoseModel, SubjectFrame, SubjectPose

if TYPE_CHECKING:
    from cpgait.runtime.core.sequence import KeypointSequence

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
    )

    def __init__(self, capacity: int = TIMING_CAPACITY) -> None:
        if capacity < 1:
            raise CpgaitError(f"timing log capacity {capacity}; expected >= 1")
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
        timings = {"decode": sf.frame.decode_ns, **sf.timings_ns}
        subject_id = None if sf.subject is None else sf.subject.track_id
        ended = None
        if subject_id != self._subject_id:
            if subject_id is not None:
                self.subjects += 1
            self._subject_id = subject_id
            if self.session is not None:
                if self.session.window_count:
                    ended = self.last_estimate = self.session.estimate()
                self.session.reset()
                self.resampler.reset()
        if self.session is None:
            return FrameReport(sf, None, None, timings)
        window = None
        if subject_id is not None:
            t0 = time.perf_counter_ns()
            classifier = 0
            measured = sf.keypoints is not None and sf.status in MEASURED
            kp = sf.keypoints if measured else _missing_like(sf)
            for t, model_kp in self.resampler.push(sf.frame.timestamp, self.convert(kp)):
                result = self.session.push(t, model_kp)
                classifier += self.session.last_timings_ns.get("classifier", 0)
                if result is not None:
                    window = result
                    self.windows += 1
                    if self.recorder is not None:
                        self.recorder(self.session.window_keypoints())
            timings["features"] = time.perf_counter_ns() - t0 - classifier
            timings["classifier"] = classifier
        return FrameReport(sf, window, self.session.estimate(), timings, ended)

    def reports(self) -> Iterator[FrameReport]:
        """Run the stages and yield one report per processed source frame, in order."""
        if self._started:
            raise CpgaitError("a pipeline runs once; build a new one for another run")
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
        )


def _missing_like(sf: SubjectFrame) -> np.ndarray:
    """A frame in which the subject was not measured: every joint unseen (the resampler leaves it a gap)."""
    kp = np.full((get_layout(sf.layout).num_joints, 3), np.nan, dtype=np.float32)
    kp[:, 2] = 0.0
    return kp


@dataclass(frozen=True)
class RunOptions:
    """`cpgait run` settings (see the CLI's help for each)."""

    source: str
    model: str
    pose: str = "blazepose"
    backend: str = "ort-cpu"
    pose_backend: str | None = None
    show: bool = False
    out: str | None = None
    events: str | None = None
    overwrite: bool = False
    paced: bool = False
    stride: int | None = None
    max_frames: int | None = None
    record: str | None = None

    def __post_init__(self) -> None:
        for name in ("stride", "max_frames"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise CpgaitError(f"{name.replace('_', '-')} is {value}; expected at least 1")


def run_live(
    options: RunOptions, on_report: Callable[[FrameReport, np.ndarray | None], None] | None = None
) -> tuple[RunSummary, ModelContract]:
    """`cpgait run`: the whole loop on a source with overlay video, events and display as asked.

    Checks everything the user gave before the first frame (model contract vs pose layout, outputs not to be
    overwritten, display available). `on_report` also sees each overlay picture (None when nothing draws).
    """
    from cpgait.runtime.backends.runners import make_runner
    from cpgait.runtime.live.capture import open_source
    from cpgait.runtime.live.overlay import EventLog, Overlay, OverlayVideo, fit_width
    from cpgait.runtime.pose.interface import load_pose_model

    contract = ModelContract.from_onnx(options.model)
    for path in (options.out, options.events):
        if path is not None:
            refuse_overwrite(path, options.overwrite)
    pose = load_pose_model(options.pose, options.pose_backend or options.backend)
    activate_runners(pose)  # load the pose networks now, not on the first frame (it would count as latency)
    runner = make_runner(options.model, options.backend)
    session = GaitSession(contract, runner, stride=options.stride)
    layout_converter(pose.layout, contract, f"pose model {options.pose} (layout {pose.layout}) for {options.model}")
    if options.show:
        _check_display()
    source = open_source(options.source, paced=options.paced, max_frames=options.max_frames)
    try:
        video = OverlayVideo(options.out, source.fps, options.overwrite) if options.out else None
        events = EventLog(options.events, options.overwrite) if options.events else None
    except CpgaitError:
        source.close()
        raise
    overlay = Overlay(contract.class_names, contract.synthetic) if (video or options.show or on_report) else None
    recorder = None
    if options.record is not None:
        from cpgait.runtime.live.recorder import WindowRecorder

        recorder = WindowRecorder(
            options.record,
            contract.layout,
            contract.fps,
            source.size,
            source=f"recorded by `cpgait run` from {options.source}",
        )
    pipeline = Pipeline(source, SubjectPose(pose, source.size, pose.layout), session, recorder=recorder)
    last_subject: list[int | None] = [None]

    def handle(report: FrameReport) -> None:
        t0 = time.perf_counter_ns()
        picture = overlay(report) if overlay is not None else None
        if video is not None:
            video.write(picture)
        if options.show:
            import cv2

            cv2.imshow("cpgait", fit_width(picture))
            if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                pipeline.stop()
        if picture is not None:
            report.timings_ns["drawing"] = time.perf_counter_ns() - t0
        if events is not None:
            subject = report.subject.subject
            sid = None if subject is None else subject.track_id
            if sid != last_subject[0]:
                last_subject[0] = sid
                events.write(
                    {
                        "type": "subject",
                        "time_s": round(report.subject.frame.timestamp, 4),
                        "frame": report.subject.frame.index,
                        "subject": sid,
                    }
                )
            if report.ended is not None:
                events.write({**report.ended.to_json(), "time_s": round(report.subject.frame.timestamp, 4)})
            if report.window is not None:
                events.write(report.window.to_json())
        if on_report is not None:
            on_report(report, picture)

    try:
        with runner, source:
            if events is not None:
                events.write(
                    {
                        "type": "start",
                        "source": str(options.source),
                        "model": str(options.model),
                        "pose": options.pose,
                        "backend": options.backend,
                        "fps": source.fps,
                        "image_size": list(source.size),
                        "contract": json.loads(contract.to_json()),
                    }
                )
            summary = pipeline.run(handle)
            if events is not None:
                events.write(summary_json(summary, contract))
    finally:
        if video is not None:
            video.close()
        if events is not None:
            events.close()
        if options.show:
            import cv2

            cv2.destroyAllWindows()
    return summary, contract


def activate_runners(model: object) -> None:
    """Activate every Runner a pose model holds (sessions are otherwise built on first use)."""
    from cpgait.runtime.backends.runners import Runner

    for value in vars(model).values():
        if isinstance(value, Runner):
            value.activate()


def _check_display() -> None:
    import cv2

    try:
        cv2.namedWindow("cpgait", cv2.WINDOW_NORMAL)
    except cv2.error:
        raise CpgaitError(
            "--show: this OpenCV has no display support (opencv-python-headless); "
            "use --headless with --out overlay.mp4, or install opencv-python"
        ) from None


def summary_json(summary: RunSummary, contract: ModelContract | None) -> dict:
    """The run summary as one JSON object (the last line of `--events`)."""
    est = summary.estimate
    return {
        "type": "summary",
        "frames": summary.frames,
        "wall_s": round(summary.wall_s, 3),
        "fps": round(summary.fps, 2),
        "statuses": summary.statuses,
        "live": summary.live,
        "frames_skipped": summary.capture.frames_skipped,
        "reconnects": summary.capture.reconnects,
        "capture_errors": summary.capture.errors[-10:],
        "windows": summary.windows,
        "subjects": summary.subjects,
        "session": None if est is None else est.to_json(),
        "timings_ms": {k: {m: round(v, 3) for m, v in d.items()} for k, d in summary.timings_ms.items()},
        "synthetic_model": None if contract is None else contract.synthetic,
    }


def format_summary(summary: RunSummary, contract: ModelContract | None, source: str) -> str:
    """The human-readable end-of-run summary `cpgait run` prints."""
    from cpgait.runtime.live.overlay import SYNTHETIC_NOTE

    t = summary.timings_ms
    lines = [f"{source}: {summary.frames} frames in {summary.wall_s:.2f} s = {summary.fps:.1f} frames/s"]
    if summary.capture.frames_skipped or summary.capture.reconnects or summary.capture.errors:
        lines.append(
            f"live source: {summary.capture.frames_skipped} frames skipped (newest-frame policy), "
            f"{summary.capture.reconnects} reconnects"
        )
    if summary.capture.errors:
        lines.append(f"source errors: {len(summary.capture.errors)}, the last: {summary.capture.errors[-1]}")
    by_count = sorted(summary.statuses.items(), key=lambda kv: -kv[1])
    lines.append("subject: " + ", ".join(f"{k} {v}" for k, v in by_count))
    stages = [s for s in TimingLog.STAGES if s in t and s != "latency"]
    lines.append(
        "stage ms (mean / p95 over frames where it ran): "
        + ", ".join(f"{s} {t[s]['mean']:.1f}/{t[s]['p95']:.1f}" for s in stages)
    )
    if "latency" in t:
        how = "" if summary.live else " (a file read as fast as it goes: frames wait in queues; --paced measures live)"
        lines.append(
            f"latency capture -> result: p50 {t['latency']['p50']:.1f} ms, p95 {t['latency']['p95']:.1f} ms" + how
        )
    est = summary.estimate
    if est is not None:
        if est.probabilities is None:
            lines.append(
                f"session: {est.state} ({est.valid_frames} of the last {est.frames_needed} model frames show the legs)"
            )
        else:
            probs = ", ".join(f"{n} {p:.2f}" for n, p in zip(est.class_names, est.probabilities))
            lines.append(
                f"session estimate: {est.class_name} (confidence {est.confidence:.2f}, agreement "
                f"{est.agreement:.0%} over {est.windows} windows; mean probabilities {probs})"
            )
    if contract is not None and contract.synthetic:
        lines.append(SYNTHETIC_NOTE)
    return "\n".join(lines)


def record_sequence(video: str, pose: PoseModel, max_frames: int | None = None) -> tuple[KeypointSequence, RunSummary]:
    """`cpgait pose`: the same capture, pose and subject stages as `cpgait run` over a whole recording.

    The sequence is the subject measured on the most frames (its track), in the pose model's layout, at the
    video's fps, trimmed to the span from its first to its last measured frame; frames inside that span where it
    was not measured are missing (confidence 0). No walking subject at all is an error.
    """
    from cpgait.runtime.core.sequence import KeypointSequence
    from cpgait.runtime.live.capture import FileSource

    activate_runners(pose)
    source = FileSource(video, max_frames=max_frames)
    pipeline = Pipeline(source, SubjectPose(pose, source.size, pose.layout))
    frames: dict[int, tuple[int | None, np.ndarray | None]] = {}  # frame index -> (track, keypoints)

    def keep(report: FrameReport) -> None:
        sf = report.subject
        measured = sf.keypoints is not None and sf.status in MEASURED
        frames[sf.frame.index] = (sf.subject.track_id if measured else None, sf.keypoints if measured else None)

    with source:
        summary = pipeline.run(keep)
    ids = [i for i, _ in frames.values() if i is not None]
    if not ids:
        seen = ", ".join(f"{k} {v}" for k, v in summary.statuses.items())
        raise CpgaitError(f"{video}: no walking subject found in {summary.frames} frames ({seen})")
    best = max(set(ids), key=ids.count)
    span = sorted(n for n, (i, _) in frames.items() if i == best)
    num_joints = get_layout(pose.layout).num_joints
    kp = np.zeros((span[-1] - span[0] + 1, num_joints, 3), dtype=np.float32)
    kp[..., :2] = np.nan
    for row, n in enumerate(range(span[0], span[-1] + 1)):
        track, points = frames.get(n, (None, None))
        if track == best:
            kp[row] = points
    sequence = KeypointSequence(
        keypoints=kp,
        fps=source.fps,
        layout=pose.layout,
        image_size=source.size,
        recording_id=Path(video).stem,
        source=f"cpgait pose: {getattr(pose, 'name', type(pose).__name__)} pose model on {Path(video).name}, "
        f"frames {span[0]}-{span[-1]} of {summary.frames}",
    )
    return sequence, summary
