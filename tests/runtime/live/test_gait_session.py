"""The gait session: not enough walking until a full valid window, windows every stride, the aggregated estimate,
and refusals of what does not fit the contract."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from session_fakes import FakeRunner, SlowRunner, contract_for, walker

from cpgait.errors import CpgaitError
from cpgait.runtime.live.gait_session import ESTIMATE, NOT_ENOUGH, GaitSession, SessionEstimate, WindowResult


def test_session_says_not_enough_walking_until_a_full_valid_window() -> None:
    contract = contract_for(window=60)
    session = GaitSession(contract, FakeRunner(contract, [[2.0, 1.0, 0.0, 0.0]]), stride=10)
    results = [session.push(k / 30, walker(k)) for k in range(59)]
    assert all(r is None for r in results)
    assert session.estimate().state == NOT_ENOUGH and session.estimate().valid_frames == 59
    first = session.push(59 / 30, walker(59))
    assert first is not None and first.class_name == "GMFCS I" and first.frame == 60
    assert sum(first.probabilities) == pytest.approx(1.0)
    # the window's gait scalars: 1 Hz strides = 120 steps/min; the hips move 250 px/s with legs 200 px long
    assert first.features["cadence"] == pytest.approx(120.0, rel=0.02)
    assert first.features["speed"] == pytest.approx(1.25, rel=0.02)
    results = [session.push(k / 30, walker(k)) for k in range(60, 90)]
    assert [r is not None for r in results].count(True) == 3  # every 10 frames
    assert np.array_equal(session.window_keypoints(), np.stack([walker(k) for k in range(30, 90)]))


def test_session_estimate_is_the_mean_probability_discounted_by_disagreement() -> None:
    contract = contract_for(window=60)
    logits = [[3.0, 0.0, 0.0, 0.0], [3.0, 0.0, 0.0, 0.0], [0.0, 3.0, 0.0, 0.0]]
    session = GaitSession(contract, FakeRunner(contract, logits), stride=5)
    windows = [w for k in range(70) if (w := session.push(k / 30, walker(k))) is not None]
    assert len(windows) == 3
    est = session.estimate()
    mean = np.mean([w.probabilities for w in windows], axis=0)
    assert est.state == ESTIMATE and est.class_name == "GMFCS I"
    assert est.probabilities == pytest.approx(tuple(mean))
    assert est.agreement == pytest.approx(2 / 3)
    assert est.confidence == pytest.approx(mean.max() * 2 / 3)
    session.reset()
    assert session.estimate().state == NOT_ENOUGH and session.window_count == 0


def test_frames_without_the_legs_do_not_make_a_window() -> None:
    contract = contract_for(window=60)
    session = GaitSession(contract, FakeRunner(contract, [[0, 0, 0, 1.0]]), stride=1)
    for k in range(100):
        kp = walker(k)
        if k % 3 == 0:  # a third of the frames lose the ankles: below the 80 % valid share
            kp[15:17, 2] = 0.0
        assert session.push(k / 30, kp) is None
    assert session.estimate().state == NOT_ENOUGH


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda c: GaitSession(c, FakeRunner(c, [[0, 0, 0, 0]], names=("skeleton",))), "do not match"),
        (lambda c: GaitSession(c, FakeRunner(c, [[0, 0, 0, 0]]), stride=0), "stride"),
        (lambda c: GaitSession(c, FakeRunner(c, [[0, 0, 0, 0]])).push(0.0, np.zeros((21, 3))), "shape"),
        (lambda c: GaitSession(c, FakeRunner(c, [[0, 0, 0, 0]]), min_valid_fraction=0), "valid fraction"),
        (
            lambda c: GaitSession(c, FakeRunner(c, [[0, 0, 0, 0]]), min_valid_fraction=1.5),
            r"^minimum valid fraction 1.5; expected in \(0, 1\]$",
        ),
        (
            lambda c: GaitSession(replace(c, feature_joints=("left_hip", "tail")), FakeRunner(c, [[0, 0, 0, 0]])),
            r"^model: contract field feature_joints names \['tail'\], not joints of coco17$",
        ),
        (
            lambda c: GaitSession(replace(c, scalar_features=("cadence", "wingspan", "tail")), FakeRunner(c, [[0]])),
            r"^model: contract field scalar_features names 'wingspan', 'tail', which this runtime does not compute; "
            r"expected one of its \d+ clinical or per-joint scalar names",
        ),
        (
            lambda c: GaitSession(c, FakeRunner(replace(c, window=30), [[0, 0, 0, 0]])),
            r"^model: the graph's input 'skeleton' has shape \(N, 3, 30, 17\) but contract field window implies "
            r"\(N, 3, 60, 17\)$",
        ),
        (
            lambda c: GaitSession(c, FakeRunner(replace(c, series_features=c.series_features[1:]), [[0, 0, 0, 0]])),
            r"^model: the graph's input 'gait_series' has shape \(N, \d+, 60\) but contract field window / "
            r"series_features implies \(N, \d+, 60\)$",
        ),
        (
            lambda c: GaitSession(c, FakeRunner(replace(c, scalar_features=c.scalar_features[1:]), [[0, 0, 0, 0]])),
            r"^model: the graph's input 'gait_scalars' has shape \(N, \d+\) but contract field scalar_features "
            r"implies \(N, \d+\)$",
        ),
        (
            lambda c: GaitSession(c, FakeRunner(c, [[0, 0, 0, 0]]), where="kiosk.onnx").push(0.0, np.ones(3)),
            r"^session frame has shape \(3,\); the model's layout coco17 needs \(17, 3\)$",
        ),
    ],
)
def test_session_rejects_what_does_not_fit_thecontract_for(make, match: str) -> None:
    with pytest.raises(CpgaitError, match=match):
        make(contract_for())


def test_a_session_accepts_every_frame_valid_as_its_minimum() -> None:
    contract = contract_for(window=20)
    session = GaitSession(contract, FakeRunner(contract, [[1.0, 0, 0, 0]]), stride=5, min_valid_fraction=1.0)
    windows = [w for k in range(30) if (w := session.push(k / 30, walker(k))) is not None]
    assert [w.frame for w in windows] == [20, 25, 30] and windows[0].valid_fraction == 1.0


def test_a_push_reports_its_feature_and_classifier_times() -> None:
    contract = contract_for(window=20)
    session = GaitSession(contract, SlowRunner(contract, [[1.0, 0, 0, 0]], 0.03), stride=5)
    for k in range(19):
        session.push(k / 30, walker(k))
    quiet = dict(session.last_timings_ns)
    assert quiet["classifier"] == 0 and quiet["classifier_cpu"] == 0 and 0 < quiet["features"] < 30_000_000
    window = session.push(19 / 30, walker(19))
    timed = session.last_timings_ns
    assert window is not None and timed["classifier"] >= 30_000_000  # the sleep, in wall time
    assert 0 < timed["classifier_cpu"] < timed["classifier"] and 0 < timed["features"] < 30_000_000
    # window scalars go out rounded to 4 decimals, and the window's frame count is the session's
    assert all(v is None or v == round(v, 4) for v in window.features.values()) and window.frame == 20
    assert session.estimate().frames_needed == 20 and session.estimate().windows == 1


NAMES = ("GMFCS I", "GMFCS II", "GMFCS III", "GMFCS IV")


def test_a_window_result_as_an_event_line() -> None:
    window = WindowResult(1.234567, 62, (0.1234567, 0.2, 0.3, 0.3765433), NAMES, 0.987654, {"cadence": 101.2})
    assert window.to_json() == {
        "type": "window",
        "time_s": 1.2346,
        "frame": 62,
        "probabilities": {"GMFCS I": 0.12346, "GMFCS II": 0.2, "GMFCS III": 0.3, "GMFCS IV": 0.37654},
        "class": "GMFCS IV",
        "confidence": 0.37654,
        "valid_fraction": 0.9877,
        "features": {"cadence": 101.2},
    }
    with pytest.raises(ValueError, match=r"window probabilities \(0.5, 0.6, 0.0, 0.0\) are not a distribution"):
        WindowResult(1.0, 1, (0.5, 0.6, 0.0, 0.0), NAMES, 1.0)


def test_a_session_estimate_as_an_event_line() -> None:
    probabilities = (0.6123456, 0.2, 0.1876544, 0.0)
    estimate = SessionEstimate(ESTIMATE, 3, 58, 60, NAMES, probabilities, 2 / 3, (("no_leg_seen", 2),))
    assert estimate.to_json() == {
        "type": "session",
        "state": "estimate",
        "windows": 3,
        "valid_frames": 58,
        "frames_needed": 60,
        "probabilities": {"GMFCS I": 0.61235, "GMFCS II": 0.2, "GMFCS III": 0.18765, "GMFCS IV": 0.0},
        "class": "GMFCS I",
        "confidence": round(0.6123456 * 2 / 3, 5),
        "agreement": 0.6667,
        "window_failures": {"no_leg_seen": 2},
    }
    waiting = SessionEstimate(NOT_ENOUGH, 0, 12, 60, NAMES).to_json()
    assert waiting == {
        "type": "session",
        "state": "not enough walking yet",
        "windows": 0,
        "valid_frames": 12,
        "frames_needed": 60,
        "probabilities": None,
        "class": None,
        "confidence": None,
        "agreement": None,
        "window_failures": {},
    }
