"""The per-joint feature bank: joint selection (the study's top-k link), values on a hand-built walker, live parity."""

from __future__ import annotations

import numpy as np
import pytest
from test_features import FPS, figure  # noqa: E402  (the same stick figure)

from cpgait.errors import CpgaitError
from cpgait.runtime.core.layouts import COCO17
from cpgait.runtime.gait.feature_bank import (
    BANK,
    BANK_SCALARS,
    BANK_SERIES,
    REGISTRY,
    feature_spec,
    select_features,
)
from cpgait.runtime.gait.features import FEATURES, IncrementalFeatures, window_inputs

# a plausible Grad-CAM order: legs first, then trunk, arms, head
RANKING = (
    "left_ankle",
    "right_knee",
    "left_knee",
    "right_ankle",
    "left_hip",
    "right_hip",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
)


def test_registry_names_unique_and_tagged() -> None:
    names = [f.name for f in REGISTRY]
    assert len(set(names)) == len(names)
    assert all(f.joints and set(f.joints) <= set(COCO17.joints) for f in REGISTRY)
    assert set(BANK_SERIES) | set(BANK_SCALARS) == {f.name for f in BANK}
    assert {j for f in BANK for j in f.joints} == set(COCO17.joints)  # every joint has features of its own


def test_top_k_feature_sets_grow_and_differ_for_every_k() -> None:
    sets = [set(select_features(RANKING[:k])) for k in range(1, len(RANKING) + 1)]
    for k, chosen in enumerate(sets, start=1):
        kinds = {feature_spec(n).kind for n in chosen}
        assert kinds == {"series", "scalar"}, f"k = {k}: {kinds}"  # a gait stream is possible from k = 1
    for k in range(1, len(sets)):
        assert sets[k - 1] < sets[k], f"k = {k + 1} adds no feature"
    assert len(sets[0]) >= 5 and sets[-1] == {f.name for f in REGISTRY}
    # k <= 6 already includes clinical features, each exactly when its joints are in
    assert "cadence" in sets[3] and "cadence" not in sets[2]  # both ankles first at k = 4
    assert "knee_flexion_left" in sets[4] and "knee_flexion_left" not in sets[3]  # left hip at k = 5


def test_one_rank_change_changes_the_features() -> None:
    for k in range(1, 7):
        swapped = list(RANKING)
        swapped[k - 1], swapped[k] = swapped[k], swapped[k - 1]  # joint k+1 overtakes joint k
        assert set(select_features(RANKING[:k])) != set(select_features(swapped[:k])), f"k = {k}"


def test_selection_is_exact() -> None:
    chosen = {"left_knee", "left_ankle", "right_ankle"}
    selected = set(select_features(sorted(chosen)))
    for spec in REGISTRY:
        assert (spec.name in selected) == (set(spec.joints) <= chosen), spec.name
    assert select_features(["nose"]) == [f.name for f in BANK if f.joints == ("nose",)]
    assert select_features(COCO17.joints)[: len(FEATURES)] == [f.name for f in FEATURES]


def test_unknown_joint_and_feature_are_refused() -> None:
    with pytest.raises(CpgaitError, match="left_heel"):
        select_features(["left_hip", "left_heel"])
    with pytest.raises(CpgaitError, match="no_such_feature"):
        feature_spec("no_such_feature")
    with pytest.raises(CpgaitError, match="no_such_feature"):
        window_inputs(figure(t=90), "coco17_feet", FPS, (), ("no_such_feature",))


def _scalars(kp: np.ndarray, names: tuple[str, ...]) -> dict[str, float]:
    out = window_inputs(kp, "coco17_feet", FPS, (), names)["gait_scalars"]
    return {n: float(v) * feature_spec(n).scale for n, v in zip(names, out)}


def test_values_on_a_walking_stick_figure() -> None:
    """Legs swing sinusoidally (period 1.1 s, right half a cycle behind); arms and head ride rigidly on the trunk."""
    v = _scalars(figure(t=124, cycle_s=1.1), BANK_SCALARS)
    # each ankle peaks forward at its own heel strike: in phase with the left strike, the right in anti-phase
    assert v["left_ankle_stride_phase_cos"] > 0.95 and v["right_ankle_stride_phase_cos"] < -0.95
    assert v["left_ankle_stride_amp_x"] > 0.2 and v["left_ankle_rom_x"] > 2 * v["left_ankle_stride_amp_x"] * 0.9
    assert v["sym_ankle_rom"] < 2.0 and v["sym_knee_speed"] < 2.0  # the two legs move alike
    assert v["left_wrist_rom_x"] < 1e-6 and v["left_wrist_speed_mean"] < 1e-6  # rigid on a trunk without sway
    # the knee angle is 180 - flexion; the figure's flexion swings between 20 and 70 degrees
    assert 105 < v["angle_left_knee_mean"] < 165 and 40 < v["angle_left_knee_rom"] <= 51
    # the shank's inclination from vertical is the ankle term of COCO-17 (knee ahead of the ankle: forward positive)
    assert v["seg_left_knee__left_ankle_incl_rom"] > 30


def test_missing_joint_gives_zero_input_not_an_error() -> None:
    kp = figure(t=90, cycle_s=1.1)
    kp[:, COCO17.joints.index("left_wrist"), 2] = 0.0  # never seen
    names = ("left_wrist_rom_x", "left_wrist_speed_mean", "left_knee_rom_x")
    out = window_inputs(kp, "coco17_feet", FPS, ("left_wrist_speed",), names)
    assert out["gait_scalars"][0] == 0 and out["gait_scalars"][1] == 0 and out["gait_scalars"][2] > 0
    assert not out["gait_series"].any()


def test_live_inputs_equal_batch_inputs_with_bank_features() -> None:
    kp = figure(t=200, cycle_s=1.1)
    series = ("left_ankle_speed", "knee_flexion_left", "angle_right_elbow")
    scalars = ("cadence", "left_ankle_stride_phase_sin", "si_knee_rom", "seg_nose__left_eye_incl_mean")
    live = IncrementalFeatures("coco17_feet", FPS, window=124)
    for frame in kp:
        live.push(frame)
    got = live.inputs(series, scalars)
    want = window_inputs(kp[-124:], "coco17_feet", FPS, series, scalars)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], atol=1e-5)
