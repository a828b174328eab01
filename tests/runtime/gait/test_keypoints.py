"""Keypoint cleaning's walking direction: the hips' travel when it is long enough, else the face, then the feet."""

from __future__ import annotations

import numpy as np
import pytest

from cpgait.runtime.gait.keypoints import (
    EAR_L,
    EAR_R,
    HEEL_L,
    HEEL_R,
    MIN_TRAVERSE_LEG,
    NOSE,
    TOE_L,
    TOE_R,
    walking_direction,
)

FRAMES, LEG = 11, 100.0  # 10 frame steps, a 100-px leg: the hips must travel 25 px to be trusted


def scene(face: int | None = None, left_foot: int | None = None, right_foot: int | None = None) -> np.ndarray:
    """`[T, 21, 2]` points (coco17_feet), NaN where unseen. `face` (+1 / -1): the nose 10 px ahead of the ears in
    +x / -x, one ear seen in the first half, none in the second (where only the nose is seen, far to the right).
    `left_foot` / `right_foot` (+1 / -1): that foot's toe 10 px ahead of its heel; each point's y is chosen so
    that mixing x and y up gives the other sign."""
    xy = np.full((FRAMES, 21, 2), np.nan)
    if face is not None:
        xy[:5, EAR_L, 0] = 100.0
        xy[:, NOSE, 0] = 100.0 + 10.0 * face
        xy[5:, NOSE, 0] = 900.0  # frames without an ear: no cue there
    for foot, (toe, heel) in ((left_foot, (TOE_L, HEEL_L)), (right_foot, (TOE_R, HEEL_R))):
        if foot is not None:
            xy[:, heel] = (100.0, 100.0 + 60.0 * foot)
            xy[:, toe] = (100.0 + 10.0 * foot, 100.0 - 200.0 * foot)
    return xy


def test_the_hips_travel_decides_from_a_quarter_leg_on() -> None:
    enough = MIN_TRAVERSE_LEG * LEG / (FRAMES - 1)  # px per frame at exactly the threshold
    backwards_facing = scene(face=-1)
    assert walking_direction(enough, FRAMES, LEG, backwards_facing, feet=False) == 1
    assert walking_direction(-enough, FRAMES, LEG, scene(face=1), feet=False) == -1
    # just short of the threshold (and with one frame step more it would pass): the face decides
    short = MIN_TRAVERSE_LEG * LEG / FRAMES
    assert walking_direction(short, FRAMES, LEG, backwards_facing, feet=False) == -1
    assert walking_direction(float("nan"), FRAMES, LEG, backwards_facing, feet=False) == -1


@pytest.mark.parametrize(
    "points,feet,expected",
    [
        (scene(face=-1), False, -1),  # the nose behind the ears (seen with one ear), over the frames with ears only
        (scene(face=1), False, 1),
        (scene(face=-1, left_foot=1), True, -1),  # the face comes first
        (scene(left_foot=-1, right_foot=1), True, -1),  # no face: the left foot, then
        (scene(right_foot=-1), True, -1),  # the right foot
        (scene(left_foot=1), False, 1),  # feet not asked for: nothing tells, +1
        (scene(right_foot=-1), False, 1),
        (scene(), True, 1),
    ],
)
def test_without_enough_travel_the_face_then_the_feet_decide(points: np.ndarray, feet: bool, expected: int) -> None:
    assert walking_direction(0.0, FRAMES, LEG, points, feet=feet) == expected


def test_a_cue_of_exactly_zero_tells_nothing_and_a_small_positive_one_tells() -> None:
    level = scene(left_foot=-1)
    level[:, NOSE, 0], level[:, EAR_R, 0] = 100.0, 100.0  # nose level with the ear: mean 0, the feet decide
    assert walking_direction(0.0, FRAMES, LEG, level, feet=True) == -1
    ahead = scene(left_foot=-1)
    ahead[:, NOSE, 0], ahead[:, EAR_R, 0] = 100.5, 100.0  # half a pixel ahead: the face decides, +1
    assert walking_direction(0.0, FRAMES, LEG, ahead, feet=True) == 1
    one = scene(left_foot=-1)
    one[:, NOSE, 0], one[:, EAR_R, 0] = 101.0, 100.0  # a mean of exactly 1 px is a cue like any other
    assert walking_direction(0.0, FRAMES, LEG, one, feet=True) == 1
