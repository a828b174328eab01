"""The ONNX pose pipelines on a real still (OpenCV's messi5.jpg) against MediaPipe's own landmarks.

tests/data/messi5_mediapipe_pose.json was made by scripts/make_pose_reference.py with mediapipe 0.10.21
(`mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1)`); the file records versions and options.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from cpgait.errors import CpgaitError
from cpgait.runtime.backends.ort_runner import OnnxRuntimeRunner
from cpgait.runtime.core.layouts import to_coco17
from cpgait.runtime.pose.blazepose import BlazePose, alignment_roi, refine_from_heatmap, ssd_anchors, weighted_nms
from cpgait.runtime.pose.catalog import load_pose_model
from cpgait.runtime.pose.interface import PoseResult, Roi, asset
from cpgait.runtime.pose.movenet import MoveNet

DATA = Path(__file__).resolve().parents[2] / "data"


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return cv2.imread(str(DATA / "messi5.jpg"))


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    """MediaPipe's 33 landmarks: x, y (pixels), visibility."""
    rows = np.array(json.loads((DATA / "messi5_mediapipe_pose.json").read_text())["landmarks"], dtype=np.float32)
    return rows[:, [0, 1, 3]]


@pytest.fixture(scope="module")
def blazepose() -> BlazePose:
    return BlazePose(OnnxRuntimeRunner, tracking=False)


@pytest.fixture(scope="module")
def movenet() -> MoveNet:
    return MoveNet(OnnxRuntimeRunner, tracking=False)


def test_detector_anchor_config_gives_2254_anchors() -> None:
    anchors = ssd_anchors()
    assert anchors.shape == (2254, 2)
    assert anchors.min() > 0 and anchors.max() < 1


def test_weighted_nms_on_hand_worked_boxes() -> None:
    """A (0.9) overlaps B (IoU 90 / 110) and D (IoU 50 / 150 = 0.33 > 0.3, only with the intersection taken out
    of the union); C (0.8) overlaps nobody. A's cluster {A, D, B} becomes the score-weighted mean box and point
    (weights 0.9, 0.7, 0.6 over 2.2) and keeps A's score; C stays as it is."""
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [5, 0, 15, 10]], dtype=np.float64)
    scores = np.array([0.9, 0.6, 0.8, 0.7])
    points = np.array([[[5, 5]], [[6, 5]], [[25, 25]], [[10, 5]]], dtype=np.float64)
    kept = weighted_nms(boxes, scores, points, 0.3)
    assert [score for score, _, _ in kept] == [0.9, 0.8]
    np.testing.assert_allclose(kept[0][1], [4.1 / 2.2, 0.0, 26.1 / 2.2, 10.0])
    np.testing.assert_allclose(kept[0][2], [[15.1 / 2.2, 5.0]])
    np.testing.assert_allclose(kept[1][1], boxes[2])
    np.testing.assert_allclose(kept[1][2], points[2])


def test_weighted_nms_merges_only_above_the_threshold() -> None:
    """Q inside P: IoU exactly 30 / 100 = 0.3 is not "more than" 0.3, so both stay; at 0.29 they merge."""
    boxes = np.array([[0, 0, 10, 10], [0, 0, 3, 10]], dtype=np.float64)
    points = np.zeros((2, 4, 2))
    assert [s for s, _, _ in weighted_nms(boxes, np.array([0.5, 0.9]), points, 0.3)] == [0.9, 0.5]
    (score, box, _), *rest = weighted_nms(boxes, np.array([0.5, 0.9]), points, 0.29)
    assert not rest and score == 0.9
    np.testing.assert_allclose(box, [0, 0, (10 * 0.5 + 3 * 0.9) / 1.4, 10])


def test_weighted_nms_keeps_an_empty_top_box_alone() -> None:
    boxes = np.array([[5, 5, 5, 5], [0, 0, 10, 10]], dtype=np.float64)  # the best box has no area
    kept = weighted_nms(boxes, np.array([0.9, 0.8]), np.zeros((2, 4, 2)), 0.3)
    assert [s for s, _, _ in kept] == [0.9, 0.8]
    np.testing.assert_allclose(kept[0][1], boxes[0])


def test_blazepose_matches_mediapipe(blazepose: BlazePose, image: np.ndarray, reference: np.ndarray) -> None:
    result = blazepose(image)
    assert result is not None and result.layout == "blazepose33" and result.keypoints.shape == (33, 3)
    error = np.linalg.norm(result.keypoints[:, :2] - reference[:, :2], axis=1)
    assert error.mean() <= 5.0  # measured 0.92 px (median 0.5, worst 5.5 px at the right heel); the image is 548x342
    assert np.abs(result.keypoints[:, 2] - reference[:, 2]).max() < 0.1  # visibility; measured 0.042
    assert result.score > 0.9


def test_detector_finds_the_player(blazepose: BlazePose, image: np.ndarray, reference: np.ndarray) -> None:
    detections = blazepose.detect(image)
    assert len(detections) == 1 and detections[0].score > 0.9  # measured 0.945 (the detector keeps >= 0.5)
    hip_centre = reference[[23, 24], :2].mean(axis=0)
    assert np.linalg.norm(detections[0].keypoints[0] - hip_centre) < 15  # detector's mid-hip vs MediaPipe's hips
    x0, y0, x1, y1 = detections[0].box
    assert x0 < reference[:, 0].mean() < x1 and y0 < reference[:, 1].mean() < y1


def test_movenet_finds_the_same_person(movenet: MoveNet, image: np.ndarray, reference: np.ndarray) -> None:
    result = movenet(image)
    assert result is not None and result.layout == "coco17" and result.keypoints.shape == (17, 3)
    ref17, _ = to_coco17(reference, "blazepose33", keep_feet=False)
    # Two different models with different joint definitions (COCO vs BlazePose hips, ears, ankles): measured mean
    # 10.2 px over the 17 joints (about 3 % of the 390-px diagonal of the player's box); 20 px leaves twice that.
    assert np.linalg.norm(result.keypoints[:, :2] - ref17[:, :2], axis=1).mean() < 20
    x0, y0 = reference[:, :2].min(axis=0) - 25
    x1, y1 = reference[:, :2].max(axis=0) + 25
    assert ((result.keypoints[:, 0] > x0) & (result.keypoints[:, 0] < x1)).all()
    assert ((result.keypoints[:, 1] > y0) & (result.keypoints[:, 1] < y1)).all()


def test_blazepose_tracks_with_landmarks_and_resets(image: np.ndarray) -> None:
    pose = BlazePose(OnnxRuntimeRunner, tracking=True)
    first = pose(image)
    assert pose.last_used_detector and pose.last_timings_ms["detector"] > 0
    second = pose(image)  # region from the first call's landmarks: no detector
    assert not pose.last_used_detector and pose.last_timings_ms["detector"] == 0
    assert first is not None and second is not None
    assert np.linalg.norm(first.keypoints[:, :2] - second.keypoints[:, :2], axis=1).mean() < 5
    assert set(pose.last_timings_ms) == {"preprocess", "detector", "landmarks", "postprocess"}
    pose.reset()
    pose(image)
    assert pose.last_used_detector


@pytest.mark.parametrize("value", [0, 128, 255])
@pytest.mark.parametrize("model", ["blazepose", "movenet"])
def test_blank_image_gives_none(model: str, value: int, blazepose: BlazePose, movenet: MoveNet) -> None:
    pose = blazepose if model == "blazepose" else movenet
    assert pose(np.full((342, 548, 3), value, np.uint8)) is None


@pytest.mark.parametrize(
    "bad, expected",
    [
        (np.zeros((100, 100), np.uint8), r"uint8 \(100, 100\); expected a BGR uint8 image"),  # grey
        (np.zeros((100, 100, 4), np.uint8), r"uint8 \(100, 100, 4\); expected a BGR"),  # BGRA
        (np.zeros((100, 100, 3), np.float32), r"float32 \(100, 100, 3\); expected a BGR"),  # float
        (np.zeros((1, 100, 3), np.uint8), "image of 100x1 pixels is too small"),  # one row
        ([[0, 0, 0]], "pose input: list ; expected a BGR uint8 image"),  # not an array
    ],
)
def test_a_bad_image_is_a_callers_bug_not_a_user_error(
    bad: object, expected: str, blazepose: BlazePose, movenet: MoveNet
) -> None:
    for pose in (blazepose, movenet):
        with pytest.raises(ValueError, match=expected) as info:
            pose(bad)
        assert not isinstance(info.value, CpgaitError)


@pytest.mark.parametrize("rotation", [0.0, 0.7, -2.5])
def test_roi_crop_and_back_projection_agree(rotation: float) -> None:
    canvas = np.zeros((300, 400, 3), np.uint8)
    cv2.circle(canvas, (250, 120), 4, (255, 255, 255), -1)
    roi = Roi(230.0, 140.0, 120.0, rotation)
    crop = roi.crop(canvas, 256)
    ys, xs = np.nonzero(crop[:, :, 0] > 128)
    back = roi.to_image(np.array([[xs.mean(), ys.mean()]]), 256)[0]
    assert np.linalg.norm(back - (250, 120)) < 1.0


@pytest.mark.parametrize(
    "keypoints, layout, score, box, expected",
    [
        (np.zeros((33, 3), np.float32), "blazepose33", 0.5, (0, 0, 1, 1), None),
        (np.zeros((17, 3), np.float32), "blazepose33", 0.5, (0, 0, 1, 1), r"float32 \(17, 3\); expected float32 \(33"),
        (np.zeros((33, 3), np.float64), "blazepose33", 0.5, (0, 0, 1, 1), r"float64 \(33, 3\); expected float32"),
        (np.full((17, 3), np.nan, np.float32), "coco17", 0.5, (0, 0, 1, 1), "keypoints must be finite"),
        (np.full((17, 3), 2, np.float32), "coco17", 0.5, (0, 0, 1, 1), r"confidences must lie in \[0, 1\]"),
        (np.zeros((17, 3), np.float32), "coco17", 1.5, (0, 0, 1, 1), r"score 1\.5; expected a value in \[0, 1\]"),
        (np.zeros((17, 3), np.float32), "coco17", 0.5, (2, 0, 1, 1), r"box \(2, 0, 1, 1\); expected finite x0 <= x1"),
        (np.zeros((17, 3), np.float32), "nolayout", 0.5, (0, 0, 1, 1), "unknown skeleton layout 'nolayout'"),
    ],
)
def test_pose_result_is_validated(keypoints, layout, score, box, expected) -> None:
    if expected is None:
        assert PoseResult(keypoints, layout, score, box).layout == layout
    else:
        error = CpgaitError if "layout" in expected else ValueError  # PoseOutputError is a ValueError
        with pytest.raises(error, match=expected):
            PoseResult(keypoints, layout, score, box)


def test_load_pose_model_by_name_backend_or_factory(image: np.ndarray) -> None:
    assert isinstance(load_pose_model("movenet", backend="ort-cpu", threads=1), MoveNet)
    made = []

    def factory(path: Path) -> OnnxRuntimeRunner:
        made.append(path.name)
        return OnnxRuntimeRunner(path)

    assert load_pose_model("blazepose", backend=factory)(image) is not None
    assert made == ["blazepose_detector.onnx", "blazepose_landmarks_full.onnx"]
    with pytest.raises(CpgaitError, match="expected one of"):
        load_pose_model("openpose")


def test_blazepose_lite_finds_the_same_points_as_the_full_model(
    blazepose: BlazePose, image: np.ndarray, reference: np.ndarray
) -> None:
    lite = load_pose_model("blazepose-lite")
    assert lite.name == "blazepose-lite" and lite.layout == "blazepose33"
    got, full = lite(image), blazepose(image)
    assert got is not None and full is not None
    visible = reference[:, 2] > 0.5
    height = float(np.ptp(reference[visible, 1]))
    # another network, the same points: within 5 % of the player's height of the full model's (measured ~2 %)
    error = np.hypot(*(got.keypoints[visible, :2] - full.keypoints[visible, :2]).T)
    assert np.median(error) < 0.05 * height, error


@pytest.mark.parametrize("name", ["blazepose_landmarks_full", "blazepose_landmarks_lite"])
def test_landmark_models_compute_only_the_outputs_read(name: str) -> None:
    # ONNX Runtime computes every output of a graph on each call: an unread segmentation mask doubled the time
    import onnx

    model = onnx.load(str(asset(name)))
    assert [o.name for o in model.graph.output] == ["Identity", "Identity_1", "Identity_3"]


def test_heatmap_refinement_on_hand_worked_windows() -> None:
    # a 16x16 heatmap, one channel per point; logits -30 (confidence ~0), 0 (0.5) and 30 (~1)
    heatmap = np.full((16, 16, 5), -30.0, dtype=np.float32)
    points = np.array([[1.0, 0.5], [0.5, 0.5], [0.5, 0.25], [0.01, 0.01], [0.5, 1.0]], dtype=np.float32)
    heatmap[8, 15, 0] = 30.0  # beside point 0, which is just outside the heatmap (column 16): never refined
    centre = heatmap[:, :, 1]  # point 1 (column 8, row 8): its 7x7 window is rows and columns 5-11
    centre[8, 8] = 30.0
    centre[11, 8] = centre[8, 11] = 0.0  # 3 cells away: inside the window
    centre[12, 8] = centre[8, 12] = 0.0  # 4 cells away: outside it
    heatmap[4, 8, 2] = -0.5  # point 2's window peaks at confidence 0.38 < 0.5: not refined
    heatmap[0, 0, 3] = 30.0  # point 3 sits in the corner cell, whose window is cut by the border
    heatmap[15, 8, 4] = 30.0  # beside point 4, just below the heatmap (row 16): never refined
    got = refine_from_heatmap(points, heatmap)
    # point 1: confidence-weighted mean cell of (8, 8) x 1, (11, 8) x 0.5, (8, 11) x 0.5 over width 16
    assert got[1] == pytest.approx([17.5 / 32, 17.5 / 32], abs=1e-9)
    assert got[3] == pytest.approx([0.0, 0.0], abs=1e-9)
    for unchanged in (0, 2, 4):
        assert got[unchanged].tolist() == points[unchanged].tolist()


@pytest.mark.parametrize(
    "towards,rotation",
    [
        ((0.0, -1.0), 0.0),  # head straight up in the image
        ((1.0, 0.0), np.pi / 2),
        ((-1.0, 0.0), -np.pi / 2),
        ((0.0, 1.0), -np.pi),  # upside down: pi wraps to -pi, as MediaPipe's NormalizeRadians
        ((-1.0, 1.0), -3 * np.pi / 4),  # 5 pi / 4 before the wrap into [-pi, pi)
    ],
)
def test_alignment_roi_turns_the_hips_to_head_direction_up(towards: tuple[float, float], rotation: float) -> None:
    centre = np.array([100.0, 200.0])
    roi = alignment_roi(centre, centre + 40.0 * np.array(towards))
    assert roi.rotation == pytest.approx(rotation, abs=1e-12)
    assert roi.size == pytest.approx(2 * 40.0 * np.hypot(*towards) * 1.25)
    assert (roi.cx, roi.cy) == (100.0, 200.0)


def test_alignment_roi_is_at_least_one_pixel() -> None:
    assert alignment_roi(np.zeros(2), np.array([0.0, -0.1])).size == 1.0  # 2 x 0.1 x 1.25 = 0.25 -> 1
