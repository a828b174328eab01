"""Every pose option of `cpgait pose` / `cpgait run` on the committed 200-frame walk (tests/data/walk.mp4, no
network): the walker is tracked across the picture and the cadence of the whole walk is an adult's comfortable
90-120 steps/min (issue 15's acceptance). The full BlazePose model is checked the same way, end to end through
`cpgait run`, in tests/runtime/live/test_pipeline.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cpgait.runtime.app.record import record_sequence
from cpgait.runtime.core.layouts import get_layout
from cpgait.runtime.gait.features import compute_features
from cpgait.runtime.pose.catalog import load_pose_model

WALK_CLIP = Path(__file__).resolve().parents[2] / "data" / "walk.mp4"  # see NOTICE


@pytest.mark.parametrize(
    "pose",
    [
        "movenet",
        pytest.param(
            "blazepose-lite",
            marks=pytest.mark.xfail(
                strict=True,
                reason="the lite landmark model misses steps: 84 steps/min on this clip where the full model "
                "measures 98 (README, Performance: it fails the gait check and is not an accepted option)",
            ),
        ),
    ],
)
def test_each_pose_option_tracks_the_walker_with_a_plausible_cadence(pose: str) -> None:
    sequence, summary = record_sequence(str(WALK_CLIP), load_pose_model(pose, "ort-cpu", threads=1))
    width, height = sequence.image_size
    joints = get_layout(sequence.layout).joints
    hips = np.nanmean(sequence.keypoints[:, [joints.index("left_hip"), joints.index("right_hip")], :2], axis=1)
    assert sequence.num_frames >= 90, summary.statuses
    assert np.nanmin(hips[:, 1]) > 0.5 * height  # the walker low in the picture, not the man on the roof
    assert np.nanmean(hips[:10, 0]) - np.nanmean(hips[-10:, 0]) > 0.5 * width  # crossing it right to left
    assert summary.subjects == 1
    cadence = compute_features(sequence.keypoints, sequence.layout, sequence.fps).scalar("cadence")
    assert 90 <= cadence <= 120, cadence
