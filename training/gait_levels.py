"""The per-level parameter table of the synthetic gait model (GMFCS I-IV) and the draw of one synthetic child.

SYNTHETIC data for exercising the toolkit, not patient data: the distributions are shaped after the direction and
rough size of differences reported for children with cerebral palsy, not fitted to any data set.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from cpgait.errors import CpgaitError
from cpgait.training.kinematics import SIDES, Body, SubjectParams


@dataclass(frozen=True)
class Spread:
    """A per-level normal distribution of one parameter (clipped to `BOUNDS` when drawn)."""

    mean: float
    sd: float


@dataclass(frozen=True)
class LevelParams:
    """Distributions of the gait parameters of one level (the field names are those of `SubjectParams`)."""

    cadence_steps_per_min: Spread
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


def _table(**columns: tuple[tuple[float, float], ...]) -> tuple[LevelParams, ...]:
    return tuple(LevelParams(**{k: Spread(*v[level]) for k, v in columns.items()}) for level in range(4))


# (mean, sd) for GMFCS I, II, III, IV -- shaped after published paediatric CP gait data, not fitted to any.
LEVELS: tuple[LevelParams, ...] = _table(
    cadence_steps_per_min=((135, 9), (121, 10), (103, 11), (86, 11)),
    step_length_leg=((0.80, 0.07), (0.68, 0.08), (0.53, 0.08), (0.39, 0.07)),
    stance_fraction=((0.60, 0.015), (0.62, 0.02), (0.65, 0.025), (0.68, 0.03)),
    knee_min_deg=((5, 3), (10, 4), (21, 6), (32, 7)),
    knee_rom_deg=((64, 5), (52, 6), (39, 6), (27, 6)),
    knee_contact_deg=((3, 2), (6, 3), (9, 4), (8, 4)),
    knee_loading_deg=((12, 3), (8, 3), (4, 2), (1.5, 1.5)),
    knee_peak_phase=((0.72, 0.015), (0.74, 0.02), (0.77, 0.02), (0.79, 0.025)),
    foot_contact_deg=((18, 4), (8, 5), (-2, 6), (-12, 7)),
    foot_stance_deg=((0, 1), (0, 2), (-3, 3), (-7, 4)),
    heel_rise=((0.75, 0.05), (0.70, 0.06), (0.60, 0.07), (0.50, 0.08)),
    swing_ankle_deg=((0, 2), (-3, 3), (-6, 4), (-10, 5)),
    trunk_lean_deg=((4, 2), (7, 3), (12, 4), (18, 5)),
    trunk_pitch_deg=((1.5, 0.5), (2.5, 0.8), (3.5, 1.0), (5, 1.5)),
    trunk_roll_deg=((3, 1), (5, 1.5), (8, 2), (11, 3)),
    lateral_sway_leg=((0.04, 0.01), (0.06, 0.015), (0.09, 0.02), (0.12, 0.03)),
    vertical_bounce_leg=((0.0, 0.004), (0.05, 0.01), (0.09, 0.015), (0.13, 0.02)),
    arm_swing_deg=((20, 4), (15, 4), (10, 3), (6, 3)),
    arm_offset_deg=((0, 3), (5, 4), (14, 6), (24, 8)),
    elbow_flex_deg=((20, 5), (32, 8), (50, 10), (70, 12)),
    stride_cv=((0.03, 0.008), (0.045, 0.01), (0.065, 0.015), (0.09, 0.02)),
    stride_length_cv=((0.035, 0.01), (0.05, 0.012), (0.07, 0.015), (0.09, 0.02)),
    angle_sd_deg=((1.5, 0.4), (2.3, 0.6), (3.3, 0.8), (4.5, 1.0)),
    asymmetry=((0.03, 0.02), (0.07, 0.03), (0.11, 0.04), (0.16, 0.05)),
)

# Plausible ranges that every drawn value is clipped to.
BOUNDS: dict[str, tuple[float, float]] = {
    "cadence_steps_per_min": (50, 180),
    "step_length_leg": (0.15, 1.1),
    "stance_fraction": (0.55, 0.8),
    "knee_min_deg": (-3, 50),
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
}
SEVERITY_CORRELATION = 0.6  # how strongly one subject's parameters move together towards milder or more severe


def draw_body(rng: np.random.Generator) -> Body:
    """Child anthropometry: height 0.9-1.5 m, segment proportions varied by a few per cent."""
    h = rng.uniform(0.9, 1.5)

    def part(fraction: float, cv: float = 0.04) -> float:
        return float(h * fraction * np.clip(1 + cv * rng.standard_normal(), 0.85, 1.15))

    leg = part(0.455, 0.03)
    thigh_share = float(np.clip(rng.normal(0.5, 0.015), 0.45, 0.55))
    return Body(
        height=float(h),
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


def draw_subject(level: int, rng: np.random.Generator) -> SubjectParams:
    """Draw one child at `level` (0-3): body and gait parameters, correlated through one severity score."""
    if level not in range(4):
        raise CpgaitError(f"level is {level}; expected 0-3 (GMFCS I-IV)")
    severity = rng.standard_normal()
    rho = SEVERITY_CORRELATION
    values: dict[str, float] = {}
    for f in fields(LevelParams):
        spread: Spread = getattr(LEVELS[level], f.name)
        towards_severe = np.sign(getattr(LEVELS[3], f.name).mean - getattr(LEVELS[0], f.name).mean)
        z = rho * severity * towards_severe + np.sqrt(1 - rho**2) * rng.standard_normal()
        values[f.name] = float(np.clip(spread.mean + spread.sd * z, *BOUNDS[f.name]))
    side = SIDES[int(rng.integers(2))]
    return SubjectParams(level=level, body=draw_body(rng), affected_side=side, **values)
