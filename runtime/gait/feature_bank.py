"""The per-joint gait feature bank: features of every COCO-17 joint's motion, each tagged with the joints it needs.

Why: the study derives gait features *from the joints Grad-CAM picks*. With only clinical features (each needs a
whole leg) a top-k joint set selects nothing until k covers the legs. The bank gives every joint its own features,
so `select_features(top_k_joints)` grows with k from k = 1.

Body frame: the normalised keypoints of `cpgait.runtime.gait.keypoints.normalised` (mid-hip origin, leg lengths,
y up, walking direction +x). The hips (origin, direction) and the leg length (scale) are the frame every feature
is measured in; they are references, not part of a feature's `joints`. A feature's `joints` are the joints whose
motion it measures; selecting a joint set selects exactly the features whose joints it contains.

Per joint J (17 joints):
- series `J_speed` (leg/s): |d p_J / dt| per frame (central differences, NaN next to a missing frame).
- `J_rom_x`, `J_rom_y` (leg): max - min of J's x / y in the body frame (range of motion per axis).
- `J_speed_mean`, `J_speed_std` (leg/s): mean and standard deviation of `J_speed`.
- `J_stride_amp_x`, `J_stride_amp_y` (leg), `J_stride_phase_cos`, `J_stride_phase_sin`: amplitude of the
  stride-frequency (first-harmonic) component of J's x and y, and the phase of the x component relative to the
  left heel strike (phase 0 = x peaks at left heel strike). The gait cycle comes from the heel strikes, i.e. the
  ankles, so these also need `left_ankle` and `right_ankle`.
Per left/right pair P (eye, ear, shoulder, elbow, wrist, hip, knee, ankle):
- `sym_P_rom`, `sym_P_speed` (%): symmetry index |l - r| / (0.5 (l + r)) * 100 of rom_x + rom_y and of speed_mean.
Per segment (every COCO-17 edge a-b): `seg_a__b_incl_mean`, `seg_a__b_incl_rom` (deg): the segment's angle from
the upward vertical, forward positive (b - a for the edge's order), its mean and range.
Per joint where two limb segments meet (elbows, shoulders, hips, knees): series `angle_J` (deg, the angle between
the two segments, 180 = straight), and scalars `angle_J_mean`, `angle_J_rom`.

Model input = value / scale (the `FeatureSpec.scale`), NaN -> 0, and `<name>_known` masks, exactly as for the
clinical features (`features.model_inputs`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cpgait.errors import CpgaitError
from cpgait.runtime.core.layouts import COCO17
from cpgait.runtime.gait.features import FEATURES, FeatureSpec

JOINTS = COCO17.joints
PAIRS = ("eye", "ear", "shoulder", "elbow", "wrist", "hip", "knee", "ankle")
# joint -> (proximal neighbour, distal neighbour) of the two segments meeting there
ANGLES = {
    f"{side}_{joint}": (f"{side}_{a}", f"{side}_{b}")
    for side in ("left", "right")
    for joint, (a, b) in {
        "elbow": ("shoulder", "wrist"),
        "shoulder": ("hip", "elbow"),
        "hip": ("shoulder", "knee"),
        "knee": ("hip", "ankle"),
    }.items()
}
_CYCLE = ("left_ankle", "right_ankle")  # the heel strikes that set the gait cycle
_EDGES = tuple((JOINTS[a], JOINTS[b]) for a, b in COCO17.edges)


def _specs() -> tuple[FeatureSpec, ...]:
    out: list[FeatureSpec] = []
    for j in JOINTS:
        cyc = (j,) + tuple(c for c in _CYCLE if c != j)
        out += [
            FeatureSpec(f"{j}_speed", "series", "leg/s", (j,), 1.0, f"{j} speed in the body frame"),
            FeatureSpec(f"{j}_rom_x", "scalar", "leg", (j,), 1.0, f"{j} forward range of motion"),
            FeatureSpec(f"{j}_rom_y", "scalar", "leg", (j,), 1.0, f"{j} vertical range of motion"),
            FeatureSpec(f"{j}_speed_mean", "scalar", "leg/s", (j,), 1.0, f"{j} mean speed"),
            FeatureSpec(f"{j}_speed_std", "scalar", "leg/s", (j,), 1.0, f"{j} speed standard deviation"),
            FeatureSpec(f"{j}_stride_amp_x", "scalar", "leg", cyc, 1.0, f"{j} forward stride-frequency amplitude"),
            FeatureSpec(f"{j}_stride_amp_y", "scalar", "leg", cyc, 1.0, f"{j} vertical stride-frequency amplitude"),
            FeatureSpec(f"{j}_stride_phase_cos", "scalar", "1", cyc, 1.0, f"cos of {j} x phase vs left strike"),
            FeatureSpec(f"{j}_stride_phase_sin", "scalar", "1", cyc, 1.0, f"sin of {j} x phase vs left strike"),
        ]
    for p in PAIRS:
        both = (f"left_{p}", f"right_{p}")
        out += [
            FeatureSpec(f"sym_{p}_rom", "scalar", "%", both, 100.0, f"left/right symmetry of the {p} ROM"),
            FeatureSpec(f"sym_{p}_speed", "scalar", "%", both, 100.0, f"left/right symmetry of the {p} speed"),
        ]
    for a, b in _EDGES:
        seg = f"seg_{a}__{b}"
        out += [
            FeatureSpec(f"{seg}_incl_mean", "scalar", "deg", (a, b), 90.0, f"mean inclination of {a}-{b}"),
            FeatureSpec(f"{seg}_incl_rom", "scalar", "deg", (a, b), 90.0, f"range of the inclination of {a}-{b}"),
        ]
    for j, (a, b) in ANGLES.items():
        tag = (a, j, b)
        out += [
            FeatureSpec(f"angle_{j}", "series", "deg", tag, 90.0, f"angle {a}-{j}-{b}, 180 = straight"),
            FeatureSpec(f"angle_{j}_mean", "scalar", "deg", tag, 90.0, f"mean angle {a}-{j}-{b}"),
            FeatureSpec(f"angle_{j}_rom", "scalar", "deg", tag, 90.0, f"range of the angle {a}-{j}-{b}"),
        ]
    return tuple(out)


BANK: tuple[FeatureSpec, ...] = _specs()
BANK_SERIES: tuple[str, ...] = tuple(f.name for f in BANK if f.kind == "series")
BANK_SCALARS: tuple[str, ...] = tuple(f.name for f in BANK if f.kind == "scalar")
REGISTRY: tuple[FeatureSpec, ...] = FEATURES + BANK  # every feature a model can be given: clinical, then the bank
REGISTRY_SPECS: dict[str, FeatureSpec] = {f.name: f for f in REGISTRY}


def select_features(joints: Sequence[str], registry: Sequence[FeatureSpec] = REGISTRY) -> list[str]:
    """The features (registry order) whose joints are all among `joints` (COCO-17 names, e.g. Grad-CAM's top k)."""
    unknown = sorted(set(joints) - set(JOINTS))
    if unknown:
        raise CpgaitError(f"unknown joint name(s) {unknown}; expected COCO-17 names: {', '.join(JOINTS)}")
    chosen = set(joints)
    return [f.name for f in registry if set(f.joints) <= chosen]


def feature_spec(name: str) -> FeatureSpec:
    """The spec of a clinical or bank feature; a clear error for an unknown name (e.g. from a newer contract)."""
    try:
        return REGISTRY_SPECS[name]
    except KeyError:
        raise CpgaitError(f"unknown gait feature {name!r}; this cpgait knows {len(REGISTRY)} features") from None


def _si(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    mean = 0.5 * (left + right)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(mean > 0, np.abs(left - right) / mean * 100.0, np.nan)


def _nan_stat(fn, values: np.ndarray) -> np.ndarray:
    """NaN-skipping `fn` over axis 0 where a column has a finite value, NaN elsewhere (no all-NaN warnings)."""
    seen = np.isfinite(values).any(axis=0)
    out = np.full(values.shape[1:], np.nan)
    if seen.any():
        out[seen] = fn(values[:, seen], axis=0)
    return out


def _range(values: np.ndarray) -> np.ndarray:
    """max - min over axis 0 of the finite values, NaN where a column has none."""
    return _nan_stat(np.nanmax, values) - _nan_stat(np.nanmin, values)


def _inclination(vec: np.ndarray) -> np.ndarray:
    """Angle of vectors `[..., 2]` (x forward, y up) from the upward vertical, forward positive, degrees."""
    return np.degrees(np.arctan2(vec[..., 0], vec[..., 1]))


def _stride_fit(xy: np.ndarray, events: np.ndarray, fps: float) -> np.ndarray:
    """`[V, 4]`: first-harmonic amplitude of x and y at the stride frequency and cos, sin of the x phase relative to
    the left heel strike; NaN when the window holds fewer than two heel strikes."""
    out = np.full((xy.shape[1], 4), np.nan)
    if len(events) < 2:
        return out
    frames, sides = events[:, 0].astype(float), events[:, 1]
    left = frames[sides == 0]
    period = float(np.mean(np.diff(left))) if len(left) >= 2 else 2.0 * float(np.mean(np.diff(frames)))
    if not period > 0:
        return out
    start = left[0] if len(left) else frames[0] + 0.5 * period  # a right strike is half a stride from a left one
    phase = 2 * np.pi * (np.arange(len(xy)) - start) / period
    design = np.stack([np.ones_like(phase), np.cos(phase), np.sin(phase)], axis=1)
    for v in range(xy.shape[1]):
        seen = np.isfinite(xy[:, v]).all(axis=1)
        if seen.sum() < 0.5 * period:  # less than half a stride seen: no stable fit
            continue
        coef = np.linalg.lstsq(design[seen], xy[seen, v], rcond=None)[0]  # [3, 2]
        amp = np.hypot(coef[1], coef[2])
        out[v, :2] = amp
        if amp[0] > 0:
            out[v, 2:] = coef[1, 0] / amp[0], coef[2, 0] / amp[0]
    return out


def bank_values(body: np.ndarray, events: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Every bank feature of one window: series `[T, len(BANK_SERIES)]` and scalars `[len(BANK_SCALARS)]`.

    `body`: float `[T, 17, 2]` normalised COCO-17 x, y (NaN where missing); `events`: heel strikes `[E, 2]`
    (frame, side) as `GaitFeatures.events`; `fps`: frame rate. Values in units (not yet divided by the scale).
    """
    if body.ndim != 3 or body.shape[1:] != (len(JOINTS), 2):
        raise ValueError(f"body keypoints have shape {body.shape}; expected [T, {len(JOINTS)}, 2]")
    xy = body.astype(np.float64)
    vel = np.full_like(xy, np.nan)
    if len(xy) >= 3:
        vel[1:-1] = (xy[2:] - xy[:-2]) * (0.5 * fps)
    speed = np.hypot(vel[..., 0], vel[..., 1])  # [T, V]
    rom = _range(xy)  # [V, 2]
    s_mean, s_std = _nan_stat(np.nanmean, speed), _nan_stat(np.nanstd, speed)
    stride = _stride_fit(xy, events, fps)
    index = {j: i for i, j in enumerate(JOINTS)}
    named: dict[str, float | np.ndarray] = {}
    for v, j in enumerate(JOINTS):
        named[f"{j}_speed"] = speed[:, v]
        named[f"{j}_rom_x"], named[f"{j}_rom_y"] = rom[v]
        named[f"{j}_speed_mean"], named[f"{j}_speed_std"] = s_mean[v], s_std[v]
        amp_x, amp_y, cos, sin = stride[v]
        named.update({f"{j}_stride_amp_x": amp_x, f"{j}_stride_amp_y": amp_y})
        named.update({f"{j}_stride_phase_cos": cos, f"{j}_stride_phase_sin": sin})
    total_rom = rom.sum(axis=1)
    for p in PAIRS:
        left, right = index[f"left_{p}"], index[f"right_{p}"]
        named[f"sym_{p}_rom"] = _si(total_rom[left], total_rom[right])
        named[f"sym_{p}_speed"] = _si(s_mean[left], s_mean[right])
    a, b = np.array([[index[a], index[b]] for a, b in _EDGES]).T
    incl = _inclination(xy[:, b] - xy[:, a])  # [T, E]
    for (a_name, b_name), mean, spread in zip(_EDGES, _nan_stat(np.nanmean, incl), _range(incl)):
        named[f"seg_{a_name}__{b_name}_incl_mean"], named[f"seg_{a_name}__{b_name}_incl_rom"] = mean, spread
    mid = np.array([index[j] for j in ANGLES])
    prox, dist = (np.array([index[ab[i]] for ab in ANGLES.values()]) for i in (0, 1))
    u, w = xy[:, prox] - xy[:, mid], xy[:, dist] - xy[:, mid]
    angle = np.degrees(np.abs(np.arctan2(u[..., 0] * w[..., 1] - u[..., 1] * w[..., 0], (u * w).sum(axis=-1))))
    for i, (mean, spread) in enumerate(zip(_nan_stat(np.nanmean, angle), _range(angle))):
        j = list(ANGLES)[i]
        named[f"angle_{j}"], named[f"angle_{j}_mean"], named[f"angle_{j}_rom"] = angle[:, i], mean, spread
    series = np.stack([named[n] for n in BANK_SERIES], axis=1) if BANK_SERIES else np.zeros((len(xy), 0))
    return series, np.array([named[n] for n in BANK_SCALARS], dtype=np.float64)
