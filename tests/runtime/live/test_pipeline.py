"""The threaded pipeline with a fake pose model, and the whole loop (`cpgait run`, `cpgait pose`) on a real walking
clip (tests/data/walk.mp4: 200 frames of the Sports2D demo clip, committed, so no test needs the network)."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import cv2
import jsonschema
import numpy as np
import pytest
from session_fakes import LEGS, FakeRunner, SlowRunner, contract_for, walker

from cpgait.errors import CpgaitError
from cpgait.runtime.app.record import record_sequence
from cpgait.runtime.app.run import RunOptions, run_live
from cpgait.runtime.backends.runner import Runner
from cpgait.runtime.core.contract import METADATA_KEY, ModelContract
from cpgait.runtime.core.layouts import get_layout
from cpgait.runtime.core.sequence import KeypointSequence
from cpgait.runtime.gait.features import SCALAR_NAMES, SERIES_NAMES, compute_features
from cpgait.runtime.live.capture import FileSource, Frame
from cpgait.runtime.live.events import EventLog
from cpgait.runtime.live.gait_session import ESTIMATE, NOT_ENOUGH, GaitSession
from cpgait.runtime.live.overlay import Overlay, fit_width
from cpgait.runtime.live.pipeline import Pipeline, TimingLog, layout_converter
from cpgait.runtime.live.subject import (
    BAD_OUTPUT,
    LOST,
    NOBODY,
    OCCLUDED,
    SEARCHING,
    TOO_SMALL,
    TRACKING,
    SubjectFrame,
    SubjectPose,
)
from cpgait.runtime.live.tracker import Subject
from cpgait.runtime.pose.blazepose import PoseDetection
from cpgait.runtime.pose.interface import PoseResult, keypoint_box

ROOT = Path(__file__).resolve().parents[3]
WALK_CLIP = ROOT / "tests" / "data" / "walk.mp4"  # see NOTICE: the demo clip's first 200 frames at 960x540


@pytest.mark.parametrize(
    "pose_layout,model_layout,expected",
    [
        ("blazepose33", "coco17_feet", 21),
        ("blazepose33", "coco17", 17),
        ("coco17", "coco17", 17),
        ("coco17", "coco17_feet", "layout 'coco17' but .* 'coco17_feet' .*needs heel and toe"),  # MoveNet
        ("blazepose33", "body25", "layout 'coco17' but the model was trained on 'body25'"),
    ],
)
def test_pose_layout_must_fit_the_model(pose_layout: str, model_layout: str, expected: int | str) -> None:
    contract = contract_for(layout=model_layout)
    if isinstance(expected, str):
        with pytest.raises(CpgaitError, match=expected):
            layout_converter(pose_layout, contract, "pose")
        return
    convert = layout_converter(pose_layout, contract, "pose")
    out = convert(np.zeros((get_layout(pose_layout).num_joints, 3), dtype=np.float32))
    assert out.shape == (expected, 3)


def test_timing_log_keeps_only_the_newest_frames() -> None:
    log = TimingLog(capacity=3)
    for k in range(1, 6):
        log.add({"pose": k * 1_000_000, "latency": 10_000_000})
    arrays = log.arrays()
    assert arrays["pose"].tolist() == [3_000_000, 4_000_000, 5_000_000] and log.count == 5
    assert log.summary_ms()["pose"]["p50"] == pytest.approx(4.0)
    assert "classifier" not in log.summary_ms()  # never ran
    with pytest.raises(KeyError, match="unknown stage"):
        log.add({"posee": 1})


# ---- the threaded pipeline with a scripted pose model -----------------------------------------------------------

SCENE_FRAMES = 45
SCENE_SIZE = (320, 240)


def _scene_video(path: Path, fps: float = 15.0, nobody: range = range(0)) -> Path:
    """A clip whose frame i carries i in a grey block (the fake pose model reads it back)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, SCENE_SIZE)
    for i in range(SCENE_FRAMES):
        image = np.zeros((SCENE_SIZE[1], SCENE_SIZE[0], 3), dtype=np.uint8)
        image[:16, :16] = 5 * i
        image[:16, 16:32] = 250 if i in nobody else 0
        writer.write(image)
    writer.release()
    return path


class FakePose:
    """Sees a person standing upper left and a walker crossing right to left (120 px tall, 0.6 heights/s)."""

    layout = "coco17"
    name = "fake"
    detector_size = None

    def __init__(self, fail_at: int | None = None, trouble: dict[int, str] | None = None) -> None:
        self.fail_at = fail_at
        self.trouble = trouble or {}  # frame -> "nan", "tiny" or "occluded"
        self.resets = 0
        self.last_timings_ms: dict[str, float] = {}

    def runners(self) -> list[Runner]:
        return []

    @staticmethod
    def _frame(image: np.ndarray) -> tuple[int, bool]:
        return int(round(float(image[:16, :16].mean()) / 5)), float(image[:16, 16:32].mean()) > 125

    @staticmethod
    def _walker_box(i: int) -> tuple[float, float, float, float]:
        cx = 280 - 0.6 * 120 * i / 15
        return cx - 25, 100.0, cx + 25, 220.0

    def detect(self, image: np.ndarray) -> list:
        i, nobody = self._frame(image)
        if nobody:
            return []
        return [SimpleNamespace(box=(40.0, 10.0, 70.0, 70.0)), SimpleNamespace(box=self._walker_box(i))]

    def __call__(self, image: np.ndarray, detection: object = None) -> PoseResult | None:
        i, nobody = self._frame(image)
        if i == self.fail_at:
            raise RuntimeError("pose model crashed")
        if nobody:
            return None
        x0, y0, x1, y1 = self._walker_box(i)
        trouble = self.trouble.get(i)
        if trouble == "tiny":  # same place, 30 px tall
            y0, y1 = 180.0, 210.0
        kp = np.zeros((17, 3), dtype=np.float32)
        kp[:, 0] = np.linspace(x0 + 5, x1 - 5, 17)
        kp[:, 1] = np.linspace(y0 + 5, y1 - 5, 17)
        kp[:, 2] = 0.9
        if trouble == "occluded":
            kp[:12, 2] = 0.05
        if trouble == "nan":
            kp[3, 0] = np.nan  # PoseResult refuses it with a ValueError, as for any broken model output
        return PoseResult(kp, self.layout, 0.9, keypoint_box(kp))

    def reset(self) -> None:
        self.resets += 1


def test_pipeline_tracks_the_walker_in_order_and_reports_stage_times(tmp_path: Path) -> None:
    video = _scene_video(tmp_path / "scene.avi", nobody=range(30, 33))
    source = FileSource(video)
    stage = SubjectPose(FakePose(), source.size, "coco17")
    with source:
        reports = list(Pipeline(source, stage, queue_size=2).reports())
    assert [r.subject.frame.index for r in reports] == list(range(SCENE_FRAMES))
    statuses = [r.subject.status for r in reports]
    assert statuses[0] == SEARCHING and TRACKING in statuses
    assert statuses[30] == LOST  # the walker vanished for three frames ...
    assert statuses[-1] == TRACKING  # ... and was found again as the same subject
    tracked = [r for r in reports if r.subject.status == TRACKING]
    assert len({r.subject.subject.track_id for r in tracked}) == 1
    assert all(r.subject.keypoints[:, 1].min() > 100 for r in tracked)  # never the person standing upper left
    assert all(r.timings_ns["latency"] > 0 and r.timings_ns["tracking"] >= 0 for r in reports)
    assert all("pose" in r.timings_ns for r in tracked) and any("detector" in r.timings_ns for r in reports)


@pytest.mark.parametrize("search_every", [1, 2])
def test_an_idle_kiosk_searches_every_nth_frame_and_a_lost_walker_every_frame(
    tmp_path: Path, search_every: int
) -> None:
    video = _scene_video(tmp_path / "scene.avi", nobody=[*range(0, 12), *range(30, 33)])
    source = FileSource(video)
    stage = SubjectPose(FakePose(), source.size, "coco17", search_every=search_every)
    with source:
        reports = list(Pipeline(source, stage).reports())
    searched = ["detector" in r.timings_ns for r in reports]
    assert searched[:12] == [i % search_every == 0 for i in range(12)]
    assert [r.subject.status for r in reports[:12]] == [NOBODY] * 12
    assert [r.subject.status for r in reports[30:33]] == [LOST] * 3 and all(searched[31:34])  # 30: pose failed
    assert reports[-1].subject.status == TRACKING


def test_a_slow_consumer_still_gets_every_frame_of_a_file(tmp_path: Path) -> None:
    source = FileSource(_scene_video(tmp_path / "scene.avi"), max_frames=8)
    indices = []
    with source:
        for report in Pipeline(source, SubjectPose(FakePose(), source.size, "coco17"), queue_size=1).reports():
            time.sleep(0.15)  # slower than the queues' 0.1 s put timeout: the end marker must wait, not drop
            indices.append(report.subject.frame.index)
    assert indices == list(range(8))


def test_search_every_must_be_positive() -> None:
    with pytest.raises(CpgaitError, match="search_every is 0"):
        SubjectPose(FakePose(), (320, 240), "coco17", search_every=0)


def test_a_failing_stage_stops_the_pipeline_with_its_error(tmp_path: Path) -> None:
    video = _scene_video(tmp_path / "scene.avi")
    source = FileSource(video)
    stage = SubjectPose(FakePose(fail_at=25), source.size, "coco17")
    with source, pytest.raises(RuntimeError, match="pose model crashed"):
        list(Pipeline(source, stage).reports())


def test_record_sequence_keeps_the_walkers_frames(tmp_path: Path) -> None:
    video = _scene_video(tmp_path / "scene.avi", nobody=range(30, 33))
    sequence, summary = record_sequence(str(video), FakePose())
    assert summary.frames == SCENE_FRAMES
    assert sequence.layout == "coco17" and sequence.fps == pytest.approx(15.0) and sequence.image_size == SCENE_SIZE
    assert sequence.num_frames < SCENE_FRAMES  # trimmed to the walker's measured span
    assert (sequence.keypoints[..., 2].max(axis=1) == 0).sum() == 3  # the three frames without anyone
    rows = sequence.frame_index
    assert rows[0] > 0 and np.array_equal(rows, np.arange(rows[0], rows[0] + sequence.num_frames))
    np.testing.assert_allclose(sequence.timestamps, rows / 15.0)  # a file's frame k is at k / fps
    path = sequence.save(tmp_path / "walk.npz")
    loaded = type(sequence).load(path)
    assert loaded.num_frames == sequence.num_frames and np.array_equal(loaded.frame_index, rows)
    np.testing.assert_array_equal(loaded.timestamps, sequence.timestamps)


def test_record_sequence_without_anyone_is_an_error(tmp_path: Path) -> None:
    video = _scene_video(tmp_path / "empty.avi", nobody=range(SCENE_FRAMES))
    with pytest.raises(CpgaitError, match=f"no walking subject found in {SCENE_FRAMES} frames \\({NOBODY}"):
        record_sequence(str(video), FakePose())


class ScriptedStage:
    """A subject stage that follows a script: frame index -> (track id or None, status); the subject's keypoints are
    `_walker`'s, with the head and arms hidden (the legs seen) on OCCLUDED frames."""

    layout = "coco17"

    def __init__(self, script, with_keypoints: tuple[str, ...] = (TRACKING, OCCLUDED)) -> None:
        self.script = script
        self.with_keypoints = with_keypoints  # the statuses whose frames carry the walker's keypoints
        self.counts: Counter[str] = Counter()

    def __call__(self, frame: Frame) -> SubjectFrame:
        track_id, status = self.script(frame.index)
        subject = None if track_id is None else Subject(track_id, (100.0, 100.0, 150.0, 220.0), True, 1.0)
        kp = walker(frame.index) if status in self.with_keypoints else None
        if status == OCCLUDED:
            kp[:11, 2] = 0.0
            kp[:11, :2] = np.nan
        self.counts[status] += 1
        return SubjectFrame(frame, status, subject, kp, self.layout, np.zeros((0, 4)))


def _blank_video(path: Path, frames: int, fps: float = 30.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (64, 48))
    for _ in range(frames):
        writer.write(np.zeros((48, 64, 3), dtype=np.uint8))
    writer.release()
    return path


def _two_walkers(i: int) -> tuple[int | None, str]:
    """Subject 7 walks for frames 0-49 (occluded at 30-34), nobody at 50-54, then subject 8 at 55-89."""
    if i < 50:
        return 7, OCCLUDED if 30 <= i < 35 else TRACKING
    return (None, NOBODY) if i < 55 else (8, TRACKING)


def test_one_subject_leaves_and_another_arrives(tmp_path: Path) -> None:
    """Session bookkeeping at a change of subject: the count, the leaving subject's final estimate on the frame it
    ended, a fresh session (and model clock) for the next one, and one window every `stride` frames of each."""
    contract = contract_for(window=20)
    runner = FakeRunner(contract, [[2.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0]])
    source = FileSource(_blank_video(tmp_path / "blank.avi", 90))
    pipeline = Pipeline(source, ScriptedStage(_two_walkers), GaitSession(contract, runner, stride=5))
    reports = []
    summary = pipeline.run(reports.append)

    # a window when each session has 20 frames, then every 5: OCCLUDED frames count (their legs are seen), and
    # the second subject's session starts from nothing (window 20 of its own frames, at source frame 55 + 19)
    assert [r.subject.frame.index for r in reports if r.window] == [19, 24, 29, 34, 39, 44, 49, 74, 79, 84, 89]
    assert [r.window.frame for r in reports if r.window] == [20, 25, 30, 35, 40, 45, 50, 20, 25, 30, 35]
    assert reports[74].window.time_s == pytest.approx(74 / 30)  # the source's time of the window's last frame
    assert reports[34].estimate.valid_frames == 20  # the occluded frames 30-34 are in the window, and valid
    ended = [(r.subject.frame.index, r.ended) for r in reports if r.ended is not None]
    assert len(ended) == 1 and ended[0][0] == 50  # the first subject's session ended when nobody was left
    first = ended[0][1]
    assert first.state == ESTIMATE and first.windows == 7
    assert first.probabilities == pytest.approx(tuple(reports[49].estimate.probabilities))
    assert first.agreement == pytest.approx(4 / 7)  # windows alternate the runner's two answers: 4 x I, 3 x II
    assert reports[50].estimate.state == NOT_ENOUGH and reports[50].estimate.windows == 0  # reset at once
    assert reports[55].ended is None  # the empty session between the two subjects is not an estimate
    assert [r.estimate.windows for r in reports[55:]][-1] == 4
    assert summary.subjects == 2 and summary.windows == pipeline.windows == 11
    assert summary.estimate.windows == 4 and pipeline.last_estimate == first
    assert summary.statuses == {TRACKING: 80, OCCLUDED: 5, NOBODY: 5}


def test_the_last_finished_session_stands_while_the_next_has_no_window(tmp_path: Path) -> None:
    contract = contract_for(window=20)
    source = FileSource(_blank_video(tmp_path / "blank.avi", 60))
    script = lambda i: (7, TRACKING) if i < 40 else (None, NOBODY)  # noqa: E731
    pipeline = Pipeline(source, ScriptedStage(script), GaitSession(contract, FakeRunner(contract, [[0, 0, 3, 0]])))
    summary = pipeline.run()
    assert summary.subjects == 1 and summary.windows == 5  # stride T / 4 = 5: frames 20, 25, ..., 40
    assert pipeline.session.estimate().windows == 0
    assert summary.estimate is pipeline.last_estimate and summary.estimate.windows == 5
    assert summary.estimate.class_name == "GMFCS III" and summary.estimate.agreement == 1.0


class RecordingSession(GaitSession):
    """A gait session that keeps what each of its pushes reported as classifier time (wall, CPU)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.pushed: list[tuple[int, int]] = []

    def push(self, time_s: float, keypoints: np.ndarray):
        result = super().push(time_s, keypoints)
        self.pushed.append((self.last_timings_ns["classifier"], self.last_timings_ns["classifier_cpu"]))
        return result


def test_a_frames_classifier_time_is_its_windows_and_not_in_its_feature_time(tmp_path: Path) -> None:
    # a 15 fps source for a 30 fps model: two model frames per source frame, and with stride 5 the windows fall on
    # the first of the two as often as on the second, so a frame's time must add up both pushes
    contract = contract_for(window=20)
    session = RecordingSession(contract, SlowRunner(contract, [[1.0, 0.0, 0.0, 0.0]], 0.05), stride=5)
    source = FileSource(_blank_video(tmp_path / "blank.avi", 40, fps=15.0))
    recorded: list[np.ndarray] = []
    reports: list = []
    Pipeline(source, ScriptedStage(lambda i: (7, TRACKING)), session, recorder=recorded.append).run(reports.append)

    windows = [r for r in reports if r.window is not None]
    assert len(windows) >= 8 and len(session.pushed) == 2 * len(reports) - 1  # (the first frame starts the clock)
    assert sum(r.timings_ns["classifier"] for r in reports) == sum(wall for wall, _ in session.pushed)
    assert sum(r.timings_ns["classifier_cpu"] for r in reports) == sum(cpu for _, cpu in session.pushed)
    for r in reports:
        ran = r.window is not None
        assert (r.timings_ns["classifier"] >= 50_000_000) == ran, r.subject.frame.index
        assert r.timings_ns["features"] < 50_000_000 and r.timings_ns["features"] > 0  # the sleep is not in it
    # the recorder sees the raw window of every classified window: T frames of the model's layout
    assert len(recorded) == len(windows) and all(w.shape == (20, 17, 3) for w in recorded)
    assert np.isfinite(recorded[-1][:, 11:, :2]).all()  # the legs of a tracked walker


def test_a_failed_window_is_reported_on_its_frame_only(tmp_path: Path) -> None:
    contract = contract_for(window=20)
    runner = FakeRunner(contract, [[float("nan"), 0.0, 0.0, 0.0]])  # every window: non-finite logits
    source = FileSource(_blank_video(tmp_path / "blank.avi", 40))
    reports: list = []
    Pipeline(source, ScriptedStage(lambda i: (7, TRACKING)), GaitSession(contract, runner, stride=5)).run(
        reports.append
    )
    failed = [r.subject.frame.index for r in reports if r.window_failure is not None]
    assert failed == [19, 24, 29, 34, 39]  # where the windows would have been
    assert all(r.window is None for r in reports)
    assert reports[19].window_failure.startswith("classifier_invalid: classifier returned non-finite logits [nan")


def test_frames_whose_keypoints_are_not_measurements_count_as_missing(tmp_path: Path) -> None:
    # frames 20-39 are TOO_SMALL: the pose model returned keypoints, but on a subject too small to measure
    contract = contract_for(window=20)
    script = lambda i: (7, TOO_SMALL if 20 <= i < 40 else TRACKING)  # noqa: E731
    stage = ScriptedStage(script, with_keypoints=(TRACKING, OCCLUDED, TOO_SMALL))
    source = FileSource(_blank_video(tmp_path / "blank.avi", 60))
    runner = FakeRunner(contract, [[1.0, 0.0, 0.0, 0.0]])
    reports: list = []
    Pipeline(source, stage, GaitSession(contract, runner, stride=5)).run(reports.append)
    # a window needs 80 % of its 20 frames measured: frame 19's, then none until frame 55 (frames 40-55 of 36-55)
    assert [r.subject.frame.index for r in reports if r.window] == [19, 55]
    assert reports[39].estimate.valid_frames == 0


# ---- the whole loop on the real Sports2D clip ------------------------------------------------------------------


def tiny_classifier(path: Path, contract: ModelContract) -> Path:
    """A small ONNX classifier with the contract's inputs and metadata (logits = scalars @ W + input means)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    t, s, c = contract.window, len(contract.series_features), len(contract.scalar_features)
    w = numpy_helper.from_array(np.linspace(-1, 1, c * 4, dtype=np.float32).reshape(c, 4), "w")
    one = numpy_helper.from_array(np.array([1], dtype=np.int64), "one")
    nodes = [
        helper.make_node("MatMul", ["gait_scalars", "w"], ["a"]),
        helper.make_node("ReduceMean", ["skeleton"], ["sk"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("ReduceMean", ["gait_series"], ["gs"], axes=[1, 2], keepdims=0),
        helper.make_node("Add", ["sk", "gs"], ["m"]),
        helper.make_node("Unsqueeze", ["m", "one"], ["m1"]),
        helper.make_node("Add", ["a", "m1"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [
            helper.make_tensor_value_info("skeleton", TensorProto.FLOAT, ["N", 3, t, 17]),
            helper.make_tensor_value_info("gait_series", TensorProto.FLOAT, ["N", s, t]),
            helper.make_tensor_value_info("gait_scalars", TensorProto.FLOAT, ["N", c]),
        ],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", len(contract.class_names)])],
        [w, one],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    helper.set_model_props(model, {METADATA_KEY: contract.to_json()})
    onnx.save(model, str(path))
    return path


WINDOW_EVENT = {
    "type": "object",
    "required": ["type", "time_s", "frame", "probabilities", "class", "confidence", "valid_fraction", "features"],
    "properties": {
        "type": {"const": "window"},
        "time_s": {"type": "number", "minimum": 0},
        "frame": {"type": "integer", "minimum": 1},
        "probabilities": {"type": "object", "additionalProperties": {"type": "number", "minimum": 0, "maximum": 1}},
        "class": {"enum": ["GMFCS I", "GMFCS II", "GMFCS III", "GMFCS IV"]},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "valid_fraction": {"type": "number", "minimum": 0.8, "maximum": 1},
        "features": {
            "type": "object",
            "required": list(SCALAR_NAMES),
            "additionalProperties": {"type": ["number", "null"]},
        },
    },
}


def test_the_walker_is_tracked_on_the_real_clip_with_a_plausible_cadence(tmp_path: Path) -> None:
    contract = ModelContract(
        layout="coco17_feet",
        window=60,
        fps=30.0,
        series_features=SERIES_NAMES,
        scalar_features=SCALAR_NAMES,
        feature_joints=LEGS,
        training_data="a test stand-in",
    )
    model = tiny_classifier(tmp_path / "tiny.onnx", contract)
    events = tmp_path / "events.jsonl"
    tracked: list[np.ndarray] = []
    width, height = 960, 540

    def watch(report, picture) -> None:
        if report.subject.status == TRACKING:
            tracked.append(report.subject.keypoints)
        assert picture is not None and picture.shape == (height, width, 3)

    options = RunOptions(
        source=str(WALK_CLIP),
        model=str(model),
        events=str(events),
        out=str(tmp_path / "overlay.mp4"),
        stride=15,
        max_frames=200,
        record=str(tmp_path / "recorded"),
    )
    summary, _ = run_live(options, on_report=watch)

    # The walker, not the man on the roof (upper left): low in the picture, crossing it right to left.
    assert len(tracked) >= 90, summary.statuses
    hips = np.array([np.nanmean(kp[[23, 24], :2], axis=0) for kp in tracked])  # blazepose33 hips
    assert hips[:, 1].min() > 0.5 * height
    assert hips[:10, 0].mean() - hips[-10:, 0].mean() > 0.5 * width
    assert summary.subjects == 1
    whole_walk = compute_features(np.stack(tracked), "blazepose33", 30.0)
    assert 90 <= whole_walk.scalar("cadence") <= 120  # an adult's comfortable walk, steps/min

    lines = [json.loads(line) for line in events.read_text().splitlines()]
    assert lines[0]["type"] == "start" and lines[-1]["type"] == "summary"
    windows = [e for e in lines if e["type"] == "window"]
    assert len(windows) >= 3
    for event in windows:
        jsonschema.validate(event, WINDOW_EVENT)
        assert sum(event["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    cadences = [e["features"]["cadence"] for e in windows if e["features"]["cadence"] is not None]
    assert 90 <= float(np.median(cadences)) <= 120, cadences  # 2-s windows: a single one may miss a step
    assert lines[-1]["session"]["state"] == ESTIMATE and lines[-1]["synthetic_model"] is True
    assert cv2.VideoCapture(str(tmp_path / "overlay.mp4")).get(cv2.CAP_PROP_FRAME_COUNT) == 200
    recorded = sorted((tmp_path / "recorded").glob("window-*.npz"))  # what a site calibrates INT8 on
    assert len(recorded) == len(windows)
    window = KeypointSequence.load(recorded[-1])
    assert window.keypoints.shape == (60, 21, 3) and window.layout == "coco17_feet" and window.label is None


@pytest.mark.parametrize(
    "change,match",
    [
        ({"model": "missing.onnx"}, "missing.onnx: no such ONNX model file"),
        ({"source": "missing.mp4"}, "missing.mp4: no such video file"),
        ({"events": "exists.jsonl"}, "exists.jsonl: already exists"),
        ({"layout": "body25"}, "keypoints are in layout 'coco17' but the model was trained on 'body25'"),
        ({"pose": "movenet"}, "needs heel and toe points"),
    ],
)
def test_run_refuses_bad_input_before_the_first_frame(tmp_path: Path, change: dict, match: str) -> None:
    layout = change.pop("layout", "coco17_feet")
    contract = ModelContract(
        layout=layout,
        window=60,
        fps=30.0,
        series_features=SERIES_NAMES,
        scalar_features=SCALAR_NAMES,
        feature_joints=LEGS,
        training_data="a test stand-in",
    )
    model = tiny_classifier(tmp_path / "tiny.onnx", contract)
    (tmp_path / "exists.jsonl").write_text("{}\n")
    video = _scene_video(tmp_path / "scene.avi")
    fields = {"source": str(video), "model": str(model), **change}
    for key in ("model", "source", "events"):
        if key in change:
            fields[key] = str(tmp_path / change[key])
    with pytest.raises(CpgaitError, match=match):
        run_live(RunOptions(**fields))


def test_overlay_draws_the_subject_panel_and_synthetic_banner_on_the_frame(tmp_path: Path) -> None:
    video = _scene_video(tmp_path / "scene.avi")
    source = FileSource(video)
    stage = SubjectPose(FakePose(), source.size, "coco17")
    contract = contract_for()
    overlay = Overlay(contract.class_names, synthetic=True)
    with source:
        reports = list(Pipeline(source, stage, GaitSession(contract, FakeRunner(contract, [[0, 1, 0, 0]]))).reports())
    report = next(r for r in reports if r.subject.status == TRACKING)
    before = report.subject.frame.image.copy()
    picture = overlay(report)
    assert picture is report.subject.frame.image  # drawn in place, no copy per frame
    changed = np.any(picture != before, axis=2)
    x0, y0, x1, y1 = keypoint_box(report.subject.keypoints)
    assert changed[int(y0) : int(y1) + 1, int(x0) : int(x1) + 1].any()  # the skeleton
    assert changed[-5:, :].mean() > 0.9 and changed[:30, :100].any()  # the banner and the panel
    assert fit_width(np.zeros((994, 1768, 3), np.uint8)).shape == (720, 1280, 3)


@pytest.mark.parametrize(
    "event,expected",
    [
        ({"type": "window", "x": 1}, None),
        ({"x": 1}, "has no type"),
        ({"type": "window", "x": float("nan")}, "Out of range float values are not JSON compliant"),
    ],
)
def test_event_log_writes_json_lines_and_refuses_to_overwrite(tmp_path: Path, event: dict, expected) -> None:
    log = EventLog(tmp_path / "events.jsonl")
    assert log.writing_to.parent == tmp_path and not (tmp_path / "events.jsonl").exists()  # in place only when done
    if expected is not None:
        with pytest.raises(ValueError, match=expected):
            log.write(event)
        log.close()
        assert (tmp_path / "events.jsonl").read_text() == ""
    else:
        log.write(event)
        log.close()
        assert json.loads((tmp_path / "events.jsonl").read_text()) == event
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.jsonl"]  # no temporary file left
    with pytest.raises(CpgaitError, match="already exists"):
        EventLog(tmp_path / "events.jsonl")


def test_stopping_early_ends_every_stage_and_closes_the_source(tmp_path: Path) -> None:
    video = _scene_video(tmp_path / "scene.avi")
    source = FileSource(video, prefetch=1)
    pipeline = Pipeline(source, SubjectPose(FakePose(), source.size, "coco17"), queue_size=1)
    seen = []
    for report in pipeline.reports():
        seen.append(report.subject.frame.index)
        if len(seen) == 5:
            break  # e.g. the user pressed q
    assert seen == [0, 1, 2, 3, 4]
    assert not any(t.name.startswith("cpgait-") and t.is_alive() for t in threading.enumerate())


def _detection() -> PoseDetection:
    """A BlazePose detection in a tile: body box, face box and its four alignment points."""
    return PoseDetection(
        0.9,
        (10.0, 20.0, 110.0, 220.0),
        (40.0, 20.0, 60.0, 40.0),
        np.array([[60, 120], [60, 20], [60, 60], [60, 10]], dtype=np.float32),
    )


def test_a_detection_found_in_a_tile_moves_to_whole_image_pixels() -> None:
    det = _detection()
    moved = det.shifted(774, 5)
    assert moved.box == (784.0, 25.0, 884.0, 225.0) and moved.face_box == (814.0, 25.0, 834.0, 45.0)
    roi, roi_moved = det.roi(), moved.roi()
    assert (roi_moved.cx - roi.cx, roi_moved.cy - roi.cy) == pytest.approx((774, 5))
    assert roi_moved.size == pytest.approx(roi.size) and roi_moved.rotation == pytest.approx(roi.rotation)


@pytest.mark.parametrize("trouble,status", [("nan", BAD_OUTPUT), ("tiny", TOO_SMALL), ("occluded", OCCLUDED)])
def test_bad_frames_are_counted_and_the_loop_goes_on(tmp_path: Path, trouble: str, status: str) -> None:
    video = _scene_video(tmp_path / "scene.avi")
    source = FileSource(video)
    stage = SubjectPose(FakePose(trouble={20: trouble}), source.size, "coco17")
    reports = list(Pipeline(source, stage).reports())
    assert len(reports) == SCENE_FRAMES
    assert reports[20].subject.status == status and stage.counts[status] == 1
    assert reports[-1].subject.status == TRACKING
    assert (reports[20].subject.keypoints is None) == (status == BAD_OUTPUT)


def test_ctrl_c_ends_the_run_with_a_summary(tmp_path: Path) -> None:
    video = _scene_video(tmp_path / "scene.avi")
    source = FileSource(video)
    pipeline = Pipeline(source, SubjectPose(FakePose(), source.size, "coco17"))

    def interrupt_at_ten(report) -> None:
        if report.subject.frame.index == 10:
            raise KeyboardInterrupt

    summary = pipeline.run(interrupt_at_ten)
    assert summary.frames == 10 and sum(summary.statuses.values()) >= 10
    assert not any(t.name.startswith("cpgait-") and t.is_alive() for t in threading.enumerate())


def test_a_detection_in_a_scaled_tile_moves_back_to_full_resolution_pixels() -> None:
    det = _detection()
    moved = det.shifted(700, 0, scale=0.25)  # found in a tile at x 700 of a frame scaled to a quarter
    assert moved.box == (740.0, 80.0, 1140.0, 880.0) and moved.face_box == (860.0, 80.0, 940.0, 160.0)
    assert moved.roi().size == pytest.approx(4 * det.roi().size)
    with pytest.raises(ValueError, match="scale"):
        det.shifted(0, 0, scale=0)
