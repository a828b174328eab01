"""The session's quality counts and live view, fed with hand-made frame reports."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from cpgait.kiosk import sessions
from cpgait.kiosk.sessions import ENOUGH, NOT_ENOUGH, SEARCHING, TRACKING_STATE, LiveView, Quality
from cpgait.runtime.core.layouts import get_layout
from cpgait.runtime.live.capture import Frame
from cpgait.runtime.live.gait_session import NOT_ENOUGH as SESSION_NOT_ENOUGH
from cpgait.runtime.live.gait_session import SessionEstimate, WindowResult
from cpgait.runtime.live.pipeline import FrameReport
from cpgait.runtime.live.subject import OCCLUDED, TRACKING, SubjectFrame
from cpgait.runtime.live.subject import SEARCHING as SUBJECT_SEARCHING
from cpgait.runtime.live.tracker import Subject

LAYOUT = "coco17"
WIDTH = 640
CLASSES = ("I", "II")


def report(t: float, hip_x: float | None, status: str = TRACKING, track: int | None = 1, window: bool = False):
    image = np.zeros((360, WIDTH, 3), np.uint8)
    frame = Frame(index=int(t * 30), timestamp=t, image=image, captured_ns=time.perf_counter_ns())
    kp = None
    if hip_x is not None:
        kp = np.zeros((get_layout(LAYOUT).num_joints, 3), np.float32)
        kp[:, 0], kp[:, 1], kp[:, 2] = hip_x, 180.0, 0.9
    subject = None if track is None else Subject(track, (hip_x or 1.0, 10.0, (hip_x or 1.0) + 50, 300.0), True, 0.0)
    sf = SubjectFrame(frame, status, subject, kp, LAYOUT, np.zeros((0, 4)))
    w = WindowResult(t, frame.index, (0.3, 0.7), CLASSES, 0.9, {"cadence": 101.0}) if window else None
    est = SessionEstimate(SESSION_NOT_ENOUGH, 0, 10, 124, CLASSES)
    return FrameReport(sf, w, est), image


def test_quality_counts_direction_changes_of_the_walker() -> None:
    q = Quality()
    t = 0.0
    for x in [100 + 100 * i for i in range(4)] + [400 - 100 * i for i in range(1, 4)]:  # right, then back left
        for _ in range(2):  # two frames per 0.5 s step
            q.push(report(t, float(x))[0])
            t += 0.25
    q.push(report(t, None, status=OCCLUDED)[0])
    q.push(report(t + 0.1, None, status=SUBJECT_SEARCHING, track=None)[0])
    counts = q.to_json()
    assert counts["direction_changes"] == 1
    assert counts["frames"] == 16 and counts["tracked"] == 14 and counts["occluded"] == 1 and counts["walkers"] == 1


def test_standing_still_is_no_direction_change() -> None:
    q = Quality()
    for i in range(40):
        q.push(report(i * 0.1, 300.0 + (3 if i % 2 else -3))[0])  # jitter of a few pixels
    assert q.to_json()["direction_changes"] == 0


def test_live_view_states_and_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sessions, "STREAM_MAX_FPS", 1000.0)
    view = LiveView(target_windows=2)
    r, picture = report(0.0, None, status=SUBJECT_SEARCHING, track=None)
    view.publish(r, picture, windows=0)
    assert view.state().state == SEARCHING
    r, picture = report(0.1, 200.0)
    view.publish(r, picture, windows=0)
    assert view.state().state == TRACKING_STATE
    r, picture = report(0.2, 210.0, window=True)
    view.publish(r, picture, windows=1)
    s = view.state()
    assert s.state == NOT_ENOUGH and s.numbers["cadence"] == 101.0 and (s.valid_frames, s.frames_needed) == (10, 124)
    seq, jpeg = view.next_jpeg(0)
    assert seq == 3 and jpeg is not None
    assert cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR).shape == (360, WIDTH, 3)
    assert view.next_jpeg(seq, timeout=0.05) == (seq, None)  # nothing newer yet
    view.publish(*report(0.3, 220.0), windows=2)
    assert view.state().state == ENOUGH
    view.end("finished")
    s = view.state()
    assert s.ended and s.outcome == "finished"


def test_the_stream_is_capped() -> None:
    view = LiveView(target_windows=1)
    seq, pictures, t0 = 0, 0, time.perf_counter()
    while time.perf_counter() - t0 < 0.5:
        view.publish(*report(0.0, 100.0), windows=0)
        seq, jpeg = view.next_jpeg(seq, timeout=0.1)
        pictures += jpeg is not None
    assert pictures <= 0.5 * sessions.STREAM_MAX_FPS + 1
