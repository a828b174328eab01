"""`cpgait run`: the live loop as an application, wiring a source, the pose model and the classifier into the
threaded pipeline, with overlay video, JSON-lines events, display, window recording and the run summary.

How a run ends (`exit_code`, the CLI's exit status): 0 the source ended or the user quit; 130 SIGINT (Ctrl-C) and
143 SIGTERM (systemd, docker stop) stop the loop at a frame boundary, the overlay and events are finished as at a
normal end (the summary says `stopped_by`); 3 a video file ended before the frame count its container states
(truncated or damaged part-way: outputs are kept, the summary says `source_incomplete`). An error leaves no partial
output: the previous overlay and events files, if any, are untouched.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cpgait.errors import CpgaitError, check_outputs
from cpgait.runtime.backends.registry import RUNTIME_BACKENDS
from cpgait.runtime.backends.triton_runner import TritonRunner
from cpgait.runtime.core.contract import ModelContract
from cpgait.runtime.live.allocator import limit_malloc_arenas
from cpgait.runtime.live.capture import SourceSpec, check_fps, open_source
from cpgait.runtime.live.events import EventLog
from cpgait.runtime.live.gait_session import GaitSession
from cpgait.runtime.live.overlay import SYNTHETIC_NOTE, Overlay, OverlayVideo, fit_width
from cpgait.runtime.live.pipeline import FrameReport, Pipeline, RunSummary, TimingLog, layout_converter
from cpgait.runtime.live.recorder import WindowRecorder
from cpgait.runtime.live.subject import SubjectPose
from cpgait.runtime.live.thread_budget import ThreadBudget
from cpgait.runtime.pose.catalog import load_pose_model
from cpgait.runtime.pose.interface import PoseModel


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """`cpgait run` settings (see the CLI's help for each)."""

    source: str
    model: str
    pose: str = "blazepose"
    backend: str = "ort-cpu"
    pose_backend: str | None = None
    pose_models: str | None = None  # a folder of pose networks replacing the shipped files (catalog.py)
    show: bool = False
    out: str | None = None
    events: str | None = None
    overwrite: bool = False
    paced: bool = False
    stride: int | None = None
    max_frames: int | None = None
    record: str | None = None
    pose_threads: int | None = None  # intra-op threads of the pose networks; default: the thread budget's
    triton_url: str | None = None
    stop: threading.Event | None = None  # set by an embedding app (the kiosk) to end the run after the next frame
    loop: bool = False  # replay a video file endlessly, paced (a kiosk demo, a soak test)
    fps: float | None = None  # a video file's frame rate, replacing the one its container states

    def __post_init__(self) -> None:
        for name in ("stride", "max_frames", "pose_threads"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise CpgaitError(f"{name.replace('_', '-')} is {value}; expected at least 1")
        check_fps(self.fps, f"--fps for {self.source}")


EXIT_OK, EXIT_INCOMPLETE_SOURCE, EXIT_SIGINT, EXIT_SIGTERM = 0, 3, 130, 143


def exit_code(summary: RunSummary) -> int:
    """The exit status that says how a run ended (module docstring)."""
    if summary.stopped_by is not None:
        return 128 + int(signal.Signals[summary.stopped_by])
    return EXIT_INCOMPLETE_SOURCE if summary.capture.incomplete else EXIT_OK


def check_paths(options: RunOptions) -> None:
    """Every input and output of a run, before any model loads: no output may be an input or another output,
    each must be writable, and nothing is replaced without --overwrite."""
    inputs = [options.model]
    if SourceSpec.parse(options.source).kind == "file":
        inputs.append(options.source)
    if options.out is not None and Path(options.out).suffix.lower() not in (".mp4", ".avi"):
        raise CpgaitError(f"{options.out}: overlay video must end in .mp4 or .avi")
    check_outputs(inputs, [options.out, options.events], options.overwrite, folders=[options.record])


@contextmanager
def stop_on_signals(stop: Callable[[], None]) -> Iterator[list[str]]:
    """While inside, SIGINT and SIGTERM call `stop()` (the loop ends at the next frame boundary) and are listed by
    name; a second signal ends the process at once. Only the main thread can hold signal handlers; elsewhere (a
    web app running the loop in a thread) the caller stops the loop itself."""
    received: list[str] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def handler(signum: int, _frame: object) -> None:
        if received:
            raise SystemExit(128 + signum)
        received.append(signal.Signals(signum).name)
        stop()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def run_live(
    options: RunOptions,
    on_report: Callable[[FrameReport, np.ndarray | None], None] | None = None,
    pose: PoseModel | None = None,
    on_start: Callable[[Pipeline], None] | None = None,
    pictures: bool = True,
) -> tuple[RunSummary, ModelContract]:
    """`cpgait run`: the whole loop on a source with overlay video, events and display as asked.

    Checks everything the user gave before the first frame (paths, model contract vs the graph and the pose layout,
    display available). `on_report` also sees each overlay picture (None when nothing draws). `pose` is
    `options.pose` already loaded (a batch worker keeps one for many videos); by default it is loaded here.
    `on_start` gets the pipeline just before the first frame (to stop it from elsewhere, or watch its queues).
    `pictures=False`: `on_report` does not look at the pictures, so none is drawn for it (a batch worker's CPU).
    SIGINT / SIGTERM end the run cleanly (`stop_on_signals`, `exit_code`). Caps the process's malloc arenas
    (`allocator.py`).
    """
    check_paths(options)
    contract = ModelContract.from_onnx(options.model)
    budget = ThreadBudget.auto(pose=options.pose_threads)
    budget.apply_opencv()
    limit_malloc_arenas()  # before the loop's threads allocate: memory stays flat over hours (allocator.py)
    if pose is None:
        remote = RUNTIME_BACKENDS.get(options.backend).runner is TritonRunner  # pose stays on this machine
        pose_backend = options.pose_backend or ("ort-cpu" if remote else options.backend)
        pose = load_pose_model(
            options.pose, pose_backend, models=options.pose_models, **budget.runner_options(pose_backend, "pose")
        )
    elif pose.name != options.pose:
        raise CpgaitError(f"pose model {pose.name!r} given for a run with --pose {options.pose}")
    for pose_runner in pose.runners():  # load the pose networks now, not on the first frame (it would count as latency)
        pose_runner.activate()
    server = {} if options.triton_url is None else {"url": options.triton_url}
    runner = RUNTIME_BACKENDS.make_runner(
        options.model, options.backend, **server, **budget.runner_options(options.backend, "classifier")
    )
    session = GaitSession(contract, runner, stride=options.stride, where=str(options.model))
    layout_converter(pose.layout, contract, f"pose model {options.pose} (layout {pose.layout}) for {options.model}")
    if options.show:
        _check_display()
    source = open_source(
        options.source,
        paced=options.paced,
        max_frames=options.max_frames,
        loop=options.loop,
        decode_threads=budget.decode,
        fps=options.fps,
    )
    video = events = None
    try:
        recorder = None
        if options.record is not None:
            recorder = WindowRecorder(
                options.record,
                contract.layout,
                contract.fps,
                source.size,
                source=f"recorded by `cpgait run` from {options.source}",
            )
        video = OverlayVideo(options.out, source.fps, options.overwrite) if options.out else None
        events = EventLog(options.events, options.overwrite) if options.events else None
    except CpgaitError:
        source.close()
        for output in (video, events):
            if output is not None:
                output.discard()
        raise
    drawn = video or options.show or (on_report is not None and pictures)
    overlay = Overlay(contract.class_names, contract.synthetic) if drawn else None
    pipeline = Pipeline(source, SubjectPose(pose, source.size, pose.layout), session, recorder=recorder)
    last_subject: list[int | None] = [None]
    gaps_reported = [0]

    def handle(report: FrameReport) -> None:
        t0 = time.perf_counter_ns()
        picture = overlay(report) if overlay is not None else None
        if video is not None and picture is not None:  # an overlay is drawn whenever there is a video or a window
            video.write(picture)
        if options.show and picture is not None:
            import cv2

            cv2.imshow("cpgait", fit_width(picture))
            if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                pipeline.stop()
        if picture is not None:
            report.timings_ns["drawing"] = time.perf_counter_ns() - t0
        if events is not None:
            gaps = source.stats.gaps
            for lost, back in gaps[gaps_reported[0] :]:
                events.write({"type": "source_gap", "from_s": lost, "to_s": back, "frame": report.subject.frame.index})
            gaps_reported[0] = len(gaps)
            if report.window_failure is not None:
                events.write(
                    {
                        "type": "window_failed",
                        "time_s": round(report.subject.frame.timestamp, 4),
                        "frame": report.subject.frame.index,
                        "cause": report.window_failure.split(":", 1)[0],
                        "message": report.window_failure,
                    }
                )
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
        if options.stop is not None and options.stop.is_set():
            pipeline.stop()

    ok = False
    try:
        with runner, source, stop_on_signals(pipeline.stop) as received:
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
            if on_start is not None:
                on_start(pipeline)
            summary = pipeline.run(handle)
            summary.stopped_by = received[0] if received else None
            if events is not None:
                events.write(summary_json(summary, contract))
        ok = True
    finally:
        for output in (video, events):
            if output is not None:
                if ok:
                    output.close()
                else:
                    output.discard()
        if options.show:
            import cv2

            cv2.destroyAllWindows()
    return summary, contract


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
        "source_gaps": [list(g) for g in summary.capture.gaps],
        "capture_errors": summary.capture.errors[-10:],
        "source_incomplete": summary.capture.incomplete,
        "stopped_by": summary.stopped_by,
        "exit_code": exit_code(summary),
        "window_failures": summary.window_failures,
        "windows": summary.windows,
        "subjects": summary.subjects,
        "session": None if est is None else est.to_json(),
        "timings_ms": {k: {m: round(v, 3) for m, v in d.items()} for k, d in summary.timings_ms.items()},
        "synthetic_model": None if contract is None else contract.synthetic,
    }


def format_summary(summary: RunSummary, contract: ModelContract | None, source: str) -> str:
    """The human-readable end-of-run summary `cpgait run` prints."""
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
    if summary.stopped_by is not None:
        lines.append(f"stopped by {summary.stopped_by} (exit code {exit_code(summary)}); outputs finished as usual")
    if summary.capture.incomplete:
        lines.append(f"warning: {source}: {summary.capture.incomplete}; the results cover the frames read")
    failed = {k: v for k, v in summary.window_failures.items() if v}
    if failed:
        lines.append("windows not classified: " + ", ".join(f"{k} {v}" for k, v in failed.items()))
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
