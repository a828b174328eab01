"""Clinical gait features from 2-D side-view keypoints, in numpy, identical for training and the live kiosk.

Input: raw keypoints `[T, V, 3]` (x, y in pixels, confidence) of any known layout (COCO-17, or `coco17_feet` with
heels and toes, or one that converts to them), and the frame rate. `preprocess` undoes short left/right swaps,
fills short gaps, smooths, and fixes the walking direction `s` (+1 walking towards +x in the image, -1 mirrored)
and the leg length `L` (pixels). Angles are computed in image pixels with y turned up; they do not depend on scale
or position, and every sign below is taken in the walking direction (walking left or right gives the same numbers).

Notation: P_j is joint j; mid-hip H = (P_lhip + P_rhip)/2, mid-shoulder S likewise; for vectors a, b:
cross(a, b) = a_x b_y - a_y b_x, ang(a, b) = atan2(s cross(a, b), a . b) = the signed angle from a to b,
counter-clockwise positive when walking towards +x (forward = +x, up = +y).

Per-frame series (`SERIES_NAMES`; degrees unless stated; NaN where a joint is missing):
- knee_flexion_{left,right}: -ang(thigh, shank), thigh = knee - hip, shank = ankle - knee. 0 = straight leg,
  positive = flexed (shank behind the thigh line), negative = hyperextended.
- hip_flexion_{left,right}: ang(H - S, thigh): the thigh against the trunk line extended down (the trunk stands in
  for the pelvis, which 2-D pose models do not see). 0 = thigh in line with the trunk, positive = thigh forward;
  equals thigh-from-vertical + trunk_lean.
- ankle_{left,right}: dorsiflexion = 90 - ang(toe - heel, knee - ankle) when the layout has feet (0 = foot at right
  angles to the shank, positive = dorsiflexed, negative = plantarflexed); COCO-17 without feet: the shank's forward
  inclination from vertical, atan2(s (knee - ankle)_x, (knee - ankle)_y), positive = knee ahead of the ankle,
  which equals the dorsiflexion when the foot is flat on the ground.
- trunk_lean: atan2(s (S - H)_x, (S - H)_y), 0 = upright, positive = leaning forward.
- inter_ankle_distance (leg lengths): s (x_lankle - x_rankle) / L, positive = left ankle ahead.

Gait events (`heel_strikes`): the extrema of the inter-ankle distance (left ahead the most = left heel strike,
right ahead the most = right heel strike): local extrema over +-0.1 s, never across a gap; made to alternate;
neighbours closer than `MIN_STEP_LEG` in value or `MIN_STEP_FRACTION` of the median step in time dropped; the
first and last confirmed by the distance turning back. The maximal separation comes a little after initial
contact in slow gait, which shifts all events alike and so leaves the step times unchanged.

Per-window scalars (`SCALAR_NAMES`; NaN when undefined, e.g. fewer than two events):
- cadence (steps/min) = 60 / step_time.
- step_time (s) = mean time between consecutive events (a step ends at the leading foot's heel strike).
- step_length (leg lengths) = speed * step_time: how far the body progresses per step, the mean step length.
- speed (leg lengths/s) = s * least-squares slope of the mid-hip x (pixels, before centring) * fps / L.
- knee_rom_{left,right} (deg) = mean over that side's complete strides (heel strike to heel strike) of max - min
  knee_flexion; over the whole window when it holds no complete stride.
- knee_peak_extension_{left,right} (deg) = the same mean of min knee_flexion (the most extended).
- si_knee_rom, si_step_time, si_step_length (%): symmetry index |l - r| / (0.5 (l + r)) * 100 of the left and
  right knee ROM, step time (steps ending in a left / right heel strike) and step length (here the feet's
  separation |inter_ankle_distance| at the left / right heel strikes); 0 = symmetric.

Stance phase (`stance_events`): initial contacts refined from the heel/toe (ankle without feet) positions (a foot on the
floor stands still in a fixed camera's image), toe-offs, and per window stance_time, swing_time (s), their ratio,
knee_flexion_contact_{left,right} (knee flexion at initial contact) and knee_flexion_stance_min_{left,right} (the
least knee flexion from contact to toe-off, i.e. at maximum extension; negative = hyperextension), means over the
window's phases. `hof_dimensionless` gives speed and cadence in Hof's dimensionless form for a known leg length.

Model inputs (`window_inputs`): every feature is divided by its `FeatureSpec.scale` (degrees / 90, cadence / 100,
percentages / 100, the rest / 1) so the values are O(1); NaN becomes 0, and a model trained on the missing-value
masks (`<feature>_known`, 1 known / 0 missing; see `with_masks`) sees which values were missing.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from cpgait.errors import CpgaitError
from cpgait.runtime.core.layouts import COCO17, get_layout, to_coco17
from cpgait.runtime.gait.keypoints import (
    ANKLE_L,
    ANKLE_R,
    HEEL_L,
    HEEL_R,
    HIP_L,
    HIP_R,
    KNEE_L,
    KNEE_R,
    SHOULDER_L,
    SHOULDER_R,
    TOE_L,
    TOE_R,
    Cleaning,
    Preprocessed,
    as_coco,
    clean,
    leg_length,
    leg_lengths,
    mid_hip,
    normalised,
    progression,
    walking_direction,
)

EVENT_NEIGHBOURHOOD_S = 0.1  # an event is an extremum over +-this
MIN_STEP_LEG = 0.1  # extrema closer than this in inter-ankle distance (leg lengths) are not steps
MIN_STEP_FRACTION = 0.5  # nor are steps shorter than this fraction of the window's median step

# The joints each feature measures. The hips' mid-point (origin, walking direction) and the leg length (scale) are
# the body frame every feature is taken in: references, listed only where a feature measures a hip itself.
_LEG_L = ("left_hip", "left_knee", "left_ankle")
_LEG_R = ("right_hip", "right_knee", "right_ankle")
_TRUNK = ("left_shoulder", "right_shoulder")
_ANKLE_PAIR = ("left_ankle", "right_ankle")  # contacts, steps and strides come from the feet (ankles in COCO-17)
_HIPS = ("left_hip", "right_hip")
_LEGS = _LEG_L + _LEG_R


@dataclass(frozen=True)
class FeatureSpec:
    """One gait feature: its kind, unit, the COCO-17 joints whose motion it measures, and its model-input scale.

    Every feature is taken in the body frame (mid-hip origin and walking direction, leg-length scale), which is not
    listed in `joints`; selecting a joint set selects the features whose `joints` it contains
    (`feature_bank.select_features`). Model input = value / `scale`.
    """

    name: str
    kind: str  # "series" (per frame) or "scalar" (per window)
    unit: str
    joints: tuple[str, ...]
    scale: float
    description: str

    def __post_init__(self) -> None:
        if self.kind not in ("series", "scalar"):
            raise ValueError(f"feature {self.name}: kind {self.kind!r} is not 'series' or 'scalar'")
        unknown = [j for j in self.joints if j not in COCO17.joints]
        if unknown or not self.scale > 0:
            raise ValueError(f"feature {self.name}: joints {unknown} not in COCO-17 or scale {self.scale} <= 0")


FEATURES: tuple[FeatureSpec, ...] = (
    FeatureSpec("knee_flexion_left", "series", "deg", _LEG_L, 90.0, "left knee flexion, 0 = straight"),
    FeatureSpec("knee_flexion_right", "series", "deg", _LEG_R, 90.0, "right knee flexion, 0 = straight"),
    FeatureSpec(
        "hip_flexion_left",
        "series",
        "deg",
        _TRUNK + ("left_hip", "left_knee"),
        90.0,
        "left thigh vs the trunk line, forward positive",
    ),
    FeatureSpec(
        "hip_flexion_right",
        "series",
        "deg",
        _TRUNK + ("right_hip", "right_knee"),
        90.0,
        "right thigh vs the trunk line, forward positive",
    ),
    FeatureSpec(
        "ankle_left",
        "series",
        "deg",
        ("left_knee", "left_ankle"),
        90.0,
        "left ankle dorsiflexion (with feet) or shank inclination, knee ahead positive (COCO-17)",
    ),
    FeatureSpec(
        "ankle_right",
        "series",
        "deg",
        ("right_knee", "right_ankle"),
        90.0,
        "right ankle dorsiflexion (with feet) or shank inclination, knee ahead positive (COCO-17)",
    ),
    FeatureSpec("trunk_lean", "series", "deg", _TRUNK, 90.0, "trunk from vertical, forward positive"),
    FeatureSpec(
        "inter_ankle_distance",
        "series",
        "leg",
        _ANKLE_PAIR,
        1.0,
        "signed horizontal left - right ankle distance / leg length, left ahead positive",
    ),
    FeatureSpec("cadence", "scalar", "steps/min", _ANKLE_PAIR, 100.0, "60 / mean step time"),
    FeatureSpec("step_time", "scalar", "s", _ANKLE_PAIR, 1.0, "mean time between consecutive heel strikes"),
    FeatureSpec("step_length", "scalar", "leg", _HIPS + _ANKLE_PAIR, 1.0, "speed x step time: progression per step"),
    FeatureSpec("speed", "scalar", "leg/s", _HIPS, 1.0, "mid-hip progression (pixels/s) / leg length"),
    # per stride: the strides come from the heel strikes, i.e. from both legs
    FeatureSpec(
        "knee_rom_left", "scalar", "deg", _LEG_L + _ANKLE_PAIR[1:], 90.0, "max - min left knee flexion per stride"
    ),
    FeatureSpec(
        "knee_rom_right", "scalar", "deg", _LEG_R + _ANKLE_PAIR[:1], 90.0, "max - min right knee flexion per stride"
    ),
    FeatureSpec(
        "knee_peak_extension_left", "scalar", "deg", _LEG_L + _ANKLE_PAIR[1:], 90.0, "min left knee flexion per stride"
    ),
    FeatureSpec(
        "knee_peak_extension_right",
        "scalar",
        "deg",
        _LEG_R + _ANKLE_PAIR[:1],
        90.0,
        "min right knee flexion per stride",
    ),
    FeatureSpec("si_knee_rom", "scalar", "%", _LEGS, 100.0, "symmetry index of the knee ROM"),
    FeatureSpec("si_step_time", "scalar", "%", _ANKLE_PAIR, 100.0, "symmetry index of left/right step time"),
    FeatureSpec("si_step_length", "scalar", "%", _ANKLE_PAIR, 100.0, "symmetry index of left/right step length"),
    # stance phase: from each foot's initial contact to its toe-off (see `stance_events`)
    FeatureSpec(
        "stance_time", "scalar", "s", _ANKLE_PAIR, 1.0, "mean time from a foot's initial contact to its toe-off"
    ),
    FeatureSpec("swing_time", "scalar", "s", _ANKLE_PAIR, 1.0, "mean time from a foot's toe-off to its next contact"),
    FeatureSpec("stance_swing_ratio", "scalar", "1", _ANKLE_PAIR, 1.0, "stance time / swing time"),
    FeatureSpec("knee_flexion_contact_left", "scalar", "deg", _LEG_L, 90.0, "left knee flexion at initial contact"),
    FeatureSpec("knee_flexion_contact_right", "scalar", "deg", _LEG_R, 90.0, "right knee flexion at initial contact"),
    FeatureSpec("knee_flexion_stance_min_left", "scalar", "deg", _LEG_L, 90.0, "least left knee flexion in stance"),
    FeatureSpec("knee_flexion_stance_min_right", "scalar", "deg", _LEG_R, 90.0, "least right knee flexion in stance"),
)
MASK_SUFFIX = "_known"  # a model input named <feature>_known is 1 where <feature> is known, 0 where it is missing
SPECS: dict[str, FeatureSpec] = {f.name: f for f in FEATURES}
SERIES_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES if f.kind == "series")
SCALAR_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES if f.kind == "scalar")
_ANKLE_COLS = (SERIES_NAMES.index("ankle_left"), SERIES_NAMES.index("ankle_right"))
_DIST_COL = SERIES_NAMES.index("inter_ankle_distance")
NUM_TERMS = 12  # per-frame terms: the 8 series (direction-free), then x of heel/toe left, heel/toe right (pixels)
CONTACT_LEG = 0.012  # a foot has landed when its heel or toe is this close (leg lengths) to where it will stand
TOE_OFF_LEG = 0.03  # and its toe has left when it is this far ahead of where it stood
CLEARLY_MOVING_LEG = 0.15  # a foot this far from its footprint is surely in swing


@dataclass(frozen=True)
class GaitFeatures:
    """The features of one window.

    series: float32 `[T, len(SERIES_NAMES)]`; scalars: float32 `[len(SCALAR_NAMES)]` (NaN = undefined/missing);
    events: int64 `[E, 2]` heel strikes (initial contacts) as (frame, side 0 = left / 1 = right); toe_offs likewise
    (frame = the first frame the toe has left the floor); plus the window's scale and direction.
    """

    series: np.ndarray
    scalars: np.ndarray
    events: np.ndarray
    fps: float
    leg_length_px: float
    direction: int
    toe_offs: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))
    series_names: tuple[str, ...] = field(default=SERIES_NAMES)
    scalar_names: tuple[str, ...] = field(default=SCALAR_NAMES)

    def __post_init__(self) -> None:
        if self.series.ndim != 2 or self.series.shape[1] != len(self.series_names):
            raise ValueError(f"series shape {self.series.shape} does not match {len(self.series_names)} names")
        if self.scalars.shape != (len(self.scalar_names),) or any(
            e.ndim != 2 or e.shape[1] != 2 for e in (self.events, self.toe_offs)
        ):
            raise ValueError("scalars must be [len(scalar_names)], events and toe_offs [E, 2]")

    def scalar(self, name: str) -> float:
        return float(self.scalars[_name_index(self.scalar_names, name, "scalar")])

    def series_of(self, name: str) -> np.ndarray:
        return self.series[:, _name_index(self.series_names, name, "series")]

    def as_dict(self) -> dict:
        """JSON-ready: scalars and series by name (NaN -> None), units, events, fps, leg length, direction."""

        def clean(values: np.ndarray) -> list:
            return [None if not math.isfinite(v) else round(float(v), 4) for v in values]

        return {
            "scalars": dict(zip(self.scalar_names, clean(self.scalars))),
            "series": {n: clean(self.series[:, i]) for i, n in enumerate(self.series_names)},
            "units": {n: SPECS[n].unit for n in (*self.scalar_names, *self.series_names)},
            "heel_strikes": [{"frame": int(f), "side": "left" if s == 0 else "right"} for f, s in self.events],
            "toe_offs": [{"frame": int(f), "side": "left" if s == 0 else "right"} for f, s in self.toe_offs],
            "fps": self.fps,
            "leg_length_px": round(self.leg_length_px, 3),
            "direction": self.direction,
        }


def _name_index(names: tuple[str, ...], name: str, kind: str) -> int:
    try:
        return names.index(name)
    except ValueError:
        raise CpgaitError(f"unknown {kind} feature {name!r}; expected one of: {', '.join(names)}") from None


# ---- per-frame terms -------------------------------------------------------------------------------------------


# Virtual points appended after the joints: mid-hip H, mid-shoulder S, and U = H + (0, 1) (straight up).
_H, _S, _U = 21, 22, 23
# Each angle term is sign * ang(a, b) for vectors a = P[a1] - P[a0], b = P[b1] - P[b0] (y up, s = +1);
# columns 4, 5 (ankles) depend on whether the layout has feet.
_PAIRS = {  # column: (sign, (a0, a1), (b0, b1))
    0: (-1, (HIP_L, KNEE_L), (KNEE_L, ANKLE_L)),  # knee flexion: -ang(thigh, shank)
    1: (-1, (HIP_R, KNEE_R), (KNEE_R, ANKLE_R)),
    2: (1, (_S, _H), (HIP_L, KNEE_L)),  # hip flexion: ang(trunk downwards, thigh)
    3: (1, (_S, _H), (HIP_R, KNEE_R)),
    6: (-1, (_H, _U), (_H, _S)),  # trunk lean: -ang(up, trunk) = atan2(trunk_x, trunk_y)
}
_ANKLES = {
    False: {4: (-1, (_H, _U), (ANKLE_L, KNEE_L)), 5: (-1, (_H, _U), (ANKLE_R, KNEE_R))},  # shank from vertical
    True: {4: (1, (HEEL_L, TOE_L), (ANKLE_L, KNEE_L)), 5: (1, (HEEL_R, TOE_R), (ANKLE_R, KNEE_R))},  # ang(foot, shank)
}


def _angle_index(feet: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    pairs = sorted({**_PAIRS, **_ANKLES[feet]}.items())
    cols = np.array([c for c, _ in pairs])
    sign = np.array([sg for _, (sg, _, _) in pairs], dtype=np.float64)
    ends = np.array([a[1] for _, (_, a, _) in pairs] + [b[1] for _, (_, _, b) in pairs])
    starts = np.array([a[0] for _, (_, a, _) in pairs] + [b[0] for _, (_, _, b) in pairs])
    return cols, sign, ends, starts


_ANGLE_INDEX = {feet: _angle_index(feet) for feet in (False, True)}


def frame_terms(xy: np.ndarray, feet: bool) -> np.ndarray:
    """Direction-free per-frame terms `[T, NUM_TERMS]` from cleaned image-pixel xy `[T, V, 2]` (y down).

    Columns 0-6 are the angle series for s = +1 (degrees), column 7 the pixel x distance left - right ankle (see
    `orient` for the series), columns 8-11 the pixel x of the left heel, left toe, right heel, right toe (the ankles
    without feet), from which `stance_events` finds the contacts and toe-offs. Computing them once per frame is what
    lets a live window reuse them.
    """
    t_len, v = xy.shape[:2]
    pts = np.empty((t_len, 24, 2))
    pts[:, :v] = xy
    pts[:, _H] = 0.5 * (xy[:, HIP_L] + xy[:, HIP_R])
    pts[:, _S] = 0.5 * (xy[:, SHOULDER_L] + xy[:, SHOULDER_R])
    pts[:, _U] = pts[:, _H] - (0.0, 1.0)  # image y points down
    pts[..., 1] *= -1.0
    cols, sign, ends, starts = _ANGLE_INDEX[feet]
    vec = pts[:, ends] - pts[:, starts]  # [T, 2 * pairs, 2]: the a vectors, then the b vectors
    a, b = vec[:, : len(cols)], vec[:, len(cols) :]
    out = np.empty((t_len, NUM_TERMS))
    out[:, cols] = sign * np.degrees(
        np.arctan2(a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0], a[..., 0] * b[..., 0] + a[..., 1] * b[..., 1])
    )
    out[:, 7] = xy[:, ANKLE_L, 0] - xy[:, ANKLE_R, 0]
    out[:, 8:] = xy[:, [HEEL_L, TOE_L, HEEL_R, TOE_R] if feet else [ANKLE_L, ANKLE_L, ANKLE_R, ANKLE_R], 0]
    return out


def orient(terms: np.ndarray, direction: int, leg_px: float, feet: bool) -> np.ndarray:
    """Per-frame terms -> the series (`SERIES_NAMES` order) for walking direction `direction` and leg length."""
    series = direction * terms[:, : len(SERIES_NAMES)]
    series[:, _DIST_COL] /= leg_px
    if feet:
        series[:, _ANKLE_COLS] = 90.0 - series[:, _ANKLE_COLS]
    return series


# ---- events and scalars ----------------------------------------------------------------------------------------


def event_neighbourhood(fps: float) -> int:
    return max(1, round(EVENT_NEIGHBOURHOOD_S * fps))


def extrema(values: np.ndarray, k: int, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """Frames in [lo, hi) where `values` is a local max (+1) or min (-1) over +-k (first of a plateau).

    Needs lo >= k and hi <= len - k; NaN anywhere in the neighbourhood means no extremum there.
    """
    n = hi - lo
    if n <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    centre = values[lo:hi]
    is_max = np.isfinite(centre)
    is_min = is_max.copy()
    for j in range(1, k + 1):
        before = values[lo - j : hi - j]
        after = values[lo + j : hi + j]
        is_max &= (centre > before) & (centre >= after)
        is_min &= (centre < before) & (centre <= after)
    frames = np.flatnonzero(is_max | is_min)
    return frames + lo, np.where(is_max[frames], 1, -1)


def heel_strikes(frames: np.ndarray, kinds: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Events `[E, 2]` (frame, side 0 = left / 1 = right) from the extrema of the inter-ankle distance `dist`.

    `frames`, `kinds`: candidate extrema in time order (+1 max, -1 min of `dist`). Candidates are grouped by runs of
    frames where `dist` is known; nothing is merged or counted across a gap. Within a run: of two extrema of one
    kind in a row the more extreme stays; then, while two neighbours differ by less than `MIN_STEP_LEG`, the
    closest pair goes (only the outer one at a run's end); finally the first and last events must be confirmed by
    `dist` moving `MIN_STEP_LEG` back towards the other foot between them and the run's ends (a half-seen step at
    the window's edge is no event).
    """
    run = np.cumsum(np.isnan(dist))  # frames of one run (and the gap before it) share the count
    events: list[list[int]] = []
    group: list[list[int]] = []
    for f, kind in zip(frames.tolist(), kinds.tolist()):
        if group and run[f] != run[group[-1][0]]:
            events += _confirmed(_alternating(group, dist), dist, run)
            group = []
        if group and group[-1][1] == kind:
            if kind * dist[f] > kind * dist[group[-1][0]]:
                group[-1] = [f, kind]
        else:
            group.append([f, kind])
    if group:
        events += _confirmed(_alternating(group, dist), dist, run)
    return np.array([[f, 0 if kind > 0 else 1] for f, kind in events], dtype=np.int64).reshape(-1, 2)


def _alternating(ev: list[list[int]], dist: np.ndarray) -> list[list[int]]:
    """Drop pairs of neighbours that are no step: closer than `MIN_STEP_LEG` in value (noise), or closer in time
    than `MIN_STEP_FRACTION` of the median step (a left/right mix-up of the pose model flips the sign briefly;
    of such short steps the one with the smallest change in value goes first)."""

    def drop(i: int) -> None:  # the pair i, i + 1 (only the outer one at an end, to keep the alternation)
        if i == 0 and len(ev) > 2 or len(ev) == 2:
            del ev[0]
        elif i == len(ev) - 2:
            del ev[-1]
        else:
            del ev[i : i + 2]

    while len(ev) >= 2:
        gaps = [abs(dist[ev[i + 1][0]] - dist[ev[i][0]]) for i in range(len(ev) - 1)]
        i = int(np.argmin(gaps))
        if gaps[i] >= MIN_STEP_LEG:
            break
        drop(i)
    while len(ev) >= 3:
        steps = [ev[i + 1][0] - ev[i][0] for i in range(len(ev) - 1)]
        short = [i for i, st in enumerate(steps) if st < MIN_STEP_FRACTION * statistics.median(steps)]
        if not short:
            break
        drop(min(short, key=lambda i: abs(dist[ev[i + 1][0]] - dist[ev[i][0]])))  # the smallest of them
    return ev


def _confirmed(ev: list[list[int]], dist: np.ndarray, run: np.ndarray) -> list[list[int]]:
    """Keep the run's first/last event only if `dist` comes back by `MIN_STEP_LEG` before/after it in the run."""
    if not ev:
        return ev
    first, last = ev[0], ev[-1]
    start = int(np.searchsorted(run, run[first[0]], side="left"))  # a run starts after its gap's last frame
    start += bool(np.isnan(dist[start]))
    end = int(np.searchsorted(run, run[last[0]], side="right"))
    out = ev
    if first[1] * (dist[first[0]] - (np.max if first[1] < 0 else np.min)(dist[start : first[0] + 1])) < MIN_STEP_LEG:
        out = out[1:]
    if out and last[1] * (dist[last[0]] - (np.max if last[1] < 0 else np.min)(dist[last[0] : end])) < MIN_STEP_LEG:
        out = out[:-1]
    return out


def stance_events(events: np.ndarray, feet_x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Initial contacts and toe-offs `[E, 2]` (frame, side) from the heel-strike estimates and the feet's positions.

    `feet_x`: `[T, 4]` x of the left heel, left toe, right heel, right toe in leg lengths, positive in the walking
    direction (the ankles when the layout has no feet). The camera stands still, so a foot on the floor stands
    still in the image. For each estimated heel strike of a side (an extremum of the inter-ankle distance, which
    falls in that foot's stance), the footprint is the median heel and toe position from that event to the other
    foot's next event (double support, when both feet stand). The contact is the first frame, going forward from
    the last frame before the event at which the foot was clearly in swing (`CLEARLY_MOVING_LEG` behind its
    footprint), at which the heel or the toe is within `CONTACT_LEG` of its footprint (a heel strike or a toe
    strike); the toe-off is the first frame after the toe's last frame within `TOE_OFF_LEG` of its footprint, going
    back from the first frame it is clearly in swing. Event-by-event, where the toe does not stand still in double
    support (median deviation above `TOE_OFF_LEG`: a treadmill, a moving camera, bad tracking) or a search meets a
    gap or the window's edge, the estimated heel strike stays and that toe-off is not reported.
    """
    t_len = len(feet_x)
    contacts, toe_offs = [], []
    frames, sides = events[:, 0].tolist(), events[:, 1].tolist()
    for i, (e, side) in enumerate(zip(frames, sides)):
        heel, toe = feet_x[:, 2 * side], feet_x[:, 2 * side + 1]
        after = [f for f, sd in zip(frames[i + 1 :], sides[i + 1 :]) if sd != side]
        stand = slice(e, after[0] + 1) if after else slice(e, e)
        if not after or not np.isfinite(heel[stand]).any() or not np.isfinite(toe[stand]).any():
            contacts.append([e, side])  # no footprint to refine against (and no all-NaN medians)
            continue
        at_heel, at_toe = np.nanmedian(heel[stand]), np.nanmedian(toe[stand])
        if not np.nanmedian(np.abs(toe[stand] - at_toe)) <= TOE_OFF_LEG:  # the foot does not stand still
            contacts.append([e, side])
            continue
        f = e
        while f >= 0 and np.isfinite(heel[f]) and not (at_heel - heel[f] > CLEARLY_MOVING_LEG < at_toe - toe[f]):
            f -= 1
        if f >= 0 and np.isfinite(heel[f]):
            while f < e and at_heel - heel[f] > CONTACT_LEG and at_toe - toe[f] > CONTACT_LEG:
                f += 1
            contacts.append([f, side])
        else:
            contacts.append([e, side])
        g = e
        while g < t_len and np.isfinite(toe[g]) and not toe[g] - at_toe > CLEARLY_MOVING_LEG:
            g += 1
        if g < t_len and np.isfinite(toe[g]):
            while g > e and toe[g] - at_toe > TOE_OFF_LEG:
                g -= 1
            toe_offs.append([g + 1, side])
    as_array = lambda ev: np.array(sorted(ev), dtype=np.int64).reshape(-1, 2)  # noqa: E731
    return as_array(contacts), as_array(toe_offs)


def _stance_scalars(knee: np.ndarray, contacts: np.ndarray, toe_offs: np.ndarray, fps: float) -> list[float]:
    """Stance time, swing time, their ratio, knee flexion at contact (left, right) and least knee flexion in stance
    (left, right): means over the window's stance phases (a contact and the same foot's next toe-off, no missing
    knee frames between them) and swing phases (a toe-off and the same foot's next contact)."""
    stance: list[float] = []
    swing: list[float] = []
    at_contact: tuple[list[float], list[float]] = ([], [])
    lowest: tuple[list[float], list[float]] = ([], [])
    for side in (0, 1):
        ics = contacts[contacts[:, 1] == side, 0]
        tos = toe_offs[toe_offs[:, 1] == side, 0]
        for ic in ics:
            if np.isfinite(knee[ic, side]):
                at_contact[side].append(float(knee[ic, side]))
            later = tos[tos > ic]
            if len(later) and not (len(ics[(ics > ic) & (ics < later[0])])):
                phase = knee[ic : later[0], side]
                stance.append((later[0] - ic) / fps)
                if np.isfinite(phase).all():
                    lowest[side].append(float(phase.min()))
        for to in tos:
            later = ics[ics > to]
            if len(later) and not len(tos[(tos > to) & (tos < later[0])]):
                swing.append((later[0] - to) / fps)
    st, sw = _mean(stance), _mean(swing)
    return [st, sw, st / sw if sw > 0 else float("nan"), *map(_mean, at_contact), *map(_mean, lowest)]


def _si(left: float, right: float) -> float:
    mean = 0.5 * (left + right)
    return abs(left - right) / mean * 100.0 if mean > 0 else float("nan")


def _mean(values: list[float]) -> float:
    return math.fsum(values) / len(values) if values else float("nan")


def window_scalars(
    series: np.ndarray, events: np.ndarray, speed: float, fps: float, toe_offs: np.ndarray | None = None
) -> np.ndarray:
    """The per-window scalars (`SCALAR_NAMES` order) from the series, the heel strikes, the speed and the toe-offs
    (none given: the stance-phase scalars are NaN).

    Steps are the intervals between consecutive events with no gap in the inter-ankle distance between them.
    Knee ROM and peak extension are means over the complete strides of that side (from one of its heel strikes
    to the next); with no complete stride in the window, over the whole window.
    """
    dist = series[:, _DIST_COL]
    run = np.cumsum(np.isnan(dist))
    frames, sides = events[:, 0].tolist(), events[:, 1].tolist()
    steps = [((b - a) / fps, side) for a, b, side in zip(frames, frames[1:], sides[1:]) if run[a] == run[b]]
    step_time = _mean([t for t, _ in steps])
    separation = [abs(float(dist[f])) for f in frames]
    rom, low = [], []
    for side in (0, 1):
        knee = np.append(series[:, side], np.nan)  # so that the whole window [0, T) has an end index
        strikes = [f for f, sd in zip(frames, sides) if sd == side]
        strides = [(a, b) for a, b in zip(strikes, strikes[1:]) if run[a] == run[b]] or [(0, len(knee) - 1)]
        starts = np.array(strides).ravel()  # reduceat over [a, b) and [b, next a): every other value is a stride
        seen = np.add.reduceat(np.isfinite(knee), starts)[::2] >= 2
        hi, lo = np.fmax.reduceat(knee, starts)[::2][seen], np.fmin.reduceat(knee, starts)[::2][seen]  # skip NaN
        rom.append(_mean((hi - lo).tolist()))
        low.append(_mean(lo.tolist()))
    return np.array(
        [
            60.0 / step_time if step_time > 0 else np.nan,
            step_time,
            speed * step_time,
            speed,
            rom[0],
            rom[1],
            low[0],
            low[1],
            _si(rom[0], rom[1]),
            _si(_mean([t for t, sd in steps if sd == 0]), _mean([t for t, sd in steps if sd == 1])),
            _si(
                _mean([v for v, sd in zip(separation, sides) if sd == 0]),
                _mean([v for v, sd in zip(separation, sides) if sd == 1]),
            ),
            *_stance_scalars(series[:, :2], events, np.zeros((0, 2), np.int64) if toe_offs is None else toe_offs, fps),
        ]
    )


def assemble(
    terms: np.ndarray,
    candidates: tuple[np.ndarray, np.ndarray],
    slope_px: float,
    direction: int,
    leg_px: float,
    feet: bool,
    fps: float,
) -> GaitFeatures:
    """Window features from per-frame terms, extrema of the raw inter-ankle term, the mid-hip slope and the scale."""
    series = orient(terms, direction, leg_px, feet)
    frames, kinds = candidates
    estimates = heel_strikes(frames, kinds * direction, series[:, _DIST_COL])
    events, toe_offs = stance_events(estimates, direction * terms[:, len(SERIES_NAMES) :] / leg_px)
    speed = direction * slope_px * fps / leg_px
    scalars = window_scalars(series, events, speed, fps, toe_offs)
    return GaitFeatures(
        series.astype(np.float32), scalars.astype(np.float32), events, float(fps), leg_px, direction, toe_offs
    )


# ---- public entry points ---------------------------------------------------------------------------------------


def compute_features(keypoints: np.ndarray, layout: str, fps: float) -> GaitFeatures:
    """Gait features of one window of raw keypoints `[T, V, 3]` (x, y pixels + confidence) of `layout`."""
    kp, feet = as_coco(keypoints, layout, fps)
    xy, _ = clean(kp, Cleaning.for_fps(float(fps)))
    return _batch_features(xy, feet, float(fps))


def _batch_features(xy: np.ndarray, feet: bool, fps: float) -> GaitFeatures:
    terms = frame_terms(xy, feet)
    k = event_neighbourhood(fps)
    return _features(xy, terms, leg_lengths(xy), extrema(terms[:, 7], k, k, len(xy) - k), feet, fps)


def _features(
    xy: np.ndarray,
    terms: np.ndarray,
    legs: np.ndarray,
    candidates: tuple[np.ndarray, np.ndarray],
    feet: bool,
    fps: float,
) -> GaitFeatures:
    """Window features from cleaned pixels, their per-frame terms and leg lengths, and the inter-ankle extrema."""
    leg_px = leg_length(legs)
    slope = progression(mid_hip(xy)[:, 0])
    direction = walking_direction(slope, len(xy), leg_px, xy, feet)
    return assemble(terms, candidates, slope, direction, leg_px, feet, fps)


GRAVITY = 9.81  # m/s^2


def hof_dimensionless(feats: GaitFeatures, leg_length_m: float) -> dict[str, float]:
    """Speed, cadence and step length in Hof's (1996) dimensionless form for a leg length in metres: speed /
    sqrt(g L), steps per second x sqrt(L / g), step length / L. A single video has no metric scale, so the leg
    length must come from outside (e.g. the child's measured height); the features themselves are in leg lengths."""
    if not (isinstance(leg_length_m, (int, float, np.floating)) and 0.2 <= leg_length_m <= 1.5):
        raise CpgaitError(f"leg length is {leg_length_m!r} m; expected a hip-to-ankle length of 0.2-1.5 m")
    root = math.sqrt(leg_length_m / GRAVITY)
    return {
        "speed": feats.scalar("speed") * root,  # (leg/s) x L / sqrt(g L)
        "cadence": feats.scalar("cadence") / 60.0 * root,
        "step_length": feats.scalar("step_length"),
    }


def _resolve(name: str, names: tuple[str, ...], kind: str) -> tuple[int, bool]:
    """Column of a model input name among `names`, and whether it is the missing-value mask (`MASK_SUFFIX`)."""
    mask = name.endswith(MASK_SUFFIX) and name.removesuffix(MASK_SUFFIX) in names
    return _name_index(names, name.removesuffix(MASK_SUFFIX) if mask else name, kind), mask


def _scaled(
    values: np.ndarray, names: tuple[str, ...], wanted: Sequence[str], kind: str, specs: dict | None = None
) -> np.ndarray:
    """Columns of `values` (last axis = `names`) for the model: value / scale, NaN -> 0; a `<name>_known` column
    is 1 where the value is known and 0 where it is missing, so the model can tell a missing value from a 0.
    `specs`: name -> FeatureSpec for the scales (default the clinical `SPECS`)."""
    specs = SPECS if specs is None else specs
    cols = [_resolve(n, names, kind) for n in wanted]
    out = np.empty(values.shape[:-1] + (len(cols),))
    for j, (i, mask) in enumerate(cols):
        known = np.isfinite(values[..., i])
        out[..., j] = known if mask else np.where(known, values[..., i], 0.0) / specs[names[i]].scale
    return out


def with_masks(names: Sequence[str]) -> tuple[str, ...]:
    """Feature names followed by their missing-value masks (the model inputs a new model is trained on)."""
    return tuple(names) + tuple(n + MASK_SUFFIX for n in names)


def model_inputs(
    pre: Preprocessed, feats: GaitFeatures, series_names: Sequence[str], scalar_names: Sequence[str]
) -> dict[str, np.ndarray]:
    """The model's inputs for one window from its preprocessed keypoints and features (see `window_inputs`).

    Names of the per-joint bank (`feature_bank`) are computed from the same normalised keypoints and heel strikes,
    only when the model asks for one.
    """
    body = pre.keypoints[:, :17]
    skeleton = np.where(pre.valid[:, :17, None], body, 0.0).transpose(2, 0, 1)
    series, scalars = feats.series, feats.scalars
    s_names, c_names, specs = SERIES_NAMES, SCALAR_NAMES, SPECS
    wanted = {n.removesuffix(MASK_SUFFIX) for n in (*series_names, *scalar_names)}
    if not wanted <= set(SPECS):
        from cpgait.runtime.gait import feature_bank  # the bank builds on this module's specs

        b_series, b_scalars = feature_bank.bank_values(body[..., :2], feats.events, feats.fps)
        series, scalars = np.concatenate([series, b_series], axis=1), np.concatenate([scalars, b_scalars])
        s_names, c_names = s_names + feature_bank.BANK_SERIES, c_names + feature_bank.BANK_SCALARS
        specs = feature_bank.REGISTRY_SPECS
    return {
        "skeleton": np.ascontiguousarray(skeleton, dtype=np.float32),
        "gait_series": np.ascontiguousarray(_scaled(series, s_names, series_names, "series", specs).T, np.float32),
        "gait_scalars": _scaled(scalars, c_names, scalar_names, "scalar", specs).astype(np.float32),
    }


def window_inputs(
    keypoints: np.ndarray, layout: str, fps: float, series_names: Sequence[str], scalar_names: Sequence[str]
) -> dict[str, np.ndarray]:
    """The model inputs for one window of raw keypoints (the train/serve parity point; a batch axis goes in front).

    "skeleton": float32 `[3, T, 17]`: normalised x, y (leg lengths from the mid-hip, y up, forward +x) and the
    confidence of the 17 COCO joints; missing joints are 0 with confidence 0.
    "gait_series": float32 `[len(series_names), T]` and "gait_scalars": float32 `[len(scalar_names)]`: each feature
    / its `FeatureSpec.scale`, NaN -> 0; a name `<feature>_known` is that feature's missing-value mask (1 known,
    0 missing).
    """
    kp, feet = as_coco(keypoints, layout, fps)
    xy, _ = clean(kp, Cleaning.for_fps(float(fps)))
    feats = _batch_features(xy, feet, float(fps))
    pre = normalised(kp, xy, feats.leg_length_px, feats.direction, feats.fps)
    return model_inputs(pre, feats, series_names, scalar_names)


class IncrementalFeatures:
    """The gait features of a sliding window of the last `window` frames, updated one frame at a time (live loop).

    `push` stores the frame in a ring buffer; every `BLOCK` frames it finalises the frames whose neighbourhood
    (`Cleaning.reach` frames either side) is complete: their cleaned positions, per-frame terms, leg-length samples
    and whether each is an inter-ankle extremum (the event candidates). Those values do not change while the frame
    stays in the window, so `features` / `inputs` only recompute the first `reach` frames (where the window's start
    makes the batch functions treat them as an edge) and the frames not yet final, plus the window summaries (median
    leg length, mid-hip slope, the event list, the scalars). The result equals `compute_features` /
    `window_inputs` on the same raw window (the tests check it); before `window` frames have arrived, or for a window
    too short to have an interior, they simply run those functions. A window with no usable leg (nobody in view)
    raises `CpgaitError`, as the batch functions do.

    Cost: `push` is O(V) amortised. At 30 fps `reach` is 25 frames, so at T = 124 the recomputed edges are about
    half the window and a refresh costs about as much as one batch call; refresh at the classifier's stride, not
    every frame, when that matters (`cpgait-bench features` measures both).
    """

    BLOCK = 16  # frames finalised together (amortises the per-call cost of the cleaning)

    def __init__(self, layout: str, fps: float, window: int = 124) -> None:
        lay = get_layout(layout)
        if not (isinstance(fps, (int, float, np.floating, np.integer)) and math.isfinite(fps) and fps > 0):
            raise CpgaitError(f"fps is {fps!r}; expected a number > 0")
        if not (isinstance(window, (int, np.integer)) and window >= 2):
            raise CpgaitError(f"window is {window!r}; expected a whole number of frames >= 2")
        self.layout, self.fps, self.window = lay.name, float(fps), int(window)
        self._joints = lay.num_joints
        self._coco = to_coco17(np.zeros((lay.num_joints, 3)), lay.name)[1]
        self._feet = self._coco == "coco17_feet"
        self._cleaning = Cleaning.for_fps(self.fps)
        self._m, self._k = self._cleaning.reach, event_neighbourhood(self.fps)
        self._cached = self.window >= 2 * self._m + self.BLOCK + 2 * self._k + 2
        v = 21 if self._feet else 17
        ring = 2 * self.window  # every frame is written twice so the window is always one contiguous slice
        self._raw = np.zeros((ring, v, 3))
        self._xy = np.full((ring, v, 2), np.nan)
        self._terms = np.full((ring, NUM_TERMS), np.nan)
        self._legs = np.full(ring, np.nan)
        self._kind = np.zeros(ring, dtype=np.int64)  # +1 / -1: the frame is a max / min of the inter-ankle term
        self._n = 0  # frames pushed
        self._done = 0  # frames finalised
        self._last: tuple[int, np.ndarray, GaitFeatures] | None = None  # (frames pushed, xy, features)

    @property
    def ready(self) -> bool:
        """Whether a full window has arrived (the model expects exactly `window` frames)."""
        return self._n >= self.window

    def _recent(self, buf: np.ndarray, length: int, end: int | None = None) -> np.ndarray:
        """Frames [end - length, end) of a ring buffer (default end: the newest), oldest first, as a view."""
        start = ((self._n if end is None else end) - length) % self.window
        return buf[start : start + length]

    def _store(self, buf: np.ndarray, first: int, values: np.ndarray) -> None:
        """Write the values of frames first, first + 1, ... into both copies of a ring buffer."""
        at = (first + np.arange(len(values))) % self.window
        buf[at] = values
        buf[at + self.window] = values

    def push(self, frame_kp: np.ndarray) -> None:
        """Add one frame of raw keypoints `[V, 3]` (x, y pixels + confidence) of this layout."""
        kp = np.asarray(frame_kp)
        if kp.shape != (self._joints, 3) or not np.issubdtype(kp.dtype, np.number):
            raise CpgaitError(
                f"frame has shape {kp.shape}, dtype {kp.dtype}; expected ({self._joints}, 3) numbers "
                f"for layout {self.layout}"
            )
        p = self._n % self.window
        self._raw[p] = self._raw[p + self.window] = to_coco17(kp.astype(np.float64), self.layout)[0]
        self._n += 1
        if self._cached and self._n - self._m - self._done >= self.BLOCK:
            self._finalise()

    def _finalise(self) -> None:
        """Clean the frames [done, n - reach) with their full neighbourhood and cache their per-frame values."""
        m, k, done, end = self._m, self._k, self._done, self._n - self._m
        lo = max(0, done - m)
        xy, _ = clean(self._recent(self._raw, self._n - lo), self._cleaning)
        block = xy[done - lo : end - lo]
        terms = frame_terms(block, self._feet)
        self._store(self._xy, done, block)
        self._store(self._terms, done, terms)
        self._store(self._legs, done, leg_lengths(block))
        first = max(done - 2 * k, 0)  # extrema whose +-k neighbourhood is now final: centres [first + k, end - k)
        d = self._recent(self._terms, end - first, end)[:, 7]
        frames, kinds = extrema(d, k, k, len(d) - k)
        found = np.zeros(max(len(d) - 2 * k, 0), dtype=np.int64)
        found[frames - k] = kinds
        self._store(self._kind, first + k, found)
        self._done = end

    def features(self) -> GaitFeatures:
        """The features of the current window (the last `window` frames, or all of them before that)."""
        if not self.ready or not self._cached:
            return compute_features(self._available(), self._coco, self.fps)
        return self._window()[1]

    def inputs(self, series_names: Sequence[str], scalar_names: Sequence[str]) -> dict[str, np.ndarray]:
        """The model inputs for the current window, as `window_inputs` gives them."""
        if not self.ready or not self._cached:
            return window_inputs(self._available(), self._coco, self.fps, series_names, scalar_names)
        xy, feats = self._window()
        pre = normalised(self._recent(self._raw, self.window), xy, feats.leg_length_px, feats.direction, self.fps)
        return model_inputs(pre, feats, series_names, scalar_names)

    def _available(self) -> np.ndarray:
        if self._n < 2:
            raise CpgaitError(f"{self._n} frame(s) pushed; gait features need at least 2")
        return self._recent(self._raw, min(self._n, self.window))

    def _window(self) -> tuple[np.ndarray, GaitFeatures]:
        """Cleaned pixels and features of the current window (kept until the next push: `inputs` then `features`
        of the same window cost one computation)."""
        if self._last is None or self._last[0] != self._n:
            self._last = (self._n, *self._compute_window())
        return self._last[1], self._last[2]

    def _compute_window(self) -> tuple[np.ndarray, GaitFeatures]:
        w, m, k = self.window, self._m, self._k
        interior_end = self._done - (self._n - w)  # window positions [m, interior_end) are cached
        raw = self._recent(self._raw, w)
        # The head (its start is the window's edge) and the frames not yet final, cleaned in one call with a
        # 2 * reach run of missing frames between them, which the cleaning treats exactly like a window edge.
        filler = np.zeros((2 * m,) + raw.shape[1:])
        filler[..., :2] = np.nan
        edges, _ = clean(np.concatenate([raw[: 2 * m], filler, raw[interior_end - m :]]), self._cleaning)
        edges = np.concatenate([edges[:m], edges[5 * m :]])
        edge_terms = frame_terms(edges, self._feet)
        edge_legs = leg_lengths(edges)

        def joined(cached: np.ndarray, edge: np.ndarray) -> np.ndarray:
            return np.concatenate([edge[:m], self._recent(cached, w)[m:interior_end], edge[m:]])

        xy, terms, legs = joined(self._xy, edges), joined(self._terms, edge_terms), joined(self._legs, edge_legs)
        # Extrema near the edges: the first m + 2k and last values of d side by side (no neighbourhood spans both).
        d = terms[:, 7]
        head, tail = d[: m + 2 * k], d[interior_end - 2 * k :]
        f_edge, k_edge = extrema(np.concatenate([head, tail]), k, k, len(head) + len(tail) - k)
        keep = (f_edge < m + k) | (f_edge >= len(head) + k)
        f_edge = np.where(f_edge < len(head), f_edge, f_edge - len(head) + interior_end - 2 * k)[keep]
        kinds = self._recent(self._kind, w)[m + k : interior_end - k]
        f_mid = np.flatnonzero(kinds)
        frames = np.concatenate([f_edge, f_mid + m + k])
        order = np.argsort(frames, kind="stable")
        candidates = frames[order], np.concatenate([k_edge[keep], kinds[f_mid]])[order]
        return xy, _features(xy, terms, legs, candidates, self._feet, self.fps)
