"""Keypoint preprocessing for the gait features: swap repair, gap filling, smoothing, leg-length scale, direction.

The same code serves training and the live kiosk. Every step that looks at neighbouring frames is local (a frame's
cleaned position depends only on raw frames within `Cleaning.reach` of it), so a live window can reuse the
positions it already cleaned and recompute only its first and last `reach` frames (see `features.IncrementalFeatures`).

Coordinates after `preprocess` ("normalised"): origin at the mid-hip of the same frame, unit = the subject's leg
length, y up, x positive in the walking direction (a subject walking right-to-left in the image is mirrored), so
walking either way, at any camera distance or image position gives the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cpgait.errors import CpgaitError
from cpgait.runtime.core.layouts import COCO17, get_layout, to_coco17

CONFIDENCE_MIN = 0.3  # below this a keypoint counts as not seen (typical for COCO-trained pose models)
MAX_GAP_S = 0.3  # longer runs of unseen frames stay missing (interpolating a whole step would invent it)
SWAP_WINDOW_S = 0.2  # left/right leg swaps up to this long are undone (a pose model's typical flicker)
SWAP_MARGIN = 0.5  # entry + exit crossing gain above which frames are swapped back (see `unswap`)
# Local quadratic smoother with Gaussian weights of this width (1.2 frames at 30 fps): keeps the knee's swing peak
# (a moving average of the same noise reduction flattens it by several degrees) and has no lag at the edges.
# Wider does not pay: pose jitter is correlated from frame to frame, so it mostly sits below the gait's frequencies.
SMOOTH_SIGMA_S = 0.04
FILLED_WEIGHT = 0.01  # smoothing weight of an interpolated point (a seen point weighs its confidence squared)
MIN_TRAVERSE_LEG = 0.25  # mid-hip travel (leg lengths) needed to trust it for the walking direction

HIP_L, HIP_R, KNEE_L, KNEE_R, ANKLE_L, ANKLE_R = (
    COCO17.index(j) for j in ("left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle")
)
SHOULDER_L, SHOULDER_R, NOSE, EAR_L, EAR_R = (
    COCO17.index(j) for j in ("left_shoulder", "right_shoulder", "nose", "left_ear", "right_ear")
)
HEEL_L, HEEL_R, TOE_L, TOE_R = 17, 18, 19, 20  # in coco17_feet
_LEG_CHAIN = [HIP_L, KNEE_L, ANKLE_L, HIP_R, KNEE_R, ANKLE_R]
_LEG_SWAP = ([HIP_L, KNEE_L, ANKLE_L], [HIP_R, KNEE_R, ANKLE_R])
_LEG_SWAP_FEET = ([HIP_L, KNEE_L, ANKLE_L, HEEL_L, TOE_L], [HIP_R, KNEE_R, ANKLE_R, HEEL_R, TOE_R])


@dataclass(frozen=True)
class Cleaning:
    """Swap-repair, gap-filling and smoothing settings in frames for one frame rate."""

    swap_half_width: int  # longest left/right swap undone, in frames (a decision looks 2 * this + 1 frames away)
    max_gap: int  # longest run of unseen frames that is interpolated
    half_width: int  # smoother reaches this many frames each side
    moments: np.ndarray  # [2h+1, 5]: Gaussian weight g_k times k^0 .. k^4 for offsets k = -h..h

    @classmethod
    def for_fps(cls, fps: float) -> Cleaning:
        sigma = max(SMOOTH_SIGMA_S * fps, 0.5)
        half = max(1, math.ceil(2 * sigma))
        k = np.arange(-half, half + 1, dtype=np.float64)
        g = np.exp(-0.5 * (k / sigma) ** 2)
        return cls(
            max(1, round(SWAP_WINDOW_S * fps)),
            max(1, round(MAX_GAP_S * fps)),
            half,
            np.stack([g * k**m for m in range(5)], axis=1),
        )

    @property
    def reach(self) -> int:
        """How many raw frames either side a cleaned frame depends on."""
        return 2 * self.swap_half_width + 1 + self.max_gap + self.half_width


@dataclass(frozen=True)
class Preprocessed:
    """Cleaned and normalised keypoints of one window (see the module docstring for the coordinates).

    keypoints: float64 `[T, V, 3]` normalised x, y and the raw confidence; x, y NaN (confidence 0) where missing.
    valid: bool `[T, V]`, seen or interpolated; False = missing (a gap longer than the limit, or at the edge).
    leg_length_px: median over frames of hip-knee + knee-ankle (mean of the sides seen), in pixels.
    direction: +1 walking towards +x in the image, -1 towards -x (then x was mirrored).
    mid_hip_px: float64 `[T, 2]` cleaned mid-hip in image pixels (before centring; NaN where a hip is missing).
    fps: frames per second.
    """

    keypoints: np.ndarray
    valid: np.ndarray
    leg_length_px: float
    direction: int
    mid_hip_px: np.ndarray
    fps: float

    def __post_init__(self) -> None:
        t, v, c = self.keypoints.shape
        if c != 3 or self.valid.shape != (t, v) or self.mid_hip_px.shape != (t, 2):
            raise ValueError("Preprocessed: keypoints [T,V,3], valid [T,V] and mid_hip_px [T,2] must agree")
        if not (self.leg_length_px > 0) or self.direction not in (-1, 1) or not (self.fps > 0):
            raise ValueError("Preprocessed: leg length and fps must be > 0 and direction +1 or -1")


def as_coco(keypoints: np.ndarray, layout: str, fps: float) -> tuple[np.ndarray, bool]:
    """Validate raw `[T, V, 3]` keypoints and return them as float64 COCO-17 (+ feet) and whether feet are present.

    Any known layout is accepted and converted (joints selected, never invented); a point counts as seen where
    its confidence is >= `CONFIDENCE_MIN` and x, y are finite.
    """
    lay = get_layout(layout)
    kp = np.asarray(keypoints)
    if kp.ndim != 3 or kp.shape[2] != 3:
        raise CpgaitError(f"keypoints have shape {kp.shape}; expected [T, V, 3] (x, y, confidence)")
    if kp.shape[1] != lay.num_joints:
        raise CpgaitError(f"keypoints have {kp.shape[1]} joints; layout {lay.name} has {lay.num_joints}")
    if kp.shape[0] < 2:
        raise CpgaitError(f"keypoints have {kp.shape[0]} frame(s); gait features need at least 2")
    if not np.issubdtype(kp.dtype, np.number):
        raise CpgaitError(f"keypoints have dtype {kp.dtype}; expected a float array")
    if not (isinstance(fps, (int, float, np.floating, np.integer)) and math.isfinite(fps) and fps > 0):
        raise CpgaitError(f"fps is {fps!r}; expected a number > 0")
    kp, name = to_coco17(kp.astype(np.float64), lay.name)
    return kp, name == "coco17_feet"


def seen(kp: np.ndarray) -> np.ndarray:
    """Which raw points count as observed: confident enough and finite."""
    conf = kp[..., 2]
    return (conf >= CONFIDENCE_MIN) & np.isfinite(kp[..., 0]) & np.isfinite(kp[..., 1])


def clean(kp: np.ndarray, cleaning: Cleaning) -> tuple[np.ndarray, np.ndarray]:
    """Undo leg swaps, fill short gaps and smooth raw `[T, V, 3]` keypoints.

    Returns xy `[T, V, 2]` (NaN = missing) and valid `[T, V]`. Each step only looks at frames within its own
    reach, so a cleaned frame depends on raw frames within `cleaning.reach` of it.
    """
    kp = unswap(kp, cleaning.swap_half_width)
    xy, valid = interpolate(kp, cleaning.max_gap)
    ok = seen(kp)
    confidence = np.where(ok, kp[..., 2], 0.0)  # the raw confidence may be NaN where a point is not seen
    weight = np.where(ok, confidence**2, np.where(valid, FILLED_WEIGHT, 0.0))
    return smooth(xy, weight, cleaning), valid


def unswap(kp: np.ndarray, max_len: int) -> np.ndarray:
    """Undo short left/right swaps of the leg points (hip, knee, ankle, heel, toe), as pose models make them.

    From frame t - 1 to t, over the knees, ankles and feet seen in both frames, compare the legs' straight
    displacement (each leg to itself) with the crossed one (each to the other): gain g(t) = (straight - crossed) /
    (straight + crossed), in [-1, 1], positive when the labels look exchanged, 0 where unknown (window edge, no
    joint seen in both frames). Swapping frames a..b (at most `max_len`) back gains g(a) + g(b + 1). Such a segment is
    undone when its gain exceeds `SWAP_MARGIN` and no other segment starting or ending at one of its two
    transitions gains more (so a crossing is the start of one swap or the end of another, not both). A swap may
    end while the legs overlap (g near 0); longer swaps are left alone. Every decision looks only at frames within
    2 * `max_len` + 1, so it is the same in any window that holds them.
    """
    left, right = _LEG_SWAP_FEET if kp.shape[1] > 17 else _LEG_SWAP
    t_len, s = kp.shape[0], max_len
    pts = np.where(seen(kp)[..., None], kp[..., :2], np.nan)
    a, b = pts[:, left[1:]], pts[:, right[1:]]  # hips overlap in a side view: they tell nothing
    moves = np.concatenate([a[1:] - a[:-1], b[1:] - b[:-1], a[1:] - b[:-1], b[1:] - a[:-1]], axis=1)
    moves = np.hypot(moves[..., 0], moves[..., 1])  # [T-1, 4J]: straight a, straight b, crossed, crossed
    j = a.shape[1]
    straight = moves[:, :j] + moves[:, j : 2 * j]
    crossed = moves[:, 2 * j : 3 * j] + moves[:, 3 * j :]
    both = np.isfinite(straight)
    st = np.where(both, straight, 0.0).sum(axis=1)
    cr = np.where(both, crossed, 0.0).sum(axis=1)
    known = both.any(axis=1) & (st + cr > 0)
    gain = np.zeros(t_len + 3 * s + 1)  # gain[2s + t] = g(t); zero beyond the edges (unknown)
    gain[2 * s + 1 : 2 * s + t_len] = np.where(known, (st - cr) / np.where(known, st + cr, 1.0), 0.0)
    if 2 * gain.max() <= SWAP_MARGIN:  # no segment can gain enough
        return kp
    # score[l - 1, i] = g(a) + g(a + l) for the segment of length l starting at a = i - 2s (a in [-2s, T + s))
    n = t_len + s + 1
    score = np.stack([gain[:n] + gain[length : length + n] for length in range(1, s + 1)])
    best = score.max(axis=0)  # best segment starting at a ...
    for length in range(1, s + 1):  # ... or ending just before transition a
        best[length:] = np.maximum(best[length:], score[length - 1, : n - length])
    cover = np.zeros(n + s + 1)
    for length in range(1, s + 1):
        sc = score[length - 1, : n - length]
        ok = (sc > SWAP_MARGIN) & (sc >= best[: n - length]) & (sc >= best[length:])
        cover[: n - length] += ok
        cover[length:n] -= ok
    flip = (np.cumsum(cover) > 0)[2 * s : 2 * s + t_len]
    if not flip.any():
        return kp
    out = kp.copy()
    out[np.ix_(flip, np.array(left + right))] = kp[np.ix_(flip, np.array(right + left))]
    return out


def interpolate(kp: np.ndarray, max_gap: int) -> tuple[np.ndarray, np.ndarray]:
    """Fill gaps of raw `[T, V, 3]` keypoints; returns xy `[T, V, 2]` (NaN = missing) and valid `[T, V]`.

    A run of unseen frames no longer than `max_gap`, with a seen frame on both sides, is filled by linear
    interpolation between those two frames: a + (b - a) * (t - t_a) / (t_b - t_a). Longer runs, and runs touching
    the first or last frame, stay missing.
    """
    t_len = kp.shape[0]
    ok = seen(kp)
    xy = kp[..., :2].copy()
    xy[~ok] = np.nan
    t = np.arange(t_len)[:, None]
    prev = np.maximum.accumulate(np.where(ok, t, -1), axis=0)
    nxt = np.minimum.accumulate(np.where(ok, t, t_len)[::-1], axis=0)[::-1]
    fill = ~ok & (prev >= 0) & (nxt < t_len) & (nxt - prev - 1 <= max_gap)
    frames, joints = np.nonzero(fill)
    if frames.size:
        a, b = prev[frames, joints], nxt[frames, joints]
        start = xy[a, joints]
        xy[frames, joints] = start + (xy[b, joints] - start) * ((frames - a) / (b - a))[:, None]
    return xy, ok | fill


def smooth(xy: np.ndarray, weight: np.ndarray, cleaning: Cleaning) -> np.ndarray:
    """Local quadratic regression over +-`half_width` frames, weighted by a Gaussian in time times `weight`.

    `weight` `[T, V]` is 0 where a point is missing (it stays missing, NaN) and otherwise says how much to trust
    it. The fitted value at the centre frame replaces the point; with fewer than three usable neighbours the point
    is kept as it is. The fit has no lag at the window's edges or next to gaps.
    """
    t_len, v = weight.shape
    h = cleaning.half_width
    stacked = np.zeros((3, t_len + 2 * h, v))  # w, w*x, w*y; zero outside the window
    stacked[0, h : h + t_len] = weight
    stacked[1:, h : h + t_len] = np.where(weight > 0, weight * np.moveaxis(xy, -1, 0), 0.0)
    c, _, v = stacked.shape
    windows = np.lib.stride_tricks.as_strided(  # [3, T, V, 2h+1] view: frame t's neighbours t-h..t+h
        stacked, (c, t_len, v, 2 * h + 1), stacked.strides[:3] + stacked.strides[1:2], writeable=False
    )
    m = np.moveaxis(windows @ cleaning.moments, -1, 0)  # [5, 3, T, V]: sums of g_k k^m (w, wx, wy), m = 0..4
    s0, s1, s2, s3, s4 = m[:, 0]
    # Intercept of the weighted least-squares parabola: first row of the inverse 3x3 moment matrix (cofactors).
    c0, c1, c2 = s2 * s4 - s3 * s3, s2 * s3 - s1 * s4, s1 * s3 - s2 * s2
    det = s0 * c0 + s1 * c1 + s2 * c2
    fit = det > 1e-9 * s0**3  # else fewer than three usable neighbours: keep the point
    fitted = (c0 * m[0, 1:] + c1 * m[1, 1:] + c2 * m[2, 1:]) / np.where(fit, det, 1.0)
    out = np.where(fit, fitted, np.moveaxis(xy, -1, 0))
    return np.where(weight[..., None] > 0, np.moveaxis(out, 0, -1), np.nan)


def leg_lengths(xy: np.ndarray) -> np.ndarray:
    """Per-frame leg length in the units of `xy`: hip-knee + knee-ankle, mean of the sides seen (NaN if neither)."""
    d = np.diff(xy[:, _LEG_CHAIN], axis=1)[:, [0, 1, 3, 4]]  # hip-knee, knee-ankle of each side
    seg = np.sqrt(d[..., 0] ** 2 + d[..., 1] ** 2)
    left, right = seg[:, 0] + seg[:, 1], seg[:, 2] + seg[:, 3]
    return np.where(np.isnan(left), right, np.where(np.isnan(right), left, 0.5 * (left + right)))


class NoLegSeen(CpgaitError):
    """No frame of a window shows a whole leg, so the skeleton cannot be scaled (the one "not walking" failure)."""


def leg_length(samples: np.ndarray) -> float:
    """Robust leg length of a window: the median of its per-frame samples; no sample is a user error."""
    finite = np.sort(samples[np.isfinite(samples)])
    median = 0.5 * (finite[(finite.size - 1) // 2] + finite[finite.size // 2]) if finite.size else 0.0
    if not median > 0:
        raise NoLegSeen(
            "no frame has a hip, knee and ankle of the same side seen with confidence >= "
            f"{CONFIDENCE_MIN}; cannot scale the skeleton (all keypoints missing or NaN?)"
        )
    return float(median)


def progression(mid_hip_x: np.ndarray) -> float:
    """Least-squares slope of the mid-hip x over the frames where it is known, in pixels per frame (NaN if < 2)."""
    t = np.flatnonzero(np.isfinite(mid_hip_x)).astype(np.float64)
    if t.size < 2:
        return float("nan")
    x = mid_hip_x[t.astype(int)]
    tc = t - t.mean()
    return float(np.dot(tc, x - x.mean()) / np.dot(tc, tc))


def walking_direction(slope_px: float, n_frames: int, leg_px: float, xy: np.ndarray, feet: bool) -> int:
    """+1 if the subject walks towards +x in the image, else -1.

    First choice: the sign of the mid-hip progression, when it covers at least `MIN_TRAVERSE_LEG` leg lengths over
    the window. Otherwise (walking on the spot, a treadmill) the facing: nose ahead of the ears, then toes ahead of
    heels; +1 when nothing tells.
    """
    if math.isfinite(slope_px) and abs(slope_px) * (n_frames - 1) >= MIN_TRAVERSE_LEG * leg_px:
        return 1 if slope_px > 0 else -1
    ear_x = xy[:, [EAR_L, EAR_R], 0]
    seen_ears = np.isfinite(ear_x).sum(axis=1)
    ears = np.where(seen_ears > 0, np.nansum(ear_x, axis=1) / np.maximum(seen_ears, 1), np.nan)
    cues = [xy[:, NOSE, 0] - ears]
    if feet:
        cues += [xy[:, TOE_L, 0] - xy[:, HEEL_L, 0], xy[:, TOE_R, 0] - xy[:, HEEL_R, 0]]
    for cue in cues:
        known = cue[np.isfinite(cue)]
        if known.size and known.mean() != 0:
            return 1 if known.mean() > 0 else -1
    return 1


def mid_hip(xy: np.ndarray) -> np.ndarray:
    """Mid-point of the two hips, `[T, 2]` (NaN where either is missing)."""
    return 0.5 * (xy[:, HIP_L] + xy[:, HIP_R])


def normalise(xy: np.ndarray, hip: np.ndarray, leg_px: float, direction: int) -> np.ndarray:
    """Pixels -> normalised coordinates: centred on the same frame's mid-hip, / leg length, y up, x mirrored if -1."""
    rel = (xy - hip[:, None, :]) / leg_px
    return np.stack([direction * rel[..., 0], -rel[..., 1]], axis=-1)


def normalised(kp: np.ndarray, xy: np.ndarray, leg_px: float, direction: int, fps: float) -> Preprocessed:
    """Assemble `Preprocessed` from raw COCO keypoints, their cleaned pixels and the window's scale and direction.

    The confidence channel is the raw confidence where the point is valid (so interpolated points keep their low
    score) and 0 where it is missing; a frame without both hips has no centre and is missing altogether.
    """
    hip = mid_hip(xy)
    norm = normalise(xy, hip, leg_px, direction)
    valid = np.isfinite(norm[..., 0])
    conf = np.where(valid, np.clip(np.nan_to_num(kp[..., 2]), 0.0, 1.0), 0.0)
    return Preprocessed(np.concatenate([norm, conf[..., None]], axis=-1), valid, leg_px, direction, hip, fps)


def preprocess(keypoints: np.ndarray, layout: str, fps: float) -> Preprocessed:
    """Clean and normalise one window of raw keypoints (`[T, V, 3]` x, y pixels + confidence, any known layout).

    Output joints are COCO-17, plus the four foot points when the layout has them (`coco17_feet` order).
    """
    kp, feet = as_coco(keypoints, layout, fps)
    xy, _ = clean(kp, Cleaning.for_fps(float(fps)))
    leg_px = leg_length(leg_lengths(xy))
    direction = walking_direction(progression(mid_hip(xy)[:, 0]), len(xy), leg_px, xy, feet)
    return normalised(kp, xy, leg_px, direction, float(fps))
