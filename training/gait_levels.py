"""The per-level parameter table of the synthetic gait model (GMFCS I-IV) and the draw of one synthetic child.

SYNTHETIC data for exercising the toolkit, not patient data. The per-level distributions are shaped after the
direction and rough size of differences reported for children with cerebral palsy; speed, cadence, stride length,
knee extension in stance, hip rotation and foot progression are calibrated so that the pooled population under
`LEVEL_MIX` matches the lab measurements summarised in `real_gait.py` (Kidzinski et al. 2020); `cpgait synth --report`
shows how closely. Cadence and step length are drawn in Hof's (1996) dimensionless form and scaled by the child's
leg length, so taller children take longer, slower steps.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from cpgait.errors import CpgaitError
from cpgait.training.kinematics import DEVICES, SIDES, Body, SubjectParams


@dataclass(frozen=True)
class Spread:
    """A per-level normal distribution of one parameter (clipped to `BOUNDS` when drawn)."""

    mean: float
    sd: float


@dataclass(frozen=True)
class LevelParams:
    """Distributions of the gait parameters of one level (the field names are those of `SubjectParams`, except
    `cadence_hof`, the dimensionless step frequency that `draw_subject` turns into steps per minute)."""

    cadence_hof: Spread
    step_length_leg: Spread
    stance_fraction: Spread
    knee_min_deg: Spread
    knee_rom_deg: Spread
    knee_contact_deg: Spread
    knee_loading_deg: Spread
    knee_peak_phase: Spread
    foot_contact_deg: Spread
    foot_stance_deg: Spread
    heel_rise: Spread
    swing_ankle_deg: Spread
    trunk_lean_deg: Spread
    trunk_pitch_deg: Spread
    trunk_roll_deg: Spread
    lateral_sway_leg: Spread
    vertical_bounce_leg: Spread
    arm_swing_deg: Spread
    arm_offset_deg: Spread
    elbow_flex_deg: Spread
    stride_cv: Spread
    stride_length_cv: Spread
    angle_sd_deg: Spread
    asymmetry: Spread
    hip_rotation_deg: Spread
    foot_progression_deg: Spread


def _table(**columns: tuple[tuple[float, float], ...]) -> tuple[LevelParams, ...]:
    return tuple(LevelParams(**{k: Spread(*v[level]) for k, v in columns.items()}) for level in range(4))


# (mean, sd) for GMFCS I, II, III, IV -- shaped after published paediatric CP gait data; the gait measures are
# calibrated against real_gait.py (see the module docstring), the rest are not fitted to any data.
LEVELS: tuple[LevelParams, ...] = _table(
    cadence_hof=((0.56, 0.075), (0.52, 0.08), (0.47, 0.08), (0.43, 0.08)),
    step_length_leg=((0.87, 0.065), (0.81, 0.065), (0.70, 0.065), (0.60, 0.065)),
    stance_fraction=((0.60, 0.015), (0.62, 0.02), (0.65, 0.025), (0.68, 0.03)),
    knee_min_deg=((6, 9.5), (8.5, 10.5), (13.5, 11.5), (19, 12)),
    knee_rom_deg=((62, 6), (52, 7), (40, 7), (29, 7)),
    knee_contact_deg=((5, 3), (8, 4), (10, 4), (9, 4)),
    knee_loading_deg=((10, 3), (7, 3), (4, 2), (1.5, 1.5)),
    knee_peak_phase=((0.72, 0.015), (0.74, 0.02), (0.77, 0.02), (0.79, 0.025)),
    foot_contact_deg=((14, 6), (6, 7), (-2, 7), (-10, 8)),
    foot_stance_deg=((0, 1), (0, 2), (-3, 3), (-7, 4)),
    heel_rise=((0.75, 0.05), (0.70, 0.06), (0.60, 0.07), (0.50, 0.08)),
    swing_ankle_deg=((0, 2), (-3, 3), (-6, 4), (-10, 5)),
    trunk_lean_deg=((4, 3), (7, 4), (11, 5), (16, 6)),
    trunk_pitch_deg=((1.5, 0.5), (2.5, 0.8), (3.5, 1.0), (5, 1.5)),
    trunk_roll_deg=((3, 1.5), (5, 2), (7, 2.5), (9, 3)),
    lateral_sway_leg=((0.04, 0.015), (0.06, 0.02), (0.08, 0.025), (0.10, 0.03)),
    vertical_bounce_leg=((0.0, 0.004), (0.04, 0.015), (0.07, 0.02), (0.10, 0.025)),
    # the arms vary between the children of a level far more than between levels (they do not encode the level)
    arm_swing_deg=((18, 7), (16, 7), (14, 7), (12, 7)),
    arm_offset_deg=((3, 8), (6, 9), (10, 10), (13, 11)),
    elbow_flex_deg=((25, 12), (32, 14), (40, 15), (46, 16)),
    stride_cv=((0.03, 0.008), (0.045, 0.01), (0.065, 0.015), (0.09, 0.02)),
    stride_length_cv=((0.035, 0.01), (0.05, 0.012), (0.07, 0.015), (0.09, 0.02)),
    angle_sd_deg=((1.5, 0.4), (2.3, 0.6), (3.3, 0.8), (4.5, 1.0)),
    asymmetry=((0.03, 0.02), (0.07, 0.03), (0.11, 0.04), (0.16, 0.05)),
    hip_rotation_deg=((0, 10), (1, 10.5), (2, 11), (3, 11)),
    foot_progression_deg=((-8, 14), (-7, 15), (-6, 16), (-5, 17)),
)

# Plausible ranges that every drawn value is clipped to.
BOUNDS: dict[str, tuple[float, float]] = {
    "cadence_hof": (0.25, 0.85),
    "step_length_leg": (0.2, 1.15),
    "stance_fraction": (0.55, 0.8),
    "knee_min_deg": (-14, 55),
    "knee_rom_deg": (10, 75),
    "knee_contact_deg": (0, 20),
    "knee_loading_deg": (0, 20),
    "knee_peak_phase": (0.68, 0.86),
    "foot_contact_deg": (-30, 30),
    "foot_stance_deg": (-20, 2),
    "heel_rise": (0.3, 0.9),
    "swing_ankle_deg": (-25, 8),
    "trunk_lean_deg": (-2, 35),
    "trunk_pitch_deg": (0, 10),
    "trunk_roll_deg": (0, 20),
    "lateral_sway_leg": (0.01, 0.25),
    "vertical_bounce_leg": (0, 0.2),
    "arm_swing_deg": (0, 35),
    "arm_offset_deg": (-10, 45),
    "elbow_flex_deg": (5, 110),
    "stride_cv": (0.005, 0.2),
    "stride_length_cv": (0.005, 0.2),
    "angle_sd_deg": (0.3, 8),
    "asymmetry": (0, 0.35),
    "hip_rotation_deg": (-35, 35),
    "foot_progression_deg": (-50, 40),
}
# How strongly each parameter follows the subject's severity score (towards the milder or more severe levels); the
# rest follow `SEVERITY_CORRELATION`. In real children cadence and stride length vary largely independently
# (speed-cadence r = 0.64 only) and knee extension hardly follows speed (r = -0.15); arms and leg rotations: not at all.
COUPLING: dict[str, float] = {
    "cadence_hof": 0.0,
    "knee_min_deg": 0.0,
    "arm_swing_deg": 0.0,
    "arm_offset_deg": 0.0,
    "elbow_flex_deg": 0.0,
    "hip_rotation_deg": 0.0,
    "foot_progression_deg": 0.0,
}
# Walking aids per level (GMFCS III walks with a hand-held device, IV mostly with a walker): probabilities of
# none, walker, crutches; an aid slows the child (its factor on cadence and step length).
DEVICE_ODDS: tuple[tuple[float, float, float], ...] = ((1, 0, 0), (1, 0, 0), (0.35, 0.3, 0.35), (0.05, 0.8, 0.15))
DEVICE_SLOWING = {"none": 1.0, "walker": 0.93, "crutches": 0.96}
# Level mix of a typical clinical gait-lab population (mostly ambulatory GMFCS I-III; an assumption: the real
# data's mix is not published with its figures). Used to pool the levels when comparing with the real figures.
LEVEL_MIX = (0.30, 0.40, 0.22, 0.08)
GRAVITY = 9.81
SEVERITY_CORRELATION = 0.6  # how strongly one subject's parameters move together towards milder or more severe


def draw_body(rng: np.random.Generator) -> Body:
    """Child anthropometry: height drawn around 1.4 m (0.95-1.85 m, school-age children and teenagers), segment
    proportions varied by a few per cent."""
    h = float(np.clip(rng.normal(1.40, 0.15), 0.95, 1.85))

    def part(fraction: float, cv: float = 0.04) -> float:
        return float(h * fraction * np.clip(1 + cv * rng.standard_normal(), 0.85, 1.15))

    leg = part(0.455, 0.03)
    thigh_share = float(np.clip(rng.normal(0.5, 0.015), 0.45, 0.55))
    return Body(
        height=h,
        thigh=leg * thigh_share,
        shank=leg * (1 - thigh_share),
        ankle_height=part(0.04),
        heel_back=part(0.04),
        toe_forward=part(0.11),
        trunk=part(0.29),
        neck=part(0.11),
        head_radius=part(0.07),
        upper_arm=part(0.18),
        forearm=part(0.145),
        hip_width=part(0.1),
        shoulder_width=part(0.2),
    )


def cadence_from_hof(cadence_hof: float, leg_m: float) -> float:
    """Steps per minute of a dimensionless step frequency (Hof 1996: f / sqrt(g / L)) at leg length L metres."""
    return 60.0 * cadence_hof * float(np.sqrt(GRAVITY / leg_m))


def draw_subject(level: int, rng: np.random.Generator) -> SubjectParams:
    """Draw one child at `level` (0-3): body, walking aid and gait parameters, correlated through one severity
    score (see `COUPLING`). Cadence and step length scale with the leg length (Hof's dimensionless gait)."""
    if level not in range(4):
        raise CpgaitError(f"level is {level}; expected 0-3 (GMFCS I-IV)")
    severity = rng.standard_normal()
    values: dict[str, float] = {}
    for f in fields(LevelParams):
        rho = COUPLING.get(f.name, SEVERITY_CORRELATION)
        spread: Spread = getattr(LEVELS[level], f.name)
        towards_severe = np.sign(getattr(LEVELS[3], f.name).mean - getattr(LEVELS[0], f.name).mean)
        z = rho * severity * towards_severe + np.sqrt(1 - rho**2) * rng.standard_normal()
        values[f.name] = float(np.clip(spread.mean + spread.sd * z, *BOUNDS[f.name]))
    side = SIDES[int(rng.integers(2))]
    body = draw_body(rng)
    device = DEVICES[int(rng.choice(3, p=DEVICE_ODDS[level]))]
    slowing = DEVICE_SLOWING[device]
    values["cadence_steps_per_min"] = cadence_from_hof(values.pop("cadence_hof") * slowing, body.leg)
    values["step_length_leg"] *= slowing
    if device == "crutches":  # hands held forward on the handles, swinging the crutches with the opposite leg
        values.update(
            arm_offset_deg=float(rng.uniform(15, 30)),
            elbow_flex_deg=float(rng.uniform(15, 35)),
            arm_swing_deg=float(rng.uniform(10, 22)),
        )
    return SubjectParams(level=level, body=body, affected_side=side, device=device, **values)
