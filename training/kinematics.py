"""Kinematic model of a walking child for synthetic data: joint-angle curves over the gait cycle and forward kinematics
of a body whose left and right limbs are offset sideways (3-D points in metres). Each leg moves in a plane turned
about the vertical through its hip by the child's hip rotation, and each foot points along its foot progression
angle, so both show up (foreshortened) in a side view. A walker or forearm crutches carry the hands.

Walker frame: x forward along the walk, y up from the floor, z towards the walker's left. Angles in degrees:
thigh and shank angles are measured from the downward vertical, positive when the distal end is in front; knee
flexion = thigh - shank (0 = straight); hip flexion = thigh + trunk lean (angle between the trunk line and the thigh);
ankle dorsiflexion = foot angle - shank angle (foot angle: heel->toe line above the horizontal, toe up positive), which
is 90 deg minus the angle between shank and foot. Phase 0 of a leg's cycle is its initial contact, phase
`stance_fraction` its toe-off. Rotations about the vertical: positive = internal (toes towards the midline).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

GRID = 256  # samples per gait cycle of the smoothed curves
HARMONICS = 7  # Fourier harmonics kept: smooth like measured joint angles, while keeping the peaks
SIDES = ("left", "right")
DEVICES = ("none", "walker", "crutches")
WALKER_MARGIN_M = 0.1  # a walker's frame stands this far outside each shoulder (children's walkers: ~0.45-0.55 m wide)


@dataclass(frozen=True)
class Body:
    """Segment lengths in metres (joint to joint; the foot is heel, ankle and toe points)."""

    height: float
    thigh: float
    shank: float
    ankle_height: float
    heel_back: float
    toe_forward: float
    trunk: float
    neck: float
    head_radius: float
    upper_arm: float
    forearm: float
    hip_width: float
    shoulder_width: float

    def __post_init__(self) -> None:
        for f in fields(self):
            if not getattr(self, f.name) > 0:
                raise ValueError(f"body {f.name} is {getattr(self, f.name)}; expected a length > 0 m")

    @property
    def leg(self) -> float:
        """Leg length = thigh + shank, the unit the gait features scale by."""
        return self.thigh + self.shank


@dataclass(frozen=True)
class SubjectParams:
    """Everything that makes one synthetic child walk the way it does (drawn per subject, shared by its walks)."""

    level: int  # 0-3 = GMFCS I-IV, the level the parameters were drawn at
    body: Body
    cadence_steps_per_min: float
    step_length_leg: float  # mean step length / leg length
    stance_fraction: float  # toe-off phase
    knee_min_deg: float  # least knee flexion in stance (crouch when large)
    knee_rom_deg: float  # peak swing flexion - knee_min
    knee_contact_deg: float  # knee flexion at contact, above knee_min
    knee_loading_deg: float  # loading-response flexion wave after contact
    knee_peak_phase: float  # phase of peak swing flexion
    foot_contact_deg: float  # foot angle at contact: > 0 heel strike, ~0 flat foot, < 0 toe contact
    foot_stance_deg: float  # foot angle in mid-stance (< 0: the heel stays off the floor)
    heel_rise: float  # fraction of stance at which the heel rises
    swing_ankle_deg: float  # ankle angle in swing (< 0: equinus)
    trunk_lean_deg: float  # mean forward lean of the hip->shoulder line
    trunk_pitch_deg: float  # amplitude of the lean's oscillation (twice a stride)
    trunk_roll_deg: float  # amplitude of the sideways trunk tilt (once a stride)
    lateral_sway_leg: float  # amplitude of the sideways pelvis sway, in leg lengths
    vertical_bounce_leg: float  # extra rise of the whole body at mid-stance (bouncy gait), in leg lengths
    arm_swing_deg: float
    arm_offset_deg: float  # arms held forward (high guard) when large
    elbow_flex_deg: float
    stride_cv: float  # stride-to-stride coefficient of variation of stride time
    stride_length_cv: float
    angle_sd_deg: float  # stride-to-stride SD of joint-angle offsets
    asymmetry: float  # 0 = symmetric; scales the differences of the affected side
    affected_side: str
    hip_rotation_deg: float = 0.0  # mean hip rotation (leg plane turned about the vertical), internal positive
    foot_progression_deg: float = 0.0  # mean foot progression angle, internal (in-toeing) positive
    device: str = "none"  # walking aid: none, walker or (forearm) crutches

    def __post_init__(self) -> None:
        if self.level not in range(4):
            raise ValueError(f"level is {self.level}; expected 0-3 (GMFCS I-IV)")
        if self.affected_side not in SIDES:
            raise ValueError(f"affected_side is {self.affected_side!r}; expected 'left' or 'right'")
        if self.device not in DEVICES:
            raise ValueError(f"device is {self.device!r}; expected one of {', '.join(DEVICES)}")
        for name, lo, hi in (
            ("cadence_steps_per_min", 20, 250),
            ("step_length_leg", 0.05, 1.5),
            ("stance_fraction", 0.5, 0.85),
            ("knee_peak_phase", 0.6, 0.9),
            ("heel_rise", 0.2, 1.0),
            ("asymmetry", 0.0, 0.5),
            ("hip_rotation_deg", -45.0, 45.0),
            ("foot_progression_deg", -60.0, 60.0),
        ):
            if not lo <= getattr(self, name) <= hi:
                raise ValueError(f"{name} is {getattr(self, name)}; expected {lo}-{hi}")

    @property
    def stride_time_s(self) -> float:
        return 120.0 / self.cadence_steps_per_min


@dataclass(frozen=True)
class Walk:
    """One walk in the walker frame, sampled at the frame times."""

    times: np.ndarray  # [T] seconds
    points: np.ndarray  # [T, 21, 3] COCO-17 + heels + toes, metres
    angles: dict[str, dict[str, np.ndarray]]  # thigh/shank/knee/hip/ankle/foot -> side -> [T] degrees
    trunk_lean_deg: np.ndarray  # [T]
    contacts: dict[str, np.ndarray]  # side -> initial-contact times (s) inside the walk
    toe_offs: dict[str, np.ndarray]  # side -> toe-off times (s) inside the walk
    pelvis: np.ndarray  # [T, 3]
    device: np.ndarray  # [T, S, 2, 3]: the walking aid as S line segments (end points, metres); S = 0 without one


def periodic_curve(points: list[tuple[float, float]], harmonics: int = HARMONICS) -> np.ndarray:
    """A smooth gait-cycle curve through control points (phase, value): linear interpolation, then a truncated
    Fourier series, as joint-angle curves are usually modelled. Returns GRID samples over one cycle."""
    phase, value = np.array(points, dtype=np.float64).T
    linear = np.interp(np.arange(GRID) / GRID, phase, value, period=1.0)
    spectrum = np.fft.rfft(linear)
    spectrum[harmonics + 1 :] = 0
    return np.fft.irfft(spectrum, GRID)


def at_phase(curve: np.ndarray, phase: np.ndarray | float) -> np.ndarray:
    """Evaluate a GRID-sampled periodic curve at (unwrapped) phases."""
    return np.interp(np.asarray(phase) % 1.0, np.arange(GRID) / GRID, curve, period=1.0)


def _sind(a: np.ndarray | float) -> np.ndarray:
    return np.sin(np.radians(a))


def _cosd(a: np.ndarray | float) -> np.ndarray:
    return np.cos(np.radians(a))


@dataclass(frozen=True)
class LegCurves:
    """Base thigh, knee and ankle curves of one leg over its gait cycle (GRID samples, degrees)."""

    thigh: np.ndarray
    knee: np.ndarray
    ankle: np.ndarray
    knee_min: float


def _impairment(s: SubjectParams, side: str) -> float:
    """How much worse than the subject's mean this side is: the affected side more, the other side a little less."""
    return s.asymmetry if side == s.affected_side else -0.3 * s.asymmetry


def _thigh_knee(s: SubjectParams, side: str) -> tuple[np.ndarray, np.ndarray, float]:
    """Knee curve from the level's parameters; thigh curve scaled and shifted so that the ankle's excursion behind
    the hip during stance matches the step length (no foot skating on average) and the foot lands at the intended
    distance in front of the pelvis."""
    a = _impairment(s, side)
    st = s.stance_fraction
    kmin = s.knee_min_deg + 20 * a
    rom = s.knee_rom_deg * (1 - a)
    kic = kmin + s.knee_contact_deg
    knee = periodic_curve(
        [
            (0.0, kic),
            (0.25 * st, kic + s.knee_loading_deg),
            (0.65 * st, kmin),
            (st, kmin + 0.55 * rom),
            (s.knee_peak_phase, kmin + rom),
            (0.94, kmin + 0.6 * s.knee_contact_deg),
        ]
    )
    shape = periodic_curve(
        [
            (0.0, 22),
            (0.12, 20),
            (0.3, 6),
            (st - 0.12, -12),
            (st - 0.06, -13),
            (st, -6),
            (st + 0.12, 14),
            (0.85, 24),
            (0.93, 23),
        ]
    )
    shape = shape - shape.mean()
    b = s.body
    stride = 2 * s.step_length_leg * b.leg
    centre = 0.05 * stride - a * stride / 8  # the affected side's foot lands less far in front

    def residual(gain: float, offset: float) -> np.ndarray:
        th = offset + gain * at_phase(shape, np.array([0.0, 0.5]))
        front, back = b.thigh * _sind(th) + b.shank * _sind(th - at_phase(knee, np.array([0.0, 0.5])))
        return np.array([front - back - stride / 2, (front + back) / 2 - centre])

    x = np.array([1.0, 0.0])
    for _ in range(6):  # Newton on (gain, offset) with a numerical Jacobian: converges in a few steps
        r = residual(*x)
        jac = np.column_stack([(residual(*(x + d)) - r) / 1e-3 for d in np.eye(2) * 1e-3])
        x = x - np.linalg.solve(jac, r)
    return x[1] + x[0] * shape, knee, kmin


def _ankle_below_hip(b: Body, thigh: float | np.ndarray, knee: float | np.ndarray) -> float:
    return float(b.thigh * _cosd(thigh) + b.shank * _cosd(thigh - knee))


def _foot_drop(b: Body, foot_deg: float) -> float:
    """How far the foot's lowest point (heel or toe) lies below the ankle at a foot angle."""
    heel = b.heel_back * _sind(foot_deg) + b.ankle_height * _cosd(foot_deg)
    toe = -b.toe_forward * _sind(foot_deg) + b.ankle_height * _cosd(foot_deg)
    return float(max(heel, toe))


def _toe_down_for(b: Body, drop: float, most: float) -> float:
    """Foot angle (toe down, at most `most`) that puts the toe `drop` below the ankle: the trailing foot stays on
    the floor while the leading foot lands."""
    r = np.hypot(b.ankle_height, b.toe_forward)
    beta = np.degrees(np.arctan2(b.toe_forward, b.ankle_height))
    tilt = beta - np.degrees(np.arccos(np.clip(drop / r, b.ankle_height / r, 1.0)))
    return float(min(-tilt, most))


def leg_curves(s: SubjectParams) -> dict[str, LegCurves]:
    """Both legs' curves. The ankle curve is shaped by the foot angles of the level (heel strike, flat foot or toe
    contact; heel down or up in mid-stance; equinus in swing), and in double support the trailing foot is tilted so
    that its toe is on the floor at the same height as the leading foot."""
    st = s.stance_fraction
    b = s.body
    tk = {side: _thigh_knee(s, side) for side in SIDES}
    contact = {side: s.foot_contact_deg - 25 * _impairment(s, side) for side in SIDES}
    stance = {side: min(s.foot_stance_deg - 10 * _impairment(s, side), 0.0) for side in SIDES}

    def foot_at(side: str, phase: float) -> float:  # the planned foot angle early in stance
        return contact[side] + (stance[side] - contact[side]) * min(phase / (0.1 * st), 1.0)

    def drop(side: str, phase: float) -> float:  # hip -> lowest foot point
        thigh, knee, _ = tk[side]
        return _ankle_below_hip(b, at_phase(thigh, phase), at_phase(knee, phase)) + _foot_drop(b, foot_at(side, phase))

    curves = {}
    for side, other in (("left", "right"), ("right", "left")):
        thigh, knee, kmin = tk[side]
        shank = thigh - knee

        def ankle_height(phase: float) -> float:
            return _ankle_below_hip(b, at_phase(thigh, phase), at_phase(knee, phase))

        heel_off = min(max(s.heel_rise * st, 0.3 * st + 0.02), 0.46)
        opposite = _toe_down_for(b, drop(other, 0.0) - ankle_height(0.5), stance[side])
        toe_off = _toe_down_for(b, drop(other, st - 0.5) - ankle_height(st), opposite)
        swing = s.swing_ankle_deg - 10 * _impairment(s, side)
        feet = [
            (0.0, contact[side]),
            (0.1 * st, stance[side]),
            (0.3 * st, stance[side]),
            (heel_off, stance[side]),
            (0.5, opposite),
            (st, toe_off),
            (st + 0.12, float(at_phase(shank, st + 0.12)) + swing),
            (0.8, float(at_phase(shank, 0.8)) + swing),
            (0.93, contact[side]),
        ]
        # smoothed as foot angles, which the floor constrains in stance; the ankle angle follows from the shank
        ankle = periodic_curve(feet, harmonics=10) - shank
        curves[side] = LegCurves(thigh=thigh, knee=knee, ankle=ankle, knee_min=kmin)
    return curves


def _rotate(x: np.ndarray, y: np.ndarray, deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    c, s = _cosd(deg), _sind(deg)
    return x * c - y * s, x * s + y * c


def yaws(s: SubjectParams, side: str) -> tuple[float, float]:
    """(hip rotation, foot progression) of one leg in degrees, internal positive: the affected side turns in more."""
    a = 15 * _impairment(s, side)
    return s.hip_rotation_deg + a, s.foot_progression_deg + a


def _legs(s: SubjectParams, angles: dict[str, dict[str, np.ndarray]], pts: np.ndarray) -> None:
    """Hips, knees, ankles, heels and toes relative to the pelvis centre; the legs sit half a hip width sideways.
    The knee and ankle move in the leg's plane turned about the vertical through the hip by the hip rotation; the
    heel and toe lie along the foot progression angle about the vertical through the ankle."""
    b, n = s.body, len(pts)
    for side, joints, z in (("left", (11, 13, 15, 17, 19), 0.5), ("right", (12, 14, 16, 18, 20), -0.5)):
        hip_rot, foot_rot = yaws(s, side)
        inward = -np.sign(z)  # internal rotation turns forward-pointing parts towards the midline
        th, sh, ft = angles["thigh"][side], angles["shank"][side], angles["foot"][side]
        kx, ky = b.thigh * _sind(th), -b.thigh * _cosd(th)
        ax, ay = kx + b.shank * _sind(sh), ky - b.shank * _cosd(sh)
        hx, hy = _rotate(np.full(n, -b.heel_back), np.full(n, -b.ankle_height), ft)
        tx, ty = _rotate(np.full(n, b.toe_forward), np.full(n, -b.ankle_height), ft)
        z0 = z * b.hip_width
        leg: tuple[tuple[float | np.ndarray, float | np.ndarray], ...] = ((0.0, 0.0), (kx, ky), (ax, ay))
        for j, (x, y) in zip(joints[:3], leg):
            pts[:, j] = np.stack(np.broadcast_arrays(x * _cosd(hip_rot), y, z0 + inward * x * _sind(hip_rot)), -1)
        ankle = pts[:, joints[2]].copy()
        for j, (x, y) in zip(joints[3:], ((hx, hy), (tx, ty))):
            pts[:, j] = ankle + np.stack([x * _cosd(foot_rot), y, inward * x * _sind(foot_rot)], axis=-1)


def contact_points(angles: dict[str, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Per side and frame, the foot point that rests on the floor when the foot does: the heel while the toe is up
    (foot angle >= 0), else the toe. A stance foot rolls over it without sliding. Indices into the 21 points."""
    return {
        side: np.where(angles["foot"][side] >= 0, heel, toe)
        for side, heel, toe in (("left", 17, 19), ("right", 18, 20))
    }


# Face points around the head centre, in head radii (forward, up, left): nose, eyes, ears.
_FACE = ((0.9, -0.1, 0.0), (0.75, 0.2, 0.35), (0.75, 0.2, -0.35), (-0.05, 0.05, 0.9), (-0.05, 0.05, -0.9))


def _upper_body(
    s: SubjectParams,
    thigh: dict[str, np.ndarray],
    lean: np.ndarray,
    roll: np.ndarray,
    pelvis: np.ndarray,
    pts: np.ndarray,
) -> np.ndarray:
    """Shoulders, face and arms relative to the pelvis centre: the trunk leans forward and tilts sideways, the head
    compensates half of the lean. Without an aid each arm swings with the opposite thigh; on crutches the hands
    swing further, held forward on the handles, and each crutch reaches from the hand to the floor; with a walker
    the hands rest on its handles (elbows solved by two-link inverse kinematics) and the frame moves with the child.
    Returns the aid's line segments `[T, S, 2, 3]` relative to the pelvis centre (S = 0 without one)."""
    b, n = s.body, len(pts)
    sh_x = b.trunk * _sind(lean) * _cosd(roll)
    sh_y = b.trunk * _cosd(lean) * _cosd(roll)
    sh_z = b.trunk * _sind(roll)
    head_lean = 0.5 * lean
    head = np.stack([sh_x + b.neck * _sind(head_lean), sh_y + b.neck * _cosd(head_lean), sh_z], axis=-1)
    for j, offset in enumerate(_FACE):
        pts[:, j] = head + b.head_radius * np.array(offset)
    floor = -pelvis[:, 1]
    segments = []
    for (shoulder, elbow, wrist, z), other in zip(((5, 7, 9, 0.5), (6, 8, 10, -0.5)), ("right", "left")):
        pts[:, shoulder] = np.stack([sh_x, sh_y, sh_z + z * b.shoulder_width], axis=-1)
        swing = thigh[other] - thigh[other].mean()
        swing = swing / max(np.abs(swing).max(), 1e-6)
        if s.device == "walker":
            phase = np.cumsum(np.abs(np.gradient(swing))) / 2.0  # pushed forward once a step
            handle = np.stack(
                [
                    (0.1 + 0.03 * np.sin(2 * np.pi * phase)) * b.leg + np.zeros(n),
                    0.02 * b.leg + np.zeros(n),
                    pts[:, shoulder, 2],
                ],
                axis=-1,
            )
            pts[:, elbow] = _elbow(b, pts[:, shoulder], handle)
            towards = handle - pts[:, elbow]
            pts[:, wrist] = pts[:, elbow] + b.forearm * towards / np.linalg.norm(towards, axis=-1, keepdims=True)
            side_z = np.zeros((n, 3))  # the frame stands outside the child, WALKER_MARGIN_M beside each shoulder
            side_z[:, 2] = z * (b.shoulder_width + 2 * WALKER_MARGIN_M) - pts[:, shoulder, 2]
            for dx in (0.12, -0.35):  # the frame's front and back legs (outside the child), then the rail between them
                leg_top = handle + np.array([dx * b.leg, 0.0, 0.0]) + side_z
                segments.append([leg_top, leg_top * np.array([1, 0, 1]) + np.stack([0 * floor, floor, 0 * floor], -1)])
            rail = np.array([[0.12 * b.leg, 0, 0], [-0.35 * b.leg, 0, 0]])
            segments.append([handle + side_z + rail[0], handle + side_z + rail[1]])
            continue
        arm = s.arm_offset_deg + s.arm_swing_deg * swing
        fore = arm + s.elbow_flex_deg + 0.3 * s.arm_swing_deg * (swing + 1)
        pts[:, elbow] = pts[:, shoulder] + b.upper_arm * np.stack([_sind(arm), -_cosd(arm), np.zeros(n)], axis=-1)
        pts[:, wrist] = pts[:, elbow] + b.forearm * np.stack([_sind(fore), -_cosd(fore), np.zeros(n)], axis=-1)
        if s.device == "crutches":
            tip = pts[:, wrist] + np.stack([0.08 * b.leg + 0 * floor, 0 * floor, 0 * floor], -1)
            tip[:, 1] = floor
            segments.append([pts[:, wrist].copy(), tip])
    if not segments:
        return np.zeros((n, 0, 2, 3))
    return np.stack([np.stack(seg, axis=1) for seg in segments], axis=1)


def _elbow(b: Body, shoulder: np.ndarray, wrist: np.ndarray) -> np.ndarray:
    """Elbow positions `[T, 3]` that join upper arm and forearm between shoulder and wrist, the elbow bent backwards
    (two-link inverse kinematics in the sagittal plane; the wrist is pulled in when out of reach)."""
    dx, dy = wrist[:, 0] - shoulder[:, 0], wrist[:, 1] - shoulder[:, 1]
    d = np.clip(np.hypot(dx, dy), abs(b.upper_arm - b.forearm) + 1e-6, (b.upper_arm + b.forearm) * (1 - 1e-6))
    towards = np.degrees(np.arctan2(dx, -dy))  # from the downward vertical, forward positive
    at_shoulder = np.degrees(np.arccos((b.upper_arm**2 + d**2 - b.forearm**2) / (2 * b.upper_arm * d)))
    arm = towards - at_shoulder
    return shoulder + b.upper_arm * np.stack([_sind(arm), -_cosd(arm), np.zeros(len(d))], axis=-1)


def _keep_trailing_foot(
    s: SubjectParams,
    side: str,
    fraction: np.ndarray,
    anchors: np.ndarray,
    pelvis_x: np.ndarray,
    angles: dict[str, dict[str, np.ndarray]],
    pts: np.ndarray,
) -> None:
    """In double support the trailing foot stays where it stood (rolling over its contact point, see
    `contact_points`) and then eases back onto its swing curve: its thigh and knee are re-solved (two-link inverse
    kinematics in the leg's plane) so that the ankle follows the contact point and keeps its height below the hip.
    Updates `angles` in place."""
    b, st, ease = s.body, s.stance_fraction, 0.15
    ankle = 15 if side == "left" else 16
    point = contact_points(angles)[side]
    x = pts[..., 0]
    shift = np.zeros(len(x))
    landed, last = False, 0.0
    for f in range(len(x)):
        if anchors[f]:
            landed = True
        elif fraction[f] < st and landed:  # the contact point of this frame stays where it was in the last one
            p = point[f]
            shift[f] = last = pelvis_x[f - 1] + x[f - 1, p] + shift[f - 1] - pelvis_x[f] - x[f, p]
        elif st <= fraction[f] < st + ease:
            shift[f] = last * 0.5 * (1 + np.cos(np.pi * (fraction[f] - st) / ease))
    moved = shift != 0
    dx = (pts[moved, ankle, 0] + shift[moved]) / _cosd(yaws(s, side)[0])  # in the leg's plane
    dy = -pts[moved, ankle, 1]
    d = np.clip(np.hypot(dx, dy), abs(b.thigh - b.shank) + 1e-6, (b.thigh + b.shank) * (1 - 1e-6))
    knee = 180 - np.degrees(np.arccos((b.thigh**2 + b.shank**2 - d**2) / (2 * b.thigh * b.shank)))
    hip = np.degrees(np.arccos(np.clip((b.thigh**2 + d**2 - b.shank**2) / (2 * b.thigh * d), -1, 1)))
    thigh = np.degrees(np.arctan2(dx, dy)) + hip
    # a hyperextended knee keeps its angle (it cannot shorten the leg without passing through straight): the whole
    # leg turns about the hip to put the ankle over its place, and the ankle's height follows
    kept = angles["knee"][side][moved]
    over = kept < 0
    reach = np.hypot(b.thigh + b.shank * _cosd(kept[over]), b.shank * _sind(kept[over]))
    offset = np.degrees(np.arctan2(b.shank * _sind(kept[over]), b.thigh + b.shank * _cosd(kept[over])))
    knee[over] = kept[over]
    thigh[over] = offset + np.degrees(np.arcsin(np.clip(dx[over] / reach, -1, 1)))
    foot = angles["foot"][side][moved]
    angles["thigh"][side][moved], angles["knee"][side][moved] = thigh, knee
    angles["shank"][side][moved] = thigh - knee
    angles["ankle"][side][moved] = foot - (thigh - knee)


def walk(s: SubjectParams, duration_s: float, fps: float, rng: np.random.Generator) -> Walk:
    """Simulate a walk of `duration_s` seconds: strides of varying time and length, per-stride angle offsets,
    forward kinematics, a pelvis height that keeps the lowest foot point on the floor and a forward progression
    that keeps the foot that landed last in place (so step length, cadence and speed agree)."""
    b = s.body
    n = max(int(round(duration_s * fps)), 2)
    t = np.arange(n) / fps
    t_stride = s.stride_time_s
    k = int(np.ceil(duration_s / (0.7 * t_stride))) + 4
    durations = t_stride * np.clip(1 + s.stride_cv * rng.standard_normal(k), 0.7, 1.3)
    starts = np.concatenate([[0.0], np.cumsum(durations)]) - (durations[0] + rng.uniform() * durations[1])
    index = np.arange(k + 1, dtype=np.float64)
    phase_l = np.interp(t, starts, index)  # continuous phase of the left leg: stride number + fraction
    side_sign = 1.0 if s.affected_side == "left" else -1.0
    offset_r = 0.5 + 0.15 * s.asymmetry * side_sign  # the affected side's step takes a little longer
    phases = {"left": phase_l, "right": phase_l - offset_r}

    # each stride's length varies through the amplitude of the thigh swing
    length_gain = np.clip(1 + s.stride_length_cv * rng.standard_normal(k), 0.6, 1.4)
    centres = index[:-1] + 0.5

    def per_stride(values: np.ndarray, phase: np.ndarray) -> np.ndarray:
        return np.interp(phase, centres, values)

    sd = s.angle_sd_deg
    angles: dict[str, dict[str, np.ndarray]] = {a: {} for a in ("thigh", "shank", "knee", "hip", "ankle", "foot")}
    for side, c in leg_curves(s).items():
        ph = phases[side]
        thigh_mean = float(c.thigh.mean())
        thigh = thigh_mean + (at_phase(c.thigh, ph) - thigh_mean) * per_stride(length_gain, ph)
        thigh = thigh + per_stride(0.6 * sd * rng.standard_normal(k), ph)
        rom_scale = per_stride(1 + 0.5 * sd / 20 * rng.standard_normal(k), ph)
        knee = c.knee_min + (at_phase(c.knee, ph) - c.knee_min) * rom_scale
        knee = knee + per_stride(sd * rng.standard_normal(k), ph)
        ankle = at_phase(c.ankle, ph) + per_stride(0.8 * sd * rng.standard_normal(k), ph)
        angles["thigh"][side], angles["knee"][side], angles["ankle"][side] = thigh, knee, ankle
        angles["shank"][side] = thigh - knee
        angles["foot"][side] = angles["shank"][side] + ankle

    two_pi = 2 * np.pi
    lean = (
        s.trunk_lean_deg
        + s.trunk_pitch_deg * np.sin(2 * two_pi * phase_l + 0.6)
        + per_stride(0.5 * sd * rng.standard_normal(k), phase_l)
    )
    roll = s.trunk_roll_deg * np.sin(two_pi * phase_l)
    sway = s.lateral_sway_leg * b.leg * np.sin(two_pi * phase_l)

    pts = np.zeros((n, 21, 3))
    _legs(s, angles, pts)
    # the lowest foot point touches the floor, except that a bouncy gait lifts the body at mid-stance
    bounce = s.vertical_bounce_leg * b.leg * 0.5 * (1 - np.cos(2 * two_pi * phase_l))
    pelvis_y = bounce - pts[:, 15:21, 1].min(axis=1)
    # the foot that landed last rolls over its contact point without sliding: the pelvis moves forward by what that
    # point moves back relative to the pelvis from one frame to the next
    left_anchors = np.interp(np.floor(phase_l), index, starts) >= np.interp(
        np.floor(phases["right"]) + offset_r, index, starts
    )
    point = np.where(left_anchors, *contact_points(angles).values())
    frames = np.arange(1, n)
    moved_back = pts[frames - 1, point[1:], 0] - pts[frames, point[1:], 0]
    pelvis_x = np.concatenate([[0.0], np.cumsum(moved_back)])
    for side, anchors in (("left", left_anchors), ("right", ~left_anchors)):
        _keep_trailing_foot(s, side, phases[side] % 1.0, anchors, pelvis_x, angles, pts)
    angles["hip"] = {side: angles["thigh"][side] + lean for side in SIDES}
    _legs(s, angles, pts)
    pelvis = np.stack([pelvis_x, pelvis_y, sway], axis=-1)
    device = _upper_body(s, angles["thigh"], lean, roll, pelvis, pts) + pelvis[:, None, None, :]
    pts += pelvis[:, None, :]
    contacts: dict[str, np.ndarray] = {}
    toe_offs: dict[str, np.ndarray] = {}
    for side, offset in (("left", 0.0), ("right", offset_r)):
        cycles = np.arange(np.ceil(phases[side].min()) - 1, phases[side].max() + 1)
        for events, at in ((contacts, 0.0), (toe_offs, s.stance_fraction)):
            times = np.interp(cycles + offset + at, index, starts)
            events[side] = times[(times >= 0) & (times <= t[-1])]
    return Walk(
        times=t,
        points=pts,
        angles=angles,
        trunk_lean_deg=lean,
        contacts=contacts,
        toe_offs=toe_offs,
        pelvis=pelvis,
        device=device,
    )
