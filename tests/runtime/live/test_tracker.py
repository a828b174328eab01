"""Subject selection: the walker is chosen over people standing or jumping on the spot, kept, and forgotten."""

from __future__ import annotations

import numpy as np
import pytest

from cpgait.errors import CpgaitError
from cpgait.runtime.live.subject import tiles
from cpgait.runtime.live.tracker import SubjectTracker, TrackerConfig

SIZE = (1280, 720)
FPS = 30.0


def _box(cx: float, cy: float, h: float) -> list[float]:
    return [cx - 0.2 * h, cy - h / 2, cx + 0.2 * h, cy + h / 2]


def _scene(t: float, rng: np.random.Generator) -> dict[str, list[float]]:
    """A man jumping on a roof (upper left, bigger jitter, no travel) and a child walking right to left."""
    jump = 40 * abs(np.sin(2 * np.pi * 1.5 * t))
    return {
        "roof": _box(250 + rng.normal(0, 6), 200 - jump + rng.normal(0, 4), 260 + rng.normal(0, 8)),
        "walker": _box(1100 - 0.6 * 320 * t + rng.normal(0, 3), 520 + rng.normal(0, 3), 320),
    }


def _run(tracker: SubjectTracker, seconds: float, start: float = 0.0, who=("roof", "walker"), seed: int = 0):
    rng = np.random.default_rng(seed)
    subjects = []
    for k in range(int(seconds * FPS)):
        t = start + k / FPS
        scene = _scene(t, rng)
        subjects.append(tracker.update(t, np.array([scene[w] for w in who])))
    return subjects


def test_the_walker_is_chosen_not_the_man_jumping_on_the_roof() -> None:
    tracker = SubjectTracker(SIZE)
    subjects = _run(tracker, 2.0)
    chosen = [s for s in subjects if s is not None]
    assert chosen, "nobody was chosen"
    ids = {s.track_id for s in chosen}
    assert len(ids) == 1  # identity kept across frames
    last = chosen[-1]
    assert (last.box[0] + last.box[2]) / 2 > 500 and last.box[1] > 300  # the walker's place, not the roof
    assert last.speed == pytest.approx(-0.6, abs=0.1)  # body heights per second, right to left
    assert subjects[0] is None  # a single sighting is no evidence of walking


def test_people_who_do_not_travel_are_never_chosen() -> None:
    tracker = SubjectTracker(SIZE)
    assert all(s is None for s in _run(tracker, 3.0, who=("roof",)))


def test_a_walker_too_small_for_gait_analysis_is_ignored() -> None:
    tracker = SubjectTracker(SIZE, TrackerConfig(min_height_frac=0.5))  # 320 px < half of 720
    assert all(s is None for s in _run(tracker, 2.0, who=("walker",)))


def test_the_subject_survives_a_short_gap_and_is_forgotten_after_a_long_one() -> None:
    tracker = SubjectTracker(SIZE, TrackerConfig(forget_after_s=1.0))
    first = [s for s in _run(tracker, 1.5) if s is not None][-1]
    # 0.5 s unseen (occluded by a pillar): kept, marked unseen
    during = _run(tracker, 0.5, start=1.5, who=())
    assert all(s is not None and s.track_id == first.track_id and not s.seen for s in during)
    back = _run(tracker, 0.3, start=2.0)  # reappears where walking would have taken it
    assert back[-1] is not None and back[-1].track_id == first.track_id and back[-1].seen
    gone = _run(tracker, 1.2, start=2.3, who=())
    assert gone[-1] is None  # gone for longer than forget_after_s: reset
    assert tracker.tracks == []


def test_follow_updates_the_subject_without_association() -> None:
    tracker = SubjectTracker(SIZE)
    subject = [s for s in _run(tracker, 1.5) if s is not None][-1]
    moved = tracker.follow(1.6, [100.0, 200.0, 228.0, 520.0])
    assert moved.track_id == subject.track_id and moved.box == (100.0, 200.0, 228.0, 520.0)


def test_update_names_the_subjects_box_and_miss_makes_it_unseen() -> None:
    tracker = SubjectTracker(SIZE)
    subject = _run(tracker, 2.0, who=("walker",))[-1]
    assert subject is not None and subject.seen and subject.detection == 0
    scene = _scene(2.0, np.random.default_rng(1))
    matched = tracker.update(2.0, np.array([scene["roof"], scene["walker"]]))
    assert matched.track_id == subject.track_id and matched.detection == 1  # the walker's is the second box
    missed = tracker.miss(2.0)  # its pose could not be measured after all
    assert not missed.seen and missed.detection is None and missed.track_id == subject.track_id
    t = 2.0 + 1 / FPS
    found = tracker.update(t, np.array([_scene(t, np.random.default_rng(2))["walker"]]))
    assert found.seen and found.track_id == subject.track_id  # found again, same person


def test_invalid_boxes_are_ignored() -> None:
    tracker = SubjectTracker(SIZE)
    tracker.update(0.0, np.array([[np.nan, 0, 10, 10], [5, 5, 5, 50], [0, 0, 40, 100]]))
    assert len(tracker.tracks) == 1 and tracker.tracks[0].box.tolist() == [0, 0, 40, 100]


@pytest.mark.parametrize(
    "kwargs,expected",
    [
        ({}, None),
        ({"history_s": 0.2, "min_history_s": 0.4}, r"history 0\.4\.\.0\.2 s"),
        ({"forget_after_s": 0}, "forget after 0 s"),
        ({"min_walk_speed": -1}, "walk speed/distance must be >= 0"),
        ({"min_height_frac": 1.0}, r"min height a fraction in \[0, 1\)"),
        ({"max_match_distance": 0}, "match distance 0; expected > 0"),
        ({"min_samples": 2}, "min samples 2; expected >= 3"),
    ],
)
def test_tracker_settings_are_checked(kwargs: dict, expected: str | None) -> None:
    if expected is None:
        assert TrackerConfig(**kwargs).forget_after_s > 0
        return
    with pytest.raises(CpgaitError, match=expected):
        TrackerConfig(**kwargs)


def test_tracker_rejects_an_empty_image_size() -> None:
    with pytest.raises(CpgaitError, match="image size"):
        SubjectTracker((0, 720))


@pytest.mark.parametrize(
    "size,expected",
    [
        ((640, 480), [(0, 0, 640)]),  # 4:3: the whole image
        ((1768, 994), [(0, 0, 994), (774, 0, 994)]),  # the Sports2D clip: two tiles sharing 220 px
        ((3840, 1080), [(0, 0, 1080), (690, 0, 1080), (1380, 0, 1080), (2070, 0, 1080), (2760, 0, 1080)]),
        ((720, 1280), [(0, 0, 720), (0, 560, 720)]),  # portrait camera
    ],
)
def test_wide_frames_are_searched_in_overlapping_square_tiles(size: tuple[int, int], expected: list) -> None:
    got = tiles(*size)
    assert got == expected
    side = got[0][2]
    long = max(size)
    starts = [x + y for x, y, _ in got]
    assert starts[0] == 0 and starts[-1] + side == long if len(got) > 1 else side == long
    assert all(side - (b - a) >= 0.2 * side for a, b in zip(starts, starts[1:]))  # every overlap is wide enough
