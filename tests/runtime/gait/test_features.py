"""Gait features: geometry on hand-built skeletons, invariances, bad input, the live (incremental) form's parity
with the batch functions, and accuracy against the synthetic generator's truth (SYNTHETIC data, not patients)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cpgait.errors import CpgaitError
from cpgait.runtime.core.layouts import COCO17, COCO17_FEET
from cpgait.runtime.gait.features import (
    FEATURES,
    SCALAR_NAMES,
    SERIES_NAMES,
    IncrementalFeatures,
    compute_features,
    window_inputs,
)
from cpgait.runtime.gait.keypoints import preprocess

FPS = 30.0


def figure(
    t: int = 90,
    knee=20.0,
    thigh=10.0,
    lean=5.0,
    foot=0.0,
    speed=1.0,
    scale=120.0,
    offset=(300.0, 400.0),
    cycle_s: float | None = None,
    feet: bool = True,
    knee_amp: tuple[float, float] = (25.0, 25.0),
    knee_right: float | None = None,
    right_shift: float = np.pi,
    knee_drift: float = 0.0,
    limp: float = 0.0,
) -> np.ndarray:
    """A side-view stick figure walking towards +x in image pixels, `[T, V, 3]`, from joint angles in degrees.

    thigh: from the downward vertical, knee ahead positive; knee: flexion; lean: trunk forward; foot: toe up.
    With `cycle_s`, thigh and knee swing sinusoidally around the given values, the right leg `right_shift` behind
    (half a cycle), on a cycle phase 2 pi t / cycle + `limp` sin(2 pi t / cycle) (a limp makes the steps that end
    in a left and a right heel strike differ in time): knee flexion = base + amp (1 + sin(phase + shift + 1))
    (`knee_truth`), base = `knee` (`knee_right` for the right leg) rising linearly by `knee_drift` over the
    figure, amp = `knee_amp` per side.
    Segments: thigh = shank = 0.5 (leg length 1), times `scale` pixels.
    """
    times = np.arange(t) / FPS
    joints = COCO17_FEET.joints if feet else COCO17.joints
    pts = {}
    hip = np.stack([speed * times, np.zeros(t)], axis=1)
    up = np.radians(lean)
    shoulder = hip + 0.6 * np.array([np.sin(up), np.cos(up)])
    for side, shift in (("left", 0.0), ("right", right_shift)):
        swing = np.sin(_phase(t, cycle_s, limp) + shift) if cycle_s else np.zeros(t)
        a = np.radians(thigh + 25 * swing)
        base = knee if side == "left" or knee_right is None else knee_right
        amp = knee_amp[side == "right"]
        k = np.radians(knee_truth(t, base, amp, shift, cycle_s, knee_drift, limp) if cycle_s else base + 0 * a)
        knee_pt = hip + 0.5 * np.stack([np.sin(a), -np.cos(a)], axis=1)
        ankle = knee_pt + 0.5 * np.stack([np.sin(a - k), -np.cos(a - k)], axis=1)
        f = np.radians(foot)
        heel = ankle + 0.06 * np.array([-np.cos(f), -np.sin(f)])
        pts.update(
            {
                f"{side}_hip": hip,
                f"{side}_knee": knee_pt,
                f"{side}_ankle": ankle,
                f"{side}_heel": heel,
                f"{side}_toe": heel + 0.2 * np.array([np.cos(f), np.sin(f)]),
                f"{side}_shoulder": shoulder,
                f"{side}_elbow": shoulder + [0.0, -0.25],
                f"{side}_wrist": shoulder + [0.05, -0.5],
                f"{side}_eye": shoulder + [0.1, 0.25],
                f"{side}_ear": shoulder + [0.0, 0.22],
            }
        )
    pts["nose"] = shoulder + [0.14, 0.2]
    kp = np.ones((t, len(joints), 3))
    for j, name in enumerate(joints):
        kp[:, j, 0] = offset[0] + scale * pts[name][:, 0]
        kp[:, j, 1] = offset[1] - scale * pts[name][:, 1]  # image y points down
    return kp.astype(np.float32)


def _phase(t: int, cycle_s: float, limp: float) -> np.ndarray:
    phase = 2 * np.pi * np.arange(t) / FPS / cycle_s
    return phase + limp * np.sin(phase)


def knee_truth(
    t: int, base: float, amp: float, shift: float, cycle_s: float, drift: float = 0.0, limp: float = 0.0
) -> np.ndarray:
    """The knee flexion (deg) `figure` gives a walking leg, frame by frame."""
    return base + drift * np.arange(t) / (t - 1) + amp * (1 + np.sin(_phase(t, cycle_s, limp) + shift + 1.0))


def mirrored(kp: np.ndarray, width: float = 2000.0) -> np.ndarray:
    out = kp.copy()
    out[..., 0] = width - out[..., 0]
    return out


# ---- registry ----------------------------------------------------------------------------------------------------


def test_registry_names_kinds_and_units() -> None:
    names = [f.name for f in FEATURES]
    assert len(set(names)) == len(names)
    assert list(SERIES_NAMES) + list(SCALAR_NAMES) == names
    assert {f.kind for f in FEATURES} == {"series", "scalar"}
    assert all(f.unit and f.description and set(f.joints) <= set(COCO17.joints) for f in FEATURES)


def test_ankle_without_feet_is_shank_inclination() -> None:
    f = compute_features(figure(knee=30.0, thigh=10.0, feet=False), "coco17", FPS)
    np.testing.assert_allclose(f.series_of("ankle_left"), 30.0 - 10.0, atol=1e-3)  # knee ahead of the ankle


def test_hyperextension_is_negative_flexion() -> None:
    f = compute_features(figure(knee=-8.0), "coco17_feet", FPS)
    np.testing.assert_allclose(f.series_of("knee_flexion_left"), -8.0, atol=1e-3)


def test_walking_figure_gait_scalars() -> None:
    kp = figure(t=124, cycle_s=1.0, speed=1.2)
    f = compute_features(kp, "coco17_feet", FPS)
    assert f.direction == 1
    assert f.scalar("cadence") == pytest.approx(120.0, rel=0.01)  # two steps per 1 s cycle
    assert f.scalar("step_time") == pytest.approx(0.5, rel=0.01)
    assert f.scalar("speed") == pytest.approx(1.2, rel=0.01)
    assert f.scalar("step_length") == pytest.approx(0.6, rel=0.02)
    assert f.scalar("knee_rom_left") == pytest.approx(50.0, abs=1.0)
    assert f.scalar("knee_peak_extension_left") == pytest.approx(20.0, abs=1.0)
    assert f.scalar("si_knee_rom") == pytest.approx(0.0, abs=2.0)
    assert set(f.events[:, 1]) == {0, 1} and np.all(np.diff(f.events[:, 1]) != 0)  # alternating sides
    knee_true = 20 + 25 * (1 + np.sin(2 * np.pi * np.arange(124) / FPS + 1.0))
    assert np.sqrt(np.mean((f.series_of("knee_flexion_left") - knee_true) ** 2)) < 0.5


def _truth_events(kp: np.ndarray, k: int = 3) -> list[tuple[int, int]]:
    """Heel strikes straight from a noise-free figure's ankles (walking towards +x): extrema over +-k frames of
    x_left_ankle - x_right_ankle, a maximum (left ahead) = a left strike (0), a minimum = a right strike (1)."""
    d = kp[:, COCO17.index("left_ankle"), 0] - kp[:, COCO17.index("right_ankle"), 0]
    out = []
    for i in range(k, len(d) - k):
        near = np.delete(d[i - k : i + k + 1], k)
        if d[i] > near.max() or d[i] < near.min():
            out.append((i, 0 if d[i] > near.max() else 1))
    return out


ASYMMETRIC = dict(knee=20.0, knee_right=10.0, knee_amp=(25.0, 15.0), knee_drift=12.0, limp=0.4)


@pytest.mark.parametrize("walk", ["towards +x", "mirrored"])
def test_heel_strike_sides_follow_the_leading_ankle(walk: str) -> None:
    kp = figure(t=124, cycle_s=1.0, speed=1.2, **ASYMMETRIC)
    f = compute_features(kp if walk == "towards +x" else mirrored(kp), "coco17_feet", FPS)
    truth = _truth_events(kp)
    assert len(truth) == 8 and f.events[:, 1].tolist() == [side for _, side in truth]
    assert np.abs(f.events[:, 0] - [frame for frame, _ in truth]).max() <= 1


def test_per_side_scalars_against_the_truth_of_an_asymmetric_walk() -> None:
    """Left knee 20 + 25 (1 + sin), right 10 + 15 (1 + sin), both rising 12 deg over the window, and a limp that
    makes left and right steps differ in time: knee ROM and minimum flexion are means over each side's own strides
    (not the whole window: the drift would add about 10 deg), and the symmetry indices compare the sides."""
    t, cycle = 124, 1.0
    kp = figure(t=t, cycle_s=cycle, speed=1.2, **ASYMMETRIC)
    f = compute_features(kp, "coco17_feet", FPS)
    truth = _truth_events(kp)
    rom, low = {}, {}
    for side, name, base, amp, shift in ((0, "left", 20.0, 25.0, 0.0), (1, "right", 10.0, 15.0, np.pi)):
        knee = knee_truth(t, base, amp, shift, cycle, ASYMMETRIC["knee_drift"], ASYMMETRIC["limp"])
        strikes = [frame for frame, s in truth if s == side]
        strides = list(zip(strikes, strikes[1:]))
        assert len(strides) == 3
        rom[side] = np.mean([np.ptp(knee[a:b]) for a, b in strides])
        low[side] = np.mean([knee[a:b].min() for a, b in strides])
        assert np.ptp(knee) - rom[side] > 5  # the premise: the window's range is not the strides' mean
        assert f.scalar(f"knee_rom_{name}") == pytest.approx(rom[side], abs=1.0)
        assert f.scalar(f"knee_peak_extension_{name}") == pytest.approx(low[side], abs=1.0)

    def si(left: float, right: float) -> float:
        return abs(left - right) / (0.5 * (left + right)) * 100

    frames = [frame for frame, _ in truth]
    steps = {s: np.mean([b - a for a, b, (_, sd) in zip(frames, frames[1:], truth[1:]) if sd == s]) for s in (0, 1)}
    d = (kp[:, COCO17.index("left_ankle"), 0] - kp[:, COCO17.index("right_ankle"), 0]) / 120.0  # leg = 120 px
    separation = {s: np.mean([abs(d[frame]) for frame, sd in truth if sd == s]) for s in (0, 1)}
    assert si(rom[0], rom[1]) > 40 and si(steps[0], steps[1]) > 30 and si(separation[0], separation[1]) > 30
    assert f.scalar("si_knee_rom") == pytest.approx(si(rom[0], rom[1]), rel=0.05)
    assert f.scalar("si_step_time") == pytest.approx(si(steps[0], steps[1]), rel=0.15)
    assert f.scalar("si_step_length") == pytest.approx(si(separation[0], separation[1]), rel=0.05)
    assert f.scalar("step_time") == pytest.approx(np.mean(np.diff(frames)) / FPS, rel=0.02)


def test_a_half_seen_step_at_the_window_edge_is_no_event() -> None:
    """A window starting 3 frames before a heel strike sees the extremum but not the feet coming together before
    it (the distance changes by less than MIN_STEP_LEG): no event there; starting 8 frames before, there is."""
    kp = figure(t=220, cycle_s=1.4)
    frame, side = next((f, s) for f, s in _truth_events(kp) if f >= 10)
    early = compute_features(kp[frame - 8 : frame - 8 + 124], "coco17_feet", FPS)
    late = compute_features(kp[frame - 3 : frame - 3 + 124], "coco17_feet", FPS)
    assert early.events[0].tolist() == [8, side]
    assert late.events[0, 1] == 1 - side and late.events[0, 0] > 3 + 10  # the next strike, of the other foot
    assert len(late.events) == len(early.events) - 1
    assert late.scalar("step_time") == pytest.approx(0.7, rel=0.03) == early.scalar("step_time")


# ---- invariance ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("change", ["translate", "scale", "mirror"])
def test_invariant_to_position_scale_and_direction(change: str) -> None:
    kp = figure(t=124, cycle_s=1.1, speed=1.0)
    other = {
        "translate": lambda k: k + np.array([517.0, -203.0, 0.0], dtype=np.float32),
        "scale": lambda k: k * np.array([0.37, 0.37, 1.0], dtype=np.float32),
        "mirror": mirrored,
    }[change](kp)
    a, b = compute_features(kp, "coco17_feet", FPS), compute_features(other, "coco17_feet", FPS)
    np.testing.assert_allclose(b.series, a.series, atol=0.01)
    np.testing.assert_allclose(b.scalars, a.scalars, rtol=1e-3, atol=1e-3)
    np.testing.assert_array_equal(b.events, a.events)
    ia = window_inputs(kp, "coco17_feet", FPS, SERIES_NAMES, SCALAR_NAMES)
    ib = window_inputs(other, "coco17_feet", FPS, SERIES_NAMES, SCALAR_NAMES)
    for key in ia:
        np.testing.assert_allclose(ib[key], ia[key], atol=1e-3)
    if change == "mirror":
        assert a.direction == -b.direction


# ---- preprocessing -------------------------------------------------------------------------------------------------


def test_preprocess_normalises_and_flags_gaps() -> None:
    kp = figure(t=60, knee=0.0, thigh=0.0, lean=0.0, scale=80.0)
    kp[10:14, COCO17.index("left_knee"), 2] = 0.0  # short gap: interpolated
    kp[20:40, COCO17.index("right_knee"), 2] = 0.0  # long gap: stays missing
    pre = preprocess(mirrored(kp), "coco17_feet", FPS)
    assert pre.leg_length_px == pytest.approx(80.0, rel=1e-4)
    assert pre.direction == -1  # the mirrored figure walks towards -x
    hip, knee, ankle = (COCO17.index(f"left_{j}") for j in ("hip", "knee", "ankle"))
    np.testing.assert_allclose(pre.keypoints[:, hip, :2], 0.0, atol=1e-4)  # centred on the (single) hip point
    np.testing.assert_allclose(pre.keypoints[:, knee, :2], [[0.0, -0.5]] * 60, atol=1e-3)  # y up, leg lengths
    np.testing.assert_allclose(pre.keypoints[:, ankle, :2], [[0.0, -1.0]] * 60, atol=1e-3)
    assert pre.valid[10:14, knee].all() and pre.keypoints[10:14, knee, 2].max() == 0.0  # filled, low confidence
    right_knee = COCO17.index("right_knee")
    assert not pre.valid[20:40, right_knee].any() and np.isnan(pre.keypoints[20:40, right_knee, :2]).all()
    np.testing.assert_allclose(pre.mid_hip_px[:, 1], 400.0, atol=1e-3)  # before centring


def test_short_left_right_swap_is_undone() -> None:
    kp = figure(t=124, cycle_s=1.0)
    reference = compute_features(kp, "coco17_feet", FPS)
    left = [COCO17_FEET.index(f"left_{j}") for j in ("hip", "knee", "ankle", "heel", "toe")]
    right = [COCO17_FEET.index(f"right_{j}") for j in ("hip", "knee", "ankle", "heel", "toe")]
    swapped = kp.copy()
    swapped[60:64, left + right] = kp[60:64, right + left]  # the legs are apart around frame 60
    f = compute_features(swapped, "coco17_feet", FPS)
    np.testing.assert_allclose(f.series, reference.series, atol=1e-3)


def test_window_inputs_shapes_scales_and_missing_joints() -> None:
    kp = figure(t=124, cycle_s=1.0)
    kp[:, COCO17.index("left_wrist"), 2] = 0.0
    kp[:, COCO17.index("left_wrist"), :2] = np.nan
    inputs = window_inputs(kp, "coco17_feet", FPS, ["knee_flexion_left", "inter_ankle_distance"], ["cadence"])
    assert inputs["skeleton"].shape == (3, 124, 17) and inputs["skeleton"].dtype == np.float32
    assert inputs["gait_series"].shape == (2, 124) and inputs["gait_scalars"].shape == (1,)
    assert all(np.isfinite(v).all() and v.dtype == np.float32 for v in inputs.values())
    assert not inputs["skeleton"][:, :, COCO17.index("left_wrist")].any()  # missing: 0 with confidence 0
    assert np.abs(inputs["skeleton"][:2]).max() < 3 and np.abs(inputs["gait_series"]).max() < 2
    assert inputs["gait_scalars"][0] == pytest.approx(1.2, rel=0.01)  # 120 steps/min / 100


# ---- bad input -------------------------------------------------------------------------------------------------------


def _all_nan() -> np.ndarray:
    kp = figure(t=10)
    kp[..., :2] = np.nan
    kp[..., 2] = 0.0
    return kp


@pytest.mark.parametrize(
    "keypoints,layout,fps,error",
    [
        (figure(t=10)[..., :2], "coco17_feet", FPS, r"shape \(10, 21, 2\); expected \[T, V, 3\]"),
        (figure(t=10)[0], "coco17_feet", FPS, r"expected \[T, V, 3\]"),
        (figure(t=10, feet=False), "coco17_feet", FPS, "17 joints; layout coco17_feet has 21"),
        (figure(t=10), "coco99", FPS, "unknown skeleton layout 'coco99'"),
        (figure(t=1), "coco17_feet", FPS, "1 frame"),
        (figure(t=10)[:0], "coco17_feet", FPS, "0 frame"),
        (_all_nan(), "coco17_feet", FPS, "all keypoints missing or NaN"),
        (figure(t=10), "coco17_feet", 0.0, "fps is 0.0"),
        (figure(t=10), "coco17_feet", float("nan"), "fps is nan"),
        (figure(t=10).astype(str), "coco17_feet", FPS, "dtype"),
    ],
)
def test_bad_input_is_a_clear_error(keypoints, layout: str, fps: float, error: str) -> None:
    with pytest.raises(CpgaitError, match=error):
        compute_features(keypoints, layout, fps)
    with pytest.raises(CpgaitError, match=error):
        window_inputs(keypoints, layout, fps, SERIES_NAMES, SCALAR_NAMES)


@pytest.mark.parametrize(
    "call,error",
    [
        (lambda: IncrementalFeatures("coco99", FPS), "unknown skeleton layout"),
        (lambda: IncrementalFeatures("coco17", -1.0), "fps is -1.0"),
        (lambda: IncrementalFeatures("coco17", FPS).push(np.zeros((21, 3))), r"expected \(17, 3\)"),
        (lambda: IncrementalFeatures("coco17", FPS).features(), "0 frame"),
        (lambda: window_inputs(figure(t=20), "coco17_feet", FPS, ["knee"], []), "unknown series feature 'knee'"),
        (lambda: window_inputs(figure(t=20), "coco17_feet", FPS, [], ["speed_mps"]), "unknown scalar feature"),
    ],
)
def test_bad_use_is_a_clear_error(call, error: str) -> None:
    with pytest.raises(CpgaitError, match=error):
        call()


def test_as_dict_is_json_ready() -> None:
    import json

    kp = figure(t=40)
    kp[:, COCO17.index("left_knee"), 2] = 0.0  # knee missing throughout: NaN series and scalars
    d = compute_features(kp, "coco17_feet", FPS).as_dict()
    text = json.dumps(d, allow_nan=False)
    assert d["series"]["knee_flexion_left"][0] is None and d["units"]["cadence"] == "steps/min"
    assert "NaN" not in text and set(d["scalars"]) == set(SCALAR_NAMES)


# ---- the live form ---------------------------------------------------------------------------------------------------


def _noisy_walk(t: int, feet: bool, seed: int) -> np.ndarray:
    """A walking figure with pose-model trouble: noise, dropped points, a long gap and short left/right swaps."""
    rng = np.random.default_rng(seed)
    kp = figure(t=t, cycle_s=1.0, feet=feet).astype(np.float64)
    kp[..., :2] += rng.normal(0, 2.0, kp[..., :2].shape)
    drop = rng.random(kp.shape[:2]) < 0.05
    kp[..., 2] = np.where(drop, 0.1, rng.uniform(0.5, 1.0, kp.shape[:2]))
    kp[100:125, COCO17.index("left_ankle"), 2] = 0.0
    left = [COCO17.index(f"left_{j}") for j in ("hip", "knee", "ankle")]
    right = [COCO17.index(f"right_{j}") for j in ("hip", "knee", "ankle")]
    for start in (40, 170, 230):
        kp[start : start + 3, left + right] = kp[start : start + 3, right + left]
    return kp.astype(np.float32)


@pytest.mark.parametrize("layout", ["coco17", "coco17_feet"])
def test_incremental_matches_batch(layout: str) -> None:
    """Same numbers as the batch functions on the same raw window, at every frame checked: the live form reuses
    values computed from the same frames with the same float64 code, so only BLAS summation order could differ;
    we allow 1e-4 (degrees, leg lengths) -- far below any clinical resolution -- and require identical events."""
    kp = _noisy_walk(320, layout == "coco17_feet", seed=1)
    window = 124
    live = IncrementalFeatures(layout, FPS, window)
    checked = 0
    for t in range(len(kp)):
        live.push(kp[t])
        if t < 1 or not (t < 8 or t % 13 == 0 or window - 3 <= t <= window + 20):
            continue
        raw = kp[max(0, t + 1 - window) : t + 1]
        a, b = live.features(), compute_features(raw, layout, FPS)
        np.testing.assert_array_equal(np.isnan(a.series), np.isnan(b.series))
        np.testing.assert_allclose(a.series, b.series, rtol=1e-5, atol=1e-4, equal_nan=True)
        np.testing.assert_allclose(a.scalars, b.scalars, rtol=1e-5, atol=1e-4, equal_nan=True)
        np.testing.assert_array_equal(a.events, b.events)
        ia = live.inputs(SERIES_NAMES, SCALAR_NAMES)
        ib = window_inputs(raw, layout, FPS, SERIES_NAMES, SCALAR_NAMES)
        for key in ia:
            np.testing.assert_allclose(ia[key], ib[key], rtol=1e-5, atol=1e-4)
        checked += 1
    assert live.ready and checked > 30


def test_incremental_matches_batch_at_another_frame_rate() -> None:
    fps, window = 15.0, 62
    kp = _noisy_walk(200, True, seed=2)[::2]  # the 30 fps walk at 15 fps
    live = IncrementalFeatures("coco17_feet", fps, window)
    for t, frame in enumerate(kp):
        live.push(frame)
        if t >= window and t % 5 == 0:
            a, b = live.features(), compute_features(kp[t + 1 - window : t + 1], "coco17_feet", fps)
            np.testing.assert_allclose(a.series, b.series, rtol=1e-5, atol=1e-4, equal_nan=True)
            np.testing.assert_allclose(a.scalars, b.scalars, rtol=1e-5, atol=1e-4, equal_nan=True)
    assert live._cached  # the interior really came from the cache


def test_incremental_empty_window_is_an_error_like_batch() -> None:
    kp = figure(t=160, cycle_s=1.0)
    kp[30:, :, 2] = 0.0  # the child leaves the view
    live = IncrementalFeatures("coco17_feet", FPS, window=124)
    for frame in kp:
        live.push(frame)
    with pytest.raises(CpgaitError, match="cannot scale the skeleton"):
        compute_features(kp[-124:], "coco17_feet", FPS)
    with pytest.raises(CpgaitError, match="cannot scale the skeleton"):
        live.inputs(SERIES_NAMES, SCALAR_NAMES)


def test_incremental_window_too_short_for_a_cache_still_matches() -> None:
    kp = figure(t=50, cycle_s=1.0)
    live = IncrementalFeatures("coco17_feet", FPS, window=30)
    for frame in kp:
        live.push(frame)
    np.testing.assert_allclose(live.features().series, compute_features(kp[-30:], "coco17_feet", FPS).series)


# ---- accuracy against the synthetic generator's truth (SYNTHETIC data, not patients) -----------------------------

SEEDS = (0, 1, 2)


def _synth(level: int, seed: int, clean: bool, layout: str = "coco17_feet"):
    synth = pytest.importorskip("cpgait.training.synth")
    seq, truth = synth.synthesize(level, np.random.default_rng(1000 * level + seed), clean=clean, layout=layout)
    return seq, truth, compute_features(seq.keypoints, layout, seq.fps)


def _knee_errors(feats, truth) -> np.ndarray:
    """Knee flexion error (deg) of both sides over the frames the whole child is in the image."""
    in_frame = np.array(truth["in_frame"])
    errors = []
    for side in ("left", "right"):
        error = feats.series_of(f"knee_flexion_{side}") - np.array(truth["knee_flexion_deg"][side])
        errors.append(error[in_frame & np.isfinite(error)])
    return np.concatenate(errors)


@pytest.mark.parametrize("level", range(4))
@pytest.mark.parametrize("layout", ["coco17_feet", "coco17"])
def test_clean_synthetic_matches_truth(level: int, layout: str) -> None:
    """Noise-free preset: cadence within 3 %, knee RMSE <= 3 deg, step length within 8 %, speed within 3 %.

    Step length is the body's progression per step (speed x step time). The truth is three-dimensional: a leg turned
    out of the camera plane by the child's hip rotation (real spread +-11 deg) looks shorter in the image, which
    inflates every leg-length-relative measure by up to a few per cent, and its knee angle looks smaller in swing.
    """
    for seed in SEEDS:
        seq, truth, f = _synth(level, seed, clean=True, layout=layout)
        assert f.scalar("cadence") == pytest.approx(truth["cadence_steps_per_min"], rel=0.03), seed
        assert np.sqrt(np.mean(_knee_errors(f, truth) ** 2)) <= 3.0, seed
        step_truth = truth["speed_leg_per_s"] * truth["step_time_s"]
        assert f.scalar("step_length") == pytest.approx(step_truth, rel=0.08), seed
        assert f.scalar("speed") == pytest.approx(truth["speed_leg_per_s"], rel=0.03), seed
        assert f.direction == truth["direction"]


@pytest.mark.parametrize("level", range(4))
def test_noisy_synthetic_matches_truth(level: int) -> None:
    """Default noise (jitter, dropped points, outliers, left/right swaps, partial views, walking aids): cadence within
    8 % of the steps that were in view, knee RMSE over the level's sequences <= 5.5 deg (5 before the legs turned
    out of the camera plane, see the clean test); 6 deg at GMFCS IV, where walkers hide about 40 % of the leg
    points behind their frame (5.57 deg measured on these seeds)."""
    errors = []
    for seed in SEEDS:
        seq, truth, f = _synth(level, seed, clean=False)
        pre = preprocess(seq.keypoints, seq.layout, seq.fps)
        ankles = np.flatnonzero(pre.valid[:, COCO17.index("left_ankle")] & pre.valid[:, COCO17.index("right_ankle")])
        contacts = np.sort(np.concatenate([truth["heel_strikes"]["left"], truth["heel_strikes"]["right"]]))
        contacts = contacts[(contacts >= ankles[0]) & (contacts <= ankles[-1])]  # the child walks out of view
        cadence_in_view = 60.0 * seq.fps / np.mean(np.diff(contacts))
        assert f.scalar("cadence") == pytest.approx(cadence_in_view, rel=0.08), seed
        errors.append(_knee_errors(f, truth))
    assert np.sqrt(np.mean(np.concatenate(errors) ** 2)) <= (6.0 if level == 3 else 5.5)


@pytest.mark.parametrize("level", [0, 3])
def test_synthetic_features_invariant_to_scale_translation_and_direction(level: int) -> None:
    """Within 1 %: scalars relative, series and model inputs against their O(1) model scale (0.9 deg)."""
    seq, truth, f = _synth(level, 0, clean=False)
    kp = seq.keypoints
    for changed in (
        kp * np.array([0.5, 0.5, 1.0], np.float32) + np.array([40.0, -25.0, 0.0], np.float32),
        mirrored(kp, float(seq.image_size[0])),
    ):
        g = compute_features(changed, seq.layout, seq.fps)
        np.testing.assert_array_equal(np.isnan(g.series), np.isnan(f.series))
        np.testing.assert_allclose(g.series[:, :7], f.series[:, :7], atol=0.9, equal_nan=True)
        np.testing.assert_allclose(g.series[:, 7], f.series[:, 7], atol=0.01, equal_nan=True)
        np.testing.assert_allclose(g.scalars, f.scalars, rtol=0.01, atol=1e-3, equal_nan=True)
        ia = window_inputs(kp[:124], seq.layout, seq.fps, SERIES_NAMES, SCALAR_NAMES)
        ib = window_inputs(changed[:124], seq.layout, seq.fps, SERIES_NAMES, SCALAR_NAMES)
        for key in ia:
            np.testing.assert_allclose(ib[key], ia[key], atol=0.01)


def test_direction_from_facing_when_walking_on_the_spot() -> None:
    still = figure(t=60, speed=0.0, knee=10.0)
    assert preprocess(still, "coco17_feet", FPS).direction == 1
    assert preprocess(mirrored(still), "coco17_feet", FPS).direction == -1  # nose and toes point to -x
    assert compute_features(mirrored(still), "coco17_feet", FPS).series_of("knee_flexion_left")[0] == pytest.approx(
        10.0, abs=1e-3
    )


def test_missing_value_masks_tell_missing_from_zero() -> None:
    """A `<name>_known` input is 1 where the feature is known and 0 where it is missing (its value input is then 0)."""
    kp = figure(t=40, knee=20.0)  # standing still: no steps, so the step scalars are missing
    names = ("cadence", "cadence_known", "knee_peak_extension_left", "knee_peak_extension_left_known")
    inputs = window_inputs(kp, "coco17_feet", FPS, ("knee_flexion_left", "knee_flexion_left_known"), names)
    assert inputs["gait_scalars"].tolist() == pytest.approx([0.0, 0.0, 20.0 / 90, 1.0], abs=1e-3)
    assert (inputs["gait_series"][1] == 1).all() and inputs["gait_series"][0] == pytest.approx(20.0 / 90, abs=1e-3)
    with pytest.raises(CpgaitError, match="unknown scalar feature 'nope_known'"):
        window_inputs(kp, "coco17_feet", FPS, (), ("nope_known",))


@pytest.mark.parametrize(
    "left,right,index",
    [(0.6, 0.4, 40.0), (0.4, 0.6, 40.0), (1.0, 1.0, 0.0), (0.0, 0.0, None), (-1.0, 1.0, None)],
)
def test_symmetry_index_is_the_side_difference_over_the_sides_mean(left: float, right: float, index) -> None:
    # |L - R| / ((L + R) / 2) x 100 (Robinson et al. 1987); undefined without a positive mean
    from cpgait.runtime.gait.features import _si

    got = _si(left, right)
    assert math.isnan(got) if index is None else got == pytest.approx(index, rel=1e-12)
