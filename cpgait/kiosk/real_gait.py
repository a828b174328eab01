"""Gait of real children with cerebral palsy beside a session's numbers, for orientation only: which of the kiosk's
gait features each figure of `cpgait.training.real_gait` (Kidzinski et al. 2020, lab-measured, n = 190; source and
licence there and in NOTICE) stands next to, and how far they compare.

The kiosk measures 2-D angles from the side and lengths in leg lengths from one camera, so only cadence shares the
unit; the others are orientation, not norms. (`cpgait.training.real_gait` is plain Python: no torch is imported.)
"""

from __future__ import annotations

from dataclasses import dataclass

from cpgait.training.real_gait import REAL, SOURCE, RealStat

__all__ = ["REAL_RANGES", "SOURCE", "RealRange"]


@dataclass(frozen=True)
class RealRange:
    """One real-children measure (p5, median, p95) and how it relates to the kiosk's feature."""

    quantity: str
    stat: RealStat
    comparable: str

    def describe(self) -> str:
        s = self.stat
        return f"{s.p5:g} - {s.p95:g} {s.unit} (median {s.p50:g})"


_KNEE = RealRange(
    "knee flexion at max extension",
    REAL["knee_max_extension"],
    "same quantity, 3-D in the lab and 2-D from the side here",
)
REAL_RANGES: dict[str, RealRange] = {
    "cadence": RealRange("cadence", REAL["cadence"], "same quantity and unit"),
    "speed": RealRange("walking speed", REAL["speed"], "in m/s; the kiosk measures leg lengths/s (no metric scale)"),
    "step_length": RealRange(
        "stride length (two steps)", REAL["stride_length"], "a stride in m; the kiosk measures one step in leg lengths"
    ),
    "knee_peak_extension_left": _KNEE,
    "knee_peak_extension_right": _KNEE,
}
